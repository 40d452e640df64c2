//! The two stream compressions IDENTIFY can negotiate, as buffer-to-buffer transforms.
//!
//! * snappy: the snappy *framing* format (stream identifier, then CRC32C-masked chunks of
//!   at most 64 KiB of uncompressed data), as go-nsq's `golang/snappy` and nsqjs speak it;
//! * deflate: raw DEFLATE (RFC 1951, no zlib header), sync-flushed at every flush so the
//!   peer can decode everything sent so far.
//!
//! Encoders take plain bytes and append the compressed form to an output buffer;
//! decoders take compressed bytes as they arrive and append whatever plain bytes they
//! complete. Neither touches a socket, so both connection halves and test clients share
//! them.

use bytes::{Buf, BufMut, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// A compressed stream that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressError {
    #[error("snappy: {0}")]
    Snappy(String),
    #[error("deflate: {0}")]
    Deflate(String),
}

const SNAPPY_STREAM_ID: &[u8] = b"\xff\x06\x00\x00sNaPpY";
const SNAPPY_MAX_BLOCK: usize = 65536;
const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;
const CHUNK_PADDING: u8 = 0xfe;
const CHUNK_STREAM_ID: u8 = 0xff;

fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// Snappy framing-format encoder.
pub struct SnappyEncoder {
    raw: snap::raw::Encoder,
    wrote_header: bool,
    scratch: Vec<u8>,
}

impl Default for SnappyEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SnappyEncoder {
    pub fn new() -> Self {
        SnappyEncoder {
            raw: snap::raw::Encoder::new(),
            wrote_header: false,
            scratch: Vec::new(),
        }
    }

    /// Appends `input`, framed and compressed, to `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), CompressError> {
        if !self.wrote_header {
            out.put_slice(SNAPPY_STREAM_ID);
            self.wrote_header = true;
        }
        for block in input.chunks(SNAPPY_MAX_BLOCK) {
            let crc = masked_crc(block);
            self.scratch
                .resize(snap::raw::max_compress_len(block.len()), 0);
            let n = self
                .raw
                .compress(block, &mut self.scratch)
                .map_err(|e| CompressError::Snappy(e.to_string()))?;
            // Like golang/snappy: keep the compressed form only if it saves 12.5%.
            let (kind, payload) = if n < block.len() - block.len() / 8 {
                (CHUNK_COMPRESSED, &self.scratch[..n])
            } else {
                (CHUNK_UNCOMPRESSED, block)
            };
            let len = (payload.len() + 4) as u32;
            out.reserve(8 + payload.len());
            out.put_u8(kind);
            out.put_slice(&len.to_le_bytes()[..3]);
            out.put_u32_le(crc);
            out.put_slice(payload);
        }
        Ok(())
    }
}

/// Snappy framing-format decoder.
pub struct SnappyDecoder {
    raw: snap::raw::Decoder,
    pending: BytesMut,
    scratch: Vec<u8>,
}

impl Default for SnappyDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SnappyDecoder {
    pub fn new() -> Self {
        SnappyDecoder {
            raw: snap::raw::Decoder::new(),
            pending: BytesMut::new(),
            scratch: Vec::new(),
        }
    }

    /// Feeds compressed bytes; appends every completed chunk's data to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), CompressError> {
        self.pending.extend_from_slice(input);
        loop {
            if self.pending.len() < 4 {
                return Ok(());
            }
            let kind = self.pending[0];
            let len =
                u32::from_le_bytes([self.pending[1], self.pending[2], self.pending[3], 0]) as usize;
            if self.pending.len() < 4 + len {
                return Ok(());
            }
            let chunk = &self.pending[4..4 + len];
            match kind {
                CHUNK_COMPRESSED | CHUNK_UNCOMPRESSED => {
                    if len < 4 {
                        return Err(CompressError::Snappy("chunk too short".into()));
                    }
                    let crc = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                    let data: &[u8] = if kind == CHUNK_COMPRESSED {
                        let n = snap::raw::decompress_len(&chunk[4..])
                            .map_err(|e| CompressError::Snappy(e.to_string()))?;
                        if n > SNAPPY_MAX_BLOCK {
                            return Err(CompressError::Snappy("block too large".into()));
                        }
                        self.scratch.resize(n, 0);
                        let n = self
                            .raw
                            .decompress(&chunk[4..], &mut self.scratch)
                            .map_err(|e| CompressError::Snappy(e.to_string()))?;
                        &self.scratch[..n]
                    } else {
                        &chunk[4..]
                    };
                    if masked_crc(data) != crc {
                        return Err(CompressError::Snappy("checksum mismatch".into()));
                    }
                    out.extend_from_slice(data);
                }
                CHUNK_STREAM_ID => {
                    if chunk != &SNAPPY_STREAM_ID[4..] {
                        return Err(CompressError::Snappy("bad stream identifier".into()));
                    }
                }
                CHUNK_PADDING | 0x80..=0xfd => {}
                other => {
                    return Err(CompressError::Snappy(format!(
                        "unskippable chunk type {other:#x}"
                    )))
                }
            }
            self.pending.advance(4 + len);
        }
    }
}

