/*
 * Writes a realistic Bunyan log with the real `bunyan` npm package, for
 * comparing our `bunyan` CLI with node-bunyan's on the same input.
 *
 * usage: node gen-logs.js N SEED [TIME_OFFSET_MS]   (writes to stdout)
 *
 * Records cover every level, child loggers (component, req_id), src,
 * serialized req/res/err, client_req/client_res, multi-line messages,
 * unicode, nested objects and arrays, long values, odd field types, and a
 * few non-record lines in between. Deterministic for a given SEED.
 */
'use strict';
var path = require('path');
var bunyan = require(path.join(__dirname, '../../../examples/node/node_modules/bunyan'));

var n = Number(process.argv[2] || 100);
var seed = Number(process.argv[3] || 1);
var offset = Number(process.argv[4] || 0);
function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; }
function pick(a) { return a[Math.floor(rnd() * a.length)]; }

var out = { write: function (s) { process.stdout.write(s); } };
var log = bunyan.createLogger({
    name: 'shop-api', level: 'trace', hostname: 'web-01',
    serializers: bunyan.stdSerializers,
    streams: [{ level: 'trace', stream: out }]
});
var srcLog = bunyan.createLogger({ name: 'src-app', src: true, level: 'trace', hostname: 'web-02', streams: [{ stream: out }] });
var db = log.child({ component: 'db', pool: { size: 4, name: 'main' } });
var reqLog = log.child({ req_id: 'b3f1c0de-1234-4cde-9abc-0123456789ab' });

var base = Date.UTC(2024, 0, 15, 9, 30, 0) + offset;
var clock = 0;
Date.prototype.toISOString = (function (orig) {
    return function () { return orig.call(new Date(base + clock)); };
})(Date.prototype.toISOString);

function fakeReq(i) {
    return {
        method: pick(['GET', 'POST', 'DELETE']), url: '/api/items/' + i + '?q=caf\u00e9',
        headers: { host: 'shop.example.com', 'user-agent': 'curl/8.0', accept: '*/*' },
        connection: { remoteAddress: '10.0.0.' + (i % 255), remotePort: 40000 + i },
        httpVersion: '1.1'
    };
}
function fakeRes(i) {
    return {
        statusCode: pick([200, 201, 404, 500, 503]),
        _header: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ' + i + '\r\n\r\n'
    };
}

var levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
for (var i = 0; i < n; i++) {
    clock += Math.floor(rnd() * 50);
    var lvl = pick(levels);
    var k = i % 24;
    switch (k) {
    case 0: log[lvl]('plain message %d', i); break;
    case 1: log[lvl]({ user: { id: i, name: 'Zo\u00eb \u6771\u4eac', roles: ['admin', 'dev'] } }, 'user logged in'); break;
    case 2: log[lvl]({ err: new Error('boom ' + i) }, 'operation failed'); break;
    case 3: reqLog[lvl]({ req: fakeReq(i) }, 'incoming request'); break;
    case 4: reqLog[lvl]({ res: fakeRes(i), duration: rnd() * 100 }, 'request done'); break;
    case 5: log[lvl]('multi\nline\nmessage ' + i); break;
    case 6: db[lvl]({ query: 'SELECT * FROM items WHERE id = ' + i, rows: i % 7 }, 'query'); break;
    case 7: log[lvl]({ spaced: 'has spaces', empty: '', n: 0, neg: -1.5, big: 1e21, small: 1.5e-7, flag: false, nil: null }, 'odd values'); break;
    case 8: log[lvl]({ long: new Array(12).join('abcdef') }, 'long value'); break;
    case 9: log[lvl]({ arr: [1, 'two', { three: 3 }, [4]], obj: {} , emptyArr: [] }, 'arrays'); break;
    case 10: srcLog[lvl]('with src'); break;
    case 11: log[lvl]({ client_req: { method: 'GET', url: '/v1/ping', address: '127.0.0.1', port: 8080, headers: { accept: 'json' } } }, 'client request'); break;
    case 12: log[lvl]({ client_res: { statusCode: 204, headers: { server: 'x' }, body: { ok: true } } }, 'client response'); break;
    case 13: log[lvl]({ tab: 'a\tb', quote: 'say "hi"', uni: '\u2603 snow', ctl: 'bell\u0007' }, 'escapes'); break;
    case 14: log[lvl]({ '1': 'one', b: 2, '0': 'zero' }, 'index keys'); break;
    case 15: log[lvl]({ err: { message: 'custom', name: 'MyError', stack: 'MyError: custom\n    at here (x.js:1:1)', code: 'E_CUSTOM', errno: 42 } }, 'custom err'); break;
    case 16: log[lvl]({ req: { method: 'PUT', url: '/upload', headers: { 'content-type': 'text/plain' }, body: { name: 'x', size: 3 }, extra: 'yes' } }, 'req with body'); break;
    case 17: log[lvl]({ res: { statusCode: 404, header: 'HTTP/1.1 404 Not Found\r\nX-A: b\r\n\r\n', body: 'nope' } }, 'res with header'); break;
    case 18: log[lvl]({ msgish: 'x'.repeat(50), exact: 'y'.repeat(51) }, ''); break;
    case 19: log[lvl]({ nested: { a: { b: { c: { d: [1, 2, 3] } } } } }, 'deep'); break;
    case 20: process.stdout.write('not json: plain text line ' + i + '\n'); break;
    case 21: process.stdout.write('{"looks": "like json but not a record", "i": ' + i + '}\n'); break;
    case 22: log[lvl]({ 'weird key': 1, 'a.b': 2, 'ünï': 3, req_id: 77 }, 'key shapes'); break;
    case 23: log[lvl]({ res: { statusCode: 302, headers: { location: '/next' } }, client_res: { statusCode: 200 } }, 'two responses'); break;
    }
}
