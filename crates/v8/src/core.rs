//! Core files as process images: the memory in their `PT_LOAD` segments,
//! the files they map (`NT_FILE`), the threads (`NT_PRSTATUS`) and the
//! command (`NT_PRPSINFO`).
//!
//! Cores differ in what they hold: gdb's `gcore` dumps nearly everything,
//! the kernel leaves out file-backed pages (text, read-only data) unless
//! `coredump_filter` says otherwise, and `prodtrace gcore` leaves out file
//! pages that are unmodified.  Bytes that a segment does not hold are read
//! from the mapped file, like gdb does.  A truncated core (a dump cut
//! short) is read as far as it goes: what is past its end is unreadable.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use memmap2::Mmap;
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::LittleEndian as LE;

use crate::image::{Image, Module, Regs, Thread};
use crate::memory::Memory;

/// `NT_FILE`: the files mapped by the process.
const NT_FILE: elf::NoteType = elf::NoteType(0x4649_4c45);

/// What a core file says about its process, besides memory.
pub struct CoreInfo {
    pub pid: u32,
    /// The command name (`pr_fname`, 16 characters at most).
    pub command: String,
    /// The command line as far as `pr_psargs` holds it (80 characters).
    pub args: String,
    /// The path of the executable: the file mapped at the lowest address
    /// whose name ends in the command name, else the first file mapped.
    pub exe: Option<String>,
    /// Whether the file is shorter than its headers say (a dump cut short).
    pub truncated: bool,
}

struct Segment {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    /// Bytes of the segment present in the file (less than the header's
    /// p_filesz when the core is truncated).
    filesz: u64,
}

/// The memory of a core file.
pub struct CoreMemory {
    map: Mmap,
    segments: Vec<Segment>,
    files: Vec<Module>,
    opened: RefCell<HashMap<PathBuf, Option<Mmap>>>,
}

