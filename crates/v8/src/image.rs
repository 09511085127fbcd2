//! A process image: what the stack reader needs from a stopped process or
//! a core file — its memory, the files it maps (modules) and the registers
//! of each thread.  Built by the caller for a live process (see
//! `LiveMemory` and `procctl::freeze`) or by [`crate::core::open`].

use std::path::PathBuf;

use crate::memory::Memory;

/// One file mapping of the image.
#[derive(Clone, Debug)]
pub struct Module {
    pub start: u64,
    pub end: u64,
    /// Offset in the file of the byte at `start`.
    pub file_offset: u64,
    /// The path as the target names it (`/usr/bin/node`).
    pub path: String,
    /// A path that reads that file here (the same path, `/proc/PID/map_files/..`
    /// for a live process, or a replacement given by the user for a core).
    pub file: PathBuf,
}

impl Module {
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.start && addr < self.end
    }
}

/// x86_64 general purpose registers, in `struct user_regs_struct` order
/// (the `NT_PRSTATUS` register set).
#[derive(Clone, Debug, Default)]
pub struct Regs(pub [u64; 27]);

impl Regs {
    /// Parses a `user_regs_struct` (27 little-endian u64s).
    pub fn from_bytes(b: &[u8]) -> Option<Regs> {
        if b.len() < 27 * 8 {
            return None;
        }
        let mut r = [0u64; 27];
        for (i, v) in r.iter_mut().enumerate() {
            *v = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().ok()?);
        }
        Some(Regs(r))
    }
    pub fn ip(&self) -> u64 {
        self.0[16]
    }
    pub fn sp(&self) -> u64 {
        self.0[19]
    }
    pub fn bp(&self) -> u64 {
        self.0[4]
    }
    /// A register by its x86_64 encoding (0 = rax, ..., 4 = rsp, 5 = rbp,
    /// ..., 15 = r15), the numbering V8's `v8dbg_*Register` constants use.
    pub fn by_code(&self, code: i64) -> Option<u64> {
        const IDX: [usize; 16] = [10, 11, 12, 5, 19, 4, 13, 14, 9, 8, 7, 6, 3, 2, 1, 0];
        IDX.get(usize::try_from(code).ok()?).map(|&i| self.0[i])
    }
}

/// One thread and its registers.
#[derive(Clone, Debug)]
pub struct Thread {
    pub tid: u32,
    /// The thread's name (`/proc/PID/task/TID/comm`), when known.
    pub name: Option<String>,
    pub regs: Regs,
}

/// A stopped process or a core file.
pub struct Image {
    pub pid: u32,
    pub memory: Box<dyn Memory>,
    /// File mappings, in address order.
    pub modules: Vec<Module>,
    /// Threads, the main thread first.
    pub threads: Vec<Thread>,
    /// Anonymous executable memory (JIT code), when known: `(start, end)`.
    /// Empty means "unknown": then any address outside the modules may be
    /// JIT code.
    pub anon_exec: Vec<(u64, u64)>,
}

impl Image {
    /// The module mapping `addr`.
    pub fn module_at(&self, addr: u64) -> Option<&Module> {
        let i = self.modules.partition_point(|m| m.end <= addr);
        self.modules.get(i).filter(|m| m.contains(addr))
    }
}
