//! The traced process: attaching to a PID or starting a command held at its
//! first instruction, its memory mappings, and where its libuv lives (the
//! executable itself, as in node, or a libuv.so it maps or will load).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use procctl::Spawned;

use symbolize::read_maps;

use super::elf::ElfImage;

/// The process being traced.
pub struct Target {
    pub pid: u32,
    /// Set when prodtrace started the process (`-- CMD`).
    pub spawned: Option<Spawned>,
}

impl Target {
    /// An existing process (refused with one line when it is not a live
    /// user-space process we may trace: see `procctl::check_process`).
    pub fn attach(pid: u32) -> Result<Self> {
        procctl::check_process(pid, procctl::Use::Trace)?;
        Ok(Self { pid, spawned: None })
    }

    /// Starts `argv`, held at its first instruction until [`Target::resume`].
    pub fn spawn(argv: &[String]) -> Result<Self> {
        let s = procctl::spawn_stopped(argv)?;
        Ok(Self { pid: s.pid, spawned: Some(s) })
    }

    pub fn resume(&mut self) -> Result<()> {
        match &mut self.spawned {
            Some(s) => s.resume(),
            None => Ok(()),
        }
    }

    /// Whether the process still runs (reaps it if we started it).
    pub fn alive(&mut self) -> bool {
        match &mut self.spawned {
            Some(s) => matches!(s.try_wait(), Ok(None)),
            None => procctl::process_exists(self.pid),
        }
    }

    /// How the command we started ended (`exited with status 3`, `was
    /// killed by SIGSEGV`), once it has; `None` for a `-p` target.
    pub fn ended(&mut self) -> Option<String> {
        let s = self.spawned.as_mut()?;
        s.try_wait().ok().flatten().map(procctl::describe_exit)
    }

    /// A path that opens the target's view of `path` (its mount namespace);
    /// for its executable, `/proc/PID/exe`, which works even when the file
    /// was deleted or replaced since it started (a package upgrade).
    pub fn host_path(&self, path: &Path) -> PathBuf {
        if self.exe().is_ok_and(|exe| exe == path) {
            return PathBuf::from(format!("/proc/{}/exe", self.pid));
        }
        let via_root = PathBuf::from(format!("/proc/{}/root", self.pid)).join(path.strip_prefix("/").unwrap_or(path));
        if via_root.exists() {
            via_root
        } else {
            path.to_path_buf()
        }
    }

    /// The executable's path, as the process sees it.
    pub fn exe(&self) -> Result<PathBuf> {
        let link = std::fs::read_link(format!("/proc/{}/exe", self.pid))
            .with_context(|| format!("cannot read the executable of process {}", self.pid))?;
        let s = link.to_string_lossy();
        Ok(s.strip_suffix(" (deleted)").map(PathBuf::from).unwrap_or(link))
    }

    /// Load bias of `path` in the process (0 for non-PIE executables), if mapped.
    pub fn bias(&self, path: &Path, image: &ElfImage) -> Option<u64> {
        let maps = read_maps(self.pid).ok()?;
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        maps.iter()
            .find(|m| m.offset == 0 && m.path.as_deref().is_some_and(|p| p == path || p == canon))
            .map(|m| m.start.wrapping_sub(image.base_vaddr()))
    }

    /// `[lo, hi)` covering every mapping of `path`, if mapped.
    pub fn range_of(&self, path: &Path) -> Option<(u64, u64)> {
        let maps = read_maps(self.pid).ok()?;
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let ms: Vec<_> = maps.iter().filter(|m| m.path.as_deref().is_some_and(|p| p == path || p == canon)).collect();
        Some((ms.iter().map(|m| m.start).min()?, ms.iter().map(|m| m.end).max()?))
    }
}

/// The dynamic linker (ld.so) mapped in the process, if any.
pub fn dynamic_linker(target: &Target) -> Option<PathBuf> {
    read_maps(target.pid).ok()?.into_iter().filter_map(|m| m.path).find(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ld-linux") || n.starts_with("ld-musl"))
    })
}

