//! Raw protocol V2 against an in-process nsqd: every command and error path of the
//! conformance spec §1, byte for byte.

mod support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use nsq_protocol::client;
use nsq_protocol::frame::FrameType;
use nsq_protocol::MessageId;
use serde_json::json;
use support::{body, Conn, TestNode};
use tokio::io::AsyncWriteExt;

async fn consumer(node: &TestNode, topic: &str, channel: &str, rdy: u64) -> Conn {
    let mut c = node.connect().await;
    c.subscribe(topic, channel).await;
    c.rdy(rdy).await;
    c
}

#[tokio::test]
async fn bad_magic_gets_framed_error_and_close() {
    let node = TestNode::start().await;
    let mut c = Conn::connect_raw(node.addr).await;
    c.send(b"  V1").await;
    c.expect_fatal("E_BAD_PROTOCOL").await;
}

#[tokio::test]
async fn unknown_command_is_fatal() {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    c.send(b"HELLO world\n").await;
    c.expect_fatal("E_INVALID invalid command HELLO").await;
    let mut c = node.connect().await;
    c.send(b"sub t c\n").await;
    c.expect_fatal("E_INVALID invalid command sub").await;
}

#[tokio::test]
async fn overlong_line_drops_without_frame() {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    c.send(&vec![b'A'; 17 * 1024]).await;
    c.expect_closed().await;
}

#[tokio::test]
async fn pipelined_commands_answered_in_order() {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    let mut b = BytesMut::new();
    client::identify(&mut b, br#"{"client_id":"p"}"#);
    client::publish(&mut b, "pipe", b"one");
    client::sub(&mut b, "pipe", "ch");
    client::rdy(&mut b, 1);
    client::nop(&mut b);
    c.send(&b).await;
    c.expect_response("OK").await; // IDENTIFY without feature negotiation
    c.expect_response("OK").await; // PUB
    c.expect_response("OK").await; // SUB
    let m = c.expect_message().await;
    assert_eq!(&m.body[..], b"one");
    assert_eq!(m.attempts, 1);
}

#[tokio::test]
async fn trailing_cr_is_stripped() {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    c.send(b"SUB t c\r\n").await;
    c.expect_response("OK").await;
}

#[tokio::test]
async fn identify_feature_negotiation_reply() {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    let f = c
        .identify(json!({"feature_negotiation": true, "client_id": "c1", "short_id": "x", "long_id": "y"}))
        .await;
    assert_eq!(f.frame_type, FrameType::Response);
    let text = String::from_utf8(f.data.to_vec()).unwrap();
    let keys: Vec<String> =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text)
            .unwrap()
            .keys()
            .cloned()
            .collect();
    let mut want = vec![
        "max_rdy_count",
        "version",
        "max_msg_timeout",
        "msg_timeout",
        "tls_v1",
        "deflate",
        "deflate_level",
        "max_deflate_level",
        "snappy",
        "sample_rate",
        "auth_required",
        "output_buffer_size",
        "output_buffer_timeout",
    ];
    // serde_json's Map is sorted; check the raw order separately below.
    want.sort();
    let mut got = keys.clone();
    got.sort();
    assert_eq!(got, want);
    assert!(text.starts_with(r#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250}"#), "{text}");
}

#[tokio::test]
async fn identify_applies_client_settings() {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    let f = c
        .identify(json!({"feature_negotiation": true, "msg_timeout": 5000, "sample_rate": 0,
            "output_buffer_size": 1024, "output_buffer_timeout": 100, "deflate": true, "deflate_level": 9}))
        .await;
    let v: serde_json::Value = serde_json::from_slice(&f.data).unwrap();
    assert_eq!(v["msg_timeout"], 5000);
    assert_eq!(v["output_buffer_size"], 1024);
    assert_eq!(v["output_buffer_timeout"], 100);
    assert_eq!(v["deflate"], true);
    assert_eq!(v["deflate_level"], 6, "capped at --max-deflate-level");
}

#[tokio::test]
async fn identify_errors() {
    let node = TestNode::start_with(|o| o.max_body_size = 1000).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            0i32.to_be_bytes().to_vec(),
            "E_BAD_BODY IDENTIFY invalid body size 0",
        ),
        (
            1001i32.to_be_bytes().to_vec(),
            "E_BAD_BODY IDENTIFY body too big 1001 > 1000",
        ),
        (
            [&3i32.to_be_bytes()[..], b"{x}"].concat(),
            "E_BAD_BODY IDENTIFY failed to decode JSON body",
        ),
    ];
    for (payload, want) in cases {
        let mut c = node.connect().await;
        c.send(&[&b"IDENTIFY\n"[..], &payload].concat()).await;
        c.expect_fatal(want).await;
    }
    let json_cases = [
        (
            json!({"heartbeat_interval": 999}),
            "E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid",
        ),
        (
            json!({"heartbeat_interval": 60001}),
            "E_BAD_BODY IDENTIFY heartbeat interval (60001) is invalid",
        ),
        (
            json!({"output_buffer_size": 63}),
            "E_BAD_BODY IDENTIFY output buffer size (63) is invalid",
        ),
        (
            json!({"output_buffer_size": 65537}),
            "E_BAD_BODY IDENTIFY output buffer size (65537) is invalid",
        ),
        (
            json!({"output_buffer_timeout": 24}),
            "E_BAD_BODY IDENTIFY output buffer timeout (24) is invalid",
        ),
        (
            json!({"sample_rate": 100}),
            "E_BAD_BODY IDENTIFY sample rate (100) is invalid",
        ),
        (
            json!({"msg_timeout": 999}),
            "E_BAD_BODY IDENTIFY msg timeout (999) is invalid",
        ),
        (
            json!({"msg_timeout": 900001}),
            "E_BAD_BODY IDENTIFY msg timeout (900001) is invalid",
        ),
        (
            json!({"heartbeat_interval": "1000"}),
            "E_BAD_BODY IDENTIFY failed to decode JSON body",
        ),
        (
            json!({"feature_negotiation": true, "snappy": true, "deflate": true}),
            "E_IDENTIFY_FAILED cannot enable both deflate and snappy compression",
        ),
    ];
    for (j, want) in json_cases {
        let mut c = node.connect().await;
        let body = serde_json::to_vec(&j).unwrap();
        c.cmd(|b| client::identify(b, &body)).await;
        c.expect_fatal(want).await;
    }
}

