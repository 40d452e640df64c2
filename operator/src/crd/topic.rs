//! `NsqTopic`: a topic that must exist (with the given pause state) on every nsqd of a
//! cluster and in every nsqlookupd, with a deletion policy.

// Several `printcolumn(...)` entries repeat `type_ = ...`, which clippy mistakes for
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};

use super::common::{nsq_name_or, ClusterRef, DeletionPolicy, NSQ_NAME_PATTERN};

/// Desired state of an NSQ topic.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "nsq.rustnsq.dev",
    version = "v1alpha1",
    kind = "NsqTopic",
    namespaced,
    status = "NsqTopicStatus",
    shortname = "nsqt",
    category = "nsq",
    doc = "An NSQ topic kept on every nsqd and nsqlookupd of an NsqCluster.",
    validation = kube::core::Rule::new("has(self.spec.topicName) || size(self.metadata.name) <= 64").message("metadata.name is longer than 64 characters: set spec.topicName"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef.name"),
    printcolumn(name = "Topic", type_ = "string", json_path = ".status.topicName"),
    printcolumn(name = "Nodes", type_ = "string", json_path = ".status.nodesReady"),
    printcolumn(name = "Depth", type_ = "integer", json_path = ".status.depth"),
    printcolumn(name = "Channels", type_ = "integer", json_path = ".status.channelCount"),
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "has(self.topicName) == has(oldSelf.topicName) && (!has(self.topicName) || self.topicName == oldSelf.topicName)"
).message("topicName is immutable"))]
pub struct NsqTopicSpec {
    /// The NsqCluster (same namespace) the topic lives on. Immutable.
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: ClusterRef,
    /// The NSQ topic name; defaults to `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = NSQ_NAME_PATTERN)
    )]
    pub topic_name: Option<String>,
    /// Pause the topic: messages stay at the topic and are not copied to its channels.
    #[serde(default)]
    pub paused: bool,
    /// What deleting this resource does on the NSQ nodes.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl NsqTopic {
    /// The NSQ topic name: `spec.topicName`, else `metadata.name`; `None` when that is not
    /// a valid NSQ name.
    pub fn topic_name(&self) -> Option<String> {
        nsq_name_or(self.spec.topic_name.as_deref(), &self.name_any())
    }
}

/// What is true of the topic on the cluster now.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NsqTopicStatus {
    /// `Ready`, `Degraded`, and `DeletionBlocked` while a `DeleteIfEmpty` deletion waits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The NSQ topic name in use.
    #[serde(default)]
    pub topic_name: String,
    /// nsqd nodes (HTTP addresses) the topic exists on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// `len(nodes)`.
    #[serde(default)]
    pub node_count: i32,
    /// `present/known` nsqd nodes (for `kubectl get`).
    #[serde(default)]
    pub nodes_ready: String,
    /// Messages queued at the topic and in its channels, summed over nodes.
    #[serde(default)]
    pub depth: i64,
    /// Messages in flight in the topic's channels, summed over nodes.
    #[serde(default)]
    pub in_flight: i64,
    /// Deferred messages in the topic's channels, summed over nodes.
    #[serde(default)]
    pub deferred: i64,
    /// Messages ever published to the topic, summed over nodes.
    #[serde(default)]
    pub message_count: i64,
    /// Distinct channels of the topic across nodes.
    #[serde(default)]
    pub channel_count: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, topic_name: Option<&str>) -> NsqTopic {
        NsqTopic::new(
            name,
            NsqTopicSpec {
                cluster_ref: ClusterRef {
                    name: "demo".into(),
                },
                topic_name: topic_name.map(str::to_string),
                ..Default::default()
            },
        )
    }

    #[test]
    fn topic_name_defaults_to_the_object_name() {
        assert_eq!(
            topic("orders", None).topic_name().as_deref(),
            Some("orders")
        );
        assert_eq!(
            topic("orders", Some("Orders_v2")).topic_name().as_deref(),
            Some("Orders_v2")
        );
        assert_eq!(topic(&"x".repeat(70), None).topic_name(), None);
        assert_eq!(topic("ok", Some("bad name")).topic_name(), None);
    }

    #[test]
    fn deletion_policy_defaults_to_delete() {
        let spec: NsqTopicSpec =
            serde_json::from_value(serde_json::json!({"clusterRef": {"name": "demo"}}))
                .expect("parses");
        assert_eq!(spec.deletion_policy, DeletionPolicy::Delete);
        assert!(!spec.paused);
    }
}
