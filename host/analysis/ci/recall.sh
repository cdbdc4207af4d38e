#!/usr/bin/env bash
# Recall gate for the analysis core: analyse EVERY corpus folder that has a golden file (a glob,
# via ../../.ci/recall) with the development binary and score it against ExifTool's golden
# readings with ../shared/tools/privacy-recall, per folder and overall.
#
# Floors (issue 15): overall high-risk recall >= 0.99, and every high-risk category with 10 or
# more cases >= 0.97. Skips with a note (exit 0) when the corpus or python3 is absent.
# Call it from the repository root: `bash host/analysis/ci/recall.sh`.
set -euo pipefail
root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
shared=${PROOFPIX_SHARED:-$root/../shared}
if [ ! -d "$shared/corpus/golden" ] || [ ! -x "$shared/tools/privacy-recall" ] || ! command -v python3 >/dev/null; then
  echo "recall: corpus, scorer or python3 not found; skipped"
  exit 0
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p proofpix-analysis --example analyze
python3 "$root/.ci/recall" --shared "$shared" --analyze "$CARGO_TARGET_DIR/release/examples/analyze --json"
