//! Privilege checks shared by the subcommands: loading BPF programs and
//! attaching uprobes/tracepoints needs root, or CAP_BPF plus CAP_PERFMON
//! (and CAP_SYS_PTRACE to read other users' process memory).

use anyhow::{bail, Result};

/// Capability numbers from <linux/capability.h>.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Effective capability mask of this process, from /proc/self/status.
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

fn has_cap(mask: u64, cap: u32) -> bool {
    mask & (1u64 << cap) != 0
}

/// Fails with one line saying what is needed when this process cannot load
/// and attach BPF programs.
pub fn require_bpf(what: &str) -> Result<()> {
    let caps = effective_caps();
    let sys_admin = has_cap(caps, CAP_SYS_ADMIN);
    if sys_admin || (has_cap(caps, CAP_BPF) && has_cap(caps, CAP_PERFMON)) {
        return Ok(());
    }
    bail!("{what} needs root, or the CAP_BPF and CAP_PERFMON capabilities: run it with sudo")
}
