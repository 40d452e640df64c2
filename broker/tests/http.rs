//! nsqd's HTTP API against an in-process node (conformance §2): every endpoint, every
//! documented error code, the V1 conventions and the `/stats` document key by key.
//!
//! The HTTP client is a few lines of raw HTTP/1.1 over a TCP stream (`Connection:
//! close`, read to EOF), so the tests see exactly the bytes nsqd sends.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use support::{Conn, TestNode, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const V1_HEADER: (&str, &str) = ("x-nsq-content-type", "nsq; version=1.0");
const JSON_TYPE: &str = "application/json; charset=utf-8";

struct Node {
    node: TestNode,
    http: SocketAddr,
}

impl Node {
    async fn start() -> Node {
        Self::start_with(|_| {}).await
    }

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

    fn nsqd(&self) -> &std::sync::Arc<nsqd::nsqd::Nsqd> {
        self.node.nsqd()
    }

    async fn get(&self, target: &str) -> Resp {
        request(self.http, "GET", target, &[], None).await
    }

    async fn post(&self, target: &str, body: &[u8]) -> Resp {
        request(self.http, "POST", target, &[], Some(body)).await
    }

    async fn put(&self, target: &str, body: &[u8]) -> Resp {
        request(self.http, "PUT", target, &[], Some(body)).await
    }

    /// One request as the per-method helpers send it: no body for GET, OPTIONS and HEAD
    /// (a body there would be a mistake in the case table), `body` for POST and PUT.
    async fn call(&self, method: &str, target: &str, body: &[u8]) -> Resp {
        match method {
            "POST" => self.post(target, body).await,
            "PUT" => self.put(target, body).await,
            _ => {
                assert!(body.is_empty(), "{method} {target}: no body for {method}");
                request(self.http, method, target, &[], None).await
            }
        }
    }

    /// Runs each case in order; each must get its V1 error. A failure names the case.
    async fn expect_errors(&self, cases: &[ErrorCase<'_>]) {
        for &(method, target, body, status, code) in cases {
            let case = format!("{method} {target} body={:?}", String::from_utf8_lossy(body));
            self.call(method, target, body)
                .await
                .expect_error_at(&case, status, code);
        }
    }

    async fn stats(&self, query: &str) -> Value {
        let r = self.get(&format!("/stats?format=json{query}")).await;
        r.expect_json(200)
    }
}

/// `(method, target, body, status, code)`: a request and the V1 error it must get.
type ErrorCase<'a> = (&'a str, &'a str, &'a [u8], u16, &'a str);

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn assert_v1(&self) {
        assert_eq!(self.header(V1_HEADER.0), Some(V1_HEADER.1), "{self:?}");
        assert_eq!(self.header("content-encoding"), None);
    }

