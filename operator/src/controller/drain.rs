//! Draining the volumes of nsqd pods removed by a scale-down, one pass of the NsqCluster
//! reconciler.
//!
//! The nsqd StatefulSet retains a removed pod's PersistentVolumeClaim (`whenScaled:
//! Retain`), and nsqd writes its memory, in-flight and deferred messages to it on SIGTERM.
//! Once the pod is gone, a Job ([`crate::resources::drain::job`]) runs `nsq drain` on the
//! claim and moves those messages to the remaining ready pods. When the Job succeeds the
//! claim is annotated drained, deleted if `storage.whenScaled` is `Delete`, and the Job is
//! deleted.
//!
//! A claim whose pod exists — still stopping, or back after a scale-up — is in use: it is
//! never drained or deleted; a Job already made for it is deleted and a drained mark is
//! cleared (the pod may write to it again).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::ResourceExt;
use serde_json::json;

use super::status::{apply, delete_if_present};
use super::Context;
use crate::admin::endpoints::is_pod_ready;
use crate::crd::cluster::ReclaimPolicy;
use crate::crd::NsqCluster;
use crate::resources::drain::{self, JobOutcome, DRAINED_ANNOTATION};
use crate::resources::labels::{selector_string, COMPONENT_NSQD, COMPONENT_NSQD_DRAIN};
use crate::resources::nsqd::DATA_VOLUME;
use crate::resources::{Names, Owner};
use crate::{Error, Result};

/// `Progressing` reason while volumes of removed pods wait to be drained.
pub const DRAINING: &str = "Draining";

/// What is left to drain after one pass: a line per claim saying what it waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drains {
    pub pending: Vec<String>,
}

fn is_drained(claim: &PersistentVolumeClaim) -> bool {
    claim
        .annotations()
        .get(DRAINED_ANNOTATION)
        .map(String::as_str)
        == Some("true")
}

/// Objects of `api` carrying the selector labels of `component` of the cluster, keyed by
/// the ordinal `ordinal` finds in their name (others are left out).
async fn by_ordinal<K>(
    api: &Api<K>,
    names: &Names,
    component: &str,
    ordinal: impl Fn(&str) -> Option<i32>,
) -> Result<BTreeMap<i32, K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let selector = selector_string(&names.cluster, component);
    Ok(api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter_map(|o| ordinal(&o.name_any()).map(|i| (i, o)))
        .collect())
}

