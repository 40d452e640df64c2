//! The NsqTopic reconciler: makes the topic exist on every ready nsqd of the cluster and in
//! every nsqlookupd, with the requested pause state; reports presence and depth; deletes
//! through a finalizer honouring the deletion policy. The steps it shares with NsqChannel
//! are in [`super::nsq_object`].

use std::sync::Arc;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::ResourceExt;

use super::nsq_object::{
    announce, deletion_nodes, finish_deletion, finish_sync, live_cluster, refuse_deletion,
    set_deletion_blocked, still_holds, sync_conditions, Nodes, Subject,
};
use super::status::patch_status;
use super::sync;
use super::{Context, KindName};
use crate::crd::common::{condition as cond, DeletionPolicy};
use crate::crd::{NsqTopic, NsqTopicStatus};
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

    let nodes = Nodes::of(ctx, &cluster).await?;
    let report = sync::sync_topic(
        ctx.admin.as_ref(),
        &nodes.nsqds,
        &nodes.lookupds,
        &topic_name,
        topic.spec.paused,
    )
    .await;
    let present = report.present();
    let errors = report.errors();
    let totals = sync::topic_totals(report.stats());
    let status = NsqTopicStatus {
        conditions: sync_conditions(prev, generation, present.len(), nodes.nsqds.len(), &errors),
        observed_generation: generation,
        topic_name: topic_name.clone(),
        node_count: i32::try_from(present.len()).unwrap_or(i32::MAX),
        nodes_ready: format!("{}/{}", present.len(), nodes.nsqds.len()),
        nodes: present,
        depth: totals.depth,
        in_flight: totals.in_flight,
        deferred: totals.deferred,
        message_count: totals.message_count,
        channel_count: i32::try_from(totals.channels.len()).unwrap_or(i32::MAX),
    };
    patch_status(api, &name, &status).await?;
    announce(topic, Subject::Topic(&topic_name), &report.actions(), ctx).await;
    finish_sync(topic, ctx, &errors, &nodes).await
}

async fn cleanup(topic: &NsqTopic, api: &Api<NsqTopic>, ctx: &Context) -> Result<Action> {
    let Some(topic_name) = topic.topic_name() else {
        return Ok(Action::await_change());
    };
    let subject = Subject::Topic(&topic_name);
    let policy = topic.spec.deletion_policy;
    let ns = topic.namespace().unwrap_or_default();
    let Some(nodes) = deletion_nodes(
        topic,
        ctx,
        &ns,
        &topic.spec.cluster_ref.name,
        policy,
        subject,
    )
    .await?
    else {
        return Ok(Action::await_change());
    };
    if policy == DeletionPolicy::DeleteIfEmpty {
        let mut stats = Vec::new();
        for node in &nodes.nsqds {
            if let Some(s) = ctx.admin.topic_stats(node, &topic_name, None).await? {
                stats.push(s);
            }
        }
        let totals = sync::topic_totals(stats.iter());
        if let Some(why) = still_holds(subject, totals.depth, totals.in_flight, totals.deferred) {
            let mut status = topic.status.clone().unwrap_or_default();
            set_deletion_blocked(&mut status.conditions, &why, topic.metadata.generation);
            status.depth = totals.depth;
            status.in_flight = totals.in_flight;
            status.deferred = totals.deferred;
            patch_status(api, &topic.name_any(), &status).await?;
            return Err(refuse_deletion(topic, ctx, why).await);
        }
    }
    let errors = sync::delete_topic(
        ctx.admin.as_ref(),
        &nodes.nsqds,
        &nodes.lookupds,
        &topic_name,
    )
    .await;
    finish_deletion(topic, ctx, &errors, &nodes, "TopicDeleted", subject).await
}
