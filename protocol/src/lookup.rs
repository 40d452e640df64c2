//! nsqlookupd's wire formats: the V1 TCP commands nsqd sends, the size-prefixed replies,
//! and the JSON bodies of the TCP IDENTIFY exchange and of every HTTP endpoint
//! (conformance §3.11, §5.1, §5.2).
//!
//! Shared by the lookupd (which encodes them), nsqd (which registers and asks for
//! channels), the operator and the CLI (which read `/lookup`, `/nodes`, ...). Struct field
//! order is the JSON key order nsqlookupd v1.3.0 writes: struct order where Go marshals a
//! struct, sorted where Go marshals a map. Decoding is lenient (missing keys take their
//! default, unknown keys such as post-1.3.0 `topology_zone` are ignored) so a client can
//! read any 1.x lookupd.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The JSON body nsqd sends after `IDENTIFY\n` + int32 size (keys sorted, as Go marshals
/// nsqd's map).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentifyBody {
    pub broadcast_address: String,
    pub hostname: String,
    pub http_port: i64,
    pub tcp_port: i64,
    pub version: String,
}

/// lookupd's reply to IDENTIFY: its own broadcast address, OS hostname, bound ports and
/// version (keys sorted, as Go marshals the map).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentifyReply {
    pub broadcast_address: String,
    pub hostname: String,
    pub http_port: i64,
    pub tcp_port: i64,
    pub version: String,
}

/// One nsqd as `/lookup` lists it (nsqlookupd's `PeerInfo`). `remote_address` is the
/// `ip:port` of nsqd's TCP connection to the lookupd, not an address to dial.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Producer {
    pub remote_address: String,
    pub hostname: String,
    pub broadcast_address: String,
    pub tcp_port: i64,
    pub http_port: i64,
    pub version: String,
}

impl Producer {
    /// `<broadcast_address>:<http_port>`: how `/topic/tombstone?node=` names a producer.
    pub fn http_node(&self) -> String {
        format!("{}:{}", self.broadcast_address, self.http_port)
    }
}

/// `GET /lookup?topic=T`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LookupResponse {
    pub channels: Vec<String>,
    pub producers: Vec<Producer>,
}

/// `GET /topics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicsResponse {
    pub topics: Vec<String>,
}

/// `GET /channels?topic=T`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelsResponse {
    pub channels: Vec<String>,
}

/// One nsqd as `/nodes` lists it: `tombstones[i]` says whether the topic `topics[i]` is
/// tombstoned for this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Node {
    pub remote_address: String,
    pub hostname: String,
    pub broadcast_address: String,
    pub tcp_port: i64,
    pub http_port: i64,
    pub version: String,
    pub tombstones: Vec<bool>,
    pub topics: Vec<String>,
}

/// `GET /nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodesResponse {
    pub producers: Vec<Node>,
}

/// `GET /info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InfoResponse {
    pub version: String,
}

/// One producer of one registration in `GET /debug` (keys sorted, as Go marshals the map).
/// Times are Unix nanoseconds; `tombstoned_at` of a never-tombstoned producer is Go's
/// zero time, [`GO_ZERO_TIME_UNIX_NANO`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DebugEntry {
    pub broadcast_address: String,
    pub hostname: String,
    pub http_port: i64,
    /// The peer id: the `ip:port` of nsqd's TCP connection.
    pub id: String,
    pub last_update: i64,
    pub tcp_port: i64,
    pub tombstoned: bool,
    pub tombstoned_at: i64,
    pub version: String,
}

/// `GET /debug`: keyed `"<category>:<key>:<subkey>"` (`client::`, `topic:T:`,
/// `channel:T:C`); registrations without producers are absent.
pub type DebugResponse = BTreeMap<String, Vec<DebugEntry>>;

/// What Go's `time.Time{}.UnixNano()` returns (the int64 product wraps), which
/// nsqlookupd reports as `tombstoned_at` for producers never tombstoned.
pub const GO_ZERO_TIME_UNIX_NANO: i64 = -6_795_364_578_871_345_152;

/// Every V1 HTTP error body: `{"message":"<CODE>"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorResponse {
    pub message: String,
}

/// A V1 TCP command as nsqd sends it to a lookupd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ping,
    Identify(IdentifyBody),
    Register {
        topic: String,
        channel: Option<String>,
    },
    Unregister {
        topic: String,
        channel: Option<String>,
    },
}

impl Command {
    /// Appends the command's bytes: a `\n`-terminated line, plus int32 size + JSON for
    /// IDENTIFY.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Command::Ping => out.extend_from_slice(b"PING\n"),
            Command::Identify(body) => {
                out.extend_from_slice(b"IDENTIFY\n");
                // Serializing a struct of strings and integers cannot fail.
                let json = serde_json::to_vec(body).unwrap_or_default();
                out.extend_from_slice(&(json.len() as i32).to_be_bytes());
                out.extend_from_slice(&json);
            }
            Command::Register { topic, channel } => line(out, "REGISTER", topic, channel),
            Command::Unregister { topic, channel } => line(out, "UNREGISTER", topic, channel),
        }
    }
}

