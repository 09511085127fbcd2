#!/usr/bin/env bash
# bench/log-suppressed.sh — benchmark 6(a) of the bunyan issue: the cost of
# one debug call under an info-level logger, for bunyan-log (macro, through
# its tracing layer, through its log backend), tracing (fmt subscriber at
# INFO) and slog (LevelFilter at Info), plus bunyan-log while a snooper has
# the bunyan:log-debug probe enabled (the record is then built, the probe
# fires and the record is copied to the snooper).
#
# Runs every mode RUNS times (default 7), interleaved (mode order rotates each
# round), and prints the median ns/call per mode as a Markdown table.
# Needs root for the snooped mode (eBPF).  Usage: bench/log-suppressed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
RUNS=${RUNS:-7}
cargo build --release -q -p bunyan-log --example suppressed -p bunyan-snoop
BENCH=$T/release/examples/suppressed
SNOOP=$T/release/bunyan-snoop
MODES=(baseline bunyan tracing slog bunyan-tracing bunyan-log bunyan-written bunyan-snooped)
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

run_mode() {
    if [ "$1" = bunyan-snooped ]; then
        "$BENCH" bunyan-snooped >>"$OUT" &
        local pid=$!
        sleep 0.2
        "$SNOOP" "$pid" >/dev/null 2>&1   # ends when the benchmark exits
        wait "$pid"
    else
        "$BENCH" "$1" >>"$OUT"
    fi
}

for ((r = 0; r < RUNS; r++)); do
    n=${#MODES[@]}
    for ((i = 0; i < n; i++)); do
        run_mode "${MODES[$(((i + r) % n))]}"
    done
done

python3 - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["mode"], []).append(r["ns_per_call"])
what = {
    "baseline": "empty measuring loop (reference)",
    "bunyan": "bunyan-log `debug!` (info logger), no snooper",
    "tracing": "tracing `debug!`, fmt subscriber at INFO",
    "slog": "slog `debug!`, LevelFilter Info (run-time filter)",
    "bunyan-tracing": "tracing `debug!` through bunyan-log's BunyanLayer, no snooper",
    "bunyan-log": "log `debug!` through bunyan-log's LogBackend, no snooper",
    "bunyan-written": "bunyan-log `debug!` NOT suppressed (debug logger, io::sink)",
    "bunyan-snooped": "bunyan-log `debug!` (info logger), snooper attached: record delivered",
}
print(f"| mode | what | median ns/call | min | max | runs |")
print(f"|---|---|---:|---:|---:|---:|")
for m in ["baseline", "bunyan", "tracing", "slog", "bunyan-tracing", "bunyan-log", "bunyan-written", "bunyan-snooped"]:
    v = by.get(m, [])
    if v:
        print(f"| {m} | {what[m]} | {statistics.median(v):.2f} | {min(v):.2f} | {max(v):.2f} | {len(v)} |")
PY
