//! `NsqCluster`: one NSQ cluster — a StatefulSet of nsqlookupd and a StatefulSet of nsqd with
//! a volume per pod — with the settings, scheduling and security knobs users need.

// Several `printcolumn(...)` entries repeat `type_ = ...`, which clippy mistakes for
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, PodSecurityContext, ResourceRequirements, SecurityContext,
    Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Go duration pattern (`1m30s`, `250ms`) accepted by nsqd's duration flags.
const GO_DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// Desired state of an NSQ cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "nsq.rustnsq.dev",
    version = "v1alpha1",
    kind = "NsqCluster",
    namespaced,
    status = "NsqClusterStatus",
    shortname = "nsqc",
    category = "nsq",
    doc = "An NSQ cluster: nsqlookupd and nsqd StatefulSets, their Services and PodDisruptionBudgets.",
    printcolumn(
        name = "Nsqd",
        type_ = "string",
        json_path = ".status.nsqdReady",
        description = "ready/desired nsqd pods"
    ),
    printcolumn(
        name = "Lookupd",
        type_ = "string",
        json_path = ".status.lookupdReady",
        description = "ready/desired nsqlookupd pods"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Lookupd-Address",
        type_ = "string",
        json_path = ".status.lookupdHttpAddress",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NsqClusterSpec {
    /// The nsqd StatefulSet.
    #[serde(default)]
    pub nsqd: NsqdSpec,
    /// The nsqlookupd StatefulSet.
    #[serde(default)]
    pub lookupd: LookupdSpec,
    /// Prometheus scraping.
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// Secrets for pulling the images, used by both StatefulSets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// The nsqd part of a cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NsqdSpec {
    /// Image; defaults to `ghcr.io/rustnsq/nsqd:<operator version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Number of nsqd pods.
    #[serde(default = "default_nsqd_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// The volume each nsqd pod gets for `--data-path`.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Typed nsqd flags; unset ones keep nsqd's defaults.
    #[serde(default)]
    pub settings: NsqdSettings,
    /// More nsqd flags, appended verbatim after the operator's (e.g. `--max-req-timeout=2h`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// CPU and memory of the nsqd container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Seconds a pod gets to flush memory, in-flight and deferred messages to disk on stop.
    #[serde(default = "default_nsqd_grace")]
    #[schemars(range(min = 1))]
    pub termination_grace_period_seconds: i64,
    /// Labels, annotations, scheduling and security of the pods.
    #[serde(default)]
    pub pod: PodOptions,
    /// The nsqd PodDisruptionBudget.
    #[serde(default)]
    pub pdb: PdbSpec,
    /// What happens to the messages left on the volume of a pod that a scale-down removes.
    #[serde(default)]
    pub drain: DrainSpec,
}

impl Default for NsqdSpec {
    fn default() -> Self {
        NsqdSpec {
            image: None,
            image_pull_policy: None,
            replicas: default_nsqd_replicas(),
            storage: StorageSpec::default(),
            settings: NsqdSettings::default(),
            extra_args: Vec::new(),
            resources: None,
            termination_grace_period_seconds: default_nsqd_grace(),
            pod: PodOptions::default(),
            pdb: PdbSpec::default(),
            drain: DrainSpec::default(),
        }
    }
}

/// Draining the volumes of nsqd pods removed by a scale-down: once such a pod has stopped
/// (nsqd writes its memory, in-flight and deferred messages to its volume on SIGTERM), a Job
/// runs `nsq drain` on its PersistentVolumeClaim and moves every queued message to the
/// remaining ready nsqd pods, channel by channel. Then the claim is marked drained and,
/// with `storage.whenScaled: Delete`, deleted.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DrainSpec {
    /// Run drain Jobs. `false`: none; a removed pod's messages stay on its volume, which
    /// `storage.whenScaled: Retain` keeps for a later scale-up and `Delete` deletes.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Image of the `nsq` command-line tool the Jobs run; defaults to
    /// `ghcr.io/rustnsq/nsq:<operator version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Pod retries of a drain Job (with the Job controller's exponential delay) before it
    /// counts as failed. A failed Job is kept for its logs; delete it to try again.
    #[serde(default = "default_drain_backoff_limit")]
    #[schemars(range(min = 0, max = 100))]
    pub backoff_limit: i32,
    /// CPU and memory of the drain container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for DrainSpec {
    fn default() -> Self {
        DrainSpec {
            enabled: true,
            image: None,
            image_pull_policy: None,
            backoff_limit: default_drain_backoff_limit(),
            resources: None,
        }
    }
}

