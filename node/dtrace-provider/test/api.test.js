/*
 * dtrace-provider's API without a tracer: validation and error messages,
 * callbacks that must not run while nobody traces, enable/disable and the
 * generated object's life cycle (file, mapping, SDT notes), the register
 * hook, cleanup at exit and of files left by killed processes.
 */
'use strict';

process.env.NODE_DTRACE_PROVIDER_REQUIRE = 'hard';

const test = require('node:test');
const assert = require('assert');
const cp = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const h = require('./helpers');
const d = require('../index.js');

function myObjects() {
    return h.objectPaths(process.pid);
}

test('createDTraceProvider validates like dtrace-provider', () => {
    assert.throws(() => d.createDTraceProvider(), { name: 'TypeError',
        message: 'Must give provider name as argument' });
    assert.throws(() => d.createDTraceProvider(42), { name: 'TypeError',
        message: 'Must give provider name as argument' });
    assert.throws(() => d.createDTraceProvider('p', 7), { name: 'TypeError',
        message: 'Must give module name as argument' });
    assert.throws(() => new d.DTraceProvider('p', 'm', 'x'),
        { message: 'Expected only provider name and module as arguments' });
    for (const bad of ['', 'a b', 'a:b', '9lives', 'x'.repeat(64), 'nul\0'])
        assert.throws(() => d.createDTraceProvider(bad),
            /^Error: invalid provider name/);
    const p = d.createDTraceProvider('okprov', 'okmod');
    assert.ok(p instanceof d.DTraceProvider);
    assert.ok(d.createDTraceProvider('x'.repeat(63)));
});

test('addProbe: names, types, argument count, duplicates', () => {
    const p = d.createDTraceProvider('addprobes');
    const probe = p.addProbe('log-debug', 'char *');
    assert.strictEqual(p['log-debug'], probe);
    assert.strictEqual(probe.__prov__, p);
    assert.strictEqual(typeof probe.fire, 'function');
    for (const bad of ['', 'has space', 'a:b', 'x'.repeat(64), 'tab\t'])
        assert.throws(() => p.addProbe(bad, 'int'),
            /^Error: invalid probe name/);
    assert.throws(() => p.addProbe('log-debug', 'int'), {
        message: 'probe named addprobes:mod-addprobes:log-debug:log-debug ' +
            'already exists' });
    const types33 = new Array(33).fill('int');
    assert.throws(() => p.addProbe('too-many', ...types33), {
        message: 'probe addprobes:too-many has 33 arguments; at most 32 ' +
            'are supported' });
    assert.strictEqual(p['too-many'], undefined);
    assert.ok(p.addProbe('max', ...new Array(32).fill('int')));
    assert.ok(p.addProbe('none'));
});

test('fire without a tracer never runs the callback', () => {
    const p = d.createDTraceProvider('quiet');
    const probe = p.addProbe('q', 'int', 'char *', 'json');
    let calls = 0;
    const cb = () => { calls++; return [1, 'a', {}]; };
    /* Before enable(), after enable() and after disable(). */
    assert.strictEqual(probe.fire(cb), undefined);
    assert.strictEqual(p.fire('q', cb), true);
    p.enable();
    for (let i = 0; i < 1000; i++)
        assert.strictEqual(probe.fire(cb, i), undefined);
    assert.strictEqual(p.fire('q', cb), true);
    assert.strictEqual(p.fire('nosuch', cb), undefined);
    p.disable();
    assert.strictEqual(probe.fire(cb), undefined);
    assert.strictEqual(calls, 0);
});

test('fire validates its arguments like dtrace-provider', () => {
    const p = d.createDTraceProvider('firecheck');
    const probe = p.addProbe('f', 'int');
    assert.throws(() => probe.fire(), { name: 'TypeError',
        message: 'Must give probe value callback as first argument' });
    assert.throws(() => probe.fire('x'), { name: 'TypeError',
        message: 'Must give probe value callback as first argument' });
    assert.throws(() => p.fire(1, () => []), { name: 'TypeError',
        message: 'Must give probe name as first argument' });
    assert.throws(() => p.fire('f', 'x'), { name: 'TypeError',
        message: 'Must give probe value callback as second argument' });
    /* A property that is not one of this provider's probes. */
    p.other = { fire: () => { throw new Error('called'); } };
    assert.strictEqual(p.fire('other', () => []), undefined);
    const q = d.createDTraceProvider('firecheck2');
    q.f = probe;
    assert.strictEqual(q.fire('f', () => []), undefined);
});

