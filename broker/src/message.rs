//! A message as a topic or channel holds it: the body is shared by every channel's copy.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use nsq_protocol::MessageId;

/// One message. Cloning copies a few words and bumps the body's reference count: the
/// body bytes are never copied per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub body: Bytes,
    /// Publish time, ns since the Unix epoch; kept across requeues and disk round-trips.
    pub timestamp: i64,
    /// Delivery attempts so far on this channel (incremented just before each delivery).
    pub attempts: u16,
    /// DPUB delay in ms, applied when the topic hands the message to its channels.
    pub defer_ms: u64,
}

impl Message {
    /// A newly published message. The body is copied once into its own allocation:
    /// publish paths hand in slices of a connection's read buffer or of a whole HTTP
    /// body, and a queued message holding such a slice would pin the entire buffer for
    /// as long as it waits — with a slow consumer, memory would grow with the traffic
    /// rather than with `--mem-queue-size`. (nsqd also allocates each body on its own.)
    pub fn new(id: MessageId, body: Bytes, timestamp: i64) -> Message {
        Message {
            id,
            body: Bytes::copy_from_slice(&body),
            timestamp,
            attempts: 0,
            defer_ms: 0,
        }
    }

    /// The message in nsqd's disk record layout (without the length prefix).
    pub fn to_disk_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(nsq_protocol::message::MESSAGE_HEADER_LEN + self.body.len());
        nsq_protocol::message::put_message(
            &mut out,
            self.timestamp,
            self.attempts,
            &self.id,
            &self.body,
        );
        out
    }

    /// Decodes a disk record; `None` if it is shorter than a message header.
    pub fn from_disk_bytes(raw: Vec<u8>) -> Option<Message> {
        let d = nsq_protocol::message::decode_message(&Bytes::from(raw)).ok()?;
        Some(Message {
            id: d.id,
            body: d.body,
            timestamp: d.timestamp_ns,
            attempts: d.attempts,
            defer_ms: 0,
        })
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
