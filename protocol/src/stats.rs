//! nsqd's `GET /stats?format=json` and `GET /info` bodies (conformance §2.2, §2.3).
//!
//! Shared by nsqd (which encodes them), the operator and the CLI (which read them).
//! Struct field order is the JSON key order nsqd v1.3.0 writes (Go marshals these as
//! structs). Decoding is lenient (missing keys take their default, unknown keys such as
//! post-1.3.0 `topology_zone` are ignored) so a client can read any 1.x nsqd.
//!
//! `null` matters to nsqd's readers: `topics` is `null` when a `topic` filter names no
//! topic, `producers` is `null` when there are none or clients were excluded, a channel's
//! `clients` is `null` when clients were excluded; those fields are therefore `Option`.

use serde::{Deserialize, Serialize};

/// The whole `/stats?format=json` document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatsResponse {
    pub version: String,
    /// `OK`, or `NOK - <last disk error>`.
    pub health: String,
    /// Unix seconds.
    pub start_time: i64,
    pub topics: Option<Vec<TopicStats>>,
    /// Absent (not `null`) when `include_mem=false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    pub producers: Option<Vec<ClientStats>>,
}

/// One topic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicStats {
    pub topic_name: String,
    pub channels: Vec<ChannelStats>,
    /// Messages waiting at the topic level, memory and disk (in-flight/deferred excluded).
    pub depth: i64,
    /// The disk part of `depth`.
    pub backend_depth: i64,
    /// Messages ever published to the topic.
    pub message_count: u64,
    /// Body bytes ever published to the topic.
    pub message_bytes: u64,
    pub paused: bool,
    /// All of the topic's channels' latency streams merged.
    pub e2e_processing_latency: E2eLatency,
}

/// One channel of a topic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelStats {
    pub channel_name: String,
    pub depth: i64,
    pub backend_depth: i64,
    pub in_flight_count: i64,
    pub deferred_count: i64,
    /// Messages put to the channel (deferred included, requeues excluded).
    pub message_count: u64,
    pub requeue_count: u64,
    pub timeout_count: u64,
    /// Always filled, even when `clients` is `null`.
    pub client_count: i64,
    pub clients: Option<Vec<ClientStats>>,
    pub paused: bool,
    pub e2e_processing_latency: E2eLatency,
}

/// End-to-end processing latency: `{"count":0,"percentiles":null}` when the feature is off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct E2eLatency {
    pub count: i64,
    pub percentiles: Option<Vec<Percentile>>,
}

/// One configured quantile and its value in nanoseconds (Go marshals a map here, so the
/// keys come sorted: `quantile`, `value`). Both are Go `float64`s, written as Go writes
/// them: `1` rather than `1.0`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Percentile {
    #[serde(serialize_with = "go_float")]
    pub quantile: f64,
    #[serde(serialize_with = "go_float")]
    pub value: f64,
}

/// Go's `encoding/json` writes a whole `float64` without a fraction (`1`, `1500000`).
fn go_float<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every whole number below is exact
    if v.fract() == 0.0 && v.abs() < EXACT {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// One TCP client, either subscribed to a channel or a producer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientStats {
    pub client_id: String,
    pub hostname: String,
    /// Always `V2`.
    pub version: String,
    pub remote_address: String,
    /// 0 init, 1 disconnected, 2 connected, 3 subscribed, 4 closing.
    pub state: i32,
    pub ready_count: i64,
    pub in_flight_count: i64,
    pub message_count: u64,
    pub finish_count: u64,
    pub requeue_count: u64,
    /// Unix seconds.
    pub connect_ts: i64,
    pub sample_rate: i32,
    pub deflate: bool,
    pub snappy: bool,
    pub user_agent: String,
    #[serde(skip_serializing_if = "is_false")]
    pub authed: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_identity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_identity_url: String,
    /// At most one entry in nsqd v1.3.0 (see [`PubCount`]); omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pub_counts: Vec<PubCount>,
    pub tls: bool,
    /// Go constant name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`) or `Unknown N`; empty
    /// without TLS, like the other `tls_*` strings.
    pub tls_cipher_suite: String,
    /// `TLS1.0` .. `TLS1.3`.
    pub tls_version: String,
    pub tls_negotiated_protocol: String,
    pub tls_negotiated_protocol_is_mutual: bool,
}

/// Messages a client published to one topic. nsqd v1.3.0 stops after the first entry
/// (filtered to the `topic` parameter when given), so a client publishing to several
/// topics shows only one of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PubCount {
    pub topic: String,
    pub count: u64,
}

/// The Go runtime's memory figures; a non-Go nsqd reports its own equivalents or zeros but
/// keeps every key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    pub heap_objects: u64,
    pub heap_idle_bytes: u64,
    pub heap_in_use_bytes: u64,
    pub heap_released_bytes: u64,
    pub gc_pause_usec_100: u64,
    pub gc_pause_usec_99: u64,
    pub gc_pause_usec_95: u64,
    pub next_gc_bytes: u64,
    pub gc_total_runs: u32,
}

/// nsqd's `GET /info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NsqdInfo {
    pub version: String,
    pub broadcast_address: String,
    pub hostname: String,
    /// The bound port (−1 for a unix socket listener).
    pub http_port: i64,
    pub tcp_port: i64,
    /// Unix seconds.
    pub start_time: i64,
    /// Nanoseconds.
    pub max_heartbeat_interval: i64,
    pub max_output_buffer_size: i64,
    /// Nanoseconds.
    pub max_output_buffer_timeout: i64,
    pub max_deflate_level: i64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_nsqd_order_with_its_nulls_and_omissions() {
        let doc = StatsResponse {
            version: "1.3.0".into(),
            health: "OK".into(),
            start_time: 1,
            topics: None,
            memory: None,
            producers: None,
        };
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"version":"1.3.0","health":"OK","start_time":1,"topics":null,"producers":null}"#
        );
        let c = ClientStats {
            version: "V2".into(),
            ..ClientStats::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("authed") && !json.contains("pub_counts"));
        assert!(json.starts_with(r#"{"client_id":"","hostname":"","version":"V2","#));
        assert!(json.ends_with(r#""user_agent":"","tls":false,"tls_cipher_suite":"","tls_version":"","tls_negotiated_protocol":"","tls_negotiated_protocol_is_mutual":false}"#));
        let off = serde_json::to_string(&E2eLatency::default()).unwrap();
        assert_eq!(off, r#"{"count":0,"percentiles":null}"#);
        let on = E2eLatency {
            count: 3,
            percentiles: Some(vec![
                Percentile {
                    quantile: 1.0,
                    value: 1_500_000.0,
                },
                Percentile {
                    quantile: 0.99,
                    value: 2.5,
                },
            ]),
        };
        assert_eq!(
            serde_json::to_string(&on).unwrap(),
            r#"{"count":3,"percentiles":[{"quantile":1,"value":1500000},{"quantile":0.99,"value":2.5}]}"#
        );
    }

    #[test]
    fn decodes_leniently() {
        let doc: StatsResponse =
            serde_json::from_str(r#"{"version":"1.2.1","topics":[{"topic_name":"t"}],"x":1}"#)
                .unwrap();
        assert_eq!(doc.topics.unwrap()[0].topic_name, "t");
        assert!(doc.producers.is_none());
    }
}
