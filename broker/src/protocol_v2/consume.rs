//! SUB, RDY, FIN, REQ, TOUCH and CLS: the consumer side of the protocol.

use std::sync::atomic::Ordering;
use std::time::Duration;

use nsq_protocol::names::{is_valid_channel_name, is_valid_topic_name};
use nsq_protocol::wire::{go_quote, parse_base10};
use nsq_protocol::{ErrorCode, MessageId, ProtocolError};

use super::params::Params;
use super::{Command, Outbound, Session, Stop};
use crate::client::ClientState;

fn name_ok(raw: &[u8], rule: fn(&str) -> bool) -> bool {
    std::str::from_utf8(raw).is_ok_and(rule)
}

impl Session {
    /// FIN, REQ and TOUCH are allowed while subscribed or closing.
    fn check_consuming(&self, cmd: &str) -> Result<(), ProtocolError> {
        match self.client.state() {
            ClientState::Subscribed | ClientState::Closing => Ok(()),
            _ => Err(ProtocolError::invalid(format!(
                "cannot {cmd} in current state"
            ))),
        }
    }

    fn message_id(raw: Option<&[u8]>) -> Result<MessageId, ProtocolError> {
        raw.and_then(MessageId::from_slice)
            .ok_or_else(|| ProtocolError::invalid("invalid message ID"))
    }

    pub(super) fn decode_sub(&self, params: &Params<'_>) -> Result<Command, ProtocolError> {
        if self.client.state() != ClientState::Init {
            return Err(ProtocolError::invalid("cannot SUB in current state"));
        }
        if self.heartbeat.is_zero() {
            return Err(ProtocolError::invalid(
                "cannot SUB with heartbeats disabled",
            ));
        }
        if params.len() < 3 {
            return Err(ProtocolError::invalid(
                "SUB insufficient number of parameters",
            ));
        }
        let topic = params.get(1).unwrap_or_default();
        if !name_ok(topic, is_valid_topic_name) {
            return Err(ProtocolError::new(
                ErrorCode::BadTopic,
                format!("SUB topic name {} is not valid", go_quote(topic)),
            ));
        }
        let channel = params.get(2).unwrap_or_default();
        if !name_ok(channel, is_valid_channel_name) {
            return Err(ProtocolError::new(
                ErrorCode::BadChannel,
                format!("SUB channel name {} is not valid", go_quote(channel)),
            ));
        }
        Ok(Command::Sub {
            topic: String::from_utf8_lossy(topic).into_owned(),
            channel: String::from_utf8_lossy(channel).into_owned(),
        })
    }

    pub(super) async fn exec_sub(
        &mut self,
        topic_name: &str,
        channel_name: &str,
    ) -> Result<(), Stop> {
        let max = self.nsqd.opts.max_channel_consumers;
        // An ephemeral topic or channel may be deleted between lookup and join: retry
        // once after 100 ms, as nsqd does.
        let mut attempt = 0;
        let channel = loop {
            attempt += 1;
            let topic = self.nsqd.get_or_create_topic(topic_name);
            let channel = self.nsqd.get_or_create_channel(&topic, channel_name);
            channel
                .add_client(self.client.clone(), max)
                .map_err(|e| ProtocolError::new(ErrorCode::SubFailed, format!("SUB failed {e}")))?;
            if channel.is_deleted() || topic.is_deleted() {
                channel.remove_client(self.client.id);
                if attempt < 2 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                return Err(ProtocolError::new(
                    ErrorCode::SubFailed,
                    "SUB failed to deleted topic/channel",
                )
                .into());
            }
            break channel;
        };
        self.client.set_state(ClientState::Subscribed);
        self.channel = Some(channel.clone());
        self.send(Outbound::Subscribe(channel)).await?;
        self.respond(b"OK").await
    }

    /// `Ok(Command::Nop)` when RDY arrives while closing: nsqd ignores it silently.
    pub(super) fn decode_rdy(&self, params: &Params<'_>) -> Result<Command, ProtocolError> {
        match self.client.state() {
            ClientState::Closing => return Ok(Command::Nop),
            ClientState::Subscribed => {}
            _ => return Err(ProtocolError::invalid("cannot RDY in current state")),
        }
        let mut count: i64 = 1;
        if let Some(raw) = params.get(1) {
            let n = parse_base10(raw).ok_or_else(|| {
                ProtocolError::invalid(format!(
                    "RDY could not parse count {}",
                    String::from_utf8_lossy(raw)
                ))
            })?;
            count = n as i64;
        }
        let max = self.nsqd.opts.max_rdy_count;
        if count < 0 || count > max {
            return Err(ProtocolError::invalid(format!(
                "RDY count {count} out of range 0-{max}"
            )));
        }
        Ok(Command::Rdy(count))
    }

