//! ELF core file writer for live Linux processes (not yet implemented).

use std::path::Path;

/// Options for [`write_core`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Refuse to write more than this many bytes (the file is removed).
    pub max_size: Option<u64>,
}

/// What [`write_core`] did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Bytes written to the core file.
    pub bytes: u64,
    /// Number of threads dumped.
    pub threads: usize,
    /// How long the target was frozen.
    pub paused: std::time::Duration,
}

/// Writes a core file of live process `pid` to `path` (through a temporary
/// file renamed into place, mode 0600), freezing all threads while memory is
/// copied and resuming them before returning.
pub fn write_core(pid: u32, path: &Path, opts: &Options) -> anyhow::Result<Report> {
    let _ = (pid, path, opts);
    anyhow::bail!("core writing is not implemented yet")
}
