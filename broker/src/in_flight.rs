//! A channel's in-flight messages: by ID for FIN/REQ/TOUCH, by deadline for timeouts.
//!
//! The deadline heap is lazy: FIN and TOUCH leave stale heap entries behind, recognised
//! on pop because their deadline no longer matches the entry's. The heap is rebuilt when
//! stale entries outnumber live ones, so memory stays proportional to what is in flight.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nsq_protocol::MessageId;

use crate::client::ClientShared;
use crate::message::Message;

/// Hashes a 16-byte message ID cheaply: a multiply-rotate over the bytes, then
/// murmur3's 64-bit finaliser. The finaliser matters: consecutive IDs differ only in a
/// few hex characters, and hashbrown picks buckets from the low bits, so without full
/// avalanche every in-flight message of a busy channel would land in one bucket.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

pub type IdMap<V> = HashMap<MessageId, V, BuildHasherDefault<IdHasher>>;

/// A delivered message awaiting FIN, REQ or its timeout.
#[derive(Debug)]
pub struct InFlight {
    pub msg: Message,
    pub client: Arc<ClientShared>,
    pub deadline: Instant,
    pub delivered_at: Instant,
}

/// Why FIN/REQ/TOUCH could not act on an ID (the text follows nsqd's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InFlightError {
    #[error("ID not in flight")]
    NotInFlight,
    #[error("client does not own message")]
    NotOwner,
}

#[derive(Default)]
pub struct InFlightQueue {
    by_id: IdMap<InFlight>,
    by_deadline: BinaryHeap<Reverse<(Instant, MessageId)>>,
}

impl InFlightQueue {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn insert(&mut self, entry: InFlight) {
        self.by_deadline
            .push(Reverse((entry.deadline, entry.msg.id)));
        self.by_id.insert(entry.msg.id, entry);
    }

    /// Removes the message if `client_id` owns it.
    pub fn remove(&mut self, client_id: u64, id: &MessageId) -> Result<InFlight, InFlightError> {
        match self.by_id.get(id) {
            None => return Err(InFlightError::NotInFlight),
            Some(e) if e.client.id != client_id => return Err(InFlightError::NotOwner),
            Some(_) => {}
        }
        let entry = self.by_id.remove(id).ok_or(InFlightError::NotInFlight)?;
        self.compact_if_stale();
        Ok(entry)
    }

    /// TOUCH: a new deadline of now + `timeout`, never past delivery + `max_timeout`.
    pub fn touch(
        &mut self,
        client_id: u64,
        id: &MessageId,
        now: Instant,
        timeout: Duration,
        max_timeout: Duration,
    ) -> Result<(), InFlightError> {
        let entry = self.by_id.get_mut(id).ok_or(InFlightError::NotInFlight)?;
        if entry.client.id != client_id {
            return Err(InFlightError::NotOwner);
        }
        let cap = entry.delivered_at + max_timeout;
        let deadline = (now + timeout).min(cap);
        entry.deadline = deadline;
        self.by_deadline.push(Reverse((deadline, *id)));
        self.compact_if_stale();
        Ok(())
    }

    /// Removes and returns every message whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant, out: &mut Vec<InFlight>) {
        while let Some(Reverse((deadline, id))) = self.by_deadline.peek().copied() {
            if deadline > now {
                break;
            }
            self.by_deadline.pop();
            if self.by_id.get(&id).is_some_and(|e| e.deadline == deadline) {
                if let Some(e) = self.by_id.remove(&id) {
                    out.push(e);
                }
            }
        }
    }

    /// Empties the queue, returning everything that was in flight.
    pub fn drain(&mut self) -> Vec<InFlight> {
        self.by_deadline.clear();
        self.by_id.drain().map(|(_, e)| e).collect()
    }

    fn compact_if_stale(&mut self) {
        if self.by_deadline.len() > 2 * self.by_id.len() + 1024 {
            self.by_deadline = self
                .by_id
                .values()
                .map(|e| Reverse((e.deadline, e.msg.id)))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Consecutive IDs must spread over buckets: count distinct low 12 bits over 4096
    /// consecutive IDs (a good hash leaves few collisions; the broken one had 1 value).
    #[test]
    fn consecutive_ids_spread_over_low_bits() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let g = crate::guid::IdGenerator::new(7);
        let low: std::collections::HashSet<u64> = g
            .next_n(4096)
            .map(|id| build.hash_one(id) & 0xfff)
            .collect();
        assert!(low.len() > 2000, "only {} distinct buckets", low.len());
    }
}
