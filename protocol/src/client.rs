//! Client-side encoders for V2 commands, shared by tests, benchmarks and the CLI.

use bytes::{BufMut, BytesMut};

use crate::message::MessageId;

fn line(out: &mut BytesMut, parts: &[&[u8]]) {
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.put_u8(b' ');
        }
        out.put_slice(p);
    }
    out.put_u8(b'\n');
}

fn sized(out: &mut BytesMut, body: &[u8]) {
    out.put_i32(body.len() as i32);
    out.put_slice(body);
}

/// `IDENTIFY\n` + size + JSON.
pub fn identify(out: &mut BytesMut, json: &[u8]) {
    line(out, &[b"IDENTIFY"]);
    sized(out, json);
}

/// `SUB <topic> <channel>\n`.
pub fn sub(out: &mut BytesMut, topic: &str, channel: &str) {
    line(out, &[b"SUB", topic.as_bytes(), channel.as_bytes()]);
}

/// `PUB <topic>\n` + size + body.
pub fn publish(out: &mut BytesMut, topic: &str, body: &[u8]) {
    line(out, &[b"PUB", topic.as_bytes()]);
    sized(out, body);
}

/// `DPUB <topic> <defer_ms>\n` + size + body.
pub fn dpub(out: &mut BytesMut, topic: &str, defer_ms: u64, body: &[u8]) {
    line(
        out,
        &[b"DPUB", topic.as_bytes(), defer_ms.to_string().as_bytes()],
    );
    sized(out, body);
}

/// `MPUB <topic>\n` + body size + count + each (size + body).
pub fn mpub<B: AsRef<[u8]>>(out: &mut BytesMut, topic: &str, bodies: &[B]) {
    line(out, &[b"MPUB", topic.as_bytes()]);
    let inner: usize = 4 + bodies.iter().map(|b| 4 + b.as_ref().len()).sum::<usize>();
    out.put_i32(inner as i32);
    out.put_i32(bodies.len() as i32);
    for b in bodies {
        sized(out, b.as_ref());
    }
}

/// `RDY <count>\n`.
pub fn rdy(out: &mut BytesMut, count: u64) {
    line(out, &[b"RDY", count.to_string().as_bytes()]);
}

/// `FIN <id>\n`.
pub fn fin(out: &mut BytesMut, id: &MessageId) {
    line(out, &[b"FIN", id.as_bytes()]);
}

/// `REQ <id> <timeout_ms>\n`.
pub fn req(out: &mut BytesMut, id: &MessageId, timeout_ms: u64) {
    line(
        out,
        &[b"REQ", id.as_bytes(), timeout_ms.to_string().as_bytes()],
    );
}

/// `TOUCH <id>\n`.
pub fn touch(out: &mut BytesMut, id: &MessageId) {
    line(out, &[b"TOUCH", id.as_bytes()]);
}

/// `CLS\n`.
pub fn cls(out: &mut BytesMut) {
    line(out, &[b"CLS"]);
}

/// `NOP\n`.
pub fn nop(out: &mut BytesMut) {
    line(out, &[b"NOP"]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    #[test]
    fn mpub_encoding_matches_the_server_framing() {
        let mut out = BytesMut::new();
        mpub(&mut out, "t", &[b"ab".as_slice(), b"c"]);
        let nl = wire::find_line(&out).unwrap().unwrap();
        assert_eq!(&out[..nl], b"MPUB t");
        let layout = wire::mpub_body(&out[nl + 1..], 10, 100).unwrap().unwrap();
        assert_eq!(layout.messages.len(), 2);
        assert_eq!(layout.consumed, out.len() - nl - 1);
    }
}
