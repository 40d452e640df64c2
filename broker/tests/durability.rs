//! Restart without loss: metadata, disk overflow, and the clean-shutdown flush of
//! memory, in-flight and deferred messages.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use nsq_protocol::client;
use support::{body, TestNode};

#[tokio::test]
async fn clean_restart_redelivers_every_unfinished_message() {
    const TOTAL: usize = 100_000;
    let mut node = TestNode::start_with(|o| o.mem_queue_size = 1000).await;
    let mut p = node.connect().await;
    for chunk in (0..TOTAL).collect::<Vec<_>>().chunks(500) {
        let bodies: Vec<Vec<u8>> = chunk.iter().map(|i| body(*i, 40)).collect();
        p.cmd(|b| client::mpub(b, "durable", &bodies)).await;
        p.expect_response("OK").await;
    }
    // Consume part: finish 10,000, requeue 100 with a long delay, leave 100 in flight.
    let mut c = node.connect().await;
    c.subscribe("durable", "ch").await;
    c.rdy(2500).await;
    let mut finished = HashSet::new();
    while finished.len() < 10_000 {
        let m = c.expect_message().await;
        c.fin(&m.id).await;
        assert!(finished.insert(m.body.to_vec()));
    }
    c.rdy(0).await;
    // Drain what was already pushed past the RDY change, finishing nothing more.
    let mut in_flight = Vec::new();
    while let Ok(Some(f)) = c.frame_within(Duration::from_millis(300)).await {
        if f.frame_type == nsq_protocol::FrameType::Message {
            in_flight.push(nsq_protocol::message::decode_message(&f.data).unwrap());
        }
    }
    let deferred: Vec<_> = in_flight.split_off(in_flight.len() / 2);
    for m in &deferred {
        c.cmd(|b| client::req(b, &m.id, 3_600_000)).await;
    }
    c.expect_alive().await;
    let ch = node.nsqd().topic("durable").unwrap().channel("ch").unwrap();
    assert_eq!(ch.deferred_count(), deferred.len());
    assert_eq!(ch.in_flight_count(), in_flight.len());
    assert!(ch.backend_depth() > 0, "overflowed to disk");
    node.nsqd()
        .set_channel_paused("durable", "ch", true)
        .unwrap();
    node.nsqd().set_topic_paused("durable", false).unwrap();
    drop(c);
    drop(p);

    node.restart().await;

    let topic = node.nsqd().topic("durable").expect("topic restored");
    let ch = topic.channel("ch").expect("channel restored");
    assert!(ch.is_paused(), "pause survives restart");
    // The topic may still be handing its restored backlog to the channel.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while topic.depth() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "topic backlog never drained"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ch.depth() as usize, TOTAL - finished.len());
    node.nsqd()
        .set_channel_paused("durable", "ch", false)
        .unwrap();
    let mut c = node.connect().await;
    c.subscribe("durable", "ch").await;
    c.rdy(2500).await;
    let mut seen = HashSet::new();
    while seen.len() < TOTAL - finished.len() {
        let m = c.expect_message().await;
        c.fin(&m.id).await;
        assert!(
            !finished.contains(&m.body[..]),
            "finished message came back"
        );
        assert!(seen.insert(m.body.to_vec()), "duplicate after restart");
    }
    c.expect_silence(Duration::from_millis(300)).await;
    for m in in_flight.iter().chain(&deferred) {
        assert!(
            seen.contains(&m.body[..]),
            "in-flight/deferred message redelivered"
        );
    }
}

#[tokio::test]
async fn topic_backlog_and_pause_survive_restart() {
    let mut node = TestNode::start_with(|o| o.mem_queue_size = 10).await;
    let mut p = node.connect().await;
    let bodies: Vec<Vec<u8>> = (0..100).map(|i| body(i, 10)).collect();
    p.cmd(|b| client::mpub(b, "held", &bodies)).await;
    p.expect_response("OK").await;
    node.nsqd().set_topic_paused("held", true).unwrap();
    drop(p);
    node.restart().await;
    let topic = node.nsqd().topic("held").unwrap();
    assert!(topic.is_paused());
    assert_eq!(topic.depth(), 100);
    node.nsqd().set_topic_paused("held", false).unwrap();
    let mut c = node.connect().await;
    c.subscribe("held", "c").await;
    c.rdy(100).await;
    let mut got = HashSet::new();
    for _ in 0..100 {
        got.insert(c.expect_message().await.body.to_vec());
    }
    assert_eq!(got.len(), 100);
}

#[tokio::test]
async fn ephemeral_topics_are_not_persisted() {
    let mut node = TestNode::start().await;
    let mut c = node.connect().await;
    c.subscribe("keep", "c").await;
    let mut e = node.connect().await;
    e.subscribe("gone#ephemeral", "c").await;
    let mut e2 = node.connect().await;
    e2.subscribe("keep", "tmp#ephemeral").await;
    let meta = node.nsqd().metadata();
    let names: Vec<_> = meta.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["keep"]);
    assert_eq!(meta.topics[0].channels.as_ref().map(|c| c.len()), Some(1));
    drop((c, e, e2));
    node.restart().await;
    assert!(node.nsqd().topic("gone#ephemeral").is_none());
    assert!(node
        .nsqd()
        .topic("keep")
        .unwrap()
        .channel("tmp#ephemeral")
        .is_none());
}

