//! `prodtrace catch`: act at the exact moment a system call returns a
//! matching result — print it with the thread's user stack, abort the
//! thread, take a core of the process, or leave it stopped for a debugger.
//! The Linux take on DTrace's
//! `syscall::close:return /errno == EBADF/ { stop(); system("gcore %d", pid) }`.
//!
//! Submodules: [`names`] (syscall and errno names), [`filter`] (what
//! matches), [`probe`] (the BPF program), [`event`] (one match),
//! [`unwind`] (its user stack), [`symbols`] (names for it), [`target`] (process state and signals),
//! [`actions`] (what is done at a match), [`lock`] (one stopping session
//! per process). This file holds the command line and the session: its
//! start, its loop, and how it ends — including the end of a command it
//! started, which does not outlive an interrupted session unless `--stop`
//! left it stopped on purpose.

mod actions;
mod event;
mod filter;
mod lock;
mod names;
mod probe;
mod symbols;
mod target;
mod unwind;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use procctl::Spawned;

use crate::console::errln;
use crate::features::{self, Feature};
use crate::privileges;
use actions::{Actions, Handler};
use filter::Filter;
use probe::{Probe, Send};

/// How long a started command may take to end after SIGTERM before it is
/// killed (when the session is interrupted or fails).
const COMMAND_GRACE: Duration = Duration::from_secs(2);

const EXAMPLES: &str = "\
Examples:
  prodtrace catch --syscall close --errno EBADF -p 4242
  prodtrace catch --syscall close --errno EBADF --comm node --core /var/tmp -w
  prodtrace catch --syscall openat --failed --stop -w -- ./server --port 8080
  prodtrace catch --syscall write --arg 0 7 --ret '<' 0 --abort -w -p 4242";

/// Command line of `prodtrace catch`.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// System call to catch, by name (e.g. close) or number; repeat or separate with commas for several
    #[arg(long = "syscall", short = 's', value_name = "NAME", value_delimiter = ',')]
    syscalls: Vec<String>,
    /// Only calls failing with this errno: a name (EBADF) or a number (9)
    #[arg(long, value_name = "NAME|N", conflicts_with = "ret")]
    errno: Option<String>,
    /// Only calls that fail (return -4095..-1, i.e. -1 and errno in C)
    #[arg(long)]
    failed: bool,
    /// Only calls whose return value compares so; OP is one of == != < <= > >= (e.g. --ret '<' 0)
    #[arg(long, num_args = 1..=2, value_names = ["OP", "VALUE"], allow_hyphen_values = true)]
    ret: Option<Vec<String>>,
    /// Only calls whose argument N (0-5, in register order) equals VALUE; repeatable
    #[arg(long, num_args = 2, value_names = ["N", "VALUE"], allow_hyphen_values = true, action = clap::ArgAction::Append)]
    arg: Vec<String>,
    /// Only in processes or threads with this name (as in /proc/PID/comm; 15 characters at most)
    #[arg(long, value_name = "NAME")]
    comm: Option<String>,
    /// Only in this process (all of its threads)
    #[arg(short = 'p', long = "pid", value_name = "PID", conflicts_with = "command")]
    pid: Option<u32>,
    /// Print time, process, thread, the call with arguments and result, and the symbolized user stack (the
    /// default; with --abort, --core or --stop alone, one summary line is printed instead)
    #[arg(long)]
    print: bool,
    /// Send SIGABRT to the thread, so it dies with a core dump from the kernel (needs -w)
    #[arg(long, conflicts_with = "stop")]
    abort: bool,
    /// Stop the whole process at the call, write a core file into DIR, and resume it (needs -w)
    #[arg(long, value_name = "DIR")]
    core: Option<PathBuf>,
    /// Leave the whole process stopped at the call for a debugger, and say how to resume it (needs -w)
    #[arg(long)]
    stop: bool,
    /// With --print: hold the whole process stopped at the call only while its stack is read (a pause of
    /// milliseconds), so every frame is read as it was at the call (needs -w)
    #[arg(long, conflicts_with_all = ["stop", "core", "abort"])]
    hold: bool,
    /// Allow actions that signal or stop the target (like dtrace -w)
    #[arg(short = 'w', long)]
    destructive: bool,
    /// Exit after acting on N matches (0: go on until Ctrl-C or the target exits); with --core/--stop,
    /// matches that come while a process is held for an earlier one are counted as skipped
    #[arg(long, default_value_t = 1, value_name = "N")]
    count: u32,
    /// Start this command and catch in it (it is held until the probe is attached; it is ended
    /// with the session when prodtrace is interrupted, unless --stop left it stopped)
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// What catch needs of the kernel (`--abort` also needs
/// bpf_send_signal_thread); `prodtrace doctor` checks the same.
pub const NEEDS: [Feature; 3] = [Feature::Btf, Feature::RingBuf, Feature::BpfAtomics];

