//! User-stack unwinding for a caught system call.
//!
//! The BPF program hands over two views of the thread's user stack at the
//! syscall's return: the kernel's frame-pointer walk (`bpf_get_stack`) and a
//! raw copy of the top of the stack with the registers ip/sp/bp.  Most
//! distribution libraries (glibc, node) are built without frame pointers, so
//! the frame-pointer walk skips callers — typically the very function that
//! called `close()`.  Here the raw copy is unwound with the modules' DWARF
//! CFI (`.eh_frame`, via the framehop crate), falling back to frame pointers
//! for code without unwind tables (V8's JIT code keeps frame pointers).  When
//! the process is held stopped, stack words beyond the copy are read from
//! `/proc/PID/mem`.  The modules come from a `symbolize::Snapshot` of the
//! process's mappings, which the stack keeps to be named after an exit.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment};
use symbolize::{Mapping, Snapshot};

use super::event::Event;

/// Longest stack we report.
const MAX_FRAMES: usize = 128;

type Bytes = Arc<[u8]>;

/// Unwind sections and load layout of one ELF file, kept across events.
struct ElfUnwindInfo {
    /// (p_offset, p_vaddr, p_filesz) of each PT_LOAD segment.
    loads: Vec<(u64, u64, u64)>,
    text: Option<std::ops::Range<u64>>,
    got: Option<std::ops::Range<u64>>,
    eh_frame: Option<(std::ops::Range<u64>, Bytes)>,
    eh_frame_hdr: Option<(std::ops::Range<u64>, Bytes)>,
}

/// Unwinds user stacks of caught events; caches parsed ELF files.
#[derive(Default)]
pub struct StackUnwinder {
    elves: HashMap<(PathBuf, u64), Option<Arc<ElfUnwindInfo>>>,
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

/// An unwound stack: addresses innermost first; every address but the
/// first is a return address.
pub struct Stack {
    pub addrs: Vec<u64>,
    pub method: Method,
    /// The process's mappings when it was unwound, to symbolize from
    /// files if the process is gone by then.
    pub snapshot: Option<Snapshot>,
}

impl StackUnwinder {
    /// Unwinds the stack of `ev`.  `stopped` says the thread is held stopped
    /// at the syscall's return, so live stack memory is still what it was.
    /// Without access to the process (it exited), the frame-pointer stack
    /// from BPF is returned.
    pub fn unwind(&mut self, ev: &Event, stopped: bool) -> Stack {
        let mut snapshot = None;
        match self.dwarf_unwind(ev, stopped, &mut snapshot) {
            Ok(addrs) if addrs.len() >= 2 || ev.fp_frames.len() < 2 => Stack { addrs, method: Method::Dwarf, snapshot },
            _ => Stack { addrs: ev.fp_frames.clone(), method: Method::FramePointer, snapshot },
        }
    }

    /// Reads the memory map of `pid` now (while it is held), for unwinding
    /// its stack after it has been resumed and may have exited.
    pub fn remember_maps(&mut self, pid: u32) {
        if let Ok(maps) = Snapshot::take(pid) {
            self.last_maps = Some(maps);
        }
    }

