//! Registration with nsqlookupd: one peer task per `--lookupd-tcp-address` (IDENTIFY,
//! full REGISTER replay, REGISTER/UNREGISTER as topics and channels come and go, PING
//! every 15 s, reconnection after a lookupd restart), the live address list behind
//! `PUT /config/nsqlookupd_tcp_addresses`, and channel pre-creation for new topics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nsq_protocol::lookup::{self, ChannelsResponse, Command, IdentifyBody, IdentifyReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::nsqd::{Nsqd, RegistryEvent};
use crate::topic::Topic;

/// nsqd pings every lookupd this often.
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// Dial and per-command deadline, as in nsqd.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// While a lookupd is unreachable, try again this often (nsqd waits for the next PING;
/// trying sooner makes discovery whole again faster after a lookupd restart).
const RECONNECT_INTERVAL: Duration = Duration::from_secs(2);
/// Largest lookupd reply accepted (nsqd bounds it by --max-body-size).
const MAX_REPLY: usize = 5 * 1024 * 1024;

/// What this nsqd tells each lookupd about itself.
#[derive(Debug, Clone)]
pub struct Advertised {
    pub broadcast_address: String,
    pub hostname: String,
    pub tcp_port: u16,
    pub http_port: u16,
}

/// Runs peers for the current address list until `stop`, following live changes.
pub async fn run(nsqd: Arc<Nsqd>, me: Advertised, mut stop: watch::Receiver<bool>) {
    let mut addrs = nsqd.lookupd_tcp_addresses.subscribe();
    let mut peers: HashMap<String, (JoinHandle<()>, watch::Sender<bool>)> = HashMap::new();
    loop {
        let wanted: Vec<String> = addrs.borrow_and_update().clone();
        peers.retain(|addr, (task, quit)| {
            let keep = wanted.contains(addr);
            if !keep {
                tracing::info!(lookupd = %addr, "LOOKUP: removing peer");
                quit.send_replace(true);
                task.abort();
            }
            keep
        });
        for addr in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = peers.entry(addr.clone()) {
                tracing::info!(lookupd = %addr, "LOOKUP: adding peer");
                let (quit, quit_rx) = watch::channel(false);
                let task = tokio::spawn(peer_loop(nsqd.clone(), me.clone(), addr, quit_rx));
                slot.insert((task, quit));
            }
        }
        tokio::select! {
            r = addrs.changed() => if r.is_err() { break },
            _ = stop.changed() => break,
        }
    }
    for (_, (task, quit)) in peers {
        quit.send_replace(true);
        let _ = timeout(IO_TIMEOUT, task).await;
    }
}

/// One lookupd: connect, identify, replay, then follow registry events.
async fn peer_loop(nsqd: Arc<Nsqd>, me: Advertised, addr: String, mut quit: watch::Receiver<bool>) {
    let mut events = nsqd.subscribe_events();
    let mut conn: Option<PeerConn> = None;
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        if conn.is_none() {
            // Events that arrived while disconnected are covered by the replay.
            while events.try_recv().is_ok() {}
            match PeerConn::open(&nsqd, &me, &addr).await {
                Ok(c) => {
                    tracing::info!(lookupd = %addr, "LOOKUP: connected and registered");
                    conn = Some(c);
                }
                Err(e) => {
                    tracing::warn!(lookupd = %addr, error = %e, "LOOKUP: cannot reach lookupd");
                    tokio::select! {
                        _ = tokio::time::sleep(RECONNECT_INTERVAL) => continue,
                        _ = quit.changed() => break,
                    }
                }
            }
        }
        let cmd = tokio::select! {
            _ = quit.changed() => break,
            _ = ping.tick() => Some(Command::Ping),
            lost = closed(&mut conn) => {
                // lookupd never speaks first: EOF or any stray byte means start over.
                tracing::warn!(lookupd = %addr, reason = %lost, "LOOKUP: connection lost");
                forget(&nsqd, conn.take());
                None
            }
            e = events.recv() => match e {
                Ok(e) => Some(command_for(e)),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed UNREGISTERs cannot be replayed: start over on a new connection.
                    tracing::warn!(lookupd = %addr, "LOOKUP: fell behind; re-registering");
                    forget(&nsqd, conn.take());
                    None
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        };
        if let (Some(cmd), Some(c)) = (cmd, conn.as_mut()) {
            if let Err(e) = c.command(&cmd).await {
                tracing::warn!(lookupd = %addr, error = %e, "LOOKUP: connection lost");
                forget(&nsqd, conn.take());
            }
        }
    }
    forget(&nsqd, conn);
}

/// Resolves when an idle lookupd connection is closed by the other side.
async fn closed(conn: &mut Option<PeerConn>) -> String {
    let Some(c) = conn.as_mut() else {
        return std::future::pending().await;
    };
    let mut b = [0u8; 64];
    match c.stream.read(&mut b).await {
        Ok(0) => "closed by lookupd".into(),
        Ok(n) => format!("{n} unexpected bytes"),
        Err(e) => e.to_string(),
    }
}

/// A lookupd connection is gone: stop asking that lookupd for channels.
fn forget(nsqd: &Nsqd, conn: Option<PeerConn>) {
    if let Some(c) = conn {
        nsqd.lookupd_http_addresses
            .write()
            .retain(|a| a != &c.http_address);
    }
}

