//! The nsqd StatefulSet: one PersistentVolumeClaim per pod mounted as `--data-path`, each
//! pod broadcasting its stable DNS name and registering with every nsqlookupd pod, `/ping`
//! probes, a grace period long enough to flush, rolling updates one pod at a time.

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::labels::{self, COMPONENT_NSQD};
use super::pod::{
    apply_pod_options, container_security_context, downward_env, ping_probe, pod_template,
};
use super::{DefaultImages, Owner, NSQD_HTTP_PORT, NSQD_TCP_PORT};
use crate::crd::cluster::{NsqdSettings, ReclaimPolicy};
use crate::crd::NsqCluster;

/// Where the data volume is mounted (`--data-path`).
pub const DATA_PATH: &str = "/data";
/// Name of the volume claim template (PVCs are `data-<pod>`).
pub const DATA_VOLUME: &str = "data";

/// nsqd's command line: listeners, data path, broadcast address, one
/// `--lookupd-tcp-address` per nsqlookupd pod, the typed settings, then `extraArgs`.
pub fn args(cluster: &NsqCluster, owner: &Owner) -> Vec<String> {
    let names = &owner.names;
    let mut args = vec![
        format!("--tcp-address=0.0.0.0:{NSQD_TCP_PORT}"),
        format!("--http-address=0.0.0.0:{NSQD_HTTP_PORT}"),
        format!("--data-path={DATA_PATH}"),
        format!("--broadcast-address={}", names.nsqd_broadcast_address()),
    ];
    args.extend(
        names
            .lookupd_tcp_addresses(cluster.spec.lookupd.replicas)
            .into_iter()
            .map(|a| format!("--lookupd-tcp-address={a}")),
    );
    args.extend(settings_args(&cluster.spec.nsqd.settings));
    args.extend(cluster.spec.nsqd.extra_args.iter().cloned());
    args
}

/// The typed settings as nsqd flags, in a fixed order (so an unchanged spec renders an
/// unchanged pod template and causes no rollout).
pub fn settings_args(s: &NsqdSettings) -> Vec<String> {
    let mut out = Vec::new();
    let mut int = |flag: &str, v: Option<i64>| {
        if let Some(v) = v {
            out.push(format!("--{flag}={v}"));
        }
    };
    int("mem-queue-size", s.mem_queue_size);
    int("max-bytes-per-file", s.max_bytes_per_file);
    int("sync-every", s.sync_every);
    int("max-msg-size", s.max_msg_size);
    int("max-body-size", s.max_body_size);
    int("max-rdy-count", s.max_rdy_count);
    int("max-output-buffer-size", s.max_output_buffer_size);
    int("max-channel-consumers", s.max_channel_consumers);
    int("max-deflate-level", s.max_deflate_level);
    let mut text = |flag: &str, v: &Option<String>| {
        if let Some(v) = v {
            out.push(format!("--{flag}={v}"));
        }
    };
    text("sync-timeout", &s.sync_timeout);
    text("msg-timeout", &s.msg_timeout);
    text("max-msg-timeout", &s.max_msg_timeout);
    text("max-req-timeout", &s.max_req_timeout);
    text("max-heartbeat-interval", &s.max_heartbeat_interval);
    text("max-output-buffer-timeout", &s.max_output_buffer_timeout);
    text(
        "e2e-processing-latency-window-time",
        &s.e2e_processing_latency_window_time,
    );
    for q in &s.e2e_processing_latency_percentiles {
        out.push(format!("--e2e-processing-latency-percentile={q}"));
    }
    if let Some(b) = s.deflate {
        out.push(format!("--deflate={b}"));
    }
    if let Some(b) = s.snappy {
        out.push(format!("--snappy={b}"));
    }
    if let Some(l) = s.log_level {
        out.push(format!("--log-level={}", l.as_str()));
    }
    out
}

fn reclaim(p: ReclaimPolicy) -> String {
    match p {
        ReclaimPolicy::Retain => "Retain",
        ReclaimPolicy::Delete => "Delete",
    }
    .to_string()
}

