#!/usr/bin/env bash
# latency.sh — overhead of `prodtrace latency` on the sqlite demo.
#
# Runs examples/node/sqlite-demo.js for DURATION seconds (default 2) in
# these setups, interleaved, ROUNDS times each (default 7), under two
# machine conditions (vCPUs left to idle, and kept awake, see below):
#   untraced   node sqlite-demo.js
#   prodtrace  prodtrace latency -- node sqlite-demo.js (the path this
#              kernel gets: uprobe_multi links from Linux 6.6)
#   classic    the same on the fallback path of older kernels
#              (PRODTRACE_UPROBES=classic: classic uprobes bound to the PID)
#   classic-system  the other classic variant (PRODTRACE_UPROBES=classic-system:
#              system-wide uprobes filtered by PID in BPF)
#   breakdown  prodtrace latency --breakdown -- node sqlite-demo.js
#   breakdown-classic  the same, PRODTRACE_UPROBES=classic
#   bare-probes  the same two probes as `prodtrace`, with BPF programs that
#              return at once (--bench-bare-probes): what the traps cost
#   bpftrace   bpftrace bench/trace-addon-latency.bt -c "node sqlite-demo.js"
#              (the original DTrace articles' D script ported to bpftrace,
#              same two probes)
# and reports the demo's own throughput (iterations/s, printed by the demo,
# excluding node's start-up), the median per setup, the ratio traced /
# untraced, and the cost per operation (17 thread-pool operations per
# iteration).  Then measures the cost of one uprobe hit on instructions the
# kernel emulates (push, nop) versus ones it single-steps (mov, endbr64),
# with bpftrace on a small C loop, the run time of each BPF program per
# hit (kernel.bpf_stats_enabled, read with bpftool), and what each attach
# path costs *another* process of the same binary: a second, untraced demo
# run while prodtrace traces a first one (-p) with each path ("bystander").
#
# Writes bench/latency.md (OUT=... to change) and prints it.  Needs root,
# bpftrace, cc, and scripts/setup.sh done (sqlite3 add-on built, prodtrace
# built; PRODTRACE=... to use another binary).
# Usage: bench/latency.sh [ROUNDS [DURATION]]      (defaults: 7 rounds of 2 s)
# MODES="untraced prodtrace ..." runs a subset of the setups.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds=${1:-7}
duration=${2:-2}
out=${OUT:-bench/latency.md}
case $out in /*) out_path=$out ;; *) out_path=$root/$out ;; esac
prodtrace=${PRODTRACE:-$root/target/release/prodtrace}
[ -x "$prodtrace" ] || { echo "latency.sh: no prodtrace at $prodtrace; run scripts/setup.sh" >&2; exit 1; }
work=$(mktemp -d)
spinners=()
stop_spinners() {
    ((${#spinners[@]})) && kill "${spinners[@]}" 2>/dev/null
    spinners=()
}
cleanup() {
    stop_spinners
    rm -rf "$work"
}
trap cleanup EXIT
# This machine is a VM whose idle vCPUs halt; waking one costs tens of µs,
# which weighs heavily on a ping-pong workload like the demo (event loop <->
# worker) and varies with whatever else runs.  The "awake" condition runs
# SCHED_IDLE spinners that keep every vCPU busy without taking CPU from
# anything else: the demo then runs about twice as fast, so the same probe
# cost is a larger fraction of it.
start_spinners() {
    for ((c = 0; c < $(nproc); c++)); do
        taskset -c "$c" chrt -i 0 sh -c 'while :; do :; done' &
        spinners+=($!)
    done
}
export SQLITE_DEMO_DURATION=$duration
cd "$root/examples/node"

# The demo prints {"sqlite_demo":{...,"iterations_per_sec":X,...,"cpu_us_per_iteration":Y}}:
# keep "X Y".
rate() {
    grep '"sqlite_demo"' | tail -1 | sed -E 's/.*"iterations_per_sec":([0-9.]+).*"cpu_us_per_iteration":([0-9.]+).*/\1 \2/'
}

