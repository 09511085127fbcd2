//! Names for the addresses of a caught stack.
//!
//! While the process lives, the shared `symbolize` crate names them (ELF
//! symbols and DWARF of every mapping, JIT'd code from `/tmp/perf-PID.map`).
//! A short command may exit before that — its stack was captured at the
//! syscall but `/proc/PID/maps` is gone — so then the module snapshot taken
//! when the stack was unwound names them from the files, and JIT addresses
//! from the perf map, which the runtime leaves behind.

use symbolize::{Frame, PerfMap, Symbolizer};

use super::unwind::Stack;

/// One named frame.
pub struct Named {
    pub addr: u64,
    /// `name+0xoff`, or `None` when nothing covers the address.
    pub name: Option<String>,
    pub module: Option<String>,
}

/// The symbolizer, kept for the whole session (it caches parsed files).
pub struct Symbols {
    symbolizer: Symbolizer,
}

impl Symbols {
    pub fn new() -> Self {
        Symbols { symbolizer: Symbolizer::new() }
    }

    /// Names the frames of `stack` in process `pid`; the bool says whether
    /// the process was gone and the snapshot was used.
    pub fn name(&self, pid: u32, stack: &Stack) -> (Vec<Named>, bool) {
        // Return addresses point after their call: look up the call itself.
        let lookup: Vec<u64> =
            stack.addrs.iter().enumerate().map(|(i, &a)| if i == 0 { a } else { a.saturating_sub(1) }).collect();
        let (frames, offline) = match self.symbolizer.symbolize(pid, &lookup) {
            Ok(frames) => (frames, false),
            Err(_) => match &stack.snapshot {
                Some(snapshot) => (snapshot.symbolize(&self.symbolizer, &lookup), true),
                None => (perf_map_frames(pid, &lookup), true),
            },
        };
        let named = frames
            .into_iter()
            .zip(&stack.addrs)
            .enumerate()
            .map(|(i, (f, &addr))| {
                let f = Frame { addr, offset: f.offset + u64::from(i > 0), ..f };
                Named { addr, name: f.name.is_some().then(|| f.display()), module: f.module }
            })
            .collect();
        (named, offline)
    }
}

/// Frames named from the perf map only (no module snapshot was taken).
fn perf_map_frames(pid: u32, addrs: &[u64]) -> Vec<Frame> {
    let map = PerfMap::read(pid);
    addrs
        .iter()
        .map(|&addr| match map.lookup(addr) {
            Some((name, offset)) => Frame { addr, name: Some(name.to_string()), module: None, offset },
            None => Frame { addr, name: None, module: None, offset: 0 },
        })
        .collect()
}
