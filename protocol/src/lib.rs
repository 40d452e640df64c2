//! nsq-protocol: the pure wire formats of NSQ v1.3 — no sockets, no tasks.
//!
//! Everything here is shared by the broker (`nsqd`), the lookup daemon (`nsqlookupd`),
//! the operator and the CLI: frames, command lines, message layout, name rules, the
//! `E_*` error codes with their fatal/non-fatal nature, IDENTIFY JSON, the snappy and
//! deflate stream transforms, Go-style durations and the lookupd JSON types.

pub mod client;
pub mod compress;
pub mod duration;
pub mod error;
pub mod exposition;
pub mod frame;
pub mod http_api;
pub mod identify;
pub mod lookup;
pub mod message;
pub mod names;
pub mod stats;
pub mod wire;

pub use error::{ErrorCode, ProtocolError};
pub use frame::FrameType;
pub use message::MessageId;

/// The NSQ release whose behaviour we reproduce; reported as `version` wherever nsqd does.
pub const NSQ_VERSION: &str = "1.3.0";

/// Magic bytes a V2 client sends first.
pub const MAGIC_V2: &[u8; 4] = b"  V2";
/// Magic bytes an nsqd sends first to nsqlookupd.
pub const MAGIC_V1: &[u8; 4] = b"  V1";