#[tokio::test]
async fn second_node_on_the_same_data_path_is_refused() {
    let node = TestNode::start().await;
    let mut opts = node.opts.clone();
    opts.tcp_address = "127.0.0.1:0".into();
    let err = nsqd::RunningNsqd::start(opts).await.err().expect("refused");
    assert!(err.to_string().contains("cannot flock directory"), "{err}");
}

#[tokio::test]
async fn corrupt_metadata_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nsqd.dat"), b"{not json").unwrap();
    let mut opts = nsqd::Options::defaults();
    opts.tcp_address = "127.0.0.1:0".into();
    opts.http_address = String::new();
    opts.data_path = Some(dir.path().to_path_buf());
    assert!(nsqd::RunningNsqd::start(opts).await.is_err());
}

#[tokio::test]
async fn failed_disk_write_fails_the_publish_and_marks_unhealthy() {
    let node = TestNode::start_with(|o| o.mem_queue_size = 0).await;
    let data = node.dir.path().to_path_buf();
    std::fs::remove_dir_all(&data).unwrap();
    let mut p = node.connect().await;
    p.cmd(|b| client::publish(b, "doomed", b"x")).await;
    let f = p.next().await;
    assert_eq!(f.frame_type, nsq_protocol::FrameType::Error);
    let text = String::from_utf8_lossy(&f.data).into_owned();
    assert!(text.starts_with("E_PUB_FAILED PUB failed "), "{text}");
    p.expect_closed().await;
    let health = node.nsqd().health().expect("unhealthy");
    assert!(!health.is_empty());
    // The disk comes back: the next write succeeds and health recovers.
    std::fs::create_dir_all(&data).unwrap();
    let mut p = node.connect().await;
    p.publish("doomed", b"y").await;
    assert_eq!(node.nsqd().health(), None);
}

/// Runs the real binary: SIGTERM exits 0 after persisting; kill -9 with
/// `--mem-queue-size 0 --sync-every 1` loses no acknowledged message.
mod binary {
    use super::*;
    use std::process::{Child, Command, Stdio};

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn spawn(dir: &std::path::Path, port: u16, extra: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_nsqd"))
            .arg(format!("--tcp-address=127.0.0.1:{port}"))
            .arg("--http-address=")
            .arg(format!("--data-path={}", dir.display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nsqd")
    }

    async fn connect(port: u16) -> support::Conn {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return support::Conn::connect(addr).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nsqd did not come up");
    }

    fn signal(child: &Child, sig: i32) {
        // SAFETY: kill(2) on a child we spawned and still own.
        let rc = unsafe { libc::kill(child.id() as i32, sig) };
        assert_eq!(rc, 0);
    }

    async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
        for _ in 0..200 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        panic!("nsqd did not exit");
    }

    async fn drain(port: u16, topic: &str, expect: usize) -> HashSet<Vec<u8>> {
        let mut c = connect(port).await;
        c.subscribe(topic, "c").await;
        c.rdy(1000).await;
        let mut got = HashSet::new();
        while got.len() < expect {
            let m = c.expect_message().await;
            c.fin(&m.id).await;
            got.insert(m.body.to_vec());
        }
        c.expect_silence(Duration::from_millis(200)).await;
        got
    }

    #[tokio::test]
    async fn sigterm_exits_zero_and_restart_redelivers() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = spawn(dir.path(), port, &["--mem-queue-size=100"]);
        let mut p = connect(port).await;
        let mut c = connect(port).await;
        c.subscribe("sig", "c").await;
        let bodies: Vec<Vec<u8>> = (0..1000).map(|i| body(i, 50)).collect();
        p.cmd(|b| client::mpub(b, "sig", &bodies)).await;
        p.expect_response("OK").await;
        c.rdy(10).await;
        for _ in 0..10 {
            c.expect_message().await; // left in flight
        }
        signal(&child, libc::SIGTERM);
        assert_eq!(wait_exit(&mut child).await.code(), Some(0));
        let port = free_port();
        let mut child = spawn(dir.path(), port, &[]);
        let got = drain(port, "sig", 1000).await;
        assert_eq!(got.len(), 1000);
        signal(&child, libc::SIGINT);
        assert_eq!(wait_exit(&mut child).await.code(), Some(0));
    }

    #[tokio::test]
    async fn kill_9_loses_no_acknowledged_message_with_sync_every_1() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = spawn(dir.path(), port, &["--mem-queue-size=0", "--sync-every=1"]);
        let mut p = connect(port).await;
        for i in 0..300 {
            p.publish("crash", &body(i, 30)).await; // each OK is an acknowledgement
        }
        signal(&child, libc::SIGKILL);
        wait_exit(&mut child).await;
        let port = free_port();
        let mut child = spawn(dir.path(), port, &[]);
        let got = drain(port, "crash", 300).await;
        for i in 0..300 {
            assert!(got.contains(&body(i, 30)), "acknowledged message {i} lost");
        }
        signal(&child, libc::SIGTERM);
        assert_eq!(wait_exit(&mut child).await.code(), Some(0));
    }
}
