#!/usr/bin/env bash
# Daemon figures for BENCHMARKS.md (issue 6). Release builds; every figure printed with what it is.
#
#   bench/daemon.sh [webhook|idle|backlog|api|all] [FILES]
#
#   webhook  end-to-end files/s and p50/p99 latency from a Slack Events API webhook to the
#            write-back (a reaction) against the Slack emulator on loopback: the ignored test
#            host/cli/tests/bench_daemon.rs (the daemon in-process, real sockets).
#   idle     RSS of `proofpix serve` with every first-party plugin loaded and nothing to do:
#            first start (plugins compiled) and second start (compiled plugins from the cache).
#   backlog  RSS sampled from /proc every second while the daemon works through a backlog of
#            FILES (default 100000) generated photos in a local-folder integration.
#   api      requests/s of the list endpoints with wrk (installed with apt-get when missing),
#            against the daemon left with the backlog's results (needs `backlog` in the same run,
#            so `api` alone also runs `backlog` first).
#
# Uses CARGO_TARGET_DIR when set. Prints the load average next to each step: on a shared
# machine it explains most of the spread.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
files=${2:-100000}
target=${CARGO_TARGET_DIR:-$(pwd)/target}
bin=$target/release/proofpix
work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

load() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
mib() { awk -v v="$1" 'BEGIN {printf "%.1f", v / 1024}'; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
export PROOFPIX_HOME=$work/home

start_daemon() {
    # A development build signs its first-party plugins with its own key; the daemon loads
    # them only when told to trust it (a release build ignores this).
    PROOFPIX_TRUST_DEVELOPMENT_BUILD=1 PROOFPIX_LISTEN=127.0.0.1:$port "$bin" serve \
        > "$work/serve.out" 2> "$work/serve.err" &
    pid=$!
    for _ in $(seq 600); do
        curl -fs "$base/readyz" > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the daemon did not become ready:"; cat "$work/serve.err"; exit 1
}
stop_daemon() {
    kill -TERM "$pid"; wait "$pid" || true; pid=
}
api() { curl -fsS -H "Authorization: Bearer $token" "$@"; }

webhook() {
    echo "== webhook -> write-back (Slack emulator, loopback)"; load
    cargo test --release -q -p proofpix --test bench_daemon -- --ignored --nocapture 2>&1 \
        | grep -E '^\||^batches'
    load
}

build() {
    cargo build --release -q -p proofpix
}

idle() {
    echo "== idle daemon, every first-party plugin loaded"
    build
    for start in first second; do
        start_daemon
        if [ "$start" = first ]; then
            token=$(grep -o 'ppx_[A-Za-z0-9_-]*' "$work/serve.out" | head -1)
        fi
        sleep 10
        echo "$start start: plugins loaded $(api "$base/api/plugins" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'), RSS $(mib "$(kib "$pid" VmRSS)") MiB, peak RSS since start $(mib "$(kib "$pid" VmHWM)") MiB"
        stop_daemon
    done
    # For comparison: `proofpix demo` (daemon and the four emulators in one process) once its
    # first syncs are over.
    "$bin" demo --port 0 > "$work/demo.out" 2> "$work/demo.err" &
    pid=$!
    for _ in $(seq 600); do grep -q '^Ctrl-C' "$work/demo.out" 2>/dev/null && break; sleep 0.1; done
    local dbase dtoken
    dbase=$(awk '$1 == "Dashboard" {print $2}' "$work/demo.out" | sed 's#/$##')
    dtoken=$(grep -o 'ppx_[A-Za-z0-9_-]*' "$work/demo.out" | head -1)
    for _ in $(seq 600); do
        curl -fsS -H "Authorization: Bearer $dtoken" "$dbase/api/integrations" | python3 -c '
import json, sys
l = json.load(sys.stdin)
sys.exit(0 if all(i["last_batch"] and not i["syncing"] for i in l if i["id"] != "teams") else 1)' && break
        sleep 0.5
    done
    sleep 10
    echo "demo after its first syncs: RSS $(mib "$(kib "$pid" VmRSS)") MiB, peak RSS since start $(mib "$(kib "$pid" VmHWM)") MiB"
    stop_daemon
    load
}

backlog() {
    echo "== backlog of $files files (local-folder integration)"
    build
    cargo build --release -q -p proofpix-fixtures --example write_photo_set
    "$target/release/examples/write_photo_set" "$files" "$work/photos"
    echo "photos: $(du -sh "$work/photos" | cut -f1)"
    start_daemon
    if [ -z "${token:-}" ]; then token=$(grep -o 'ppx_[A-Za-z0-9_-]*' "$work/serve.out" | head -1); fi
    sleep 5
    echo "before: RSS $(mib "$(kib "$pid" VmRSS)") MiB"; load
    api -X POST -H 'content-type: application/json' "$base/api/integrations" -d "{
        \"id\": \"backlog\", \"plugin\": \"local-folder\",
        \"config\": {\"folder\": \"$work/photos\"}, \"grant\": {\"mounts\": [\"/input\"]}}" > /dev/null
    local t0; t0=$(date +%s.%N)
    api -X POST -H 'content-type: application/json' "$base/api/integrations/backlog/sync" -d '{}' > /dev/null
    echo "t_s,rss_kib,files_done,syncing" > "$work/rss.csv"
    while :; do
        sleep 1
        local state; state=$(api "$base/api/integrations/backlog")
        local done; done=$(api "$base/api/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["files_processed"])')
        local syncing; syncing=$(echo "$state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["syncing"])')
        echo "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.0f", a - b}'),$(kib "$pid" VmRSS),$done,$syncing" >> "$work/rss.csv"
        [ "$syncing" = False ] && break
    done
    local t1; t1=$(date +%s.%N)
    echo "$state" | python3 -c 'import json,sys; b = json.load(sys.stdin)["last_batch"]; print("batch: total", b["total"], "ok", b["ok"], "errors", b["errors"])'
    python3 - "$work/rss.csv" "$t0" "$t1" "$(kib "$pid" VmHWM)" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
wall = float(sys.argv[3]) - float(sys.argv[2])
done = int(rows[-1]["files_done"])
rss = [int(r["rss_kib"]) / 1024 for r in rows]
print(f"drained {done} files in {wall:.0f} s = {done / wall:.0f} files/s")
print(f"RSS while draining: min {min(rss):.1f} MiB, median {sorted(rss)[len(rss) // 2]:.1f} MiB, max {max(rss):.1f} MiB over {len(rss)} one-second samples; peak RSS of the process {int(sys.argv[4]) / 1024:.1f} MiB")
print("RSS by progress (files done: MiB):", ", ".join(
    f"{r['files_done']}: {int(r['rss_kib']) / 1024:.0f}" for r in rows[:: max(1, len(rows) // 10)]))
EOF
    load
}

apibench() {
    echo "== list endpoints under wrk (2 threads, 32 connections, 15 s each)"
    command -v wrk > /dev/null || apt-get install -y wrk > /dev/null
    for path in /api/integrations /api/plugins "/api/batches" "/api/integrations/backlog/files?limit=100" "/api/audit?limit=100" /api/stats /healthz; do
        load
        wrk -t2 -c32 -d15s --latency -H "Authorization: Bearer $token" "$base$path" \
            | awk -v p="$path" '/Requests\/sec/ {r = $2} /^ +50%/ {m = $2} /^ +99%/ {n = $2} /Non-2xx/ {e = $0} END {print p ": " r " requests/s, p50 " m ", p99 " n (e ? ", " e : "")}'
    done
}

case $what in
    webhook) webhook ;;
    idle) idle ;;
    backlog) backlog ;;
    api) backlog; apibench ;;
    all) webhook; idle; backlog; apibench ;;
    *) echo "usage: $0 [webhook|idle|backlog|api|all] [FILES]" >&2; exit 2 ;;
esac
