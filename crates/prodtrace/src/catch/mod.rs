//! `prodtrace catch`: act at the exact moment a system call returns a
//! matching result — print it with the thread's user stack, abort the
//! thread, take a core of the process, or leave it stopped for a debugger.
//! The Linux take on DTrace's
//! `syscall::close:return /errno == EBADF/ { stop(); system("gcore %d", pid) }`.
//!
//! Submodules: [`names`] (syscall and errno names), [`filter`] (what
//! matches), [`probe`] (the BPF program), [`event`] (one match),
//! [`unwind`] (its user stack), [`symbols`] (names for it), [`target`] (process state and signals),
//! [`actions`] (what is done at a match).

mod actions;
mod event;
mod filter;
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

use crate::privileges;
use actions::{Actions, Handler};
use filter::Filter;
use probe::{Probe, Send};

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
    /// Allow actions that signal or stop the target (like dtrace -w)
    #[arg(short = 'w', long)]
    destructive: bool,
    /// Exit after N matches (0: go on until Ctrl-C or the target exits)
    #[arg(long, default_value_t = 1, value_name = "N")]
    count: u32,
    /// Start this command and catch in it (it is held until the probe is attached)
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

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
        print: args.print || !signalling,
        abort: args.abort,
        core_dir: args.core.clone(),
        leave_stopped: args.stop,
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

pub fn run(args: Args) -> Result<()> {
    let mut filter = build_filter(&args)?;
    let acts = build_actions(&args)?;
    privileges::require_bpf("prodtrace catch")?;

    let mut spawned = None;
    if let Some(pid) = args.pid {
        if !procctl::process_exists(pid) {
            bail!("no process with PID {pid}");
        }
        if acts.signals() {
            target::check_can_signal(pid)?;
        } else if matches!(target::status(pid)?.state, 'T' | 't') {
            eprintln!("prodtrace: note: process {pid} is stopped; it makes no system calls until resumed");
        }
        if acts.abort {
            eprintln!("prodtrace: {}", target::abort_core_note(pid));
        }
    } else if !args.command.is_empty() {
        let s = procctl::spawn_stopped(&args.command)?;
        filter.pid = Some(s.pid);
        if acts.abort {
            eprintln!("prodtrace: {}", target::abort_core_note(s.pid));
        }
        spawned = Some(s);
    }

    let send = if acts.core_dir.is_some() || acts.leave_stopped {
        Send::StopProcess
    } else if acts.abort {
        Send::AbortThread
    } else {
        Send::Nothing
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    }

    let mut storage = probe::ObjectStorage::uninit();
    let probe = Probe::attach(&mut storage, &filter, send, args.count)?;
    let mut events = probe.events()?;
    let until = match args.count {
        0 => "until Ctrl-C".to_string(),
        1 => "the first match".to_string(),
        n => format!("{n} matches"),
    };
    eprintln!("prodtrace: catching {} ({until}); Ctrl-C to stop", filter.describe());
    if let Some(s) = spawned.as_mut() {
        s.resume()?;
    }

    let mut handler = Handler::new(acts);
    let mut failure = None;
    let end = loop {
        let batch = events.poll(Duration::from_millis(100)).unwrap_or_else(|e| {
            failure.get_or_insert(e);
            Vec::new()
        });
        for raw in batch {
            if let Err(e) = handler.handle(&raw) {
                failure.get_or_insert(e);
            }
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
        if let Err(e) = handler.handle(&raw) {
            failure.get_or_insert(e);
        }
    }
    let dropped = probe.dropped();
    if dropped > 0 {
        eprintln!("prodtrace: {dropped} matches were lost: the ring buffer was full");
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let n = handler.handled();
    match end {
        End::Count | End::Interrupted => {
            if let (Some(s), false, End::Count) = (spawned.as_mut(), handler.left_stopped(), &end) {
                let status = s.wait()?;
                eprintln!("prodtrace: command {}", describe_status(status));
            }
        }
        End::TargetExited if n == 0 => {
            bail!("process {} exited before any matching system call", args.pid.unwrap_or(0))
        }
        End::TargetExited => eprintln!("prodtrace: process {} exited", args.pid.unwrap_or(0)),
        End::CommandExited(status) if n == 0 => {
            bail!("command {} before any matching system call", describe_status(status))
        }
        End::CommandExited(status) => eprintln!("prodtrace: command {}", describe_status(status)),
    }
    eprintln!("prodtrace: {n} match{}", if n == 1 { "" } else { "es" });
    Ok(())
}

/// `exited with status 0`, `was killed by SIGABRT (core dumped)`.
fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name =
                nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or(sig.to_string());
            let core = if status.core_dumped() { " (core dumped)" } else { "" };
            format!("was killed by {name}{core}")
        }
        _ => "ended".to_string(),
    }
}