#[tokio::test]
async fn identify_only_before_sub() {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    c.identify(json!({})).await;
    c.identify(json!({})).await; // a repeat before SUB is accepted
    c.subscribe("t", "c").await;
    c.cmd(|b| client::identify(b, b"{}")).await;
    c.expect_fatal("E_INVALID cannot IDENTIFY in current state")
        .await;
}

#[tokio::test]
async fn compression_negotiation_honours_flags() {
    let node = TestNode::start_with(|o| {
        o.snappy = false;
        o.max_deflate_level = 3;
    })
    .await;
    let mut c = node.connect().await;
    let f = c
        .identify(json!({"feature_negotiation": true, "snappy": true}))
        .await;
    let v: serde_json::Value = serde_json::from_slice(&f.data).unwrap();
    assert_eq!(v["snappy"], false);
    assert_eq!(v["max_deflate_level"], 3);
    assert_eq!(v["deflate_level"], 3);
    c.expect_alive().await; // no upgrade happened: plain frames still work
}

async fn compressed_round_trip(snappy: bool) {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    let req = if snappy {
        json!({"feature_negotiation": true, "snappy": true})
    } else {
        json!({"feature_negotiation": true, "deflate": true, "deflate_level": 1})
    };
    let f = c.identify(req).await;
    let v: serde_json::Value = serde_json::from_slice(&f.data).unwrap();
    if snappy {
        assert_eq!(v["snappy"], true);
        c.use_snappy();
    } else {
        assert_eq!(v["deflate"], true);
        assert_eq!(v["deflate_level"], 1);
        c.use_deflate(1);
    }
    c.expect_response("OK").await; // the OK after the upgrade arrives compressed
    c.subscribe("z", "c").await;
    let bodies: Vec<Vec<u8>> = (0..300).map(|i| body(i, 200)).collect();
    c.cmd(|b| client::mpub(b, "z", &bodies)).await;
    c.expect_response("OK").await;
    c.rdy(300).await;
    for want in &bodies {
        let m = c.expect_message().await;
        assert_eq!(&m.body[..], &want[..]);
        c.fin(&m.id).await;
    }
}

