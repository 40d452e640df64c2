//! `nsq tail`: print the bodies of a topic's messages as they arrive, from nsqd nodes given
//! directly or discovered through lookupd (polled for new nodes), like `nsq_tail`.

use std::collections::HashSet;
use std::future::Future;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{ArgGroup, Args};
use nsq_protocol::frame::{FrameType, HEARTBEAT};
use nsq_protocol::message::decode_message;
use nsq_protocol::{client, names};
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::conn::{is_fatal_error, server_error, ConnError, Connection};
use crate::go_duration;
use crate::http::{join_host_port, lookup};

/// `nsq tail`.
#[derive(Debug, Clone, Args)]
#[command(group(
    ArgGroup::new("source")
        .required(true)
        .multiple(true)
        .args(["nsqd_tcp_address", "lookupd_http_address"])
))]
pub struct TailArgs {
    /// <addr>:<port> of an nsqd to consume from (repeatable)
    #[arg(long, value_name = "ADDR")]
    pub nsqd_tcp_address: Vec<String>,
    /// <addr>:<port> of an nsqlookupd to find the topic's nsqd nodes with (repeatable)
    #[arg(long, value_name = "ADDR")]
    pub lookupd_http_address: Vec<String>,
    /// topic to tail
    #[arg(long)]
    pub topic: String,
    /// channel to consume from [default: tail<random>#ephemeral, deleted by nsqd when
    /// the last consumer leaves]
    #[arg(long)]
    pub channel: Option<String>,
    /// exit after printing this many messages (0: run until interrupted)
    #[arg(
        short = 'n',
        long = "total-messages",
        default_value_t = 0,
        value_name = "N"
    )]
    pub total_messages: u64,
    /// messages in flight per nsqd connection (the RDY count)
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_in_flight: u64,
    /// how often to ask lookupd for nsqd nodes that newly carry the topic
    #[arg(long, default_value = "1m", value_parser = go_duration, value_name = "DURATION")]
    pub lookupd_poll_interval: Duration,
}

/// Why tailing stopped.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("topic name {0:?} is not valid")]
    BadTopic(String),
    #[error("channel name {0:?} is not valid")]
    BadChannel(String),
    #[error("{addr}: {source}")]
    Conn { addr: String, source: ConnError },
}

/// Where bodies go, shared by every connection; counts down `-n`.
struct Printer<W> {
    out: W,
    /// Messages still to print; `None` without `-n`.
    remaining: Option<u64>,
    printed: u64,
}

struct Shared<W> {
    printer: Mutex<Printer<W>>,
    /// Signalled once `-n` messages are printed or the output is gone.
    done: Notify,
}

impl<W: Write> Shared<W> {
    /// Prints one body; `false` when nothing more should be printed (budget spent or the
    /// reader of our output went away), in which case the message is left unfinished.
    fn print(&self, body: &[u8]) -> bool {
        let Ok(mut p) = self.printer.lock() else {
            return false;
        };
        if p.remaining == Some(0) {
            return false;
        }
        let written = p
            .out
            .write_all(body)
            .and_then(|()| p.out.write_all(b"\n"))
            .and_then(|()| p.out.flush());
        if let Err(e) = written {
            if e.kind() != io::ErrorKind::BrokenPipe {
                eprintln!("nsq tail: writing output: {e}");
            }
            self.done.notify_one();
            return false;
        }
        p.printed += 1;
        if let Some(r) = p.remaining.as_mut() {
            *r -= 1;
            if *r == 0 {
                self.done.notify_one();
            }
        }
        true
    }
}

/// The default channel: `tail<6 digits>#ephemeral`, as `nsq_tail` names it.
pub fn random_channel() -> String {
    format!("tail{:06}#ephemeral", rand::random::<u32>() % 1_000_000)
}

