//! A buffered protocol V2 client connection: commands are encoded into a write buffer and
//! sent with one syscall per flush; frames are read many at a time and taken off whole.

use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use nsq_protocol::frame::{self, Frame, FrameError, FrameType};
use nsq_protocol::{client, ErrorCode, MAGIC_V2};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a TCP connect may take before we give up on the address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Free space kept in the read buffer before each read: big reads, few syscalls.
const READ_CHUNK: usize = 256 * 1024;
/// Largest frame accepted from nsqd (nsqd's own default `--max-msg-size` is 1 MiB; this
/// leaves room for raised limits while still refusing a nonsense size prefix).
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Why talking to nsqd failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connecting to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("connection to nsqd failed: {0}")]
    Io(#[from] io::Error),
    #[error("bad frame from nsqd: {0}")]
    Frame(#[from] FrameError),
    #[error("frame of {0} bytes from nsqd exceeds the {MAX_FRAME}-byte limit")]
    FrameTooBig(usize),
    #[error("nsqd closed the connection")]
    Closed,
    #[error("nsqd closed the connection in the middle of a frame")]
    ClosedMidFrame,
    #[error("nsqd replied {0}")]
    Server(String),
    #[error("unexpected {0} from nsqd")]
    Unexpected(String),
}

/// One TCP connection speaking protocol V2.
pub struct Connection {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl Connection {
    /// Connects and queues the `"  V2"` magic (sent with the first flush).
    pub async fn connect(addr: &str) -> Result<Connection, ConnError> {
        let connect_err = |source| ConnError::Connect {
            addr: addr.to_string(),
            source,
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err(io::ErrorKind::TimedOut.into()))?
            .map_err(connect_err)?;
        stream.set_nodelay(true)?;
        let mut wbuf = BytesMut::with_capacity(16 * 1024);
        wbuf.extend_from_slice(MAGIC_V2);
        Ok(Connection {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf,
        })
    }

    /// The write buffer, for the encoders in [`nsq_protocol::client`].
    pub fn out(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Queues `IDENTIFY` with a JSON body.
    pub fn identify(&mut self, body: &serde_json::Value) {
        // A `Value` always serializes.
        let json = serde_json::to_vec(body).unwrap_or_default();
        client::identify(&mut self.wbuf, &json);
    }

    /// Bytes queued but not yet sent.
    pub fn pending(&self) -> usize {
        self.wbuf.len()
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> Result<(), ConnError> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Sends what is queued, then `bytes` (a pre-encoded command) without copying it.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.flush().await?;
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Reads more bytes into the read buffer; `false` on a clean close between frames.
    /// Cancel-safe: bytes read are never lost.
    pub async fn fill(&mut self) -> Result<bool, ConnError> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        if self.stream.read_buf(&mut self.rbuf).await? > 0 {
            Ok(true)
        } else if self.rbuf.is_empty() {
            Ok(false)
        } else {
            Err(ConnError::ClosedMidFrame)
        }
    }

    /// The next whole frame already buffered, if any.
    pub fn buffered_frame(&mut self) -> Result<Option<Frame>, ConnError> {
        check_size(&self.rbuf)?;
        Ok(frame::take_frame(&mut self.rbuf)?)
    }

    /// Hands every whole buffered frame to `f` (with the write buffer, to queue replies)
    /// without allocating per frame, then drops them from the buffer.
    pub fn drain_frames<F>(&mut self, mut f: F) -> Result<(), ConnError>
    where
        F: FnMut(FrameType, &[u8], &mut BytesMut) -> Result<(), ConnError>,
    {
        let mut at = 0;
        let result = loop {
            let rest = &self.rbuf[at..];
            if let Err(e) = check_size(rest) {
                break Err(e);
            }
            let Some(size) = rest.get(..4).map(be_i32) else {
                break Ok(());
            };
            if size < 4 {
                break Err(FrameError::BadSize(size).into());
            }
            let total = 4 + size as usize;
            let Some(whole) = rest.get(..total) else {
                break Ok(());
            };
            let raw_type = be_i32(&whole[4..8]);
            let Some(frame_type) = FrameType::from_i32(raw_type) else {
                break Err(FrameError::BadType(raw_type).into());
            };
            if let Err(e) = f(frame_type, &whole[8..], &mut self.wbuf) {
                break Err(e);
            }
            at += total;
        };
        self.rbuf.advance(at);
        result
    }

    /// Reads one frame; `None` when nsqd closed the connection cleanly. Cancel-safe.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, ConnError> {
        loop {
            if let Some(f) = self.buffered_frame()? {
                return Ok(Some(f));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Reads the next response, answering heartbeats on the way; an error frame becomes
    /// [`ConnError::Server`].
    pub async fn read_response(&mut self) -> Result<Bytes, ConnError> {
        loop {
            let f = self.read_frame().await?.ok_or(ConnError::Closed)?;
            match f.frame_type {
                FrameType::Response if f.data == frame::HEARTBEAT => {
                    client::nop(&mut self.wbuf);
                    self.flush().await?;
                }
                FrameType::Response => return Ok(f.data),
                FrameType::Error => return Err(server_error(&f.data)),
                FrameType::Message => return Err(ConnError::Unexpected("message".into())),
            }
        }
    }

    /// Reads the next response and insists that it is `OK`.
    pub async fn expect_ok(&mut self) -> Result<(), ConnError> {
        let data = self.read_response().await?;
        if data == frame::OK {
            Ok(())
        } else {
            Err(ConnError::Unexpected(format!(
                "response {:?}",
                String::from_utf8_lossy(&data)
            )))
        }
    }
}

/// An error frame's body as an error.
pub fn server_error(data: &[u8]) -> ConnError {
    ConnError::Server(String::from_utf8_lossy(data).into_owned())
}

/// Whether nsqd closes the connection after this error frame (all but `E_FIN_FAILED`,
/// `E_REQ_FAILED` and `E_TOUCH_FAILED`).
pub fn is_fatal_error(data: &[u8]) -> bool {
    let code = data.split(|&b| b == b' ').next().unwrap_or_default();
    ![
        ErrorCode::FinFailed,
        ErrorCode::ReqFailed,
        ErrorCode::TouchFailed,
    ]
    .iter()
    .any(|c| c.as_str().as_bytes() == code)
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Refuses a size prefix above [`MAX_FRAME`] before buffering towards it.
fn check_size(buf: &[u8]) -> Result<(), ConnError> {
    match buf.get(..4).map(be_i32) {
        Some(size) if size > 0 && size as usize > MAX_FRAME => {
            Err(ConnError::FrameTooBig(size as usize))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsq_protocol::frame::put_frame;
    use tokio::net::TcpListener;

    /// A connection whose peer wrote `bytes` and then closed.
    async fn fed(bytes: Vec<u8>) -> Connection {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(&bytes).await.unwrap();
        });
        let conn = Connection::connect(&addr).await.unwrap();
        server.await.unwrap();
        conn
    }

    #[tokio::test]
    async fn drains_whole_frames_and_keeps_partial_ones() {
        let mut b = BytesMut::new();
        put_frame(&mut b, FrameType::Response, b"OK");
        put_frame(
            &mut b,
            FrameType::Message,
            b"0123456789abcdefghijklmnopqrstuvwxyz",
        );
        put_frame(&mut b, FrameType::Error, b"E_INVALID x");
        let cut = b.len() - 3;
        let mut conn = fed(b[..cut].to_vec()).await;
        while conn.rbuf.len() < cut {
            assert!(conn.fill().await.unwrap());
        }
        let mut seen = Vec::new();
        conn.drain_frames(|t, data, _| {
            seen.push((t, data.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![(FrameType::Response, 2), (FrameType::Message, 36)]
        );
        assert_eq!(conn.rbuf.len(), 8 + 11 - 3);
        assert!(matches!(conn.fill().await, Err(ConnError::ClosedMidFrame)));
    }

    #[tokio::test]
    async fn clean_close_between_frames_is_none() {
        let mut b = BytesMut::new();
        put_frame(&mut b, FrameType::Response, b"_heartbeat_");
        put_frame(&mut b, FrameType::Error, b"E_BAD_TOPIC nope");
        let mut conn = fed(b.to_vec()).await;
        match conn.read_response().await {
            Err(ConnError::Server(s)) => assert_eq!(s, "E_BAD_TOPIC nope"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(conn.read_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn refuses_absurd_sizes() {
        let mut conn = fed(vec![0x7f, 0, 0, 0, 0, 0, 0, 0]).await;
        assert!(matches!(
            conn.read_frame().await,
            Err(ConnError::FrameTooBig(_))
        ));
        let mut conn = fed(vec![0, 0, 0, 2, 0, 0]).await;
        while conn.rbuf.len() < 6 {
            conn.fill().await.unwrap();
        }
        assert!(conn.drain_frames(|_, _, _| Ok(())).is_err());
    }
}
