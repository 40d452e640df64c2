//! IDENTIFY: the client's JSON body and nsqd's feature-negotiation reply.

use serde::Serialize;
use serde_json::{Map, Value};

/// The fields nsqd reads from an IDENTIFY body. `None` means "not provided" (absent or
/// `null`); unknown keys (go-nsq's `short_id`, `long_id`) are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentifyRequest {
    pub client_id: Option<String>,
    pub hostname: Option<String>,
    pub user_agent: Option<String>,
    pub feature_negotiation: bool,
    pub heartbeat_interval: Option<i64>,
    pub output_buffer_size: Option<i64>,
    pub output_buffer_timeout: Option<i64>,
    pub tls_v1: bool,
    pub snappy: bool,
    pub deflate: bool,
    pub deflate_level: Option<i64>,
    pub sample_rate: Option<i64>,
    pub msg_timeout: Option<i64>,
}

/// The body is not a JSON object of the expected field types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IDENTIFY failed to decode JSON body")]
pub struct BadIdentify;

impl IdentifyRequest {
    /// Decodes like Go's `encoding/json` into nsqd's struct: key names match
    /// case-insensitively, `null` leaves a field unset, a value of the wrong type fails.
    pub fn from_json(body: &[u8]) -> Result<IdentifyRequest, BadIdentify> {
        let map: Map<String, Value> = serde_json::from_slice(body).map_err(|_| BadIdentify)?;
        let mut req = IdentifyRequest::default();
        for (key, value) in map {
            if value.is_null() {
                continue;
            }
            match key.to_ascii_lowercase().as_str() {
                "client_id" => req.client_id = Some(string(value)?),
                "hostname" => req.hostname = Some(string(value)?),
                "user_agent" => req.user_agent = Some(string(value)?),
                "feature_negotiation" => req.feature_negotiation = boolean(value)?,
                "heartbeat_interval" => req.heartbeat_interval = Some(int(value)?),
                "output_buffer_size" => req.output_buffer_size = Some(int(value)?),
                "output_buffer_timeout" => req.output_buffer_timeout = Some(int(value)?),
                "tls_v1" => req.tls_v1 = boolean(value)?,
                "snappy" => req.snappy = boolean(value)?,
                "deflate" => req.deflate = boolean(value)?,
                "deflate_level" => req.deflate_level = Some(int(value)?),
                "sample_rate" => {
                    let n = int(value)?;
                    // nsqd decodes sample_rate into an int32.
                    i32::try_from(n).map_err(|_| BadIdentify)?;
                    req.sample_rate = Some(n)
                }
                "msg_timeout" => req.msg_timeout = Some(int(value)?),
                _ => {}
            }
        }
        Ok(req)
    }
}

fn string(v: Value) -> Result<String, BadIdentify> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(BadIdentify),
    }
}

fn boolean(v: Value) -> Result<bool, BadIdentify> {
    v.as_bool().ok_or(BadIdentify)
}

fn int(v: Value) -> Result<i64, BadIdentify> {
    v.as_i64().ok_or(BadIdentify)
}

/// The JSON reply to an IDENTIFY with `feature_negotiation: true`, keys in nsqd's order.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct IdentifyResponse {
    pub max_rdy_count: i64,
    pub version: String,
    pub max_msg_timeout: i64,
    pub msg_timeout: i64,
    pub tls_v1: bool,
    pub deflate: bool,
    pub deflate_level: i64,
    pub max_deflate_level: i64,
    pub snappy: bool,
    pub sample_rate: i64,
    pub auth_required: bool,
    pub output_buffer_size: i64,
    pub output_buffer_timeout: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_go_style() {
        let r = IdentifyRequest::from_json(
            br#"{"Client_ID":"c","hostname":null,"short_id":"x","feature_negotiation":true,
                "heartbeat_interval":-1,"snappy":true,"sample_rate":10}"#,
        )
        .unwrap();
        assert_eq!(r.client_id.as_deref(), Some("c"));
        assert_eq!(r.hostname, None);
        assert!(r.feature_negotiation && r.snappy);
        assert_eq!(r.heartbeat_interval, Some(-1));
        assert_eq!(r.sample_rate, Some(10));
    }

    #[test]
    fn rejects_wrong_types() {
        assert!(IdentifyRequest::from_json(b"{\"heartbeat_interval\":\"1\"}").is_err());
        assert!(IdentifyRequest::from_json(b"{\"snappy\":1}").is_err());
        assert!(IdentifyRequest::from_json(b"{\"msg_timeout\":1.5}").is_err());
        assert!(IdentifyRequest::from_json(b"[]").is_err());
        assert!(IdentifyRequest::from_json(b"{").is_err());
    }

    #[test]
    fn reply_key_order() {
        let r = IdentifyResponse {
            max_rdy_count: 2500,
            version: "1.3.0".into(),
            max_msg_timeout: 900000,
            msg_timeout: 60000,
            tls_v1: false,
            deflate: false,
            deflate_level: 6,
            max_deflate_level: 6,
            snappy: true,
            sample_rate: 0,
            auth_required: false,
            output_buffer_size: 16384,
            output_buffer_timeout: 250,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.starts_with("{\"max_rdy_count\":2500,\"version\":\"1.3.0\",\"max_msg_timeout\""));
        assert!(s.ends_with("\"output_buffer_timeout\":250}"));
    }
}
