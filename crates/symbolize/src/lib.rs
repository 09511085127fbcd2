//! Symbolization of addresses in a live process.
//!
//! One job: given a PID and absolute addresses as that process sees them,
//! return a demangled function name, the module (file) it lives in and the
//! offset into the function.  It wraps blazesym, which reads ELF symbol
//! tables and DWARF of every mapping, and `/tmp/perf-PID.map` for JIT'd code
//! (Node started with `--perf-basic-prof`).
//!
//! [`Symbolizer::symbolize`] works on a live target: the mappings are read
//! from `/proc/PID/maps` (and `/proc/PID/map_files/`) at the time of the
//! call.  To name addresses after the target has exited, take a
//! [`Snapshot`] of its mappings while it lives ([`snapshot`]); JIT names
//! come from its perf map ([`perf_map`]), which outlives it.
//!
//! blazesym's DWARF reader reports functions whose code is split into
//! several address ranges (e.g. node's `uv__fs_work`) as starting at
//! address 0, which turns `uv__fs_work+0xe39` into `uv__fs_work+0x18b0589`;
//! such results are looked up again in the ELF symbol table, here, so every
//! caller gets the right offset.

pub mod maps;
pub mod perf_map;
pub mod snapshot;

use std::path::{Path, PathBuf};

use blazesym::symbolize::{source, Input, Symbolized, Symbolizer as Blaze};
use blazesym::Pid;

pub use maps::{read_maps, Mapping};
pub use perf_map::PerfMap;
pub use snapshot::{Module, Snapshot};

/// One symbolized address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The address that was asked about.
    pub addr: u64,
    /// Demangled function name, or `None` when no symbol covers the address.
    pub name: Option<String>,
    /// Path of the mapping the address falls in, when known.
    pub module: Option<String>,
    /// Offset of `addr` from the start of the function.
    pub offset: u64,
}

impl Frame {
    /// `name+0xoff` (or `name` at offset 0), falling back to `module+0xaddr`
    /// and then to the bare address.
    pub fn display(&self) -> String {
        match (&self.name, &self.module) {
            (Some(n), _) if self.offset == 0 => n.clone(),
            (Some(n), _) => format!("{n}+{:#x}", self.offset),
            (None, Some(m)) => format!("{}`{:#x}", short_module(m), self.addr),
            (None, None) => format!("{:#x}", self.addr),
        }
    }
}

/// The file name of a module path (`/usr/lib/x/libuv.so.1` → `libuv.so.1`).
pub fn short_module(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A symbolizer that caches parsed ELF/DWARF data between calls; keep one
/// around for the life of a tracing session.
pub struct Symbolizer {
    inner: Blaze,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    pub fn new() -> Self {
        Self {
            inner: Blaze::builder().enable_demangling(true).enable_code_info(false).enable_inlined_fns(false).build(),
        }
    }

    /// Symbolizes `addrs` (absolute addresses in process `pid`).  The result
    /// has one frame per address, in order; an address that cannot be
    /// symbolized gets `name: None`.  Fails only when the process is gone.
    pub fn symbolize(&self, pid: u32, addrs: &[u64]) -> anyhow::Result<Vec<Frame>> {
        if addrs.is_empty() {
            return Ok(Vec::new());
        }
        let mut process = source::Process::new(Pid::from(pid));
        process.perf_map = true;
        let src = source::Source::Process(process);
        let syms = self
            .inner
            .symbolize(&src, Input::AbsAddr(addrs))
            .map_err(|e| anyhow::anyhow!("symbolizing addresses of process {pid}: {e}"))?;
        let mut maps: Option<Vec<Mapping>> = None;
        Ok(addrs
            .iter()
            .zip(syms.iter())
            .map(|(&addr, s)| match s {
                Symbolized::Sym(sym) => {
                    let module = sym.module.as_ref().map(|m| m.to_string_lossy().into_owned());
                    // The split-range DWARF bug (see the top of this file).
                    let fixed = match sym.addr {
                        0 => self.live_file_symbol(
                            pid,
                            maps.get_or_insert_with(|| read_maps(pid).unwrap_or_default()),
                            addr,
                        ),
                        _ => None,
                    };
                    let (name, offset) = fixed.unwrap_or_else(|| (sym.name.to_string(), sym.offset as u64));
                    Frame { addr, name: Some(name), module, offset }
                }
                Symbolized::Unknown(_) => Frame { addr, name: None, module: None, offset: 0 },
            })
            .collect())
    }

    /// `(function, offset)` of `addr` from the file process `pid` maps
    /// there (read through `/proc/PID/map_files`, else `/proc/PID/root`).
    fn live_file_symbol(&self, pid: u32, maps: &[Mapping], addr: u64) -> Option<(String, u64)> {
        let m = maps.iter().find(|m| m.contains(addr))?;
        let path = m.path.as_ref()?;
        let via_map_files = PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end));
        let via_root =
            Path::new("/proc").join(pid.to_string()).join("root").join(path.strip_prefix("/").unwrap_or(path));
        [via_map_files, via_root].iter().find_map(|file| self.file_symbol(file, m.file_offset(addr)))
    }

    /// `(function, offset)` at `file_offset` in the ELF file `path`: DWARF
    /// first, the ELF symbol table when DWARF has nothing or reports the
    /// function at address 0 (split address ranges).
    pub fn file_symbol(&self, path: &Path, file_offset: u64) -> Option<(String, u64)> {
        [true, false].into_iter().find_map(|debug_syms| {
            let mut elf = source::Elf::new(path);
            elf.debug_syms = debug_syms;
            match self.inner.symbolize_single(&source::Source::Elf(elf), Input::FileOffset(file_offset)) {
                Ok(Symbolized::Sym(sym)) if sym.addr != 0 => Some((sym.name.to_string(), sym.offset as u64)),
                _ => None,
            }
        })
    }
}
