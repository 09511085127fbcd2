//! Process control for live targets.
//!
//! One job: get a target process into the state a tool needs and back out
//! of it, without leaving it stopped or traced by accident.
//!
//! * [`spawn_stopped`] starts a command and holds it at its first
//!   instruction (right after `execve`), so probes can be attached before it
//!   runs any code, like `dtrace -c`; [`Spawned::resume`] lets it go.
//!   [`Spawned::terminate`] ends it when the tool is done with it, and
//!   [`describe_exit`] says how a child ended, in the same words everywhere.
//! * [`process_exists`] and [`comm`] answer the usual questions about a PID;
//!   [`check::check_process`] is the one check of a PID the user typed.
//!
//! Freezing every thread of a live process for a core dump lives in
//! `freeze` (added by the core writer); this process's capabilities in
//! `caps`.

pub mod caps;
pub mod check;
pub mod freeze;

pub use check::{check_process, Use};

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

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

/// Which session the started command belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    /// The tool's own session and process group: Ctrl-C at the terminal
    /// reaches both.
    Shared,
    /// A new session (`setsid`): the command outlives the tool even when it
    /// is left stopped. A stopped process whose process group becomes
    /// orphaned when its parent exits (the tool's job, started by an
    /// interactive shell) is sent SIGHUP by the kernel and dies; a session
    /// leader's group is never orphaned that way. It keeps the inherited
    /// standard input, output and error, but has no controlling terminal.
    New,
}

/// Starts `argv` (program looked up in `PATH`) and stops it right after
/// `execve`, before its first user-space instruction: the new program image
/// (and its ELF interpreter) is mapped, shared libraries are not loaded yet.
/// Standard input, output and error are inherited.
///
/// The program is executed directly: a file the kernel cannot run (no ELF
/// header, no `#!` line) is refused, never handed to `/bin/sh` as
/// `execvp(3)` would do.
pub fn spawn_stopped(argv: &[String]) -> Result<Spawned> {
    spawn_stopped_in(argv, Session::Shared)
}

/// [`spawn_stopped`], in the given [`Session`].
pub fn spawn_stopped_in(argv: &[String], session: Session) -> Result<Spawned> {
    let (prog, args) = argv.split_first().context("no command given after --")?;
    let path = find_program(prog)?;
    let cstr = |s: &OsStr| CString::new(s.as_bytes()).with_context(|| format!("{prog}: a NUL byte in the command"));
    let c_path = cstr(path.as_os_str())?;
    let c_argv: Vec<CString> = argv.iter().map(|a| cstr(OsStr::new(a))).collect::<Result<_>>()?;
    let c_env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    // Pointer arrays built before the fork (no allocation in the child),
    // kept as integers so the closure is Send; they point into the
    // CStrings' heap buffers, which the closure owns.
    let pointers = |v: &[CString]| v.iter().map(|c| c.as_ptr() as usize).chain([0]).collect::<Vec<usize>>();
    let (argv_p, env_p) = (pointers(&c_argv), pointers(&c_env));
    let mut cmd = Command::new(&path);
    cmd.args(args);
    // SAFETY: only async-signal-safe calls (setsid, ptrace, execve) on data
    // prepared before the fork. The program is executed here, by execve
    // itself: std's exec (execvp) would run a file without an ELF header or
    // #! line through /bin/sh. If execve fails, its error goes back to the
    // parent as the spawn error.
    unsafe {
        cmd.pre_exec(move || {
            let _owned = (&c_argv, &c_env);
            if session == Session::New && libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The kernel stops the child with SIGTRAP once execve succeeds.
            ptrace::traceme().map_err(std::io::Error::from)?;
            libc::execve(
                c_path.as_ptr(),
                argv_p.as_ptr() as *const *const libc::c_char,
                env_p.as_ptr() as *const *const libc::c_char,
            );
            Err(std::io::Error::last_os_error())
        });
    }
    let child = cmd.spawn().map_err(|e| exec_error(prog, &path, e))?;
    let pid = child.id();
    match waitpid(Pid::from_raw(pid as i32), None) {
        Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => {}
        Ok(other) => bail!("{prog} did not stop at exec as expected ({other:?})"),
        Err(e) => bail!("waiting for {prog} to start: {e}"),
    }
    Ok(Spawned { pid, child, held: true })
}