run_mode() {
    case $1 in
    untraced) node sqlite-demo.js | rate ;;
    prodtrace) "$prodtrace" latency -- node sqlite-demo.js 2>/dev/null | rate ;;
    classic) PRODTRACE_UPROBES=classic "$prodtrace" latency -- node sqlite-demo.js 2>/dev/null | rate ;;
    classic-system) PRODTRACE_UPROBES=classic-system "$prodtrace" latency -- node sqlite-demo.js 2>/dev/null | rate ;;
    breakdown) "$prodtrace" latency --breakdown -- node sqlite-demo.js 2>/dev/null | rate ;;
    breakdown-classic) PRODTRACE_UPROBES=classic "$prodtrace" latency --breakdown -- node sqlite-demo.js 2>/dev/null | rate ;;
    bare-probes) "$prodtrace" latency --bench-bare-probes -- node sqlite-demo.js 2>/dev/null | rate ;;
    bpftrace) bpftrace "$root/bench/trace-addon-latency.bt" -c "/usr/bin/node sqlite-demo.js" 2>/dev/null | rate ;;
    esac
}

read -r -a modes <<<"${MODES:-untraced prodtrace classic classic-system breakdown breakdown-classic bare-probes bpftrace}"
conditions=(idle awake)
for cond in "${conditions[@]}"; do
    [ "$cond" = awake ] && start_spinners
    for ((r = 1; r <= rounds; r++)); do
        for m in "${modes[@]}"; do
            v=$(run_mode "$m")
            [ -n "$v" ] || { echo "latency.sh: $m run produced no throughput" >&2; exit 1; }
            echo "${v% *}" >>"$work/$cond.$m"
            echo "${v#* }" >>"$work/$cond.$m.cpu"
            printf '%s vCPUs, round %d/%d  %-9s %s iterations/s, %s µs CPU per iteration\n' \
                "$cond" "$r" "$rounds" "$m" "${v% *}" "${v#* }" >&2
        done
    done
    stop_spinners
done

median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
lowest() { sort -g "$1" | head -1; }
highest() { sort -g "$1" | tail -1; }

# Cost of one uprobe hit by instruction kind: a C loop calling a function
# whose first instruction is the one probed, with and without a bpftrace
# probe on it (interleaved, median of 3).
cat >"$work/fns.S" <<'EOF'
.text
.globl f_push
.type f_push,@function
f_push: push %rbp
pop %rbp
ret
.size f_push, .-f_push
.globl f_nop5
.type f_nop5,@function
f_nop5: .byte 0x0f,0x1f,0x44,0x00,0x00
ret
.size f_nop5, .-f_nop5
.globl f_mov
.type f_mov,@function
f_mov: mov (%rdi),%rax
ret
.size f_mov, .-f_mov
.globl f_endbr
.type f_endbr,@function
f_endbr: endbr64
ret
.size f_endbr, .-f_endbr
.section .note.GNU-stack,"",@progbits
EOF
cat >"$work/hits.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
long f_push(long *), f_nop5(long *), f_mov(long *), f_endbr(long *);
int main(int argc, char **argv) {
    long x = 1, n = atol(argv[2]);
    long (*f)(long *) = !strcmp(argv[1], "f_push") ? f_push : !strcmp(argv[1], "f_nop5") ? f_nop5
                      : !strcmp(argv[1], "f_mov") ? f_mov : f_endbr;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) f(&x);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1000.0);
    return 0;
}
EOF
cc -O1 -no-pie -o "$work/hits" "$work/hits.c" "$work/fns.S"
hit_cost() { # function -> µs per hit (probed minus unprobed)
    local f=$1 i
    for i in 1 2 3; do
        "$work/hits" "$f" 200000 >>"$work/hit-plain-$f"
        bpftrace -e "uprobe:$work/hits:$f { @n = count(); }" >/dev/null 2>&1 &
        local bt=$!
        sleep 3
        "$work/hits" "$f" 200000 >>"$work/hit-probed-$f"
        kill -INT "$bt"
        wait "$bt" || true
    done
    awk -v p="$(median "$work/hit-probed-$f")" -v q="$(median "$work/hit-plain-$f")" 'BEGIN {printf "%.2f", p - q}'
}
hits=""
for f in f_push f_nop5 f_mov f_endbr; do
    c=$(hit_cost "$f")
    echo "hit cost $f: $c us" >&2
    hits+="$f $c"$'\n'
