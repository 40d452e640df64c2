//! The node: its topics, its clients, health, and the registry events lookupd peers
//! follow. Topics and channels do not point back here; the node orchestrates anything
//! that spans them (ephemeral clean-up, deletion, shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::broadcast;

use crate::channel::Channel;
use crate::client::ClientShared;
use crate::guid::IdGenerator;
use crate::metadata::{self, ChannelMeta, Metadata, TopicMeta};
use crate::options::Options;
use crate::queue::{MessageQueue, Overflow};
use crate::topic::Topic;

/// A change lookupd peers must hear about (REGISTER / UNREGISTER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryEvent {
    TopicCreated(String),
    TopicDeleted(String),
    ChannelCreated(String, String),
    ChannelDeleted(String, String),
}

/// Counters of topics and channels that were deleted, so node-wide totals never go
/// backwards when a topic or channel disappears.
#[derive(Debug, Default, Clone, Copy)]
pub struct RetiredCounters {
    pub published: u64,
    pub published_bytes: u64,
    pub delivered: u64,
    pub finished: u64,
    pub requeued: u64,
    pub timed_out: u64,
}

/// See [`Nsqd::counter_snapshot`].
pub struct CounterSnapshot {
    pub retired: RetiredCounters,
    pub topics: Vec<Arc<Topic>>,
    /// The channels of each topic, in the same order as `topics`.
    pub channels: Vec<Vec<Arc<Channel>>>,
}

impl RetiredCounters {
    fn add_channel(&mut self, c: &crate::channel::ChannelCounters) {
        self.delivered += c.delivered_count.load(Ordering::Relaxed);
        self.finished += c.finish_count.load(Ordering::Relaxed);
        self.requeued += c.requeue_count.load(Ordering::Relaxed);
        self.timed_out += c.timeout_count.load(Ordering::Relaxed);
    }
}

/// Why a topic or channel operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("TOPIC_NOT_FOUND")]
    TopicNotFound,
    #[error("CHANNEL_NOT_FOUND")]
    ChannelNotFound,
    #[error("{0}")]
    Storage(String),
}

pub struct Nsqd {
    pub opts: Arc<Options>,
    pub ids: IdGenerator,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    clients: Mutex<HashMap<u64, Arc<ClientShared>>>,
    next_client_id: AtomicU64,
    /// Unix seconds.
    pub start_time: i64,
    health: Mutex<Option<String>>,
    /// Mirrors `health.is_some()` so the publish path checks health without a lock.
    unhealthy: std::sync::atomic::AtomicBool,
    events: broadcast::Sender<RegistryEvent>,
    /// Serialises `nsqd.dat` writes so the file always reflects the latest state.
    metadata_lock: Mutex<()>,
    /// While the node loads `nsqd.dat` it must not rewrite it half-built.
    loading: std::sync::atomic::AtomicBool,
    /// The lookupd TCP addresses currently configured (`PUT
    /// /config/nsqlookupd_tcp_addresses` replaces them); lookupd peer tasks subscribe to
    /// follow changes live.
    pub lookupd_tcp_addresses: tokio::sync::watch::Sender<Vec<String>>,
    /// The log level currently configured, lower case (`PUT /config/log_level`).
    pub log_level: tokio::sync::watch::Sender<String>,
    /// `<broadcast_address>:<http_port>` of each connected lookupd, for channel pre-creation.
    pub lookupd_http_addresses: RwLock<Vec<String>>,
    this: RwLock<std::sync::Weak<Nsqd>>,
    retired: Mutex<RetiredCounters>,
}

impl Nsqd {
    pub fn new(opts: Options) -> Nsqd {
        let ids = IdGenerator::new(opts.effective_node_id());
        let lookupd_tcp_addresses =
            tokio::sync::watch::Sender::new(opts.lookupd_tcp_addresses.clone());
        let log_level = tokio::sync::watch::Sender::new(opts.log_level.to_ascii_lowercase());
        Nsqd {
            opts: Arc::new(opts),
            ids,
            topics: RwLock::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            next_client_id: AtomicU64::new(1),
            start_time: crate::message::now_ns() / 1_000_000_000,
            health: Mutex::new(None),
            unhealthy: std::sync::atomic::AtomicBool::new(false),
            events: broadcast::channel(4096).0,
            metadata_lock: Mutex::new(()),
            loading: std::sync::atomic::AtomicBool::new(false),
            lookupd_tcp_addresses,
            log_level,
            lookupd_http_addresses: RwLock::new(Vec::new()),
            this: RwLock::new(std::sync::Weak::new()),
            retired: Mutex::new(RetiredCounters::default()),
        }
    }