/// Raw DEFLATE encoder, sync-flushed on every call.
pub struct DeflateEncoder {
    inner: Compress,
    scratch: Vec<u8>,
}

const DEFLATE_SCRATCH: usize = 64 * 1024;

impl DeflateEncoder {
    /// `level` 1..=9.
    pub fn new(level: u32) -> Self {
        DeflateEncoder {
            inner: Compress::new(Compression::new(level.clamp(1, 9)), false),
            scratch: vec![0; DEFLATE_SCRATCH],
        }
    }

    /// Compresses `input` and appends it, sync-flushed, to `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), CompressError> {
        let mut consumed = 0usize;
        loop {
            let before_in = self.inner.total_in();
            let before_out = self.inner.total_out();
            self.inner
                .compress(&input[consumed..], &mut self.scratch, FlushCompress::Sync)
                .map_err(|e| CompressError::Deflate(e.to_string()))?;
            consumed += (self.inner.total_in() - before_in) as usize;
            let wrote = (self.inner.total_out() - before_out) as usize;
            out.extend_from_slice(&self.scratch[..wrote]);
            // Finished once all input is taken and the flush fit with room to spare.
            if consumed == input.len() && wrote < self.scratch.len() {
                return Ok(());
            }
        }
    }
}

/// Raw DEFLATE decoder.
pub struct DeflateDecoder {
    inner: Decompress,
    scratch: Vec<u8>,
}

impl Default for DeflateDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DeflateDecoder {
    pub fn new() -> Self {
        DeflateDecoder {
            inner: Decompress::new(false),
            scratch: vec![0; DEFLATE_SCRATCH],
        }
    }

    /// Feeds compressed bytes; appends the plain bytes they complete to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), CompressError> {
        let mut consumed = 0usize;
        loop {
            let before_in = self.inner.total_in();
            let before_out = self.inner.total_out();
            let status = self
                .inner
                .decompress(&input[consumed..], &mut self.scratch, FlushDecompress::Sync)
                .map_err(|e| CompressError::Deflate(e.to_string()))?;
            let read = (self.inner.total_in() - before_in) as usize;
            let wrote = (self.inner.total_out() - before_out) as usize;
            consumed += read;
            out.extend_from_slice(&self.scratch[..wrote]);
            let drained = consumed == input.len() && wrote < self.scratch.len();
            if matches!(status, Status::StreamEnd) || drained || (read == 0 && wrote == 0) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn snappy_round_trip_in_pieces() {
        let mut enc = SnappyEncoder::new();
        let mut wire = BytesMut::new();
        enc.encode(&sample(), &mut wire).unwrap();
        enc.encode(b"tail", &mut wire).unwrap();
        assert!(wire.starts_with(SNAPPY_STREAM_ID));
        let mut dec = SnappyDecoder::new();
        let mut out = BytesMut::new();
        for piece in wire.chunks(777) {
            dec.decode(piece, &mut out).unwrap();
        }
        let mut want = sample();
        want.extend_from_slice(b"tail");
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn snappy_detects_corruption() {
        let mut enc = SnappyEncoder::new();
        let mut wire = BytesMut::new();
        enc.encode(b"hello hello hello hello", &mut wire).unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 0xff;
        let mut out = BytesMut::new();
        assert!(SnappyDecoder::new().decode(&wire, &mut out).is_err());
        let mut bad = BytesMut::new();
        assert!(SnappyDecoder::new()
            .decode(b"\x05\x01\x00\x00x", &mut bad)
            .is_err());
    }

    #[test]
    fn deflate_round_trip_with_sync_flushes() {
        let mut enc = DeflateEncoder::new(6);
        let mut dec = DeflateDecoder::new();
        let mut out = BytesMut::new();
        for part in [&sample()[..], b"x", b"", b"last bit"] {
            let mut wire = BytesMut::new();
            enc.encode(part, &mut wire).unwrap();
            let before = out.len();
            for piece in wire.chunks(1000) {
                dec.decode(piece, &mut out).unwrap();
            }
            // A sync flush means the peer sees every byte sent so far.
            assert_eq!(&out[before..], part);
        }
    }

    #[test]
    fn deflate_rejects_garbage() {
        let mut out = BytesMut::new();
        assert!(DeflateDecoder::new().decode(&[0xff; 64], &mut out).is_err());
    }
}
