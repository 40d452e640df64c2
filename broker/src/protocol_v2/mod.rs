//! Protocol V2: one client connection, split into a reader that parses and executes
//! commands (this module and its command modules) and a pump that owns the socket's
//! write side, the output buffer and delivery ([`pump`]).
//!
//! The reader never writes to the socket: it sends replies to the pump in order, so a
//! client that stops reading stalls only its own connection, and replies stay ordered.

mod consume;
mod identify;
mod params;
mod publish;
mod pump;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nsq_protocol::compress::{DeflateDecoder, SnappyDecoder};
use nsq_protocol::{wire, ProtocolError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::channel::Channel;
use crate::client::{ClientShared, ClientState};
use crate::nsqd::Nsqd;
use params::Params;
pub use pump::PumpSettings;

/// What the reader asks the pump to do, in command order.
pub(crate) enum Outbound {
    /// A response frame, flushed at once.
    Response(Bytes),
    /// An error frame, flushed at once; a fatal one ends the connection after it.
    Error { body: String, fatal: bool },
    /// IDENTIFY's reply, then the negotiated compression and its `OK`.
    Identify {
        reply: Bytes,
        compression: Compression,
        settings: PumpSettings,
    },
    /// SUB succeeded: start delivering from this channel.
    Subscribe(Arc<Channel>),
}

/// Stream compression negotiated by IDENTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Snappy,
    Deflate(u32),
}

/// How a connection's reader ended.
enum Ending {
    /// The client closed, the node is shutting down, or the connection was killed.
    Quiet,
    /// A fatal error was sent; let the client read it before the socket goes.
    AfterFatalError,
}

/// A command decoded from the buffer, with body ranges relative to the bytes after its
/// line; executed once those bytes are split off the buffer.
#[derive(Debug)]
enum Command {
    Identify(std::ops::Range<usize>),
    Auth,
    Sub {
        topic: String,
        channel: String,
    },
    Pub {
        topic: String,
        body: std::ops::Range<usize>,
    },
    Mpub {
        topic: String,
        bodies: Vec<std::ops::Range<usize>>,
    },
    Dpub {
        topic: String,
        defer_ms: u64,
        body: std::ops::Range<usize>,
    },
    Rdy(i64),
    Fin(nsq_protocol::MessageId),
    Req(nsq_protocol::MessageId, Duration),
    Touch(nsq_protocol::MessageId),
    Cls,
    Nop,
}

/// The reader side of one connection.
pub(crate) struct Session {
    nsqd: Arc<Nsqd>,
    client: Arc<ClientShared>,
    channel: Option<Arc<Channel>>,
    out: mpsc::Sender<Outbound>,
    /// Zero when heartbeats are disabled.
    heartbeat: Duration,
    msg_timeout: Duration,
    output_buffer_size: i64,
    output_buffer_timeout: Duration,
    sample_rate: i32,
    decoder: Decoder,
}

enum Decoder {
    Plain,
    Snappy(SnappyDecoder),
    Deflate(DeflateDecoder),
}

/// Per-read buffer growth.
const READ_CHUNK: usize = 64 * 1024;
/// How long a connection that got a fatal error waits for the client to hang up.
const LINGER_AFTER_FATAL: Duration = Duration::from_secs(2);

