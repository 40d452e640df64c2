//! [`NsqdEndpoints`]: which nsqd and nsqlookupd HTTP addresses make up a cluster right now.
//! The real one ([`PodEndpoints`]) lists the cluster's ready pods and names each by its stable
//! DNS name through the headless Service.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::crd::NsqCluster;
use crate::resources::labels::{self, COMPONENT_LOOKUPD, COMPONENT_NSQD};
use crate::resources::Names;
use crate::{Error, Result};

/// Maps a cluster to the HTTP addresses of its nsqd and nsqlookupd pods.
#[async_trait]
pub trait NsqdEndpoints: Send + Sync {
    /// `host:port` of the HTTP API of every nsqd pod that can serve now (sorted).
    async fn nsqd_http_addresses(&self, cluster: &NsqCluster) -> Result<Vec<String>>;
    /// `host:port` of the HTTP API of every nsqlookupd pod that can serve now (sorted).
    async fn lookupd_http_addresses(&self, cluster: &NsqCluster) -> Result<Vec<String>>;
    /// `host:port` of the HTTP API of the nsqd pod named `pod`, ready or not.
    fn nsqd_pod_http_address(&self, cluster: &NsqCluster, pod: &str) -> String;
}

/// Lists the cluster's pods through the Kubernetes API.
#[derive(Clone)]
pub struct PodEndpoints {
    client: Client,
}

impl PodEndpoints {
    pub fn new(client: Client) -> Self {
        PodEndpoints { client }
    }

    async fn ready_pods(
        &self,
        cluster: &NsqCluster,
        component: &str,
    ) -> Result<(Names, Vec<String>)> {
        let ns = cluster
            .namespace()
            .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
        let names = Names::new(&cluster.name_any(), &ns);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let pods = api
            .list(
                &ListParams::default().labels(&labels::selector_string(&names.cluster, component)),
            )
            .await?;
        let mut ready: Vec<String> = pods
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && is_pod_ready(p))
            .map(|p| p.name_any())
            .collect();
        ready.sort();
        Ok((names, ready))
    }
}

/// Whether the pod's `Ready` condition is `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[async_trait]
impl NsqdEndpoints for PodEndpoints {
    async fn nsqd_http_addresses(&self, cluster: &NsqCluster) -> Result<Vec<String>> {
        let (names, pods) = self.ready_pods(cluster, COMPONENT_NSQD).await?;
        Ok(pods
            .iter()
            .map(|p| names.nsqd_pod_http_address(p))
            .collect())
    }

    fn nsqd_pod_http_address(&self, cluster: &NsqCluster, pod: &str) -> String {
        Names::new(
            &cluster.name_any(),
            &cluster.namespace().unwrap_or_default(),
        )
        .nsqd_pod_http_address(pod)
    }

    async fn lookupd_http_addresses(&self, cluster: &NsqCluster) -> Result<Vec<String>> {
        let (names, pods) = self.ready_pods(cluster, COMPONENT_LOOKUPD).await?;
        Ok(pods
            .iter()
            .map(|p| names.lookupd_pod_http_address(p))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    #[test]
    fn readiness_comes_from_the_ready_condition() {
        let mut pod = Pod::default();
        assert!(!is_pod_ready(&pod));
        pod.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        });
        assert!(is_pod_ready(&pod));
    }
}
