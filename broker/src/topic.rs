//! A topic: fans every published message out to each of its channels, body shared.
//!
//! While a topic has no channels, or is paused, messages wait in the topic's own queue
//! (memory, then disk) and flow to the channels once there are some and it is unpaused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::channel::Channel;
use crate::message::Message;
use crate::queue::{MessageQueue, QueueError};

/// How many backlog messages are moved per lock while draining.
const DRAIN_BATCH: usize = 256;

struct TopicState {
    channels: BTreeMap<String, Arc<Channel>>,
    backlog: MessageQueue,
}

pub struct Topic {
    pub name: String,
    pub ephemeral: bool,
    state: Mutex<TopicState>,
    paused: AtomicBool,
    deleted: AtomicBool,
    draining: AtomicBool,
    /// False while channels are being pre-created from lookupd: hold messages until then.
    started: AtomicBool,
    pub message_count: AtomicU64,
    pub message_bytes: AtomicU64,
    e2e: Option<crate::quantile::E2eConfig>,
}

impl Topic {
    pub fn new(
        name: &str,
        backlog: MessageQueue,
        e2e: Option<crate::quantile::E2eConfig>,
    ) -> Topic {
        Topic {
            name: name.to_string(),
            ephemeral: nsq_protocol::names::is_ephemeral(name),
            state: Mutex::new(TopicState {
                channels: BTreeMap::new(),
                backlog,
            }),
            paused: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            started: AtomicBool::new(true),
            message_count: AtomicU64::new(0),
            message_bytes: AtomicU64::new(0),
            e2e,
        }
    }

    /// Publishes a batch (PUB, MPUB, DPUB, /pub, /mpub): all or nothing on the memory
    /// path; a disk error is reported, never swallowed.
    pub fn put_messages(self: &Arc<Self>, msgs: Vec<Message>) -> Result<(), QueueError> {
        if self.is_deleted() {
            return Err(QueueError("exiting".into()));
        }
        let bytes: u64 = msgs.iter().map(|m| m.body.len() as u64).sum();
        let count = msgs.len() as u64;
        let mut st = self.state.lock();
        let direct = self.is_flowing() && !st.channels.is_empty() && st.backlog.depth() == 0;
        if direct {
            for ch in st.channels.values() {
                ch.put_batch(&msgs)?;
            }
        } else {
            for m in msgs {
                st.backlog.push(m)?;
            }
        }
        let pending = !direct && !st.channels.is_empty();
        drop(st);
        self.message_count.fetch_add(count, Ordering::Relaxed);
        self.message_bytes.fetch_add(bytes, Ordering::Relaxed);
        if pending {
            self.schedule_drain();
        }
        Ok(())
    }

    /// The channel, created if missing; `make_queue` builds a new channel's queue.
    /// Returns whether it was created.
    pub fn get_or_create_channel(
        self: &Arc<Self>,
        name: &str,
        make_queue: impl FnOnce() -> MessageQueue,
    ) -> (Arc<Channel>, bool) {
        let mut st = self.state.lock();
        if let Some(ch) = st.channels.get(name) {
            return (ch.clone(), false);
        }
        let ch = Arc::new(Channel::new(
            &self.name,
            name,
            make_queue(),
            self.e2e.clone(),
        ));
        st.channels.insert(name.to_string(), ch.clone());
        let backlog = st.backlog.depth() > 0;
        drop(st);
        if backlog {
            self.schedule_drain();
        }
        (ch, true)
    }

    pub fn channel(&self, name: &str) -> Option<Arc<Channel>> {
        self.state.lock().channels.get(name).cloned()
    }

