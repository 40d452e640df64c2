//! The nsqlookupd StatefulSet: stable pod DNS through the headless Service, each pod
//! broadcasting its own name, `/ping` probes. nsqlookupd keeps no data, so no volumes.

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::labels::{self, COMPONENT_LOOKUPD};
use super::pod::{
    apply_pod_options, container_security_context, downward_env, ping_probe, pod_template,
};
use super::{DefaultImages, Owner, LOOKUPD_HTTP_PORT, LOOKUPD_TCP_PORT};
use crate::crd::NsqCluster;

/// nsqlookupd's command line.
pub fn args(cluster: &NsqCluster, owner: &Owner) -> Vec<String> {
    let spec = &cluster.spec.lookupd;
    let mut args = vec![
        format!("--tcp-address=0.0.0.0:{LOOKUPD_TCP_PORT}"),
        format!("--http-address=0.0.0.0:{LOOKUPD_HTTP_PORT}"),
        format!(
            "--broadcast-address={}",
            owner.names.lookupd_broadcast_address()
        ),
    ];
    if let Some(t) = &spec.inactive_producer_timeout {
        args.push(format!("--inactive-producer-timeout={t}"));
    }
    if let Some(t) = &spec.tombstone_lifetime {
        args.push(format!("--tombstone-lifetime={t}"));
    }
    args.extend(spec.extra_args.iter().cloned());
    args
}

/// The nsqlookupd StatefulSet.
pub fn statefulset(cluster: &NsqCluster, owner: &Owner, images: &DefaultImages) -> StatefulSet {
    let spec = &cluster.spec.lookupd;
    let names = &owner.names;
    let container = Container {
        name: "nsqlookupd".into(),
        image: Some(spec.image.clone().unwrap_or_else(|| images.lookupd.clone())),
        image_pull_policy: spec.image_pull_policy.clone(),
        args: Some(args(cluster, owner)),
        env: Some(downward_env()),
        ports: Some(vec![
            ContainerPort {
                name: Some("tcp".into()),
                container_port: LOOKUPD_TCP_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("http".into()),
                container_port: LOOKUPD_HTTP_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        readiness_probe: Some(ping_probe("http", 1, 5, 3)),
        liveness_probe: Some(ping_probe("http", 10, 10, 6)),
        resources: spec.resources.clone(),
        security_context: Some(container_security_context(&spec.pod)),
        ..Container::default()
    };
    let mut pod_spec = PodSpec {
        containers: vec![container],
        termination_grace_period_seconds: Some(30),
        image_pull_secrets: (!cluster.spec.image_pull_secrets.is_empty())
            .then(|| cluster.spec.image_pull_secrets.clone()),
        ..PodSpec::default()
    };
    apply_pod_options(&mut pod_spec, &spec.pod);
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(names.lookupd()),
            namespace: Some(names.namespace.clone()),
            labels: Some(labels::common(&names.cluster, COMPONENT_LOOKUPD)),
            owner_references: Some(vec![owner.owner_ref.clone()]),
            ..ObjectMeta::default()
        },
        spec: StatefulSetSpec {
            replicas: Some(spec.replicas),
            service_name: Some(names.lookupd_headless()),
            selector: LabelSelector {
                match_labels: Some(labels::selector(&names.cluster, COMPONENT_LOOKUPD)),
                ..LabelSelector::default()
            },
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    ..RollingUpdateStatefulSetStrategy::default()
                }),
            }),
            template: pod_template(&names.cluster, COMPONENT_LOOKUPD, &spec.pod, pod_spec),
            ..StatefulSetSpec::default()
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_support::cluster;

    #[test]
    fn lookupd_statefulset_broadcasts_pod_dns_and_has_no_volumes() {
        let mut c = cluster();
        c.spec.lookupd.tombstone_lifetime = Some("30s".into());
        let owner = Owner::of(&c).expect("owner");
        let sts = statefulset(&c, &owner, &DefaultImages::default());
        assert_eq!(sts.metadata.name.as_deref(), Some("demo-lookupd"));
        let spec = sts.spec;
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("demo-lookupd-headless"));
        assert!(spec.volume_claim_templates.is_none());
        let pod = spec.template.spec.expect("pod");
        let ct = &pod.containers[0];
        assert_eq!(
            ct.args.as_deref().expect("args"),
            [
                "--tcp-address=0.0.0.0:4160",
                "--http-address=0.0.0.0:4161",
                "--broadcast-address=$(POD_NAME).demo-lookupd-headless.ns.svc",
                "--tombstone-lifetime=30s",
            ]
        );
        assert_eq!(
            ct.image.as_deref(),
            Some(format!("ghcr.io/rustnsq/nsqlookupd:{}", crate::VERSION).as_str())
        );
        assert!(ct.readiness_probe.is_some());
        assert_eq!(
            pod.security_context.and_then(|s| s.run_as_non_root),
            Some(true)
        );
    }
}
