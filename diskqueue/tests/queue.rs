//! Behaviour and on-disk compatibility tests for nsq-diskqueue, using real
//! files in temporary directories.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use nsq_diskqueue::{DiskQueue, Error, Options};

const NAME: &str = "test";

fn opts(max_bytes_per_file: i64) -> Options {
    Options {
        max_bytes_per_file,
        min_msg_size: 4,
        max_msg_size: 1 << 20,
        sync_every: 1_000_000,
        sync_timeout: Duration::from_secs(3600),
    }
}

/// Deterministic payload `i` of `len` bytes.
fn payload(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("msg-{i:08}-").into_bytes();
    let mut x = i as u32 ^ 0x9e37_79b9;
    while v.len() < len {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        v.push((x >> 24) as u8);
    }
    v.truncate(len);
    v
}

/// A go-diskqueue record: 4-byte big-endian length + payload.
fn record(p: &[u8]) -> Vec<u8> {
    let mut v = (p.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(p);
    v
}

fn files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn data_file(dir: &Path, name: &str, n: i64) -> std::path::PathBuf {
    dir.join(format!("{name}.diskqueue.{n:06}.dat"))
}

fn meta_text(dir: &Path, name: &str) -> Option<String> {
    fs::read_to_string(dir.join(format!("{name}.diskqueue.meta.dat"))).ok()
}

fn write_meta(dir: &Path, name: &str, text: &str) {
    fs::write(dir.join(format!("{name}.diskqueue.meta.dat")), text).unwrap();
}

fn drain(q: &mut DiskQueue) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(m) = q.read().unwrap() {
        out.push(m);
    }
    out
}

fn bad_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.ends_with(".bad"))
        .collect()
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(q.read().unwrap(), None);
    let msgs: Vec<_> = (0..3).map(|i| payload(i, 10 + i)).collect();
    for m in &msgs {
        q.put(m).unwrap();
    }
    for m in &msgs {
        assert_eq!(q.read().unwrap().as_ref(), Some(m));
    }
    assert_eq!(q.read().unwrap(), None);
    q.close().unwrap();
}

#[test]
fn depth_tracks_puts_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    assert_eq!(q.depth(), 0);
    for i in 0..7 {
        q.put(&payload(i, 26)).unwrap();
        assert_eq!(q.depth(), i as i64 + 1);
    }
    for i in 0..7 {
        q.read().unwrap().unwrap();
        assert_eq!(q.depth(), 6 - i as i64);
    }
    assert_eq!(q.read().unwrap(), None);
    assert_eq!(q.depth(), 0);
}

#[test]
fn rolls_across_files_and_deletes_read_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    // 30-byte records: 3 fit in 100 bytes, the 4th rolls.
    let msgs: Vec<_> = (0..10).map(|i| payload(i, 26)).collect();
    for m in &msgs {
        q.put(m).unwrap();
    }
    q.sync().unwrap();
    for n in 0..3 {
        assert_eq!(
            fs::metadata(data_file(dir.path(), NAME, n)).unwrap().len(),
            90
        );
    }
    assert_eq!(
        fs::metadata(data_file(dir.path(), NAME, 3)).unwrap().len(),
        30
    );

    for m in &msgs[..2] {
        assert_eq!(&q.read().unwrap().unwrap(), m);
    }
    assert!(data_file(dir.path(), NAME, 0).exists());
    assert_eq!(&q.read().unwrap().unwrap(), &msgs[2]);
    assert!(
        !data_file(dir.path(), NAME, 0).exists(),
        "fully-read file deleted"
    );

    for m in &msgs[3..] {
        assert_eq!(&q.read().unwrap().unwrap(), m);
    }
    assert_eq!(q.read().unwrap(), None);
    q.close().unwrap();
    // Only the current write file and the metadata remain.
    let expected: BTreeSet<String> = [
        format!("{NAME}.diskqueue.000003.dat"),
        format!("{NAME}.diskqueue.meta.dat"),
    ]
    .into();
    assert_eq!(files(dir.path()), expected);
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "0\n3,30\n3,30\n");
}

