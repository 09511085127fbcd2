// jsstack-demo.js MODE: a node program that stops in JavaScript at a known
// place, for `prodtrace jsstack` and its tests.  Each thread that stops
// first prints one JSON line {"thread": ..., "tid"?: ..., "stack": [...]}
// with V8's own view of its stack (new Error().stack, taken just before it
// blocks in Atomics.wait on the line marked WAIT), then blocks there.
//
// MODE:
//   interp    a recursive function in the interpreter
//   opt       a TurboFan-optimized loop with an inlined callee (needs --allow-natives-syntax)
//   maglev    the same loop compiled by Maglev (needs --allow-natives-syntax --maglev; node 22+)
//   baseline  the same functions compiled by Sparkplug (needs --allow-natives-syntax)
//   internal  called back from node's own modules (events, Array.prototype.forEach)
//   names     methods, class and static methods, an async function, and anonymous
//             functions only their receiver names (a fast and a dictionary-mode object)
//   worker    a worker thread and the main thread, both stopped
//   spin      no blocking: a hot loop running optimized code forever
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
Error.stackTraceLimit = 100;

const sab = isMainThread ? new SharedArrayBuffer(8) : workerData.sab;
const cell = new Int32Array(sab);

function report(thread, stack) {
  const frames = stack.split('\n').slice(1).map((l) => l.trim().replace(/^at /, ''));
  const line = JSON.stringify({ thread, stack: frames });
  if (isMainThread) console.log(line);
  else parentPort.postMessage(line);
}

function block(thread) {
  report(thread, new Error().stack);
  Atomics.wait(cell, 0, 0); // WAIT
}

function recurse(n, thread) {
  if (n > 0) return recurse(n - 1, thread) + 1;
  block(thread);
  return 0;
}

// Never optimized (so the optimized caller does not deoptimize when it
// starts blocking): stops once cell[1] is set.
function check(thread) {
  if (Atomics.load(cell, 1) === 1) block(thread);
}

function middle(x, thread) {
  const y = x * 3;
  check(thread);
  return y + 1;
}

function hot(n, thread) {
  let s = 0;
  for (let i = 0; i < n; i++) s += middle(i, thread);
  return s;
}

function spin() {
  let s = 0;
  for (;;) s = (s + middle(s & 0xff, 'main')) | 0;
}

function optimized(thread, compiler) {
  // eval: the natives syntax is only parsed with --allow-natives-syntax.
  eval('%NeverOptimizeFunction(block); %NeverOptimizeFunction(check); %PrepareFunctionForOptimization(hot); %PrepareFunctionForOptimization(middle)');
  hot(50, thread);
  hot(50, thread);
  eval(compiler === 'maglev' ? '%OptimizeMaglevOnNextCall(hot)' : '%OptimizeFunctionOnNextCall(hot)');
  hot(50, thread);
  Atomics.store(cell, 1, 1);
  hot(3, thread);
}

function baseline(thread) {
  hot(5, thread);
  eval('%CompileBaseline(hot); %CompileBaseline(middle); %CompileBaseline(check); %CompileBaseline(block)');
  Atomics.store(cell, 1, 1);
  hot(3, thread);
}

function internal(thread) {
  const EventEmitter = require('events');
  const e = new EventEmitter();
  e.on('go', function onGo(n) {
    [n].forEach(function each(k) { recurse(k, thread); });
  });
  e.emit('go', 2);
}

function names(thread) {
  const put = (o, k, f) => { o[k] = f; return o; };
  // Anonymous functions V8 cannot name from the source: only the property
  // of the receiver that holds them names them.
  const fast = put({ x: 1 }, 'fastKey', function () { block(thread); });
  const dict = { a: 1, b: 2 };
  delete dict.a; // dictionary mode
  put(dict, 'dictKey', function () { fast.fastKey(); });
  const obj = {};
  obj.method = function () { dict.dictKey(); }; // V8 infers "obj.method"
  class K {
    m() { obj.method(); }
    static s() { new K().m(); }
  }
  async function asy() { await null; K.s(); }
  const arrow = () => { asy(); };
  arrow();
}

const mode = isMainThread ? process.argv[2] : workerData.mode;
if (isMainThread && mode === 'worker') {
  const w = new Worker(__filename, { workerData: { sab, mode: 'interp-worker' } });
  w.on('message', (line) => {
    console.log(line);
    // The worker has stopped: now the main thread stops too.
    recurse(1, 'main');
  });
} else if (mode === 'interp-worker') {
  recurse(2, 'worker');
} else if (mode === 'interp') {
  recurse(3, 'main');
} else if (mode === 'opt') {
  optimized('main', 'turbofan');
} else if (mode === 'maglev') {
  optimized('main', 'maglev');
} else if (mode === 'baseline') {
  baseline('main');
} else if (mode === 'internal') {
  internal('main');
} else if (mode === 'names') {
  names('main');
} else if (mode === 'spin') {
  console.log(JSON.stringify({ thread: 'main', spinning: process.pid }));
  spin();
} else {
  console.error('usage: node jsstack-demo.js interp|opt|maglev|baseline|internal|names|worker|spin');
  process.exit(2);
}