/// One drain pass for `cluster` (see the module documentation).
pub async fn reconcile_drains(
    cluster: &NsqCluster,
    owner: &Owner,
    ctx: &Context,
) -> Result<Drains> {
    let names = &owner.names;
    let ns = names.namespace.as_str();
    let spec = &cluster.spec.nsqd;
    let desired = spec.replicas;
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);

    let mut job_of = by_ordinal(&jobs, names, COMPONENT_NSQD_DRAIN, |n| {
        names.nsqd_drain_job_ordinal(n)
    })
    .await?;
    let claim_of = by_ordinal(&claims, names, COMPONENT_NSQD, |n| {
        names.nsqd_claim_ordinal(DATA_VOLUME, n)
    })
    .await?;

    // Pods exist only up to `desired`, or beyond it while stopping: listed only when a
    // claim beyond `desired` needs to know.
    let pods: BTreeMap<i32, Pod> = if claim_of.range(desired..).next().is_some() {
        let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
        by_ordinal(&pods_api, names, COMPONENT_NSQD, |n| {
            names.nsqd_pod_ordinal(n)
        })
        .await?
    } else {
        BTreeMap::new()
    };
    let survivors: Vec<String> = pods
        .range(..desired)
        .filter(|(_, p)| p.metadata.deletion_timestamp.is_none() && is_pod_ready(p))
        .map(|(_, p)| names.nsqd_pod_http_address(&p.name_any()))
        .collect();

    // A Job whose claim is gone has nothing to drain.
    let orphans: Vec<i32> = job_of
        .keys()
        .filter(|i| !claim_of.contains_key(i))
        .copied()
        .collect();
    for i in orphans {
        if let Some(job) = job_of.remove(&i) {
            delete_job(&jobs, &job.name_any()).await?;
        }
    }

    let mut drains = Drains::default();
    for (&i, claim) in &claim_of {
        let claim_name = claim.name_any();
        let pod = names.nsqd_pod(i);
        let job = job_of.remove(&i);
        if i < desired || pods.contains_key(&i) {
            in_use(cluster, ctx, &jobs, &claims, claim, job, &pod).await?;
            if i >= desired {
                drains
                    .pending
                    .push(format!("{claim_name}: waiting for pod {pod} to stop"));
            }
            continue;
        }
        if is_drained(claim) || !spec.drain.enabled {
            if let Some(job) = job {
                delete_job(&jobs, &job.name_any()).await?;
            }
            if spec.storage.when_scaled == ReclaimPolicy::Delete {
                delete_if_present(&claims, &claim_name).await?;
                if !is_drained(claim) {
                    ctx.event(
                        cluster,
                        EventType::Warning,
                        "VolumeDeleted",
                        "Drain",
                        format!("deleted {claim_name} of removed pod {pod} without draining it (spec.nsqd.drain.enabled is false)"),
                    )
                    .await;
                }
            }
            continue;
        }
        let Some(job) = job else {
            if survivors.is_empty() {
                drains.pending.push(format!(
                    "{claim_name}: waiting for a ready nsqd pod below {} to drain into",
                    names.nsqd_pod(desired)
                ));
                continue;
            }
            let job = apply(
                &jobs,
                &drain::job(cluster, owner, &ctx.images, i, &survivors),
            )
            .await?;
            ctx.event(
                cluster,
                EventType::Normal,
                "DrainStarted",
                "Drain",
                format!(
                    "Job {} moves the messages on {claim_name} of removed pod {pod} to {}",
                    job.name_any(),
                    survivors.join(", ")
                ),
            )
            .await;
            drains
                .pending
                .push(format!("{claim_name}: Job {} started", job.name_any()));
            continue;
        };
        let job_name = job.name_any();
        match drain::outcome(&job) {
            JobOutcome::Running => drains
                .pending
                .push(format!("{claim_name}: Job {job_name} running")),
            JobOutcome::Failed => {
                let why = format!(
                    "{claim_name}: Job {job_name} failed (its messages are still on the volume; see the Job's logs, delete the Job to try again)"
                );
                ctx.event(
                    cluster,
                    EventType::Warning,
                    "DrainFailed",
                    "Drain",
                    why.clone(),
                )
                .await;
                drains.pending.push(why);
            }
            JobOutcome::Succeeded => {
                set_drained(&claims, &claim_name, true).await?;
                let kept = if spec.storage.when_scaled == ReclaimPolicy::Delete {
                    delete_if_present(&claims, &claim_name).await?;
                    "deleted (storage.whenScaled Delete)"
                } else {
                    "kept, annotated drained (storage.whenScaled Retain)"
                };
                delete_job(&jobs, &job_name).await?;
                ctx.event(
                    cluster,
                    EventType::Normal,
                    "Drained",
                    "Drain",
                    format!("Job {job_name} moved the messages on {claim_name} of removed pod {pod} to the remaining pods; the claim is {kept}"),
                )
                .await;
            }
        }
    }
    Ok(drains)
}

/// A claim whose pod runs (or will): drop its drain Job and its drained mark.
async fn in_use(
    cluster: &NsqCluster,
    ctx: &Context,
    jobs: &Api<Job>,
    claims: &Api<PersistentVolumeClaim>,
    claim: &PersistentVolumeClaim,
    job: Option<Job>,
    pod: &str,
) -> Result<()> {
    let claim_name = claim.name_any();
    if let Some(job) = job {
        delete_job(jobs, &job.name_any()).await?;
        ctx.event(
            cluster,
            EventType::Normal,
            "DrainCancelled",
            "Drain",
            format!(
                "pod {pod} exists again: Job {} deleted; {claim_name} stays in use with its messages",
                job.name_any()
            ),
        )
        .await;
    }
    if is_drained(claim) {
        set_drained(claims, &claim_name, false).await?;
    }
    Ok(())
}

/// Sets or clears the drained annotation of a claim.
async fn set_drained(api: &Api<PersistentVolumeClaim>, name: &str, drained: bool) -> Result<()> {
    let value = if drained { json!("true") } else { json!(null) };
    let patch = json!({"metadata": {"annotations": {DRAINED_ANNOTATION: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::from)?;
    Ok(())
}

/// Deletes a Job and its pods (the Job API orphans pods unless told otherwise).
async fn delete_job(api: &Api<Job>, name: &str) -> Result<()> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
