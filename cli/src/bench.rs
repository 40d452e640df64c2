//! `nsq bench`: nsq's `bench_writer` and `bench_reader` on tokio. Raw protocol V2 clients,
//! pipelined like the Go tools, printing the same summary line.
//!
//! Writer: per connection, one pre-encoded `MPUB` of `--batch-size` × `--size` bytes, sent,
//! then its `OK` awaited, until `--runfor` has passed. Reader: per connection, IDENTIFY +
//! SUB, then a single `RDY --rdy` when every connection is ready, and a `FIN` for every
//! message, queued and sent with one write per batch of frames read.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use clap::Args;
use nsq_protocol::frame::{FrameType, HEARTBEAT};
use nsq_protocol::message::{MessageId, MESSAGE_HEADER_LEN, MESSAGE_ID_LEN};
use nsq_protocol::{client, duration, names};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::conn::{is_fatal_error, server_error, ConnError, Connection};
use crate::go_duration;

/// `nsq bench writer`.
#[derive(Debug, Clone, Args)]
pub struct WriterArgs {
    /// <addr>:<port> of the nsqd to publish to
    #[arg(long, default_value = "127.0.0.1:4150", value_name = "ADDR")]
    pub nsqd_tcp_address: String,
    /// topic to publish to
    #[arg(long, default_value = "sub_bench")]
    pub topic: String,
    /// size of each message body, in bytes
    #[arg(long, default_value_t = 200, value_name = "BYTES")]
    pub size: usize,
    /// messages per MPUB
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub batch_size: usize,
    /// how long to publish (Go duration: 10s, 1m30s)
    #[arg(long, default_value = "10s", value_parser = go_duration, value_name = "DURATION")]
    pub runfor: Duration,
    /// number of connections, each publishing MPUBs back to back
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub concurrency: usize,
    /// create this channel first (SUB, then disconnect) so that messages queue in it
    /// rather than in the topic
    #[arg(long, value_name = "CHANNEL")]
    pub create_channel: Option<String>,
}

/// `nsq bench reader`.
#[derive(Debug, Clone, Args)]
pub struct ReaderArgs {
    /// <addr>:<port> of the nsqd to consume from
    #[arg(long, default_value = "127.0.0.1:4150", value_name = "ADDR")]
    pub nsqd_tcp_address: String,
    /// topic to consume from
    #[arg(long, default_value = "sub_bench")]
    pub topic: String,
    /// channel to consume from
    #[arg(long, default_value = "ch")]
    pub channel: String,
    /// RDY count each connection sends once
    #[arg(long, default_value_t = 2500, value_name = "N")]
    pub rdy: u64,
    /// how long to consume (Go duration: 10s, 1m30s)
    #[arg(long, default_value = "10s", value_parser = go_duration, value_name = "DURATION")]
    pub runfor: Duration,
    /// number of connections subscribed to the channel
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub concurrency: usize,
}

/// `nsq bench run`: the writer, then the reader, like nsq's `bench.sh`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// <addr>:<port> of the nsqd under test
    #[arg(long, default_value = "127.0.0.1:4150", value_name = "ADDR")]
    pub nsqd_tcp_address: String,
    /// topic to publish to and consume from
    #[arg(long, default_value = "sub_bench")]
    pub topic: String,
    /// channel the reader consumes from
    #[arg(long, default_value = "ch")]
    pub channel: String,
    /// size of each message body, in bytes
    #[arg(long, default_value_t = 200, value_name = "BYTES")]
    pub size: usize,
    /// messages per MPUB
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub batch_size: usize,
    /// RDY count of each reader connection
    #[arg(long, default_value_t = 2500, value_name = "N")]
    pub rdy: u64,
    /// how long each phase runs (Go duration)
    #[arg(long, default_value = "10s", value_parser = go_duration, value_name = "DURATION")]
    pub runfor: Duration,
    /// connections per phase
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub concurrency: usize,
    /// create --channel before publishing, so the writer's messages queue in the channel
    /// (bench.sh does not: its messages wait in the topic until the reader subscribes)
    #[arg(long)]
    pub create_channel: bool,
}

