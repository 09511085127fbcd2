//! `jsstack PID`: read the stacks of a live process.  Everything that does
//! not need the process stopped is done before (mappings, V8 metadata,
//! unwind tables) or after (naming native frames); while it is frozen
//! (every thread stopped with PTRACE_INTERRUPT by `procctl::freeze`, no
//! signal sent) only registers and the memory the walk touches are read.
//! The process is then resumed exactly as it was found: running, or still
//! in the group-stop it was in.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use symbolize::Snapshot;
use v8::memory::LiveMemory;
use v8::{Image, Module, NativeUnwinder, Reader, Regs, Thread};

use super::report::{self, Options, Stacks, ThreadStack};

pub fn run(pid: u32, opts: &Options) -> Result<()> {
    if pid == std::process::id() {
        bail!("process {pid} is prodtrace itself");
    }
    if !procctl::process_exists(pid) {
        bail!("no process with PID {pid}");
    }
    let snapshot = Snapshot::take(pid)?;
    let modules = modules_of(&snapshot);
    let mut image =
        Image { pid, memory: Box::new(LiveMemory::new(pid)), modules, threads: Vec::new(), anon_exec: Vec::new() };
    let reader =
        Reader::new(&image).with_context(|| format!("process {pid} ({})", procctl::comm(pid).unwrap_or_default()))?;
    let mut native = NativeUnwinder::new(&image);
    let version = reader.version(&image);

    // Frozen from here...
    let frozen = procctl::freeze::freeze(pid)?;
    let since = Instant::now();
    // Pages read before the freeze may have changed.
    let memory = LiveMemory::new(pid);
    image.memory = Box::new(memory);
    image.threads = frozen
        .threads()
        .iter()
        .filter_map(|t| Some(Thread { tid: t.tid, name: None, regs: Regs::from_bytes(&t.regs)? }))
        .collect();
    let walked: Vec<_> = image.threads.iter().map(|t| reader.walk(&image, t, &mut native)).collect();
    let stopped = frozen.was_stopped();
    let paused = frozen.thaw();
    let held = since.elapsed();
    // ...to here.
    let paused = match paused {
        Ok(d) => d,
        Err(e) if !procctl::process_exists(pid) => return Err(e).context("the stacks are lost"),
        Err(_) => held,
    };
    let threads = image
        .threads
        .iter()
        .zip(walked)
        .map(|(t, frames)| ThreadStack {
            tid: t.tid,
            name: std::fs::read_to_string(format!("/proc/{pid}/task/{}/comm", t.tid))
                .ok()
                .map(|s| s.trim_end().to_string()),
            main: t.tid == pid,
            frames,
        })
        .collect();
    let stacks = Stacks {
        pid,
        command: procctl::comm(pid).ok(),
        v8_version: version,
        paused_ms: Some(paused.as_secs_f64() * 1e3),
        left_stopped: stopped,
        threads,
    };
    report::print(&stacks, &report::Namer::Live { pid, snapshot }, opts)
}

/// The file mappings of a process, each with a path that reads its file
/// (also what `catch` reads a caught thread's stack with).
pub(crate) fn modules_of(snapshot: &Snapshot) -> Vec<Module> {
    snapshot
        .modules()
        .iter()
        .filter_map(|m| {
            let path = m.mapping.path.as_ref()?;
            Some(Module {
                start: m.mapping.start,
                end: m.mapping.end,
                file_offset: m.mapping.offset,
                path: path.to_string_lossy().into_owned(),
                file: m.file()?.to_path_buf(),
            })
        })
        .collect()
}
