#!/usr/bin/env bash
# serve.sh — what `prodtrace latency --serve` costs the processes it traces,
# and what one --sample attach/detach cycle costs.
#
# 1. Throughput: examples/node/sqlite-demo.js for DURATION seconds (default
#    60: two periods of the default --sample 2s/30s), ROUNDS times (default
#    5), setups interleaved:
#      untraced        node sqlite-demo.js
#      serve           prodtrace latency --serve ADDR -p PID   (the defaults:
#                      --sample 2s/30s, histograms in the kernel)
#      serve-always    ... --sample off   (probes attached all the time)
#      serve-ringbuf   ... --sample off --bench-serve-ringbuf  (every
#                      operation through the ring buffer, histograms in
#                      user space: what in-kernel histograms replace)
#    The demo waits on stdin until prodtrace has attached, then runs; it
#    reports its own throughput and CPU per iteration.  prodtrace's own CPU
#    time per operation is read from /proc for the always-on setups.
#    1b. The same always-on setups in SHORT_ROUNDS (15) short runs of 2 s,
#    interleaved: more runs, so a steadier ratio on a busy machine, from
#    which the default's ratio is also derived: 1 - ON/PERIOD x (1 - ratio).
# 2. Cost of one attach/detach cycle to prodtrace: the demo loaded but idle
#    (no operations), prodtrace --sample 500ms/1s for CYCLE_SECS (20)
#    seconds, its CPU time minus that of --sample off over the same time,
#    divided by the cycles it made (prodtrace_sample_cycles_total).
# 3. Cost of a cycle to the target: a C program linked with libuv whose
#    main thread reads CLOCK_MONOTONIC in a loop and counts the gaps between
#    reads (> 20 µs, > 100 µs, > 1 ms, and the longest), for CYCLE_SECS
#    seconds, alone and while prodtrace attaches to it and detaches once a
#    second; interleaved, 3 rounds.
# 4. BPF program run time per operation (kernel.bpf_stats_enabled): `done`
#    adding to the in-kernel histograms vs sending to the ring buffer.
#
# Writes bench/serve.md (OUT=... to change) and prints it.  Needs root, cc,
# libuv1-dev, bpftool, curl and scripts/setup.sh done.
# Usage: bench/serve.sh [ROUNDS [DURATION]]
#
# DEFAULT_ONLY=1 runs only part 1 with the setups untraced and serve (the
# default settings), for the ratio the issue asks of the default (>= 0.99),
# and adds the median of each round's own ratio (serve / the untraced run
# next to it), which cancels the drift of a shared machine between rounds;
# writes bench/serve-default.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds=${1:-5}
duration=${2:-60}
cycle_secs=${CYCLE_SECS:-20}
default_only=${DEFAULT_ONLY:-}
out=${OUT:-bench/serve${default_only:+-default}.md}
case $out in /*) out_path=$out ;; *) out_path=$root/$out ;; esac
prodtrace=${PRODTRACE:-$root/target/release/prodtrace}
[ -x "$prodtrace" ] || { echo "serve.sh: no prodtrace at $prodtrace; run scripts/setup.sh" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
    if ((${#pids[@]})); then kill "${pids[@]}" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
addr=127.0.0.1:$port
cd "$root/examples/node"

median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
hz=$(getconf CLK_TCK)

# Starts the demo waiting on stdin (fd 3 of this shell writes to it);
# sets demo_pid.
start_demo() {
    rm -f "$work/in" && mkfifo "$work/in"
    SQLITE_DEMO_WAIT=stdin SQLITE_DEMO_DURATION=$duration node sqlite-demo.js <"$work/in" >"$work/demo.out" &
    demo_pid=$!
    exec 3>"$work/in"
    until grep -q ready "$work/demo.out" 2>/dev/null; do sleep 0.05; done
}

# Starts prodtrace --serve on the demo with extra args; waits until it has
# attached; sets serve_pid.
start_serve() {
    "$prodtrace" latency --serve "$addr" -p "$demo_pid" "$@" 2>"$work/serve.err" &
    serve_pid=$!
    pids+=("$serve_pid")
    until grep -q "tracing process" "$work/serve.err" 2>/dev/null; do
        kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
        sleep 0.05
    done
}

stop_serve() {
    kill -INT "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
}

run_mode() {
    local mode=$1 t0 t1
    start_demo
    case $mode in
    untraced) ;;
    serve) start_serve ;;
    serve-always) start_serve --sample off ;;
    serve-ringbuf) start_serve --sample off --bench-serve-ringbuf ;;
    esac
    [ "$mode" = untraced ] || t0=$(cpu_ticks "$serve_pid")
    echo go >&3
    wait "$demo_pid" || true
    exec 3>&-
    local line
    line=$(grep '"sqlite_demo"' "$work/demo.out" | tail -1)
    if [ "$mode" != untraced ]; then
        t1=$(cpu_ticks "$serve_pid")
        local iters counted
        iters=$(sed -E 's/.*"iterations":([0-9]+).*/\1/' <<<"$line")
        counted=$(curl -s "http://$addr/metrics" |
            awk '/^prodtrace_async_operation_duration_seconds_count/ {s += $2} END {print s + 0}')
        stop_serve
        if [ -n "${record:-}" ]; then
            # prodtrace's CPU time during the run (s), and the fraction of
            # the operations (17 per iteration) it counted.
            awk -v t="$((t1 - t0))" -v hz="$hz" 'BEGIN {printf "%.2f\n", t / hz}' >>"$work/$mode.tracer"
            awk -v c="$counted" -v n="$iters" 'BEGIN {printf "%.4f\n", c / (n * 17)}' >>"$work/$mode.counted"
        fi
    fi
    sed -E 's/.*"iterations_per_sec":([0-9.]+).*"cpu_us_per_iteration":([0-9.]+).*/\1 \2/' <<<"$line"
}

