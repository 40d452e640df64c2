//! The queue itself: buffered appends and file rolling, reading with a
//! read-ahead buffer, corruption recovery (`.bad` files), depth accounting,
//! start-up reconciliation of metadata with the files, and the sync policy.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use tracing::{debug, error, info, warn};

use crate::layout::{rw_create_options, Layout};
use crate::meta::{self, Meta};
use crate::{Error, Options};

/// Read-ahead buffer size for the read file.
const READ_BUFFER: usize = 32 * 1024;
/// Buffered appends are written out once this many bytes are pending.
const WRITE_FLUSH_THRESHOLD: usize = 32 * 1024;
/// When the directory cannot be listed, `empty` removes at most this many
/// file numbers by guessing from the read/write positions.
const MAX_BLIND_REMOVALS: i64 = 100_000;

/// The open read file.
#[derive(Debug)]
struct ReadFile {
    file_num: i64,
    reader: BufReader<File>,
    /// End of the data in this file once it is complete (no longer the
    /// write file): its size when opened, or the write position when the
    /// writer rolled away from it. go-diskqueue's `maxBytesPerFileRead`.
    end: Option<i64>,
}

/// Outcome of one attempt to read the next record.
enum Step {
    Record(Vec<u8>),
    /// The read position is at the end of a complete file.
    FileDone,
    /// The read file does not exist.
    Missing,
    /// The read file cannot be read past this point.
    Corrupt(String),
    /// Nothing to read.
    Empty,
}

/// A segmented on-disk FIFO queue, file-compatible with go-diskqueue v1.1.0.
/// See the crate documentation for the format.
#[derive(Debug)]
pub struct DiskQueue {
    layout: Layout,
    opts: Options,

    // Persisted state (see `Meta`).
    depth: i64,
    read_file_num: i64,
    read_pos: i64,
    write_file_num: i64,
    /// Logical end of the write file, including bytes still in `wbuf`.
    write_pos: i64,

    reader: Option<ReadFile>,
    writer: Option<File>,
    /// Bytes of the write file known to be on disk (not necessarily
    /// fsynced); `file_pos + wbuf.len() == write_pos` between operations.
    file_pos: i64,
    /// Appended records not yet written to the write file.
    wbuf: Vec<u8>,

    /// Reads + writes since the last successful sync.
    ops_since_sync: i64,
    /// A state change that should be persisted soon (file roll/removal,
    /// corruption handling, failed sync).
    need_sync: bool,
    /// The last sync failed; `put` retries it first and refuses on failure.
    sync_failed: bool,
    last_sync: Instant,
}

