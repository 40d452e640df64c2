//! nsq-diskqueue: a segmented on-disk FIFO queue, file-format compatible with
//! go-diskqueue v1.1.0 (the version nsqd v1.3.0 uses), so an existing nsqd
//! `--data-path` can be adopted as is.
//!
//! # On-disk format
//!
//! For a queue called `<name>` (nsqd uses the topic name, or
//! `<topic>:<channel>` for a channel) living in directory `<dir>`:
//!
//! * **Data files** `<dir>/<name>.diskqueue.<n>.dat`, where `<n>` is the file
//!   number printed as a zero-padded decimal of at least six digits
//!   (`%06d`: `000000`, `000001`, ..., `1234567`). Each file is a plain
//!   concatenation of records; there is no file header.
//! * **Record**: a big-endian signed 32-bit payload length followed by the
//!   payload bytes. A length outside `min_msg_size..=max_msg_size` is
//!   corruption.
//! * **Rolling**: before a record of `4 + len` bytes is appended, if the
//!   current file is non-empty and `writePos + 4 + len > max_bytes_per_file`,
//!   writing moves on to file `n + 1` (so a file never exceeds
//!   `max_bytes_per_file` unless it holds a single oversized record).
//!   Readers treat a file that is no longer the write file as complete and
//!   use its actual size as its end.
//! * **Fully-read files are deleted.** A file that cannot be read (bad
//!   record length, truncated record, I/O error while reading) is renamed to
//!   `<file>.bad` and reading continues with the next file.
//! * **Metadata** `<dir>/<name>.diskqueue.meta.dat`, ASCII text:
//!   `<depth>\n<readFileNum>,<readPos>\n<writeFileNum>,<writePos>\n`,
//!   written to `<meta>.<random>.tmp`, fsynced and renamed over the old file.
//!
//! Data file and metadata are fsynced every `sync_every` operations (reads
//! and writes both count), when [`DiskQueue::sync_if_due`] finds that
//! `sync_timeout` has elapsed with activity since the last sync, when the
//! write file rolls or the reader moves to a new file, and on close.
//!
//! The queue is synchronous and single-owner (the caller serialises access,
//! e.g. with a mutex); it starts no threads.

mod error;
mod layout;
mod meta;
mod queue;

pub use error::Error;
pub use queue::DiskQueue;

use std::time::Duration;

/// Tuning knobs, mirroring go-diskqueue's constructor arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// A data file rolls to the next number before a record would push it
    /// past this many bytes (nsqd `--max-bytes-per-file`, default 100 MiB).
    pub max_bytes_per_file: i64,
    /// Smallest valid payload length (nsqd passes 26: message header size).
    pub min_msg_size: i32,
    /// Largest valid payload length (nsqd passes `--max-msg-size` + 26).
    pub max_msg_size: i32,
    /// fsync after this many reads + writes (nsqd `--sync-every`, default
    /// 2500). Values `<= 1` sync after every operation.
    pub sync_every: i64,
    /// [`DiskQueue::sync_if_due`] syncs when this long has passed since the
    /// last sync and anything happened (nsqd `--sync-timeout`, default 2s).
    pub sync_timeout: Duration,
}

impl Default for Options {
    /// nsqd v1.3.0 defaults.
    fn default() -> Self {
        Options {
            max_bytes_per_file: 100 * 1024 * 1024,
            min_msg_size: 26,
            max_msg_size: 1024 * 1024 + 26,
            sync_every: 2500,
            sync_timeout: Duration::from_secs(2),
        }
    }
}

impl Options {
    fn validate(&self) -> Result<(), Error> {
        if self.max_bytes_per_file <= 0 {
            return Err(Error::InvalidOptions(format!(
                "max_bytes_per_file must be positive (got {})",
                self.max_bytes_per_file
            )));
        }
        if self.min_msg_size < 0 || self.max_msg_size < self.min_msg_size {
            return Err(Error::InvalidOptions(format!(
                "need 0 <= min_msg_size <= max_msg_size (got {} and {})",
                self.min_msg_size, self.max_msg_size
            )));
        }
        Ok(())
    }
}
