//! The one check every tool makes on a PID the user typed (`gcore PID`,
//! `catch -p`, `latency -p`): is it a live user-space process we may look
//! at? Each refusal is one line that says what the PID really is — gone, a
//! zombie, a kernel thread, a thread of another process, this tool itself,
//! or a process the kernel does not let us inspect — and what to do.

use anyhow::{bail, Result};

/// What the tool means to do with the process (words the messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Write a core file of it (`gcore`).
    Dump,
    /// Attach probes to its code (`latency`).
    Trace,
    /// Watch its system calls (`catch -p`).
    Catch,
}

impl Use {
    fn verb(self) -> &'static str {
        match self {
            Use::Dump => "dump",
            Use::Trace => "trace",
            Use::Catch => "catch system calls in",
        }
    }

    fn gerund(self) -> &'static str {
        match self {
            Use::Dump => "dumping",
            Use::Trace => "tracing",
            Use::Catch => "catching system calls in",
        }
    }
}

/// `PF_KTHREAD` in the flags field of `/proc/PID/stat`.
const PF_KTHREAD: u64 = 0x0020_0000;

/// Fails with one line unless `pid` is a live user-space process (not a
/// thread ID of another process) that this tool is allowed to inspect.
pub fn check_process(pid: u32, purpose: Use) -> Result<()> {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { bail!("no process with PID {pid}") };
    let Some(fields) = stat_fields(&stat) else { bail!("no process with PID {pid}") };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let tgid = status_field(&status, "Tgid:").and_then(|t| t.parse::<u32>().ok()).unwrap_or(pid);
    let me = std::process::id();
    if pid == me || tgid == me {
        bail!("process {pid} is this tool itself")
    }
    match fields.first().copied() {
        Some("X") => bail!("no process with PID {pid}"),
        Some("Z") => {
            let ppid: u32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
            let parent = crate::comm(ppid).unwrap_or_else(|_| "?".into());
            bail!(
                "process {pid} is a zombie: it has exited and waits for its parent {ppid} ({parent}) to collect \
                 its exit status; there is nothing left to {}",
                purpose.verb()
            )
        }
        _ => {}
    }
    let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
    if flags & PF_KTHREAD != 0 {
        let comm = crate::comm(pid).unwrap_or_else(|_| "?".into());
        bail!(
            "process {pid} is a kernel thread ({comm}): {}",
            match purpose {
                Use::Dump => "it has no user memory to dump",
                Use::Trace => "it runs no user-space code to trace",
                Use::Catch => "it makes no system calls from user space, so there is nothing to catch",
            }
        )
    }
    if tgid != pid {
        bail!(
            "{pid} is a thread of process {tgid}: {}",
            match purpose {
                Use::Dump => format!("dump process {tgid}"),
                Use::Trace => format!("trace process {tgid} (-p {tgid})"),
                Use::Catch => format!("use -p {tgid} (it covers all the threads of process {tgid})"),
            }
        )
    }
    // Reading /proc/PID/exe needs the same access as reading the process's
    // memory map and memory (ptrace read mode): every tool needs that.
    if let Err(e) = std::fs::read_link(format!("/proc/{pid}/exe")) {
        if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) {
            if crate::caps::effective().has(crate::caps::CAP_SYS_PTRACE) {
                bail!(
                    "not permitted to {} process {pid}, even as root: the kernel denies access to /proc/{pid} (the \
                     process is outside this container's or user namespace's reach, or a security module protects it)",
                    purpose.verb()
                )
            }
            bail!("{} process {pid} needs root or CAP_SYS_PTRACE: run it with sudo", purpose.gerund())
        }
    }
    Ok(())
}

/// `PF_EXITING`: the process has started to exit (its memory may already
/// be gone while it does not read as a zombie yet).
const PF_EXITING: u64 = 0x4;

/// Whether process `pid` is gone, a zombie, or on its way out.
pub fn is_exiting(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return true };
    let Some(fields) = stat_fields(&stat) else { return true };
    let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
    matches!(fields.first().copied(), Some("Z") | Some("X")) || flags & PF_EXITING != 0
}

/// The fields of a `/proc/PID/stat` line after the command name (state first).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat[close + 1..].split_whitespace().collect())
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn err(pid: u32, purpose: Use) -> String {
        check_process(pid, purpose).unwrap_err().to_string()
    }

    #[test]
    fn live_child_passes_and_each_kind_of_non_process_is_named() {
        let mut child = Command::new("sleep").arg("30").stdout(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        check_process(pid, Use::Dump).unwrap();
        // A zombie: killed, not reaped yet.
        child.kill().unwrap();
        let t0 = std::time::Instant::now();
        while crate::process_exists(pid) && t0.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let e = err(pid, Use::Trace);
        assert!(e.starts_with(&format!("process {pid} is a zombie: it has exited and waits for its parent ")), "{e}");
        assert!(e.ends_with("nothing left to trace"), "{e}");
        child.wait().unwrap();
        assert_eq!(err(pid, Use::Catch), format!("no process with PID {pid}"));

        assert_eq!(err(std::process::id(), Use::Dump), format!("process {} is this tool itself", std::process::id()));
        assert_eq!(err(2, Use::Dump), "process 2 is a kernel thread (kthreadd): it has no user memory to dump");
        assert!(err(2, Use::Catch).ends_with("there is nothing to catch"));
    }

    #[test]
    fn a_thread_id_names_its_process() {
        let mut child = Command::new("/usr/bin/node")
            .args(["-e", "setTimeout(() => {}, 30000)"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let t0 = std::time::Instant::now();
        let tid = loop {
            let tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&t| t != pid)
                .collect();
            if let Some(&t) = tids.first() {
                break t;
            }
            assert!(t0.elapsed() < std::time::Duration::from_secs(10), "node started no thread");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(err(tid, Use::Dump), format!("{tid} is a thread of process {pid}: dump process {pid}"));
        assert_eq!(
            err(tid, Use::Catch),
            format!("{tid} is a thread of process {pid}: use -p {pid} (it covers all the threads of process {pid})")
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
