//! The metrics `prodtrace latency --serve` exports, and their Prometheus
//! exposition: per-process, per-kind latency histograms kept cumulative
//! since the process was first seen, loss and cap counters, and the
//! prometheus-client `Collector` that encodes them at each scrape (text
//! 0.0.4 or OpenMetrics 1.0, chosen from the scraper's Accept header by
//! [`Format::negotiate`]).
//!
//! Histogram buckets are upper-inclusive powers of two of nanoseconds, as
//! Prometheus's `le` means "less than or equal": a duration `d` lands in
//! bucket `ceil(log2 d)`.  The exported `le` boundaries run from 2^8 ns
//! (256 ns) to 2^36 ns (68.7 s), then `+Inf`; shorter durations count in
//! the first bucket.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::tracer::Event;

/// Buckets kept per histogram: index `i` holds durations in `(2^(i-1), 2^i]`
/// ns (index 0: 0 and 1 ns).
const SLOTS: usize = 65;
/// The exported `le` boundaries are 2^FIRST_LE ..= 2^LAST_LE ns.
pub const FIRST_LE: usize = 8;
pub const LAST_LE: usize = 36;

/// Phases of --breakdown, as the `phase` label says them.
pub const PHASES: [&str; 4] = ["total", "queue_wait", "run", "completion_delay"];

/// A cumulative latency histogram with upper-inclusive power-of-two buckets.
#[derive(Clone, Debug)]
pub struct Pow2 {
    buckets: [u64; SLOTS],
    count: u64,
    sum_ns: u128,
}

impl Default for Pow2 {
    fn default() -> Self {
        Self { buckets: [0; SLOTS], count: 0, sum_ns: 0 }
    }
}

/// Index of the bucket of `ns`: the smallest `i` with `ns <= 2^i`.
pub fn bucket_of(ns: u64) -> usize {
    if ns <= 1 {
        0
    } else {
        64 - (ns - 1).leading_zeros() as usize
    }
}

impl Pow2 {
    pub fn record(&mut self, ns: u64) {
        self.buckets[bucket_of(ns)] += 1;
        self.count += 1;
        self.sum_ns += ns as u128;
    }

    /// A histogram read from the BPF program's `hists` map.
    pub fn from_slots(slots: &[u64; SLOTS], sum_ns: u64) -> Self {
        Self { buckets: *slots, count: slots.iter().sum(), sum_ns: sum_ns as u128 }
    }

    fn add(&mut self, other: &Pow2) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
    }

    /// `(le in seconds, count in this bucket)` for the exported boundaries,
    /// then `+Inf`: the first holds everything at or below it, `+Inf`
    /// everything above the last.
    fn exported(&self) -> Vec<(f64, u64)> {
        let mut v: Vec<(f64, u64)> = (FIRST_LE..=LAST_LE)
            .map(|i| {
                let n = if i == FIRST_LE { self.buckets[..=i].iter().sum() } else { self.buckets[i] };
                ((1u64 << i) as f64 / 1e9, n)
            })
            .collect();
        v.push((f64::INFINITY, self.buckets[LAST_LE + 1..].iter().sum()));
        v
    }
}

/// Histograms of one kind in one process: the total, and with --breakdown
/// the three phases.
#[derive(Clone, Debug, Default)]
struct KindStats {
    phases: [Pow2; 4],
}

impl KindStats {
    fn add(&mut self, other: &KindStats) {
        for (a, b) in self.phases.iter_mut().zip(other.phases.iter()) {
            a.add(b);
        }
    }
}

/// One entry of a BPF program's in-kernel histograms, named.
pub struct LiveHist {
    pub kind: String,
    /// Index in [`PHASES`].
    pub phase: usize,
    pub hist: Pow2,
}

/// Why operations were not counted (the `reason` label of
/// `prodtrace_operations_lost_total`).
pub const LOSS_REASONS: [&str; 3] = ["ring_buffer_full", "in_flight_table_full", "kind_cap"];

/// Everything exported about one traced process.
#[derive(Debug)]
struct ProcStats {
    comm: String,
    /// In the order first seen; at most `max_kinds`.
    kinds: BTreeMap<String, KindStats>,
    /// Kinds refused by the cap (names kept to count each once, bounded).
    capped: HashSet<String>,
    capped_overflow: u64,
    lost: [u64; 3],
    /// Kinds refused by the BPF program's own cap (its map was full).
    kernel_dropped: u64,
    /// What the attached BPF program holds in the kernel now (replaced at
    /// each read, added to the above when it is detached).
    live: BTreeMap<String, KindStats>,
    live_lost: u64,
    live_dropped: u64,
    /// When the process ended (its series go after the grace period).
    gone: Option<Instant>,
}