/// Validates the event selection into a [`Filter`] (without the target).
fn build_filter(args: &Args) -> Result<Filter> {
    let syscalls =
        args.syscalls.iter().filter(|s| !s.is_empty()).map(|s| names::syscall_number(s)).collect::<Result<_>>()?;
    let ret = match (&args.errno, &args.ret) {
        (Some(e), _) => Some(filter::errno_cond(e)?),
        (None, Some(tokens)) => Some(filter::parse_ret(tokens)?),
        (None, None) => None,
    };
    let mut arg_conds = Vec::new();
    for pair in args.arg.chunks(2) {
        if let [n, v] = pair {
            arg_conds.push(filter::parse_arg(n, v)?);
        }
    }
    let comm = args.comm.as_ref().map(|c| c.chars().take(15).collect::<String>());
    if comm.as_deref() == Some("") {
        bail!("--comm needs a process name");
    }
    let f = Filter { syscalls, ret, failed: args.failed, args: arg_conds, pid: args.pid, comm };
    if f.syscalls.is_empty() && f.ret.is_none() && !f.failed && f.args.is_empty() {
        bail!("say what to catch: --syscall NAME, --errno NAME, --failed or --ret OP VALUE");
    }
    Ok(f)
}

/// Validates the actions; signalling ones need -w.
fn build_actions(args: &Args) -> Result<Actions> {
    let mut needs_w = Vec::new();
    if args.abort {
        needs_w.push("--abort sends SIGABRT to");
    }
    if args.core.is_some() {
        needs_w.push("--core stops");
    }
    if args.stop {
        needs_w.push("--stop stops");
    }
    if args.hold {
        needs_w.push("--hold stops");
    }
    if let Some(first) = needs_w.first() {
        if !args.destructive {
            bail!("{first} the target process: add -w/--destructive to allow it");
        }
    }
    if let Some(dir) = &args.core {
        check_writable_dir(dir)?;
    }
    let signalling = args.abort || args.core.is_some() || args.stop;
    Ok(Actions {
        print: args.print || args.hold || !signalling,
        abort: args.abort,
        core_dir: args.core.clone(),
        leave_stopped: args.stop,
        hold: args.hold,
    })
}

