//! Privilege checks shared by the subcommands: loading BPF programs and
//! attaching uprobes/tracepoints needs root, or CAP_BPF plus CAP_PERFMON
//! (and CAP_SYS_PTRACE to read other users' process memory).

use anyhow::{bail, Result};
use procctl::caps::{self, CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN};

/// Fails with one line saying what is needed when this process cannot load
/// and attach BPF programs.
pub fn require_bpf(what: &str) -> Result<()> {
    let caps = caps::effective();
    if caps.has(CAP_SYS_ADMIN) || (caps.has(CAP_BPF) && caps.has(CAP_PERFMON)) {
        return Ok(());
    }
    bail!("{what} needs root, or the CAP_BPF and CAP_PERFMON capabilities: run it with sudo")
}