/// The nsqlookupd part of a cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LookupdSpec {
    /// Image; defaults to `ghcr.io/rustnsq/nsqlookupd:<operator version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Number of nsqlookupd pods; every nsqd registers with each of them.
    #[serde(default = "default_lookupd_replicas")]
    #[schemars(range(min = 1))]
    pub replicas: i32,
    /// nsqlookupd `--inactive-producer-timeout` (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GO_DURATION_PATTERN))]
    pub inactive_producer_timeout: Option<String>,
    /// nsqlookupd `--tombstone-lifetime` (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GO_DURATION_PATTERN))]
    pub tombstone_lifetime: Option<String>,
    /// More nsqlookupd flags, appended verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// CPU and memory of the nsqlookupd container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Labels, annotations, scheduling and security of the pods.
    #[serde(default)]
    pub pod: PodOptions,
    /// The nsqlookupd PodDisruptionBudget.
    #[serde(default)]
    pub pdb: PdbSpec,
}

impl Default for LookupdSpec {
    fn default() -> Self {
        LookupdSpec {
            image: None,
            image_pull_policy: None,
            replicas: default_lookupd_replicas(),
            inactive_producer_timeout: None,
            tombstone_lifetime: None,
            extra_args: Vec::new(),
            resources: None,
            pod: PodOptions::default(),
            pdb: PdbSpec::default(),
        }
    }
}

/// Per-pod storage of nsqd (a PersistentVolumeClaim template).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)"
).message("storageClassName is immutable (StatefulSet volume claim templates cannot change)"))]
pub struct StorageSpec {
    /// Requested size of each volume, e.g. `10Gi`. Immutable.
    #[serde(default = "default_storage_size")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("storage size is immutable (StatefulSet volume claim templates cannot change)"))]
    pub size: String,
    /// StorageClass of the volumes; the cluster default when unset. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// What happens to the volume of a pod removed by scaling down, once its messages are
    /// drained (`nsqd.drain`). The StatefulSet itself always retains it, so that the drain
    /// can read it; the operator deletes it afterwards when this says `Delete`.
    #[serde(default)]
    pub when_scaled: ReclaimPolicy,
    /// What happens to the volumes when the NsqCluster is deleted.
    #[serde(default)]
    pub when_deleted: ReclaimPolicy,
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            size: default_storage_size(),
            storage_class_name: None,
            when_scaled: ReclaimPolicy::Retain,
            when_deleted: ReclaimPolicy::Retain,
        }
    }
}

/// Mapped to the StatefulSet's `persistentVolumeClaimRetentionPolicy`.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum ReclaimPolicy {
    /// Keep the PersistentVolumeClaim (and its messages).
    #[default]
    Retain,
    /// Delete the PersistentVolumeClaim.
    Delete,
}

/// nsqd's commonly tuned flags (conformance §4); each unset one keeps nsqd's default.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NsqdSettings {
    /// `--mem-queue-size`: messages kept in memory per topic/channel before overflowing to disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub mem_queue_size: Option<i64>,
    /// `--max-bytes-per-file`: disk queue segment size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_bytes_per_file: Option<i64>,
    /// `--sync-every`: queue operations per fsync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub sync_every: Option<i64>,
    /// `--sync-timeout` (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GO_DURATION_PATTERN))]
    pub sync_timeout: Option<String>,
    /// `--msg-timeout` (Go duration): default in-flight timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GO_DURATION_PATTERN))]
    pub msg_timeout: Option<String>,
    /// `--max-msg-timeout` (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GO_DURATION_PATTERN))]
    pub max_msg_timeout: Option<String>,
    /// `--max-req-timeout` (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GO_DURATION_PATTERN))]
    pub max_req_timeout: Option<String>,
    /// `--max-msg-size` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_msg_size: Option<i64>,
    /// `--max-body-size` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_body_size: Option<i64>,
    /// `--max-rdy-count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_rdy_count: Option<i64>,
    /// `--max-heartbeat-interval` (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GO_DURATION_PATTERN))]
    pub max_heartbeat_interval: Option<String>,
    /// `--max-output-buffer-size` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_output_buffer_size: Option<i64>,
    /// `--max-output-buffer-timeout` (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GO_DURATION_PATTERN))]
    pub max_output_buffer_timeout: Option<String>,
    /// `--max-channel-consumers` (0 = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_channel_consumers: Option<i64>,
    /// `--e2e-processing-latency-percentile`, each in (0, 1]; enables latency tracking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = kube::core::Rule::new("self.all(q, q > 0.0 && q <= 1.0)").message("percentiles must be in (0, 1]"))]
    pub e2e_processing_latency_percentiles: Vec<f64>,
    /// `--e2e-processing-latency-window-time` (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GO_DURATION_PATTERN))]
    pub e2e_processing_latency_window_time: Option<String>,
    /// `--deflate`: allow clients to negotiate deflate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deflate: Option<bool>,
    /// `--max-deflate-level` (1..9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9))]
    pub max_deflate_level: Option<i64>,
    /// `--snappy`: allow clients to negotiate snappy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snappy: Option<bool>,
    /// `--log-level`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,
}

