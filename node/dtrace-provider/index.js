/*
 * prodtrace-dtrace-provider: dtrace-provider's JavaScript API with real Linux
 * USDT probes.
 *
 * createDTraceProvider(name[, module]) -> provider
 *   provider.addProbe(name, ...types)   types 'int', 'char *', 'json'
 *   provider.removeProbe(probe)
 *   provider.enable() / provider.disable()
 *   provider.fire(probeName, cb, ...extra)
 *   probe.fire(cb, ...extra)            cb(...extra) runs only while a tracer
 *                                       has the probe enabled; it returns the
 *                                       array of probe arguments.
 *
 * enable() has the native add-on (src/*.rs) generate and load an ELF object
 * with one `.note.stapsdt` probe per probe; its semaphores are read here
 * through an ArrayBuffer, so a fire() nobody traces never leaves JavaScript.
 * Behaviour follows dtrace-provider 0.8.8 (its C++ binding and libusdt);
 * divergences are listed in docs/node.md.
 */
'use strict';

const fs = require('fs');
const path = require('path');

/* Most arguments per probe (dtrace-provider's USDT_ARG_MAX; the add-on's
 * elf::MAX_ARGS). */
const MAX_ARGS = 32;
/* Provider and probe names: what DTrace accepts (shorter than its 64-byte
 * name limits) and what Linux tracers can address (no ':' or spaces). */
const PROVIDER_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/;
const PROBE_RE = /^[A-Za-z0-9_.-]{1,63}$/;
const NAME_RULE = '1-63 characters from A-Z a-z 0-9 _ . -';

/* The add-on: an explicit path, the copy next to this file, or the
 * workspace's release build. */
function addonCandidates() {
    const list = [];
    if (process.env.PRODTRACE_DTRACE_PROVIDER_ADDON)
        list.push(process.env.PRODTRACE_DTRACE_PROVIDER_ADDON);
    list.push(path.join(__dirname, 'dtrace-provider.node'));
    list.push(path.join(__dirname, '..', '..', 'target', 'release',
        'libprodtrace_dtrace_provider.so'));
    return list;
}

function loadAddon() {
    let firstError = null;
    if (process.platform !== 'linux' || process.arch !== 'x64') {
        firstError = new Error('prodtrace-dtrace-provider supports Linux ' +
            'x86-64 only, not ' + process.platform + ' ' + process.arch);
    } else {
        for (const file of addonCandidates()) {
            if (!fs.existsSync(file))
                continue;
            try {
                const m = { exports: {} };
                process.dlopen(m, file);
                return m.exports;
            } catch (e) {
                if (firstError === null)
                    firstError = e;
            }
        }
        if (firstError === null)
            firstError = new Error('prodtrace-dtrace-provider: add-on not ' +
                'found (tried ' + addonCandidates().join(', ') + '); build ' +
                'it with scripts/setup.sh');
    }
    /* Like dtrace-provider: fall back to no-op probes unless told not to. */
    if (process.env.NODE_DTRACE_PROVIDER_REQUIRE === 'hard')
        throw firstError;
    return null;
}

const native = loadAddon();

/* Internal state lives under symbols: a probe named like an internal
 * field (provider[name] = probe) cannot clobber it. */
const K = {
    name: Symbol('name'), module: Symbol('module'), probes: Symbol('probes'),
    handle: Symbol('handle'), semBuffer: Symbol('semBuffer'),
    path: Symbol('path'), kinds: Symbol('kinds'), prov: Symbol('prov'),
    index: Symbol('index'), sem: Symbol('sem')
};

/* A semaphore view that reads 0 for every probe: probes not (yet) live. */
const NOT_LIVE = new Uint16Array(0);

/* Generated objects still on disk, removed when the process exits. */
const liveFiles = new Set();
process.on('exit', function removeGeneratedObjects() {
    for (const file of liveFiles) {
        try { fs.unlinkSync(file); } catch (e) { /* already gone */ }
    }
});

function argKind(type) {
    /* dtrace-provider compares prefixes and takes anything else as a
     * string: 'int64' is an int, 'uint8_t' and 'float' are strings. */
    const t = String(type);
    if (t.startsWith('json'))
        return 'json';
    if (t.startsWith('char *'))
        return 'char *';
    if (t.startsWith('int'))
        return 'int';
    return 'char *';
}

