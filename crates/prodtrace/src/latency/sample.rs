//! `--sample ON/PERIOD` for `prodtrace latency --serve`: the probes are
//! attached for ON out of every PERIOD (e.g. `2s/20s`) and removed in
//! between, so that an always-on exporter costs the traced processes a
//! fraction of what tracing them all the time would.  `off` traces all the
//! time.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::parse_duration;

/// The default when --serve is given without --sample (see
/// docs/prometheus.md and BENCHMARKS.md for how it was chosen).
pub const DEFAULT: &str = "2s/30s";

/// When probes are attached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    Always,
    /// Attached for `on` at the start of every `period`.
    Duty {
        on: Duration,
        period: Duration,
    },
}

impl Sampling {
    /// Parses `off` or `ON/PERIOD`; `None` gives [`DEFAULT`].
    pub fn parse(spec: Option<&str>) -> Result<Sampling> {
        let spec = spec.unwrap_or(DEFAULT).trim();
        if spec.eq_ignore_ascii_case("off") {
            return Ok(Sampling::Always);
        }
        let Some((on, period)) = spec.split_once('/') else {
            bail!("--sample {spec}: give ON/PERIOD, e.g. 2s/20s (probes attached 2 s out of every 20 s), or off");
        };
        let on = parse_duration(on).map_err(|e| anyhow::anyhow!("--sample {spec}: {e}"))?;
        let period = parse_duration(period).map_err(|e| anyhow::anyhow!("--sample {spec}: {e}"))?;
        if on > period {
            bail!("--sample {spec}: ON must not be longer than PERIOD");
        }
        if on == period {
            return Ok(Sampling::Always);
        }
        if on < Duration::from_millis(100) {
            bail!("--sample {spec}: ON must be at least 100ms (attaching takes milliseconds)");
        }
        Ok(Sampling::Duty { on, period })
    }

    /// Fraction of the time the probes are attached.
    pub fn fraction(&self) -> f64 {
        match *self {
            Sampling::Always => 1.0,
            Sampling::Duty { on, period } => on.as_secs_f64() / period.as_secs_f64(),
        }
    }

    /// Whether probes should be attached at `now` (periods start at `start`).
    pub fn on_at(&self, start: Instant, now: Instant) -> bool {
        match *self {
            Sampling::Always => true,
            Sampling::Duty { on, period } => {
                let t = now.saturating_duration_since(start).as_nanos() % period.as_nanos();
                t < on.as_nanos()
            }
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Sampling::Always => "probes attached all the time".into(),
            Sampling::Duty { on, period } => format!(
                "sampling: probes attached {} s out of every {} s, raw counts",
                on.as_secs_f64(),
                period.as_secs_f64()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_schedules() {
        let s = Sampling::parse(Some("2s/20s")).unwrap();
        assert_eq!(s, Sampling::Duty { on: Duration::from_secs(2), period: Duration::from_secs(20) });
        assert_eq!(s.fraction(), 0.1);
        let t0 = Instant::now();
        assert!(s.on_at(t0, t0 + Duration::from_millis(1999)));
        assert!(!s.on_at(t0, t0 + Duration::from_secs(2)));
        assert!(s.on_at(t0, t0 + Duration::from_secs(41)));
        assert_eq!(Sampling::parse(Some("off")).unwrap(), Sampling::Always);
        assert_eq!(Sampling::parse(Some("5s/5s")).unwrap(), Sampling::Always);
        assert!(Sampling::parse(Some("20s/2s")).unwrap_err().to_string().contains("ON must not be longer"));
        assert!(Sampling::parse(Some("2s")).is_err());
        assert!(Sampling::parse(Some("10ms/1s")).is_err());
        assert!(Sampling::parse(None).is_ok());
    }
}