#[test]
fn reopen_after_close_restores_unread_records() {
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<_> = (0..9).map(|i| payload(i, 20 + i)).collect();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    for m in &msgs {
        q.put(m).unwrap();
    }
    for m in &msgs[..4] {
        assert_eq!(&q.read().unwrap().unwrap(), m);
    }
    q.close().unwrap();

    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    assert_eq!(q.depth(), 5);
    assert_eq!(drain(&mut q), msgs[4..].to_vec());
    assert_eq!(q.depth(), 0);
    q.put(b"after reopen").unwrap();
    assert_eq!(q.read().unwrap().unwrap(), b"after reopen");
    q.close().unwrap();
    assert!(bad_files(dir.path()).is_empty());
}

#[test]
fn metadata_lagging_the_file_continues_in_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<_> = (0..9).map(|i| payload(i, 26)).collect();
    {
        let mut q = DiskQueue::open(NAME, dir.path(), opts(1 << 20)).unwrap();
        for m in &msgs[..5] {
            q.put(m).unwrap();
        }
        assert_eq!(q.read().unwrap().unwrap(), msgs[0]);
        q.sync().unwrap(); // metadata: depth 4, read 0,30, write 0,150
        for m in &msgs[5..8] {
            q.put(m).unwrap();
        }
        assert_eq!(q.read().unwrap().unwrap(), msgs[1]); // not synced
                                                         // "Crash": dropped without close, so buffered records reach the
                                                         // file but the metadata is not updated.
    }
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "4\n0,30\n0,150\n");
    assert_eq!(
        fs::metadata(data_file(dir.path(), NAME, 0)).unwrap().len(),
        8 * 30
    );

    let mut q = DiskQueue::open(NAME, dir.path(), opts(1 << 20)).unwrap();
    // 4 recorded + 3 found past writePos.
    assert_eq!(q.depth(), 7);
    q.put(&msgs[8]).unwrap();
    assert_eq!(q.depth(), 8);
    q.sync().unwrap();
    assert!(
        data_file(dir.path(), NAME, 1).exists(),
        "writes go to a new file"
    );
    assert_eq!(
        fs::metadata(data_file(dir.path(), NAME, 0)).unwrap().len(),
        8 * 30,
        "old file untouched"
    );
    // The synced read of msgs[0] is not repeated; the unsynced read of
    // msgs[1] is (at-least-once); nothing is lost.
    assert_eq!(drain(&mut q), msgs[1..].to_vec());
    assert_eq!(q.depth(), 0);
    assert!(!data_file(dir.path(), NAME, 0).exists());
    assert!(bad_files(dir.path()).is_empty());
}

#[test]
fn go_written_lagging_directory_is_salvaged() {
    // Hand-built nsqd data dir: metadata accounts for one record, the file
    // holds three.
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<_> = (0..3).map(|i| payload(i, 30)).collect();
    let bytes: Vec<u8> = msgs.iter().flat_map(|m| record(m)).collect();
    fs::write(data_file(dir.path(), NAME, 0), &bytes).unwrap();
    write_meta(dir.path(), NAME, "1\n0,0\n0,34\n");

    let mut q = DiskQueue::open(NAME, dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(q.depth(), 3);
    q.put(b"new record").unwrap();
    let mut expected = msgs.clone();
    expected.push(b"new record".to_vec());
    assert_eq!(drain(&mut q), expected);
    q.close().unwrap();
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "0\n1,14\n1,14\n");
}

