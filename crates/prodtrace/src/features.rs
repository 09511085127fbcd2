//! Kernel features the tools depend on, detected on the running kernel
//! (libbpf's feature probes, or a trial of the thing itself), each with the
//! first Linux version that has it, so that a tool can either take the path
//! this kernel supports or refuse in one line:
//! `prodtrace latency needs BPF cookies on uprobes (Linux 5.15+); this kernel is 5.10.0`.
//!
//! Every probe runs at most once per process (results are cached).  Probes
//! that load a BPF program need root (or CAP_BPF); without it they report
//! [`Found::Unknown`].  `prodtrace doctor` prints them all.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::{bail, Result};
use libbpf_rs::libbpf_sys as sys;

/// A kernel feature some tool needs or prefers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// The kernel's own BTF, `/sys/kernel/btf/vmlinux`: CO-RE relocations
    /// of every BPF program (CONFIG_DEBUG_INFO_BTF).
    Btf,
    /// BPF ring buffer maps (every tool's events).
    RingBuf,
    /// `bpf_get_attach_cookie()` in uprobe programs attached through perf
    /// events (BPF perf links).
    UprobeCookies,
    /// uprobe_multi links, with the PID filter that covers every thread of
    /// the process (fixed after the first release, see [`uprobe_multi`]).
    UprobeMulti,
    /// `bpf_send_signal_thread()` in tracing programs (`catch`).
    SendSignalThread,
    /// The `PAGEMAP_SCAN` ioctl on /proc/PID/pagemap (`gcore`).
    PagemapScan,
    /// BPF atomic instructions that return a value (fetch-and-add,
    /// compare-and-exchange): latency's in-flight table and catch's
    /// one-held-process latch and match numbers.
    BpfAtomics,
}

impl Feature {
    pub const ALL: [Feature; 7] = [
        Feature::Btf,
        Feature::RingBuf,
        Feature::BpfAtomics,
        Feature::UprobeCookies,
        Feature::UprobeMulti,
        Feature::SendSignalThread,
        Feature::PagemapScan,
    ];

    /// What it is, for messages (`prodtrace latency needs NAME (Linux X+)`).
    pub fn name(self) -> &'static str {
        match self {
            Feature::Btf => "the kernel's BTF type information (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)",
            Feature::RingBuf => "BPF ring buffers",
            Feature::UprobeCookies => "BPF cookies on uprobes",
            Feature::UprobeMulti => "uprobe_multi links",
            Feature::SendSignalThread => "bpf_send_signal_thread()",
            Feature::PagemapScan => "the PAGEMAP_SCAN ioctl",
            Feature::BpfAtomics => "BPF atomic fetch and compare-and-exchange instructions",
        }
    }

    /// A short label for `prodtrace doctor`'s table.
    pub fn label(self) -> &'static str {
        match self {
            Feature::Btf => "BTF (/sys/kernel/btf/vmlinux)",
            Feature::RingBuf => "BPF ring buffer",
            Feature::UprobeCookies => "BPF cookies on uprobes",
            Feature::UprobeMulti => "uprobe_multi links",
            Feature::SendSignalThread => "bpf_send_signal_thread",
            Feature::PagemapScan => "PAGEMAP_SCAN ioctl",
            Feature::BpfAtomics => "BPF atomics (fetch, cmpxchg)",
        }
    }

    /// The first mainline Linux release that has it.
    pub fn since(self) -> &'static str {
        match self {
            Feature::Btf => "5.4",
            Feature::RingBuf => "5.8",
            Feature::UprobeCookies => "5.15",
            // 6.6 introduced the links; their PID filter only covers every
            // thread of the process since 6.10 (and stable backports).
            Feature::UprobeMulti => "6.6",
            Feature::SendSignalThread => "5.5",
            Feature::PagemapScan => "6.7",
            Feature::BpfAtomics => "5.12",
        }
    }
}

