/*
 * The probes seen by a real tracer (bpftrace, as root): a restify-style
 * provider's int, string and json arguments with exact values, arguments on
 * the stack, strings cut at the 64 KiB limit, semaphores that count tracers
 * and gate the callbacks, listing, disable() while traced and re-enable,
 * and a process that forks.
 */
'use strict';

const test = require('node:test');
const assert = require('assert');
const fs = require('fs');
const h = require('./helpers');

function ask(app, msg) {
    return new Promise((resolve) => {
        app.child.once('message', resolve);
        app.child.send(msg);
    });
}

let app;
test.before(async () => { app = await h.startApp('probe-app.js'); });
test.after(async () => { if (app) await h.stopApp(app); });

test('restify-style probes: int, string and json arguments, exact', async () => {
    const bt = await h.bpftrace(
        'usdt:*:restify:route-start { printf("start|%s|%d|%s|%s|%s\\n", ' +
        'str(arg0), arg1, str(arg2), str(arg3), str(arg4)); }\n' +
        'usdt:*:restify:route-done { printf("done|%s|%lld|%d|%s\\n", ' +
        'str(arg0), arg1, arg2, str(arg3)); }', ['-p', String(app.pid)]);
    await bt.out.wait(/^done\|/, 5, 15000, 'route-done events');
    const lines = await h.stopBpftrace(bt);
    const starts = lines.filter((l) => l.startsWith('start|'));
    const dones = lines.filter((l) => l.startsWith('done|'));
    assert.ok(starts.length >= 5 && dones.length >= 5, lines.join('\n'));
    let last = 0;
    for (const l of starts) {
        const n = Number(l.split('|')[2]);
        assert.ok(n > last, 'ids increase: ' + l);
        last = n;
        assert.strictEqual(l, 'start|getUser|' + n + '|GET|/users/' + n +
            '|{"id":' + n + ',"q":"x y"}');
    }
    for (const l of dones) {
        const id = BigInt(l.split('|')[2]);
        const n = Number(-id - 2n ** 40n);
        assert.ok(n > 0, l);
        assert.strictEqual(l, 'done|getUser|' + id + '|' + (200 + n % 3) +
            '|{"status":"ok"}');
    }
});

test('arguments 7 and 8 travel on the stack as the notes say', async () => {
    const bt = await h.bpftrace(
        'usdt:*:wide:args8 { $sp = reg("sp"); ' +
        'printf("%d %s %d %s %d %s %d %s\\n", arg0, str(arg1), arg2, ' +
        'str(arg3), arg4, str(arg5), *(int64 *)($sp + 8), ' +
        'str(*(uint64 *)($sp + 16))); }', ['-p', String(app.pid)]);
    await bt.out.wait(/^\d+ s1/, 5, 15000, 'args8 events');
    const lines = await h.stopBpftrace(bt);
    for (const l of lines) {
        const n = Number(l.split(' ')[0]);
        assert.strictEqual(l, [n, 's1', n + 2, 's3', n + 4, 's5', -(n + 6),
            'seven-' + n].join(' '));
    }
});