#[test]
fn adopts_go_diskqueue_directory() {
    let dir = tempfile::tempdir().unwrap();
    let name = "orders:archive";
    let msgs: Vec<_> = (0..5).map(|i| payload(i, 26 + 7 * i)).collect();
    let f3: Vec<u8> = msgs[..3].iter().flat_map(|m| record(m)).collect();
    let f4: Vec<u8> = msgs[3..].iter().flat_map(|m| record(m)).collect();
    fs::write(data_file(dir.path(), name, 3), &f3).unwrap();
    fs::write(data_file(dir.path(), name, 4), &f4).unwrap();
    let first = record(&msgs[0]).len();
    write_meta(dir.path(), name, &format!("4\n3,{first}\n4,{}\n", f4.len()));

    let mut q = DiskQueue::open(name, dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(q.depth(), 4);
    assert_eq!(drain(&mut q), msgs[1..].to_vec());
    assert!(!data_file(dir.path(), name, 3).exists());
    assert!(bad_files(dir.path()).is_empty());
}

#[test]
fn read_position_at_end_of_complete_file_is_not_corruption() {
    // State go-diskqueue v1.1.0 can persist when the reader caught up just
    // before the writer rolled (nsqio/go-diskqueue#42): readPos == size of
    // a complete file. Must not produce a .bad file.
    let dir = tempfile::tempdir().unwrap();
    let a = payload(1, 40);
    let b = payload(2, 40);
    fs::write(data_file(dir.path(), NAME, 0), record(&a)).unwrap();
    fs::write(data_file(dir.path(), NAME, 1), record(&b)).unwrap();
    write_meta(dir.path(), NAME, "1\n0,44\n1,44\n");

    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    assert_eq!(q.read().unwrap().unwrap(), b);
    assert_eq!(q.read().unwrap(), None);
    assert!(bad_files(dir.path()).is_empty());
    assert!(!data_file(dir.path(), NAME, 0).exists());
}

#[test]
fn alternating_put_read_across_rolls_leaves_no_bad_files() {
    // nsqio/go-diskqueue#38 / #42: reader caught up with the writer when
    // the writer rolls.
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(90)).unwrap();
    for i in 0..25 {
        let m = payload(i, 26);
        q.put(&m).unwrap();
        assert_eq!(q.read().unwrap().unwrap(), m);
        assert_eq!(q.depth(), 0);
    }
    // Fill a file exactly, drain it, then roll.
    for i in 0..3 {
        q.put(&payload(100 + i, 26)).unwrap();
    }
    for i in 0..3 {
        assert_eq!(q.read().unwrap().unwrap(), payload(100 + i, 26));
    }
    q.put(&payload(200, 26)).unwrap();
    assert_eq!(q.read().unwrap().unwrap(), payload(200, 26));
    q.close().unwrap();
    assert!(bad_files(dir.path()).is_empty());
    let dats: Vec<_> = files(dir.path())
        .into_iter()
        .filter(|f| f.ends_with(".dat") && !f.contains("meta"))
        .collect();
    assert_eq!(dats.len(), 1, "only the write file remains: {dats:?}");
}

#[test]
fn corrupt_length_mid_file_sets_file_aside_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<_> = (0..6).map(|i| payload(i, 26)).collect();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    for m in &msgs {
        q.put(m).unwrap();
    }
    q.close().unwrap();
    // file 0 = msgs 0..3, file 1 = msgs 3..6; corrupt the 2nd record length.
    let f0 = data_file(dir.path(), NAME, 0);
    let mut bytes = fs::read(&f0).unwrap();
    bytes[30..34].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    fs::write(&f0, &bytes).unwrap();

    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    assert_eq!(q.read().unwrap().unwrap(), msgs[0]);
    assert_eq!(drain(&mut q), msgs[3..].to_vec());
    assert_eq!(q.depth(), 0);
    assert!(!f0.exists());
    let bad = dir.path().join(format!("{NAME}.diskqueue.000000.dat.bad"));
    assert_eq!(fs::read(&bad).unwrap(), bytes);
    q.close().unwrap();
}

