//! Making a topic or channel true on the NSQ nodes, node by node (concurrently), and
//! summing what the nodes report. Shared by the NsqTopic and NsqChannel reconcilers; talks
//! only to [`NsqAdmin`], never to Kubernetes.

use std::collections::BTreeSet;

use futures::future::join_all;
use nsq_protocol::stats::{ChannelStats, TopicStats};

use crate::admin::{AdminError, NsqAdmin};

/// What was done on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAction {
    CreatedTopic,
    CreatedChannel,
    Paused,
    Unpaused,
}

/// One node's outcome.
#[derive(Debug)]
pub struct NodeOutcome<S> {
    pub node: String,
    pub result: Result<(S, Vec<NodeAction>), AdminError>,
}

/// The outcome over every node.
#[derive(Debug)]
pub struct SyncReport<S> {
    pub nodes: Vec<NodeOutcome<S>>,
    /// Errors from the nsqlookupd calls.
    pub lookupd_errors: Vec<AdminError>,
}

impl<S> SyncReport<S> {
    /// Nodes where the object exists now.
    pub fn present(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.result.is_ok())
            .map(|n| n.node.clone())
            .collect()
    }

    /// Every error, nodes first.
    pub fn errors(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|n| n.result.as_ref().err().map(|e| e.to_string()))
            .chain(self.lookupd_errors.iter().map(|e| e.to_string()))
            .collect()
    }

    /// `(node, action)` for every action taken.
    pub fn actions(&self) -> Vec<(String, NodeAction)> {
        self.nodes
            .iter()
            .filter_map(|n| n.result.as_ref().ok().map(|(_, a)| (n, a)))
            .flat_map(|(n, a)| a.iter().map(|a| (n.node.clone(), a.clone())))
            .collect()
    }

    /// The per-node stats of the nodes that answered.
    pub fn stats(&self) -> impl Iterator<Item = &S> {
        self.nodes
            .iter()
            .filter_map(|n| n.result.as_ref().ok().map(|(s, _)| s))
    }
}

/// Ensures `topic` exists with the given pause state on one nsqd; returns its stats.
pub async fn ensure_topic(
    admin: &dyn NsqAdmin,
    node: &str,
    topic: &str,
    paused: bool,
) -> Result<(TopicStats, Vec<NodeAction>), AdminError> {
    let mut actions = Vec::new();
    let mut stats = match admin.topic_stats(node, topic, None).await? {
        Some(s) => s,
        None => {
            admin.create_topic(node, topic).await?;
            actions.push(NodeAction::CreatedTopic);
            TopicStats {
                topic_name: topic.to_string(),
                ..TopicStats::default()
            }
        }
    };
    if stats.paused != paused {
        admin.set_topic_paused(node, topic, paused).await?;
        actions.push(if paused {
            NodeAction::Paused
        } else {
            NodeAction::Unpaused
        });
        stats.paused = paused;
    }
    Ok((stats, actions))
}

/// Ensures `channel` of `topic` exists with the given pause state on one nsqd (creating
/// the topic first when the node lacks it); returns the channel's stats.
pub async fn ensure_channel(
    admin: &dyn NsqAdmin,
    node: &str,
    topic: &str,
    channel: &str,
    paused: bool,
) -> Result<(ChannelStats, Vec<NodeAction>), AdminError> {
    let mut actions = Vec::new();
    // No channel filter: nsqd lists no topic at all when the filter names a channel the
    // topic lacks, which would look like a missing topic.
    let existing = match admin.topic_stats(node, topic, None).await? {
        Some(t) => t.channels.into_iter().find(|c| c.channel_name == channel),
        None => {
            admin.create_topic(node, topic).await?;
            actions.push(NodeAction::CreatedTopic);
            None
        }
    };
    let mut stats = match existing {
        Some(c) => c,
        None => {
            admin.create_channel(node, topic, channel).await?;
            actions.push(NodeAction::CreatedChannel);
            ChannelStats {
                channel_name: channel.to_string(),
                ..ChannelStats::default()
            }
        }
    };
    if stats.paused != paused {
        admin
            .set_channel_paused(node, topic, channel, paused)
            .await?;
        actions.push(if paused {
            NodeAction::Paused
        } else {
            NodeAction::Unpaused
        });
        stats.paused = paused;
    }
    Ok((stats, actions))
}

/// [`ensure_topic`] on every node plus a registration in every nsqlookupd.
pub async fn sync_topic(
    admin: &dyn NsqAdmin,
    nsqds: &[String],
    lookupds: &[String],
    topic: &str,
    paused: bool,
) -> SyncReport<TopicStats> {
    let nodes = join_all(nsqds.iter().map(|node| async move {
        NodeOutcome {
            node: node.clone(),
            result: ensure_topic(admin, node, topic, paused).await,
        }
    }))
    .await;
    let lookupd_errors = join_all(
        lookupds
            .iter()
            .map(|l| admin.lookupd_create_topic(l, topic)),
    )
    .await
    .into_iter()
    .filter_map(Result::err)
    .collect();
    SyncReport {
        nodes,
        lookupd_errors,
    }
}

