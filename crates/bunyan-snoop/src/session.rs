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
    targets::{alive, all_pids, name_matches, FileKey, ProbeCache, ProbedFile, Spec},
    Options, Stats,
};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/snoop.skel.rs"));
}
use skel::{SnoopSkel, SnoopSkelBuilder};

/// The probes attached per file, one per level, with their levels.
const PROBES: [(u8, &str); 6] = [
    (10, "log-trace"),
    (20, "log-debug"),
    (30, "log-info"),
    (40, "log-warn"),
    (50, "log-error"),
    (60, "log-fatal"),
];

/// How long the reader sleeps between ring-buffer checks (the BPF side
/// only wakes it early when the ring is a quarter full).
const POLL: Duration = Duration::from_millis(20);
/// How often targets are checked for exit (PID, NAME) or new processes
/// are looked for (NAME, `*`).
const RESCAN: Duration = Duration::from_millis(500);

/// Attachments: (pid or -1 for every process, file) → links.
type Attached = HashMap<(i32, FileKey), Vec<Link>>;

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
            match skel
                .progs
                .log_record
                .attach_usdt(pid, &file.path, crate::notes::PROVIDER, probe)
            {
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
    /// On the first scan a failure is an error; later (a process racing to
    /// exit, an odd new library) the file is skipped from then on.
    fn attach_files(
        &mut self,
        skel: &SnoopSkel<'_>,
        pid: i32,
        attach_pid: i32,
        files: &[ProbedFile],
        initial: bool,
    ) -> Result<()> {
        for f in files {
            let key = (attach_pid, f.key.clone());
            if self.attached.contains_key(&key) || self.failed.contains(&key) {
                continue;
            }
            if let Err(e) = self.attach(skel, attach_pid, f) {
                if initial && alive(pid) {
                    return Err(e);
                }
                self.failed.insert(key);
            }
        }
        Ok(())
    }

    /// Finds the processes the spec selects and attaches to the files with
    /// probes they map (new processes, and libraries loaded since the last
    /// scan); returns how many selected processes are alive.
    fn scan(&mut self, skel: &SnoopSkel<'_>, initial: bool) -> Result<usize> {
        let (pids, by_name) = match &self.spec {
            Spec::Pids(pids) => (pids.clone(), None),
            Spec::Name(name) => (
                all_pids().into_iter().filter(|&p| name_matches(p, name)).collect(),
                Some(name.clone()),
            ),
            Spec::All => (all_pids(), None),
        };
        let explicit = matches!(self.spec, Spec::Pids(_));
        let every = matches!(self.spec, Spec::All);
        let mut matched = 0;
        for pid in pids {
            let files = match self.cache.probed_files(pid) {
                Ok(files) => files,
                Err(e) if initial && explicit => {
                    return Err(e).with_context(|| format!("process {pid} not found (reading /proc/{pid}/maps)"))
                }
                Err(_) => continue, // gone, or a kernel thread
            };
            if files.is_empty() {
                if initial && explicit {
                    bail!(
                        "process {pid} ({}) has no bunyan USDT probes in any mapped file",
                        comm(pid)
                    );
                }
                continue;
            }
            if !alive(pid) {
                continue;
            }
            matched += 1;
            // '*' attaches once per file for every process (-1): processes
            // started later from the same file are covered by the kernel.
            self.attach_files(skel, pid, if every { -1 } else { pid }, &files, initial)?;
        }
        if let (true, 0, Some(name)) = (initial, matched, by_name) {
            bail!("no running process matching {name:?} has bunyan USDT probes");
        }
        Ok(matched)
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

/// Records the BPF program dropped so far.
fn dropped(skel: &SnoopSkel<'_>) -> u64 {
    skel.maps
        .bss_data
        .as_deref()
        .map(|b| b.dropped_full + b.dropped_other)
        .unwrap_or(0)
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim_end().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The record without the line ending some loggers include in the probe
/// argument (node-bunyan passes its output line, newline and all).
fn trim_newline(data: &[u8]) -> &[u8] {
    let end = data
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |i| i + 1);
    &data[..end]
}

/// See [`crate::run_with`].
pub(crate) fn run(spec: &str, options: Options, on_record: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<Stats> {
    let spec = Spec::parse(spec)?;
    if options.min_level > 60 {
        bail!("level {} is above fatal (60): no probe to snoop", options.min_level);
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
    let open = SnoopSkelBuilder::default()
        .open(&mut storage)
        .context("opening the snoop BPF program")?;
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
    session.scan(&skel, true)?;

    let signals = StopSignals::install();
    let draining = Cell::new(false);
    let delivered = Cell::new(0u64);
    let failure: RefCell<Option<anyhow::Error>> = RefCell::new(None);
    let mut builder = RingBufferBuilder::new();
    builder.add(&skel.maps.records, |data: &[u8]| match on_record(trim_newline(data)) {
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
            break Err(anyhow!(
                "reading the BPF ring buffer failed: {}",
                std::io::Error::from_raw_os_error(-rc)
            ));
        }
        if last_scan.elapsed() >= RESCAN {
            last_scan = Instant::now();
            let matched = session.scan(&skel, false)?;
            if matched == 0 && !matches!(session.spec, Spec::All) {
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
    Ok(Stats {
        delivered: delivered.get(),
        dropped: dropped(&skel),
    })
}