impl ProcStats {
    /// The histograms to export: collected plus live.
    fn merged(&self) -> BTreeMap<&String, KindStats> {
        let mut out: BTreeMap<&String, KindStats> = self.kinds.iter().map(|(k, v)| (k, v.clone())).collect();
        for (k, v) in &self.live {
            out.entry(k).or_default().add(v);
        }
        out
    }
}

/// How a process's series are shaped, and how sampling is reported.
#[derive(Clone, Debug)]
pub struct Settings {
    pub breakdown: bool,
    pub max_kinds: usize,
    pub grace: Duration,
    /// Fraction of the time the probes are attached (1 without --sample).
    pub sampled_fraction: f64,
}

/// At most this many refused kind names are remembered per process (to
/// count each once); past it every refused operation's kind counts as new.
const CAPPED_NAMES: usize = 65536;

/// The metrics store shared by the tracing loop (writer) and the HTTP
/// server (reader).
#[derive(Debug)]
pub struct Store {
    settings: Settings,
    procs: BTreeMap<u32, ProcStats>,
    /// Attach/detach cycles done by --sample.
    pub sample_cycles: u64,
    /// Process start/exit events lost (procwatch ring full).
    pub discovery_lost: u64,
}

impl Store {
    pub fn new(settings: Settings) -> Self {
        Self { settings, procs: BTreeMap::new(), sample_cycles: 0, discovery_lost: 0 }
    }

    /// Starts exporting process `pid` (no series until its first operation).
    pub fn add_process(&mut self, pid: u32, comm: &str) {
        let p = self.procs.entry(pid).or_insert_with(|| ProcStats {
            comm: String::new(),
            kinds: BTreeMap::new(),
            capped: HashSet::new(),
            capped_overflow: 0,
            lost: [0; 3],
            kernel_dropped: 0,
            live: BTreeMap::new(),
            live_lost: 0,
            live_dropped: 0,
            gone: None,
        });
        p.comm = comm.to_string();
        p.gone = None;
    }

