//! The NsqCluster reconciler: server-side applies every child (Services, StatefulSets,
//! PodDisruptionBudgets, the optional ServiceMonitor), drains the volumes of nsqd pods a
//! scale-down removed ([`super::drain`]), then reports readiness, rollout and drain
//! progress. Children carry owner references, so deleting the cluster garbage-collects
//! them (PVCs follow `storage.whenDeleted`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::ResourceExt;

use super::drain::{reconcile_drains, Drains, DRAINING};
use super::status::{apply, delete_if_present, patch_status};
use super::{Context, KindName};
use crate::crd::common::{condition as cond, find_condition, is_condition_true};
use crate::crd::{NsqCluster, NsqClusterStatus};
use crate::resources::labels::{COMPONENT_LOOKUPD, COMPONENT_NSQD};
use crate::resources::service::Flavor;
use crate::resources::{lookupd, nsqd, pdb, service, service_monitor, Names, Owner};
use crate::{Error, Result};

/// How often a healthy cluster is re-applied even without any watch event.
pub const RESYNC: Duration = Duration::from_secs(300);

/// Reconciles one NsqCluster.
#[tracing::instrument(skip_all, fields(kind = "NsqCluster", namespace = cluster.metadata.namespace.as_deref(), name = cluster.metadata.name.as_deref()))]
pub async fn reconcile(cluster: Arc<NsqCluster>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(NsqCluster::KIND_NAME);
    if cluster.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the children.
        return Ok(Action::await_change());
    }
    let owner = Owner::of(&cluster)?;
    let ns = owner.names.namespace.clone();

    let client = ctx.client.clone();
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    let spec = &cluster.spec;

    apply(&services, &service::lookupd(&owner, Flavor::Headless)).await?;
    apply(&services, &service::lookupd(&owner, Flavor::Client)).await?;
    let lookupd_sts = apply(&sets, &lookupd::statefulset(&cluster, &owner, &ctx.images)).await?;
    if spec.lookupd.pdb.enabled {
        apply(
            &pdbs,
            &pdb::pdb(
                &owner,
                owner.names.lookupd(),
                COMPONENT_LOOKUPD,
                &spec.lookupd.pdb,
            ),
        )
        .await?;
    } else {
        delete_if_present(&pdbs, &owner.names.lookupd()).await?;
    }

    apply(&services, &service::nsqd(&owner, Flavor::Headless)).await?;
    apply(&services, &service::nsqd(&owner, Flavor::Client)).await?;
    let nsqd_sts = apply(
        &sets,
        &nsqd::statefulset(&cluster, &owner, &ctx.images, spec.nsqd.replicas),
    )
    .await?;
    if spec.nsqd.pdb.enabled {
        apply(
            &pdbs,
            &pdb::pdb(&owner, owner.names.nsqd(), COMPONENT_NSQD, &spec.nsqd.pdb),
        )
        .await?;
    } else {
        delete_if_present(&pdbs, &owner.names.nsqd()).await?;
    }
    let drains = reconcile_drains(&cluster, &owner, &ctx).await?;

    let monitors: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &service_monitor::api_resource());
    let sm = &spec.metrics.service_monitor;
    let sm_result = if sm.enabled {
        apply(&monitors, &service_monitor::service_monitor(&owner, sm))
            .await
            .map(drop)
    } else {
        delete_if_present(&monitors, &owner.names.cluster).await
    };
    match sm_result {
        Ok(()) => {}
        // The ServiceMonitor CRD is not installed: report it, but run the cluster anyway.
        Err(Error::Kube(kube::Error::Api(s))) if s.code == 404 => {
            if sm.enabled {
                ctx.event(
                    cluster.as_ref(),
                    EventType::Warning,
                    "ServiceMonitorUnavailable",
                    "ApplyServiceMonitor",
                    "the monitoring.coreos.com/v1 ServiceMonitor API is not installed".into(),
                )
                .await;
            }
        }
        Err(e) => return Err(e),
    }

    let previous = cluster.status.clone().unwrap_or_default();
    let mut status = cluster_status(&cluster, &owner.names, &lookupd_sts, &nsqd_sts, &previous);
    drain_condition(&mut status, &previous, &drains, cluster.metadata.generation);
    let clusters: Api<NsqCluster> = Api::namespaced(client, &ns);
    patch_status(&clusters, &cluster.name_any(), &status).await?;
    announce_transitions(&cluster, &previous, &status, &ctx).await;
    ctx.reset_backoff(cluster.as_ref());
    Ok(Action::requeue(RESYNC))
}