impl RunArgs {
    /// The writer phase's settings.
    pub fn writer(&self) -> WriterArgs {
        WriterArgs {
            nsqd_tcp_address: self.nsqd_tcp_address.clone(),
            topic: self.topic.clone(),
            size: self.size,
            batch_size: self.batch_size,
            runfor: self.runfor,
            concurrency: self.concurrency,
            create_channel: self.create_channel.then(|| self.channel.clone()),
        }
    }

    /// The reader phase's settings.
    pub fn reader(&self) -> ReaderArgs {
        ReaderArgs {
            nsqd_tcp_address: self.nsqd_tcp_address.clone(),
            topic: self.topic.clone(),
            channel: self.channel.clone(),
            rdy: self.rdy,
            runfor: self.runfor,
            concurrency: self.concurrency,
        }
    }
}

/// Why a benchmark could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("{0}")]
    Config(String),
    #[error("a benchmark connection task failed: {0}")]
    Task(String),
}

/// The outcome of one phase: what the Go tools print, plus how long the reader sat idle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub elapsed: Duration,
    pub messages: u64,
    pub bytes: u64,
    /// For the reader: time between the last message received and the end of the run
    /// (a long one means the channel ran dry and ops/s understates the rate).
    pub idle_at_end: Duration,
}

impl fmt::Display for Summary {
    /// `duration: 10.000123s - 116.348mb/s - 610018.001ops/s - 1.639us/op`, as the Go tools.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let per_op = if self.messages == 0 {
            f64::INFINITY
        } else {
            self.elapsed.as_micros() as f64 / self.messages as f64
        };
        write!(
            f,
            "duration: {} - {:.3}mb/s - {:.3}ops/s - {:.3}us/op",
            duration::format(self.elapsed),
            self.bytes as f64 / secs / 1024.0 / 1024.0,
            self.messages as f64 / secs,
            per_op
        )
    }
}

/// What one connection did.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    messages: u64,
    bytes: u64,
    last_message: Option<Instant>,
}

/// The start line every connection waits behind after its setup.
struct Gate {
    ready: mpsc::Sender<()>,
    go: watch::Receiver<Option<Instant>>,
}

impl Gate {
    /// Reports this connection ready and waits for the common start instant.
    async fn pass(mut self) -> Result<Instant, BenchError> {
        let _ = self.ready.send(()).await;
        let go = self
            .go
            .wait_for(Option::is_some)
            .await
            .map_err(|_| BenchError::Task("start signal lost".into()))?;
        go.ok_or_else(|| BenchError::Task("start signal lost".into()))
    }
}

/// Runs `concurrency` workers: waits until all are set up, starts the clock, sums them.
async fn run_workers<W, Fut>(
    concurrency: usize,
    runfor: Duration,
    worker: W,
) -> Result<Summary, BenchError>
where
    W: Fn(Gate) -> Fut,
    Fut: Future<Output = Result<Tally, BenchError>> + Send + 'static,
{
    if concurrency == 0 {
        return Err(BenchError::Config(
            "--concurrency must be at least 1".into(),
        ));
    }
    let (ready_tx, mut ready_rx) = mpsc::channel(concurrency);
    let (go_tx, go_rx) = watch::channel(None);
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        tasks.spawn(worker(Gate {
            ready: ready_tx.clone(),
            go: go_rx.clone(),
        }));
    }
    drop(ready_tx);
    let mut ready = 0;
    while ready < concurrency {
        tokio::select! {
            Some(()) = ready_rx.recv() => ready += 1,
            Some(done) = tasks.join_next() => {
                // A worker ended during setup: that is always a failure.
                joined(done)?;
                return Err(BenchError::Task("a connection ended before the start".into()));
            }
            else => return Err(BenchError::Task("no connection became ready".into())),
        }
    }
    let start = Instant::now();
    go_tx.send_replace(Some(start));
    let mut total = Tally::default();
    while let Some(done) = tasks.join_next().await {
        let t = joined(done)?;
        total.messages += t.messages;
        total.bytes += t.bytes;
        total.last_message = total.last_message.max(t.last_message);
    }
    let elapsed = start.elapsed();
    let end = start + runfor;
    Ok(Summary {
        elapsed,
        messages: total.messages,
        bytes: total.bytes,
        idle_at_end: end.saturating_duration_since(total.last_message.unwrap_or(start)),
    })
}

