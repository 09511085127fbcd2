#!/usr/bin/env bash
# kernel-smoke.sh — end-to-end smoke test of every tool on the running
# kernel, with exactly the release binaries target/release/prodtrace and
# target/release/bunyan.  scripts/kernel-matrix.sh runs it inside a VM per
# kernel; it also runs as is on this machine (as root), to try a change.
#
#   scripts/kernel-smoke.sh OUTDIR           run every check; results in OUTDIR
#   scripts/kernel-smoke.sh --prepare OUTDIR compile the C targets into OUTDIR/bin
#   scripts/kernel-smoke.sh --list           the checks' names, one per line
#
# OUTDIR gets results.tsv (one line per check: name, PASS/FAIL, seconds,
# why it failed), one NAME.log per check (its commands' output) and
# kernel.txt (uname -r); scratch files go to $TMPDIR and are removed.
# Exit status: 0 when every check passed.
#
# On a kernel below prodtrace's 5.15 floor (Debian 11's 5.10) the latency
# and catch checks pass when the tool refuses in exactly one line naming
# the missing feature, the Linux version that has it and this kernel, and
# leaves nothing running; every other check is the same.
#
# The checks (functional only: no timings; the guest may run 10-50x slower):
#   btf                the kernel exposes its BTF (CO-RE needs it)
#   latency-exec       latency --json -- node sqlite-demo.js: exact counts
#   latency-pid        latency -p PID on a demo waiting for the go: exact counts
#   latency-breakdown  --breakdown: exact counts, the phases add up to the total
#   catch-core         catch --core on examples/c/badclose.c: a 0600 core whose
#                      gdb backtrace is close <- release_handle <- main
#   gcore              gcore of a 4-thread C program that runs on; gdb sees
#                      every thread in its function
#   bunyan-rust        bunyan -p on examples/log-service: its debug records,
#                      consecutive, while its own stdout has info only
#   bunyan-node        bunyan -p on unmodified npm bunyan through
#                      node/dtrace-provider: consecutive debug records
#   jsstack            jsstack PID on examples/node/jsstack-demo.js held in
#                      a known recursion: the JavaScript frames at their
#                      lines, the target left running; the same frames
#                      from its gcore with jsstack --core
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
self=$root/scripts/kernel-smoke.sh
PRODTRACE=$root/target/release/prodtrace
BUNYAN=$root/target/release/bunyan
SERVICE=$root/target/release/log-service
ADDON=$root/target/release/libprodtrace_dtrace_provider.so
NODE_DIR=$root/examples/node
CHECKS=(btf latency-exec latency-pid latency-breakdown catch-core gcore bunyan-rust bunyan-node jsstack)
ITERATIONS=20            # sqlite-demo iterations per latency check (17 operations each)
CHECK_TIMEOUT=${KERNEL_SMOKE_CHECK_TIMEOUT:-900}   # seconds per check
WAIT=300                 # seconds to wait for any one event inside a check

# --- helpers for the checks --------------------------------------------------

fail() { echo "FAIL: $*"; exit 1; }
say() { echo "--- [${SECONDS}s] $*"; }   # progress, timed, into the check's log

# wait_for SECS CMD...: until CMD succeeds (polling), or fail.
wait_for() {
    local secs=$1 end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $end ] || fail "waited ${secs}s for: $*"
        sleep 0.2
    done
}

# finish PID SECS: waits for background child PID to exit; sets $status to
# its exit status ("timeout" if it is still running after SECS).
finish() {
    local end=$((SECONDS + $2))
    status=timeout
    while kill -0 "$1" 2>/dev/null; do
        [ $SECONDS -lt $end ] || return 0
        sleep 0.2
    done
    status=0
    wait "$1" || status=$?
}

