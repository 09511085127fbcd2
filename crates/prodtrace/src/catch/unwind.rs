//! User-stack unwinding for a caught system call: native frames and, in a
//! node process, JavaScript frames — the same walker as `prodtrace
//! jsstack` (the `v8` crate), over the memory of the caught thread.
//!
//! The BPF program hands over two views of the thread's user stack at the
//! syscall's return: the kernel's frame-pointer walk (`bpf_get_stack`) and a
//! raw copy of the top of the stack with the registers ip/sp/bp.  Most
//! distribution libraries (glibc, node) are built without frame pointers, so
//! the frame-pointer walk skips callers — typically the very function that
//! called `close()`.  Here the raw copy is unwound with the modules' DWARF
//! CFI (`.eh_frame`), V8's frames by frame pointer and decoded from its heap
//! with the binary's `v8dbg_*` metadata (no `--perf-basic-prof` needed).
//!
//! When the process is held stopped at the call (`--core`, `--stop`), every
//! read is of the process as it was at the call.  When it is not
//! (`--print` alone), the stack beyond the copy has moved on and is not
//! read; heap objects (functions, scripts) are read a moment after the call,
//! which is what they still were unless a garbage collection moved them
//! meanwhile (then those frames lose their names, never gain wrong ones:
//! every object is type-checked).  The modules come from a
//! `symbolize::Snapshot` of the process's mappings, which the stack keeps
//! to be named after an exit.

use symbolize::Snapshot;
use v8::memory::{LiveMemory, Memory};
use v8::metadata::MetadataCache;
use v8::native::ElfCache;
use v8::{Frame, FrameKind, Image, NativeUnwinder, Reader, Regs, Thread};

use super::event::Event;
use crate::jsstack::modules_of;

/// Longest stack we report.
const MAX_FRAMES: usize = 128;

/// Unwinds user stacks of caught events; caches what it read of the
/// binaries (unwind tables, V8 metadata) for the whole session.
#[derive(Default)]
pub struct StackUnwinder {
    elves: ElfCache,
    metadata: MetadataCache,
    /// The last memory map read: used for later events of its process
    /// after it has exited.
    last_maps: Option<Snapshot>,
}

/// Which unwinder produced a stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Dwarf,
    FramePointer,
}

/// An unwound stack, innermost frame first.
pub struct Stack {
    pub frames: Vec<Frame>,
    pub method: Method,
    /// The process's mappings when it was unwound, to symbolize from
    /// files if the process is gone by then.
    pub snapshot: Option<Snapshot>,
    /// V8's version (`?` if unknown) when JavaScript frames were read.
    pub v8: Option<String>,
}

/// The memory a caught thread's stack is read from: the copy the BPF
/// program made at the call, then the process itself — all of it while it
/// is held; while it runs on, all but the rest of that thread's stack.
struct EventMemory {
    sp: u64,
    copy: Vec<u8>,
    live: Option<LiveMemory>,
    /// Addresses not to read from the live process: the thread's stack
    /// beyond the copy, which has changed since the call.
    moved: Option<(u64, u64)>,
}

impl Memory for EventMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(end) = addr.checked_add(buf.len() as u64) else { return false };
        if addr >= self.sp && end <= self.sp + self.copy.len() as u64 {
            let off = (addr - self.sp) as usize;
            buf.copy_from_slice(&self.copy[off..off + buf.len()]);
            return true;
        }
        if let Some((lo, hi)) = self.moved {
            if addr < hi && end > lo {
                return false;
            }
        }
        self.live.as_ref().is_some_and(|m| m.read(addr, buf))
    }
}

impl StackUnwinder {
    /// Reads what unwinding the stacks of `pid` needs from its binaries
    /// (unwind tables, V8 metadata) now, before any match holds it.
    pub fn prepare(&mut self, pid: u32) {
        if let Ok(maps) = Snapshot::take(pid) {
            let image = image_of(pid, &maps, None, Vec::new());
            NativeUnwinder::new_cached(&image, &mut self.elves);
            let _ = Reader::new_cached(&image, &mut self.metadata);
        }
    }

    /// Unwinds the stack of `ev`.  `held` says the process is held stopped
    /// at the syscall's return, so its memory is still what it was.
    /// Without access to the process (it exited), the frame-pointer stack
    /// from BPF is returned.
    pub fn unwind(&mut self, ev: &Event, held: bool) -> Stack {
        let maps = match Snapshot::take(ev.pid) {
            Ok(maps) => {
                self.last_maps = Some(maps.clone());
                Some(maps)
            }
            Err(_) => self.last_maps.clone().filter(|m| m.pid() == ev.pid),
        };
        let Some(maps) = maps else { return fp_stack(ev, None) };
        let alive = procctl::process_exists(ev.pid);
        let moved = (!held).then(|| {
            let stack_end = maps.modules().iter().find(|m| m.mapping.contains(ev.sp)).map_or(ev.sp, |m| m.mapping.end);
            (ev.sp + ev.stack.len() as u64, stack_end.max(ev.sp + ev.stack.len() as u64))
        });
        let memory =
            EventMemory { sp: ev.sp, copy: ev.stack.clone(), live: alive.then(|| LiveMemory::new(ev.pid)), moved };
        let mut regs = Regs::default();
        regs.0[16] = ev.ip;
        regs.0[19] = ev.sp;
        regs.0[4] = ev.bp;
        let image = image_of(ev.pid, &maps, Some(Box::new(memory)), vec![Thread { tid: ev.tid, name: None, regs }]);
        let mut native = NativeUnwinder::new_cached(&image, &mut self.elves);
        let reader = if alive { Reader::new_cached(&image, &mut self.metadata).ok() } else { None };
        let mut frames = v8::frames::walk(reader.as_ref(), &image, &image.threads[0], &mut native);
        frames.truncate(MAX_FRAMES);
        let has_js = frames.iter().any(|f| matches!(f.kind, FrameKind::Js { .. }));
        let v8 = reader.as_ref().filter(|_| has_js).map(|r| r.version(&image).unwrap_or_else(|| "?".into()));
        if frames.len() < 2 && ev.fp_frames.len() >= 2 {
            return fp_stack(ev, Some(maps));
        }
        Stack { frames, method: Method::Dwarf, snapshot: Some(maps), v8 }
    }
}

/// A process image of `pid` for the v8 crate's walker.
fn image_of(pid: u32, maps: &Snapshot, memory: Option<Box<dyn Memory>>, threads: Vec<Thread>) -> Image {
    let memory = memory.unwrap_or_else(|| Box::new(LiveMemory::new(pid)));
    Image { pid, memory, modules: modules_of(maps), threads, anon_exec: Vec::new() }
}

/// The kernel's frame-pointer walk, as native frames.
fn fp_stack(ev: &Event, snapshot: Option<Snapshot>) -> Stack {
    let frames = ev.fp_frames.iter().map(|&pc| Frame { pc, sp: 0, fp: 0, kind: FrameKind::Native }).collect();
    Stack { frames, method: Method::FramePointer, snapshot, v8: None }
}