function toInt(v) {
    if (typeof v === 'number')
        return v;
    try {
        return Number(v);
    } catch (e) {
        return 0; /* Symbols and objects whose valueOf throws. */
    }
}

function toStr(v) {
    if (typeof v === 'string')
        return v;
    if (v === undefined)
        return 'undefined';
    try {
        return String(v);
    } catch (e) {
        return '';
    }
}

function toJson(v) {
    if (v === undefined)
        return 'undefined';
    try {
        const s = JSON.stringify(v);
        return s === undefined ? 'undefined' : s;
    } catch (e) {
        return '{ "error": "stringify failed" }';
    }
}

/* Runs the callback of an enabled probe and fires it.  `args` is the
 * `arguments` of the fire() call, the callback's own arguments start at
 * `from`.  Exceptions in the callback are swallowed, as dtrace-provider
 * does: tracing must never break the traced program. */
function fireEnabled(probe, cb, args, from) {
    let values;
    try {
        const extra = [];
        for (let i = from; i < args.length; i++)
            extra.push(args[i]);
        values = cb.apply(probe, extra);
    } catch (e) {
        return undefined;
    }
    if (!Array.isArray(values))
        return undefined;
    /* The callback may have disabled the provider, or the tracer left. */
    if (!probe[K.sem][probe[K.index]])
        return undefined;
    const kinds = probe[K.kinds];
    const out = new Array(kinds.length);
    for (let i = 0; i < kinds.length; i++) {
        const v = values[i];
        switch (kinds[i]) {
        case 'int': out[i] = toInt(v); break;
        case 'json': out[i] = toJson(v); break;
        default: out[i] = toStr(v); break;
        }
    }
    const prov = probe[K.prov];
    native.fire(prov[K.handle], probe[K.index], out);
    return true;
}

function hidden(obj, name, value) {
    Object.defineProperty(obj, name, { value: value, writable: true,
        enumerable: false, configurable: true });
}

function DTraceProbe(provider, name, kinds) {
    hidden(this, K.name, name);
    hidden(this, K.kinds, kinds);
    hidden(this, K.prov, provider);
    hidden(this, K.index, -1);
    hidden(this, K.sem, NOT_LIVE);
    /* dtrace-provider keeps the provider alive through its probes. */
    Object.defineProperty(this, '__prov__', { value: provider,
        enumerable: false, writable: false, configurable: false });
}

DTraceProbe.prototype.fire = function fire(cb) {
    if (typeof cb !== 'function')
        throw new TypeError('Must give probe value callback as first argument');
    /* The whole cost of a probe nobody traces: one typed-array load. */
    if (!this[K.sem][this[K.index]])
        return undefined;
    /* f.apply(this, arguments) forwards without materialising arguments. */
    return fireProbe.apply(this, arguments);
};

/* probe.fire(cb, ...extra) once the probe is traced; `this` is the probe. */
function fireProbe(cb) {
    return fireEnabled(this, cb, arguments, 1);
}

function DTraceProvider(name, module) {
    if (!(this instanceof DTraceProvider))
        throw new TypeError("Class constructor DTraceProvider cannot be " +
            "invoked without 'new'");
    if (arguments.length < 1 || typeof name !== 'string')
        throw new TypeError('Must give provider name as argument');
    if (arguments.length === 2) {
        if (typeof module !== 'string')
            throw new TypeError('Must give module name as argument');
    } else if (arguments.length > 2) {
        throw new Error('Expected only provider name and module as arguments');
    }
    if (!PROVIDER_RE.test(name))
        throw new Error('invalid provider name ' + JSON.stringify(name) +
            ': use ' + NAME_RULE + ', not starting with a digit, dot or dash');
    hidden(this, K.name, name);
    hidden(this, K.module, arguments.length === 2 ? module : 'mod-' + name);
    hidden(this, K.probes, []);
    hidden(this, K.handle, null);
    hidden(this, K.semBuffer, null);
    hidden(this, K.path, null);
}

