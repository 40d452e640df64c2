//! Message IDs: nsqd's snowflake layout, unique per node, issued without a lock.
//!
//! An ID is `(ts << 22) | (node_id << 12) | seq` where `ts = (now_ns >> 20) - EPOCH`
//! (≈1 ms ticks) and `seq` is 12 bits. nsqd errors when a tick's 4096 sequence numbers
//! run out; here the generator simply borrows the next tick, so IDs stay unique and
//! increasing however fast messages arrive, and a whole MPUB batch is one atomic add.

use std::sync::atomic::{AtomicU64, Ordering};

use nsq_protocol::MessageId;

use crate::message::now_ns;

/// nsqd's custom epoch, in its ≈1 ms ticks.
const TWEPOCH: i64 = 1_288_834_974_288;
const SEQ_BITS: u32 = 12;
const NODE_BITS: u32 = 10;

/// Issues message IDs for one nsqd node.
#[derive(Debug)]
pub struct IdGenerator {
    node_id: u64,
    /// Last ticket issued: `(ts << 12) | seq`.
    last: AtomicU64,
}

impl IdGenerator {
    pub fn new(node_id: u16) -> IdGenerator {
        IdGenerator {
            node_id: u64::from(node_id) & ((1 << NODE_BITS) - 1),
            last: AtomicU64::new(0),
        }
    }

    fn tick_now() -> u64 {
        ((now_ns() >> 20) - TWEPOCH).max(0) as u64
    }

    /// Reserves `n` consecutive tickets; returns the first.
    fn reserve(&self, n: u64) -> u64 {
        let floor = Self::tick_now() << SEQ_BITS;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let first = (last + 1).max(floor);
            match self.last.compare_exchange_weak(
                last,
                first + n - 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return first,
                Err(actual) => last = actual,
            }
        }
    }

    fn id_of(&self, ticket: u64) -> MessageId {
        let ts = ticket >> SEQ_BITS;
        let seq = ticket & ((1 << SEQ_BITS) - 1);
        MessageId::from_u64((ts << (SEQ_BITS + NODE_BITS)) | (self.node_id << SEQ_BITS) | seq)
    }

    /// One new ID.
    pub fn next(&self) -> MessageId {
        self.id_of(self.reserve(1))
    }

    /// `n` new IDs with one atomic operation.
    pub fn next_n(&self, n: usize) -> impl Iterator<Item = MessageId> + '_ {
        let first = if n == 0 { 0 } else { self.reserve(n as u64) };
        (0..n as u64).map(move |i| self.id_of(first + i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_hex_and_carry_the_node() {
        let g = IdGenerator::new(513);
        let mut seen = HashSet::new();
        for id in g.next_n(20_000).chain((0..20_000).map(|_| g.next())) {
            assert!(id
                .0
                .iter()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            let n = u64::from_str_radix(std::str::from_utf8(&id.0).unwrap(), 16).unwrap();
            assert_eq!((n >> 12) & 0x3ff, 513);
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn unique_across_threads() {
        let g = std::sync::Arc::new(IdGenerator::new(1));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || (0..10_000).map(|_| g.next()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                assert!(all.insert(id));
            }
        }
        assert_eq!(all.len(), 40_000);
    }
}
