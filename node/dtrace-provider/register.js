/*
 * Preload hook: makes require('dtrace-provider') resolve to
 * prodtrace-dtrace-provider, so unmodified programs and libraries (bunyan,
 * restify, ...) get real USDT probes on Linux:
 *
 *   node -r prodtrace-dtrace-provider/register app.js
 *   NODE_OPTIONS="-r /path/to/node/dtrace-provider/register.js" node app.js
 *
 * It wraps Module._resolveFilename, through which every CommonJS require()
 * goes; requests for anything else resolve as before.
 */
'use strict';

const Module = require('module');

const target = require.resolve('./index.js');
const REQUESTS = new Set([
    'dtrace-provider',
    'dtrace-provider/',
    'dtrace-provider/dtrace-provider',
    'dtrace-provider/dtrace-provider.js'
]);
const MARK = Symbol.for('prodtrace-dtrace-provider.register');

if (!Module._resolveFilename[MARK]) {
    const original = Module._resolveFilename;
    const resolve = function _resolveFilename(request, parent, isMain, options) {
        if (REQUESTS.has(request))
            return target;
        return original.call(this, request, parent, isMain, options);
    };
    resolve[MARK] = true;
    Module._resolveFilename = resolve;
}