modes=(untraced serve serve-always serve-ringbuf)
[ -z "$default_only" ] || modes=(untraced serve)
for ((r = 1; r <= rounds; r++)); do
    for m in "${modes[@]}"; do
        v=$(record=1 run_mode "$m")
        [ -n "$v" ] || { echo "serve.sh: $m run produced no throughput" >&2; exit 1; }
        echo "${v% *}" >>"$work/$m"
        echo "${v#* }" >>"$work/$m.cpu"
        printf 'round %d/%d  %-13s %s iterations/s, %s µs CPU per iteration\n' "$r" "$rounds" "$m" "${v% *}" "${v#* }" >&2
    done
done

if [ -n "$default_only" ]; then
    # Each round's own ratio: serve over the untraced run beside it.
    paste "$work/serve" "$work/untraced" | awk '{printf "%.4f\n", $1 / $2}' >"$work/pair"
    paste "$work/serve.cpu" "$work/untraced.cpu" | awk '{printf "%.4f\n", $1 / $2}' >"$work/pair.cpu"
    {
        echo "# prodtrace latency --serve, default settings: overhead"
        echo
        echo "Generated by \`DEFAULT_ONLY=1 bench/serve.sh $rounds $duration\` on $(date -u +%Y-%m-%d) ($(nproc) CPUs, kernel $(uname -r), node $(node --version))."
        echo
        echo "examples/node/sqlite-demo.js for $duration s, untraced and under \`prodtrace latency --serve ADDR -p PID\`"
        echo "(defaults: \`--sample 2s/30s\`, histograms in the kernel), $rounds rounds, the two interleaved."
        echo
        echo "| measure | untraced | serve (default) | ratio |"
        echo "|---|---:|---:|---:|"
        awk -v a="$(median "$work/untraced")" -v b="$(median "$work/serve")" \
            'BEGIN {printf "| throughput, medians (it/s) | %.0f | %.0f | %.3f |\n", a, b, b / a}'
        awk -v a="$(median "$work/untraced.cpu")" -v b="$(median "$work/serve.cpu")" \
            'BEGIN {printf "| CPU per iteration, medians (µs) | %.1f | %.1f | %.3f |\n", a, b, b / a}'
        echo "| throughput, median of the rounds' own ratios | | | **$(median "$work/pair")** |"
        echo "| CPU per iteration, median of the rounds' own ratios | | | $(median "$work/pair.cpu") |"
        echo
        echo "Operations counted (sum of \`_count\` / the demo's own count): $(median "$work/serve.counted") (2 s of 30 s is 0.067)."
        echo
        echo "All runs (it/s): untraced $(tr '\n' ' ' <"$work/untraced"); serve $(tr '\n' ' ' <"$work/serve")"
        echo
        echo "Each round's ratio: $(tr '\n' ' ' <"$work/pair")"
    } >"$out_path"
    cat "$out_path"
    exit 0
