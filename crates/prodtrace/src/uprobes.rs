//! Attaching uprobe BPF programs to one process, on every kernel from 5.15:
//! uprobe_multi links where the kernel has them, classic uprobes (one perf
//! event per probe) with BPF cookies otherwise.
//!
//! Use: pick a [`Method`] once ([`Method::choose`]), [`Attacher::prepare`]
//! every uprobe program before its object is loaded (the kernel must know
//! at load time whether it will be attached through uprobe_multi links),
//! then [`Attacher::attach`] it at a list of [`Site`]s.  Links detach when
//! dropped (and when prodtrace exits, even by `kill -9`).
//!
//! The programs themselves must check the process (`bpf_get_current_pid_tgid`)
//! unless the method is [`Method::Multi`]: with [`Method::SystemWide`] they run
//! for every process that maps the file.  They get where they are from
//! `PT_REGS_IP(ctx)` (the kernel sets it to the probed address before
//! running uprobe handlers, on every kernel) and per-probe data from
//! `bpf_get_attach_cookie()`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use libbpf_rs::{Link, OpenProgramMut, ProgramAttachType, ProgramMut, UprobeMultiOpts, UprobeOpts};

use crate::features::{self, Feature};

/// The environment variable that forces a method (see [`Method::choose`]).
pub const ENV: &str = "PRODTRACE_UPROBES";

/// How uprobes are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// uprobe_multi links bound to the process (Linux 6.6+, with the PID
    /// filter fixed): breakpoints in that process only, one link per
    /// program and file, no cost on the target's context switches.
    Multi,
    /// Classic uprobes with no process filter (perf events with pid -1):
    /// breakpoints in every process that maps the file, the BPF program
    /// returns at once for the others.  Cheapest per operation for the
    /// target, but every other process running the same binary traps too.
    SystemWide,
    /// Classic uprobes bound to the process (perf events with its PID):
    /// breakpoints in that process only, but a task-bound perf event puts
    /// perf's scheduling hooks on every context switch of its main thread.
    Process,
}

impl Method {
    /// The classic variant used when the kernel has no uprobe_multi links:
    /// bound to the process.  On the sqlite demo it costs the target more
    /// per operation than [`Method::SystemWide`] (bench/latency.sh,
    /// BENCHMARKS.md), but tracing one process leaves every other one
    /// alone: no breakpoints, no traps, in processes nobody asked to trace.
    pub const CLASSIC: Method = Method::Process;

    /// The method for this kernel: uprobe_multi links when it has them,
    /// else [`Method::CLASSIC`].  `PRODTRACE_UPROBES` overrides it: `multi`,
    /// `classic` ([`Method::CLASSIC`]), `classic-pid` or `classic-system`
    /// (the two classic variants), `auto` (the default).
    pub fn choose(tool: &str) -> Result<Method> {
        let forced = std::env::var(ENV).unwrap_or_default();
        let method = match forced.as_str() {
            "" | "auto" => {
                return Ok(if features::has(Feature::UprobeMulti) { Method::Multi } else { Method::CLASSIC })
            }
            "multi" => Method::Multi,
            "classic" => Method::CLASSIC,
            "classic-pid" => Method::Process,
            "classic-system" => Method::SystemWide,
            other => bail!("{ENV}={other} is not one of auto, multi, classic, classic-pid, classic-system"),
        };
        if method == Method::Multi && !features::has(Feature::UprobeMulti) {
            bail!("{ENV}=multi: {}", features::missing(tool, Feature::UprobeMulti));
        }
        Ok(method)
    }

    /// One line for `prodtrace doctor` and messages.
    pub fn describe(self) -> &'static str {
        match self {
            Method::Multi => "uprobe_multi links bound to the process",
            Method::SystemWide => {
                "classic uprobes (perf events) on every process of the binary, filtered by PID in BPF"
            }
            Method::Process => "classic uprobes (perf events) bound to the process, with BPF cookies",
        }
    }
}

/// One probe: an instruction of a file (by file offset, what the kernel
/// takes) and the value `bpf_get_attach_cookie()` returns there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub file: PathBuf,
    pub offset: u64,
    pub cookie: u64,
}

impl Site {
    pub fn new(file: &Path, offset: u64, cookie: u64) -> Self {
        Self { file: file.to_path_buf(), offset, cookie }
    }
}

