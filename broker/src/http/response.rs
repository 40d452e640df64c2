//! nsqd's HTTP response conventions (conformance §2.1, nsqd's `http_api.RespondV1` and
//! `http_api.PlainText`).
//!
//! A "V1" endpoint always sends `X-NSQ-Content-Type: nsq; version=1.0` (go-nsq picks its
//! parser from it), answers success as a JSON value, a plain string or nothing, and
//! answers failure as `{"message":"<CODE>"}` with the JSON content type. `/ping` is the
//! one plain-text endpoint without that header. Nothing is compressed.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

/// The header go-nsq looks for.
pub const NSQ_CONTENT_TYPE: &str = "X-NSQ-Content-Type";
pub const NSQ_CONTENT_TYPE_V1: &str = "nsq; version=1.0";
const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// What Go's `net/http` sniffs for the plain bodies nsqd writes without a content type.
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// A V1 error: the status and the `message` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: &'static str,
}

impl ApiError {
    pub const fn new(status: StatusCode, message: &'static str) -> ApiError {
        ApiError { status, message }
    }

    pub const fn bad_request(message: &'static str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub const fn not_found(message: &'static str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub const fn too_large(message: &'static str) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    pub const INTERNAL: ApiError =
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    pub const INVALID_REQUEST: ApiError = ApiError::bad_request("INVALID_REQUEST");
    pub const NOT_FOUND: ApiError = ApiError::not_found("NOT_FOUND");
    pub const METHOD_NOT_ALLOWED: ApiError =
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

/// A V1 handler's successful result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with a JSON document (already encoded).
    Json(String),
    /// 200 with a plain body (`OK`, the text `/stats`).
    Text(String),
    /// 200 with an empty body.
    Empty,
}

pub type ApiResult = Result<Reply, ApiError>;

/// Encodes a value as nsqd's `encoding/json` would (see [`go_json`]).
pub fn json<T: Serialize>(value: &T) -> ApiResult {
    serde_json::to_string(value)
        .map(|s| Reply::Json(go_json(s)))
        .map_err(|e| {
            tracing::error!(error = %e, "failed to encode a JSON response");
            ApiError::INTERNAL
        })
}

/// Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings. Those
/// characters never appear outside strings in JSON, so replacing them anywhere is exact.
pub fn go_json(s: String) -> String {
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The response of a V1 endpoint.
pub fn v1(result: ApiResult) -> Response {
    let (status, body, content_type) = match result {
        Ok(Reply::Json(s)) => (StatusCode::OK, s, Some(JSON_CONTENT_TYPE)),
        Ok(Reply::Text(s)) => {
            let ct = (!s.is_empty()).then_some(TEXT_CONTENT_TYPE);
            (StatusCode::OK, s, ct)
        }
        Ok(Reply::Empty) => (StatusCode::OK, String::new(), None),
        Err(e) => (
            e.status,
            format!(r#"{{"message":"{}"}}"#, e.message),
            Some(JSON_CONTENT_TYPE),
        ),
    };
    let mut resp = build(status, body, content_type);
    resp.headers_mut().insert(
        NSQ_CONTENT_TYPE,
        HeaderValue::from_static(NSQ_CONTENT_TYPE_V1),
    );
    resp
}

/// A plain-text response without the V1 header (`/ping`).
pub fn plain(status: StatusCode, text: String) -> Response {
    let ct = (!text.is_empty()).then_some(TEXT_CONTENT_TYPE);
    build(status, text, ct)
}

fn build(status: StatusCode, body: String, content_type: Option<&'static str>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    if let Some(ct) = content_type {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(
            go_json(r#"{"a":"<b>&"}"#.into()),
            r#"{"a":"\u003cb\u003e\u0026"}"#
        );
        assert_eq!(go_json("\"\u{2028}\"".into()), "\"\\u2028\"");
        assert_eq!(go_json("{}".into()), "{}");
    }

    #[test]
    fn v1_error_shape() {
        let r = v1(Err(ApiError::NOT_FOUND));
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()[NSQ_CONTENT_TYPE], NSQ_CONTENT_TYPE_V1);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JSON_CONTENT_TYPE);
        let empty = v1(Ok(Reply::Empty));
        assert!(empty.headers().get(header::CONTENT_TYPE).is_none());
    }
}
