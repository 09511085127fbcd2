//! The `log` backend: `log::info!` and friends write Bunyan records; levels
//! below the stream's are suppressed.

mod common;

use bunyan_log::{Level, LogBackend, Logger, Stream};
use common::Sink;
use serde_json::json;

#[test]
fn log_macros_write_records() {
    let sink = Sink::default();
    let log = Logger::builder("facade").stream(Stream::writer("sink", sink.clone(), Level::Info)).build();
    LogBackend::init(log).unwrap();
    log::trace!("t");
    log::debug!("d {}", 1);
    log::info!("hello {}", "log");
    log::warn!(user = "ann", n = 3, neg = -2, ratio = 0.5, ok = true; "w");
    log::error!("e");
    let recs = sink.records();
    let got: Vec<_> =
        recs.iter().map(|r| (r["level"].as_u64().unwrap(), r["msg"].as_str().unwrap().to_string())).collect();
    assert_eq!(got, [(30, "hello log".to_string()), (40, "w".into()), (50, "e".into())]);
    assert_eq!(recs[0]["name"], "facade");
    let w = &recs[1];
    let keys: Vec<_> = w.keys().map(String::as_str).collect();
    assert_eq!(keys, ["name", "hostname", "pid", "level", "user", "n", "neg", "ratio", "ok", "msg", "time", "v"]);
    assert_eq!(
        (&w["user"], &w["n"], &w["neg"], &w["ratio"], &w["ok"]),
        (&json!("ann"), &json!(3), &json!(-2), &json!(0.5), &json!(true))
    );
    assert!(LogBackend::init(Logger::new("second")).is_err(), "a second logger must be refused");
}