/// Whether the running kernel has a feature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Yes,
    No,
    /// Could not be checked (e.g. not allowed to load BPF programs): why.
    Unknown(String),
}

impl Found {
    pub fn yes(&self) -> bool {
        *self == Found::Yes
    }
}

static CACHE: Mutex<Option<HashMap<Feature, Found>>> = Mutex::new(None);

/// Whether this kernel has `f` (probed once, then cached).
pub fn check(f: Feature) -> Found {
    if let Some(found) = CACHE.lock().unwrap().get_or_insert_with(HashMap::new).get(&f) {
        return found.clone();
    }
    let found = quietly(|| probe(f));
    CACHE.lock().unwrap().get_or_insert_with(HashMap::new).insert(f, found.clone());
    found
}

/// Whether this kernel has `f`; `Unknown` counts as no.
pub fn has(f: Feature) -> bool {
    check(f).yes()
}

/// Fails with one line when the kernel lacks `f`:
/// `prodtrace latency needs BPF cookies on uprobes (Linux 5.15+); this kernel is 5.10.0`.
pub fn require(tool: &str, f: Feature) -> Result<()> {
    match check(f) {
        Found::Yes => Ok(()),
        Found::No => bail!("{}", missing(tool, f)),
        Found::Unknown(why) => {
            bail!("{tool} needs {} (Linux {}+), which could not be checked: {why}", f.name(), f.since())
        }
    }
}

/// The one-line message for a tool that needs `f` on a kernel without it.
pub fn missing(tool: &str, f: Feature) -> String {
    format!("{tool} needs {} (Linux {}+); this kernel is {}", f.name(), f.since(), kernel_release())
}

/// The running kernel's release, as `uname -r` prints it.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs `f` with libbpf's own messages silenced (a probe that fails is an
/// answer, not a warning for the user).
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let prev = libbpf_rs::set_print(None);
    let out = f();
    libbpf_rs::set_print(prev);
    out
}

fn probe(f: Feature) -> Found {
    let loads_bpf = !matches!(f, Feature::Btf | Feature::PagemapScan);
    if loads_bpf && crate::privileges::require_bpf("").is_err() {
        // libbpf's probes answer "no" (or even "yes") when the program is
        // refused for lack of privileges.
        return Found::Unknown("checking it needs root".into());
    }
    match f {
        Feature::Btf => match std::fs::File::open("/sys/kernel/btf/vmlinux") {
            Ok(_) => Found::Yes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::No,
            Err(e) => Found::Unknown(format!("cannot read /sys/kernel/btf/vmlinux: {e}")),
        },
        Feature::RingBuf => answer(libbpf_rs::MapType::RingBuf.is_supported()),
        Feature::UprobeCookies => {
            answer(libbpf_rs::ProgramType::Kprobe.is_helper_supported(sys::BPF_FUNC_get_attach_cookie))
        }
        Feature::SendSignalThread => {
            answer(libbpf_rs::ProgramType::RawTracepoint.is_helper_supported(sys::BPF_FUNC_send_signal_thread))
        }
        Feature::UprobeMulti => uprobe_multi(),
        Feature::BpfAtomics => atomics(),
        Feature::PagemapScan => match corefile::pagemap_scan_supported() {
            Ok(true) => Found::Yes,
            Ok(false) => Found::No,
            Err(e) => Found::Unknown(format!("cannot try it on /proc/self/pagemap: {e}")),
        },
    }
}

/// A libbpf feature probe's answer; EPERM means we may not load programs.
fn answer(r: libbpf_rs::Result<bool>) -> Found {
    match r {
        Ok(true) => Found::Yes,
        Ok(false) => Found::No,
        Err(e) if e.kind() == libbpf_rs::ErrorKind::PermissionDenied => Found::Unknown("checking it needs root".into()),
        Err(e) => Found::Unknown(e.to_string()),
    }
}

