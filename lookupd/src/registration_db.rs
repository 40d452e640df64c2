//! The registration database: which nsqd peers (producers) carry which topics and
//! channels, with per-registration tombstones and per-peer liveness.
//!
//! A registration is keyed `(category, key, subkey)`: `("client", "", "")` lists every
//! identified peer, `("topic", T, "")` the producers of a topic, `("channel", T, C)` those
//! of a channel. A registration can exist with no producers (created over HTTP, or left
//! behind when its producers went away). As in nsqlookupd, a key or subkey of `*` in a
//! query matches any value.
//!
//! Liveness (`last_update`) belongs to the peer and is shared by all its registrations; a
//! tombstone belongs to one producer entry of one registration, so re-REGISTERing does
//! not clear it, while UNREGISTER or a disconnect (which remove the entry) do.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nsq_protocol::lookup::{DebugEntry, DebugResponse, Producer as ProducerJson};
use parking_lot::RwLock;

/// Which kind of thing a registration records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Client,
    Topic,
    Channel,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Client => "client",
            Category::Topic => "topic",
            Category::Channel => "channel",
        }
    }
}

/// A registration key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Registration {
    pub category: Category,
    pub key: String,
    pub sub_key: String,
}

impl Registration {
    /// The registry of identified peers.
    pub fn client() -> Self {
        Self::new(Category::Client, "", "")
    }

    pub fn topic(topic: &str) -> Self {
        Self::new(Category::Topic, topic, "")
    }

    pub fn channel(topic: &str, channel: &str) -> Self {
        Self::new(Category::Channel, topic, channel)
    }

    fn new(category: Category, key: &str, sub_key: &str) -> Self {
        Registration {
            category,
            key: key.to_string(),
            sub_key: sub_key.to_string(),
        }
    }

    /// nsqlookupd's match rule: category exactly, key and subkey exactly or `*`.
    pub fn matches(&self, category: Category, key: &str, sub_key: &str) -> bool {
        self.category == category
            && (key == "*" || self.key == key)
            && (sub_key == "*" || self.sub_key == sub_key)
    }
}

impl fmt::Display for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.category.as_str(),
            self.key,
            self.sub_key
        )
    }
}

/// An identified nsqd connection, as its IDENTIFY described it.
#[derive(Debug)]
pub struct PeerInfo {
    /// The connection's remote `ip:port`; unique among live connections.
    pub id: String,
    pub remote_address: String,
    pub hostname: String,
    pub broadcast_address: String,
    pub tcp_port: i64,
    pub http_port: i64,
    pub version: String,
    /// Unix nanoseconds of the last IDENTIFY or PING.
    last_update: AtomicI64,
}

impl PeerInfo {
    pub fn new(
        id: String,
        hostname: String,
        broadcast_address: String,
        tcp_port: i64,
        http_port: i64,
        version: String,
    ) -> Self {
        PeerInfo {
            remote_address: id.clone(),
            id,
            hostname,
            broadcast_address,
            tcp_port,
            http_port,
            version,
            last_update: AtomicI64::new(unix_nanos_now()),
        }
    }

    /// Records a PING.
    pub fn touch(&self) {
        self.last_update.store(unix_nanos_now(), Ordering::Relaxed);
    }

    pub fn last_update(&self) -> i64 {
        self.last_update.load(Ordering::Relaxed)
    }

    /// Whether the peer was heard from within `timeout` (nsqlookupd drops a peer only
    /// when strictly more than `timeout` has passed).
    pub fn is_active(&self, timeout: Duration, now_nanos: i64) -> bool {
        i128::from(now_nanos) - i128::from(self.last_update()) <= timeout.as_nanos() as i128
    }

    /// The `/lookup` view.
    pub fn to_json(&self) -> ProducerJson {
        ProducerJson {
            remote_address: self.remote_address.clone(),
            hostname: self.hostname.clone(),
            broadcast_address: self.broadcast_address.clone(),
            tcp_port: self.tcp_port,
            http_port: self.http_port,
            version: self.version.clone(),
        }
    }
}

/// When a producer entry was tombstoned: monotonic for expiry, wall clock for `/debug`.
#[derive(Debug, Clone, Copy)]
struct Tombstone {
    at: Instant,
    at_unix_nanos: i64,
}

/// One peer's entry in one registration.
#[derive(Debug, Clone)]
pub struct Producer {
    peer: Arc<PeerInfo>,
    tombstone: Option<Tombstone>,
}

impl Producer {
    pub fn peer(&self) -> &Arc<PeerInfo> {
        &self.peer
    }

    /// Tombstoned less than `lifetime` ago.
    pub fn is_tombstoned(&self, lifetime: Duration) -> bool {
        self.tombstone.is_some_and(|t| t.at.elapsed() < lifetime)
    }
}

