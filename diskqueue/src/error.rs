//! The crate's error type, returned by every fallible queue operation.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong opening or operating a [`crate::DiskQueue`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("diskqueue: cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being attempted ("open data file", "write", "fsync", ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `put` of a payload whose length is outside `min..=max`; nothing was
    /// written.
    #[error("diskqueue: invalid message size {size} (allowed {min}..={max})")]
    InvalidSize { size: usize, min: i32, max: i32 },
    /// The metadata file exists but cannot be parsed.
    #[error("diskqueue: corrupt metadata file {}: {reason}", path.display())]
    CorruptMetadata { path: PathBuf, reason: String },
    /// The queue name cannot be used as a file name prefix.
    #[error("diskqueue: invalid queue name {0:?}")]
    InvalidName(String),
    /// The [`crate::Options`] are unusable.
    #[error("diskqueue: invalid options: {0}")]
    InvalidOptions(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}