# Every background process a check starts is killed when the check ends.
bg=()
cleanup() {
    [ ${#bg[@]} -eq 0 ] || kill -KILL "${bg[@]}" 2>/dev/null
    [ -z "${d:-}" ] || rm -rf "$d"
}
trap cleanup EXIT

# show FILE...: a file's content into the check's log.
show() { local f; for f; do echo "::: $(basename "$f")"; cat "$f" 2>/dev/null; done; }

# --- latency ----------------------------------------------------------------

# expected_counts N: the per-kind counts of N iterations of sqlite-demo.js,
# as JSON (the table crates/prodtrace/tests/latency.rs establishes with
# bpftrace: per iteration 1 open, 1 exec, 1 close, 2 prepares, 1 bind and
# 11 runs).
expected_counts() {
    jq -cnS --argjson n "$1" '{
        "node_sqlite3::Database::Work_Open": $n,
        "node_sqlite3::Database::Work_Exec": $n,
        "node_sqlite3::Database::Work_Close": $n,
        "node_sqlite3::Statement::Work_Prepare": (2 * $n),
        "node_sqlite3::Statement::Work_Bind": $n,
        "node_sqlite3::Statement::Work_Run": (11 * $n)}'
}

# check_counts REPORT_FILE DEMO_OUTPUT_FILE: the one JSON report has exactly
# the expected count per kind, all in node_sqlite3.node, and agrees with the
# demo's own count of completed calls.
check_counts() {
    local report=$1 demo=$2 got want summary
    [ "$(grep -c '^\[' "$report")" = 1 ] || fail "expected one JSON report in $(basename "$report")"
    got=$(grep '^\[' "$report" | jq -cS 'map({(.kind): .count}) | add')
    want=$(expected_counts $ITERATIONS)
    echo "counts: $got"
    [ "$got" = "$want" ] || fail "counts $got, expected $want"
    grep '^\[' "$report" | jq -e 'all(.[]; .module == "node_sqlite3.node" and .min_ns > 0)' >/dev/null \
        || fail "a kind outside node_sqlite3.node or with a zero latency"
    summary=$(grep '^{"sqlite_demo"' "$demo") || fail "no summary line from the demo"
    jq -e --argjson n $ITERATIONS --argjson got "$got" '.sqlite_demo
        | .iterations == $n and .calls.open == $n and .calls.close == $n and .calls.exec == $n
          and .calls.run + .calls.stmt_run == $got["node_sqlite3::Statement::Work_Run"]' \
        <<<"$summary" >/dev/null || fail "the demo's own counts disagree: $summary"
}

check_btf() {
    uname -r
    [ -r /sys/kernel/btf/vmlinux ] || fail "/sys/kernel/btf/vmlinux missing: no CO-RE on this kernel"
    "$PRODTRACE" --version && "$BUNYAN" --version || fail "the binaries do not run"
    "$PRODTRACE" doctor || fail "prodtrace doctor failed"
}

# below_floor: the running kernel is older than prodtrace's 5.15 floor.
below_floor() {
    [ "$(printf '%s\n' 5.15 "$(uname -r | cut -d- -f1)" | sort -V | head -n1)" != 5.15 ]
}

# refused TOOL CMD...: CMD must fail with exactly one line, "prodtrace:
# prodtrace TOOL needs FEATURE (Linux X+); this kernel is $(uname -r)", and
# print nothing else.
refused() {
    local tool=$1 rc=0 line
    shift
    say "below the 5.15 floor: $* must refuse"
    "$@" >"$d/out" 2>"$d/err" || rc=$?
    show "$d/out" "$d/err"
    [ $rc = 1 ] || fail "exit $rc, expected 1 (refused)"
    [ "$(wc -l <"$d/err")" = 1 ] || fail "expected one line on stderr"
    line=$(cat "$d/err")
    [[ $line == "prodtrace: prodtrace $tool needs "*" (Linux "*"+); this kernel is $(uname -r)" ]] ||
        fail "not the one line naming the feature and versions: $line"
    [ ! -s "$d/out" ] || fail "output on stdout"
}

check_latency-exec() {
    cd "$NODE_DIR" || exit 1
    if below_floor; then
        refused latency "$PRODTRACE" latency --json -- node sqlite-demo.js
        ! pgrep -f sqlite-demo.js >/dev/null || fail "the command was started and left running"
        return
    fi
    local rc=0
    say "prodtrace latency --json -- node sqlite-demo.js"
    SQLITE_DEMO_ITERATIONS=$ITERATIONS "$PRODTRACE" latency --json -- node sqlite-demo.js >"$d/out" 2>"$d/err" || rc=$?
    show "$d/out" "$d/err"
    [ $rc = 0 ] || fail "prodtrace latency exited $rc: $(tail -n1 "$d/err")"
    check_counts "$d/out" "$d/out"
}

check_latency-pid() {
    cd "$NODE_DIR" || exit 1
    mkfifo "$d/go"
    say "starting the demo, waiting for the go"
    SQLITE_DEMO_WAIT=stdin SQLITE_DEMO_ITERATIONS=$ITERATIONS node sqlite-demo.js <"$d/go" >"$d/demo" 2>&1 &
    local demo=$!
    bg+=($demo)
    exec 3>"$d/go"
    wait_for $WAIT grep -q '^ready ' "$d/demo"
    if below_floor; then
        refused latency "$PRODTRACE" latency -p "$demo" --json
        kill -0 $demo || fail "the demo did not survive the refusal"
        return
    fi
    say "prodtrace latency -p $demo"
    "$PRODTRACE" latency -p "$demo" --json >"$d/out" 2>"$d/err" &
    local tracer=$!
    bg+=($tracer)
    wait_for $WAIT grep -q -e '^Tracing' -e 'prodtrace:' "$d/err"
    grep -q '^Tracing' "$d/err" || {
        show "$d/err"
        fail "prodtrace latency -p: $(grep -m1 'prodtrace:' "$d/err")"
    }
    say "go"
    echo go >&3
    exec 3>&-
    local demo_rc tracer_rc
    finish $demo $WAIT
    demo_rc=$status
    finish $tracer $WAIT
    tracer_rc=$status
    show "$d/demo" "$d/out" "$d/err"
    [ "$demo_rc" = 0 ] || fail "the demo exited $demo_rc"
    [ "$tracer_rc" = 0 ] || fail "prodtrace latency -p exited $tracer_rc after its target: $(tail -n1 "$d/err")"
    check_counts "$d/out" "$d/demo"
}

check_latency-breakdown() {
    cd "$NODE_DIR" || exit 1
    if below_floor; then
        refused latency "$PRODTRACE" latency --json --breakdown -- node sqlite-demo.js
        ! pgrep -f sqlite-demo.js >/dev/null || fail "the command was started and left running"
        return
    fi
    local rc=0
    say "prodtrace latency --json --breakdown -- node sqlite-demo.js"
    SQLITE_DEMO_ITERATIONS=$ITERATIONS "$PRODTRACE" latency --json --breakdown -- node sqlite-demo.js \
        >"$d/out" 2>"$d/err" || rc=$?
    show "$d/out" "$d/err"
    [ $rc = 0 ] || fail "prodtrace latency --breakdown exited $rc: $(tail -n1 "$d/err")"
    check_counts "$d/out" "$d/out"
    grep '^\[' "$d/out" | jq -e 'all(.[]; . as $k
        | all("queue_wait", "run", "completion_delay"; $k[.].count == $k.count and $k[.].max_ns <= $k.max_ns)
          and $k.queue_wait.sum_ns + $k.run.sum_ns + $k.completion_delay.sum_ns == $k.sum_ns
          and $k.run.min_ns > 0)' >/dev/null \
        || fail "the phases do not add up to the total latency of every kind"
}

