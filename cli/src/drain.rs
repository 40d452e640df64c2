//! `nsq drain`: empties the data directory of an nsqd that is gone for good (a pod
//! removed by scale-down) into surviving nsqd nodes, so no message is stranded.
//!
//! The directory is opened offline with the broker library (locked like nsqd locks it).
//! Each channel's queued messages go to the same topic and channel on a survivor through
//! its `POST /channel/import` extension, keeping their publish time and attempts; a
//! topic's own backlog is first handed to the topic's channels, as nsqd would, or, for a
//! topic without channels, published to the survivor's topic with `/mpub`. A batch that
//! no survivor accepts is put back and written to disk again, and the command fails, so
//! the operator's Job retries it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use nsqd::channel::Channel;
use nsqd::message::Message;
use nsqd::nsqd::Nsqd;

/// `nsq drain` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DrainArgs {
    /// Data directory of the nsqd to empty (its nsqd.dat and disk queues)
    #[arg(long, value_name = "DIR")]
    pub data_path: PathBuf,
    /// HTTP address of a surviving nsqd to move messages to (repeatable; used in turn)
    #[arg(long = "nsqd-http-address", value_name = "ADDR", required = true)]
    pub nsqd_http_addresses: Vec<String>,
    /// Messages per request
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Largest message body the directory may hold (the removed nsqd's --max-msg-size)
    #[arg(long, default_value_t = 1048576)]
    pub max_msg_size: i64,
}

/// What a drain moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrainReport {
    pub channel_messages: u64,
    pub topic_messages: u64,
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Moves every queued message of `args.data_path` to the survivors.
pub async fn run(args: &DrainArgs) -> anyhow::Result<DrainReport> {
    let mut opts = nsqd::Options::defaults();
    opts.data_path = Some(args.data_path.clone());
    opts.max_msg_size = args.max_msg_size;
    // Everything read from disk is held in memory only for the batch being moved.
    opts.mem_queue_size = args.batch_size as i64;
    let _lock = nsqd::metadata::DirLock::acquire(&args.data_path)
        .with_context(|| format!("locking {}", args.data_path.display()))?;
    let node = Nsqd::new(opts).into_shared();
    node.load_metadata().context("reading nsqd.dat")?;
    let result = move_everything(&node, args).await;
    // Whatever could not be moved goes back to disk for the next attempt.
    nsqd::shutdown::persist(&node);
    result
}

async fn move_everything(node: &Arc<Nsqd>, args: &DrainArgs) -> anyhow::Result<DrainReport> {
    let mut report = DrainReport::default();
    let mut targets = args.nsqd_http_addresses.iter().cycle();
    let batch = args.batch_size.max(1);
    for topic in node.topics() {
        if topic.ephemeral {
            continue;
        }
        let channels: Vec<Arc<Channel>> = topic
            .channels()
            .into_iter()
            .filter(|c| !c.ephemeral)
            .collect();
        // The topic's backlog: to its channels here (then moved with them), or to the
        // survivor's topic when it has none.
        loop {
            let mut msgs = Vec::with_capacity(batch);
            if topic.take_backlog(batch, &mut msgs) == 0 {
                break;
            }
            if channels.is_empty() {
                let target = targets.next().context("no survivor")?;
                if let Err(e) = mpub(target, &topic.name, &msgs).await {
                    let n = msgs.len();
                    restore_topic(node, &topic.name, msgs);
                    bail!(
                        "moving {n} messages of topic {} to {target}: {e}",
                        topic.name
                    );
                }
                report.topic_messages += msgs.len() as u64;
            } else {
                for c in &channels {
                    c.put_batch(&msgs)
                        .map_err(|e| anyhow::anyhow!("handing topic backlog to {}: {e}", c.name))?;
                }
            }
        }
        for c in &channels {
            loop {
                let mut msgs = Vec::with_capacity(batch);
                if c.take_queued(batch, &mut msgs) == 0 {
                    break;
                }
                let target = targets.next().context("no survivor")?;
                if let Err(e) = import(target, &topic.name, &c.name, &msgs).await {
                    let n = msgs.len();
                    let _ = c.put_batch(&msgs);
                    bail!(
                        "moving {n} messages of {}/{} to {target}: {e}",
                        topic.name,
                        c.name
                    );
                }
                report.channel_messages += msgs.len() as u64;
            }
        }
    }
    Ok(report)
}

/// A topic batch that could not be published goes back to the topic's backlog.
fn restore_topic(node: &Nsqd, topic: &str, msgs: Vec<Message>) {
    if let Some(t) = node.topic(topic) {
        if let Err(e) = t.put_messages(msgs) {
            tracing::error!(topic, error = %e, "could not restore messages");
        }
    }
}

fn encode_records(msgs: &[Message]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(msgs.len() as i32).to_be_bytes());
    for m in msgs {
        let record = m.to_disk_bytes();
        body.extend_from_slice(&(record.len() as i32).to_be_bytes());
        body.extend_from_slice(&record);
    }
    body
}

async fn import(addr: &str, topic: &str, channel: &str, msgs: &[Message]) -> Result<(), String> {
    let path = format!(
        "/channel/import?topic={}&channel={}",
        crate::http::query_escape(topic),
        crate::http::query_escape(channel)
    );
    nsqd::http_get::post(addr, &path, &encode_records(msgs), REQUEST_TIMEOUT)
        .await
        .map(|_| ())
}

async fn mpub(addr: &str, topic: &str, msgs: &[Message]) -> Result<(), String> {
    let mut body = Vec::new();
    body.extend_from_slice(&(msgs.len() as i32).to_be_bytes());
    for m in msgs {
        body.extend_from_slice(&(m.body.len() as i32).to_be_bytes());
        body.extend_from_slice(&m.body);
    }
    let path = format!(
        "/mpub?topic={}&binary=true",
        crate::http::query_escape(topic)
    );
    nsqd::http_get::post(addr, &path, &body, REQUEST_TIMEOUT)
        .await
        .map(|_| ())
}