/// nsqd/nsqlookupd `--log-level` values.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        }
    }
}

/// Pod-level options shared by nsqd and nsqlookupd.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodOptions {
    /// Extra labels on the pods (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// ServiceAccount of the pods (nsqd and nsqlookupd need no API access; the token is not
    /// mounted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Replaces the restricted pod security context the operator sets by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Replaces the restricted container security context the operator sets by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
}

/// A PodDisruptionBudget for one StatefulSet.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PdbSpec {
    /// Create the PodDisruptionBudget.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Pods that voluntary disruptions (drains) may take down at once.
    #[serde(default = "default_max_unavailable")]
    #[schemars(range(min = 1))]
    pub max_unavailable: i32,
}

impl Default for PdbSpec {
    fn default() -> Self {
        PdbSpec {
            enabled: true,
            max_unavailable: default_max_unavailable(),
        }
    }
}

/// Prometheus scraping of nsqd and nsqlookupd `/metrics`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    #[serde(default)]
    pub service_monitor: ServiceMonitorSpec,
}

/// A prometheus-operator ServiceMonitor (needs its CRD installed).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Create the ServiceMonitor.
    #[serde(default)]
    pub enabled: bool,
    /// Scrape interval.
    #[serde(default = "default_scrape_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub interval: String,
    /// Labels on the ServiceMonitor, e.g. the `release` your Prometheus selects.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Default for ServiceMonitorSpec {
    fn default() -> Self {
        ServiceMonitorSpec {
            enabled: false,
            interval: default_scrape_interval(),
            labels: BTreeMap::new(),
        }
    }
}

/// What is true of the cluster now.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NsqClusterStatus {
    /// `Ready`, `Progressing` and `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub ready_nsqd: i32,
    #[serde(default)]
    pub ready_lookupd: i32,
    /// `ready/desired` nsqd pods (for `kubectl get`).
    #[serde(default)]
    pub nsqd_ready: String,
    /// `ready/desired` nsqlookupd pods (for `kubectl get`).
    #[serde(default)]
    pub lookupd_ready: String,
    /// `host:port` of the nsqlookupd Service consumers should use (`lookupd_http_address`).
    #[serde(default)]
    pub lookupd_http_address: String,
    /// `host:port` of the nsqd Service producers should use.
    #[serde(default)]
    pub nsqd_tcp_address: String,
    /// The stable TCP address of every nsqd pod (what each broadcasts to lookupd).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nsqd_addresses: Vec<String>,
    /// Volumes of nsqd pods removed by a scale-down whose messages are not drained yet
    /// (`Progressing` says `Draining` meanwhile).
    #[serde(default)]
    pub pending_drains: i32,
}

fn default_nsqd_replicas() -> i32 {
    3
}
fn default_lookupd_replicas() -> i32 {
    3
}
fn default_nsqd_grace() -> i64 {
    60
}
fn default_storage_size() -> String {
    "10Gi".to_string()
}
fn default_true() -> bool {
    true
}
fn default_drain_backoff_limit() -> i32 {
    6
}
fn default_max_unavailable() -> i32 {
    1
}
fn default_scrape_interval() -> String {
    "30s".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_spec_gets_the_documented_defaults() {
        let spec: NsqClusterSpec = serde_json::from_value(serde_json::json!({})).expect("parses");
        assert_eq!(spec.nsqd.replicas, 3);
        assert_eq!(spec.lookupd.replicas, 3);
        assert_eq!(spec.nsqd.storage.size, "10Gi");
        assert_eq!(spec.nsqd.storage.when_scaled, ReclaimPolicy::Retain);
        assert_eq!(spec.nsqd.termination_grace_period_seconds, 60);
        assert!(spec.nsqd.pdb.enabled);
        assert!(spec.nsqd.drain.enabled);
        assert_eq!(spec.nsqd.drain.backoff_limit, 6);
        assert_eq!(spec.nsqd.drain.image, None);
        assert!(!spec.metrics.service_monitor.enabled);
        assert_eq!(spec.metrics.service_monitor.interval, "30s");
    }

    #[test]
    fn settings_use_camel_case_keys() {
        let s: NsqdSettings = serde_json::from_value(serde_json::json!({
            "memQueueSize": 100, "msgTimeout": "30s", "e2eProcessingLatencyPercentiles": [0.99],
            "logLevel": "warn"
        }))
        .expect("parses");
        assert_eq!(s.mem_queue_size, Some(100));
        assert_eq!(s.msg_timeout.as_deref(), Some("30s"));
        assert_eq!(s.e2e_processing_latency_percentiles, vec![0.99]);
        assert_eq!(s.log_level, Some(LogLevel::Warn));
    }
}
