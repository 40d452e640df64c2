//! `POST /channel/import?topic=T&channel=C` — an extension of this nsqd (not in NSQ):
//! puts whole messages straight into one channel, keeping each one's publish timestamp
//! and attempt count. It is how `nsq drain` moves the queues of a removed node's data
//! directory to a surviving node without copying them to the topic's other channels.
//!
//! Body: int32 count, then count × (int32 size + message in nsqd's layout: int64
//! timestamp, uint16 attempts, 16-byte ID, body). Messages get fresh IDs from this node,
//! so they can never collide with IDs this node issued itself.

use axum::body::Body;
use nsq_protocol::message::{decode_message, MESSAGE_HEADER_LEN};
use nsq_protocol::names::{is_valid_channel_name, is_valid_topic_name};

use super::body::BodyReader;
use super::query::Query;
use super::response::{ApiError, ApiResult, Reply};
use super::HttpState;
use crate::message::Message;

const BAD_BODY: ApiError = ApiError::too_large("BAD_BODY");
const BAD_MESSAGE: ApiError = ApiError::too_large("BAD_MESSAGE");

pub async fn import(state: &HttpState, raw_query: &str, body: Body) -> ApiResult {
    let nsqd = &state.nsqd;
    let q = Query::parse(raw_query).map_err(|_| ApiError::INVALID_REQUEST)?;
    let topic_name = q
        .get("topic")
        .ok_or(ApiError::bad_request("MISSING_ARG_TOPIC"))?;
    if !is_valid_topic_name(topic_name) {
        return Err(ApiError::bad_request("INVALID_ARG_TOPIC"));
    }
    let channel_name = q
        .get("channel")
        .ok_or(ApiError::bad_request("MISSING_ARG_CHANNEL"))?;
    if !is_valid_channel_name(channel_name) {
        return Err(ApiError::bad_request("INVALID_ARG_CHANNEL"));
    }
    let opts = &nsqd.opts;
    let mut reader = BodyReader::new(body);
    let count = reader.read_i32().await.ok_or(BAD_BODY)?;
    let max_messages = (opts.max_body_size - 4) / (4 + MESSAGE_HEADER_LEN as i64 + 1);
    if count <= 0 || i64::from(count) > max_messages {
        return Err(BAD_BODY);
    }
    let mut total = 4i64;
    let max_record = opts.max_msg_size + MESSAGE_HEADER_LEN as i64;
    let mut raw = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let size = reader.read_i32().await.ok_or(BAD_MESSAGE)?;
        if size <= MESSAGE_HEADER_LEN as i32 || i64::from(size) > max_record {
            return Err(BAD_MESSAGE);
        }
        total += 4 + i64::from(size);
        if total > opts.max_body_size {
            return Err(BAD_BODY);
        }
        let record = reader.read_exact(size as usize).await.ok_or(BAD_MESSAGE)?;
        raw.push(decode_message(&record).map_err(|_| BAD_MESSAGE)?);
    }
    let msgs: Vec<Message> = nsqd
        .ids
        .next_n(raw.len())
        .zip(raw)
        .map(|(id, d)| {
            let mut m = Message::new(id, d.body, d.timestamp_ns);
            m.attempts = d.attempts;
            m
        })
        .collect();
    let topic = nsqd.get_or_create_topic(topic_name);
    let channel = nsqd.get_or_create_channel(&topic, channel_name);
    let result = channel.put_batch(&msgs);
    nsqd.note_storage_result(&result);
    result.map_err(|e| {
        tracing::error!(error = %e, "/channel/import");
        ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "EXITING")
    })?;
    Ok(Reply::Text("OK".into()))
}
