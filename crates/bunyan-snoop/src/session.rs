//! A snooping session: load the BPF program, attach it to the targets'
//! bunyan probes through libbpf's USDT support, and drain the ring buffer
//! into the caller's callback until Ctrl-C/SIGTERM or the targets exit.

use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, HashSet},
    mem::MaybeUninit,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::{
    skel::{OpenSkel, SkelBuilder},
    Link, OpenObject, RingBufferBuilder,
};

use crate::{
    signals::StopSignals,
    targets::{alive, all_pids, comm, maps_error, name_matches, unsnoopable, FileKey, ProbeCache, ProbedFile, Spec},
    Options, Stats, DEFAULT_PROBE_WAIT,
};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/snoop.skel.rs"));
}
use skel::{SnoopSkel, SnoopSkelBuilder};

/// The probes attached per file, one per level, with their levels.
const PROBES: [(u8, &str); 6] =
    [(10, "log-trace"), (20, "log-debug"), (30, "log-info"), (40, "log-warn"), (50, "log-error"), (60, "log-fatal")];

/// How long the reader sleeps between ring-buffer checks (the BPF side
/// only wakes it early when the ring is a quarter full).
const POLL: Duration = Duration::from_millis(20);
/// How often targets are checked for exit (PID, NAME) or new processes
/// are looked for (NAME, `*`).
const RESCAN: Duration = Duration::from_millis(500);

/// How often a process without probes is looked at again while waiting.
const WAIT_POLL: Duration = Duration::from_millis(100);

/// Attachments: (pid or -1 for every process, file) → links.
type Attached = HashMap<(i32, FileKey), Vec<Link>>;

/// Which scan this is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// The first: a named target that cannot be snooped is an error.
    Initial,
    /// While waiting for probes to appear: attach errors are errors.
    Waiting,
    /// Periodic: targets come and go quietly.
    Rescan,
}

/// What a scan found: selected processes snooped, and those alive with no
/// probes yet.
struct Found {
    snooped: usize,
    waiting: Vec<i32>,
}

struct Session {
    spec: Spec,
    /// Probes of lower levels are left alone.
    min_level: u8,
    cache: ProbeCache,
    attached: Attached,
    /// Attachments that failed on a rescan; not retried.
    failed: HashSet<(i32, FileKey)>,
}

impl Session {
    /// Attaches to one file for `pid` (-1: every process mapping it).
    fn attach(&mut self, skel: &SnoopSkel<'_>, pid: i32, file: &ProbedFile) -> Result<()> {
        if self.attached.contains_key(&(pid, file.key.clone())) {
            return Ok(());
        }
        let mut links = Vec::new();
        for (_, probe) in PROBES.iter().filter(|(level, _)| *level >= self.min_level) {
            match skel.progs.log_record.attach_usdt(pid, &file.path, crate::notes::PROVIDER, probe) {
                Ok(link) => links.push(link),
                // A file may lack some levels' probes; that is fine.
                Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(anyhow!(e)).with_context(|| {
                        format!("attaching to bunyan:{probe} in {} (process {pid})", file.path.display())
                    })
                }
            }
        }
        if links.is_empty() {
            bail!("no bunyan:log-* probe could be attached in {}", file.path.display());
        }
        self.attached.insert((pid, file.key.clone()), links);
        Ok(())
    }

    /// Attaches to `files` mapped by `pid`, for `attach_pid` (`pid` or -1).
    /// On the first scan (and while waiting for a target's probes) a failure
    /// is an error; later (a process racing to exit, an odd new library) the
    /// file is skipped from then on.
    fn attach_files(
        &mut self,
        skel: &SnoopSkel<'_>,
        pid: i32,
        attach_pid: i32,
        files: &[ProbedFile],
        strict: bool,
    ) -> Result<()> {
        for f in files {
            let key = (attach_pid, f.key.clone());
            if self.attached.contains_key(&key) || self.failed.contains(&key) {
                continue;
            }
            if let Err(e) = self.attach(skel, attach_pid, f) {
                if strict && alive(pid) {
                    return Err(e);
                }
                self.failed.insert(key);
            }
        }
        Ok(())
    }

    /// Finds the processes the spec selects and attaches to the files with
    /// probes they map (new processes, and libraries or generated objects
    /// loaded since the last scan).
    fn scan(&mut self, skel: &SnoopSkel<'_>, scan: Scan) -> Result<Found> {
        let (pids, by_name) = match &self.spec {
            Spec::Pids(pids) => (pids.clone(), None),
            Spec::Name(name) => {
                (all_pids().into_iter().filter(|&p| name_matches(p, name)).collect(), Some(name.clone()))
            }
            Spec::All => (all_pids(), None),
        };
        let explicit = matches!(self.spec, Spec::Pids(_));
        let every = matches!(self.spec, Spec::All);
        let mut found = Found { snooped: 0, waiting: Vec::new() };
        for pid in pids {
            if scan == Scan::Initial && explicit {
                if let Some(why) = unsnoopable(pid) {
                    bail!(why);
                }
            }
            let files = match self.cache.probed_files(pid) {
                Ok(files) => files,
                Err(e) if scan == Scan::Initial && explicit => return Err(maps_error(pid, e)),
                Err(_) => continue, // gone, a kernel thread, not ours
            };
            if !alive(pid) {
                continue;
            }
            if files.is_empty() {
                if !every {
                    found.waiting.push(pid);
                }
                continue;
            }
            found.snooped += 1;
            // '*' attaches once per file for every process (-1): processes
            // started later from the same file are covered by the kernel.
            self.attach_files(skel, pid, if every { -1 } else { pid }, &files, scan != Scan::Rescan)?;
        }
        if let (Scan::Initial, 0, true, Some(name)) = (scan, found.snooped, found.waiting.is_empty(), by_name) {
            bail!("no running process matching {name:?} has bunyan USDT probes");
        }
        Ok(found)
    }
}

