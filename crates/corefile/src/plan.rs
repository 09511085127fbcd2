//! What goes into the core: one or more `PT_LOAD` segments per mapping, and
//! the memory ranges to copy into them.
//!
//! The policy follows the kernel's `coredump_filter` (read from
//! `/proc/PID/coredump_filter`, default 0x33) but works page by page, using
//! `/proc/PID/pagemap`, where the kernel dumps whole mappings:
//!
//! * anonymous private memory: only pages that exist (present or swapped).
//!   A page never touched reads as zero, so it is left out: either as a
//!   sparse hole inside a segment or, for long runs, as a segment with
//!   `p_filesz = 0` (gdb reads those as zeros);
//! * private file mappings: only the pages the process modified (anonymous
//!   copy-on-write pages) plus the ELF header page (build ID); unmodified
//!   pages are read by gdb from the file named in `NT_FILE`;
//! * shared memory (anonymous shared, SysV, memfd): whole, since pages of a
//!   shared object may exist without being mapped in this process;
//! * shared file mappings: nothing unless filter bit 3 asks for them;
//! * the vDSO: whole (gdb needs it to unwind through signal frames);
//! * unreadable (`PROT_NONE`) reservations, `[vvar]`, device and
//!   `MADV_DONTDUMP` mappings: a segment with `p_filesz = 0`;
//! * `[vsyscall]`: left out (fixed address, known to gdb).

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result};

use crate::maps::Mapping;

pub const PAGE: u64 = 4096;
/// Anonymous runs of missing pages shorter than this stay inside a segment
/// (as a sparse hole) rather than splitting it.
const MERGE_GAP: u64 = 16 * PAGE;
/// Longest single copy: bounds the chunk buffer of direct mode.
pub const MAX_COPY: u64 = 16 << 20;

const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
const PM_FILE: u64 = 1 << 61;

/// coredump_filter bits (see core(5)).
const ANON_PRIVATE: u32 = 1 << 0;
const ANON_SHARED: u32 = 1 << 1;
const MAPPED_PRIVATE: u32 = 1 << 2;
const MAPPED_SHARED: u32 = 1 << 3;
const ELF_HEADERS: u32 = 1 << 4;
/// The kernel's default filter.
pub const DEFAULT_FILTER: u32 = 0x33;

/// A `PT_LOAD` segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    /// Bytes of file data (0 or `memsz`).
    pub filesz: u64,
    /// Offset of the data relative to the start of the data area.
    pub data_off: u64,
    /// PF_R | PF_W | PF_X.
    pub flags: u32,
}

/// A range of target memory copied to `data_off` (relative to the data area).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Copy {
    pub addr: u64,
    pub len: u64,
    pub data_off: u64,
}

/// The layout of the memory part of a core.
#[derive(Debug, Default)]
pub struct Plan {
    pub segments: Vec<Segment>,
    pub copies: Vec<Copy>,
    /// Size of the data area (holes included).
    pub data_len: u64,
    /// Bytes actually copied from the target.
    pub copy_bytes: u64,
}

/// What to dump of one mapping.
enum Take {
    Nothing,
    Whole,
    /// Pages selected by the pagemap: anonymous ones (`anon_only`, for
    /// private file mappings) or every existing one; optionally the first.
    Pages {
        anon_only: bool,
        first: bool,
    },
}

/// Builds the plan for `maps` of process `pid`.
pub fn plan(pid: u32, maps: &[Mapping], filter: u32, no_dump: &HashSet<u64>) -> Result<Plan> {
    let pagemap =
        File::open(format!("/proc/{pid}/pagemap")).with_context(|| format!("cannot open /proc/{pid}/pagemap"))?;
    let mut plan = Plan::default();
    for m in maps {
        if m.name == "[vsyscall]" {
            continue;
        }
        let flags = (u32::from(m.read) << 2) | (u32::from(m.write) << 1) | u32::from(m.exec); // PF_R, PF_W, PF_X
        match take(pid, m, filter, no_dump) {
            Take::Nothing => plan.push_empty(m.start, m.end, flags),
            Take::Whole => plan.push_data(m.start, m.end, flags, &[(m.start, m.end)]),
            Take::Pages { anon_only, first } => {
                let mut runs =
                    page_runs(&pagemap, m, anon_only).with_context(|| format!("cannot read /proc/{pid}/pagemap"))?;
                if first && !matches!(runs.first(), Some(r) if r.0 == m.start) {
                    runs.insert(0, (m.start, m.start + PAGE));
                    merge_adjacent(&mut runs);
                }
                plan.push_runs(m, flags, &runs);
            }
        }
    }
    Ok(plan)
}

