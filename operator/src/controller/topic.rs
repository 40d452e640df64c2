//! The NsqTopic reconciler: makes the topic exist on every ready nsqd of the cluster and in
//! every nsqlookupd, with the requested pause state; reports presence and depth; deletes
//! through a finalizer honouring the deletion policy.

use std::sync::Arc;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::ResourceExt;

use super::status::patch_status;
use super::sync::{self, NodeAction};
use super::{Context, KindName};
use crate::crd::common::{condition as cond, condition::DELETION_BLOCKED, DeletionPolicy};
use crate::crd::{NsqCluster, NsqTopic, NsqTopicStatus};
use crate::{Error, Result};

/// Finalizer on every NsqTopic.
pub const FINALIZER: &str = "nsq.rustnsq.dev/topic-cleanup";

/// Reconciles one NsqTopic.
#[tracing::instrument(skip_all, fields(kind = "NsqTopic", namespace = topic.metadata.namespace.as_deref(), name = topic.metadata.name.as_deref()))]
pub async fn reconcile(topic: Arc<NsqTopic>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(NsqTopic::KIND_NAME);
    let ns = topic
        .namespace()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let api: Api<NsqTopic> = Api::namespaced(ctx.client.clone(), &ns);
    let action = finalizer(&api, FINALIZER, topic, |event| async {
        match event {
            Finalizer::Apply(t) => apply(&t, &api, &ctx).await,
            Finalizer::Cleanup(t) => cleanup(&t, &api, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    Ok(action)
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

async fn apply(topic: &NsqTopic, api: &Api<NsqTopic>, ctx: &Context) -> Result<Action> {
    let name = topic.name_any();
    let ns = topic.namespace().unwrap_or_default();
    let generation = topic.metadata.generation;
    let previous = topic.status.clone().unwrap_or_default();
    let prev = &previous.conditions;

    let Some(topic_name) = topic.topic_name() else {
        let status = NsqTopicStatus {
            conditions: vec![cond(prev, "Ready", false, "InvalidTopicName", "the topic name must match ^[.a-zA-Z0-9_-]+(#ephemeral)?$ and be 1..64 characters; set spec.topicName", generation)],
            observed_generation: generation,
            ..NsqTopicStatus::default()
        };
        patch_status(api, &name, &status).await?;
        ctx.event(
            topic,
            EventType::Warning,
            "InvalidTopicName",
            "Validate",
            "invalid NSQ topic name".into(),
        )
        .await;
        return Ok(Action::await_change());
    };

    let cluster_name = &topic.spec.cluster_ref.name;
    let Some(cluster) = live_cluster(ctx, &ns, cluster_name).await? else {
        let status = NsqTopicStatus {
            conditions: vec![cond(
                prev,
                "Ready",
                false,
                "ClusterNotFound",
                format!("NsqCluster {cluster_name} does not exist"),
                generation,
            )],
            observed_generation: generation,
            topic_name,
            ..NsqTopicStatus::default()
        };
        patch_status(api, &name, &status).await?;
        return Ok(Action::requeue(ctx.resync));
    };

    let nsqds = ctx.endpoints.nsqd_http_addresses(&cluster).await?;
    let lookupds = ctx.endpoints.lookupd_http_addresses(&cluster).await?;
    let report = sync::sync_topic(
        ctx.admin.as_ref(),
        &nsqds,
        &lookupds,
        &topic_name,
        topic.spec.paused,
    )
    .await;
    let present = report.present();
    let errors = report.errors();
    let totals = sync::topic_totals(report.stats());

    let ready = errors.is_empty() && !nsqds.is_empty();
    let conditions = vec![
        if ready {
            cond(
                prev,
                "Ready",
                true,
                "PresentOnAllNodes",
                format!("on {} nsqd node(s)", present.len()),
                generation,
            )
        } else if nsqds.is_empty() {
            cond(
                prev,
                "Ready",
                false,
                "NoReadyNodes",
                "the cluster has no ready nsqd pod",
                generation,
            )
        } else {
            cond(
                prev,
                "Ready",
                false,
                "SyncFailed",
                format!("present on {}/{} nsqd node(s)", present.len(), nsqds.len()),
                generation,
            )
        },
        if errors.is_empty() {
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
        },
    ];
    let status = NsqTopicStatus {
        conditions,
        observed_generation: generation,
        topic_name: topic_name.clone(),
        node_count: i32::try_from(present.len()).unwrap_or(i32::MAX),
        nodes_ready: format!("{}/{}", present.len(), nsqds.len()),
        nodes: present,
        depth: totals.depth,
        in_flight: totals.in_flight,
        deferred: totals.deferred,
        message_count: totals.message_count,
        channel_count: i32::try_from(totals.channels.len()).unwrap_or(i32::MAX),
    };
    patch_status(api, &name, &status).await?;
    announce(topic, &topic_name, None, &report.actions(), ctx).await;

    if let Some(first) = errors.first() {
        ctx.event(
            topic,
            EventType::Warning,
            "SyncFailed",
            "Sync",
            first.clone(),
        )
        .await;
        return Err(Error::PartialSync {
            failed: errors.len(),
            total: nsqds.len() + lookupds.len(),
            first: first.clone(),
        });
    }
    ctx.reset_backoff(topic);
    Ok(Action::requeue(ctx.resync))
}

/// One Event per kind of action, naming the nodes.
pub(crate) async fn announce<K>(
    obj: &K,
    topic: &str,
    channel: Option<&str>,
    actions: &[(String, NodeAction)],
    ctx: &Context,
) where
    K: kube::Resource<DynamicType = ()>,
{
    let subject = match channel {
        Some(c) => format!("channel {topic}/{c}"),
        None => format!("topic {topic}"),
    };
    for (kind, reason, what) in [
        (
            NodeAction::CreatedTopic,
            "TopicCreated",
            format!("created topic {topic}"),
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

async fn cleanup(topic: &NsqTopic, api: &Api<NsqTopic>, ctx: &Context) -> Result<Action> {
    let ns = topic.namespace().unwrap_or_default();
    let cluster_name = &topic.spec.cluster_ref.name;
    let Some(topic_name) = topic.topic_name() else {
        return Ok(Action::await_change());
    };
    let Some(cluster) = live_cluster(ctx, &ns, cluster_name).await? else {
        // Nothing left to clean; never hold a namespace deletion hostage.
        ctx.event(
            topic,
            EventType::Normal,
            "ClusterGone",
            "Cleanup",
            format!("NsqCluster {cluster_name} is gone; nothing to delete"),
        )
        .await;
        return Ok(Action::await_change());
    };
    let policy = topic.spec.deletion_policy;
    if policy == DeletionPolicy::Retain {
        ctx.event(
            topic,
            EventType::Normal,
            "Retained",
            "Cleanup",
            format!("topic {topic_name} left on the nodes (deletionPolicy Retain)"),
        )
        .await;
        return Ok(Action::await_change());
    }
    let nsqds = ctx.endpoints.nsqd_http_addresses(&cluster).await?;
    let lookupds = ctx.endpoints.lookupd_http_addresses(&cluster).await?;
    if policy == DeletionPolicy::DeleteIfEmpty {
        let mut stats = Vec::new();
        for node in &nsqds {
            if let Some(s) = ctx.admin.topic_stats(node, &topic_name, None).await? {
                stats.push(s);
            }
        }
        let totals = sync::topic_totals(stats.iter());
        if totals.pending() > 0 {
            let why = format!(
                "topic {topic_name} still holds messages: depth {}, in flight {}, deferred {}",
                totals.depth, totals.in_flight, totals.deferred
            );
            let mut status = topic.status.clone().unwrap_or_default();
            let blocked = cond(
                &status.conditions,
                DELETION_BLOCKED,
                true,
                "NotEmpty",
                why.clone(),
                topic.metadata.generation,
            );
            status.conditions.retain(|c| c.type_ != DELETION_BLOCKED);
            status.conditions.push(blocked);
            status.depth = totals.depth;
            status.in_flight = totals.in_flight;
            status.deferred = totals.deferred;
            patch_status(api, &topic.name_any(), &status).await?;
            ctx.event(
                topic,
                EventType::Warning,
                "DeletionBlocked",
                "Cleanup",
                why.clone(),
            )
            .await;
            return Err(Error::DeletionRefused(why));
        }
    }
    let errors = sync::delete_topic(ctx.admin.as_ref(), &nsqds, &lookupds, &topic_name).await;
    if let Some(first) = errors.first() {
        return Err(Error::PartialSync {
            failed: errors.len(),
            total: nsqds.len() + lookupds.len(),
            first: first.to_string(),
        });
    }
    ctx.event(
        topic,
        EventType::Normal,
        "TopicDeleted",
        "Cleanup",
        format!(
            "deleted topic {topic_name} from {} nsqd and {} nsqlookupd",
            nsqds.len(),
            lookupds.len()
        ),
    )
    .await;
    Ok(Action::await_change())
}