/// "process 12 (node)", "processes 12 (node), 13 (node)".
fn describe(pids: &[i32], names: &HashMap<i32, String>) -> String {
    let list: Vec<String> =
        pids.iter().map(|p| format!("{p} ({})", names.get(p).cloned().unwrap_or_else(|| comm(*p)))).collect();
    format!("{} {}", if pids.len() == 1 { "process" } else { "processes" }, list.join(", "))
}

/// Waits (bounded) until a selected process that had no probes gets some:
/// node-bunyan's come from dtrace-provider when the first logger is
/// created, which can be well after node starts.  Returns false if
/// interrupted.
fn wait_for_probes(
    session: &mut Session,
    skel: &SnoopSkel<'_>,
    mut waiting: Vec<i32>,
    options: &Options,
    signals: &StopSignals,
) -> Result<bool> {
    let wait = options.probe_wait.unwrap_or(DEFAULT_PROBE_WAIT);
    let names: HashMap<i32, String> = waiting.iter().map(|&p| (p, comm(p))).collect();
    notice(
        options,
        &format!(
            "{} {} no bunyan USDT probes yet: waiting up to {} s for them to appear \
             (node-bunyan creates them with its first logger when node/dtrace-provider is loaded)",
            describe(&waiting, &names),
            if waiting.len() == 1 { "has" } else { "have" },
            wait.as_secs_f64()
        ),
    );
    let deadline = Instant::now() + wait;
    loop {
        if signals.stopped() {
            return Ok(false);
        }
        std::thread::sleep(WAIT_POLL);
        let before = waiting.clone();
        let found = session.scan(skel, Scan::Waiting)?;
        if found.snooped > 0 {
            let appeared: Vec<i32> =
                before.iter().copied().filter(|p| !found.waiting.contains(p) && alive(*p)).collect();
            notice(options, &format!("bunyan USDT probes appeared in {}: snooping", describe(&appeared, &names)));
            return Ok(true);
        }
        waiting = found.waiting;
        if waiting.is_empty() {
            bail!("{} exited before any bunyan USDT probes appeared", describe(&before, &names));
        }
        if Instant::now() >= deadline {
            bail!(
                "{} {} no bunyan USDT probes in any mapped file (waited {} s): a node-bunyan app gets them from \
                 node/dtrace-provider (node -r .../node/dtrace-provider/register.js), a Rust program from bunyan-log",
                describe(&waiting, &names),
                if waiting.len() == 1 { "has" } else { "have" },
                wait.as_secs_f64()
            );
        }
    }
}

fn notice(options: &Options, text: &str) {
    if let Some(f) = options.notices {
        f(text);
    }
}

/// Closes every link, one after the other: libbpf's USDT detach returns
/// the link's spec IDs to the object's shared USDT manager (a realloc
/// without a lock), so links of one object must not be destroyed from
/// several threads at once (that corrupted the heap: glibc aborted with
/// "munmap_chunk(): invalid pointer" after `'*'` snooped two files).
fn detach_all(attached: &mut Attached) {
    for (_, links) in attached.drain() {
        drop(links);
    }
}

/// What the BPF program lost so far: (ring full, too long, unreadable).
fn losses(skel: &SnoopSkel<'_>) -> (u64, u64, u64) {
    skel.maps.bss_data.as_deref().map(|b| (b.dropped_full, b.too_long, b.unreadable)).unwrap_or_default()
}

/// The JSON text of a ring record: a u32 length, then the text.
fn record_text(data: &[u8]) -> &[u8] {
    match data.split_first_chunk::<4>() {
        Some((len, rest)) => &rest[..(u32::from_ne_bytes(*len) as usize).min(rest.len())],
        None => &[],
    }
}

