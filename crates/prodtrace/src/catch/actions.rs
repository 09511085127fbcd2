//! What `prodtrace catch` does with each match, in user space: print the
//! call and the symbolized stack, write a core while the BPF program holds
//! the process stopped, abort the thread, and — unless asked to leave it
//! stopped — resume the process, whatever went wrong in between.
//!
//! While a process is held, nothing is written to stdout or stderr (a pipe
//! nobody reads could block us there): the lines are kept and written
//! once it is resumed. Writing never fails the session (see `console`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::event::{Event, SKIPPED_TRACED};
use super::names;
use super::symbols::Symbols;
use super::target;
use super::unwind::{Method, Stack, StackUnwinder};
use crate::console::{errln, outln};

/// How long a process may take to reach group-stop after our SIGSTOP.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The actions chosen on the command line.
pub struct Actions {
    /// Print the full report (call, process, stack).
    pub print: bool,
    /// SIGABRT to the thread.
    pub abort: bool,
    /// Write a core file into this directory.
    pub core_dir: Option<PathBuf>,
    /// Leave the process stopped.
    pub leave_stopped: bool,
    /// Hold the process only while its stack is read (--hold).
    pub hold: bool,
}

impl Actions {
    /// Whether anything signals or stops the target.
    pub fn signals(&self) -> bool {
        self.abort || self.stops()
    }

    /// Whether the BPF program stops the process at a match.
    pub fn stops(&self) -> bool {
        self.core_dir.is_some() || self.leave_stopped || self.hold
    }
}

/// Lines to write once a held process is resumed, in order.
#[derive(Default)]
struct Held {
    lines: Vec<(bool, String)>,
}

impl Held {
    fn out(&mut self, line: String) {
        self.lines.push((true, line));
    }

    fn err(&mut self, line: String) {
        self.lines.push((false, line));
    }

    fn write(self) {
        for (to_stdout, line) in self.lines {
            if to_stdout {
                outln!("{line}");
            } else {
                errln!("{line}");
            }
        }
    }
}

/// Acts on events one at a time.
pub struct Handler {
    acts: Actions,
    unwinder: StackUnwinder,
    symbols: Symbols,
    handled: u64,
    left_stopped: bool,
    /// Processes whose core-dump settings were already shown (--abort).
    noted: HashSet<u32>,
}

impl Handler {
    pub fn new(acts: Actions) -> Self {
        Handler {
            acts,
            unwinder: StackUnwinder::default(),
            symbols: Symbols::new(),
            handled: 0,
            left_stopped: false,
            noted: HashSet::new(),
        }
    }

    /// For --abort: what the kernel will do with the core of `pid`, once
    /// per process.
    pub fn abort_note(&mut self, pid: u32) -> Option<String> {
        (self.acts.abort && self.noted.insert(pid)).then(|| format!("prodtrace: {}", target::abort_core_note(pid)))
    }

    /// Reads, before any match, what printing the stacks of `pid` needs
    /// from its binaries (unwind tables, V8 metadata): a match then holds
    /// it only for the reading of its memory.
    pub fn prepare(&mut self, pid: u32) {
        if self.acts.print {
            self.unwinder.prepare(pid);
        }
    }

    /// Matches handled so far.
    pub fn handled(&self) -> u64 {
        self.handled
    }

    /// Whether a process was left stopped on purpose (--stop).
    pub fn left_stopped(&self) -> bool {
        self.left_stopped
    }

    /// Handles one ring-buffer record.  A process the BPF program stopped is
    /// resumed before this returns, unless --stop asked to leave it so.
    pub fn handle(&mut self, raw: &[u8]) -> Result<()> {
        let ev = Event::parse(raw)?;
        self.handled += 1;
        if ev.signal_err == SKIPPED_TRACED {
            // Signals to a traced thread go to its debugger: touch nothing.
            let tracer = target::status(ev.pid).map(|s| s.tracer).unwrap_or(0);
            errln!(
                "prodtrace: thread {} is traced by a debugger (process {tracer}): not signalled, no core taken",
                ev.tid
            );
            self.report(&ev);
            return Ok(());
        }
        if !self.acts.stops() {
            if self.acts.abort && ev.signal_err != 0 {
                errln!(
                    "prodtrace: could not send SIGABRT to thread {}: {}",
                    ev.tid,
                    signal_error(ev.pid, ev.signal_err)
                );
            }
            self.report(&ev);
            if self.acts.abort && ev.signal_err == 0 {
                if let Some(note) = self.abort_note(ev.pid) {
                    errln!("{note}");
                }
                outln!("sent SIGABRT to thread {} of process {} at the return of {}()", ev.tid, ev.pid, ev.syscall());
            }
            return Ok(());
        }
        if ev.signal_err != 0 {
            errln!("prodtrace: could not stop process {}: {}", ev.pid, signal_error(ev.pid, ev.signal_err));
            self.report(&ev);
            return Ok(());
        }
        // The process is (being) stopped: keep the pause short — the core
        // first, then resume, then the stack (unless it stays stopped) —
        // and write nothing until it runs again.
        let since = Instant::now();
        let mut held = Held::default();
        let stopped = self.wait_stopped(&ev, &mut held);
        held.out(self.head(&ev));
        let result = self.act_while_stopped(&ev, &mut held);
        // The stack — JavaScript frames too — is read while the process
        // is still held at the call; it is named and printed after.
        let stack = self.acts.print.then(|| self.unwinder.unwind(&ev, stopped));
        if self.acts.leave_stopped && stopped {
            self.left_stopped = true;
            held.write();
            self.print_stack(&ev, stack);
            outln!(
                "process {pid} is stopped at the return of {}(); resume it with: kill -CONT {pid}  \
                 (inspect it first with: gdb -p {pid})",
                ev.syscall(),
                pid = ev.pid
            );
        } else {
            match target::resume(ev.pid) {
                Ok(()) => {
                    held.out(format!("resumed process {} after {:.1} ms", ev.pid, since.elapsed().as_secs_f64() * 1e3))
                }
                Err(e) if procctl::process_exists(ev.pid) => held.err(format!("prodtrace: {e:#}")),
                Err(_) => {}
            }
            held.write();
            self.print_stack(&ev, stack);
        }
        result
    }

