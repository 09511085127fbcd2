//! `Logger`: name, hostname, pid, bound fields and the shared streams;
//! `Builder` makes a root logger, `ChildBuilder` a child with more fields.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
};

use serde::Serialize;

use crate::{json, Level, Record, Stream};

/// What every logger derived from one root shares: the streams.
struct Core {
    streams: Vec<Stream>,
    /// Lowest level of any stream: below it nothing is written.
    min_level: AtomicU8,
}

impl Core {
    fn recompute_min(&self) {
        let min = self.streams.iter().map(Stream::level_u8).min().unwrap_or(u8::MAX);
        self.min_level.store(min, Ordering::Relaxed);
    }
}

struct Inner {
    /// Bound fields, each rendered once: (key, JSON value).  Starts with
    /// name, hostname and pid.
    fields: Vec<(String, Vec<u8>)>,
    /// `{"name":…,"hostname":…,"pid":…,<bound fields>` — the start of
    /// every record this logger writes.
    prefix: Vec<u8>,
}

/// A Bunyan logger.  Cheap to clone; clones and children share streams.
///
/// ```
/// use bunyan_log::{info, Level, Logger, Stream};
/// let log = Logger::builder("myapp").stream(Stream::stderr(Level::Info)).build();
/// let req = log.child().field("req_id", &42).build();
/// info!(req, user = "ann", "logged in after {} tries", 3);
/// ```
#[derive(Clone)]
pub struct Logger {
    /// Held here, not in `Inner`, so the level check is one load less.
    core: Arc<Core>,
    inner: Arc<Inner>,
}

impl Logger {
    /// A logger named `name` writing info and above to stdout.
    pub fn new(name: &str) -> Logger {
        Logger::builder(name).build()
    }

    /// Starts building a root logger named `name`.
    pub fn builder(name: &str) -> Builder {
        Builder { name: name.to_string(), hostname: None, streams: Vec::new(), fields: Vec::new() }
    }

    /// Starts building a child logger: same streams, more bound fields.
    pub fn child(&self) -> ChildBuilder<'_> {
        ChildBuilder { parent: self, fields: self.inner.fields.clone() }
    }

    /// Whether a record at `level` would be written to some stream.  (The
    /// macros also build records that only a USDT probe wants.)
    #[inline(always)]
    pub fn is_enabled(&self, level: Level) -> bool {
        level.as_u8() >= self.core.min_level.load(Ordering::Relaxed)
    }

    /// Sets the level of every stream (like node-bunyan's `log.level(x)`);
    /// affects every logger sharing these streams.
    pub fn set_level(&self, level: Level) {
        for s in &self.core.streams {
            s.set_level(level);
        }
        self.core.recompute_min();
    }

    /// The lowest level of any stream (node-bunyan's `log.level()`).
    pub fn level(&self) -> Level {
        Level::from_u8(self.core.min_level.load(Ordering::Relaxed)).unwrap_or(Level::Fatal)
    }

    /// Starts a record at `level`; add fields, then call
    /// [`Record::msg`].  Returns `None` (cheaply) when neither a stream nor
    /// a USDT probe wants the record.
    #[inline]
    pub fn record(&self, level: Level) -> Option<Record<'_>> {
        if self.is_enabled(level) || crate::usdt::enabled(level) {
            Some(Record::new(self, level))
        } else {
            None
        }
    }

    /// Writes a record at `level` with message `args` and no fields.
    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        if let Some(r) = self.record(level) {
            r.msg(args);
        }
    }

    pub(crate) fn prefix(&self) -> &[u8] {
        &self.inner.prefix
    }

    /// Hands a finished line (JSON + `\n`) to the streams that want it.
    pub(crate) fn write_line(&self, level: Level, line: &[u8]) {
        for s in &self.core.streams {
            if level.as_u8() >= s.level_u8() {
                s.write_line(line);
            }
        }
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("prefix", &String::from_utf8_lossy(&self.inner.prefix))
            .field("level", &self.level())
            .finish()
    }
}

fn set_field(fields: &mut Vec<(String, Vec<u8>)>, key: &str, value: Vec<u8>) {
    match fields.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => fields.push((key.to_string(), value)),
    }
}

fn render<V: Serialize + ?Sized>(value: &V) -> Vec<u8> {
    let mut v = Vec::new();
    json::write_value(&mut v, value);
    v
}

fn make_inner(core: Arc<Core>, fields: Vec<(String, Vec<u8>)>) -> Logger {
    let mut prefix = vec![b'{'];
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            prefix.push(b',');
        }
        json::write_str(&mut prefix, k);
        prefix.push(b':');
        prefix.extend_from_slice(v);
    }
    Logger { core, inner: Arc::new(Inner { fields, prefix }) }
}

/// Builds a root [`Logger`].
pub struct Builder {
    name: String,
    hostname: Option<String>,
    streams: Vec<Stream>,
    fields: Vec<(String, Vec<u8>)>,
}

impl Builder {
    /// Adds an output stream.  Without any, records at info and above go to
    /// stdout.
    pub fn stream(mut self, stream: Stream) -> Builder {
        self.streams.push(stream);
        self
    }

    /// Overrides the `hostname` field (default: the machine's host name).
    pub fn hostname(mut self, hostname: &str) -> Builder {
        self.hostname = Some(hostname.to_string());
        self
    }

    /// Binds a field to every record (after name, hostname and pid).
    pub fn field<V: Serialize + ?Sized>(mut self, key: &str, value: &V) -> Builder {
        set_field(&mut self.fields, key, render(value));
        self
    }

    /// The logger.
    pub fn build(self) -> Logger {
        let mut streams = self.streams;
        if streams.is_empty() {
            streams.push(Stream::stdout(Level::Info));
        }
        let core = Arc::new(Core { streams, min_level: AtomicU8::new(0) });
        core.recompute_min();
        let hostname = self.hostname.unwrap_or_else(host_name);
        let mut fields = vec![
            ("name".to_string(), render(&self.name)),
            ("hostname".to_string(), render(&hostname)),
            ("pid".to_string(), render(&std::process::id())),
        ];
        for (k, v) in self.fields {
            set_field(&mut fields, &k, v);
        }
        make_inner(core, fields)
    }
}

/// Builds a child [`Logger`]: the parent's streams and fields, plus more.
pub struct ChildBuilder<'a> {
    parent: &'a Logger,
    fields: Vec<(String, Vec<u8>)>,
}

impl ChildBuilder<'_> {
    /// Binds `key` (replacing a parent's field of that name).
    pub fn field<V: Serialize + ?Sized>(mut self, key: &str, value: &V) -> Self {
        set_field(&mut self.fields, key, render(value));
        self
    }

    /// The child logger.
    pub fn build(self) -> Logger {
        make_inner(self.parent.core.clone(), self.fields)
    }
}

/// The machine's host name (empty if it cannot be read).
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
