//! Point-in-time statistics of the node, in the shapes `/stats` reports (nsqd's
//! `GetStats`, `clientV2.Stats`, `getMemStats`); the HTTP layer only renders them.

use std::sync::atomic::Ordering;

use nsq_protocol::stats::{
    ChannelStats, ClientStats, E2eLatency, MemoryStats, Percentile, PubCount, TopicStats,
};

use crate::channel::Channel;
use crate::client::ClientShared;
use crate::nsqd::Nsqd;
use crate::quantile::Percentiles;
use crate::topic::Topic;

/// What `GetStats` returns: topics (sorted, channels sorted) and producers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `None` when the `topic` filter names no topic.
    pub topics: Option<Vec<TopicStats>>,
    /// `None` when clients are excluded, when no client has published, or when the
    /// `topic` filter names no topic (nsqd returns before collecting producers).
    pub producers: Option<Vec<ClientStats>>,
}

/// Collects the stats `/stats` reports. An empty `topic_filter`/`channel_filter` means
/// "all"; with a channel filter, topics lacking that channel are left out.
pub fn snapshot(
    nsqd: &Nsqd,
    topic_filter: &str,
    channel_filter: &str,
    include_clients: bool,
) -> Snapshot {
    let topics = if topic_filter.is_empty() {
        nsqd.topics()
    } else {
        match nsqd.topic(topic_filter) {
            Some(t) => vec![t],
            None => return Snapshot::default(),
        }
    };
    let topics = topics
        .iter()
        .filter_map(|t| {
            let channels = if channel_filter.is_empty() {
                t.channels()
            } else {
                vec![t.channel(channel_filter)?]
            };
            let channels = channels
                .iter()
                .map(|c| channel_stats(c, topic_filter, include_clients))
                .collect();
            Some(topic_stats(t, channels))
        })
        .collect();
    let producers = if include_clients {
        let p: Vec<ClientStats> = nsqd
            .clients()
            .iter()
            .filter(|c| c.has_published())
            .map(|c| client_stats(c, topic_filter))
            .collect();
        (!p.is_empty()).then_some(p)
    } else {
        None
    };
    Snapshot {
        topics: Some(topics),
        producers,
    }
}

/// nsqd's health as `/stats` and `/ping` word it: `OK` or `NOK - <error>`.
pub fn health_text(nsqd: &Nsqd) -> String {
    match nsqd.health() {
        None => "OK".to_string(),
        Some(e) => format!("NOK - {e}"),
    }
}

fn topic_stats(t: &Topic, channels: Vec<ChannelStats>) -> TopicStats {
    TopicStats {
        topic_name: t.name.clone(),
        channels,
        depth: t.depth(),
        backend_depth: t.backend_depth(),
        message_count: t.message_count.load(Ordering::Relaxed),
        message_bytes: t.message_bytes.load(Ordering::Relaxed),
        paused: t.is_paused(),
        // nsqd merges its channels' streams; a topic without channels has no stream.
        e2e_processing_latency: if t.channels().is_empty() {
            E2eLatency::default()
        } else {
            e2e(t.e2e_latency())
        },
    }
}

fn channel_stats(c: &Channel, topic_filter: &str, include_clients: bool) -> ChannelStats {
    let consumers = c.consumers();
    let clients = include_clients.then(|| {
        consumers
            .iter()
            .map(|cl| client_stats(cl, topic_filter))
            .collect()
    });
    ChannelStats {
        channel_name: c.name.clone(),
        depth: c.depth(),
        backend_depth: c.backend_depth(),
        in_flight_count: c.in_flight_count() as i64,
        deferred_count: c.deferred_count() as i64,
        message_count: c.counters.message_count.load(Ordering::Relaxed),
        requeue_count: c.counters.requeue_count.load(Ordering::Relaxed),
        timeout_count: c.counters.timeout_count.load(Ordering::Relaxed),
        client_count: consumers.len() as i64,
        clients,
        paused: c.is_paused(),
        e2e_processing_latency: e2e(c.e2e_latency()),
    }
}

/// `{"count":0,"percentiles":null}` while `--e2e-processing-latency-percentile` is not
/// given, else the count and one `{quantile, value}` per configured percentile.
fn e2e(p: Option<Percentiles>) -> E2eLatency {
    match p {
        None => E2eLatency::default(),
        Some(p) => E2eLatency {
            count: i64::try_from(p.count).unwrap_or(i64::MAX),
            percentiles: Some(
                p.values
                    .into_iter()
                    .map(|(quantile, value)| Percentile { quantile, value })
                    .collect(),
            ),
        },
    }
}

/// One client as nsqd's `clientV2.Stats(topic)` reports it, quirk included: the
/// publish counts stop after the first (matching) topic.
pub fn client_stats(c: &ClientShared, topic_filter: &str) -> ClientStats {
    let meta = c.meta.lock().clone();
    let pub_counts = c
        .pub_counts
        .lock()
        .iter()
        .find(|(topic, _)| topic_filter.is_empty() || topic.as_str() == topic_filter)
        .map(|(topic, count)| PubCount {
            topic: topic.clone(),
            count: *count,
        })
        .into_iter()
        .collect();
    ClientStats {
        client_id: meta.client_id,
        hostname: meta.hostname,
        version: "V2".to_string(),
        remote_address: c.remote_addr.to_string(),
        state: c.state() as i32,
        ready_count: c.ready_count.load(Ordering::Relaxed),
        in_flight_count: c.in_flight_count.load(Ordering::Relaxed),
        message_count: c.message_count.load(Ordering::Relaxed),
        finish_count: c.finish_count.load(Ordering::Relaxed),
        requeue_count: c.requeue_count.load(Ordering::Relaxed),
        connect_ts: c.connect_ts,
        sample_rate: meta.sample_rate,
        deflate: meta.deflate,
        snappy: meta.snappy,
        user_agent: meta.user_agent,
        // No auth and no TLS yet: nsqd's values for an unauthenticated plain connection.
        authed: false,
        auth_identity: String::new(),
        auth_identity_url: String::new(),
        pub_counts,
        tls: meta.tls,
        tls_cipher_suite: String::new(),
        tls_version: String::new(),
        tls_negotiated_protocol: String::new(),
        tls_negotiated_protocol_is_mutual: false,
    }
}

/// The `memory` block. Its keys are Go runtime figures; a Rust process has no garbage
/// collector and no Go heap, so this reports the closest honest equivalent:
/// `heap_in_use_bytes` is the resident set size (from `/proc/self/statm`), and every
/// GC-specific figure (`heap_objects`, idle/released bytes, GC pauses, next GC target,
/// GC runs) is 0. The keys stay, as nsqd's readers expect them.
pub fn memory_stats() -> MemoryStats {
    MemoryStats {
        heap_in_use_bytes: resident_bytes().unwrap_or(0),
        ..MemoryStats::default()
    }
}

/// Resident set size of this process, where `/proc` is available.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety
    // preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page_size)
        .ok()
        .map(|size| pages.saturating_mul(size))
}