#[tokio::test]
async fn snappy_stream_both_directions() {
    compressed_round_trip(true).await;
}

#[tokio::test]
async fn deflate_stream_both_directions() {
    compressed_round_trip(false).await;
}

#[tokio::test]
async fn auth_is_disabled_without_auth_servers() {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    c.send(&[&b"AUTH\n"[..], &4i32.to_be_bytes(), b"abcd"].concat())
        .await;
    c.expect_fatal("E_AUTH_DISABLED AUTH disabled").await;
    let mut c = node.connect().await;
    c.send(b"AUTH x\n").await;
    c.expect_fatal("E_INVALID AUTH invalid number of parameters")
        .await;
    let mut c = node.connect().await;
    c.subscribe("t", "c").await;
    c.send(b"AUTH\n").await;
    c.expect_fatal("E_INVALID cannot AUTH in current state")
        .await;
}

#[tokio::test]
async fn sub_errors() {
    let node = TestNode::start_with(|o| o.max_channel_consumers = 1).await;
    let cases: Vec<(&[u8], &str)> = vec![
        (
            b"SUB t\n",
            "E_INVALID SUB insufficient number of parameters",
        ),
        (
            b"SUB bad/topic c\n",
            "E_BAD_TOPIC SUB topic name \"bad/topic\" is not valid",
        ),
        (
            b"SUB t bad:chan\n",
            "E_BAD_CHANNEL SUB channel name \"bad:chan\" is not valid",
        ),
        (
            b"SUB t  \n",
            "E_BAD_CHANNEL SUB channel name \"\" is not valid",
        ),
    ];
    for (line, want) in cases {
        let mut c = node.connect().await;
        c.send(line).await;
        c.expect_fatal(want).await;
    }
    let mut c = node.connect().await;
    c.identify(json!({"heartbeat_interval": -1})).await;
    c.send(b"SUB t c\n").await;
    c.expect_fatal("E_INVALID cannot SUB with heartbeats disabled")
        .await;

    let mut first = node.connect().await;
    first.subscribe("t", "c").await;
    first.send(b"SUB t c\n").await;
    first
        .expect_fatal("E_INVALID cannot SUB in current state")
        .await;
    let mut a = node.connect().await;
    a.subscribe("t", "c").await;
    let mut b = node.connect().await;
    b.send(b"SUB t c\n").await;
    b.expect_fatal("E_SUB_FAILED SUB failed consumers for t:c exceeds limit of 1")
        .await;
}

#[tokio::test]
async fn pub_errors() {
    let node = TestNode::start_with(|o| o.max_msg_size = 10).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"PUB\n".to_vec(),
            "E_INVALID PUB insufficient number of parameters",
        ),
        (
            b"PUB t!\n".to_vec(),
            "E_BAD_TOPIC PUB topic name \"t!\" is not valid",
        ),
        (
            [&b"PUB t\n"[..], &0i32.to_be_bytes()].concat(),
            "E_BAD_MESSAGE PUB invalid message body size 0",
        ),
        (
            [&b"PUB t\n"[..], &(-5i32).to_be_bytes()].concat(),
            "E_BAD_MESSAGE PUB invalid message body size -5",
        ),
        (
            [&b"PUB t\n"[..], &11i32.to_be_bytes()].concat(),
            "E_BAD_MESSAGE PUB message too big 11 > 10",
        ),
    ];
    for (payload, want) in cases {
        let mut c = node.connect().await;
        c.send(&payload).await;
        c.expect_fatal(want).await;
    }
    let mut c = node.connect().await;
    c.publish("t", &[b'x'; 10]).await;
}

fn mpub_raw(topic: &str, msgs: &[&[u8]]) -> Vec<u8> {
    let mut b = BytesMut::new();
    client::mpub(&mut b, topic, msgs);
    b.to_vec()
}