    /// Process `pid` ended: its series stay for the grace period.
    pub fn process_gone(&mut self, pid: u32, now: Instant) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.gone.get_or_insert(now);
        }
    }

    /// Forgets processes that ended more than the grace period ago;
    /// returns their PIDs.
    pub fn expire(&mut self, now: Instant) -> Vec<u32> {
        let grace = self.settings.grace;
        let old: Vec<u32> =
            self.procs.iter().filter(|(_, p)| p.gone.is_some_and(|g| now >= g + grace)).map(|(&pid, _)| pid).collect();
        for pid in &old {
            self.procs.remove(pid);
        }
        old
    }

    /// Adds a completed operation of `kind` (its `module`function` name) in
    /// process `pid`.
    /// False when the kind was refused by the cap.
    pub fn record(&mut self, pid: u32, kind: &str, e: &Event) -> bool {
        let max_kinds = self.settings.max_kinds;
        let Some(p) = self.procs.get_mut(&pid) else { return true };
        if !p.kinds.contains_key(kind) {
            if p.kinds.len() >= max_kinds {
                p.lost[2] += 1;
                if p.capped.len() < CAPPED_NAMES {
                    p.capped.insert(kind.to_string());
                } else if !p.capped.contains(kind) {
                    p.capped_overflow += 1;
                }
                return false;
            }
            p.kinds.insert(kind.to_string(), KindStats::default());
        }
        let Some(stats) = p.kinds.get_mut(kind) else { return true };
        stats.phases[0].record(e.t_done.saturating_sub(e.t_submit));
        if e.t_run != 0 && e.t_ran != 0 {
            stats.phases[1].record(e.t_run.saturating_sub(e.t_submit));
            stats.phases[2].record(e.t_ran.saturating_sub(e.t_run));
            stats.phases[3].record(e.t_done.saturating_sub(e.t_ran));
        }
        true
    }

    pub fn max_kinds(&self) -> usize {
        self.settings.max_kinds
    }

    /// Replaces what process `pid`'s BPF program holds in the kernel:
    /// `hists`, and the operations (`lost`) and kinds (`dropped`) it
    /// refused because its map was full.  False when the store's cap
    /// refused a kind.
    pub fn set_live(&mut self, pid: u32, hists: Vec<LiveHist>, lost: u64, dropped: u64) -> bool {
        let max_kinds = self.settings.max_kinds;
        let Some(p) = self.procs.get_mut(&pid) else { return true };
        p.live.clear();
        p.live_lost = lost;
        p.live_dropped = dropped;
        let mut all_admitted = true;
        // Kinds in `live` and not yet in `kinds`.
        let mut new_live = 0;
        for h in hists {
            let known = p.kinds.contains_key(&h.kind) || p.live.contains_key(&h.kind);
            if !known && p.kinds.len() + new_live >= max_kinds {
                all_admitted = false;
                if h.phase == 0 {
                    p.live_lost += h.hist.count;
                    if p.capped.len() < CAPPED_NAMES {
                        p.capped.insert(h.kind);
                    }
                }
                continue;
            }
            if !known {
                new_live += 1;
            }
            let phase = h.phase.min(3);
            p.live.entry(h.kind).or_default().phases[phase].add(&h.hist);
        }
        all_admitted
    }

    /// Process `pid`'s BPF program was detached: what it held is kept.
    pub fn commit_live(&mut self, pid: u32) {
        let Some(p) = self.procs.get_mut(&pid) else { return };
        for (k, v) in std::mem::take(&mut p.live) {
            p.kinds.entry(k).or_default().add(&v);
        }
        p.lost[2] += std::mem::take(&mut p.live_lost);
        p.kernel_dropped += std::mem::take(&mut p.live_dropped);
    }

    /// Adds operations the BPF program could not record: `ring` lost
    /// because the ring buffer was full, `table` because too many were in
    /// flight.
    pub fn add_losses(&mut self, pid: u32, ring: u64, table: u64) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.lost[0] += ring;
            p.lost[1] += table;
        }
    }

    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.settings;
        let proc_labels = |pid: &u32, p: &ProcStats| vec![("pid", pid.to_string()), ("comm", p.comm.clone())];

        // The histograms.
        {
            let mut m = enc.encode_descriptor(
                "prodtrace_async_operation_duration",
                "Latency of asynchronous operations on libuv's thread pool, from submission to the start of \
                 their completion callback (with phase: queue_wait, run, completion_delay), per kind of \
                 operation. Cumulative since the process was first seen.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (pid, p) in &self.procs {
                for (kind, stats) in p.merged() {
                    let phases = if s.breakdown { &PHASES[..] } else { &PHASES[..1] };
                    for (i, phase) in phases.iter().enumerate() {
                        let h = &stats.phases[i];
                        let mut labels = vec![("kind", kind.clone())];
                        labels.extend(proc_labels(pid, p));
                        if s.breakdown {
                            labels.push(("phase", phase.to_string()));
                        }
                        let sum = h.sum_ns as f64 / 1e9;
                        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(sum, h.count, &h.exported(), None)?;
                    }
                }
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "prodtrace_operations_lost",
                "Operations not counted: ring_buffer_full and in_flight_table_full inside the BPF program, \
                 kind_cap when the process already had --max-kinds kinds.",
                None,
                MetricType::Counter,
            )?;
            for (pid, p) in &self.procs {
                let mut lost = p.lost;
                lost[2] += p.live_lost;
                for (reason, n) in LOSS_REASONS.iter().zip(lost) {
                    let mut labels = proc_labels(pid, p);
                    labels.push(("reason", reason.to_string()));
                    m.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                }
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "prodtrace_series_dropped",
                "Kinds of operation (each a histogram's series) not exported because the process already \
                 had --max-kinds kinds.",
                None,
                MetricType::Counter,
            )?;
            for (pid, p) in &self.procs {
                let n = p.capped.len() as u64 + p.capped_overflow + p.kernel_dropped + p.live_dropped;
                m.encode_family(&proc_labels(pid, p))?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "prodtrace_traced_processes",
                "Processes exported: traced now, or ended less than the grace period ago.",
                None,
                MetricType::Gauge,
            )?;
            m.encode_gauge(&(self.procs.len() as i64))?;
        }
        {
            let mut m = enc.encode_descriptor(
                "prodtrace_sampled_fraction",
                "Fraction of the time the probes are attached (--sample ON/PERIOD: ON/PERIOD; 1 without \
                 sampling). Counts are raw (counts=\"raw\"): only operations that started and ended while \
                 attached are counted; divide a rate by this to estimate the full rate.",
                None,
                MetricType::Gauge,
            )?;
            m.encode_family(&vec![("counts", "raw")])?.encode_gauge(&s.sampled_fraction)?;
        }
        {
            let mut m = enc.encode_descriptor(
                "prodtrace_sample_cycles",
                "Attach/detach cycles done by --sample.",
                None,
                MetricType::Counter,
            )?;
            m.encode_counter::<NoLabelSet, _, u64>(&self.sample_cycles, None)?;
        }
        {
            let mut m = enc.encode_descriptor(
                "prodtrace_discovery_events_lost",
                "Process start/exit notifications lost (their ring buffer was full).",
                None,
                MetricType::Counter,
            )?;
            m.encode_counter::<NoLabelSet, _, u64>(&self.discovery_lost, None)?;
        }
        {
            let mut m = enc.encode_descriptor(
                "prodtrace_build",
                "prodtrace's version; the value is always 1.",
                None,
                MetricType::Info,
            )?;
            let labels = vec![("version", env!("CARGO_PKG_VERSION").to_string()), ("tool", "latency".to_string())];
            m.encode_info(&labels)?;
        }
        Ok(())
    }
}

