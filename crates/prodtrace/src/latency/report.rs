//! Per-kind latency histograms and their output: DTrace `quantize` text
//! (one histogram per kind, headed by its name, sorted by count, smallest
//! first as DTrace prints aggregations) or one JSON array.
//!
//! While tracing, operations are tallied by what the BPF program recorded
//! ([`RawKind`], no name lookups: the session loop must keep up with the
//! ring buffer and its deadline); a [`Report`] by name is made from the
//! [`Tally`] when it is printed.

use std::collections::HashMap;

use histogram::Histogram;
use serde_json::{json, Value};

use super::kinds::Kind;
use super::tracer::Event;

/// Histograms of one kind: total latency (submitted → completion callback
/// starts) and, with --breakdown, its three phases.
#[derive(Default)]
pub struct KindStats {
    pub total: Histogram,
    pub queue_wait: Histogram,
    pub run: Histogram,
    pub completion_delay: Histogram,
}

impl KindStats {
    /// Adds the operations of `other`.
    pub fn merge(&mut self, other: &KindStats) {
        self.total.merge(&other.total);
        self.queue_wait.merge(&other.queue_wait);
        self.run.merge(&other.run);
        self.completion_delay.merge(&other.completion_delay);
    }

    fn add(&mut self, e: &Event) {
        self.total.record(e.t_done.saturating_sub(e.t_submit));
        if e.t_run != 0 && e.t_ran != 0 {
            self.queue_wait.record(e.t_run.saturating_sub(e.t_submit));
            self.run.record(e.t_ran.saturating_sub(e.t_run));
            self.completion_delay.record(e.t_done.saturating_sub(e.t_ran));
        }
    }
}

/// What names an operation's kind, as the BPF program recorded it (see
/// `kinds::Namer`): the kind's type and address, and the caller's return
/// address (0 when not recorded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RawKind {
    pub kind_type: u32,
    pub kind: u64,
    pub caller: u64,
}

/// Operations by [`RawKind`], during one reporting period.
#[derive(Default)]
pub struct Tally {
    kinds: HashMap<RawKind, KindStats>,
}

impl Tally {
    /// Adds a completed operation; returns its raw kind when it is the
    /// first of that kind.
    pub fn add(&mut self, e: &Event) -> Option<RawKind> {
        let raw = RawKind { kind_type: e.kind_type, kind: e.kind, caller: e.caller };
        let mut new = false;
        self.kinds
            .entry(raw)
            .or_insert_with(|| {
                new = true;
                KindStats::default()
            })
            .add(e);
        new.then_some(raw)
    }

    /// The report by name; `name` is called once per distinct raw kind.
    pub fn named(&self, mut name: impl FnMut(&RawKind) -> Kind) -> Report {
        let mut report = Report::default();
        for (raw, stats) in &self.kinds {
            report.kinds.entry(name(raw)).or_default().merge(stats);
        }
        report
    }
}

/// The phases, with their output labels.
const PHASES: [(&str, &str); 3] = [
    ("queue_wait", "queue wait: submitted -> a worker starts it"),
    ("run", "run: the work callback on the worker"),
    ("completion_delay", "completion delay: work done -> after-work callback starts (event-loop lag)"),
];

/// All kinds seen in one reporting period.
#[derive(Default)]
pub struct Report {
    kinds: HashMap<Kind, KindStats>,
}

impl Report {
    /// Adds a completed operation of kind `kind`.
    #[cfg(test)]
    pub fn add(&mut self, kind: Kind, e: &Event) {
        self.kinds.entry(kind).or_default().add(e);
    }

