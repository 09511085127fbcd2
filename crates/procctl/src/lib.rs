//! Process control for live targets.
//!
//! One job: get a target process into the state a tool needs and back out
//! of it, without leaving it stopped or traced by accident.
//!
//! * [`spawn_stopped`] starts a command and holds it at its first
//!   instruction (right after `execve`), so probes can be attached before it
//!   runs any code, like `dtrace -c`; [`Spawned::resume`] lets it go.
//! * [`process_exists`] and [`comm`] answer the usual questions about a PID.
//!
//! Freezing every thread of a live process for a core dump lives in
//! `freeze` (added by the core writer); this process's capabilities in
//! `caps`.

pub mod caps;
pub mod freeze;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};

use anyhow::{bail, Context, Result};
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// A child started by [`spawn_stopped`].
pub struct Spawned {
    /// PID of the new process (also its main thread's TID).
    pub pid: u32,
    child: Child,
    held: bool,
}

/// Starts `argv` (program looked up in `PATH`) and stops it right after
/// `execve`, before its first user-space instruction: the new program image
/// (and its ELF interpreter) is mapped, shared libraries are not loaded yet.
/// Standard input, output and error are inherited.
pub fn spawn_stopped(argv: &[String]) -> Result<Spawned> {
    let (prog, args) = argv.split_first().context("no command given after --")?;
    let mut cmd = Command::new(prog);
    cmd.args(args);
    // SAFETY: PTRACE_TRACEME is async-signal-safe; it makes the kernel stop
    // the child with SIGTRAP once execve succeeds.
    unsafe {
        cmd.pre_exec(|| ptrace::traceme().map_err(std::io::Error::from));
    }
    let child = cmd.spawn().with_context(|| format!("cannot start {prog}"))?;
    let pid = child.id();
    match waitpid(Pid::from_raw(pid as i32), None) {
        Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => {}
        Ok(other) => bail!("{prog} did not stop at exec as expected ({other:?})"),
        Err(e) => bail!("waiting for {prog} to start: {e}"),
    }
    Ok(Spawned { pid, child, held: true })
}

impl Spawned {
    /// Lets the held child run (detaches from it).  Idempotent.
    pub fn resume(&mut self) -> Result<()> {
        if self.held {
            self.held = false;
            ptrace::detach(Pid::from_raw(self.pid as i32), None)
                .with_context(|| format!("cannot resume process {}", self.pid))?;
        }
        Ok(())
    }

    /// Exit status if the child has exited, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits for the child to exit.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.resume()?;
        Ok(self.child.wait()?)
    }

    /// Kills the child (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.resume();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    /// Never leave the child held at exec: if the tool bails out before
    /// resuming it, it is killed rather than left stopped forever.
    fn drop(&mut self) {
        if self.held {
            self.kill();
        }
    }
}

/// Whether a process with this PID exists (zombies count as gone).
pub fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat_state(&stat), Some('Z') | Some('X')),
        Err(_) => false,
    }
}

/// The state letter of a `/proc/PID/stat` line (R, S, D, T, t, Z, ...).
pub fn stat_state(stat: &str) -> Option<char> {
    stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next())
}

/// The command name (`comm`) of a process.
pub fn comm(pid: u32) -> Result<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .with_context(|| format!("no process with PID {pid}"))?;
    Ok(s.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_child_is_held_at_exec_then_runs() {
        let mut s = spawn_stopped(&["true".to_string()]).unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", s.pid)).unwrap();
        assert_eq!(stat_state(&stat), Some('t'), "held in a ptrace stop: {stat}");
        assert!(std::fs::read_link(format!("/proc/{}/exe", s.pid)).unwrap().ends_with("true"));
        assert!(s.wait().unwrap().success());
    }

    #[test]
    fn missing_program_is_an_error() {
        let err = spawn_stopped(&["/nonexistent/prog".to_string()]).err().unwrap();
        assert!(format!("{err:#}").contains("cannot start /nonexistent/prog"));
    }

    #[test]
    fn dropping_a_held_child_kills_it() {
        let s = spawn_stopped(&["sleep".to_string(), "100".to_string()]).unwrap();
        let pid = s.pid;
        drop(s);
        assert!(!process_exists(pid));
    }
}
