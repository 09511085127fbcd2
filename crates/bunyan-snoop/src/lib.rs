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
//!   Records longer than [`MAX_RECORD`] bytes, and records whose text cannot
//!   be read, are counted apart ([`Stats`]).
//! * A process whose probes are not there yet (a node that has not created
//!   its first bunyan logger, so dtrace-provider has not made the probes) is
//!   waited for, up to [`Options::probe_wait`].

pub mod notes;
mod session;
mod signals;
mod targets;

pub use targets::{semaphores, Semaphore, Spec};

/// The longest record (bytes of JSON) that is delivered (1 MiB - 2); longer
/// ones are counted in [`Stats::too_long`].  Records up to 32 KiB are copied
/// at their size; longer ones take a 1 MiB slot of the 16 MiB ring buffer
/// while in flight.
pub const MAX_RECORD: usize = (1 << 20) - 2;

/// What a snooping session delivered and lost (counted in the kernel).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records handed to the callback.
    pub delivered: u64,
    /// Records dropped because the ring buffer was full: the reader fell
    /// behind.
    pub dropped: u64,
    /// Records longer than [`MAX_RECORD`] bytes, left out.
    pub too_long: u64,
    /// Records whose text could not be read from the target's memory.
    pub unreadable: u64,
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
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Snoop only records at this Bunyan level or above (`bunyan -p PID -l
    /// info`): the probes of lower levels are not enabled at all, so the
    /// targets do not even build those records.  0 (the default) snoops
    /// every level; above 60 is an error.
    pub min_level: u8,
    /// How long to wait for the probes of a process that has none yet
    /// (PID and NAME specs); `None` means [`DEFAULT_PROBE_WAIT`].  Messages
    /// about the wait go to `on_notice`.
    pub probe_wait: Option<std::time::Duration>,
    /// Where to say what the session is waiting for (one line each, no
    /// prefix); `None` stays silent.
    pub notices: Option<fn(&str)>,
}

/// How long a process without probes is waited for by default.
pub const DEFAULT_PROBE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// [`run`] with [`Options`].
pub fn run_with(
    spec: &str,
    options: Options,
    on_record: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<Stats> {
    session::run(spec, options, on_record)
}