/// Loads a kprobe-type program of raw instructions `insns` (struct
/// bpf_insn as little-endian u64: code, dst | src << 4, off, imm) with
/// `attach_type`; its descriptor, or the negative errno.
fn load_raw(insns: &[u64], attach_type: sys::bpf_attach_type) -> i32 {
    let mut load_opts = sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: attach_type,
        ..Default::default()
    };
    // SAFETY: the instructions and options outlive the call (libbpf may
    // write its log fields); "GPL" is a NUL-terminated string.
    unsafe {
        sys::bpf_prog_load(
            sys::BPF_PROG_TYPE_KPROBE,
            std::ptr::null(),
            c"GPL".as_ptr(),
            insns.as_ptr().cast(),
            insns.len() as _,
            &mut load_opts,
        )
    }
}

/// BPF atomics with a result: load a program that does an atomic
/// fetch-and-add on a stack slot.  Kernels before 5.12 know only the
/// plain add (XADD) and refuse the fetch flag ("uses reserved fields").
fn atomics() -> Found {
    let insns: [u64; 6] = [
        0x0000_0000_0000_01b7, // r1 = 0
        0x0000_0000_fff8_1a7b, // *(u64 *)(r10 - 8) = r1
        0x0000_0001_0000_01b7, // r1 = 1
        0x0000_0001_fff8_1adb, // r1 = atomic_fetch_add((u64 *)(r10 - 8), r1)
        0x0000_0000_0000_00b7, // r0 = 0
        0x0000_0000_0000_0095, // exit
    ];
    let prog = load_raw(&insns, 0);
    if prog < 0 {
        return if -prog == libc::EPERM { Found::Unknown("checking it needs root".into()) } else { Found::No };
    }
    // SAFETY: the program descriptor we own.
    unsafe { libc::close(prog) };
    Found::Yes
}

/// uprobe_multi links that filter by process, libbpf's own check: load a
/// program that returns 0 as a uprobe_multi program, then create a link on
/// the path "/" (a directory).  A kernel with the links fails that with
/// EBADF; one whose PID filter has been fixed (it matched only the main
/// thread before) fails a link with pid -1 with EINVAL, before looking at
/// the path.  prodtrace's worker-thread probes need the fixed filter.
fn uprobe_multi() -> Found {
    // r0 = 0; exit
    let prog = load_raw(&[0xb7, 0x95], sys::BPF_TRACE_UPROBE_MULTI);
    if prog < 0 {
        return if -prog == libc::EPERM { Found::Unknown("checking it needs root".into()) } else { Found::No };
    }
    let try_link = |pid: u32| -> i32 {
        let offset: libc::c_ulong = 0;
        let mut opts = sys::bpf_link_create_opts {
            sz: std::mem::size_of::<sys::bpf_link_create_opts>() as _,
            ..Default::default()
        };
        opts.__bindgen_anon_1.uprobe_multi = sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
            path: c"/".as_ptr(),
            offsets: &offset,
            cnt: 1,
            pid,
            ..Default::default()
        };
        // SAFETY: the options point to locals that outlive the call.
        let fd = unsafe { sys::bpf_link_create(prog, -1, sys::BPF_TRACE_UPROBE_MULTI, &opts) };
        if fd >= 0 {
            // SAFETY: a descriptor we own.
            unsafe { libc::close(fd) };
            return 0;
        }
        -fd
    };
    let found = if try_link(0) != libc::EBADF {
        Found::No
    } else if try_link(u32::MAX) == libc::EINVAL {
        Found::Yes
    } else {
        Found::No
    };
    // SAFETY: the program descriptor we own.
    unsafe { libc::close(prog) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_feature_and_version() {
        let line = missing("prodtrace latency", Feature::UprobeCookies);
        assert!(line.starts_with("prodtrace latency needs BPF cookies on uprobes (Linux 5.15+); this kernel is "));
        assert!(!line.contains('\n'));
        assert_eq!(kernel_release(), std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap().trim());
    }
}
