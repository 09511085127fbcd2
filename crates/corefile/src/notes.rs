//! The `PT_NOTE` segment: process and per-thread notes in the layout the
//! Linux kernel writes for x86_64 (and gdb and the `elf` tools read).
//!
//! Order: the first thread's `NT_PRSTATUS` (gdb selects that thread), then
//! `NT_PRPSINFO`, `NT_SIGINFO`, `NT_AUXV`, `NT_FILE`, and the first thread's
//! `NT_PRFPREG` and `NT_X86_XSTATE`; then, per other thread, `NT_PRSTATUS`,
//! `NT_PRFPREG`, `NT_X86_XSTATE` (and its `NT_SIGINFO` when it has one).

use procctl::freeze::{Stop, Thread};

use crate::maps::Mapping;
use crate::plan::PAGE;

const NT_PRSTATUS: u32 = 1;
const NT_PRFPREG: u32 = 2;
const NT_PRPSINFO: u32 = 3;
const NT_AUXV: u32 = 6;
const NT_SIGINFO: u32 = 0x5349_4749;
const NT_FILE: u32 = 0x4649_4c45;
const NT_X86_XSTATE: u32 = 0x202;

/// Process facts from `/proc`, read outside the freeze.
#[derive(Clone, Debug, Default)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    pub state: u8,
    pub nice: i8,
    pub flags: u64,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub args: String,
    /// cutime and cstime in clock ticks.
    pub child_times: (u64, u64),
    pub auxv: Vec<u8>,
}

impl ProcInfo {
    /// Reads what the notes need about process `pid`.
    pub fn read(pid: u32) -> ProcInfo {
        let mut info = ProcInfo { pid, ..ProcInfo::default() };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) {
            info.comm = stat[open + 1..close].to_string();
            let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
            info.state = f.first().and_then(|s| s.bytes().next()).unwrap_or(b'R');
            info.ppid = num(1) as i32;
            info.pgrp = num(2) as i32;
            info.sid = num(3) as i32;
            info.flags = num(6) as u64;
            info.child_times = (num(13) as u64, num(14) as u64);
            info.nice = num(16) as i8;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let first_id = |key: &str| {
            status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok())
        };
        info.uid = first_id("Uid:").unwrap_or(0);
        info.gid = first_id("Gid:").unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        info.args = String::from_utf8_lossy(&cmdline).trim_end_matches('\0').replace('\0', " ");
        info.auxv = std::fs::read(format!("/proc/{pid}/auxv")).unwrap_or_default();
        info
    }
}

/// Builds the note segment. `threads` come in the order they are listed
/// (the first one is the thread gdb selects); threads whose registers could
/// not be read are left out.
pub fn build(info: &ProcInfo, threads: &[Thread], maps: &[Mapping]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, t) in threads.iter().filter(|t| !t.regs.is_empty()).enumerate() {
        note(&mut out, b"CORE", NT_PRSTATUS, &prstatus(info, t));
        if i == 0 {
            note(&mut out, b"CORE", NT_PRPSINFO, &prpsinfo(info));
            if let Some(si) = &t.siginfo {
                note(&mut out, b"CORE", NT_SIGINFO, si);
            }
            if !info.auxv.is_empty() {
                note(&mut out, b"CORE", NT_AUXV, &info.auxv);
            }
            note(&mut out, b"CORE", NT_FILE, &file_note(maps));
        }
        note(&mut out, b"CORE", NT_PRFPREG, &t.fpregs);
        if let Some(x) = &t.xstate {
            note(&mut out, b"LINUX", NT_X86_XSTATE, &standard_xsave(x));
        }
        if i > 0 {
            if let Some(si) = &t.siginfo {
                note(&mut out, b"CORE", NT_SIGINFO, si);
            }
        }
    }
    out
}

/// The exact length of what [`build`] returns for the same arguments,
/// computed without reading /proc (it is called while the target is
/// frozen, to check `--max-size` before any memory is copied).
pub fn size(info: &ProcInfo, threads: &[Thread], maps: &[Mapping]) -> u64 {
    let len = |name: &[u8], desc: usize| (12 + (name.len() + 1).next_multiple_of(4) + desc.next_multiple_of(4)) as u64;
    let mut n = 0;
    for (i, t) in threads.iter().filter(|t| !t.regs.is_empty()).enumerate() {
        n += len(b"CORE", PRSTATUS_LEN);
        if i == 0 {
            n += len(b"CORE", PRPSINFO_LEN);
            if !info.auxv.is_empty() {
                n += len(b"CORE", info.auxv.len());
            }
            n += len(b"CORE", file_note(maps).len());
        }
        if let Some(si) = &t.siginfo {
            n += len(b"CORE", si.len());
        }
        n += len(b"CORE", t.fpregs.len());
        if let Some(x) = &t.xstate {
            n += len(b"LINUX", standard_xsave_len(x));
        }
    }
    n
}

