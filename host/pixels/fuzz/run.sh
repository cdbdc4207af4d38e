#!/usr/bin/env bash
# Run the pixel stage's fuzz target for SECONDS (default 60), seeded from the shared corpus.
# Usage: bash host/pixels/fuzz/run.sh [SECONDS]   (needs nightly and cargo-fuzz)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-60}
cd "$here"
[ -d corpus/analyze ] || bash seed.sh
mkdir -p corpus/analyze
echo "== analyze (${secs}s)"
cargo +nightly fuzz run -O analyze corpus/analyze -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=262144 2>&1 \
  | grep -E "^(#[0-9]+[[:space:]]+DONE|==[0-9]+==|SUMMARY|Done|artifact_prefix|Test unit written)" | tail -3