    /// A handle on this node for background tasks (set by [`Nsqd::into_shared`]).
    fn self_handle(&self) -> Option<Arc<Nsqd>> {
        self.this.read().upgrade()
    }

    /// Wraps the node in an `Arc` and lets it hand itself to background tasks.
    pub fn into_shared(self) -> Arc<Nsqd> {
        let node = Arc::new(self);
        *node.this.write() = Arc::downgrade(&node);
        node
    }

    /// Registry changes, for lookupd peers.
    pub fn subscribe_events(&self) -> broadcast::Receiver<RegistryEvent> {
        self.events.subscribe()
    }

    fn emit(&self, e: RegistryEvent) {
        let _ = self.events.send(e);
    }

    /// A queue for a topic (`name`) or channel (`topic:channel`).
    pub fn make_queue(&self, disk_name: &str, ephemeral: bool) -> MessageQueue {
        let mem = self.opts.mem_queue_size.max(0) as usize;
        if ephemeral {
            return MessageQueue::new(mem, Overflow::Discard);
        }
        let spec = crate::queue::DiskSpec {
            name: disk_name.to_string(),
            data_path: self.opts.effective_data_path(),
            opts: nsq_diskqueue::Options {
                max_bytes_per_file: self.opts.max_bytes_per_file,
                min_msg_size: nsq_protocol::message::MESSAGE_HEADER_LEN as i32,
                max_msg_size: (self.opts.max_msg_size as i32)
                    .saturating_add(nsq_protocol::message::MESSAGE_HEADER_LEN as i32),
                sync_every: self.opts.sync_every,
                sync_timeout: self.opts.sync_timeout,
            },
        };
        let overflow = spec.open();
        if let Overflow::Unavailable(reason, _) = &overflow {
            tracing::error!("{reason}");
            self.set_health(Some(reason.clone()));
        }
        MessageQueue::new(mem, overflow)
    }

