//! Message layout (frame type 2 and the disk record): `[i64 ts_ns][u16 attempts][16-byte id][body]`.

use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

use crate::frame::FrameType;

/// Bytes before the body: timestamp, attempts and ID.
pub const MESSAGE_HEADER_LEN: usize = 8 + 2 + MESSAGE_ID_LEN;
/// A message ID is 16 ASCII bytes on the wire.
pub const MESSAGE_ID_LEN: usize = 16;

/// A message ID: 16 lowercase hex characters of a 64-bit number, echoed byte-exactly by
/// FIN/REQ/TOUCH. Clients may send any 16 bytes; those simply match nothing in flight.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; MESSAGE_ID_LEN]);

impl MessageId {
    /// Lowercase hex of `n`, zero padded to 16 characters.
    pub fn from_u64(n: u64) -> MessageId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; MESSAGE_ID_LEN];
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = (15 - i) * 4;
            *slot = HEX[((n >> shift) & 0xf) as usize];
        }
        MessageId(out)
    }

    /// The bytes a client sent, if there are exactly 16 of them.
    pub fn from_slice(raw: &[u8]) -> Option<MessageId> {
        let arr: [u8; MESSAGE_ID_LEN] = raw.try_into().ok()?;
        Some(MessageId(arr))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

/// Appends a complete message frame (size, type 2, header, body) to `out`.
pub fn put_message_frame(
    out: &mut BytesMut,
    timestamp_ns: i64,
    attempts: u16,
    id: &MessageId,
    body: &[u8],
) {
    out.reserve(8 + MESSAGE_HEADER_LEN + body.len());
    out.put_i32((4 + MESSAGE_HEADER_LEN + body.len()) as i32);
    out.put_i32(FrameType::Message as i32);
    put_message(out, timestamp_ns, attempts, id, body);
}

/// Appends the message layout alone (what a disk record carries after its length).
pub fn put_message(
    out: &mut impl BufMut,
    timestamp_ns: i64,
    attempts: u16,
    id: &MessageId,
    body: &[u8],
) {
    out.put_i64(timestamp_ns);
    out.put_u16(attempts);
    out.put_slice(&id.0);
    out.put_slice(body);
}

/// A message decoded from its layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedMessage {
    pub timestamp_ns: i64,
    pub attempts: u16,
    pub id: MessageId,
    pub body: Bytes,
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message of {0} bytes is shorter than its 26-byte header")]
pub struct ShortMessage(pub usize);

/// Decodes the message layout; the body shares `data`'s allocation.
pub fn decode_message(data: &Bytes) -> Result<DecodedMessage, ShortMessage> {
    if data.len() < MESSAGE_HEADER_LEN {
        return Err(ShortMessage(data.len()));
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&data[0..8]);
    let attempts = u16::from_be_bytes([data[8], data[9]]);
    let mut id = [0u8; MESSAGE_ID_LEN];
    id.copy_from_slice(&data[10..MESSAGE_HEADER_LEN]);
    Ok(DecodedMessage {
        timestamp_ns: i64::from_be_bytes(ts),
        attempts,
        id: MessageId(id),
        body: data.slice(MESSAGE_HEADER_LEN..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_lowercase_hex() {
        assert_eq!(MessageId::from_u64(0).to_string(), "0000000000000000");
        assert_eq!(
            MessageId::from_u64(0x0123_4567_89ab_cdef).to_string(),
            "0123456789abcdef"
        );
        assert!(MessageId::from_slice(b"short").is_none());
    }

    #[test]
    fn frame_layout() {
        let mut out = BytesMut::new();
        let id = MessageId::from_u64(42);
        put_message_frame(&mut out, 7, 3, &id, b"hi");
        assert_eq!(&out[0..4], &(4 + 26 + 2i32).to_be_bytes());
        assert_eq!(&out[4..8], &2i32.to_be_bytes());
        let m = decode_message(&out.freeze().slice(8..)).unwrap();
        assert_eq!(m.timestamp_ns, 7);
        assert_eq!(m.attempts, 3);
        assert_eq!(m.id, id);
        assert_eq!(&m.body[..], b"hi");
    }
}
