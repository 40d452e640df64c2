//! The V1 TCP protocol nsqd speaks to nsqlookupd (conformance §5.1): framing of the
//! command lines and IDENTIFY bodies, and the commands PING, IDENTIFY, REGISTER and
//! UNREGISTER applied to the registration database.
//!
//! Framing is two-pass: [`frame`] says whether a whole command is buffered (and how far
//! it reaches) without consuming anything; [`Session::exec`] applies it. Every error in
//! this protocol is fatal: the reply is sent and the connection closed, so commands
//! return [`FatalError`] and the caller cannot forget to close.

use std::net::SocketAddr;
use std::sync::Arc;

use nsq_protocol::lookup::{IdentifyBody, IdentifyReply};
use nsq_protocol::names::{is_ephemeral, is_valid_channel_name, is_valid_topic_name};
use nsq_protocol::wire::{self, LineTooLong};
use nsq_protocol::{ErrorCode, ProtocolError};
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::registration_db::{Category, PeerInfo, Registration, RegistrationDb};

/// Largest IDENTIFY body accepted. nsqlookupd has no limit (and crashes on a negative
/// size); nsqd's body is about 150 bytes.
pub const MAX_IDENTIFY_BODY: usize = 1024 * 1024;

/// An error reply after which the connection is closed (all V1 errors are).
pub type FatalError = ProtocolError;

/// A complete command found at the start of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ping,
    /// IDENTIFY with its body (only framed when the connection has not identified yet).
    Identify(Vec<u8>),
    /// IDENTIFY on an identified connection: refused before any body is read.
    IdentifyAgain,
    Register(Vec<String>),
    Unregister(Vec<String>),
    Invalid(String),
}

/// What the buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// A command and the number of bytes it spans.
    Command(Command, usize),
    /// No complete line yet.
    NeedLine,
    /// An IDENTIFY line whose 4-byte body size is not complete.
    NeedBodySize,
    /// An IDENTIFY whose body is not complete.
    NeedBody,
}

