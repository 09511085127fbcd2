/*
 * threadpool-demo.js — Node's own work on libuv's thread pool (no add-on):
 * crypto.pbkdf2, crypto.scrypt and zlib.deflate, run COUNT times each
 * (default 50; env THREADPOOL_DEMO_COUNT), one at a time.  `prodtrace
 * latency` reports them by the node::ThreadPoolWork subclass that runs them
 * (e.g. node::crypto::DeriveBitsJob<node::crypto::PBKDF2Traits>).
 *
 * Prints one JSON line at the end: {"threadpool_demo":{"pbkdf2":N,...}}.
 */
'use strict';

const crypto = require('crypto');
const zlib = require('zlib');
const { promisify } = require('util');

const count = Number(process.env.THREADPOOL_DEMO_COUNT || 50);
const pbkdf2 = promisify(crypto.pbkdf2);
const scrypt = promisify(crypto.scrypt);
const deflate = promisify(zlib.deflate);

async function main() {
    const done = { pbkdf2: 0, scrypt: 0, deflate: 0 };
    const data = Buffer.alloc(16 * 1024, 'prodtrace ');
    for (let i = 0; i < count; i++) {
        await pbkdf2('secret', 'salt' + i, 1000, 32, 'sha256');
        done.pbkdf2++;
        await scrypt('secret', 'salt' + i, 32, { N: 1024 });
        done.scrypt++;
        await deflate(data);
        done.deflate++;
    }
    process.stdout.write(JSON.stringify({ threadpool_demo: done }) + '\n');
}

main().catch((err) => {
    console.error('threadpool-demo:', err);
    process.exit(1);
});
