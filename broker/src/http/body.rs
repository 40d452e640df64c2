//! Reading request bodies the way nsqd's handlers do: through a size limit
//! (`io.LimitReader(body, max+1)`), or piece by piece for binary `/mpub`.

use axum::body::{Body, Bytes, HttpBody};
use bytes::{Buf, BytesMut};

/// The client's body could not be read (connection reset, bad chunked encoding...).
#[derive(Debug, thiserror::Error)]
#[error("failed to read the request body: {0}")]
pub struct ReadFailed(String);

/// A request body read incrementally.
pub struct BodyReader {
    body: Body,
    buf: BytesMut,
    done: bool,
}

impl BodyReader {
    pub fn new(body: Body) -> BodyReader {
        BodyReader {
            body,
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// Buffers until at least `n` bytes are available or the body ends; returns how many
    /// bytes are buffered.
    async fn fill(&mut self, n: usize) -> Result<usize, ReadFailed> {
        while self.buf.len() < n && !self.done {
            let frame =
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut self.body).poll_frame(cx)).await;
            match frame {
                None => self.done = true,
                Some(Err(e)) => return Err(ReadFailed(e.to_string())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
        Ok(self.buf.len())
    }

    /// Reads at most `limit` bytes (what `io.ReadAll(io.LimitReader(body, limit))` returns).
    pub async fn read_at_most(&mut self, limit: usize) -> Result<Bytes, ReadFailed> {
        let have = self.fill(limit).await?;
        Ok(self.buf.split_to(have.min(limit)).freeze())
    }

    /// Exactly `n` bytes (`io.ReadFull`), or `None` if the body ends first or fails.
    pub async fn read_exact(&mut self, n: usize) -> Option<Bytes> {
        match self.fill(n).await {
            Ok(have) if have >= n => Some(self.buf.split_to(n).freeze()),
            _ => None,
        }
    }

    /// A big-endian i32 (nsqd's `readLen`), or `None` if the body ends first or fails.
    pub async fn read_i32(&mut self) -> Option<i32> {
        let mut b = self.read_exact(4).await?;
        Some(b.get_i32())
    }
}
