//! The memory map of a process: parsing `/proc/PID/maps` into [`Mapping`]s.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// Offset in the mapped file of the byte at `start`.
    pub offset: u64,
    pub inode: u64,
    /// Mapped executable (`x` permission).
    pub exec: bool,
    /// The mapped file as the process names it (a ` (deleted)` suffix
    /// removed); `None` for anonymous memory (heap, stacks, JIT code).
    pub path: Option<PathBuf>,
}

impl Mapping {
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.start && addr < self.end
    }

    /// The offset in the mapped file of `addr` (an address in this mapping).
    pub fn file_offset(&self, addr: u64) -> u64 {
        addr - self.start + self.offset
    }
}

/// Reads `/proc/PID/maps` (empty once the process has exited, even as a zombie).
pub fn read_maps(pid: u32) -> Result<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .with_context(|| format!("process {pid} is gone (reading /proc/{pid}/maps)"))?;
    Ok(text.lines().filter_map(parse_maps_line).collect())
}

/// Parses one `/proc/PID/maps` line (`None` when malformed).
pub fn parse_maps_line(line: &str) -> Option<Mapping> {
    let mut f = line.split_whitespace();
    let (range, perms, offset) = (f.next()?, f.next()?, f.next()?);
    let (_dev, inode) = (f.next()?, f.next()?);
    let path = f.collect::<Vec<_>>().join(" ");
    let (s, e) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        exec: perms.as_bytes().get(2) == Some(&b'x'),
        path: path.starts_with('/').then(|| PathBuf::from(path.trim_end_matches(" (deleted)"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_maps_lines() {
        let m = parse_maps_line("00400000-00c00000 r-xp 00001000 08:01 1234   /usr/bin/node").unwrap();
        assert_eq!((m.start, m.end, m.offset, m.inode, m.exec), (0x400000, 0xc00000, 0x1000, 1234, true));
        assert_eq!(m.path.as_deref(), Some(Path::new("/usr/bin/node")));
        assert_eq!(m.file_offset(0x400010), 0x1010);
        assert!(m.contains(0x400000) && !m.contains(0xc00000));
        let anon = parse_maps_line("7f00-7f10 rw-p 00000000 00:00 0 ").unwrap();
        assert!(anon.path.is_none() && !anon.exec);
        let heap = parse_maps_line("7f00-7f10 rw-p 00000000 00:00 0   [heap]").unwrap();
        assert!(heap.path.is_none());
        let gone = parse_maps_line("7f00-7f10 r-xp 00000000 08:01 77 /tmp/my lib.so (deleted)").unwrap();
        assert_eq!(gone.path.as_deref(), Some(Path::new("/tmp/my lib.so")));
        assert!(parse_maps_line("garbage").is_none());
    }
}
