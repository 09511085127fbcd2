//! ELF core files of live Linux processes (x86_64), like gdb's `gcore`, but
//! with a short pause and small files.
//!
//! [`write_core`] works in four steps:
//!
//! 1. before touching the target: check the PID, privileges and tracers,
//!    check the destination (a new name or a regular file) and create the
//!    temporary output file, read what does not change (auxv, command line,
//!    `MADV_DONTDUMP` flags), plan the dump once to size a memory buffer and
//!    fault that buffer in;
//! 2. frozen (every thread stopped with `PTRACE_INTERRUPT`, see
//!    [`procctl::freeze`]): read registers, the memory map and the pagemap,
//!    and copy the selected memory into the buffer with `process_vm_readv`;
//! 3. thaw the target (it runs on, or stays in the group-stop it was in);
//! 4. write the file: data, notes, headers; rename it into place.
//!
//! What is dumped (see `plan`): pages that exist, not address space that
//! was only reserved; text and read-only data come from the files named in
//! `NT_FILE`, as gdb expects. When memory is short (the copy would need more
//! than half of `MemAvailable`) step 2 writes straight to the file instead.

mod maps;
mod memory;
mod notes;
mod output;
mod plan;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use object::elf;
use object::endian::{LittleEndian as LE, U16, U32, U64};

use memory::{Sink, Snapshot};
pub use plan::pagemap_scan_supported;
use plan::PAGE;

/// Options for [`write_core`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Refuse to write a core larger than this many bytes (nothing is left
    /// on disk, the target is resumed).
    pub max_size: Option<u64>,
    /// The thread to list first: gdb selects it, so `bt` shows its stack
    /// (e.g. the thread that hit a system call). Default: the main thread.
    pub first_thread: Option<u32>,
    /// When this becomes true (a signal handler sets it), the dump stops at
    /// the next step: the target is thawed, the temporary file removed, and
    /// [`write_core`] fails with an [`Interrupted`] error.
    pub cancel: Option<&'static AtomicBool>,
}

/// The error of a dump cancelled through [`Options::cancel`].
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("interrupted; no core written")
    }
}

impl std::error::Error for Interrupted {}

impl Options {
    /// Fails with [`Interrupted`] once the dump was cancelled.
    fn check_cancel(&self) -> Result<()> {
        match self.cancel {
            Some(flag) if flag.load(Ordering::SeqCst) => Err(Interrupted.into()),
            _ => Ok(()),
        }
    }
}

/// What [`write_core`] did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Size of the core file in bytes (sparse holes included).
    pub bytes: u64,
    /// Bytes of memory copied from the target.
    pub copied: u64,
    /// Number of threads dumped.
    pub threads: usize,
    /// How long the target was frozen.
    pub paused: Duration,
    /// The target was in a group-stop (e.g. SIGSTOP) and was left stopped.
    pub stopped: bool,
    /// Pages that could not be read (they read as zeros in the core).
    pub unreadable_pages: u64,
}