fn line(out: &mut Vec<u8>, name: &str, topic: &str, channel: &Option<String>) {
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(topic.as_bytes());
    if let Some(channel) = channel {
        out.push(b' ');
        out.extend_from_slice(channel.as_bytes());
    }
    out.push(b'\n');
}

/// Appends one lookupd reply: int32 size + data, with no frame type (unlike V2).
pub fn encode_response(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(data.len() as i32).to_be_bytes());
    out.extend_from_slice(data);
}

/// A reply whose size prefix is negative: not something a lookupd sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid lookupd response size {0}")]
pub struct BadResponseSize(pub i32);

/// Frames one lookupd reply at the start of `buf`: the data's byte range within `buf`
/// (the reply ends at `range.end`), or `Ok(None)` if more bytes are needed.
pub fn decode_response(buf: &[u8]) -> Result<Option<Range<usize>>, BadResponseSize> {
    let Some(size) = crate::wire::i32_at(buf, 0) else {
        return Ok(None);
    };
    let len = usize::try_from(size).map_err(|_| BadResponseSize(size))?;
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some(4..4 + len))
}

/// Whether a reply is an error (`E_<CODE> <description>`, or the bare `E_BAD_PROTOCOL`).
pub fn is_error_response(data: &[u8]) -> bool {
    data.starts_with(b"E_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_body_keys_are_sorted_like_go() {
        let body = IdentifyBody {
            broadcast_address: "nsqd-0".into(),
            hostname: "h".into(),
            http_port: 4151,
            tcp_port: 4150,
            version: "1.3.0".into(),
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"broadcast_address":"nsqd-0","hostname":"h","http_port":4151,"tcp_port":4150,"version":"1.3.0"}"#
        );
    }

    #[test]
    fn lookup_and_nodes_key_order() {
        let p = Producer {
            remote_address: "127.0.0.1:5".into(),
            hostname: "h".into(),
            broadcast_address: "b".into(),
            tcp_port: 1,
            http_port: 2,
            version: "v".into(),
        };
        assert_eq!(p.http_node(), "b:2");
        let l = LookupResponse {
            channels: vec![],
            producers: vec![p],
        };
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"channels":[],"producers":[{"remote_address":"127.0.0.1:5","hostname":"h","broadcast_address":"b","tcp_port":1,"http_port":2,"version":"v"}]}"#
        );
        let n: NodesResponse = serde_json::from_str(
            r#"{"producers":[{"remote_address":"r","topology_zone":"z","tombstones":[true],"topics":["t"]}]}"#,
        )
        .unwrap();
        assert_eq!(n.producers[0].tombstones, vec![true]);
        assert_eq!(n.producers[0].topics, vec!["t".to_string()]);
        assert_eq!(n.producers[0].tcp_port, 0);
    }

    #[test]
    fn debug_entry_keys_are_sorted_like_go() {
        let e = DebugEntry {
            tombstoned_at: GO_ZERO_TIME_UNIX_NANO,
            ..Default::default()
        };
        let s = serde_json::to_string(&e).unwrap();
        let keys: Vec<&str> = s.split('"').skip(1).step_by(2).collect();
        let mut sorted: Vec<&str> = keys.iter().copied().filter(|k| !k.is_empty()).collect();
        sorted.sort_unstable();
        let named: Vec<&str> = keys.iter().copied().filter(|k| !k.is_empty()).collect();
        assert_eq!(named, sorted);
        assert!(s.contains("\"tombstoned_at\":-6795364578871345152"));
    }

    #[test]
    fn commands_encode() {
        let mut out = Vec::new();
        Command::Ping.encode(&mut out);
        Command::Register {
            topic: "t".into(),
            channel: None,
        }
        .encode(&mut out);
        Command::Unregister {
            topic: "t".into(),
            channel: Some("c".into()),
        }
        .encode(&mut out);
        assert_eq!(out, b"PING\nREGISTER t\nUNREGISTER t c\n");

        let mut out = Vec::new();
        Command::Identify(IdentifyBody::default()).encode(&mut out);
        assert!(out.starts_with(b"IDENTIFY\n"));
        let size = i32::from_be_bytes([out[9], out[10], out[11], out[12]]) as usize;
        assert_eq!(out.len(), 13 + size);
        let back: IdentifyBody = serde_json::from_slice(&out[13..]).unwrap();
        assert_eq!(back, IdentifyBody::default());
    }

    #[test]
    fn responses_frame() {
        let mut out = Vec::new();
        encode_response(b"OK", &mut out);
        assert_eq!(out, b"\0\0\0\x02OK");
        assert_eq!(decode_response(&out), Ok(Some(4..6)));
        assert_eq!(decode_response(&out[..5]), Ok(None));
        assert_eq!(decode_response(&out[..3]), Ok(None));
        assert_eq!(
            decode_response(&(-1i32).to_be_bytes()),
            Err(BadResponseSize(-1))
        );
        assert!(is_error_response(b"E_INVALID invalid command X"));
        assert!(!is_error_response(b"OK"));
    }
}
