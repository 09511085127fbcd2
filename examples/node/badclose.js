// badclose.js — a Node program with a file-descriptor mix-up, for
// `prodtrace catch`: it closes a descriptor with fs.closeSync(), then closes
// the same number again, so the second close() fails with EBADF (in a real
// service that number may already belong to another file by then).
//
// usage: node [--perf-basic-prof] badclose.js [WARMUP [DELAY_MS [MARKER [LINGER_MS]]]]
//   WARMUP     good open/close rounds first (makes releaseHandle hot, JIT'd)
//   DELAY_MS   wait this long before starting (time to attach a tracer)
//   MARKER     file written right after the failing close
//   LINGER_MS  stay alive this long at the end
'use strict';
const fs = require('fs');

const [warmup = 0, delayMs = 0, marker = '', lingerMs = 0] = process.argv.slice(2);

function releaseHandle(fd) {
  fs.closeSync(fd);
}

function openAndRelease() {
  const fd = fs.openSync('/dev/null', 'r');
  releaseHandle(fd);
  return fd;
}

function main() {
  for (let i = 0; i < Number(warmup); i++) openAndRelease();
  const fd = openAndRelease();
  try {
    releaseHandle(fd); // the bug: fd is already closed
  } catch (err) {
    console.log(`second close of fd ${fd}: ${err.code}`);
  }
  if (marker) fs.writeFileSync(marker, 'after close\n');
  setTimeout(() => {}, Number(lingerMs));
}

setTimeout(main, Number(delayMs));