DTraceProvider.prototype.addProbe = function addProbe(name) {
    name = String(name);
    if (!PROBE_RE.test(name))
        throw new Error('invalid probe name ' + JSON.stringify(name) +
            ' in provider ' + this[K.name] + ': use ' + NAME_RULE);
    const ntypes = arguments.length - 1;
    if (ntypes > MAX_ARGS)
        throw new Error('probe ' + this[K.name] + ':' + name + ' has ' + ntypes +
            ' arguments; at most ' + MAX_ARGS + ' are supported');
    for (const p of this[K.probes]) {
        if (p[K.name] === name)
            throw new Error('probe named ' + this[K.name] + ':' + this[K.module] +
                ':' + name + ':' + name + ' already exists');
    }
    const kinds = [];
    for (let i = 1; i < arguments.length; i++)
        kinds.push(argKind(arguments[i]));
    const probe = new DTraceProbe(this, name, kinds);
    this[K.probes].push(probe);
    this[name] = probe;
    return probe;
};

DTraceProvider.prototype.removeProbe = function removeProbe(probe) {
    const at = this[K.probes].indexOf(probe);
    if (at === -1)
        throw new Error('failed to remove probe ' + this[K.name] + ':' +
            this[K.module] + ':' + (probe && probe[K.name]) + ':' +
            (probe && probe[K.name]));
    this[K.probes].splice(at, 1);
    if (this[probe[K.name]] === probe)
        delete this[probe[K.name]];
    /* Still in the loaded object until the next disable()/enable(). */
    return true;
};

DTraceProvider.prototype.enable = function enable() {
    if (this[K.handle] !== null || native === null)
        return; /* Enabling twice is not an error in dtrace-provider. */
    if (this[K.probes].length === 0)
        throw new Error('no probes defined');
    const probes = this[K.probes].slice();
    let handle;
    try {
        handle = native.load(this[K.name], probes.map(function (p) {
            return { name: p[K.name], types: p[K.kinds].map(function (k) {
                return k === 'int' ? 'int' : 'char *';
            }) };
        }));
    } catch (e) {
        throw new Error('failed to enable provider ' + this[K.name] + ': ' +
            e.message);
    }
    let buffer;
    try {
        buffer = native.semaphores(handle);
    } catch (e) {
        native.unload(handle, null);
        throw new Error('failed to enable provider ' + this[K.name] + ': ' +
            e.message);
    }
    const sem = new Uint16Array(buffer);
    this[K.handle] = handle;
    this[K.semBuffer] = buffer;
    this[K.path] = native.path(handle);
    liveFiles.add(this[K.path]);
    for (let i = 0; i < probes.length; i++) {
        probes[i][K.index] = i;
        probes[i][K.sem] = sem;
    }
};

DTraceProvider.prototype.disable = function disable() {
    if (this[K.handle] === null)
        return;
    for (const p of this[K.probes]) {
        p[K.sem] = NOT_LIVE;
        p[K.index] = -1;
    }
    native.unload(this[K.handle], this[K.semBuffer]);
    liveFiles.delete(this[K.path]);
    this[K.handle] = null;
    this[K.semBuffer] = null;
    this[K.path] = null;
};

DTraceProvider.prototype.fire = function fire(name, cb) {
    if (typeof name !== 'string')
        throw new TypeError('Must give probe name as first argument');
    if (typeof cb !== 'function')
        throw new TypeError('Must give probe value callback as second argument');
    const probe = this[name];
    if (!(probe instanceof DTraceProbe) || probe[K.prov] !== this)
        return undefined;
    if (probe[K.sem][probe[K.index]])
        fireNamed.apply(probe, arguments);
    return true;
};

/* provider.fire(name, cb, ...extra) once traced; `this` is the probe. */
function fireNamed(name, cb) {
    return fireEnabled(this, cb, arguments, 2);
}

exports.DTraceProvider = DTraceProvider;
exports.DTraceProbe = DTraceProbe;
exports.createDTraceProvider = function createDTraceProvider(name, module) {
    if (arguments.length == 2)
        return (new exports.DTraceProvider(name, module));
    return (new exports.DTraceProvider(name));
};