/// The policy for one mapping (see the module comment).
fn take(pid: u32, m: &Mapping, filter: u32, no_dump: &HashSet<u64>) -> Take {
    let device = m.name.starts_with("/dev/") && !m.name.starts_with("/dev/shm/") && !m.name.starts_with("/dev/zero");
    if !m.read || m.name.starts_with("[vvar") || device || no_dump.contains(&m.start) {
        return Take::Nothing;
    }
    if m.name == "[vdso]" {
        return Take::Whole;
    }
    if m.shared {
        // Shared memory objects have no name on disk any more (or never had).
        let anon = !m.is_file()
            || m.name.ends_with(" (deleted)")
            || m.name.starts_with("/SYSV")
            || m.name.starts_with("/memfd:");
        let bit = if anon { ANON_SHARED } else { MAPPED_SHARED };
        return if filter & bit != 0 { Take::Whole } else { Take::Nothing };
    }
    if !m.is_file() {
        return if filter & ANON_PRIVATE != 0 { Take::Pages { anon_only: false, first: false } } else { Take::Nothing };
    }
    if filter & MAPPED_PRIVATE != 0 {
        return Take::Whole;
    }
    let first = filter & ELF_HEADERS != 0 && m.offset == 0 && starts_with_elf_magic(pid, m.start);
    if filter & ANON_PRIVATE != 0 {
        Take::Pages { anon_only: true, first }
    } else if first {
        Take::Pages { anon_only: true, first: true }
    } else {
        Take::Nothing
    }
}

impl Plan {
    fn push_empty(&mut self, start: u64, end: u64, flags: u32) {
        self.segments.push(Segment { vaddr: start, memsz: end - start, filesz: 0, data_off: self.data_len, flags });
    }

    /// A segment `[start, end)` with file data, of which the `copies`
    /// ranges are read from the target (the rest is a sparse hole).
    fn push_data(&mut self, start: u64, end: u64, flags: u32, copies: &[(u64, u64)]) {
        let base = self.data_len;
        self.segments.push(Segment { vaddr: start, memsz: end - start, filesz: end - start, data_off: base, flags });
        for &(a, b) in copies {
            let mut a = a;
            while a < b {
                let len = (b - a).min(MAX_COPY);
                self.copies.push(Copy { addr: a, len, data_off: base + (a - start) });
                self.copy_bytes += len;
                a += len;
            }
        }
        self.data_len += end - start;
    }

    /// Segments for mapping `m` given its runs of wanted pages: runs closer
    /// than [`MERGE_GAP`] share a segment. In an anonymous mapping the pages
    /// between them are holes (they read as zero); in a file mapping they are
    /// copied (they hold file data).
    fn push_runs(&mut self, m: &Mapping, flags: u32, runs: &[(u64, u64)]) {
        let mut at = m.start;
        let mut i = 0;
        while i < runs.len() {
            let mut j = i;
            while j + 1 < runs.len() && runs[j + 1].0 - runs[j].1 < MERGE_GAP {
                j += 1;
            }
            let (start, end) = (runs[i].0, runs[j].1);
            if at < start {
                self.push_empty(at, start, flags);
            }
            if m.is_file() {
                self.push_data(start, end, flags, &[(start, end)]);
            } else {
                self.push_data(start, end, flags, &runs[i..=j]);
            }
            at = end;
            i = j + 1;
        }
        if at < m.end {
            self.push_empty(at, m.end, flags);
        }
    }
}

