//! Freezing every thread of a live process, and thawing it exactly as it was.
//!
//! [`freeze`] attaches to each thread with `PTRACE_SEIZE` and stops it with
//! `PTRACE_INTERRUPT` (no signal is sent, so the target cannot notice),
//! rescanning `/proc/PID/task` until no new thread appears (a stopped thread
//! cannot create one, so the set is complete once a rescan finds nothing
//! new). Each thread's registers are read while it is stopped: the general
//! purpose registers, the FP registers and, where the CPU has it, the XSAVE
//! area. [`Frozen::thaw`] (or dropping the [`Frozen`]) detaches from every
//! thread:
//!
//! * a thread that was running resumes; a system call it was blocked in is
//!   restarted by the kernel as after any ptrace attach;
//! * a process that was in a group-stop (SIGSTOP, SIGTSTP, ...) when it was
//!   frozen is left in that group-stop: the kernel re-enters it on detach;
//! * a signal that arrived while freezing (a signal-delivery-stop) is handed
//!   back on detach, so nothing is lost — a SIGSTOP sent by a BPF program at
//!   a syscall exit still stops the process after the thaw.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// `NT_PRSTATUS`, `NT_PRFPREG` and `NT_X86_XSTATE` register sets.
const NT_PRSTATUS: libc::c_int = 1;
const NT_PRFPREG: libc::c_int = 2;
const NT_X86_XSTATE: libc::c_int = 0x202;
/// `PTRACE_EVENT_STOP`, the event of group-stops and PTRACE_INTERRUPT stops
/// of a seized thread.
const PTRACE_EVENT_STOP: libc::c_int = 128;
/// How long a thread may take to reach its stop before freezing gives up.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a frozen thread was stopped when we looked at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// It was running (or blocked in a system call) and was interrupted.
    Interrupted,
    /// It was in (or entering) a group-stop caused by this stop signal;
    /// it stays stopped after the thaw.
    GroupStop(i32),
    /// This signal was about to be delivered to it; it is delivered on thaw.
    Signal(i32),
}

/// One stopped thread and its registers.
#[derive(Clone, Debug)]
pub struct Thread {
    /// Thread ID.
    pub tid: u32,
    /// How it was stopped.
    pub stop: Stop,
    /// General purpose registers, the `NT_PRSTATUS` register set
    /// (`struct user_regs_struct`, 27 × u64 on x86_64).
    pub regs: Vec<u8>,
    /// FP/SSE registers, the `NT_PRFPREG` register set (`user_fpregs_struct`).
    pub fpregs: Vec<u8>,
    /// The XSAVE area (`NT_X86_XSTATE`: AVX and later registers), if any.
    pub xstate: Option<Vec<u8>>,
    /// `siginfo_t` (128 bytes) of the stop signal, for group-stops and
    /// signal-delivery-stops.
    pub siginfo: Option<Vec<u8>>,
}

/// A process whose threads are all stopped under ptrace.
///
/// Dropping it thaws the process (errors ignored); call [`Frozen::thaw`] to
/// learn about them.
pub struct Frozen {
    pid: u32,
    threads: Vec<Thread>,
    /// Seized threads that have not reported their stop yet.
    pending: Vec<u32>,
    since: Instant,
    thawed: bool,
}

/// Stops every thread of process `pid` and reads its registers.
///
/// Fails (leaving the process as it was) when the process does not exist,
/// is already traced (by a debugger or another tool), cannot be traced
/// (missing privileges) or a thread does not stop within 5 seconds.
pub fn freeze(pid: u32) -> Result<Frozen> {
    if pid == std::process::id() {
        bail!("process {pid} is this tool itself")
    }
    let mut frozen = Frozen { pid, threads: Vec::new(), pending: Vec::new(), since: Instant::now(), thawed: false };
    let mut seen = BTreeSet::new();
    loop {
        let tids = task_ids(pid)?;
        let new: Vec<u32> = tids.into_iter().filter(|t| !seen.contains(t)).collect();
        if new.is_empty() {
            break;
        }
        for tid in new {
            seen.insert(tid);
            if task_is_dead(pid, tid) {
                continue;
            }
            // SAFETY: plain ptrace requests on a thread ID, no pointers.
            let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid as libc::pid_t, 0, 0) };
            if r != 0 {
                let err = std::io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::ESRCH) => continue, // exited meanwhile
                    // The kernel also says EPERM for a thread that is exiting.
                    Some(libc::EPERM) if task_is_dead(pid, tid) => continue,
                    Some(libc::EPERM) => {
                        if let Some(tracer) = tracer_of(pid, tid) {
                            bail!("process {pid} is already traced by {tracer}: detach the debugger first (a process can have only one tracer)")
                        }
                        bail!("not allowed to trace process {pid} (needs root or CAP_SYS_PTRACE; check /proc/sys/kernel/yama/ptrace_scope)")
                    }
                    _ => return Err(err).with_context(|| format!("cannot attach to thread {tid} of process {pid}")),
                }
            }
            frozen.pending.push(tid);
            // SAFETY: as above.
            unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid as libc::pid_t, 0, 0) };
        }
        frozen.wait_pending()?;
    }
    if frozen.threads.is_empty() {
        bail!("process {pid} exited while it was being frozen")
    }
    // The main thread first, then by thread ID.
    frozen.threads.sort_by_key(|t| (t.tid != pid, t.tid));
    Ok(frozen)
}

