//! nsqd ↔ nsqlookupd: registration, replay after a lookupd restart, live address
//! changes, and channel pre-creation for new topics. Both daemons run in-process.

mod support;

use std::time::{Duration, Instant};

use nsq_protocol::lookup::LookupResponse;
use support::TestNode;

async fn start_lookupd(tcp: &str, http: &str) -> nsqlookupd::server::Server {
    let opts = nsqlookupd::options::Options {
        tcp_address: tcp.into(),
        http_address: http.into(),
        broadcast_address: "127.0.0.1".into(),
        ..Default::default()
    };
    nsqlookupd::server::Server::bind(opts)
        .await
        .expect("lookupd")
}

async fn lookup(http: std::net::SocketAddr, topic: &str) -> Option<LookupResponse> {
    let body = nsqd::http_get::get(
        &http.to_string(),
        &format!("/lookup?topic={topic}"),
        Duration::from_secs(2),
    )
    .await
    .ok()?;
    serde_json::from_slice(&body).ok()
}

/// Polls `/lookup` until `pred` holds, or fails after `within`.
async fn wait_lookup(
    http: std::net::SocketAddr,
    topic: &str,
    within: Duration,
    pred: impl Fn(&LookupResponse) -> bool,
) -> LookupResponse {
    let deadline = Instant::now() + within;
    loop {
        if let Some(r) = lookup(http, topic).await {
            if pred(&r) {
                return r;
            }
        }
        assert!(
            Instant::now() < deadline,
            "lookup for {topic} never matched"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bodiless POST; panics unless the reply is 200.
async fn post(addr: std::net::SocketAddr, path: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    nsqd::http_get::parse_response(&raw).unwrap();
}

async fn node_for(lookupds: &[&nsqlookupd::server::Server]) -> TestNode {
    let addrs: Vec<String> = lookupds.iter().map(|l| l.tcp_addr().to_string()).collect();
    TestNode::start_with(move |o| {
        o.lookupd_tcp_addresses = addrs;
        o.broadcast_address = Some("127.0.0.1".into());
        o.broadcast_http_port = 4151;
    })
    .await
}

#[tokio::test]
async fn registers_topics_and_channels_and_unregisters() {
    let lookupd = start_lookupd("127.0.0.1:0", "127.0.0.1:0").await;
    let node = node_for(&[&lookupd]).await;
    let mut c = node.connect().await;
    c.subscribe("reg", "ch").await;
    let r = wait_lookup(lookupd.http_addr(), "reg", Duration::from_secs(5), |r| {
        !r.producers.is_empty() && r.channels.contains(&"ch".to_string())
    })
    .await;
    let p = &r.producers[0];
    assert_eq!(p.broadcast_address, "127.0.0.1");
    assert_eq!(p.tcp_port, i64::from(node.addr.port()));
    assert_eq!(p.http_port, 4151);
    assert_eq!(p.version, "1.3.0");
    drop(c);
    node.nsqd().delete_topic("reg").unwrap();
    wait_lookup(lookupd.http_addr(), "reg", Duration::from_secs(5), |r| {
        r.producers.is_empty()
    })
    .await;
}

#[tokio::test]
async fn replays_registrations_after_lookupd_restart() {
    let lookupd = start_lookupd("127.0.0.1:0", "127.0.0.1:0").await;
    let (tcp, http) = (lookupd.tcp_addr(), lookupd.http_addr());
    let node = node_for(&[&lookupd]).await;
    let topic = node.nsqd().get_or_create_topic("again");
    node.nsqd().get_or_create_channel(&topic, "c1");
    node.nsqd().get_or_create_topic("lonely");
    wait_lookup(http, "again", Duration::from_secs(5), |r| {
        !r.producers.is_empty()
    })
    .await;
    lookupd.shutdown().await;
    let restarted = Instant::now();
    let lookupd = start_lookupd(&tcp.to_string(), &http.to_string()).await;
    for t in ["again", "lonely"] {
        wait_lookup(http, t, Duration::from_secs(20), |r| {
            !r.producers.is_empty()
        })
        .await;
    }
    let r = lookup(http, "again").await.unwrap();
    assert_eq!(r.channels, vec!["c1".to_string()]);
    assert!(restarted.elapsed() < Duration::from_secs(20));
    drop(lookupd);
}

#[tokio::test]
async fn two_lookupds_both_list_the_producer_and_addresses_change_live() {
    let a = start_lookupd("127.0.0.1:0", "127.0.0.1:0").await;
    let b = start_lookupd("127.0.0.1:0", "127.0.0.1:0").await;
    let node = node_for(&[&a, &b]).await;
    node.nsqd().get_or_create_topic("both");
    for l in [&a, &b] {
        wait_lookup(l.http_addr(), "both", Duration::from_secs(5), |r| {
            r.producers.len() == 1
        })
        .await;
    }
    // PUT /config/nsqlookupd_tcp_addresses equivalent: drop `a`, keep `b`.
    node.nsqd()
        .lookupd_tcp_addresses
        .send_replace(vec![b.tcp_addr().to_string()]);
    wait_lookup(a.http_addr(), "both", Duration::from_secs(5), |r| {
        r.producers.is_empty()
    })
    .await;
    assert_eq!(
        lookup(b.http_addr(), "both").await.unwrap().producers.len(),
        1
    );
}

#[tokio::test]
async fn new_topic_precreates_channels_known_to_lookupd() {
    let lookupd = start_lookupd("127.0.0.1:0", "127.0.0.1:0").await;
    // Another node's consumers created `pre` on topic `known`; lookupd remembers it.
    post(
        lookupd.http_addr(),
        "/channel/create?topic=known&channel=pre",
    )
    .await;
    let node = node_for(&[&lookupd]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.nsqd().lookupd_http_addresses.read().is_empty() {
        assert!(
            Instant::now() < deadline,
            "nsqd never identified to lookupd"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut p = node.connect().await;
    p.publish("known", b"for the pre-created channel").await;
    let topic = node.nsqd().topic("known").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while topic.channel("pre").is_none() {
        assert!(Instant::now() < deadline, "channel not pre-created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut c = node.connect().await;
    c.subscribe("known", "pre").await;
    c.rdy(1).await;
    assert_eq!(
        &c.expect_message().await.body[..],
        b"for the pre-created channel"
    );
}

#[tokio::test]
async fn statsd_receives_documented_keys() {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap().to_string();
    let node = TestNode::start_with(move |o| {
        o.statsd_address = Some(addr);
        o.statsd_interval = Duration::from_millis(300);
        o.statsd_prefix = "nsq.%s".into();
        o.broadcast_address = Some("my.host".into());
        o.broadcast_http_port = 4151;
        o.statsd_udp_packet_size = 200;
        o.e2e_processing_latency_percentiles = vec![0.99];
    })
    .await;
    let mut c = node.connect().await;
    c.subscribe("sd", "ch").await;
    c.rdy(1).await;
    let mut p = node.connect().await;
    p.publish("sd", b"hello").await;
    let m = c.expect_message().await;
    c.fin(&m.id).await;
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !text.contains("mem.gc_runs") {
        let mut buf = [0u8; 2048];
        let n = tokio::time::timeout_at(deadline.into(), udp.recv(&mut buf))
            .await
            .expect("statsd packets")
            .unwrap();
        assert!(
            n <= 200,
            "packet of {n} bytes exceeds --statsd-udp-packet-size"
        );
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    for key in [
        "nsq.my_host_4151.topic.sd.message_count:1|c",
        "nsq.my_host_4151.topic.sd.message_bytes:5|c",
        "nsq.my_host_4151.topic.sd.depth:0|g",
        "nsq.my_host_4151.topic.sd.backend_depth:0|g",
        "nsq.my_host_4151.topic.sd.channel.ch.message_count:1|c",
        "nsq.my_host_4151.topic.sd.channel.ch.depth:0|g",
        "nsq.my_host_4151.topic.sd.channel.ch.backend_depth:0|g",
        "nsq.my_host_4151.topic.sd.channel.ch.in_flight_count:0|g",
        "nsq.my_host_4151.topic.sd.channel.ch.deferred_count:0|g",
        "nsq.my_host_4151.topic.sd.channel.ch.requeue_count:0|c",
        "nsq.my_host_4151.topic.sd.channel.ch.timeout_count:0|c",
        "nsq.my_host_4151.topic.sd.channel.ch.clients:1|g",
        "nsq.my_host_4151.mem.heap_objects:",
        "nsq.my_host_4151.mem.next_gc_bytes:",
    ] {
        assert!(text.contains(key), "missing {key} in:\n{text}");
    }
    assert!(
        text.contains("nsq.my_host_4151.topic.sd.channel.ch.e2e_processing_latency_99:"),
        "{text}"
    );
}