/// While volumes of removed pods wait to be drained, `Progressing` says so (it outranks a
/// rollout: the cluster is not settled until they are drained) and `pendingDrains` counts
/// them.
pub fn drain_condition(
    status: &mut NsqClusterStatus,
    previous: &NsqClusterStatus,
    drains: &Drains,
    generation: Option<i64>,
) {
    status.pending_drains = i32::try_from(drains.pending.len()).unwrap_or(i32::MAX);
    if drains.pending.is_empty() {
        return;
    }
    status.conditions.retain(|c| c.type_ != "Progressing");
    status.conditions.push(cond(
        &previous.conditions,
        "Progressing",
        true,
        DRAINING,
        format!(
            "{} volume(s) of removed nsqd pods to drain: {}",
            drains.pending.len(),
            drains.pending.join("; ")
        ),
        generation,
    ));
}

/// Events when readiness flips.
async fn announce_transitions(
    cluster: &NsqCluster,
    previous: &NsqClusterStatus,
    status: &NsqClusterStatus,
    ctx: &Context,
) {
    let was = is_condition_true(&previous.conditions, "Ready");
    let is = is_condition_true(&status.conditions, "Ready");
    let degraded_now = is_condition_true(&status.conditions, "Degraded")
        && !is_condition_true(&previous.conditions, "Degraded");
    if is && !was {
        ctx.event(
            cluster,
            EventType::Normal,
            "ClusterReady",
            "Reconcile",
            format!(
                "nsqd {} and nsqlookupd {} ready",
                status.nsqd_ready, status.lookupd_ready
            ),
        )
        .await;
    } else if degraded_now {
        let message = find_condition(&status.conditions, "Degraded")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        ctx.event(
            cluster,
            EventType::Warning,
            "ClusterDegraded",
            "Reconcile",
            message,
        )
        .await;
    }
}

/// Rollout facts of one StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetState {
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
    /// A spec change is still being rolled out (or not yet observed).
    pub rolling: bool,
}

impl SetState {
    pub fn of(sts: &StatefulSet) -> SetState {
        let desired = sts.spec.replicas.unwrap_or(1);
        let st = sts.status.clone().unwrap_or_default();
        let ready = st.ready_replicas.unwrap_or(0);
        let updated = st.updated_replicas.unwrap_or(0);
        let generation = sts.metadata.generation.unwrap_or(0);
        let observed = st.observed_generation.unwrap_or(0);
        let revisions_differ = match (&st.current_revision, &st.update_revision) {
            (Some(c), Some(u)) => c != u,
            _ => false,
        };
        let rolling = observed < generation
            || revisions_differ
            || updated < desired
            || st.replicas != desired;
        SetState {
            desired,
            ready,
            updated,
            rolling,
        }
    }
}