/// The file `prog` names: itself when it has a slash, else the first
/// executable regular file of that name in `PATH` (as a shell finds it).
fn find_program(prog: &str) -> Result<PathBuf> {
    if prog.is_empty() {
        bail!("cannot start the command: its name is empty")
    }
    if prog.contains('/') {
        let path = PathBuf::from(prog);
        check_executable(prog, &path)?;
        return Ok(path);
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut found_unusable = None;
    for dir in std::env::split_paths(&search) {
        let candidate = if dir.as_os_str().is_empty() { Path::new(".").join(prog) } else { dir.join(prog) };
        match check_executable(prog, &candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if candidate.exists() => {
                found_unusable.get_or_insert(e);
            }
            Err(_) => {}
        }
    }
    match found_unusable {
        Some(e) => Err(e),
        None => bail!("cannot start {prog}: no such command in PATH"),
    }
}

/// Fails unless `path` is a regular file with execute permission.
fn check_executable(prog: &str, path: &Path) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("cannot start {prog}: no such file"),
        Err(e) => bail!("cannot start {prog}: {}", io_reason(&e)),
    };
    if meta.is_dir() {
        bail!("cannot start {prog}: it is a directory")
    }
    if !meta.is_file() {
        bail!("cannot start {prog}: it is not a regular file")
    }
    let c = CString::new(path.as_os_str().as_bytes()).context("a NUL byte in the command")?;
    // SAFETY: access(2) on a valid C string.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        bail!("cannot start {prog}: it is not executable (no execute permission; chmod +x, or name its interpreter)")
    }
    Ok(())
}

/// The spawn error of `prog`, in words.
fn exec_error(prog: &str, path: &Path, e: std::io::Error) -> anyhow::Error {
    match e.raw_os_error() {
        Some(libc::ENOEXEC) => anyhow::anyhow!(
            "cannot start {prog}: not a program the kernel can run (no ELF header or #! line); for a shell script without #!, run: -- sh {}",
            path.display()
        ),
        _ => anyhow::anyhow!("cannot start {prog}: {}", io_reason(&e)),
    }
}

/// `No such file or directory` for an I/O error: the system's words
/// without the raw number.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// How a child ended: `exited with status 0`, `was killed by SIGTERM`,
/// `was killed by SIGABRT (core dumped)` — the words every tool uses.
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name =
                Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("signal {sig}"));
            let core = if status.core_dumped() { " (core dumped)" } else { "" };
            format!("was killed by {name}{core}")
        }
        _ => "ended".to_string(),
    }
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

    /// Ends the child: SIGTERM, then SIGKILL if it is still there after
    /// `grace`; returns how it ended. A child that already ended is only
    /// reaped.
    pub fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        let pid = Pid::from_raw(self.pid as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        // A stopped child handles SIGTERM only once continued.
        let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
        self.resume()?;
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
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
    let s =
        std::fs::read_to_string(format!("/proc/{pid}/comm")).with_context(|| format!("no process with PID {pid}"))?;
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
        assert_eq!(format!("{err:#}"), "cannot start /nonexistent/prog: no such file");
        let err = spawn_stopped(&["no-such-command-4711".to_string()]).err().unwrap();
        assert_eq!(format!("{err:#}"), "cannot start no-such-command-4711: no such command in PATH");
    }

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_file_the_kernel_cannot_run_is_not_run_by_sh() {
        let dir = std::env::temp_dir().join(format!("procctl-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Executable, but no #! line: execvp(3) would hand it to /bin/sh.
        let script = dir.join("script");
        let marker = dir.join("ran");
        std::fs::write(&script, format!("touch {}\n", marker.display())).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let err = spawn_stopped(&argv(&[script.to_str().unwrap()])).err().unwrap();
        assert!(format!("{err:#}").contains("not a program the kernel can run (no ELF header or #! line)"), "{err:#}");
        assert!(!marker.exists(), "the file was run by a shell");
        // Not executable at all.
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let err = spawn_stopped(&argv(&[script.to_str().unwrap()])).err().unwrap();
        assert!(format!("{err:#}").contains("it is not executable"), "{err:#}");
        // With a #! line it runs (the kernel runs the interpreter).
        std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut s = spawn_stopped(&argv(&[script.to_str().unwrap()])).unwrap();
        assert!(s.wait().unwrap().success());
        assert!(marker.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn new_session_and_terminate() {
        let mut s = spawn_stopped_in(&argv(&["sleep", "100"]), Session::New).unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", s.pid)).unwrap();
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().collect();
        // pgrp and session are the child's own PID.
        assert_eq!((f[2], f[3]), (s.pid.to_string().as_str(), s.pid.to_string().as_str()));
        s.resume().unwrap();
        let st = s.terminate(Duration::from_secs(5)).unwrap();
        assert_eq!(describe_exit(st), "was killed by SIGTERM");
        assert!(!process_exists(s.pid));
    }

    #[test]
    fn exit_descriptions() {
        let st = |raw| ExitStatus::from_raw(raw);
        assert_eq!(describe_exit(st(3 << 8)), "exited with status 3");
        assert_eq!(describe_exit(st(libc::SIGKILL)), "was killed by SIGKILL");
        assert_eq!(describe_exit(st(libc::SIGABRT | 0x80)), "was killed by SIGABRT (core dumped)");
    }

    #[test]
    fn dropping_a_held_child_kills_it() {
        let s = spawn_stopped(&["sleep".to_string(), "100".to_string()]).unwrap();
        let pid = s.pid;
        drop(s);
        assert!(!process_exists(pid));
    }
}