impl Frozen {
    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The stopped threads, main thread first.
    pub fn threads(&self) -> &[Thread] {
        &self.threads
    }

    /// Whether the process was in a group-stop (stopped by a signal) when
    /// it was frozen, or about to enter one; it stays stopped after the thaw.
    pub fn was_stopped(&self) -> bool {
        self.threads.iter().any(|t| match t.stop {
            Stop::GroupStop(_) => true,
            Stop::Signal(s) => is_stop_signal(s),
            Stop::Interrupted => false,
        })
    }

    /// Detaches from every thread, handing back pending signals; returns how
    /// long the process was frozen. Fails if the process died meanwhile.
    pub fn thaw(mut self) -> Result<Duration> {
        let gone = self.detach_all();
        let paused = self.since.elapsed();
        if gone == self.threads.len() && !crate::process_exists(self.pid) {
            bail!("process {} exited while it was frozen", self.pid)
        }
        Ok(paused)
    }

    /// Detaches from all threads; returns how many were already gone.
    fn detach_all(&mut self) -> usize {
        if self.thawed {
            return 0;
        }
        self.thawed = true;
        let mut gone = 0;
        let pending = std::mem::take(&mut self.pending);
        for (tid, sig) in self
            .threads
            .iter()
            .map(|t| (t.tid, if let Stop::Signal(s) = t.stop { s } else { 0 }))
            .chain(pending.into_iter().map(|t| (t, 0)))
        {
            // SAFETY: plain ptrace request; the signal travels in `data`.
            let r = unsafe { libc::ptrace(libc::PTRACE_DETACH, tid as libc::pid_t, 0, sig as libc::c_long) };
            if r != 0 {
                // Not in a ptrace-stop: it is exiting or dead. Reap its exit
                // report so it is not held as a zombie on our behalf; a thread
                // still on its way to a stop is detached once it gets there.
                let (w, status) = poll_thread(tid);
                if w == tid as libc::pid_t && libc::WIFSTOPPED(status) {
                    unsafe { libc::ptrace(libc::PTRACE_DETACH, tid as libc::pid_t, 0, 0) };
                } else {
                    gone += 1;
                }
            }
        }
        gone
    }

    /// Waits until every pending thread has stopped (or exited), reading the
    /// registers of each stopped one.
    fn wait_pending(&mut self) -> Result<()> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut spins = 0u32;
        while !self.pending.is_empty() {
            let mut progressed = false;
            let mut i = 0;
            while i < self.pending.len() {
                let tid = self.pending[i];
                let (w, status) = poll_thread(tid);
                if w == 0 {
                    i += 1;
                    continue;
                }
                progressed = true;
                self.pending.swap_remove(i);
                if w < 0 || !libc::WIFSTOPPED(status) {
                    continue; // the thread exited
                }
                let sig = libc::WSTOPSIG(status);
                let stop = if status >> 16 == PTRACE_EVENT_STOP {
                    if is_stop_signal(sig) {
                        Stop::GroupStop(sig)
                    } else {
                        Stop::Interrupted
                    }
                } else {
                    Stop::Signal(sig)
                };
                match read_thread(tid, stop) {
                    Ok(t) => self.threads.push(t),
                    Err(e) => {
                        // Keep detaching it on thaw even though it is unusable.
                        self.threads.push(Thread {
                            tid,
                            stop,
                            regs: Vec::new(),
                            fpregs: Vec::new(),
                            xstate: None,
                            siginfo: None,
                        });
                        if crate::process_exists(self.pid) {
                            return Err(e).with_context(|| format!("cannot read the registers of thread {tid}"));
                        }
                        bail!("process {} exited while it was being frozen", self.pid)
                    }
                }
            }
            if !progressed && !self.pending.is_empty() {
                // A thread killed meanwhile may never report (a dead main
                // thread waits for the others): stop waiting for the dead.
                if spins >= 200 {
                    let pid = self.pid;
                    self.pending.retain(|&tid| !task_is_dead(pid, tid));
                }
                if Instant::now() > deadline {
                    bail!(
                        "thread {} of process {} did not stop within {} s (stuck in uninterruptible I/O?)",
                        self.pending[0],
                        self.pid,
                        STOP_TIMEOUT.as_secs()
                    )
                }
                spins += 1;
                if spins < 200 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
        Ok(())
    }
}

impl Drop for Frozen {
    /// Never leave the target frozen: thaw it if the caller did not.
    fn drop(&mut self) {
        self.detach_all();
    }
}

/// `waitpid` on one thread without blocking (`WNOHANG | __WALL`): its
/// return value (0 while the thread has nothing to report) and the status.
fn poll_thread(tid: u32) -> (libc::pid_t, libc::c_int) {
    let mut status = 0;
    // SAFETY: waitpid on one thread ID with a valid status pointer.
    let w = unsafe { libc::waitpid(tid as libc::pid_t, &mut status, libc::WNOHANG | libc::__WALL) };
    (w, status)
}

/// Reads the registers (and stop siginfo) of a thread in a ptrace-stop.
fn read_thread(tid: u32, stop: Stop) -> Result<Thread> {
    let regs = get_regset(tid, NT_PRSTATUS, 512)?;
    let fpregs = get_regset(tid, NT_PRFPREG, 512)?;
    let xstate = get_regset(tid, NT_X86_XSTATE, 64 * 1024).ok();
    let siginfo = match stop {
        Stop::Interrupted => None,
        _ => {
            let mut info = vec![0u8; 128];
            // SAFETY: PTRACE_GETSIGINFO writes one 128-byte siginfo_t.
            let r = unsafe { libc::ptrace(libc::PTRACE_GETSIGINFO, tid as libc::pid_t, 0, info.as_mut_ptr()) };
            (r == 0).then_some(info)
        }
    };
    Ok(Thread { tid, stop, regs, fpregs, xstate, siginfo })
}

/// `PTRACE_GETREGSET`: the register set `set` of a stopped thread.
fn get_regset(tid: u32, set: libc::c_int, max: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; max];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: the kernel writes at most iov_len bytes into buf and updates
    // iov_len to the size of the register set.
    let r =
        unsafe { libc::ptrace(libc::PTRACE_GETREGSET, tid as libc::pid_t, set as usize, &mut iov as *mut libc::iovec) };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("PTRACE_GETREGSET {set:#x} on thread {tid}"));
    }
    buf.truncate(iov.iov_len);
    Ok(buf)
}

