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

#[cfg(test)]
mod examples {
    //! The manifests under `examples/` decode into our types with the values they show.

    use std::path::Path;

    use super::*;

    fn load<T: serde::de::DeserializeOwned>(file: &str) -> T {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(file);
        let text = std::fs::read_to_string(&path).expect("example exists");
        serde_yaml_ng::from_str(&text).expect("example decodes")
    }

    #[test]
    fn examples_decode() {
        let c: NsqCluster = load("nsqcluster.yaml");
        assert_eq!(c.spec.nsqd.replicas, 3);
        assert_eq!(
            c.spec.nsqd.settings.e2e_processing_latency_percentiles,
            [0.99, 0.95]
        );
        assert_eq!(c.spec.nsqd.pod.topology_spread_constraints.len(), 1);
        let t: NsqTopic = load("nsqtopic.yaml");
        assert_eq!(t.topic_name().as_deref(), Some("orders"));
        assert_eq!(t.spec.deletion_policy, DeletionPolicy::DeleteIfEmpty);
        let ch: NsqChannel = load("nsqchannel.yaml");
        assert_eq!(ch.channel_name().as_deref(), Some("billing"));
        assert_eq!(ch.topic_name().as_deref(), Some("orders"));
    }
}
