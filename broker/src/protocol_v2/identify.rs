//! IDENTIFY (feature negotiation) and AUTH.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nsq_protocol::compress::{DeflateDecoder, SnappyDecoder};
use nsq_protocol::identify::{IdentifyRequest, IdentifyResponse};
use nsq_protocol::wire::{self, BodyKind};
use nsq_protocol::{ErrorCode, ProtocolError};

use super::params::Params;
use super::{Command, Compression, Decoder, Outbound, PumpSettings, Session, Stop};
use crate::client::ClientState;

fn bad_body(text: String) -> ProtocolError {
    ProtocolError::new(ErrorCode::BadBody, text)
}

impl Session {
    pub(super) fn decode_identify(
        &self,
        rest: &[u8],
    ) -> Result<Option<(Command, usize)>, ProtocolError> {
        if self.client.state() != ClientState::Init {
            return Err(ProtocolError::invalid("cannot IDENTIFY in current state"));
        }
        let max = self.nsqd.opts.max_body_size;
        Ok(wire::sized_body(rest, "IDENTIFY", BodyKind::Body, max)?
            .map(|r| (Command::Identify(r.clone()), r.end)))
    }

    pub(super) async fn exec_identify(
        &mut self,
        body: Bytes,
        input: &mut BytesMut,
    ) -> Result<(), Stop> {
        let req = IdentifyRequest::from_json(&body)
            .map_err(|_| bad_body("IDENTIFY failed to decode JSON body".into()))?;
        let opts = self.nsqd.opts.clone();
        {
            let mut meta = self.client.meta.lock();
            meta.client_id = req.client_id.clone().unwrap_or_default();
            meta.hostname = req.hostname.clone().unwrap_or_default();
            meta.user_agent = req.user_agent.clone().unwrap_or_default();
        }
        // Settings apply in nsqd's order; a bad one is fatal after the earlier ones took.
        match req.heartbeat_interval.unwrap_or(0) {
            -1 => self.heartbeat = Duration::ZERO,
            0 => {}
            n if n >= 1000 && n <= opts.max_heartbeat_interval.as_millis() as i64 => {
                self.heartbeat = Duration::from_millis(n as u64)
            }
            n => {
                return Err(
                    bad_body(format!("IDENTIFY heartbeat interval ({n}) is invalid")).into(),
                )
            }
        }
        match req.output_buffer_timeout.unwrap_or(0) {
            -1 => self.output_buffer_timeout = Duration::ZERO,
            0 => {}
            n if n >= opts.min_output_buffer_timeout.as_millis() as i64
                && n <= opts.max_output_buffer_timeout.as_millis() as i64 =>
            {
                self.output_buffer_timeout = Duration::from_millis(n as u64)
            }
            n => {
                return Err(
                    bad_body(format!("IDENTIFY output buffer timeout ({n}) is invalid")).into(),
                )
            }
        }
        match req.output_buffer_size.unwrap_or(0) {
            -1 => {
                self.output_buffer_size = 1;
                self.output_buffer_timeout = Duration::ZERO;
            }
            0 => {}
            n if (64..=opts.max_output_buffer_size).contains(&n) => self.output_buffer_size = n,
            n => {
                return Err(
                    bad_body(format!("IDENTIFY output buffer size ({n}) is invalid")).into(),
                )
            }
        }
        match req.sample_rate.unwrap_or(0) {
            n @ 0..=99 => self.sample_rate = n as i32,
            n => return Err(bad_body(format!("IDENTIFY sample rate ({n}) is invalid")).into()),
        }
        match req.msg_timeout.unwrap_or(0) {
            0 => {}
            n if n >= 1000 && n <= opts.max_msg_timeout.as_millis() as i64 => {
                self.msg_timeout = Duration::from_millis(n as u64)
            }
            n => return Err(bad_body(format!("IDENTIFY msg timeout ({n}) is invalid")).into()),
        }
        let settings = PumpSettings {
            heartbeat: self.heartbeat,
            output_buffer_size: self.output_buffer_size.max(1) as usize,
            output_buffer_timeout: self.output_buffer_timeout,
            sample_rate: self.sample_rate,
            msg_timeout: self.msg_timeout,
        };
        self.client.meta.lock().sample_rate = self.sample_rate;

        if !req.feature_negotiation {
            return self
                .send(Outbound::Identify {
                    reply: Bytes::from_static(b"OK"),
                    compression: Compression::None,
                    settings,
                })
                .await;
        }
        let deflate = opts.deflate && req.deflate;
        let mut deflate_level = match req.deflate_level {
            Some(l) if deflate && l > 0 => l,
            _ => 6,
        };
        deflate_level = deflate_level.min(opts.max_deflate_level);
        let snappy = opts.snappy && req.snappy;
        if deflate && snappy {
            return Err(ProtocolError::new(
                ErrorCode::IdentifyFailed,
                "cannot enable both deflate and snappy compression",
            )
            .into());
        }
        let reply = IdentifyResponse {
            max_rdy_count: opts.max_rdy_count,
            version: nsq_protocol::NSQ_VERSION.to_string(),
            max_msg_timeout: opts.max_msg_timeout.as_millis() as i64,
            msg_timeout: self.msg_timeout.as_millis() as i64,
            // TLS is not offered yet: no certificate options exist, so never negotiated.
            tls_v1: false,
            deflate,
            deflate_level,
            max_deflate_level: opts.max_deflate_level,
            snappy,
            sample_rate: i64::from(self.sample_rate),
            auth_required: false,
            output_buffer_size: self.output_buffer_size,
            output_buffer_timeout: self.output_buffer_timeout.as_millis() as i64,
        };
        let json = serde_json::to_vec(&reply).map_err(|e| {
            ProtocolError::new(ErrorCode::IdentifyFailed, format!("IDENTIFY failed {e}"))
        })?;
        let compression = if snappy {
            Compression::Snappy
        } else if deflate {
            Compression::Deflate(deflate_level as u32)
        } else {
            Compression::None
        };
        {
            let mut meta = self.client.meta.lock();
            meta.snappy = snappy;
            meta.deflate = deflate;
        }
        self.send(Outbound::Identify {
            reply: Bytes::from(json),
            compression,
            settings,
        })
        .await?;
        // Everything after IDENTIFY arrives compressed: re-decode what is buffered.
        let decoder = match compression {
            Compression::None => return Ok(()),
            Compression::Snappy => Decoder::Snappy(SnappyDecoder::new()),
            Compression::Deflate(_) => Decoder::Deflate(DeflateDecoder::new()),
        };
        self.decoder = decoder;
        let mut pending = input.split();
        self.decode_raw(&mut pending, input).map_err(|e| {
            Stop::Fatal(ProtocolError::new(
                ErrorCode::IdentifyFailed,
                format!("IDENTIFY failed {e}"),
            ))
        })
    }

    pub(super) fn decode_auth(
        &self,
        params: &Params<'_>,
        rest: &[u8],
    ) -> Result<Option<(Command, usize)>, ProtocolError> {
        if self.client.state() != ClientState::Init {
            return Err(ProtocolError::invalid("cannot AUTH in current state"));
        }
        if params.len() != 1 {
            return Err(ProtocolError::invalid("AUTH invalid number of parameters"));
        }
        let max = self.nsqd.opts.max_body_size;
        Ok(wire::sized_body(rest, "AUTH", BodyKind::Body, max)?.map(|r| (Command::Auth, r.end)))
    }

    /// No `--auth-http-address` exists on this node, so AUTH is disabled, as in nsqd
    /// without auth servers.
    pub(super) fn exec_auth(&self) -> Result<(), Stop> {
        Err(ProtocolError::new(ErrorCode::AuthDisabled, "AUTH disabled").into())
    }
}