    /// The topic, created if missing.
    pub fn get_or_create_topic(&self, name: &str) -> Arc<Topic> {
        if let Some(t) = self.topics.read().get(name) {
            return t.clone();
        }
        let mut topics = self.topics.write();
        if let Some(t) = topics.get(name) {
            return t.clone();
        }
        let topic = Arc::new(Topic::new(
            name,
            self.make_queue(name, nsq_protocol::names::is_ephemeral(name)),
            self.opts.e2e_config(),
        ));
        let lookupds = self.lookupd_http_addresses.read().clone();
        let precreate = !lookupds.is_empty() && !self.loading.load(Ordering::Acquire);
        if precreate {
            topic.hold_until_started();
        }
        topics.insert(name.to_string(), topic.clone());
        drop(topics);
        if precreate {
            crate::lookup::precreate_channels(self.self_handle(), topic.clone(), lookupds);
        }
        tracing::info!(topic = %name, "TOPIC: created");
        self.emit(RegistryEvent::TopicCreated(name.to_string()));
        if !topic.ephemeral {
            self.persist_metadata_logged();
        }
        topic
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self.topics.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The channel, created if missing.
    pub fn get_or_create_channel(&self, topic: &Arc<Topic>, name: &str) -> Arc<Channel> {
        let disk_name = format!("{}:{}", topic.name, name);
        let ephemeral = nsq_protocol::names::is_ephemeral(name);
        let (ch, created) =
            topic.get_or_create_channel(name, || self.make_queue(&disk_name, ephemeral));
        if created {
            tracing::info!(topic = %topic.name, channel = %name, "CHANNEL: created");
            self.emit(RegistryEvent::ChannelCreated(
                topic.name.clone(),
                name.to_string(),
            ));
        }
        ch
    }

    /// Deletes a topic: its channels (consumers disconnected) and all stored data.
    pub fn delete_topic(&self, name: &str) -> Result<(), NodeError> {
        let topic = {
            // Leaving the live set and entering the retired totals happen under one
            // lock, so a scrape sees the topic's counters exactly once.
            let mut r = self.retired.lock();
            let topic = self
                .topics
                .write()
                .remove(name)
                .ok_or(NodeError::TopicNotFound)?;
            r.published += topic.message_count.load(Ordering::Relaxed);
            r.published_bytes += topic.message_bytes.load(Ordering::Relaxed);
            for ch in topic.channels() {
                r.add_channel(&ch.counters);
            }
            topic
        };
        topic.mark_deleted();
        let mut first_err = None;
        for ch in topic.channels() {
            if topic.remove_channel(&ch.name).is_some() {
                if let Err(e) = self.retire_channel(&ch) {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Err(e) = topic.delete_storage(MessageQueue::new(0, Overflow::Discard)) {
            first_err.get_or_insert(NodeError::Storage(e.to_string()));
        }
        tracing::info!(topic = %name, "TOPIC: deleted");
        self.emit(RegistryEvent::TopicDeleted(name.to_string()));
        if !topic.ephemeral {
            self.persist_metadata_logged();
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Deletes one channel of a topic.
    pub fn delete_channel(&self, topic_name: &str, channel: &str) -> Result<(), NodeError> {
        let topic = self.topic(topic_name).ok_or(NodeError::TopicNotFound)?;
        let (ch, remaining) = {
            let mut r = self.retired.lock();
            let (ch, remaining) = topic
                .remove_channel(channel)
                .ok_or(NodeError::ChannelNotFound)?;
            r.add_channel(&ch.counters);
            (ch, remaining)
        };
        let result = self.retire_channel(&ch);
        if remaining == 0 && topic.ephemeral {
            let _ = self.delete_topic(topic_name);
        }
        if !ch.ephemeral && !topic.ephemeral {
            self.persist_metadata_logged();
        }
        result
    }

    fn retire_channel(&self, ch: &Arc<Channel>) -> Result<(), NodeError> {
        ch.mark_deleted();
        let r = ch
            .delete_storage(MessageQueue::new(0, Overflow::Discard))
            .map_err(|e| NodeError::Storage(e.to_string()));
        tracing::info!(topic = %ch.topic_name, channel = %ch.name, "CHANNEL: deleted");
        self.emit(RegistryEvent::ChannelDeleted(
            ch.topic_name.clone(),
            ch.name.clone(),
        ));
        r
    }

    /// A consumer left its channel: an ephemeral channel with no consumers left goes.
    pub fn remove_consumer(&self, ch: &Arc<Channel>, client_id: u64) {
        let remaining = ch.remove_client(client_id);
        if remaining == 0 && ch.ephemeral && !ch.is_deleted() {
            let _ = self.delete_channel(&ch.topic_name, &ch.name);
        }
    }

    /// Totals of topics and channels deleted so far, with the live topics and their
    /// channels taken at the same instant: every counter is in exactly one of the two.
    pub fn counter_snapshot(&self) -> CounterSnapshot {
        let r = self.retired.lock();
        let topics = self.topics();
        let channels = topics.iter().map(|t| t.channels()).collect();
        CounterSnapshot {
            retired: *r,
            topics,
            channels,
        }
    }

    /// Every channel of every topic.
    pub fn all_channels(&self) -> Vec<Arc<Channel>> {
        self.topics().iter().flat_map(|t| t.channels()).collect()
    }

    pub fn register_client(&self, remote: std::net::SocketAddr) -> Arc<ClientShared> {
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(ClientShared::new(
            id,
            remote,
            crate::message::now_ns() / 1_000_000_000,
        ));
        self.clients.lock().insert(id, c.clone());
        c
    }

    pub fn unregister_client(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn clients(&self) -> Vec<Arc<ClientShared>> {
        self.clients.lock().values().cloned().collect()
    }

    /// Pauses or unpauses a topic and records it in `nsqd.dat`.
    pub fn set_topic_paused(&self, name: &str, paused: bool) -> Result<(), NodeError> {
        let topic = self.topic(name).ok_or(NodeError::TopicNotFound)?;
        topic.set_paused(paused);
        self.persist_metadata().map_err(NodeError::Storage)
    }

    /// Pauses or unpauses a channel and records it in `nsqd.dat`.
    pub fn set_channel_paused(
        &self,
        topic_name: &str,
        channel: &str,
        paused: bool,
    ) -> Result<(), NodeError> {
        let topic = self.topic(topic_name).ok_or(NodeError::TopicNotFound)?;
        let ch = topic.channel(channel).ok_or(NodeError::ChannelNotFound)?;
        ch.set_paused(paused);
        self.persist_metadata().map_err(NodeError::Storage)
    }

    /// The current topics and channels in `nsqd.dat` form (ephemeral ones left out).
    pub fn metadata(&self) -> Metadata {
        let topics = self
            .topics()
            .into_iter()
            .filter(|t| !t.ephemeral)
            .map(|t| {
                let channels: Vec<ChannelMeta> = t
                    .channels()
                    .into_iter()
                    .filter(|c| !c.ephemeral)
                    .map(|c| ChannelMeta {
                        name: c.name.clone(),
                        paused: c.is_paused(),
                    })
                    .collect();
                TopicMeta {
                    name: t.name.clone(),
                    paused: t.is_paused(),
                    channels: (!channels.is_empty()).then_some(channels),
                }
            })
            .collect();
        Metadata {
            topics,
            version: nsq_protocol::NSQ_VERSION.to_string(),
        }
    }

    /// Writes `nsqd.dat` now.
    pub fn persist_metadata(&self) -> Result<(), String> {
        if self.loading.load(Ordering::Acquire) {
            return Ok(());
        }
        let _guard = self.metadata_lock.lock();
        let meta = self.metadata();
        metadata::save(&self.opts.effective_data_path(), &meta).map_err(|e| e.to_string())
    }

    fn persist_metadata_logged(&self) {
        if let Err(e) = self.persist_metadata() {
            tracing::error!(error = %e, "failed to persist metadata");
        }
    }

    /// Recreates the topics and channels of `nsqd.dat` (invalid names skipped), with
    /// their paused state, reopening their disk queues.
    pub fn load_metadata(&self) -> Result<(), metadata::MetadataError> {
        let Some(meta) = metadata::load(&self.opts.effective_data_path())? else {
            return Ok(());
        };
        self.loading.store(true, Ordering::Release);
        for t in meta.topics {
            if !nsq_protocol::names::is_valid_topic_name(&t.name) {
                tracing::warn!(topic = %t.name, "skipping creation of invalid topic");
                continue;
            }
            let topic = self.get_or_create_topic(&t.name);
            if t.paused {
                topic.set_paused(true);
            }
            for c in t.channels.unwrap_or_default() {
                if !nsq_protocol::names::is_valid_channel_name(&c.name) {
                    tracing::warn!(channel = %c.name, "skipping creation of invalid channel");
                    continue;
                }
                let ch = self.get_or_create_channel(&topic, &c.name);
                if c.paused {
                    ch.set_paused(true);
                }
            }
        }
        self.loading.store(false, Ordering::Release);
        self.persist_metadata()
            .map_err(|e| metadata::MetadataError::Write {
                path: self
                    .opts
                    .effective_data_path()
                    .join(metadata::METADATA_FILE),
                source: std::io::Error::other(e),
            })
    }

    /// `None` when healthy, else the last disk error.
    pub fn health(&self) -> Option<String> {
        self.health.lock().clone()
    }

    pub fn set_health(&self, err: Option<String>) {
        let mut h = self.health.lock();
        if h.is_some() != err.is_some() {
            match &err {
                Some(e) => tracing::error!(error = %e, "node unhealthy"),
                None => tracing::info!("node healthy again"),
            }
        }
        self.unhealthy.store(err.is_some(), Ordering::Release);
        *h = err;
    }

    /// Records the outcome of a disk-touching operation in the node's health.
    pub fn note_storage_result<T, E: std::fmt::Display>(&self, r: &Result<T, E>) {
        match r {
            Ok(_) => {
                if self.unhealthy.load(Ordering::Acquire) {
                    self.set_health(None)
                }
            }
            Err(e) => self.set_health(Some(e.to_string())),
        }
    }
}