done

# Run time of each BPF program per hit: kernel.bpf_stats_enabled on, the
# demo traced with --breakdown for a few seconds, bpftool's run_time_ns /
# run_cnt of the programs this run loaded.
prog_stats() {
    local was pt
    was=$(sysctl -n kernel.bpf_stats_enabled)
    sysctl -qw kernel.bpf_stats_enabled=1
    SQLITE_DEMO_DURATION=6 "$prodtrace" latency --breakdown -- node sqlite-demo.js >/dev/null 2>&1 &
    pt=$!
    sleep 5
    bpftool -j prog show | python3 -c '
import json, sys
latest = {}
for p in json.load(sys.stdin):
    if p.get("name") in ("submit", "done", "run_start", "run_end") and p.get("run_cnt"):
        if p["id"] > latest.get(p["name"], {"id": -1})["id"]:
            latest[p["name"]] = p
for n in ("submit", "done", "run_start", "run_end"):
    if n in latest:
        print(n, latest[n]["run_cnt"], "%.0f" % (latest[n]["run_time_ns"] / latest[n]["run_cnt"]))
'
    wait "$pt" || true
    sysctl -qw kernel.bpf_stats_enabled="$was"
}
stats=$(prog_stats)
echo "BPF program costs: $stats" >&2

# What tracing one process costs another process running the same binary:
# an idle node process (a timer, no thread-pool work) is traced with -p on
# each attach path (or not at all), while a demo, untraced, is measured.
# System-wide uprobes trap in the demo too; uprobe_multi links and
# PID-bound uprobes do not.  Besides the demo's throughput and CPU, the
# runs of the tracer's BPF programs (kernel.bpf_stats_enabled; the traced
# process does no thread-pool work, so every run is a trap in another
# process) count those traps exactly.
bystander() { # path -> "it/s cpu runs" of the untraced demo
    local path=$1 target tracer= runs=0
    node -e 'setInterval(() => {}, 1000)' &
    target=$!
    sleep 1
    # This tracer's programs: the ones loaded after this point.
    local first_id
    first_id=$(bpftool -j prog show | python3 -c 'import json, sys; print(max([p["id"] for p in json.load(sys.stdin)] + [0]) + 1)')
    if [ "$path" != none ]; then
        PRODTRACE_UPROBES=$path "$prodtrace" latency -p "$target" >/dev/null 2>"$work/bystander.err" &
        tracer=$!
        for _ in $(seq 300); do grep -q Tracing "$work/bystander.err" && break; sleep 0.1; done
    fi
    local v
    v=$(node sqlite-demo.js | rate)
    if [ -n "$tracer" ]; then
        runs=$(bpftool -j prog show | python3 -c '
import json, sys
print(sum(p.get("run_cnt", 0) for p in json.load(sys.stdin)
          if p.get("name") in ("submit", "done", "submit_internal") and p["id"] >= '"$first_id"'))')
        kill -INT "$tracer"
        wait "$tracer" || true
    fi
    kill "$target"
    wait "$target" 2>/dev/null || true
    echo "$v $runs"
}
bystander_paths=(none multi classic-pid classic-system)
was_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
for ((r = 1; r <= rounds; r++)); do
    for p in "${bystander_paths[@]}"; do
        v=$(bystander "$p")
        read -r it cpu runs <<<"$v"
        [ -n "$cpu" ] || { echo "latency.sh: bystander $p produced no throughput" >&2; exit 1; }
        echo "$it" >>"$work/bystander.$p"
        echo "$cpu" >>"$work/bystander.$p.cpu"
        echo "$runs" >>"$work/bystander.$p.runs"
        printf 'bystander round %d/%d  %-14s %s iterations/s, %s µs CPU per iteration, %s BPF runs\n' \
            "$r" "$rounds" "$p" "$it" "$cpu" "$runs" >&2
    done
done
sysctl -qw kernel.bpf_stats_enabled="$was_stats"

{
    echo "# prodtrace latency: overhead benchmark"
    echo
    echo "Generated by \`bench/latency.sh $rounds $duration\` on $(date -u +%Y-%m-%d) ($(nproc) CPUs, kernel $(uname -r), node $(node --version))."
    echo "Reproduce: \`sudo bench/latency.sh $rounds $duration\` (after \`scripts/setup.sh\`)."
    echo
    echo "## examples/node/sqlite-demo.js, untraced and traced"
    echo
    echo "$rounds rounds of ${duration} s per setup, setups interleaved; medians and best runs (highest"
    echo "throughput, lowest CPU: the least disturbed by other jobs on this shared machine). Each iteration of the demo"
    echo "is 17 operations on libuv's thread pool. Two measures, both printed by the demo itself:"
    echo
    echo "- **throughput**: iterations per second (wall clock, node start-up excluded);"
    echo "- **CPU per iteration**: CPU time of the whole node process (all threads, user + kernel, which"
    echo "  includes the uprobe traps and BPF programs run on the target's behalf) per iteration."
    echo
    echo "Two conditions: **idle vCPUs** (the machine as it is: this VM's idle vCPUs halt, and waking"
    echo "them dominates the demo's event-loop/worker ping-pong) and **awake vCPUs** (SCHED_IDLE spinners"
    echo "keep every vCPU busy without taking CPU from anyone; the demo runs about twice as fast, so the"
    echo "same probe cost weighs twice as much). The machine is shared with other jobs: single runs vary"
    echo "by a factor of two, so read the best runs' CPU cost per operation rather than the medians."
    echo "docs/latency.md (Overhead) has a calmer measurement of the same costs."
    for cond in "${conditions[@]}"; do
        base=$(median "$work/$cond.untraced")
        base_best=$(highest "$work/$cond.untraced")
        base_cpu=$(median "$work/$cond.untraced.cpu")
        base_cpu_best=$(lowest "$work/$cond.untraced.cpu")
        echo
        echo "### $cond vCPUs"
        echo
        echo "| setup | throughput (it/s), median | traced / untraced | best run | traced / untraced | CPU per iteration, median | best run | added CPU per operation (best runs) |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        for m in "${modes[@]}"; do
            awk -v m="$m" -v med="$(median "$work/$cond.$m")" -v best="$(highest "$work/$cond.$m")" \
                -v cpu="$(median "$work/$cond.$m.cpu")" -v cpub="$(lowest "$work/$cond.$m.cpu")" \
                -v base="$base" -v bbest="$base_best" -v bcpu="$base_cpu" -v bcpub="$base_cpu_best" 'BEGIN {
                if (m == "untraced") printf "| %s | %.0f | 1.00 | %.0f | 1.00 | %.1f µs | %.1f µs | - |\n", m, med, best, cpu, cpub
                else printf "| %s | %.0f | %.3f | %.0f | %.3f | %.1f µs | %.1f µs | %.2f µs |\n", m, med, med / base, best, best / bbest, cpu, cpub, (cpub - bcpub) / 17
            }'
        done
        echo
        echo "All runs (throughput it/s; CPU µs per iteration):"
        echo
        for m in "${modes[@]}"; do
            echo "- $m: $(tr '\n' ' ' <"$work/$cond.$m"); $(tr '\n' ' ' <"$work/$cond.$m.cpu")"
        done
    done
    echo
    echo "- untraced: \`node sqlite-demo.js\`"
    echo "- prodtrace: \`prodtrace latency -- node sqlite-demo.js\` (two uprobes per operation, both on"
    echo "  instructions the kernel emulates: \`push %rbp\` at uv_queue_work, a \`je\` in uv__queue_done;"
    echo "  the path this kernel gets: $(PRODTRACE_UPROBES= "$prodtrace" doctor | sed -n 's/^latency *runs: //p'))"
    echo "- classic: the same with \`PRODTRACE_UPROBES=classic\`, the path of kernels without uprobe_multi"
    echo "  links (before 6.6): classic uprobes, perf events bound to the PID, with BPF cookies"
    echo "- classic-system: \`PRODTRACE_UPROBES=classic-system\`, the other classic variant: system-wide"
    echo "  uprobes (perf events with no PID), filtered by PID in the BPF programs"
    echo "- breakdown-classic: \`--breakdown\` with \`PRODTRACE_UPROBES=classic\`"
    echo "- breakdown: \`prodtrace latency --breakdown -- node sqlite-demo.js\` (two more probes per"
    echo "  operation, on the worker thread: the emulated calls around \`w->work(w)\` in libuv's worker loop)"
    echo "- bare-probes: \`prodtrace latency --bench-bare-probes -- node sqlite-demo.js\` (the same two"
    echo "  probes as prodtrace, with BPF programs that return at once: the cost of the traps alone)"
    echo "- bpftrace: \`bpftrace bench/trace-addon-latency.bt -c 'node sqlite-demo.js'\` (the original DTrace"
    echo "  articles' D script ported: two uprobes per operation, uv_queue_work and the after-work callback,"
    echo "  both \`push\`)"
    echo
    echo "## Cost to another process of the same binary"
    echo
    echo "An idle node process (a timer, no thread-pool work) traced with \`prodtrace latency -p\` on each"
    echo "attach path (or not traced: none), and meanwhile the demo, untraced, measured ($rounds interleaved"
    echo "rounds, medians). System-wide uprobes plant their breakpoints in every process that maps"
    echo "/usr/bin/node, so the demo traps too and prodtrace's BPF programs run for it (and return at"
    echo "once); the last column counts those runs per demo iteration (kernel.bpf_stats_enabled: the"
    echo "traced process itself does no thread-pool work)."
    echo
    echo "| path tracing the idle process | demo, it/s (median) | vs none | CPU per iteration (median) | added CPU per operation | BPF runs in the demo per iteration |"
    echo "|---|---:|---:|---:|---:|---:|"
    bbase=$(median "$work/bystander.none")
    bcpu=$(median "$work/bystander.none.cpu")
    for p in "${bystander_paths[@]}"; do
        its=$(paste -d' ' "$work/bystander.$p" "$work/bystander.$p.runs" |
            awk -v d="$duration" '{ if ($1 > 0) printf "%.1f\n", $2 / ($1 * d) }' | sort -g |
            awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
        awk -v p="$p" -v med="$(median "$work/bystander.$p")" -v cpu="$(median "$work/bystander.$p.cpu")" \
            -v base="$bbase" -v bcpu="$bcpu" -v runs="$its" 'BEGIN {
            printf "| %s | %.0f | %.3f | %.1f µs | %.2f µs | %s |\n", p, med, med / base, cpu, (cpu - bcpu) / 17, runs
        }'
    done
    echo
    echo "All runs (throughput it/s; CPU µs per iteration; BPF runs in the demo):"
    echo
    for p in "${bystander_paths[@]}"; do
        echo "- $p: $(tr '\n' ' ' <"$work/bystander.$p"); $(tr '\n' ' ' <"$work/bystander.$p.cpu"); $(tr '\n' ' ' <"$work/bystander.$p.runs")"
    done
    echo
    echo "## Cost of one uprobe hit"
    echo
    echo "A C loop calling a function whose first instruction is probed by bpftrace (µs per call, probed"
    echo "minus unprobed, median of 3):"
    echo
    echo "| first instruction | kernel | µs per hit |"
    echo "|---|---|---:|"
    while read -r f c; do
        [ -n "$f" ] || continue
        case $f in
        f_push) echo "| \`push %rbp\` | emulated | $c |" ;;
        f_nop5) echo "| \`nopl 0x0(%rax,%rax,1)\` (5-byte nop) | emulated | $c |" ;;
        f_mov) echo "| \`mov (%rdi),%rax\` | single-stepped | $c |" ;;
        f_endbr) echo "| \`endbr64\` | single-stepped | $c |" ;;
        esac
    done <<<"$hits"
    echo
    echo "## Run time of prodtrace's BPF programs"
    echo
    echo "\`prodtrace latency --breakdown\` on the demo with kernel.bpf_stats_enabled=1 (bpftool's"
    echo "run_time_ns / run_cnt; the time inside the program, not the trap around it):"
    echo
    echo "| program | runs | ns per run |"
    echo "|---|---:|---:|"
    while read -r n c t; do
        [ -n "$n" ] && echo "| $n | $c | $t |"
    done <<<"$stats"
} >"$out_path"
cat "$out_path"
