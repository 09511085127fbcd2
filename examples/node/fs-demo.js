/*
 * fs-demo.js — libuv's own thread-pool requests from node: COUNT rounds
 * (default 50; argv[2]) of fs.stat, fs.open and fs.close on this file, one
 * at a time, then one dns.lookup('localhost') (getaddrinfo).  `prodtrace
 * latency` reports them as uv_fs_stat, uv_fs_open, uv_fs_close and
 * uv__getaddrinfo_work.  Prints {"fs_demo":{"rounds":COUNT}} at the end.
 */
'use strict';

const fs = require('fs');
const dns = require('dns');

const rounds = Number(process.argv[2] || 50);

function check(err) {
    if (err) {
        console.error('fs-demo:', err.message);
        process.exit(1);
    }
}

let done = 0;
function round() {
    if (done === rounds) {
        dns.lookup('localhost', () => process.stdout.write(JSON.stringify({ fs_demo: { rounds } }) + '\n'));
        return;
    }
    fs.stat(__filename, (err) => {
        check(err);
        fs.open(__filename, 'r', (err, fd) => {
            check(err);
            fs.close(fd, (err) => {
                check(err);
                done++;
                round();
            });
        });
    });
}
round();
