#!/usr/bin/env bash
# Benchmark: `prodtrace jsstack` against llnode's `v8 bt` (npm llnode 4.0.0,
# an lldb plugin), on node 20 (/usr/bin/node) with about 200 MB of live JS
# heap (bench/jsstack_target.js: main thread blocked 14 JavaScript frames
# deep, a heartbeat worker thread).
#
#   core  - wall time to print the stacks of the target's core (written by
#           `prodtrace gcore`): `prodtrace jsstack --core CORE` vs
#           `lldb --batch -c CORE node -o 'plugin load llnode.so' -o 'v8 bt'`,
#           interleaved (the order alternates every run), RUNS runs, medians;
#   pause - how long `prodtrace jsstack PID` stops the live target, measured
#           two ways: inside the target (the heartbeat thread wakes every
#           1 ms and logs every gap over 1.5 ms; the pause of a run is the
#           longest gap logged while it ran; the same measure with no tool
#           running gives the floor) and by the tool itself (freeze to thaw,
#           the "paused" of its header line); LIVE_LLNODE runs (default 3)
#           of llnode attached to the live process (`lldb -p PID`) alongside;
#   names - the JavaScript frames of the main thread, prodtrace's (inlined
#           functions left out, as llnode does not show them) vs llnode's.
#
# Installs what llnode needs for this script only (apt: lldb, liblldb-14-dev,
# python3-lldb-14; npm: llnode@4.0.0 into the cache), never in setup.sh.
# Usage: bench/jsstack.sh [RUNS] [LIVE_RUNS]   (root; PRODTRACE= overrides
# the binary, default target/release/prodtrace)
set -euo pipefail
RUNS=${1:-7}
LIVE_RUNS=${2:-15}
LIVE_LLNODE=${LIVE_LLNODE:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PRODTRACE=${PRODTRACE:-$REPO/target/release/prodtrace}
NODE=/usr/bin/node
CACHE=${PRODTRACE_CACHE:-/var/cache/prodtrace}
[ -x "$PRODTRACE" ] || { echo "no prodtrace binary at $PRODTRACE (cargo build --release)" >&2; exit 1; }
log() { printf 'bench: %s\n' "$*" >&2; }

# llnode: Debian's lldb and headers, then the npm package (its install
# script builds the plugin with node-gyp).
missing=()
for p in lldb liblldb-14-dev python3-lldb-14; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]} (for llnode)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
LLNODE=$CACHE/llnode/node_modules/llnode/llnode.so
if [ ! -f "$LLNODE" ]; then
  log "installing llnode@4.0.0 into $CACHE/llnode (builds its lldb plugin)"
  npm_log=$(mktemp /tmp/llnode-npm.XXXXXX)
  npm install --prefix "$CACHE/llnode" --no-audit --no-fund --foreground-scripts llnode@4.0.0 > "$npm_log" 2>&1 || true
  [ -f "$LLNODE" ] || { cat "$npm_log" >&2; echo "llnode's plugin was not built" >&2; exit 1; }
  rm -f "$npm_log"
fi
llnode_bt() { # llnode_bt ARGS...: v8 bt of a core (-c CORE) or a process (-p PID)
  lldb --batch -o "plugin load $LLNODE" -o "v8 bt" "$@" 2>&1
}

