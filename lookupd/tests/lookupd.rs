//! nsqlookupd end to end: a server bound to 127.0.0.1:0, raw V1 bytes on the TCP side,
//! raw HTTP/1.1 on the other, and the built binary for flags and signals.

mod support;

use std::time::{Duration, Instant};

use nsqlookupd::{Invocation, Server};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::{get, http, post, Peer, IO_TIMEOUT};

/// [`support::start`] with a fixed broadcast address, then `extra`.
async fn start(extra: &[&str]) -> Server {
    let mut args = vec!["--broadcast-address", "lookupd-test"];
    args.extend_from_slice(extra);
    support::start(&args).await
}

/// A connected, identified peer.
async fn nsqd(server: &Server, http_port: u16) -> Peer {
    let mut peer = Peer::connect(server).await;
    peer.identify(http_port).await;
    peer
}

// ---------------------------------------------------------------- HTTP helpers

async fn lookup_producers(server: &Server, topic: &str) -> Vec<String> {
    let body = get(server, &format!("/lookup?topic={topic}"))
        .await
        .assert_v1_json();
    body["producers"]
        .as_array()
        .expect("producers array")
        .iter()
        .map(|p| p["remote_address"].as_str().expect("address").to_string())
        .collect()
}

async fn topics(server: &Server) -> Value {
    get(server, "/topics").await.assert_v1_json()["topics"].clone()
}

async fn channels(server: &Server, topic: &str) -> Value {
    get(server, &format!("/channels?topic={topic}"))
        .await
        .assert_v1_json()["channels"]
        .clone()
}

