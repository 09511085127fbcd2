//! Native frames: unwinding C/C++ code with the DWARF CFI (`.eh_frame`) of
//! the files an image maps, through the framehop crate.  Code without CFI
//! (V8's builtins and JIT code, which always keep frame pointers) is
//! unwound by frame pointer, by framehop's fallback or by the V8 walker;
//! [`NativeUnwinder::has_cfi`] tells the two apart (in a stripped binary,
//! code without CFI is how V8's embedded builtins are recognised).

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment};

use crate::image::{Image, Module as ImageModule};
use crate::memory::MemoryExt;

type Bytes = Arc<[u8]>;

/// Unwind sections and load layout of one ELF file.
struct ElfUnwindInfo {
    /// (p_offset, p_vaddr, p_filesz) of each PT_LOAD segment.
    loads: Vec<(u64, u64, u64)>,
    text: Option<Range<u64>>,
    got: Option<Range<u64>>,
    eh_frame: Option<(Range<u64>, Bytes)>,
    eh_frame_hdr: Option<(Range<u64>, Bytes)>,
}

/// The unwind sections of every file read so far (and which files have
/// none), by device and inode, for sessions that unwind many stacks.
#[derive(Default)]
pub struct ElfCache(HashMap<(u64, u64), Option<Arc<ElfUnwindInfo>>>);

impl ElfCache {
    fn get(&mut self, file: &Path) -> Option<Arc<ElfUnwindInfo>> {
        let meta = std::fs::metadata(file).ok()?;
        self.0.entry((meta.dev(), meta.ino())).or_insert_with(|| load_elf(file).map(Arc::new)).clone()
    }
}

/// A framehop unwinder over the executable mappings of an image.
pub struct NativeUnwinder {
    unwinder: UnwinderX86_64<Bytes>,
    cache: CacheX86_64,
    /// The unwind tables of each text mapping, to ask whether a PC has CFI.
    tables: Vec<CfiTable>,
}

/// `.eh_frame_hdr`'s search table and `.eh_frame` of one text mapping.
struct CfiTable {
    range: Range<u64>,
    bias: u64,
    info: Arc<ElfUnwindInfo>,
}

impl NativeUnwinder {
    /// Loads the CFI of every file `image` maps executable code from.
    pub fn new(image: &Image) -> NativeUnwinder {
        NativeUnwinder::new_cached(image, &mut ElfCache::default())
    }

    /// [`NativeUnwinder::new`], reading each file once per `cache`.
    pub fn new_cached(image: &Image, cache: &mut ElfCache) -> NativeUnwinder {
        let mut unwinder = UnwinderX86_64::new();
        let mut tables = Vec::new();
        for m in &image.modules {
            let Some(info) = cache.get(&m.file) else { continue };
            // Only the mapping of the text segment gets a module.
            let Some(text) = &info.text else { continue };
            let Some(bias) = load_bias(m, &info) else { continue };
            if !(m.start..m.end).contains(&(text.start.wrapping_add(bias))) {
                continue;
            }
            if let Some(module) = make_module(m, &info, bias) {
                unwinder.add_module(module);
                tables.push(CfiTable { range: m.start..m.end, bias, info: info.clone() });
            }
        }
        NativeUnwinder { unwinder, cache: CacheX86_64::new(), tables }
    }

    /// Whether a mapped file has CFI (an `.eh_frame` entry) for `pc`.
    pub fn has_cfi(&self, pc: u64) -> bool {
        use gimli::{BaseAddresses, EhFrame, EhFrameHdr, LittleEndian, UnwindSection};
        let Some(t) = self.tables.iter().find(|t| t.range.contains(&pc)) else { return false };
        let (Some((hdr_range, hdr)), Some((eh_range, eh))) = (&t.info.eh_frame_hdr, &t.info.eh_frame) else {
            return false;
        };
        let mut bases = BaseAddresses::default().set_eh_frame_hdr(hdr_range.start).set_eh_frame(eh_range.start);
        if let Some(text) = &t.info.text {
            bases = bases.set_text(text.start);
        }
        if let Some(got) = &t.info.got {
            bases = bases.set_got(got.start);
        }
        let Ok(parsed) = EhFrameHdr::new(hdr, LittleEndian).parse(&bases, 8) else { return false };
        let Some(table) = parsed.table() else { return false };
        let eh_frame = EhFrame::new(eh, LittleEndian);
        table.fde_for_address(&eh_frame, &bases, pc.wrapping_sub(t.bias), EhFrame::cie_from_offset).is_ok()
    }

    /// Unwinds one frame: from `regs` (ip of this frame in `address`),
    /// returns the caller's return address and updates `regs` to the
    /// caller's.  `None` at the end of the stack or when it cannot go on.
    pub fn step(&mut self, image: &Image, address: FrameAddress, regs: &mut UnwindRegsX86_64) -> Option<u64> {
        let mem = &*image.memory;
        let mut read = |a: u64| mem.u64(a).ok_or(());
        match self.unwinder.unwind_frame(address, regs, &mut self.cache, &mut read) {
            Ok(Some(ret)) if ret != 0 => Some(ret),
            _ => None,
        }
    }
}

/// Reads the unwind sections of an ELF file.
fn load_elf(path: &Path) -> Option<ElfUnwindInfo> {
    let file = File::open(path).ok()?;
    // SAFETY: read-only private mapping of a binary or library.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let elf = object::File::parse(&*map).ok()?;
    let section = |name: &str| elf.section_by_name(name).map(|s| (s.address()..s.address() + s.size(), s));
    let data = |name: &str| -> Option<(Range<u64>, Bytes)> {
        let (range, s) = section(name)?;
        Some((range, Arc::from(s.data().ok()?)))
    };
    Some(ElfUnwindInfo {
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

/// The load bias of mapping `m`, from the PT_LOAD segment holding its
/// file offset.
fn load_bias(m: &ImageModule, info: &ElfUnwindInfo) -> Option<u64> {
    let &(p_offset, p_vaddr, _) =
        info.loads.iter().find(|(off, _, size)| m.file_offset >= *off && m.file_offset < off + (*size).max(1))?;
    Some(m.start.wrapping_sub(p_vaddr.wrapping_add(m.file_offset - p_offset)))
}

fn make_module(m: &ImageModule, info: &ElfUnwindInfo, bias: u64) -> Option<Module<Bytes>> {
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
    Some(Module::new(m.path.clone(), m.start..m.end, bias, section_info))
}