/// [`ensure_channel`] on every node plus a registration in every nsqlookupd.
pub async fn sync_channel(
    admin: &dyn NsqAdmin,
    nsqds: &[String],
    lookupds: &[String],
    topic: &str,
    channel: &str,
    paused: bool,
) -> SyncReport<ChannelStats> {
    let nodes = join_all(nsqds.iter().map(|node| async move {
        NodeOutcome {
            node: node.clone(),
            result: ensure_channel(admin, node, topic, channel, paused).await,
        }
    }))
    .await;
    let lookupd_errors = join_all(
        lookupds
            .iter()
            .map(|l| admin.lookupd_create_channel(l, topic, channel)),
    )
    .await
    .into_iter()
    .filter_map(Result::err)
    .collect();
    SyncReport {
        nodes,
        lookupd_errors,
    }
}

/// Topic figures summed over nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicTotals {
    /// Topic-level plus channel depth.
    pub depth: i64,
    pub in_flight: i64,
    pub deferred: i64,
    pub message_count: i64,
    pub channels: BTreeSet<String>,
}

impl TopicTotals {
    /// Messages that would be lost by deleting: queued, in flight or deferred.
    pub fn pending(&self) -> i64 {
        self.depth + self.in_flight + self.deferred
    }
}

/// Sums topic stats over nodes.
pub fn topic_totals<'a>(stats: impl Iterator<Item = &'a TopicStats>) -> TopicTotals {
    let mut t = TopicTotals::default();
    for s in stats {
        t.depth += s.depth;
        t.message_count += i64::try_from(s.message_count).unwrap_or(i64::MAX);
        for c in &s.channels {
            t.depth += c.depth;
            t.in_flight += c.in_flight_count;
            t.deferred += c.deferred_count;
            t.channels.insert(c.channel_name.clone());
        }
    }
    t
}

/// Channel figures summed over nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelTotals {
    pub depth: i64,
    pub in_flight: i64,
    pub deferred: i64,
    pub message_count: i64,
    pub requeue_count: i64,
    pub timeout_count: i64,
    pub client_count: i64,
}

impl ChannelTotals {
    pub fn pending(&self) -> i64 {
        self.depth + self.in_flight + self.deferred
    }
}

/// Sums channel stats over nodes.
pub fn channel_totals<'a>(stats: impl Iterator<Item = &'a ChannelStats>) -> ChannelTotals {
    let mut t = ChannelTotals::default();
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for c in stats {
        t.depth += c.depth;
        t.in_flight += c.in_flight_count;
        t.deferred += c.deferred_count;
        t.message_count += clamp(c.message_count);
        t.requeue_count += clamp(c.requeue_count);
        t.timeout_count += clamp(c.timeout_count);
        t.client_count += c.client_count;
    }
    t
}

/// Deletes `topic` from every nsqd and nsqlookupd; returns the errors.
pub async fn delete_topic(
    admin: &dyn NsqAdmin,
    nsqds: &[String],
    lookupds: &[String],
    topic: &str,
) -> Vec<AdminError> {
    let nodes = join_all(nsqds.iter().map(|n| admin.delete_topic(n, topic)));
    let lookups = join_all(
        lookupds
            .iter()
            .map(|l| admin.lookupd_delete_topic(l, topic)),
    );
    let (a, b) = futures::join!(nodes, lookups);
    a.into_iter().chain(b).filter_map(Result::err).collect()
}

/// Deletes `channel` from every nsqd and nsqlookupd; returns the errors.
pub async fn delete_channel(
    admin: &dyn NsqAdmin,
    nsqds: &[String],
    lookupds: &[String],
    topic: &str,
    channel: &str,
) -> Vec<AdminError> {
    let nodes = join_all(
        nsqds
            .iter()
            .map(|n| admin.delete_channel(n, topic, channel)),
    );
    let lookups = join_all(
        lookupds
            .iter()
            .map(|l| admin.lookupd_delete_channel(l, topic, channel)),
    );
    let (a, b) = futures::join!(nodes, lookups);
    a.into_iter()
        .chain(b)
        // A topic already gone takes its channels with it.
        .filter(|r| !matches!(r, Err(e) if e.is_not_found()))
        .filter_map(Result::err)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_topic_and_channel_queues() {
        let node = |depth, ch_depth, inflight| TopicStats {
            topic_name: "t".into(),
            depth,
            message_count: 10,
            channels: vec![ChannelStats {
                channel_name: "c".into(),
                depth: ch_depth,
                in_flight_count: inflight,
                deferred_count: 1,
                ..ChannelStats::default()
            }],
            ..TopicStats::default()
        };
        let stats = [node(1, 2, 3), node(0, 0, 0)];
        let t = topic_totals(stats.iter());
        assert_eq!(
            (t.depth, t.in_flight, t.deferred, t.message_count),
            (3, 3, 2, 20)
        );
        assert_eq!(t.channels.len(), 1);
        assert_eq!(t.pending(), 8);
        let c = channel_totals(stats.iter().flat_map(|s| s.channels.iter()));
        assert_eq!(c.pending(), 2 + 3 + 2);
    }
}
