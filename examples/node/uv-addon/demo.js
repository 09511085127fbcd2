/*
 * demo.js — runs COUNT checksums (default 100), one after the other, with
 * the NAN-style add-on uv_addon.c (built as ADDON, default
 * ./uv_addon.node next to this file), then prints
 * {"uv_addon_demo":{"checksums":COUNT}}.
 * Usage: node demo.js [COUNT [ADDON]]
 */
'use strict';

const path = require('path');

const count = Number(process.argv[2] || 100);
const addon = require(path.resolve(process.argv[3] || path.join(__dirname, 'uv_addon.node')));

let done = 0;
function next() {
    if (done === count) {
        process.stdout.write(JSON.stringify({ uv_addon_demo: { checksums: done } }) + '\n');
        return;
    }
    addon.checksum(() => {
        done++;
        next();
    });
}
next();
