//! Bunyan log levels (10 trace … 60 fatal) and their names.

use std::{fmt, str::FromStr};

/// A Bunyan level; the numeric value is what records carry in `level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// 10: very detailed tracing.
    Trace = 10,
    /// 20: debugging detail, usually suppressed in production.
    Debug = 20,
    /// 30: normal operation.
    Info = 30,
    /// 40: something to look at eventually.
    Warn = 40,
    /// 50: a request or operation failed.
    Error = 50,
    /// 60: the service is about to stop or is unusable.
    Fatal = 60,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 6] = [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error, Level::Fatal];

    /// The numeric Bunyan level (10, 20, … 60).
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The lower-case name (`"debug"`), as in the probe name `log-debug`.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// The level with this exact numeric value.
    pub const fn from_u8(n: u8) -> Option<Level> {
        Some(match n {
            10 => Level::Trace,
            20 => Level::Debug,
            30 => Level::Info,
            40 => Level::Warn,
            50 => Level::Error,
            60 => Level::Fatal,
            _ => return None,
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a string that names no level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLevelError(String);

impl fmt::Display for ParseLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown level {:?} (expected trace, debug, info, warn, error, fatal or 10..60)", self.0)
    }
}

impl std::error::Error for ParseLevelError {}

impl FromStr for Level {
    type Err = ParseLevelError;

    /// Accepts a name in any case (`"DEBUG"`) or a number (`"20"`).
    fn from_str(s: &str) -> Result<Level, ParseLevelError> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u8>() {
            return Level::from_u8(n).ok_or_else(|| ParseLevelError(s.to_string()));
        }
        Level::ALL.into_iter().find(|l| l.name().eq_ignore_ascii_case(t)).ok_or_else(|| ParseLevelError(s.to_string()))
    }
}
