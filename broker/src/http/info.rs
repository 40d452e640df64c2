//! `GET /ping` (health, plain text) and `GET /info` (identity and client-visible limits).

use axum::http::StatusCode;
use axum::response::Response;
use nsq_protocol::stats::NsqdInfo;

use super::response::{self, ApiResult};
use super::HttpState;

/// `OK`, or 500 `NOK - <error>` while the last disk write failed.
pub fn ping(state: &HttpState) -> Response {
    let health = crate::stats::health_text(&state.nsqd);
    let status = if state.nsqd.health().is_none() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    response::plain(status, health)
}

/// nsqd reports the ports it is bound to here (not the broadcast ports).
pub fn info(state: &HttpState) -> ApiResult {
    let opts = &state.nsqd.opts;
    response::json(&NsqdInfo {
        version: nsq_protocol::NSQ_VERSION.to_string(),
        broadcast_address: opts.effective_broadcast_address(),
        hostname: crate::options::hostname(),
        http_port: i64::from(state.http_addr.port()),
        tcp_port: i64::from(state.tcp_addr.port()),
        start_time: state.nsqd.start_time,
        max_heartbeat_interval: duration_ns(opts.max_heartbeat_interval),
        max_output_buffer_size: opts.max_output_buffer_size,
        max_output_buffer_timeout: duration_ns(opts.max_output_buffer_timeout),
        max_deflate_level: opts.max_deflate_level,
    })
}

/// A duration as Go marshals a `time.Duration`: integer nanoseconds.
pub fn duration_ns(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