/// The status an NsqCluster should have given its two StatefulSets as the API server
/// returned them.
pub fn cluster_status(
    cluster: &NsqCluster,
    names: &Names,
    lookupd_sts: &StatefulSet,
    nsqd_sts: &StatefulSet,
    previous: &NsqClusterStatus,
) -> NsqClusterStatus {
    let generation = cluster.metadata.generation;
    let l = SetState::of(lookupd_sts);
    let n = SetState::of(nsqd_sts);
    let ready = l.ready >= l.desired && n.ready >= n.desired;
    let progressing = l.rolling || n.rolling;
    let mut missing = Vec::new();
    if n.ready < n.desired {
        missing.push(format!("nsqd {}/{} ready", n.ready, n.desired));
    }
    if l.ready < l.desired {
        missing.push(format!("nsqlookupd {}/{} ready", l.ready, l.desired));
    }
    let degraded = !ready && !progressing;
    let prev = &previous.conditions;
    let conditions = vec![
        if ready {
            cond(
                prev,
                "Ready",
                true,
                "AllReplicasReady",
                "every nsqd and nsqlookupd pod is ready",
                generation,
            )
        } else {
            cond(
                prev,
                "Ready",
                false,
                "ReplicasNotReady",
                missing.join(", "),
                generation,
            )
        },
        if progressing {
            cond(
                prev,
                "Progressing",
                true,
                "RollingUpdate",
                format!(
                    "nsqd {}/{} updated, nsqlookupd {}/{} updated",
                    n.updated, n.desired, l.updated, l.desired
                ),
                generation,
            )
        } else {
            cond(
                prev,
                "Progressing",
                false,
                "Stable",
                "no rollout in progress",
                generation,
            )
        },
        if degraded {
            cond(
                prev,
                "Degraded",
                true,
                "ReplicasUnavailable",
                missing.join(", "),
                generation,
            )
        } else {
            cond(prev, "Degraded", false, "AsExpected", "", generation)
        },
    ];
    NsqClusterStatus {
        conditions,
        observed_generation: generation,
        ready_nsqd: n.ready,
        ready_lookupd: l.ready,
        nsqd_ready: format!("{}/{}", n.ready, n.desired),
        lookupd_ready: format!("{}/{}", l.ready, l.desired),
        lookupd_http_address: names.lookupd_http_service_address(),
        nsqd_tcp_address: names.nsqd_tcp_service_address(),
        nsqd_addresses: names.nsqd_tcp_addresses(n.desired),
        pending_drains: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_support::cluster;
    use k8s_openapi::api::apps::v1::{StatefulSetSpec, StatefulSetStatus};

    pub(crate) fn sts(desired: i32, ready: i32, updated: i32, same_revision: bool) -> StatefulSet {
        let mut s = StatefulSet::default();
        s.metadata.generation = Some(2);
        s.spec = StatefulSetSpec {
            replicas: Some(desired),
            ..StatefulSetSpec::default()
        };
        s.status = Some(StatefulSetStatus {
            observed_generation: Some(2),
            replicas: desired,
            ready_replicas: Some(ready),
            updated_replicas: Some(updated),
            current_revision: Some("r1".into()),
            update_revision: Some(if same_revision { "r1" } else { "r2" }.into()),
            ..StatefulSetStatus::default()
        });
        s
    }

    fn status_of(l: &StatefulSet, n: &StatefulSet) -> NsqClusterStatus {
        let c = cluster();
        cluster_status(
            &c,
            &Names::new("demo", "ns"),
            l,
            n,
            &NsqClusterStatus::default(),
        )
    }

    fn state(s: &NsqClusterStatus, t: &str) -> String {
        find_condition(&s.conditions, t)
            .map(|c| c.status.clone())
            .unwrap_or_default()
    }

    #[test]
    fn all_ready_is_ready_and_stable() {
        let s = status_of(&sts(3, 3, 3, true), &sts(3, 3, 3, true));
        assert_eq!(
            (
                state(&s, "Ready"),
                state(&s, "Progressing"),
                state(&s, "Degraded")
            ),
            ("True".into(), "False".into(), "False".into())
        );
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(s.nsqd_ready, "3/3");
        assert_eq!(s.lookupd_http_address, "demo-lookupd.ns.svc:4161");
        assert_eq!(s.nsqd_addresses.len(), 3);
        assert_eq!(
            s.nsqd_addresses[0],
            "demo-nsqd-0.demo-nsqd-headless.ns.svc:4150"
        );
    }

    #[test]
    fn a_rollout_is_progressing_not_degraded() {
        let s = status_of(&sts(3, 3, 3, true), &sts(3, 2, 1, false));
        assert_eq!(state(&s, "Ready"), "False");
        assert_eq!(state(&s, "Progressing"), "True");
        assert_eq!(state(&s, "Degraded"), "False");
    }

    #[test]
    fn missing_pods_without_rollout_are_degraded() {
        let s = status_of(&sts(3, 1, 3, true), &sts(3, 3, 3, true));
        assert_eq!(state(&s, "Degraded"), "True");
        let d = find_condition(&s.conditions, "Degraded").expect("degraded");
        assert!(d.message.contains("nsqlookupd 1/3 ready"), "{}", d.message);
        assert_eq!(s.ready_lookupd, 1);
    }
}
