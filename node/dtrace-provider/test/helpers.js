/*
 * Shared helpers of the node tests: paths, spawning fixture apps with the
 * register hook, running bpftrace against them (waiting until it has
 * attached), and reading a live process's generated objects, probe notes
 * and semaphores from /proc — the way an outside tool sees them.
 */
'use strict';

const assert = require('assert');
const cp = require('child_process');
const fs = require('fs');
const path = require('path');

const PKG = path.resolve(__dirname, '..');
const REPO = path.resolve(PKG, '..', '..');
const REGISTER = path.join(PKG, 'register.js');
const FIXTURES = path.join(__dirname, 'fixtures');
const BUNYAN = path.join(REPO, 'examples', 'node', 'node_modules', 'bunyan');
const OBJECT_RE = /\/prodtrace-usdt-\d+-[^/]*\.so( \(deleted\))?$/;

/* Children must never fall back to the stub silently. */
const CHILD_ENV = Object.assign({}, process.env, {
    NODE_DTRACE_PROVIDER_REQUIRE: 'hard',
    PRODTRACE_TEST_BUNYAN: BUNYAN
});

/* Line-buffered reader over a stream, with waiting for a matching line. */
class Lines {
    constructor(stream) {
        this.lines = [];
        this.waiters = [];
        let partial = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk) => {
            const parts = (partial + chunk).split('\n');
            partial = parts.pop();
            for (const line of parts) {
                this.lines.push(line);
            }
            this.waiters = this.waiters.filter((w) => !w());
        });
    }

    /* Resolves with the first `count` lines matching `re` (all lines so far
     * count), or rejects after `ms` with `what` and the lines seen. */
    wait(re, count, ms, what) {
        return new Promise((resolve, reject) => {
            const check = () => {
                const hits = this.lines.filter((l) => re.test(l));
                if (hits.length >= count) {
                    clearTimeout(timer);
                    resolve(hits.slice(0, count));
                    return true;
                }
                return false;
            };
            const timer = setTimeout(() => {
                reject(new Error('timed out waiting for ' + what + '; saw:\n' +
                    this.lines.slice(-20).join('\n')));
            }, ms);
            if (!check())
                this.waiters.push(check);
        });
    }
}

/* Starts `node [-r register] fixture args...`; resolves once it printed
 * its "ready" line on stderr. */
async function startApp(fixture, args, opts) {
    opts = opts || {};
    const nodeArgs = [];
    if (opts.register !== false)
        nodeArgs.push('-r', REGISTER);
    nodeArgs.push(path.join(FIXTURES, fixture));
    const child = cp.spawn(process.execPath, nodeArgs.concat(args || []), {
        env: Object.assign({}, CHILD_ENV, opts.env || {}),
        stdio: ['ignore', 'pipe', 'pipe', 'ipc']
    });
    const app = { child: child, pid: child.pid, out: new Lines(child.stdout),
        err: new Lines(child.stderr) };
    app.exited = new Promise((resolve) => child.on('exit', (code, sig) => {
        resolve({ code: code, signal: sig });
    }));
    await app.err.wait(/^ready/, 1, 15000, fixture + ' to start');
    return app;
}

async function stopApp(app) {
    if (app.child.exitCode === null && app.child.signalCode === null)
        app.child.kill('SIGTERM');
    return app.exited;
}

/* Runs bpftrace with `program` (plus `args`), resolves once it announced
 * "Attaching" (printed just before it attaches: wait for events or for a
 * semaphore to know it is attached).  `strlen`: bytes str() reads (64; at
 * most 200, and one such string per program fits the BPF stack). */