/// Attaches uprobe programs for one process with one method.
pub struct Attacher {
    pub method: Method,
    pub pid: u32,
    /// The tool, for messages (`prodtrace latency`).
    pub tool: &'static str,
}

impl Attacher {
    /// Makes `prog` (declared `SEC("uprobe")` or `SEC("uretprobe")`)
    /// attachable by this method; call before the object is loaded.
    pub fn prepare(&self, prog: &mut OpenProgramMut) {
        if self.method == Method::Multi {
            prog.set_attach_type(ProgramAttachType::TraceUprobeMulti);
        }
    }

    /// Attaches `prog` at every site (return probes with `retprobe`: the
    /// site must then be a function's entry).  `what` names the sites in
    /// errors.  All or nothing: on error, what was attached is detached.
    pub fn attach(&self, prog: &ProgramMut, sites: &[Site], retprobe: bool, what: &str) -> Result<Vec<Link>> {
        if sites.iter().any(|s| s.cookie != 0) && self.method != Method::Multi {
            features::require(self.tool, Feature::UprobeCookies)?;
        }
        // libbpf's own messages would repeat the error we report, in its words.
        let prev = libbpf_rs::set_print(None);
        let links = self.attach_quietly(prog, sites, retprobe, what);
        libbpf_rs::set_print(prev);
        links
    }

    fn attach_quietly(&self, prog: &ProgramMut, sites: &[Site], retprobe: bool, what: &str) -> Result<Vec<Link>> {
        let mut links = Vec::new();
        match self.method {
            Method::Multi => {
                // One link per file.
                let mut files: Vec<&Path> = sites.iter().map(|s| s.file.as_path()).collect();
                files.dedup();
                for file in files {
                    let here: Vec<&Site> = sites.iter().filter(|s| s.file == file).collect();
                    let cookies = if here.iter().any(|s| s.cookie != 0) {
                        here.iter().map(|s| s.cookie).collect()
                    } else {
                        Vec::new()
                    };
                    let opts = UprobeMultiOpts {
                        offsets: here.iter().map(|s| s.offset as usize).collect(),
                        cookies,
                        retprobe,
                        ..Default::default()
                    };
                    let link = prog
                        .attach_uprobe_multi_with_opts(self.pid as i32, file, "", opts)
                        .map_err(|e| self.error(what, file, None, e))?;
                    links.push(link);
                }
            }
            Method::SystemWide | Method::Process => {
                let pid = if self.method == Method::Process { self.pid as i32 } else { -1 };
                for s in sites {
                    let opts = UprobeOpts { cookie: s.cookie, retprobe, ..Default::default() };
                    let link = prog
                        .attach_uprobe_with_opts(pid, &s.file, s.offset as usize, opts)
                        .map_err(|e| self.error(what, &s.file, Some(s.offset), e))?;
                    links.push(link);
                }
            }
        }
        Ok(links)
    }

    /// One line saying which probe failed and why, in words.
    fn error(&self, what: &str, file: &Path, offset: Option<u64>, e: libbpf_rs::Error) -> anyhow::Error {
        let at = offset.map(|o| format!(" at offset {o:#x}")).unwrap_or_default();
        let errno = errno_of(&e);
        let why = match errno {
            Some(libc::ESRCH) => format!("process {} is gone", self.pid),
            Some(libc::ENOENT) => "the file is gone".to_string(),
            Some(libc::EPERM) | Some(libc::EACCES) => "permission denied (run as root)".to_string(),
            Some(libc::EINVAL) => format!(
                "the kernel refused the probe ({} via {}; `prodtrace doctor` shows what this kernel supports)",
                features::kernel_release(),
                self.method.describe()
            ),
            Some(libc::EMFILE) | Some(libc::ENFILE) => "too many open files (raise `ulimit -n`)".to_string(),
            _ => e.to_string(),
        };
        anyhow::anyhow!("cannot attach uprobes to {what} in {}{at}: {why}", file.display())
    }
}

/// The OS error number behind a libbpf-rs error, if any.
fn errno_of(e: &libbpf_rs::Error) -> Option<i32> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(n) = c.downcast_ref::<std::io::Error>().and_then(|io| io.raw_os_error()) {
            return Some(n);
        }
        cause = c.source();
    }
    let text = e.to_string();
    let i = text.rfind("(os error ")?;
    text[i + 10..].trim_end_matches(')').parse().ok()
}
