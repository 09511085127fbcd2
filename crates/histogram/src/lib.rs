//! Latency histograms in DTrace's `quantize()` shape.
//!
//! A [`Histogram`] records non-negative values (nanoseconds, for prodtrace)
//! into power-of-two buckets — bucket `0` holds the value 0, bucket `2^k`
//! holds `[2^k, 2^(k+1))` — exactly like DTrace's `quantize()`, and renders
//! them in DTrace's text layout ([`Histogram::render_quantize`]):
//!
//! ```text
//!            value  ------------- Distribution ------------- count
//!             2048 |                                         0
//!             4096 |@@@@@@@@@@@@@@@@@                        6018
//!             8192 |@@@@@                                    1590
//!            16384 |                                         0
//! ```
//!
//! It also keeps exact count, sum, min and max, and a finer log-linear
//! histogram (16 sub-buckets per power of two, so at most 6.25% relative
//! error) from which percentiles are estimated ([`Histogram::percentile`]).
//! [`Histogram::to_json`] gives the machine-readable summary.

use serde_json::{json, Value};

/// Number of power-of-two buckets: the 0 bucket plus one per bit of a u64.
const POW2_BUCKETS: usize = 65;
/// log2 of the number of fine sub-buckets per power of two.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Fine buckets: values below `SUB` exactly, then `SUB` per power of two.
const FINE_BUCKETS: usize = ((64 - SUB_BITS + 1) as usize) * SUB as usize;

/// Width of the `@` bar, as in DTrace.
const BAR_WIDTH: u64 = 40;

/// A power-of-two latency histogram with exact count/sum/min/max.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    pow2: [u64; POW2_BUCKETS],
    fine: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Index of the power-of-two bucket of `v`: 0 for 0, `k + 1` for `[2^k, 2^(k+1))`.
fn pow2_index(v: u64) -> usize {
    if v == 0 {
        0
    } else {
        64 - v.leading_zeros() as usize
    }
}

/// Lower bound of power-of-two bucket `i`.
fn pow2_lower(i: usize) -> u64 {
    if i == 0 {
        0
    } else {
        1u64 << (i - 1)
    }
}

/// Index of the fine (log-linear) bucket of `v`.
fn fine_index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // floor(log2 v) >= SUB_BITS
    let m = (v >> (e - SUB_BITS)) & (SUB - 1);
    ((e - SUB_BITS + 1) as u64 * SUB + m) as usize
}