fn joined(
    r: Result<Result<Tally, BenchError>, tokio::task::JoinError>,
) -> Result<Tally, BenchError> {
    r.map_err(|e| BenchError::Task(e.to_string()))?
}

/// Refuses names nsqd would refuse (a space would even publish to another topic).
fn check_names(topic: &str, channel: Option<&str>) -> Result<(), BenchError> {
    if !names::is_valid_topic_name(topic) {
        return Err(BenchError::Config(format!(
            "topic name {topic:?} is not valid"
        )));
    }
    match channel {
        Some(c) if !names::is_valid_channel_name(c) => Err(BenchError::Config(format!(
            "channel name {c:?} is not valid"
        ))),
        _ => Ok(()),
    }
}

/// Publishes MPUB batches for `--runfor` and reports the rate.
pub async fn writer(args: &WriterArgs) -> Result<Summary, BenchError> {
    check_names(&args.topic, args.create_channel.as_deref())?;
    if args.size == 0 || args.batch_size == 0 {
        return Err(BenchError::Config(
            "--size and --batch-size must be at least 1".into(),
        ));
    }
    let body_len = (args.size + 4)
        .checked_mul(args.batch_size)
        .and_then(|n| n.checked_add(4))
        .filter(|n| i32::try_from(*n).is_ok());
    if body_len.is_none() {
        return Err(BenchError::Config(
            "--size × --batch-size is too large for one MPUB".into(),
        ));
    }
    if let Some(channel) = &args.create_channel {
        create_channel(&args.nsqd_tcp_address, &args.topic, channel).await?;
    }
    let body = vec![0u8; args.size];
    let bodies = vec![body.as_slice(); args.batch_size];
    let mut mpub = BytesMut::new();
    client::mpub(&mut mpub, &args.topic, &bodies);
    let mpub = mpub.freeze();
    let batch = args.batch_size as u64;
    let batch_bytes = batch * args.size as u64;
    let (addr, runfor) = (args.nsqd_tcp_address.clone(), args.runfor);
    run_workers(args.concurrency, runfor, move |gate| {
        pub_worker(addr.clone(), mpub.clone(), batch, batch_bytes, runfor, gate)
    })
    .await
}

async fn pub_worker(
    addr: String,
    mpub: Bytes,
    batch: u64,
    batch_bytes: u64,
    runfor: Duration,
    gate: Gate,
) -> Result<Tally, BenchError> {
    let mut conn = Connection::connect(&addr).await?;
    conn.identify(&json!({
        "client_id": "writer",
        "hostname": "writer",
        "user_agent": user_agent("bench_writer"),
    }));
    conn.flush().await?;
    conn.expect_ok().await?;
    let end = gate.pass().await? + runfor;
    let mut tally = Tally::default();
    loop {
        conn.send(&mpub).await?;
        conn.expect_ok().await?;
        tally.messages += batch;
        tally.bytes += batch_bytes;
        if Instant::now() >= end {
            break;
        }
    }
    tally.last_message = Some(Instant::now());
    Ok(tally)
}

