//! Names for the frames of a caught stack.
//!
//! JavaScript and V8 frames the `v8` crate decoded carry their own text
//! (`name (script:line:column)  [tier]`, one line per inlined function).
//! Native frames — and JIT'd code V8's metadata could not decode — are
//! named while the process lives by the shared `symbolize` crate (ELF
//! symbols and DWARF of every mapping, JIT'd code from `/tmp/perf-PID.map`).
//! A short command may exit before that — its stack was captured at the
//! syscall but `/proc/PID/maps` is gone — so then the module snapshot taken
//! when the stack was unwound names them from the files, and JIT addresses
//! from the perf map, which the runtime leaves behind.

use symbolize::{Frame, PerfMap, Symbolizer};
use v8::FrameKind;

use super::unwind::Stack;

/// One line of a named stack.
pub struct Named {
    pub addr: u64,
    /// `name+0xoff  [module]` (`?` for what nothing covers), or a
    /// JavaScript or V8 frame's text.
    pub text: String,
}

/// The symbolizer, kept for the whole session (it caches parsed files).
pub struct Symbols {
    symbolizer: Symbolizer,
}

impl Symbols {
    pub fn new() -> Self {
        Symbols { symbolizer: Symbolizer::new() }
    }

    /// Names the frames of `stack` in process `pid`, one line per native
    /// frame and per JavaScript function; the bool says whether the
    /// process was gone and the snapshot was used.
    pub fn name(&self, pid: u32, stack: &Stack) -> (Vec<Named>, bool) {
        // Native frames only; return addresses point after their call:
        // look up the call itself.
        let natives: Vec<(usize, u64)> = stack
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind == FrameKind::Native)
            .map(|(i, f)| (i, f.pc))
            .collect();
        let lookup: Vec<u64> = natives.iter().map(|&(i, a)| if i == 0 { a } else { a.saturating_sub(1) }).collect();
        let (frames, offline) = match self.symbolizer.symbolize(pid, &lookup) {
            Ok(frames) => (frames, false),
            Err(_) => match &stack.snapshot {
                Some(snapshot) => (snapshot.symbolize(&self.symbolizer, &lookup), true),
                None => (perf_map_frames(pid, &lookup), true),
            },
        };
        let mut native_names = natives.iter().zip(frames).map(|(&(i, addr), f)| {
            let f = Frame { addr, offset: f.offset + u64::from(i > 0), ..f };
            let name = if f.name.is_some() { f.display() } else { "?".into() };
            format!("{name}  [{}]", f.module.as_deref().map(symbolize::short_module).unwrap_or("?"))
        });
        let mut named = Vec::new();
        for f in &stack.frames {
            match f.kind.lines() {
                Some(lines) => named.extend(lines.into_iter().map(|text| Named { addr: f.pc, text })),
                None => named.push(Named { addr: f.pc, text: native_names.next().unwrap_or_default() }),
            }
        }
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
