//! nsqd's HTTP response conventions (conformance §2.1, nsqd's `http_api.RespondV1` and
//! `http_api.PlainText`).
//!
//! A "V1" endpoint always sends `X-NSQ-Content-Type: nsq; version=1.0` (go-nsq picks its
//! parser from it), answers success as a JSON value, a plain string or nothing, and
//! answers failure as `{"message":"<CODE>"}` with the JSON content type. `/ping` is the
//! one plain-text endpoint without that header. Nothing is compressed.
//!
//! The header names, content types and Go-style JSON encoding are shared with nsqlookupd
//! ([`nsq_protocol::http_api::response`]); this module builds axum responses from them.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use nsq_protocol::http_api::response::{
    to_go_json, v1_error_body, JSON_CONTENT_TYPE, TEXT_CONTENT_TYPE,
};
pub use nsq_protocol::http_api::response::{NSQ_CONTENT_TYPE, NSQ_CONTENT_TYPE_V1};
use serde::Serialize;

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

/// Encodes a value as nsqd's `encoding/json` would (see [`to_go_json`]).
pub fn json<T: Serialize>(value: &T) -> ApiResult {
    to_go_json(value).map(Reply::Json).map_err(|e| {
        tracing::error!(error = %e, "failed to encode a JSON response");
        ApiError::INTERNAL
    })
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
        Err(e) => (e.status, v1_error_body(e.message), Some(JSON_CONTENT_TYPE)),
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
    fn v1_error_shape() {
        let r = v1(Err(ApiError::NOT_FOUND));
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()[NSQ_CONTENT_TYPE], NSQ_CONTENT_TYPE_V1);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JSON_CONTENT_TYPE);
        let empty = v1(Ok(Reply::Empty));
        assert!(empty.headers().get(header::CONTENT_TYPE).is_none());
    }
}