/// Makes `topic`/`channel` exist: SUB, await `OK`, disconnect (a non-ephemeral channel
/// outlives its last consumer).
pub async fn create_channel(addr: &str, topic: &str, channel: &str) -> Result<(), BenchError> {
    let mut conn = Connection::connect(addr).await?;
    client::sub(conn.out(), topic, channel);
    conn.flush().await?;
    conn.expect_ok().await?;
    Ok(())
}

/// Consumes for `--runfor`, FINning every message, and reports the rate.
pub async fn reader(args: &ReaderArgs) -> Result<Summary, BenchError> {
    check_names(&args.topic, Some(&args.channel))?;
    let (addr, topic, channel) = (
        args.nsqd_tcp_address.clone(),
        args.topic.clone(),
        args.channel.clone(),
    );
    let (rdy, runfor) = (args.rdy, args.runfor);
    run_workers(args.concurrency, runfor, move |gate| {
        sub_worker(
            addr.clone(),
            topic.clone(),
            channel.clone(),
            rdy,
            runfor,
            gate,
        )
    })
    .await
}

async fn sub_worker(
    addr: String,
    topic: String,
    channel: String,
    rdy: u64,
    runfor: Duration,
    gate: Gate,
) -> Result<Tally, BenchError> {
    let mut conn = Connection::connect(&addr).await?;
    conn.identify(&json!({
        "client_id": "reader",
        "hostname": "reader",
        "user_agent": user_agent("bench_reader"),
        "msg_timeout": 3000,
    }));
    client::sub(conn.out(), &topic, &channel);
    conn.flush().await?;
    conn.expect_ok().await?;
    conn.expect_ok().await?;
    let end = gate.pass().await? + runfor;
    client::rdy(conn.out(), rdy);
    conn.flush().await?;
    let mut tally = Tally::default();
    let deadline = tokio::time::sleep_until(end);
    tokio::pin!(deadline);
    loop {
        let before = tally.messages;
        conn.drain_frames(|frame_type, data, out| {
            match frame_type {
                FrameType::Message => {
                    let id = data
                        .get(MESSAGE_HEADER_LEN - MESSAGE_ID_LEN..MESSAGE_HEADER_LEN)
                        .and_then(MessageId::from_slice)
                        .ok_or_else(|| ConnError::Unexpected("short message frame".into()))?;
                    client::fin(out, &id);
                    tally.messages += 1;
                    tally.bytes += (data.len() - MESSAGE_HEADER_LEN) as u64;
                }
                FrameType::Response if data == HEARTBEAT => client::nop(out),
                FrameType::Response => {}
                FrameType::Error if !is_fatal_error(data) => {
                    eprintln!("nsqd: {}", String::from_utf8_lossy(data));
                }
                FrameType::Error => return Err(server_error(data)),
            }
            Ok(())
        })?;
        if tally.messages != before {
            tally.last_message = Some(Instant::now());
        }
        conn.flush().await?;
        tokio::select! {
            more = conn.fill() => if !more? {
                return Err(ConnError::Closed.into());
            },
            _ = &mut deadline => break,
        }
    }
    Ok(tally)
}

fn user_agent(tool: &str) -> String {
    format!("nsq-{tool}/{}", env!("CARGO_PKG_VERSION"))
}

/// Prints a Go-tool style line, plus a note when a reader ran out of messages.
pub fn report(tool: &str, summary: &Summary) {
    println!("[{tool}] {summary}");
    if tool == "bench_reader" && summary.idle_at_end >= Duration::from_millis(500) {
        eprintln!(
            "[{tool}] note: no message in the last {} of the run (the channel was empty, \
             or delivery stalled): ops/s understates the consume rate",
            duration::format(summary.idle_at_end)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_matches_the_go_tools() {
        let s = Summary {
            elapsed: Duration::from_secs(10),
            messages: 6_100_180,
            bytes: 6_100_180 * 200,
            idle_at_end: Duration::ZERO,
        };
        assert_eq!(
            s.to_string(),
            "duration: 10s - 116.352mb/s - 610018.000ops/s - 1.639us/op"
        );
    }
}
