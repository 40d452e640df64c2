//! The Job that drains the volume of an nsqd pod removed by a scale-down: `nsq drain` opens
//! the stopped pod's data directory (its PersistentVolumeClaim, mounted where nsqd had it)
//! and moves every queued message to the remaining ready nsqd pods. The Job is idempotent:
//! a batch no survivor accepts is written back and the run fails, so a retry is safe, and
//! a run over an emptied directory moves nothing and succeeds.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::labels::{self, COMPONENT_NSQD_DRAIN};
use super::nsqd::{DATA_PATH, DATA_VOLUME};
use super::pod::{apply_pod_options, container_security_context};
use super::{DefaultImages, Owner};
use crate::crd::cluster::{NsqdSpec, PodOptions};
use crate::crd::NsqCluster;

/// Set to `"true"` on a claim once its messages have been moved to the survivors.
pub const DRAINED_ANNOTATION: &str = "nsq.rustnsq.dev/drained";
/// On a drain Job: the claim it drains.
pub const CLAIM_ANNOTATION: &str = "nsq.rustnsq.dev/drain-claim";

/// The `--max-msg-size` the removed nsqd ran with: the typed setting, overridden by a
/// `--max-msg-size` in `extraArgs` (the last one wins, as nsqd's flag parsing does);
/// `None` when neither sets it (nsqd's and `nsq drain`'s defaults agree).
pub fn max_msg_size(spec: &NsqdSpec) -> Option<i64> {
    let mut size = spec.settings.max_msg_size;
    let mut args = spec.extra_args.iter();
    while let Some(arg) = args.next() {
        let flag = arg.trim_start_matches('-');
        if arg.starts_with('-') {
            if let Some(v) = flag.strip_prefix("max-msg-size=") {
                size = v.parse().ok().or(size);
            } else if flag == "max-msg-size" {
                size = args.next().and_then(|v| v.parse().ok()).or(size);
            }
        }
    }
    size
}

/// `nsq drain`'s command line: the data path where the claim is mounted, one
/// `--nsqd-http-address` per survivor (`host:port` of its HTTP API), the message size limit.
pub fn args(survivors: &[String], max_msg_size: Option<i64>) -> Vec<String> {
    let mut args = vec![
        "drain".to_string(),
        "--data-path".to_string(),
        DATA_PATH.to_string(),
    ];
    for s in survivors {
        args.push("--nsqd-http-address".to_string());
        args.push(s.clone());
    }
    if let Some(n) = max_msg_size {
        args.push("--max-msg-size".to_string());
        args.push(n.to_string());
    }
    args
}

/// Scheduling of the drain pod: the nsqd pods' node selector, tolerations, priority class,
/// service account and security contexts, but not their affinity or spread constraints
/// (written for nsqd pods; the volume's own topology places the Job).
fn pod_options(nsqd: &PodOptions) -> PodOptions {
    PodOptions {
        labels: Default::default(),
        annotations: Default::default(),
        affinity: None,
        topology_spread_constraints: Vec::new(),
        ..nsqd.clone()
    }
}