#[tokio::test]
async fn mpub_errors_and_all_or_nothing() {
    let node = TestNode::start_with(|o| {
        o.max_msg_size = 10;
        o.max_body_size = 100;
    })
    .await;
    let mut zero_in_middle = mpub_raw("m", &[b"ok", b"ok", b"ok"]);
    // The second message's size field: after "MPUB m\n" (7) + body size (4) + count (4) + 4 + 2.
    let at = 7 + 4 + 4 + 4 + 2;
    zero_in_middle[at..at + 4].copy_from_slice(&0i32.to_be_bytes());
    let mut bad_count = mpub_raw("m", &[b"ok"]);
    bad_count[11..15].copy_from_slice(&0i32.to_be_bytes());
    let mut many = mpub_raw("m", &[b"ok"]);
    many[11..15].copy_from_slice(&20i32.to_be_bytes());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"MPUB\n".to_vec(),
            "E_INVALID MPUB insufficient number of parameters",
        ),
        (
            b"MPUB a*b\n".to_vec(),
            "E_BAD_TOPIC E_BAD_TOPIC MPUB topic name \"a*b\" is not valid",
        ),
        (
            [&b"MPUB m\n"[..], &0i32.to_be_bytes()].concat(),
            "E_BAD_BODY MPUB invalid body size 0",
        ),
        (
            [&b"MPUB m\n"[..], &101i32.to_be_bytes()].concat(),
            "E_BAD_BODY MPUB body too big 101 > 100",
        ),
        (bad_count, "E_BAD_BODY MPUB invalid message count 0"),
        (many, "E_BAD_BODY MPUB invalid message count 20"),
        (
            zero_in_middle,
            "E_BAD_MESSAGE MPUB invalid message(1) body size 0",
        ),
        (
            mpub_raw("m", &[b"ok", &[b'x'; 11]]),
            "E_BAD_MESSAGE MPUB message too big 11 > 10",
        ),
    ];
    for (payload, want) in cases {
        let mut c = node.connect().await;
        c.send(&payload).await;
        c.expect_fatal(want).await;
    }
    // Nothing from the failed batches reached the topic.
    let published = node.nsqd().topic("m").map_or(0, |t| {
        t.message_count.load(std::sync::atomic::Ordering::Relaxed)
    });
    assert_eq!(published, 0);
    let mut sub = consumer(&node, "m", "c", 10).await;
    sub.expect_silence(Duration::from_millis(200)).await;
    let mut p = node.connect().await;
    p.send(&mpub_raw("m", &[b"a", b"b"])).await;
    p.expect_response("OK").await;
    assert_eq!(&sub.expect_message().await.body[..], b"a");
    assert_eq!(&sub.expect_message().await.body[..], b"b");
}

#[tokio::test]
async fn dpub_delays_and_errors() {
    let node = TestNode::start_with(|o| o.max_req_timeout = Duration::from_secs(10)).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"DPUB t\n".to_vec(),
            "E_INVALID DPUB insufficient number of parameters",
        ),
        (
            b"DPUB t# 10\n".to_vec(),
            "E_BAD_TOPIC DPUB topic name \"t#\" is not valid",
        ),
        (
            b"DPUB t x\n".to_vec(),
            "E_INVALID DPUB could not parse timeout x",
        ),
        (
            b"DPUB t 10001\n".to_vec(),
            "E_INVALID DPUB timeout 10001 out of range 0-10000",
        ),
        (
            [&b"DPUB t 10\n"[..], &0i32.to_be_bytes()].concat(),
            "E_BAD_MESSAGE DPUB invalid message body size 0",
        ),
    ];
    for (payload, want) in cases {
        let mut c = node.connect().await;
        c.send(&payload).await;
        c.expect_fatal(want).await;
    }
    let mut sub = consumer(&node, "d", "c", 5).await;
    let mut p = node.connect().await;
    let sent = Instant::now();
    p.cmd(|b| client::dpub(b, "d", 400, b"later")).await;
    p.expect_response("OK").await;
    p.publish("d", b"now").await;
    assert_eq!(&sub.expect_message().await.body[..], b"now");
    let m = sub.expect_message().await;
    assert_eq!(&m.body[..], b"later");
    assert!(
        sent.elapsed() >= Duration::from_millis(400),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(m.attempts, 1);
}