    /// Channels sorted by name.
    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.state.lock().channels.values().cloned().collect()
    }

    /// Removes a channel from the topic; returns it and how many channels remain.
    pub fn remove_channel(&self, name: &str) -> Option<(Arc<Channel>, usize)> {
        let mut st = self.state.lock();
        let ch = st.channels.remove(name)?;
        Some((ch, st.channels.len()))
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Whether messages may flow to the channels: started and not paused.
    fn is_flowing(&self) -> bool {
        self.started.load(Ordering::Acquire) && !self.is_paused()
    }

    /// Holds messages at the topic until [`start`](Self::start) (channel pre-creation).
    pub fn hold_until_started(&self) {
        self.started.store(false, Ordering::Release);
    }

    /// Lets held messages flow to the channels.
    pub fn start(self: &Arc<Self>) {
        self.started.store(true, Ordering::Release);
        self.schedule_drain();
    }

    pub fn set_paused(self: &Arc<Self>, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        if !paused {
            self.schedule_drain();
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    /// Stops publishing and backlog hand-off; returns once no hand-off is mid-batch.
    pub fn close(&self) {
        self.mark_deleted();
        // drain_batch holds the state lock while moving a batch: taking it fences one.
        drop(self.state.lock());
    }

    /// End-to-end latency percentiles merged over all channels; `None` when off.
    pub fn e2e_latency(&self) -> Option<crate::quantile::Percentiles> {
        let config = self.e2e.as_ref()?;
        let mut samples = Vec::new();
        let mut count = 0;
        for ch in self.channels() {
            ch.merge_e2e_samples(&mut samples, &mut count);
        }
        Some(crate::quantile::percentiles(
            &config.percentiles,
            samples,
            count,
        ))
    }

    /// Messages waiting at the topic level (memory + disk).
    pub fn depth(&self) -> i64 {
        self.state.lock().backlog.depth()
    }

    pub fn backend_depth(&self) -> i64 {
        self.state.lock().backlog.backend_depth()
    }

    /// Takes up to `max` messages out of the topic-level backlog (`nsq drain`).
    pub fn take_backlog(&self, max: usize, out: &mut Vec<Message>) -> usize {
        let mut st = self.state.lock();
        let start = out.len();
        while out.len() - start < max {
            match st.backlog.pop() {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out.len() - start
    }

    /// Drops the topic-level backlog (channels untouched).
    pub fn empty(&self) -> Result<(), QueueError> {
        self.state.lock().backlog.clear()
    }

    /// Runs, at most once at a time, a task moving the backlog to the channels.
    fn schedule_drain(self: &Arc<Self>) {
        if self.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        let topic = self.clone();
        tokio::spawn(async move {
            loop {
                let more = topic.drain_batch();
                if !more {
                    topic.draining.store(false, Ordering::Release);
                    // A publish may have queued behind us between the last look and the
                    // flag reset: look once more before leaving.
                    if topic.has_drainable_backlog() && !topic.draining.swap(true, Ordering::AcqRel)
                    {
                        continue;
                    }
                    return;
                }
                tokio::task::yield_now().await;
            }
        });
    }

    fn has_drainable_backlog(&self) -> bool {
        let st = self.state.lock();
        self.is_flowing() && !self.is_deleted() && !st.channels.is_empty() && st.backlog.depth() > 0
    }

    /// Moves one batch from the backlog to every channel; false when nothing is left to
    /// move (empty, paused, no channels, deleted).
    fn drain_batch(&self) -> bool {
        let mut st = self.state.lock();
        if !self.is_flowing() || self.is_deleted() || st.channels.is_empty() {
            return false;
        }
        let mut batch = Vec::with_capacity(DRAIN_BATCH);
        while batch.len() < DRAIN_BATCH {
            match st.backlog.pop() {
                Some(m) => batch.push(m),
                None => break,
            }
        }
        if batch.is_empty() {
            return false;
        }
        for ch in st.channels.values() {
            if let Err(e) = ch.put_batch(&batch) {
                tracing::error!(topic = %self.name, channel = %ch.name, error = %e,
                    "failed to hand backlog to channel");
            }
        }
        true
    }

    /// Shutdown: persists the backlog and closes its disk queue.
    pub fn persist_and_close(&self, replacement: MessageQueue) -> Result<(), QueueError> {
        let q = std::mem::replace(&mut self.state.lock().backlog, replacement);
        q.persist_and_close(std::iter::empty())
    }

    /// Deletion: removes the backlog's disk files.
    pub fn delete_storage(&self, replacement: MessageQueue) -> Result<(), QueueError> {
        let q = std::mem::replace(&mut self.state.lock().backlog, replacement);
        q.delete()
    }

    pub fn sync_if_due(&self) -> Result<(), QueueError> {
        self.state.lock().backlog.sync_if_due()
    }
}
