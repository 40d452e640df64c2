//! Topic and channel actions: `POST /topic/{create,delete,empty,pause,unpause}` and
//! `POST /channel/{create,delete,empty,pause,unpause}`.
//!
//! Everything goes through the node's methods so lookupd registration events fire and
//! consumers of deleted channels are disconnected. The error codes keep nsqd's naming
//! inconsistency: topic endpoints say `INVALID_TOPIC`, channel endpoints
//! `INVALID_ARG_TOPIC`; `/topic/delete` and `/topic/pause` do not validate the name.
//! Pausing and unpausing rewrite `nsqd.dat` at once (the node's `set_*_paused`).

use std::sync::Arc;

use nsq_protocol::names::{is_valid_channel_name, is_valid_topic_name};

use super::query::Query;
use super::response::{ApiError, ApiResult, Reply};
use super::HttpState;
use crate::nsqd::NodeError;
use crate::topic::Topic;

const TOPIC_NOT_FOUND: ApiError = ApiError::not_found("TOPIC_NOT_FOUND");
const CHANNEL_NOT_FOUND: ApiError = ApiError::not_found("CHANNEL_NOT_FOUND");

/// A topic or channel action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Delete,
    Empty,
    Pause,
    Unpause,
}

fn query(raw: &str) -> Result<Query, ApiError> {
    Query::parse(raw).map_err(|_| ApiError::INVALID_REQUEST)
}

fn topic_param(q: &Query) -> Result<&str, ApiError> {
    q.get("topic")
        .ok_or(ApiError::bad_request("MISSING_ARG_TOPIC"))
}

fn valid_topic_param(q: &Query) -> Result<&str, ApiError> {
    let name = topic_param(q)?;
    if !is_valid_topic_name(name) {
        return Err(ApiError::bad_request("INVALID_TOPIC"));
    }
    Ok(name)
}

pub fn topic(state: &HttpState, action: Action, raw_query: &str) -> ApiResult {
    let nsqd = &state.nsqd;
    let q = query(raw_query)?;
    match action {
        Action::Create => {
            nsqd.get_or_create_topic(valid_topic_param(&q)?);
        }
        Action::Delete => match nsqd.delete_topic(topic_param(&q)?) {
            Ok(()) => {}
            Err(NodeError::TopicNotFound) => return Err(TOPIC_NOT_FOUND),
            // nsqd ignores failures while deleting the topic's data.
            Err(e) => tracing::error!(error = %e, "/topic/delete"),
        },
        Action::Empty => {
            let topic = nsqd.topic(valid_topic_param(&q)?).ok_or(TOPIC_NOT_FOUND)?;
            topic.empty().map_err(|e| {
                tracing::error!(topic = %topic.name, error = %e, "/topic/empty");
                ApiError::INTERNAL
            })?;
        }
        Action::Pause | Action::Unpause => {
            match nsqd.set_topic_paused(topic_param(&q)?, action == Action::Pause) {
                Ok(()) => {}
                Err(NodeError::TopicNotFound) => return Err(TOPIC_NOT_FOUND),
                // The pause took effect; like nsqd, a failed nsqd.dat write is only logged.
                Err(e) => tracing::error!(error = %e, "/topic/pause: failed to persist metadata"),
            }
        }
    }
    Ok(Reply::Empty)
}

/// nsqd's `getExistingTopicFromQuery`: both names validated, the topic must exist.
fn existing_topic_and_channel(
    state: &HttpState,
    raw_query: &str,
) -> Result<(Arc<Topic>, String), ApiError> {
    let q = query(raw_query)?;
    let topic = topic_param(&q)?;
    if !is_valid_topic_name(topic) {
        return Err(ApiError::bad_request("INVALID_ARG_TOPIC"));
    }
    let channel = q
        .get("channel")
        .ok_or(ApiError::bad_request("MISSING_ARG_CHANNEL"))?;
    if !is_valid_channel_name(channel) {
        return Err(ApiError::bad_request("INVALID_ARG_CHANNEL"));
    }
    let topic = state.nsqd.topic(topic).ok_or(TOPIC_NOT_FOUND)?;
    Ok((topic, channel.to_string()))
}

pub fn channel(state: &HttpState, action: Action, raw_query: &str) -> ApiResult {
    let nsqd = &state.nsqd;
    let (topic, name) = existing_topic_and_channel(state, raw_query)?;
    match action {
        Action::Create => {
            nsqd.get_or_create_channel(&topic, &name);
        }
        Action::Delete => match nsqd.delete_channel(&topic.name, &name) {
            Ok(()) => {}
            Err(NodeError::ChannelNotFound) => return Err(CHANNEL_NOT_FOUND),
            Err(NodeError::TopicNotFound) => return Err(TOPIC_NOT_FOUND),
            // nsqd ignores failures while deleting the channel's data.
            Err(e) => tracing::error!(error = %e, "/channel/delete"),
        },
        Action::Empty => {
            let ch = topic.channel(&name).ok_or(CHANNEL_NOT_FOUND)?;
            ch.empty().map_err(|e| {
                tracing::error!(topic = %topic.name, channel = %name, error = %e, "/channel/empty");
                ApiError::INTERNAL
            })?;
        }
        Action::Pause | Action::Unpause => {
            match nsqd.set_channel_paused(&topic.name, &name, action == Action::Pause) {
                Ok(()) => {}
                Err(NodeError::TopicNotFound) => return Err(TOPIC_NOT_FOUND),
                Err(NodeError::ChannelNotFound) => return Err(CHANNEL_NOT_FOUND),
                // The pause took effect; like nsqd, a failed nsqd.dat write is only logged.
                Err(e) => tracing::error!(error = %e, "/channel/pause: failed to persist metadata"),
            }
        }
    }
    Ok(Reply::Empty)
}
