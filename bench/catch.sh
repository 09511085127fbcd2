#!/usr/bin/env bash
# bench/catch.sh — costs of `prodtrace catch`, measured side by side.
#
# 1. Overhead on a syscall-heavy workload while a catch probe is attached
#    but does not match: dd copying 1-byte blocks (2 syscalls per byte),
#    timed with no probe and with three probe configurations, interleaved
#    round by round; medians and the cost per syscall are printed.
#      pid-miss  : -p <another process>   (rejected on the first test: tgid)
#      ret-miss  : --syscall write --errno EBADF --comm dd (rejected on ret)
#      comm-miss : --syscall write --ret '>=' 0 --comm nomatch (ret and
#                  syscall number pass, rejected on the comm compare: the
#                  longest path of a non-matching syscall)
# 2. How long --core holds a process stopped (catch → group-stop → core
#    written → SIGCONT), for the C example and for node, as prodtrace reports.
#
# usage: bench/catch.sh [ROUNDS]   (root; builds prodtrace in target-bench-catch)
set -euo pipefail
ROUNDS=${1:-7}
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-bench-catch}
cargo build --release -q -p prodtrace
PT=$CARGO_TARGET_DIR/release/prodtrace
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
BYTES=300000

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }

# Runs dd once; prints elapsed milliseconds.
run_dd() {
  local t0 t1
  t0=$(date +%s%N)
  dd if=/dev/zero of=/dev/null bs=1 count=$BYTES status=none
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 ))e-3 | awk '{printf "%.1f\n", $1}'
}

# Starts prodtrace catch with the given arguments, waits until attached.
start_probe() {
  "$PT" catch --count 0 "$@" >/dev/null 2>"$WORK/probe.err" &
  PROBE=$!
  for _ in $(seq 200); do grep -q catching "$WORK/probe.err" 2>/dev/null && return; sleep 0.02; done
  echo "probe did not start: $(cat "$WORK/probe.err")" >&2; exit 1
}
stop_probe() { kill -INT "$PROBE"; wait "$PROBE" || true; }

sleep 600 & OTHER=$!
trap 'kill $OTHER 2>/dev/null; rm -rf "$WORK"' EXIT

declare -A T
for r in $(seq "$ROUNDS"); do
  for cfg in none pid-miss ret-miss comm-miss; do
    case $cfg in
      none) ms=$(run_dd) ;;
      pid-miss) start_probe --syscall write --errno EBADF -p "$OTHER"; ms=$(run_dd); stop_probe ;;
      ret-miss) start_probe --syscall write --errno EBADF --comm dd; ms=$(run_dd); stop_probe ;;
      comm-miss) start_probe --syscall write --ret '>=' 0 --comm nomatch; ms=$(run_dd); stop_probe ;;
    esac
    T[$cfg]+="$ms "
  done
done

echo "## Probe overhead: dd bs=1 count=$BYTES ($((2 * BYTES)) syscalls), $ROUNDS interleaved rounds"
echo
echo "| probe | median ms | per syscall vs none |"
echo "|---|---:|---:|"
base=$(tr ' ' '\n' <<<"${T[none]}" | grep . | median)
for cfg in none pid-miss ret-miss comm-miss; do
  m=$(tr ' ' '\n' <<<"${T[$cfg]}" | grep . | median)
  per=$(awk -v m="$m" -v b="$base" -v n=$((2 * BYTES)) 'BEGIN {printf "%+.0f ns", (m - b) * 1e6 / n}')
  echo "| $cfg | $m | $per |"
done

# 2. Pause of --core.
cc -O2 -g -o "$WORK/badclose" examples/c/badclose.c
mkdir -p "$WORK/cores"
declare -A P W S
for r in $(seq "$ROUNDS"); do
  for target in c node; do
    rm -f "$WORK"/cores/*
    if [ $target = c ]; then
      out=$("$PT" catch --syscall close --errno EBADF --core "$WORK/cores" -w -- "$WORK/badclose" "$WORK/m" 2>/dev/null)
    else
      out=$("$PT" catch --comm node --syscall close --errno EBADF --core "$WORK/cores" -w -- /usr/bin/node examples/node/badclose.js 2>/dev/null)
    fi
    P[$target]+="$(grep -o 'after [0-9.]* ms' <<<"$out" | awk '{print $2}') "
    W[$target]+="$(grep -o 'written in [0-9.]* ms' <<<"$out" | awk '{print $3}') "
    S[$target]=$(grep -o '([0-9.]* MB, [0-9]* threads\?' <<<"$out" | tr -d '(')
  done
done
echo
echo "## Pause of --core: catch -> stopped -> core written -> SIGCONT ($ROUNDS rounds, interleaved)"
echo
echo "| target | core | median pause ms | median core write ms |"
echo "|---|---|---:|---:|"
for target in c node; do
  p=$(tr ' ' '\n' <<<"${P[$target]}" | grep . | median)
  w=$(tr ' ' '\n' <<<"${W[$target]}" | grep . | median)
  echo "| $target | ${S[$target]:-?} | $p | $w |"
done
