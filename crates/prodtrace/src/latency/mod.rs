//! `prodtrace latency`: latency histograms of the asynchronous operations a
//! process runs on libuv's thread pool (`uv_queue_work`, and libuv's own fs
//! and dns requests), one per kind of
//! operation, in DTrace's `quantize` layout — `trace-addon-latency.d` from
//! the original DTrace articles on debugging Node.js in production, for Linux.
//!
//! Modules: `target` (the process, its mappings, where its libuv is),
//! `elf` + `sites` (where to put the probes, N-API's layout), `tracer` (the
//! BPF program, attached through `crate::uprobes`), `kinds` (naming kinds),
//! `report` (histograms and output).
//! `--serve` (many processes, exported to Prometheus): `serve` (the loop),
//! `procwatch` (exec/exit tracepoints), `sample` (--sample), `metrics`
//! (the store and its exposition), `http` (the endpoint).
//! This file holds the command line and the tracing session.

mod elf;
mod http;
mod kinds;
mod metrics;
mod procwatch;
mod report;
mod sample;
mod serve;
mod sites;
mod target;
mod tracer;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::RingBufferBuilder;

use crate::features::{self, Feature};
use crate::privileges;
use crate::uprobes::{Attacher, Method};
use elf::ElfImage;
use kinds::Namer;
use report::{Report, Tally};
use target::Target;
use tracer::{Config, Event, InternalConfig, RunSites, Tracer};

/// The tool, in messages.
const TOOL: &str = "prodtrace latency";

/// How operations are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// The function that does the work: N-API's execute callback, node's
    /// ThreadPoolWork class, or the work_cb given to uv_queue_work.
    Work,
    /// The first function outside node and libuv on the stack that started
    /// the operation (DTrace's `ucaller`, as in the original DTrace articles' script).
    Caller,
}

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  prodtrace latency -p 1234                      trace until Ctrl-C
  prodtrace latency -p 1234 -d 10s --json        10 seconds, JSON
  prodtrace latency -i 5 -p 1234                 print and reset every 5 s
  prodtrace latency --breakdown -p 1234          queue wait / run / event-loop lag
  prodtrace latency -d 10s -- node examples/node/sqlite-demo.js
  prodtrace latency --serve 127.0.0.1:9464 --comm node   Prometheus metrics of every node process")]
pub struct Args {
    /// Trace this running process (with --serve, may be repeated).
    #[arg(short, long, value_name = "PID", conflicts_with = "command")]
    pub pid: Vec<u32>,
    /// Stop after this long: 10s, 500ms, 2m, 1h (a bare number is seconds; at most a year).
    #[arg(short, long, value_name = "TIME", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Print and reset the histograms every SECS seconds (or 500ms, 2m...; at most a year).
    #[arg(short, long, value_name = "SECS", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Print one JSON array (one per interval with --interval) instead of histograms.
    #[arg(long)]
    pub json: bool,
    /// Also histogram each phase: queue wait, run on the worker, completion delay (event-loop lag).
    #[arg(long)]
    pub breakdown: bool,
    /// What names a kind of operation.
    #[arg(long, value_enum, default_value_t = By::Work)]
    pub by: By,
    /// For bench/latency.sh: attach the same probes, but with BPF programs
    /// that return at once, to measure what the traps alone cost.
    #[arg(long, hide = true)]
    pub bench_bare_probes: bool,
    /// For bench/serve.sh: --serve with the ring buffer and histograms in
    /// user space, instead of histograms kept in the kernel.
    #[arg(long, hide = true)]
    pub bench_serve_ringbuf: bool,
    /// Serve Prometheus metrics on ADDR (IP:PORT, e.g. 127.0.0.1:9464) at /metrics until stopped,
    /// for every process given by -p and --comm.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
    /// With --serve: also trace every process named NAME, including those that start later
    /// (may be repeated).
    #[arg(long, value_name = "NAME", requires = "serve")]
    pub comm: Vec<String>,
    /// With --serve: attach the probes for ON out of every PERIOD (e.g. 2s/20s), or `off`
    /// to keep them attached [default: 2s/30s].
    #[arg(long, value_name = "ON/PERIOD", requires = "serve")]
    pub sample: Option<String>,
    /// With --serve: at most this many kinds (histograms) per process; operations of other
    /// kinds are counted as lost.
    #[arg(long, value_name = "N", default_value_t = 100, requires = "serve")]
    pub max_kinds: usize,
    /// With --serve: how long the series of a process that ended stay exported.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "2m", requires = "serve")]
    pub grace: Duration,
    /// Start this command and trace it from its first instruction (like dtrace -c).
    #[arg(last = true, value_name = "CMD ARGS")]
    pub command: Vec<String>,
}