/// Writes a core file of live process `pid` to `path`.
///
/// The file is written through a temporary file in the same directory,
/// mode 0600, and renamed into place once complete; on any error nothing is
/// left on disk. A running target is frozen while its memory is copied and
/// then resumed; a target already in a group-stop (stopped by a signal) is
/// dumped with its registers as they are at that stop and left stopped.
/// Fails clearly without privileges (root or `CAP_SYS_PTRACE`), when the
/// process does not exist, exits during the dump, or is traced already,
/// and when the destination is neither a new name nor a regular file — all
/// but the exit checked before the target is touched.
pub fn write_core(pid: u32, path: &Path, opts: &Options) -> Result<Report> {
    check_target(pid)?;
    opts.check_cancel()?;
    let out = output::TempCore::create(path).with_context(|| format!("cannot write {}", path.display()))?;

    // Before freezing: facts that do not change, and a pre-faulted buffer
    // sized from a first plan.
    let info = notes::ProcInfo::read(pid);
    let filter = plan::coredump_filter(pid);
    let no_dump = maps::no_dump_starts(pid);
    let estimate = maps::read_maps(pid)
        .and_then(|maps| plan::plan(pid, &maps, filter, &no_dump))
        .map_err(|e| exited_or(pid, e))?
        .copy_bytes;
    let mut snapshot = if estimate + estimate / 4 < mem_available() / 2 {
        Some(Snapshot::new((estimate + estimate / 8 + (4 << 20)) as usize)?)
    } else {
        None
    };

    // Frozen. Whatever fails here because the target died says so. While
    // the target waits for us, we run at a high priority (where allowed).
    opts.check_cancel()?;
    let boost = Boost::new();
    let frozen = procctl::freeze::freeze(pid).map_err(|e| exited_or(pid, e))?;
    let mut frozen_phase = || -> Result<_> {
        let maps = maps::read_maps(pid)?;
        let plan = plan::plan(pid, &maps, filter, &no_dump)?;
        let phnum = plan.segments.len() + 1;
        if phnum >= usize::from(elf::PN_XNUM) {
            bail!("process {pid} has too many memory segments ({phnum}) for an ELF core")
        }
        let data_start = align(64 + 56 * phnum as u64, PAGE);
        // The exact size of the file: data, then the notes (sized without
        // building them, which reads /proc and would lengthen the pause).
        check_size(data_start + plan.data_len + notes::size(&info, frozen.threads(), &maps), opts)?;
        let unreadable = match snapshot.as_mut() {
            Some(snap) => memory::copy(pid, &plan.copies, Sink::Snapshot(snap), opts.cancel),
            None => memory::copy(pid, &plan.copies, Sink::File(&out.file, data_start), opts.cancel),
        }
        .with_context(|| format!("cannot dump process {pid}"))?;
        Ok((maps, plan, data_start, unreadable))
    };
    let (maps, plan, data_start, unreadable) = match frozen_phase() {
        Ok(done) if !procctl::check::is_exiting(pid) => done,
        Ok(_) => bail!("process {pid} exited during the dump; no core written"),
        Err(e) if e.is::<Interrupted>() => return Err(e),
        Err(e) => return Err(exited_or(pid, e)),
    };
    let data_end = data_start + plan.data_len;
    let stopped = frozen.was_stopped();
    let mut threads = frozen.threads().to_vec();
    let paused = frozen.thaw().with_context(|| format!("no core written for process {pid}"))?;
    drop(boost);

    // Thawed: write the file.
    let first = opts.first_thread.unwrap_or(pid);
    threads.sort_by_key(|t| t.tid != first);
    let note_bytes = notes::build(&info, &threads, &maps);
    let total = data_end + note_bytes.len() as u64;
    check_size(total, opts)?;
    let write = || -> Result<()> {
        if let Some(snap) = &snapshot {
            write_snapshot(&out.file, data_start, &plan.copies, snap, opts)?;
        }
        out.file.write_all_at(&note_bytes, data_end)?;
        out.file.write_all_at(&headers(&plan.segments, data_start, data_end, note_bytes.len() as u64), 0)?;
        Ok(out.file.set_len(total)?)
    };
    write().map_err(|e| match e.is::<Interrupted>() {
        true => e,
        false => e.context(format!("cannot write {}", path.display())),
    })?;
    drop(snapshot);
    opts.check_cancel()?;
    out.commit().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Report {
        bytes: total,
        copied: plan.copy_bytes,
        threads: threads.len(),
        paused,
        stopped,
        unreadable_pages: unreadable,
    })
}

/// An error of a step that reads the target: if the target is gone, that
/// is what the user needs to know, whichever step noticed first.  A target
/// killed meanwhile can still look alive in /proc/PID/stat while it exits
/// (its memory is released before it becomes a zombie): /proc then answers
/// ESRCH, which says the same.
fn exited_or(pid: u32, err: anyhow::Error) -> anyhow::Error {
    let esrch = err
        .chain()
        .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.raw_os_error() == Some(libc::ESRCH)));
    if procctl::check::is_exiting(pid) || esrch {
        anyhow::anyhow!("process {pid} exited during the dump; no core written")
    } else {
        err
    }
}

/// Refuses targets we cannot or must not dump, with a one-line reason (the
/// checks every tool makes — see [`procctl::check_process`] — then the
/// tracer: a process has only one).
fn check_target(pid: u32) -> Result<()> {
    procctl::check_process(pid, procctl::Use::Dump)?;
    if let Some(tracer) = procctl::freeze::traced_by(pid) {
        bail!("process {pid} is already traced by {tracer}: detach the debugger first (a process can have only one tracer)")
    }
    Ok(())
}

/// Raises the scheduling priority of the calling thread (nice -15; threads
/// it starts inherit it) until dropped: on a busy machine the frozen target
/// must not wait for the dumper to get a CPU. Needs CAP_SYS_NICE; without
/// it nothing changes.
struct Boost(Option<libc::c_int>);

impl Boost {
    fn new() -> Boost {
        // SAFETY: getpriority/setpriority on the calling thread (who = 0).
        unsafe {
            *libc::__errno_location() = 0;
            let old = libc::getpriority(libc::PRIO_PROCESS, 0);
            let ok = *libc::__errno_location() == 0 && libc::setpriority(libc::PRIO_PROCESS, 0, -15) == 0;
            Boost(ok.then_some(old))
        }
    }
}

