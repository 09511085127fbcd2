//! One stopping `catch` session per process. Two sessions that both stop
//! the same process at a match (--core, --stop) would fight over it: one
//! resumes it while the other is still taking its core, and that core shows
//! the process after the match. So a session that stops processes takes a
//! lock first and refuses to start when another holds it.
//!
//! The lock is a POSIX record lock on `/run/prodtrace-catch.lock`: a
//! session on one process (`-p PID`, `-- CMD`) locks the byte at offset
//! PID; a session that may stop any process (`--comm`, or no narrowing)
//! locks the whole file, so it conflicts with every other stopping session.
//! The kernel drops the lock when the session's process ends, however it
//! ends.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Result};

const LOCK_FILE: &str = "/run/prodtrace-catch.lock";

/// A held lock; released when dropped (or when the process ends).
pub struct SessionLock {
    _file: File,
}

/// Takes the lock for a session that stops process `pid` (`None`: any
/// process). Fails with one line naming the other session when it is taken.
/// When the lock file cannot be opened at all, the session runs without
/// one (and says so).
pub fn take(pid: Option<u32>) -> Result<Option<SessionLock>> {
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(LOCK_FILE)
    {
        Ok(f) => f,
        Err(e) => {
            crate::console::errln!(
                "prodtrace: note: cannot open {LOCK_FILE} ({}): another catch session stopping the same process \
                 would not be detected",
                e.kind()
            );
            return Ok(None);
        }
    };
    // SAFETY: flock is plain old data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    (fl.l_start, fl.l_len) = match pid {
        Some(p) => (p as libc::off_t, 1),
        None => (0, 0), // 0: to the end of the file, however far it grows
    };
    // SAFETY: fcntl on our own descriptor with a valid flock.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) } == 0 {
        return Ok(Some(SessionLock { _file: file }));
    }
    // SAFETY: as above; F_GETLK fills in the conflicting lock.
    let holder = if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) } == 0
        && fl.l_type != libc::F_UNLCK as libc::c_short
    {
        fl.l_pid as u32
    } else {
        0
    };
    let who = describe_session(holder);
    match pid {
        Some(p) => bail!(
            "process {p} is already watched by another prodtrace catch that stops processes ({who}): two sessions \
             would both stop it, and one would take its core after the other resumed it; end that session first"
        ),
        None => bail!(
            "another prodtrace catch that stops processes is running ({who}): a session that may stop any process \
             cannot run beside it; end that session first, or narrow this one with -p PID"
        ),
    }
}

/// `PID 4242: prodtrace catch --syscall close ...` (its command line).
fn describe_session(pid: u32) -> String {
    if pid == 0 {
        return "PID unknown".into();
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> =
        cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    match args.split_first() {
        Some((prog, rest)) => {
            let name = std::path::Path::new(prog).file_name().map(|n| n.to_string_lossy().into_owned());
            format!("PID {pid}: {} {}", name.unwrap_or_default(), rest.join(" "))
        }
        None => format!("PID {pid}"),
    }
}
