//! `POST /pub` and `POST /mpub` (nsqd's `doPUB` / `doMPUB`), with their checks in nsqd's
//! order: `/pub` validates the body before the topic, `/mpub` the topic before the body.
//! Both create the topic as soon as its name is accepted, even if the request then fails.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use nsq_protocol::names::is_valid_topic_name;

use super::body::BodyReader;
use super::query::Query;
use super::response::{ApiError, ApiResult, Reply};
use super::HttpState;
use crate::message::{now_ns, Message};
use crate::topic::Topic;

const MSG_TOO_BIG: ApiError = ApiError::too_large("MSG_TOO_BIG");
const BODY_TOO_BIG: ApiError = ApiError::too_large("BODY_TOO_BIG");
const EXITING: ApiError = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "EXITING");

/// `POST /pub?topic=T[&defer=ms]`, body = one message.
pub async fn publish(
    state: &HttpState,
    raw_query: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let opts = &state.nsqd.opts;
    if content_length(headers).is_some_and(|n| n > opts.max_msg_size) {
        return Err(MSG_TOO_BIG);
    }
    let read_max = limit_plus_one(opts.max_msg_size);
    let body = BodyReader::new(body)
        .read_at_most(read_max)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "/pub");
            ApiError::INTERNAL
        })?;
    if body.len() == read_max {
        return Err(MSG_TOO_BIG);
    }
    if body.is_empty() {
        return Err(ApiError::bad_request("MSG_EMPTY"));
    }
    let (query, topic) = topic_from_query(state, raw_query)?;
    let defer_ms = match query.get("defer") {
        None => 0,
        Some(raw) => parse_defer(raw, opts.max_req_timeout)?,
    };
    put(state, &topic, vec![body], defer_ms)
}

/// `/pub`'s `defer`: a signed decimal of milliseconds within `0..=max-req-timeout`,
/// checked after Go's (wrapping) conversion to a nanosecond `time.Duration`.
fn parse_defer(raw: &str, max_req_timeout: std::time::Duration) -> Result<u64, ApiError> {
    const INVALID_DEFER: ApiError = ApiError::bad_request("INVALID_DEFER");
    let ms: i64 = raw.parse().map_err(|_| INVALID_DEFER)?;
    let ns = ms.wrapping_mul(1_000_000);
    let max_ns = super::info::duration_ns(max_req_timeout);
    if ns < 0 || ns > max_ns {
        return Err(INVALID_DEFER);
    }
    Ok((ns / 1_000_000) as u64)
}

/// `POST /mpub?topic=T[&binary=...]`: newline-separated messages, or the binary layout.
pub async fn multi_publish(
    state: &HttpState,
    raw_query: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let opts = &state.nsqd.opts;
    if content_length(headers).is_some_and(|n| n > opts.max_body_size) {
        return Err(BODY_TOO_BIG);
    }
    let (query, topic) = topic_from_query(state, raw_query)?;
    let binary = match query.get("binary") {
        None => false,
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => {
            tracing::warn!("deprecated value '{other}' used for /mpub binary param");
            true
        }
    };
    let mut reader = BodyReader::new(body);
    let bodies = if binary {
        read_binary(&mut reader, opts.max_msg_size, opts.max_body_size)
            .await
            .map_err(ApiError::too_large)?
    } else {
        read_lines(&mut reader, opts.max_msg_size, opts.max_body_size).await?
    };
    put(state, &topic, bodies, 0)
}