/// The prometheus-client collector over the shared store.
#[derive(Debug)]
struct StoreCollector(Arc<Mutex<Store>>);

impl Collector for StoreCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A poisoned lock means the tracing loop panicked: still export.
        let store = self.0.lock().unwrap_or_else(|e| e.into_inner());
        store.encode(encoder)
    }
}

/// A registry exporting `store`.
pub fn registry(store: Arc<Mutex<Store>>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(StoreCollector(store)));
    r
}

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The format a scraper's `Accept` header prefers among those served:
    /// the supported media type with the highest `q` (the first on ties),
    /// text 0.0.4 when none is named or the header is absent.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else { return Format::Text };
        let mut best: Option<(f64, Format)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0;
            let mut version = None;
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "q" => q = v.trim().parse().unwrap_or(0.0),
                        "version" => version = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
            let format = match media.as_str() {
                // OpenMetrics 1.0 (0.0.1 is its pre-release name).
                "application/openmetrics-text" if version.as_deref().is_none_or(|v| v == "1.0.0" || v == "0.0.1") => {
                    Format::OpenMetrics
                }
                "text/plain" | "*/*" | "text/*" => Format::Text,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, f)| f)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Encodes `registry` in this format.
    pub fn encode(self, registry: &Registry) -> String {
        let mut out = String::new();
        let r = match self {
            Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, registry),
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry),
        };
        // Writing to a String cannot fail; the encoders only fail on
        // invalid input, which this module never builds.
        debug_assert!(r.is_ok());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_upper_inclusive_powers_of_two() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(16384), 14);
        assert_eq!(bucket_of(16385), 15);
        assert_eq!(bucket_of(u64::MAX), 64);
    }

    #[test]
    fn negotiates_like_prometheus() {
        assert_eq!(Format::negotiate(None), Format::Text);
        // What Prometheus 2.42 sends.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                    text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("text/plain;version=0.0.4")), Format::Text);
        assert_eq!(Format::negotiate(Some("application/json")), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")), Format::Text);
    }

    fn ev(ns: u64) -> Event {
        Event { kind: 1, caller: 0, t_submit: 1000, t_run: 0, t_ran: 0, t_done: 1000 + ns, kind_type: 1 }
    }

    #[test]
    fn caps_kinds_and_expires_processes() {
        let mut s = Store::new(Settings {
            breakdown: false,
            max_kinds: 2,
            grace: Duration::from_secs(10),
            sampled_fraction: 1.0,
        });
        let t0 = Instant::now();
        s.add_process(7, "node");
        for name in ["a", "b", "c", "c", "d"] {
            s.record(7, &format!("m`{name}"), &ev(5000));
        }
        // 2^40 ns: above the last finite bucket.
        s.record(7, "m`a", &ev(1 << 40));
        let store = Arc::new(Mutex::new(s));
        let reg = registry(store.clone());
        let text = Format::Text.encode(&reg);
        let series = "kind=\"m`a\",pid=\"7\",comm=\"node\"";
        assert!(text.contains(&format!("prodtrace_async_operation_duration_seconds_count{{{series}}} 2")), "{text}");
        assert!(!text.contains("m`c"), "{text}");
        assert!(text.contains("prodtrace_series_dropped_total{pid=\"7\",comm=\"node\"} 2"), "{text}");
        assert!(
            text.contains("prodtrace_operations_lost_total{pid=\"7\",comm=\"node\",reason=\"kind_cap\"} 3"),
            "{text}"
        );
        // 5000 ns is in (4096, 8192]: le=8.192e-06 holds it, le=4.096e-06 does not.
        assert!(text.contains(&format!("_bucket{{{series},le=\"4.096e-06\"}} 0")), "{text}");
        assert!(text.contains(&format!("_bucket{{{series},le=\"8.192e-06\"}} 1")), "{text}");
        assert!(text.contains(&format!("_bucket{{{series},le=\"68.719476736\"}} 1")), "{text}");
        assert!(text.contains(&format!("_bucket{{{series},le=\"+Inf\"}} 2")), "{text}");
        let om = Format::OpenMetrics.encode(&reg);
        assert!(om.contains(&format!("_bucket{{le=\"+Inf\",{series}}} 2")), "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
        // Gone processes stay for the grace period, then go.
        store.lock().unwrap().process_gone(7, t0);
        assert!(store.lock().unwrap().expire(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(store.lock().unwrap().expire(t0 + Duration::from_secs(10)), vec![7]);
        assert!(!Format::Text.encode(&reg).contains("m`a"));
    }
}
