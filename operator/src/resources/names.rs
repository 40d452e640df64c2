//! Names and DNS addresses of a cluster's children, in one place (ARCHITECTURE: Kubernetes
//! topology): `demo-lookupd`, `demo-lookupd-headless`, `demo-nsqd`, `demo-nsqd-headless`.

use super::{LOOKUPD_HTTP_PORT, LOOKUPD_TCP_PORT, NSQD_HTTP_PORT, NSQD_TCP_PORT};

/// The names of one NsqCluster's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub cluster: String,
    pub namespace: String,
}

impl Names {
    pub fn new(cluster: &str, namespace: &str) -> Names {
        Names {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// The nsqd StatefulSet, its client Service and its PodDisruptionBudget.
    pub fn nsqd(&self) -> String {
        format!("{}-nsqd", self.cluster)
    }

    /// The nsqd pod with ordinal `i` (`demo-nsqd-2`).
    pub fn nsqd_pod(&self, i: i32) -> String {
        format!("{}-{i}", self.nsqd())
    }

    /// The PersistentVolumeClaim of nsqd pod `i`, made by the StatefulSet from its volume
    /// claim template `template` (`data-demo-nsqd-2`).
    pub fn nsqd_claim(&self, template: &str, i: i32) -> String {
        format!("{template}-{}", self.nsqd_pod(i))
    }

    /// The Job draining the volume of nsqd pod `i` (`demo-nsqd-drain-2`).
    pub fn nsqd_drain_job(&self, i: i32) -> String {
        format!("{}-drain-{i}", self.nsqd())
    }

    /// The ordinal of an nsqd pod name (`demo-nsqd-2` → 2).
    pub fn nsqd_pod_ordinal(&self, pod: &str) -> Option<i32> {
        ordinal_after(pod, &format!("{}-", self.nsqd()))
    }

    /// The ordinal of a claim made from `template` (`data-demo-nsqd-2` → 2).
    pub fn nsqd_claim_ordinal(&self, template: &str, claim: &str) -> Option<i32> {
        ordinal_after(claim, &format!("{template}-{}-", self.nsqd()))
    }

    /// The ordinal of a drain Job name (`demo-nsqd-drain-2` → 2).
    pub fn nsqd_drain_job_ordinal(&self, job: &str) -> Option<i32> {
        ordinal_after(job, &format!("{}-drain-", self.nsqd()))
    }

    /// The nsqd headless Service (stable pod DNS).
    pub fn nsqd_headless(&self) -> String {
        format!("{}-nsqd-headless", self.cluster)
    }

    /// The nsqlookupd StatefulSet, its client Service and its PodDisruptionBudget.
    pub fn lookupd(&self) -> String {
        format!("{}-lookupd", self.cluster)
    }

    /// The nsqlookupd headless Service.
    pub fn lookupd_headless(&self) -> String {
        format!("{}-lookupd-headless", self.cluster)
    }

    /// Stable DNS name of the nsqd pod `pod` (`demo-nsqd-0.demo-nsqd-headless.ns.svc`).
    pub fn nsqd_pod_host(&self, pod: &str) -> String {
        format!("{pod}.{}.{}.svc", self.nsqd_headless(), self.namespace)
    }

    /// Stable DNS name of the nsqlookupd pod `pod`.
    pub fn lookupd_pod_host(&self, pod: &str) -> String {
        format!("{pod}.{}.{}.svc", self.lookupd_headless(), self.namespace)
    }

    /// nsqd's `--broadcast-address`: its own stable DNS name, from the downward API.
    pub fn nsqd_broadcast_address(&self) -> String {
        self.nsqd_pod_host("$(POD_NAME)")
    }

    /// nsqlookupd's `--broadcast-address`.
    pub fn lookupd_broadcast_address(&self) -> String {
        self.lookupd_pod_host("$(POD_NAME)")
    }

    /// Every nsqlookupd pod's TCP address, for nsqd's `--lookupd-tcp-address`.
    pub fn lookupd_tcp_addresses(&self, replicas: i32) -> Vec<String> {
        (0..replicas.max(0))
            .map(|i| {
                format!(
                    "{}:{LOOKUPD_TCP_PORT}",
                    self.lookupd_pod_host(&format!("{}-{i}", self.lookupd()))
                )
            })
            .collect()
    }

    /// Every nsqd pod's stable TCP address (what each broadcasts).
    pub fn nsqd_tcp_addresses(&self, replicas: i32) -> Vec<String> {
        (0..replicas.max(0))
            .map(|i| {
                format!(
                    "{}:{NSQD_TCP_PORT}",
                    self.nsqd_pod_host(&format!("{}-{i}", self.nsqd()))
                )
            })
            .collect()
    }

    /// The address consumers give as `lookupd_http_address`.
    pub fn lookupd_http_service_address(&self) -> String {
        format!(
            "{}.{}.svc:{LOOKUPD_HTTP_PORT}",
            self.lookupd(),
            self.namespace
        )
    }

    /// The address producers publish to.
    pub fn nsqd_tcp_service_address(&self) -> String {
        format!("{}.{}.svc:{NSQD_TCP_PORT}", self.nsqd(), self.namespace)
    }

    /// HTTP address of the nsqd pod `pod` (what the operator's admin client calls).
    pub fn nsqd_pod_http_address(&self, pod: &str) -> String {
        format!("{}:{NSQD_HTTP_PORT}", self.nsqd_pod_host(pod))
    }

    /// HTTP address of the nsqlookupd pod `pod`.
    pub fn lookupd_pod_http_address(&self, pod: &str) -> String {
        format!("{}:{LOOKUPD_HTTP_PORT}", self.lookupd_pod_host(pod))
    }
}

/// The non-negative decimal number that is all of `name` after `prefix`.
fn ordinal_after(name: &str, prefix: &str) -> Option<i32> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_topology() {
        let n = Names::new("demo", "ns");
        assert_eq!(n.nsqd(), "demo-nsqd");
        assert_eq!(n.nsqd_headless(), "demo-nsqd-headless");
        assert_eq!(n.lookupd(), "demo-lookupd");
        assert_eq!(n.lookupd_headless(), "demo-lookupd-headless");
        assert_eq!(
            n.nsqd_broadcast_address(),
            "$(POD_NAME).demo-nsqd-headless.ns.svc"
        );
        assert_eq!(
            n.lookupd_tcp_addresses(3),
            [
                "demo-lookupd-0.demo-lookupd-headless.ns.svc:4160",
                "demo-lookupd-1.demo-lookupd-headless.ns.svc:4160",
                "demo-lookupd-2.demo-lookupd-headless.ns.svc:4160"
            ]
        );
        assert_eq!(n.lookupd_http_service_address(), "demo-lookupd.ns.svc:4161");
        assert_eq!(n.nsqd_tcp_service_address(), "demo-nsqd.ns.svc:4150");
        assert_eq!(
            n.nsqd_pod_http_address("demo-nsqd-1"),
            "demo-nsqd-1.demo-nsqd-headless.ns.svc:4151"
        );
        assert!(n.lookupd_tcp_addresses(-1).is_empty());
    }

    #[test]
    fn ordinals_round_trip_and_reject_lookalikes() {
        let n = Names::new("demo", "ns");
        assert_eq!(n.nsqd_pod(2), "demo-nsqd-2");
        assert_eq!(n.nsqd_claim("data", 2), "data-demo-nsqd-2");
        assert_eq!(n.nsqd_drain_job(2), "demo-nsqd-drain-2");
        assert_eq!(n.nsqd_pod_ordinal("demo-nsqd-12"), Some(12));
        assert_eq!(n.nsqd_claim_ordinal("data", "data-demo-nsqd-3"), Some(3));
        assert_eq!(n.nsqd_drain_job_ordinal("demo-nsqd-drain-4"), Some(4));
        // Another cluster whose name extends this one, other templates, junk.
        assert_eq!(n.nsqd_pod_ordinal("demo-nsqd-drain-4"), None);
        assert_eq!(n.nsqd_claim_ordinal("data", "data-demo-nsqd-x-1"), None);
        assert_eq!(n.nsqd_claim_ordinal("data", "other-demo-nsqd-1"), None);
        assert_eq!(n.nsqd_claim_ordinal("data", "data-demo-nsqd-"), None);
        assert_eq!(n.nsqd_claim_ordinal("data", "data-demo-nsqd--1"), None);
        assert_eq!(
            Names::new("demo-nsqd", "ns").nsqd_pod_ordinal("demo-nsqd-1"),
            None
        );
    }
}
