//! Finding snooping targets in /proc: which processes map which ELF files
//! carrying bunyan probes (cached per file by device and inode), how a spec
//! (`PID`, `NAME`, `*`) selects processes, and reading probe semaphores.

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{bail, Context, Result};

use crate::notes::{bunyan_probes, Probe};

/// What `bunyan -p` was asked to snoop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// These process IDs (`-p 123` or `-p 123,456`).
    Pids(Vec<i32>),
    /// Processes whose name (comm) equals, or whose command line contains,
    /// this string (like node-bunyan's `pgrep -f`).
    Name(String),
    /// Every process mapping a file with bunyan probes (`-p '*'`).
    All,
}

impl Spec {
    /// Parses `*`, a PID (or comma-separated PIDs) or a name.
    pub fn parse(spec: &str) -> Result<Spec> {
        let spec = spec.trim();
        if spec.is_empty() {
            bail!("empty process spec: give a PID, a process name or '*'");
        }
        if spec == "*" {
            return Ok(Spec::All);
        }
        if spec.split(',').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            let pids = spec
                .split(',')
                .map(|p| p.parse::<i32>().ok().filter(|&n| n > 0).with_context(|| format!("invalid PID {p:?}")))
                .collect::<Result<_>>()?;
            return Ok(Spec::Pids(pids));
        }
        Ok(Spec::Name(spec.to_string()))
    }
}

/// A file identity: (device "maj:min", inode).
pub(crate) type FileKey = (String, u64);

/// One line of /proc/PID/maps.
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    writable: bool,
    key: FileKey,
}

fn maps(pid: i32) -> std::io::Result<Vec<Mapping>> {
    let text = fs::read_to_string(format!("/proc/{pid}/maps"))?;
    Ok(text.lines().filter_map(parse_maps_line).collect())
}

fn parse_maps_line(line: &str) -> Option<Mapping> {
    let mut f = line.split_ascii_whitespace();
    let (range, perms, offset, dev, inode) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    let inode: u64 = inode.parse().ok()?;
    if inode == 0 {
        return None;
    }
    let (s, e) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        writable: perms.as_bytes().get(1) == Some(&b'w'),
        key: (dev.to_string(), inode),
    })
}

/// A file with bunyan probes as mapped by one process.
#[derive(Clone, Debug)]
pub(crate) struct ProbedFile {
    pub key: FileKey,
    /// `/proc/PID/map_files/START-END`: reaches the file even if it was
    /// deleted or lives in another mount namespace.
    pub path: PathBuf,
}

/// Remembers, per file, whether it carries bunyan probes.
#[derive(Default)]
pub(crate) struct ProbeCache {
    files: HashMap<FileKey, Arc<Vec<Probe>>>,
}

impl ProbeCache {
    fn probes(&mut self, key: &FileKey, path: &Path) -> Arc<Vec<Probe>> {
        if let Some(p) = self.files.get(key) {
            return p.clone();
        }
        // Unreadable or non-ELF files simply have no probes.
        let probes = Arc::new(bunyan_probes(path).unwrap_or_default());
        self.files.insert(key.clone(), probes.clone());
        probes
    }

    /// The files mapped by `pid` that carry bunyan probes.
    pub fn probed_files(&mut self, pid: i32) -> std::io::Result<Vec<ProbedFile>> {
        let mut out: Vec<ProbedFile> = Vec::new();
        for m in maps(pid)? {
            if out.iter().any(|f| f.key == m.key) {
                continue;
            }
            let path = PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end));
            if !self.probes(&m.key, &path).is_empty() {
                out.push(ProbedFile { key: m.key, path });
            }
        }
        Ok(out)
    }
}

/// Every process ID in /proc, except this process.
pub(crate) fn all_pids() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).filter(|&p| p != me).collect()
}

/// Whether `pid` matches a `-p NAME` spec: its comm equals `name`, or its
/// command line (arguments joined by spaces) contains it.
pub(crate) fn name_matches(pid: i32, name: &str) -> bool {
    if let Ok(comm) = fs::read_to_string(format!("/proc/{pid}/comm")) {
        if comm.trim_end() == name {
            return true;
        }
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) => {
            let cmd: Vec<u8> = raw.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
            String::from_utf8_lossy(&cmd).contains(name)
        }
        Err(_) => false,
    }
}

/// Whether `pid` is still running (exists and is not a zombie).
pub(crate) fn alive(pid: i32) -> bool {
    procctl::process_exists(pid as u32)
}

/// The command name of a process, or "?".
pub(crate) fn comm(pid: i32) -> String {
    procctl::comm(pid as u32).unwrap_or_else(|_| "?".into())
}

