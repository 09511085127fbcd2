#!/usr/bin/env bash
# node-provider.sh — cost per call of dtrace-provider's probe.fire() and of a
# suppressed bunyan log.debug(), for three setups run interleaved, ROUNDS
# times each (medians reported):
#   stub      the npm dtrace-provider on Linux: its no-op stub (bunyan today)
#   disabled  prodtrace-dtrace-provider (node -r register), nobody tracing
#   traced-count  prodtrace-dtrace-provider, bpftrace -p PID counting the
#                 events of both probes (the cost of the probe itself)
#   traced-print  the same, bpftrace printing every record (str(arg0)) to a
#                 file (a consumer that reads every record)
#   traced-bunyan prodtrace's `bunyan -p PID -l debug -o bunyan` writing the
#                 records to a file (bunyan's probes only)
# Writes the table to bench/node-provider.md (OUT=... to change) and prints
# it.  Needs root (bpftrace), scripts/setup.sh done (add-on built, bunyan
# installed).  Usage: bench/node-provider.sh [ROUNDS]   (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds=${1:-7}
out=${OUT:-bench/node-provider.md}
bench=$root/bench/node-provider.js
register=$root/node/dtrace-provider/register.js
bunyan=$root/examples/node/node_modules/bunyan
bunyan_cli=${PRODTRACE_BUNYAN_BIN:-$root/target/release/bunyan}
export NODE_DTRACE_PROVIDER_REQUIRE=hard
export PRODTRACE_DTRACE_PROVIDER_ADDON=${PRODTRACE_DTRACE_PROVIDER_ADDON:-$root/target/release/libprodtrace_dtrace_provider.so}
[ -f "$PRODTRACE_DTRACE_PROVIDER_ADDON" ] || { echo "node-provider.sh: no add-on at $PRODTRACE_DTRACE_PROVIDER_ADDON; run scripts/setup.sh" >&2; exit 1; }
[ -d "$bunyan" ] || { echo "node-provider.sh: bunyan not installed; run scripts/setup.sh" >&2; exit 1; }
[ -x "$bunyan_cli" ] || { echo "node-provider.sh: no bunyan CLI at $bunyan_cli; run scripts/setup.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results=$work/results.jsonl

run_plain() { # mode, node args...
    local mode=$1; shift
    # The npm package's stub throws when told "hard": it has no binding.
    NODE_DTRACE_PROVIDER_REQUIRE= node "$@" "$bench" "$mode" "$bunyan" 2>/dev/null >>"$results"
}

# bpftrace programs of the traced modes; each prints "F …"/"D …" lines, at
# least one per probe, so the script knows both probes are attached.
count_prog='
    usdt:*:provbench:fire-one { @f = count(); if (@fs == 0) { @fs = 1; printf("F on\n"); } }
    usdt:*:bunyan:log-debug { @d = count(); if (@ds == 0) { @ds = 1; printf("D on\n"); } }'
print_prog='
    usdt:*:provbench:fire-one { printf("F %s\n", str(arg0)); }
    usdt:*:bunyan:log-debug { printf("D %s\n", str(arg0)); }'

# Has the tracer of `mode` written events of every probe it traces?
tracer_ready() { # mode, trace file
    if [ "$1" = traced-bunyan ]; then
        grep -q '"level":20' "$2" 2>/dev/null
    else
        grep -q '^F ' "$2" 2>/dev/null && grep -q '^D ' "$2"
    fi
}

run_traced() { # mode, bpftrace program
    local mode=$1 prog=$2
    local res=$work/traced.json err=$work/traced.err trace=$work/trace.txt
    rm -f "$res" "$err" "$trace"
    node -r "$register" "$bench" "$mode" "$bunyan" >"$res" 2>"$err" &
    local pid=$!
    until grep -q "^ready $pid\$" "$err" 2>/dev/null; do sleep 0.05; done
    if [ "$mode" = traced-bunyan ]; then
        "$bunyan_cli" -p "$pid" -l debug -o bunyan >"$trace" 2>"$work/bpftrace.err" &
    else
        BPFTRACE_STRLEN=200 bpftrace -p "$pid" -e "$prog" >"$trace" 2>"$work/bpftrace.err" &
    fi
    local bt=$!
    until tracer_ready "$mode" "$trace"; do
        if ! kill -0 "$bt" 2>/dev/null || ! kill -0 "$pid" 2>/dev/null; then
            echo "node-provider.sh: tracing run failed:" >&2
            cat "$err" "$work/bpftrace.err" >&2
            kill "$pid" "$bt" 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
    kill -USR2 "$pid"
    wait "$pid"
    kill -INT "$bt"; wait "$bt" || true
    cat "$res" >>"$results"
    if [ "$mode" = traced-print ]; then
        grep -c '^[FD] ' "$trace" >>"$work/events"
        { grep -o 'Lost [0-9]* events' "$trace" "$work/bpftrace.err" || true; } |
            awk '{ n += $2 } END { print n + 0 }' >>"$work/lost"
    fi
}

for ((i = 1; i <= rounds; i++)); do
    echo "round $i/$rounds" >&2
    run_plain stub
    run_plain disabled -r "$register"
    run_traced traced-count "$count_prog"
    run_traced traced-print "$print_prog"
    run_traced traced-bunyan ""
done

node - "$results" "$rounds" "$out" "$(paste -sd' ' "$work/events")" "$(paste -sd' ' "$work/lost")" <<'EOF'
const fs = require('fs');
const [file, rounds, out, events, lost] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map(JSON.parse);
const median = (xs) => { xs = xs.slice().sort((a, b) => a - b);
    const m = xs.length >> 1; return xs.length % 2 ? xs[m] : (xs[m - 1] + xs[m]) / 2; };
const fmt = (ns) => ns < 10 ? ns.toFixed(2) : ns < 100 ? ns.toFixed(1) : ns.toFixed(0);
const by = (mode, key) => median(rows.filter((r) => r.mode === mode).map((r) => r[key]));
const label = {
    stub: 'dtrace-provider 0.8.8 (npm) Linux stub',
    disabled: 'prodtrace-dtrace-provider, not traced',
    'traced-count': 'prodtrace-dtrace-provider, traced by bpftrace (counts)',
    'traced-print': 'prodtrace-dtrace-provider, traced by bpftrace (prints each record)',
    'traced-bunyan': 'prodtrace-dtrace-provider, snooped by `bunyan -p PID -l debug`'
};
let md = '| setup | probe.fire(cb) ns/call | bunyan log.debug() at level info, ns/call |\n|---|---:|---:|\n';
for (const m of ['stub', 'disabled', 'traced-count', 'traced-print', 'traced-bunyan']) {
    const fire = m === 'traced-bunyan' ? 'not traced: ' + fmt(by(m, 'fire_ns')) : fmt(by(m, 'fire_ns'));
    md += '| ' + label[m] + ' | ' + fire + ' | ' + fmt(by(m, 'debug_ns')) + ' |\n';
}
const enableUs = by('disabled', 'enable_us');
const text = `# dtrace-provider on Linux: cost of probes (prodtrace-dtrace-provider vs the npm stub)

Medians of ${rounds} interleaved rounds (the five setups in turn), each a fresh
node process: 5,000,000 calls untraced, 100,000 traced (50,000 for bunyan).
\`probe.fire(cb)\`: a one-argument (\`char *\`) probe whose callback returns a
constant string. \`log.debug()\`: unmodified bunyan 1.8.15, logger at level
info, so the record is dropped unless a tracer enabled \`bunyan:log-debug\`
(then bunyan builds the record JSON for the probe).

${md}
Traced rows include the uprobe hit (the kernel emulates the probe site's
\`nop\`), the callback, argument conversion and the tracer's BPF program;
the printing rows also pay for the tracer's user-space reader, which runs
on the same two CPUs (bpftrace wakes up per event; \`bunyan -p\` reads a
ring buffer and formats the records). Events bpftrace printed per printing
run (readiness, warm-up and measured loops): ${events}; events it reported
lost: ${lost}.

One-off cost: \`enable()\` + \`disable()\` of a provider with bunyan's six
probes (generate the ELF object, write it, dlopen, dlclose, unlink):
${enableUs.toFixed(0)} µs (median; the stub does nothing).

Reproduce: \`bench/node-provider.sh ${rounds}\` (root; after scripts/setup.sh).

Machine: ${require('os').cpus().length} CPUs (${require('os').cpus()[0].model}), node ${process.version},
${require('os').release()}; shared and noisy, so compare rows of one run only.
`;
fs.writeFileSync(out, text);
process.stdout.write(text);
EOF