    fn dwarf_unwind(&mut self, ev: &Event, stopped: bool, snapshot: &mut Option<Snapshot>) -> Result<Vec<u64>> {
        let maps = match Snapshot::take(ev.pid) {
            Ok(maps) => {
                self.last_maps = Some(maps.clone());
                maps
            }
            Err(e) => match &self.last_maps {
                Some(maps) if maps.pid() == ev.pid => maps.clone(),
                _ => return Err(e),
            },
        };
        let mut unwinder: UnwinderX86_64<Bytes> = UnwinderX86_64::new();
        for module in maps.modules().iter().filter(|m| m.mapping.exec) {
            let (m, Some(path), Some(file)) = (&module.mapping, &module.mapping.path, module.file()) else { continue };
            let key = (path.clone(), m.inode);
            let info = match self.elves.get(&key) {
                Some(info) => info.clone(),
                None => {
                    let info = load_elf(file).ok().map(Arc::new);
                    self.elves.insert(key, info.clone());
                    info
                }
            };
            if let Some(info) = info {
                if let Some(bias) = load_bias(m, &info) {
                    if let Some(module) = make_module(m, path, &info, bias) {
                        unwinder.add_module(module);
                    }
                }
            }
        }
        *snapshot = Some(maps);
        let mem = if stopped { File::open(format!("/proc/{}/mem", ev.pid)).ok() } else { None };
        let (sp, stack) = (ev.sp, &ev.stack);
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            if addr >= sp && addr + 8 <= sp + stack.len() as u64 {
                let off = (addr - sp) as usize;
                return Ok(u64::from_le_bytes(stack[off..off + 8].try_into().unwrap()));
            }
            // Beyond the copy: only trustworthy while the thread is stopped.
            let mem = mem.as_ref().ok_or(())?;
            let mut word = [0u8; 8];
            mem.read_exact_at(&mut word, addr).map_err(|_| ())?;
            Ok(u64::from_le_bytes(word))
        };
        let mut cache = CacheX86_64::<_>::new();
        let regs = UnwindRegsX86_64::new(ev.ip, ev.sp, ev.bp);
        let mut frames = unwinder.iter_frames(ev.ip, regs, &mut cache, &mut read_stack);
        let mut addrs = Vec::new();
        while let Ok(Some(frame)) = frames.next() {
            let a = match frame {
                FrameAddress::InstructionPointer(a) => a,
                FrameAddress::ReturnAddress(a) => a.get(),
            };
            addrs.push(a);
            if addrs.len() >= MAX_FRAMES {
                break;
            }
        }
        Ok(addrs)
    }
}

/// Reads the unwind sections of a mapped file (`path` reads it even when
/// it was deleted or lives in another mount namespace: see
/// `symbolize::Snapshot`).
fn load_elf(path: &Path) -> Result<ElfUnwindInfo> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: read-only private mapping; the file may change under us only
    // if someone rewrites a loaded binary in place, which breaks the target too.
    let map = unsafe { memmap2::Mmap::map(&file) }?;
    let elf = object::File::parse(&*map)?;
    let section = |name: &str| elf.section_by_name(name).map(|s| (s.address()..s.address() + s.size(), s));
    let data = |name: &str| -> Option<(std::ops::Range<u64>, Bytes)> {
        let (range, s) = section(name)?;
        Some((range, Arc::from(s.data().ok()?)))
    };
    Ok(ElfUnwindInfo {
        loads: elf
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (off, s.address(), size)
            })
            .collect(),
        text: section(".text").map(|(r, _)| r),
        got: section(".got").map(|(r, _)| r),
        eh_frame: data(".eh_frame"),
        eh_frame_hdr: data(".eh_frame_hdr"),
    })
}

/// The load bias of mapping `m`, from the PT_LOAD segment that contains
/// the mapping's file offset.
fn load_bias(m: &Mapping, info: &ElfUnwindInfo) -> Option<u64> {
    let &(p_offset, p_vaddr, _) =
        info.loads.iter().find(|(off, _, size)| m.offset >= *off && m.offset < off + size.max(&1))?;
    Some(m.start.wrapping_sub(p_vaddr.wrapping_sub(p_offset).wrapping_add(m.offset)))
}

/// A framehop module for mapping `m` loaded at `bias`.
fn make_module(m: &Mapping, path: &Path, info: &ElfUnwindInfo, bias: u64) -> Option<Module<Bytes>> {
    info.eh_frame.as_ref()?;
    let section_info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: info.text.clone(),
        got_svma: info.got.clone(),
        eh_frame_svma: info.eh_frame.as_ref().map(|(r, _)| r.clone()),
        eh_frame: info.eh_frame.as_ref().map(|(_, d)| d.clone()),
        eh_frame_hdr_svma: info.eh_frame_hdr.as_ref().map(|(r, _)| r.clone()),
        eh_frame_hdr: info.eh_frame_hdr.as_ref().map(|(_, d)| d.clone()),
        ..Default::default()
    };
    Some(Module::new(path.to_string_lossy().into_owned(), m.start..m.end, bias, section_info))
}
