//! The four Services of a cluster: a headless one per component (stable pod DNS, published
//! before readiness so peers can register early) and a ClusterIP one per component for
//! clients (`demo-nsqd:4150` for producers, `demo-lookupd:4161` for consumers).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::{self, COMPONENT_LOOKUPD, COMPONENT_NSQD, SCRAPE_LABEL};
use super::{Owner, LOOKUPD_HTTP_PORT, LOOKUPD_TCP_PORT, NSQD_HTTP_PORT, NSQD_TCP_PORT};

/// Which flavour of Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `clusterIP: None`, one DNS record per pod.
    Headless,
    /// A virtual IP load-balancing over ready pods.
    Client,
}

fn ports(tcp: i32, http: i32) -> Vec<ServicePort> {
    vec![
        ServicePort {
            name: Some("tcp".into()),
            port: tcp,
            target_port: Some(IntOrString::String("tcp".into())),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        },
        ServicePort {
            name: Some("http".into()),
            port: http,
            target_port: Some(IntOrString::String("http".into())),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        },
    ]
}

fn build(
    owner: &Owner,
    component: &str,
    name: String,
    flavor: Flavor,
    tcp: i32,
    http: i32,
) -> Service {
    let mut meta_labels = labels::common(&owner.names.cluster, component);
    if flavor == Flavor::Headless {
        meta_labels.insert(SCRAPE_LABEL.to_string(), "true".to_string());
    }
    let headless = flavor == Flavor::Headless;
    Service {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(owner.names.namespace.clone()),
            labels: Some(meta_labels),
            owner_references: Some(vec![owner.owner_ref.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: headless.then(|| "None".to_string()),
            publish_not_ready_addresses: headless.then_some(true),
            selector: Some(labels::selector(&owner.names.cluster, component)),
            ports: Some(ports(tcp, http)),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// An nsqd Service.
pub fn nsqd(owner: &Owner, flavor: Flavor) -> Service {
    let name = match flavor {
        Flavor::Headless => owner.names.nsqd_headless(),
        Flavor::Client => owner.names.nsqd(),
    };
    build(
        owner,
        COMPONENT_NSQD,
        name,
        flavor,
        NSQD_TCP_PORT,
        NSQD_HTTP_PORT,
    )
}

/// An nsqlookupd Service.
pub fn lookupd(owner: &Owner, flavor: Flavor) -> Service {
    let name = match flavor {
        Flavor::Headless => owner.names.lookupd_headless(),
        Flavor::Client => owner.names.lookupd(),
    };
    build(
        owner,
        COMPONENT_LOOKUPD,
        name,
        flavor,
        LOOKUPD_TCP_PORT,
        LOOKUPD_HTTP_PORT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_support::cluster;

    #[test]
    fn headless_and_client_services() {
        let owner = Owner::of(&cluster()).expect("owner");
        let h = nsqd(&owner, Flavor::Headless);
        assert_eq!(h.metadata.name.as_deref(), Some("demo-nsqd-headless"));
        let hs = h.spec.expect("spec");
        assert_eq!(hs.cluster_ip.as_deref(), Some("None"));
        assert_eq!(hs.publish_not_ready_addresses, Some(true));
        assert_eq!(
            h.metadata
                .labels
                .as_ref()
                .expect("labels")
                .get(SCRAPE_LABEL)
                .map(String::as_str),
            Some("true")
        );
        let c = lookupd(&owner, Flavor::Client);
        assert_eq!(c.metadata.name.as_deref(), Some("demo-lookupd"));
        let cs = c.spec.expect("spec");
        assert_eq!(cs.cluster_ip, None);
        let ports: Vec<i32> = cs.ports.expect("ports").iter().map(|p| p.port).collect();
        assert_eq!(ports, [4160, 4161]);
        assert_eq!(
            cs.selector.expect("selector")["app.kubernetes.io/component"],
            "nsqlookupd"
        );
        assert!(!c
            .metadata
            .labels
            .expect("labels")
            .contains_key(SCRAPE_LABEL));
    }
}
