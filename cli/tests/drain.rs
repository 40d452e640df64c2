//! `nsq drain`: a stopped node's queues end up on a survivor, channel by channel, with
//! nothing lost and nothing duplicated into other channels.

use std::collections::HashSet;
use std::time::Duration;

use bytes::BytesMut;
use nsq_cli::conn::Connection;
use nsq_cli::drain::{self, DrainArgs};
use nsq_protocol::client;
use nsq_protocol::frame::FrameType;
use nsq_protocol::message::{decode_message, DecodedMessage};
use nsqd::RunningNsqd;

async fn start(dir: &std::path::Path) -> RunningNsqd {
    let mut opts = nsqd::Options::defaults();
    opts.tcp_address = "127.0.0.1:0".into();
    opts.http_address = "127.0.0.1:0".into();
    opts.data_path = Some(dir.to_path_buf());
    opts.mem_queue_size = 50; // most of the test data overflows to disk
    RunningNsqd::start(opts).await.expect("nsqd starts")
}

async fn publish(node: &RunningNsqd, topic: &str, bodies: &[String]) {
    let mut c = Connection::connect(&node.tcp_addr.to_string())
        .await
        .unwrap();
    let mut b = BytesMut::new();
    client::mpub(&mut b, topic, bodies);
    c.send(&b).await.unwrap();
    c.expect_ok().await.unwrap();
}

/// Subscribes, takes `n` messages (FIN each), and checks nothing more arrives.
async fn consume(node: &RunningNsqd, topic: &str, channel: &str, n: usize) -> Vec<DecodedMessage> {
    let mut c = Connection::connect(&node.tcp_addr.to_string())
        .await
        .unwrap();
    let mut b = BytesMut::new();
    client::sub(&mut b, topic, channel);
    client::rdy(&mut b, 1000);
    c.send(&b).await.unwrap();
    c.expect_ok().await.unwrap();
    let mut got = Vec::new();
    while got.len() < n {
        let f = tokio::time::timeout(Duration::from_secs(5), c.read_frame())
            .await
            .expect("message in time")
            .unwrap()
            .expect("open");
        if f.frame_type == FrameType::Message {
            let m = decode_message(&f.data).unwrap();
            let mut fin = BytesMut::new();
            client::fin(&mut fin, &m.id);
            c.send(&fin).await.unwrap();
            got.push(m);
        }
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), c.read_frame()).await;
    if let Ok(Ok(Some(f))) = extra {
        assert_ne!(
            f.frame_type,
            FrameType::Message,
            "more messages than expected"
        );
    }
    got
}

fn bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_every_channel_and_orphan_topic_to_a_survivor() {
    let gone_dir = tempfile::tempdir().unwrap();
    let gone = start(gone_dir.path()).await;
    // Channels first, so the topic fans out to both.
    let topic = gone.nsqd.get_or_create_topic("orders");
    gone.nsqd.get_or_create_channel(&topic, "billing");
    gone.nsqd.get_or_create_channel(&topic, "shipping");
    publish(&gone, "orders", &bodies("o", 300)).await;
    publish(&gone, "audit", &bodies("a", 120)).await; // a topic with no channel yet
                                                      // A consumer leaves 10 billing messages in flight: shutdown persists them too.
    let mut c = Connection::connect(&gone.tcp_addr.to_string())
        .await
        .unwrap();
    let mut b = BytesMut::new();
    client::sub(&mut b, "orders", "billing");
    client::rdy(&mut b, 10);
    c.send(&b).await.unwrap();
    c.expect_ok().await.unwrap();
    let mut in_flight = 0;
    while in_flight < 10 {
        if let Some(f) = c.read_frame().await.unwrap() {
            if f.frame_type == FrameType::Message {
                in_flight += 1;
            }
        }
    }
    drop(c);
    gone.shutdown().await;

    let survivor_dir = tempfile::tempdir().unwrap();
    let survivor = start(survivor_dir.path()).await;
    let survivor_http = survivor.http_addr.expect("http").to_string();
    // The survivor has a channel the removed node did not: imports must not reach it.
    let st = survivor.nsqd.get_or_create_topic("orders");
    let analytics = survivor.nsqd.get_or_create_channel(&st, "analytics");

    let args = DrainArgs {
        data_path: gone_dir.path().to_path_buf(),
        nsqd_http_addresses: vec![survivor_http.clone()],
        batch_size: 64,
        max_msg_size: 1048576,
    };
    let report = drain::run(&args).await.expect("drain succeeds");
    assert_eq!(report.channel_messages, 600);
    assert_eq!(report.topic_messages, 120);

    let billing = consume(&survivor, "orders", "billing", 300).await;
    let shipping = consume(&survivor, "orders", "shipping", 300).await;
    let audit = consume(&survivor, "audit", "reader", 120).await;
    let want: HashSet<String> = bodies("o", 300).into_iter().collect();
    for (name, got) in [("billing", &billing), ("shipping", &shipping)] {
        let set: HashSet<String> = got
            .iter()
            .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
            .collect();
        assert_eq!(set, want, "{name} got exactly the drained messages");
    }
    // In-flight ones were delivered once before: their attempts carried over.
    assert_eq!(billing.iter().filter(|m| m.attempts == 2).count(), 10);
    let audit_set: HashSet<String> = audit
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect();
    assert_eq!(audit_set, bodies("a", 120).into_iter().collect());
    assert_eq!(analytics.depth(), 0, "channel-targeted import, no fan-out");

    // The drained directory is empty now: a second drain moves nothing.
    let again = drain::run(&args).await.expect("second drain");
    assert_eq!(again, drain::DrainReport::default());
    survivor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_survivor_keeps_every_message_for_a_retry() {
    let gone_dir = tempfile::tempdir().unwrap();
    let gone = start(gone_dir.path()).await;
    let topic = gone.nsqd.get_or_create_topic("t");
    gone.nsqd.get_or_create_channel(&topic, "c");
    publish(&gone, "t", &bodies("m", 200)).await;
    gone.shutdown().await;

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let mut args = DrainArgs {
        data_path: gone_dir.path().to_path_buf(),
        nsqd_http_addresses: vec![dead_addr],
        batch_size: 50,
        max_msg_size: 1048576,
    };
    assert!(drain::run(&args).await.is_err(), "drain fails loudly");

    let survivor_dir = tempfile::tempdir().unwrap();
    let survivor = start(survivor_dir.path()).await;
    args.nsqd_http_addresses = vec![survivor.http_addr.unwrap().to_string()];
    let report = drain::run(&args).await.expect("retry succeeds");
    assert_eq!(report.channel_messages, 200);
    let got = consume(&survivor, "t", "c", 200).await;
    let set: HashSet<String> = got
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect();
    assert_eq!(set.len(), 200);
    survivor.shutdown().await;
}
