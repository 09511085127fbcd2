//! A `log` backend: `log::info!` and friends write Bunyan records.
//!
//! Levels map Trace→10, Debug→20, Info→30, Warn→40, Error→50.  Key-values
//! (`log::info!(user = "ann", n = 3; "msg")`) become fields: numbers and
//! booleans as JSON numbers and booleans, anything else as its text.  The global
//! `log` max level is set to Trace so that below-level records still reach
//! the USDT probes; each suppressed call then costs a call into
//! [`LogBackend::log`], which checks the level and the probe semaphore.

use log::kv::{Key, Value, VisitSource};

use crate::{usdt, Level, Logger, Record};

/// Routes the `log` facade through a [`Logger`]; install with
/// [`LogBackend::init`].
pub struct LogBackend {
    logger: Logger,
}

impl LogBackend {
    /// A backend writing through `logger`.
    pub fn new(logger: Logger) -> LogBackend {
        LogBackend { logger }
    }

    /// Installs a backend writing through `logger` as the global `log`
    /// logger (fails if one is already installed).
    pub fn init(logger: Logger) -> Result<(), log::SetLoggerError> {
        log::set_boxed_logger(Box::new(LogBackend::new(logger)))?;
        log::set_max_level(log::LevelFilter::Trace);
        Ok(())
    }
}

fn map_level(level: log::Level) -> Level {
    match level {
        log::Level::Error => Level::Error,
        log::Level::Warn => Level::Warn,
        log::Level::Info => Level::Info,
        log::Level::Debug => Level::Debug,
        log::Level::Trace => Level::Trace,
    }
}

impl log::Log for LogBackend {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        let level = map_level(meta.level());
        self.logger.is_enabled(level) || usdt::enabled(level)
    }

    fn log(&self, record: &log::Record<'_>) {
        let Some(rec) = self.logger.record(map_level(record.level())) else {
            return;
        };
        let mut fields = Fields(Some(rec));
        // Our visitor never fails.
        let _ = record.key_values().visit(&mut fields);
        if let Some(rec) = fields.0 {
            rec.msg(*record.args());
        }
    }

    fn flush(&self) {}
}

/// Adds `log` key-values to a record.
struct Fields<'a>(Option<Record<'a>>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let Some(rec) = self.0.take() else {
            return Ok(());
        };
        let k = key.as_str();
        self.0 = Some(if let Some(v) = value.to_u64() {
            rec.field(k, &v)
        } else if let Some(v) = value.to_i64() {
            rec.field(k, &v)
        } else if let Some(v) = value.to_f64() {
            rec.field(k, &v)
        } else if let Some(v) = value.to_bool() {
            rec.field(k, &v)
        } else {
            rec.field_display(k, &value)
        });
        Ok(())
    }
}