/// Text mode: one message per line; a line's `\n` is stripped, empty lines are skipped.
async fn read_lines(
    reader: &mut BodyReader,
    max_msg_size: i64,
    max_body_size: i64,
) -> Result<Vec<Bytes>, ApiError> {
    let read_max = limit_plus_one(max_body_size);
    let data = reader.read_at_most(read_max).await.map_err(|e| {
        tracing::error!(error = %e, "/mpub");
        ApiError::INTERNAL
    })?;
    let mut bodies = Vec::new();
    let mut total = 0usize;
    let mut start = 0usize;
    loop {
        let (end, last) = match memchr_newline(&data[start..]) {
            Some(i) => (start + i + 1, false),
            None => (data.len(), true),
        };
        total += end - start;
        // Reading stopped at max_body_size + 1 bytes: the body was longer than allowed.
        if total == read_max {
            return Err(BODY_TOO_BIG);
        }
        let line_end = if end > start && data[end - 1] == b'\n' {
            end - 1
        } else {
            end
        };
        if line_end > start {
            if (line_end - start) as u64 > max_msg_size.max(0) as u64 {
                return Err(MSG_TOO_BIG);
            }
            bodies.push(data.slice(start..line_end));
        }
        start = end;
        if last {
            return Ok(bodies);
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Binary mode (nsqd's `readMPUB`): int32 count, then count × (int32 size + bytes).
/// Errors are the TCP protocol codes without their `E_` prefix.
async fn read_binary(
    reader: &mut BodyReader,
    max_msg_size: i64,
    max_body_size: i64,
) -> Result<Vec<Bytes>, &'static str> {
    const BAD_BODY: &str = "BAD_BODY";
    const BAD_MESSAGE: &str = "BAD_MESSAGE";
    let count = reader.read_i32().await.ok_or(BAD_BODY)?;
    // 4 bytes for the count, then at least 4 + 1 bytes per message.
    let max_messages = (max_body_size - 4) / 5;
    if count <= 0 || i64::from(count) > max_messages {
        return Err(BAD_BODY);
    }
    let mut bodies = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let size = reader.read_i32().await.ok_or(BAD_MESSAGE)?;
        if size <= 0 || i64::from(size) > max_msg_size {
            return Err(BAD_MESSAGE);
        }
        bodies.push(reader.read_exact(size as usize).await.ok_or(BAD_MESSAGE)?);
    }
    Ok(bodies)
}

/// The `topic` parameter, validated, and its topic (created if missing).
fn topic_from_query(state: &HttpState, raw_query: &str) -> Result<(Query, Arc<Topic>), ApiError> {
    let query = Query::parse(raw_query).map_err(|_| ApiError::INVALID_REQUEST)?;
    let name = query
        .get("topic")
        .ok_or(ApiError::bad_request("MISSING_ARG_TOPIC"))?;
    if !is_valid_topic_name(name) {
        return Err(ApiError::bad_request("INVALID_TOPIC"));
    }
    let topic = state.nsqd.get_or_create_topic(name);
    Ok((query, topic))
}

/// Publishes the bodies as the TCP PUB path does; any enqueue failure is 503 `EXITING`.
fn put(state: &HttpState, topic: &Arc<Topic>, bodies: Vec<Bytes>, defer_ms: u64) -> ApiResult {
    let nsqd = &state.nsqd;
    let ts = now_ns();
    let msgs: Vec<Message> = nsqd
        .ids
        .next_n(bodies.len())
        .zip(bodies)
        .map(|(id, body)| {
            let mut m = Message::new(id, body, ts);
            m.defer_ms = defer_ms;
            m
        })
        .collect();
    let result = topic.put_messages(msgs);
    nsqd.note_storage_result(&result);
    match result {
        Ok(()) => Ok(Reply::Text("OK".to_string())),
        Err(e) => {
            tracing::error!(topic = %topic.name, error = %e, "HTTP publish failed");
            Err(EXITING)
        }
    }
}

/// The request's `Content-Length`, as Go's `req.ContentLength` (absent when chunked).
fn content_length(headers: &HeaderMap) -> Option<i64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `max + 1` bytes: reading that many proves the body is longer than `max`.
fn limit_plus_one(max: i64) -> usize {
    usize::try_from(max.max(0))
        .unwrap_or(usize::MAX)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn defer_bounds() {
        let hour = Duration::from_secs(3600);
        assert_eq!(parse_defer("0", hour), Ok(0));
        assert_eq!(parse_defer("+5", hour), Ok(5));
        assert_eq!(parse_defer("3600000", hour), Ok(3_600_000));
        assert!(parse_defer("3600001", hour).is_err());
        assert!(parse_defer("-1", hour).is_err());
        assert!(parse_defer("", hour).is_err());
        assert!(parse_defer("1.5", hour).is_err());
        assert!(parse_defer("99999999999999999999", hour).is_err());
    }

    async fn lines(
        body: &'static str,
        max_msg: i64,
        max_body: i64,
    ) -> Result<Vec<Bytes>, ApiError> {
        read_lines(&mut BodyReader::new(Body::from(body)), max_msg, max_body).await
    }

    #[tokio::test]
    async fn text_mode_splitting_and_limits() {
        let got = lines("a\n\nbc\nd", 10, 100).await.unwrap();
        assert_eq!(
            got,
            vec![Bytes::from("a"), Bytes::from("bc"), Bytes::from("d")]
        );
        assert!(lines("", 10, 100).await.unwrap().is_empty());
        assert_eq!(lines("abc\n", 2, 100).await, Err(MSG_TOO_BIG));
        // Exactly max_body_size bytes is fine, one more is not.
        assert_eq!(lines("ab\ncd", 10, 5).await.unwrap().len(), 2);
        assert_eq!(lines("ab\ncde", 10, 5).await, Err(BODY_TOO_BIG));
    }

    #[tokio::test]
    async fn binary_mode_layout() {
        let mut b = Vec::new();
        b.extend_from_slice(&2i32.to_be_bytes());
        for m in [&b"x"[..], b"yz"] {
            b.extend_from_slice(&(m.len() as i32).to_be_bytes());
            b.extend_from_slice(m);
        }
        let read = |v: Vec<u8>| async move {
            read_binary(&mut BodyReader::new(Body::from(v)), 10, 100).await
        };
        assert_eq!(
            read(b.clone()).await.unwrap(),
            vec![Bytes::from("x"), Bytes::from("yz")]
        );
        assert_eq!(read(b[..b.len() - 1].to_vec()).await, Err("BAD_MESSAGE"));
        assert_eq!(read(0i32.to_be_bytes().to_vec()).await, Err("BAD_BODY"));
        assert_eq!(read(vec![0, 0]).await, Err("BAD_BODY"));
        let mut zero = 1i32.to_be_bytes().to_vec();
        zero.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(read(zero).await, Err("BAD_MESSAGE"));
    }
}
