//! The delivery pump: owns a connection's write side and output buffer, writes replies
//! in order, pushes messages while `in_flight < RDY`, sends heartbeats, and flushes on a
//! full buffer, on the output-buffer timeout, or when the client stops being ready.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nsq_protocol::compress::{DeflateEncoder, SnappyEncoder};
use nsq_protocol::frame::{put_frame, FrameType, HEARTBEAT};
use nsq_protocol::message::put_message_frame;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::{Compression, Outbound};
use crate::channel::Channel;
use crate::client::ClientShared;
use crate::message::Message;
use crate::options::Options;

/// nsqd's fixed client timeout; heartbeats default to half of it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most messages taken from the channel per lock.
const DELIVERY_BATCH: usize = 128;

/// Delivery settings a client tunes with IDENTIFY.
#[derive(Debug, Clone, Copy)]
pub struct PumpSettings {
    /// Zero disables heartbeats (and write deadlines).
    pub heartbeat: Duration,
    pub output_buffer_size: usize,
    /// Zero disables timed flushing.
    pub output_buffer_timeout: Duration,
    pub sample_rate: i32,
    pub msg_timeout: Duration,
}

impl PumpSettings {
    pub fn defaults(opts: &Options) -> PumpSettings {
        PumpSettings {
            heartbeat: CLIENT_TIMEOUT / 2,
            output_buffer_size: 16 * 1024,
            output_buffer_timeout: opts.output_buffer_timeout,
            sample_rate: 0,
            msg_timeout: opts.msg_timeout,
        }
    }
}

enum Encoder {
    Plain,
    Snappy(Box<SnappyEncoder>),
    Deflate(DeflateEncoder),
}

struct Pump {
    writer: Box<dyn AsyncWrite + Unpin + Send>,
    client: Arc<ClientShared>,
    settings: PumpSettings,
    identified: bool,
    /// IDENTIFY changed the heartbeat interval: restart its timer.
    retune: bool,
    out: BytesMut,
    compressed: BytesMut,
    encoder: Encoder,
    /// When unflushed message data must go out at the latest.
    flush_at: Option<Instant>,
    channel: Option<Arc<Channel>>,
    batch: Vec<Message>,
}

/// Why the pump stopped.
enum Exit {
    /// The connection was killed (channel deleted, node shutting down).
    Killed,
    /// The reader ended (client hung up or the connection is closing).
    ReaderGone,
    /// A fatal error frame went out.
    Fatal,
    WriteFailed,
}

pub(super) async fn run(
    writer: Box<dyn AsyncWrite + Unpin + Send>,
    client: Arc<ClientShared>,
    mut rx: mpsc::Receiver<Outbound>,
    settings: PumpSettings,
) {
    let mut pump = Pump {
        writer,
        client: client.clone(),
        settings,
        identified: false,
        retune: false,
        out: BytesMut::with_capacity(settings.output_buffer_size),
        compressed: BytesMut::new(),
        encoder: Encoder::Plain,
        flush_at: None,
        channel: None,
        batch: Vec::with_capacity(DELIVERY_BATCH),
    };
    let mut kill = client.kill_signal();
    let mut heartbeat_at = next_heartbeat(&pump.settings);
    let exit = 'outer: loop {
        if *kill.borrow() {
            break Exit::Killed;
        }
        // Replies first, in order, without waiting.
        loop {
            match rx.try_recv() {
                Ok(o) => {
                    if let Err(exit) = pump.handle(o).await {
                        break 'outer exit;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => break 'outer Exit::ReaderGone,
            }
        }
        if pump.retune {
            pump.retune = false;
            heartbeat_at = next_heartbeat(&pump.settings);
        }
        let ready = pump.ready();
        if !ready && !pump.out.is_empty() && pump.flush().await.is_err() {
            break Exit::WriteFailed;
        }
        let channel = pump.channel.clone();
        let available = channel.as_ref().map(|c| c.available().notified());
        tokio::pin!(available);
        if let Some(n) = available.as_mut().as_pin_mut() {
            n.enable();
        }
        if ready {
            match pump.deliver().await {
                // A sole consumer goes straight on; with several, queue up behind the
                // others for the next wake-up so the channel is shared round-robin.
                Ok(true) if channel.as_ref().is_some_and(|c| c.consumer_count() <= 1) => continue,
                Ok(true) => {}
                Ok(false) => {}
                Err(()) => break Exit::WriteFailed,
            }
        }
        let flush_at = pump.flush_at;
        let wait_available = async {
            match available.as_mut().as_pin_mut() {
                Some(n) if ready => n.await,
                _ => std::future::pending().await,
            }
        };
        let mut woken_by_queue = false;
        tokio::select! {
            biased;
            _ = kill.changed() => break Exit::Killed,
            o = rx.recv() => match o {
                Some(o) => {
                    if let Err(exit) = pump.handle(o).await {
                        break exit;
                    }
                }
                None => break Exit::ReaderGone,
            },
            _ = client.wake.notified() => {}
            _ = wait_available => woken_by_queue = true,
            _ = sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                if pump.flush().await.is_err() {
                    break Exit::WriteFailed;
                }
            }
            _ = sleep_until(heartbeat_at.unwrap_or_else(Instant::now)), if heartbeat_at.is_some() => {
                put_frame(&mut pump.out, FrameType::Response, HEARTBEAT);
                if pump.flush().await.is_err() {
                    break Exit::WriteFailed;
                }
                heartbeat_at = next_heartbeat(&pump.settings);
            }
        }
        // Woken for messages but no longer able to take them: wake someone else.
        if woken_by_queue && !pump.ready() {
            if let Some(ch) = &pump.channel {
                ch.pass_baton();
            }
        }
    };
    match exit {
        Exit::Killed | Exit::ReaderGone | Exit::Fatal => {
            let _ = pump.flush().await;
            let _ = pump.writer.shutdown().await;
        }
        Exit::WriteFailed => tracing::debug!("write failed; closing"),
    }
}

