//! Observability of nsqd: `GET /metrics` against an in-process node (values checked
//! against `/stats` during and after a publish/consume run, node totals across
//! deletions, health, format negotiation, routing), and the live log level of the
//! built binary (`PUT /config/log_level`).
//!
//! The strict format check, with Prometheus' own parser, is monitoring/test_exposition.py.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nsq_protocol::client;
use serde_json::{json, Value};
use support::{Conn, TestNode, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------- helpers

struct Node {
    node: TestNode,
    http: SocketAddr,
}

impl Node {
    async fn start_with(f: impl FnOnce(&mut nsqd::Options)) -> Node {
        let node = TestNode::start_with(|o| {
            o.http_address = "127.0.0.1:0".into();
            f(o);
        })
        .await;
        let http = node
            .running
            .as_ref()
            .and_then(|r| r.http_addr)
            .expect("HTTP listener bound");
        Node { node, http }
    }

    async fn metrics(&self) -> Scrape {
        let r = http(self.http, "GET", "/metrics", &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        Scrape::parse(&r.body)
    }

    async fn stats(&self) -> Value {
        let r = http(self.http, "GET", "/stats?format=json", &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).expect("stats JSON")
    }

    async fn post(&self, target: &str) {
        let r = http(self.http, "POST", target, &[], b"").await;
        assert_eq!(r.status, 200, "POST {target}: {}", r.body);
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`, read to EOF (bodies here are never
/// chunked: axum sends a `Content-Length` for a full body).
async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut s = TcpStream::connect(addr).await.expect("connect HTTP");
    s.write_all(req.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write body");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .expect("HTTP response in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A parsed exposition: `name{labels}` exactly as written → value. Checks on the way
/// that every sample belongs to the family announced before it and that no series
/// appears twice.
#[derive(Debug)]
struct Scrape {
    samples: BTreeMap<String, f64>,
    /// Family name → type, in order of appearance.
    types: Vec<(String, String)>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        let mut types: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                assert!(
                    types.iter().all(|(n, _)| n != name),
                    "family {name} announced twice"
                );
                types.push((name.to_string(), kind.to_string()));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let name = series.split('{').next().unwrap_or(series);
            let (family, kind) = types.last().expect("a TYPE line before samples");
            let belongs = match kind.as_str() {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(family)),
                _ => name == family,
            };
            assert!(belongs, "sample {name} under family {family} ({kind})");
            let value: f64 = value.parse().expect("sample value");
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "duplicate series {series}"
            );
        }
        Scrape { samples, types }
    }

    fn try_get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let series = if labels.is_empty() {
            name.to_string()
        } else {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{name}{{{}}}", l.join(","))
        };
        self.samples.get(&series).copied()
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.try_get(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {:#?}", self.samples))
    }

    /// Series of `name` (any labels).
    fn series_of(&self, name: &str) -> Vec<&str> {
        self.samples
            .keys()
            .filter(|s| s.split('{').next() == Some(name))
            .map(String::as_str)
            .collect()
    }

    /// Every counter series (`_total`) and histogram count/bucket: must never decrease.
    fn monotonic(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.samples.iter().filter(|(s, _)| {
            let name = s.split('{').next().unwrap_or(s);
            (name.ends_with("_total") && !name.starts_with("process_"))
                || name.ends_with("_count")
                || name.ends_with("_bucket")
        })
    }
}

fn int(v: &Value) -> f64 {
    v.as_i64().unwrap_or_else(|| panic!("integer, got {v}")) as f64
}

fn flag(v: &Value) -> f64 {
    f64::from(u8::from(v.as_bool().expect("bool")))
}

/// Every topic and channel value `/metrics` shares with `/stats` agrees, and node
/// totals are the sums of the parts.
fn assert_agree(stats: &Value, m: &Scrape) {
    let topics = stats["topics"].as_array().expect("topics");
    let mut published = 0.0;
    let mut published_bytes = 0.0;
    let mut requeued = 0.0;
    let mut timed_out = 0.0;
    let mut channels = 0.0;
    let mut consumers = 0.0;
    for t in topics {
        let tl = [("topic", t["topic_name"].as_str().expect("topic name"))];
        assert_eq!(m.get("nsq_topic_depth", &tl), int(&t["depth"]), "{tl:?}");
        assert_eq!(
            m.get("nsq_topic_backend_depth", &tl),
            int(&t["backend_depth"]),
            "{tl:?}"
        );
        assert_eq!(
            m.get("nsq_topic_messages_total", &tl),
            int(&t["message_count"])
        );
        assert_eq!(
            m.get("nsq_topic_message_bytes_total", &tl),
            int(&t["message_bytes"])
        );
        assert_eq!(m.get("nsq_topic_paused", &tl), flag(&t["paused"]));
        let chs = t["channels"].as_array().expect("channels");
        assert_eq!(m.get("nsq_topic_channels", &tl), chs.len() as f64);
        published += int(&t["message_count"]);
        published_bytes += int(&t["message_bytes"]);
        for c in chs {
            let cl = [
                tl[0],
                ("channel", c["channel_name"].as_str().expect("name")),
            ];
            for (metric, key) in [
                ("nsq_channel_depth", "depth"),
                ("nsq_channel_backend_depth", "backend_depth"),
                ("nsq_channel_in_flight", "in_flight_count"),
                ("nsq_channel_deferred", "deferred_count"),
                ("nsq_channel_consumers", "client_count"),
                ("nsq_channel_messages_total", "message_count"),
                ("nsq_channel_requeues_total", "requeue_count"),
                ("nsq_channel_timeouts_total", "timeout_count"),
            ] {
                assert_eq!(m.get(metric, &cl), int(&c[key]), "{metric} {cl:?}");
            }
            assert_eq!(m.get("nsq_channel_paused", &cl), flag(&c["paused"]));
            // With percentiles configured, /stats counts the finished messages too.
            assert_eq!(
                m.get("nsq_channel_e2e_processing_latency_seconds_count", &cl),
                int(&c["e2e_processing_latency"]["count"]),
                "{cl:?}"
            );
            assert_eq!(
                m.get(
                    "nsq_channel_e2e_processing_latency_seconds_bucket",
                    &[cl[0], cl[1], ("le", "+Inf")]
                ),
                int(&c["e2e_processing_latency"]["count"])
            );
            requeued += int(&c["requeue_count"]);
            timed_out += int(&c["timeout_count"]);
            channels += 1.0;
            consumers += int(&c["client_count"]);
        }
    }
    assert_eq!(m.get("nsq_topics", &[]), topics.len() as f64);
    assert_eq!(m.get("nsq_channels", &[]), channels);
    assert_eq!(m.get("nsq_messages_published_total", &[]), published);
    assert_eq!(
        m.get("nsq_message_bytes_published_total", &[]),
        published_bytes
    );
    assert_eq!(m.get("nsq_messages_requeued_total", &[]), requeued);
    assert_eq!(m.get("nsq_messages_timed_out_total", &[]), timed_out);
    let producers = stats["producers"].as_array().map_or(0, Vec::len) as f64;
    assert_eq!(m.get("nsq_clients", &[]), producers + consumers);
    assert_eq!(
        m.get("nsq_healthy", &[]),
        f64::from(u8::from(stats["health"] == "OK"))
    );
    assert_eq!(
        m.get("nsq_start_time_seconds", &[]),
        int(&stats["start_time"])
    );
}

fn channel_of<'a>(stats: &'a Value, topic: &str, channel: &str) -> &'a Value {
    stats["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["topic_name"] == topic))
        .and_then(|t| t["channels"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["channel_name"] == channel))
        .unwrap_or_else(|| panic!("{topic}/{channel} in {stats}"))
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- /metrics vs /stats

const MESSAGES: usize = 300;

/// A consumer of `orders/billing`: defers the first message for a minute, holds the
/// next three in flight, requeues (once) every tenth, finishes the rest. Returns the
/// number of REQs sent, once every message is accounted for.
async fn billing_consumer(mut c: Conn) -> (Conn, u64) {
    let mut resolved = 0;
    let mut seq = 0u64;
    let mut reqs = 0;
    while resolved < MESSAGES {
        let m = c.expect_message().await;
        seq += 1;
        if seq == 1 {
            c.cmd(|b| client::req(b, &m.id, 60_000)).await;
            reqs += 1;
            resolved += 1;
        } else if seq <= 4 {
            resolved += 1;
        } else if m.attempts == 1 && seq % 10 == 3 {
            c.cmd(|b| client::req(b, &m.id, 0)).await;
            reqs += 1;
        } else {
            c.fin(&m.id).await;
            resolved += 1;
        }
    }
    (c, reqs)
}

#[tokio::test]
async fn metrics_agree_with_stats_during_and_after_a_run() {
    let node = Node::start_with(|o| {
        o.mem_queue_size = 10;
        o.e2e_processing_latency_percentiles = vec![0.99, 0.5];
    })
    .await;
    node.post("/topic/create?topic=orders").await;
    node.post("/channel/create?topic=orders&channel=audit")
        .await;
    node.post("/channel/create?topic=orders&channel=archive")
        .await;
    node.post("/channel/pause?topic=orders&channel=archive")
        .await;
    node.post("/topic/create?topic=held").await;
    node.post("/channel/create?topic=held&channel=later").await;
    node.post("/topic/pause?topic=held").await;

    let mut billing = node.node.connect().await;
    billing.subscribe("orders", "billing").await;
    billing.rdy(10).await;
    let mut audit = node.node.connect().await;
    let f = audit.identify(json!({"msg_timeout": 1000})).await;
    assert_eq!(f.frame_type, nsq_protocol::FrameType::Response);
    audit.subscribe("orders", "audit").await;
    audit.rdy(2).await;

    // Scrape throughout the run: every scrape parses, and no counter or histogram
    // series ever goes down.
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let stop = stop.clone();
        let addr = node.http;
        tokio::spawn(async move {
            let mut last: BTreeMap<String, f64> = BTreeMap::new();
            let mut scrapes = 0;
            while !stop.load(Ordering::Acquire) {
                let r = http(addr, "GET", "/metrics", &[], b"").await;
                assert_eq!(r.status, 200);
                let s = Scrape::parse(&r.body);
                for (series, v) in s.monotonic() {
                    if let Some(prev) = last.get(series) {
                        assert!(v >= prev, "{series} went from {prev} to {v}");
                    }
                    last.insert(series.clone(), *v);
                }
                scrapes += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            scrapes
        })
    };

    let consumer = tokio::spawn(billing_consumer(billing));
    let mut producer = node.node.connect().await;
    for i in 0..MESSAGES {
        producer
            .publish("orders", &support::body(i, 50 + i % 7))
            .await;
    }
    for i in 0..25 {
        producer.publish("idle", &support::body(i, 20)).await;
        producer.publish("held", &support::body(i, 20)).await;
    }
    // audit: two deliveries never answered; the consumer leaves and they time out.
    audit.expect_message().await;
    audit.expect_message().await;
    drop(audit);
    let (billing, reqs) = tokio::time::timeout(Duration::from_secs(20), consumer)
        .await
        .expect("billing consumer finished")
        .expect("billing consumer");
    wait_for("audit timeouts", async || {
        let s = node.stats().await;
        let c = channel_of(&s, "orders", "audit");
        // The node forgets the connection just after the channel does.
        c["timeout_count"] == 2 && c["client_count"] == 0 && node.node.nsqd().clients().len() == 2
    })
    .await;
    stop.store(true, Ordering::Release);
    let scrapes = scraper.await.expect("scraper");
    assert!(scrapes >= 3, "only {scrapes} scrapes during the run");

    // Quiet now: both documents describe the same state.
    let stats = node.stats().await;
    let m = node.metrics().await;
    assert_agree(&stats, &m);

    // And that state is the one the run produced (so agreeing is not trivially true).
    let orders = [("topic", "orders")];
    let billing_l = [("topic", "orders"), ("channel", "billing")];
    let archive = [("topic", "orders"), ("channel", "archive")];
    assert_eq!(m.get("nsq_topic_messages_total", &orders), MESSAGES as f64);
    assert_eq!(m.get("nsq_channel_in_flight", &billing_l), 3.0);
    assert_eq!(m.get("nsq_channel_deferred", &billing_l), 1.0);
    assert_eq!(m.get("nsq_channel_requeues_total", &billing_l), reqs as f64);
    assert_eq!(
        m.get("nsq_channel_finishes_total", &billing_l),
        (MESSAGES - 4) as f64
    );
    assert_eq!(
        m.get("nsq_channel_deliveries_total", &billing_l),
        (MESSAGES as u64 + reqs - 1) as f64
    );
    assert_eq!(
        m.get("nsq_messages_finished_total", &[]),
        (MESSAGES - 4) as f64
    );
    assert_eq!(m.get("nsq_channel_consumers", &billing_l), 1.0);
    assert_eq!(m.get("nsq_channel_paused", &archive), 1.0);
    assert_eq!(m.get("nsq_channel_depth", &archive), MESSAGES as f64);
    assert_eq!(
        m.get("nsq_channel_backend_depth", &archive),
        (MESSAGES - 10) as f64
    );
    assert_eq!(m.get("nsq_topic_depth", &[("topic", "idle")]), 25.0);
    assert_eq!(m.get("nsq_topic_backend_depth", &[("topic", "idle")]), 15.0);
    assert_eq!(m.get("nsq_topic_paused", &[("topic", "held")]), 1.0);
    assert_eq!(m.get("nsq_topic_depth", &[("topic", "held")]), 25.0);
    assert!(m.get("nsq_disk_bytes", &[]) > 0.0);
    assert_eq!(m.get("nsq_healthy", &[]), 1.0);
    drop((billing, producer));
}

// ---------------------------------------------------------------- node totals

#[tokio::test]
async fn node_totals_survive_deleting_topics_and_channels() {
    let node = Node::start_with(|_| {}).await;
    let mut c = node.node.connect().await;
    c.subscribe("gone", "ch").await;
    c.rdy(5).await;
    let mut p = node.node.connect().await;
    let mut bytes = 0;
    for i in 0..5 {
        let body = support::body(i, 20);
        bytes += body.len();
        p.publish("gone", &body).await;
    }
    for _ in 0..5 {
        let m = c.expect_message().await;
        c.fin(&m.id).await;
    }
    let ch = [("topic", "gone"), ("channel", "ch")];
    wait_for("five finishes", async || {
        node.metrics()
            .await
            .try_get("nsq_channel_finishes_total", &ch)
            == Some(5.0)
    })
    .await;
    drop(c);

    node.post("/channel/delete?topic=gone&channel=ch").await;
    let m = node.metrics().await;
    assert!(m.series_of("nsq_channel_finishes_total").is_empty());
    assert_eq!(m.get("nsq_messages_finished_total", &[]), 5.0);
    assert_eq!(m.get("nsq_messages_delivered_total", &[]), 5.0);
    assert_eq!(m.get("nsq_channels", &[]), 0.0);

    node.post("/topic/delete?topic=gone").await;
    let m = node.metrics().await;
    assert!(m.series_of("nsq_topic_messages_total").is_empty());
    assert_eq!(m.get("nsq_messages_published_total", &[]), 5.0);
    assert_eq!(
        m.get("nsq_message_bytes_published_total", &[]),
        bytes as f64
    );
    assert_eq!(m.get("nsq_topics", &[]), 0.0);
}

#[tokio::test]
async fn health_follows_the_node() {
    let node = Node::start_with(|_| {}).await;
    assert_eq!(node.metrics().await.get("nsq_healthy", &[]), 1.0);
    node.node
        .nsqd()
        .set_health(Some("disk queue write failed".into()));
    assert_eq!(node.metrics().await.get("nsq_healthy", &[]), 0.0);
    node.node.nsqd().set_health(None);
    assert_eq!(node.metrics().await.get("nsq_healthy", &[]), 1.0);
}

// ---------------------------------------------------------------- format and routing

#[tokio::test]
async fn openmetrics_when_the_scraper_asks_for_it() {
    let node = Node::start_with(|_| {}).await;
    node.post("/topic/create?topic=t").await;
    node.post("/channel/create?topic=t&channel=c").await;
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let r = http(node.http, "GET", "/metrics", &[("Accept", accept)], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
    assert!(r
        .body
        .contains("# TYPE nsq_topic_messages counter\nnsq_topic_messages_total{topic=\"t\"} 0\n"));
    assert!(r.body.contains("# TYPE nsq_build info\n"));
    assert!(r.body.contains(
        "nsq_channel_e2e_processing_latency_seconds_bucket{topic=\"t\",channel=\"c\",le=\"1.0\"} 0\n"
    ));

    let classic = node.metrics().await;
    let kinds: BTreeMap<_, _> = classic.types.iter().cloned().collect();
    assert_eq!(kinds["nsq_topic_messages_total"], "counter");
    assert_eq!(kinds["nsq_build_info"], "gauge");
    assert_eq!(
        kinds["nsq_channel_e2e_processing_latency_seconds"],
        "histogram"
    );
    assert_eq!(
        classic.get(
            "nsq_build_info",
            &[
                ("version", nsq_protocol::NSQ_VERSION),
                ("implementation", "rust"),
                ("crate_version", env!("CARGO_PKG_VERSION")),
            ]
        ),
        1.0
    );
    for name in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(classic.get(name, &[]) >= 0.0);
    }
}

#[tokio::test]
async fn metrics_route_follows_the_router_conventions() {
    let node = Node::start_with(|_| {}).await;
    let r = http(node.http, "POST", "/metrics", &[], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, OPTIONS"));
    let r = http(node.http, "OPTIONS", "/metrics", &[], b"").await;
    assert_eq!((r.status, r.header("allow")), (200, Some("GET, OPTIONS")));
    let r = http(node.http, "GET", "/Metrics/", &[], b"").await;
    assert_eq!((r.status, r.header("location")), (301, Some("/metrics")));
}

// ---------------------------------------------------------------- live log level

/// The built nsqd with JSON logs; stderr lines are collected as they come.
struct Binary {
    child: std::process::Child,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Binary {
    fn start(level: &str) -> Binary {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nsqd"))
            .args(["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"])
            .arg(format!("--data-path={}", dir.path().display()))
            .args(["--log-format=json", &format!("--log-level={level}")])
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn nsqd");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
                    if v["fields"]["message"] == "HTTP: listening" {
                        let _ = tx.send(v["fields"]["address"].as_str().map(String::from));
                    }
                    lines.lock().expect("lines").push(line);
                }
            });
        }
        let http = rx
            .recv_timeout(WAIT)
            .expect("HTTP: listening logged")
            .expect("address field")
            .parse()
            .expect("socket address");
        Binary {
            child,
            lines,
            http,
            _dir: dir,
        }
    }

    fn logged(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l.contains(needle))
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn put_log_level_changes_the_filter_live() {
    let nsqd = Binary::start("info");
    let put = async |level: &str| {
        let r = http(nsqd.http, "PUT", "/config/log_level", &[], level.as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.body);
    };
    // info: requests are logged.
    http(nsqd.http, "GET", "/ping?phase=info", &[], b"").await;
    wait_for("an info line", async || nsqd.logged("/ping?phase=info")).await;

    // warn: they are not (give the filter change ample time to land first).
    put("WARN").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    http(nsqd.http, "GET", "/ping?phase=warn", &[], b"").await;

    // debug: they are again; once one shows, the warn one would have shown by now.
    put("debug").await;
    let mut n = 0;
    wait_for("an info line after switching to debug", async || {
        n += 1;
        http(nsqd.http, "GET", &format!("/ping?phase=debug{n}"), &[], b"").await;
        nsqd.logged("/ping?phase=debug")
    })
    .await;
    assert!(!nsqd.logged("/ping?phase=warn"), "logged at warn level");
    let r = http(nsqd.http, "GET", "/config/log_level", &[], b"").await;
    assert_eq!(r.body, "1");
}
