#!/usr/bin/env bash
# Benchmark: `prodtrace gcore` against gdb's `gcore` on the same live Node
# processes (about 30 MB and 200 MB of JS heap), interleaved, median of RUNS.
# For each dump it records:
#   pause  - the longest gap seen by a heartbeat thread inside the target
#            (wakes every 1 ms; see gcore_target.js): how long the target
#            was stopped, from its own point of view, the same way for both;
#   wall   - wall-clock time of the dumping command;
#   size   - apparent size of the core file, and disk usage (du).
# Usage: bench/gcore.sh [RUNS]   (root; PRODTRACE=path/to/prodtrace to
# override the binary, default target/release/prodtrace)
set -euo pipefail
RUNS=${1:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PRODTRACE=${PRODTRACE:-$REPO/target/release/prodtrace}
[ -x "$PRODTRACE" ] || { echo "no prodtrace binary at $PRODTRACE (cargo build --release)" >&2; exit 1; }
command -v gcore >/dev/null || { echo "gdb's gcore is not installed" >&2; exit 1; }
WORK=$(mktemp -d /tmp/gcore-bench.XXXXXX)
TARGET_PID=
cleanup() { [ -n "$TARGET_PID" ] && kill "$TARGET_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
RESULTS=$WORK/results.tsv
: > "$RESULTS"

now_ms() { date +%s%N | awk '{ printf "%.1f", $1 / 1e6 }'; }

# dump TOOL MB LOG: one dump of $TARGET_PID; appends a result line.
dump() {
  local tool=$1 mb=$2 log=$3 before t0 t1 core pause
  before=$(wc -l < "$log")
  t0=$(now_ms)
  if [ "$tool" = prodtrace ]; then
    core=$WORK/core.prodtrace
    "$PRODTRACE" gcore "$TARGET_PID" -o "$core" > /dev/null
  else
    "gcore" -o "$WORK/core.gdb" "$TARGET_PID" > /dev/null 2>&1
    core=$WORK/core.gdb.$TARGET_PID
  fi
  t1=$(now_ms)
  sleep 0.3 # let the heartbeat log the gap
  pause=$(tail -n +"$((before + 1))" "$log" | sort -n | tail -1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mb" "$tool" "${pause:-2}" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')" \
    "$(stat -c %s "$core")" "$(du -k "$core" | cut -f1)" >> "$RESULTS"
  rm -f "$core"
}

for mb in 30 200; do
  log=$WORK/heartbeat.$mb
  : > "$log"
  rm -f "$WORK/pid"
  node "$HERE/gcore_target.js" "$mb" "$log" > "$WORK/pid" &
  TARGET_PID=$!
  while [ ! -s "$WORK/pid" ]; do
    kill -0 "$TARGET_PID" 2>/dev/null || { echo "the node target died" >&2; exit 1; }
    sleep 0.1
  done
  [ "$(cat "$WORK/pid")" = "$TARGET_PID" ]
  rss=$(awk '/VmRSS/ { print $2 }' "/proc/$TARGET_PID/status")
  echo "node with ~$mb MB heap: PID $TARGET_PID, RSS $((rss / 1024)) MB" >&2
  sleep 1
  for run in $(seq "$RUNS"); do
    # Alternate which tool goes first.
    if [ $((run % 2)) = 1 ]; then order="prodtrace gdb"; else order="gdb prodtrace"; fi
    for tool in $order; do dump "$tool" "$mb" "$log"; done
  done
  kill "$TARGET_PID"; wait "$TARGET_PID" 2>/dev/null || true
  TARGET_PID=
done

# Medians per (heap, tool).
python3 - "$RESULTS" "$RUNS" <<'PY'
import sys, statistics
rows = [l.split('\t') for l in open(sys.argv[1]).read().split('\n') if l]
print(f"runs per cell: {sys.argv[2]} (medians; pause = longest heartbeat gap, 1 ms resolution, gaps under 2 ms are not logged)")
print()
print("| heap | tool | pause (ms) | wall (ms) | file size (MB) | disk use (MB) |")
print("|---|---|---:|---:|---:|---:|")
med = {}
for mb in ("30", "200"):
    for tool in ("prodtrace", "gdb"):
        r = [x for x in rows if x[0] == mb and x[1] == tool]
        m = [statistics.median(float(x[i]) for x in r) for i in (2, 3, 4, 5)]
        med[mb, tool] = m
        name = "prodtrace gcore" if tool == "prodtrace" else "gdb gcore"
        print(f"| ~{mb} MB | {name} | {m[0]:.1f} | {m[1]:.0f} | {m[2] / 1e6:.1f} | {m[3] / 1024:.1f} |")
print()
for mb in ("30", "200"):
    p, g = med[mb, "prodtrace"], med[mb, "gdb"]
    print(f"~{mb} MB heap: pause {g[0] / p[0]:.0f}x shorter, wall {g[1] / p[1]:.1f}x shorter, file {g[2] / p[2]:.1f}x smaller than gdb's gcore")
PY
