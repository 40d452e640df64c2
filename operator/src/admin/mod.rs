//! How the operator talks to NSQ: the [`NsqAdmin`] trait over nsqd's and nsqlookupd's HTTP
//! APIs (conformance §2, §5.2) and the [`NsqdEndpoints`] trait mapping a cluster's pods to
//! addresses. Both are traits so tests can point the reconcilers at local processes.

pub mod endpoints;
pub mod http;

use async_trait::async_trait;
use nsq_protocol::stats::{StatsResponse, TopicStats};

pub use endpoints::{NsqdEndpoints, PodEndpoints};
pub use http::HttpNsqAdmin;

/// A failed call to nsqd or nsqlookupd.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{addr}: request failed: {message}")]
    Transport { addr: String, message: String },
    #[error("{addr}: timed out")]
    Timeout { addr: String },
    #[error("{addr}{path}: HTTP {status} {message}")]
    Status {
        addr: String,
        path: String,
        status: u16,
        /// The `message` of nsq's `{"message":"CODE"}` error body, or the raw body.
        message: String,
    },
    #[error("{addr}{path}: bad response: {message}")]
    Decode {
        addr: String,
        path: String,
        message: String,
    },
}

impl AdminError {
    /// Whether this is an HTTP 404 (e.g. `TOPIC_NOT_FOUND`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, AdminError::Status { status: 404, .. })
    }
}

/// The nsqd and nsqlookupd administrative calls the reconcilers make. Addresses are
/// `host:port` of the HTTP listener. Deleting what does not exist succeeds.
#[async_trait]
pub trait NsqAdmin: Send + Sync {
    /// `GET /stats?format=json` on an nsqd (every topic and channel, no clients).
    async fn node_stats(&self, nsqd: &str) -> Result<StatsResponse, AdminError>;

    /// `GET /stats?format=json&topic=T[&channel=C]` on an nsqd: the topic (with only that
    /// channel when `channel` is given), `None` when the node does not have it.
    async fn topic_stats(
        &self,
        nsqd: &str,
        topic: &str,
        channel: Option<&str>,
    ) -> Result<Option<TopicStats>, AdminError>;

    /// nsqd `POST /topic/create`.
    async fn create_topic(&self, nsqd: &str, topic: &str) -> Result<(), AdminError>;
    /// nsqd `POST /topic/delete` (404 is success).
    async fn delete_topic(&self, nsqd: &str, topic: &str) -> Result<(), AdminError>;
    /// nsqd `POST /topic/pause` or `/topic/unpause`.
    async fn set_topic_paused(
        &self,
        nsqd: &str,
        topic: &str,
        paused: bool,
    ) -> Result<(), AdminError>;

    /// nsqd `POST /channel/create`.
    async fn create_channel(
        &self,
        nsqd: &str,
        topic: &str,
        channel: &str,
    ) -> Result<(), AdminError>;
    /// nsqd `POST /channel/delete` (404 is success).
    async fn delete_channel(
        &self,
        nsqd: &str,
        topic: &str,
        channel: &str,
    ) -> Result<(), AdminError>;
    /// nsqd `POST /channel/pause` or `/channel/unpause`.
    async fn set_channel_paused(
        &self,
        nsqd: &str,
        topic: &str,
        channel: &str,
        paused: bool,
    ) -> Result<(), AdminError>;

    /// nsqlookupd `POST /topic/create`.
    async fn lookupd_create_topic(&self, lookupd: &str, topic: &str) -> Result<(), AdminError>;
    /// nsqlookupd `POST /topic/delete`.
    async fn lookupd_delete_topic(&self, lookupd: &str, topic: &str) -> Result<(), AdminError>;
    /// nsqlookupd `POST /channel/create`.
    async fn lookupd_create_channel(
        &self,
        lookupd: &str,
        topic: &str,
        channel: &str,
    ) -> Result<(), AdminError>;
    /// nsqlookupd `POST /channel/delete` (404 is success).
    async fn lookupd_delete_channel(
        &self,
        lookupd: &str,
        topic: &str,
        channel: &str,
    ) -> Result<(), AdminError>;
}