WORK=$(mktemp -d /tmp/jsstack-bench.XXXXXX)
TARGET_PID=
cleanup() { [ -n "$TARGET_PID" ] && kill "$TARGET_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
now_ms() { date +%s%N | awk '{ printf "%.1f", $1 / 1e6 }'; }
longest_gap_since() { tail -n +"$(($1 + 1))" "$HB" | sort -n | tail -1; }

HB=$WORK/heartbeat
: > "$HB"
"$NODE" "$HERE/jsstack_target.js" 200 "$HB" > "$WORK/pid" &
TARGET_PID=$!
while [ ! -s "$WORK/pid" ]; do
  kill -0 "$TARGET_PID" 2>/dev/null || { echo "the node target died" >&2; exit 1; }
  sleep 0.1
done
sleep 1
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$TARGET_PID/status")
log "node $("$NODE" --version) with ~200 MB of heap: PID $TARGET_PID, RSS $((rss / 1024)) MB; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Pause of the live target.
PAUSES=$WORK/pauses.tsv
: > "$PAUSES"
for run in $(seq "$LIVE_RUNS"); do
  # The floor: the longest gap in a window as long as a run, no tool.
  before=$(wc -l < "$HB"); sleep 0.3
  printf 'none\t%s\t\n' "$(longest_gap_since "$before")" >> "$PAUSES"
  before=$(wc -l < "$HB")
  own=$("$PRODTRACE" jsstack "$TARGET_PID" | head -1 | sed -n 's/.*paused \([0-9.]*\) ms.*/\1/p')
  sleep 0.3
  printf 'prodtrace\t%s\t%s\n' "$(longest_gap_since "$before")" "$own" >> "$PAUSES"
done
for run in $(seq "$LIVE_LLNODE"); do
  before=$(wc -l < "$HB")
  t0=$(now_ms)
  llnode_bt -p "$TARGET_PID" > "$WORK/llnode-live.txt"
  t1=$(now_ms)
  sleep 0.3
  printf 'llnode\t%s\t\t%s\n' "$(longest_gap_since "$before")" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')" >> "$PAUSES"
done

# 2. A core of it, and the time to print its stacks.
CORE=$WORK/core
"$PRODTRACE" gcore "$TARGET_PID" -o "$CORE" > /dev/null
kill "$TARGET_PID"; wait "$TARGET_PID" 2>/dev/null || true
TARGET_PID=
log "core: $(($(stat -c %s "$CORE") / 1048576)) MB"
TIMES=$WORK/times.tsv
: > "$TIMES"
time_one() {
  local tool=$1 t0 t1
  t0=$(now_ms)
  if [ "$tool" = prodtrace ]; then
    "$PRODTRACE" jsstack --core "$CORE" > "$WORK/out.$tool"
  else
    llnode_bt -c "$CORE" "$NODE" > "$WORK/out.$tool"
  fi
  t1=$(now_ms)
  printf '%s\t%s\n' "$tool" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')" >> "$TIMES"
}
for run in $(seq "$RUNS"); do
  if [ $((run % 2)) = 1 ]; then order="prodtrace llnode"; else order="llnode prodtrace"; fi
  for tool in $order; do time_one "$tool"; done
done
"$PRODTRACE" jsstack --core "$CORE" --json > "$WORK/ours.json"

python3 - "$PAUSES" "$TIMES" "$WORK/ours.json" "$WORK/out.llnode" "$RUNS" "$LIVE_RUNS" <<'PY'
import json, re, statistics, sys
pauses_f, times_f, ours_f, llnode_f, runs, live_runs = sys.argv[1:]
med = statistics.median
rows = [l.rstrip('\n').split('\t') for l in open(pauses_f) if l.strip()]
gap = lambda tool: [float(r[1] or 0) for r in rows if r[0] == tool]
print(f"## Pause of the live target ({live_runs} runs of prodtrace, medians)")
print()
print("| tool | longest heartbeat gap, median (max) | tool's own freeze-to-thaw, median (max) | wall |")
print("|---|---:|---:|---:|")
floor = gap("none")
print(f"| none (floor: a window as long as a run) | {med(floor):.1f} ms ({max(floor):.1f}) | | |")
own = [float(r[2]) for r in rows if r[0] == "prodtrace" and r[2]]
print(f"| prodtrace jsstack PID | {med(gap('prodtrace')):.1f} ms ({max(gap('prodtrace')):.1f}) | {med(own):.1f} ms ({max(own):.1f}) | |")
ll = [r for r in rows if r[0] == "llnode"]
if ll:
    print(f"| llnode (lldb -p PID, v8 bt; {len(ll)} runs) | {med(gap('llnode')):.0f} ms | | {med(float(r[3]) for r in ll):.0f} ms |")
print("(gaps under 1.5 ms are not logged: 0 means no gap over 1.5 ms)")
print()
t = [l.split() for l in open(times_f) if l.strip()]
p = [float(x[1]) for x in t if x[0] == "prodtrace"]
l = [float(x[1]) for x in t if x[0] == "llnode"]
print(f"## Stacks of the core ({runs} interleaved runs each, medians)")
print()
print("| tool | wall, median | min | max |")
print("|---|---:|---:|---:|")
print(f"| prodtrace jsstack --core | {med(p):.0f} ms | {min(p):.0f} | {max(p):.0f} |")
print(f"| llnode v8 bt | {med(l):.0f} ms | {min(l):.0f} | {max(l):.0f} |")
print(f"prodtrace {med(l) / med(p):.0f}x faster")
print()
doc = json.load(open(ours_f))
main = next(t for t in doc["threads"] if t["main"])
ours = [f["function"] for f in main["frames"] if f["kind"] == "js" and not f["inlined"]]
inlined = [f["function"] for f in main["frames"] if f["kind"] == "js" and f["inlined"]]
theirs = []
for line in open(llnode_f):
    if "* thread #" in line and theirs:
        break  # the main thread is the first
    m = re.match(r"\s*\*?\s*frame #\d+: 0x[0-9a-f]+ (.*?)\(this=.* fn=0x", line)
    if m:
        theirs.append(m.group(1))
print("## JavaScript frames of the main thread (names)")
print()
print("| # | prodtrace | llnode |")
print("|---:|---|---|")
for i in range(max(len(ours), len(theirs))):
    a = ours[i] if i < len(ours) else "(none)"
    b = theirs[i] if i < len(theirs) else "(none)"
    print(f"| {i} | {a or '<anonymous>'} | {b or '<anonymous>'}{'' if a == b else ' (differs)'} |")
print()
print("prodtrace also shows the functions inlined into these:", ", ".join(n or "<anonymous>" for n in inlined) or "none")
same = sum(a == b for a, b in zip(ours, theirs))
print(f"same name at the same place: {same} of {len(theirs)} llnode frames")
PY
