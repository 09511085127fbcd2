//! Symbolization of addresses in a live process.
//!
//! One job: given a PID and absolute addresses as that process sees them,
//! return a demangled function name, the module (file) it lives in and the
//! offset into the function.  It wraps blazesym, which reads ELF symbol
//! tables and DWARF of every mapping, and `/tmp/perf-PID.map` for JIT'd code
//! (Node started with `--perf-basic-prof`).
//!
//! Symbolize while the target is alive: the mappings are read from
//! `/proc/PID/maps` (and `/proc/PID/map_files/`) at the time of the call.

use blazesym::symbolize::{source, Input, Symbolized, Symbolizer as Blaze};
use blazesym::Pid;

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
            inner: Blaze::builder()
                .enable_demangling(true)
                .enable_code_info(false)
                .enable_inlined_fns(false)
                .build(),
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
        Ok(addrs
            .iter()
            .zip(syms.iter())
            .map(|(&addr, s)| match s {
                Symbolized::Sym(sym) => Frame {
                    addr,
                    name: Some(sym.name.to_string()),
                    module: sym.module.as_ref().map(|m| m.to_string_lossy().into_owned()),
                    offset: sym.offset as u64,
                },
                Symbolized::Unknown(_) => Frame { addr, name: None, module: None, offset: 0 },
            })
            .collect())
    }
}