test('enable writes, maps and notes one object; twice is a no-op', () => {
    const p = d.createDTraceProvider('lifecycle', 'mymod');
    assert.throws(() => p.enable(), { message: 'no probes defined' });
    p.addProbe('str-probe', 'char *');
    p.addProbe('int_probe', 'int', 'int64', 'uint8_t', 'json', 'float');
    p.addProbe('none');
    const before = myObjects();
    p.enable();
    const objects = myObjects().filter((f) => !before.includes(f));
    assert.strictEqual(objects.length, 1);
    const file = objects[0];
    assert.match(path.basename(file),
        new RegExp('^prodtrace-usdt-' + process.pid + '-lifecycle-\\d+\\.so$'));
    assert.strictEqual(fs.statSync(file).mode & 0o777, 0o644);
    const notes = h.stapsdtNotes(file);
    assert.deepStrictEqual(notes.map((n) => [n.provider, n.name, n.args]), [
        ['lifecycle', 'str-probe', '8@%rdi'],
        /* dtrace-provider's prefix rule: int64 is an int; uint8_t, json
         * and float are strings. */
        ['lifecycle', 'int_probe', '-8@%rdi -8@%rsi 8@%rdx 8@%rcx 8@%r8'],
        ['lifecycle', 'none', '']
    ]);
    for (const n of notes) {
        assert.notStrictEqual(n.semaphore, 0n);
        assert.strictEqual(h.semaphore(process.pid, 'lifecycle', n.name), 0);
    }
    p.enable();
    assert.deepStrictEqual(myObjects().filter((f) => !before.includes(f)),
        [file]);
    /* Probes added after enable() join at the next disable()/enable(). */
    p.addProbe('late', 'int');
    p.disable();
    assert.strictEqual(fs.existsSync(file), false);
    assert.deepStrictEqual(myObjects().filter((f) => !before.includes(f)), []);
    p.disable();
    p.enable();
    const again = myObjects().filter((f) => !before.includes(f));
    assert.strictEqual(again.length, 1);
    assert.notStrictEqual(again[0], file);
    assert.deepStrictEqual(h.stapsdtNotes(again[0]).map((n) => n.name),
        ['str-probe', 'int_probe', 'none', 'late']);
    p.disable();
});

test('a 32-argument probe passes arguments 7-32 on the stack', () => {
    const p = d.createDTraceProvider('wide32');
    p.addProbe('p', ...new Array(32).fill('char *'));
    p.enable();
    const [file] = h.objectPaths(process.pid).filter((f) => /wide32/.test(f));
    const spec = h.stapsdtNotes(file)[0].args.split(' ');
    assert.strictEqual(spec.length, 32);
    assert.deepStrictEqual(spec.slice(5, 8),
        ['8@%r9', '8@8(%rsp)', '8@16(%rsp)']);
    assert.strictEqual(spec[31], '8@208(%rsp)');
    p.disable();
});

test('removeProbe drops the probe from the provider', () => {
    const p = d.createDTraceProvider('removal');
    const a = p.addProbe('a', 'int');
    p.addProbe('b', 'int');
    assert.strictEqual(p.removeProbe(a), true);
    assert.strictEqual(p.a, undefined);
    assert.throws(() => p.removeProbe(a),
        { message: 'failed to remove probe removal:mod-removal:a:a' });
    p.enable();
    const [file] = h.objectPaths(process.pid).filter((f) => /removal/.test(f));
    assert.deepStrictEqual(h.stapsdtNotes(file).map((n) => n.name), ['b']);
    p.disable();
});

function runNode(args, env) {
    return cp.spawnSync(process.execPath, args, {
        env: Object.assign({}, h.CHILD_ENV, env || {}), encoding: 'utf8'
    });
}

