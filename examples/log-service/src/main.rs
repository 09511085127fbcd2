//! log-service: an example service for bunyan-log and `bunyan -p`.
//!
//! It "handles requests" in a loop, logs one debug record per request (which
//! its info-level stdout stream suppresses) and one info record per second
//! with its throughput.  Snooping it (`bunyan -p PID -l debug`) shows the
//! debug records without restarting it.  `--rate 0` handles requests as fast
//! as it can (the load benchmark); `--duration S` stops after S seconds and
//! prints a JSON summary line (requests, seconds, per_sec, cpu_seconds) on
//! stderr.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use anyhow::Result;
use bunyan_log::{debug, info, Level, Logger, Stream};
use clap::Parser;

#[derive(Parser)]
#[command(name = "log-service", about = "Example service logging at info with frequent debug records")]
struct Args {
    /// Requests (one debug record each) per second; 0 = as fast as possible.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Stop after this many seconds and print a summary on stderr
    /// (default: run until killed).
    #[arg(long)]
    duration: Option<f64>,
    /// Level of the stdout stream.
    #[arg(long, default_value = "info")]
    level: Level,
    /// Simulated work per request (iterations of a small arithmetic loop).
    #[arg(long, default_value_t = 0)]
    work: u32,
    /// Add a `payload` field of this many bytes to every debug record
    /// (to try records longer than snooping delivers).
    #[arg(long, default_value_t = 0)]
    payload: usize,
    /// Wait this many seconds before handling requests (time for a
    /// snooper to attach, for benchmarks that count every record).
    #[arg(long, default_value_t = 0.0)]
    delay: f64,
    /// The records' `name` field.
    #[arg(long, default_value = "log-service")]
    name: String,
}

/// Some CPU work standing in for handling a request.
fn work(iterations: u32, seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

/// CPU time (user + system) this process has used, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let log = Logger::builder(&args.name).stream(Stream::stdout(args.level)).build();
    std::thread::sleep(Duration::from_secs_f64(args.delay));
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    info!(log, rate = args.rate, work = args.work, "log-service started");

    let handler = bunyan_log::child!(log, component = "handler");
    let payload = "x".repeat(args.payload);
    let deadline = args.duration.map(|d| start + Duration::from_secs_f64(d));
    let mut next_report = start + Duration::from_secs(1);
    let (mut n, mut last_n) = (0u64, 0u64);
    // Look at the clock every `batch` requests (about once per millisecond).
    let batch = (args.rate / 1000).clamp(1, 64);
    let batch = if args.rate == 0 { 64 } else { batch };
    loop {
        let result = work(args.work, n);
        if payload.is_empty() {
            debug!(handler, req_id = n, method = "GET", path = "/items", result = result, "handled request {}", n);
        } else {
            debug!(handler, req_id = n, payload = payload, "handled request {}", n);
        }
        n += 1;
        if n % batch != 0 {
            continue;
        }
        let now = Instant::now();
        if now >= next_report {
            info!(log, handled = n - last_n, total = n, "served {} requests in the last second", n - last_n);
            last_n = n;
            next_report += Duration::from_secs(1);
        }
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if args.rate > 0 {
            // Pace: request n is due at start + n/rate.
            let due = start + Duration::from_secs_f64(n as f64 / args.rate as f64);
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    info!(log, total = n, "log-service stopping");
    eprintln!(
        "{{\"requests\":{n},\"seconds\":{secs:.3},\"per_sec\":{:.0},\"cpu_seconds\":{:.3}}}",
        n as f64 / secs,
        cpu_seconds() - cpu0
    );
    Ok(())
}