    pub(super) fn exec_rdy(&mut self, count: i64) {
        self.client.ready_count.store(count, Ordering::Release);
        self.client.wake.notify_one();
    }

    pub(super) fn decode_fin(&self, params: &Params<'_>) -> Result<Command, ProtocolError> {
        self.check_consuming("FIN")?;
        if params.len() < 2 {
            return Err(ProtocolError::invalid("FIN insufficient number of params"));
        }
        Ok(Command::Fin(Self::message_id(params.get(1))?))
    }

    pub(super) async fn exec_fin(&mut self, id: &MessageId) -> Result<(), Stop> {
        let Some(ch) = &self.channel else {
            return Err(ProtocolError::invalid("cannot FIN in current state").into());
        };
        match ch.finish(self.client.id, id) {
            Ok(_msg) => {
                self.client.finish_count.fetch_add(1, Ordering::Relaxed);
                self.client.release_in_flight();
                Ok(())
            }
            Err(e) => {
                self.soft_error(ProtocolError::new(
                    ErrorCode::FinFailed,
                    format!("FIN {id} failed {e}"),
                ))
                .await
            }
        }
    }

    pub(super) fn decode_req(&self, params: &Params<'_>) -> Result<Command, ProtocolError> {
        self.check_consuming("REQ")?;
        if params.len() < 3 {
            return Err(ProtocolError::invalid("REQ insufficient number of params"));
        }
        let id = Self::message_id(params.get(1))?;
        let raw = params.get(2).unwrap_or_default();
        let ms = parse_base10(raw).ok_or_else(|| {
            ProtocolError::invalid(format!(
                "REQ could not parse timeout {}",
                String::from_utf8_lossy(raw)
            ))
        })?;
        // nsqd clamps (never rejects): negative after its signed conversion becomes 0,
        // above --max-req-timeout becomes the maximum.
        let max = self.nsqd.opts.max_req_timeout;
        let delay = match i64::try_from(ms)
            .ok()
            .and_then(|ms| ms.checked_mul(1_000_000))
        {
            None => Duration::ZERO,
            Some(ns) if ns < 0 => Duration::ZERO,
            Some(ns) => Duration::from_nanos(ns as u64).min(max),
        };
        Ok(Command::Req(id, delay))
    }

    pub(super) async fn exec_req(&mut self, id: &MessageId, delay: Duration) -> Result<(), Stop> {
        let Some(ch) = &self.channel else {
            return Err(ProtocolError::invalid("cannot REQ in current state").into());
        };
        match ch.requeue(self.client.id, id, delay) {
            Ok(()) => {
                self.client.requeue_count.fetch_add(1, Ordering::Relaxed);
                self.client.release_in_flight();
                Ok(())
            }
            Err(e) => {
                self.soft_error(ProtocolError::new(
                    ErrorCode::ReqFailed,
                    format!("REQ {id} failed {e}"),
                ))
                .await
            }
        }
    }

    pub(super) fn decode_touch(&self, params: &Params<'_>) -> Result<Command, ProtocolError> {
        self.check_consuming("TOUCH")?;
        if params.len() < 2 {
            return Err(ProtocolError::invalid(
                "TOUCH insufficient number of params",
            ));
        }
        Ok(Command::Touch(Self::message_id(params.get(1))?))
    }

    pub(super) async fn exec_touch(&mut self, id: &MessageId) -> Result<(), Stop> {
        let Some(ch) = &self.channel else {
            return Err(ProtocolError::invalid("cannot TOUCH in current state").into());
        };
        let max = self.nsqd.opts.max_msg_timeout;
        match ch.touch(self.client.id, id, self.msg_timeout, max) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.soft_error(ProtocolError::new(
                    ErrorCode::TouchFailed,
                    format!("TOUCH {id} failed {e}"),
                ))
                .await
            }
        }
    }

    pub(super) fn decode_cls(&self) -> Result<Command, ProtocolError> {
        if self.client.state() != ClientState::Subscribed {
            return Err(ProtocolError::invalid("cannot CLS in current state"));
        }
        Ok(Command::Cls)
    }

    pub(super) async fn exec_cls(&mut self) -> Result<(), Stop> {
        self.client.ready_count.store(0, Ordering::Release);
        self.client.set_state(ClientState::Closing);
        self.client.wake.notify_one();
        self.respond(b"CLOSE_WAIT").await
    }
}
