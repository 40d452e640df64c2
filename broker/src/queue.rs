//! The queue every topic and channel holds: a bounded memory part that overflows to
//! disk (or, for `#ephemeral` names, is discarded past the bound).

use std::collections::VecDeque;

use crate::message::Message;

/// Why a message could not be queued. The broker reports it to the publisher and marks
/// itself unhealthy; a message is never silently dropped on a disk error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// Where messages beyond the memory bound go.
pub enum Overflow {
    /// `#ephemeral`: messages past the memory bound are discarded, as in nsqd.
    Discard,
    /// A disk queue, shared layout with go-diskqueue.
    Disk(Box<nsq_diskqueue::DiskQueue>),
    /// The disk queue could not be opened: overflow fails with the reason, and each
    /// later overflow tries to open it again (the disk may come back).
    Unavailable(String, Box<DiskSpec>),
}

/// Everything needed to open a disk queue.
#[derive(Debug, Clone)]
pub struct DiskSpec {
    pub name: String,
    pub data_path: std::path::PathBuf,
    pub opts: nsq_diskqueue::Options,
}

impl DiskSpec {
    /// Opens the disk queue, or an [`Overflow::Unavailable`] carrying the error.
    pub fn open(self) -> Overflow {
        match nsq_diskqueue::DiskQueue::open(&self.name, &self.data_path, self.opts.clone()) {
            Ok(dq) => Overflow::Disk(Box::new(dq)),
            Err(e) => Overflow::Unavailable(
                format!("disk queue {} unavailable: {e}", self.name),
                Box::new(self),
            ),
        }
    }
}

/// A memory queue of at most `mem_capacity` messages in front of an [`Overflow`].
pub struct MessageQueue {
    mem: VecDeque<Message>,
    mem_capacity: usize,
    overflow: Overflow,
    /// Alternates reads between memory and disk so neither starves (nsqd selects on both).
    disk_turn: bool,
}

impl MessageQueue {
    pub fn new(mem_capacity: usize, overflow: Overflow) -> MessageQueue {
        MessageQueue {
            mem: VecDeque::with_capacity(mem_capacity.min(1024)),
            mem_capacity,
            overflow,
            disk_turn: false,
        }
    }

    /// Queues one message: memory while there is room, else the overflow.
    pub fn push(&mut self, msg: Message) -> Result<(), QueueError> {
        if self.mem.len() < self.mem_capacity {
            self.mem.push_back(msg);
            return Ok(());
        }
        match &mut self.overflow {
            Overflow::Discard => Ok(()),
            Overflow::Disk(dq) => dq
                .put(&msg.to_disk_bytes())
                .map_err(|e| QueueError(e.to_string())),
            Overflow::Unavailable(_, spec) => {
                self.overflow = (**spec).clone().open();
                match &mut self.overflow {
                    Overflow::Disk(dq) => dq
                        .put(&msg.to_disk_bytes())
                        .map_err(|e| QueueError(e.to_string())),
                    Overflow::Unavailable(reason, _) => Err(QueueError(reason.clone())),
                    Overflow::Discard => Ok(()),
                }
            }
        }
    }

    /// Takes the next message, alternating between memory and disk when both hold some.
    pub fn pop(&mut self) -> Option<Message> {
        let disk_depth = self.backend_depth();
        if disk_depth > 0 && (self.disk_turn || self.mem.is_empty()) {
            self.disk_turn = false;
            if let Some(m) = self.pop_disk() {
                return Some(m);
            }
        }
        self.disk_turn = true;
        self.mem.pop_front()
    }

    fn pop_disk(&mut self) -> Option<Message> {
        let Overflow::Disk(dq) = &mut self.overflow else {
            return None;
        };
        loop {
            match dq.read() {
                Ok(Some(raw)) => match Message::from_disk_bytes(raw) {
                    Some(m) => return Some(m),
                    None => {
                        tracing::warn!("skipping undecodable disk record");
                        continue;
                    }
                },
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!(error = %e, "disk queue read failed");
                    return None;
                }
            }
        }
    }

    /// Messages queued, memory plus disk (in-flight and deferred are not counted).
    pub fn depth(&self) -> i64 {
        self.mem.len() as i64 + self.backend_depth()
    }

    /// Messages queued on disk.
    pub fn backend_depth(&self) -> i64 {
        match &self.overflow {
            Overflow::Disk(dq) => dq.depth(),
            Overflow::Discard | Overflow::Unavailable(..) => 0,
        }
    }

    pub fn mem_len(&self) -> usize {
        self.mem.len()
    }

    /// Drops every queued message, memory and disk.
    pub fn clear(&mut self) -> Result<(), QueueError> {
        self.mem.clear();
        match &mut self.overflow {
            Overflow::Disk(dq) => dq.empty().map_err(|e| QueueError(e.to_string())),
            Overflow::Discard | Overflow::Unavailable(..) => Ok(()),
        }
    }

    /// Writes memory-held messages (and `extra`, e.g. in-flight and deferred ones) to
    /// disk, then syncs and closes the disk queue: the shutdown path. Ephemeral queues
    /// drop their contents.
    pub fn persist_and_close(
        mut self,
        extra: impl IntoIterator<Item = Message>,
    ) -> Result<(), QueueError> {
        let Overflow::Disk(mut dq) = std::mem::replace(&mut self.overflow, Overflow::Discard)
        else {
            return Ok(());
        };
        let mut first_err = None;
        for msg in self.mem.drain(..).chain(extra) {
            if let Err(e) = dq.put(&msg.to_disk_bytes()) {
                first_err.get_or_insert(QueueError(e.to_string()));
            }
        }
        if let Err(e) = dq.close() {
            first_err.get_or_insert(QueueError(e.to_string()));
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Removes the disk files of a deleted topic or channel.
    pub fn delete(mut self) -> Result<(), QueueError> {
        self.mem.clear();
        match std::mem::replace(&mut self.overflow, Overflow::Discard) {
            Overflow::Disk(dq) => dq.delete().map_err(|e| QueueError(e.to_string())),
            Overflow::Discard | Overflow::Unavailable(..) => Ok(()),
        }
    }

    /// Periodic fsync when `--sync-timeout` has passed with unsynced operations.
    pub fn sync_if_due(&mut self) -> Result<(), QueueError> {
        match &mut self.overflow {
            Overflow::Disk(dq) => dq.sync_if_due().map_err(|e| QueueError(e.to_string())),
            Overflow::Discard | Overflow::Unavailable(..) => Ok(()),
        }
    }
}
