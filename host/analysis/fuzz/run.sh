#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 60), seeded from the shared corpus.
# Usage: bash host/analysis/fuzz/run.sh [SECONDS]   (needs nightly and cargo-fuzz)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-60}
cd "$here"
[ -d corpus ] || bash seed.sh
for t in analyze jpeg png webp tiff bmff exif makernote vendor flir quicktime fpxr xmp iptc_irb_icc strip; do
  mkdir -p "corpus/$t"
  echo "== $t (${secs}s)"
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 2>&1 \
    | grep -E "^(#[0-9]+[[:space:]]+DONE|==[0-9]+==|SUMMARY|Done|artifact_prefix|Test unit written)" | tail -3
done
