// heartbeat.js — shared by the bench targets (gcore_target.js,
// jsstack_target.js): a live JS heap of a given size, and a heartbeat worker
// thread that measures, from inside the target, how long it was paused: it
// wakes every 1 ms and appends every gap longer than MIN_GAP_MS between two
// wake-ups to LOG (one number, in ms, a line).
'use strict';
const { Worker, isMainThread, workerData } = require('worker_threads');

if (!isMainThread) {
  const fs = require('fs');
  const tick = new Int32Array(new SharedArrayBuffer(4));
  let last = process.hrtime.bigint();
  for (;;) {
    Atomics.wait(tick, 0, 0, 1);
    const now = process.hrtime.bigint();
    const gap = Number(now - last) / 1e6;
    if (gap > workerData.minGapMs) fs.appendFileSync(workerData.log, gap.toFixed(2) + '\n');
    last = now;
  }
}

// About `mb` megabytes of live heap, alive as long as the returned array is.
function buildHeap(mb) {
  const v8 = require('v8');
  const keep = [];
  while (v8.getHeapStatistics().used_heap_size < mb * 1048576) {
    const a = [];
    for (let j = 0; j < 10000; j++) a.push({ j, s: 'x' + j });
    keep.push(a);
  }
  return keep;
}

// Starts the heartbeat worker, logging gaps over `minGapMs` to `log`.
function startHeartbeat(log, minGapMs) {
  return new Worker(__filename, { workerData: { log, minGapMs } });
}

module.exports = { buildHeap, startHeartbeat };
