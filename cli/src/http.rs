//! JSON over HTTP GET for `stat` and lookupd discovery, on nsqd's minimal client
//! ([`nsqd::http_get`]); addresses may be given as `host:port` or `http://host:port/`.

use std::time::Duration;

use nsq_protocol::lookup::{LookupResponse, Producer};
use serde::de::DeserializeOwned;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A request failed or its body was not the expected JSON.
#[derive(Debug, thiserror::Error)]
#[error("GET http://{addr}{path}: {reason}")]
pub struct HttpError {
    pub addr: String,
    pub path: String,
    pub reason: String,
}

/// `GET http://<addr><path>` and decode a 200 body as JSON.
pub async fn get_json<T: DeserializeOwned>(addr: &str, path: &str) -> Result<T, HttpError> {
    let addr = host_port(addr);
    let err = |reason: String| HttpError {
        addr: addr.to_string(),
        path: path.to_string(),
        reason,
    };
    let body = nsqd::http_get::get(addr, path, TIMEOUT)
        .await
        .map_err(err)?;
    serde_json::from_slice(&body).map_err(|e| err(format!("bad JSON: {e}")))
}

/// `host:port` out of `http://host:port/`.
pub fn host_port(addr: &str) -> &str {
    let a = addr.strip_prefix("http://").unwrap_or(addr);
    a.trim_end_matches('/')
}

/// Percent-encodes a query value (topic and channel names need it only for `#`).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The nsqd nodes a lookupd lists for `topic`.
pub async fn lookup(lookupd: &str, topic: &str) -> Result<Vec<Producer>, HttpError> {
    let path = format!("/lookup?topic={}", query_escape(topic));
    let r: LookupResponse = get_json(lookupd, &path).await?;
    Ok(r.producers)
}

/// `host:port` for a broadcast address and port (IPv6 literals bracketed).
pub fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_escapes() {
        assert_eq!(host_port("http://127.0.0.1:4151/"), "127.0.0.1:4151");
        assert_eq!(host_port("127.0.0.1:4151"), "127.0.0.1:4151");
        assert_eq!(query_escape("tail12#ephemeral"), "tail12%23ephemeral");
        assert_eq!(join_host_port("::1", 4150), "[::1]:4150");
        assert_eq!(join_host_port("node-0.svc", 4150), "node-0.svc:4150");
    }
}