/// Why framing cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Drop the connection without a reply.
    #[error(transparent)]
    LineTooLong(#[from] LineTooLong),
    /// Reply and close.
    #[error(transparent)]
    Fatal(#[from] FatalError),
}

/// Frames the first command in `buf`. `identified` decides whether an IDENTIFY line is
/// followed by a body (nsqlookupd rejects a second IDENTIFY before reading its body).
pub fn frame(buf: &[u8], identified: bool) -> Result<Framed, FrameError> {
    let Some(eol) = wire::find_line(buf)? else {
        return Ok(Framed::NeedLine);
    };
    let params = split_line(&buf[..eol]);
    let line_len = eol + 1;
    let name = params.first().map(String::as_str).unwrap_or_default();
    let cmd = match name {
        "PING" => Command::Ping,
        "IDENTIFY" if identified => Command::IdentifyAgain,
        "IDENTIFY" => {
            let Some(size) = wire::i32_at(buf, line_len) else {
                return Ok(Framed::NeedBodySize);
            };
            let size = usize::try_from(size)
                .ok()
                .filter(|&s| s <= MAX_IDENTIFY_BODY)
                .ok_or_else(|| {
                    ProtocolError::new(ErrorCode::BadBody, "IDENTIFY failed to read body")
                })?;
            let start = line_len + 4;
            let Some(body) = buf.get(start..start + size) else {
                return Ok(Framed::NeedBody);
            };
            return Ok(Framed::Command(
                Command::Identify(body.to_vec()),
                start + size,
            ));
        }
        "REGISTER" => Command::Register(params[1..].to_vec()),
        "UNREGISTER" => Command::Unregister(params[1..].to_vec()),
        other => Command::Invalid(other.to_string()),
    };
    Ok(Framed::Command(cmd, line_len))
}

/// The error nsqlookupd sends when the client closes with a partial command buffered.
pub fn eof_error(framed: &Framed) -> Option<FatalError> {
    let what = match framed {
        Framed::NeedBodySize => "IDENTIFY failed to read body size",
        Framed::NeedBody => "IDENTIFY failed to read body",
        _ => return None,
    };
    Some(ProtocolError::new(ErrorCode::BadBody, what))
}

/// Trims surrounding whitespace like Go's `strings.TrimSpace` and splits on single
/// spaces (so two spaces make an empty parameter).
fn split_line(line: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(line);
    text.trim().split(' ').map(str::to_string).collect()
}

/// What a connection's commands need from the daemon.
#[derive(Debug)]
pub struct Context {
    pub db: RegistrationDb,
    /// Our IDENTIFY reply (broadcast address, hostname, bound ports, version).
    pub identity: IdentifyReply,
}

/// One TCP connection's protocol state.
#[derive(Debug)]
pub struct Session {
    remote: String,
    peer: Option<Arc<PeerInfo>>,
}

impl Session {
    pub fn new(remote: SocketAddr) -> Self {
        Session {
            remote: remote.to_string(),
            peer: None,
        }
    }

    pub fn is_identified(&self) -> bool {
        self.peer.is_some()
    }

    /// Runs a command: the reply data, or the fatal error to send before closing.
    pub fn exec(&mut self, ctx: &Context, cmd: Command) -> Result<Vec<u8>, FatalError> {
        match cmd {
            Command::Ping => {
                if let Some(peer) = &self.peer {
                    peer.touch();
                    debug!(peer = %peer.id, "pinged");
                }
                Ok(b"OK".to_vec())
            }
            Command::Identify(body) => self.identify(ctx, &body),
            Command::IdentifyAgain => Err(ProtocolError::invalid("cannot IDENTIFY again")),
            Command::Register(params) => self.register(ctx, &params),
            Command::Unregister(params) => self.unregister(ctx, &params),
            Command::Invalid(name) => {
                Err(ProtocolError::invalid(format!("invalid command {name}")))
            }
        }
    }

    fn identify(&mut self, ctx: &Context, body: &[u8]) -> Result<Vec<u8>, FatalError> {
        let bad = |what: &str| ProtocolError::new(ErrorCode::BadBody, format!("IDENTIFY {what}"));
        let info = decode_identify(body).ok_or_else(|| bad("failed to decode JSON body"))?;
        if info.broadcast_address.is_empty()
            || info.tcp_port == 0
            || info.http_port == 0
            || info.version.is_empty()
        {
            return Err(bad("missing fields"));
        }
        info!(
            "IDENTIFY Address:{} TCP:{} HTTP:{} Version:{}",
            info.broadcast_address, info.tcp_port, info.http_port, info.version
        );
        let peer = Arc::new(PeerInfo::new(
            self.remote.clone(),
            info.hostname,
            info.broadcast_address,
            info.tcp_port,
            info.http_port,
            info.version,
        ));
        if ctx.db.add_producer(Registration::client(), &peer) {
            info!("DB: REGISTER category:client key: subkey:");
        }
        self.peer = Some(peer);
        Ok(crate::http::go_json(&ctx.identity).into_bytes())
    }

    fn identified_peer(&self) -> Result<&Arc<PeerInfo>, FatalError> {
        self.peer
            .as_ref()
            .ok_or_else(|| ProtocolError::invalid("client must IDENTIFY"))
    }

    fn register(&mut self, ctx: &Context, params: &[String]) -> Result<Vec<u8>, FatalError> {
        let peer = self.identified_peer()?;
        let (topic, channel) = topic_channel("REGISTER", params)?;
        if let Some(channel) = channel {
            if ctx
                .db
                .add_producer(Registration::channel(topic, channel), peer)
            {
                info!("DB: REGISTER category:channel key:{topic} subkey:{channel}");
            }
        }
        if ctx.db.add_producer(Registration::topic(topic), peer) {
            info!("DB: REGISTER category:topic key:{topic} subkey:");
        }
        Ok(b"OK".to_vec())
    }

    fn unregister(&mut self, ctx: &Context, params: &[String]) -> Result<Vec<u8>, FatalError> {
        let peer = self.identified_peer()?;
        let (topic, channel) = topic_channel("UNREGISTER", params)?;
        match channel {
            Some(channel) => {
                let reg = Registration::channel(topic, channel);
                let (removed, left) = ctx.db.remove_producer(&reg, &peer.id);
                if removed {
                    info!("DB: UNREGISTER category:channel key:{topic} subkey:{channel}");
                }
                if left == 0 && is_ephemeral(channel) {
                    ctx.db.remove_registration(&reg);
                }
            }
            None => {
                // A topic unregistration also drops the peer from the topic's channels
                // (nsqd unregisters channels first, so this normally finds nothing).
                for reg in ctx.db.find_registrations(Category::Channel, topic, "*") {
                    if ctx.db.remove_producer(&reg, &peer.id).0 {
                        warn!(
                            "unexpected UNREGISTER category:channel key:{topic} subkey:{}",
                            reg.sub_key
                        );
                    }
                }
                let reg = Registration::topic(topic);
                let (removed, left) = ctx.db.remove_producer(&reg, &peer.id);
                if removed {
                    info!("DB: UNREGISTER category:topic key:{topic} subkey:");
                }
                if left == 0 && is_ephemeral(topic) {
                    ctx.db.remove_registration(&reg);
                }
            }
        }
        Ok(b"OK".to_vec())
    }

    /// Drops the peer from every registration (the connection is gone).
    pub fn disconnect(&mut self, ctx: &Context) {
        if let Some(peer) = self.peer.take() {
            for reg in ctx.db.remove_peer(&peer.id) {
                info!(
                    "DB: UNREGISTER category:{} key:{} subkey:{}",
                    reg.category.as_str(),
                    reg.key,
                    reg.sub_key
                );
            }
        }
    }
}

/// REGISTER/UNREGISTER arguments: a topic and an optional channel (an empty channel is
/// no channel); extra parameters are ignored.
fn topic_channel<'a>(
    cmd: &str,
    params: &'a [String],
) -> Result<(&'a str, Option<&'a str>), FatalError> {
    let Some(topic) = params.first() else {
        return Err(ProtocolError::invalid(format!(
            "{cmd} insufficient number of params"
        )));
    };
    let channel = params.get(1).map(String::as_str).filter(|c| !c.is_empty());
    if !is_valid_topic_name(topic) {
        return Err(ProtocolError::new(
            ErrorCode::BadTopic,
            format!("{cmd} topic name '{topic}' is not valid"),
        ));
    }
    if let Some(channel) = channel {
        if !is_valid_channel_name(channel) {
            return Err(ProtocolError::new(
                ErrorCode::BadChannel,
                format!("{cmd} channel name '{channel}' is not valid"),
            ));
        }
    }
    Ok((topic, channel))
}