#[tokio::test]
async fn rdy_errors_and_window_semantics() {
    let node = TestNode::start_with(|o| o.max_rdy_count = 50).await;
    let mut c = node.connect().await;
    c.send(b"RDY 1\n").await;
    c.expect_fatal("E_INVALID cannot RDY in current state")
        .await;
    for (line, want) in [
        (&b"RDY -1\n"[..], "E_INVALID RDY could not parse count -1"),
        (b"RDY 1x\n", "E_INVALID RDY could not parse count 1x"),
        (b"RDY 51\n", "E_INVALID RDY count 51 out of range 0-50"),
    ] {
        let mut c = node.connect().await;
        c.subscribe("w", "c").await;
        c.send(line).await;
        c.expect_fatal(want).await;
    }
    let mut p = node.connect().await;
    for i in 0..4 {
        p.publish("w", format!("m{i}").as_bytes()).await;
    }
    let mut c = node.connect().await;
    c.subscribe("w", "c").await;
    c.expect_silence(Duration::from_millis(150)).await; // RDY 0 after SUB
    c.send(b"RDY\n").await; // omitted count means 1
    let first = c.expect_message().await;
    c.expect_silence(Duration::from_millis(150)).await;
    c.rdy(2).await;
    let second = c.expect_message().await;
    c.expect_silence(Duration::from_millis(150)).await; // window full: 2 in flight
    c.fin(&first.id).await; // frees a slot without a new RDY
    let third = c.expect_message().await;
    c.rdy(0).await;
    c.fin(&second.id).await;
    c.fin(&third.id).await;
    c.expect_silence(Duration::from_millis(150)).await;
}

#[tokio::test]
async fn fin_req_touch_state_and_param_errors() {
    let node = TestNode::start().await;
    for cmd in ["FIN", "REQ", "TOUCH"] {
        let mut c = node.connect().await;
        c.send(format!("{cmd} 0123456789abcdef 0\n").as_bytes())
            .await;
        c.expect_fatal(&format!("E_INVALID cannot {cmd} in current state"))
            .await;
    }
    for (line, want) in [
        (&b"FIN\n"[..], "E_INVALID FIN insufficient number of params"),
        (
            b"REQ 0123456789abcdef\n",
            "E_INVALID REQ insufficient number of params",
        ),
        (b"TOUCH\n", "E_INVALID TOUCH insufficient number of params"),
        (b"FIN short\n", "E_INVALID invalid message ID"),
        (b"REQ 0123456789abcdef0 1\n", "E_INVALID invalid message ID"),
        (b"TOUCH x\n", "E_INVALID invalid message ID"),
        (
            b"REQ 0123456789abcdef x\n",
            "E_INVALID REQ could not parse timeout x",
        ),
        (
            b"CLS x\nCLS\nCLS\n",
            "E_INVALID cannot CLS in current state",
        ),
    ] {
        let mut c = node.connect().await;
        c.subscribe("f", "c").await;
        c.send(line).await;
        if line.starts_with(b"CLS") {
            c.expect_response("CLOSE_WAIT").await;
        }
        c.expect_fatal(want).await;
    }
}

#[tokio::test]
async fn fin_req_touch_failures_keep_the_connection() {
    let node = TestNode::start().await;
    let mut p = node.connect().await;
    p.publish("nf", b"one").await;
    let mut owner = consumer(&node, "nf", "c", 1).await;
    let m = owner.expect_message().await;
    let mut other = consumer(&node, "nf", "c", 0).await;
    let id = String::from_utf8(m.id.0.to_vec()).unwrap();
    other.fin(&m.id).await;
    other
        .expect_error(&format!(
            "E_FIN_FAILED FIN {id} failed client does not own message"
        ))
        .await;
    other.cmd(|b| client::req(b, &m.id, 0)).await;
    other
        .expect_error(&format!(
            "E_REQ_FAILED REQ {id} failed client does not own message"
        ))
        .await;
    other.cmd(|b| client::touch(b, &m.id)).await;
    other
        .expect_error(&format!(
            "E_TOUCH_FAILED TOUCH {id} failed client does not own message"
        ))
        .await;
    let ghost = MessageId::from_u64(7);
    owner.fin(&ghost).await;
    owner
        .expect_error("E_FIN_FAILED FIN 0000000000000007 failed ID not in flight")
        .await;
    owner.cmd(|b| client::req(b, &ghost, 0)).await;
    owner
        .expect_error("E_REQ_FAILED REQ 0000000000000007 failed ID not in flight")
        .await;
    owner.cmd(|b| client::touch(b, &ghost)).await;
    owner
        .expect_error("E_TOUCH_FAILED TOUCH 0000000000000007 failed ID not in flight")
        .await;
    owner.expect_alive().await;
    other.expect_alive().await;
    owner.fin(&m.id).await;
    owner.fin(&m.id).await; // a second FIN of the same ID is not in flight any more
    owner
        .expect_error(&format!("E_FIN_FAILED FIN {id} failed ID not in flight"))
        .await;
}

