//! `NsqChannel`: a channel of a topic that must exist (with the given pause state) on every
//! nsqd of a cluster and in every nsqlookupd, with a deletion policy.

// Several `printcolumn(...)` entries repeat `type_ = ...`, which clippy mistakes for
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};

use super::common::{is_valid_nsq_name, nsq_name_or, ClusterRef, DeletionPolicy, NSQ_NAME_PATTERN};

/// Desired state of an NSQ channel.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "nsq.rustnsq.dev",
    version = "v1alpha1",
    kind = "NsqChannel",
    namespaced,
    status = "NsqChannelStatus",
    shortname = "nsqch",
    category = "nsq",
    doc = "An NSQ channel kept on every nsqd and nsqlookupd of an NsqCluster.",
    validation = kube::core::Rule::new("has(self.spec.channelName) || size(self.metadata.name) <= 64").message("metadata.name is longer than 64 characters: set spec.channelName"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef.name"),
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.topicName"),
    printcolumn(name = "Channel", type_ = "string", json_path = ".status.channelName"),
    printcolumn(name = "Nodes", type_ = "string", json_path = ".status.nodesReady"),
    printcolumn(name = "Depth", type_ = "integer", json_path = ".status.depth"),
    printcolumn(name = "In-Flight", type_ = "integer", json_path = ".status.inFlight"),
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "has(self.channelName) == has(oldSelf.channelName) && (!has(self.channelName) || self.channelName == oldSelf.channelName)"
).message("channelName is immutable"))]
pub struct NsqChannelSpec {
    /// The NsqCluster (same namespace) the channel lives on. Immutable.
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: ClusterRef,
    /// The NSQ topic of the channel (created on a node when missing there). Immutable.
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = NSQ_NAME_PATTERN)
    )]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("topicName is immutable"))]
    pub topic_name: String,
    /// The NSQ channel name; defaults to `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = NSQ_NAME_PATTERN)
    )]
    pub channel_name: Option<String>,
    /// Pause the channel: its consumers receive nothing; messages accumulate.
    #[serde(default)]
    pub paused: bool,
    /// What deleting this resource does on the NSQ nodes.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl NsqChannel {
    /// The NSQ channel name: `spec.channelName`, else `metadata.name`; `None` when that is
    /// not a valid NSQ name.
    pub fn channel_name(&self) -> Option<String> {
        nsq_name_or(self.spec.channel_name.as_deref(), &self.name_any())
    }

    /// The topic name, `None` when invalid (the schema normally prevents that).
    pub fn topic_name(&self) -> Option<String> {
        is_valid_nsq_name(&self.spec.topic_name).then(|| self.spec.topic_name.clone())
    }
}

/// What is true of the channel on the cluster now.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NsqChannelStatus {
    /// `Ready`, `Degraded`, and `DeletionBlocked` while a `DeleteIfEmpty` deletion waits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The NSQ channel name in use.
    #[serde(default)]
    pub channel_name: String,
    /// nsqd nodes (HTTP addresses) the channel exists on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub node_count: i32,
    /// `present/known` nsqd nodes (for `kubectl get`).
    #[serde(default)]
    pub nodes_ready: String,
    /// Messages queued in the channel, summed over nodes.
    #[serde(default)]
    pub depth: i64,
    #[serde(default)]
    pub in_flight: i64,
    #[serde(default)]
    pub deferred: i64,
    /// Messages put to the channel, summed over nodes.
    #[serde(default)]
    pub message_count: i64,
    #[serde(default)]
    pub requeue_count: i64,
    #[serde(default)]
    pub timeout_count: i64,
    /// Connected consumers, summed over nodes.
    #[serde(default)]
    pub client_count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_name_defaults_to_the_object_name() {
        let mut ch = NsqChannel::new(
            "archive",
            NsqChannelSpec {
                cluster_ref: ClusterRef {
                    name: "demo".into(),
                },
                topic_name: "orders".into(),
                ..Default::default()
            },
        );
        assert_eq!(ch.channel_name().as_deref(), Some("archive"));
        assert_eq!(ch.topic_name().as_deref(), Some("orders"));
        ch.spec.channel_name = Some("tail#ephemeral".into());
        assert_eq!(ch.channel_name().as_deref(), Some("tail#ephemeral"));
        ch.spec.topic_name = "no way".into();
        assert_eq!(ch.topic_name(), None);
    }
}