#[test]
fn corrupt_record_in_write_file_moves_writer_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(1 << 20)).unwrap();
    q.put(&payload(0, 26)).unwrap();
    q.put(&payload(1, 26)).unwrap();
    q.close().unwrap();
    let f0 = data_file(dir.path(), NAME, 0);
    let mut bytes = fs::read(&f0).unwrap();
    bytes[30..34].copy_from_slice(&1u32.to_be_bytes()); // below min size
    fs::write(&f0, &bytes).unwrap();

    let mut q = DiskQueue::open(NAME, dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(q.read().unwrap().unwrap(), payload(0, 26));
    assert_eq!(q.read().unwrap(), None);
    assert_eq!(q.depth(), 0);
    assert_eq!(
        bad_files(dir.path()),
        vec![format!("{NAME}.diskqueue.000000.dat.bad")]
    );
    q.put(b"next one").unwrap();
    assert_eq!(q.read().unwrap().unwrap(), b"next one");
    q.close().unwrap();
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "0\n1,12\n1,12\n");
}

#[test]
fn truncated_record_at_end_of_complete_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (payload(1, 30), payload(2, 30), payload(3, 30));
    let mut f0 = record(&a);
    f0.extend_from_slice(&record(&b)[..10]);
    fs::write(data_file(dir.path(), NAME, 0), &f0).unwrap();
    fs::write(data_file(dir.path(), NAME, 1), record(&c)).unwrap();
    write_meta(dir.path(), NAME, "3\n0,0\n1,34\n");

    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    assert_eq!(drain(&mut q), vec![a, c]);
    assert_eq!(q.depth(), 0);
    assert_eq!(bad_files(dir.path()).len(), 1);
}

#[test]
fn missing_data_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (payload(1, 30), payload(2, 30));
    fs::write(data_file(dir.path(), NAME, 2), record(&a)).unwrap();
    fs::write(data_file(dir.path(), NAME, 500), record(&b)).unwrap();
    write_meta(dir.path(), NAME, "9\n0,0\n500,34\n");
    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    assert_eq!(drain(&mut q), vec![a, b]);
    assert_eq!(q.depth(), 0);

    // A huge gap of missing files is crossed in one step, not file by file.
    let dir = tempfile::tempdir().unwrap();
    write_meta(dir.path(), NAME, "2\n0,0\n4611686018427387904,0\n");
    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    assert_eq!(q.read().unwrap(), None);
    assert_eq!(q.depth(), 0);
    q.put(b"still works").unwrap();
    assert_eq!(q.read().unwrap().unwrap(), b"still works");
}

#[test]
fn garbage_metadata_is_an_error_not_a_panic() {
    for garbage in [
        &b""[..],
        b"hello",
        b"1\n2\n3\n",
        b"1\n0,0\n",
        b"1\n0,-1\n0,0\n",
        b"\xff\xfe\x00\x01garbage",
        b"99999999999999999999999\n0,0\n0,0\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(format!("{NAME}.diskqueue.meta.dat")),
            garbage,
        )
        .unwrap();
        match DiskQueue::open(NAME, dir.path(), opts(100)) {
            Err(Error::CorruptMetadata { .. }) => {}
            other => panic!("{garbage:?}: expected CorruptMetadata, got {other:?}"),
        }
    }
}

#[test]
fn inconsistent_metadata_at_tail_resets_depth() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(data_file(dir.path(), NAME, 0), record(&payload(0, 26))).unwrap();
    write_meta(dir.path(), NAME, "5\n0,30\n0,30\n");
    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    assert_eq!(q.depth(), 0);
    assert_eq!(q.read().unwrap(), None);
    q.put(b"works").unwrap();
    assert_eq!(q.read().unwrap().unwrap(), b"works");

    // Reader ahead of writer: reset instead of looping forever.
    let dir = tempfile::tempdir().unwrap();
    write_meta(dir.path(), NAME, "3\n7,0\n2,10\n");
    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    assert_eq!(q.depth(), 0);
    assert_eq!(q.read().unwrap(), None);
    q.put(b"works").unwrap();
    assert_eq!(q.read().unwrap().unwrap(), b"works");
}

