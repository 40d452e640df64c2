//! `GET /config/<opt>` and `PUT /config/<opt>` (nsqd's `doConfig`).
//!
//! An option is named by its config-file name: the `cfg` name where nsqd has one (`id`,
//! `nsqlookupd_tcp_addresses`, ...), else the flag name with `-` → `_`. Values are
//! encoded as nsqd's `encoding/json` encodes its `Options` fields: durations as integer
//! nanoseconds, `log_level` as a number (1 debug .. 5 fatal), `tls_required` as 0/1/2,
//! `tls_min_version` as the TLS version number, addresses and ports as resolved at
//! startup (`statsd_prefix` with its `%s` substituted). Only `nsqlookupd_tcp_addresses`
//! and `log_level` can be changed at runtime.

use axum::body::Body;
use serde_json::{json, Value};

use super::body::BodyReader;
use super::info::duration_ns;
use super::response::{self, ApiError, ApiResult};
use super::HttpState;
use crate::options::log_level_number;

const INVALID_OPTION: ApiError = ApiError::bad_request("INVALID_OPTION");
const INVALID_VALUE: ApiError = ApiError::bad_request("INVALID_VALUE");

pub fn get(state: &HttpState, opt: &str) -> ApiResult {
    let value = option_value(state, opt).ok_or(INVALID_OPTION)?;
    response::json(&value)
}

/// Sets `nsqlookupd_tcp_addresses` (a JSON string array) or `log_level` (a level name,
/// any case) and answers with the new value.
pub async fn put(state: &HttpState, opt: &str, body: Body) -> ApiResult {
    let max = state.nsqd.opts.max_msg_size;
    let read_max = usize::try_from(max.max(0))
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let body = BodyReader::new(body)
        .read_at_most(read_max)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "/config");
            ApiError::INTERNAL
        })?;
    if body.len() == read_max || body.is_empty() {
        return Err(ApiError::too_large("INVALID_VALUE"));
    }
    let nsqd = &state.nsqd;
    match opt {
        "nsqlookupd_tcp_addresses" => {
            // `null` decodes too (as Go's json.Unmarshal into a slice): no addresses.
            let addrs: Option<Vec<String>> =
                serde_json::from_slice(&body).map_err(|_| INVALID_VALUE)?;
            let addrs = addrs.unwrap_or_default();
            tracing::info!(addresses = ?addrs, "config: nsqlookupd_tcp_addresses changed");
            nsqd.lookupd_tcp_addresses.send_replace(addrs);
        }
        "log_level" => {
            let level = std::str::from_utf8(&body)
                .ok()
                .filter(|l| log_level_number(l).is_some())
                .ok_or(INVALID_VALUE)?
                .to_ascii_lowercase();
            tracing::info!(level = %level, "config: log_level changed");
            nsqd.log_level.send_replace(level);
        }
        _ => return Err(INVALID_OPTION),
    }
    get(state, opt)
}