#[tokio::test]
async fn req_redelivers_with_attempts_and_delay() {
    let node = TestNode::start_with(|o| o.max_req_timeout = Duration::from_millis(300)).await;
    let mut p = node.connect().await;
    p.publish("rq", b"again").await;
    let mut c = consumer(&node, "rq", "c", 1).await;
    let m = c.expect_message().await;
    assert_eq!(m.attempts, 1);
    c.cmd(|b| client::req(b, &m.id, 0)).await;
    let m2 = c.expect_message().await;
    assert_eq!(
        (m2.id, m2.attempts, m2.timestamp_ns),
        (m.id, 2, m.timestamp_ns)
    );
    let t = Instant::now();
    // 60 s is clamped to --max-req-timeout (300 ms), not rejected.
    c.cmd(|b| client::req(b, &m.id, 60_000)).await;
    let m3 = c.expect_message().await;
    let waited = t.elapsed();
    assert_eq!(m3.attempts, 3);
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let ch = node.nsqd().topic("rq").unwrap().channel("c").unwrap();
    assert_eq!(
        ch.counters
            .requeue_count
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn msg_timeout_redelivers_and_touch_extends() {
    let node = TestNode::start().await;
    let mut p = node.connect().await;
    p.publish("to", b"slow").await;
    p.publish("to", b"touched").await;
    let mut c = node.connect().await;
    c.identify(json!({"msg_timeout": 1000})).await;
    c.subscribe("to", "c").await;
    c.rdy(2).await;
    let a = c.expect_message().await;
    let b = c.expect_message().await;
    let (slow, touched) = if &a.body[..] == b"slow" {
        (a, b)
    } else {
        (b, a)
    };
    let start = Instant::now();
    // Keep `touched` alive past its 1 s timeout; let `slow` time out.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.cmd(|bb| client::touch(bb, &touched.id)).await;
    }
    let again = c.expect_message().await;
    assert_eq!((&again.body[..], again.attempts), (&b"slow"[..], 2));
    assert!(start.elapsed() >= Duration::from_millis(900));
    c.fin(&again.id).await;
    c.fin(&touched.id).await;
    c.expect_alive().await; // FIN of the touched message succeeded: no error came back
    let ch = node.nsqd().topic("to").unwrap().channel("c").unwrap();
    assert_eq!(
        ch.counters
            .timeout_count
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let _ = slow;
}

#[tokio::test]
async fn touch_never_exceeds_max_msg_timeout() {
    let node = TestNode::start_with(|o| o.max_msg_timeout = Duration::from_millis(1500)).await;
    let mut p = node.connect().await;
    p.publish("tm", b"x").await;
    let mut c = node.connect().await;
    c.identify(json!({"msg_timeout": 1000})).await;
    c.subscribe("tm", "c").await;
    c.rdy(1).await;
    let m = c.expect_message().await;
    let start = Instant::now();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        c.cmd(|b| client::touch(b, &m.id)).await;
        if start.elapsed() > Duration::from_millis(1300) {
            break;
        }
    }
    let again = c.expect_message().await;
    assert_eq!(again.attempts, 2);
    let t = start.elapsed();
    assert!(t < Duration::from_millis(2300), "redelivered after {t:?}");
}

#[tokio::test]
async fn cls_then_fin_still_accepted() {
    let node = TestNode::start().await;
    let mut p = node.connect().await;
    p.publish("cl", b"x").await;
    p.publish("cl", b"y").await;
    let mut c = consumer(&node, "cl", "c", 1).await;
    let m = c.expect_message().await;
    c.send(b"CLS\n").await;
    c.expect_response("CLOSE_WAIT").await;
    c.fin(&m.id).await;
    c.rdy(5).await; // ignored while closing
    c.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn heartbeats_and_read_deadline() {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    c.identify(json!({"heartbeat_interval": 1000})).await;
    let start = Instant::now();
    let f = c.frame().await.unwrap();
    assert_eq!(&f.data[..], b"_heartbeat_");
    assert!(start.elapsed() < Duration::from_millis(1500));
    // Answering keeps it alive; silence for two intervals closes it.
    c.send(b"NOP\n").await;
    let closed_after = loop {
        match c.frame_within(Duration::from_secs(4)).await {
            Ok(Some(f)) => assert_eq!(&f.data[..], b"_heartbeat_"),
            Ok(None) => break start.elapsed(),
            Err(()) => panic!("not closed after missing heartbeats"),
        }
    };
    assert!(
        closed_after >= Duration::from_millis(1900),
        "{closed_after:?}"
    );
}

#[tokio::test]
async fn output_buffer_timeout_flushes_buffered_messages() {
    let node = TestNode::start().await;
    let mut c = node.connect().await;
    c.identify(json!({"output_buffer_timeout": 300, "output_buffer_size": 65536}))
        .await;
    c.subscribe("ob", "c").await;
    c.rdy(100).await;
    let mut p = node.connect().await;
    let sent = Instant::now();
    p.publish("ob", b"buffered").await;
    let m = c.expect_message().await;
    let waited = sent.elapsed();
    assert_eq!(&m.body[..], b"buffered");
    assert!(
        waited >= Duration::from_millis(250),
        "flushed early: {waited:?}"
    );
    // With RDY 1 the client stops being ready after one message: flushed at once.
    let mut c2 = node.connect().await;
    c2.identify(json!({"output_buffer_timeout": 5000})).await;
    c2.subscribe("ob", "c2").await;
    c2.rdy(1).await;
    let sent = Instant::now();
    p.publish("ob", b"now").await;
    c2.expect_message().await;
    assert!(sent.elapsed() < Duration::from_millis(1000));
}

#[tokio::test]
async fn fan_out_to_every_channel_and_held_until_one_exists() {
    let node = TestNode::start().await;
    let mut p = node.connect().await;
    for i in 0..50 {
        p.publish("fan", &body(i, 20)).await;
    }
    let mut a = consumer(&node, "fan", "a", 100).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        let m = a.expect_message().await;
        assert_eq!(&m.body[..], &body(i, 20)[..], "backlog order");
        ids.push(m.id);
    }
    let mut b = consumer(&node, "fan", "b", 100).await;
    b.expect_silence(Duration::from_millis(100)).await; // b joined after the backlog went to a
    p.publish("fan", b"both").await;
    assert_eq!(&a.expect_message().await.body[..], b"both");
    let mb = b.expect_message().await;
    assert_eq!(&mb.body[..], b"both");
    let topic = node.nsqd().topic("fan").unwrap();
    assert_eq!(topic.channels().len(), 2);
}

#[tokio::test]
async fn consumers_of_one_channel_share_without_duplicates() {
    let node = TestNode::start().await;
    let mut c1 = consumer(&node, "share", "c", 1000).await;
    let mut c2 = consumer(&node, "share", "c", 1000).await;
    let mut p = node.connect().await;
    let bodies: Vec<Vec<u8>> = (0..400).map(|i| body(i, 10)).collect();
    for chunk in bodies.chunks(100) {
        p.cmd(|b| client::mpub(b, "share", chunk)).await;
        p.expect_response("OK").await;
    }
    let mut seen = std::collections::HashSet::new();
    let mut counts = [0usize; 2];
    while seen.len() < 400 {
        for (i, c) in [&mut c1, &mut c2].into_iter().enumerate() {
            if let Ok(Some(f)) = c.frame_within(Duration::from_millis(50)).await {
                if f.frame_type == FrameType::Message {
                    let m = nsq_protocol::message::decode_message(&f.data).unwrap();
                    assert!(seen.insert(m.body.to_vec()), "duplicate delivery");
                    counts[i] += 1;
                }
            }
        }
    }
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "both consumers served: {counts:?}"
    );
}

