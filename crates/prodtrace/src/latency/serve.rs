//! `prodtrace latency --serve ADDR`: trace many processes until stopped and
//! export their latency histograms to Prometheus (see docs/prometheus.md).
//!
//! One loop owns everything that touches BPF: it attaches the latency
//! probes to each process (`-p`, or every process named by `--comm`,
//! including those that start later: procwatch's exec tracepoint says so),
//! drops them when the process exits (procwatch's exit tracepoint), turns
//! completed operations into the metrics store, and with `--sample ON/PERIOD`
//! attaches all probes for ON out of every PERIOD and removes them in
//! between.  The HTTP server (http.rs, its own thread) only reads the store,
//! after asking this loop to fold in what is pending.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use libbpf_rs::{MapCore, MapFlags, RingBuffer, RingBufferBuilder};

use super::http::{self, Refresh};
use super::kinds::Namer;
use super::metrics::{self, LiveHist, Pow2, Settings, Store, PHASES};
use super::procwatch::{self, ProcEvent, ProcWatch};
use super::report::RawKind;
use super::sample::Sampling;
use super::target::Target;
use super::tracer::{Event, ObjectStorage, Tracer};
use super::{Args, By, Session, STOP, TOOL};
use crate::privileges;
use crate::uprobes::{Attacher, Method};

/// How often the loop wakes up when nothing happens (it also wakes for
/// process events); completed operations wait in ring buffers meanwhile.
const TICK: Duration = Duration::from_millis(100);

pub fn run(args: &Args, addr: &str) -> Result<()> {
    if !args.command.is_empty() {
        bail!("--serve traces running processes: name them with -p PID or --comm NAME (not -- CMD)");
    }
    if args.json || args.interval.is_some() {
        bail!("--serve exports metrics over HTTP; --json and --interval are for the terminal");
    }
    if args.pid.is_empty() && args.comm.is_empty() {
        bail!("say what to trace: -p PID (may be repeated) and/or --comm NAME");
    }
    if args.max_kinds == 0 {
        bail!("--max-kinds 0 would export nothing: give at least 1 (default 100)");
    }
    let sampling = Sampling::parse(args.sample.as_deref())?;
    privileges::require_bpf("prodtrace latency")?;
    let method = super::kernel_checks(args)?;
    for c in &args.comm {
        if c.is_empty() {
            bail!("--comm: give a process name, e.g. --comm node");
        }
        if c.len() > 15 {
            eprintln!(
                "prodtrace: note: --comm {c}: the kernel keeps 15 bytes of a process name; matching `{}`",
                String::from_utf8_lossy(&procwatch::comm_key(c)[..15])
            );
        }
    }
    for &pid in &args.pid {
        if !procctl::process_exists(pid) {
            bail!("no process with PID {pid}");
        }
    }
    super::install_stop_handlers()?;
    let listener = http::bind(addr)?;
    let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| addr.to_string());

    let mut watch_storage = procwatch::ObjectStorage::uninit();
    let watch = ProcWatch::start(&mut watch_storage, &args.comm)?;
    let store = Arc::new(Mutex::new(Store::new(Settings {
        breakdown: args.breakdown,
        max_kinds: args.max_kinds,
        grace: args.grace,
        sampled_fraction: sampling.fraction(),
    })));
    let (refresh_tx, refresh_rx) = channel();
    http::spawn(listener, metrics::registry(store.clone()), refresh_tx)?;
    eprintln!(
        "Serving metrics on http://{bound}/metrics; tracing {} ({}). Ctrl-C to end.",
        describe(args),
        sampling.describe()
    );

    let mut fleet = Fleet { args, watch, store, procs: BTreeMap::new(), sampling, attached: false, method };
    fleet.main_loop(refresh_rx)
}

fn describe(args: &Args) -> String {
    let mut what: Vec<String> = args.pid.iter().map(|p| format!("process {p}")).collect();
    what.extend(args.comm.iter().map(|c| format!("every process named {c}")));
    what.join(", ")
}

/// The probes of one process while attached.  The tracer borrows its
/// storage, so both live here and are dropped in order.
struct Probes {
    ring: ManuallyDrop<RingBuffer<'static>>,
    tracer: ManuallyDrop<Tracer<'static>>,
    _storage: Box<ObjectStorage>,
    queue: Rc<RefCell<Vec<Event>>>,
    libs_changed: Rc<Cell<bool>>,
    /// Losses (ring buffer full, table full) already given to the store.
    losses: (u64, u64),
}

