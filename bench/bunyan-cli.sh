#!/usr/bin/env bash
# bench/bunyan-cli.sh — throughput of `bunyan` log viewers on a 200,000-line
# log (realistic records written by the real bunyan npm logger: extra
# fields, nested objects, errors with stacks, req/res, multi-line
# messages), in long format and with `-l warn`:
#   ours        target/release/bunyan (this repository, crates/bunyan-cli)
#   node-bunyan examples/node/node_modules/bunyan/bin/bunyan (npm bunyan 1.8.15)
#   bunyan-rs   `cargo install --root /work/bench-tools bunyan` (crates.io bunyan 0.1.x)
# Every tool reads the log on stdin and writes to /dev/null. Runs are
# interleaved (round-robin over tools and cases, RUNS rounds) and the
# median wall time of each is reported, with lines/s = lines / median, and
# the median CPU time (user+sys, all threads), which a busy machine skews
# less than wall time.
#
# usage: bench/bunyan-cli.sh [RUNS]      (env: OURS, BUNYAN_RS, LOG, LINES)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-${RUNS:-7}}
LINES=${LINES:-200000}
OURS=${OURS:-$ROOT/target/release/bunyan}
BUNYAN_RS=${BUNYAN_RS:-/work/bench-tools/bin/bunyan}
NODE=${NODE:-/usr/bin/node}
NODE_BUNYAN="$ROOT/examples/node/node_modules/bunyan/bin/bunyan"
LOG=${LOG:-${TMPDIR:-/tmp}/bunyan-cli-bench-$LINES.log}

[ -x "$OURS" ] || { echo "bunyan-cli.sh: $OURS missing: cargo build --release -p bunyan-cli" >&2; exit 1; }
[ -x "$BUNYAN_RS" ] || { echo "bunyan-cli.sh: $BUNYAN_RS missing: cargo install --root /work/bench-tools bunyan" >&2; exit 1; }
[ -f "$NODE_BUNYAN" ] || { echo "bunyan-cli.sh: node-bunyan missing: (cd examples/node && npm ci)" >&2; exit 1; }

if [ ! -s "$LOG" ] || [ "$(wc -l < "$LOG")" -ne "$LINES" ]; then
    "$NODE" "$ROOT/crates/bunyan-cli/tests/gen-logs.js" "$LINES" 11 > "$LOG"
fi

# Sanity: our output must be byte-identical to node-bunyan's on this log.
# (Into files: node-bunyan's process.exit() can cut output short on a pipe.)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for args in "" "-l warn"; do
    # shellcheck disable=SC2086
    "$OURS" $args < "$LOG" > "$tmp/ours"
    # shellcheck disable=SC2086
    "$NODE" "$NODE_BUNYAN" $args < "$LOG" > "$tmp/node"
    if ! cmp -s "$tmp/ours" "$tmp/node"; then
        echo "bunyan-cli.sh: output differs from node-bunyan for '$args'" >&2
        exit 1
    fi
done

tools=(ours node-bunyan bunyan-rs)
cases=("long" "-l warn")
cmd_for() { # tool case
    local args=""
    [ "$2" = "long" ] || args="$2"
    case "$1" in
        ours) echo "$OURS $args" ;;
        node-bunyan) echo "$NODE $NODE_BUNYAN $args" ;;
        bunyan-rs) echo "$BUNYAN_RS $args" ;;
    esac
}

declare -A times cpus
TIMEFORMAT='%3R %3U %3S'
for ((r = 0; r < RUNS; r++)); do
    for ((k = 0; k < ${#tools[@]}; k++)); do
        tool=${tools[$(((k + r) % ${#tools[@]}))]}  # rotate the order each round
        for c in "${cases[@]}"; do
            cmd=$(cmd_for "$tool" "$c")
            { time $cmd < "$LOG" > /dev/null 2>&1; } 2> "$tmp/time"
            read -r real user sys < "$tmp/time"
            times["$tool|$c"]+="$(awk -v t="$real" 'BEGIN {printf "%d", t * 1e6}') "
            cpus["$tool|$c"]+="$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%d", (u + s) * 1e3}') "
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "log: $LOG ($LINES lines, $(du -h "$LOG" | cut -f1)), $RUNS interleaved runs, medians;" \
    "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| case | tool | wall ms | lines/s | vs node-bunyan | vs bunyan-rs | CPU ms |"
echo "|---|---|---:|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
    nb=$(echo "${times["node-bunyan|$c"]}" | median)
    rs=$(echo "${times["bunyan-rs|$c"]}" | median)
    for tool in "${tools[@]}"; do
        m=$(echo "${times["$tool|$c"]}" | median)
        cpu=$(echo "${cpus["$tool|$c"]}" | median)
        awk -v c="$c" -v t="$tool" -v m="$m" -v nb="$nb" -v rs="$rs" -v n="$LINES" -v cpu="$cpu" 'BEGIN {
            printf "| %s | %s | %.0f | %.0f | %.1fx | %.1fx | %.0f |\n", c, t, m / 1000, n / (m / 1e6), nb / m, rs / m, cpu }'
    done
done
