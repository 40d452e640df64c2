//! Shared by the lookupd test targets: a server bound to 127.0.0.1:0, a raw V1 TCP
//! client (an nsqd, as far as the lookupd knows) and a raw HTTP/1.1 client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use nsqlookupd::{Invocation, Server};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A server on ephemeral TCP and HTTP ports, with `extra` flags appended.
pub async fn start(extra: &[&str]) -> Server {
    let mut args = vec![
        "nsqlookupd",
        "--tcp-address",
        "127.0.0.1:0",
        "--http-address",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let Invocation::Run(opts) = nsqlookupd::options::parse(args).expect("options") else {
        panic!("expected a run invocation");
    };
    Server::bind(opts).await.expect("bind")
}

// ---------------------------------------------------------------- TCP

/// A V1 client connection (an nsqd, as far as the lookupd knows).
pub struct Peer {
    pub stream: TcpStream,
}

impl Peer {
    /// Connects and sends the magic.
    pub async fn connect(server: &Server) -> Peer {
        let mut peer = Peer::connect_raw(server).await;
        peer.send(b"  V1").await;
        peer
    }

    pub async fn connect_raw(server: &Server) -> Peer {
        let stream = TcpStream::connect(server.tcp_addr())
            .await
            .expect("connect");
        Peer { stream }
    }

    /// The `ip:port` the lookupd sees us as (our peer id).
    pub fn id(&self) -> String {
        self.stream.local_addr().expect("local addr").to_string()
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one size-prefixed reply.
    pub async fn reply(&mut self) -> String {
        let read = async {
            let size = self.stream.read_i32().await.expect("reply size");
            let mut data = vec![0; usize::try_from(size).expect("non-negative size")];
            self.stream.read_exact(&mut data).await.expect("reply data");
            String::from_utf8(data).expect("utf-8 reply")
        };
        tokio::time::timeout(IO_TIMEOUT, read)
            .await
            .expect("reply in time")
    }

    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends `line` and asserts the reply is `OK`.
    pub async fn cmd_ok(&mut self, line: &str) {
        assert_eq!(self.cmd(line).await, "OK", "{line}");
    }

    pub async fn identify_raw(&mut self, body: &[u8]) -> String {
        let mut msg = b"IDENTIFY\n".to_vec();
        msg.extend_from_slice(&(body.len() as i32).to_be_bytes());
        msg.extend_from_slice(body);
        self.send(&msg).await;
        self.reply().await
    }

    /// IDENTIFY as an nsqd broadcasting `broadcast_address`; the reply, parsed.
    pub async fn identify_as(&mut self, broadcast_address: &str, http_port: u16) -> Value {
        let body = json!({
            "broadcast_address": broadcast_address,
            "hostname": "nsqd-host",
            "http_port": http_port,
            "tcp_port": 4150,
            "version": "1.3.0",
        });
        let reply = self.identify_raw(body.to_string().as_bytes()).await;
        serde_json::from_str(&reply)
            .unwrap_or_else(|e| panic!("IDENTIFY reply is JSON ({e}): {reply}"))
    }

    /// IDENTIFY as an nsqd broadcasting `nsqd-<http_port>`.
    pub async fn identify(&mut self, http_port: u16) -> Value {
        self.identify_as(&format!("nsqd-{http_port}"), http_port)
            .await
    }

    /// Asserts the server closed the connection (after any replies already read).
    pub async fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        let n = tokio::time::timeout(IO_TIMEOUT, self.stream.read_to_end(&mut rest))
            .await
            .expect("close in time")
            .unwrap_or(0);
        assert_eq!(n, 0, "unexpected bytes before close: {rest:?}");
    }

    /// Asserts `reply` is the fatal error `expected`, and that the connection then closes.
    pub async fn expect_fatal(&mut self, reply: String, expected: &str) {
        assert_eq!(reply, expected);
        self.expect_closed().await;
    }
}

// ---------------------------------------------------------------- HTTP

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }

    /// A V1 JSON success: 200, both content-type headers.
    pub fn assert_v1_json(&self) -> Value {
        assert_eq!(self.status, 200, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(self.header("x-nsq-content-type"), Some("nsq; version=1.0"));
        self.json()
    }

    /// A V1 success with no body.
    pub fn assert_v1_empty(&self) {
        assert_eq!(self.status, 200, "{self:?}");
        assert_eq!(self.body, "");
        assert_eq!(self.header("content-type"), None);
        assert_eq!(self.header("x-nsq-content-type"), Some("nsq; version=1.0"));
    }

    /// A V1 error: status, `{"message":CODE}`, both headers.
    pub fn assert_v1_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body, format!("{{\"message\":\"{code}\"}}"));
        assert_eq!(
            self.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(self.header("x-nsq-content-type"), Some("nsq; version=1.0"));
    }
}

/// One request on a fresh connection (`Connection: close`), with an optional `Accept`.
pub async fn http_accept(
    addr: SocketAddr,
    method: &str,
    target: &str,
    accept: Option<&str>,
) -> HttpResponse {
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    if let Some(a) = accept {
        req.push_str(&format!("Accept: {a}\r\n"));
    }
    req.push_str("\r\n");
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("http connect");
        stream.write_all(req.as_bytes()).await.expect("http write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("http read");
        raw
    };
    let raw = tokio::time::timeout(IO_TIMEOUT, exchange)
        .await
        .expect("http in time");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_string(),
    }
}

pub async fn http(addr: SocketAddr, method: &str, target: &str) -> HttpResponse {
    http_accept(addr, method, target, None).await
}

pub async fn get(server: &Server, target: &str) -> HttpResponse {
    http(server.http_addr(), "GET", target).await
}

pub async fn post(server: &Server, target: &str) -> HttpResponse {
    http(server.http_addr(), "POST", target).await
}
