//! A channel's deferred messages (DPUB, REQ with a delay), ordered by due time.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::message::Message;

struct Deferred {
    due: Instant,
    seq: u64,
    msg: Message,
}

impl PartialEq for Deferred {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due && self.seq == other.seq
    }
}
impl Eq for Deferred {}
impl PartialOrd for Deferred {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Deferred {
    /// Reversed so the max-heap yields the earliest due message first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.due.cmp(&self.due).then(other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
pub struct DeferredQueue {
    heap: BinaryHeap<Deferred>,
    seq: u64,
}

impl DeferredQueue {
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub fn push(&mut self, msg: Message, due: Instant) {
        self.seq += 1;
        self.heap.push(Deferred {
            due,
            seq: self.seq,
            msg,
        });
    }

    /// Moves every message due at or before `now` into `out`.
    pub fn pop_due(&mut self, now: Instant, out: &mut Vec<Message>) {
        while self.heap.peek().is_some_and(|d| d.due <= now) {
            if let Some(d) = self.heap.pop() {
                out.push(d.msg);
            }
        }
    }

    pub fn drain(&mut self) -> Vec<Message> {
        self.heap.drain().map(|d| d.msg).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use nsq_protocol::MessageId;
    use std::time::Duration;

    #[test]
    fn yields_in_due_order() {
        let now = Instant::now();
        let mut q = DeferredQueue::default();
        for (i, ms) in [30u64, 10, 20].iter().enumerate() {
            let m = Message::new(MessageId::from_u64(i as u64), Bytes::new(), 0);
            q.push(m, now + Duration::from_millis(*ms));
        }
        let mut out = Vec::new();
        q.pop_due(now + Duration::from_millis(20), &mut out);
        let ids: Vec<_> = out.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![MessageId::from_u64(1), MessageId::from_u64(2)]);
        assert_eq!(q.len(), 1);
    }
}