/// The peer ids registered under a `/debug` key.
async fn debug_ids(server: &Server, key: &str) -> Vec<String> {
    let debug = get(server, "/debug").await.assert_v1_json();
    debug[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["id"].as_str().expect("id").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `check` every 10 ms until it holds; the elapsed time, or a panic after `limit`.
async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------- TCP protocol

#[tokio::test]
async fn bad_magic_gets_size_prefixed_error_and_close() {
    let server = start(&[]).await;
    let mut peer = Peer::connect_raw(&server).await;
    peer.send(b"  V2").await;
    let reply = peer.reply().await;
    peer.expect_fatal(reply, "E_BAD_PROTOCOL").await;
}

#[tokio::test]
async fn bad_magic_reply_has_no_frame_type() {
    let server = start(&[]).await;
    let mut peer = Peer::connect_raw(&server).await;
    peer.send(b"XXXX").await;
    let mut raw = Vec::new();
    tokio::time::timeout(IO_TIMEOUT, peer.stream.read_to_end(&mut raw))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(raw, b"\0\0\0\x0eE_BAD_PROTOCOL");
}

#[tokio::test]
async fn ping_is_ok_before_identify() {
    let server = start(&[]).await;
    let mut peer = Peer::connect(&server).await;
    assert_eq!(peer.cmd("PING").await, "OK");
    assert_eq!(peer.cmd("PING").await, "OK");
}

#[tokio::test]
async fn identify_replies_with_lookupd_identity_and_registers_client() {
    let server = start(&[]).await;
    let mut peer = Peer::connect(&server).await;
    let body = br#"{"broadcast_address":"nsqd-0","hostname":"h","http_port":4151,"tcp_port":4150,"version":"1.3.0"}"#;
    let reply = peer.identify_raw(body).await;
    let expected = format!(
        r#"{{"broadcast_address":"lookupd-test","hostname":"{}","http_port":{},"tcp_port":{},"version":"1.3.0"}}"#,
        nsqlookupd::options::os_hostname(),
        server.http_addr().port(),
        server.tcp_addr().port()
    );
    assert_eq!(reply, expected);
    assert_eq!(debug_ids(&server, "client::").await, vec![peer.id()]);
    // The connection stays usable.
    assert_eq!(peer.cmd("PING").await, "OK");
}

#[tokio::test]
async fn identify_hostname_is_optional_and_remote_address_is_ours() {
    let server = start(&[]).await;
    let mut peer = Peer::connect(&server).await;
    let body = br#"{"broadcast_address":"b","http_port":1,"tcp_port":2,"version":"v","remote_address":"1.2.3.4:5"}"#;
    let reply = peer.identify_raw(body).await;
    assert!(reply.starts_with('{'), "{reply}");
    let nodes = get(&server, "/nodes").await.assert_v1_json();
    assert_eq!(nodes["producers"][0]["remote_address"], json!(peer.id()));
    assert_eq!(nodes["producers"][0]["hostname"], json!(""));
}

#[tokio::test]
async fn identify_missing_fields() {
    let server = start(&[]).await;
    let full = json!({"broadcast_address":"b","http_port":1,"tcp_port":2,"version":"v"});
    for field in ["broadcast_address", "http_port", "tcp_port", "version"] {
        let mut body = full.clone();
        body.as_object_mut().expect("object").remove(field);
        let mut peer = Peer::connect(&server).await;
        let reply = peer.identify_raw(body.to_string().as_bytes()).await;
        peer.expect_fatal(reply, "E_BAD_BODY IDENTIFY missing fields")
            .await;
    }
    // Zero ports and empty strings count as missing too.
    let mut peer = Peer::connect(&server).await;
    let reply = peer
        .identify_raw(br#"{"broadcast_address":"b","http_port":0,"tcp_port":2,"version":"v"}"#)
        .await;
    peer.expect_fatal(reply, "E_BAD_BODY IDENTIFY missing fields")
        .await;
    assert!(debug_ids(&server, "client::").await.is_empty());
}

#[tokio::test]
async fn identify_again_is_fatal() {
    let server = start(&[]).await;
    let mut peer = nsqd(&server, 4151).await;
    let reply = peer.cmd("IDENTIFY").await;
    peer.expect_fatal(reply, "E_INVALID cannot IDENTIFY again")
        .await;
}

#[tokio::test]
async fn identify_bad_json_is_fatal() {
    let server = start(&[]).await;
    for body in [&b"{not json"[..], b"[]", br#"{"tcp_port":"4150"}"#, b""] {
        let mut peer = Peer::connect(&server).await;
        let reply = peer.identify_raw(body).await;
        peer.expect_fatal(reply, "E_BAD_BODY IDENTIFY failed to decode JSON body")
            .await;
    }
}

#[tokio::test]
async fn identify_cut_short_reports_what_was_missing() {
    let server = start(&[]).await;

    let mut peer = Peer::connect(&server).await;
    peer.send(b"IDENTIFY\n\0\0").await;
    peer.stream.shutdown().await.expect("half close");
    let reply = peer.reply().await;
    peer.expect_fatal(reply, "E_BAD_BODY IDENTIFY failed to read body size")
        .await;

    let mut peer = Peer::connect(&server).await;
    peer.send(b"IDENTIFY\n\0\0\0\x10{\"a\"").await;
    peer.stream.shutdown().await.expect("half close");
    let reply = peer.reply().await;
    peer.expect_fatal(reply, "E_BAD_BODY IDENTIFY failed to read body")
        .await;
}

#[tokio::test]
async fn identify_negative_body_size_is_fatal_not_a_crash() {
    let server = start(&[]).await;
    let mut peer = Peer::connect(&server).await;
    peer.send(b"IDENTIFY\n\xff\xff\xff\xff").await;
    let reply = peer.reply().await;
    peer.expect_fatal(reply, "E_BAD_BODY IDENTIFY failed to read body")
        .await;
    // The daemon is still serving.
    let mut other = Peer::connect(&server).await;
    assert_eq!(other.cmd("PING").await, "OK");
}

#[tokio::test]
async fn register_topic_and_channel() {
    let server = start(&[]).await;
    let mut peer = nsqd(&server, 4151).await;
    // Pipelined: replies come back in order.
    peer.send(b"REGISTER t c\nREGISTER t2\nPING\n").await;
    for _ in 0..3 {
        assert_eq!(peer.reply().await, "OK");
    }
    assert_eq!(topics(&server).await, json!(["t", "t2"]));
    assert_eq!(channels(&server, "t").await, json!(["c"]));
    assert_eq!(channels(&server, "t2").await, json!([]));
    assert_eq!(lookup_producers(&server, "t").await, vec![peer.id()]);
    assert_eq!(lookup_producers(&server, "t2").await, vec![peer.id()]);
    assert_eq!(debug_ids(&server, "channel:t:c").await, vec![peer.id()]);
    assert_eq!(debug_ids(&server, "topic:t:").await, vec![peer.id()]);
    // Registering twice is harmless.
    assert_eq!(peer.cmd("REGISTER t c").await, "OK");
    assert_eq!(debug_ids(&server, "topic:t:").await, vec![peer.id()]);
}

#[tokio::test]
async fn register_requires_identify() {
    let server = start(&[]).await;
    for cmd in ["REGISTER t", "UNREGISTER t c"] {
        let mut peer = Peer::connect(&server).await;
        let reply = peer.cmd(cmd).await;
        peer.expect_fatal(reply, "E_INVALID client must IDENTIFY")
            .await;
    }
}

#[tokio::test]
async fn register_insufficient_params() {
    let server = start(&[]).await;
    for (cmd, expected) in [
        (
            "REGISTER",
            "E_INVALID REGISTER insufficient number of params",
        ),
        (
            "REGISTER ",
            "E_INVALID REGISTER insufficient number of params",
        ),
        (
            "UNREGISTER",
            "E_INVALID UNREGISTER insufficient number of params",
        ),
    ] {
        let mut peer = nsqd(&server, 4151).await;
        let reply = peer.cmd(cmd).await;
        peer.expect_fatal(reply, expected).await;
    }
}

#[tokio::test]
async fn register_bad_names() {
    let server = start(&[]).await;
    for (cmd, expected) in [
        (
            "REGISTER bad/topic",
            "E_BAD_TOPIC REGISTER topic name 'bad/topic' is not valid",
        ),
        (
            "REGISTER t bad:chan",
            "E_BAD_CHANNEL REGISTER channel name 'bad:chan' is not valid",
        ),
        (
            "UNREGISTER #ephemeral",
            "E_BAD_TOPIC UNREGISTER topic name '#ephemeral' is not valid",
        ),
        (
            "UNREGISTER t c#other",
            "E_BAD_CHANNEL UNREGISTER channel name 'c#other' is not valid",
        ),
        (
            "REGISTER  t",
            "E_BAD_TOPIC REGISTER topic name '' is not valid",
        ),
    ] {
        let mut peer = nsqd(&server, 4151).await;
        let reply = peer.cmd(cmd).await;
        peer.expect_fatal(reply, expected).await;
    }
    assert_eq!(topics(&server).await, json!([]));
}

#[tokio::test]
async fn unknown_command_is_fatal() {
    let server = start(&[]).await;
    let mut peer = Peer::connect(&server).await;
    let reply = peer.cmd("FOO bar").await;
    peer.expect_fatal(reply, "E_INVALID invalid command FOO")
        .await;

    // Commands are case-sensitive.
    let mut peer = Peer::connect(&server).await;
    let reply = peer.cmd("ping").await;
    peer.expect_fatal(reply, "E_INVALID invalid command ping")
        .await;
}

#[tokio::test]
async fn overlong_line_drops_the_connection_silently() {
    let server = start(&[]).await;
    let mut peer = Peer::connect(&server).await;
    peer.send(&vec![b'A'; 20 * 1024]).await;
    peer.expect_closed().await;
}

#[tokio::test]
async fn unregister_channel_keeps_a_durable_registration() {
    let server = start(&[]).await;
    let mut peer = nsqd(&server, 4151).await;
    assert_eq!(peer.cmd("REGISTER t c").await, "OK");
    assert_eq!(peer.cmd("UNREGISTER t c").await, "OK");
    assert_eq!(channels(&server, "t").await, json!(["c"]));
    assert!(debug_ids(&server, "channel:t:c").await.is_empty());
    // The topic registration is untouched.
    assert_eq!(lookup_producers(&server, "t").await, vec![peer.id()]);
}

#[tokio::test]
async fn unregister_ephemeral_channel_removes_it_with_its_last_producer() {
    let server = start(&[]).await;
    let mut a = nsqd(&server, 4151).await;
    let mut b = nsqd(&server, 4152).await;
    assert_eq!(a.cmd("REGISTER t c#ephemeral").await, "OK");
    assert_eq!(b.cmd("REGISTER t c#ephemeral").await, "OK");
    assert_eq!(a.cmd("UNREGISTER t c#ephemeral").await, "OK");
    assert_eq!(channels(&server, "t").await, json!(["c#ephemeral"]));
    assert_eq!(b.cmd("UNREGISTER t c#ephemeral").await, "OK");
    assert_eq!(channels(&server, "t").await, json!([]));
    // A durable topic stays.
    assert_eq!(topics(&server).await, json!(["t"]));
}

#[tokio::test]
async fn unregister_topic_removes_producer_from_topic_and_its_channels() {
    let server = start(&[]).await;
    let mut peer = nsqd(&server, 4151).await;
    assert_eq!(peer.cmd("REGISTER t c").await, "OK");
    assert_eq!(peer.cmd("REGISTER t d#ephemeral").await, "OK");
    assert_eq!(peer.cmd("UNREGISTER t").await, "OK");
    assert!(debug_ids(&server, "channel:t:c").await.is_empty());
    assert!(debug_ids(&server, "channel:t:d#ephemeral").await.is_empty());
    assert!(debug_ids(&server, "topic:t:").await.is_empty());
    // Durable topic and all channel registrations (even ephemeral) remain, empty.
    assert_eq!(topics(&server).await, json!(["t"]));
    assert_eq!(channels(&server, "t").await, json!(["c", "d#ephemeral"]));
    assert_eq!(lookup_producers(&server, "t").await, Vec::<String>::new());
}

#[tokio::test]
async fn unregister_ephemeral_topic_removes_it_with_its_last_producer() {
    let server = start(&[]).await;
    let mut a = nsqd(&server, 4151).await;
    let mut b = nsqd(&server, 4152).await;
    assert_eq!(a.cmd("REGISTER e#ephemeral").await, "OK");
    assert_eq!(b.cmd("REGISTER e#ephemeral").await, "OK");
    assert_eq!(a.cmd("UNREGISTER e#ephemeral").await, "OK");
    assert_eq!(topics(&server).await, json!(["e#ephemeral"]));
    assert_eq!(
        lookup_producers(&server, "e%23ephemeral").await,
        vec![b.id()]
    );
    assert_eq!(b.cmd("UNREGISTER e#ephemeral").await, "OK");
    assert_eq!(topics(&server).await, json!([]));
    get(&server, "/lookup?topic=e%23ephemeral")
        .await
        .assert_v1_error(404, "TOPIC_NOT_FOUND");
}

#[tokio::test]
async fn disconnect_removes_producer_everywhere_but_keeps_registrations() {
    let server = start(&[]).await;
    let mut stays = nsqd(&server, 4152).await;
    assert_eq!(stays.cmd("REGISTER t").await, "OK");
    let mut leaves = nsqd(&server, 4151).await;
    assert_eq!(leaves.cmd("REGISTER t c").await, "OK");
    assert_eq!(leaves.cmd("REGISTER u").await, "OK");
    let leaving_id = leaves.id();
    drop(leaves);

    wait_until(IO_TIMEOUT, || async {
        !debug_ids(&server, "client::").await.contains(&leaving_id)
    })
    .await;
    assert_eq!(lookup_producers(&server, "t").await, vec![stays.id()]);
    assert_eq!(lookup_producers(&server, "u").await, Vec::<String>::new());
    assert!(debug_ids(&server, "channel:t:c").await.is_empty());
    assert_eq!(topics(&server).await, json!(["t", "u"]));
    assert_eq!(channels(&server, "t").await, json!(["c"]));
    let nodes = get(&server, "/nodes").await.assert_v1_json();
    assert_eq!(nodes["producers"].as_array().map(Vec::len), Some(1));
}

// ---------------------------------------------------------------- HTTP API

#[tokio::test]
async fn http_ping_is_plain_text() {
    let server = start(&[]).await;
    let resp = get(&server, "/ping").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, "OK");
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.header("x-nsq-content-type"), None);
}

#[tokio::test]
async fn http_info() {
    let server = start(&[]).await;
    let resp = get(&server, "/info").await;
    resp.assert_v1_json();
    assert_eq!(resp.body, r#"{"version":"1.3.0"}"#);
}

#[tokio::test]
async fn http_topics() {
    let server = start(&[]).await;
    let resp = get(&server, "/topics").await;
    resp.assert_v1_json();
    assert_eq!(resp.body, r#"{"topics":[]}"#);
    post(&server, "/topic/create?topic=b")
        .await
        .assert_v1_empty();
    post(&server, "/topic/create?topic=a")
        .await
        .assert_v1_empty();
    assert_eq!(
        get(&server, "/topics").await.body,
        r#"{"topics":["a","b"]}"#
    );
}

#[tokio::test]
async fn http_channels() {
    let server = start(&[]).await;
    get(&server, "/channels")
        .await
        .assert_v1_error(400, "MISSING_ARG_TOPIC");
    let resp = get(&server, "/channels?topic=nope").await;
    resp.assert_v1_json();
    assert_eq!(resp.body, r#"{"channels":[]}"#);
    post(&server, "/channel/create?topic=t&channel=c")
        .await
        .assert_v1_empty();
    assert_eq!(
        get(&server, "/channels?topic=t").await.body,
        r#"{"channels":["c"]}"#
    );
    // The first value of a repeated key wins; no name validation here.
    assert_eq!(
        get(&server, "/channels?topic=t&topic=x").await.body,
        r#"{"channels":["c"]}"#
    );
    assert_eq!(
        get(&server, "/channels?topic=bad/name").await.body,
        r#"{"channels":[]}"#
    );
}

#[tokio::test]
async fn http_lookup() {
    let server = start(&[]).await;
    get(&server, "/lookup")
        .await
        .assert_v1_error(400, "MISSING_ARG_TOPIC");
    get(&server, "/lookup?topic=t")
        .await
        .assert_v1_error(404, "TOPIC_NOT_FOUND");
    post(&server, "/topic/create?topic=t")
        .await
        .assert_v1_empty();
    let resp = get(&server, "/lookup?topic=t").await;
    resp.assert_v1_json();
    assert_eq!(resp.body, r#"{"channels":[],"producers":[]}"#);

    let mut peer = nsqd(&server, 4151).await;
    assert_eq!(peer.cmd("REGISTER t c").await, "OK");
    let resp = get(&server, "/lookup?topic=t").await;
    resp.assert_v1_json();
    let expected = format!(
        r#"{{"channels":["c"],"producers":[{{"remote_address":"{}","hostname":"nsqd-host","broadcast_address":"nsqd-4151","tcp_port":4150,"http_port":4151,"version":"1.3.0"}}]}}"#,
        peer.id()
    );
    assert_eq!(resp.body, expected);
    // Parses as the shared type.
    let typed: nsq_protocol::lookup::LookupResponse =
        serde_json::from_str(&resp.body).expect("LookupResponse");
    assert_eq!(typed.producers[0].http_node(), "nsqd-4151:4151");
}

#[tokio::test]
async fn http_nodes() {
    let server = start(&[]).await;
    let resp = get(&server, "/nodes").await;
    resp.assert_v1_json();
    assert_eq!(resp.body, r#"{"producers":[]}"#);

    let mut peer = nsqd(&server, 4151).await;
    assert_eq!(peer.cmd("REGISTER a").await, "OK");
    assert_eq!(peer.cmd("REGISTER b c").await, "OK");
    let resp = get(&server, "/nodes").await;
    resp.assert_v1_json();
    let expected = format!(
        r#"{{"producers":[{{"remote_address":"{}","hostname":"nsqd-host","broadcast_address":"nsqd-4151","tcp_port":4150,"http_port":4151,"version":"1.3.0","tombstones":[false,false],"topics":["a","b"]}}]}}"#,
        peer.id()
    );
    assert_eq!(resp.body, expected);
}

#[tokio::test]
async fn http_topic_create() {
    let server = start(&[]).await;
    post(&server, "/topic/create")
        .await
        .assert_v1_error(400, "MISSING_ARG_TOPIC");
    post(&server, "/topic/create?topic=bad/name")
        .await
        .assert_v1_error(400, "INVALID_ARG_TOPIC");
    post(&server, "/topic/create?topic=")
        .await
        .assert_v1_error(400, "INVALID_ARG_TOPIC");
    post(&server, "/topic/create?topic=t")
        .await
        .assert_v1_empty();
    assert_eq!(topics(&server).await, json!(["t"]));
    // Creating a topic registers no producer and no channel.
    let lookup = get(&server, "/lookup?topic=t").await.assert_v1_json();
    assert_eq!(lookup, json!({"channels": [], "producers": []}));
}

#[tokio::test]
async fn http_topic_delete() {
    let server = start(&[]).await;
    post(&server, "/topic/delete")
        .await
        .assert_v1_error(400, "MISSING_ARG_TOPIC");
    // Unknown topics are not an error.
    post(&server, "/topic/delete?topic=nope")
        .await
        .assert_v1_empty();
    post(&server, "/channel/create?topic=t&channel=c")
        .await
        .assert_v1_empty();
    post(&server, "/channel/create?topic=t&channel=d")
        .await
        .assert_v1_empty();
    post(&server, "/topic/create?topic=u")
        .await
        .assert_v1_empty();
    post(&server, "/topic/delete?topic=t")
        .await
        .assert_v1_empty();
    assert_eq!(topics(&server).await, json!(["u"]));
    assert_eq!(channels(&server, "t").await, json!([]));
}

#[tokio::test]
async fn http_channel_create() {
    let server = start(&[]).await;
    for (target, code) in [
        ("/channel/create", "MISSING_ARG_TOPIC"),
        ("/channel/create?channel=c", "MISSING_ARG_TOPIC"),
        ("/channel/create?topic=bad/t&channel=c", "INVALID_ARG_TOPIC"),
        ("/channel/create?topic=t", "MISSING_ARG_CHANNEL"),
        (
            "/channel/create?topic=t&channel=bad/c",
            "INVALID_ARG_CHANNEL",
        ),
    ] {
        post(&server, target).await.assert_v1_error(400, code);
    }
    assert_eq!(topics(&server).await, json!([]));
    post(&server, "/channel/create?topic=t&channel=c%23ephemeral")
        .await
        .assert_v1_empty();
    assert_eq!(topics(&server).await, json!(["t"]));
    assert_eq!(channels(&server, "t").await, json!(["c#ephemeral"]));
}

#[tokio::test]
async fn http_channel_delete() {
    let server = start(&[]).await;
    for (target, code) in [
        ("/channel/delete", "MISSING_ARG_TOPIC"),
        ("/channel/delete?topic=bad/t&channel=c", "INVALID_ARG_TOPIC"),
        ("/channel/delete?topic=t", "MISSING_ARG_CHANNEL"),
        (
            "/channel/delete?topic=t&channel=bad/c",
            "INVALID_ARG_CHANNEL",
        ),
    ] {
        post(&server, target).await.assert_v1_error(400, code);
    }
    post(&server, "/channel/delete?topic=t&channel=c")
        .await
        .assert_v1_error(404, "CHANNEL_NOT_FOUND");
    post(&server, "/channel/create?topic=t&channel=c")
        .await
        .assert_v1_empty();
    post(&server, "/channel/delete?topic=t&channel=c")
        .await
        .assert_v1_empty();
    assert_eq!(channels(&server, "t").await, json!([]));
    // The topic stays.
    assert_eq!(topics(&server).await, json!(["t"]));
}

#[tokio::test]
async fn http_topic_tombstone_args() {
    let server = start(&[]).await;
    post(&server, "/topic/tombstone?node=n:1")
        .await
        .assert_v1_error(400, "MISSING_ARG_TOPIC");
    post(&server, "/topic/tombstone?topic=t")
        .await
        .assert_v1_error(400, "MISSING_ARG_NODE");
    // Nothing matches: still 200.
    post(&server, "/topic/tombstone?topic=t&node=n:1")
        .await
        .assert_v1_empty();
}

#[tokio::test]
async fn http_debug() {
    let server = start(&[]).await;
    let resp = get(&server, "/debug").await;
    resp.assert_v1_json();
    assert_eq!(resp.body, "{}");

    post(&server, "/topic/create?topic=empty")
        .await
        .assert_v1_empty();
    let before = nsqlookupd::registration_db::unix_nanos_now();
    let mut peer = nsqd(&server, 4151).await;
    assert_eq!(peer.cmd("REGISTER t c").await, "OK");
    let debug = get(&server, "/debug").await.assert_v1_json();
    let keys: Vec<&String> = debug.as_object().expect("object").keys().collect();
    // Registrations without producers are not listed.
    assert_eq!(keys, vec!["channel:t:c", "client::", "topic:t:"]);
    let entry = &debug["topic:t:"][0];
    let entry_keys: Vec<&String> = entry.as_object().expect("entry").keys().collect();
    assert_eq!(
        entry_keys,
        vec![
            "broadcast_address",
            "hostname",
            "http_port",
            "id",
            "last_update",
            "tcp_port",
            "tombstoned",
            "tombstoned_at",
            "version"
        ]
    );
    assert_eq!(entry["id"], json!(peer.id()));
    assert_eq!(entry["broadcast_address"], json!("nsqd-4151"));
    assert_eq!(entry["hostname"], json!("nsqd-host"));
    assert_eq!(entry["http_port"], json!(4151));
    assert_eq!(entry["tcp_port"], json!(4150));
    assert_eq!(entry["version"], json!("1.3.0"));
    assert_eq!(entry["tombstoned"], json!(false));
    assert_eq!(entry["tombstoned_at"], json!(-6795364578871345152i64));
    let last_update = entry["last_update"].as_i64().expect("last_update");
    assert!(last_update >= before, "{last_update} < {before}");

    post(&server, "/topic/tombstone?topic=t&node=nsqd-4151:4151")
        .await
        .assert_v1_empty();
    let debug = get(&server, "/debug").await.assert_v1_json();
    assert_eq!(debug["topic:t:"][0]["tombstoned"], json!(true));
    assert!(debug["topic:t:"][0]["tombstoned_at"].as_i64().expect("ts") >= before);
    // The tombstone is on the topic entry only.
    assert_eq!(debug["channel:t:c"][0]["tombstoned"], json!(false));
}

#[tokio::test]
async fn http_not_found() {
    let server = start(&[]).await;
    for target in ["/nope", "/create_topic?topic=t", "/debug/pprof", "/"] {
        get(&server, target).await.assert_v1_error(404, "NOT_FOUND");
    }
    post(&server, "/delete_topic?topic=t")
        .await
        .assert_v1_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn http_method_not_allowed() {
    let server = start(&[]).await;
    let resp = post(&server, "/lookup?topic=t").await;
    resp.assert_v1_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(resp.header("allow"), Some("GET, OPTIONS"));

    for target in [
        "/topic/create?topic=t",
        "/topic/delete?topic=t",
        "/channel/create?topic=t&channel=c",
        "/channel/delete?topic=t&channel=c",
        "/topic/tombstone?topic=t&node=n",
    ] {
        let resp = get(&server, target).await;
        resp.assert_v1_error(405, "METHOD_NOT_ALLOWED");
        assert_eq!(resp.header("allow"), Some("OPTIONS, POST"));
    }
    // GET routes do not answer HEAD (httprouter has no implicit HEAD).
    let resp = http(server.http_addr(), "HEAD", "/ping").await;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET, OPTIONS"));
    // Nothing was created by the refused requests.
    assert_eq!(topics(&server).await, json!([]));
}

#[tokio::test]
async fn http_options_lists_allowed_methods() {
    let server = start(&[]).await;
    let resp = http(server.http_addr(), "OPTIONS", "/topic/create").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("allow"), Some("OPTIONS, POST"));
    assert_eq!(resp.body, "");
    let resp = http(server.http_addr(), "OPTIONS", "/nope").await;
    resp.assert_v1_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn http_redirects_fixable_paths() {
    let server = start(&[]).await;
    let resp = get(&server, "/lookup/?topic=t").await;
    assert_eq!(resp.status, 301);
    assert_eq!(resp.header("location"), Some("/lookup?topic=t"));
    let resp = get(&server, "/PING").await;
    assert_eq!(resp.status, 301);
    assert_eq!(resp.header("location"), Some("/ping"));
    let resp = post(&server, "/topic/create/?topic=t").await;
    assert_eq!(resp.status, 307);
    assert_eq!(resp.header("location"), Some("/topic/create?topic=t"));
}

#[tokio::test]
async fn http_bad_query_is_invalid_request() {
    let server = start(&[]).await;
    for target in ["/lookup?topic=%zz", "/channels?topic=a;b"] {
        get(&server, target)
            .await
            .assert_v1_error(400, "INVALID_REQUEST");
    }
    post(&server, "/topic/create?topic=%")
        .await
        .assert_v1_error(400, "INVALID_REQUEST");
    // Endpoints that take no parameters ignore the query.
    get(&server, "/topics?x=%zz").await.assert_v1_json();
}

#[tokio::test]
async fn http_json_escapes_like_go() {
    let server = start(&[]).await;
    let mut peer = Peer::connect(&server).await;
    let reply = peer
        .identify_raw(br#"{"broadcast_address":"a<b>&c","http_port":1,"tcp_port":2,"version":"v"}"#)
        .await;
    assert!(reply.starts_with('{'), "{reply}");
    let resp = get(&server, "/nodes").await;
    assert!(
        resp.body
            .contains(r#""broadcast_address":"a\u003cb\u003e\u0026c""#),
        "{}",
        resp.body
    );
}

// ---------------------------------------------------------------- tombstones, liveness

#[tokio::test]
async fn tombstoned_producer_is_hidden_for_the_lifetime_then_returns() {
    const LIFETIME: Duration = Duration::from_millis(400);
    let server = start(&["--tombstone-lifetime", "400ms"]).await;
    let mut a = nsqd(&server, 4151).await;
    let mut b = nsqd(&server, 4152).await;
    assert_eq!(a.cmd("REGISTER t").await, "OK");
    assert_eq!(b.cmd("REGISTER t").await, "OK");

    let tombstoned = Instant::now();
    post(&server, "/topic/tombstone?topic=t&node=nsqd-4151:4151")
        .await
        .assert_v1_empty();
    assert_eq!(lookup_producers(&server, "t").await, vec![b.id()]);
    // /nodes still lists it, flagged.
    let nodes = get(&server, "/nodes").await.assert_v1_json();
    let node_a = nodes["producers"]
        .as_array()
        .expect("producers")
        .iter()
        .find(|n| n["http_port"] == json!(4151))
        .expect("node a listed")
        .clone();
    assert_eq!(node_a["topics"], json!(["t"]));
    assert_eq!(node_a["tombstones"], json!([true]));
    // Re-registering does not clear the tombstone.
    assert_eq!(a.cmd("REGISTER t").await, "OK");
    assert_eq!(lookup_producers(&server, "t").await, vec![b.id()]);

    let a_id = a.id();
    wait_until(LIFETIME + IO_TIMEOUT, || async {
        lookup_producers(&server, "t").await.contains(&a_id)
    })
    .await;
    assert!(
        tombstoned.elapsed() >= LIFETIME,
        "tombstone lifted after {:?}",
        tombstoned.elapsed()
    );
    let nodes = get(&server, "/nodes").await.assert_v1_json();
    assert!(nodes["producers"]
        .as_array()
        .expect("producers")
        .iter()
        .all(|n| n["tombstones"] == json!([false])));
}

#[tokio::test]
async fn unregister_clears_a_tombstone() {
    let server = start(&["--tombstone-lifetime", "1h"]).await;
    let mut a = nsqd(&server, 4151).await;
    assert_eq!(a.cmd("REGISTER t").await, "OK");
    post(&server, "/topic/tombstone?topic=t&node=nsqd-4151:4151")
        .await
        .assert_v1_empty();
    assert!(lookup_producers(&server, "t").await.is_empty());
    assert_eq!(a.cmd("UNREGISTER t").await, "OK");
    assert_eq!(a.cmd("REGISTER t").await, "OK");
    assert_eq!(lookup_producers(&server, "t").await, vec![a.id()]);
}

#[tokio::test]
async fn inactive_producers_are_filtered_until_they_ping() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let server = start(&["--inactive-producer-timeout", "300ms"]).await;
    let identified = Instant::now();
    let mut peer = nsqd(&server, 4151).await;
    assert_eq!(peer.cmd("REGISTER t").await, "OK");
    assert_eq!(lookup_producers(&server, "t").await, vec![peer.id()]);

    wait_until(TIMEOUT + IO_TIMEOUT, || async {
        lookup_producers(&server, "t").await.is_empty()
    })
    .await;
    assert!(
        identified.elapsed() >= TIMEOUT,
        "went inactive after {:?}",
        identified.elapsed()
    );
    let nodes = get(&server, "/nodes").await.assert_v1_json();
    assert_eq!(nodes["producers"], json!([]));
    // The registration itself is still there.
    assert_eq!(topics(&server).await, json!(["t"]));

    assert_eq!(peer.cmd("PING").await, "OK");
    assert_eq!(lookup_producers(&server, "t").await, vec![peer.id()]);
    let nodes = get(&server, "/nodes").await.assert_v1_json();
    assert_eq!(nodes["producers"].as_array().map(Vec::len), Some(1));
}

// ---------------------------------------------------------------- lifecycle

#[tokio::test]
async fn shutdown_closes_connections_and_listeners() {
    let server = start(&[]).await;
    let tcp = server.tcp_addr();
    let mut peer = nsqd(&server, 4151).await;
    assert_eq!(peer.cmd("REGISTER t").await, "OK");
    tokio::time::timeout(IO_TIMEOUT, server.shutdown())
        .await
        .expect("shutdown in time");
    peer.expect_closed().await;
    assert!(TcpStream::connect(tcp).await.is_err());
}

#[tokio::test]
async fn bind_failure_names_the_address() {
    let first = start(&[]).await;
    let taken = first.tcp_addr().to_string();
    let Invocation::Run(opts) = nsqlookupd::options::parse([
        "nsqlookupd",
        "--tcp-address",
        taken.as_str(),
        "--http-address",
        "127.0.0.1:0",
    ])
    .expect("options") else {
        panic!("expected run");
    };
    let err = Server::bind(opts).await.expect_err("port in use");
    assert!(
        err.to_string()
            .starts_with(&format!("listen ({taken}) failed - ")),
        "{err}"
    );
}

// ---------------------------------------------------------------- the binary

fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_nsqlookupd"))
}

#[test]
fn binary_version() {
    for flag in ["--version", "-version"] {
        let out = binary().arg(flag).output().expect("run nsqlookupd");
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "nsqlookupd v1.3.0 (built w/rust)\n"
        );
    }
}

#[test]
fn binary_help() {
    let out = binary().arg("--help").output().expect("run nsqlookupd");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for text in [
        "--config",
        "path to config file",
        "--version",
        "print version string",
        "--log-level",
        "set log verbosity: debug, info, warn, error, or fatal",
        "--log-prefix",
        "log message prefix",
        "--verbose",
        "[deprecated] has no effect, use --log-level",
        "--tcp-address",
        "<addr>:<port> to listen on for TCP clients",
        "0.0.0.0:4160",
        "--http-address",
        "<addr>:<port> to listen on for HTTP clients",
        "0.0.0.0:4161",
        "--broadcast-address",
        "address of this lookupd node, (default to the OS hostname)",
        "--inactive-producer-timeout",
        "duration of time a producer will remain in the active list since its last ping",
        "5m0s",
        "--tombstone-lifetime",
        "duration of time a producer will remain tombstoned if registration remains",
        "45s",
    ] {
        assert!(help.contains(text), "--help lacks {text:?}:\n{help}");
    }
}

#[test]
fn binary_rejects_unknown_flags_and_bad_config() {
    let out = binary().arg("--no-such-flag").output().expect("run");
    assert_eq!(out.status.code(), Some(2));

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.cfg");
    std::fs::write(&cfg, "tombstone_lifetime = \"soon\"\n").expect("write cfg");
    let out = binary().arg("--config").arg(&cfg).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("[nsqlookupd] "), "{stderr}");
    assert!(stderr.contains(" FATAL: "), "{stderr}");
}

#[test]
fn binary_exits_zero_on_sigterm_and_sigint() {
    use std::io::{BufRead, BufReader};
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut child = binary()
            .args([
                "--tcp-address",
                "127.0.0.1:0",
                "--http-address",
                "127.0.0.1:0",
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn nsqlookupd");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        // Wait until both listeners are up (the log says so).
        loop {
            let line = lines
                .next()
                .expect("log line before exit")
                .expect("readable log");
            if line.contains("HTTP: listening on") {
                break;
            }
        }
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: signalling the child we spawned and still own.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let deadline = Instant::now() + IO_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit after signal {signal}");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(0), "signal {signal}");
    }
}
