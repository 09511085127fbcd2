//! Facts about a target process that decide whether and how `prodtrace
//! catch` may act on it — state (already stopped?), tracer (a debugger
//! attached?), core-dump limit — and the signalling helpers: waiting for a
//! whole process to reach group-stop, resuming it, aborting one thread.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The fields of `/proc/PID/status` we use.
pub struct Status {
    /// State letter: R, S, D, T (stopped), t (traced), Z ...
    pub state: char,
    /// PID of the tracing process (a debugger), 0 if none.
    pub tracer: u32,
}

/// Reads `/proc/PID/status`.
pub fn status(pid: u32) -> Result<Status> {
    let text =
        std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("no process with PID {pid}"))?;
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or("");
    Ok(Status {
        state: field("State:").chars().next().unwrap_or('?'),
        tracer: field("TracerPid:").parse().unwrap_or(0),
    })
}

/// Refuses targets that a signalling action cannot handle: a process that
/// is already stopped (its stop would be indistinguishable from ours) or
/// one traced by a debugger (our SIGSTOP would be reported to the debugger
/// instead of stopping the process).
pub fn check_can_signal(pid: u32) -> Result<()> {
    let st = status(pid)?;
    if st.tracer != 0 {
        let who = procctl::comm(st.tracer).unwrap_or_else(|_| "?".into());
        bail!(
            "process {pid} is being traced by process {} ({who}): detach the debugger first, \
             signals to a traced process go to its debugger",
            st.tracer
        );
    }
    if matches!(st.state, 'T' | 't') {
        bail!("process {pid} is already stopped: resume it first (kill -CONT {pid}) so that a stop means a match");
    }
    if matches!(st.state, 'Z' | 'X') {
        bail!("process {pid} has exited");
    }
    Ok(())
}

/// Waits until every thread of `pid` is stopped (state T or t), up to
/// `timeout`.  Returns false on timeout or when the process is gone.
pub fn wait_group_stop(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if all_threads_stopped(pid) == Some(true) {
            return true;
        }
        if Instant::now() >= deadline || !procctl::process_exists(pid) {
            return false;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn all_threads_stopped(pid: u32) -> Option<bool> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
        if !matches!(procctl::stat_state(&stat), Some('T') | Some('t')) {
            return Some(false);
        }
    }
    Some(true)
}

/// Resumes a stopped process (SIGCONT).
pub fn resume(pid: u32) -> Result<()> {
    kill(Pid::from_raw(pid as i32), Signal::SIGCONT).with_context(|| format!("cannot resume process {pid}"))
}

/// Sends SIGABRT to one thread.
pub fn abort_thread(pid: u32, tid: u32) -> Result<()> {
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, pid as libc::c_long, tid as libc::c_long, libc::SIGABRT) };
    if r != 0 {
        bail!("cannot send SIGABRT to thread {tid} of process {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// The soft core-size limit of `pid` in bytes (`None`: unlimited or unknown).
pub fn core_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max core file size"))?;
    let soft = line.trim_start_matches("Max core file size").split_whitespace().next()?;
    soft.parse().ok()
}

/// `/proc/sys/kernel/core_pattern`, trimmed.
pub fn core_pattern() -> String {
    std::fs::read_to_string("/proc/sys/kernel/core_pattern").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// What the kernel will do with a core when `pid` aborts, for --abort users.
pub fn abort_core_note(pid: u32) -> String {
    let pattern = core_pattern();
    match core_limit(pid) {
        Some(0) => format!(
            "note: process {pid} has a core file size limit of 0 (ulimit -c), so the kernel will write no core \
             when it aborts; raise it with: prlimit --pid {pid} --core=unlimited (core_pattern is '{pattern}')"
        ),
        _ => format!("note: the kernel writes the core as core_pattern says: '{pattern}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn status_and_core_limit_of_a_sleeping_child() {
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("10");
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: 0, rlim_max: libc::RLIM_INFINITY };
                libc::setrlimit(libc::RLIMIT_CORE, &lim);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while status(pid).unwrap().state != 'S' && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let st = status(pid).unwrap();
        assert_eq!((st.state, st.tracer), ('S', 0));
        assert_eq!(core_limit(pid), Some(0));
        assert!(abort_core_note(pid).contains("core file size limit of 0"));
        assert!(check_can_signal(pid).is_ok());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(status(pid).is_err());
    }
}
