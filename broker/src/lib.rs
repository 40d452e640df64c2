//! nsqd: the NSQ message broker, re-implemented in Rust.
//!
//! Map of the crate (data flows top to bottom):
//! - [`options`]: flags and config file, nsqd's names and defaults;
//! - [`server`]: listeners, accept loop, graceful shutdown ([`shutdown`] persists);
//! - [`protocol_v2`]: one client connection — reader + command handlers + delivery pump;
//! - [`nsqd`]: the node (topics, clients, health, registry events);
//! - [`topic`] → [`channel`]: fan-out, then per-channel queue, [`in_flight`], [`deferred`];
//! - [`queue`]: memory queue overflowing to `nsq_diskqueue`;
//! - [`queue_scan`]: timeouts, deferred release, timed fsync;
//! - [`guid`], [`message`], [`client`]: IDs, the message value, per-client state.

pub mod channel;
pub mod client;
pub mod deferred;
pub mod guid;
pub mod histogram;
pub mod http;
pub mod http_get;
pub mod in_flight;
pub mod logging;
pub mod lookup;
pub mod message;
pub mod metadata;
pub mod metrics;
pub mod nsqd;
pub mod options;
pub mod protocol_v2;
pub mod quantile;
pub mod queue;
pub mod queue_scan;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod statsd;
pub mod topic;

pub use options::Options;
pub use server::RunningNsqd;
