//! `nsq stat`: poll nsqd's `/stats?format=json` and print queue figures per topic and
//! channel (summed over nodes), with the publish rate between reports — like `nsq_stat`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use clap::{ArgGroup, Args};
use nsq_protocol::stats::StatsResponse;
use tokio::time::Instant;

use crate::go_duration;
use crate::http::{get_json, join_host_port, lookup, query_escape, HttpError};

/// `nsq stat`.
#[derive(Debug, Clone, Args)]
#[command(group(
    ArgGroup::new("source")
        .required(true)
        .multiple(true)
        .args(["nsqd_http_address", "lookupd_http_address"])
))]
pub struct StatArgs {
    /// <addr>:<port> of an nsqd's HTTP API (repeatable)
    #[arg(long, value_name = "ADDR")]
    pub nsqd_http_address: Vec<String>,
    /// <addr>:<port> of an nsqlookupd: read every nsqd carrying --topic (repeatable)
    #[arg(long, value_name = "ADDR", requires = "topic")]
    pub lookupd_http_address: Vec<String>,
    /// only this topic
    #[arg(long)]
    pub topic: Option<String>,
    /// only this channel
    #[arg(long)]
    pub channel: Option<String>,
    /// time between reports
    #[arg(long, default_value = "2s", value_parser = go_duration, value_name = "DURATION")]
    pub interval: Duration,
    /// number of reports, then exit (0: until interrupted)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub count: u64,
}

/// Why `stat` gave up.
#[derive(Debug, thiserror::Error)]
pub enum StatError {
    #[error("no nsqd answered /stats: {0}")]
    NoAnswer(HttpError),
    #[error("no nsqd carries topic {0:?} according to lookupd")]
    NoNodes(String),
}

/// One printed row: a topic (`channel` = `None`) or one of its channels, summed over nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Row {
    pub depth: i64,
    pub backend_depth: i64,
    pub in_flight: i64,
    pub deferred: i64,
    pub requeued: u64,
    pub timed_out: u64,
    pub messages: u64,
    pub clients: i64,
}

/// Rows keyed by (topic, channel), in name order.
pub type Table = BTreeMap<(String, Option<String>), Row>;

/// Adds one node's `/stats` to `table`.
pub fn accumulate(table: &mut Table, stats: &StatsResponse) {
    for t in stats.topics.iter().flatten() {
        let row = table.entry((t.topic_name.clone(), None)).or_default();
        row.depth += t.depth;
        row.backend_depth += t.backend_depth;
        row.messages += t.message_count;
        for c in &t.channels {
            let row = table
                .entry((t.topic_name.clone(), Some(c.channel_name.clone())))
                .or_default();
            row.depth += c.depth;
            row.backend_depth += c.backend_depth;
            row.in_flight += c.in_flight_count;
            row.deferred += c.deferred_count;
            row.requeued += c.requeue_count;
            row.timed_out += c.timeout_count;
            row.messages += c.message_count;
            row.clients += c.client_count;
        }
    }
}

/// The header line of [`render`].
pub const HEADER: &str = "topic/channel                        depth      mem     disk  inflt    def     req     t-o          msgs     msgs/s  clients";

/// Formats a report; rates come from the previous table, `elapsed` ago.
pub fn render(table: &Table, previous: Option<(&Table, Duration)>) -> String {
    let mut out = String::new();
    for ((topic, channel), r) in table {
        let name = match channel {
            Some(c) => format!("  {topic}/{c}"),
            None => topic.clone(),
        };
        let rate = previous
            .and_then(|(prev, elapsed)| {
                let before = prev.get(&(topic.clone(), channel.clone()))?;
                let secs = elapsed.as_secs_f64();
                (secs > 0.0).then(|| r.messages.saturating_sub(before.messages) as f64 / secs)
            })
            .map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
        let clients = match channel {
            Some(_) => r.clients.to_string(),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{name:<32} {:>9} {:>8} {:>8} {:>6} {:>6} {:>7} {:>7} {:>13} {:>10} {clients:>8}",
            r.depth,
            r.depth - r.backend_depth,
            r.backend_depth,
            r.in_flight,
            r.deferred,
            r.requeued,
            r.timed_out,
            r.messages,
            rate,
        );
    }
    out
}

