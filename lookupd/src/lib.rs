//! nsqlookupd: the NSQ discovery daemon, a drop-in for nsqlookupd v1.3.0.
//!
//! nsqd nodes register their topics and channels over the V1 TCP protocol
//! ([`protocol_v1`], [`tcp`]); consumers and tools query the HTTP API ([`http`]); both
//! read and write one [`registration_db::RegistrationDb`]. [`server::Server`] binds and
//! runs the two listeners; [`options`] resolves flags and the config file; [`metrics`]
//! renders `GET /metrics`.

pub mod http;
pub mod logging;
pub mod metrics;
pub mod options;
pub mod protocol_v1;
pub mod registration_db;
pub mod server;
mod tcp;

/// Go `net/url` query and path decoding (shared with nsqd).
pub use nsq_protocol::http_api::query;

pub use options::{Invocation, Options};
pub use server::{BindError, Server};
