//! A `log` backend: `log::info!` and friends write Bunyan records.
//!
//! Levels map Trace→10, Debug→20, Info→30, Warn→40, Error→50.  The global
//! `log` max level is set to Trace so that below-level records still reach
//! the USDT probes; each suppressed call then costs a call into
//! [`LogBackend::log`], which checks the level and the probe semaphore.

use crate::{usdt, Level, Logger};

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
        self.logger.log(map_level(record.level()), *record.args());
    }

    fn flush(&self) {}
}
