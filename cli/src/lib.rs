//! nsq: the command-line companion of nsqd and nsqlookupd.
//!
//! Map of the crate:
//! - [`conn`]: a buffered protocol V2 client connection (shared by every TCP command);
//! - [`http`]: JSON over HTTP GET, lookupd discovery;
//! - [`publish`] (`nsq pub`), [`tail`] (`nsq tail`), [`stat`] (`nsq stat`);
//! - [`bench`] (`nsq bench writer|reader|run`): nsq's bench tools, pipelined on tokio;
//! - [`up`] (`nsq up`): nsqlookupd + nsqd in one process for local work.

pub mod bench;
pub mod conn;
pub mod drain;
pub mod http;
pub mod publish;
pub mod stat;
pub mod tail;
pub mod up;

use std::time::Duration;

/// clap value parser for Go-style durations (`10s`, `1m30s`, `250ms`).
pub fn go_duration(s: &str) -> Result<Duration, String> {
    nsq_protocol::duration::parse(s).map_err(|e| e.to_string())
}
