//! `GET /metrics`: the node, its topics and channels in Prometheus exposition format.
//!
//! Labels are `topic` and `channel` only (never message or client ids), so series count
//! is bounded by topics × channels: per topic 6 series, per channel 11 plus 17 for the
//! latency histogram, plus 19 node and process series (monitoring/README.md has
//! the full table).

use std::sync::atomic::Ordering;

use nsq_protocol::exposition::{Exposition, Format, Kind};

use crate::nsqd::Nsqd;

type TopicGetter = fn(&crate::topic::Topic) -> f64;

/// The standard `process_*` metrics (shared with nsqlookupd).
pub use nsq_protocol::exposition::process_metrics;

/// Renders every metric. Each topic and channel lock is taken briefly, one at a time,
/// so a scrape never stalls publishing for long.
pub fn render(nsqd: &Nsqd, format: Format) -> String {
    let mut e = Exposition::new(format);
    // Retired totals and the live set in one snapshot: a topic or channel deleted while
    // this renders is counted exactly once, so node totals never step back (which
    // Prometheus would read as a counter reset).
    let snap = nsqd.counter_snapshot();
    let (r, topics, per_topic) = (snap.retired, snap.topics, snap.channels);
    let channels: Vec<_> = topics
        .iter()
        .zip(&per_topic)
        .flat_map(|(t, chs)| chs.iter().map(move |c| (t.name.as_str(), c)))
        .collect();

    // Per topic.
    let topic_gauges: [(&str, &str, TopicGetter); 3] = [
        (
            "nsq_topic_depth",
            "Messages queued at the topic (memory + disk), waiting for channels.",
            |t| t.depth() as f64,
        ),
        (
            "nsq_topic_backend_depth",
            "Messages of the topic queued on disk.",
            |t| t.backend_depth() as f64,
        ),
        ("nsq_topic_paused", "1 if the topic is paused.", |t| {
            f64::from(u8::from(t.is_paused()))
        }),
    ];
    for (name, help, get) in topic_gauges {
        e.family(name, Kind::Gauge, help);
        for t in &topics {
            e.sample(&[("topic", &t.name)], get(t));
        }
    }
    e.family("nsq_topic_channels", Kind::Gauge, "Channels of the topic.");
    for (t, chs) in topics.iter().zip(&per_topic) {
        e.sample(&[("topic", &t.name)], chs.len() as f64);
    }
    e.family(
        "nsq_topic_messages",
        Kind::Counter,
        "Messages published to the topic.",
    );
    for t in &topics {
        e.sample(
            &[("topic", &t.name)],
            t.message_count.load(Ordering::Relaxed) as f64,
        );
    }
    e.family(
        "nsq_topic_message_bytes",
        Kind::Counter,
        "Body bytes published to the topic.",
    );
    for t in &topics {
        e.sample(
            &[("topic", &t.name)],
            t.message_bytes.load(Ordering::Relaxed) as f64,
        );
    }

    // Per channel.
    type ChannelGetter = fn(&crate::channel::Channel) -> f64;
    let channel_gauges: [(&str, &str, ChannelGetter); 6] = [
        (
            "nsq_channel_depth",
            "Messages queued in the channel (memory + disk), not in flight or deferred.",
            |c| c.depth() as f64,
        ),
        (
            "nsq_channel_backend_depth",
            "Messages of the channel queued on disk.",
            |c| c.backend_depth() as f64,
        ),
        (
            "nsq_channel_in_flight",
            "Messages delivered and awaiting FIN, REQ or timeout.",
            |c| c.in_flight_count() as f64,
        ),
        (
            "nsq_channel_deferred",
            "Messages deferred (DPUB, REQ with delay).",
            |c| c.deferred_count() as f64,
        ),
        (
            "nsq_channel_consumers",
            "Connected consumers of the channel.",
            |c| c.consumer_count() as f64,
        ),
        ("nsq_channel_paused", "1 if the channel is paused.", |c| {
            f64::from(u8::from(c.is_paused()))
        }),
    ];
    for (name, help, get) in channel_gauges {
        e.family(name, Kind::Gauge, help);
        for (t, c) in &channels {
            e.sample(&[("topic", t), ("channel", &c.name)], get(c));
        }
    }
    let channel_counters: [(&str, &str, ChannelGetter); 5] = [
        (
            "nsq_channel_messages",
            "Messages put to the channel (deferred included, requeues excluded).",
            |c| c.counters.message_count.load(Ordering::Relaxed) as f64,
        ),
        (
            "nsq_channel_deliveries",
            "Deliveries to consumers, redeliveries included.",
            |c| c.counters.delivered_count.load(Ordering::Relaxed) as f64,
        ),
        ("nsq_channel_finishes", "Messages finished (FIN).", |c| {
            c.counters.finish_count.load(Ordering::Relaxed) as f64
        }),
        (
            "nsq_channel_requeues",
            "Messages requeued by consumers (REQ).",
            |c| c.counters.requeue_count.load(Ordering::Relaxed) as f64,
        ),
        (
            "nsq_channel_timeouts",
            "In-flight messages that timed out and were requeued.",
            |c| c.counters.timeout_count.load(Ordering::Relaxed) as f64,
        ),
    ];
    for (name, help, get) in channel_counters {
        e.family(name, Kind::Counter, help);
        for (t, c) in &channels {
            e.sample(&[("topic", t), ("channel", &c.name)], get(c));
        }
    }
    e.family(
        "nsq_channel_e2e_processing_latency_seconds",
        Kind::Histogram,
        "Time from publish to FIN of finished messages.",
    );
    for (t, c) in &channels {
        let (buckets, sum, count) = c.latency.snapshot();
        e.histogram(&[("topic", t), ("channel", &c.name)], &buckets, sum, count);
    }

    // Node totals: live topics and channels plus those already deleted.
    let sum_ch = |f: fn(&crate::channel::ChannelCounters) -> u64| -> f64 {
        channels.iter().map(|(_, c)| f(&c.counters)).sum::<u64>() as f64
    };
    let published = r.published as f64
        + topics
            .iter()
            .map(|t| t.message_count.load(Ordering::Relaxed))
            .sum::<u64>() as f64;
    let published_bytes = r.published_bytes as f64
        + topics
            .iter()
            .map(|t| t.message_bytes.load(Ordering::Relaxed))
            .sum::<u64>() as f64;
    let node_counters = [
        (
            "nsq_messages_published",
            "Messages published to this node.",
            published,
        ),
        (
            "nsq_message_bytes_published",
            "Body bytes published to this node.",
            published_bytes,
        ),
        (
            "nsq_messages_delivered",
            "Deliveries to consumers on this node.",
            r.delivered as f64 + sum_ch(|c| c.delivered_count.load(Ordering::Relaxed)),
        ),
        (
            "nsq_messages_finished",
            "Messages finished on this node.",
            r.finished as f64 + sum_ch(|c| c.finish_count.load(Ordering::Relaxed)),
        ),
        (
            "nsq_messages_requeued",
            "Messages requeued on this node.",
            r.requeued as f64 + sum_ch(|c| c.requeue_count.load(Ordering::Relaxed)),
        ),
        (
            "nsq_messages_timed_out",
            "In-flight timeouts on this node.",
            r.timed_out as f64 + sum_ch(|c| c.timeout_count.load(Ordering::Relaxed)),
        ),
    ];
    for (name, help, v) in node_counters {
        e.family(name, Kind::Counter, help);
        e.sample(&[], v);
    }
    let clients = nsqd.clients();
    e.family("nsq_clients", Kind::Gauge, "Connected TCP clients.");
    e.sample(&[], clients.len() as f64);
    e.family("nsq_topics", Kind::Gauge, "Topics on this node.");
    e.sample(&[], topics.len() as f64);
    e.family("nsq_channels", Kind::Gauge, "Channels on this node.");
    e.sample(&[], channels.len() as f64);
    e.family(
        "nsq_healthy",
        Kind::Gauge,
        "1 if the last disk write succeeded (/ping OK), 0 if not.",
    );
    e.sample(&[], f64::from(u8::from(nsqd.health().is_none())));
    e.family(
        "nsq_disk_bytes",
        Kind::Gauge,
        "Bytes of disk queue and metadata files under --data-path.",
    );
    e.sample(&[], disk_bytes(&nsqd.opts.effective_data_path()) as f64);
    e.family(
        "nsq_start_time_seconds",
        Kind::Gauge,
        "When this nsqd started, Unix seconds.",
    );
    e.sample(&[], nsqd.start_time as f64);
    e.family("nsq_build", Kind::Info, "Build information.");
    e.sample(
        &[
            ("version", nsq_protocol::NSQ_VERSION),
            ("implementation", "rust"),
            ("crate_version", env!("CARGO_PKG_VERSION")),
        ],
        1.0,
    );
    process_metrics(&mut e);
    e.finish()
}

/// Sizes of nsqd's files in the data path (disk queues, `.bad` files, metadata).
fn disk_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.contains(".diskqueue.") || name.starts_with("nsqd.dat")
        })
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