    /// Waits for the group-stop our SIGSTOP started; false (with a message)
    /// when it did not happen in time or the process died.
    fn wait_stopped(&self, ev: &Event, held: &mut Held) -> bool {
        if target::wait_group_stop(ev.pid, STOP_TIMEOUT) {
            return true;
        }
        if procctl::process_exists(ev.pid) {
            held.err(format!("prodtrace: process {} did not stop within {STOP_TIMEOUT:?}", ev.pid));
        } else {
            held.err(format!("prodtrace: process {} ended before it could be held", ev.pid));
        }
        false
    }

    fn act_while_stopped(&mut self, ev: &Event, held: &mut Held) -> Result<()> {
        let mut result = Ok(());
        if let Some(dir) = &self.acts.core_dir {
            if procctl::process_exists(ev.pid) {
                let path = core_path(dir, ev);
                let t = Instant::now();
                // The caught thread goes first, so gdb's `bt` shows the caller of the syscall.
                let opts = corefile::Options { first_thread: Some(ev.tid), ..Default::default() };
                match corefile::write_core(ev.pid, &path, &opts) {
                    Ok(rep) => held.out(format!(
                        "core: {} ({:.1} MB, {} thread{}, written in {:.0} ms)",
                        path.display(),
                        rep.bytes as f64 / 1e6,
                        rep.threads,
                        if rep.threads == 1 { "" } else { "s" },
                        t.elapsed().as_secs_f64() * 1e3
                    )),
                    Err(e) => {
                        result = Err(e.context(format!("writing the core of process {} to {}", ev.pid, path.display())))
                    }
                }
            }
        }
        if self.acts.abort {
            // Queued while the thread is still stopped at the syscall's
            // return: it is the first thing the thread does when resumed.
            if let Some(note) = self.abort_note(ev.pid) {
                held.err(note);
            }
            match target::abort_thread(ev.pid, ev.tid) {
                Ok(()) => held.out(format!("sent SIGABRT to thread {} of process {}", ev.tid, ev.pid)),
                Err(e) => held.err(format!("prodtrace: {e:#}")),
            }
        }
        result
    }

    /// Prints the match: one line, or the full report with --print.
    fn report(&mut self, ev: &Event) {
        outln!("{}", self.head(ev));
        self.report_stack(ev);
    }

    /// The call: one line, or with --print the header of the full report.
    fn head(&self, ev: &Event) -> String {
        let who = format!("pid {} ({}) tid {} ({})", ev.pid, ev.pcomm, ev.tid, ev.comm);
        if self.acts.print {
            format!("=== catch {}: {}\n{who}\n{}", ev.hit, ev.time_text(), ev.call_line())
        } else {
            format!("catch {}: {} {who}: {}", ev.hit, ev.time_text(), ev.call_line())
        }
    }

    /// With --print, the thread's user stack at the call, read now: the
    /// process is not held (it runs on, or was aborted).
    fn report_stack(&mut self, ev: &Event) {
        if self.acts.print {
            let stack = self.unwinder.unwind(ev, false);
            self.print_stack(ev, Some(stack));
        }
    }

    /// Prints a stack read by [`StackUnwinder::unwind`].
    fn print_stack(&self, ev: &Event, stack: Option<Stack>) {
        let Some(stack) = stack else { return };
        let how = match stack.method {
            Method::Dwarf => "DWARF unwinding",
            Method::FramePointer => "frame pointers",
        };
        match &stack.v8 {
            Some(v) => outln!("user stack ({how}; JavaScript frames read from V8 {v}'s heap):"),
            None => outln!("user stack ({how}):"),
        }
        let (frames, offline) = self.symbols.name(ev.pid, &stack);
        if offline {
            outln!("  (process {} has exited: symbolized from its files)", ev.pid);
        }
        for (i, f) in frames.iter().enumerate() {
            outln!("  #{i:<2} {:#018x}  {}", f.addr, f.text);
        }
    }
}

/// Why the BPF program could not send its signal (`err`: a negative errno).
fn signal_error(pid: u32, err: i32) -> String {
    let n = -err;
    if n == libc::EPERM && pid == 1 {
        return "the kernel does not let a BPF program signal the init process".into();
    }
    match names::errno_name(n) {
        Some(name) => format!("{name} ({})", names::errno_description(n)),
        None => format!("errno {n} ({})", names::errno_description(n)),
    }
}

/// `DIR/core.COMM.PID.HIT`, not overwriting an existing file.
fn core_path(dir: &Path, ev: &Event) -> PathBuf {
    let comm: String =
        ev.pcomm.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let base = dir.join(format!("core.{comm}.{}.{}", ev.pid, ev.hit));
    let mut path = base.clone();
    let mut n = 1;
    while path.exists() {
        path = PathBuf::from(format!("{}.{n}", base.display()));
        n += 1;
    }
    path
}