/// Opens a core file.  `exe` is the executable to read in place of the
/// one the core names (`--exe`), for a core taken on another machine or
/// after node was upgraded.
pub fn open(path: &Path, exe: Option<&Path>) -> Result<(Image, CoreInfo)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: read-only private mapping of a core file nobody should be
    // writing to while we read it.
    let map = unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
    let data: &[u8] = &map;
    let elf =
        ElfFile64::<LE>::parse(data).map_err(|e| anyhow::anyhow!("{} is not an ELF file: {e}", path.display()))?;
    let header = elf.elf_header();
    if header.e_type(LE) != elf::ET_CORE {
        bail!("{} is not a core file (ELF type {})", path.display(), header.e_type(LE));
    }
    if header.e_machine(LE) != elf::EM_X86_64 {
        bail!("{} is not an x86_64 core file", path.display());
    }
    let mut segments = Vec::new();
    let mut threads = Vec::new();
    let mut files = Vec::new();
    let mut info = CoreInfo { pid: 0, command: String::new(), args: String::new(), exe: None, truncated: false };
    for ph in elf.elf_program_headers() {
        let (offset, filesz) = (ph.p_offset(LE), ph.p_filesz(LE));
        let present = (data.len() as u64).saturating_sub(offset).min(filesz);
        if present < filesz {
            info.truncated = true;
        }
        match ph.p_type(LE) {
            elf::PT_LOAD => {
                segments.push(Segment { vaddr: ph.p_vaddr(LE), memsz: ph.p_memsz(LE), offset, filesz: present })
            }
            elf::PT_NOTE => {
                let Ok(Some(mut notes)) = ph.notes(LE, data) else { continue };
                while let Ok(Some(note)) = notes.next() {
                    if note.name() != b"CORE" {
                        continue;
                    }
                    let desc = note.desc();
                    match note.n_type(LE) {
                        elf::NT_PRSTATUS if desc.len() >= 112 + 27 * 8 => {
                            let tid = u32::from_le_bytes(desc[32..36].try_into().unwrap());
                            if let Some(regs) = Regs::from_bytes(&desc[112..]) {
                                threads.push(Thread { tid, name: None, regs });
                            }
                        }
                        elf::NT_PRPSINFO if desc.len() >= 136 => {
                            info.pid = u32::from_le_bytes(desc[24..28].try_into().unwrap());
                            info.command = c_string(&desc[40..56]);
                            info.args = c_string(&desc[56..136]);
                        }
                        NT_FILE => files = parse_nt_file(desc),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if threads.is_empty() {
        bail!("{} has no threads (no NT_PRSTATUS notes): not a process core", path.display());
    }
    segments.sort_by_key(|s| s.vaddr);
    files.sort_by_key(|m: &Module| m.start);
    if info.pid == 0 {
        info.pid = threads[0].tid;
    }
    info.exe = files
        .iter()
        .find(|m| !info.command.is_empty() && file_name(&m.path).starts_with(&info.command))
        .or(files.first())
        .map(|m| m.path.clone());
    if let (Some(given), Some(named)) = (exe, &info.exe) {
        for m in files.iter_mut().filter(|m| &m.path == named) {
            m.file = given.to_path_buf();
        }
    }
    // The kernel writes the thread that dumped first; gdb and prodtrace
    // write the main thread first. Put the main thread first in any case.
    if let Some(i) = threads.iter().position(|t| t.tid == info.pid) {
        let main = threads.remove(i);
        threads.insert(0, main);
    }
    let memory = CoreMemory { map, segments, files: files.clone(), opened: RefCell::new(HashMap::new()) };
    let anon_exec = Vec::new();
    Ok((Image { pid: info.pid, memory: Box::new(memory), modules: files, threads, anon_exec }, info))
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `NT_FILE`: count, page size, `count` × (start, end, page offset), then
/// `count` NUL-terminated paths.
fn parse_nt_file(desc: &[u8]) -> Vec<Module> {
    let word = |i: usize| desc.get(i * 8..i * 8 + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
    let (Some(count), Some(page)) = (word(0), word(1)) else { return Vec::new() };
    let count = count.min(1 << 20) as usize;
    let names_at = (2 + 3 * count) * 8;
    let Some(names) = desc.get(names_at..) else { return Vec::new() };
    let mut names = names.split(|&c| c == 0);
    (0..count)
        .filter_map(|i| {
            let (start, end, pgoff) = (word(2 + 3 * i)?, word(3 + 3 * i)?, word(4 + 3 * i)?);
            let path = String::from_utf8_lossy(names.next()?).into_owned();
            Some(Module { start, end, file_offset: pgoff.saturating_mul(page), file: PathBuf::from(&path), path })
        })
        .collect()
}

impl CoreMemory {
    /// Reads from the file mapped at `addr`, if the bytes are in one.
    fn read_file(&self, addr: u64, buf: &mut [u8]) -> bool {
        let i = self.files.partition_point(|m| m.end <= addr);
        let Some(m) = self.files.get(i).filter(|m| m.contains(addr)) else { return false };
        if addr + buf.len() as u64 > m.end {
            return false;
        }
        let mut opened = self.opened.borrow_mut();
        let map = opened.entry(m.file.clone()).or_insert_with(|| {
            let f = File::open(&m.file).ok()?;
            // SAFETY: read-only private mapping of a binary or library.
            unsafe { Mmap::map(&f) }.ok()
        });
        let Some(map) = map else { return false };
        let off = (addr - m.start + m.file_offset) as usize;
        match map.get(off..off + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

impl Memory for CoreMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(end) = addr.checked_add(buf.len() as u64) else { return false };
        let mut at = addr;
        while at < end {
            let i = self.segments.partition_point(|s| s.vaddr + s.memsz <= at);
            let to = (at - addr) as usize;
            match self.segments.get(i).filter(|s| s.vaddr <= at) {
                Some(s) if at - s.vaddr < s.filesz => {
                    let n = (s.vaddr + s.filesz).min(end) - at;
                    let off = (s.offset + at - s.vaddr) as usize;
                    buf[to..to + n as usize].copy_from_slice(&self.map[off..off + n as usize]);
                    at += n;
                }
                Some(s) => {
                    // In the segment but not in the file: from the mapped file.
                    let n = (s.vaddr + s.memsz).min(end) - at;
                    if !self.read_file(at, &mut buf[to..to + n as usize]) {
                        return false;
                    }
                    at += n;
                }
                None => {
                    // Not dumped at all: only a mapped file can have it.
                    let next = self.segments.get(i).map_or(end, |s| s.vaddr.min(end));
                    let n = next - at;
                    if !self.read_file(at, &mut buf[to..to + n as usize]) {
                        return false;
                    }
                    at += n;
                }
            }
        }
        true
    }
}
