//! Output streams: where records go, each with its own minimum level.

use std::{
    fs::OpenOptions,
    io::{self, Write},
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering},
        Mutex,
    },
};

use crate::Level;

/// One destination for records (stdout, stderr, a file, any `Write`), with
/// its own level: a record is written to every stream whose level it meets.
pub struct Stream {
    name: String,
    level: AtomicU8,
    sink: Mutex<Box<dyn Write + Send>>,
    failed: AtomicBool,
}

impl Stream {
    /// Records at `level` or above go to standard output.
    pub fn stdout(level: Level) -> Stream {
        Stream::writer("stdout", io::stdout(), level)
    }

    /// Records at `level` or above go to standard error.
    pub fn stderr(level: Level) -> Stream {
        Stream::writer("stderr", io::stderr(), level)
    }

    /// Records at `level` or above are appended to the file at `path`
    /// (created if missing).
    pub fn file(path: impl AsRef<Path>, level: Level) -> io::Result<Stream> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("opening log file {}: {e}", path.display())))?;
        Ok(Stream::writer(path.display().to_string(), file, level))
    }

    /// Records at `level` or above go to `sink`; `name` identifies the
    /// stream in the one-line error printed if writing ever fails.
    pub fn writer(name: impl Into<String>, sink: impl Write + Send + 'static, level: Level) -> Stream {
        Stream {
            name: name.into(),
            level: AtomicU8::new(level.as_u8()),
            sink: Mutex::new(Box::new(sink)),
            failed: AtomicBool::new(false),
        }
    }

    /// This stream's minimum level.
    pub fn level(&self) -> Level {
        Level::from_u8(self.level.load(Ordering::Relaxed)).unwrap_or(Level::Info)
    }

    pub(crate) fn level_u8(&self) -> u8 {
        self.level.load(Ordering::Relaxed)
    }

    pub(crate) fn set_level(&self, level: Level) {
        self.level.store(level.as_u8(), Ordering::Relaxed);
    }

    /// Writes one complete line.  A failure is reported once on stderr and
    /// logging goes on (a logger must not take the service down).
    pub(crate) fn write_line(&self, line: &[u8]) {
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = sink.write_all(line).and_then(|_| sink.flush()) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "bunyan-log: writing to log stream {} failed: {e} (further errors on it are not reported)",
                    self.name
                );
            }
        }
    }
}
