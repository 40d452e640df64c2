//! The metadata file: its text encoding
//! (`<depth>\n<readFileNum>,<readPos>\n<writeFileNum>,<writePos>\n`),
//! parsing, loading and atomic persistence (temp file + fsync + rename).

use std::fs;
use std::io::{self, Write};

use tracing::debug;

use crate::layout::{rw_create_options, Layout};
use crate::Error;

/// The persisted queue state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Meta {
    pub depth: i64,
    pub read_file_num: i64,
    pub read_pos: i64,
    pub write_file_num: i64,
    pub write_pos: i64,
}

impl Meta {
    /// Exactly go-diskqueue's `"%d\n%d,%d\n%d,%d\n"`.
    pub(crate) fn encode(&self) -> String {
        format!(
            "{}\n{},{}\n{},{}\n",
            self.depth, self.read_file_num, self.read_pos, self.write_file_num, self.write_pos
        )
    }

    /// Parse the text form. Like Go's `Fscanf`, blanks around numbers and
    /// anything after the third line are ignored. Negative file numbers or
    /// positions are rejected (they cannot describe real files).
    pub(crate) fn parse(text: &str) -> Result<Meta, String> {
        let mut lines = text.split('\n');
        let mut next_line = |what: &str| {
            lines
                .next()
                .map(|l| l.trim_matches([' ', '\t', '\r']))
                .filter(|l| !l.is_empty())
                .ok_or_else(|| format!("missing {what} line"))
        };
        let depth_line = next_line("depth")?;
        let read_line = next_line("read position")?;
        let write_line = next_line("write position")?;

        let depth = parse_int(depth_line, "depth")?;
        let (read_file_num, read_pos) = parse_pair(read_line, "read")?;
        let (write_file_num, write_pos) = parse_pair(write_line, "write")?;
        Ok(Meta {
            depth,
            read_file_num,
            read_pos,
            write_file_num,
            write_pos,
        })
    }
}

/// Upper bound for file numbers and positions, far beyond anything real but
/// leaving headroom so arithmetic on them cannot overflow.
const MAX_VALUE: i64 = 1 << 62;

fn parse_int(s: &str, what: &str) -> Result<i64, String> {
    s.trim_matches([' ', '\t'])
        .parse::<i64>()
        .map_err(|e| format!("bad {what} {s:?}: {e}"))
}

fn parse_pair(line: &str, what: &str) -> Result<(i64, i64), String> {
    let (num, pos) = line
        .split_once(',')
        .ok_or_else(|| format!("bad {what} position {line:?}: expected <fileNum>,<pos>"))?;
    let num = parse_int(num, "file number")?;
    let pos = parse_int(pos, "position")?;
    if num < 0 || pos < 0 {
        return Err(format!("negative {what} position {line:?}"));
    }
    if num > MAX_VALUE || pos > MAX_VALUE {
        return Err(format!("implausibly large {what} position {line:?}"));
    }
    Ok((num, pos))
}

/// Read the metadata file; `Ok(None)` when it does not exist.
pub(crate) fn load(layout: &Layout) -> Result<Option<Meta>, Error> {
    let path = layout.meta_file();
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read metadata", &path, e)),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::CorruptMetadata {
        path: path.clone(),
        reason: "not valid text".to_string(),
    })?;
    Meta::parse(text)
        .map(Some)
        .map_err(|reason| Error::CorruptMetadata { path, reason })
}

/// Atomically replace the metadata file: write a temp file, fsync it,
/// rename it over the metadata file, then fsync the directory (best effort).
pub(crate) fn persist(layout: &Layout, meta: &Meta) -> Result<(), Error> {
    let path = layout.meta_file();
    let tmp = layout.tmp_meta_file();
    let written = (|| -> io::Result<()> {
        let mut f = rw_create_options().truncate(true).open(&tmp)?;
        f.write_all(meta.encode().as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("persist metadata", &path, e));
    }
    if let Err(e) = layout.sync_dir() {
        debug!(queue = layout.name(), error = %e, "diskqueue: directory fsync failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_go_format() {
        let m = Meta {
            depth: 12,
            read_file_num: 3,
            read_pos: 456,
            write_file_num: 7,
            write_pos: 89,
        };
        assert_eq!(m.encode(), "12\n3,456\n7,89\n");
        assert_eq!(Meta::parse(&m.encode()), Ok(m));
    }

    #[test]
    fn parse_is_lenient_like_fscanf() {
        let m = Meta::parse(" -2 \n1, 2\n3 ,4").unwrap();
        assert_eq!(
            m,
            Meta {
                depth: -2,
                read_file_num: 1,
                read_pos: 2,
                write_file_num: 3,
                write_pos: 4
            }
        );
        assert!(Meta::parse("1\n0,0\n0,0\ntrailing junk").is_ok());
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in [
            "",
            "\n\n\n",
            "1\n0,0\n",
            "x\n0,0\n0,0\n",
            "1\n0 0\n0,0\n",
            "1\n0,-5\n0,0\n",
            "1\n-1,0\n0,0\n",
            "1\n0,0\n0,99999999999999999999\n",
            "1\n0,0\n\n0,0\n",
            "1\n0,0\n9223372036854775807,0\n",
            "1\n0,4611686018427387905\n0,0\n",
        ] {
            assert!(Meta::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
