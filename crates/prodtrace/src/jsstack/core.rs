//! `jsstack --core FILE [--exe BINARY]`: read the stacks of a core file
//! (from `prodtrace gcore` or `catch --core`, the kernel, or gdb's gcore).

use std::path::Path;

use anyhow::{Context, Result};
use v8::memory::MemoryExt;
use v8::{NativeUnwinder, Reader};

use super::report::{self, Options, Stacks, ThreadStack};

pub fn run(path: &Path, exe: Option<&Path>, opts: &Options) -> Result<()> {
    if let Some(exe) = exe {
        std::fs::metadata(exe).with_context(|| format!("cannot read {}", exe.display()))?;
    }
    let (image, info) = v8::core::open(path, exe)?;
    if info.truncated {
        eprintln!(
            "prodtrace: warning: {} is truncated (shorter than its headers say): memory past its end is missing",
            path.display()
        );
    }
    let reader = Reader::new(&image).with_context(|| format!("core file {}", path.display()))?;
    for t in &image.threads {
        if image.memory.u64(t.regs.sp()).is_none() {
            eprintln!(
                "prodtrace: warning: the stack of thread {} is not in {} (a core written with a coredump_filter that leaves out anonymous memory, or cut short)",
                t.tid,
                path.display()
            );
        }
    }
    let mut native = NativeUnwinder::new(&image);
    let threads = image
        .threads
        .iter()
        .map(|t| ThreadStack {
            tid: t.tid,
            name: None,
            main: t.tid == info.pid,
            frames: reader.walk(&image, t, &mut native),
        })
        .collect();
    let stacks = Stacks {
        pid: info.pid,
        command: Some(info.command.clone()).filter(|c| !c.is_empty()),
        v8_version: reader.version(&image),
        paused_ms: None,
        left_stopped: false,
        threads,
    };
    report::print(&stacks, &report::Namer::Core { modules: image.modules.clone() }, opts)
}
