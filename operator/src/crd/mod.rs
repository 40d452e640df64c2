//! The custom resources of API group `nsq.rustnsq.dev`, version `v1alpha1`: one module per
//! kind, plus what they share (cluster references, deletion policies, conditions, name rules).

pub mod channel;
pub mod cluster;
pub mod common;
pub mod topic;

pub use channel::{NsqChannel, NsqChannelSpec, NsqChannelStatus};
pub use cluster::{NsqCluster, NsqClusterSpec, NsqClusterStatus};
pub use common::{ClusterRef, DeletionPolicy, GROUP, VERSION};
pub use topic::{NsqTopic, NsqTopicSpec, NsqTopicStatus};
