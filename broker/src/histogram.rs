//! A fixed-bucket, lock-free latency histogram: what `/metrics` exports as
//! `nsq_channel_e2e_processing_latency_seconds` (always on, unlike the percentiles).

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds in seconds, from 1 ms to 1 h.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 600.0, 3600.0,
];

#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Non-cumulative counts per bucket; the last slot is above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe_ns(&self, ns: u64) {
        let secs = ns as f64 / 1e9;
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Cumulative `(upper bound, count)` pairs, the sum in seconds, and the count.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut running = 0;
        let mut buckets = Vec::with_capacity(BUCKETS.len());
        for (i, le) in BUCKETS.iter().enumerate() {
            running += self.counts[i].load(Ordering::Relaxed);
            buckets.push((*le, running));
        }
        let count = running + self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        (buckets, sum, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets() {
        let h = LatencyHistogram::default();
        h.observe_ns(500_000); // 0.5 ms
        h.observe_ns(20_000_000); // 20 ms
        h.observe_ns(7_200_000_000_000); // 2 h: only in +Inf
        let (b, sum, count) = h.snapshot();
        assert_eq!(b[0], (0.001, 1));
        assert_eq!(b[3], (0.025, 2));
        assert_eq!(b.last().copied(), Some((3600.0, 2)));
        assert_eq!(count, 3);
        assert!((sum - 7200.0205).abs() < 1e-6);
    }
}