/// The longest duration or interval accepted: a year.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `10s`, `500ms`, `2m`, `1h`, or a bare number of seconds: more
/// than zero, at most [`MAX_DURATION`].
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("`{s}` must be a positive duration"));
    }
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(format!("`{s}` is too long: at most a year ({}h)", MAX_DURATION.as_secs() / 3600));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)"))
}

/// What latency needs of the kernel whatever the attach path
/// (`prodtrace doctor` checks the same).
pub const NEEDS: [Feature; 3] = [Feature::Btf, Feature::RingBuf, Feature::BpfAtomics];

/// Checks what this kernel must have for `args`, before anything is
/// started, and returns how uprobes will be attached.
fn kernel_checks(args: &Args) -> Result<Method> {
    for f in NEEDS {
        features::require(TOOL, f)?;
    }
    let method = Method::choose(TOOL)?;
    if args.breakdown && method != Method::Multi {
        features::require(TOOL, Feature::UprobeCookies)?;
    }
    Ok(method)
}

/// Set by SIGINT/SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM end the session (and interrupt a blocking poll).
fn install_stop_handlers() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &action) }.context("installing the Ctrl-C handler")?;
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    if let Some(addr) = &args.serve {
        return serve::run(&args, addr);
    }
    if args.pid.len() > 1 {
        bail!("tracing several processes (-p ... -p ...) needs --serve ADDR");
    }
    privileges::require_bpf(TOOL)?;
    let method = kernel_checks(&args)?;
    install_stop_handlers()?;
    let mut target = match (args.pid.first(), args.command.is_empty()) {
        (Some(&pid), true) => Target::attach(pid)?,
        (None, false) => Target::spawn(&args.command)?,
        _ => bail!("say what to trace: -p PID, or -- CMD ARGS..."),
    };
    let session = Session::prepare(&target, &args);
    let session = match session {
        Ok(s) => s,
        Err(e) if !target.alive() => {
            eprintln!("prodtrace: process {} exited before tracing started ({e:#}); nothing collected", target.pid);
            return finish_empty(&args);
        }
        Err(e) => return Err(e),
    };
    session.run(&mut target, &args, method)
}

/// Everything decided before attaching.
struct Session {
    cfg: Config,
    exe: ElfImage,
    exe_bias: u64,
    /// The executable and the file holding libuv, as the target names them.
    exe_path: PathBuf,
    libuv_path: PathBuf,
}

