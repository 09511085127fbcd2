//! JIT symbols from `/tmp/perf-PID.map`, the file runtimes such as node
//! (`--perf-basic-prof`) write for perf: one `START SIZE NAME` line (hex
//! numbers, optional `0x`) per compiled function.  The file outlives the
//! process, so JIT frames can be named after it has exited.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// The contents of `path` if it is a regular file (opened without blocking).
fn read_regular(path: &str) -> Option<String> {
    let mut file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    Some(text)
}

/// A parsed perf map.
#[derive(Clone, Debug, Default)]
pub struct PerfMap {
    /// `(start, size, name)` in file order.
    entries: Vec<(u64, u64, String)>,
}

impl PerfMap {
    /// Reads `/tmp/perf-PID.map`; empty when there is none, or when it is
    /// not a regular file (anyone can create that name in /tmp: a FIFO
    /// there must not block the reader forever, nor a device feed it).
    pub fn read(pid: u32) -> Self {
        Self::parse(&read_regular(&format!("/tmp/perf-{pid}.map")).unwrap_or_default())
    }

    /// Parses perf map text, skipping malformed lines.
    pub fn parse(text: &str) -> Self {
        let entries = text
            .lines()
            .filter_map(|line| {
                let mut f = line.splitn(3, ' ');
                let start = u64::from_str_radix(f.next()?.trim_start_matches("0x"), 16).ok()?;
                let size = u64::from_str_radix(f.next()?.trim_start_matches("0x"), 16).ok()?;
                Some((start, size, f.next()?.to_string()))
            })
            .collect();
        Self { entries }
    }

    /// The function covering `addr` and the offset into it.  The latest
    /// line wins: a runtime may reuse memory of code it freed.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        self.entries
            .iter()
            .rev()
            .find(|(start, size, _)| addr >= *start && addr - start < *size)
            .map(|(start, _, name)| (name.as_str(), addr - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_map_lines() {
        let map =
            PerfMap::parse("7f00 10 JS:~a file.js:1\n7f10 20 JS:*b file.js:2\nbad line\n0x8000 0x8 LazyCompile:c\n");
        assert_eq!(map.lookup(0x7f14), Some(("JS:*b file.js:2", 4)));
        assert_eq!(map.lookup(0x7f00), Some(("JS:~a file.js:1", 0)));
        assert_eq!(map.lookup(0x8007), Some(("LazyCompile:c", 7)));
        assert_eq!(map.lookup(0x8008), None);
        assert_eq!(map.lookup(0x7e00), None);
        // Reused memory: the later line names it.
        let reused = PerfMap::parse("1000 10 JS:old\n1000 10 JS:new\n");
        assert_eq!(reused.lookup(0x1004), Some(("JS:new", 4)));
    }

    /// A FIFO where the perf map should be (anyone can create one in /tmp)
    /// reads as no perf map, at once: it used to block the reader forever.
    #[test]
    fn a_fifo_is_not_a_perf_map() {
        let pid = u32::MAX - 7; // above any pid_max
        let path = format!("/tmp/perf-{pid}.map");
        let _ = std::fs::remove_file(&path);
        let c = std::ffi::CString::new(path.clone()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let map = PerfMap::read(pid);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(map.lookup(0x1000), None);
        assert!(map.entries.is_empty());
    }
}