impl DiskQueue {
    /// Open (or create) the queue `name` in the existing directory
    /// `data_path`, restoring its state from the metadata file if present.
    pub fn open(name: &str, data_path: &Path, opts: Options) -> Result<DiskQueue, Error> {
        opts.validate()?;
        let layout = Layout::new(name, data_path)?;
        let dir_meta =
            fs::metadata(data_path).map_err(|e| Error::io("open data path", data_path, e))?;
        if !dir_meta.is_dir() {
            return Err(Error::io(
                "open data path",
                data_path,
                io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        let meta = meta::load(&layout)?.unwrap_or_default();
        let mut q = DiskQueue {
            layout,
            opts,
            depth: meta.depth,
            read_file_num: meta.read_file_num,
            read_pos: meta.read_pos,
            write_file_num: meta.write_file_num,
            write_pos: meta.write_pos,
            reader: None,
            writer: None,
            file_pos: meta.write_pos,
            wbuf: Vec::new(),
            ops_since_sync: 0,
            need_sync: false,
            sync_failed: false,
            last_sync: Instant::now(),
        };
        q.reconcile_on_open()?;
        Ok(q)
    }

    /// Append one record. Payloads outside `min_msg_size..=max_msg_size`
    /// are refused with [`Error::InvalidSize`]. On any error nothing was
    /// enqueued and the next `put` may be retried.
    pub fn put(&mut self, payload: &[u8]) -> Result<(), Error> {
        let (min, max) = (self.opts.min_msg_size, self.opts.max_msg_size);
        let len = match i32::try_from(payload.len()) {
            Ok(len) if (min..=max).contains(&len) => len,
            _ => {
                return Err(Error::InvalidSize {
                    size: payload.len(),
                    min,
                    max,
                })
            }
        };
        if self.sync_failed {
            // Persistence is failing: surface it instead of accepting data
            // we may be unable to account for.
            self.sync()?;
        }
        let total = 4 + i64::from(len);
        if self.write_pos > 0 && self.write_pos + total > self.opts.max_bytes_per_file {
            self.roll_write_file()?;
        }
        // Open the write file now so an unusable directory fails this put.
        self.ensure_writer()?;

        self.wbuf.extend_from_slice(&len.to_be_bytes());
        self.wbuf.extend_from_slice(payload);
        if self.wbuf.len() >= WRITE_FLUSH_THRESHOLD {
            if let Err(e) = self.flush_writes() {
                self.discard_uncommitted();
                return Err(e);
            }
        }
        self.write_pos += total;
        self.depth = self.depth.saturating_add(1);
        self.ops_since_sync += 1;
        self.sync_after_op();
        Ok(())
    }

    /// Take the next record, or `None` when the queue is empty. Corrupt or
    /// unreadable data files are set aside as `.bad` (logged) and reading
    /// continues with the next file. Errors are returned only for failures
    /// that may be transient (writing out buffered records, opening a file
    /// for a reason other than its absence); the queue state is then
    /// unchanged.
    pub fn read(&mut self) -> Result<Option<Vec<u8>>, Error> {
        loop {
            if !self.has_data() {
                self.check_tail();
                self.sync_after_op();
                return Ok(None);
            }
            if self.read_file_num == self.write_file_num && !self.wbuf.is_empty() {
                self.flush_writes()?;
            }
            match self.read_step()? {
                Step::Record(data) => {
                    self.depth = self.depth.saturating_sub(1);
                    self.ops_since_sync += 1;
                    if self.read_file_num < self.write_file_num
                        && self.read_pos >= self.complete_file_end()
                    {
                        self.finish_read_file();
                    }
                    self.check_tail();
                    self.sync_after_op();
                    return Ok(Some(data));
                }
                Step::FileDone => self.finish_read_file(),
                Step::Missing => self.skip_missing_read_file(),
                Step::Corrupt(reason) => self.set_aside_bad_file(&reason),
                Step::Empty => {
                    self.check_tail();
                    self.sync_after_op();
                    return Ok(None);
                }
            }
        }
    }

    /// Number of records in the queue (never negative).
    pub fn depth(&self) -> i64 {
        self.depth.max(0)
    }

    /// Write out buffered records, fsync the write file and persist the
    /// metadata.
    pub fn sync(&mut self) -> Result<(), Error> {
        match self.sync_inner() {
            Ok(()) => {
                self.need_sync = false;
                self.sync_failed = false;
                self.ops_since_sync = 0;
                self.last_sync = Instant::now();
                Ok(())
            }
            Err(e) => {
                self.need_sync = true;
                self.sync_failed = true;
                Err(e)
            }
        }
    }

    /// [`sync`](Self::sync) if anything happened since the last sync and
    /// `sync_timeout` has elapsed since it. Meant to be called periodically.
    pub fn sync_if_due(&mut self) -> Result<(), Error> {
        if (self.ops_since_sync > 0 || self.need_sync)
            && self.last_sync.elapsed() >= self.opts.sync_timeout
        {
            self.sync()
        } else {
            Ok(())
        }
    }

    /// Drop every record: remove all of this queue's data files and start
    /// again in a fresh file; depth becomes 0. The new state is persisted.
    pub fn empty(&mut self) -> Result<(), Error> {
        info!(queue = self.layout.name(), "diskqueue: emptying");
        let removal = self.remove_all_data_files();
        let synced = self.sync();
        match removal {
            Some(e) => Err(e),
            None => synced,
        }
    }

    /// Sync and close.
    pub fn close(mut self) -> Result<(), Error> {
        info!(queue = self.layout.name(), "diskqueue: closing");
        let result = self.sync();
        self.reader = None;
        self.writer = None;
        result
    }

    /// Remove all data files and the metadata file.
    pub fn delete(mut self) -> Result<(), Error> {
        info!(queue = self.layout.name(), "diskqueue: deleting");
        let mut first_err = self.remove_all_data_files();
        self.need_sync = false;
        let meta_path = self.layout.meta_file();
        match fs::remove_file(&meta_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                first_err.get_or_insert(Error::io("remove metadata", &meta_path, e));
            }
        }
        if let Err(e) = self.layout.sync_dir() {
            debug!(queue = self.layout.name(), error = %e, "diskqueue: directory fsync failed");
        }
        first_err.map_or(Ok(()), Err)
    }

    // ----- state helpers -------------------------------------------------

    fn has_data(&self) -> bool {
        self.read_file_num < self.write_file_num || self.read_pos < self.write_pos
    }

    fn meta(&self) -> Meta {
        Meta {
            depth: self.depth,
            read_file_num: self.read_file_num,
            read_pos: self.read_pos,
            write_file_num: self.write_file_num,
            write_pos: self.write_pos,
        }
    }

    /// Sync if an operation made it necessary (state change or `sync_every`
    /// reached). Failures are logged and retried later; the operation
    /// itself already took effect.
    fn sync_after_op(&mut self) {
        if self.need_sync || self.ops_since_sync >= self.opts.sync_every {
            if let Err(e) = self.sync() {
                error!(queue = self.layout.name(), error = %e, "diskqueue: sync failed");
            }
        }
    }

    fn sync_inner(&mut self) -> Result<(), Error> {
        self.flush_writes()?;
        if let Some(file) = &self.writer {
            if let Err(e) = file.sync_data() {
                // Like go-diskqueue: drop the handle, reopen on next write.
                self.writer = None;
                return Err(Error::io(
                    "fsync",
                    &self.layout.data_file(self.write_file_num),
                    e,
                ));
            }
        }
        meta::persist(&self.layout, &self.meta())
    }

    /// Start-up reconciliation of the metadata with the files on disk.
    fn reconcile_on_open(&mut self) -> Result<(), Error> {
        let name = self.layout.name().to_string();
        if self.read_file_num > self.write_file_num
            || (self.read_file_num == self.write_file_num && self.read_pos > self.write_pos)
        {
            // Same remedy as go-diskqueue's checkTailCorruption.
            error!(
                queue = %name,
                read = %format!("{},{}", self.read_file_num, self.read_pos),
                write = %format!("{},{}", self.write_file_num, self.write_pos),
                "diskqueue: metadata read position is past the write position, corruption; \
                 skipping to a new file and resetting depth to 0"
            );
            self.skip_to_next_rw_file();
            self.need_sync = true;
            return Ok(());
        }

        // go-diskqueue v1.1.0: if the metadata was not synced before the
        // last shutdown the write file can be longer than writePos; writes
        // then continue in a new file and the reader salvages the rest.
        let path = self.layout.data_file(self.write_file_num);
        match fs::metadata(&path) {
            Ok(md) => {
                let size = i64::try_from(md.len()).unwrap_or(i64::MAX);
                if size > self.write_pos {
                    let extra = self.count_records(&path, self.write_pos, size);
                    warn!(
                        queue = %name,
                        file = %path.display(),
                        write_pos = self.write_pos,
                        size,
                        unaccounted_records = extra,
                        "diskqueue: metadata writePos < file size, skipping to new file"
                    );
                    self.depth = self.depth.saturating_add(extra);
                    self.roll_on_open();
                } else if size < self.write_pos {
                    warn!(
                        queue = %name,
                        file = %path.display(),
                        write_pos = self.write_pos,
                        size,
                        "diskqueue: write file is shorter than metadata writePos, skipping to new file"
                    );
                    self.roll_on_open();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.write_pos > 0 {
                    warn!(
                        queue = %name,
                        file = %path.display(),
                        write_pos = self.write_pos,
                        "diskqueue: write file is missing, skipping to new file"
                    );
                    self.roll_on_open();
                }
            }
            Err(e) => return Err(Error::io("stat", &path, e)),
        }
        self.check_tail();
        Ok(())
    }

    fn roll_on_open(&mut self) {
        self.write_file_num += 1;
        self.write_pos = 0;
        self.file_pos = 0;
        self.need_sync = true;
    }

    /// Count complete, valid records in `path` between `from` and `size`.
    fn count_records(&self, path: &Path, from: i64, size: i64) -> i64 {
        let (min, max) = (self.opts.min_msg_size, self.opts.max_msg_size);
        let Ok(file) = File::open(path) else {
            return 0;
        };
        let mut reader = BufReader::with_capacity(READ_BUFFER, file);
        if reader.seek(SeekFrom::Start(from.unsigned_abs())).is_err() {
            return 0;
        }
        let (mut pos, mut count) = (from, 0);
        let mut hdr = [0u8; 4];
        while pos + 4 <= size {
            if reader.read_exact(&mut hdr).is_err() {
                break;
            }
            let len = i32::from_be_bytes(hdr);
            if len < min || len > max || pos + 4 + i64::from(len) > size {
                break;
            }
            if reader.seek_relative(i64::from(len)).is_err() {
                break;
            }
            pos += 4 + i64::from(len);
            count += 1;
        }
        count
    }

    /// go-diskqueue's checkTailCorruption: once the reader has caught up
    /// with the writer the depth must be 0 and the positions equal.
    fn check_tail(&mut self) {
        if self.has_data() {
            return;
        }
        if self.depth != 0 {
            if self.depth < 0 {
                error!(
                    queue = self.layout.name(),
                    depth = self.depth,
                    "diskqueue: negative depth at tail, metadata corruption, resetting 0"
                );
            } else {
                error!(
                    queue = self.layout.name(),
                    depth = self.depth,
                    "diskqueue: positive depth at tail, data loss, resetting 0"
                );
            }
            self.depth = 0;
            self.need_sync = true;
        }
        if self.read_file_num != self.write_file_num || self.read_pos != self.write_pos {
            error!(
                queue = self.layout.name(),
                "diskqueue: read position past write position, corruption, skipping to next file"
            );
            self.skip_to_next_rw_file();
            self.need_sync = true;
        }
    }

    /// go-diskqueue's skipToNextRWFile: drop files `read..=write` and
    /// restart reading and writing at a fresh file number, depth 0.
    fn skip_to_next_rw_file(&mut self) {
        self.reader = None;
        self.writer = None;
        self.wbuf.clear();
        if self.read_file_num <= self.write_file_num {
            for num in self.read_file_num..=self.write_file_num {
                self.remove_data_file(num);
            }
        }
        let next = self.read_file_num.max(self.write_file_num) + 1;
        self.reset_positions(next);
    }

    fn reset_positions(&mut self, file_num: i64) {
        self.write_file_num = file_num;
        self.write_pos = 0;
        self.file_pos = 0;
        self.read_file_num = file_num;
        self.read_pos = 0;
        self.depth = 0;
    }

    /// Remove a data file, logging failures other than absence.
    fn remove_data_file(&self, num: i64) -> Option<Error> {
        let path = self.layout.data_file(num);
        match fs::remove_file(&path) {
            Ok(()) => None,
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                error!(queue = self.layout.name(), file = %path.display(), error = %e,
                    "diskqueue: failed to remove data file");
                Some(Error::io("remove data file", &path, e))
            }
        }
    }

    /// Remove every data file of this queue and move to a fresh file
    /// number with depth 0. Returns the first removal error.
    fn remove_all_data_files(&mut self) -> Option<Error> {
        self.reader = None;
        self.writer = None;
        self.wbuf.clear();
        let mut first_err = None;
        let mut nums = match self.layout.list_data_files() {
            Ok(nums) => nums,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                first_err = Some(Error::io("list", self.layout.dir(), e));
                Vec::new()
            }
        };
        if first_err.is_some()
            && self.read_file_num <= self.write_file_num
            && self.write_file_num - self.read_file_num <= MAX_BLIND_REMOVALS
        {
            // Cannot list the directory: fall back to the known range.
            nums.extend(self.read_file_num..=self.write_file_num);
        }
        let mut highest = self.read_file_num.max(self.write_file_num);
        for num in nums {
            highest = highest.max(num);
            if let Some(e) = self.remove_data_file(num) {
                first_err.get_or_insert(e);
            }
        }
        self.reset_positions(highest + 1);
        self.ops_since_sync = 0;
        self.need_sync = true;
        first_err
    }

    // ----- writing -------------------------------------------------------

    /// Open the write file if needed: create it, cut off anything past the
    /// last good byte (left by a failed write), and position at the end.
    fn ensure_writer(&mut self) -> Result<(), Error> {
        if self.writer.is_some() {
            return Ok(());
        }
        let path = self.layout.data_file(self.write_file_num);
        let mut file = rw_create_options()
            .open(&path)
            .map_err(|e| Error::io("open data file", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        let good = self.file_pos.unsigned_abs();
        if len > good {
            warn!(queue = self.layout.name(), file = %path.display(), len, good,
                "diskqueue: truncating bytes past the last complete record");
            file.set_len(good)
                .map_err(|e| Error::io("truncate", &path, e))?;
        }
        file.seek(SeekFrom::Start(good))
            .map_err(|e| Error::io("seek", &path, e))?;
        debug!(queue = self.layout.name(), file = %path.display(), "diskqueue: opened write file");
        self.writer = Some(file);
        Ok(())
    }

    /// Write `wbuf` to the write file. On failure the handle is dropped (a
    /// retry reopens it and truncates partial bytes) and whatever was not
    /// written stays buffered.
    fn flush_writes(&mut self) -> Result<(), Error> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.ensure_writer()?;
        let Some(file) = self.writer.as_mut() else {
            return Ok(());
        };
        let mut written = 0;
        let mut result = Ok(());
        while written < self.wbuf.len() {
            match file.write(&self.wbuf[written..]) {
                Ok(0) => {
                    result = Err(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.file_pos += written as i64;
        self.wbuf.drain(..written);
        if self.wbuf.capacity() > 4 * WRITE_FLUSH_THRESHOLD && self.wbuf.is_empty() {
            self.wbuf.shrink_to(WRITE_FLUSH_THRESHOLD);
        }
        if let Err(e) = result {
            self.writer = None;
            if self
                .reader
                .as_ref()
                .is_some_and(|r| r.file_num == self.write_file_num)
            {
                // It may have buffered bytes that will be truncated.
                self.reader = None;
            }
            return Err(Error::io(
                "write",
                &self.layout.data_file(self.write_file_num),
                e,
            ));
        }
        Ok(())
    }

    /// After a failed flush inside `put`: forget the bytes of the record
    /// being put (those past `write_pos`), keeping earlier pending records.
    fn discard_uncommitted(&mut self) {
        if self.file_pos > self.write_pos {
            // Part of the new record reached the file; it is cut off when
            // the file is reopened.
            self.file_pos = self.write_pos;
            self.wbuf.clear();
        } else {
            let keep = usize::try_from(self.write_pos - self.file_pos).unwrap_or(0);
            self.wbuf.truncate(keep);
        }
    }

    /// Move writing to the next file number: write out and fsync the
    /// current one first. If the reader has consumed everything in it, the
    /// file is removed and the reader moves along too.
    fn roll_write_file(&mut self) -> Result<(), Error> {
        self.flush_writes()?;
        let old = self.write_file_num;
        if let Some(file) = self.writer.take() {
            if let Err(e) = file.sync_data() {
                error!(queue = self.layout.name(), error = %e,
                    "diskqueue: fsync of completed data file failed");
                self.sync_failed = true;
            }
        }
        if let Some(r) = self.reader.as_mut() {
            if r.file_num == old {
                r.end = Some(self.write_pos);
            }
        }
        let caught_up = self.read_file_num == old && self.read_pos == self.write_pos;
        self.write_file_num += 1;
        self.write_pos = 0;
        self.file_pos = 0;
        if caught_up {
            self.reader = None;
            self.remove_data_file(old);
            self.read_file_num = self.write_file_num;
            self.read_pos = 0;
        }
        self.need_sync = true;
        Ok(())
    }

    // ----- reading -------------------------------------------------------

    /// End of the current (complete) read file.
    fn complete_file_end(&self) -> i64 {
        self.reader
            .as_ref()
            .filter(|r| r.file_num == self.read_file_num)
            .and_then(|r| r.end)
            .unwrap_or(self.opts.max_bytes_per_file)
    }

    fn read_step(&mut self) -> Result<Step, Error> {
        let complete = self.read_file_num < self.write_file_num;
        if self
            .reader
            .as_ref()
            .is_none_or(|r| r.file_num != self.read_file_num)
        {
            self.reader = None;
            let path = self.layout.data_file(self.read_file_num);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Step::Missing),
                Err(e) => return Err(Error::io("open data file", &path, e)),
            };
            let end = if complete {
                Some(
                    file.metadata()
                        .ok()
                        .and_then(|m| i64::try_from(m.len()).ok())
                        .unwrap_or(self.opts.max_bytes_per_file),
                )
            } else {
                None
            };
            let mut reader = BufReader::with_capacity(READ_BUFFER, file);
            if self.read_pos > 0 {
                if let Err(e) = reader.seek(SeekFrom::Start(self.read_pos.unsigned_abs())) {
                    return Ok(Step::Corrupt(format!("seek to {}: {e}", self.read_pos)));
                }
            }
            debug!(queue = self.layout.name(), file = %path.display(), "diskqueue: opened read file");
            self.reader = Some(ReadFile {
                file_num: self.read_file_num,
                reader,
                end,
            });
        }

        let limit = if complete {
            self.complete_file_end()
        } else {
            self.write_pos
        };
        if self.read_pos >= limit {
            return Ok(if complete {
                Step::FileDone
            } else {
                Step::Empty
            });
        }
        let (min, max) = (self.opts.min_msg_size, self.opts.max_msg_size);
        let read_pos = self.read_pos;
        let Some(r) = self.reader.as_mut() else {
            return Ok(Step::Missing);
        };
        let mut hdr = [0u8; 4];
        if let Err(e) = r.reader.read_exact(&mut hdr) {
            return Ok(Step::Corrupt(format!("reading record length: {e}")));
        }
        let len = i32::from_be_bytes(hdr);
        if len < min || len > max {
            return Ok(Step::Corrupt(format!("invalid message read size ({len})")));
        }
        let total = 4 + i64::from(len);
        if read_pos + total > limit {
            return Ok(Step::Corrupt(format!(
                "record of {total} bytes runs past the end of data at {limit}"
            )));
        }
        let mut data = vec![0u8; len.unsigned_abs() as usize];
        if let Err(e) = r.reader.read_exact(&mut data) {
            return Ok(Step::Corrupt(format!("reading record payload: {e}")));
        }
        self.read_pos += total;
        Ok(Step::Record(data))
    }

    /// The reader reached the end of a complete file: delete it and move on.
    fn finish_read_file(&mut self) {
        self.reader = None;
        self.remove_data_file(self.read_file_num);
        self.read_file_num += 1;
        self.read_pos = 0;
        self.need_sync = true;
    }

    /// The read file does not exist: jump to the next existing one.
    fn skip_missing_read_file(&mut self) {
        let path = self.layout.data_file(self.read_file_num);
        self.reader = None;
        if self.read_file_num >= self.write_file_num {
            warn!(queue = self.layout.name(), file = %path.display(),
                "diskqueue: write file is missing, skipping to a new file");
            self.writer = None;
            self.wbuf.clear();
            let next = self.write_file_num + 1;
            self.write_file_num = next;
            self.write_pos = 0;
            self.file_pos = 0;
            self.read_file_num = next;
        } else {
            let next = match self.layout.list_data_files() {
                Ok(nums) => nums
                    .into_iter()
                    .find(|&n| n > self.read_file_num && n <= self.write_file_num)
                    .unwrap_or(self.write_file_num),
                Err(_) => self.read_file_num + 1,
            };
            warn!(queue = self.layout.name(), file = %path.display(), next,
                "diskqueue: data file is missing, skipping to next file");
            self.read_file_num = next;
        }
        self.read_pos = 0;
        self.need_sync = true;
    }

    /// go-diskqueue's handleReadError: rename the unreadable file to
    /// `<file>.bad` and continue with the next file (moving the writer on
    /// too if it was the write file).
    fn set_aside_bad_file(&mut self, reason: &str) {
        let bad = self.layout.data_file(self.read_file_num);
        let renamed = self.layout.bad_file(self.read_file_num);
        warn!(
            queue = self.layout.name(),
            file = %bad.display(),
            pos = self.read_pos,
            reason,
            "diskqueue: corrupt data, saving file as {} and skipping to next file",
            renamed.display()
        );
        self.reader = None;
        if self.read_file_num == self.write_file_num {
            self.writer = None;
            self.wbuf.clear();
            self.write_file_num += 1;
            self.write_pos = 0;
            self.file_pos = 0;
        }
        if let Err(e) = fs::rename(&bad, &renamed) {
            error!(queue = self.layout.name(), file = %bad.display(), error = %e,
                "diskqueue: failed to rename bad data file");
        }
        self.read_file_num += 1;
        self.read_pos = 0;
        self.need_sync = true;
    }
}

impl Drop for DiskQueue {
    /// Best effort: hand buffered records to the OS (metadata is not
    /// written; the next `open` reconciles it with the file sizes).
    fn drop(&mut self) {
        if !self.wbuf.is_empty() {
            if let Err(e) = self.flush_writes() {
                error!(queue = self.layout.name(), error = %e,
                    "diskqueue: dropping unwritten records");
            }
        }
    }
}