    /// A V1 success with a JSON body.
    fn expect_json(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        self.assert_v1();
        assert_eq!(self.header("content-type"), Some(JSON_TYPE));
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// A V1 success with an empty body.
    fn expect_empty(&self) {
        assert_eq!((self.status, self.text()), (200, String::new()));
        self.assert_v1();
    }

    /// A V1 success with a plain body.
    fn expect_text(&self, text: &str) {
        assert_eq!((self.status, self.text().as_str()), (200, text));
        self.assert_v1();
        assert_eq!(
            self.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }

    /// [`Resp::expect_error`], with `case` in every failure message.
    fn expect_error_at(&self, case: &str, status: u16, message: &str) {
        assert_eq!(
            (self.status, self.text()),
            (status, format!(r#"{{"message":"{message}"}}"#)),
            "{case}"
        );
        assert_eq!(
            self.header(V1_HEADER.0),
            Some(V1_HEADER.1),
            "{case}: {self:?}"
        );
        assert_eq!(self.header("content-encoding"), None, "{case}");
        assert_eq!(self.header("content-type"), Some(JSON_TYPE), "{case}");
    }

    /// A V1 error: status and `{"message":"<CODE>"}`.
    fn expect_error(&self, status: u16, message: &str) {
        assert_eq!(
            (self.status, self.text()),
            (status, format!(r#"{{"message":"{message}"}}"#))
        );
        self.assert_v1();
        assert_eq!(self.header("content-type"), Some(JSON_TYPE));
    }
}

async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && *v == "chunked");
    let has_length = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    let mut wire = Vec::new();
    match body {
        Some(b) if chunked => {
            req.push_str("\r\n");
            wire.extend_from_slice(req.as_bytes());
            if !b.is_empty() {
                wire.extend_from_slice(format!("{:x}\r\n", b.len()).as_bytes());
                wire.extend_from_slice(b);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
        }
        Some(b) => {
            if !has_length {
                req.push_str(&format!("Content-Length: {}\r\n", b.len()));
            }
            req.push_str("\r\n");
            wire.extend_from_slice(req.as_bytes());
            wire.extend_from_slice(b);
        }
        None => {
            req.push_str("\r\n");
            wire.extend_from_slice(req.as_bytes());
        }
    }
    raw_request(addr, &wire).await
}

/// Sends raw bytes and parses the response (read until the server closes).
async fn raw_request(addr: SocketAddr, wire: &[u8]) -> Resp {
    let mut stream = TcpStream::connect(addr).await.expect("connect HTTP");
    stream.write_all(wire).await.expect("write request");
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "HTTP response timed out; got {:?}",
                String::from_utf8_lossy(&raw)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
        }
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// A subscribed consumer with an identity, ready for `rdy` messages.
async fn consumer(node: &Node, topic: &str, channel: &str, rdy: u64) -> Conn {
    let mut c = node.node.connect().await;
    let f = c
        .identify(json!({"client_id": "cons", "hostname": "consumer-host", "user_agent": "http-test/1.0"}))
        .await;
    assert_eq!(&f.data[..], b"OK");
    c.subscribe(topic, channel).await;
    c.rdy(rdy).await;
    c
}

fn topic_stats<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["topics"]
        .as_array()
        .expect("topics array")
        .iter()
        .find(|t| t["topic_name"] == name)
        .unwrap_or_else(|| panic!("topic {name} in {stats}"))
}

fn channel_stats<'a>(topic: &'a Value, name: &str) -> &'a Value {
    topic["channels"]
        .as_array()
        .expect("channels array")
        .iter()
        .find(|c| c["channel_name"] == name)
        .unwrap_or_else(|| panic!("channel {name} in {topic}"))
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn sorted(mut k: Vec<&str>) -> Vec<&str> {
    k.sort_unstable();
    k
}

// ---------------------------------------------------------------- common behaviour

#[tokio::test]
async fn unknown_path_is_v1_404() {
    let n = Node::start().await;
    #[rustfmt::skip]
    let cases: &[ErrorCase] = &[
        ("GET", "/nope", b"", 404, "NOT_FOUND"),
        ("POST", "/topic/nope?topic=t", b"", 404, "NOT_FOUND"),
        // OPTIONS on an unknown path is a 404 too.
        ("OPTIONS", "/nope", b"", 404, "NOT_FOUND"),
    ];
    n.expect_errors(cases).await;
}

#[tokio::test]
async fn wrong_method_is_v1_405_with_allow() {
    let n = Node::start().await;
    let r = n.get("/pub?topic=t").await;
    r.expect_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("allow"), Some("OPTIONS, POST"));
    let r = n.post("/config/mem_queue_size", b"1").await;
    r.expect_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("allow"), Some("GET, OPTIONS, PUT"));
    // HEAD is not GET (httprouter registers no HEAD routes).
    let r = request(n.http, "HEAD", "/ping", &[], None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, OPTIONS"));
    n.post("/stats", b"")
        .await
        .expect_error(405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn options_lists_allowed_methods() {
    let n = Node::start().await;
    let r = request(n.http, "OPTIONS", "/mpub", &[], None).await;
    assert_eq!((r.status, r.text()), (200, String::new()));
    assert_eq!(r.header("allow"), Some("OPTIONS, POST"));
}

#[tokio::test]
async fn trailing_slash_and_case_are_redirected() {
    let n = Node::start().await;
    let r = n.get("/ping/").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/ping"));
    let r = n.get("/STATS?format=json").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/stats?format=json"));
    let r = n.post("/Topic/Create/?topic=t", b"").await;
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("/topic/create?topic=t"));
    assert!(n.nsqd().topic("t").is_none(), "a redirect does not act");
}

#[tokio::test]
async fn unparsable_query_is_invalid_request() {
    let n = Node::start().await;
    #[rustfmt::skip]
    let cases: &[ErrorCase] = &[
        ("POST", "/topic/create?topic=a;b", b"", 400, "INVALID_REQUEST"),
        ("POST", "/channel/create?topic=%zz&channel=c", b"", 400, "INVALID_REQUEST"),
        ("GET", "/stats?topic=%", b"", 400, "INVALID_REQUEST"),
        ("POST", "/mpub?topic=t;x", b"a", 400, "INVALID_REQUEST"),
        // /pub checks its body first.
        ("POST", "/pub?topic=%zz", b"a", 400, "INVALID_REQUEST"),
    ];
    n.expect_errors(cases).await;
}

#[tokio::test]
async fn first_query_value_wins_and_plus_is_space() {
    let n = Node::start().await;
    n.post("/topic/create?topic=first&topic=second", b"")
        .await
        .expect_empty();
    assert!(n.nsqd().topic("first").is_some());
    assert!(n.nsqd().topic("second").is_none());
    n.post("/topic/create?topic=a+b", b"")
        .await
        .expect_error(400, "INVALID_TOPIC");
    // Parameters come from the query string only, never from a form body.
    let r = request(
        n.http,
        "POST",
        "/topic/create",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(b"topic=formtopic"),
    )
    .await;
    r.expect_error(400, "MISSING_ARG_TOPIC");
}

#[tokio::test]
async fn responses_are_never_compressed() {
    let n = Node::start().await;
    for _ in 0..3 {
        n.post("/pub?topic=gz", &[b'x'; 90]).await.expect_text("OK");
    }
    let r = request(
        n.http,
        "GET",
        "/stats?format=json",
        &[("Accept-Encoding", "gzip, deflate, br")],
        None,
    )
    .await;
    let stats = r.expect_json(200);
    assert_eq!(topic_stats(&stats, "gz")["message_count"], 3);
}

#[tokio::test]
async fn http_listener_closes_on_shutdown() {
    let mut n = Node::start().await;
    n.get("/ping").await;
    n.node.stop().await;
    assert!(TcpStream::connect(n.http).await.is_err());
}

#[tokio::test]
async fn empty_http_address_disables_http() {
    let node = TestNode::start().await;
    assert_eq!(node.running.as_ref().unwrap().http_addr, None);
}

// ---------------------------------------------------------------- /ping and /info

#[tokio::test]
async fn ping_reports_health_in_plain_text() {
    let n = Node::start().await;
    let r = n.get("/ping").await;
    assert_eq!((r.status, r.text()), (200, "OK".to_string()));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    // /ping is nsqd's one plain-text endpoint: no V1 header.
    assert_eq!(r.header(V1_HEADER.0), None);

    n.nsqd().set_health(Some("disk write failed".into()));
    let r = n.get("/ping").await;
    assert_eq!(
        (r.status, r.text()),
        (500, "NOK - disk write failed".to_string())
    );
    assert_eq!(r.header(V1_HEADER.0), None);
    n.nsqd().set_health(None);
    assert_eq!(n.get("/ping").await.status, 200);
}

#[tokio::test]
async fn info_reports_identity_and_limits() {
    let n = Node::start_with(|o| {
        o.broadcast_address = Some("bcast.example".into());
        o.broadcast_tcp_port = 9999;
    })
    .await;
    let info = n.get("/info").await.expect_json(200);
    assert_eq!(
        keys(&info),
        sorted(vec![
            "version",
            "broadcast_address",
            "hostname",
            "http_port",
            "tcp_port",
            "start_time",
            "max_heartbeat_interval",
            "max_output_buffer_size",
            "max_output_buffer_timeout",
            "max_deflate_level",
        ])
    );
    assert_eq!(info["version"], "1.3.0");
    assert_eq!(info["broadcast_address"], "bcast.example");
    assert_eq!(info["hostname"], nsqd::options::hostname());
    // The bound ports, not the broadcast ones.
    assert_eq!(info["tcp_port"], n.node.addr.port());
    assert_eq!(info["http_port"], n.http.port());
    assert_eq!(info["start_time"], n.nsqd().start_time);
    assert_eq!(info["max_heartbeat_interval"], 60_000_000_000i64);
    assert_eq!(info["max_output_buffer_size"], 65536);
    assert_eq!(info["max_output_buffer_timeout"], 30_000_000_000i64);
    assert_eq!(info["max_deflate_level"], 6);
}

// ---------------------------------------------------------------- /pub

async fn small_limits() -> Node {
    Node::start_with(|o| {
        o.max_msg_size = 100;
        o.max_body_size = 1000;
    })
    .await
}

#[tokio::test]
async fn pub_creates_topic_and_delivers() {
    let n = Node::start().await;
    n.post("/topic/create?topic=p", b"").await.expect_empty();
    let mut c = consumer(&n, "p", "ch", 1).await;
    n.post("/pub?topic=p", b"hello http")
        .await
        .expect_text("OK");
    let m = c.expect_message().await;
    assert_eq!(&m.body[..], b"hello http");
    assert_eq!(m.attempts, 1);

    n.post("/pub?topic=autocreated", b"x")
        .await
        .expect_text("OK");
    let t = n
        .nsqd()
        .topic("autocreated")
        .expect("topic created by /pub");
    assert_eq!(t.depth(), 1);
    assert_eq!(
        t.message_bytes.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn pub_body_limits() {
    let n = small_limits().await;
    n.post("/pub?topic=t", &[b'x'; 100]).await.expect_text("OK");
    n.post("/pub?topic=t", &[b'x'; 101])
        .await
        .expect_error(413, "MSG_TOO_BIG");
    // Content-Length alone decides before anything is read.
    request(
        n.http,
        "POST",
        "/pub?topic=t",
        &[("Content-Length", "5000")],
        None,
    )
    .await
    .expect_error(413, "MSG_TOO_BIG");
    // Without a Content-Length the body is read up to the limit.
    let chunked = [("Transfer-Encoding", "chunked")];
    request(n.http, "POST", "/pub?topic=t", &chunked, Some(&[b'y'; 150]))
        .await
        .expect_error(413, "MSG_TOO_BIG");
    request(n.http, "POST", "/pub?topic=t", &chunked, Some(&[b'y'; 100]))
        .await
        .expect_text("OK");
    n.post("/pub?topic=t", b"")
        .await
        .expect_error(400, "MSG_EMPTY");
    assert_eq!(n.nsqd().topic("t").unwrap().depth(), 2);
}

#[tokio::test]
async fn pub_topic_errors_come_after_body_errors() {
    let n = Node::start().await;
    let too_long = format!("/pub?topic={}", "x".repeat(65));
    #[rustfmt::skip]
    let cases: &[ErrorCase] = &[
        ("POST", "/pub", b"x", 400, "MISSING_ARG_TOPIC"),
        ("POST", "/pub?topic=bad/name", b"x", 400, "INVALID_TOPIC"),
        ("POST", "/pub?topic=", b"x", 400, "INVALID_TOPIC"),
        ("POST", &too_long, b"x", 400, "INVALID_TOPIC"),
        ("POST", "/pub", b"", 400, "MSG_EMPTY"),
        ("POST", "/pub?topic=bad/name", b"", 400, "MSG_EMPTY"),
    ];
    n.expect_errors(cases).await;
}

#[tokio::test]
async fn pub_defer() {
    let n = Node::start().await;
    n.post("/topic/create?topic=d", b"").await.expect_empty();
    n.post("/channel/create?topic=d&channel=c", b"")
        .await
        .expect_empty();
    n.post("/pub?topic=d&defer=60000", b"later")
        .await
        .expect_text("OK");
    n.post("/pub?topic=d&defer=0", b"now")
        .await
        .expect_text("OK");
    let ch = n.nsqd().topic("d").unwrap().channel("c").unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while ch.deferred_count() + ch.depth() as usize != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "messages did not reach the channel"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!((ch.deferred_count(), ch.depth()), (1, 1));

    for bad in ["-1", "3600001", "abc", "", "1.5", "99999999999999999999"] {
        n.post(&format!("/pub?topic=d&defer={bad}"), b"x")
            .await
            .expect_error(400, "INVALID_DEFER");
    }
    n.post("/pub?topic=d&defer=3600000", b"max")
        .await
        .expect_text("OK");
}

#[tokio::test]
async fn pub_enqueue_failure_is_503_exiting_and_marks_unhealthy() {
    let n = Node::start_with(|o| o.mem_queue_size = 0).await;
    // A directory where the topic's disk queue metadata file must go: the disk queue
    // cannot be opened, so every overflow write fails.
    let blocker = n.node.dir.path().join("broken.diskqueue.meta.dat");
    std::fs::create_dir(&blocker).unwrap();
    n.post("/pub?topic=broken", b"x")
        .await
        .expect_error(503, "EXITING");
    n.post("/mpub?topic=broken", b"x\ny")
        .await
        .expect_error(503, "EXITING");
    let r = n.get("/ping").await;
    assert_eq!(r.status, 500);
    assert!(r.text().starts_with("NOK - "), "{}", r.text());
    let stats = n.stats("").await;
    assert!(stats["health"].as_str().unwrap().starts_with("NOK - "));
}

// ---------------------------------------------------------------- /mpub

#[tokio::test]
async fn mpub_text_mode() {
    let n = small_limits().await;
    n.post("/mpub?topic=m", b"one\ntwo\n\n\nthree")
        .await
        .expect_text("OK");
    n.post("/mpub?topic=m", b"four\n").await.expect_text("OK");
    n.post("/mpub?topic=m", b"").await.expect_text("OK");
    // binary=false and binary=0 are text mode too.
    n.post("/mpub?topic=m&binary=false", b"five")
        .await
        .expect_text("OK");
    n.post("/mpub?topic=m&binary=0", b"six")
        .await
        .expect_text("OK");
    let t = n.nsqd().topic("m").unwrap();
    assert_eq!(t.depth(), 6);
    let mut c = consumer(&n, "m", "c", 10).await;
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(String::from_utf8(c.expect_message().await.body.to_vec()).unwrap());
    }
    got.sort();
    assert_eq!(got, ["five", "four", "one", "six", "three", "two"]);
}

#[tokio::test]
async fn mpub_text_limits() {
    let n = small_limits().await;
    let long_line = [vec![b'a'; 101], b"\nok".to_vec()].concat();
    n.post("/mpub?topic=m", &long_line)
        .await
        .expect_error(413, "MSG_TOO_BIG");
    // 1000 bytes exactly is accepted; 1001 is BODY_TOO_BIG (read without Content-Length).
    let lines = |total: usize| {
        let mut b = Vec::new();
        while b.len() < total {
            let n = (total - b.len()).min(50);
            b.extend(std::iter::repeat_n(b'z', n - 1));
            b.push(b'\n');
        }
        b
    };
    let chunked = [("Transfer-Encoding", "chunked")];
    request(
        n.http,
        "POST",
        "/mpub?topic=m",
        &chunked,
        Some(&lines(1000)),
    )
    .await
    .expect_text("OK");
    request(
        n.http,
        "POST",
        "/mpub?topic=m",
        &chunked,
        Some(&lines(1001)),
    )
    .await
    .expect_error(413, "BODY_TOO_BIG");
    request(
        n.http,
        "POST",
        "/mpub?topic=m",
        &[("Content-Length", "1001")],
        None,
    )
    .await
    .expect_error(413, "BODY_TOO_BIG");
    assert_eq!(n.nsqd().topic("m").unwrap().depth(), 20);
}

#[tokio::test]
async fn mpub_topic_errors() {
    let n = Node::start().await;
    #[rustfmt::skip]
    let cases: &[ErrorCase] = &[
        ("POST", "/mpub", b"a", 400, "MISSING_ARG_TOPIC"),
        ("POST", "/mpub?topic=no*pe", b"a", 400, "INVALID_TOPIC"),
        // /mpub checks the topic before the body, and creates it before reading the body.
        ("POST", "/mpub?topic=made&binary=1", b"\x00", 413, "BAD_BODY"),
    ];
    n.expect_errors(cases).await;
    assert!(n.nsqd().topic("made").is_some());
}

fn binary_mpub(bodies: &[&[u8]]) -> Vec<u8> {
    let mut b = (bodies.len() as i32).to_be_bytes().to_vec();
    for m in bodies {
        b.extend_from_slice(&(m.len() as i32).to_be_bytes());
        b.extend_from_slice(m);
    }
    b
}

#[tokio::test]
async fn mpub_binary_mode() {
    let n = small_limits().await;
    let body = binary_mpub(&[b"bin\none", b"two"]);
    n.post("/mpub?topic=b&binary=true", &body)
        .await
        .expect_text("OK");
    n.post("/mpub?topic=b&binary=1", &body)
        .await
        .expect_text("OK");
    // Any other value is (deprecated) binary mode.
    n.post("/mpub?topic=b&binary=yes", &body)
        .await
        .expect_text("OK");
    assert_eq!(n.nsqd().topic("b").unwrap().depth(), 6);
    let mut c = consumer(&n, "b", "c", 1).await;
    let first = c.expect_message().await;
    assert!(first.body == b"bin\none"[..] || first.body == b"two"[..]);

    let bad = |body: Vec<u8>, code: &'static str| {
        let n = &n;
        async move {
            n.post("/mpub?topic=b&binary=true", &body)
                .await
                .expect_error(413, code);
        }
    };
    bad(0i32.to_be_bytes().to_vec(), "BAD_BODY").await;
    bad((-1i32).to_be_bytes().to_vec(), "BAD_BODY").await;
    bad(200i32.to_be_bytes().to_vec(), "BAD_BODY").await; // > (1000-4)/5 messages
    bad(vec![0, 0, 1], "BAD_BODY").await; // count cut short
    bad(binary_mpub(&[b""]), "BAD_MESSAGE").await; // size 0
    bad(binary_mpub(&[&[b'x'; 101]]), "BAD_MESSAGE").await; // > max-msg-size
    let mut short = binary_mpub(&[b"abc", b"def"]);
    short.truncate(short.len() - 1);
    bad(short, "BAD_MESSAGE").await; // body cut short
    let mut no_size = 2i32.to_be_bytes().to_vec();
    no_size.extend_from_slice(&binary_mpub(&[b"x"])[4..]);
    bad(no_size, "BAD_MESSAGE").await; // second size missing
                                       // Nothing was enqueued by the failed requests.
    assert_eq!(
        n.nsqd()
            .topic("b")
            .unwrap()
            .message_count
            .load(std::sync::atomic::Ordering::Relaxed),
        6
    );
}

// ---------------------------------------------------------------- /topic/*

#[tokio::test]
async fn topic_create() {
    let n = Node::start().await;
    n.post("/topic/create?topic=tc", b"").await.expect_empty();
    n.post("/topic/create?topic=tc", b"").await.expect_empty();
    assert!(n.nsqd().topic("tc").is_some());
    #[rustfmt::skip]
    let cases: &[ErrorCase] = &[
        ("POST", "/topic/create", b"", 400, "MISSING_ARG_TOPIC"),
        ("POST", "/topic/create?topic=b%20ad", b"", 400, "INVALID_TOPIC"),
    ];
    n.expect_errors(cases).await;
}

#[tokio::test]
async fn topic_delete() {
    let n = Node::start().await;
    n.post("/pub?topic=td", b"x").await.expect_text("OK");
    let mut c = consumer(&n, "td", "c", 0).await;
    n.post("/topic/delete?topic=td", b"").await.expect_empty();
    assert!(n.nsqd().topic("td").is_none());
    c.expect_closed().await;
    #[rustfmt::skip]
    let cases: &[ErrorCase] = &[
        ("POST", "/topic/delete?topic=td", b"", 404, "TOPIC_NOT_FOUND"),
        // No name validation: an invalid name is simply not found.
        ("POST", "/topic/delete?topic=in%20valid", b"", 404, "TOPIC_NOT_FOUND"),
        ("POST", "/topic/delete", b"", 400, "MISSING_ARG_TOPIC"),
    ];
    n.expect_errors(cases).await;
}

#[tokio::test]
async fn topic_empty() {
    let n = Node::start().await;
    n.post("/mpub?topic=te", b"a\nb\nc").await.expect_text("OK");
    n.post("/topic/create?topic=te", b"").await.expect_empty();
    assert_eq!(n.nsqd().topic("te").unwrap().depth(), 3);
    n.post("/topic/empty?topic=te", b"").await.expect_empty();
    assert_eq!(n.nsqd().topic("te").unwrap().depth(), 0);
    #[rustfmt::skip]
    let cases: &[ErrorCase] = &[
        ("POST", "/topic/empty?topic=missing", b"", 404, "TOPIC_NOT_FOUND"),
        ("POST", "/topic/empty?topic=bad!", b"", 400, "INVALID_TOPIC"),
        ("POST", "/topic/empty", b"", 400, "MISSING_ARG_TOPIC"),
    ];
    n.expect_errors(cases).await;
}

#[tokio::test]
async fn topic_pause_and_unpause() {
    let n = Node::start().await;
    n.post("/topic/create?topic=tp", b"").await.expect_empty();
    n.post("/channel/create?topic=tp&channel=c", b"")
        .await
        .expect_empty();
    n.post("/topic/pause?topic=tp", b"").await.expect_empty();
    assert!(n.nsqd().topic("tp").unwrap().is_paused());
    assert_eq!(topic_stats(&n.stats("").await, "tp")["paused"], true);
    let dat =
        std::fs::read_to_string(n.node.dir.path().join("nsqd.dat")).expect("nsqd.dat written");
    let meta: Value = serde_json::from_str(&dat).unwrap();
    assert_eq!(meta["topics"][0]["paused"], true, "{dat}");

    // Paused: messages wait at the topic.
    n.post("/pub?topic=tp", b"held").await.expect_text("OK");
    assert_eq!(n.nsqd().topic("tp").unwrap().depth(), 1);
    n.post("/topic/unpause?topic=tp", b"").await.expect_empty();
    assert!(!n.nsqd().topic("tp").unwrap().is_paused());
    let mut c = consumer(&n, "tp", "c", 1).await;
    assert_eq!(&c.expect_message().await.body[..], b"held");

    #[rustfmt::skip]
    let cases: &[ErrorCase] = &[
        ("POST", "/topic/pause?topic=nope", b"", 404, "TOPIC_NOT_FOUND"),
        ("POST", "/topic/unpause", b"", 400, "MISSING_ARG_TOPIC"),
    ];
    n.expect_errors(cases).await;
}

// ---------------------------------------------------------------- /channel/*

#[tokio::test]
async fn channel_create_needs_an_existing_topic() {
    let n = Node::start().await;
    n.post("/channel/create?topic=cc&channel=c", b"")
        .await
        .expect_error(404, "TOPIC_NOT_FOUND");
    n.post("/topic/create?topic=cc", b"").await.expect_empty();
    n.post("/channel/create?topic=cc&channel=c", b"")
        .await
        .expect_empty();
    n.post("/channel/create?topic=cc&channel=c", b"")
        .await
        .expect_empty();
    assert!(n.nsqd().topic("cc").unwrap().channel("c").is_some());
}

#[tokio::test]
async fn channel_argument_errors() {
    let n = Node::start().await;
    n.post("/topic/create?topic=ca", b"").await.expect_empty();
    for action in ["create", "delete", "empty", "pause", "unpause"] {
        let url = |q: &str| format!("/channel/{action}{q}");
        let (missing_topic, bad_topic, missing_channel, bad_channel, no_topic, no_channel) = (
            url(""),
            url("?topic=a:b&channel=c"),
            url("?topic=ca"),
            url("?topic=ca&channel=%24"),
            url("?topic=nope&channel=c"),
            url("?topic=ca&channel=nope"),
        );
        #[rustfmt::skip]
        let cases: &[ErrorCase] = &[
            ("POST", &missing_topic, b"", 400, "MISSING_ARG_TOPIC"),
            // Channel endpoints say INVALID_ARG_TOPIC where topic endpoints say INVALID_TOPIC.
            ("POST", &bad_topic, b"", 400, "INVALID_ARG_TOPIC"),
            ("POST", &missing_channel, b"", 400, "MISSING_ARG_CHANNEL"),
            ("POST", &bad_channel, b"", 400, "INVALID_ARG_CHANNEL"),
            ("POST", &no_topic, b"", 404, "TOPIC_NOT_FOUND"),
        ];
        n.expect_errors(cases).await;
        if action != "create" {
            n.expect_errors(&[("POST", &no_channel, b"", 404, "CHANNEL_NOT_FOUND")])
                .await;
        }
    }
}

#[tokio::test]
async fn channel_delete_disconnects_consumers() {
    let n = Node::start().await;
    n.post("/topic/create?topic=cd", b"").await.expect_empty();
    let mut c = consumer(&n, "cd", "gone", 0).await;
    n.post("/channel/delete?topic=cd&channel=gone", b"")
        .await
        .expect_empty();
    c.expect_closed().await;
    assert!(n.nsqd().topic("cd").unwrap().channel("gone").is_none());
    n.post("/channel/delete?topic=cd&channel=gone", b"")
        .await
        .expect_error(404, "CHANNEL_NOT_FOUND");
}

#[tokio::test]
async fn channel_empty_drops_queued_and_in_flight() {
    let n = Node::start().await;
    n.post("/topic/create?topic=ce", b"").await.expect_empty();
    let mut c = consumer(&n, "ce", "c", 1).await;
    n.post("/mpub?topic=ce", b"1\n2\n3").await.expect_text("OK");
    c.expect_message().await;
    let ch = n.nsqd().topic("ce").unwrap().channel("c").unwrap();
    assert_eq!((ch.depth(), ch.in_flight_count()), (2, 1));
    n.post("/channel/empty?topic=ce&channel=c", b"")
        .await
        .expect_empty();
    assert_eq!(
        (ch.depth(), ch.in_flight_count(), ch.deferred_count()),
        (0, 0, 0)
    );
    let stats = n.stats("&topic=ce").await;
    let client = &channel_stats(topic_stats(&stats, "ce"), "c")["clients"][0];
    assert_eq!(client["in_flight_count"], 0);
}

#[tokio::test]
async fn channel_pause_stops_and_resumes_delivery() {
    let n = Node::start().await;
    n.post("/topic/create?topic=cp", b"").await.expect_empty();
    let mut c = consumer(&n, "cp", "c", 5).await;
    n.post("/channel/pause?topic=cp&channel=c", b"")
        .await
        .expect_empty();
    assert_eq!(
        channel_stats(topic_stats(&n.stats("").await, "cp"), "c")["paused"],
        true
    );
    let dat = std::fs::read_to_string(n.node.dir.path().join("nsqd.dat")).unwrap();
    assert!(dat.contains(r#"{"name":"c","paused":true}"#), "{dat}");
    n.post("/pub?topic=cp", b"waiting").await.expect_text("OK");
    c.expect_silence(Duration::from_millis(200)).await;
    n.post("/channel/unpause?topic=cp&channel=c", b"")
        .await
        .expect_empty();
    assert_eq!(&c.expect_message().await.body[..], b"waiting");
}

// ---------------------------------------------------------------- /config

#[tokio::test]
async fn config_get_encodes_like_nsqd() {
    let n = Node::start_with(|o| {
        o.mem_queue_size = 77;
        o.node_id = Some(12);
        o.lookupd_tcp_addresses = vec!["127.0.0.1:1".into()];
        o.broadcast_address = Some("node.example".into());
    })
    .await;
    let get = |opt: &'static str| {
        let n = &n;
        async move { n.get(&format!("/config/{opt}")).await.expect_json(200) }
    };
    assert_eq!(get("mem_queue_size").await, 77);
    assert_eq!(get("id").await, 12);
    assert_eq!(get("msg_timeout").await, 60_000_000_000i64);
    assert_eq!(get("max_req_timeout").await, 3_600_000_000_000i64);
    assert_eq!(get("log_level").await, 2);
    assert_eq!(
        get("nsqlookupd_tcp_addresses").await,
        json!(["127.0.0.1:1"])
    );
    assert_eq!(get("tcp_address").await, "127.0.0.1:0");
    assert_eq!(get("broadcast_tcp_port").await, n.node.addr.port());
    assert_eq!(get("broadcast_http_port").await, n.http.port());
    assert_eq!(get("snappy").await, true);
    assert_eq!(get("tls_required").await, 0);
    assert_eq!(get("tls_min_version").await, 769);
    assert_eq!(
        get("statsd_prefix").await,
        format!("nsq.node_example_{}.", n.http.port())
    );
    assert_eq!(get("auth_http_addresses").await, json!([]));
    for unknown in ["nope", "mem-queue-size", "node_id", "config", "verbose"] {
        n.get(&format!("/config/{unknown}"))
            .await
            .expect_error(400, "INVALID_OPTION");
    }
}

#[tokio::test]
async fn config_put_lookupd_addresses() {
    let n = Node::start().await;
    let mut watch = n.nsqd().lookupd_tcp_addresses.subscribe();
    let r = n
        .put(
            "/config/nsqlookupd_tcp_addresses",
            br#"["127.0.0.1:1","127.0.0.1:2"]"#,
        )
        .await;
    assert_eq!(r.expect_json(200), json!(["127.0.0.1:1", "127.0.0.1:2"]));
    assert!(watch.has_changed().unwrap(), "watchers are told");
    assert_eq!(
        *watch.borrow_and_update(),
        vec!["127.0.0.1:1", "127.0.0.1:2"]
    );
    assert_eq!(
        n.get("/config/nsqlookupd_tcp_addresses")
            .await
            .expect_json(200),
        json!(["127.0.0.1:1", "127.0.0.1:2"])
    );
    n.put("/config/nsqlookupd_tcp_addresses", b"[]")
        .await
        .expect_json(200);
    let path = "/config/nsqlookupd_tcp_addresses";
    #[rustfmt::skip]
    let cases: &[ErrorCase] = &[
        ("PUT", path, b"\"127.0.0.1:1\"", 400, "INVALID_VALUE"),
        ("PUT", path, b"[1]", 400, "INVALID_VALUE"),
        ("PUT", path, b"", 413, "INVALID_VALUE"),
    ];
    n.expect_errors(cases).await;
}

#[tokio::test]
async fn config_put_log_level_and_limits() {
    let n = small_limits().await;
    assert_eq!(
        n.put("/config/log_level", b"DEBUG").await.expect_json(200),
        1
    );
    assert_eq!(n.get("/config/log_level").await.expect_json(200), 1);
    assert_eq!(*n.nsqd().log_level.borrow(), "debug");
    assert_eq!(
        n.put("/config/log_level", b"fatal").await.expect_json(200),
        5
    );
    #[rustfmt::skip]
    let cases: &[ErrorCase] = &[
        ("PUT", "/config/log_level", b"verbose", 400, "INVALID_VALUE"),
        ("PUT", "/config/log_level", b"info\n", 400, "INVALID_VALUE"),
        ("PUT", "/config/mem_queue_size", b"5", 400, "INVALID_OPTION"),
        // Body checks come first, even for an option that cannot be set.
        ("PUT", "/config/mem_queue_size", b"", 413, "INVALID_VALUE"),
        ("PUT", "/config/log_level", &[b'd'; 101], 413, "INVALID_VALUE"),
    ];
    n.expect_errors(cases).await;
}

// ---------------------------------------------------------------- /stats

const TOPIC_KEYS: [&str; 8] = [
    "topic_name",
    "channels",
    "depth",
    "backend_depth",
    "message_count",
    "message_bytes",
    "paused",
    "e2e_processing_latency",
];
const CHANNEL_KEYS: [&str; 12] = [
    "channel_name",
    "depth",
    "backend_depth",
    "in_flight_count",
    "deferred_count",
    "message_count",
    "requeue_count",
    "timeout_count",
    "client_count",
    "clients",
    "paused",
    "e2e_processing_latency",
];
const CLIENT_KEYS: [&str; 20] = [
    "client_id",
    "hostname",
    "version",
    "remote_address",
    "state",
    "ready_count",
    "in_flight_count",
    "message_count",
    "finish_count",
    "requeue_count",
    "connect_ts",
    "sample_rate",
    "deflate",
    "snappy",
    "user_agent",
    "tls",
    "tls_cipher_suite",
    "tls_version",
    "tls_negotiated_protocol",
    "tls_negotiated_protocol_is_mutual",
];
const MEMORY_KEYS: [&str; 9] = [
    "heap_objects",
    "heap_idle_bytes",
    "heap_in_use_bytes",
    "heap_released_bytes",
    "gc_pause_usec_100",
    "gc_pause_usec_99",
    "gc_pause_usec_95",
    "next_gc_bytes",
    "gc_total_runs",
];

fn assert_ints(v: &Value, fields: &[&str]) {
    for f in fields {
        assert!(
            v[f].is_i64() || v[f].is_u64(),
            "{f} is not an integer in {v}"
        );
    }
}

fn assert_client_types(c: &Value) {
    for f in [
        "client_id",
        "hostname",
        "version",
        "remote_address",
        "user_agent",
    ] {
        assert!(c[f].is_string(), "{f} in {c}");
    }
    for f in ["tls_cipher_suite", "tls_version", "tls_negotiated_protocol"] {
        assert_eq!(c[f], "", "{f} without TLS");
    }
    for f in [
        "deflate",
        "snappy",
        "tls",
        "tls_negotiated_protocol_is_mutual",
    ] {
        assert!(c[f].is_boolean(), "{f} in {c}");
    }
    assert_ints(
        c,
        &[
            "state",
            "ready_count",
            "in_flight_count",
            "message_count",
            "finish_count",
            "requeue_count",
            "connect_ts",
            "sample_rate",
        ],
    );
    assert_eq!(c["version"], "V2");
}

/// A node with a consumer holding one message in flight on `st/ch` and a TCP producer
/// that published to two topics.
async fn busy_node() -> (Node, Conn, Conn) {
    let n = Node::start().await;
    let mut producer = n.node.connect().await;
    producer.publish("st", b"first").await;
    producer.publish("st", b"second").await;
    producer.publish("other", b"third").await;
    let mut cons = consumer(&n, "st", "ch", 1).await;
    n.post("/channel/create?topic=st&channel=another", b"")
        .await
        .expect_empty();
    let m = cons.expect_message().await;
    assert!(m.body == b"first"[..] || m.body == b"second"[..]);
    (n, producer, cons)
}

#[tokio::test]
async fn stats_json_document_key_by_key() {
    let (n, _producer, _cons) = busy_node().await;
    let r = n.get("/stats?format=json").await;
    let raw = r.text();
    let stats = r.expect_json(200);

    // Top level, in nsqd's key order.
    let order: Vec<usize> = [
        "\"version\"",
        "\"health\"",
        "\"start_time\"",
        "\"topics\"",
        "\"memory\"",
        "\"producers\"",
    ]
    .iter()
    .map(|k| raw.find(k).unwrap_or_else(|| panic!("{k} in {raw}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "key order {raw}");
    assert_eq!(
        keys(&stats),
        sorted(vec![
            "version",
            "health",
            "start_time",
            "topics",
            "memory",
            "producers"
        ])
    );
    assert_eq!(stats["version"], "1.3.0");
    assert_eq!(stats["health"], "OK");
    assert_eq!(stats["start_time"], n.nsqd().start_time);

    // Topics sorted by name, channels sorted by name.
    let names: Vec<&str> = stats["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other", "st"]);
    let t = topic_stats(&stats, "st");
    assert_eq!(keys(t), sorted(TOPIC_KEYS.to_vec()));
    assert_ints(
        t,
        &["depth", "backend_depth", "message_count", "message_bytes"],
    );
    assert_eq!(t["message_count"], 2);
    assert_eq!(t["message_bytes"], 11);
    assert_eq!(t["depth"], 0);
    assert_eq!(t["backend_depth"], 0);
    assert_eq!(t["paused"], false);
    assert_eq!(
        t["e2e_processing_latency"],
        json!({"count": 0, "percentiles": null})
    );
    let channel_names: Vec<&str> = t["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel_name"].as_str().unwrap())
        .collect();
    assert_eq!(channel_names, ["another", "ch"]);

    let c = channel_stats(t, "ch");
    assert_eq!(keys(c), sorted(CHANNEL_KEYS.to_vec()));
    assert_ints(
        c,
        &[
            "depth",
            "backend_depth",
            "in_flight_count",
            "deferred_count",
            "message_count",
            "requeue_count",
            "timeout_count",
            "client_count",
        ],
    );
    assert_eq!(c["message_count"], 2);
    assert_eq!(c["in_flight_count"], 1);
    assert_eq!(c["depth"], 1);
    assert_eq!(c["deferred_count"], 0);
    assert_eq!(c["client_count"], 1);
    assert_eq!(c["paused"], false);
    assert_eq!(
        c["e2e_processing_latency"],
        json!({"count": 0, "percentiles": null})
    );
    assert_eq!(channel_stats(t, "another")["clients"], json!([]));

    let clients = c["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 1);
    let cl = &clients[0];
    assert_eq!(
        keys(cl),
        sorted(CLIENT_KEYS.to_vec()),
        "no authed/pub_counts when empty"
    );
    assert_client_types(cl);
    assert_eq!(cl["client_id"], "cons");
    assert_eq!(cl["hostname"], "consumer-host");
    assert_eq!(cl["user_agent"], "http-test/1.0");
    assert_eq!(cl["state"], 3);
    assert_eq!(cl["ready_count"], 1);
    assert_eq!(cl["in_flight_count"], 1);
    assert_eq!(cl["message_count"], 1);
    assert_eq!(cl["tls"], false);
    assert!(cl["remote_address"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - cl["connect_ts"].as_i64().unwrap()).abs() < 60);

    // Memory: every key, integers.
    assert_eq!(keys(&stats["memory"]), sorted(MEMORY_KEYS.to_vec()));
    assert_ints(&stats["memory"], &MEMORY_KEYS);
    assert!(stats["memory"]["heap_in_use_bytes"].as_u64().unwrap() > 0);

    // Producers: the TCP publisher only, with ONE pub_counts entry (nsqd's quirk).
    let producers = stats["producers"].as_array().unwrap();
    assert_eq!(producers.len(), 1, "{producers:?}");
    let p = &producers[0];
    assert_eq!(
        keys(p),
        sorted([CLIENT_KEYS.to_vec(), vec!["pub_counts"]].concat())
    );
    assert_client_types(p);
    assert_eq!(p["state"], 0);
    let pub_counts = p["pub_counts"].as_array().unwrap();
    assert_eq!(pub_counts.len(), 1, "{pub_counts:?}");
    assert_eq!(keys(&pub_counts[0]), ["count", "topic"]);
    let expected = if pub_counts[0]["topic"] == "st" { 2 } else { 1 };
    assert_eq!(pub_counts[0]["count"], expected);
}

#[tokio::test]
async fn stats_filters() {
    let (n, _producer, _cons) = busy_node().await;

    // A topic filter narrows the producers' pub_counts to that topic.
    let s = n.stats("&topic=st").await;
    assert_eq!(s["topics"].as_array().unwrap().len(), 1);
    assert_eq!(
        s["producers"][0]["pub_counts"],
        json!([{"topic": "st", "count": 2}])
    );
    let s = n.stats("&topic=other").await;
    assert_eq!(
        s["producers"][0]["pub_counts"],
        json!([{"topic": "other", "count": 1}])
    );

    // A topic that does not exist: topics AND producers are null.
    let s = n.stats("&topic=missing").await;
    assert_eq!(s["topics"], Value::Null);
    assert_eq!(s["producers"], Value::Null);
    assert!(s["memory"].is_object());

    // A channel filter without topic: only topics having that channel.
    let s = n.stats("&channel=another").await;
    let topics = s["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0]["topic_name"], "st");
    assert_eq!(topics[0]["channels"].as_array().unwrap().len(), 1);
    assert_eq!(topics[0]["channels"][0]["channel_name"], "another");

    // Excluding clients: clients null, client_count kept, producers null.
    for off in ["false", "0"] {
        let s = n.stats(&format!("&include_clients={off}")).await;
        let c = channel_stats(topic_stats(&s, "st"), "ch");
        assert_eq!(c["clients"], Value::Null);
        assert_eq!(c["client_count"], 1);
        assert_eq!(s["producers"], Value::Null);
    }
    // Any other value means true.
    let s = n.stats("&include_clients=nope").await;
    assert!(s["producers"].is_array());

    // Excluding memory removes the key altogether.
    let r = n.get("/stats?format=json&include_mem=false").await;
    assert!(!r.text().contains("\"memory\""));
    assert!(n.stats("&include_mem=0").await.get("memory").is_none());
    assert!(n.stats("&include_mem=yes").await["memory"].is_object());
}

#[tokio::test]
async fn stats_on_an_empty_node() {
    let n = Node::start().await;
    let s = n.stats("").await;
    assert_eq!(s["topics"], json!([]));
    assert_eq!(s["producers"], Value::Null);
}

#[tokio::test]
async fn stats_text_format() {
    let n = Node::start().await;
    let r = n.get("/stats").await;
    assert_eq!(r.status, 200);
    r.assert_v1();
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "nsqd v1.3.0 (built w/rust)");
    assert!(lines[1].starts_with("start_time "), "{text}");
    assert_eq!(&lines[1][21..22], "T", "RFC 3339: {}", lines[1]);
    assert!(lines[2].starts_with("uptime "), "{text}");
    assert_eq!(lines[3], "");
    assert_eq!(lines[4], "Health: OK");
    assert_eq!(lines[5], "");
    assert_eq!(lines[6], "Memory:");
    assert!(lines[7].starts_with("   heap_objects "));
    assert!(
        text.ends_with("\nTopics: None\n\nProducers: None\n"),
        "{text}"
    );
    // Any format other than json is text.
    assert!(n
        .get("/stats?format=xml")
        .await
        .text()
        .starts_with("nsqd v1.3.0"));

    let (n, _producer, _cons) = busy_node().await;
    n.post("/topic/pause?topic=other", b"").await.expect_empty();
    let text = n.get("/stats?include_mem=false").await.text();
    assert!(!text.contains("Memory:"));
    assert!(
        text.contains(
            "\nTopics:\n*P [other          ] depth: 1     be-depth: 0     msgs: 1        e2e%: \n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "\n   [st             ] depth: 0     be-depth: 0     msgs: 2        e2e%: \n"
        ),
        "{text}"
    );
    assert!(text.contains("\n      [ch                       ] depth: 1     be-depth: 0     inflt: 1    def: 0    re-q: 0     timeout: 0     msgs: 2        e2e%: \n"), "{text}");
    assert!(text.contains("        [V2 consumer-host:"), "{text}");
    assert!(text.contains("] state: 3 inflt: 1    rdy: 1    fin: 0        re-q: 0        msgs: 1        connected: "), "{text}");
    assert!(text.contains("\nProducers:\n   [V2 127.0.0.1:"), "{text}");
    assert!(text.contains(" topics: "), "{text}");
}

#[tokio::test]
async fn stats_e2e_latency_when_configured() {
    let n = Node::start_with(|o| o.e2e_processing_latency_percentiles = vec![1.0, 0.5]).await;
    assert_eq!(
        n.get("/config/e2e_processing_latency_percentiles")
            .await
            .expect_json(200),
        json!([1, 0.5])
    );
    n.post("/topic/create?topic=lonely", b"")
        .await
        .expect_empty();
    n.post("/topic/create?topic=e2e", b"").await.expect_empty();
    let mut c = consumer(&n, "e2e", "c", 1).await;
    n.post("/pub?topic=e2e", b"timed").await.expect_text("OK");
    let m = c.expect_message().await;
    c.fin(&m.id).await;
    c.expect_alive().await;

    let s = n.stats("").await;
    // A topic without channels has no latency stream, even with the feature on.
    assert_eq!(
        topic_stats(&s, "lonely")["e2e_processing_latency"],
        json!({"count": 0, "percentiles": null})
    );
    for e in [
        &topic_stats(&s, "e2e")["e2e_processing_latency"],
        &channel_stats(topic_stats(&s, "e2e"), "c")["e2e_processing_latency"],
    ] {
        assert_eq!(e["count"], 1, "{e}");
        let p = e["percentiles"].as_array().expect("percentiles");
        assert_eq!(p.len(), 2);
        assert_eq!(keys(&p[0]), ["quantile", "value"]);
        assert_eq!(
            (p[0]["quantile"].clone(), p[1]["quantile"].clone()),
            (json!(1), json!(0.5))
        );
        assert!(p[0]["value"].as_f64().unwrap() > 0.0, "{e}");
    }
    let text = n.get("/stats?include_mem=false").await.text();
    let line = text
        .lines()
        .find(|l| l.starts_with("   [e2e"))
        .expect("topic line");
    let e2e = line.split("e2e%: ").nth(1).unwrap();
    assert_eq!(e2e.split(", ").count(), 2, "{line}");
    assert!(e2e.ends_with('s'), "{line}");
}