fn command_for(e: RegistryEvent) -> Command {
    match e {
        RegistryEvent::TopicCreated(topic) => Command::Register {
            topic,
            channel: None,
        },
        RegistryEvent::ChannelCreated(topic, channel) => Command::Register {
            topic,
            channel: Some(channel),
        },
        RegistryEvent::TopicDeleted(topic) => Command::Unregister {
            topic,
            channel: None,
        },
        RegistryEvent::ChannelDeleted(topic, channel) => Command::Unregister {
            topic,
            channel: Some(channel),
        },
    }
}

#[derive(Debug, thiserror::Error)]
enum PeerError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("lookupd replied {0}")]
    Rejected(String),
    #[error("bad reply: {0}")]
    BadReply(String),
}

struct PeerConn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The lookupd's `<broadcast_address>:<http_port>`.
    http_address: String,
}

impl PeerConn {
    async fn open(nsqd: &Nsqd, me: &Advertised, addr: &str) -> Result<PeerConn, PeerError> {
        let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| PeerError::Timeout)??;
        let _ = stream.set_nodelay(true);
        let mut c = PeerConn {
            stream,
            buf: Vec::new(),
            http_address: String::new(),
        };
        timeout(IO_TIMEOUT, c.stream.write_all(nsq_protocol::MAGIC_V1))
            .await
            .map_err(|_| PeerError::Timeout)??;
        let reply = c
            .command(&Command::Identify(IdentifyBody {
                broadcast_address: me.broadcast_address.clone(),
                hostname: me.hostname.clone(),
                http_port: i64::from(me.http_port),
                tcp_port: i64::from(me.tcp_port),
                version: nsq_protocol::NSQ_VERSION.to_string(),
            }))
            .await?;
        let info: IdentifyReply =
            serde_json::from_slice(&reply).map_err(|e| PeerError::BadReply(e.to_string()))?;
        c.http_address = format!("{}:{}", info.broadcast_address, info.http_port);
        // Full replay: every channel, and every topic that has none.
        for topic in nsqd.topics() {
            let channels = topic.channels();
            if channels.is_empty() {
                c.command(&Command::Register {
                    topic: topic.name.clone(),
                    channel: None,
                })
                .await?;
            }
            for ch in channels {
                c.command(&Command::Register {
                    topic: topic.name.clone(),
                    channel: Some(ch.name.clone()),
                })
                .await?;
            }
        }
        let mut http = nsqd.lookupd_http_addresses.write();
        if !http.contains(&c.http_address) {
            http.push(c.http_address.clone());
        }
        Ok(c)
    }

    /// Sends one command and reads its size-prefixed reply (1 s deadline each way).
    async fn command(&mut self, cmd: &Command) -> Result<Vec<u8>, PeerError> {
        let mut out = Vec::new();
        cmd.encode(&mut out);
        timeout(IO_TIMEOUT, self.stream.write_all(&out))
            .await
            .map_err(|_| PeerError::Timeout)??;
        let reply = timeout(IO_TIMEOUT, self.read_reply())
            .await
            .map_err(|_| PeerError::Timeout)??;
        if lookup::is_error_response(&reply) {
            let text = String::from_utf8_lossy(&reply).into_owned();
            // An IDENTIFY rejection closes the peer; others are only logged, as in nsqd.
            if matches!(cmd, Command::Identify(_)) {
                return Err(PeerError::Rejected(text));
            }
            tracing::warn!(reply = %text, "LOOKUP: command rejected");
        }
        Ok(reply)
    }

    async fn read_reply(&mut self) -> Result<Vec<u8>, PeerError> {
        loop {
            match lookup::decode_response(&self.buf) {
                Ok(Some(range)) => {
                    let data = self.buf[range.clone()].to_vec();
                    self.buf.drain(..range.end);
                    return Ok(data);
                }
                Ok(None) => {}
                Err(e) => return Err(PeerError::BadReply(e.to_string())),
            }
            if self.buf.len() > MAX_REPLY {
                return Err(PeerError::BadReply("reply too large".into()));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(PeerError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A new topic: ask each lookupd which channels it knows for it, create the
/// non-ephemeral ones, then let the topic's messages flow.
pub fn precreate_channels(nsqd: Option<Arc<Nsqd>>, topic: Arc<Topic>, lookupds: Vec<String>) {
    let Some(nsqd) = nsqd else {
        topic.start();
        return;
    };
    tokio::spawn(async move {
        for addr in lookupds {
            match fetch_channels(&addr, &topic.name).await {
                Ok(names) => {
                    for name in names {
                        if nsq_protocol::names::is_ephemeral(&name)
                            || !nsq_protocol::names::is_valid_channel_name(&name)
                        {
                            continue;
                        }
                        nsqd.get_or_create_channel(&topic, &name);
                    }
                }
                Err(e) => tracing::warn!(lookupd = %addr, topic = %topic.name, error = %e,
                    "LOOKUP: failed to query channels"),
            }
        }
        topic.start();
    });
}

/// `GET http://<addr>/channels?topic=T`.
async fn fetch_channels(addr: &str, topic: &str) -> Result<Vec<String>, String> {
    let path = format!("/channels?topic={}", percent_encode(topic));
    let body = crate::http_get::get(addr, &path, Duration::from_secs(2)).await?;
    let r: ChannelsResponse = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok(r.channels)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
