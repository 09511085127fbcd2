/*
 * worker-demo.js — node's own thread-pool work started from JavaScript, on
 * the main thread and in worker_threads: COUNT rounds (default 50; argv[2])
 * of crypto.pbkdf2 then fs.stat, one at a time, on the main thread and in
 * each of WORKERS workers (default 2; argv[3]).  `prodtrace latency`
 * reports node::crypto::DeriveBitsJob<...PBKDF2Traits>::DoThreadPoolWork
 * and uv_fs_stat, COUNT * (WORKERS + 1) of each; with `--by caller` too,
 * since no native function outside node starts them.
 *
 * ROUNDS=forever (argv[2]) loops until killed.  With WORKER_DEMO_WAIT=stdin
 * it prints "ready" and starts when a line arrives on stdin (so a tracer
 * can attach first).  Prints {"worker_demo":{"pbkdf2":N,"stat":N}} (all
 * threads) at the end.
 */
'use strict';

const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const crypto = require('crypto');
const fs = require('fs');

/* COUNT rounds of pbkdf2 then stat, one at a time; calls done() with the count. */
function rounds(count, done) {
    let n = 0;
    const next = () => {
        if (n === count) return done(n);
        crypto.pbkdf2('secret', 'salt', 1, 16, 'sha1', (err) => {
            if (err) throw err;
            fs.stat(__filename, (err) => {
                if (err) throw err;
                n++;
                next();
            });
        });
    };
    next();
}

if (!isMainThread) {
    rounds(workerData, (n) => parentPort.postMessage(n));
} else {
    const count = process.argv[2] === 'forever' ? Infinity : Number(process.argv[2] || 50);
    const workers = Number(process.argv[3] || 2);
    const start = () => {
        let total = 0;
        let pending = workers + 1;
        const finished = (n) => {
            total += n;
            if (--pending === 0) {
                process.stdout.write(JSON.stringify({ worker_demo: { pbkdf2: total, stat: total } }) + '\n');
            }
        };
        for (let i = 0; i < workers; i++) {
            new Worker(__filename, { workerData: count }).on('message', finished);
        }
        rounds(count, finished);
    };
    if (process.env.WORKER_DEMO_WAIT === 'stdin') {
        process.stdout.write('ready\n');
        process.stdin.once('data', () => {
            process.stdin.destroy();
            start();
        });
    } else {
        start();
    }
}