/// `[lower, upper)` bounds of fine bucket `i` (upper saturates at u64::MAX).
fn fine_bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, i + 1);
    }
    let e = (i / SUB) - 1 + SUB_BITS as u64;
    let m = i % SUB;
    let width = 1u64 << (e - SUB_BITS as u64);
    let lower = (1u64 << e) + m * width;
    (lower, lower.saturating_add(width))
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self { pow2: [0; POW2_BUCKETS], fine: vec![0; FINE_BUCKETS], count: 0, sum: 0, min: u64::MAX, max: 0 }
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.pow2[pow2_index(v)] += 1;
        self.fine[fine_index(v)] += 1;
        self.count += 1;
        self.sum += v as u128;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.pow2.iter_mut().zip(other.pow2.iter()) {
            *a += b;
        }
        for (a, b) in self.fine.iter_mut().zip(other.fine.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values recorded (saturating at u64::MAX).
    pub fn sum(&self) -> u64 {
        u64::try_from(self.sum).unwrap_or(u64::MAX)
    }

    /// Smallest value recorded, `None` when empty.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value recorded, `None` when empty.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// Mean value, `None` when empty.
    pub fn mean(&self) -> Option<u64> {
        (self.count > 0).then(|| (self.sum / self.count as u128) as u64)
    }

    /// The non-empty power-of-two buckets as `(lower_bound, count)`, in
    /// increasing order.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.pow2.iter().enumerate().filter(|(_, &c)| c > 0).map(|(i, &c)| (pow2_lower(i), c)).collect()
    }

    /// Estimate of the `p`-th percentile (`p` in 0..=100): the nearest-rank
    /// value, located in the fine histogram and reported as the middle of
    /// its bucket, clamped to the exact min and max.  `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let p = p.clamp(0.0, 100.0);
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        if rank >= self.count {
            return Some(self.max);
        }
        if rank == 1 {
            return Some(self.min);
        }
        let mut seen = 0;
        for (i, &c) in self.fine.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = fine_bounds(i);
                let mid = lo + (hi - lo - 1) / 2;
                return Some(mid.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// DTrace `quantize()` text: the header line, then one row per bucket
    /// from one empty bucket below the first non-empty one to one above the
    /// last, each with a 40-character `@` bar.  Empty string when empty.
    pub fn render_quantize(&self) -> String {
        use std::fmt::Write;
        if self.count == 0 {
            return String::new();
        }
        let first = self.pow2.iter().position(|&c| c > 0).unwrap_or(0);
        let last = self.pow2.iter().rposition(|&c| c > 0).unwrap_or(0);
        let lo = first.saturating_sub(1);
        let hi = (last + 1).min(POW2_BUCKETS - 1);
        let total = self.count as f64;
        let mut out = String::new();
        let _ = writeln!(out, "{:>16} {:>41} {:<9}", "value", "------------- Distribution -------------", "count");
        for i in lo..=hi {
            let c = self.pow2[i];
            let depth = ((c as f64 * BAR_WIDTH as f64) / total + 0.5) as usize;
            let _ = writeln!(
                out,
                "{:>16} |{}{} {:<9}",
                pow2_lower(i),
                "@".repeat(depth),
                " ".repeat(BAR_WIDTH as usize - depth),
                c
            );
        }
        // DTrace pads the count column; trailing blanks serve no one.
        out.lines().map(|l| l.trim_end().to_string() + "\n").collect()
    }

    /// `{count, sum_ns, min_ns, max_ns, p50_ns, p90_ns, p99_ns, buckets}`
    /// where `buckets` lists the non-empty power-of-two buckets as
    /// `[lower_bound_ns, count]`.  Empty histograms have null min/max/pXX.
    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "sum_ns": self.sum(),
            "min_ns": self.min(),
            "max_ns": self.max(),
            "p50_ns": self.percentile(50.0),
            "p90_ns": self.percentile(90.0),
            "p99_ns": self.percentile(99.0),
            "buckets": self.buckets().iter().map(|&(l, c)| json!([l, c])).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original DTrace articles' Work_BeginExec histogram, rebuilt from its counts.
    fn articles_histogram() -> Histogram {
        let mut h = Histogram::new();
        for (v, n) in [(4096u64, 6018), (8192, 1590), (16384, 302), (32768, 5722), (65536, 156)] {
            for _ in 0..n {
                h.record(v + 1);
            }
        }
        h
    }

    #[test]
    fn renders_exactly_like_dtrace_quantize() {
        let want = [
            "           value  ------------- Distribution ------------- count",
            "            2048 |                                         0",
            "            4096 |@@@@@@@@@@@@@@@@@                        6018",
            "            8192 |@@@@@                                    1590",
            "           16384 |@                                        302",
            "           32768 |@@@@@@@@@@@@@@@@@                        5722",
            "           65536 |                                         156",
            "          131072 |                                         0",
            "",
        ]
        .join("\n");
        assert_eq!(articles_histogram().render_quantize(), want);
    }

    #[test]
    fn bucket_boundaries_are_powers_of_two() {
        let mut h = Histogram::new();
        for v in [0, 1, 2, 3, 4, 7, 8, 1023, 1024] {
            h.record(v);
        }
        assert_eq!(h.buckets(), vec![(0, 1), (1, 1), (2, 2), (4, 2), (8, 1), (512, 1), (1024, 1)]);
        let mut big = Histogram::new();
        big.record(u64::MAX);
        assert_eq!(big.buckets(), vec![(1 << 63, 1)]);
        assert!(big.render_quantize().contains("9223372036854775808 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1"));
    }

    #[test]
    fn zero_bucket_has_no_row_below_it() {
        let mut h = Histogram::new();
        h.record(0);
        let text = h.render_quantize();
        let rows: Vec<_> = text.lines().skip(1).collect();
        assert_eq!(
            rows,
            vec![
                "               0 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1",
                "               1 |                                         0"
            ]
        );
    }

    #[test]
    fn exact_stats_and_percentiles() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.sum(), 500_500_000);
        assert_eq!(h.min(), Some(1000));
        assert_eq!(h.max(), Some(1_000_000));
        assert_eq!(h.mean(), Some(500_500));
        for (p, exact) in [(50.0, 500_000f64), (90.0, 900_000.0), (99.0, 990_000.0)] {
            let got = h.percentile(p).unwrap() as f64;
            assert!((got - exact).abs() / exact < 0.0625, "p{p}: {got} vs {exact}");
        }
        assert_eq!(h.percentile(100.0), Some(1_000_000));
        assert_eq!(h.percentile(0.0), Some(1000));
    }

    #[test]
    fn fine_buckets_tile_the_range() {
        let mut prev_hi = 0;
        for i in 0..FINE_BUCKETS {
            let (lo, hi) = fine_bounds(i);
            assert_eq!(lo, prev_hi, "bucket {i}");
            assert_eq!(fine_index(lo), i);
            assert_eq!(fine_index(hi - 1), i);
            prev_hi = hi;
        }
        assert_eq!(prev_hi, u64::MAX);
    }

    #[test]
    fn merge_adds_up() {
        let mut a = articles_histogram();
        let b = articles_histogram();
        a.merge(&b);
        assert_eq!(a.count(), 2 * b.count());
        assert_eq!(a.buckets()[0], (4096, 12036));
        assert_eq!(a.min(), b.min());
    }

    #[test]
    fn json_fields() {
        let mut h = Histogram::new();
        h.record(5000);
        h.record(6000);
        let j = h.to_json();
        assert_eq!(j["count"], 2);
        assert_eq!(j["sum_ns"], 11000);
        assert_eq!(j["min_ns"], 5000);
        assert_eq!(j["max_ns"], 6000);
        assert_eq!(j["buckets"], serde_json::json!([[4096, 2]]));
        assert!(j["p50_ns"].as_u64().unwrap() >= 5000 && j["p99_ns"].as_u64().unwrap() <= 6000);
        let empty = Histogram::new().to_json();
        assert!(empty["min_ns"].is_null() && empty["count"] == 0);
        assert_eq!(Histogram::new().render_quantize(), "");
    }
}
