//! An ELF file opened for probe placement: symbols by name, code bytes at a
//! virtual address, the file offset a uprobe needs, and the dynamic section
//! entries (DT_NEEDED, DT_RUNPATH) used to find a program's libuv.so.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use object::read::elf::ElfFile64;
use object::{elf, Object, ObjectSection, ObjectSegment, ObjectSymbol, SectionKind};

/// A symbol: mangled name, virtual address, size.
#[derive(Clone, Debug)]
pub struct Sym {
    pub name: String,
    pub addr: u64,
    pub size: u64,
}

/// A memory-mapped ELF file.
pub struct ElfImage {
    /// Path the file was opened by.
    pub path: PathBuf,
    map: memmap2::Mmap,
}

impl ElfImage {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: the mapping is read-only; binaries being traced are not
        // rewritten in place while we look at them.
        let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
        let image = Self { path: path.to_path_buf(), map };
        image.file()?;
        Ok(image)
    }

    fn file(&self) -> Result<ElfFile64<'_>> {
        ElfFile64::parse(&*self.map).with_context(|| format!("{} is not a 64-bit ELF file", self.path.display()))
    }

    /// Defined symbols (symbol table, then dynamic symbol table) whose
    /// mangled name satisfies `pred`.
    pub fn symbols(&self, pred: impl Fn(&str) -> bool) -> Vec<Sym> {
        let Ok(file) = self.file() else { return Vec::new() };
        let mut out: Vec<Sym> = Vec::new();
        for sym in file.symbols().chain(file.dynamic_symbols()) {
            if sym.is_undefined() || sym.address() == 0 {
                continue;
            }
            let Ok(name) = sym.name() else { continue };
            if pred(name) && !out.iter().any(|s| s.name == name && s.addr == sym.address()) {
                out.push(Sym { name: name.to_string(), addr: sym.address(), size: sym.size() });
            }
        }
        out
    }

    /// The defined symbol named exactly `name`.
    pub fn symbol(&self, name: &str) -> Option<Sym> {
        self.symbols(|n| n == name).into_iter().next()
    }

    /// Up to `len` bytes of the file's contents at virtual address `vaddr`.
    pub fn bytes_at(&self, vaddr: u64, len: u64) -> Option<&[u8]> {
        let file = self.file().ok()?;
        for seg in file.segments() {
            let (start, size) = (seg.address(), seg.size());
            if vaddr >= start && vaddr < start + size {
                let (foff, fsize) = seg.file_range();
                let rel = vaddr - start;
                if rel >= fsize {
                    return None;
                }
                let end = (rel + len).min(fsize);
                return self.map.get((foff + rel) as usize..(foff + end) as usize);
            }
        }
        None
    }

    /// The 8-byte little-endian word at `vaddr`.
    pub fn u64_at(&self, vaddr: u64) -> Option<u64> {
        let b = self.bytes_at(vaddr, 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    /// File offset of virtual address `vaddr` (what the kernel's uprobe API takes).
    pub fn file_offset(&self, vaddr: u64) -> Option<u64> {
        let file = self.file().ok()?;
        file.segments().find_map(|seg| {
            let (foff, fsize) = seg.file_range();
            (vaddr >= seg.address() && vaddr < seg.address() + fsize).then(|| vaddr - seg.address() + foff)
        })
    }

    /// Whether `vaddr` lies in an executable (text) section.
    pub fn is_code(&self, vaddr: u64) -> bool {
        let Ok(file) = self.file() else { return false };
        file.sections().any(|s| s.kind() == SectionKind::Text && vaddr >= s.address() && vaddr < s.address() + s.size())
    }

    /// Virtual address of the loadable segment that starts at file offset 0
    /// (0 for shared libraries and PIE, 0x400000 for classic executables):
    /// load bias = (start of the mapping with offset 0) - this.
    pub fn base_vaddr(&self) -> u64 {
        let Ok(file) = self.file() else { return 0 };
        file.segments().filter(|s| s.file_range().0 == 0).map(|s| s.address()).min().unwrap_or(0)
    }

    /// `[lo, hi)`: the virtual addresses the loadable segments span (add
    /// the load bias for the run-time range of the file's own image).
    pub fn load_span(&self) -> Option<(u64, u64)> {
        let file = self.file().ok()?;
        let lo = file.segments().map(|s| s.address()).min()?;
        let hi = file.segments().map(|s| s.address() + s.size()).max()?;
        Some((lo, hi))
    }

    /// DT_NEEDED entries (library sonames).
    pub fn needed(&self) -> Vec<String> {
        self.dynamic_strings(elf::DT_NEEDED)
    }

    /// DT_RUNPATH and DT_RPATH directories (`:`-separated lists split, `$ORIGIN` expanded).
    pub fn runpaths(&self) -> Vec<PathBuf> {
        let origin = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut dirs = Vec::new();
        for tag in [elf::DT_RUNPATH, elf::DT_RPATH] {
            for list in self.dynamic_strings(tag) {
                for d in list.split(':').filter(|d| !d.is_empty()) {
                    let d = d.replace("${ORIGIN}", "$ORIGIN").replace("$ORIGIN", &origin.to_string_lossy());
                    dirs.push(PathBuf::from(d));
                }
            }
        }
        dirs
    }

    fn dynamic_strings(&self, tag: elf::DynamicTag) -> Vec<String> {
        let Ok(file) = self.file() else { return Vec::new() };
        let Ok(table) = file.elf_dynamic_table() else { return Vec::new() };
        table
            .iter()
            .filter(|d| d.tag == tag)
            .filter_map(|d| table.string(d).ok())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }
}
