//! The memory map of a process: `/proc/PID/maps` parsed into [`Mapping`]s,
//! and the mappings that must not be read (`VmFlags` in `/proc/PID/smaps`).

use std::collections::HashSet;

use anyhow::{Context, Result};

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    /// MAP_SHARED (`s`) rather than private copy-on-write (`p`).
    pub shared: bool,
    /// Offset in the mapped file.
    pub offset: u64,
    /// Inode of the mapped file, 0 for anonymous memory.
    pub inode: u64,
    /// Path, `[heap]`-style name, or empty for anonymous memory.
    pub name: String,
}

impl Mapping {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether it maps a file (as opposed to anonymous memory, the vDSO, ...).
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.name.starts_with('/')
    }
}

/// Reads `/proc/PID/maps`.
pub fn read_maps(pid: u32) -> Result<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .with_context(|| format!("cannot read the memory map of process {pid}"))?;
    Ok(parse_maps(&text))
}

/// Parses the text of `/proc/PID/maps` (malformed lines are skipped).
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mapping> {
    // "start-end perms offset dev inode   name": the name (which may contain
    // spaces) starts after the padding that follows the fifth field.
    let mut rest = line;
    let mut field = || {
        let s = rest.trim_start_matches(' ');
        let end = s.find(' ').unwrap_or(s.len());
        rest = &s[end..];
        &s[..end]
    };
    let range = field();
    let perms = field().as_bytes();
    let offset = field();
    let _dev = field();
    let inode = field();
    let name = rest.trim_start_matches(' ');
    let (start, end) = range.split_once('-')?;
    if perms.len() < 4 {
        return None;
    }
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        read: perms[0] == b'r',
        write: perms[1] == b'w',
        exec: perms[2] == b'x',
        shared: perms[3] == b's',
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        name: name.to_string(),
    })
}

/// Start addresses of the mappings whose contents must not be dumped:
/// `madvise(MADV_DONTDUMP)` (`dd`), I/O and PFN mappings (`io`, `pf`).
/// Read from `/proc/PID/smaps` before freezing (it costs a page-table walk).
pub fn no_dump_starts(pid: u32) -> HashSet<u64> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return HashSet::new();
    };
    let mut starts = HashSet::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if flags.split_whitespace().any(|f| matches!(f, "dd" | "io" | "pf")) {
                starts.extend(current);
            }
        } else if let Some(m) = parse_line(line) {
            current = Some(m.start);
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_lines() {
        let text = "\
55d0c0a00000-55d0c0a28000 r--p 00000000 fe:01 1311                       /usr/bin/my prog
7ffd1e9d0000-7ffd1e9f1000 rw-p 00000000 00:00 0                          [stack]
7f0000000000-7f0000001000 ---p 00000000 00:00 0 
7f1000000000-7f1000002000 rw-s 00001000 00:01 77                         /dev/zero (deleted)
";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 4);
        assert_eq!(maps[0].name, "/usr/bin/my prog");
        assert!(maps[0].read && !maps[0].write && !maps[0].exec && !maps[0].shared);
        assert_eq!((maps[0].start, maps[0].len(), maps[0].inode), (0x55d0c0a00000, 0x28000, 1311));
        assert!(maps[0].is_file());
        assert_eq!(maps[1].name, "[stack]");
        assert!(!maps[1].is_file());
        assert_eq!(maps[2].name, "");
        assert!(!maps[2].read);
        assert!(maps[3].shared && maps[3].offset == 0x1000);
    }

    #[test]
    fn reads_own_maps_and_flags() {
        let maps = read_maps(std::process::id()).unwrap();
        assert!(maps.iter().any(|m| m.name == "[stack]"));
        // Our own memory has no MADV_DONTDUMP mapping unless we make one.
        let len = 4 * 4096;
        // SAFETY: a fresh anonymous mapping, only passed to madvise/munmap.
        let p = unsafe {
            let p =
                libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            assert_eq!(libc::madvise(p, len, libc::MADV_DONTDUMP), 0);
            p
        };
        assert!(no_dump_starts(std::process::id()).contains(&(p as u64)));
        // SAFETY: unmapping what we mapped above.
        unsafe { libc::munmap(p, len) };
    }
}
