//! A snapshot of the files a process maps, taken while it lives, to name
//! its addresses after it has exited (a short command whose stack or work
//! items were recorded but are reported later).
//!
//! Each mapped file is remembered with a path that will still read it: its
//! own path when that is the very file mapped (same inode), otherwise an
//! open descriptor on `/proc/PID/map_files/START-END` or
//! `/proc/PID/root/PATH` — which covers files deleted or replaced since
//! they were loaded and files in another mount namespace.  Anonymous code
//! (JIT) is named from the perf map, which outlives the process.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::maps::{read_maps, Mapping};
use crate::perf_map::PerfMap;
use crate::{Frame, Symbolizer};

/// The mappings of a process at one moment, with their files kept readable.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pid: u32,
    modules: Vec<Module>,
}

/// One mapping of a [`Snapshot`].
#[derive(Clone, Debug)]
pub struct Module {
    pub mapping: Mapping,
    file: Option<Arc<ModuleFile>>,
}

/// A path that reads a mapped file, and the descriptor it goes through.
#[derive(Debug)]
struct ModuleFile {
    path: PathBuf,
    _open: Option<File>,
}

impl Module {
    /// A path that reads the mapped file now (`None` for anonymous memory).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }
}

impl Snapshot {
    /// Reads the mappings of `pid`; fails when it is gone or has exited
    /// (a zombie has no mappings).
    pub fn take(pid: u32) -> Result<Self> {
        let maps = read_maps(pid)?;
        if maps.is_empty() {
            bail!("process {pid} has exited");
        }
        let mut files: HashMap<(PathBuf, u64), Arc<ModuleFile>> = HashMap::new();
        let modules = maps
            .into_iter()
            .map(|mapping| {
                let file = mapping.path.as_ref().map(|path| {
                    files
                        .entry((path.clone(), mapping.inode))
                        .or_insert_with(|| Arc::new(open_mapped(pid, &mapping, path)))
                        .clone()
                });
                Module { mapping, file }
            })
            .collect();
        Ok(Self { pid, modules })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Every mapping, in address order.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The mapping holding `addr`.
    pub fn module_at(&self, addr: u64) -> Option<&Module> {
        self.modules.iter().find(|m| m.mapping.contains(addr))
    }

    /// Names `addrs` from the snapshot's files (and the perf map for
    /// anonymous memory), whether or not the process still runs.  One frame
    /// per address, in order; `module` is the mapped file's path.
    pub fn symbolize(&self, symbolizer: &Symbolizer, addrs: &[u64]) -> Vec<Frame> {
        let mut perf_map: Option<PerfMap> = None;
        addrs
            .iter()
            .map(|&addr| match self.module_at(addr) {
                Some(m @ Module { file: Some(file), .. }) => {
                    let module = m.mapping.path.as_ref().map(|p| p.to_string_lossy().into_owned());
                    match symbolizer.file_symbol(&file.path, m.mapping.file_offset(addr)) {
                        Some((name, offset)) => Frame { addr, name: Some(name), module, offset },
                        None => Frame { addr, name: None, module, offset: 0 },
                    }
                }
                _ => {
                    let map = perf_map.get_or_insert_with(|| PerfMap::read(self.pid));
                    match map.lookup(addr) {
                        Some((name, offset)) => Frame { addr, name: Some(name.to_string()), module: None, offset },
                        None => Frame { addr, name: None, module: None, offset: 0 },
                    }
                }
            })
            .collect()
    }
}

/// A readable path for the file `mapping` maps: `path` itself when it is
/// that file, else a descriptor kept open on the process's view of it.
fn open_mapped(pid: u32, mapping: &Mapping, path: &Path) -> ModuleFile {
    if std::fs::metadata(path).is_ok_and(|md| md.ino() == mapping.inode) {
        return ModuleFile { path: path.to_path_buf(), _open: None };
    }
    let via_root = Path::new("/proc").join(pid.to_string()).join("root").join(path.strip_prefix("/").unwrap_or(path));
    let opened = File::open(format!("/proc/{pid}/map_files/{:x}-{:x}", mapping.start, mapping.end))
        .or_else(|_| File::open(via_root));
    match opened {
        Ok(file) => {
            ModuleFile { path: PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())), _open: Some(file) }
        }
        Err(_) => ModuleFile { path: path.to_path_buf(), _open: None },
    }
}