/// Appends one note: header, name and descriptor, each padded to 4 bytes.
fn note(out: &mut Vec<u8>, name: &[u8], kind: u32, desc: &[u8]) {
    out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(name);
    out.push(0);
    pad4(out);
    out.extend_from_slice(desc);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

/// The stop signal a thread reports in its notes (0 when interrupted).
fn cursig(t: &Thread) -> i32 {
    match t.stop {
        Stop::Interrupted => 0,
        Stop::GroupStop(s) | Stop::Signal(s) => s,
    }
}

/// Sizes of `struct elf_prstatus` and `struct elf_prpsinfo` on x86_64.
const PRSTATUS_LEN: usize = 336;
const PRPSINFO_LEN: usize = 136;

/// `struct elf_prstatus` (x86_64, 336 bytes).
fn prstatus(info: &ProcInfo, t: &Thread) -> Vec<u8> {
    let task = TaskInfo::read(info.pid, t.tid);
    let mut b = Vec::with_capacity(PRSTATUS_LEN);
    let sig = cursig(t);
    b.extend_from_slice(&sig.to_le_bytes()); // pr_info.si_signo
    b.extend_from_slice(&0i32.to_le_bytes()); // pr_info.si_code
    b.extend_from_slice(&0i32.to_le_bytes()); // pr_info.si_errno
    b.extend_from_slice(&(sig as i16).to_le_bytes()); // pr_cursig
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&task.sigpend.to_le_bytes());
    b.extend_from_slice(&task.sighold.to_le_bytes());
    for v in [t.tid as i32, info.ppid, info.pgrp, info.sid] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for ticks in [task.utime, task.stime, info.child_times.0, info.child_times.1] {
        let (sec, usec) = ticks_to_timeval(ticks);
        b.extend_from_slice(&sec.to_le_bytes());
        b.extend_from_slice(&usec.to_le_bytes());
    }
    let mut regs = t.regs.clone();
    regs.resize(27 * 8, 0);
    b.extend_from_slice(&regs);
    b.extend_from_slice(&1i32.to_le_bytes()); // pr_fpvalid
    b.extend_from_slice(&[0; 4]);
    debug_assert_eq!(b.len(), PRSTATUS_LEN);
    b
}

/// `struct elf_prpsinfo` (x86_64, 136 bytes).
fn prpsinfo(info: &ProcInfo) -> Vec<u8> {
    let mut b = Vec::with_capacity(PRPSINFO_LEN);
    let sname = info.state;
    let state = match sname {
        b'R' => 0,
        b'S' => 1,
        b'D' => 2,
        b'T' | b't' => 3,
        b'Z' => 4,
        _ => 5,
    };
    b.extend_from_slice(&[state, sname, u8::from(sname == b'Z'), info.nice as u8, 0, 0, 0, 0]);
    b.extend_from_slice(&info.flags.to_le_bytes());
    b.extend_from_slice(&info.uid.to_le_bytes());
    b.extend_from_slice(&info.gid.to_le_bytes());
    for v in [info.pid as i32, info.ppid, info.pgrp, info.sid] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&fixed::<16>(&info.comm));
    b.extend_from_slice(&fixed::<80>(&info.args));
    debug_assert_eq!(b.len(), PRPSINFO_LEN);
    b
}

/// A NUL-padded (and, if need be, truncated) fixed-size string field.
fn fixed<const N: usize>(s: &str) -> [u8; N] {
    let mut f = [0u8; N];
    let n = s.len().min(N - 1);
    f[..n].copy_from_slice(&s.as_bytes()[..n]);
    f
}

/// Standard (non-compacted) XSAVE offsets of the state components gdb
/// knows: AVX, MPX bounds and config, AVX-512 opmask, ZMM_Hi256, Hi16_ZMM,
/// (8 is a supervisor component), PKRU.
const XSAVE_STD_OFFSETS: [(u32, usize); 7] =
    [(2, 0x240), (3, 0x3c0), (4, 0x400), (5, 0x440), (6, 0x480), (7, 0x680), (9, 0xa80)];

/// The XSAVE area from `PTRACE_GETREGSET` re-laid out at the standard
/// offsets gdb assumes: CPUs without MPX (recent AMD) report AVX-512
/// state at other offsets (CPUID leaf 0xD), which gdb would misread, and
/// gdb wants the area exactly as large as the features in XCR0 (bytes
/// 464..472) need.
fn standard_xsave(raw: &[u8]) -> Vec<u8> {
    if raw.len() < 576 {
        return raw.to_vec();
    }
    let xcr0 = u64::from_le_bytes(raw[464..472].try_into().unwrap());
    let has = |bit: u32| xcr0 & (1 << bit) != 0;
    let mut out = vec![0u8; standard_xsave_len(raw)];
    out[..576].copy_from_slice(&raw[..576]);
    for (component, std_off) in XSAVE_STD_OFFSETS {
        if !has(component) {
            continue;
        }
        // CPUID leaf 0xD: size and standard-format offset of the component.
        let leaf = std::arch::x86_64::__cpuid_count(0xd, component);
        let (len, off) = (leaf.eax as usize, leaf.ebx as usize);
        if off + len <= raw.len() && std_off + len <= out.len() {
            out[std_off..std_off + len].copy_from_slice(&raw[off..off + len]);
        }
    }
    out
}