test('register makes require("dtrace-provider") this package', () => {
    const probe = 'const d = require("dtrace-provider");' +
        'console.log(require.resolve("dtrace-provider"));' +
        'console.log(typeof d.createDTraceProvider);';
    /* Resolution from examples/node, where the real dtrace-provider is. */
    const cwd = path.join(h.REPO, 'examples', 'node');
    const plain = cp.spawnSync(process.execPath, ['-e', probe], {
        cwd: cwd, encoding: 'utf8',
        /* The real package throws without its binding when asked "hard". */
        env: Object.assign({}, h.CHILD_ENV, { NODE_DTRACE_PROVIDER_REQUIRE: '' })
    });
    assert.strictEqual(plain.status, 0, plain.stderr);
    assert.match(plain.stdout, /node_modules\/dtrace-provider\/dtrace-provider\.js/);
    const hooked = cp.spawnSync(process.execPath, ['-r', h.REGISTER, '-e', probe],
        { cwd: cwd, encoding: 'utf8', env: h.CHILD_ENV });
    assert.strictEqual(hooked.status, 0, hooked.stderr);
    assert.strictEqual(hooked.stdout,
        path.join(h.PKG, 'index.js') + '\nfunction\n');
    const viaOptions = cp.spawnSync(process.execPath, ['-e', probe], {
        cwd: cwd, encoding: 'utf8',
        env: Object.assign({}, h.CHILD_ENV,
            { NODE_OPTIONS: '-r ' + h.REGISTER })
    });
    assert.strictEqual(viaOptions.status, 0, viaOptions.stderr);
    assert.strictEqual(viaOptions.stdout, hooked.stdout);
});

test('generated objects are removed at exit and after kill -9', async () => {
    const script = 'const d = require("dtrace-provider");' +
        'const p = d.createDTraceProvider("exiter"); p.addProbe("x", "int");' +
        'p.enable(); console.log(require("fs").readFileSync("/proc/self/maps",' +
        '"utf8").match(/\\/\\S*prodtrace-usdt-\\S*exiter\\S*\\.so/)[0]);';
    const r = runNode(['-r', h.REGISTER, '-e', script]);
    assert.strictEqual(r.status, 0, r.stderr);
    const file = r.stdout.trim();
    assert.match(file, /prodtrace-usdt-\d+-exiter-0\.so$/);
    assert.strictEqual(fs.existsSync(file), false);
    /* Same with process.exit() from a timer. */
    const r2 = runNode(['-r', h.REGISTER, '-e',
        script + 'setTimeout(() => process.exit(3), 10);']);
    assert.strictEqual(r2.status, 3, r2.stderr);
    assert.strictEqual(fs.existsSync(r2.stdout.trim()), false);

    /* A SIGKILLed process leaves its object; the next enable() anywhere
     * sweeps files of dead processes. */
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usdt-sweep-'));
    const env = { PRODTRACE_USDT_DIR: dir };
    const victim = await h.startApp('probe-app.js', [], { env: env });
    assert.strictEqual(fs.readdirSync(dir).length, 3);
    victim.child.kill('SIGKILL');
    await victim.exited;
    assert.strictEqual(fs.readdirSync(dir).length, 3);
    const r3 = runNode(['-r', h.REGISTER, '-e', script], env);
    assert.strictEqual(r3.status, 0, r3.stderr);
    assert.deepStrictEqual(fs.readdirSync(dir), []);

    /* A leftover bearing the pid of a process that has not enabled
     * anything yet is stale too (pid reuse). */
    const own = runNode(['-r', h.REGISTER, '-e',
        'const fs = require("fs"); const f = ' + JSON.stringify(dir) +
        ' + "/prodtrace-usdt-" + process.pid + "-old-0.so";' +
        'fs.writeFileSync(f, "stale"); ' + script +
        'console.log(fs.existsSync(f));'], env);
    assert.strictEqual(own.status, 0, own.stderr);
    assert.match(own.stdout, /-exiter-0\.so\nfalse\n$/);
    assert.deepStrictEqual(fs.readdirSync(dir), []);
    fs.rmdirSync(dir);
});

