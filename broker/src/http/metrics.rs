//! `GET /metrics`: Prometheus exposition of [`crate::metrics::render`], in the classic
//! text format, or in OpenMetrics when the scraper's `Accept` header offers it.
//!
//! Not a V1 endpoint (no `X-NSQ-Content-Type`): Prometheus reads the content type only.
//! Rendering walks every topic and channel, so it runs on the blocking pool rather than
//! on a runtime worker that client connections share.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use nsq_protocol::exposition::Format;

use super::response::{self, ApiError};
use super::HttpState;

pub async fn metrics(state: &HttpState, headers: &HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let nsqd = state.nsqd.clone();
    let rendered = tokio::task::spawn_blocking(move || crate::metrics::render(&nsqd, format)).await;
    let Ok(text) = rendered else {
        tracing::error!("/metrics: rendering failed");
        return response::v1(Err(ApiError::INTERNAL));
    };
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}
