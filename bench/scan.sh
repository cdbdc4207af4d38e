#!/usr/bin/env bash
# Start-up and memory of `proofpix scan`, for BENCHMARKS.md.
#   cold cache: the compiled-plugin cache is empty (first run after install);
#   warm cache: the precompiled plugin is loaded from the cache.
# Both start from an empty store, so both analyse every file.
# Needs hyperfine and GNU time (Debian: hyperfine, time).
# Usage: bench/scan.sh [N photos, default 1000] [runs, default 5]
# Honours CARGO_TARGET_DIR (the binary is taken from there); PROOFPIX_BIN=path skips the build
# and uses that binary.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
runs=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${PROOFPIX_BIN:-}" ]; then
    bin=$PROOFPIX_BIN
else
    cargo build --release -q -p proofpix
    bin=${CARGO_TARGET_DIR:-$(pwd)/target}/release/proofpix
fi
cargo run --release -q -p proofpix-fixtures --example write_photo_set -- "$n" "$work/photos"
export PROOFPIX_HOME="$work/home"
fresh_store='rm -rf "$PROOFPIX_HOME/proofpix.redb" "$PROOFPIX_HOME/master.key" "$PROOFPIX_HOME/reports"'
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo ' (working tree differs)'); $(nproc) cores"
echo "photos: $n files, $(du -sb "$work/photos" | cut -f1) bytes"

echo "== scan of the 8 shipped samples: cold vs warm compiled-plugin cache (load $(cut -d' ' -f1-3 /proc/loadavg))"
hyperfine -N -i --warmup 1 --runs 10 --export-json "$work/hyperfine.json" \
    --prepare "sh -c 'rm -rf \"$PROOFPIX_HOME\"'" -n cold-cache "$bin scan samples" \
    --prepare "sh -c '$fresh_store'" -n warm-cache "$bin scan samples"
python3 - "$work/hyperfine.json" <<'PY'
import json, statistics, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = sorted(r["times"])
    print(f"{r['command']}: median {statistics.median(t) * 1e3:.1f} ms [{t[0] * 1e3:.1f}-{t[-1] * 1e3:.1f}], user {r['user'] * 1e3:.1f} ms")
PY
echo "(load after: $(cut -d' ' -f1-3 /proc/loadavg))"

echo "== scan of $n generated photos, $runs runs: wall time and peak RSS (warm cache, empty store)"
for i in $(seq "$runs"); do
    sh -c "$fresh_store"
    /usr/bin/time -v "$bin" scan "$work/photos" > /dev/null 2> "$work/time.txt" || true
    echo "run $i: load $(cut -d' ' -f1 /proc/loadavg); $(grep -E 'Elapsed|Maximum resident' "$work/time.txt" | sed 's/^\s*//' | paste -sd ';')"
done
echo "== rescan, nothing changed, $runs runs"
for i in $(seq "$runs"); do
    /usr/bin/time -v "$bin" scan "$work/photos" > /dev/null 2> "$work/time.txt" || true
    echo "run $i: load $(cut -d' ' -f1 /proc/loadavg); $(grep -E 'Elapsed|Maximum resident' "$work/time.txt" | sed 's/^\s*//' | paste -sd ';')"
done
