//! The steps the NsqTopic and NsqChannel reconcilers share: finding the live cluster and
//! its nodes, the `Ready`/`Degraded` conditions of a sync, its Events, ending a sync, and
//! the steps of a deletion (cluster gone, `Retain`, `DeleteIfEmpty` refusal, the result).
//! [`super::topic`] and [`super::channel`] keep what differs: the NSQ calls and the
//! figures each status reports.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::Resource;

use super::sync::NodeAction;
use super::Context;
use crate::admin::AdminError;
use crate::crd::common::{condition as cond, condition::DELETION_BLOCKED, DeletionPolicy};
use crate::crd::NsqCluster;
use crate::{Error, Result};

/// The NSQ topic, or channel of a topic, an object stands for (for messages).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'a> {
    Topic(&'a str),
    Channel { topic: &'a str, channel: &'a str },
}

impl Subject<'_> {
    fn topic(&self) -> &str {
        match self {
            Subject::Topic(t) | Subject::Channel { topic: t, .. } => t,
        }
    }
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Topic(t) => write!(f, "topic {t}"),
            Subject::Channel { topic, channel } => write!(f, "channel {topic}/{channel}"),
        }
    }
}

/// The cluster the object refers to, unless it is gone or going.
pub(crate) async fn live_cluster(
    ctx: &Context,
    ns: &str,
    name: &str,
) -> Result<Option<NsqCluster>> {
    let clusters: Api<NsqCluster> = Api::namespaced(ctx.client.clone(), ns);
    Ok(clusters
        .get_opt(name)
        .await?
        .filter(|c| c.metadata.deletion_timestamp.is_none()))
}

/// The HTTP addresses of a cluster's ready nsqd and nsqlookupd pods.
pub(crate) struct Nodes {
    pub nsqds: Vec<String>,
    pub lookupds: Vec<String>,
}

impl Nodes {
    pub async fn of(ctx: &Context, cluster: &NsqCluster) -> Result<Nodes> {
        Ok(Nodes {
            nsqds: ctx.endpoints.nsqd_http_addresses(cluster).await?,
            lookupds: ctx.endpoints.lookupd_http_addresses(cluster).await?,
        })
    }

    /// Every node, for error counts.
    pub fn total(&self) -> usize {
        self.nsqds.len() + self.lookupds.len()
    }
}

/// `Ready` (present on every one of `known` nsqd nodes, and at least one) and `Degraded`
/// (some node or nsqlookupd failed) after a sync.
pub(crate) fn sync_conditions(
    prev: &[Condition],
    generation: Option<i64>,
    present: usize,
    known: usize,
    errors: &[String],
) -> Vec<Condition> {
    let ready = if known == 0 {
        cond(
            prev,
            "Ready",
            false,
            "NoReadyNodes",
            "the cluster has no ready nsqd pod",
            generation,
        )
    } else if errors.is_empty() {
        cond(
            prev,
            "Ready",
            true,
            "PresentOnAllNodes",
            format!("on {present} nsqd node(s)"),
            generation,
        )
    } else {
        cond(
            prev,
            "Ready",
            false,
            "SyncFailed",
            format!("present on {present}/{known} nsqd node(s)"),
            generation,
        )
    };
    let degraded = if errors.is_empty() {
        cond(prev, "Degraded", false, "AsExpected", "", generation)
    } else {
        cond(
            prev,
            "Degraded",
            true,
            "NodeErrors",
            errors.join("; "),
            generation,
        )
    };
    vec![ready, degraded]
}

/// One Event per kind of action a sync took, naming the nodes.
pub(crate) async fn announce<K>(
    obj: &K,
    subject: Subject<'_>,
    actions: &[(String, NodeAction)],
    ctx: &Context,
) where
    K: Resource<DynamicType = ()>,
{
    for (kind, reason, what) in [
        (
            NodeAction::CreatedTopic,
            "TopicCreated",
            format!("created topic {}", subject.topic()),
        ),
        (
            NodeAction::CreatedChannel,
            "ChannelCreated",
            format!("created {subject}"),
        ),
        (NodeAction::Paused, "Paused", format!("paused {subject}")),
        (
            NodeAction::Unpaused,
            "Unpaused",
            format!("unpaused {subject}"),
        ),
    ] {
        let nodes: Vec<&str> = actions
            .iter()
            .filter(|(_, a)| *a == kind)
            .map(|(n, _)| n.as_str())
            .collect();
        if !nodes.is_empty() {
            ctx.event(
                obj,
                EventType::Normal,
                reason,
                "Sync",
                format!("{what} on {}", nodes.join(", ")),
            )
            .await;
        }
    }
}

/// Ends a sync whose status is written: a failed node fails the reconcile (Warning event
/// `SyncFailed`, retried with backoff); otherwise the object is re-checked after `resync`.
pub(crate) async fn finish_sync<K>(
    obj: &K,
    ctx: &Context,
    errors: &[String],
    nodes: &Nodes,
) -> Result<Action>
where
    K: Resource<DynamicType = ()>,
{
    if let Some(first) = errors.first() {
        ctx.event(obj, EventType::Warning, "SyncFailed", "Sync", first.clone())
            .await;
        return Err(Error::PartialSync {
            failed: errors.len(),
            total: nodes.total(),
            first: first.clone(),
        });
    }
    ctx.reset_backoff(obj);
    Ok(Action::requeue(ctx.resync))
}

