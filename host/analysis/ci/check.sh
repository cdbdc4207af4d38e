#!/usr/bin/env bash
# Everything CI should run for the analysis core, from the repository root:
#   bash host/analysis/ci/check.sh
# fmt check, clippy with the crate's strict lints, all tests (the corpus and ExifTool checks skip
# with a note when ../shared/corpus or exiftool are absent), then the recall gate.
set -euo pipefail
root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
cd "$root"
cargo fmt -p proofpix-analysis -- --check
cargo clippy -p proofpix-analysis --all-targets -- -D warnings
cargo test -p proofpix-analysis
bash host/analysis/ci/recall.sh