#[test]
fn empty_drops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    for i in 0..10 {
        q.put(&payload(i, 26)).unwrap();
    }
    q.read().unwrap().unwrap();
    q.empty().unwrap();
    assert_eq!(q.depth(), 0);
    assert_eq!(q.read().unwrap(), None);
    let expected: BTreeSet<String> = [format!("{NAME}.diskqueue.meta.dat")].into();
    assert_eq!(files(dir.path()), expected);
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "0\n4,0\n4,0\n");

    q.put(b"after empty").unwrap();
    q.close().unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    assert_eq!(q.depth(), 1);
    assert_eq!(drain(&mut q), vec![b"after empty".to_vec()]);
}

#[test]
fn delete_removes_all_files() {
    let dir = tempfile::tempdir().unwrap();
    // Another queue sharing the directory must be left alone.
    let mut other = DiskQueue::open("test:ch", dir.path(), opts(100)).unwrap();
    other.put(b"other queue").unwrap();
    other.close().unwrap();
    let others = files(dir.path());

    let mut q = DiskQueue::open(NAME, dir.path(), opts(100)).unwrap();
    for i in 0..10 {
        q.put(&payload(i, 26)).unwrap();
    }
    q.sync().unwrap();
    q.read().unwrap().unwrap();
    q.delete().unwrap();
    assert_eq!(files(dir.path()), others);
}

#[test]
fn invalid_sizes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(1000);
    o.max_msg_size = 100;
    let mut q = DiskQueue::open(NAME, dir.path(), o).unwrap();
    for len in [0, 3, 101, 5000] {
        match q.put(&vec![7u8; len]) {
            Err(Error::InvalidSize {
                size,
                min: 4,
                max: 100,
            }) => assert_eq!(size, len),
            other => panic!("len {len}: {other:?}"),
        }
    }
    assert_eq!(q.depth(), 0);
    assert!(files(dir.path()).is_empty(), "nothing written");
    q.put(&[1; 4]).unwrap();
    q.put(&[2; 100]).unwrap();
    assert_eq!(q.depth(), 2);
}

#[test]
fn write_failure_is_an_error_and_retry_works() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    fs::create_dir(&dir).unwrap();
    let mut q = DiskQueue::open(NAME, &dir, opts(100)).unwrap();
    fs::remove_dir(&dir).unwrap();
    assert!(matches!(q.put(b"lost cause"), Err(Error::Io { .. })));
    assert_eq!(q.depth(), 0);
    assert!(matches!(q.sync(), Err(Error::Io { .. })));

    fs::create_dir(&dir).unwrap();
    q.put(b"retried").unwrap();
    assert_eq!(q.depth(), 1);
    assert_eq!(q.read().unwrap().unwrap(), b"retried");
    q.close().unwrap();
}

#[test]
fn sync_failure_makes_later_puts_fail() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    fs::create_dir(&dir).unwrap();
    let mut q = DiskQueue::open(NAME, &dir, opts(100)).unwrap();
    q.put(b"first").unwrap();
    fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(q.sync(), Err(Error::Io { .. })));
    assert!(q.put(b"second").is_err());
    assert_eq!(q.depth(), 1);
    assert!(q.sync().is_err());
    assert!(q.close().is_err());
}

#[test]
fn data_path_that_is_a_file_fails_open() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(
        DiskQueue::open(NAME, &file, opts(100)),
        Err(Error::Io { .. })
    ));
    assert!(DiskQueue::open(NAME, &root.path().join("missing"), opts(100)).is_err());
    assert!(matches!(
        DiskQueue::open("a/b", root.path(), opts(100)),
        Err(Error::InvalidName(_))
    ));
}