/// Where a deletion has to delete: the cluster's nodes, or `None` when there is nothing
/// to do (the cluster is gone — never hold a namespace deletion hostage — or the policy
/// is `Retain`), each said with an Event.
pub(crate) async fn deletion_nodes<K>(
    obj: &K,
    ctx: &Context,
    ns: &str,
    cluster_name: &str,
    policy: DeletionPolicy,
    subject: Subject<'_>,
) -> Result<Option<Nodes>>
where
    K: Resource<DynamicType = ()>,
{
    let Some(cluster) = live_cluster(ctx, ns, cluster_name).await? else {
        ctx.event(
            obj,
            EventType::Normal,
            "ClusterGone",
            "Cleanup",
            format!("NsqCluster {cluster_name} is gone; nothing to delete"),
        )
        .await;
        return Ok(None);
    };
    if policy == DeletionPolicy::Retain {
        ctx.event(
            obj,
            EventType::Normal,
            "Retained",
            "Cleanup",
            format!("{subject} left on the nodes (deletionPolicy Retain)"),
        )
        .await;
        return Ok(None);
    }
    Ok(Some(Nodes::of(ctx, &cluster).await?))
}

/// Why a `DeleteIfEmpty` deletion must wait, or `None` when nothing is pending.
pub(crate) fn still_holds(
    subject: Subject<'_>,
    depth: i64,
    in_flight: i64,
    deferred: i64,
) -> Option<String> {
    (depth + in_flight + deferred > 0).then(|| {
        format!("{subject} still holds messages: depth {depth}, in flight {in_flight}, deferred {deferred}")
    })
}

/// Puts `DeletionBlocked` (reason `NotEmpty`, `why`) into `conditions`, replacing the old one.
pub(crate) fn set_deletion_blocked(
    conditions: &mut Vec<Condition>,
    why: &str,
    generation: Option<i64>,
) {
    let blocked = cond(
        conditions,
        DELETION_BLOCKED,
        true,
        "NotEmpty",
        why,
        generation,
    );
    conditions.retain(|c| c.type_ != DELETION_BLOCKED);
    conditions.push(blocked);
}

/// Refuses a deletion (its status already written): a Warning event and the error that
/// makes the controller retry with backoff.
pub(crate) async fn refuse_deletion<K>(obj: &K, ctx: &Context, why: String) -> Error
where
    K: Resource<DynamicType = ()>,
{
    ctx.event(
        obj,
        EventType::Warning,
        "DeletionBlocked",
        "Cleanup",
        why.clone(),
    )
    .await;
    Error::DeletionRefused(why)
}

/// Ends a deletion from the nodes: any error fails it (retried), else Event `reason`.
pub(crate) async fn finish_deletion<K>(
    obj: &K,
    ctx: &Context,
    errors: &[AdminError],
    nodes: &Nodes,
    reason: &str,
    subject: Subject<'_>,
) -> Result<Action>
where
    K: Resource<DynamicType = ()>,
{
    if let Some(first) = errors.first() {
        return Err(Error::PartialSync {
            failed: errors.len(),
            total: nodes.total(),
            first: first.to_string(),
        });
    }
    ctx.event(
        obj,
        EventType::Normal,
        reason,
        "Cleanup",
        format!(
            "deleted {subject} from {} nsqd and {} nsqlookupd",
            nodes.nsqds.len(),
            nodes.lookupds.len()
        ),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(cs: &[Condition]) -> Vec<(String, String, String)> {
        cs.iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    #[test]
    fn sync_conditions_cover_no_nodes_all_present_and_failures() {
        let t = |s: &str| s.to_string();
        assert_eq!(
            state(&sync_conditions(&[], Some(1), 0, 0, &[])),
            [
                (t("Ready"), t("False"), t("NoReadyNodes")),
                (t("Degraded"), t("False"), t("AsExpected"))
            ]
        );
        let all = sync_conditions(&[], Some(1), 2, 2, &[]);
        assert_eq!(
            state(&all),
            [
                (t("Ready"), t("True"), t("PresentOnAllNodes")),
                (t("Degraded"), t("False"), t("AsExpected"))
            ]
        );
        let failed = sync_conditions(&all, Some(2), 1, 2, &["a: down".into()]);
        assert_eq!(
            state(&failed),
            [
                (t("Ready"), t("False"), t("SyncFailed")),
                (t("Degraded"), t("True"), t("NodeErrors"))
            ]
        );
        assert_eq!(failed[0].message, "present on 1/2 nsqd node(s)");
        assert_eq!(failed[1].message, "a: down");
    }

    #[test]
    fn subjects_and_blocking_reasons_read_as_sentences() {
        let ch = Subject::Channel {
            topic: "orders",
            channel: "billing",
        };
        assert_eq!(ch.to_string(), "channel orders/billing");
        assert_eq!(Subject::Topic("orders").to_string(), "topic orders");
        assert_eq!(still_holds(ch, 0, 0, 0), None);
        assert_eq!(
            still_holds(Subject::Topic("t"), 1, 2, 3).as_deref(),
            Some("topic t still holds messages: depth 1, in flight 2, deferred 3")
        );
        let mut cs = Vec::new();
        set_deletion_blocked(&mut cs, "first", Some(1));
        set_deletion_blocked(&mut cs, "second", Some(2));
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].message, "second");
    }
}