    /// Number of operations recorded.
    pub fn operations(&self) -> u64 {
        self.kinds.values().map(|s| s.total.count()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Kinds sorted by count, smallest first (ties by name).
    fn sorted(&self) -> Vec<(&Kind, &KindStats)> {
        let mut v: Vec<_> = self.kinds.iter().collect();
        v.sort_by(|a, b| a.1.total.count().cmp(&b.1.total.count()).then_with(|| a.0.cmp(b.0)));
        v
    }

    /// DTrace-style text: for each kind, a blank line, `  module`function`,
    /// and its quantize histogram (then one per phase with --breakdown).
    pub fn render_text(&self, breakdown: bool) -> String {
        let mut out = String::new();
        for (kind, stats) in self.sorted() {
            out.push('\n');
            out.push_str(&format!("  {}\n", kind.display()));
            out.push_str(&stats.total.render_quantize());
            if breakdown {
                for ((_, label), h) in PHASES.iter().zip([&stats.queue_wait, &stats.run, &stats.completion_delay]) {
                    if h.count() > 0 {
                        out.push_str(&format!("\n  {}  [{label}]\n", kind.display()));
                        out.push_str(&h.render_quantize());
                    }
                }
            }
        }
        out
    }

    /// One JSON array, an object per kind (same order as the text):
    /// `kind`, `module`, `count`, `sum_ns`, `min_ns`, `max_ns`, `p50_ns`,
    /// `p90_ns`, `p99_ns`, `buckets`; with --breakdown also `queue_wait`,
    /// `run`, `completion_delay`, each an object with the same statistics.
    pub fn to_json(&self, breakdown: bool) -> Value {
        Value::Array(
            self.sorted()
                .into_iter()
                .map(|(kind, stats)| {
                    let mut obj = json!({ "kind": kind.name, "module": kind.module });
                    let map = obj.as_object_mut().expect("object");
                    if let Value::Object(h) = stats.total.to_json() {
                        map.extend(h);
                    }
                    if breakdown {
                        for ((key, _), h) in PHASES.iter().zip([&stats.queue_wait, &stats.run, &stats.completion_delay])
                        {
                            map.insert(key.to_string(), h.to_json());
                        }
                    }
                    obj
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(submit: u64, run: u64, ran: u64, done: u64) -> Event {
        Event { kind: 1, caller: 0, t_submit: submit, t_run: run, t_ran: ran, t_done: done, kind_type: 1 }
    }

    #[test]
    fn sorts_by_count_and_splits_phases() {
        let mut r = Report::default();
        let a = Kind { module: "m.node".into(), name: "A".into() };
        let b = Kind { module: "m.node".into(), name: "B".into() };
        for _ in 0..3 {
            r.add(a.clone(), &ev(1000, 3000, 8000, 9000));
        }
        r.add(b.clone(), &ev(1000, 0, 0, 5000));
        assert_eq!(r.operations(), 4);
        let text = r.render_text(true);
        let pos = |s: &str| text.find(s).unwrap();
        assert!(pos("  m.node`B\n") < pos("  m.node`A\n"), "{text}");
        assert!(text.contains("            2048 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1"), "{text}");
        assert!(text.contains("[run: the work callback on the worker]"));
        let j = r.to_json(true);
        assert_eq!(j[1]["kind"], "A");
        assert_eq!(j[1]["count"], 3);
        assert_eq!(j[1]["sum_ns"], 24000);
        assert_eq!(j[1]["queue_wait"]["min_ns"], 2000);
        assert_eq!(j[1]["run"]["max_ns"], 5000);
        assert_eq!(j[1]["completion_delay"]["buckets"], json!([[512, 3]]));
        assert_eq!(j[0]["queue_wait"]["count"], 0);
    }

    /// Raw kinds that get the same name are one kind in the report.
    #[test]
    fn tally_merges_raw_kinds_by_name() {
        let mut t = Tally::default();
        let mut new = 0;
        for (kind, caller) in [(1, 0), (1, 0x10), (2, 0), (1, 0)] {
            new += t.add(&Event { kind, caller, ..ev(1000, 0, 0, 2000) }).is_some() as u32;
        }
        assert_eq!(new, 3);
        let mut calls = 0;
        let r = t.named(|raw| {
            calls += 1;
            Kind { module: "m".into(), name: if raw.kind == 1 { "A".into() } else { "B".into() } }
        });
        assert_eq!(calls, 3, "named once per distinct raw kind");
        assert_eq!(r.operations(), 4);
        let j = r.to_json(false);
        assert_eq!((j[0]["kind"].as_str(), j[0]["count"].as_u64()), (Some("B"), Some(1)));
        assert_eq!((j[1]["kind"].as_str(), j[1]["count"].as_u64()), (Some("A"), Some(3)));
    }
}