#[cfg(target_os = "linux")]
#[test]
fn failed_flush_keeps_earlier_records_and_drops_the_failed_one() {
    // The write file is a symlink to /dev/full: every write fails (ENOSPC).
    if !Path::new("/dev/full").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f0 = data_file(dir.path(), NAME, 0);
    std::os::unix::fs::symlink("/dev/full", &f0).unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(1 << 20)).unwrap();
    q.put(b"small, buffered").unwrap();
    let big = payload(9, 64 * 1024);
    assert!(matches!(q.put(&big), Err(Error::Io { .. })));
    assert_eq!(q.depth(), 1);
    assert!(q.sync().is_err());

    fs::remove_file(&f0).unwrap();
    q.put(&big).unwrap();
    assert_eq!(q.depth(), 2);
    assert_eq!(drain(&mut q), vec![b"small, buffered".to_vec(), big]);
    q.close().unwrap();
    assert!(bad_files(dir.path()).is_empty());
}

#[test]
fn sync_every_counts_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(1 << 20);
    o.sync_every = 3;
    let mut q = DiskQueue::open(NAME, dir.path(), o).unwrap();
    q.put(&payload(0, 26)).unwrap();
    q.put(&payload(1, 26)).unwrap();
    assert_eq!(meta_text(dir.path(), NAME), None);
    q.put(&payload(2, 26)).unwrap();
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "3\n0,0\n0,90\n");
    assert_eq!(
        fs::metadata(data_file(dir.path(), NAME, 0)).unwrap().len(),
        90
    );
    q.read().unwrap().unwrap();
    q.read().unwrap().unwrap();
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "3\n0,0\n0,90\n");
    q.put(&payload(3, 26)).unwrap();
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "2\n0,60\n0,120\n");
}

#[test]
fn sync_if_due_only_syncs_after_activity_and_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(1 << 20)).unwrap();
    q.put(&payload(0, 26)).unwrap();
    q.sync_if_due().unwrap();
    assert_eq!(meta_text(dir.path(), NAME), None, "timeout not elapsed");

    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(1 << 20);
    o.sync_timeout = Duration::ZERO;
    let mut q = DiskQueue::open(NAME, dir.path(), o).unwrap();
    q.sync_if_due().unwrap();
    assert_eq!(meta_text(dir.path(), NAME), None, "nothing happened");
    q.put(&payload(0, 26)).unwrap();
    assert_eq!(meta_text(dir.path(), NAME), None);
    q.sync_if_due().unwrap();
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "1\n0,0\n0,30\n");
    let meta = dir.path().join(format!("{NAME}.diskqueue.meta.dat"));
    fs::remove_file(&meta).unwrap();
    q.sync_if_due().unwrap();
    assert!(!meta.exists(), "no activity since last sync");
    q.read().unwrap().unwrap();
    q.sync_if_due().unwrap();
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "0\n0,30\n0,30\n");
}