/// Keeps the producers that are active and not tombstoned within `tombstone_lifetime`
/// (a zero lifetime keeps tombstoned producers).
pub fn filter_active(
    producers: Vec<Producer>,
    inactivity_timeout: Duration,
    tombstone_lifetime: Duration,
) -> Vec<Producer> {
    let now = unix_nanos_now();
    producers
        .into_iter()
        .filter(|p| {
            p.peer.is_active(inactivity_timeout, now) && !p.is_tombstoned(tombstone_lifetime)
        })
        .collect()
}

type ProducerMap = BTreeMap<String, Producer>;

/// The registrations, behind one lock that is never held across an `.await`.
#[derive(Debug, Default)]
pub struct RegistrationDb {
    map: RwLock<BTreeMap<Registration, ProducerMap>>,
}

impl RegistrationDb {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an empty registration if it does not exist.
    pub fn add_registration(&self, reg: Registration) {
        self.map.write().entry(reg).or_default();
    }

    /// Adds `peer` to `reg` (creating it); false if the peer was already there, in which
    /// case its entry, tombstone included, is kept.
    pub fn add_producer(&self, reg: Registration, peer: &Arc<PeerInfo>) -> bool {
        let mut map = self.map.write();
        let producers = map.entry(reg).or_default();
        if producers.contains_key(&peer.id) {
            return false;
        }
        producers.insert(
            peer.id.clone(),
            Producer {
                peer: Arc::clone(peer),
                tombstone: None,
            },
        );
        true
    }

    /// Removes peer `id` from `reg`, leaving the registration in place: whether it was
    /// there, and how many producers remain.
    pub fn remove_producer(&self, reg: &Registration, id: &str) -> (bool, usize) {
        let mut map = self.map.write();
        match map.get_mut(reg) {
            Some(producers) => {
                let removed = producers.remove(id).is_some();
                (removed, producers.len())
            }
            None => (false, 0),
        }
    }

    /// Removes a registration and all its producers.
    pub fn remove_registration(&self, reg: &Registration) {
        self.map.write().remove(reg);
    }

    /// Removes peer `id` from every registration (a disconnect); returns those it left.
    pub fn remove_peer(&self, id: &str) -> Vec<Registration> {
        let mut map = self.map.write();
        map.iter_mut()
            .filter_map(|(reg, producers)| producers.remove(id).map(|_| reg.clone()))
            .collect()
    }

    /// The registrations matching `(category, key, sub_key)`, `*` matching anything.
    pub fn find_registrations(
        &self,
        category: Category,
        key: &str,
        sub_key: &str,
    ) -> Vec<Registration> {
        let map = self.map.read();
        matching(&map, category, key, sub_key)
            .map(|(reg, _)| reg.clone())
            .collect()
    }

    /// The producers of the matching registrations, one entry per peer (the first found).
    pub fn find_producers(&self, category: Category, key: &str, sub_key: &str) -> Vec<Producer> {
        let map = self.map.read();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (_, producers) in map
            .iter()
            .filter(|(r, _)| r.matches(category, key, sub_key))
        {
            for (id, p) in producers {
                if seen.insert(id.as_str()) {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// Every registration peer `id` is a producer of.
    pub fn lookup_registrations(&self, id: &str) -> Vec<Registration> {
        let map = self.map.read();
        map.iter()
            .filter(|(_, producers)| producers.contains_key(id))
            .map(|(reg, _)| reg.clone())
            .collect()
    }

    /// Tombstones the producers of `topic` whose `<broadcast_address>:<http_port>` is
    /// `node` (one entry per peer, as [`find_producers`](Self::find_producers) picks them);
    /// returns how many.
    pub fn tombstone(&self, topic: &str, node: &str) -> usize {
        let mut map = self.map.write();
        let mut seen = std::collections::HashSet::new();
        let mut count = 0;
        let now = Tombstone {
            at: Instant::now(),
            at_unix_nanos: unix_nanos_now(),
        };
        let regs: Vec<Registration> = matching(&map, Category::Topic, topic, "")
            .map(|(reg, _)| reg.clone())
            .collect();
        for reg in &regs {
            let Some(producers) = map.get_mut(reg) else {
                continue;
            };
            for (id, p) in producers.iter_mut() {
                if !seen.insert(id.clone()) {
                    continue;
                }
                if format!("{}:{}", p.peer.broadcast_address, p.peer.http_port) == node {
                    p.tombstone = Some(now);
                    count += 1;
                }
            }
        }
        count
    }

    /// The `/debug` view: every producer entry of every registration.
    pub fn debug(&self) -> DebugResponse {
        let map = self.map.read();
        let mut out = DebugResponse::new();
        for (reg, producers) in map.iter().filter(|(_, p)| !p.is_empty()) {
            let entries = producers
                .values()
                .map(|p| DebugEntry {
                    broadcast_address: p.peer.broadcast_address.clone(),
                    hostname: p.peer.hostname.clone(),
                    http_port: p.peer.http_port,
                    id: p.peer.id.clone(),
                    last_update: p.peer.last_update(),
                    tcp_port: p.peer.tcp_port,
                    tombstoned: p.tombstone.is_some(),
                    tombstoned_at: p
                        .tombstone
                        .map_or(nsq_protocol::lookup::GO_ZERO_TIME_UNIX_NANO, |t| {
                            t.at_unix_nanos
                        }),
                    version: p.peer.version.clone(),
                })
                .collect();
            out.insert(reg.to_string(), entries);
        }
        out
    }
}

/// The entries matching `(category, key, sub_key)` in key order. A concrete key is found
/// by a range scan from `(category, key, "")`; only a `*` key scans everything.
fn matching<'a>(
    map: &'a BTreeMap<Registration, ProducerMap>,
    category: Category,
    key: &'a str,
    sub_key: &'a str,
) -> Box<dyn Iterator<Item = (&'a Registration, &'a ProducerMap)> + 'a> {
    if key == "*" {
        return Box::new(
            map.iter()
                .filter(move |(r, _)| r.matches(category, key, sub_key)),
        );
    }
    let start = Registration::new(category, key, "");
    Box::new(
        map.range(start..)
            .take_while(move |(r, _)| r.category == category && r.key == key)
            .filter(move |(r, _)| r.matches(category, key, sub_key)),
    )
}

/// Wall-clock Unix nanoseconds (what nsqlookupd stores as `last_update`).
pub fn unix_nanos_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: &str, http_port: i64) -> Arc<PeerInfo> {
        Arc::new(PeerInfo::new(
            id.to_string(),
            "host".into(),
            "nsqd".into(),
            4150,
            http_port,
            "1.3.0".into(),
        ))
    }