fi

# 1b. Short runs of the always-on setups.
short_rounds=${SHORT_ROUNDS:-15}
short_modes=(untraced serve-always serve-ringbuf)
for ((r = 1; r <= short_rounds; r++)); do
    for m in "${short_modes[@]}"; do
        v=$(duration=2 run_mode "$m")
        [ -n "$v" ] || { echo "serve.sh: short $m run produced no throughput" >&2; exit 1; }
        echo "${v% *}" >>"$work/short.$m"
        echo "${v#* }" >>"$work/short.$m.cpu"
        printf 'short round %d/%d  %-13s %s iterations/s, %s µs CPU per iteration\n' "$r" "$short_rounds" "$m" "${v% *}" "${v#* }" >&2
    done
done

# 2. One attach/detach cycle, to prodtrace.
cycle_cost() {
    local sample=$1 t0 t1 cycles
    start_demo
    start_serve --sample "$sample"
    t0=$(cpu_ticks "$serve_pid")
    sleep "$cycle_secs"
    t1=$(cpu_ticks "$serve_pid")
    cycles=$(curl -s "http://$addr/metrics" | awk '/^prodtrace_sample_cycles_total/ {print $2}')
    stop_serve
    exec 3>&-
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
    echo "$((t1 - t0)) $cycles"
}
for i in 1 2 3; do
    read -r busy cycles < <(cycle_cost 500ms/1s)
    read -r quiet _ < <(cycle_cost off)
    awk -v b="$busy" -v q="$quiet" -v c="$cycles" -v hz="$hz" 'BEGIN {printf "%.2f\n", (b - q) / hz * 1000 / c}' \
        >>"$work/cycle.ms"
    echo "$cycles" >>"$work/cycle.count"
    echo "cycle cost to prodtrace, run $i: $(tail -1 "$work/cycle.ms") ms CPU per cycle ($cycles cycles)" >&2
done

