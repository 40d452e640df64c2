//! Server→client frames: `[i32 size][i32 frame_type][data]`, size counting the type field.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The three frame types of protocol V2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    Response = 0,
    Error = 1,
    Message = 2,
}

impl FrameType {
    pub fn from_i32(v: i32) -> Option<FrameType> {
        match v {
            0 => Some(FrameType::Response),
            1 => Some(FrameType::Error),
            2 => Some(FrameType::Message),
            _ => None,
        }
    }
}

/// Body of the heartbeat response frame.
pub const HEARTBEAT: &[u8] = b"_heartbeat_";
/// Body of the plain success response.
pub const OK: &[u8] = b"OK";
/// Response to CLS.
pub const CLOSE_WAIT: &[u8] = b"CLOSE_WAIT";

/// Appends one frame to `out`.
pub fn put_frame(out: &mut BytesMut, frame_type: FrameType, data: &[u8]) {
    out.reserve(8 + data.len());
    out.put_i32(4 + data.len() as i32);
    out.put_i32(frame_type as i32);
    out.put_slice(data);
}

/// A frame decoded by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub frame_type: FrameType,
    pub data: Bytes,
}

/// Why a byte stream is not a valid frame sequence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {0} is invalid")]
    BadSize(i32),
    #[error("unknown frame type {0}")]
    BadType(i32),
}

/// Client side: takes one whole frame off the front of `buf`, or `Ok(None)` when more
/// bytes are needed (nothing is consumed then).
pub fn take_frame(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 4 {
        return Err(FrameError::BadSize(size));
    }
    let total = 4 + size as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let mut whole = buf.split_to(total);
    whole.advance(4);
    let raw_type = whole.get_i32();
    let frame_type = FrameType::from_i32(raw_type).ok_or(FrameError::BadType(raw_type))?;
    Ok(Some(Frame {
        frame_type,
        data: whole.freeze(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial() {
        let mut out = BytesMut::new();
        put_frame(&mut out, FrameType::Response, b"OK");
        assert_eq!(&out[..], b"\x00\x00\x00\x06\x00\x00\x00\x00OK");
        put_frame(&mut out, FrameType::Error, b"E_INVALID x");
        let mut partial = BytesMut::from(&out[..5]);
        assert_eq!(take_frame(&mut partial), Ok(None));
        assert_eq!(partial.len(), 5);
        let f = take_frame(&mut out).unwrap().unwrap();
        assert_eq!(f.frame_type, FrameType::Response);
        assert_eq!(&f.data[..], b"OK");
        let f = take_frame(&mut out).unwrap().unwrap();
        assert_eq!(f.frame_type, FrameType::Error);
        assert!(out.is_empty());
    }

    #[test]
    fn rejects_bad_sizes_and_types() {
        let mut b = BytesMut::from(&b"\x00\x00\x00\x02\x00\x00"[..]);
        assert_eq!(take_frame(&mut b), Err(FrameError::BadSize(2)));
        let mut b = BytesMut::from(&b"\x00\x00\x00\x04\x00\x00\x00\x09"[..]);
        assert_eq!(take_frame(&mut b), Err(FrameError::BadType(9)));
    }
}
