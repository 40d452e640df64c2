//! statsd push (`--statsd-address`): every `--statsd-interval`, counters (deltas since
//! the last push) and gauges under nsqd's key names, packed into UDP packets of at most
//! `--statsd-udp-packet-size` bytes and spread over the interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nsq_protocol::stats::{E2eLatency, TopicStats};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::nsqd::Nsqd;

/// `--statsd-prefix` with `%s` replaced by `<broadcast_address>_<http_port>` (dots and
/// colons turned into underscores) and a trailing `.` added, as nsqd resolves it.
pub fn resolve_prefix(prefix: &str, broadcast_address: &str, http_port: u16) -> String {
    if prefix.is_empty() {
        return String::new();
    }
    let host = format!("{broadcast_address}:{http_port}").replace(['.', ':'], "_");
    let mut p = prefix.replace("%s", &host);
    if !p.ends_with('.') {
        p.push('.');
    }
    p
}

/// Counter values from the previous push, to send deltas.
#[derive(Default)]
struct Last {
    counters: HashMap<String, u64>,
}

impl Last {
    fn delta(&mut self, key: &str, now: u64) -> i64 {
        let prev = self.counters.insert(key.to_string(), now).unwrap_or(0);
        now as i64 - prev as i64
    }
}

/// The lines of one push.
fn lines(
    topics: &[TopicStats],
    last: &mut Last,
    exclude_ephemeral: bool,
    mem_stats: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Last::default();
    let mut counter = |out: &mut Vec<String>, key: String, now: u64| {
        let d = last.delta(&key, now);
        next.counters.insert(key.clone(), now);
        out.push(format!("{key}:{d}|c"));
    };
    let gauge = |out: &mut Vec<String>, key: String, v: i64| out.push(format!("{key}:{v}|g"));
    let e2e = |out: &mut Vec<String>, base: &str, l: &E2eLatency| {
        for p in l.percentiles.iter().flatten() {
            out.push(format!(
                "{base}.e2e_processing_latency_{:.0}:{}|g",
                p.quantile * 100.0,
                p.value as i64
            ));
        }
    };
    for t in topics {
        if exclude_ephemeral && nsq_protocol::names::is_ephemeral(&t.topic_name) {
            continue;
        }
        let base = format!("topic.{}", t.topic_name);
        counter(&mut out, format!("{base}.message_count"), t.message_count);
        counter(&mut out, format!("{base}.message_bytes"), t.message_bytes);
        gauge(&mut out, format!("{base}.depth"), t.depth);
        gauge(&mut out, format!("{base}.backend_depth"), t.backend_depth);
        e2e(&mut out, &base, &t.e2e_processing_latency);
        for c in &t.channels {
            if exclude_ephemeral && nsq_protocol::names::is_ephemeral(&c.channel_name) {
                continue;
            }
            let cb = format!("{base}.channel.{}", c.channel_name);
            counter(&mut out, format!("{cb}.message_count"), c.message_count);
            gauge(&mut out, format!("{cb}.depth"), c.depth);
            gauge(&mut out, format!("{cb}.backend_depth"), c.backend_depth);
            gauge(&mut out, format!("{cb}.in_flight_count"), c.in_flight_count);
            gauge(&mut out, format!("{cb}.deferred_count"), c.deferred_count);
            counter(&mut out, format!("{cb}.requeue_count"), c.requeue_count);
            counter(&mut out, format!("{cb}.timeout_count"), c.timeout_count);
            gauge(&mut out, format!("{cb}.clients"), c.client_count);
            e2e(&mut out, &cb, &c.e2e_processing_latency);
        }
    }
    if mem_stats {
        let m = crate::stats::memory_stats();
        for (k, v) in [
            ("mem.heap_objects", m.heap_objects),
            ("mem.heap_idle_bytes", m.heap_idle_bytes),
            ("mem.heap_in_use_bytes", m.heap_in_use_bytes),
            ("mem.heap_released_bytes", m.heap_released_bytes),
            ("mem.gc_pause_usec_100", m.gc_pause_usec_100),
            ("mem.gc_pause_usec_99", m.gc_pause_usec_99),
            ("mem.gc_pause_usec_95", m.gc_pause_usec_95),
            ("mem.next_gc_bytes", m.next_gc_bytes),
        ] {
            gauge(&mut out, k.to_string(), v as i64);
        }
        counter(&mut out, "mem.gc_runs".into(), u64::from(m.gc_total_runs));
    }
    // Topics and channels that vanished are forgotten, as nsqd's last-stats swap does.
    *last = next;
    out
}

/// Packs `prefix`ed lines into packets no larger than `size` (a longer line goes alone).
fn packets(prefix: &str, lines: &[String], size: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for l in lines {
        let line = format!("{prefix}{l}\n");
        if !cur.is_empty() && cur.len() + line.len() > size {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend_from_slice(line.as_bytes());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Pushes stats every interval until `stop`.
pub async fn run(nsqd: Arc<Nsqd>, addr: String, prefix: String, mut stop: watch::Receiver<bool>) {
    let opts = nsqd.opts.clone();
    let interval = opts.statsd_interval.max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let mut last = Last::default();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let snap = crate::stats::snapshot(&nsqd, "", "", false);
        let topics = snap.topics.unwrap_or_default();
        let body = lines(
            &topics,
            &mut last,
            opts.statsd_exclude_ephemeral,
            opts.statsd_mem_stats,
        );
        let size = opts.statsd_udp_packet_size.max(64) as usize;
        let packets = packets(&prefix, &body, size);
        // A fresh socket per push, like nsqd; the push is spread over the interval.
        let sock = match UdpSocket::bind("0.0.0.0:0").await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "STATSD: cannot open UDP socket");
                continue;
            }
        };
        if let Err(e) = sock.connect(&addr).await {
            tracing::error!(error = %e, statsd = %addr, "STATSD: cannot resolve");
            continue;
        }
        tracing::debug!(statsd = %addr, packets = packets.len(), "STATSD: pushing stats");
        let gap = interval.saturating_sub(Duration::from_secs(1)) / packets.len().max(1) as u32;
        for p in packets {
            if let Err(e) = sock.send(&p).await {
                tracing::warn!(error = %e, "STATSD: send failed");
            }
            if !gap.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(gap) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsq_protocol::stats::ChannelStats;

    #[test]
    fn prefix_like_nsqd() {
        assert_eq!(
            resolve_prefix("nsq.%s", "host.example", 4151),
            "nsq.host_example_4151."
        );
        assert_eq!(resolve_prefix("a.b.", "h", 1), "a.b.");
        assert_eq!(resolve_prefix("", "h", 1), "");
    }

    #[test]
    fn counters_are_deltas_and_packets_bounded() {
        let mut t = TopicStats {
            topic_name: "t".into(),
            message_count: 10,
            channels: vec![ChannelStats {
                channel_name: "c".into(),
                message_count: 10,
                client_count: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut last = Last::default();
        let first = lines(std::slice::from_ref(&t), &mut last, false, false);
        assert!(first.contains(&"topic.t.message_count:10|c".to_string()));
        assert!(first.contains(&"topic.t.channel.c.clients:2|g".to_string()));
        t.message_count = 15;
        let second = lines(std::slice::from_ref(&t), &mut last, false, false);
        assert!(second.contains(&"topic.t.message_count:5|c".to_string()));
        let ps = packets("nsq.x.", &second, 64);
        assert!(ps
            .iter()
            .all(|p| p.len() <= 64 || !p[..p.len() - 1].contains(&b'\n')));
        assert!(ps.len() > 1);
    }
}