/// Thread IDs listed in `/proc/PID/task`.
fn task_ids(pid: u32) -> Result<Vec<u32>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).with_context(|| format!("no process with PID {pid}"))?;
    let mut tids: Vec<u32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    tids.sort_unstable();
    Ok(tids)
}

/// Whether a thread is a zombie (e.g. a main thread that called
/// pthread_exit while others run on): it can never reach a ptrace-stop.
fn task_is_dead(pid: u32, tid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) {
        Ok(stat) => matches!(crate::stat_state(&stat), Some('Z') | Some('X')),
        Err(_) => true,
    }
}

/// "PID (comm)" of the tracer of a thread, if it is traced.
pub fn tracer_of(pid: u32, tid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    let tracer: u32 = status.lines().find_map(|l| l.strip_prefix("TracerPid:"))?.trim().parse().ok()?;
    (tracer != 0).then(|| match crate::comm(tracer) {
        Ok(comm) => format!("PID {tracer} ({comm})"),
        Err(_) => format!("PID {tracer}"),
    })
}

/// Whether any thread of `pid` is traced; "PID (comm)" of the first tracer.
pub fn traced_by(pid: u32) -> Option<String> {
    task_ids(pid).ok()?.into_iter().find_map(|tid| tracer_of(pid, tid))
}

fn is_stop_signal(sig: i32) -> bool {
    matches!(sig, libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    fn state(pid: u32) -> char {
        crate::stat_state(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap()).unwrap()
    }

    /// A `sleep 100` to freeze.
    fn sleeper() -> Child {
        Command::new("sleep").arg("100").stdout(Stdio::null()).spawn().unwrap()
    }

    /// Waits (up to 2 s) until `pid` is in state `want`, and asserts it is.
    fn wait_state(pid: u32, want: char) {
        let t0 = Instant::now();
        while state(pid) != want && t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(state(pid), want);
    }

    /// Asserts that nothing traces `child` any more, then kills and reaps it.
    fn assert_untraced_and_kill(mut child: Child) {
        assert_eq!(traced_by(child.id()), None);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn freezes_and_thaws_a_running_process() {
        let child = sleeper();
        let pid = child.id();
        let frozen = freeze(pid).unwrap();
        assert_eq!(frozen.threads().len(), 1);
        let t = &frozen.threads()[0];
        assert_eq!((t.tid, t.stop), (pid, Stop::Interrupted));
        assert_eq!(t.regs.len(), 27 * 8);
        assert_eq!(t.fpregs.len(), 512);
        assert_eq!(state(pid), 't');
        assert!(!frozen.was_stopped());
        frozen.thaw().unwrap();
        // Running again: back to sleeping in nanosleep (briefly 'R' on its way).
        wait_state(pid, 'S');
        assert_untraced_and_kill(child);
    }

    #[test]
    fn a_stopped_process_stays_stopped() {
        let child = sleeper();
        let pid = child.id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGSTOP).unwrap();
        wait_state(pid, 'T');
        let frozen = freeze(pid).unwrap();
        assert_eq!(frozen.threads()[0].stop, Stop::GroupStop(libc::SIGSTOP));
        assert!(frozen.was_stopped());
        frozen.thaw().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(state(pid), 'T');
        assert_untraced_and_kill(child);
    }

    #[test]
    fn missing_process_is_an_error() {
        let err = freeze(999_999_999).err().unwrap();
        assert!(format!("{err:#}").contains("no process with PID 999999999"), "{err:#}");
    }
}