fn next_heartbeat(s: &PumpSettings) -> Option<Instant> {
    (!s.heartbeat.is_zero()).then(|| Instant::now() + s.heartbeat)
}

impl Pump {
    fn ready(&self) -> bool {
        match &self.channel {
            Some(ch) => !ch.is_paused() && self.client.has_room(),
            None => false,
        }
    }

    /// Handles one reply; `Err` says why the connection must end.
    async fn handle(&mut self, o: Outbound) -> Result<(), Exit> {
        match o {
            Outbound::Response(body) => {
                put_frame(&mut self.out, FrameType::Response, &body);
                self.flush().await.map_err(|_| Exit::WriteFailed)?;
            }
            Outbound::Error { body, fatal } => {
                put_frame(&mut self.out, FrameType::Error, body.as_bytes());
                self.flush().await.map_err(|_| Exit::WriteFailed)?;
                if fatal {
                    return Err(Exit::Fatal);
                }
            }
            Outbound::Identify {
                reply,
                compression,
                settings,
            } => {
                self.apply(settings);
                put_frame(&mut self.out, FrameType::Response, &reply);
                self.flush().await.map_err(|_| Exit::WriteFailed)?;
                let encoder = match compression {
                    Compression::None => None,
                    Compression::Snappy => Some(Encoder::Snappy(Box::new(SnappyEncoder::new()))),
                    Compression::Deflate(level) => {
                        Some(Encoder::Deflate(DeflateEncoder::new(level)))
                    }
                };
                if let Some(enc) = encoder {
                    self.encoder = enc;
                    put_frame(&mut self.out, FrameType::Response, b"OK");
                    self.flush().await.map_err(|_| Exit::WriteFailed)?;
                }
            }
            Outbound::Subscribe(ch) => self.channel = Some(ch),
        }
        Ok(())
    }

    /// nsqd re-tunes its delivery loop only on the first IDENTIFY; the buffer size
    /// follows every IDENTIFY.
    fn apply(&mut self, s: PumpSettings) {
        if !self.identified {
            self.settings = s;
            self.identified = true;
            self.retune = true;
        } else {
            self.settings.output_buffer_size = s.output_buffer_size;
        }
    }

    /// Pushes what the window allows. `Ok(true)` if anything was sent.
    async fn deliver(&mut self) -> Result<bool, ()> {
        let Some(ch) = self.channel.clone() else {
            return Ok(false);
        };
        let room = self.client.room().min(DELIVERY_BATCH as i64) as usize;
        self.batch.clear();
        let n = ch.deliver(
            &self.client,
            room,
            self.settings.msg_timeout,
            self.settings.sample_rate,
            &mut self.batch,
        );
        if n == 0 {
            return Ok(false);
        }
        self.client
            .in_flight_count
            .fetch_add(n as i64, Ordering::AcqRel);
        self.client
            .message_count
            .fetch_add(n as u64, Ordering::Relaxed);
        for i in 0..self.batch.len() {
            let m = &self.batch[i];
            put_message_frame(&mut self.out, m.timestamp, m.attempts, &m.id, &m.body);
            if self.out.len() >= self.settings.output_buffer_size {
                self.flush().await?;
            }
        }
        self.batch.clear();
        if !self.out.is_empty()
            && self.flush_at.is_none()
            && !self.settings.output_buffer_timeout.is_zero()
        {
            self.flush_at = Some(Instant::now() + self.settings.output_buffer_timeout);
        }
        Ok(true)
    }

    /// Writes the buffer (through the negotiated compression) with a write deadline of
    /// one heartbeat interval.
    async fn flush(&mut self) -> Result<(), ()> {
        self.flush_at = None;
        if self.out.is_empty() {
            return Ok(());
        }
        let data: Bytes = match &mut self.encoder {
            Encoder::Plain => self.out.split().freeze(),
            Encoder::Snappy(e) => {
                e.encode(&self.out, &mut self.compressed).map_err(|_| ())?;
                self.out.clear();
                self.compressed.split().freeze()
            }
            Encoder::Deflate(e) => {
                e.encode(&self.out, &mut self.compressed).map_err(|_| ())?;
                self.out.clear();
                self.compressed.split().freeze()
            }
        };
        let write = self.writer.write_all(&data);
        let r = if self.settings.heartbeat.is_zero() {
            write.await
        } else {
            match tokio::time::timeout(self.settings.heartbeat, write).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "write deadline",
                )),
            }
        };
        if self.out.capacity() < self.settings.output_buffer_size {
            self.out.reserve(self.settings.output_buffer_size);
        }
        r.map_err(|e| tracing::debug!(error = %e, "write failed"))
    }
}