async function bpftrace(program, args, strlen) {
    const child = cp.spawn('bpftrace', (args || []).concat(['-e', program]), {
        env: Object.assign({}, process.env,
            { BPFTRACE_STRLEN: String(strlen || 64) }),
        stdio: ['ignore', 'pipe', 'pipe']
    });
    const bt = { child: child, out: new Lines(child.stdout),
        err: new Lines(child.stderr) };
    bt.exited = new Promise((resolve) => child.on('exit', (code, sig) => {
        resolve({ code: code, signal: sig });
    }));
    child.on('error', (e) => { bt.spawnError = e; });
    try {
        await Promise.race([
            bt.out.wait(/^Attaching \d+ probe/, 1, 30000, 'bpftrace to attach'),
            bt.exited.then((r) => {
                throw new Error('bpftrace exited (' + JSON.stringify(r) +
                    '): ' + bt.err.lines.join('\n'));
            })
        ]);
    } catch (e) {
        child.kill('SIGKILL');
        throw e;
    }
    return bt;
}

/* Stops bpftrace and waits for it; returns its output lines after the
 * "Attaching" line. */
async function stopBpftrace(bt) {
    if (bt.child.exitCode === null && bt.child.signalCode === null)
        bt.child.kill('SIGINT');
    await bt.exited;
    const start = bt.out.lines.findIndex((l) => /^Attaching/.test(l));
    return bt.out.lines.slice(start + 1).filter((l) => l !== '');
}

/* The generated objects mapped by `pid`: [{path, start, offset}]. */
function mappedObjects(pid) {
    const maps = fs.readFileSync('/proc/' + pid + '/maps', 'utf8').split('\n');
    const out = [];
    for (const line of maps) {
        const m = /^([0-9a-f]+)-[0-9a-f]+ \S+ ([0-9a-f]+) \S+ \S+\s+(\S.*)$/
            .exec(line);
        if (m && OBJECT_RE.test(m[3]))
            out.push({ path: m[3], start: BigInt('0x' + m[1]),
                offset: BigInt('0x' + m[2]) });
    }
    return out;
}

function objectPaths(pid) {
    return Array.from(new Set(mappedObjects(pid).map((m) => m.path)));
}

/* The SDT notes of an object, via readelf: [{provider, name, location,
 * semaphore, args}]. */
function stapsdtNotes(file) {
    const text = cp.execFileSync('readelf', ['-n', '--wide', file],
        { encoding: 'utf8' });
    const notes = [];
    const re = /Provider: (.*)\n\s+Name: (.*)\n\s+Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), Semaphore: (0x[0-9a-f]+)\n\s+Arguments: ?(.*)/g;
    let m;
    while ((m = re.exec(text)) !== null) {
        notes.push({ provider: m[1], name: m[2], location: BigInt(m[3]),
            base: BigInt(m[4]), semaphore: BigInt(m[5]), args: m[6].trim() });
    }
    return notes;
}

/* Reads the u16 semaphore of provider:probe in process `pid` from
 * /proc/PID/mem (the objects map file offsets 1:1 to addresses). */
function semaphore(pid, provider, probe) {
    for (const file of objectPaths(pid)) {
        const note = stapsdtNotes(file).find((n) => n.provider === provider &&
            n.name === probe);
        if (!note)
            continue;
        const maps = mappedObjects(pid).filter((m) => m.path === file);
        const seg = maps.filter((m) => m.offset <= note.semaphore)
            .sort((a, b) => (a.offset > b.offset ? -1 : 1))[0];
        const base = seg.start - seg.offset;
        const fd = fs.openSync('/proc/' + pid + '/mem', 'r');
        try {
            const buf = Buffer.alloc(2);
            fs.readSync(fd, buf, 0, 2, base + note.semaphore);
            return buf.readUInt16LE(0);
        } finally {
            fs.closeSync(fd);
        }
    }
    throw new Error('no probe ' + provider + ':' + probe + ' in ' + pid);
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/* Polls `fn` until it returns true, failing after `ms`. */
async function until(fn, ms, what) {
    const deadline = Date.now() + ms;
    while (!fn()) {
        if (Date.now() > deadline)
            assert.fail('timed out waiting for ' + what);
        await sleep(50);
    }
}

module.exports = {
    PKG, REPO, REGISTER, FIXTURES, BUNYAN, CHILD_ENV, Lines, startApp, stopApp,
    bpftrace, stopBpftrace, mappedObjects, objectPaths, stapsdtNotes,
    semaphore, sleep, until
};
