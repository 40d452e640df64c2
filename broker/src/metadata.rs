//! `nsqd.dat`: which topics and channels exist and which are paused, so a restart
//! recreates them; and the lock that keeps a second nsqd off the same data path.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const METADATA_FILE: &str = "nsqd.dat";

/// The file's JSON, as nsqd v1.3.0 writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub topics: Vec<TopicMeta>,
    #[serde(default)]
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    #[serde(default)]
    pub paused: bool,
    /// `null` for a topic without (non-ephemeral) channels, as nsqd writes it.
    pub channels: Option<Vec<ChannelMeta>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMeta {
    pub name: String,
    #[serde(default)]
    pub paused: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot flock directory {path}: {reason}")]
    Lock { path: PathBuf, reason: String },
}

/// Reads `nsqd.dat`; a missing file is a fresh start (`None`), invalid JSON an error.
pub fn load(data_path: &Path) -> Result<Option<Metadata>, MetadataError> {
    let path = data_path.join(METADATA_FILE);
    let raw = match std::fs::read(&path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MetadataError::Read { path, source }),
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|source| MetadataError::Parse { path, source })
}

/// Writes `nsqd.dat` atomically: a 0600 temp file, fsync, rename.
pub fn save(data_path: &Path, meta: &Metadata) -> Result<(), MetadataError> {
    let path = data_path.join(METADATA_FILE);
    let tmp = data_path.join(format!("{METADATA_FILE}.{}.tmp", rand::random::<u32>()));
    let werr = |source| MetadataError::Write {
        path: path.clone(),
        source,
    };
    let json = serde_json::to_vec(meta).map_err(|e| werr(std::io::Error::other(e)))?;
    let write = || -> std::io::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        // Make the rename itself durable.
        if let Ok(dir) = File::open(data_path) {
            let _ = dir.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        werr(e)
    })
}

/// An exclusive lock on the data directory, held for the node's lifetime.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(data_path: &Path) -> Result<DirLock, MetadataError> {
        let err = |reason: String| MetadataError::Lock {
            path: data_path.to_path_buf(),
            reason,
        };
        let file = File::open(data_path).map_err(|e| err(e.to_string()))?;
        file.try_lock().map_err(|e| err(e.to_string()))?;
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_nsqd_shape() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let meta = Metadata {
            topics: vec![
                TopicMeta {
                    name: "a".into(),
                    paused: true,
                    channels: Some(vec![ChannelMeta {
                        name: "c".into(),
                        paused: false,
                    }]),
                },
                TopicMeta {
                    name: "b".into(),
                    paused: false,
                    channels: None,
                },
            ],
            version: "1.3.0".into(),
        };
        save(dir.path(), &meta).unwrap();
        let raw = std::fs::read_to_string(dir.path().join(METADATA_FILE)).unwrap();
        assert_eq!(
            raw,
            r#"{"topics":[{"name":"a","paused":true,"channels":[{"name":"c","paused":false}]},{"name":"b","paused":false,"channels":null}],"version":"1.3.0"}"#
        );
        assert_eq!(load(dir.path()).unwrap(), Some(meta));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(METADATA_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn invalid_json_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(METADATA_FILE), b"{nope").unwrap();
        assert!(matches!(load(dir.path()), Err(MetadataError::Parse { .. })));
    }

    #[test]
    fn second_lock_fails() {
        let dir = tempfile::tempdir().unwrap();
        let _held = DirLock::acquire(dir.path()).unwrap();
        let second = DirLock::acquire(dir.path()).unwrap_err();
        assert!(second.to_string().starts_with("cannot flock directory"));
    }
}
