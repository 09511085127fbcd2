/*
 * One benchmark run of a dtrace-provider implementation, printing JSON:
 *   {"mode": ..., "fire_ns": ..., "debug_ns": ...}
 * fire_ns:  ns per probe.fire(cb) of a one-string ('char *') probe;
 * debug_ns: ns per bunyan log.debug('...') with the logger at level info
 *           (bunyan fires its log-debug probe for every such call).
 * Modes (bench/node-provider.sh runs them interleaved):
 *   stub      require('dtrace-provider') is the npm package, which on Linux
 *             is its no-op stub (what bunyan uses on Linux today);
 *   disabled  prodtrace-dtrace-provider (run with -r register), no tracer;
 *   traced-*  prodtrace-dtrace-provider with a tracer attached (to both
 *             probes; traced-bunyan: prodtrace's bunyan -p, to bunyan's):
 *             the run waits for SIGUSR2 (sent once the tracer reported
 *             events) before measuring.
 * enable_us (untraced modes): enable() + disable() of a 6-probe provider.
 * Prints "ready <pid>" on stderr once its providers are enabled.
 */
'use strict';

const mode = process.argv[2];
const traced = mode.startsWith('traced');
const bunyanPath = process.argv[3];
const bunyan = require(bunyanPath);
/* Resolve dtrace-provider exactly as bunyan does (the stub, or ours under
 * the register hook). */
const d = require('module').createRequire(require.resolve(bunyanPath))(
    'dtrace-provider');

const dtp = d.createDTraceProvider('provbench');
const probe = dtp.addProbe('fire-one', 'char *');
dtp.enable();
const log = bunyan.createLogger({ name: 'provbench', level: 'info',
    streams: [{ level: 'info', stream: process.stdout }] });
process.stderr.write('ready ' + process.pid + '\n');

const RECORD = '{"name":"provbench","msg":"a record of typical size","n":1}';
function args() { return [RECORD]; }

function perCall(n, fn) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++)
        fn(i);
    return Number(process.hrtime.bigint() - t0) / n;
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main() {
    if (traced) {
        /* Keep both probes firing until the script has seen the tracer
         * print events of both, and says so with SIGUSR2. */
        let go = false;
        process.on('SIGUSR2', () => { go = true; });
        const deadline = Date.now() + 60000;
        while (!go) {
            probe.fire(args);
            log.debug('probe check');
            if (Date.now() > deadline)
                throw new Error('no go signal within 60 s');
            await sleep(10);
        }
        let called = false;
        probe.fire(() => { called = true; return args(); });
        /* bunyan -p traces bunyan's probes only. */
        if (!called && mode !== 'traced-bunyan')
            throw new Error('fire-one is not enabled by a tracer');
    }
    const n = traced ? 100000 : 5000000;
    perCall(n / 10, () => probe.fire(args));             /* warm up */
    const fireNs = perCall(n, () => probe.fire(args));
    perCall(n / 20, (i) => log.debug('debug record %d', i));
    const debugNs = perCall(n / 2, (i) => log.debug('debug record %d', i));
    /* One-off cost: enable() + disable() of a provider like bunyan's. */
    let enableUs = null;
    if (!traced) {
        const rounds = 200;
        const t0 = process.hrtime.bigint();
        for (let r = 0; r < rounds; r++) {
            const p = d.createDTraceProvider('cycle');
            for (const l of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
                p.addProbe('log-' + l, 'char *');
            p.enable();
            p.disable();
        }
        enableUs = Number(process.hrtime.bigint() - t0) / rounds / 1000;
    }
    process.stdout.write(JSON.stringify({ mode: mode, fire_ns: fireNs,
        debug_ns: debugNs, enable_us: enableUs }) + '\n');
}

main().catch((e) => { console.error(e.message); process.exit(1); });
