//! Server-side framing of V2 client commands: lines, parameters and sized bodies.
//!
//! Framing happens in two passes over a buffer (the mini-redis habit): each function
//! either reports that more bytes are needed (`Ok(None)`, nothing consumed), returns how
//! far a complete element reaches, or returns the exact protocol error nsqd v1.3.0 sends
//! for that input. Errors are decided from the bytes seen so far, in nsqd's order, so a
//! client that sends an oversize size prefix learns of it without sending the body.

use std::ops::Range;

use crate::error::{ErrorCode, ProtocolError};

/// nsqd reads command lines through a 16 KiB buffer; a longer line drops the connection.
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// A command line longer than [`MAX_LINE_LEN`]: the connection is dropped without a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("command line longer than {MAX_LINE_LEN} bytes")]
pub struct LineTooLong;

/// Finds the end of the first command line: `Ok(Some(i))` where `buf[i] == b'\n'`.
pub fn find_line(buf: &[u8]) -> Result<Option<usize>, LineTooLong> {
    let window = &buf[..buf.len().min(MAX_LINE_LEN)];
    match memchr::memchr(b'\n', window) {
        Some(i) => Ok(Some(i)),
        None if buf.len() >= MAX_LINE_LEN => Err(LineTooLong),
        None => Ok(None),
    }
}

/// Splits a line (without its `\n`) into parameters: a trailing `\r` is dropped and the
/// line is split on single spaces, so two spaces yield an empty parameter.
pub fn split_params(line: &[u8]) -> Vec<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.split(|b| *b == b' ').collect()
}

/// Reads a big-endian i32 at `at`, if present.
pub fn i32_at(buf: &[u8], at: usize) -> Option<i32> {
    let b = buf.get(at..at + 4)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Which error texts a size-prefixed body uses: PUB/DPUB speak of a "message body",
/// IDENTIFY/AUTH/MPUB of a "body".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `E_BAD_MESSAGE <CMD> invalid message body size N` / `<CMD> message too big N > MAX`.
    Message,
    /// `E_BAD_BODY <CMD> invalid body size N` / `<CMD> body too big N > MAX`.
    Body,
}

/// A size-prefixed body starting at `buf[0]`: returns the body's byte range within `buf`
/// (the element ends at `range.end`).
pub fn sized_body(
    buf: &[u8],
    cmd: &str,
    kind: BodyKind,
    max: i64,
) -> Result<Option<Range<usize>>, ProtocolError> {
    let Some(size) = i32_at(buf, 0) else {
        return Ok(None);
    };
    let (code, invalid, too_big) = match kind {
        BodyKind::Message => (
            ErrorCode::BadMessage,
            "invalid message body size",
            "message too big",
        ),
        BodyKind::Body => (ErrorCode::BadBody, "invalid body size", "body too big"),
    };
    if size <= 0 {
        return Err(ProtocolError::new(code, format!("{cmd} {invalid} {size}")));
    }
    if i64::from(size) > max {
        return Err(ProtocolError::new(
            code,
            format!("{cmd} {too_big} {size} > {max}"),
        ));
    }
    let end = 4 + size as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some(4..end))
}

/// The framed MPUB payload after the command line: the byte ranges of each message body
/// within `buf` and the total length consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpubLayout {
    pub messages: Vec<Range<usize>>,
    pub consumed: usize,
}

/// Frames an MPUB payload: `[i32 body_size][i32 count]count×([i32 size][bytes])`.
///
/// As in nsqd, the outer size is only range-checked and the inner structure drives the
/// parse; unlike nsqd, the inner structure may not run past the declared body size
/// (nsqd would keep reading the socket), which bounds what a hostile client can make us
/// buffer. Running past it reports nsqd's own "failed to read" errors.
pub fn mpub_body(
    buf: &[u8],
    max_msg_size: i64,
    max_body_size: i64,
) -> Result<Option<MpubLayout>, ProtocolError> {
    let Some(body_size) = i32_at(buf, 0) else {
        return Ok(None);
    };
    if body_size <= 0 {
        return Err(ProtocolError::new(
            ErrorCode::BadBody,
            format!("MPUB invalid body size {body_size}"),
        ));
    }
    if i64::from(body_size) > max_body_size {
        return Err(ProtocolError::new(
            ErrorCode::BadBody,
            format!("MPUB body too big {body_size} > {max_body_size}"),
        ));
    }
    let limit = 4 + body_size as usize;
    let short = |what: String| ProtocolError::new(ErrorCode::BadMessage, what);
    if limit < 8 {
        return Err(ProtocolError::new(
            ErrorCode::BadBody,
            "MPUB failed to read message count",
        ));
    }
    let Some(count) = i32_at(buf, 4) else {
        return Ok(None);
    };
    let max_messages = (max_body_size - 4) / 5;
    if count <= 0 || i64::from(count) > max_messages {
        return Err(ProtocolError::new(
            ErrorCode::BadBody,
            format!("MPUB invalid message count {count}"),
        ));
    }
    let mut messages = Vec::with_capacity(count as usize);
    let mut at = 8usize;
    for i in 0..count {
        if at + 4 > limit {
            return Err(short(format!("MPUB failed to read message({i}) body size")));
        }
        let Some(size) = i32_at(buf, at) else {
            return Ok(None);
        };
        if size <= 0 {
            return Err(short(format!("MPUB invalid message({i}) body size {size}")));
        }
        if i64::from(size) > max_msg_size {
            return Err(short(format!(
                "MPUB message too big {size} > {max_msg_size}"
            )));
        }
        let start = at + 4;
        let end = start + size as usize;
        if end > limit {
            return Err(short("MPUB failed to read message body".to_string()));
        }
        if end > buf.len() {
            return Ok(None);
        }
        messages.push(start..end);
        at = end;
    }
    Ok(Some(MpubLayout {
        messages,
        consumed: at,
    }))
}

