//! `GET /stats`: the node's statistics as JSON (`format=json`) or as nsqd's text report.

use std::fmt::Write as _;
use std::time::Duration;

use nsq_protocol::duration;
use nsq_protocol::stats::{ClientStats, E2eLatency, MemoryStats, StatsResponse};

use super::query::Query;
use super::response::{self, ApiError, ApiResult, Reply};
use super::HttpState;
use crate::message::now_ns;
use crate::stats::{self as node_stats, Snapshot};

/// nsqd's `boolParams`: `true|1|false|0`; anything else (or absence) means true.
fn bool_param(q: &Query, key: &str) -> bool {
    !matches!(q.get(key), Some("false" | "0"))
}

pub fn stats(state: &HttpState, raw_query: &str) -> ApiResult {
    let q = Query::parse(raw_query).map_err(|_| ApiError::INVALID_REQUEST)?;
    let json = q.get("format") == Some("json");
    let include_clients = bool_param(&q, "include_clients");
    let include_mem = bool_param(&q, "include_mem");
    let nsqd = &state.nsqd;
    let snapshot = node_stats::snapshot(
        nsqd,
        q.get_or_empty("topic"),
        q.get_or_empty("channel"),
        include_clients,
    );
    let health = node_stats::health_text(nsqd);
    let memory = include_mem.then(node_stats::memory_stats);
    if !json {
        let uptime_ns = now_ns().saturating_sub(nsqd.start_time.saturating_mul(1_000_000_000));
        let uptime = Duration::from_nanos(u64::try_from(uptime_ns).unwrap_or(0));
        return Ok(Reply::Text(render_text(
            &snapshot,
            memory.as_ref(),
            &health,
            nsqd.start_time,
            uptime,
        )));
    }
    response::json(&StatsResponse {
        version: nsq_protocol::NSQ_VERSION.to_string(),
        health,
        start_time: nsqd.start_time,
        topics: snapshot.topics,
        memory,
        producers: snapshot.producers,
    })
}

/// nsqd's `printStats`.
fn render_text(
    stats: &Snapshot,
    memory: Option<&MemoryStats>,
    health: &str,
    start_time: i64,
    uptime: Duration,
) -> String {
    let mut w = String::new();
    // Writing to a String cannot fail.
    let _ = write_text(&mut w, stats, memory, health, start_time, uptime);
    w
}

fn write_text(
    w: &mut String,
    stats: &Snapshot,
    memory: Option<&MemoryStats>,
    health: &str,
    start_time: i64,
    uptime: Duration,
) -> std::fmt::Result {
    writeln!(w, "nsqd v{} (built w/rust)", nsq_protocol::NSQ_VERSION)?;
    writeln!(w, "start_time {}", rfc3339_local(start_time))?;
    writeln!(w, "uptime {}", duration::format(uptime))?;
    writeln!(w, "\nHealth: {health}")?;
    if let Some(m) = memory {
        writeln!(w, "\nMemory:")?;
        let rows: [(&str, u64); 9] = [
            ("heap_objects", m.heap_objects),
            ("heap_idle_bytes", m.heap_idle_bytes),
            ("heap_in_use_bytes", m.heap_in_use_bytes),
            ("heap_released_bytes", m.heap_released_bytes),
            ("gc_pause_usec_100", m.gc_pause_usec_100),
            ("gc_pause_usec_99", m.gc_pause_usec_99),
            ("gc_pause_usec_95", m.gc_pause_usec_95),
            ("next_gc_bytes", m.next_gc_bytes),
            ("gc_total_runs", u64::from(m.gc_total_runs)),
        ];
        for (name, value) in rows {
            writeln!(w, "   {name:<25}\t{value}")?;
        }
    }
    let topics = stats.topics.as_deref().unwrap_or_default();
    if topics.is_empty() {
        writeln!(w, "\nTopics: None")?;
    } else {
        write!(w, "\nTopics:")?;
    }
    for t in topics {
        let prefix = if t.paused { "*P " } else { "   " };
        writeln!(
            w,
            "\n{prefix}[{:<15}] depth: {:<5} be-depth: {:<5} msgs: {:<8} e2e%: {}",
            t.topic_name,
            t.depth,
            t.backend_depth,
            t.message_count,
            e2e_text(&t.e2e_processing_latency)
        )?;
        for c in &t.channels {
            let prefix = if c.paused { "   *P " } else { "      " };
            writeln!(
                w,
                "{prefix}[{:<25}] depth: {:<5} be-depth: {:<5} inflt: {:<4} def: {:<4} re-q: {:<5} timeout: {:<5} msgs: {:<8} e2e%: {}",
                c.channel_name,
                c.depth,
                c.backend_depth,
                c.in_flight_count,
                c.deferred_count,
                c.requeue_count,
                c.timeout_count,
                c.message_count,
                e2e_text(&c.e2e_processing_latency)
            )?;
            for client in c.clients.as_deref().unwrap_or_default() {
                writeln!(w, "        {}", client_text(client))?;
            }
        }
    }
    let producers = stats.producers.as_deref().unwrap_or_default();
    if producers.is_empty() {
        writeln!(w, "\nProducers: None")?;
    } else {
        writeln!(w, "\nProducers:")?;
        for p in producers {
            writeln!(w, "   {}", client_text(p))?;
        }
    }
    Ok(())
}

