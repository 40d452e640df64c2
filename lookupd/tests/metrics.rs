//! Observability of nsqlookupd: `GET /metrics` against a server bound to 127.0.0.1:0
//! (registrations made over raw V1 TCP and HTTP, checked value by value), format
//! negotiation and routing, and the binary's `--log-format json`.
//!
//! The strict format check, with Prometheus' own parser, is monitoring/test_exposition.py.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use nsqlookupd::Server;
use serde_json::Value;

use support::{http, http_accept, start, Peer, IO_TIMEOUT};

/// An nsqd as the lookupd sees it: a V1 connection, identified as `broadcast_address`.
async fn identified(server: &Server, broadcast_address: &str, http_port: u16) -> Peer {
    let mut peer = Peer::connect(server).await;
    let reply = peer.identify_as(broadcast_address, http_port).await;
    assert!(reply.is_object(), "IDENTIFY reply {reply}");
    peer
}

/// `name{labels}` as written → value; a series written twice fails the test.
async fn scrape(server: &Server) -> BTreeMap<String, f64> {
    let r = http(server.http_addr(), "GET", "/metrics").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut samples = BTreeMap::new();
    for line in r.body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().expect("value");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "duplicate series {series}"
        );
    }
    samples
}

fn ages(samples: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter_map(|(s, v)| {
            let producer = s
                .strip_prefix("nsq_lookupd_producer_last_ping_age_seconds{producer=\"")?
                .strip_suffix("\"}")?;
            Some((producer.to_string(), *v))
        })
        .collect()
}

#[tokio::test]
async fn metrics_describe_the_registration_db() {
    let server = start(&["--tombstone-lifetime", "1s"]).await;
    let m = scrape(&server).await;
    assert_eq!(m["nsq_lookupd_producers"], 0.0);
    assert_eq!(m["nsq_lookupd_topics"], 0.0);
    assert!(ages(&m).is_empty());

    let mut a = identified(&server, "nsqd-a.ns.svc", 4151).await;
    let mut b = identified(&server, "nsqd-b.ns.svc", 4151).await;
    a.cmd_ok("REGISTER orders billing").await;
    a.cmd_ok("REGISTER orders audit").await;
    b.cmd_ok("REGISTER orders billing").await;
    b.cmd_ok("REGISTER clicks").await;
    let r = http(server.http_addr(), "POST", "/topic/create?topic=empty").await;
    assert_eq!(r.status, 200);
    let r = http(
        server.http_addr(),
        "POST",
        "/topic/tombstone?topic=orders&node=nsqd-b.ns.svc:4151",
    )
    .await;
    assert_eq!(r.status, 200);

    let m = scrape(&server).await;
    assert_eq!(m["nsq_lookupd_producers"], 2.0);
    assert_eq!(m["nsq_lookupd_topics"], 3.0); // orders, clicks, empty
    assert_eq!(m["nsq_lookupd_channels"], 2.0); // orders/billing, orders/audit
    assert_eq!(m["nsq_lookupd_tombstones"], 1.0);
    let age = ages(&m);
    assert_eq!(
        age.keys().collect::<Vec<_>>(),
        ["nsqd-a.ns.svc:4151", "nsqd-b.ns.svc:4151"]
    );
    assert!(age.values().all(|a| (0.0..2.0).contains(a)), "{age:?}");

    // Only a PINGs: b's age grows past a's. b's tombstone expires meanwhile.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.cmd_ok("PING").await;
    let m = scrape(&server).await;
    let age = ages(&m);
    assert!(age["nsqd-b.ns.svc:4151"] >= 1.0, "{age:?}");
    // b last spoke at least 1.1 s before a did, however slow this scrape is.
    assert!(
        age["nsqd-b.ns.svc:4151"] - age["nsqd-a.ns.svc:4151"] >= 1.0,
        "{age:?}"
    );
    assert_eq!(m["nsq_lookupd_tombstones"], 0.0);

    // A disconnect takes the producer and its series away; registrations stay.
    drop(b);
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    loop {
        let m = scrape(&server).await;
        if m["nsq_lookupd_producers"] == 1.0 {
            assert_eq!(ages(&m).keys().collect::<Vec<_>>(), ["nsqd-a.ns.svc:4151"]);
            assert_eq!(m["nsq_lookupd_topics"], 3.0);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "b never left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn one_series_per_producer_name() {
    let server = start(&[]).await;
    // The same nsqd reconnecting before its old connection is dropped.
    let _old = identified(&server, "nsqd-0", 4151).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _new = identified(&server, "nsqd-0", 4151).await;
    let _other_port = identified(&server, "nsqd-0", 4152).await;
    let m = scrape(&server).await;
    assert_eq!(m["nsq_lookupd_producers"], 3.0);
    let age = ages(&m);
    assert_eq!(
        age.keys().collect::<Vec<_>>(),
        ["nsqd-0:4151", "nsqd-0:4152"]
    );
    assert!(age["nsqd-0:4151"] < 1.0, "the newest ping wins: {age:?}");
}

#[tokio::test]
async fn build_info_process_metrics_and_openmetrics() {
    let server = start(&[]).await;
    let m = scrape(&server).await;
    let build = format!(
        "nsq_lookupd_build_info{{version=\"{}\",implementation=\"rust\",crate_version=\"{}\"}}",
        nsq_protocol::NSQ_VERSION,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(m.get(&build), Some(&1.0), "{m:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!((now - m["nsq_lookupd_start_time_seconds"]).abs() < 60.0);
    for name in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(m.contains_key(name), "{name} in {m:?}");
    }

    let r = http_accept(
        server.http_addr(),
        "GET",
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .await;
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(r.body.contains("# TYPE nsq_lookupd_build info\n"));
    assert!(r.body.ends_with("# EOF\n"));

    let r = http(server.http_addr(), "POST", "/metrics").await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, OPTIONS")));
}

#[test]
fn binary_logs_json_lines() {
    use std::io::{BufRead, BufReader};
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("addr").to_string();
    // Serves, then fails to bind the second listener: info lines, then a FATAL one.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nsqlookupd"))
        .args(["--log-format", "json", "--tcp-address", "127.0.0.1:0"])
        .args(["--http-address", &taken])
        .output()
        .expect("run nsqlookupd");
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<Value> = BufReader::new(&out.stderr[..])
        .lines()
        .map(|l| {
            let l = l.expect("line");
            serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
        })
        .collect();
    assert!(lines.len() >= 2, "{lines:?}");
    let first = &lines[0];
    assert_eq!(first["level"], "INFO");
    assert_eq!(
        first["fields"]["message"],
        "nsqlookupd v1.3.0 (built w/rust)"
    );
    assert!(first["timestamp"].is_string());
    let last = lines.last().expect("a line");
    assert_eq!(last["level"], "FATAL");
    let message = last["fields"]["message"].as_str().expect("message");
    assert!(
        message.starts_with(&format!(
            "failed to instantiate nsqlookupd - listen ({taken})"
        )),
        "{message}"
    );
}
