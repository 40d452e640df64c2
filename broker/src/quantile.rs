//! End-to-end processing latency (FIN time − publish time) over a sliding window, for
//! `--e2e-processing-latency-percentile`.
//!
//! Like nsqd, the window is two half-window streams used alternately, so a query sees
//! between half and all of the window. Each half keeps a bounded uniform sample
//! (reservoir) of its observations, so memory is fixed however busy the channel is.

use std::time::{Duration, Instant};

/// Samples kept per half window.
const RESERVOIR: usize = 2048;

/// Which percentiles to report and over how long.
#[derive(Debug, Clone, PartialEq)]
pub struct E2eConfig {
    /// In (0, 1], in the order they are reported.
    pub percentiles: Vec<f64>,
    pub window: Duration,
}

#[derive(Debug, Default, Clone)]
struct Half {
    samples: Vec<f64>,
    seen: u64,
}

impl Half {
    fn insert(&mut self, v: f64) {
        self.seen += 1;
        if self.samples.len() < RESERVOIR {
            self.samples.push(v);
        } else {
            let slot = rand::random_range(0..self.seen);
            if (slot as usize) < RESERVOIR {
                self.samples[slot as usize] = v;
            }
        }
    }
}

/// A percentile result as `/stats` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    /// `(quantile, value in ns)` in configured order.
    pub values: Vec<(f64, f64)>,
}

#[derive(Debug)]
pub struct Quantile {
    config: E2eConfig,
    halves: [Half; 2],
    current: usize,
    last_move: Instant,
}

impl Quantile {
    pub fn new(config: E2eConfig) -> Quantile {
        Quantile {
            config,
            halves: [Half::default(), Half::default()],
            current: 0,
            last_move: Instant::now(),
        }
    }

    fn half_window(&self) -> Duration {
        (self.config.window / 2).max(Duration::from_millis(1))
    }

    fn roll(&mut self, now: Instant) {
        while now > self.last_move + self.half_window() {
            self.current ^= 1;
            self.halves[self.current] = Half::default();
            self.last_move += self.half_window();
        }
    }

    /// Records one latency, in ns.
    pub fn insert(&mut self, now: Instant, latency_ns: f64) {
        self.roll(now);
        self.halves[self.current].insert(latency_ns);
    }

    /// Adds this stream's samples to `into` (for a topic's merged view).
    pub fn merge_into(&mut self, now: Instant, into: &mut Vec<f64>, count: &mut u64) {
        self.roll(now);
        for h in &self.halves {
            into.extend_from_slice(&h.samples);
            *count += h.seen;
        }
    }

    /// Percentiles over the current window.
    pub fn result(&mut self, now: Instant) -> Percentiles {
        let mut samples = Vec::new();
        let mut count = 0;
        self.merge_into(now, &mut samples, &mut count);
        percentiles(&self.config.percentiles, samples, count)
    }
}

/// Percentiles of `samples` (nearest rank); 0 when there are none.
pub fn percentiles(wanted: &[f64], mut samples: Vec<f64>, count: u64) -> Percentiles {
    samples.sort_by(|a, b| a.total_cmp(b));
    let values = wanted
        .iter()
        .map(|&q| {
            let v = if samples.is_empty() {
                0.0
            } else {
                let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
                samples[rank - 1]
            };
            (q, v)
        })
        .collect();
    Percentiles { count, values }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> E2eConfig {
        E2eConfig {
            percentiles: vec![1.0, 0.99, 0.5],
            window: Duration::from_secs(10),
        }
    }

    #[test]
    fn reports_configured_percentiles_in_order() {
        let mut q = Quantile::new(cfg());
        let now = Instant::now();
        for i in 1..=100 {
            q.insert(now, i as f64);
        }
        let r = q.result(now);
        assert_eq!(r.count, 100);
        assert_eq!(r.values, vec![(1.0, 100.0), (0.99, 99.0), (0.5, 50.0)]);
    }

    #[test]
    fn old_halves_roll_out() {
        let mut q = Quantile::new(cfg());
        let t0 = Instant::now();
        q.insert(t0, 5.0);
        let later = t0 + Duration::from_secs(11);
        let r = q.result(later);
        assert_eq!(r.count, 0);
        assert_eq!(r.values[0], (1.0, 0.0));
    }

    #[test]
    fn memory_is_bounded() {
        let mut q = Quantile::new(cfg());
        let now = Instant::now();
        for i in 0..100_000 {
            q.insert(now, i as f64);
        }
        let r = q.result(now);
        assert_eq!(r.count, 100_000);
        assert!(q.halves.iter().all(|h| h.samples.len() <= RESERVOIR));
        // A uniform sample of 0..100000: the median lands near 50000.
        let median = r.values[2].1;
        assert!((35_000.0..65_000.0).contains(&median), "{median}");
    }
}