/// The current value of an option, or `None` if nsqd has no option of that name.
fn option_value(state: &HttpState, name: &str) -> Option<Value> {
    let nsqd = &state.nsqd;
    let o = &nsqd.opts;
    let broadcast_address = o.effective_broadcast_address();
    let broadcast_tcp_port = match o.broadcast_tcp_port {
        0 => state.tcp_addr.port(),
        p => p,
    };
    let broadcast_http_port = match o.broadcast_http_port {
        0 => state.http_addr.port(),
        p => p,
    };
    let v = match name {
        "id" => json!(o.effective_node_id()),
        "log_level" => json!(log_level_number(&nsqd.log_level.borrow()).unwrap_or(2)),
        "log_prefix" => json!(o.log_prefix),
        "log_format" => json!(o.log_format),
        "tcp_address" => json!(o.tcp_address),
        "http_address" => json!(o.http_address),
        "broadcast_address" => json!(broadcast_address),
        "broadcast_tcp_port" => json!(broadcast_tcp_port),
        "broadcast_http_port" => json!(broadcast_http_port),
        "nsqlookupd_tcp_addresses" => json!(*nsqd.lookupd_tcp_addresses.borrow()),
        "data_path" => json!(o.effective_data_path().display().to_string()),
        "mem_queue_size" => json!(o.mem_queue_size),
        "max_bytes_per_file" => json!(o.max_bytes_per_file),
        "sync_every" => json!(o.sync_every),
        "sync_timeout" => json!(duration_ns(o.sync_timeout)),
        "queue_scan_selection_count" => json!(o.queue_scan_selection_count),
        "queue_scan_worker_pool_max" => json!(o.queue_scan_worker_pool_max),
        "msg_timeout" => json!(duration_ns(o.msg_timeout)),
        "max_msg_timeout" => json!(duration_ns(o.max_msg_timeout)),
        "max_msg_size" => json!(o.max_msg_size),
        "max_body_size" => json!(o.max_body_size),
        "max_req_timeout" => json!(duration_ns(o.max_req_timeout)),
        "max_heartbeat_interval" => json!(duration_ns(o.max_heartbeat_interval)),
        "max_rdy_count" => json!(o.max_rdy_count),
        "max_output_buffer_size" => json!(o.max_output_buffer_size),
        "max_output_buffer_timeout" => json!(duration_ns(o.max_output_buffer_timeout)),
        "min_output_buffer_timeout" => json!(duration_ns(o.min_output_buffer_timeout)),
        "output_buffer_timeout" => json!(duration_ns(o.output_buffer_timeout)),
        "max_channel_consumers" => json!(o.max_channel_consumers),
        "deflate" => json!(o.deflate),
        "max_deflate_level" => json!(o.max_deflate_level),
        "snappy" => json!(o.snappy),
        "e2e_processing_latency_percentiles" => Value::Array(
            o.e2e_processing_latency_percentiles
                .iter()
                .map(|&p| go_float(p))
                .collect(),
        ),
        "e2e_processing_latency_window_time" => {
            json!(duration_ns(o.e2e_processing_latency_window_time))
        }
        "statsd_address" => json!(o.statsd_address.as_deref().unwrap_or("")),
        "statsd_prefix" => json!(statsd_prefix(
            &o.statsd_prefix,
            &broadcast_address,
            broadcast_http_port
        )),
        "statsd_interval" => json!(duration_ns(o.statsd_interval)),
        "statsd_mem_stats" => json!(o.statsd_mem_stats),
        "statsd_udp_packet_size" => json!(o.statsd_udp_packet_size),
        "statsd_exclude_ephemeral" => json!(o.statsd_exclude_ephemeral),
        // Options of features this nsqd does not have yet (HTTPS, auth, TLS): the values
        // nsqd v1.3.0 reports when they are left at their defaults, which is how those
        // features behave here (off). When one becomes a flag in `Options`, read it
        // above instead.
        "https_address" => json!("0.0.0.0:4152"),
        "auth_http_addresses" => json!(Vec::<String>::new()),
        "http_client_connect_timeout" => json!(2_000_000_000i64),
        "http_client_request_timeout" => json!(5_000_000_000i64),
        "tls_cert" | "tls_key" | "tls_client_auth_policy" | "tls_root_ca_file" => json!(""),
        "tls_required" => json!(0),
        "tls_min_version" => json!(0x0301),
        _ => return None,
    };
    Some(v)
}

/// A Go `float64` as `encoding/json` writes it: whole numbers without a fraction.
fn go_float(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// nsqd's resolved statsd prefix: `%s` → `<broadcast_address>_<broadcast_http_port>`
/// (dots and colons as `_`), with a trailing `.`.
fn statsd_prefix(template: &str, broadcast_address: &str, http_port: u16) -> String {
    if template.is_empty() {
        return String::new();
    }
    let host_port = if broadcast_address.contains(':') {
        format!("[{broadcast_address}]:{http_port}")
    } else {
        format!("{broadcast_address}:{http_port}")
    };
    let key = host_port.replace(['.', ':'], "_");
    let mut prefix = template.replace("%s", &key);
    if !prefix.ends_with('.') {
        prefix.push('.');
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statsd_prefix_like_nsqd() {
        assert_eq!(statsd_prefix("nsq.%s", "a.b", 4151), "nsq.a_b_4151.");
        assert_eq!(statsd_prefix("x.", "h", 1), "x.");
        assert_eq!(statsd_prefix("nsq.%s", "::1", 2), "nsq.[__1]_2.");
        assert_eq!(statsd_prefix("", "h", 1), "");
    }
}