/// Serves one V2 connection whose magic has already been read.
pub async fn serve<R, W>(nsqd: Arc<Nsqd>, reader: R, writer: W, peer: SocketAddr)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let client = nsqd.register_client(peer);
    let span = tracing::info_span!("client", peer = %peer, id = client.id);
    async move {
        tracing::debug!("V2 connection");
        let (tx, rx) = mpsc::channel(256);
        let defaults = PumpSettings::defaults(&nsqd.opts);
        let pump = tokio::spawn(
            pump::run(Box::new(writer), client.clone(), rx, defaults).in_current_span(),
        );
        let mut session = Session {
            channel: None,
            heartbeat: defaults.heartbeat,
            msg_timeout: defaults.msg_timeout,
            output_buffer_size: defaults.output_buffer_size as i64,
            output_buffer_timeout: defaults.output_buffer_timeout,
            sample_rate: 0,
            decoder: Decoder::Plain,
            out: tx,
            client: client.clone(),
            nsqd: nsqd.clone(),
        };
        let mut reader = reader;
        let ending = session.read_loop(&mut reader).await;
        let channel = session.channel.take();
        drop(session);
        let _ = pump.await;
        client.set_state(ClientState::Closing);
        if let Some(ch) = channel {
            nsqd.remove_consumer(&ch, client.id);
        }
        nsqd.unregister_client(client.id);
        if let Ending::AfterFatalError = ending {
            linger(&mut reader).await;
        }
        tracing::debug!("connection closed");
    }
    .instrument(span)
    .await
}

