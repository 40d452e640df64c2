//! What a clean stop leaves on disk: every queued, in-flight and deferred message of
//! every non-ephemeral channel and topic, ready to be delivered again after restart.

use crate::nsqd::Nsqd;
use crate::queue::{MessageQueue, Overflow};

/// Writes `nsqd.dat`, then all messages to the disk queues, and closes them.
/// Ephemeral contents are dropped.
pub fn persist(nsqd: &Nsqd) {
    if let Err(e) = nsqd.persist_metadata() {
        tracing::error!(error = %e, "failed to persist metadata");
    }
    for topic in nsqd.topics() {
        // Stop the backlog hand-off first, or it could move messages into a channel
        // whose queue was already persisted.
        topic.close();
        for ch in topic.channels() {
            if let Err(e) = ch.persist_and_close(MessageQueue::new(0, Overflow::Discard)) {
                tracing::error!(topic = %topic.name, channel = %ch.name, error = %e,
                    "failed to persist channel");
            }
        }
        if let Err(e) = topic.persist_and_close(MessageQueue::new(0, Overflow::Discard)) {
            tracing::error!(topic = %topic.name, error = %e, "failed to persist topic");
        }
    }
}
