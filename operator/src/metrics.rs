//! Prometheus metrics of the operator (prometheus-client): reconcile counts, durations and
//! failures per kind, and leadership. Labels are bounded sets (kind, error class); object
//! names never become labels.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `kind` label: `NsqCluster`, `NsqTopic` or `NsqChannel`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// `kind` plus the error class from [`crate::Error::metric_label`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
    pub error: &'static str,
}

/// The operator's metrics; cheap to clone (every field is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    pub reconciliations: Family<KindLabels, Counter>,
    pub failures: Family<ErrorLabels, Counter>,
    pub duration: Family<KindLabels, Histogram>,
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconciliations: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            }),
            leader: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric under the `nsq_operator` prefix.
    pub fn register(self, registry: &mut Registry) -> Self {
        let sub = registry.sub_registry_with_prefix("nsq_operator");
        sub.register(
            "reconciliations",
            "Reconciliations started, by kind",
            self.reconciliations.clone(),
        );
        sub.register(
            "reconcile_failures",
            "Reconciliations that failed, by kind and error class",
            self.failures.clone(),
        );
        sub.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation, by kind",
            self.duration.clone(),
        );
        sub.register(
            "leader",
            "1 while this replica holds the leader lease",
            self.leader.clone(),
        );
        self
    }

    /// Counts a reconciliation and returns a guard that records its duration when dropped.
    pub fn reconcile_started(&self, kind: &'static str) -> DurationGuard {
        self.reconciliations
            .get_or_create(&KindLabels { kind })
            .inc();
        DurationGuard {
            histogram: self.duration.get_or_create(&KindLabels { kind }).clone(),
            start: Instant::now(),
        }
    }

    /// Counts a failed reconciliation.
    pub fn reconcile_failed(&self, kind: &'static str, error: &crate::Error) {
        self.failures
            .get_or_create(&ErrorLabels {
                kind,
                error: error.metric_label(),
            })
            .inc();
    }
}

/// Observes the elapsed time into the duration histogram on drop.
pub struct DurationGuard {
    histogram: Histogram,
    start: Instant,
}

impl Drop for DurationGuard {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

/// The registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_and_failures_are_exported_without_object_names() {
        let mut registry = Registry::default();
        let metrics = Metrics::default().register(&mut registry);
        {
            let _timer = metrics.reconcile_started("NsqTopic");
        }
        metrics.reconcile_failed("NsqTopic", &crate::Error::InvalidSpec("x".into()));
        metrics.leader.set(1);
        let text = encode(&registry).expect("encodes");
        assert!(
            text.contains("nsq_operator_reconciliations_total{kind=\"NsqTopic\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "nsq_operator_reconcile_failures_total{kind=\"NsqTopic\",error=\"invalid_spec\"} 1"
        ));
        assert!(text.contains("nsq_operator_reconcile_duration_seconds_count{kind=\"NsqTopic\"} 1"));
        assert!(text.contains("nsq_operator_leader 1"));
    }
}
