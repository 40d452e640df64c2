//! Test support: an in-process nsqd on 127.0.0.1:0 and a raw protocol V2 client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nsq_protocol::client;
use nsq_protocol::compress::{DeflateDecoder, DeflateEncoder, SnappyDecoder, SnappyEncoder};
use nsq_protocol::frame::{take_frame, Frame, FrameType};
use nsq_protocol::message::{decode_message, DecodedMessage};
use nsq_protocol::MessageId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestNode {
    pub running: Option<nsqd::RunningNsqd>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub opts: nsqd::Options,
}

impl TestNode {
    pub async fn start() -> TestNode {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(f: impl FnOnce(&mut nsqd::Options)) -> TestNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = nsqd::Options::defaults();
        opts.tcp_address = "127.0.0.1:0".into();
        opts.http_address = String::new();
        opts.data_path = Some(dir.path().to_path_buf());
        f(&mut opts);
        let running = nsqd::RunningNsqd::start(opts.clone())
            .await
            .expect("start nsqd");
        let addr = running.tcp_addr;
        TestNode {
            running: Some(running),
            addr,
            dir,
            opts,
        }
    }

    /// Clean shutdown, then a new node on the same data path.
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = nsqd::RunningNsqd::start(self.opts.clone())
            .await
            .expect("restart nsqd");
        self.addr = running.tcp_addr;
        self.running = Some(running);
    }

    pub fn nsqd(&self) -> &std::sync::Arc<nsqd::nsqd::Nsqd> {
        &self.running.as_ref().expect("running").nsqd
    }

    pub async fn connect(&self) -> Conn {
        Conn::connect(self.addr).await
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

#[allow(clippy::large_enum_variant)]
enum Codec {
    Plain,
    Snappy(SnappyEncoder, SnappyDecoder),
    Deflate(DeflateEncoder, DeflateDecoder),
}

/// A raw V2 connection.
pub struct Conn {
    pub stream: TcpStream,
    plain_in: BytesMut,
    codec: Codec,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(b"  V2").await.expect("magic");
        Conn {
            stream,
            plain_in: BytesMut::new(),
            codec: Codec::Plain,
        }
    }

    pub async fn connect_raw(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Conn {
            stream,
            plain_in: BytesMut::new(),
            codec: Codec::Plain,
        }
    }

    pub async fn send(&mut self, data: &[u8]) {
        let wire = match &mut self.codec {
            Codec::Plain => Bytes::copy_from_slice(data),
            Codec::Snappy(e, _) => {
                let mut out = BytesMut::new();
                e.encode(data, &mut out).expect("snappy");
                out.freeze()
            }
            Codec::Deflate(e, _) => {
                let mut out = BytesMut::new();
                e.encode(data, &mut out).expect("deflate");
                out.freeze()
            }
        };
        self.stream.write_all(&wire).await.expect("write");
    }

    /// Sends bytes built by an encoder from `nsq_protocol::client`.
    pub async fn cmd(&mut self, build: impl FnOnce(&mut BytesMut)) {
        let mut b = BytesMut::new();
        build(&mut b);
        self.send(&b).await;
    }

    /// Switches to snappy; bytes already read past the last frame are compressed.
    pub fn use_snappy(&mut self) {
        let mut d = SnappyDecoder::new();
        let pending = self.plain_in.split();
        d.decode(&pending, &mut self.plain_in).expect("snappy in");
        self.codec = Codec::Snappy(SnappyEncoder::new(), d);
    }

    /// Switches to deflate; bytes already read past the last frame are compressed.
    pub fn use_deflate(&mut self, level: u32) {
        let mut d = DeflateDecoder::new();
        let pending = self.plain_in.split();
        d.decode(&pending, &mut self.plain_in).expect("deflate in");
        self.codec = Codec::Deflate(DeflateEncoder::new(level), d);
    }

    /// Next frame, `None` on EOF. Panics after [`WAIT`].
    pub async fn frame(&mut self) -> Option<Frame> {
        self.frame_within(WAIT)
            .await
            .expect("timed out waiting for a frame")
    }

    /// Next frame within `d`: `Err(())` on timeout, `Ok(None)` on EOF.
    pub async fn frame_within(&mut self, d: Duration) -> Result<Option<Frame>, ()> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            if let Some(f) = take_frame(&mut self.plain_in).expect("valid frame") {
                return Ok(Some(f));
            }
            let mut raw = vec![0u8; 64 * 1024];
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut raw)).await {
                Err(_) => return Err(()),
                Ok(Ok(n)) => n,
                Ok(Err(_)) => 0,
            };
            if n == 0 {
                return Ok(None);
            }
            match &mut self.codec {
                Codec::Plain => self.plain_in.extend_from_slice(&raw[..n]),
                Codec::Snappy(_, d) => d.decode(&raw[..n], &mut self.plain_in).expect("snappy in"),
                Codec::Deflate(_, d) => {
                    d.decode(&raw[..n], &mut self.plain_in).expect("deflate in")
                }
            }
        }
    }

    /// Next frame that is not a heartbeat.
    pub async fn next(&mut self) -> Frame {
        loop {
            let f = self.frame().await.expect("connection closed unexpectedly");
            if !(f.frame_type == FrameType::Response && &f.data[..] == b"_heartbeat_") {
                return f;
            }
        }
    }

    pub async fn expect_response(&mut self, body: &str) {
        let f = self.next().await;
        assert_eq!(
            (f.frame_type, String::from_utf8_lossy(&f.data).into_owned()),
            (FrameType::Response, body.to_string())
        );
    }

    pub async fn expect_error(&mut self, body: &str) {
        let f = self.next().await;
        assert_eq!(
            (f.frame_type, String::from_utf8_lossy(&f.data).into_owned()),
            (FrameType::Error, body.to_string())
        );
    }

    /// A fatal error: the frame, then the server closes the connection.
    pub async fn expect_fatal(&mut self, body: &str) {
        self.expect_error(body).await;
        self.expect_closed().await;
    }

    pub async fn expect_closed(&mut self) {
        match self.frame_within(WAIT).await {
            Ok(None) => {}
            Ok(Some(f)) => panic!("expected close, got {f:?}"),
            Err(()) => panic!("expected close, connection still open"),
        }
    }

    /// Checks the connection is still served: NOP has no reply, so publish and read OK.
    pub async fn expect_alive(&mut self) {
        self.cmd(|b| client::publish(b, "alive_check", b"x")).await;
        self.expect_response("OK").await;
    }

    pub async fn expect_message(&mut self) -> DecodedMessage {
        let f = self.next().await;
        assert_eq!(f.frame_type, FrameType::Message, "frame {:?}", f);
        decode_message(&f.data).expect("message layout")
    }

    /// Nothing but heartbeats arrives for `d`.
    pub async fn expect_silence(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.frame_within(left).await {
                Err(()) => return,
                Ok(None) => panic!("connection closed"),
                Ok(Some(f)) if &f.data[..] == b"_heartbeat_" => continue,
                Ok(Some(f)) => panic!("expected silence, got {f:?}"),
            }
        }
    }

    pub async fn identify(&mut self, json: serde_json::Value) -> Frame {
        let body = serde_json::to_vec(&json).expect("json");
        self.cmd(|b| client::identify(b, &body)).await;
        self.next().await
    }

    pub async fn publish(&mut self, topic: &str, body: &[u8]) {
        self.cmd(|b| client::publish(b, topic, body)).await;
        self.expect_response("OK").await;
    }

    pub async fn subscribe(&mut self, topic: &str, channel: &str) {
        self.cmd(|b| client::sub(b, topic, channel)).await;
        self.expect_response("OK").await;
    }

    pub async fn rdy(&mut self, n: u64) {
        self.cmd(|b| client::rdy(b, n)).await;
    }

    pub async fn fin(&mut self, id: &MessageId) {
        self.cmd(|b| client::fin(b, id)).await;
    }
}

/// A body of `n` bytes with a recognisable prefix.
pub fn body(i: usize, n: usize) -> Vec<u8> {
    let mut b = format!("msg-{i:08}-").into_bytes();
    b.resize(n.max(b.len()), b'x');
    b
}