impl Session {
    fn prepare(target: &Target, args: &Args) -> Result<Self> {
        let libuv_path = target::find_libuv(target)?;
        let libuv_host = target.host_path(&libuv_path);
        let libuv = ElfImage::open(&libuv_host)?;
        let sites = sites::libuv_sites(&libuv)?;
        for (site, what) in [(sites.submit, "uv_queue_work"), (sites.done, "uv__queue_done")] {
            if !site.emulated {
                eprintln!(
                    "prodtrace: note: no kernel-emulated instruction at the start of {what} in {}: \
                     its probe is single-stepped (about 10 µs per operation)",
                    libuv_path.display()
                );
            }
        }
        let off = |vaddr: u64| {
            libuv.file_offset(vaddr).with_context(|| format!("address {vaddr:#x} is not in a loadable segment"))
        };
        let offsets = (off(sites.submit.vaddr)?, off(sites.done.vaddr)?);
        let run = match sites.worker {
            Some(w) => {
                RunSites::Worker { start: off(w.start.vaddr)?, end: off(w.end.vaddr)?, reg: w.reg, disp: w.disp }
            }
            None => {
                if args.breakdown {
                    eprintln!(
                        "prodtrace: note: libuv's worker loop not found in {}: --breakdown probes \
                         uv__queue_work, which is single-stepped (about 10 µs per operation)",
                        libuv_path.display()
                    );
                }
                RunSites::QueueWork(off(sites.run.vaddr)?)
            }
        };
        let rel = |a: u64, from: u64| a.wrapping_sub(from) as i64;
        let internal = match &sites.internal {
            Some(i) => Some(InternalConfig {
                submit: off(i.submit.vaddr)?,
                dones: i.dones.iter().map(|d| off(d.vaddr)).collect::<Result<_>>()?,
                queue_work_rel: rel(sites.run.func, i.submit.vaddr),
                fs_work_rel: i.fs_work.map_or(0, |(f, _)| rel(f, i.submit.vaddr)),
                fs_req_off: i.fs_work.map_or(0, |(_, o)| o),
            }),
            None => None,
        };
        let exe_path = target.exe()?;
        let exe = ElfImage::open(&target.host_path(&exe_path))?;
        let exe_bias = target.bias(&exe_path, &exe).unwrap_or(0);
        let napi = sites::napi_layout(&exe);
        if let Some(n) = &napi {
            if n.exec_off.is_none() {
                eprintln!(
                    "prodtrace: note: cannot locate N-API's execute callback in this node build; \
                     N-API work is reported as its ThreadPoolWork class"
                );
            }
        }
        // --by caller skips node's own frames: its image, not every mapping
        // of the file (V8 maps node's builtins again near its JIT code, and
        // a range covering those would cover JIT code and libraries too).
        let skip =
            napi.as_ref().and(exe.load_span()).map(|(lo, hi)| (lo.wrapping_add(exe_bias), hi.wrapping_add(exe_bias)));
        let dl_debug_state = target::dynamic_linker(target).and_then(|ldso| {
            let host = target.host_path(&ldso);
            let image = ElfImage::open(&host).ok()?;
            let off = image.file_offset(image.symbol("_dl_debug_state")?.addr)?;
            Some((host, off))
        });
        let cfg = Config {
            pid: target.pid,
            libuv: libuv_host,
            offsets,
            run,
            bare: args.bench_bare_probes,
            napi: napi.map(|n| (n, exe_bias)),
            by_caller: args.by == By::Caller,
            skip,
            breakdown: args.breakdown,
            internal,
            dl_debug_state,
            compact: false,
            aggregate: None,
        };
        Ok(Self { cfg, exe, exe_bias, exe_path, libuv_path })
    }

