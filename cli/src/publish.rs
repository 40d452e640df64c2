//! `nsq pub`: publish messages given as arguments, or one per line of stdin, with `PUB`
//! commands pipelined on one connection (each `OK` is awaited, heartbeats answered).

use clap::Args;
use nsq_protocol::frame::{FrameType, HEARTBEAT, OK};
use nsq_protocol::{client, names};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::conn::{server_error, ConnError, Connection};

/// `nsq pub`.
#[derive(Debug, Clone, Args)]
pub struct PubArgs {
    /// <addr>:<port> of the nsqd to publish to
    #[arg(long, default_value = "127.0.0.1:4150", value_name = "ADDR")]
    pub nsqd_tcp_address: String,
    /// topic to publish to (created if missing)
    #[arg(long)]
    pub topic: String,
    /// messages to publish, one PUB each; without any, every non-empty line of stdin is
    /// one message
    #[arg(value_name = "MESSAGE")]
    pub messages: Vec<String>,
}

/// Why publishing stopped.
#[derive(Debug, thiserror::Error)]
pub enum PubError {
    #[error("topic name {0:?} is not valid")]
    BadTopic(String),
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("reading stdin: {0}")]
    Input(std::io::Error),
}

/// Publishes `args.messages`, or stdin's lines when there are none; returns how many
/// messages nsqd acknowledged.
pub async fn run(args: &PubArgs) -> Result<u64, PubError> {
    if !names::is_valid_topic_name(&args.topic) {
        return Err(PubError::BadTopic(args.topic.clone()));
    }
    let mut conn = Connection::connect(&args.nsqd_tcp_address).await?;
    if args.messages.is_empty() {
        let stdin = tokio::io::BufReader::new(tokio::io::stdin());
        return publish_lines(&mut conn, &args.topic, stdin).await;
    }
    for m in &args.messages {
        client::publish(conn.out(), &args.topic, m.as_bytes());
    }
    conn.flush().await?;
    for _ in &args.messages {
        conn.expect_ok().await?;
    }
    Ok(args.messages.len() as u64)
}

/// Publishes each non-empty line of `input` (without its `\n`) as it arrives, reading
/// nsqd's replies meanwhile so a slow producer still answers heartbeats.
pub async fn publish_lines<R>(conn: &mut Connection, topic: &str, input: R) -> Result<u64, PubError>
where
    R: AsyncBufRead + Unpin,
{
    let mut lines = input.split(b'\n');
    let mut eof = false;
    let (mut sent, mut acked) = (0u64, 0u64);
    while !eof || acked < sent {
        tokio::select! {
            line = lines.next_segment(), if !eof => match line.map_err(PubError::Input)? {
                Some(line) if line.is_empty() => {}
                Some(line) => {
                    client::publish(conn.out(), topic, &line);
                    conn.flush().await?;
                    sent += 1;
                }
                None => eof = true,
            },
            frame = conn.read_frame() => {
                let frame = frame?.ok_or(ConnError::Closed)?;
                match frame.frame_type {
                    FrameType::Response if frame.data == HEARTBEAT => {
                        client::nop(conn.out());
                        conn.flush().await?;
                    }
                    FrameType::Response if frame.data == OK && acked < sent => acked += 1,
                    FrameType::Error => return Err(server_error(&frame.data).into()),
                    _ => {
                        return Err(ConnError::Unexpected(format!("{:?} frame", frame.frame_type)).into())
                    }
                }
            }
        }
    }
    Ok(acked)
}