fn defines_libuv(image: &ElfImage) -> bool {
    image.symbol("uv_queue_work").is_some()
}

/// The file (as the target names it) that holds the target's libuv.
///
/// Looks at the executable, then at every library it maps, then — for a
/// process held at exec, which has not loaded its libraries yet — at its
/// DT_NEEDED libraries, resolved like ld.so does (DT_RUNPATH/DT_RPATH,
/// LD_LIBRARY_PATH, the ld.so cache via `ldconfig -p`, default directories).
pub fn find_libuv(target: &Target) -> Result<PathBuf> {
    let exe = target.exe()?;
    let exe_image = ElfImage::open(&target.host_path(&exe))?;
    if defines_libuv(&exe_image) {
        return Ok(exe);
    }
    let maps = read_maps(target.pid)?;
    let mut mapped: Vec<PathBuf> = maps.iter().filter(|m| m.exec).filter_map(|m| m.path.clone()).collect();
    mapped.dedup();
    mapped.sort_by_key(|p| !p.to_string_lossy().contains("libuv"));
    for lib in &mapped {
        if ElfImage::open(&target.host_path(lib)).is_ok_and(|i| defines_libuv(&i)) {
            return Ok(lib.clone());
        }
    }
    for lib in needed_libraries(&exe_image, target) {
        if ElfImage::open(&target.host_path(&lib)).is_ok_and(|i| defines_libuv(&i)) {
            return Ok(lib);
        }
    }
    let comm = procctl::comm(target.pid).unwrap_or_else(|_| "?".into());
    bail!(
        "process {} ({comm}) has no libuv: neither {} nor any library it loads defines uv_queue_work \
         (prodtrace latency traces libuv's thread pool: node, or programs using libuv)",
        target.pid,
        exe.display()
    )
}

/// DT_NEEDED libraries of `exe`, transitively, resolved to paths.
fn needed_libraries(exe: &ElfImage, target: &Target) -> Vec<PathBuf> {
    let cache = ld_cache();
    let env_dirs: Vec<PathBuf> = std::fs::read(format!("/proc/{}/environ", target.pid))
        .ok()
        .and_then(|env| {
            env.split(|&b| b == 0)
                .find_map(|kv| kv.strip_prefix(b"LD_LIBRARY_PATH=").map(|v| String::from_utf8_lossy(v).into_owned()))
        })
        .map(|v| v.split(':').filter(|d| !d.is_empty()).map(PathBuf::from).collect())
        .unwrap_or_default();
    let defaults = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"];
    let mut found: Vec<PathBuf> = Vec::new();
    let mut queue: VecDeque<(Vec<String>, Vec<PathBuf>)> = VecDeque::from([(exe.needed(), exe.runpaths())]);
    while let Some((names, runpaths)) = queue.pop_front() {
        for name in names {
            let candidates = if name.contains('/') {
                vec![PathBuf::from(&name)]
            } else {
                runpaths
                    .iter()
                    .chain(env_dirs.iter())
                    .map(|d| d.join(&name))
                    .chain(cache.iter().filter(|(n, _)| *n == name).map(|(_, p)| p.clone()))
                    .chain(defaults.iter().map(|d| Path::new(d).join(&name)))
                    .collect()
            };
            let Some(path) = candidates.into_iter().find(|p| target.host_path(p).exists()) else { continue };
            if found.contains(&path) || found.len() > 256 {
                continue;
            }
            if let Ok(image) = ElfImage::open(&target.host_path(&path)) {
                queue.push_back((image.needed(), image.runpaths()));
            }
            found.push(path);
        }
    }
    found
}

/// `(soname, path)` pairs of the ld.so cache, from `ldconfig -p`.
fn ld_cache() -> Vec<(String, PathBuf)> {
    let Ok(out) = std::process::Command::new("ldconfig").arg("-p").output() else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("x86-64"))
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(' ')?;
            let path = rest.rsplit_once("=> ")?.1;
            Some((name.to_string(), PathBuf::from(path)))
        })
        .collect()
}