impl Drop for Probes {
    fn drop(&mut self) {
        // SAFETY: each is dropped once, here, before the storage the tracer
        // borrows (a field, dropped after this function).
        unsafe {
            ManuallyDrop::drop(&mut self.ring);
            ManuallyDrop::drop(&mut self.tracer);
        }
    }
}

impl Probes {
    fn attach(session: &Session, attacher: &Attacher) -> Result<Self> {
        let mut storage = Box::new(ObjectStorage::uninit());
        // SAFETY: the tracer borrows the boxed storage, which does not move
        // when the box does and outlives the tracer (see Drop).
        let storage_ref: &'static mut ObjectStorage = unsafe { &mut *(storage.as_mut() as *mut ObjectStorage) };
        let tracer = Tracer::attach(storage_ref, &session.cfg, attacher)?;
        let queue: Rc<RefCell<Vec<Event>>> = Rc::default();
        let libs_changed = Rc::new(Cell::new(false));
        let (q, changed) = (queue.clone(), libs_changed.clone());
        let mut builder = RingBufferBuilder::new();
        builder.add(&tracer.skel.maps.events, move |data: &[u8]| {
            if let Some(e) = Event::parse(data) {
                q.borrow_mut().push(e);
            }
            0
        })?;
        builder.add(&tracer.skel.maps.maps_changed, move |_: &[u8]| {
            changed.set(true);
            0
        })?;
        let ring = builder.build()?;
        Ok(Self {
            ring: ManuallyDrop::new(ring),
            tracer: ManuallyDrop::new(tracer),
            _storage: storage,
            queue,
            libs_changed,
            losses: (0, 0),
        })
    }
}

/// One process being traced.
struct Proc {
    target: Target,
    session: Session,
    namer: Namer,
    /// Kind names by what the BPF program recorded, (type, address).
    names: HashMap<RawKind, String>,
    probes: Option<Probes>,
    /// Whether the kind cap was reported.
    capped: bool,
}

struct Fleet<'a, 'w> {
    args: &'a Args,
    watch: ProcWatch<'w>,
    store: Arc<Mutex<Store>>,
    procs: BTreeMap<u32, Proc>,
    sampling: Sampling,
    /// Whether probes are on (always, without --sample).
    attached: bool,
    /// How uprobes are attached on this kernel.
    method: Method,
}