    #[test]
    fn registrations_and_wildcards() {
        let db = RegistrationDb::new();
        let a = peer("a:1", 4151);
        db.add_registration(Registration::topic("empty"));
        assert!(db.add_producer(Registration::channel("t", "c"), &a));
        assert!(db.add_producer(Registration::topic("t"), &a));
        assert!(!db.add_producer(Registration::topic("t"), &a));
        let topics: Vec<_> = db
            .find_registrations(Category::Topic, "*", "")
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(topics, vec!["empty", "t"]);
        assert_eq!(db.find_registrations(Category::Channel, "t", "*").len(), 1);
        // A neighbouring key is not matched by the range scan.
        db.add_registration(Registration::channel("tt", "x"));
        db.add_registration(Registration::channel("s", "y"));
        assert_eq!(db.find_registrations(Category::Channel, "t", "*").len(), 1);
        assert_eq!(db.find_registrations(Category::Channel, "t", "c").len(), 1);
        assert_eq!(db.find_registrations(Category::Channel, "t", "x").len(), 0);
        assert_eq!(db.find_registrations(Category::Channel, "*", "*").len(), 3);
        assert_eq!(db.find_registrations(Category::Channel, "*", "x").len(), 1);
        assert_eq!(db.find_producers(Category::Topic, "*", "").len(), 1);
        assert_eq!(db.lookup_registrations("a:1").len(), 2);
        assert_eq!(
            db.remove_producer(&Registration::topic("t"), "a:1"),
            (true, 0)
        );
        assert_eq!(
            db.remove_producer(&Registration::topic("t"), "a:1"),
            (false, 0)
        );
        assert_eq!(db.find_registrations(Category::Topic, "t", "").len(), 1);
        assert_eq!(db.remove_peer("a:1").len(), 1);
        assert!(db.debug().is_empty());
    }

    #[test]
    fn tombstones_are_per_entry_and_expire() {
        let db = RegistrationDb::new();
        let a = peer("a:1", 4151);
        let b = peer("b:1", 4152);
        db.add_producer(Registration::topic("t"), &a);
        db.add_producer(Registration::topic("t"), &b);
        assert_eq!(db.tombstone("t", "nsqd:4151"), 1);
        assert_eq!(db.tombstone("t", "nsqd:1"), 0);
        let all = db.find_producers(Category::Topic, "t", "");
        let live = filter_active(
            all.clone(),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].peer().id, "b:1");
        // A zero lifetime ignores tombstones (what /nodes does).
        assert_eq!(
            filter_active(all, Duration::from_secs(60), Duration::ZERO).len(),
            2
        );
        // Re-registering keeps the tombstone.
        assert!(!db.add_producer(Registration::topic("t"), &a));
        let debug = db.debug();
        let entries = &debug["topic:t:"];
        assert!(entries.iter().any(|e| e.id == "a:1" && e.tombstoned));
        assert!(entries
            .iter()
            .any(|e| e.id == "b:1"
                && e.tombstoned_at == nsq_protocol::lookup::GO_ZERO_TIME_UNIX_NANO));
    }

    #[test]
    fn inactivity_is_strictly_greater() {
        let p = peer("a:1", 1);
        let last = p.last_update();
        assert!(p.is_active(Duration::from_nanos(10), last + 10));
        assert!(!p.is_active(Duration::from_nanos(10), last + 11));
    }
}
