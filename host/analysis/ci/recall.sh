#!/usr/bin/env bash
# Recall gate for the analysis core: analyse the shared corpus with the development binary and
# score it against ExifTool's golden readings with ../shared/tools/privacy-recall.
#
# Fails (exit 1) when overall high-risk recall is below 0.97, or any high-risk category with 10
# or more cases is below 0.95. Skips with a note (exit 0) when the corpus or python3 is absent.
# Call it from the repository root: `bash host/analysis/ci/recall.sh`.
set -euo pipefail
root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
corpus=${PROOFPIX_CORPUS:-$root/../shared/corpus}
scorer=${PROOFPIX_RECALL_TOOL:-$root/../shared/tools/privacy-recall}
if [ ! -d "$corpus" ] || [ ! -x "$scorer" ] || ! command -v python3 >/dev/null; then
  echo "recall: corpus, scorer or python3 not found; skipped"
  exit 0
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p proofpix-analysis --example analyze
bin=$CARGO_TARGET_DIR/release/examples/analyze
out=$(mktemp)
trap 'rm -f "$out" "$out.txt"' EXIT
corpus=$(cd "$corpus" && pwd)
"$bin" --json "$corpus"/exiftool-t "$corpus"/exif-samples "$corpus"/exiv2 "$corpus"/mat2 "$corpus"/hostile > "$out" || true
"$scorer" --corpus "$corpus" --golden "$corpus"/golden/*.json --ours "$out" --verbose --min-recall 0.97 | tee "$out.txt"
# Per-category bar: every high-risk category with >= 10 cases at 0.95 or better.
awk '
  $1 ~ /^(gps|serial|owner|person|contact|author|location-text|thumbnail)$/ && $2 >= 10 && $4 < 0.95 {
    printf "recall: %s is %s over %s cases, below 0.95\n", $1, $4, $2; bad = 1
  }
  END { exit bad }
' "$out.txt"
echo "recall: bars met"
