//! The `tracing` layer: events become Bunyan records with span fields,
//! levels mapped, errors rendered, below-level events suppressed.

mod common;

use bunyan_log::{BunyanLayer, Level, Logger, Stream};
use common::Sink;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug)]
struct Timeout;
impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream timed out")
    }
}
impl std::error::Error for Timeout {}

#[test]
fn events_become_records_with_span_fields() {
    let sink = Sink::default();
    let log = Logger::builder("traced").stream(Stream::writer("sink", sink.clone(), Level::Debug)).build();
    let subscriber = tracing_subscriber::registry().with(BunyanLayer::new(log));
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("request", req_id = 7, path = "/x");
        let _o = outer.enter();
        let inner = tracing::debug_span!("db", table = "users", rows = tracing::field::Empty);
        let _i = inner.enter();
        inner.record("rows", 3u64);
        tracing::info!(user = "ann", ok = true, ratio = 0.5, "looked up {} rows", 3);
        tracing::trace!("too detailed");
        tracing::debug!(cache = "miss", "debug event");
        let e = Timeout;
        tracing::error!(error = &e as &dyn std::error::Error, "failed");
        tracing::warn!("no fields");
    });
    let recs = sink.records();
    let levels: Vec<_> = recs.iter().map(|r| r["level"].as_u64().unwrap()).collect();
    assert_eq!(levels, [30, 20, 50, 40], "{recs:?}");
    let r = &recs[0];
    let keys: Vec<_> = r.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "name", "hostname", "pid", "level", "req_id", "path", "table", "rows", "user", "ok", "ratio", "msg",
            "time", "v"
        ]
    );
    assert_eq!(r["req_id"], 7);
    assert_eq!(r["rows"], 3);
    assert_eq!(r["ratio"], 0.5);
    assert_eq!(r["msg"], "looked up 3 rows");
    assert_eq!(recs[1]["cache"], "miss");
    assert_eq!(
        recs[2]["err"],
        json!({"message": "upstream timed out", "name": "Error", "stack": "Error: upstream timed out"})
    );
    assert_eq!(recs[3]["msg"], "no fields");
}