/// Tails until `-n` messages are printed, `stop` completes, or (without lookupd) every
/// connection has ended. Returns how many messages were printed.
pub async fn run<W, S>(args: &TailArgs, out: W, stop: S) -> Result<u64, TailError>
where
    W: Write + Send + 'static,
    S: Future<Output = ()>,
{
    if !names::is_valid_topic_name(&args.topic) {
        return Err(TailError::BadTopic(args.topic.clone()));
    }
    let channel = args.channel.clone().unwrap_or_else(random_channel);
    if !names::is_valid_channel_name(&channel) {
        return Err(TailError::BadChannel(channel));
    }
    let remaining = (args.total_messages > 0).then_some(args.total_messages);
    let shared = Arc::new(Shared {
        printer: Mutex::new(Printer {
            out,
            remaining,
            printed: 0,
        }),
        done: Notify::new(),
    });
    let rdy = remaining
        .map_or(args.max_in_flight, |r| r.min(args.max_in_flight))
        .max(1);
    let consumer = Consumer {
        topic: args.topic.clone(),
        channel,
        rdy,
    };
    let mut connected: HashSet<String> = HashSet::new();
    let mut tasks = JoinSet::new();
    for addr in &args.nsqd_tcp_address {
        if connected.insert(addr.clone()) {
            tasks.spawn(consumer.clone().run(addr.clone(), shared.clone()));
        }
    }
    let mut poll = tokio::time::interval(args.lookupd_poll_interval);
    let use_lookupd = !args.lookupd_http_address.is_empty();
    let mut last_error = None;
    tokio::pin!(stop);
    let outcome = loop {
        tokio::select! {
            _ = shared.done.notified() => break Ok(()),
            _ = &mut stop => break Ok(()),
            _ = poll.tick(), if use_lookupd => {
                for addr in discover(&args.lookupd_http_address, &args.topic).await {
                    if connected.insert(addr.clone()) {
                        tasks.spawn(consumer.clone().run(addr, shared.clone()));
                    }
                }
            }
            Some(ended) = tasks.join_next() => {
                if let Ok((addr, result)) = ended {
                    // Forget it so that the next lookupd poll can reconnect.
                    connected.remove(&addr);
                    if let Err(source) = result {
                        eprintln!("nsq tail: {addr}: {source}");
                        last_error = Some(TailError::Conn { addr, source });
                    }
                }
                // With only direct addresses, nothing can bring a connection back.
                if tasks.is_empty() && !use_lookupd {
                    break last_error.map_or(Ok(()), Err);
                }
            }
        }
    };
    tasks.shutdown().await;
    outcome?;
    Ok(shared.printer.lock().map_or(0, |p| p.printed))
}

/// The TCP addresses of every nsqd that some lookupd lists for `topic`.
async fn discover(lookupds: &[String], topic: &str) -> Vec<String> {
    let mut found = Vec::new();
    for l in lookupds {
        match lookup(l, topic).await {
            Ok(producers) => found.extend(
                producers
                    .iter()
                    .map(|p| join_host_port(&p.broadcast_address, p.tcp_port)),
            ),
            // The topic does not exist yet: keep polling quietly.
            Err(e) if e.reason.contains("TOPIC_NOT_FOUND") => {}
            Err(e) => eprintln!("nsq tail: lookupd: {e}"),
        }
    }
    found
}

/// One subscription's settings, shared by every connection.
#[derive(Debug, Clone)]
struct Consumer {
    topic: String,
    channel: String,
    rdy: u64,
}

impl Consumer {
    async fn run<W: Write>(
        self,
        addr: String,
        shared: Arc<Shared<W>>,
    ) -> (String, Result<(), ConnError>) {
        let r = self.consume(&addr, &shared).await;
        (addr, r)
    }

    async fn consume<W: Write>(&self, addr: &str, shared: &Shared<W>) -> Result<(), ConnError> {
        let mut conn = Connection::connect(addr).await?;
        conn.identify(&json!({
            "client_id": "tail",
            "hostname": nsqd::options::hostname(),
            "user_agent": format!("nsq-tail/{}", env!("CARGO_PKG_VERSION")),
        }));
        client::sub(conn.out(), &self.topic, &self.channel);
        client::rdy(conn.out(), self.rdy);
        conn.flush().await?;
        conn.expect_ok().await?;
        conn.expect_ok().await?;
        loop {
            while let Some(frame) = conn.buffered_frame()? {
                match frame.frame_type {
                    FrameType::Message => {
                        let msg = decode_message(&frame.data)
                            .map_err(|e| ConnError::Unexpected(e.to_string()))?;
                        if !shared.print(&msg.body) {
                            return Ok(());
                        }
                        client::fin(conn.out(), &msg.id);
                    }
                    FrameType::Response if frame.data == HEARTBEAT => client::nop(conn.out()),
                    FrameType::Response => {}
                    FrameType::Error if !is_fatal_error(&frame.data) => {
                        eprintln!("nsq tail: {addr}: {}", String::from_utf8_lossy(&frame.data));
                    }
                    FrameType::Error => return Err(server_error(&frame.data)),
                }
            }
            conn.flush().await?;
            if !conn.fill().await? {
                return Err(ConnError::Closed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_channel_is_ephemeral_and_valid() {
        let c = random_channel();
        assert!(c.starts_with("tail") && c.ends_with("#ephemeral"), "{c}");
        assert!(names::is_valid_channel_name(&c));
    }

    #[test]
    fn printer_counts_down_and_stops() {
        let shared = Shared {
            printer: Mutex::new(Printer {
                out: Vec::new(),
                remaining: Some(2),
                printed: 0,
            }),
            done: Notify::new(),
        };
        assert!(shared.print(b"a"));
        assert!(shared.print(b"b"));
        assert!(!shared.print(b"c"));
        let p = shared.printer.lock().unwrap();
        assert_eq!(p.out, b"a\nb\n");
        assert_eq!(p.printed, 2);
    }
}