/// Why an explicitly named process cannot be snooped at all (it is gone, a
/// zombie, a kernel thread), in one sentence; None if it can be looked at.
pub(crate) fn unsnoopable(pid: i32) -> Option<String> {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Some(format!("process {pid} not found (no such process)"));
    };
    let name = comm(pid);
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_ascii_whitespace().collect();
    // Fields after the comm: state ppid pgrp session tty tpgid flags ...
    if matches!(procctl::stat_state(&stat), Some('Z' | 'X')) {
        let parent = fields.get(1).copied().unwrap_or("?");
        return Some(format!(
            "process {pid} ({name}) is a zombie: it has exited and its parent (PID {parent}) has not reaped it; there is nothing to snoop"
        ));
    }
    const PF_KTHREAD: u64 = 0x0020_0000;
    if fields.get(6).and_then(|f| f.parse::<u64>().ok()).is_some_and(|f| f & PF_KTHREAD != 0) {
        return Some(format!("process {pid} ({name}) is a kernel thread: it has no user space and no probes"));
    }
    None
}

/// The error for a process whose memory map cannot be read.
pub(crate) fn maps_error(pid: i32, e: std::io::Error) -> anyhow::Error {
    if let Some(why) = unsnoopable(pid) {
        return anyhow::anyhow!(why);
    }
    let name = comm(pid);
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        let why = if !procctl::caps::effective().has(procctl::caps::CAP_SYS_PTRACE) {
            "reading another user's process needs CAP_SYS_PTRACE, which this process lacks (run it as root)".to_string()
        } else {
            "the kernel refuses it even with CAP_SYS_PTRACE: the process is out of this user namespace's reach or \
             protected by a security module (e.g. the init process of a container host); it cannot be snooped from here"
                .to_string()
        };
        return anyhow::anyhow!("process {pid} ({name}): permission denied reading /proc/{pid}/maps: {why}");
    }
    anyhow::Error::new(e).context(format!("process {pid} ({name}): reading /proc/{pid}/maps"))
}

/// A bunyan probe's semaphore in a live process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Semaphore {
    /// The probe name (`log-debug`).
    pub probe: String,
    /// Its address in the process.
    pub address: u64,
    /// Its current value: how many tracers have the probe enabled.
    pub value: u16,
}

/// The semaphores of every bunyan probe in every file `pid` maps, read
/// from /proc/PID/mem (needs ptrace rights over the process, e.g. root).
pub fn semaphores(pid: i32) -> Result<Vec<Semaphore>> {
    let mappings = maps(pid).with_context(|| format!("reading /proc/{pid}/maps (no such process?)"))?;
    let mem = fs::File::open(format!("/proc/{pid}/mem")).with_context(|| format!("opening /proc/{pid}/mem"))?;
    let mut cache = ProbeCache::default();
    let mut out = Vec::new();
    for file in cache.probed_files(pid)? {
        for probe in cache.probes(&file.key, &file.path).iter() {
            let Some(off) = probe.semaphore_offset else {
                continue;
            };
            // The semaphore lives in the writable data segment; a read-only
            // mapping may cover the same file page too.
            let Some(m) = mappings
                .iter()
                .find(|m| m.writable && m.key == file.key && off >= m.offset && off < m.offset + (m.end - m.start))
            else {
                continue;
            };
            let address = m.start + (off - m.offset);
            let mut buf = [0u8; 2];
            mem.read_exact_at(&mut buf, address)
                .with_context(|| format!("reading the {} semaphore of process {pid} at {address:#x}", probe.name))?;
            out.push(Semaphore { probe: probe.name.clone(), address, value: u16::from_ne_bytes(buf) });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(Spec::parse("*").unwrap(), Spec::All);
        assert_eq!(Spec::parse("12").unwrap(), Spec::Pids(vec![12]));
        assert_eq!(Spec::parse("12,34").unwrap(), Spec::Pids(vec![12, 34]));
        assert_eq!(Spec::parse("log-service").unwrap(), Spec::Name("log-service".into()));
        assert!(Spec::parse("").is_err());
        assert!(Spec::parse("0").is_err());
    }

    #[test]
    fn maps_lines() {
        let m = parse_maps_line("7f00-7f10 r-xp 00001000 fd:01 1234 /usr/lib/x (deleted)").unwrap();
        assert_eq!((m.start, m.end, m.offset, m.key), (0x7f00, 0x7f10, 0x1000, ("fd:01".into(), 1234)));
        assert!(!m.writable);
        assert!(parse_maps_line("7f20-7f30 rw-p 00002000 fd:01 1234 /usr/lib/x").unwrap().writable);
        assert!(parse_maps_line("7f00-7f10 rw-p 00000000 00:00 0 [heap]").is_none());
    }
}
