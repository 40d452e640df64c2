//! The NsqChannel reconciler: makes the channel exist on every ready nsqd of the cluster
//! (creating its topic there if needed) and in every nsqlookupd, with the requested pause
//! state; reports presence and queue figures; deletes through a finalizer honouring the
//! deletion policy. The steps it shares with NsqTopic are in [`super::nsq_object`].

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
use crate::crd::{NsqChannel, NsqChannelStatus};
use crate::{Error, Result};

/// Finalizer on every NsqChannel.
pub const FINALIZER: &str = "nsq.rustnsq.dev/channel-cleanup";

/// Reconciles one NsqChannel.
#[tracing::instrument(skip_all, fields(kind = "NsqChannel", namespace = channel.metadata.namespace.as_deref(), name = channel.metadata.name.as_deref()))]
pub async fn reconcile(channel: Arc<NsqChannel>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(NsqChannel::KIND_NAME);
    let ns = channel
        .namespace()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let api: Api<NsqChannel> = Api::namespaced(ctx.client.clone(), &ns);
    let action = finalizer(&api, FINALIZER, channel, |event| async {
        match event {
            Finalizer::Apply(c) => apply(&c, &api, &ctx).await,
            Finalizer::Cleanup(c) => cleanup(&c, &api, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    Ok(action)
}

async fn apply(channel: &NsqChannel, api: &Api<NsqChannel>, ctx: &Context) -> Result<Action> {
    let name = channel.name_any();
    let ns = channel.namespace().unwrap_or_default();
    let generation = channel.metadata.generation;
    let previous = channel.status.clone().unwrap_or_default();
    let prev = &previous.conditions;

    let (Some(topic_name), Some(channel_name)) = (channel.topic_name(), channel.channel_name())
    else {
        let status = NsqChannelStatus {
            conditions: vec![cond(prev, "Ready", false, "InvalidName", "topic and channel names must match ^[.a-zA-Z0-9_-]+(#ephemeral)?$ and be 1..64 characters", generation)],
            observed_generation: generation,
            ..NsqChannelStatus::default()
        };
        patch_status(api, &name, &status).await?;
        ctx.event(
            channel,
            EventType::Warning,
            "InvalidName",
            "Validate",
            "invalid NSQ topic or channel name".into(),
        )
        .await;
        return Ok(Action::await_change());
    };

    let cluster_name = &channel.spec.cluster_ref.name;
    let Some(cluster) = live_cluster(ctx, &ns, cluster_name).await? else {
        let status = NsqChannelStatus {
            conditions: vec![cond(
                prev,
                "Ready",
                false,
                "ClusterNotFound",
                format!("NsqCluster {cluster_name} does not exist"),
                generation,
            )],
            observed_generation: generation,
            channel_name,
            ..NsqChannelStatus::default()
        };
        patch_status(api, &name, &status).await?;
        return Ok(Action::requeue(ctx.resync));
    };

    let nodes = Nodes::of(ctx, &cluster).await?;
    let report = sync::sync_channel(
        ctx.admin.as_ref(),
        &nodes.nsqds,
        &nodes.lookupds,
        &topic_name,
        &channel_name,
        channel.spec.paused,
    )
    .await;
    let present = report.present();
    let errors = report.errors();
    let totals = sync::channel_totals(report.stats());
    let status = NsqChannelStatus {
        conditions: sync_conditions(prev, generation, present.len(), nodes.nsqds.len(), &errors),
        observed_generation: generation,
        channel_name: channel_name.clone(),
        node_count: i32::try_from(present.len()).unwrap_or(i32::MAX),
        nodes_ready: format!("{}/{}", present.len(), nodes.nsqds.len()),
        nodes: present,
        depth: totals.depth,
        in_flight: totals.in_flight,
        deferred: totals.deferred,
        message_count: totals.message_count,
        requeue_count: totals.requeue_count,
        timeout_count: totals.timeout_count,
        client_count: totals.client_count,
    };
    patch_status(api, &name, &status).await?;
    let subject = Subject::Channel {
        topic: &topic_name,
        channel: &channel_name,
    };
    announce(channel, subject, &report.actions(), ctx).await;
    finish_sync(channel, ctx, &errors, &nodes).await
}

async fn cleanup(channel: &NsqChannel, api: &Api<NsqChannel>, ctx: &Context) -> Result<Action> {
    let (Some(topic_name), Some(channel_name)) = (channel.topic_name(), channel.channel_name())
    else {
        return Ok(Action::await_change());
    };
    let subject = Subject::Channel {
        topic: &topic_name,
        channel: &channel_name,
    };
    let policy = channel.spec.deletion_policy;
    let ns = channel.namespace().unwrap_or_default();
    let cluster_name = &channel.spec.cluster_ref.name;
    let Some(nodes) = deletion_nodes(channel, ctx, &ns, cluster_name, policy, subject).await?
    else {
        return Ok(Action::await_change());
    };
    if policy == DeletionPolicy::DeleteIfEmpty {
        let mut stats = Vec::new();
        for node in &nodes.nsqds {
            if let Some(t) = ctx
                .admin
                .topic_stats(node, &topic_name, Some(&channel_name))
                .await?
            {
                stats.extend(
                    t.channels
                        .into_iter()
                        .filter(|c| c.channel_name == channel_name),
                );
            }
        }
        let totals = sync::channel_totals(stats.iter());
        if let Some(why) = still_holds(subject, totals.depth, totals.in_flight, totals.deferred) {
            let mut status = channel.status.clone().unwrap_or_default();
            set_deletion_blocked(&mut status.conditions, &why, channel.metadata.generation);
            status.depth = totals.depth;
            status.in_flight = totals.in_flight;
            status.deferred = totals.deferred;
            patch_status(api, &channel.name_any(), &status).await?;
            return Err(refuse_deletion(channel, ctx, why).await);
        }
    }
    let errors = sync::delete_channel(
        ctx.admin.as_ref(),
        &nodes.nsqds,
        &nodes.lookupds,
        &topic_name,
        &channel_name,
    )
    .await;
    finish_deletion(channel, ctx, &errors, &nodes, "ChannelDeleted", subject).await
}