/// The percentile values, human readable, joined with `, ` (empty while the feature is
/// off): nsqd's `quantile.Result.String()`.
fn e2e_text(e: &E2eLatency) -> String {
    e.percentiles
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|p| nanoseconds_to_human(p.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// nsqd's `stringy.NanoSecondToHuman`: one decimal and the largest unit exceeded.
fn nanoseconds_to_human(ns: f64) -> String {
    let (v, unit) = if ns > 1e9 {
        (ns / 1e9, "s")
    } else if ns > 1e6 {
        (ns / 1e6, "ms")
    } else if ns > 1e3 {
        (ns / 1e3, "us")
    } else {
        (ns, "ns")
    };
    format!("{v:.1}{unit}")
}

/// nsqd's `ClientV2Stats.String()`: a producer line when the client has published,
/// else a consumer line.
fn client_text(s: &ClientStats) -> String {
    let connected_secs = (now_ns() / 1_000_000_000)
        .saturating_sub(s.connect_ts)
        .max(0);
    let connected = duration::format(Duration::from_secs(connected_secs as u64));
    let port = s
        .remote_address
        .rsplit_once(':')
        .map_or("", |(_, port)| port);
    let id = format!("{}:{} {}", s.hostname, port, s.user_agent);
    if !s.pub_counts.is_empty() {
        let total: u64 = s.pub_counts.iter().map(|p| p.count).sum();
        let topics: Vec<String> = s
            .pub_counts
            .iter()
            .map(|p| format!("{}={}", p.topic, p.count))
            .collect();
        return format!(
            "[{} {:<21}] msgs: {:<8} topics: {} connected: {}",
            s.version,
            id,
            total,
            topics.join(","),
            connected
        );
    }
    format!(
        "[{} {:<21}] state: {} inflt: {:<4} rdy: {:<4} fin: {:<8} re-q: {:<8} msgs: {:<8} connected: {}",
        s.version,
        id,
        s.state,
        s.in_flight_count,
        s.ready_count,
        s.finish_count,
        s.requeue_count,
        s.message_count,
        connected
    )
}

/// Unix seconds as Go's `time.Unix(t, 0).Format(time.RFC3339)` in the local time zone:
/// `2006-01-02T15:04:05Z` in UTC, else with a `+07:00` style offset.
fn rfc3339_local(unix: i64) -> String {
    let t = unix as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call; localtime_r is the
    // thread-safe variant and writes only into `tm`.
    let converted = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !converted {
        tm = unsafe_gmtime(t);
    }
    let offset = if converted { tm.tm_gmtoff } else { 0 };
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.abs();
        format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

fn unsafe_gmtime(t: libc::time_t) -> libc::tm {
    // SAFETY: as in `rfc3339_local`; on failure `tm` stays all zero (1900-01-00...).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&t, &mut tm);
        tm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsq_protocol::stats::{ChannelStats, PubCount, TopicStats};

    #[test]
    fn text_report_layout() {
        let client = ClientStats {
            hostname: "h".into(),
            version: "V2".into(),
            remote_address: "127.0.0.1:5555".into(),
            state: 3,
            connect_ts: now_ns() / 1_000_000_000,
            user_agent: "ua".into(),
            ..ClientStats::default()
        };
        let producer = ClientStats {
            pub_counts: vec![PubCount {
                topic: "t".into(),
                count: 2,
            }],
            ..client.clone()
        };
        let snap = Snapshot {
            topics: Some(vec![TopicStats {
                topic_name: "t".into(),
                paused: true,
                channels: vec![ChannelStats {
                    channel_name: "c".into(),
                    clients: Some(vec![client]),
                    ..ChannelStats::default()
                }],
                ..TopicStats::default()
            }]),
            producers: Some(vec![producer]),
        };
        let text = render_text(&snap, None, "OK", 0, Duration::from_secs(61));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "nsqd v1.3.0 (built w/rust)");
        assert!(lines[1].starts_with("start_time 19"), "{}", lines[1]);
        assert_eq!(lines[2], "uptime 1m1s");
        assert_eq!(lines[3], "");
        assert_eq!(lines[4], "Health: OK");
        assert_eq!(lines[5], "");
        assert_eq!(lines[6], "Topics:");
        assert_eq!(
            lines[7],
            "*P [t              ] depth: 0     be-depth: 0     msgs: 0        e2e%: "
        );
        assert_eq!(
            lines[8],
            "      [c                        ] depth: 0     be-depth: 0     inflt: 0    def: 0    re-q: 0     timeout: 0     msgs: 0        e2e%: "
        );
        assert_eq!(
            lines[9],
            "        [V2 h:5555 ua            ] state: 3 inflt: 0    rdy: 0    fin: 0        re-q: 0        msgs: 0        connected: 0s"
        );
        assert_eq!(lines[10], "");
        assert_eq!(lines[11], "Producers:");
        assert_eq!(
            lines[12],
            "   [V2 h:5555 ua            ] msgs: 2        topics: t=2 connected: 0s"
        );
    }

    #[test]
    fn e2e_values_in_human_units() {
        use nsq_protocol::stats::Percentile;
        let e = E2eLatency {
            count: 2,
            percentiles: Some(
                [1_500_000_000.0, 2_340_000.0, 1000.0, 1001.0]
                    .into_iter()
                    .map(|value| Percentile {
                        quantile: 1.0,
                        value,
                    })
                    .collect(),
            ),
        };
        assert_eq!(e2e_text(&e), "1.5s, 2.3ms, 1000.0ns, 1.0us");
        assert_eq!(e2e_text(&E2eLatency::default()), "");
    }

    #[test]
    fn empty_report_and_memory_rows() {
        let text = render_text(
            &Snapshot::default(),
            Some(&MemoryStats::default()),
            "NOK - disk",
            0,
            Duration::ZERO,
        );
        assert!(text.contains("\nHealth: NOK - disk\n\nMemory:\n   heap_objects             \t0\n"));
        assert!(text.contains("   gc_total_runs            \t0\n"));
        assert!(text.ends_with("\nTopics: None\n\nProducers: None\n"));
    }
}
