//! File naming (identical to go-diskqueue) and directory-level helpers:
//! data/metadata/`.bad`/temp paths, listing a queue's data files, and
//! fsyncing the directory.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;

/// Where one queue's files live and what they are called.
#[derive(Debug)]
pub(crate) struct Layout {
    dir: PathBuf,
    name: String,
}

impl Layout {
    pub(crate) fn new(name: &str, dir: &Path) -> Result<Layout, Error> {
        if name.is_empty() || name.contains(['/', '\\', '\0']) {
            return Err(Error::InvalidName(name.to_string()));
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<name>.diskqueue.<%06d>.dat`
    pub(crate) fn data_file(&self, num: i64) -> PathBuf {
        self.dir
            .join(format!("{}.diskqueue.{:06}.dat", self.name, num))
    }

    /// `<data file>.bad`
    pub(crate) fn bad_file(&self, num: i64) -> PathBuf {
        self.dir
            .join(format!("{}.diskqueue.{:06}.dat.bad", self.name, num))
    }

    /// `<dir>/<name>.diskqueue.meta.dat`
    pub(crate) fn meta_file(&self) -> PathBuf {
        self.dir.join(format!("{}.diskqueue.meta.dat", self.name))
    }

    /// `<meta file>.<unique number>.tmp`, the staging file for an atomic
    /// metadata update (same scheme as go-diskqueue).
    pub(crate) fn tmp_meta_file(&self) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let unique =
            nanos ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("{}.diskqueue.meta.dat.{}.tmp", self.name, unique))
    }

    /// Numbers of this queue's data files present in the directory
    /// (`.bad` files, metadata and other queues' files excluded), sorted.
    pub(crate) fn list_data_files(&self) -> io::Result<Vec<i64>> {
        let prefix = format!("{}.diskqueue.", self.name);
        let mut nums = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let Some(digits) = file_name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".dat"))
            else {
                continue;
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(num) = digits.parse::<i64>() {
                nums.push(num);
            }
        }
        nums.sort_unstable();
        Ok(nums)
    }

    /// fsync the directory so renames/creations/removals are durable.
    pub(crate) fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

/// Options for creating queue files: read+write, mode 0600 like go-diskqueue.
pub(crate) fn rw_create_options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_go_diskqueue() {
        let l = Layout::new("topic:chan", Path::new("/data")).unwrap();
        assert_eq!(
            l.data_file(0),
            Path::new("/data/topic:chan.diskqueue.000000.dat")
        );
        assert_eq!(
            l.data_file(1234567),
            Path::new("/data/topic:chan.diskqueue.1234567.dat")
        );
        assert_eq!(
            l.bad_file(3),
            Path::new("/data/topic:chan.diskqueue.000003.dat.bad")
        );
        assert_eq!(
            l.meta_file(),
            Path::new("/data/topic:chan.diskqueue.meta.dat")
        );
        let tmp = l.tmp_meta_file();
        let tmp = tmp.to_str().unwrap();
        assert!(tmp.starts_with("/data/topic:chan.diskqueue.meta.dat."));
        assert!(tmp.ends_with(".tmp"));
    }

    #[test]
    fn rejects_path_like_names() {
        for bad in ["", "a/b", "a\\b", "a\0b"] {
            assert!(matches!(
                Layout::new(bad, Path::new("/x")),
                Err(Error::InvalidName(_))
            ));
        }
    }

    #[test]
    fn listing_ignores_other_queues_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "t.diskqueue.000000.dat",
            "t.diskqueue.000007.dat",
            "t.diskqueue.000001.dat.bad",
            "t.diskqueue.meta.dat",
            "t:c.diskqueue.000002.dat",
            "t.diskqueue.000003.diskqueue.000000.dat",
            "t.diskqueue..dat",
            "x",
        ] {
            fs::write(dir.path().join(f), b"").unwrap();
        }
        let l = Layout::new("t", dir.path()).unwrap();
        assert_eq!(l.list_data_files().unwrap(), vec![0, 7]);
    }
}
