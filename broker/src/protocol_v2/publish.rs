//! PUB, MPUB and DPUB.

use bytes::Bytes;
use nsq_protocol::names::is_valid_topic_name;
use nsq_protocol::wire::{self, go_quote, BodyKind};
use nsq_protocol::{ErrorCode, ProtocolError};

use super::params::Params;
use super::{Command, Session, Stop};
use crate::message::{now_ns, Message};

fn topic_param(params: &Params<'_>) -> String {
    String::from_utf8_lossy(params.get(1).unwrap_or_default()).into_owned()
}

impl Session {
    pub(super) fn decode_pub(
        &self,
        params: &Params<'_>,
        rest: &[u8],
    ) -> Result<Option<(Command, usize)>, ProtocolError> {
        if params.len() < 2 {
            return Err(ProtocolError::invalid(
                "PUB insufficient number of parameters",
            ));
        }
        let raw = params.get(1).unwrap_or_default();
        let topic = topic_param(params);
        if !valid_name(raw) {
            return Err(ProtocolError::new(
                ErrorCode::BadTopic,
                format!("PUB topic name {} is not valid", go_quote(raw)),
            ));
        }
        let max = self.nsqd.opts.max_msg_size;
        Ok(
            wire::sized_body(rest, "PUB", BodyKind::Message, max)?.map(|r| {
                (
                    Command::Pub {
                        topic,
                        body: r.clone(),
                    },
                    r.end,
                )
            }),
        )
    }

    pub(super) fn decode_mpub(
        &self,
        params: &Params<'_>,
        rest: &[u8],
    ) -> Result<Option<(Command, usize)>, ProtocolError> {
        if params.len() < 2 {
            return Err(ProtocolError::invalid(
                "MPUB insufficient number of parameters",
            ));
        }
        let raw = params.get(1).unwrap_or_default();
        if !valid_name(raw) {
            // nsqd really repeats the code inside the description here.
            return Err(ProtocolError::new(
                ErrorCode::BadTopic,
                format!("E_BAD_TOPIC MPUB topic name {} is not valid", go_quote(raw)),
            ));
        }
        let opts = &self.nsqd.opts;
        Ok(
            wire::mpub_body(rest, opts.max_msg_size, opts.max_body_size)?.map(|layout| {
                (
                    Command::Mpub {
                        topic: topic_param(params),
                        bodies: layout.messages,
                    },
                    layout.consumed,
                )
            }),
        )
    }

    pub(super) fn decode_dpub(
        &self,
        params: &Params<'_>,
        rest: &[u8],
    ) -> Result<Option<(Command, usize)>, ProtocolError> {
        if params.len() < 3 {
            return Err(ProtocolError::invalid(
                "DPUB insufficient number of parameters",
            ));
        }
        let raw = params.get(1).unwrap_or_default();
        if !valid_name(raw) {
            return Err(ProtocolError::new(
                ErrorCode::BadTopic,
                format!("DPUB topic name {} is not valid", go_quote(raw)),
            ));
        }
        let raw_defer = params.get(2).unwrap_or_default();
        let defer_ms = wire::parse_base10(raw_defer).ok_or_else(|| {
            ProtocolError::invalid(format!(
                "DPUB could not parse timeout {}",
                String::from_utf8_lossy(raw_defer)
            ))
        })?;
        let max_ms = self.nsqd.opts.max_req_timeout.as_millis() as u64;
        // nsqd converts to a signed duration, so huge values wrap negative: also out of range.
        if defer_ms > max_ms || defer_ms > i64::MAX as u64 / 1_000_000 {
            return Err(ProtocolError::invalid(format!(
                "DPUB timeout {defer_ms} out of range 0-{max_ms}"
            )));
        }
        let max = self.nsqd.opts.max_msg_size;
        Ok(
            wire::sized_body(rest, "DPUB", BodyKind::Message, max)?.map(|r| {
                (
                    Command::Dpub {
                        topic: topic_param(params),
                        defer_ms,
                        body: r.clone(),
                    },
                    r.end,
                )
            }),
        )
    }

    /// Publishes the decoded bodies and answers `OK`; a queue failure is fatal
    /// `E_<CMD>_FAILED <CMD> failed <reason>`.
    pub(super) async fn exec_pub(
        &mut self,
        topic_name: &str,
        bodies: Vec<Bytes>,
        defer_ms: u64,
        cmd: &str,
    ) -> Result<(), Stop> {
        let topic = self.nsqd.get_or_create_topic(topic_name);
        let ts = now_ns();
        let count = bodies.len() as u64;
        let msgs: Vec<Message> = self
            .nsqd
            .ids
            .next_n(bodies.len())
            .zip(bodies)
            .map(|(id, body)| {
                let mut m = Message::new(id, body, ts);
                m.defer_ms = defer_ms;
                m
            })
            .collect();
        let result = topic.put_messages(msgs);
        self.nsqd.note_storage_result(&result);
        if let Err(e) = result {
            let code = match cmd {
                "MPUB" => ErrorCode::MpubFailed,
                "DPUB" => ErrorCode::DpubFailed,
                _ => ErrorCode::PubFailed,
            };
            return Err(ProtocolError::new(code, format!("{cmd} failed {e}")).into());
        }
        self.client.record_publish(topic_name, count);
        self.respond(b"OK").await
    }
}

fn valid_name(raw: &[u8]) -> bool {
    std::str::from_utf8(raw).is_ok_and(is_valid_topic_name)
}