/// The Job `<cluster>-nsqd-drain-<ordinal>`, owned by the cluster, that drains the claim of
/// nsqd pod `ordinal` into `survivors`.
pub fn job(
    cluster: &NsqCluster,
    owner: &Owner,
    images: &DefaultImages,
    ordinal: i32,
    survivors: &[String],
) -> Job {
    let names = &owner.names;
    let spec = &cluster.spec.nsqd;
    let claim = names.nsqd_claim(DATA_VOLUME, ordinal);
    let container = Container {
        name: "drain".into(),
        image: Some(
            spec.drain
                .image
                .clone()
                .unwrap_or_else(|| images.cli.clone()),
        ),
        image_pull_policy: spec.drain.image_pull_policy.clone(),
        args: Some(args(survivors, max_msg_size(spec))),
        volume_mounts: Some(vec![VolumeMount {
            name: DATA_VOLUME.into(),
            mount_path: DATA_PATH.into(),
            ..VolumeMount::default()
        }]),
        resources: spec.drain.resources.clone(),
        security_context: Some(container_security_context(&spec.pod)),
        ..Container::default()
    };
    let mut pod_spec = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        volumes: Some(vec![Volume {
            name: DATA_VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: None,
            }),
            ..Volume::default()
        }]),
        image_pull_secrets: (!cluster.spec.image_pull_secrets.is_empty())
            .then(|| cluster.spec.image_pull_secrets.clone()),
        ..PodSpec::default()
    };
    apply_pod_options(&mut pod_spec, &pod_options(&spec.pod));
    let labels = labels::common(&names.cluster, COMPONENT_NSQD_DRAIN);
    Job {
        metadata: ObjectMeta {
            name: Some(names.nsqd_drain_job(ordinal)),
            namespace: Some(names.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some([(CLAIM_ANNOTATION.to_string(), claim)].into()),
            owner_references: Some(vec![owner.owner_ref.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(spec.drain.backoff_limit),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// Where a drain Job stands, from its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Running,
    Succeeded,
    /// Out of retries (`backoffLimit`) or otherwise given up by the Job controller.
    Failed,
}

/// The outcome of `job`: its `Complete`/`Failed` conditions, else its succeeded count.
pub fn outcome(job: &Job) -> JobOutcome {
    let status = job.status.clone().unwrap_or_default();
    let condition = |t: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == t && c.status == "True")
    };
    if condition("Complete") || status.succeeded.unwrap_or(0) > 0 {
        JobOutcome::Succeeded
    } else if condition("Failed") {
        JobOutcome::Failed
    } else {
        JobOutcome::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_support::cluster;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{
        Affinity, LocalObjectReference, PodSecurityContext, Toleration,
    };

    const SURVIVORS: [&str; 2] = [
        "demo-nsqd-0.demo-nsqd-headless.ns.svc:4151",
        "demo-nsqd-1.demo-nsqd-headless.ns.svc:4151",
    ];

    fn build(c: &NsqCluster) -> Job {
        let survivors: Vec<String> = SURVIVORS.iter().map(|s| s.to_string()).collect();
        job(
            c,
            &Owner::of(c).expect("owner"),
            &DefaultImages::default(),
            2,
            &survivors,
        )
    }

    fn pod(job: &Job) -> PodSpec {
        job.spec
            .as_ref()
            .and_then(|s| s.template.spec.clone())
            .expect("pod spec")
    }

    #[test]
    fn job_mounts_the_removed_pods_claim_where_nsqd_had_it() {
        let c = cluster();
        let j = build(&c);
        assert_eq!(j.metadata.name.as_deref(), Some("demo-nsqd-drain-2"));
        assert_eq!(j.metadata.namespace.as_deref(), Some("ns"));
        let owner = &j.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("NsqCluster", "demo")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(
            j.metadata.annotations.as_ref().expect("annotations")[CLAIM_ANNOTATION],
            "data-demo-nsqd-2"
        );
        let p = pod(&j);
        assert_eq!(p.restart_policy.as_deref(), Some("Never"));
        let volume = &p.volumes.as_ref().expect("volumes")[0];
        let source = volume.persistent_volume_claim.as_ref().expect("claim");
        assert_eq!(source.claim_name, "data-demo-nsqd-2");
        let ct = &p.containers[0];
        let mount = &ct.volume_mounts.as_ref().expect("mounts")[0];
        assert_eq!(
            (mount.name.as_str(), mount.mount_path.as_str()),
            (volume.name.as_str(), DATA_PATH)
        );
        assert_eq!(
            ct.args.as_deref().expect("args"),
            [
                "drain",
                "--data-path",
                "/data",
                "--nsqd-http-address",
                SURVIVORS[0],
                "--nsqd-http-address",
                SURVIVORS[1],
            ]
        );
        assert_eq!(
            ct.image.as_deref(),
            Some(format!("ghcr.io/rustnsq/nsq:{}", crate::VERSION).as_str())
        );
        assert_eq!(j.spec.as_ref().and_then(|s| s.backoff_limit), Some(6));
    }

    #[test]
    fn job_runs_restricted_and_is_never_selected_as_an_nsqd_pod() {
        let c = cluster();
        let j = build(&c);
        let p = pod(&j);
        let psc = p.security_context.as_ref().expect("pod security context");
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.fs_group, Some(crate::resources::pod::RUN_AS_USER));
        assert_eq!(p.automount_service_account_token, Some(false));
        let csc = p.containers[0].security_context.clone().expect("context");
        assert_eq!(csc.read_only_root_filesystem, Some(true));
        assert_eq!(csc.allow_privilege_escalation, Some(false));
        let pod_labels = j
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .expect("labels");
        assert_eq!(pod_labels["app.kubernetes.io/component"], "nsqd-drain");
        assert_eq!(pod_labels["app.kubernetes.io/managed-by"], "nsq-operator");
        let nsqd_selector = labels::selector("demo", labels::COMPONENT_NSQD);
        assert!(
            !nsqd_selector
                .iter()
                .all(|(k, v)| pod_labels.get(k) == Some(v)),
            "the nsqd Services and PDB must not select the drain pod"
        );
    }

    #[test]
    fn job_follows_the_clusters_image_security_and_scheduling_choices() {
        let mut c = cluster();
        c.spec.nsqd.drain.image = Some("example/nsq:2".into());
        c.spec.nsqd.drain.image_pull_policy = Some("Always".into());
        c.spec.nsqd.drain.backoff_limit = 2;
        c.spec.nsqd.settings.max_msg_size = Some(2048);
        c.spec.image_pull_secrets = vec![LocalObjectReference {
            name: "regcred".into(),
        }];
        c.spec.nsqd.pod.security_context = Some(PodSecurityContext {
            run_as_user: Some(1000),
            ..PodSecurityContext::default()
        });
        c.spec.nsqd.pod.tolerations = vec![Toleration {
            key: Some("dedicated".into()),
            ..Toleration::default()
        }];
        c.spec.nsqd.pod.node_selector = [("disk".to_string(), "ssd".to_string())].into();
        c.spec.nsqd.pod.affinity = Some(Affinity::default());
        c.spec.nsqd.pod.labels = [("team".to_string(), "a".to_string())].into();
        let j = build(&c);
        let p = pod(&j);
        let ct = &p.containers[0];
        assert_eq!(ct.image.as_deref(), Some("example/nsq:2"));
        assert_eq!(ct.image_pull_policy.as_deref(), Some("Always"));
        let args = ct.args.clone().expect("args");
        assert_eq!(args[args.len() - 2..], ["--max-msg-size", "2048"]);
        assert_eq!(j.spec.as_ref().and_then(|s| s.backoff_limit), Some(2));
        assert_eq!(
            p.security_context.as_ref().and_then(|s| s.run_as_user),
            Some(1000)
        );
        assert_eq!(p.image_pull_secrets.expect("secrets")[0].name, "regcred");
        assert_eq!(p.tolerations.expect("tolerations").len(), 1);
        assert_eq!(p.node_selector.expect("selector")["disk"], "ssd");
        assert_eq!(p.affinity, None, "nsqd's affinity is not the drain pod's");
    }

    #[test]
    fn max_msg_size_comes_from_settings_then_extra_args() {
        let mut spec = NsqdSpec::default();
        assert_eq!(max_msg_size(&spec), None);
        spec.settings.max_msg_size = Some(100);
        assert_eq!(max_msg_size(&spec), Some(100));
        spec.extra_args = vec!["--max-msg-size=200".into(), "--snappy=false".into()];
        assert_eq!(max_msg_size(&spec), Some(200));
        spec.extra_args
            .extend(["-max-msg-size".into(), "300".into()]);
        assert_eq!(max_msg_size(&spec), Some(300));
        spec.extra_args = vec!["--max-msg-size-extra=9".into()];
        assert_eq!(max_msg_size(&spec), Some(100));
    }

    #[test]
    fn outcome_reads_conditions_and_counts() {
        let mut j = Job::default();
        assert_eq!(outcome(&j), JobOutcome::Running);
        let cond = |t: &str| JobCondition {
            type_: t.into(),
            status: "True".into(),
            ..JobCondition::default()
        };
        j.status = Some(JobStatus {
            conditions: Some(vec![cond("Failed")]),
            failed: Some(7),
            ..JobStatus::default()
        });
        assert_eq!(outcome(&j), JobOutcome::Failed);
        j.status = Some(JobStatus {
            conditions: Some(vec![cond("SuccessCriteriaMet"), cond("Complete")]),
            ..JobStatus::default()
        });
        assert_eq!(outcome(&j), JobOutcome::Succeeded);
        j.status = Some(JobStatus {
            succeeded: Some(1),
            ..JobStatus::default()
        });
        assert_eq!(outcome(&j), JobOutcome::Succeeded);
    }
}