/// The length of [`standard_xsave`]'s result.
fn standard_xsave_len(raw: &[u8]) -> usize {
    if raw.len() < 576 {
        return raw.len();
    }
    let xcr0 = u64::from_le_bytes(raw[464..472].try_into().unwrap());
    let has = |bit: u32| xcr0 & (1 << bit) != 0;
    let size = if has(9) {
        0xa88
    } else if has(5) || has(6) || has(7) {
        0xa80
    } else if has(3) || has(4) {
        0x440
    } else if has(2) {
        0x340
    } else {
        0x240
    };
    size.max(576)
}

/// `NT_FILE`: count, page size, (start, end, offset in pages) per file
/// mapping, then the NUL-terminated paths.
fn file_note(maps: &[Mapping]) -> Vec<u8> {
    let files: Vec<&Mapping> = maps.iter().filter(|m| m.is_file()).collect();
    let mut b = Vec::new();
    b.extend_from_slice(&(files.len() as u64).to_le_bytes());
    b.extend_from_slice(&PAGE.to_le_bytes());
    for m in &files {
        for v in [m.start, m.end, m.offset / PAGE] {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    for m in &files {
        b.extend_from_slice(m.name.as_bytes());
        b.push(0);
    }
    b
}

/// Per-thread facts from `/proc/PID/task/TID`.
#[derive(Default)]
struct TaskInfo {
    utime: u64,
    stime: u64,
    sigpend: u64,
    sighold: u64,
}

impl TaskInfo {
    fn read(pid: u32, tid: u32) -> TaskInfo {
        let mut t = TaskInfo::default();
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) {
            if let Some(close) = stat.rfind(')') {
                let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
                t.utime = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0);
                t.stime = f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
            }
        }
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")) {
            let hex = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                    .unwrap_or(0)
            };
            t.sigpend = hex("SigPnd:") | hex("ShdPnd:");
            t.sighold = hex("SigBlk:");
        }
        t
    }
}

fn ticks_to_timeval(ticks: u64) -> (i64, i64) {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ((ticks / hz) as i64, ((ticks % hz) * 1_000_000 / hz) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_padded_and_sized_like_the_kernel_writes_them() {
        let mut out = Vec::new();
        note(&mut out, b"CORE", 1, &[1, 2, 3]);
        assert_eq!(out.len(), 12 + 8 + 4);
        assert_eq!(&out[..12], &[5, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&out[12..20], b"CORE\0\0\0\0");
        let info = ProcInfo::read(std::process::id());
        assert_eq!(prpsinfo(&info).len(), 136);
        let t = Thread {
            tid: 1,
            stop: Stop::GroupStop(19),
            regs: vec![0; 216],
            fpregs: vec![0; 512],
            xstate: None,
            siginfo: None,
        };
        let s = prstatus(&info, &t);
        assert_eq!(s.len(), 336);
        assert_eq!(&s[12..14], &19i16.to_le_bytes());
    }

    #[test]
    fn size_is_exactly_what_build_writes() {
        // A real frozen process: registers, FP and XSAVE state, and a
        // group-stop siginfo on one of the two runs.
        for stop_it in [false, true] {
            let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
            let pid = child.id();
            if stop_it {
                // SAFETY: kill(2) on our own child.
                unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let info = ProcInfo::read(pid);
            let maps = crate::maps::read_maps(pid).unwrap();
            let frozen = procctl::freeze::freeze(pid).unwrap();
            assert_eq!(frozen.threads()[0].siginfo.is_some(), stop_it);
            let built = build(&info, frozen.threads(), &maps);
            assert_eq!(size(&info, frozen.threads(), &maps), built.len() as u64);
            drop(frozen);
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    #[test]
    fn file_note_lists_file_mappings_only() {
        let maps = crate::maps::parse_maps(
            "1000-3000 r--p 00002000 fe:01 12 /bin/x\n3000-4000 rw-p 00000000 00:00 0 [heap]\n",
        );
        let b = file_note(&maps);
        assert_eq!(&b[..8], &1u64.to_le_bytes());
        assert_eq!(&b[16..40], [0x1000u64, 0x3000, 2].map(u64::to_le_bytes).concat().as_slice());
        assert_eq!(&b[40..], b"/bin/x\0");
    }
}