/// Prints reports until `--count` is reached or `stop` completes.
pub async fn run<S: Future<Output = ()>>(args: &StatArgs, stop: S) -> Result<(), StatError> {
    let mut path = "/stats?format=json&include_clients=false&include_mem=false".to_string();
    if let Some(t) = &args.topic {
        path.push_str(&format!("&topic={}", query_escape(t)));
    }
    if let Some(c) = &args.channel {
        path.push_str(&format!("&channel={}", query_escape(c)));
    }
    let mut ticker = tokio::time::interval(args.interval);
    let mut previous: Option<(Table, Instant)> = None;
    let mut reports = 0u64;
    let mut ever_answered = false;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => return Ok(()),
        }
        let nodes = nodes(args).await;
        if nodes.is_empty() {
            eprintln!("nsq stat: lookupd lists no nsqd for the topic (yet)");
        }
        let mut table = Table::new();
        let mut last_error = None;
        for node in &nodes {
            match get_json::<StatsResponse>(node, &path).await {
                Ok(stats) => {
                    ever_answered = true;
                    accumulate(&mut table, &stats);
                }
                Err(e) => {
                    eprintln!("nsq stat: {e}");
                    last_error = Some(e);
                }
            }
        }
        let now = Instant::now();
        let since = previous.as_ref().map(|(t, at)| (t, now - *at));
        if reports.is_multiple_of(20) || table.len() > 1 {
            println!("{HEADER}");
        }
        print!("{}", render(&table, since));
        previous = Some((table, now));
        reports += 1;
        if args.count > 0 && reports >= args.count {
            return match last_error {
                _ if ever_answered => Ok(()),
                Some(e) => Err(StatError::NoAnswer(e)),
                None => Err(StatError::NoNodes(args.topic.clone().unwrap_or_default())),
            };
        }
    }
}

/// The nsqd HTTP addresses to read: the given ones plus lookupd's producers of --topic.
async fn nodes(args: &StatArgs) -> Vec<String> {
    let mut nodes = args.nsqd_http_address.clone();
    if let Some(topic) = &args.topic {
        for l in &args.lookupd_http_address {
            match lookup(l, topic).await {
                Ok(producers) => {
                    for p in producers {
                        let a = join_host_port(&p.broadcast_address, p.http_port);
                        if !nodes.contains(&a) {
                            nodes.push(a);
                        }
                    }
                }
                Err(e) => eprintln!("nsq stat: lookupd: {e}"),
            }
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(depth: i64, msgs: u64) -> StatsResponse {
        serde_json::from_value(serde_json::json!({
            "topics": [{
                "topic_name": "t", "depth": 1, "backend_depth": 0, "message_count": msgs,
                "channels": [{
                    "channel_name": "c", "depth": depth, "backend_depth": 2,
                    "in_flight_count": 3, "deferred_count": 0, "message_count": msgs,
                    "requeue_count": 1, "timeout_count": 0, "client_count": 1
                }]
            }]
        }))
        .unwrap()
    }

    #[test]
    fn sums_nodes_and_computes_rates() {
        let mut before = Table::new();
        accumulate(&mut before, &stats(10, 100));
        let mut now = Table::new();
        accumulate(&mut now, &stats(10, 150));
        accumulate(&mut now, &stats(5, 150));
        let ch = now[&("t".to_string(), Some("c".to_string()))];
        assert_eq!((ch.depth, ch.backend_depth, ch.in_flight), (15, 4, 6));
        assert_eq!((ch.messages, ch.clients), (300, 2));
        let text = render(&now, Some((&before, Duration::from_secs(2))));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("t "), "{text}");
        assert!(lines[1].starts_with("  t/c "), "{text}");
        // (300 - 100) messages in 2 s.
        assert!(lines[1].contains(" 100 "), "{text}");
        assert!(render(&now, None).contains(" - "));
    }
}