#[tokio::test]
async fn paused_channel_holds_messages() {
    let node = TestNode::start().await;
    let mut c = consumer(&node, "pz", "c", 10).await;
    let ch = node.nsqd().topic("pz").unwrap().channel("c").unwrap();
    ch.set_paused(true);
    let mut p = node.connect().await;
    p.publish("pz", b"held").await;
    c.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(ch.depth(), 1);
    ch.set_paused(false);
    assert_eq!(&c.expect_message().await.body[..], b"held");
    let topic = node.nsqd().topic("pz").unwrap();
    topic.set_paused(true);
    p.publish("pz", b"topic-held").await;
    c.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(topic.depth(), 1);
    topic.set_paused(false);
    assert_eq!(&c.expect_message().await.body[..], b"topic-held");
}

#[tokio::test]
async fn ephemeral_channel_and_topic_go_with_their_last_client() {
    let node = TestNode::start().await;
    let c = consumer(&node, "eph#ephemeral", "tail#ephemeral", 1).await;
    assert!(node.nsqd().topic("eph#ephemeral").is_some());
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(3);
    while node.nsqd().topic("eph#ephemeral").is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        node.nsqd().topic("eph#ephemeral").is_none(),
        "ephemeral topic deleted"
    );
    // A normal channel stays when its consumer leaves.
    let c = consumer(&node, "keep", "c", 1).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(node.nsqd().topic("keep").unwrap().channel("c").is_some());
}

