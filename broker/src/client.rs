//! Per-client state shared between a connection's reader, its delivery pump, the
//! channel's in-flight bookkeeping and `/stats`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

/// Connection states as `/stats` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ClientState {
    Init = 0,
    Disconnected = 1,
    Connected = 2,
    Subscribed = 3,
    Closing = 4,
}

/// Descriptive fields set by IDENTIFY and read by `/stats`.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    pub client_id: String,
    pub hostname: String,
    pub user_agent: String,
    pub sample_rate: i32,
    pub deflate: bool,
    pub snappy: bool,
    pub tls: bool,
}

/// One TCP client.
#[derive(Debug)]
pub struct ClientShared {
    pub id: u64,
    pub remote_addr: SocketAddr,
    /// Connect time, Unix seconds.
    pub connect_ts: i64,
    pub ready_count: AtomicI64,
    pub in_flight_count: AtomicI64,
    pub message_count: AtomicU64,
    pub finish_count: AtomicU64,
    pub requeue_count: AtomicU64,
    state: AtomicU8,
    pub meta: Mutex<ClientMeta>,
    /// Messages published per topic, for `/stats` producers.
    pub pub_counts: Mutex<HashMap<String, u64>>,
    /// Wakes the delivery pump: RDY changed, an in-flight slot was freed.
    pub wake: Notify,
    kill: watch::Sender<bool>,
    published: AtomicBool,
}

impl ClientShared {
    pub fn new(id: u64, remote_addr: SocketAddr, connect_ts: i64) -> ClientShared {
        let meta = ClientMeta {
            client_id: remote_addr.ip().to_string(),
            hostname: remote_addr.ip().to_string(),
            ..ClientMeta::default()
        };
        ClientShared {
            id,
            remote_addr,
            connect_ts,
            ready_count: AtomicI64::new(0),
            in_flight_count: AtomicI64::new(0),
            message_count: AtomicU64::new(0),
            finish_count: AtomicU64::new(0),
            requeue_count: AtomicU64::new(0),
            state: AtomicU8::new(ClientState::Init as u8),
            meta: Mutex::new(meta),
            pub_counts: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            kill: watch::Sender::new(false),
            published: AtomicBool::new(false),
        }
    }

    pub fn state(&self) -> ClientState {
        match self.state.load(Ordering::Acquire) {
            0 => ClientState::Init,
            1 => ClientState::Disconnected,
            2 => ClientState::Connected,
            3 => ClientState::Subscribed,
            _ => ClientState::Closing,
        }
    }

    pub fn set_state(&self, s: ClientState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Whether the pump may push another message: `in_flight < ready` (a window).
    pub fn has_room(&self) -> bool {
        let ready = self.ready_count.load(Ordering::Acquire);
        ready > 0 && self.in_flight_count.load(Ordering::Acquire) < ready
    }

    /// Free window slots.
    pub fn room(&self) -> i64 {
        let ready = self.ready_count.load(Ordering::Acquire);
        (ready - self.in_flight_count.load(Ordering::Acquire)).max(0)
    }

    /// An in-flight message left this client (FIN, REQ or timeout).
    pub fn release_in_flight(&self) {
        self.in_flight_count.fetch_sub(1, Ordering::AcqRel);
        self.wake.notify_one();
    }

    pub fn record_publish(&self, topic: &str, count: u64) {
        self.published.store(true, Ordering::Relaxed);
        let mut counts = self.pub_counts.lock();
        match counts.get_mut(topic) {
            Some(n) => *n += count,
            None => {
                counts.insert(topic.to_string(), count);
            }
        }
    }

    pub fn has_published(&self) -> bool {
        self.published.load(Ordering::Relaxed)
    }

    /// Asks the connection to close (channel deleted, node shutting down).
    pub fn kill(&self) {
        self.kill.send_replace(true);
    }

    /// A receiver that changes when [`kill`](Self::kill) is called.
    pub fn kill_signal(&self) -> watch::Receiver<bool> {
        self.kill.subscribe()
    }
}
