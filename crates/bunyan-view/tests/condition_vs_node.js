// Evaluates -c conditions the way node-bunyan 1.8's CLI does (a Function
// with the level constants as vars, `return (COND)` unless the text
// contains "return", called with `this` = objCopy(record)) and prints one
// typed value per (condition, record), for condition_vs_node.rs.
// Input on stdin: {"conds": [...], "recs": ["<json line>", ...]}.
'use strict';

const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));

function objCopy(obj) {
    if (obj === null) return null;
    if (Array.isArray(obj)) return obj.slice();
    const copy = {};
    Object.keys(obj).forEach(function (k) { copy[k] = obj[k]; });
    return copy;
}

function compile(js) {
    if (js.indexOf('return') === -1) {
        if (js.substring(js.length - 1) === ';') js = js.substring(0, js.length - 1);
        js = 'return (' + js + ')';
    }
    const defs = 'var TRACE = 10;\nvar DEBUG = 20;\nvar INFO = 30;\nvar WARN = 40;\nvar ERROR = 50;\nvar FATAL = 60;\n';
    return new Function(defs + js);
}

const protos = [
    [Object.prototype, 'Object'], [Array.prototype, 'Array'], [String.prototype, 'String'],
    [Number.prototype, 'Number'], [Boolean.prototype, 'Boolean'], [RegExp.prototype, 'RegExp'],
];

function repr(v) {
    if (v === undefined) return 'undefined';
    if (v === null) return 'null';
    switch (typeof v) {
    case 'boolean': return 'bool:' + v;
    case 'number': return Object.is(v, -0) ? 'num:-0' : 'num:' + String(v);
    case 'string': return 'str:' + JSON.stringify(v);
    case 'function': return 'fn:' + v.name;
    }
    for (const [p, n] of protos) if (v === p) return 'proto:' + n;
    if (Array.isArray(v)) return 'arr[' + v.map(repr).join(',') + ']';
    if (v instanceof RegExp) return 're:' + String(v);
    return 'obj:' + JSON.stringify(v);
}

const out = [];
for (const c of input.conds) {
    let f;
    try {
        f = compile(c);
    } catch (e) {
        out.push(input.recs.map(() => 'compile-error'));
        continue;
    }
    out.push(input.recs.map((line) => {
        try {
            return repr(f.call(objCopy(JSON.parse(line))));
        } catch (e) {
            return 'throw';
        }
    }));
}
process.stdout.write(JSON.stringify(out));