    fn run(self, target: &mut Target, args: &Args, method: Method) -> Result<()> {
        let mut storage = tracer::ObjectStorage::uninit();
        let attacher = Attacher { method, pid: target.pid, tool: TOOL };
        let mut tracer = match Tracer::attach(&mut storage, &self.cfg, &attacher) {
            Ok(t) => t,
            Err(e) if !target.alive() => {
                eprintln!(
                    "prodtrace: process {} exited while probes were being attached ({e:#}); nothing collected",
                    target.pid
                );
                return finish_empty(args);
            }
            Err(e) => return Err(e),
        };
        if STOP.load(Ordering::SeqCst) {
            tracer.detach();
            eprintln!("prodtrace: interrupted while attaching; nothing collected");
            return finish_empty(args);
        }
        let by_caller = args.by == By::Caller;
        let mut namer =
            Namer::new(target, Some((&self.exe, self.exe_bias)), &self.exe_path, &self.libuv_path, by_caller);
        target.resume()?;
        let comm = procctl::comm(target.pid).unwrap_or_else(|_| "?".into());
        eprintln!(
            "Tracing {} ({comm}): operations on libuv's thread pool ({}). Ctrl-C to end.",
            target.pid,
            self.libuv_path.display()
        );

        let queue: Rc<RefCell<Vec<Event>>> = Rc::default();
        let q = queue.clone();
        let mut builder = RingBufferBuilder::new();
        builder.add(&tracer.skel.maps.events, move |data: &[u8]| {
            if let Some(e) = Event::parse(data) {
                q.borrow_mut().push(e);
            }
            0
        })?;
        let libs_changed = Rc::new(Cell::new(false));
        let changed = libs_changed.clone();
        builder.add(&tracer.skel.maps.maps_changed, move |_: &[u8]| {
            changed.set(true);
            0
        })?;
        let ring = builder.build().context("setting up the ring buffer reader")?;

        // The loop only moves events from the ring buffer into the tally
        // (and re-reads the maps, at most once a turn, when a new kind's
        // code is outside them): naming kinds (symbol tables, DWARF, the
        // perf map) can take seconds and is done when a report is printed,
        // so that the deadline ends tracing on time whatever the load.
        let mut tally = Tally::default();
        let started = Instant::now();
        let deadline = args.duration.and_then(|d| started.checked_add(d));
        let mut next_print = args.interval.and_then(|i| started.checked_add(i));
        let end = loop {
            let now = Instant::now();
            let wait = [deadline, next_print]
                .into_iter()
                .flatten()
                .map(|t| t.saturating_duration_since(now))
                .fold(Duration::from_millis(100), Duration::min);
            let rc = ring.poll_raw(wait);
            if rc >= 0 {
                ring.consume_raw();
            }
            if libs_changed.replace(false) {
                namer.refresh_maps();
            }
            for e in queue.borrow_mut().drain(..) {
                if let Some(raw) = tally.add(&e) {
                    namer.observe(&raw);
                }
            }
            namer.refresh_if_needed();
            if STOP.load(Ordering::SeqCst) {
                break "interrupted".to_string();
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break "duration elapsed".to_string();
            }
            if !target.alive() {
                break match target.ended() {
                    Some(how) => format!("command {how}"),
                    None => "process exited".into(),
                };
            }
            if let (Some(next), Some(every)) = (next_print, args.interval) {
                if now >= next {
                    print_report(args, &namer.name_all(&tally), true)?;
                    tally = Tally::default();
                    next_print = next.checked_add(every);
                }
            }
        };
        let traced = started.elapsed();
        // No new operations from here; collect what is still in the ring.
        tracer.detach();
        ring.consume_raw();
        for e in queue.borrow_mut().drain(..) {
            if let Some(raw) = tally.add(&e) {
                namer.observe(&raw);
            }
        }
        namer.refresh_if_needed();
        let (lost, overflow) = tracer.losses().unwrap_or((0, 0));
        drop(ring);
        drop(tracer);
        stop_spawned(target);
        if lost + overflow > 0 {
            eprintln!(
                "prodtrace: warning: {lost} completed operations lost (ring buffer full), \
                 {overflow} not tracked (too many in flight)"
            );
        }
        eprintln!("prodtrace: {end} after {:.1} s", traced.as_secs_f64());
        let report = namer.name_all(&tally);
        if args.interval.is_some() {
            print_report(args, &report, true)
        } else {
            finish(args, &report)
        }
    }
}

/// A process prodtrace started is stopped with it: SIGTERM, then SIGKILL
/// after 2 s (as `catch` does).
fn stop_spawned(target: &mut Target) {
    if target.spawned.is_none() || !target.alive() {
        return;
    }
    if let Some(Ok(status)) = target.spawned.as_mut().map(|s| s.terminate(Duration::from_secs(2))) {
        eprintln!(
            "prodtrace: command {} {} (a command prodtrace started ends with its session)",
            target.pid,
            procctl::describe_exit(status)
        );
    }
}

/// The output when tracing never started: an empty JSON array, or nothing.
fn finish_empty(args: &Args) -> Result<()> {
    if args.json {
        print_report(args, &Report::default(), false)?;
    }
    Ok(())
}

/// The final output.
fn finish(args: &Args, report: &Report) -> Result<()> {
    if report.is_empty() && !args.json {
        eprintln!("prodtrace: no operation completed on libuv's thread pool");
        return Ok(());
    }
    print_report(args, report, false)
}

fn print_report(args: &Args, report: &Report, stamped: bool) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", report.to_json(args.breakdown))?;
    } else {
        if stamped {
            let now = time::OffsetDateTime::now_utc();
            let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
            writeln!(out, "\n{}  ({} operations)", now.format(&fmt).unwrap_or_default(), report.operations())?;
        }
        write!(out, "{}", report.render_text(args.breakdown))?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").is_err());
    }

    /// Durations too large for the clock are refused when parsed, in one
    /// line (they panicked: in parsing, or adding to an Instant after attaching).
    #[test]
    fn huge_durations_are_refused() {
        for s in ["3000000000000000h", "99999999999999999999", "18446744073709551615s", "8761h"] {
            let e = parse_duration(s).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
            assert!(e.contains("too long") || e.contains("not a duration"), "{s}: {e}");
        }
        assert_eq!(parse_duration("8760h"), Ok(MAX_DURATION));
        assert!(parse_duration("1e2").is_err(), "no exponents");
    }
}