impl Drop for Boost {
    fn drop(&mut self) {
        if let Some(old) = self.0 {
            // SAFETY: restoring the calling thread's nice value.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, old) };
        }
    }
}

fn check_size(size: u64, opts: &Options) -> Result<()> {
    if let Some(max) = opts.max_size {
        if size > max {
            bail!("the core would be {size} bytes, more than the limit of {max} bytes; nothing written")
        }
    }
    Ok(())
}

/// Writes the snapshot's copies to their places, merging adjacent ones.
fn write_snapshot(
    file: &std::fs::File,
    data_start: u64,
    copies: &[plan::Copy],
    snap: &Snapshot,
    opts: &Options,
) -> Result<()> {
    let total: u64 = copies.iter().map(|c| c.len).sum();
    let buf = snap.bytes(total as usize);
    let (mut pos, mut i) = (0usize, 0usize);
    while i < copies.len() {
        let (off, mut len) = (copies[i].data_off, copies[i].len);
        let mut j = i + 1;
        while j < copies.len() && copies[j].data_off == off + len && len < (64 << 20) {
            len += copies[j].len;
            j += 1;
        }
        opts.check_cancel()?;
        file.write_all_at(&buf[pos..pos + len as usize], data_start + off)?;
        pos += len as usize;
        i = j;
    }
    Ok(())
}

/// The ELF header and program headers (PT_NOTE last: the notes follow the data).
fn headers(segments: &[plan::Segment], data_start: u64, notes_off: u64, notes_len: u64) -> Vec<u8> {
    let phnum = segments.len() + 1;
    let header = elf::FileHeader64::<LE> {
        e_ident: elf::Ident {
            magic: elf::ELFMAG,
            class: elf::ELFCLASS64,
            data: elf::ELFDATA2LSB,
            version: elf::EV_CURRENT,
            os_abi: elf::ELFOSABI_NONE,
            abi_version: 0,
            padding: [0; 7],
        },
        e_type: U16::new(LE, elf::ET_CORE),
        e_machine: U16::new(LE, elf::EM_X86_64),
        e_version: U32::new(LE, elf::EV_CURRENT.0.into()),
        e_entry: U64::new(LE, 0),
        e_phoff: U64::new(LE, 64),
        e_shoff: U64::new(LE, 0),
        e_flags: U32::new(LE, elf::FileFlags(0)),
        e_ehsize: U16::new(LE, 64),
        e_phentsize: U16::new(LE, 56),
        e_phnum: U16::new(LE, phnum as u16),
        e_shentsize: U16::new(LE, 0),
        e_shnum: U16::new(LE, 0),
        e_shstrndx: U16::new(LE, elf::SymbolSection(0)),
    };
    let mut out = object::pod::bytes_of(&header).to_vec();
    let phdr = |p_type, flags, offset, vaddr, filesz, memsz, align| elf::ProgramHeader64::<LE> {
        p_type: U32::new(LE, p_type),
        p_flags: U32::new(LE, elf::ProgramFlags(flags)),
        p_offset: U64::new(LE, offset),
        p_vaddr: U64::new(LE, vaddr),
        p_paddr: U64::new(LE, 0),
        p_filesz: U64::new(LE, filesz),
        p_memsz: U64::new(LE, memsz),
        p_align: U64::new(LE, align),
    };
    for s in segments {
        let p = phdr(elf::PT_LOAD, s.flags, data_start + s.data_off, s.vaddr, s.filesz, s.memsz, PAGE);
        out.extend_from_slice(object::pod::bytes_of(&p));
    }
    let p = phdr(elf::PT_NOTE, 0, notes_off, 0, notes_len, 0, 4);
    out.extend_from_slice(object::pod::bytes_of(&p));
    out
}

fn align(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ESRCH from /proc means the target is going away even while its stat
    /// still shows it alive; any other error of a live target is kept.
    #[test]
    fn esrch_reads_as_exited() {
        let me = std::process::id();
        let gone = anyhow::Error::from(std::io::Error::from_raw_os_error(libc::ESRCH))
            .context(format!("cannot open /proc/{me}/pagemap"));
        assert_eq!(exited_or(me, gone).to_string(), format!("process {me} exited during the dump; no core written"));
        let other = anyhow::Error::from(std::io::Error::from_raw_os_error(libc::EACCES));
        assert!(exited_or(me, other).to_string().contains("denied"));
    }
}
