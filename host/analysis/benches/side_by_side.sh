#!/usr/bin/env bash
# Side-by-side throughput: the analysis core (development binary `examples/analyze`, until
# `proofpix analyze` is wired) against `exiftool -j -G1 -a -n -r` over the same corpus files,
# in one run, alternating the two tools, best of N runs each. One process per tool per run,
# single-threaded; output goes to /dev/null.
# Usage: bash host/analysis/benches/side_by_side.sh [RUNS]   (from the repository root)
set -euo pipefail
root=$(git rev-parse --show-toplevel)
corpus=$(cd "${PROOFPIX_CORPUS:-$root/../shared/corpus}" && pwd)
runs=${1:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p proofpix-analysis --example analyze
python3 - "$CARGO_TARGET_DIR/release/examples/analyze" "$corpus" "$runs" <<'PY'
import os, subprocess, sys, time
ours, corpus, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
dirs = [os.path.join(corpus, d) for d in ("exiftool-t", "exif-samples", "exiv2", "mat2", "hostile")]
files = sorted(os.path.join(r, f) for d in dirs for r, _, fs in os.walk(d) for f in fs)
jpegs = [f for f in files if open(f, "rb").read(3) == b"\xff\xd8\xff"]
def wall(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t
print(f"{len(files)} files ({len(jpegs)} JPEGs), best of {runs}, load {open('/proc/loadavg').read().split()[:3]}")
for name, args in (("all", dirs), ("jpeg", jpegs)):
    n = len(files) if name == "all" else len(jpegs)
    et, us = [], []
    for _ in range(runs):
        et.append(wall(["exiftool", "-j", "-G1", "-a", "-n", "-r", "-q", "-q", "-m", *args]))
        us.append(wall([ours, "--json", *args]))
    e, u = min(et), min(us)
    print(f"{name:5} exiftool {e:7.3f} s = {n / e:7.0f} files/s | ours {u:6.3f} s = {n / u:7.0f} files/s | ratio {e / u:5.0f}x")
PY
