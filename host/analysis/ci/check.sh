#!/usr/bin/env bash
# Everything CI should run for the analysis core, from the repository root:
#   bash host/analysis/ci/check.sh
# fmt check, clippy with the crate's strict lints, all tests (the corpus and ExifTool checks skip
# with a note when ../shared/corpus or exiftool are absent), the tag data check, then the recall gate.
set -euo pipefail
root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
cd "$root"
cargo fmt -p proofpix-analysis -- --check
cargo clippy -p proofpix-analysis --all-targets -- -D warnings
cargo test -p proofpix-analysis
# The privacy tag data is current with the installed ExifTool's tag list.
if command -v exiftool >/dev/null; then python3 host/analysis/tools/gen-privacy-tags.py --check; fi
bash host/analysis/ci/recall.sh