#[test]
fn byte_layout_matches_go_diskqueue() {
    let dir = tempfile::tempdir().unwrap();
    let name = "topic:chan";
    let o = Options {
        max_bytes_per_file: 64,
        min_msg_size: 26,
        max_msg_size: 1024 + 26,
        sync_every: 2500,
        sync_timeout: Duration::from_secs(2),
    };
    let p: Vec<_> = (0..3).map(|i| payload(i, 26)).collect();
    let big = payload(7, 100); // larger than max_bytes_per_file
    let mut q = DiskQueue::open(name, dir.path(), o.clone()).unwrap();
    for m in &p {
        q.put(m).unwrap();
    }
    q.put(&big).unwrap();
    q.put(&p[0]).unwrap();
    q.close().unwrap();

    let expected: BTreeSet<String> = [
        "topic:chan.diskqueue.000000.dat",
        "topic:chan.diskqueue.000001.dat",
        "topic:chan.diskqueue.000002.dat",
        "topic:chan.diskqueue.000003.dat",
        "topic:chan.diskqueue.meta.dat",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(files(dir.path()), expected);
    // 30 + 30 = 60 <= 64; a third record (90 > 64) rolls.
    let mut f0 = vec![0, 0, 0, 26];
    f0.extend_from_slice(&p[0]);
    f0.extend_from_slice(&[0, 0, 0, 26]);
    f0.extend_from_slice(&p[1]);
    assert_eq!(fs::read(data_file(dir.path(), name, 0)).unwrap(), f0);
    // file 1: p2 (30 bytes); the 104-byte record does not fit after it.
    assert_eq!(
        fs::read(data_file(dir.path(), name, 1)).unwrap(),
        record(&p[2])
    );
    // An oversized record goes alone into an empty file.
    let mut f2 = vec![0, 0, 0, 100];
    f2.extend_from_slice(&big);
    assert_eq!(fs::read(data_file(dir.path(), name, 2)).unwrap(), f2);
    assert_eq!(
        fs::read(data_file(dir.path(), name, 3)).unwrap(),
        record(&p[0])
    );
    assert_eq!(meta_text(dir.path(), name).unwrap(), "5\n0,0\n3,30\n");

    // Reading advances readPos; the metadata text follows.
    let mut q = DiskQueue::open(name, dir.path(), o.clone()).unwrap();
    assert_eq!(q.read().unwrap().unwrap(), p[0]);
    q.close().unwrap();
    assert_eq!(meta_text(dir.path(), name).unwrap(), "4\n0,30\n3,30\n");
    let mut q = DiskQueue::open(name, dir.path(), o).unwrap();
    assert_eq!(q.read().unwrap().unwrap(), p[1]);
    q.close().unwrap();
    assert_eq!(meta_text(dir.path(), name).unwrap(), "3\n1,0\n3,30\n");
    assert!(!data_file(dir.path(), name, 0).exists());
}

#[test]
fn exact_fill_then_roll() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(60)).unwrap();
    for i in 0..3 {
        q.put(&payload(i, 26)).unwrap();
    }
    q.close().unwrap();
    assert_eq!(
        fs::metadata(data_file(dir.path(), NAME, 0)).unwrap().len(),
        60
    );
    assert_eq!(
        fs::metadata(data_file(dir.path(), NAME, 1)).unwrap().len(),
        30
    );
    assert_eq!(meta_text(dir.path(), NAME).unwrap(), "3\n0,0\n1,30\n");
}

#[test]
fn large_payloads_and_interleaving() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(NAME, dir.path(), opts(256 * 1024)).unwrap();
    let mut expected = std::collections::VecDeque::new();
    let mut n = 0;
    for round in 0..40 {
        for _ in 0..(round % 5 + 1) {
            let len = if n % 7 == 0 {
                100_000 + n
            } else {
                10 + (n * 37) % 900
            };
            let m = payload(n, len);
            q.put(&m).unwrap();
            expected.push_back(m);
            n += 1;
        }
        for _ in 0..(round % 3 + 1) {
            assert_eq!(q.read().unwrap(), expected.pop_front());
        }
        assert_eq!(q.depth(), expected.len() as i64);
        if round % 13 == 12 {
            q.close().unwrap();
            q = DiskQueue::open(NAME, dir.path(), opts(256 * 1024)).unwrap();
            assert_eq!(q.depth(), expected.len() as i64);
        }
    }
    assert_eq!(drain(&mut q), Vec::from(expected));
    q.close().unwrap();
    assert!(bad_files(dir.path()).is_empty());
}

#[test]
fn invalid_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(0);
    assert!(matches!(
        DiskQueue::open(NAME, dir.path(), o.clone()),
        Err(Error::InvalidOptions(_))
    ));
    o.max_bytes_per_file = 100;
    o.min_msg_size = 10;
    o.max_msg_size = 5;
    assert!(matches!(
        DiskQueue::open(NAME, dir.path(), o),
        Err(Error::InvalidOptions(_))
    ));
    let d = Options::default();
    assert_eq!(d.max_bytes_per_file, 100 * 1024 * 1024);
    assert_eq!(d.min_msg_size, 26);
}
