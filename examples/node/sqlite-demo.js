/*
 * sqlite-demo.js — the seed article's node-sqlite3 demo, run in a loop: each
 * iteration opens an in-memory database, creates a table, inserts 10 rows
 * through a prepared statement, selects them back, and closes the database.
 * Every step is an asynchronous operation that node-sqlite3 (an N-API
 * add-on) runs on libuv's thread pool, which is what `prodtrace latency`
 * measures.
 *
 * Environment (all optional):
 *   SQLITE_DEMO_ITERATIONS=N   stop after N iterations (default: run forever)
 *   SQLITE_DEMO_DURATION=SECS  stop after SECS seconds
 *   SQLITE_DEMO_WAIT=stdin     load sqlite3, print "ready PID" on stdout, and
 *                              start only when a line arrives on stdin (lets
 *                              a tracer attach first)
 *   SQLITE_DEMO_WAIT=batches   like stdin, but run SQLITE_DEMO_ITERATIONS
 *                              iterations for every line read, print the
 *                              summary (cumulative counts) after each batch,
 *                              and exit when stdin closes
 *
 * On exit (end of iterations/duration, SIGINT, SIGTERM) it prints one JSON
 * line on stdout, `{"sqlite_demo": {...}}`, with the number of complete
 * iterations, the number of completed asynchronous calls per API call
 * (open, run, prepare, stmt_run, finalize, exec, close), the elapsed time,
 * the throughput in iterations per second, and the CPU time the whole
 * process (all threads, user + kernel) spent per iteration.  Tests and
 * bench/latency.sh read it.
 */
'use strict';

const sqlite3 = require('sqlite3');

const ROWS = 10;
const maxIterations = Number(process.env.SQLITE_DEMO_ITERATIONS || 0) || Infinity;
const durationMs = Number(process.env.SQLITE_DEMO_DURATION || 0) * 1000 || Infinity;

const calls = { open: 0, run: 0, prepare: 0, stmt_run: 0, finalize: 0, exec: 0, close: 0 };
let iterations = 0;
let started = 0n;
let startCpu = null;
let reported = false;

function check(err) {
    if (err) {
        console.error('sqlite-demo:', err.message);
        process.exit(1);
    }
}

/* Counts a completed asynchronous call of kind `what`. */
function done(what, next) {
    return (err) => {
        check(err);
        calls[what]++;
        if (next) next();
    };
}

function report(final = true) {
    if (reported) return;
    reported = final;
    const elapsedMs = started ? Number(process.hrtime.bigint() - started) / 1e6 : 0;
    const cpu = startCpu ? process.cpuUsage(startCpu) : { user: 0, system: 0 };
    const round3 = (x) => Math.round(x * 1000) / 1000;
    const summary = {
        iterations,
        calls,
        elapsed_ms: round3(elapsedMs),
        iterations_per_sec: elapsedMs > 0 ? round3((iterations / elapsedMs) * 1000) : 0,
        cpu_user_ms: round3(cpu.user / 1000),
        cpu_system_ms: round3(cpu.system / 1000),
        cpu_us_per_iteration: iterations > 0 ? round3((cpu.user + cpu.system) / iterations) : 0,
    };
    process.stdout.write(JSON.stringify({ sqlite_demo: summary }) + '\n');
}

let batchEnd = maxIterations;

function go() {
    if (iterations >= batchEnd || Number(process.hrtime.bigint() - started) / 1e6 >= durationMs) {
        if (process.env.SQLITE_DEMO_WAIT === 'batches') {
            report(false);
            batchDone();
            return;
        }
        report();
        return;
    }
    const db = new sqlite3.Database(':memory:', done('open'));
    db.serialize(() => {
        db.run('CREATE TABLE lorem (info TEXT)', done('run'));
        const stmt = db.prepare('INSERT INTO lorem VALUES (?)', done('prepare'));
        for (let i = 0; i < ROWS; i++) {
            stmt.run('Ipsum ' + i, done('stmt_run'));
        }
        stmt.finalize(done('finalize'));
        db.exec('SELECT rowid AS id, info FROM lorem', done('exec', () => {
            db.close(done('close', () => {
                iterations++;
                setImmediate(go);
            }));
        }));
    });
}

function start() {
    started = process.hrtime.bigint();
    startCpu = process.cpuUsage();
    go();
}

for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        report();
        process.exit(0);
    });
}
process.on('exit', report);

let batchDone = () => {};

if (process.env.SQLITE_DEMO_WAIT === 'batches') {
    /* One batch of SQLITE_DEMO_ITERATIONS per line on stdin, one at a time. */
    const perBatch = Number(process.env.SQLITE_DEMO_ITERATIONS || 0) || 1;
    const lines = require('readline').createInterface({ input: process.stdin });
    let queued = 0;
    let running = false;
    const next = () => {
        if (running || queued === 0) return;
        queued--;
        running = true;
        batchEnd = iterations + perBatch;
        if (!started) {
            started = process.hrtime.bigint();
            startCpu = process.cpuUsage();
        }
        go();
    };
    batchDone = () => {
        running = false;
        next();
    };
    lines.on('line', () => {
        queued++;
        next();
    });
    lines.on('close', () => {
        const wait = setInterval(() => {
            if (!running && queued === 0) {
                clearInterval(wait);
                process.exit(0);
            }
        }, 10);
    });
    process.stdout.write(`ready ${process.pid}\n`);
} else if (process.env.SQLITE_DEMO_WAIT === 'stdin') {
    process.stdout.write(`ready ${process.pid}\n`);
    process.stdin.once('data', () => {
        process.stdin.destroy();
        start();
    });
} else {
    start();
}