#[tokio::test]
async fn ephemeral_overflow_is_discarded() {
    let node = TestNode::start_with(|o| o.mem_queue_size = 5).await;
    let mut c = node.connect().await;
    c.subscribe("ov", "e#ephemeral").await;
    let mut p = node.connect().await;
    let bodies: Vec<Vec<u8>> = (0..20).map(|i| body(i, 5)).collect();
    p.cmd(|b| client::mpub(b, "ov", &bodies)).await;
    p.expect_response("OK").await;
    let ch = node
        .nsqd()
        .topic("ov")
        .unwrap()
        .channel("e#ephemeral")
        .unwrap();
    assert_eq!((ch.depth(), ch.backend_depth()), (5, 0));
}

#[tokio::test]
async fn message_ids_are_lowercase_hex_and_unique() {
    let node = TestNode::start().await;
    let mut p = node.connect().await;
    let bodies: Vec<Vec<u8>> = (0..500).map(|i| body(i, 5)).collect();
    p.cmd(|b| client::mpub(b, "ids", &bodies)).await;
    p.expect_response("OK").await;
    let mut c = consumer(&node, "ids", "c", 500).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..500 {
        let m = c.expect_message().await;
        assert!(m
            .id
            .0
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)));
        assert!(seen.insert(m.id));
        assert!(m.timestamp_ns > 1_600_000_000_000_000_000);
    }
}

#[tokio::test]
async fn hostile_input_never_disturbs_other_clients() {
    let node = TestNode::start().await;
    let mut good = consumer(&node, "steady", "c", 100).await;
    let addr = node.addr;
    let garbage: Vec<Vec<u8>> = vec![
        [&[0xffu8; 64][..], b"\n"].concat(),
        b"\x00\x00\x00\x10garbage\n".to_vec(),
        [&b"PUB steady\n"[..], &i32::MAX.to_be_bytes()].concat(),
        [&b"MPUB steady\n"[..], &i32::MAX.to_be_bytes()].concat(),
        [&b"IDENTIFY\n"[..], &(-1i32).to_be_bytes()].concat(),
        b"SUB \xff\xfe c\n".to_vec(),
        b"\n".to_vec(),
    ];
    for g in &garbage {
        let mut c = Conn::connect(addr).await;
        c.send(g).await;
        let f = c.frame().await.expect("an error frame");
        assert_eq!(
            f.frame_type,
            FrameType::Error,
            "{:?}",
            String::from_utf8_lossy(g)
        );
        c.expect_closed().await;
    }
    // 1,000 abrupt disconnects in the middle of a frame.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000usize {
        tasks.spawn(async move {
            let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                return;
            };
            let mut b = BytesMut::new();
            b.extend_from_slice(b"  V2");
            client::publish(&mut b, "steady", &body(i, 100));
            let cut = 4 + (i % (b.len() - 4));
            let _ = s.write_all(&b[..cut]).await;
            // Dropping the stream resets or closes it mid-frame.
        });
        if tasks.len() >= 100 {
            tasks.join_next().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    let mut p = node.connect().await;
    p.publish("steady", b"still here").await;
    let m = good.expect_message().await;
    assert_eq!(&m.body[..], b"still here");
    good.expect_alive().await;
}