impl Fleet<'_, '_> {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn main_loop(&mut self, refresh: Receiver<Refresh>) -> Result<()> {
        let started = Instant::now();
        let deadline = self.args.duration.map(|d| started + d);
        self.attached = self.sampling.on_at(started, started);
        for pid in self.args.pid.clone() {
            self.add(pid, "-p");
        }
        for pid in find_by_comm(&self.args.comm) {
            self.add(pid, "--comm");
        }
        let end = loop {
            let events = self.watch.wait(TICK);
            let now = Instant::now();
            for e in events {
                self.on_event(e, now);
            }
            let on = self.sampling.on_at(started, now);
            if on != self.attached {
                self.attached = on;
                if on {
                    self.store().sample_cycles += 1;
                }
                let pids: Vec<u32> = self.procs.keys().copied().collect();
                if on {
                    for pid in pids {
                        self.attach(pid);
                    }
                } else {
                    self.detach(&pids);
                }
            }
            // In-kernel histograms are read only for a scrape; ring
            // buffers (library-load notices, --bench-serve-ringbuf's
            // operations) are drained every tick.
            let pending: Vec<Refresh> = refresh.try_iter().collect();
            self.collect(!pending.is_empty());
            for r in pending {
                let _ = r.send(());
            }
            self.store().expire(now);
            self.store().discovery_lost = self.watch.lost();
            if STOP.load(Ordering::SeqCst) {
                break "interrupted";
            }
            if deadline.is_some_and(|d| now >= d) {
                break "duration elapsed";
            }
        };
        let pids: Vec<u32> = self.procs.keys().copied().collect();
        self.detach(&pids);
        eprintln!("prodtrace: {end} after {:.1} s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Starts tracing `pid` (found through `how`); a process that cannot
    /// be traced is reported and skipped.
    fn add(&mut self, pid: u32, how: &str) {
        if self.procs.contains_key(&pid) {
            return;
        }
        // Watch for its exit before checking it runs, so that no exit is missed.
        self.watch.watch(pid);
        let prepared = Target::attach(pid).and_then(|target| {
            let mut session = Session::prepare(&target, self.args)?;
            session.cfg.compact = true;
            if !self.args.bench_serve_ringbuf {
                let phases = if self.args.breakdown { PHASES.len() } else { 1 };
                session.cfg.aggregate = Some((self.args.max_kinds * phases).min(1 << 20) as u32);
            }
            Ok((target, session))
        });
        let (target, session) = match prepared {
            Ok(t) => t,
            Err(e) => {
                self.watch.unwatch(pid);
                if procctl::process_exists(pid) {
                    eprintln!("prodtrace: not tracing process {pid} ({how}): {e:#}");
                }
                return;
            }
        };
        let comm = procctl::comm(pid).unwrap_or_else(|_| "?".into());
        let by_caller = self.args.by == By::Caller;
        let namer = Namer::new(
            &target,
            Some((&session.exe, session.exe_bias)),
            &session.exe_path,
            &session.libuv_path,
            by_caller,
        );
        self.store().add_process(pid, &comm);
        let libuv = session.libuv_path.display().to_string();
        self.procs.insert(pid, Proc { target, session, namer, names: HashMap::new(), probes: None, capped: false });
        if self.attached {
            self.attach(pid);
        }
        // Said once its probes are in (or when the next sample period begins).
        eprintln!("prodtrace: tracing process {pid} ({comm}), {libuv}");
    }

    fn attach(&mut self, pid: u32) {
        let Some(p) = self.procs.get_mut(&pid) else { return };
        if p.probes.is_some() {
            return;
        }
        let attacher = Attacher { method: self.method, pid, tool: TOOL };
        match Probes::attach(&p.session, &attacher) {
            Ok(probes) => p.probes = Some(probes),
            Err(e) => {
                if p.target.alive() {
                    eprintln!("prodtrace: cannot attach to process {pid}: {e:#}");
                }
            }
        }
    }

    /// Removes the probes of `pids`, keeping what they collected.
    fn detach(&mut self, pids: &[u32]) {
        let mut detaching = Vec::new();
        let mut links = Vec::new();
        for &pid in pids {
            if let Some(mut probes) = self.procs.get_mut(&pid).and_then(|p| p.probes.take()) {
                links.extend(probes.tracer.take_links());
                detaching.push((pid, probes));
            }
        }
        // Closing a link waits for an RCU grace period: close them all at
        // once (the waits overlap), and only then read what was collected.
        std::thread::scope(|s| {
            for link in links {
                s.spawn(move || drop(link));
            }
        });
        let by_caller = self.args.by == By::Caller;
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        for (pid, mut probes) in detaching {
            let Some(p) = self.procs.get_mut(&pid) else { continue };
            probes.ring.consume_raw();
            fold(pid, p, &mut probes, &mut store, by_caller, true);
            // The in-kernel histograms go with the program: keep them.
            store.commit_live(pid);
        }
    }

    /// Drains the ring buffers of every attached process into the store;
    /// with `scrape`, also reads their in-kernel histograms.
    fn collect(&mut self, scrape: bool) {
        let by_caller = self.args.by == By::Caller;
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        for (&pid, p) in self.procs.iter_mut() {
            if let Some(mut probes) = p.probes.take() {
                probes.ring.consume_raw();
                fold(pid, p, &mut probes, &mut store, by_caller, scrape);
                p.probes = Some(probes);
            }
        }
    }

    fn on_event(&mut self, e: ProcEvent, now: Instant) {
        match e {
            ProcEvent::Exit { pid } => self.remove(pid, now),
            ProcEvent::Exec { pid, comm } => {
                // A traced process that runs a new program lost its probes.
                self.remove(pid, now);
                if self.args.comm.iter().any(|c| procwatch::comm_key(c) == procwatch::comm_key(&comm)) {
                    self.add(pid, "--comm");
                }
            }
        }
    }

    fn remove(&mut self, pid: u32, now: Instant) {
        if !self.procs.contains_key(&pid) {
            return;
        }
        self.detach(&[pid]);
        self.procs.remove(&pid);
        self.watch.unwatch(pid);
        self.store().process_gone(pid, now);
        eprintln!("prodtrace: process {pid} ended");
    }
}

/// Moves the operations `probes` collected for process `pid` into
/// `store`: those in its ring buffer, and with `read_hists` (a scrape, or
/// the end of a sample), its in-kernel histograms and loss counters.
fn fold(pid: u32, p: &mut Proc, probes: &mut Probes, store: &mut Store, by_caller: bool, read_hists: bool) {
    if probes.libs_changed.replace(false) {
        p.namer.refresh_maps();
    }
    p.namer.new_pass();
    if read_hists && p.session.cfg.aggregate.is_some() {
        let hists = kernel_hists(p, probes, by_caller);
        let lost = |i: u32| -> u64 {
            probes
                .tracer
                .skel
                .maps
                .hist_lost
                .lookup(&i.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .and_then(|v| v.get(..8).map(|b| u64::from_ne_bytes(b.try_into().unwrap())))
                .unwrap_or(0)
        };
        let (lost_ops, dropped) = (lost(0), lost(1));
        if (!store.set_live(pid, hists, lost_ops, dropped) || dropped > 0) && !p.capped {
            p.capped = true;
            warn_capped(pid, store.max_kinds());
        }
    }
    for e in probes.queue.borrow_mut().drain(..) {
        let name = kind_name(p, e.kind_type, e.kind, e.caller, by_caller);
        if !store.record(pid, name, &e) && !p.capped {
            p.capped = true;
            warn_capped(pid, store.max_kinds());
        }
    }
    if read_hists {
        if let Ok((ring, table)) = probes.tracer.losses() {
            store.add_losses(pid, ring - probes.losses.0.min(ring), table - probes.losses.1.min(table));
            probes.losses = (ring, table);
        }
    }
}

fn warn_capped(pid: u32, max_kinds: usize) {
    eprintln!(
        "prodtrace: warning: process {pid} has more than {max_kinds} kinds of operation: the others are not \
         exported (--max-kinds; counted in prodtrace_series_dropped_total)"
    );
}

/// The kind name of what the BPF program recorded as (type, address) and,
/// with --by caller, a caller's return address (the namer decides, as in
/// the terminal mode, whether it is a caller outside node and libuv).
fn kind_name(p: &mut Proc, kind_type: u32, kind: u64, caller: u64, by_caller: bool) -> &str {
    let key = RawKind { kind_type, kind, caller: if by_caller { caller } else { 0 } };
    if !p.names.contains_key(&key) {
        let k = p.namer.name(&key);
        p.names.insert(key, k.display());
    }
    &p.names[&key]
}

/// The in-kernel histograms of `probes` (struct hist_key -> struct hist in
/// latency.bpf.c), named.
fn kernel_hists(p: &mut Proc, probes: &Probes, by_caller: bool) -> Vec<LiveHist> {
    let map = &probes.tracer.skel.maps.hists;
    let word = |b: &[u8], i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    let mut out = Vec::new();
    for key in map.keys() {
        let Ok(Some(value)) = map.lookup(&key, MapFlags::ANY) else { continue };
        if key.len() < 24 || value.len() < 8 * 66 {
            continue;
        }
        let (kind, caller) = (word(&key, 0), word(&key, 1));
        let kind_type = u32::from_ne_bytes(key[16..20].try_into().unwrap());
        let phase = u32::from_ne_bytes(key[20..24].try_into().unwrap()) as usize;
        let mut slots = [0u64; 65];
        for (i, s) in slots.iter_mut().enumerate() {
            *s = word(&value, 1 + i);
        }
        let name = kind_name(p, kind_type, kind, caller, by_caller).to_string();
        out.push(LiveHist { kind: name, phase, hist: Pow2::from_slots(&slots, word(&value, 0)) });
    }
    out
}

/// PIDs of the running processes named one of `comms` (one pass over
/// /proc at start-up; later ones come from the exec tracepoint).
fn find_by_comm(comms: &[String]) -> Vec<u32> {
    if comms.is_empty() {
        return Vec::new();
    }
    let keys: Vec<[u8; 16]> = comms.iter().map(|c| procwatch::comm_key(c)).collect();
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| procctl::comm(pid).is_ok_and(|c| keys.contains(&procwatch::comm_key(&c))))
        .collect();
    pids.sort_unstable();
    pids
}
