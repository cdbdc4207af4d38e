#!/usr/bin/env bash
# End-to-end pipeline cost of `proofpix scan`, side by side with a baseline commit, for
# BENCHMARKS.md (issue 13): files/s, CPU seconds (user + sys) per 1,000 files, share of the
# cores busy, fsync-family calls per file, peak RSS.
#
# Usage: bench/pipeline.sh [N photos, default 2000] [runs, default 3] [baseline commit, default b5f4868]
#   PROOFPIX_BIN=path      the binary under test (default: build this tree with --release)
#   BASELINE_BIN=path      the baseline binary (default: build the baseline commit in a worktree,
#                          with its own target dir /work/targets/baseline-<commit>)
#   PHOTOS=dir             scan this folder instead of generated photos (e.g. corpus JPEGs)
# Needs strace and GNU time (Debian: strace, time).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
runs=${2:-3}
base=${3:-b5f4868}
work=$(mktemp -d)
trap 'rm -rf "$work"; git worktree remove --force "$work/base-src" 2>/dev/null || true' EXIT

if [ -n "${PROOFPIX_BIN:-}" ]; then
    new=$PROOFPIX_BIN
else
    cargo build --release -q -p proofpix
    new=${CARGO_TARGET_DIR:-$(pwd)/target}/release/proofpix
fi
if [ -n "${BASELINE_BIN:-}" ]; then
    old=$BASELINE_BIN
else
    git worktree add -q --detach "$work/base-src" "$base"
    (cd "$work/base-src" && CARGO_TARGET_DIR=/work/targets/baseline-$base cargo build --release -q -p proofpix)
    old=/work/targets/baseline-$base/release/proofpix
fi
if [ -n "${PHOTOS:-}" ]; then
    photos=$PHOTOS
else
    cargo run --release -q -p proofpix-fixtures --example write_photo_set -- "$n" "$work/photos"
    photos=$work/photos
fi
count=$(find "$photos" -type f | wc -l)
echo "this tree: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo ' (working tree differs)'); baseline: $base; $(nproc) cores"
echo "photos: $count files, $(du -sb "$photos" | cut -f1) bytes, in $photos"

one() { # label binary
    local home=$work/home-$1
    rm -rf "$home"
    # Warm the compiled-plugin cache first, so the figure is the pipeline's, not Cranelift's.
    PROOFPIX_HOME=$home "$2" scan samples > /dev/null 2>&1 || true
    rm -rf "$home/proofpix.redb" "$home/reports"
    PROOFPIX_HOME=$home /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
        strace -f -qq -c -o "$work/strace" -e trace=fsync,fdatasync,sync_file_range \
        "$2" scan "$photos" > /dev/null 2>&1 || true
    local syncs
    syncs=$(awk '/fsync|fdatasync|sync_file_range/ {s += $4} END {print s + 0}' "$work/strace")
    # Without strace, for wall time and CPU (strace slows every syscall).
    rm -rf "$home/proofpix.redb" "$home/reports"
    PROOFPIX_HOME=$home /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
        "$2" scan "$photos" > /dev/null 2>&1 || true
    read -r wall user sys rss < <(tail -n 1 "$work/time")
    python3 - "$1" "$count" "$wall" "$user" "$sys" "$rss" "$syncs" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import sys
label, n, wall, user, sys_, rss, syncs, load = sys.argv[1:]
n, wall, user, sys_, rss, syncs = int(n), float(wall), float(user), float(sys_), int(rss), int(syncs)
cpu = user + sys_
print(f"{label:9} {n / wall:8.0f} files/s  wall {wall:6.2f} s  cpu {cpu:6.2f} s "
      f"(user {user:.2f} + sys {sys_:.2f}) = {cpu / n * 1000:5.2f} cpu-s/1000 files  "
      f"busy {cpu / wall / 2 * 100:3.0f}% of 2 cores  fsyncs {syncs} = {syncs / n:.3f}/file  "
      f"peak RSS {rss / 1024:.1f} MiB  load {load}")
PY
}

for i in $(seq "$runs"); do
    echo "== run $i"
    one baseline "$old"
    one this "$new"
done
