//! Bunyan-format logging for Rust services, with USDT probes.
//!
//! Records are node-bunyan's: one JSON object per line with `name`,
//! `hostname`, `pid`, `level` (10 trace … 60 fatal), your fields, `msg`,
//! `time` (ISO 8601 UTC, milliseconds) and `v` 0, in node-bunyan's order.
//!
//! * [`Logger`]: root loggers with streams ([`Stream`]: stdout, stderr, a
//!   file, any `Write`), each stream with its own level; child loggers with
//!   bound fields.
//! * Macros [`trace!`] … [`fatal!`]: `info!(log, user = "ann", n = 3, "hello
//!   {}", who)`; `key = value` serializes with serde, `key = %value` uses
//!   `Display`, `key = ?value` uses `Debug`, `err = e` renders an error as
//!   `{message, name, stack}`.
//! * USDT probes `bunyan:log-trace` … `bunyan:log-fatal` ([`usdt`]): every
//!   record at every level, including those below the logger's level, is
//!   handed to a tracer that enabled the probe; when none did, a suppressed
//!   call costs a load and a branch.
//! * [`BunyanLayer`], a `tracing` layer, and [`LogBackend`], a `log` backend,
//!   so code using those facades logs through this logger unchanged.
//!
//! ```
//! use bunyan_log::{child, debug, error, info, Level, Logger, Stream};
//!
//! let log = Logger::builder("myapp")
//!     .stream(Stream::stdout(Level::Info))
//!     .stream(Stream::stderr(Level::Error))
//!     .build();
//! let req = child!(log, component = "handler", req_id = 42);
//! let peer: std::net::SocketAddr = "10.0.0.1:80".parse().unwrap();
//! info!(req, user = "ann", peer = %peer, tags = ["a", "b"], "served {} in {} ms", "/items", 12);
//! debug!(req, state = ?Some(3), "only a snooper sees this");
//! let e = std::io::Error::new(std::io::ErrorKind::NotFound, "no such order");
//! error!(req, err = e, "lookup failed");
//! ```

mod err;
mod json;
mod level;
mod log_backend;
mod logger;
mod record;
mod stream;
mod tracing_layer;
pub mod usdt;

pub use err::{err, ErrValue};
pub use level::{Level, ParseLevelError};
pub use log_backend::LogBackend;
pub use logger::{Builder, ChildBuilder, Logger};
pub use record::Record;
pub use stream::Stream;
pub use tracing_layer::BunyanLayer;

/// Logs at an explicit [`Level`]: `log!(logger, Level::Info, k = v, "msg {}", x)`.
///
/// Fields come first, as `key = value` (serde), `key = %value` (`Display`),
/// `key = ?value` (`Debug`) or `err = error` (an `std::error::Error`); then
/// the message as in `format!`.  Nothing is evaluated unless a stream or an
/// enabled USDT probe wants the record.
#[macro_export]
macro_rules! log {
    ($logger:expr, $level:expr, $($rest:tt)+) => {{
        if let ::core::option::Option::Some(__rec) = $crate::Logger::record(&$logger, $level) {
            $crate::__fields!(__rec; $($rest)+);
        }
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __fields {
    ($rec:ident; err = $v:expr, $($rest:tt)+) => {{
        let $rec = $rec.err(&$v);
        $crate::__fields!($rec; $($rest)+)
    }};
    ($rec:ident; $k:ident = % $v:expr, $($rest:tt)+) => {{
        let $rec = $rec.field_display(::core::stringify!($k), &$v);
        $crate::__fields!($rec; $($rest)+)
    }};
    ($rec:ident; $k:ident = ? $v:expr, $($rest:tt)+) => {{
        let $rec = $rec.field_debug(::core::stringify!($k), &$v);
        $crate::__fields!($rec; $($rest)+)
    }};
    ($rec:ident; $k:ident = $v:expr, $($rest:tt)+) => {{
        let $rec = $rec.field(::core::stringify!($k), &$v);
        $crate::__fields!($rec; $($rest)+)
    }};
    ($rec:ident; $($msg:tt)+) => {
        $rec.msg(::core::format_args!($($msg)+))
    };
}

/// Logs at trace (10); see [`log!`] for the syntax.
#[macro_export]
macro_rules! trace {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Trace, $($rest)+) };
}

/// Logs at debug (20); see [`log!`] for the syntax.
#[macro_export]
macro_rules! debug {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Debug, $($rest)+) };
}

/// Logs at info (30); see [`log!`] for the syntax.
#[macro_export]
macro_rules! info {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Info, $($rest)+) };
}

/// Logs at warn (40); see [`log!`] for the syntax.
#[macro_export]
macro_rules! warn {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Warn, $($rest)+) };
}

/// Logs at error (50); see [`log!`] for the syntax.
#[macro_export]
macro_rules! error {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Error, $($rest)+) };
}

/// Logs at fatal (60); see [`log!`] for the syntax.
#[macro_export]
macro_rules! fatal {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Fatal, $($rest)+) };
}

/// A child logger with bound fields: `child!(log, component = "db", shard = 3)`
/// (same `key = value` / `%` / `?` forms as the logging macros).
#[macro_export]
macro_rules! child {
    ($logger:expr, $($rest:tt)+) => {{
        let __b = $crate::Logger::child(&$logger);
        $crate::__child_fields!(__b; $($rest)+)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __child_fields {
    ($b:ident; ) => { $b.build() };
    ($b:ident; $k:ident = % $v:expr $(, $($rest:tt)*)?) => {{
        let $b = $b.field(::core::stringify!($k), &::std::string::ToString::to_string(&$v));
        $crate::__child_fields!($b; $($($rest)*)?)
    }};
    ($b:ident; $k:ident = ? $v:expr $(, $($rest:tt)*)?) => {{
        let $b = $b.field(::core::stringify!($k), &::std::format!("{:?}", $v));
        $crate::__child_fields!($b; $($($rest)*)?)
    }};
    ($b:ident; $k:ident = $v:expr $(, $($rest:tt)*)?) => {{
        let $b = $b.field(::core::stringify!($k), &$v);
        $crate::__child_fields!($b; $($($rest)*)?)
    }};
}