/// Decodes the IDENTIFY body as Go's `encoding/json` decodes it into nsqlookupd's
/// `PeerInfo`: keys match case-insensitively, unknown keys and `null`s are ignored, a
/// value of the wrong type (including `remote_address`, which is then overwritten) fails,
/// and a top-level `null` decodes to nothing.
fn decode_identify(body: &[u8]) -> Option<IdentifyBody> {
    let map = match serde_json::from_slice::<Value>(body).ok()? {
        Value::Null => return Some(IdentifyBody::default()),
        Value::Object(map) => map,
        _ => return None,
    };
    let mut out = IdentifyBody::default();
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        match key.to_ascii_lowercase().as_str() {
            "remote_address" => {
                value.as_str()?;
            }
            "hostname" => out.hostname = value.as_str()?.to_string(),
            "broadcast_address" => out.broadcast_address = value.as_str()?.to_string(),
            "tcp_port" => out.tcp_port = value.as_i64()?,
            "http_port" => out.http_port = value.as_i64()?,
            "version" => out.version = value.as_str()?.to_string(),
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_lines_and_bodies() {
        assert_eq!(frame(b"PIN", false), Ok(Framed::NeedLine));
        assert_eq!(
            frame(b" PING \r\nX", false),
            Ok(Framed::Command(Command::Ping, 8))
        );
        assert_eq!(
            frame(b"REGISTER  t\n", false),
            Ok(Framed::Command(
                Command::Register(vec!["".into(), "t".into()]),
                12
            ))
        );
        assert_eq!(
            frame(b"\n", false),
            Ok(Framed::Command(Command::Invalid(String::new()), 1))
        );
        assert_eq!(frame(b"IDENTIFY\n\0\0", false), Ok(Framed::NeedBodySize));
        assert_eq!(frame(b"IDENTIFY\n\0\0\0\x02{", false), Ok(Framed::NeedBody));
        assert_eq!(
            frame(b"IDENTIFY\n\0\0\0\x02{}PING\n", false),
            Ok(Framed::Command(Command::Identify(b"{}".to_vec()), 15))
        );
        assert_eq!(
            frame(b"IDENTIFY\n", true),
            Ok(Framed::Command(Command::IdentifyAgain, 9))
        );
        assert!(matches!(
            frame(b"IDENTIFY\n\xff\xff\xff\xff", false),
            Err(FrameError::Fatal(_))
        ));
        assert!(matches!(
            frame(&vec![b'A'; wire::MAX_LINE_LEN], false),
            Err(FrameError::LineTooLong(_))
        ));
        assert!(eof_error(&Framed::NeedLine).is_none());
    }

    #[test]
    fn identify_json_is_decoded_like_go() {
        let b = decode_identify(
            br#"{"Broadcast_Address":"a","tcp_port":1,"HTTP_PORT":2,"version":"v","hostname":null,"x":[1]}"#,
        )
        .unwrap();
        assert_eq!(b.broadcast_address, "a");
        assert_eq!((b.tcp_port, b.http_port), (1, 2));
        assert_eq!(b.hostname, "");
        assert_eq!(decode_identify(b"null"), Some(IdentifyBody::default()));
        assert_eq!(decode_identify(br#"{"tcp_port":"1"}"#), None);
        assert_eq!(decode_identify(br#"{"tcp_port":1.5}"#), None);
        assert_eq!(decode_identify(br#"{"remote_address":5}"#), None);
        assert_eq!(decode_identify(b"[]"), None);
        assert_eq!(decode_identify(b""), None);
    }

    #[test]
    fn topic_channel_rules() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            topic_channel("REGISTER", &p(&["t", ""])).unwrap(),
            ("t", None)
        );
        assert_eq!(
            topic_channel("REGISTER", &p(&["t", "c", "extra"])).unwrap(),
            ("t", Some("c"))
        );
        assert_eq!(
            topic_channel("REGISTER", &[]).unwrap_err().to_string(),
            "E_INVALID REGISTER insufficient number of params"
        );
        assert_eq!(
            topic_channel("UNREGISTER", &p(&["", "c"]))
                .unwrap_err()
                .to_string(),
            "E_BAD_TOPIC UNREGISTER topic name '' is not valid"
        );
    }
}