/// Fails unless `dir` is an existing directory we can create files in.
fn check_writable_dir(dir: &std::path::Path) -> Result<()> {
    let meta = std::fs::metadata(dir).with_context(|| format!("--core {}: cannot use it", dir.display()))?;
    if !meta.is_dir() {
        bail!("--core {}: not a directory", dir.display());
    }
    let probe = dir.join(format!(".prodtrace-write-test.{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .with_context(|| format!("--core {}: cannot write there", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Why the catch loop ended.
enum End {
    Count,
    Interrupted,
    TargetExited,
    CommandExited(std::process::ExitStatus),
}

/// Whether the command line ends with a `--` that has nothing after it
/// (clap gives an empty command either way).
fn dangling_separator() -> bool {
    std::env::args_os().last().is_some_and(|a| a == "--")
}

/// Refuses a `-p` target that catch cannot or must not act on.
fn check_target(pid: u32, acts: &Actions) -> Result<()> {
    procctl::check_process(pid, procctl::Use::Catch)?;
    if acts.signals() {
        if pid == 1 {
            bail!(
                "process 1 is the init process: the kernel does not let a BPF program signal it (and stopping it \
                 would stall the whole machine); drop --abort/--core/--stop/--hold to print its matches, or take a core \
                 with: prodtrace gcore 1"
            );
        }
        target::check_can_signal(pid)?;
    } else if matches!(target::status(pid)?.state, 'T' | 't') {
        errln!("prodtrace: note: process {pid} is stopped; it makes no system calls until resumed");
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    if args.command.is_empty() && dangling_separator() {
        bail!("nothing after --: give the command to start (-- CMD ARGS...), or leave out the --");
    }
    let mut filter = build_filter(&args)?;
    let acts = build_actions(&args)?;
    privileges::require_bpf("prodtrace catch")?;
    for f in NEEDS {
        features::require("prodtrace catch", f)?;
    }
    if acts.abort {
        features::require("prodtrace catch", Feature::SendSignalThread)?;
    }
    let stops = acts.stops();
    let send = if stops {
        Send::StopProcess
    } else if acts.abort {
        Send::AbortThread
    } else {
        Send::Nothing
    };
    // Before anything is started: a signal now must not kill us with a
    // command held at its first instruction.
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    }

    let mut spawned = None;
    let _lock = if let Some(pid) = args.pid {
        check_target(pid, &acts)?;
        if stops {
            lock::take(Some(pid))?
        } else {
            None
        }
    } else if !args.command.is_empty() {
        // A command that --stop leaves stopped gets a session of its own,
        // or it would die of SIGHUP when we exit (see procctl::Session).
        let session = if acts.leave_stopped { procctl::Session::New } else { procctl::Session::Shared };
        let s = procctl::spawn_stopped_in(&args.command, session)?;
        filter.pid = Some(s.pid);
        let lock = if stops { lock::take(Some(s.pid))? } else { None };
        spawned = Some(s);
        lock
    } else if stops {
        lock::take(None)?
    } else {
        None
    };
    let mut handler = Handler::new(acts);
    if let Some(note) = filter.pid.and_then(|pid| handler.abort_note(pid)) {
        errln!("{note}");
    }
    // What printing stacks needs from the targets' binaries is read now,
    // not while a match holds one of them.
    let targets: Vec<u32> = match (filter.pid, &filter.comm) {
        (Some(pid), _) => vec![pid],
        (None, Some(comm)) => processes_named(comm),
        (None, None) => Vec::new(),
    };
    for pid in targets {
        handler.prepare(pid);
    }

    let mut storage = probe::ObjectStorage::uninit();
    let probe = Probe::attach(&mut storage, &filter, send, args.count)?;
    let mut events = probe.events()?;
    let until = match args.count {
        0 => "until Ctrl-C".to_string(),
        1 => "the first match".to_string(),
        n => format!("{n} matches"),
    };
    errln!("prodtrace: catching {} ({until}); Ctrl-C to stop", filter.describe());
    if let Some(s) = spawned.as_mut() {
        s.resume()?;
    }

    let mut failure = None;
    let handle = |handler: &mut Handler, raw: &[u8], failure: &mut Option<anyhow::Error>| {
        if let Err(e) = handler.handle(raw) {
            failure.get_or_insert(e);
        }
        // The process stopped at this match is resumed or left stopped:
        // the program may stop one again.
        if stops {
            if let Err(e) = probe.release_hold() {
                failure.get_or_insert(e);
            }
        }
    };
    let end = loop {
        let batch = events.poll(Duration::from_millis(100)).unwrap_or_else(|e| {
            failure.get_or_insert(e);
            Vec::new()
        });
        for raw in batch {
            handle(&mut handler, &raw, &mut failure);
        }
        if failure.is_some() || (args.count > 0 && handler.handled() >= args.count as u64) {
            break End::Count;
        }
        if interrupted.load(Ordering::SeqCst) {
            break End::Interrupted;
        }
        if let Some(s) = spawned.as_mut() {
            if let Ok(Some(status)) = s.try_wait() {
                break End::CommandExited(status);
            }
        } else if let Some(pid) = args.pid {
            if !procctl::process_exists(pid) {
                break End::TargetExited;
            }
        }
    };
    // No new matches from here on; act on every event already sent, so no
    // process is left stopped by a signal we did not follow up.
    probe.detach();
    for raw in events.drain().unwrap_or_default() {
        handle(&mut handler, &raw, &mut failure);
    }
    let (dropped, skipped) = (probe.dropped(), probe.skipped());
    drop(events);
    drop(probe);
    if dropped > 0 {
        errln!("prodtrace: {dropped} matches were lost: the ring buffer was full");
    }
    if let Some(s) = spawned.as_mut() {
        end_command(s, &end, failure.is_some(), handler.left_stopped(), &interrupted)?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let n = handler.handled();
    match end {
        End::TargetExited if n + skipped == 0 => {
            bail!("process {} exited before any matching system call", args.pid.unwrap_or(0))
        }
        End::TargetExited => errln!("prodtrace: process {} exited", args.pid.unwrap_or(0)),
        End::CommandExited(status) if n + skipped == 0 => {
            bail!("command {} before any matching system call", procctl::describe_exit(status))
        }
        _ => {}
    }
    if skipped == 0 {
        errln!("prodtrace: {n} match{}", if n == 1 { "" } else { "es" });
    } else {
        errln!(
            "prodtrace: {} matches: {n} acted on, {skipped} skipped (they came while a process was held for an \
             earlier match)",
            n + skipped
        );
    }
    Ok(())
}

/// The processes whose name is `comm` now (as `--comm` matches a process).
fn processes_named(comm: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != std::process::id() && procctl::comm(pid).is_ok_and(|c| c == comm))
        .collect()
}

/// Ends the session's part in the command it started, and says how the
/// command ended. Left alone when --stop left it stopped (it waits for
/// `kill -CONT`); ended (SIGTERM, then SIGKILL) when the session was
/// interrupted or failed; else waited for — until it exits, or until an
/// interruption ends it.
fn end_command(s: &mut Spawned, end: &End, failed: bool, left_stopped: bool, interrupted: &AtomicBool) -> Result<()> {
    // Still stopped ('t': a debugger is looking at it already).
    let stopped = target::status(s.pid).is_ok_and(|st| matches!(st.state, 'T' | 't'));
    if left_stopped && stopped {
        return Ok(());
    }
    let ended = |status| procctl::describe_exit(status);
    let pid = s.pid;
    let ended_with_session = |why: &str, status| {
        errln!(
            "prodtrace: {why}command {pid} {} (a command prodtrace started ends with its session)",
            procctl::describe_exit(status)
        )
    };
    match end {
        End::CommandExited(status) => errln!("prodtrace: command {}", ended(*status)),
        End::Interrupted => ended_with_session("interrupted: ", s.terminate(COMMAND_GRACE)?),
        _ if failed => ended_with_session("", s.terminate(COMMAND_GRACE)?),
        _ => loop {
            if let Some(status) = s.try_wait()? {
                errln!("prodtrace: command {}", ended(status));
                break;
            }
            if interrupted.load(Ordering::SeqCst) {
                ended_with_session("interrupted: ", s.terminate(COMMAND_GRACE)?);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        },
    }
    Ok(())
}
