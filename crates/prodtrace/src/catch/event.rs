//! One matched system call as the BPF program reports it (`struct event` in
//! `bpf/catch.bpf.c`), decoded from the ring buffer, and its one-line
//! rendering: `close(fd=7) = -1 EBADF (Bad file descriptor)`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

use super::names;

const MAX_FRAMES: usize = 127;
/// `signal_err` when the BPF program did not signal a traced thread.
pub const SKIPPED_TRACED: i32 = 1;
const STACK_COPY: usize = 8 * 4096;

/// Byte layout of the BPF `struct event` (must match catch.bpf.c).
#[repr(C)]
#[derive(Clone, Copy)]
struct RawEvent {
    boot_ns: u64,
    pid: u32,
    tid: u32,
    nr: i64,
    ret: i64,
    args: [u64; 6],
    ip: u64,
    sp: u64,
    bp: u64,
    hit: u32,
    signal_err: i32,
    frames_len: i32,
    stack_len: u32,
    comm: [u8; 16],
    pcomm: [u8; 16],
    frames: [u64; MAX_FRAMES],
    stack: [u8; STACK_COPY],
}

/// A matched system call.
pub struct Event {
    /// Wall-clock time of the return.
    pub time: SystemTime,
    pub pid: u32,
    pub tid: u32,
    /// Thread name and process name.
    pub comm: String,
    pub pcomm: String,
    pub nr: i64,
    pub ret: i64,
    pub args: [u64; 6],
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// 1-based number of this match.
    pub hit: u32,
    /// Error (negative errno) from sending the signal in BPF, 0 if fine,
    /// [`SKIPPED_TRACED`] if none was sent because a debugger traces it.
    pub signal_err: i32,
    /// Frame-pointer user stack from `bpf_get_stack` (innermost first).
    pub fp_frames: Vec<u64>,
    /// Copy of user memory from `sp` upwards.
    pub stack: Vec<u8>,
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Offset of CLOCK_BOOTTIME from the wall clock, to place BPF timestamps.
fn boot_to_wall(boot_ns: u64) -> SystemTime {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    let now_boot = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    let age = Duration::from_nanos(now_boot.saturating_sub(boot_ns));
    SystemTime::now() - age
}

impl Event {
    /// Decodes one ring-buffer record.
    pub fn parse(data: &[u8]) -> Result<Event> {
        if data.len() < std::mem::size_of::<RawEvent>() {
            bail!("short event from the BPF program ({} bytes)", data.len());
        }
        // SAFETY: RawEvent is plain old data and `data` is long enough; the
        // read is unaligned-safe.
        let raw: RawEvent = unsafe { std::ptr::read_unaligned(data.as_ptr() as *const RawEvent) };
        let nframes = (raw.frames_len.max(0) as usize / 8).min(MAX_FRAMES);
        let stack_len = (raw.stack_len as usize).min(STACK_COPY);
        Ok(Event {
            time: boot_to_wall(raw.boot_ns),
            pid: raw.pid,
            tid: raw.tid,
            comm: cstr(&raw.comm),
            pcomm: cstr(&raw.pcomm),
            nr: raw.nr,
            ret: raw.ret,
            args: raw.args,
            ip: raw.ip,
            sp: raw.sp,
            bp: raw.bp,
            hit: raw.hit,
            signal_err: raw.signal_err,
            fp_frames: raw.frames[..nframes].iter().copied().filter(|&a| a != 0).collect(),
            stack: raw.stack[..stack_len].to_vec(),
        })
    }

    /// The syscall's name.
    pub fn syscall(&self) -> String {
        names::syscall_name(self.nr)
    }

    /// `close(fd=7) = -1 EBADF (Bad file descriptor)`.
    pub fn call_line(&self) -> String {
        let args = match arg_names(&self.syscall()) {
            Some(names) => names
                .iter()
                .zip(self.args.iter())
                .map(|(n, v)| format!("{n}={}", show_value(*v)))
                .collect::<Vec<_>>()
                .join(", "),
            None => self.args.iter().map(|v| show_value(*v)).collect::<Vec<_>>().join(", "),
        };
        format!("{}({args}) = {}", self.syscall(), show_ret(self.ret))
    }

    /// `2026-11-28 08:31:02.123456 UTC`.
    pub fn time_text(&self) -> String {
        let d = self.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs() as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, dd) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{dd:02} {:02}:{:02}:{:02}.{:06} UTC",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            d.subsec_micros()
        )
    }
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Small values (fds, sizes, flags, -1) in decimal, addresses in hex.
fn show_value(v: u64) -> String {
    let s = v as i64;
    if (-4096..=0xffff_ffff).contains(&s) {
        s.to_string()
    } else {
        format!("{v:#x}")
    }
}