test('strings are cut at 65535 bytes, on a UTF-8 boundary', async () => {
    const bt = await h.bpftrace(
        'usdt:*:big:huge { printf("[%s][%s][%s][%s][%s]\\n", ' +
        'str(arg0 + 65530), str(arg0 + 65534), str(arg0 + 65535), ' +
        'str(arg1 + 65530), str(arg1 + 65534)); }', ['-p', String(app.pid)]);
    await bt.out.wait(/^\[/, 3, 15000, 'huge events');
    const lines = await h.stopBpftrace(bt);
    for (const l of lines)
        assert.strictEqual(l, '[aaaaa][a][][\u00e9\u00e9][]');
});

test('semaphores count tracers and gate the callbacks', async () => {
    const sem = () => h.semaphore(app.pid, 'restify', 'route-start');
    const calls = async () => (await ask(app, { cmd: 'stats' })).calls;
    assert.strictEqual(sem(), 0);
    const idle1 = await calls();
    await h.sleep(300);
    const idle2 = await calls();
    assert.strictEqual(idle2['route-start'], idle1['route-start']);
    assert.strictEqual(idle2.args8, idle1.args8);

    const bt = await h.bpftrace('usdt:*:restify:route-start { @ = count(); }',
        ['-p', String(app.pid)]);
    await h.until(() => sem() === 1, 10000, 'the semaphore to count bpftrace');
    assert.strictEqual(h.semaphore(app.pid, 'restify', 'route-done'), 0);
    const t1 = await calls();
    await h.sleep(300);
    const t2 = await calls();
    assert.ok(t2['route-start'] > t1['route-start'], JSON.stringify([t1, t2]));
    assert.strictEqual(t2['route-done'], t1['route-done']);
    await h.stopBpftrace(bt);
    await h.until(() => sem() === 0, 5000, 'the semaphore back to 0');
    const after1 = await calls();
    await h.sleep(300);
    assert.strictEqual((await calls())['route-start'], after1['route-start']);
});

test('bpftrace on the object path alone (no -p) enables and sees probes', async () => {
    const [file] = h.objectPaths(app.pid).filter((f) => /-wide-/.test(f));
    const bt = await h.bpftrace('usdt:' + file + ':wide:args8 ' +
        '{ printf("%d %s\\n", pid, str(arg1)); }');
    await bt.out.wait(/ s1$/, 3, 15000, 'args8 events');
    assert.strictEqual(h.semaphore(app.pid, 'wide', 'args8'), 1);
    const lines = await h.stopBpftrace(bt);
    assert.deepStrictEqual(Array.from(new Set(lines)), [app.pid + ' s1']);
    await h.until(() => h.semaphore(app.pid, 'wide', 'args8') === 0, 5000,
        'the semaphore back to 0');
});

test('bpftrace -l lists every probe of the process', async () => {
    const out = require('child_process').execFileSync('bpftrace',
        ['-l', 'usdt:*', '-p', String(app.pid)], { encoding: 'utf8' });
    const ours = out.split('\n').filter((l) => /prodtrace-usdt-/.test(l))
        .map((l) => l.split(':').slice(-2).join(':')).sort();
    assert.deepStrictEqual(ours, ['big:huge', 'restify:route-done',
        'restify:route-start', 'wide:args8']);
});

test('disable() while traced, then enable() again', async () => {
    const [before] = h.objectPaths(app.pid).filter((f) => /restify/.test(f));
    const bt = await h.bpftrace('usdt:*:restify:route-start { printf("%d\\n", arg1); }',
        ['-p', String(app.pid)]);
    await bt.out.wait(/^\d+$/, 3, 15000, 'events before disable');
    assert.deepStrictEqual(await ask(app, { cmd: 'disable', provider: 'restify' }),
        { ok: 'disable' });
    assert.strictEqual(fs.existsSync(before), false);
    assert.deepStrictEqual(h.objectPaths(app.pid).filter((f) => /restify/.test(f)), []);
    await h.sleep(300);
    const frozen = bt.out.lines.length;
    const c1 = (await ask(app, { cmd: 'stats' })).calls;
    await h.sleep(500);
    assert.strictEqual(bt.out.lines.length, frozen);
    assert.strictEqual((await ask(app, { cmd: 'stats' })).calls['route-start'],
        c1['route-start']);
    assert.strictEqual(bt.child.exitCode, null, 'bpftrace still running');
    assert.strictEqual(app.child.exitCode, null, 'app still running');

    assert.deepStrictEqual(await ask(app, { cmd: 'enable', provider: 'restify' }),
        { ok: 'enable' });
    const [after] = h.objectPaths(app.pid).filter((f) => /restify/.test(f));
    assert.ok(after && after !== before, after);
    /* The old session watched the old object; a new one sees the new. */
    const bt2 = await h.bpftrace('usdt:*:restify:route-start { printf("%d\\n", arg1); }',
        ['-p', String(app.pid)]);
    await bt2.out.wait(/^\d+$/, 3, 15000, 'events after re-enable');
    await h.stopBpftrace(bt2);
    assert.strictEqual(bt.out.lines.length, frozen);
    await h.stopBpftrace(bt);
});

test('a forked child has its own working probes', async () => {
    const fork = await h.startApp('fork-parent.js');
    const [, parent, child] = fork.err.lines.find((l) => /^ready/.test(l))
        .split(' ').map(Number);
    assert.strictEqual(parent, fork.pid);
    const program = 'usdt:*:forky:tick { printf("%d %s\\n", arg0, str(arg1)); }';
    for (const [pid, role] of [[child, 'child'], [parent, 'parent']]) {
        const bt = await h.bpftrace(program, ['-p', String(pid)]);
        await bt.out.wait(/^\d+ /, 3, 15000, role + ' events');
        const lines = await h.stopBpftrace(bt);
        assert.deepStrictEqual(Array.from(new Set(lines)), [pid + ' ' + role]);
    }
    const childObjects = h.objectPaths(child);
    assert.strictEqual(childObjects.length, 1);
    await h.stopApp(fork);
    await h.until(() => !fs.existsSync(childObjects[0]), 5000,
        'the child to remove its object');
});

test('arguments convert like dtrace-provider; callbacks, this, extras', async () => {
    process.env.NODE_DTRACE_PROVIDER_REQUIRE = 'hard';
    const d = require('../index.js');
    const p = d.createDTraceProvider('conv');
    const ints = p.addProbe('ints', 'int', 'int', 'int', 'int', 'int', 'int');
    const strs = p.addProbe('strs', 'char *', 'char *', 'char *', 'char *',
        'char *', 'json');
    const jsons = p.addProbe('jsons', 'json', 'json', 'json');
    const never = p.addProbe('never', 'int');
    const ctx = p.addProbe('ctx', 'int', 'int');
    p.addProbe('ctx2', 'int', 'int');
    p.enable();
    /* A callback that disables its own provider. */
    const selfdis = d.createDTraceProvider('selfdis');
    const gone = selfdis.addProbe('gone', 'int');
    selfdis.enable();
    const circular = {};
    circular.self = circular;
    const returns = { ints: [], throwing: [], nonArray: [], ctx: [], ctx2: [],
        gone: [] };
    const timer = setInterval(() => {
        returns.ints.push(ints.fire(() => ['42', NaN, 3.9, -3.9, Infinity]));
        strs.fire(() => [null, 12.5, { a: 1 }, Symbol('s'), undefined,
            { b: [1, 2] }]);
        jsons.fire(() => [undefined, circular, function f() {}]);
        returns.throwing.push(never.fire(() => { throw new Error('x'); }));
        returns.nonArray.push(never.fire(() => 'not an array'));
        returns.ctx.push(ctx.fire(function (a, b) {
            return [this === ctx ? 1 : 0, a + b];
        }, 2, 3));
        returns.ctx2.push(p.fire('ctx2', function (a, b) {
            return [this === p.ctx2 ? 1 : 0, a * b];
        }, 4, 5));
        returns.gone.push(gone.fire(() => { selfdis.disable(); return [1]; }));
    }, 10);
    try {
        const bt = await h.bpftrace(
            'usdt:*:conv:ints { printf("ints %lld %lld %lld %lld %lld %lld\\n", ' +
            'arg0, arg1, arg2, arg3, arg4, arg5); }\n' +
            'usdt:*:conv:strs { printf("strs|%s|%s|%s|%s|%s|%s\\n", str(arg0), ' +
            'str(arg1), str(arg2), str(arg3), str(arg4), str(arg5)); }\n' +
            'usdt:*:conv:jsons { printf("jsons|%s|%s|%s\\n", str(arg0), ' +
            'str(arg1), str(arg2)); }\n' +
            'usdt:*:conv:never { printf("never\\n"); }\n' +
            'usdt:*:conv:ctx* { printf("%s %d %d\\n", probe, arg0, arg1); }\n' +
            'usdt:*:selfdis:gone { printf("gone\\n"); }',
            ['-p', String(process.pid)]);
        await bt.out.wait(/^jsons/, 3, 15000, 'conversion events');
        await bt.out.wait(/ctx2 /, 3, 15000, 'ctx2 events');
        const lines = await h.stopBpftrace(bt);
        const uniq = Array.from(new Set(lines.map((l) =>
            l.replace(/^usdt:.*:conv:/, '')))).sort();
        assert.deepStrictEqual(uniq, [
            'ctx 1 5',
            'ctx2 1 20',
            'ints 42 0 3 -3 0 0',
            'jsons|undefined|{ "error": "stringify failed" }|undefined',
            'strs|null|12.5|[object Object]|Symbol(s)|undefined|{"b":[1,2]}'
        ]);
    } finally {
        clearInterval(timer);
        p.disable();
    }
    assert.ok(returns.ints.includes(true));
    assert.ok(returns.ctx.includes(true));
    assert.deepStrictEqual(Array.from(new Set(returns.ctx2)), [true]);
    assert.deepStrictEqual(Array.from(new Set(returns.throwing)), [undefined]);
    assert.deepStrictEqual(Array.from(new Set(returns.nonArray)), [undefined]);
    /* Its callback ran once (the tracer enabled it), then nothing fired. */
    assert.deepStrictEqual(Array.from(new Set(returns.gone)), [undefined]);
    assert.deepStrictEqual(h.objectPaths(process.pid).filter((f) =>
        /selfdis/.test(f)), []);
});

test('worker threads have their own objects, removed when they exit', async () => {
    const w = await h.startApp('worker-app.js');
    try {
        const objects = h.objectPaths(w.pid);
        assert.deepStrictEqual(objects.map((f) => /-(\w+)-\d+\.so$/.exec(f)[1])
            .sort(), ['mainp', 'workerp']);
        const bt = await h.bpftrace('usdt:*:*:tick { printf("%s %s\\n", ' +
            'probe, str(arg0)); }', ['-p', String(w.pid)]);
        await bt.out.wait(/workerp:tick worker$/, 2, 15000, 'worker events');
        await bt.out.wait(/mainp:tick main$/, 2, 15000, 'main events');
        const lines = await h.stopBpftrace(bt);
        assert.deepStrictEqual(Array.from(new Set(lines.map((l) =>
            l.replace(/^usdt:.*:(\w+:tick)/, '$1')))).sort(),
        ['mainp:tick main', 'workerp:tick worker']);
        const workerObject = objects.find((f) => /workerp/.test(f));
        w.child.kill('SIGUSR2');
        await w.err.wait(/^worker-exited$/, 1, 10000, 'the worker to exit');
        assert.strictEqual(fs.existsSync(workerObject), false);
        assert.deepStrictEqual(h.objectPaths(w.pid),
            objects.filter((f) => f !== workerObject));
    } finally {
        await h.stopApp(w);
    }
});
