/*
 * End to end with the real, unmodified bunyan npm package: an app logging
 * at level info with frequent debug calls, started with the register hook.
 * bpftrace sees the debug records bunyan never writes; the app's own output
 * keeps only its info records; without the hook bunyan gets dtrace-provider's
 * stub and there is nothing to see.
 */
'use strict';

const test = require('node:test');
const assert = require('assert');
const cp = require('child_process');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

/* prodtrace's bunyan CLI: tests/node.rs passes the one built beside the
 * add-on; by default the workspace's release build. */
const BUNYAN_CLI = process.env.PRODTRACE_BUNYAN_BIN ||
    path.join(h.REPO, 'target', 'release', 'bunyan');

test('bunyan under -r register: bpftrace sees debug records', async () => {
    assert.ok(fs.existsSync(h.BUNYAN), 'bunyan installed: ' + h.BUNYAN);
    const app = await h.startApp('bunyan-app.js');
    try {
        const [file] = h.objectPaths(app.pid);
        assert.deepStrictEqual(h.stapsdtNotes(file).map((n) => n.provider +
            ':' + n.name + ' ' + n.args), ['trace', 'debug', 'info', 'warn',
            'error', 'fatal'].map((l) => 'bunyan:log-' + l + ' 8@%rdi'));

        const bt = await h.bpftrace('usdt:' + file + ':bunyan:log-debug ' +
            '{ printf("%s\\n", str(arg0)); }', ['-p', String(app.pid)], 200);
        await h.until(() => h.semaphore(app.pid, 'bunyan', 'log-debug') === 1,
            10000, 'bpftrace to enable log-debug');
        await bt.out.wait(/"level":20/, 20, 15000, 'debug records');
        const lines = await h.stopBpftrace(bt);
        const records = lines.map((l) => JSON.parse(l));
        let last = 0;
        for (const r of records) {
            assert.strictEqual(r.level, 20);
            assert.strictEqual(r.name, 'usdt-demo');
            assert.strictEqual(r.pid, app.pid);
            assert.strictEqual(r.msg, 'debug record ' + r.n);
            assert.ok(r.n > last);
            last = r.n;
        }
        assert.ok(records.length >= 20);
        /* The tracer detached: the kernel put the semaphore back. */
        await h.until(() => h.semaphore(app.pid, 'bunyan', 'log-debug') === 0,
            5000, 'the log-debug semaphore back to 0');

        /* The app itself printed info records only. */
        await app.out.wait(/"level":30/, 2, 10000, 'info records');
        for (const l of app.out.lines.filter((x) => x !== ''))
            assert.strictEqual(JSON.parse(l).level, 30, l);
    } finally {
        await h.stopApp(app);
    }
});

test('bunyan -p PID -l debug shows the debug records', async () => {
    assert.ok(fs.existsSync(BUNYAN_CLI), 'bunyan CLI built: ' + BUNYAN_CLI);
    const app = await h.startApp('bunyan-app.js');
    try {
        const snoop = cp.spawn(BUNYAN_CLI, ['-p', String(app.pid), '-l', 'debug',
            '-o', 'bunyan'], { stdio: ['ignore', 'pipe', 'pipe'] });
        const out = new h.Lines(snoop.stdout);
        const err = new h.Lines(snoop.stderr);
        const exited = new Promise((resolve) => snoop.on('exit', (code, sig) =>
            resolve({ code: code, signal: sig })));
        try {
            await Promise.race([
                out.wait(/"level":30/, 2, 20000, 'records from bunyan -p'),
                exited.then((r) => {
                    throw new Error('bunyan -p exited early (' + JSON.stringify(r) +
                        '): ' + err.lines.join('\n'));
                })
            ]);
        } finally {
            snoop.kill('SIGINT');
        }
        const status = await exited;
        assert.strictEqual(status.code, 0, err.lines.join('\n'));
        const records = out.lines.filter((l) => l !== '').map((l) => JSON.parse(l));
        const debug = records.filter((r) => r.level === 20);
        assert.ok(debug.length >= 10, 'debug records: ' + debug.length);
        assert.deepStrictEqual(Array.from(new Set(records.map((r) => r.level)))
            .sort(), [20, 30]);
        for (const r of debug) {
            assert.strictEqual(r.pid, app.pid);
            assert.strictEqual(r.msg, 'debug record ' + r.n);
        }
        /* Consecutive: none lost at 100 records/s. */
        for (let i = 1; i < debug.length; i++)
            assert.strictEqual(debug[i].n, debug[i - 1].n + 1);
        /* The tracer detached: the kernel put the semaphore back. */
        await h.until(() => h.semaphore(app.pid, 'bunyan', 'log-debug') === 0,
            5000, 'the log-debug semaphore back to 0');
        /* The app's own output: info only. */
        for (const l of app.out.lines.filter((x) => x !== ''))
            assert.strictEqual(JSON.parse(l).level, 30, l);
    } finally {
        await h.stopApp(app);
    }
});

test('bunyan without the hook gets the stub: no probes', async () => {
    const app = await h.startApp('bunyan-app.js', [], { register: false,
        env: { NODE_DTRACE_PROVIDER_REQUIRE: '' } });
    try {
        await app.out.wait(/"level":30/, 1, 10000, 'an info record');
        assert.deepStrictEqual(h.objectPaths(app.pid), []);
    } finally {
        await h.stopApp(app);
    }
});