/// The runs of pages of mapping `m` that hold data: present or swapped,
/// not the shared zero page and, with `anon_only`, not unmodified file
/// pages. Uses the `PAGEMAP_SCAN` ioctl (Linux 6.7+: only the interesting
/// ranges come back) and falls back to reading one pagemap entry per page.
fn page_runs(pagemap: &File, m: &Mapping, anon_only: bool) -> std::io::Result<Vec<(u64, u64)>> {
    let mut runs = match scan(pagemap, m.start, m.end, anon_only) {
        Ok(regions) => regions
            .into_iter()
            .filter(|&(_, _, cat)| {
                cat & PAGE_IS_SWAPPED != 0
                    || (cat & PAGE_IS_PRESENT != 0
                        && cat & PAGE_IS_PFNZERO == 0
                        && !(anon_only && cat & PAGE_IS_FILE != 0))
            })
            .map(|(a, b, _)| (a, b))
            .collect(),
        Err(e) if e.raw_os_error() == Some(libc::ENOTTY) || e.raw_os_error() == Some(libc::EINVAL) => {
            read_runs(pagemap, m, anon_only)?
        }
        Err(e) => return Err(e),
    };
    merge_adjacent(&mut runs);
    Ok(runs)
}

/// Whether the kernel has the `PAGEMAP_SCAN` ioctl (Linux 6.7+), tried on
/// one page of this process's own stack; without it cores are planned by
/// reading one pagemap entry per page.
pub fn pagemap_scan_supported() -> std::io::Result<bool> {
    let pagemap = File::open("/proc/self/pagemap")?;
    let here = &pagemap as *const File as u64 & !(PAGE - 1);
    match scan(&pagemap, here, here + PAGE, false) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOTTY) || e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `PAGEMAP_SCAN` (include/uapi/linux/fs.h): `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610;
const PAGE_IS_FILE: u64 = 1 << 2;
const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;
const PAGE_IS_PFNZERO: u64 = 1 << 5;

/// Regions (start, end, categories) of present or swapped pages in
/// `[start, end)`, from the `PAGEMAP_SCAN` ioctl; `PAGE_IS_FILE` is only
/// asked for `with_file` (it costs a page lookup per entry).
fn scan(pagemap: &File, start: u64, end: u64, with_file: bool) -> std::io::Result<Vec<(u64, u64, u64)>> {
    use std::os::fd::AsRawFd;
    let mut regions = Vec::new();
    let mut buf = vec![[0u64; 3]; 1024]; // struct page_region
    let mut at = start;
    while at < end {
        // struct pm_scan_arg: size, flags, start, end, walk_end, vec, vec_len,
        // max_pages, category_inverted, category_mask, category_anyof_mask,
        // return_mask.
        let mut arg: [u64; 12] = [96, 0, at, end, 0, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0, 0, 0];
        arg[10] = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
        arg[11] = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO | if with_file { PAGE_IS_FILE } else { 0 };
        // SAFETY: the kernel reads `arg` and writes at most vec_len regions
        // into `buf`, and walk_end into `arg`.
        let n = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN as _, arg.as_mut_ptr()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        regions.extend(buf[..n as usize].iter().map(|r| (r[0], r[1], r[2])));
        let walk_end = arg[4];
        if walk_end <= at {
            break;
        }
        at = walk_end;
    }
    Ok(regions)
}

/// The same as [`scan`] + filtering, reading one pagemap entry per page
/// (kernels before 6.7).
fn read_runs(pagemap: &File, m: &Mapping, anon_only: bool) -> std::io::Result<Vec<(u64, u64)>> {
    let pages = (m.len() / PAGE) as usize;
    let mut entries = vec![0u64; pages];
    // SAFETY: viewing the u64 buffer as bytes to fill it.
    let bytes = unsafe { std::slice::from_raw_parts_mut(entries.as_mut_ptr().cast::<u8>(), pages * 8) };
    let mut done = 0;
    while done < bytes.len() {
        let n = pagemap.read_at(&mut bytes[done..], (m.start / PAGE) * 8 + done as u64)?;
        if n == 0 {
            break; // the mapping went away: the rest reads as absent
        }
        done += n;
    }
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (i, &e) in entries.iter().enumerate() {
        if e & PM_SWAPPED != 0 || (e & PM_PRESENT != 0 && !(anon_only && e & PM_FILE != 0)) {
            let a = m.start + i as u64 * PAGE;
            runs.push((a, a + PAGE));
        }
    }
    merge_adjacent(&mut runs);
    Ok(runs)
}

/// Joins runs that touch (runs are sorted).
fn merge_adjacent(runs: &mut Vec<(u64, u64)>) {
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(runs.len());
    for &(a, b) in runs.iter() {
        match out.last_mut() {
            Some(last) if last.1 >= a => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *runs = out;
}

/// Whether target memory at `addr` starts with "\x7fELF".
fn starts_with_elf_magic(pid: u32, addr: u64) -> bool {
    let mut magic = [0u8; 4];
    let local = libc::iovec { iov_base: magic.as_mut_ptr().cast(), iov_len: 4 };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: 4 };
    // SAFETY: reads 4 bytes into `magic`.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    n == 4 && magic == *b"\x7fELF"
}

/// The target's `/proc/PID/coredump_filter`, or the kernel default.
pub fn coredump_filter(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/coredump_filter"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim(), 16).ok())
        .unwrap_or(DEFAULT_FILTER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::read_maps;

    /// Plans our own memory after touching a few pages of a fresh mapping.
    #[test]
    fn only_touched_anonymous_pages_are_copied() {
        let len = 64 * PAGE as usize;
        // SAFETY: a fresh private anonymous mapping we write into, between
        // two PROT_NONE guard pages so it stays a mapping of its own.
        let p = unsafe {
            let g = libc::mmap(
                std::ptr::null_mut(),
                len + 8192,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            let p = (g as *mut u8).add(4096);
            assert_eq!(libc::mprotect(p.cast(), len, libc::PROT_READ | libc::PROT_WRITE), 0);
            p
        };
        // Touch pages 0, 1, 5 (one segment: gap < MERGE_GAP) and 40.
        for page in [0usize, 1, 5, 40] {
            // SAFETY: inside the mapping.
            unsafe { *p.add(page * PAGE as usize) = 1 };
        }
        // A read of an untouched page maps the shared zero page: no data.
        // SAFETY: inside the mapping.
        assert_eq!(unsafe { std::ptr::read_volatile(p.add(20 * PAGE as usize)) }, 0);
        let pid = std::process::id();
        let maps = read_maps(pid).unwrap();
        let m = maps.iter().find(|m| m.start == p as u64).unwrap().clone();
        let plan = plan(pid, std::slice::from_ref(&m), DEFAULT_FILTER, &HashSet::new()).unwrap();
        let base = p as u64;
        let copies: Vec<(u64, u64)> = plan.copies.iter().map(|c| (c.addr - base, c.len)).collect();
        assert_eq!(copies, vec![(0, 2 * PAGE), (5 * PAGE, PAGE), (40 * PAGE, PAGE)]);
        let segs: Vec<(u64, u64, u64)> =
            plan.segments.iter().map(|s| (s.vaddr - base, s.memsz / PAGE, s.filesz / PAGE)).collect();
        assert_eq!(segs, vec![(0, 6, 6), (6 * PAGE, 34, 0), (40 * PAGE, 1, 1), (41 * PAGE, 23, 0)]);
        assert_eq!(plan.copy_bytes, 4 * PAGE);
        assert_eq!(plan.data_len, 7 * PAGE);
        // The pagemap-read fallback finds the same written pages (it cannot
        // tell the zero page apart, so it also has page 20).
        let pagemap = File::open("/proc/self/pagemap").unwrap();
        let runs: Vec<(u64, u64)> = read_runs(&pagemap, &m, false)
            .unwrap()
            .iter()
            .map(|r| ((r.0 - base) / PAGE, (r.1 - base) / PAGE))
            .collect();
        assert_eq!(runs, vec![(0, 2), (5, 6), (20, 21), (40, 41)]);
        // SAFETY: unmapping what we mapped.
        unsafe { libc::munmap(p.sub(4096).cast(), len + 8192) };
    }

    #[test]
    fn unreadable_and_vsyscall_mappings_hold_no_data() {
        let text = "\
7f0000000000-7f0000100000 ---p 00000000 00:00 0 
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";
        let maps = crate::maps::parse_maps(text);
        let plan = plan(std::process::id(), &maps, DEFAULT_FILTER, &HashSet::new()).unwrap();
        assert_eq!(plan.segments.len(), 1);
        assert_eq!((plan.segments[0].memsz, plan.segments[0].filesz), (0x100000, 0));
        assert!(plan.copies.is_empty());
    }
}
