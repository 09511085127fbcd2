//! A `tracing` layer: events become Bunyan records, with the fields of the
//! spans they happen in (outermost first), then the event's own fields.
//!
//! Levels map TRACE→10, DEBUG→20, INFO→30, WARN→40, ERROR→50.  The event's
//! `message` becomes `msg`; a field recorded as an error (`error = &e as &dyn
//! Error`) is rendered as `{message, name, stack}` and a field named `error`
//! that way is written as `err`, Bunyan's convention.
//!
//! The layer reports every callsite as "sometimes" interesting and decides
//! per event: a stream wants it, or a `bunyan:log-<level>` probe is enabled.
//! So below-level events stay visible to snooping, at the cost of one
//! `enabled` call per suppressed event.

use std::{error::Error, fmt};

use tracing::{
    field::{Field, Visit},
    span, Event, Metadata, Subscriber,
};
use tracing_subscriber::{layer::Context, registry::LookupSpan, Layer};

use crate::{json, usdt, Level, Logger};

/// Writes `tracing` events through a [`Logger`]:
/// `tracing_subscriber::registry().with(BunyanLayer::new(log)).init()`.
pub struct BunyanLayer {
    logger: Logger,
}

impl BunyanLayer {
    /// A layer writing through `logger`.
    pub fn new(logger: Logger) -> BunyanLayer {
        BunyanLayer { logger }
    }
}

fn map_level(level: &tracing::Level) -> Level {
    match *level {
        tracing::Level::TRACE => Level::Trace,
        tracing::Level::DEBUG => Level::Debug,
        tracing::Level::INFO => Level::Info,
        tracing::Level::WARN => Level::Warn,
        tracing::Level::ERROR => Level::Error,
    }
}

/// A span's fields, rendered as `,"k":v` pairs.
struct SpanFields(Vec<u8>);

/// Renders visited fields as `,"k":v` pairs; keeps `message` aside.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    message: Option<&'a mut String>,
}

impl Fields<'_> {
    fn key(&mut self, name: &str) {
        self.out.push(b',');
        json::write_str(self.out, name);
        self.out.push(b':');
    }

    fn value<V: serde::Serialize + ?Sized>(&mut self, field: &Field, v: &V) {
        self.key(field.name());
        json::write_value(self.out, v);
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match (field.name(), self.message.as_deref_mut()) {
            ("message", Some(m)) => m.push_str(value),
            _ => self.value(field, value),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, &value)
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, &value)
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.value(field, &value)
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.value(field, &value)
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field, &value)
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, &value)
    }
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        let name = match field.name() {
            "error" => "err",
            n => n,
        };
        self.key(name);
        json::write_value(self.out, &crate::err(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match (field.name(), self.message.as_deref_mut()) {
            ("message", Some(m)) => {
                use fmt::Write;
                let _ = write!(m, "{value:?}");
            }
            _ => {
                self.key(field.name());
                json::write_fmt_str(self.out, format_args!("{value:?}"));
            }
        }
    }
}

impl<S> Layer<S> for BunyanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, _meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // Probes can be switched on at any time: decide per event.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        if meta.is_span() {
            return true;
        }
        let level = map_level(meta.level());
        self.logger.is_enabled(level) || usdt::enabled(level)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut out = Vec::new();
        attrs.record(&mut Fields { out: &mut out, message: None });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(out));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanFields(out)) = ext.get_mut::<SpanFields>() {
                values.record(&mut Fields { out, message: None });
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = map_level(event.metadata().level());
        let Some(mut rec) = self.logger.record(level) else {
            return;
        };
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                    rec = rec.raw_fields(f);
                }
            }
        }
        let mut own = Vec::new();
        let mut message = String::new();
        event.record(&mut Fields { out: &mut own, message: Some(&mut message) });
        rec.raw_fields(&own).msg(format_args!("{message}"));
    }
}