/// Reads and discards until the client hangs up (or a short time passes), so the error
/// frame already sent is not lost to a reset caused by unread input.
async fn linger<R: AsyncRead + Unpin>(reader: &mut R) {
    let mut sink = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER_AFTER_FATAL, async {
        loop {
            match reader.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
}

impl Session {
    async fn read_loop<R: AsyncRead + Unpin>(&mut self, reader: &mut R) -> Ending {
        let mut input = BytesMut::with_capacity(READ_CHUNK);
        let mut raw = BytesMut::new();
        let mut kill = self.client.kill_signal();
        loop {
            // Execute every complete command already buffered (pipelining).
            loop {
                match self.process_one(&mut input).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(Stop::Drop) => return Ending::Quiet,
                    Err(Stop::Fatal(e)) => {
                        tracing::info!(error = %e, "fatal client error");
                        let _ = self
                            .out
                            .send(Outbound::Error {
                                body: e.to_frame_body(),
                                fatal: true,
                            })
                            .await;
                        return Ending::AfterFatalError;
                    }
                }
            }
            if *kill.borrow() {
                return Ending::Quiet;
            }
            let deadline = (!self.heartbeat.is_zero()).then(|| self.heartbeat * 2);
            let target = match self.decoder {
                Decoder::Plain => &mut input,
                _ => &mut raw,
            };
            if target.capacity() - target.len() < 4096 {
                target.reserve(READ_CHUNK);
            }
            let read = async {
                match deadline {
                    Some(d) => tokio::time::timeout(d, reader.read_buf(target))
                        .await
                        .unwrap_or_else(|_| {
                            Err(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "read deadline",
                            ))
                        }),
                    None => reader.read_buf(target).await,
                }
            };
            let n = tokio::select! {
                r = read => r,
                _ = kill.changed() => return Ending::Quiet,
            };
            match n {
                Ok(0) => return Ending::Quiet,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "read failed");
                    return Ending::Quiet;
                }
            }
            if let Err(e) = self.decode_raw(&mut raw, &mut input) {
                tracing::info!(error = %e, "undecodable compressed stream");
                return Ending::Quiet;
            }
        }
    }

    /// Moves compressed bytes through the negotiated decoder into the command buffer.
    fn decode_raw(
        &mut self,
        raw: &mut BytesMut,
        input: &mut BytesMut,
    ) -> Result<(), nsq_protocol::compress::CompressError> {
        if raw.is_empty() {
            return Ok(());
        }
        let r = match &mut self.decoder {
            Decoder::Plain => {
                input.extend_from_slice(raw);
                Ok(())
            }
            Decoder::Snappy(d) => d.decode(raw, input),
            Decoder::Deflate(d) => d.decode(raw, input),
        };
        raw.clear();
        r
    }

    /// Decodes and executes the first buffered command. `Ok(false)`: more bytes needed.
    async fn process_one(&mut self, input: &mut BytesMut) -> Result<bool, Stop> {
        let nl = match wire::find_line(input) {
            Ok(Some(i)) => i,
            Ok(None) => return Ok(false),
            Err(e) => {
                tracing::info!(error = %e, "dropping connection");
                return Err(Stop::Drop);
            }
        };
        let decoded = {
            let params = Params::split(&input[..nl]);
            self.decode(&params, &input[nl + 1..])?
        };
        let Some((cmd, body_len)) = decoded else {
            return Ok(false);
        };
        let frame = input.split_to(nl + 1 + body_len).freeze();
        let rest = frame.slice(nl + 1..);
        self.execute(cmd, rest, input).await?;
        Ok(true)
    }

    /// Validates a command in nsqd's order and frames its body, without side effects.
    fn decode(&self, params: &Params<'_>, rest: &[u8]) -> Result<Option<(Command, usize)>, Stop> {
        let name = params.get(0).unwrap_or_default();
        let decoded = match name {
            b"IDENTIFY" => self.decode_identify(rest)?,
            b"AUTH" => self.decode_auth(params, rest)?,
            b"SUB" => Some((self.decode_sub(params)?, 0)),
            b"PUB" => self.decode_pub(params, rest)?,
            b"MPUB" => self.decode_mpub(params, rest)?,
            b"DPUB" => self.decode_dpub(params, rest)?,
            b"RDY" => Some((self.decode_rdy(params)?, 0)),
            b"FIN" => Some((self.decode_fin(params)?, 0)),
            b"REQ" => Some((self.decode_req(params)?, 0)),
            b"TOUCH" => Some((self.decode_touch(params)?, 0)),
            b"CLS" => Some((self.decode_cls()?, 0)),
            b"NOP" => Some((Command::Nop, 0)),
            other => {
                return Err(Stop::Fatal(ProtocolError::invalid(format!(
                    "invalid command {}",
                    String::from_utf8_lossy(other)
                ))))
            }
        };
        Ok(decoded)
    }

    async fn execute(
        &mut self,
        cmd: Command,
        rest: Bytes,
        input: &mut BytesMut,
    ) -> Result<(), Stop> {
        match cmd {
            Command::Identify(r) => self.exec_identify(rest.slice(r), input).await,
            Command::Auth => self.exec_auth(),
            Command::Sub { topic, channel } => self.exec_sub(&topic, &channel).await,
            Command::Pub { topic, body } => {
                self.exec_pub(&topic, vec![rest.slice(body)], 0, "PUB")
                    .await
            }
            Command::Mpub { topic, bodies } => {
                let bodies = bodies.into_iter().map(|r| rest.slice(r)).collect();
                self.exec_pub(&topic, bodies, 0, "MPUB").await
            }
            Command::Dpub {
                topic,
                defer_ms,
                body,
            } => {
                self.exec_pub(&topic, vec![rest.slice(body)], defer_ms, "DPUB")
                    .await
            }
            Command::Rdy(n) => {
                self.exec_rdy(n);
                Ok(())
            }
            Command::Fin(id) => self.exec_fin(&id).await,
            Command::Req(id, d) => self.exec_req(&id, d).await,
            Command::Touch(id) => self.exec_touch(&id).await,
            Command::Cls => self.exec_cls().await,
            Command::Nop => Ok(()),
        }
    }

    /// Sends a response frame.
    async fn respond(&self, body: &'static [u8]) -> Result<(), Stop> {
        self.send(Outbound::Response(Bytes::from_static(body)))
            .await
    }

    async fn send(&self, o: Outbound) -> Result<(), Stop> {
        self.out.send(o).await.map_err(|_| Stop::Drop)
    }

    /// Reports a non-fatal error and keeps the connection.
    async fn soft_error(&self, e: ProtocolError) -> Result<(), Stop> {
        self.send(Outbound::Error {
            body: e.to_frame_body(),
            fatal: false,
        })
        .await
    }
}

/// Why the reader stops processing.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Close without a frame (line too long, pump gone).
    Drop,
    /// Send this error, then close.
    Fatal(ProtocolError),
}

impl From<ProtocolError> for Stop {
    fn from(e: ProtocolError) -> Stop {
        Stop::Fatal(e)
    }
}