/// Parses a decimal the way nsqd's `protocol.ByteToBase10` does: ASCII digits only (no
/// sign, no spaces); the empty string is 0 and overflow wraps, as in Go.
pub fn parse_base10(raw: &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    for &b in raw {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
    }
    Some(n)
}

/// Quotes a string the way Go's `%q` does for the names nsqd echoes in errors.
pub fn go_quote(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len() + 2);
    out.push('"');
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\u{b}' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if c.is_control() => {
                    let n = c as u32;
                    if n <= 0xffff {
                        out.push_str(&format!("\\u{n:04x}"))
                    } else {
                        out.push_str(&format!("\\U{n:08x}"))
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(find_line(b"NOP"), Ok(None));
        assert_eq!(find_line(b"NOP\nRDY"), Ok(Some(3)));
        assert_eq!(find_line(&vec![b'a'; MAX_LINE_LEN]), Err(LineTooLong));
        let mut ok = vec![b'a'; MAX_LINE_LEN - 1];
        ok.push(b'\n');
        assert_eq!(find_line(&ok), Ok(Some(MAX_LINE_LEN - 1)));
        assert_eq!(split_params(b"SUB a b\r"), vec![&b"SUB"[..], b"a", b"b"]);
        assert_eq!(split_params(b"SUB  b"), vec![&b"SUB"[..], b"", b"b"]);
    }

    #[test]
    fn sized_bodies() {
        let mut buf = 3i32.to_be_bytes().to_vec();
        assert_eq!(sized_body(&buf, "PUB", BodyKind::Message, 10), Ok(None));
        buf.extend_from_slice(b"abc");
        assert_eq!(
            sized_body(&buf, "PUB", BodyKind::Message, 10),
            Ok(Some(4..7))
        );
        let zero = 0i32.to_be_bytes();
        assert_eq!(
            sized_body(&zero, "PUB", BodyKind::Message, 10)
                .unwrap_err()
                .to_string(),
            "E_BAD_MESSAGE PUB invalid message body size 0"
        );
        let big = 11i32.to_be_bytes();
        assert_eq!(
            sized_body(&big, "IDENTIFY", BodyKind::Body, 10)
                .unwrap_err()
                .to_string(),
            "E_BAD_BODY IDENTIFY body too big 11 > 10"
        );
    }

    fn mpub(msgs: &[&[u8]]) -> Vec<u8> {
        let mut inner = (msgs.len() as i32).to_be_bytes().to_vec();
        for m in msgs {
            inner.extend_from_slice(&(m.len() as i32).to_be_bytes());
            inner.extend_from_slice(m);
        }
        let mut out = (inner.len() as i32).to_be_bytes().to_vec();
        out.extend(inner);
        out
    }

    #[test]
    fn mpub_layouts_and_errors() {
        let buf = mpub(&[b"a", b"bc"]);
        let layout = mpub_body(&buf, 100, 1000).unwrap().unwrap();
        assert_eq!(layout.messages, vec![12..13, 17..19]);
        assert_eq!(layout.consumed, buf.len());
        assert_eq!(mpub_body(&buf[..buf.len() - 1], 100, 1000), Ok(None));
        let err = |b: &[u8]| mpub_body(b, 1, 1000).unwrap_err().to_string();
        assert_eq!(
            err(&mpub(&[b"a", b"bc"])),
            "E_BAD_MESSAGE MPUB message too big 2 > 1"
        );
        let mut zero = mpub(&[b"a"]);
        zero[8..12].copy_from_slice(&0i32.to_be_bytes());
        assert_eq!(
            err(&zero),
            "E_BAD_MESSAGE MPUB invalid message(0) body size 0"
        );
        let mut count = mpub(&[b"a"]);
        count[4..8].copy_from_slice(&0i32.to_be_bytes());
        assert_eq!(err(&count), "E_BAD_BODY MPUB invalid message count 0");
        assert_eq!(
            mpub_body(&(2000i32.to_be_bytes()), 1, 1000)
                .unwrap_err()
                .to_string(),
            "E_BAD_BODY MPUB body too big 2000 > 1000"
        );
    }

    #[test]
    fn base10_like_go() {
        assert_eq!(parse_base10(b"2500"), Some(2500));
        assert_eq!(parse_base10(b"-1"), None);
        assert_eq!(parse_base10(b" 1"), None);
        assert_eq!(parse_base10(b""), Some(0));
        assert_eq!(parse_base10(b"18446744073709551616"), Some(0));
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote(b"abc"), "\"abc\"");
        assert_eq!(go_quote(b"a b\"c\\"), "\"a b\\\"c\\\\\"");
        assert_eq!(go_quote(b"\n\x01\xff"), "\"\\n\\x01\\xff\"");
    }
}