/// The nsqd StatefulSet with `replicas` pods.
///
/// Its claim retention is `whenScaled: Retain` whatever `storage.whenScaled` says: a
/// removed pod's volume must outlive the pod until the operator has drained it (and the
/// operator deletes it then, when `storage.whenScaled` is `Delete`). `whenDeleted` follows
/// `storage.whenDeleted`.
pub fn statefulset(
    cluster: &NsqCluster,
    owner: &Owner,
    images: &DefaultImages,
    replicas: i32,
) -> StatefulSet {
    let spec = &cluster.spec.nsqd;
    let names = &owner.names;
    let selector = labels::selector(&names.cluster, COMPONENT_NSQD);
    let container = Container {
        name: "nsqd".into(),
        image: Some(spec.image.clone().unwrap_or_else(|| images.nsqd.clone())),
        image_pull_policy: spec.image_pull_policy.clone(),
        args: Some(args(cluster, owner)),
        env: Some(downward_env()),
        ports: Some(vec![
            ContainerPort {
                name: Some("tcp".into()),
                container_port: NSQD_TCP_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("http".into()),
                container_port: NSQD_HTTP_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: DATA_VOLUME.into(),
            mount_path: DATA_PATH.into(),
            ..VolumeMount::default()
        }]),
        readiness_probe: Some(ping_probe("http", 2, 5, 3)),
        liveness_probe: Some(ping_probe("http", 10, 10, 6)),
        resources: spec.resources.clone(),
        security_context: Some(container_security_context(&spec.pod)),
        ..Container::default()
    };
    let mut pod_spec = PodSpec {
        containers: vec![container],
        termination_grace_period_seconds: Some(spec.termination_grace_period_seconds),
        image_pull_secrets: (!cluster.spec.image_pull_secrets.is_empty())
            .then(|| cluster.spec.image_pull_secrets.clone()),
        ..PodSpec::default()
    };
    apply_pod_options(&mut pod_spec, &spec.pod);
    let storage = &spec.storage;
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(labels::common(&names.cluster, COMPONENT_NSQD)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), Quantity(storage.size.clone()))].into()),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(names.nsqd()),
            namespace: Some(names.namespace.clone()),
            labels: Some(labels::common(&names.cluster, COMPONENT_NSQD)),
            owner_references: Some(vec![owner.owner_ref.clone()]),
            ..ObjectMeta::default()
        },
        spec: StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(names.nsqd_headless()),
            selector: LabelSelector {
                match_labels: Some(selector),
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
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_scaled: Some(reclaim(ReclaimPolicy::Retain)),
                    when_deleted: Some(reclaim(storage.when_deleted)),
                },
            ),
            volume_claim_templates: Some(vec![claim]),
            template: pod_template(&names.cluster, COMPONENT_NSQD, &spec.pod, pod_spec),
            ..StatefulSetSpec::default()
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::cluster::LogLevel;
    use crate::resources::test_support::cluster;

    fn build(c: &NsqCluster) -> StatefulSet {
        statefulset(
            c,
            &Owner::of(c).expect("owner"),
            &DefaultImages::default(),
            c.spec.nsqd.replicas,
        )
    }

    fn container(sts: &StatefulSet) -> Container {
        sts.spec
            .template
            .spec
            .as_ref()
            .map(|p| p.containers[0].clone())
            .expect("container")
    }

    #[test]
    fn args_carry_data_path_broadcast_and_every_lookupd() {
        let c = cluster();
        let a = args(&c, &Owner::of(&c).expect("owner"));
        assert_eq!(
            a,
            [
                "--tcp-address=0.0.0.0:4150",
                "--http-address=0.0.0.0:4151",
                "--data-path=/data",
                "--broadcast-address=$(POD_NAME).demo-nsqd-headless.ns.svc",
                "--lookupd-tcp-address=demo-lookupd-0.demo-lookupd-headless.ns.svc:4160",
                "--lookupd-tcp-address=demo-lookupd-1.demo-lookupd-headless.ns.svc:4160",
                "--lookupd-tcp-address=demo-lookupd-2.demo-lookupd-headless.ns.svc:4160",
            ]
        );
    }

    #[test]
    fn settings_and_extra_args_follow_in_order() {
        let mut c = cluster();
        c.spec.lookupd.replicas = 1;
        c.spec.nsqd.settings = NsqdSettings {
            mem_queue_size: Some(100),
            msg_timeout: Some("30s".into()),
            max_rdy_count: Some(50),
            e2e_processing_latency_percentiles: vec![0.99, 0.5],
            snappy: Some(false),
            log_level: Some(LogLevel::Debug),
            ..NsqdSettings::default()
        };
        c.spec.nsqd.extra_args = vec!["--max-req-timeout=2h".into()];
        let a = args(&c, &Owner::of(&c).expect("owner"));
        assert_eq!(
            &a[5..],
            [
                "--mem-queue-size=100",
                "--max-rdy-count=50",
                "--msg-timeout=30s",
                "--e2e-processing-latency-percentile=0.99",
                "--e2e-processing-latency-percentile=0.5",
                "--snappy=false",
                "--log-level=debug",
                "--max-req-timeout=2h",
            ]
        );
    }

    #[test]
    fn statefulset_has_volume_probes_grace_and_rolling_update() {
        let c = cluster();
        let sts = build(&c);
        assert_eq!(sts.metadata.name.as_deref(), Some("demo-nsqd"));
        let owner = &sts.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(owner.kind, "NsqCluster");
        assert_eq!(owner.controller, Some(true));
        let spec = &sts.spec;
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("demo-nsqd-headless"));
        assert_eq!(
            spec.update_strategy
                .as_ref()
                .and_then(|u| u.type_.as_deref()),
            Some("RollingUpdate")
        );
        let claim = &spec.volume_claim_templates.as_ref().expect("claims")[0];
        assert_eq!(claim.metadata.name.as_deref(), Some("data"));
        let req = claim
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .expect("requests");
        assert_eq!(req["storage"], Quantity("10Gi".into()));
        let retention = spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .expect("retention");
        assert_eq!(retention.when_scaled.as_deref(), Some("Retain"));
        assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));
        let pod = spec.template.spec.as_ref().expect("pod");
        assert_eq!(pod.termination_grace_period_seconds, Some(60));
        let ct = container(&sts);
        assert_eq!(
            ct.image.as_deref(),
            Some(format!("ghcr.io/rustnsq/nsqd:{}", crate::VERSION).as_str())
        );
        let mount = &ct.volume_mounts.as_ref().expect("mounts")[0];
        assert_eq!(
            (mount.name.as_str(), mount.mount_path.as_str()),
            ("data", "/data")
        );
        assert!(ct.readiness_probe.is_some() && ct.liveness_probe.is_some());
        assert_eq!(
            ct.security_context
                .and_then(|s| s.read_only_root_filesystem),
            Some(true)
        );
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .expect("labels");
        for (k, v) in spec.selector.match_labels.as_ref().expect("selector") {
            assert_eq!(labels.get(k), Some(v), "pod labels include the selector");
        }
    }

    #[test]
    fn storage_policies_images_and_scaling_follow_the_spec() {
        let mut c = cluster();
        c.spec.nsqd.replicas = 5;
        c.spec.nsqd.image = Some("example/nsqd:1".into());
        c.spec.nsqd.storage.when_scaled = ReclaimPolicy::Delete;
        c.spec.nsqd.storage.when_deleted = ReclaimPolicy::Delete;
        c.spec.nsqd.storage.storage_class_name = Some("fast".into());
        let sts = build(&c);
        let spec = &sts.spec;
        assert_eq!(spec.replicas, Some(5));
        let retention = spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .expect("retention");
        assert_eq!(
            retention.when_scaled.as_deref(),
            Some("Retain"),
            "the operator deletes scaled-away claims itself, after draining them"
        );
        assert_eq!(retention.when_deleted.as_deref(), Some("Delete"));
        assert_eq!(
            spec.volume_claim_templates.as_ref().expect("claims")[0]
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref()),
            Some("fast")
        );
        assert_eq!(container(&sts).image.as_deref(), Some("example/nsqd:1"));
    }
}
