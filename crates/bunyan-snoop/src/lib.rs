//! Snooping Bunyan records from live processes (`bunyan -p`).
//!
//! [`run`] finds the processes a spec selects (a PID, a name, or `*`), the
//! ELF files they map that carry `bunyan:log-*` USDT probes ([`notes`]:
//! main binary, shared libraries, objects generated at run time and deleted
//! from disk — reached through `/proc/PID/map_files/`), attaches one eBPF
//! program to those probes with libbpf's USDT support, and hands each
//! record's JSON text to a callback.
//!
//! * Semaphores are managed by the kernel (uprobe `ref_ctr_offset`): they go
//!   up while attached and back to 0 when the links close, including when
//!   the snooper is killed with SIGKILL.  [`semaphores`] reads them.
//! * Records flow through a 16 MiB BPF ring buffer.  When it is full the
//!   BPF program drops the record and counts it; the target never waits.
//!   Records longer than [`MAX_RECORD`] bytes are dropped and counted too.

pub mod notes;
mod session;
mod signals;
mod targets;

pub use targets::{semaphores, Semaphore, Spec};

/// The longest record (bytes of JSON) that is delivered; longer ones are
/// counted in [`Stats::dropped`].
pub const MAX_RECORD: usize = 32766;

/// What a snooping session delivered and lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records handed to the callback.
    pub delivered: u64,
    /// Records dropped in the kernel because the reader fell behind (or
    /// the record was longer than [`MAX_RECORD`]).
    pub dropped: u64,
}

/// Snoops the processes named by `spec` (a PID or comma-separated PIDs, a
/// process name, or `*` for every process whose mapped files carry bunyan
/// probes), calling `on_record` with each record's JSON text.
///
/// Returns on Ctrl-C/SIGTERM (handled here; the previous handlers are
/// restored), or when every target has exited (PID and name specs; `*` runs
/// until interrupted, picking up processes that start later).  An error from
/// `on_record` stops snooping and is returned.  For a name spec, processes
/// that start later are picked up while at least one target lives.
///
/// Signal handling is process-wide: sessions running at the same time in one
/// process all deliver records, but Ctrl-C handling is only reliable with
/// one session at a time.
pub fn run(spec: &str, on_record: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>) -> anyhow::Result<Stats> {
    session::run(spec, Options::default(), on_record)
}

/// How to snoop, for [`run_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Snoop only records at this Bunyan level or above (`bunyan -p PID -l
    /// info`): the probes of lower levels are not enabled at all, so the
    /// targets do not even build those records.  0 (the default) snoops
    /// every level; above 60 is an error.
    pub min_level: u8,
}

/// [`run`] with [`Options`].
pub fn run_with(
    spec: &str,
    options: Options,
    on_record: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<Stats> {
    session::run(spec, options, on_record)
}
