//! Benchmark (bench/log-suppressed.sh): the cost of one debug call that the
//! logger's level (info) suppresses, for bunyan-log (macro, `tracing` layer,
//! `log` backend), `tracing` with its level filter and slog with a level
//! filter — each with one integer field and a formatted message.
//!
//! Mode `bunyan-written` is the cost of a debug call that is not
//! suppressed (record built and written to `io::sink`), for comparison.
//! Mode `baseline` is the empty measuring loop, for reference.  slog is
//! built with `release_max_level_trace` so its debug calls are filtered at
//! run time like the others (by default release builds compile them out).
//!
//! `suppressed MODE [MILLISECONDS]` (default 500 ms of calls) prints `{"mode":…,"ns_per_call":…,"calls":…}`.  Mode
//! `bunyan-snooped` first waits (up to 30 s) until a snooper has enabled the
//! `bunyan:log-debug` probe, so its figure is the cost of a debug call that
//! is delivered to a snooper (JSON built, probe fired, record copied).

use std::{
    hint::black_box,
    io,
    time::{Duration, Instant},
};

use bunyan_log::{BunyanLayer, Level, LogBackend, Logger, Stream};

/// Runs `f` in batches until `min` has passed; returns ns per call.
fn measure(min: Duration, mut f: impl FnMut(u64)) -> (f64, u64) {
    for i in 0..10_000 {
        f(i); // warm-up
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        for _ in 0..10_000 {
            f(black_box(n));
            n += 1;
        }
    }
    (start.elapsed().as_nanos() as f64 / n as f64, n)
}

fn bunyan_logger() -> Logger {
    Logger::builder("bench").stream(Stream::writer("sink", io::sink(), Level::Info)).build()
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let ms = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(500);
    let min = Duration::from_millis(ms);
    let (ns, calls) = match mode.as_str() {
        "baseline" => measure(min, |i| {
            black_box(i);
        }),
        "bunyan" | "bunyan-snooped" => {
            if mode == "bunyan-snooped" {
                let end = Instant::now() + Duration::from_secs(30);
                while !bunyan_log::usdt::enabled(Level::Debug) {
                    assert!(Instant::now() < end, "no snooper enabled bunyan:log-debug within 30 s");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let log = bunyan_logger();
            measure(min, |i| bunyan_log::debug!(log, req_id = i, "handled request {}", i))
        }
        "bunyan-written" => {
            // Not suppressed: the record is built and written to io::sink.
            let log = Logger::builder("bench").stream(Stream::writer("sink", io::sink(), Level::Debug)).build();
            measure(min, |i| bunyan_log::debug!(log, req_id = i, "handled request {}", i))
        }
        "bunyan-tracing" => {
            use tracing_subscriber::layer::SubscriberExt;
            let sub = tracing_subscriber::registry().with(BunyanLayer::new(bunyan_logger()));
            tracing::subscriber::with_default(sub, || {
                measure(min, |i| tracing::debug!(req_id = i, "handled request {}", i))
            })
        }
        "bunyan-log" => {
            LogBackend::init(bunyan_logger()).unwrap();
            measure(min, |i| log::debug!("handled request {} req_id={}", i, i))
        }
        "tracing" => {
            let sub = tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(io::sink).finish();
            tracing::subscriber::with_default(sub, || {
                measure(min, |i| tracing::debug!(req_id = i, "handled request {}", i))
            })
        }
        "slog" => {
            use slog::Drain;
            let drain = slog::LevelFilter::new(slog::Discard, slog::Level::Info).fuse();
            let log = slog::Logger::root(drain, slog::o!("name" => "bench"));
            measure(min, |i| slog::debug!(log, "handled request {}", i; "req_id" => i))
        }
        _ => {
            eprintln!("usage: suppressed baseline|bunyan|bunyan-snooped|bunyan-written|bunyan-tracing|bunyan-log|tracing|slog");
            std::process::exit(2);
        }
    };
    println!("{{\"mode\":\"{mode}\",\"ns_per_call\":{ns:.2},\"calls\":{calls}}}");
}