# --- catch, gcore ------------------------------------------------------------

check_catch-core() {
    mkdir "$d/cores"
    if below_floor; then
        refused catch "$PRODTRACE" catch --syscall close --errno EBADF --core "$d/cores" -w -- \
            "$bin/badclose" "$d/marker" 0 42 0
        [ ! -e "$d/marker" ] || fail "the command ran though catch refused"
        return
    fi
    local rc=0
    say "prodtrace catch --core -- badclose"
    "$PRODTRACE" catch --syscall close --errno EBADF --core "$d/cores" -w -- \
        "$bin/badclose" "$d/marker" 0 42 0 >"$d/out" 2>"$d/err" || rc=$?   # fd 42: fds may be inherited
    show "$d/out" "$d/err"
    [ $rc = 0 ] || fail "prodtrace catch exited $rc: $(tail -n1 "$d/err")"
    grep -q 'close(fd=42) = -1 EBADF' "$d/out" || fail "the failing close was not reported"
    local cores=("$d"/cores/*)
    [ ${#cores[@]} = 1 ] && [ -f "${cores[0]}" ] || fail "expected one core in $d/cores: ${cores[*]}"
    grep -qF "core: ${cores[0]}" "$d/out" || fail "the core's path was not printed"
    [ "$(stat -c %a "${cores[0]}")" = 600 ] || fail "core mode $(stat -c %a "${cores[0]}"), not 600"
    grep -q 'resumed process' "$d/out" && grep -q 'command exited with status 0' "$d/err" && [ -e "$d/marker" ] \
        || fail "the program was not resumed to a normal exit"
    say "gdb on the core"
    gdb -batch -nx -ex bt "$bin/badclose" "${cores[0]}" >"$d/gdb" 2>&1
    show "$d/gdb"
    grep -q '^#0 .*close' "$d/gdb" || fail "gdb: frame #0 is not close()"
    grep -q '^#1 .*release_handle' "$d/gdb" || fail "gdb: frame #1 is not release_handle()"
    grep -q '^#[0-9].* main ' "$d/gdb" || fail "gdb: no main() in the backtrace"
}

check_gcore() {
    say "starting the 4-thread target"
    "$bin/gcore-threads" "$d/counter" >"$d/pid" &
    local target=$!
    bg+=($target)
    wait_for $WAIT grep -q . "$d/pid"
    counter() { cat "$d/counter" 2>/dev/null || echo 0; }
    local rc=0 before
    say "prodtrace gcore $target"
    "$PRODTRACE" gcore "$target" -o "$d/core" >"$d/out" 2>"$d/err" || rc=$?
    show "$d/out" "$d/err"
    [ $rc = 0 ] || fail "prodtrace gcore exited $rc: $(tail -n1 "$d/err")"
    grep -q "^Saved $d/core: .*, 4 threads, process paused " "$d/out" || fail "unexpected summary: $(cat "$d/out")"
    [ "$(stat -c %a "$d/core")" = 600 ] || fail "core mode $(stat -c %a "$d/core"), not 600"
    before=$(counter)
    runs_on() { [ "$(counter)" -gt "$before" ]; }
    wait_for $WAIT runs_on    # the target runs on
    [ "$(awk '/^TracerPid:/ {print $2}' /proc/$target/status)" = 0 ] || fail "a tracer is still attached"
    say "gdb on the core"
    gdb -batch -nx -ex 'info threads' -ex 'thread apply all bt' "$bin/gcore-threads" "$d/core" >"$d/gdb" 2>&1
    show "$d/gdb"
    [ "$(grep -cE '^\*? *[0-9]+ +.*\(LWP ' "$d/gdb")" = 4 ] || fail "gdb does not see 4 threads"
    local f
    for f in main_loop worker_sleep worker_cond worker_spin; do
        grep -q " $f (" "$d/gdb" || fail "gdb: no frame $f"
    done
    ! grep -q 'Cannot access memory' "$d/gdb" || fail "gdb: Cannot access memory"
}

# --- bunyan -p -----------------------------------------------------------------

# snoop PID OUT: runs bunyan -p PID -l debug -o bunyan until OUT holds 20
# debug records, then Ctrl-C; fails unless it exits 0.
snoop() {
    say "bunyan -p $1 -l debug -o bunyan"
    "$BUNYAN" -p "$1" -l debug -o bunyan >"$2" 2>"$2.err" &
    local cli=$! records=$2
    bg+=($cli)
    debug_records() {
        kill -0 $cli 2>/dev/null || { show "$records.err"; fail "bunyan -p ended: $(tail -n1 "$records.err")"; }
        [ "$(jq -c 'select(.level == 20)' "$records" 2>/dev/null | wc -l)" -ge 20 ]
    }
    wait_for $WAIT debug_records
    kill -INT $cli
    finish $cli $WAIT
    show "$2.err"
    [ "$status" = 0 ] || fail "bunyan -p exited $status after Ctrl-C: $(tail -n1 "$2.err")"
}

check_bunyan-rust() {
    say "starting log-service"
    "$SERVICE" --rate 200 >"$d/service" 2>&1 &
    local svc=$!
    bg+=($svc)
    wait_for $WAIT grep -q 'log-service started' "$d/service"
    snoop $svc "$d/snooped"
    kill $svc
    head -n 30 "$d/snooped"
    jq -se --argjson pid $svc 'all(.[]; .pid == $pid and .level >= 20)
        and ([.[] | select(.level == 20) | .req_id] as $ids
             | ($ids | length) >= 20 and all(range(1; $ids | length); $ids[.] == $ids[. - 1] + 1))' \
        "$d/snooped" >/dev/null || fail "the snooped records are not this service's consecutive debug records"
    jq -se 'length >= 1 and all(.[]; .level == 30)' "$d/service" >/dev/null \
        || fail "the service's own output is not info records only"
}

check_bunyan-node() {
    say "starting node with unmodified bunyan and the provider"
    PRODTRACE_DTRACE_PROVIDER_ADDON=$ADDON PRODTRACE_TEST_BUNYAN=$NODE_DIR/node_modules/bunyan \
        node -r "$root/node/dtrace-provider/register.js" "$root/node/dtrace-provider/test/fixtures/bunyan-app.js" \
        >"$d/app" 2>"$d/app.err" &
    local app=$!
    bg+=($app)
    # bunyan's first info record: the provider has loaded its probes by then.
    wait_for $WAIT grep -q '"level":30' "$d/app"
    snoop $app "$d/snooped"
    kill -TERM $app
    head -n 30 "$d/snooped"
    jq -se --argjson pid $app 'all(.[]; .pid == $pid and .name == "usdt-demo")
        and ([.[] | select(.level == 20)] as $r
             | ($r | length) >= 20
               and all($r[]; .msg == "debug record \(.n)")
               and all(range(1; $r | length); $r[.].n == $r[. - 1].n + 1))' \
        "$d/snooped" >/dev/null || fail "the snooped records are not the app's consecutive debug records"
    jq -se 'all(.[]; .level == 30)' "$d/app" >/dev/null || fail "the app's own output is not info records only"
}

# --- jsstack -------------------------------------------------------------------

check_jsstack() {
    cd "$NODE_DIR" || exit 1
    say "starting jsstack-demo.js interp"
    node jsstack-demo.js interp >"$d/demo" 2>&1 &
    local demo=$!
    bg+=($demo)
    wait_for $WAIT grep -q '"thread":"main"' "$d/demo"
    # It prints V8's own stack, then blocks in Atomics.wait: a futex call
    # (202 on x86_64) in its main thread.
    blocked() { local nr _; read -r nr _ <"/proc/$demo/syscall" && [ "$nr" = 202 ]; }
    wait_for $WAIT blocked
    # The JavaScript frames of the main thread as "function:line", and what
    # they must be: block at the Atomics.wait, recurse at its two calls,
    # the top-level call, then node's module loader.
    frames() { jq -c '[.threads[] | select(.main) | .frames[] | select(.kind == "js") | "\(.function):\(.line)"]' "$1"; }
    local wait_line call_line block_line want got
    wait_line=$(grep -n '// WAIT$' jsstack-demo.js | cut -d: -f1)
    call_line=$(grep -n 'return recurse(n - 1' jsstack-demo.js | cut -d: -f1)
    block_line=$(awk '/^function recurse/ {f = 1} f && /block\(thread\)/ {print NR; exit}' jsstack-demo.js)
    want="\"block:$wait_line\",\"recurse:$block_line\",\"recurse:$call_line\",\"recurse:$call_line\",\"recurse:$call_line\""
    local rc=0
    say "prodtrace jsstack $demo --json"
    "$PRODTRACE" jsstack "$demo" --json >"$d/live.json" 2>"$d/err" || rc=$?
    show "$d/demo" "$d/err"
    [ $rc = 0 ] || fail "prodtrace jsstack exited $rc: $(tail -n1 "$d/err")"
    got=$(frames "$d/live.json")
    echo "live frames: $got"
    [[ $got == "[$want,"* ]] || fail "live frames $got, expected them to start with $want"
    grep -q '"Module._compile:' <<<"$got" || fail "no frame of node's module loader: $got"
    jq -e '.left_stopped == false' "$d/live.json" >/dev/null || fail "the target was left stopped"
    grep -q '^State:.*S (sleeping)' "/proc/$demo/status" || fail "target not running on: $(grep State "/proc/$demo/status")"
    say "prodtrace gcore $demo; jsstack --core"
    "$PRODTRACE" gcore "$demo" -o "$d/core" >"$d/out" 2>"$d/err" || fail "gcore: $(tail -n1 "$d/err")"
    "$PRODTRACE" jsstack --core "$d/core" --json >"$d/core.json" 2>"$d/err" || fail "jsstack --core: $(tail -n1 "$d/err")"
    [ "$(frames "$d/core.json")" = "$got" ] || fail "frames from the core $(frames "$d/core.json") differ from the live ones"
}

# --- driver --------------------------------------------------------------------

# prepare DIR: the C targets, compiled with -g for gdb (again when the
# source is newer; in the guest they are already there, compiled by the host).
prepare() {
    mkdir -p "$1/bin"
    compile() { # compile NAME SOURCE CFLAGS...
        local exe=$1/bin/$2 src=$3
        shift 3
        [ "$exe" -nt "$src" ] || cc "$@" -g -o "$exe" "$src" || exit 1
    }
    compile "$1" badclose "$root/examples/c/badclose.c" -O2 -fomit-frame-pointer
    compile "$1" gcore-threads "$root/crates/prodtrace/tests/gcore_fixtures/threads.c" -O0 -pthread
}

case ${1:-} in
--list)
    printf '%s\n' "${CHECKS[@]}"
    exit 0
    ;;
--prepare)
    prepare "${2:?usage: $0 --prepare OUTDIR}"
    exit 0
    ;;
--check) # internal: --check NAME OUTDIR, one check in its own process
    name=$2 bin=$3/bin
    # Scratch files (fifos, cores) in $TMPDIR: a tmpfs in the guest.
    d=$(mktemp -d "${TMPDIR:-/tmp}/kernel-smoke-$name.XXXXXX") || exit 1
    "check_$name"
    exit 0
    ;;
-* | '')
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

out=$(mkdir -p "$1" && cd "$1" && pwd)
[ "$(id -u)" = 0 ] || { echo "kernel-smoke: run as root" >&2; exit 2; }
for f in "$PRODTRACE" "$BUNYAN" "$SERVICE" "$ADDON"; do
    [ -e "$f" ] || { echo "kernel-smoke: $f missing: run cargo build --release --workspace" >&2; exit 2; }
done
prepare "$out"
uname -r >"$out/kernel.txt"
: >"$out/results.tsv"
failed=0
for name in "${CHECKS[@]}"; do
    start=$SECONDS
    rc=0
    timeout -k 10 "$CHECK_TIMEOUT" "$self" --check "$name" "$out" >"$out/$name.log" 2>&1 </dev/null || rc=$?
    secs=$((SECONDS - start))
    if [ $rc = 0 ]; then
        result=PASS why=
    else
        result=FAIL failed=1
        why=$(grep -m1 '^FAIL: ' "$out/$name.log" | cut -c7-)
        [ $rc != 124 ] || why="timed out after ${CHECK_TIMEOUT}s"
        [ -n "$why" ] || why="exit $rc: $(tail -n1 "$out/$name.log")"
    fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$result" "$secs" "$why" >>"$out/results.tsv"
    printf 'kernel-smoke: %-18s %s (%ss) %s\n' "$name" "$result" "$secs" "$why"
done
exit $failed
