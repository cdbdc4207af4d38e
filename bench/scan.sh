#!/usr/bin/env bash
# Start-up and memory of `proofpix scan`, for BENCHMARKS.md.
#   cold cache: the compiled-plugin cache is empty (first run after install);
#   warm cache: the precompiled plugin is loaded from the cache.
# Both start from an empty store, so both analyse every file.
# Needs hyperfine and GNU time (Debian: hyperfine, time).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q -p proofpix
cargo run --release -q -p proofpix-fixtures --example write_photo_set -- "$n" "$work/photos"
bin=$(pwd)/target/release/proofpix
export PROOFPIX_HOME="$work/home"
fresh_store='rm -rf "$PROOFPIX_HOME/proofpix.redb" "$PROOFPIX_HOME/master.key" "$PROOFPIX_HOME/reports"'

echo "== scan of the 8 shipped samples: cold vs warm compiled-plugin cache"
hyperfine -N --warmup 1 --runs 10 \
    --prepare "sh -c 'rm -rf \"$PROOFPIX_HOME\"'" -n cold-cache "$bin scan samples" \
    --prepare "sh -c '$fresh_store'" -n warm-cache "$bin scan samples" || true

echo "== scan of $n generated photos: wall time and peak RSS (warm cache, empty store)"
sh -c "$fresh_store"
/usr/bin/time -v "$bin" scan "$work/photos" > /dev/null 2> "$work/time.txt" || true
grep -E "Elapsed|Maximum resident" "$work/time.txt"
echo "== rescan, nothing changed"
/usr/bin/time -v "$bin" scan "$work/photos" > /dev/null 2> "$work/time.txt" || true
grep -E "Elapsed|Maximum resident" "$work/time.txt"
