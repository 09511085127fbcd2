//! `Record`: one log record being built, in node-bunyan's field order
//! (name, hostname, pid, bound fields, level, record fields, msg, time, v).

use std::{cell::Cell, error::Error, fmt};

use serde::Serialize;

use crate::{json, usdt, Level, Logger};

thread_local! {
    /// A reusable buffer per thread, so records do not allocate.
    static BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A record under construction: add fields, then [`Record::msg`] writes it to
/// the streams that want it and fires the `bunyan:log-<level>` probe if a
/// tracer enabled it.  Obtained from [`Logger::record`] or the macros.
pub struct Record<'a> {
    logger: &'a Logger,
    level: Level,
    buf: Vec<u8>,
}

impl<'a> Record<'a> {
    pub(crate) fn new(logger: &'a Logger, level: Level) -> Record<'a> {
        let mut buf = BUF.with(Cell::take);
        buf.clear();
        buf.extend_from_slice(logger.prefix());
        buf.extend_from_slice(b",\"level\":");
        let n = level.as_u8();
        if n >= 10 {
            buf.push(b'0' + n / 10);
        }
        buf.push(b'0' + n % 10);
        Record { logger, level, buf }
    }

    /// The record's level.
    pub fn level(&self) -> Level {
        self.level
    }

    fn key(&mut self, key: &str) {
        self.buf.push(b',');
        json::write_str(&mut self.buf, key);
        self.buf.push(b':');
    }

    /// Adds `key` with `value` serialized as JSON.  Never fails: a value that
    /// cannot be serialized becomes `"[unserializable: <why>]"`, NaN and
    /// infinite floats become `null`.
    pub fn field<V: Serialize + ?Sized>(mut self, key: &str, value: &V) -> Self {
        self.key(key);
        json::write_value(&mut self.buf, value);
        self
    }

    /// Adds `key` with `value`'s `Display` text as a string.
    pub fn field_display<V: fmt::Display + ?Sized>(mut self, key: &str, value: &V) -> Self {
        self.key(key);
        json::write_fmt_str(&mut self.buf, format_args!("{value}"));
        self
    }

    /// Adds `key` with `value`'s `Debug` text as a string.
    pub fn field_debug<V: fmt::Debug + ?Sized>(mut self, key: &str, value: &V) -> Self {
        self.key(key);
        json::write_fmt_str(&mut self.buf, format_args!("{value:?}"));
        self
    }

    /// Adds `err` as `{message, name, stack}` (see [`crate::err`]).
    pub fn err<E: Error + ?Sized>(self, e: &E) -> Self {
        self.field("err", &crate::err(e))
    }

    /// Adds already-rendered `,"k":v` pairs (the tracing layer's span fields).
    pub(crate) fn raw_fields(mut self, fragment: &[u8]) -> Self {
        self.buf.extend_from_slice(fragment);
        self
    }

    /// Finishes the record with message `args` (plus `time` and `v`), fires
    /// the USDT probe if enabled and writes it to the streams whose level it
    /// meets.
    pub fn msg(mut self, args: fmt::Arguments<'_>) {
        let buf = &mut self.buf;
        buf.extend_from_slice(b",\"msg\":");
        json::write_fmt_str(buf, args);
        buf.extend_from_slice(b",\"time\":");
        json::write_now(buf);
        buf.extend_from_slice(b",\"v\":0}");
        if usdt::enabled(self.level) {
            buf.push(0);
            usdt::fire(self.level, buf);
            buf.pop();
        }
        if self.logger.is_enabled(self.level) {
            buf.push(b'\n');
            self.logger.write_line(self.level, buf);
        }
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        // Keep a reasonably sized buffer; let a huge one go.
        if buf.capacity() <= 1 << 20 {
            BUF.with(|b| b.set(buf));
        }
    }
}
