// Target for bench/gcore.sh: a Node process holding about MB megabytes of
// live JS heap, with a heartbeat worker thread that measures, from inside the
// target, how long it was paused: it wakes every 1 ms and appends every gap
// longer than 2 ms between two wake-ups to LOG (one number, in ms, a line).
//   node gcore_target.js MB LOG      (prints its PID once the heap is built)
const { Worker, isMainThread, workerData } = require('worker_threads');

if (isMainThread) {
  const v8 = require('v8');
  const mb = +process.argv[2] || 30;
  const keep = [];
  while (v8.getHeapStatistics().used_heap_size < mb * 1048576) {
    const a = [];
    for (let j = 0; j < 10000; j++) a.push({ j, s: 'x' + j });
    keep.push(a);
  }
  const w = new Worker(__filename, { workerData: { log: process.argv[3] } });
  w.on('online', () => console.log(process.pid));
  setInterval(() => keep.length, 1000);
} else {
  const fs = require('fs');
  const tick = new Int32Array(new SharedArrayBuffer(4));
  let last = process.hrtime.bigint();
  for (;;) {
    Atomics.wait(tick, 0, 0, 1);
    const now = process.hrtime.bigint();
    const gap = Number(now - last) / 1e6;
    if (gap > 2) fs.appendFileSync(workerData.log, gap.toFixed(2) + '\n');
    last = now;
  }
}