/// The record without the line ending some loggers include in the probe
/// argument (node-bunyan passes its output line, newline and all).
fn trim_newline(data: &[u8]) -> &[u8] {
    let end = data.iter().rposition(|&b| b != b'\n' && b != b'\r').map_or(0, |i| i + 1);
    &data[..end]
}

/// See [`crate::run_with`].
pub(crate) fn run(spec: &str, options: Options, on_record: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<Stats> {
    let spec = Spec::parse(spec)?;
    if options.min_level > 60 {
        bail!("level {} is above fatal (60): no probe to snoop", options.min_level);
    }
    // Named processes that cannot be snooped are refused before the BPF
    // program is loaded, so that the reason is the real one (not "needs
    // root" for a zombie or another user's process).
    if let Spec::Pids(pids) = &spec {
        for &pid in pids {
            if let Some(why) = unsnoopable(pid) {
                bail!(why);
            }
            if let Err(e) = std::fs::read(format!("/proc/{pid}/maps")) {
                return Err(maps_error(pid, e));
            }
        }
    }
    // libbpf's own messages would interleave with the records; errors are
    // reported through the returned Result instead.
    let prev_print = libbpf_rs::set_print(None);
    let result = snoop(spec, options, on_record);
    libbpf_rs::set_print(prev_print);
    result
}

fn snoop(spec: Spec, options: Options, on_record: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<Stats> {
    let mut storage = MaybeUninit::<OpenObject>::uninit();
    let open = SnoopSkelBuilder::default().open(&mut storage).context("opening the snoop BPF program")?;
    let skel = open.load().map_err(|e| {
        let hint = if unsafe { libc::geteuid() } != 0 {
            " (snooping needs root, or CAP_BPF and CAP_PERFMON: run it with sudo)"
        } else {
            ""
        };
        anyhow!(e).context(format!("loading the snoop BPF program into the kernel{hint}"))
    })?;
    let mut session = Session {
        spec,
        min_level: options.min_level,
        cache: ProbeCache::default(),
        attached: HashMap::new(),
        failed: HashSet::new(),
    };
    let signals = StopSignals::install();
    let found = session.scan(&skel, Scan::Initial)?;
    if found.snooped == 0 && !found.waiting.is_empty() {
        if !wait_for_probes(&mut session, &skel, found.waiting, &options, &signals)? {
            detach_all(&mut session.attached);
            return Ok(Stats::default());
        }
    } else if !found.waiting.is_empty() {
        let names = HashMap::new();
        notice(
            &options,
            &format!(
                "{} {} no bunyan USDT probes yet: snooping the others, and {} as soon as they appear",
                describe(&found.waiting, &names),
                if found.waiting.len() == 1 { "has" } else { "have" },
                if found.waiting.len() == 1 { "it" } else { "them" },
            ),
        );
    }

    let draining = Cell::new(false);
    let delivered = Cell::new(0u64);
    let failure: RefCell<Option<anyhow::Error>> = RefCell::new(None);
    let mut builder = RingBufferBuilder::new();
    builder.add(&skel.maps.records, |data: &[u8]| match on_record(trim_newline(record_text(data))) {
        Ok(()) => {
            delivered.set(delivered.get() + 1);
            // libbpf keeps consuming while records keep coming; stop at
            // once on Ctrl-C even if the target logs faster than we read.
            if signals.stopped() && !draining.get() {
                -libc::EINTR
            } else {
                0
            }
        }
        Err(e) => {
            *failure.borrow_mut() = Some(e);
            -1
        }
    })?;
    let ring = builder.build().context("setting up the ring buffer reader")?;

    let mut last_scan = Instant::now();
    let outcome = loop {
        if signals.stopped() {
            break Ok(());
        }
        let rc = ring.poll_raw(POLL);
        let rc = if rc >= 0 { ring.consume_raw() } else { rc };
        if let Some(e) = failure.borrow_mut().take() {
            break Err(e);
        }
        if rc < 0 && rc != -libc::EINTR {
            break Err(anyhow!("reading the BPF ring buffer failed: {}", std::io::Error::from_raw_os_error(-rc)));
        }
        if last_scan.elapsed() >= RESCAN {
            last_scan = Instant::now();
            let found = session.scan(&skel, Scan::Rescan)?;
            // Named PIDs without probes yet are still waited for.
            let live = found.snooped + if matches!(session.spec, Spec::Pids(_)) { found.waiting.len() } else { 0 };
            if live == 0 && !matches!(session.spec, Spec::All) {
                break Ok(()); // every target exited
            }
        }
    };
    // Detach first so nothing new arrives, then deliver what is left.
    detach_all(&mut session.attached);
    if outcome.is_ok() {
        draining.set(true);
        ring.consume_raw();
    }
    drop(ring);
    drop(signals);
    outcome?;
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    let (dropped, too_long, unreadable) = losses(&skel);
    Ok(Stats { delivered: delivered.get(), dropped, too_long, unreadable })
}
