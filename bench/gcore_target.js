// Target for bench/gcore.sh: a Node process holding about MB megabytes of
// live JS heap, with a heartbeat worker thread that measures, from inside the
// target, how long it was paused: it wakes every 1 ms and appends every gap
// longer than 2 ms between two wake-ups to LOG (one number, in ms, a line).
//   node gcore_target.js MB LOG      (prints its PID once the heap is built)
const { buildHeap, startHeartbeat } = require('./heartbeat');

const keep = buildHeap(+process.argv[2] || 30);
const w = startHeartbeat(process.argv[3], 2);
w.on('online', () => console.log(process.pid));
setInterval(() => keep.length, 1000);