test('a provider collected by the GC unloads its object', () => {
    const script = 'const d = require("dtrace-provider"); const fs = require("fs");' +
        'function make() { const p = d.createDTraceProvider("gcme");' +
        'p.addProbe("x", "int"); p.enable(); return fs.readFileSync(' +
        '"/proc/self/maps", "utf8").match(/\\/\\S*gcme\\S*\\.so/)[0]; }' +
        'const file = make(); console.log(fs.existsSync(file)); global.gc();' +
        'setTimeout(() => { global.gc(); setTimeout(() => { console.log(' +
        'fs.existsSync(file), /gcme/.test(fs.readFileSync("/proc/self/maps",' +
        '"utf8"))); }, 100); }, 100);';
    const r = runNode(['--expose-gc', '-r', h.REGISTER, '-e', script]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stdout, 'true\nfalse false\n');
});

test('names taken by someone else are skipped, never overwritten', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usdt-squat-'));
    const squatted = [];
    for (let seq = 0; seq < 200; seq++) {
        const f = path.join(dir, 'prodtrace-usdt-' + process.pid + '-squat-' +
            seq + '.so');
        fs.writeFileSync(f, 'not yours');
        squatted.push(f);
    }
    const saved = process.env.PRODTRACE_USDT_DIR;
    process.env.PRODTRACE_USDT_DIR = dir;
    try {
        const p = d.createDTraceProvider('squat');
        p.addProbe('x', 'int');
        p.enable();
        const [mine] = myObjects().filter((f) => f.startsWith(dir + '/'));
        assert.match(path.basename(mine),
            new RegExp('^prodtrace-usdt-' + process.pid +
                '-squat-\\d+-[0-9a-f]{16}\\.so$'));
        p.disable();
        assert.strictEqual(fs.existsSync(mine), false);
        for (const f of squatted)
            assert.strictEqual(fs.readFileSync(f, 'utf8'), 'not yours');
    } finally {
        if (saved === undefined)
            delete process.env.PRODTRACE_USDT_DIR;
        else
            process.env.PRODTRACE_USDT_DIR = saved;
        fs.rmSync(dir, { recursive: true });
    }
});

test('an unusable directory gives a clear error and no object', () => {
    const r = runNode(['-r', h.REGISTER, '-e',
        'const p = require("dtrace-provider").createDTraceProvider("nodir");' +
        'p.addProbe("x"); try { p.enable(); } catch (e) {' +
        'console.log(e.message); } p.x.fire(() => { throw 1; });' +
        /* Fixed, the same provider enables fine. */
        'delete process.env.PRODTRACE_USDT_DIR; p.enable();' +
        'console.log(/prodtrace-usdt-\\d+-nodir-1\\.so/.test(require("fs")' +
        '.readFileSync("/proc/self/maps", "utf8")));'],
    { PRODTRACE_USDT_DIR: '/nonexistent/dir' });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /^failed to enable provider nodir: cannot write \/nonexistent\/dir\/prodtrace-usdt-\d+-nodir-0\.so: No such file or directory \(os error 2\) \(set PRODTRACE_USDT_DIR to a writable directory\)\ntrue\n$/);
});

test('without the add-on: an error if required hard, else no-op probes', () => {
    /* A copy of index.js alone in a directory has no add-on to fall back on. */
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usdt-noaddon-'));
    fs.copyFileSync(path.join(h.PKG, 'index.js'), path.join(dir, 'index.js'));
    const script = 'const d = require(' + JSON.stringify(dir) + ');' +
        'const p = d.createDTraceProvider("stubbed"); const q = p.addProbe("q");' +
        'p.enable(); console.log(q.fire(() => { throw new Error("ran"); }));';
    const env = { PRODTRACE_DTRACE_PROVIDER_ADDON: '' };
    const hard = runNode(['-e', script], env);
    assert.notStrictEqual(hard.status, 0);
    assert.match(hard.stderr, /prodtrace-dtrace-provider: add-on not found \(tried /);
    const soft = runNode(['-e', script],
        Object.assign({ NODE_DTRACE_PROVIDER_REQUIRE: '' }, env));
    assert.strictEqual(soft.status, 0, soft.stderr);
    assert.strictEqual(soft.stdout, 'undefined\n');
    fs.rmSync(dir, { recursive: true });
});
