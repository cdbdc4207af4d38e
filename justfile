# Conveniences over the cargo commands the README gives; nothing here is a
# required step.

shared := justfile_directory() / "../shared"

# The tests, as CI runs them (provisions what they need first; see ./test).
test *ARGS:
    ./test {{ARGS}}

# Scan a folder through the whole pipeline (default: the shipped samples).
scan DIR="samples":
    cargo run --release -p proofpix -- scan {{DIR}}

# Analyse files or folders directly.
analyze +PATHS:
    cargo run --release -p proofpix -- analyze {{PATHS}}

# Formatting, lints and the dependency rules: crates on floors, pure crates without an async
# runtime, wasm engine, database or HTTP stack, each crate's top doc stating its rules
# (.ci/layers); the daemon and the CLI never write
# the store (clippy refuses it by the files .ci/owners writes).
lint:
    cargo fmt --all --check
    python3 .ci/layers
    python3 .ci/owners --check
    cargo clippy --workspace --all-targets -- -D warnings

# The API contract as CI checks it: schemathesis (pinned, into target/tools/schemathesis)
# against a seeded daemon's /api/openapi.json, every check and the stateful phase, fixed seed
# and budget, as admin, viewer and no token.
api-contract:
    .ci/api-contract

# Everything CI checks, in CI's order.
ci:
    .ci/run

# Privacy recall against ExifTool's golden readings of every shared corpus folder (as CI runs it).
recall:
    python3 .ci/recall --shared {{shared}} --analyze "cargo run --release -q -p proofpix -- analyze --json" --min-overall 0.99 --min-category 0.97 --min-cases 10

# Build the plugins alone (the normal build does this too).
plugins:
    cargo build -p proofpix-plugin-artifacts

# Criterion benchmarks of one crate, e.g. `just bench proofpix-runtime`.
bench CRATE:
    cargo bench -p {{CRATE}}

# Cold/warm start and peak RSS of `proofpix scan` over 1,000 generated images (see BENCHMARKS.md).
bench-scan:
    bench/scan.sh

# Regenerate the shipped samples from tests/fixtures.
samples:
    cargo run -q -p proofpix-fixtures --example write_samples -- samples

# The whole product offline: the daemon, emulated Salesforce, SharePoint, Slack and Teams, and an integration for each.
demo:
    cargo run --release -p proofpix -- demo

# The daemon's figures for BENCHMARKS.md (release builds, then about 15 minutes of runs).
bench-daemon:
    bench/daemon.sh
