//! Real nsqd and nsqlookupd servers, started in-process on 127.0.0.1 port 0 (the broker
//! and lookupd crates as dev-dependencies), plus the few raw client calls the tests need
//! to look at them independently of the operator's own admin client.

use std::net::SocketAddr;
use std::sync::Arc;

use nsq_protocol::lookup::{ChannelsResponse, TopicsResponse};
use nsq_protocol::stats::StatsResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::admin::HttpNsqAdmin;
use crate::controller::Context;
use crate::crd::{ClusterRef, NsqCluster, NsqClusterSpec};
use crate::fixtures::{context, ApiServer, StaticEndpoints};

/// One nsqd with its own data directory.
pub struct Nsqd {
    pub running: nsqd::RunningNsqd,
    dir: tempfile::TempDir,
}

impl Nsqd {
    pub async fn start(lookupd_tcp: &[SocketAddr]) -> Nsqd {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut opts = nsqd::Options::defaults();
        opts.tcp_address = "127.0.0.1:0".into();
        opts.http_address = "127.0.0.1:0".into();
        opts.broadcast_address = Some("127.0.0.1".into());
        opts.data_path = Some(dir.path().to_path_buf());
        opts.lookupd_tcp_addresses = lookupd_tcp.iter().map(|a| a.to_string()).collect();
        let running = nsqd::RunningNsqd::start(opts).await.expect("nsqd starts");
        Nsqd { running, dir }
    }

    /// Stops it the way a pod stops (queues written to disk); returns its data directory.
    pub async fn stop(self) -> tempfile::TempDir {
        self.running.shutdown().await;
        self.dir
    }

    /// `host:port` of the HTTP API.
    pub fn http(&self) -> String {
        self.running
            .http_addr
            .expect("nsqd has an HTTP listener")
            .to_string()
    }

    /// `GET /stats?format=json&topic=T`.
    pub async fn stats(&self, topic: &str) -> StatsResponse {
        let body = http_get(&self.http(), &format!("/stats?format=json&topic={topic}")).await;
        serde_json::from_str(&body).expect("stats JSON")
    }

    /// Whether the node has `topic` (and, when given, its `channel`); with its pause state.
    pub async fn has(&self, topic: &str, channel: Option<&str>) -> Option<bool> {
        let t = self
            .stats(topic)
            .await
            .topics
            .unwrap_or_default()
            .into_iter()
            .find(|t| t.topic_name == topic)?;
        match channel {
            None => Some(t.paused),
            Some(c) => t
                .channels
                .into_iter()
                .find(|ch| ch.channel_name == c)
                .map(|ch| ch.paused),
        }
    }

    /// Publishes one message with the TCP protocol (`PUB`), waiting for `OK`.
    pub async fn publish(&self, topic: &str, body: &[u8]) {
        let mut s = TcpStream::connect(self.running.tcp_addr)
            .await
            .expect("connect");
        let mut frame = b"  V2".to_vec();
        frame.extend_from_slice(format!("PUB {topic}\n").as_bytes());
        frame.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
        frame.extend_from_slice(body);
        s.write_all(&frame).await.expect("write");
        let mut head = [0u8; 8];
        s.read_exact(&mut head).await.expect("response");
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let mut rest = vec![0u8; size - 4];
        s.read_exact(&mut rest).await.expect("response body");
        assert_eq!(
            rest,
            b"OK",
            "PUB answered {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// One nsqlookupd.
pub struct Lookupd(pub nsqlookupd::server::Server);

impl Lookupd {
    pub async fn start() -> Lookupd {
        let opts = nsqlookupd::options::Options {
            tcp_address: "127.0.0.1:0".into(),
            http_address: "127.0.0.1:0".into(),
            broadcast_address: "127.0.0.1".into(),
            ..nsqlookupd::options::Options::default()
        };
        Lookupd(
            nsqlookupd::server::Server::bind(opts)
                .await
                .expect("nsqlookupd starts"),
        )
    }

    pub fn http(&self) -> String {
        self.0.http_addr().to_string()
    }

    pub async fn topics(&self) -> Vec<String> {
        let body = http_get(&self.http(), "/topics").await;
        serde_json::from_str::<TopicsResponse>(&body)
            .expect("topics JSON")
            .topics
    }

    pub async fn channels(&self, topic: &str) -> Vec<String> {
        let body = http_get(&self.http(), &format!("/channels?topic={topic}")).await;
        serde_json::from_str::<ChannelsResponse>(&body)
            .expect("channels JSON")
            .channels
    }
}

/// A plain HTTP/1.0 GET; returns the body of a 200.
pub async fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "GET {path}: {head}\n{body}"
    );
    body.to_string()
}

/// A small NSQ cluster: one nsqlookupd and `n` nsqd registered with it.
pub struct Fleet {
    pub lookupd: Lookupd,
    pub nsqds: Vec<Nsqd>,
    pub endpoints: Arc<StaticEndpoints>,
}

impl Fleet {
    pub async fn start(n: usize) -> Fleet {
        let lookupd = Lookupd::start().await;
        let mut nsqds = Vec::new();
        for _ in 0..n {
            nsqds.push(Nsqd::start(&[lookupd.0.tcp_addr()]).await);
        }
        let endpoints =
            StaticEndpoints::new(nsqds.iter().map(Nsqd::http).collect(), vec![lookupd.http()]);
        Fleet {
            lookupd,
            nsqds,
            endpoints,
        }
    }

    /// Starts one more nsqd (a pod that appeared) and publishes it in the endpoints.
    pub async fn add_node(&mut self) {
        self.nsqds
            .push(Nsqd::start(&[self.lookupd.0.tcp_addr()]).await);
        self.endpoints
            .set_nsqd(self.nsqds.iter().map(Nsqd::http).collect());
    }

    /// A Context using the real HTTP admin client against this fleet.
    pub fn context(&self) -> (Arc<Context>, ApiServer) {
        context(Arc::new(HttpNsqAdmin::default()), self.endpoints.clone())
    }

    pub async fn shutdown(self) {
        for n in self.nsqds {
            n.running.shutdown().await;
        }
        self.lookupd.0.shutdown().await;
    }
}

/// The NsqCluster `demo` the double returns for GETs.
pub fn cluster_json() -> serde_json::Value {
    let mut c = NsqCluster::new("demo", NsqClusterSpec::default());
    c.metadata.namespace = Some("ns".into());
    c.metadata.uid = Some("uid-1".into());
    serde_json::to_value(&c).expect("json")
}

/// The cluster reference all test objects use.
pub fn demo_ref() -> ClusterRef {
    ClusterRef {
        name: "demo".into(),
    }
}

pub const CLUSTER_PATH: &str = "/apis/nsq.rustnsq.dev/v1alpha1/namespaces/ns/nsqclusters/demo";

/// A plain HTTP/1.0 POST without body; returns the status code.
pub async fn http_post(addr: &str, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