/// `-1 EBADF (Bad file descriptor)` for -9, the value otherwise.
fn show_ret(ret: i64) -> String {
    if (-4095..0).contains(&ret) {
        let n = (-ret) as i32;
        match names::errno_name(n) {
            Some(name) => format!("-1 {name} ({})", names::errno_description(n)),
            None => format!("-1 errno {n} ({})", names::errno_description(n)),
        }
    } else {
        show_value(ret as u64)
    }
}

/// Argument names of common syscalls (from their man pages); others are
/// printed positionally, all six registers.
fn arg_names(syscall: &str) -> Option<&'static [&'static str]> {
    Some(match syscall {
        "close" | "fsync" | "fdatasync" | "syncfs" | "dup" => &["fd"],
        "read" | "write" => &["fd", "buf", "count"],
        "pread64" | "pwrite64" => &["fd", "buf", "count", "offset"],
        "readv" | "writev" => &["fd", "iov", "iovcnt"],
        "open" => &["pathname", "flags", "mode"],
        "openat" => &["dirfd", "pathname", "flags", "mode"],
        "creat" => &["pathname", "mode"],
        "lseek" => &["fd", "offset", "whence"],
        "dup2" => &["oldfd", "newfd"],
        "dup3" => &["oldfd", "newfd", "flags"],
        "ioctl" => &["fd", "request", "arg"],
        "fcntl" => &["fd", "cmd", "arg"],
        "fstat" => &["fd", "statbuf"],
        "stat" | "lstat" => &["pathname", "statbuf"],
        "newfstatat" => &["dirfd", "pathname", "statbuf", "flags"],
        "statx" => &["dirfd", "pathname", "flags", "mask", "statxbuf"],
        "access" => &["pathname", "mode"],
        "faccessat" | "faccessat2" => &["dirfd", "pathname", "mode", "flags"],
        "unlink" | "rmdir" | "chdir" => &["pathname"],
        "unlinkat" => &["dirfd", "pathname", "flags"],
        "mkdir" => &["pathname", "mode"],
        "mkdirat" => &["dirfd", "pathname", "mode"],
        "rename" => &["oldpath", "newpath"],
        "renameat" | "renameat2" => &["olddirfd", "oldpath", "newdirfd", "newpath", "flags"],
        "ftruncate" => &["fd", "length"],
        "truncate" => &["path", "length"],
        "socket" => &["domain", "type", "protocol"],
        "connect" | "bind" => &["sockfd", "addr", "addrlen"],
        "accept" => &["sockfd", "addr", "addrlen"],
        "accept4" => &["sockfd", "addr", "addrlen", "flags"],
        "listen" => &["sockfd", "backlog"],
        "sendto" => &["sockfd", "buf", "len", "flags", "dest_addr", "addrlen"],
        "recvfrom" => &["sockfd", "buf", "len", "flags", "src_addr", "addrlen"],
        "sendmsg" | "recvmsg" => &["sockfd", "msg", "flags"],
        "shutdown" => &["sockfd", "how"],
        "mmap" => &["addr", "length", "prot", "flags", "fd", "offset"],
        "munmap" => &["addr", "length"],
        "mprotect" => &["addr", "len", "prot"],
        "brk" => &["addr"],
        "kill" => &["pid", "sig"],
        "tgkill" => &["tgid", "tid", "sig"],
        "exit" | "exit_group" => &["status"],
        "wait4" => &["pid", "wstatus", "options", "rusage"],
        "pipe" => &["pipefd"],
        "pipe2" => &["pipefd", "flags"],
        "epoll_ctl" => &["epfd", "op", "fd", "event"],
        "epoll_wait" => &["epfd", "events", "maxevents", "timeout"],
        "poll" => &["fds", "nfds", "timeout"],
        "futex" => &["uaddr", "futex_op", "val", "timeout", "uaddr2", "val3"],
        "nanosleep" => &["req", "rem"],
        "getpid" | "gettid" | "getppid" | "sync" | "sched_yield" => &[],
        "execve" => &["pathname", "argv", "envp"],
        "chmod" => &["pathname", "mode"],
        "fchmod" => &["fd", "mode"],
        "getdents64" => &["fd", "dirp", "count"],
        "eventfd2" => &["initval", "flags"],
        "close_range" => &["first", "last", "flags"],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_calls_and_errors() {
        assert_eq!(show_ret(-9), "-1 EBADF (Bad file descriptor)");
        assert_eq!(show_ret(3), "3");
        assert_eq!(show_value(0x7ffd_1234_5678), "0x7ffd12345678");
        assert_eq!(show_value(u64::MAX), "-1");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_420), (2025, 11, 28));
    }

    #[test]
    fn event_layout_matches_bpf() {
        // 8+4+4+8+8+48+24+4+4+4+4+16+16+127*8+32768 bytes, 8-aligned.
        assert_eq!(std::mem::size_of::<RawEvent>(), 33_936);
    }
}
