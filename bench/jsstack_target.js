// Target for bench/jsstack.sh: a node process holding about MB megabytes of
// live JS heap whose main thread stands in JavaScript, 14 frames deep (named
// functions, a method, a closure passed to Array.prototype.map, an inlined
// helper in an optimized loop), blocked in Atomics.wait; and a heartbeat
// worker thread that measures, from inside the target, how long it was
// paused: it wakes every 1 ms and appends every gap longer than 1.5 ms
// between two wake-ups to LOG (one number, in ms, a line).
//   node jsstack_target.js MB LOG    (prints its PID once it stands still)
'use strict';
const { buildHeap, startHeartbeat } = require('./heartbeat');

const keep = buildHeap(+process.argv[2] || 30);
const cell = new Int32Array(new SharedArrayBuffer(8));
const w = startHeartbeat(process.argv[3], 1.5);

// Waits for nothing while warming up (cell[1] = 0), forever once cell[1]
// is 1: the same path both times, so nothing deoptimizes when it blocks.
function waitForever() { Atomics.wait(cell, 0, 0, Atomics.load(cell, 1) === 1 ? Infinity : 0); }
function lookup(key) { waitForever(); return key.length; }
function score(x) { return lookup('k' + (x & 7)) + 1; }          // inlined into rank
function rank(n) { let s = 0; for (let i = 0; i < n; i++) s += score(i); return s; }
class Store {
  constructor(items) { this.items = items; }
  query(n) { return this.items.map((item) => rank(item + n)); }
}
function validate(req) { return new Store([req.n]).query(1); }
function parse(req) { return validate(req); }
function route(req) { return parse(req); }
function handle(req) { return route(req); }
function serve(req) { return handle(req); }
function dispatch(req) { return serve(req); }
for (let i = 0; i < 2000; i++) dispatch({ n: 50 }); // optimizes rank (with score inlined)
w.on('online', () => {
  console.log(process.pid);
  setTimeout(() => {
    Atomics.store(cell, 1, 1);
    dispatch({ n: 50 });
  }, 10);
});
setInterval(() => keep.length, 1000);