# 3. A cycle, to the target: gaps in a thread that only reads the clock.
cat >"$work/heartbeat.c" <<'EOF'
/* Reads CLOCK_MONOTONIC in a loop for argv[1] seconds (after a line on
 * stdin) and prints the number of gaps between consecutive reads longer
 * than 20 µs, 100 µs and 1 ms, and the longest (µs).  Linked with libuv
 * (one uv_queue_work call) so that prodtrace latency attaches to it. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
static void work(uv_work_t *r) { (void)r; }
static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
int main(int argc, char **argv) {
    uv_work_t req;
    char line[8];
    uv_queue_work(uv_default_loop(), &req, work, NULL);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    double end = now_us() + atof(argv[1]) * 1e6, prev = now_us(), longest = 0;
    long over20 = 0, over100 = 0, over1000 = 0;
    for (;;) {
        double t = now_us(), gap = t - prev;
        prev = t;
        if (gap > 20) over20++;
        if (gap > 100) over100++;
        if (gap > 1000) over1000++;
        if (gap > longest) longest = gap;
        if (t > end) break;
    }
    printf("%ld %ld %ld %.0f\n", over20, over100, over1000, longest);
    return 0;
}
EOF
cc -O2 -o "$work/heartbeat" "$work/heartbeat.c" -luv
heartbeat() { # with|without -> "over20 over100 over1000 longest"
    rm -f "$work/hin" && mkfifo "$work/hin"
    "$work/heartbeat" "$cycle_secs" <"$work/hin" >"$work/hb.out" &
    local hb=$!
    exec 4>"$work/hin"
    until grep -q ready "$work/hb.out" 2>/dev/null; do sleep 0.05; done
    if [ "$1" = with ]; then
        demo_pid=$hb start_serve --sample 500ms/1s
    fi
    echo go >&4
    wait "$hb" || true
    exec 4>&-
    [ "$1" = with ] && stop_serve
    tail -1 "$work/hb.out"
}
for i in 1 2 3; do
    for c in without with; do
        v=$(heartbeat "$c")
        echo "$v" >>"$work/hb.$c"
        echo "target heartbeat, $c cycles, run $i: $v (gaps > 20 µs, > 100 µs, > 1 ms, longest µs)" >&2
    done
done

# 4. BPF run time of done per operation: in-kernel histograms vs ring buffer.
done_cost() {
    local was
    was=$(sysctl -n kernel.bpf_stats_enabled)
    sysctl -qw kernel.bpf_stats_enabled=1
    duration=30 start_demo
    start_serve --sample off "$@"
    echo go >&3
    sleep 5
    # The programs of this prodtrace: the prog_id of its file descriptors.
    local ids
    ids=$(grep -h '^prog_id:' /proc/"$serve_pid"/fdinfo/* 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
    bpftool -j prog show | python3 -c '
import json, sys
mine = set(int(i) for i in sys.argv[1].split())
got = {}
for p in json.load(sys.stdin):
    if p["id"] in mine and p.get("name") in ("submit", "done") and p.get("run_cnt"):
        got[p["name"]] = p["run_time_ns"] / p["run_cnt"]
print(" ".join("%.0f" % got[n] if n in got else "n/a" for n in ("submit", "done")))
' "$ids"
    stop_serve
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
    exec 3>&-
    sysctl -qw kernel.bpf_stats_enabled="$was"
}
for i in 1 2 3; do
    done_cost >>"$work/bpf.kernel"
    done_cost --bench-serve-ringbuf >>"$work/bpf.ring"
    echo "BPF ns per run (submit done), round $i: in-kernel histograms $(tail -1 "$work/bpf.kernel"), ring buffer $(tail -1 "$work/bpf.ring")" >&2
done
col_median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
kernel_cost="submit $(col_median "$work/bpf.kernel" 1) ns, done $(col_median "$work/bpf.kernel" 2) ns"
ring_cost="submit $(col_median "$work/bpf.ring" 1) ns, done $(col_median "$work/bpf.ring" 2) ns"

{
    echo "# prodtrace latency --serve: overhead benchmark"
    echo
    echo "Generated by \`bench/serve.sh $rounds $duration\` on $(date -u +%Y-%m-%d) ($(nproc) CPUs, kernel $(uname -r), node $(node --version))."
    echo "Reproduce: \`sudo bench/serve.sh $rounds $duration\` (after \`scripts/setup.sh\`)."
    echo
    echo "## examples/node/sqlite-demo.js, untraced and under --serve"
    echo
    echo "$rounds rounds of $duration s per setup, setups interleaved, medians. The demo waits until prodtrace"
    echo "has attached, then runs $duration s and prints its throughput and CPU per iteration (17"
    echo "thread-pool operations each)."
    echo
    echo "| setup | throughput (it/s) | / untraced | CPU per iteration | / untraced | operations counted | prodtrace CPU |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    base=$(median "$work/untraced")
    bcpu=$(median "$work/untraced.cpu")
    for m in "${modes[@]}"; do
        tr=- counted=-
        [ -f "$work/$m.tracer" ] && tr="$(median "$work/$m.tracer") s"
        [ -f "$work/$m.counted" ] && counted="$(median "$work/$m.counted")"
        awk -v m="$m" -v med="$(median "$work/$m")" -v cpu="$(median "$work/$m.cpu")" -v base="$base" \
            -v bcpu="$bcpu" -v tr="$tr" -v counted="$counted" 'BEGIN {
            printf "| %s | %.0f | **%.3f** | %.1f µs | %.3f | %s | %s |\n", m, med, med / base, cpu, cpu / bcpu, counted, tr
        }'
    done
    echo
    echo "\"operations counted\": the sum of \`_count\` at the end over the demo's own count (the probes'"
    echo "share of the time, for the default: 2 s of every 30 s is 0.067). \"prodtrace CPU\": its CPU time"
    echo "during the run, mostly spent once, naming kinds (reading node's symbol table)."
    echo
    echo "All runs (throughput it/s; CPU µs per iteration; prodtrace CPU s; operations counted):"
    echo
    for m in "${modes[@]}"; do
        echo "- $m: $(tr '\n' ' ' <"$work/$m"); $(tr '\n' ' ' <"$work/$m.cpu")$([ -f "$work/$m.tracer" ] && echo "; $(tr '\n' ' ' <"$work/$m.tracer"); $(tr '\n' ' ' <"$work/$m.counted")")"
    done
    echo
    echo "- untraced: \`node sqlite-demo.js\`"
    echo "- serve: \`prodtrace latency --serve ADDR -p PID\` (defaults: \`--sample 2s/30s\`, histograms kept"
    echo "  in the kernel)"
    echo "- serve-always: \`... --sample off\` (probes attached all the time)"
    echo "- serve-ringbuf: \`... --sample off --bench-serve-ringbuf\` (every operation sent through the"
    echo "  ring buffer and histogrammed in user space, as the terminal mode does)"
    echo
    echo "### Short runs, always-on setups"
    echo
    echo "$short_rounds rounds of 2 s, interleaved, medians (more runs than above, so steadier on a busy"
    echo "machine). The default \`--sample 2s/30s\` attaches the probes 1/15 of the time; its ratio,"
    echo "derived from the always-on one: 1 - (1/15) x (1 - ratio)."
    echo
    echo "| setup | throughput (it/s) | / untraced | CPU per iteration | / untraced | derived default (2s/30s) |"
    echo "|---|---:|---:|---:|---:|---:|"
    sbase=$(median "$work/short.untraced")
    sbcpu=$(median "$work/short.untraced.cpu")
    for m in "${short_modes[@]}"; do
        awk -v m="$m" -v med="$(median "$work/short.$m")" -v cpu="$(median "$work/short.$m.cpu")" \
            -v base="$sbase" -v bcpu="$sbcpu" 'BEGIN {
            r = med / base
            d = (m == "untraced") ? "-" : sprintf("%.4f", 1 - (1 - r) / 15)
            printf "| %s | %.0f | %.3f | %.1f µs | %.3f | %s |\n", m, med, r, cpu, cpu / bcpu, d
        }'
    done
    echo
    for m in "${short_modes[@]}"; do
        echo "- $m: $(tr '\n' ' ' <"$work/short.$m"); $(tr '\n' ' ' <"$work/short.$m.cpu")"
    done
    echo
    echo "## One attach/detach cycle"
    echo
    echo "To prodtrace: \`--sample 500ms/1s\` on the idle demo for $cycle_secs s, prodtrace's CPU time minus"
    echo "that of \`--sample off\` over the same time, per cycle: $(median "$work/cycle.ms") ms (median of"
    echo "3: $(tr '\n' ' ' <"$work/cycle.ms")ms; cycles per run: $(tr '\n' ' ' <"$work/cycle.count"))."
    echo "A cycle loads the BPF program (verifier included), attaches its uprobes, then detaches"
    echo "them and frees it."
    echo
    echo "To the target: a thread that only reads CLOCK_MONOTONIC in a loop for $cycle_secs s, alone and"
    echo "while prodtrace attaches to its process and detaches once a second (\`--sample 500ms/1s\`,"
    echo "about $cycle_secs cycles); gaps between consecutive reads, 3 interleaved runs each:"
    echo
    echo "| target | gaps > 20 µs | > 100 µs | > 1 ms | longest |"
    echo "|---|---:|---:|---:|---:|"
    for c in without with; do
        while read -r a b d l; do
            echo "| $c cycles | $a | $b | $d | $l µs |"
        done <"$work/hb.$c"
    done
    echo
    echo "## BPF run time per operation"
    echo
    echo "\`kernel.bpf_stats_enabled\`, the demo under \`--serve --sample off\` for 5 s, 3 alternating"
    echo "rounds, median ns per run: histograms in the kernel: $kernel_cost; ring buffer: $ring_cost."
    echo "(submit is the same program in both: its difference is this machine's noise.) All rounds"
    echo "(submit done): in the kernel $(tr '\n' ';' <"$work/bpf.kernel") ring buffer $(tr '\n' ';' <"$work/bpf.ring")."
} >"$out_path"
cat "$out_path"
