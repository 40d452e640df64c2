//! `nsq` against real daemons started in-process on port 0: bench writer/reader, pub + tail
//! (direct and through lookupd), stat against `/stats`, and `nsq up` (library and binary).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nsq_cli::bench::{self, ReaderArgs, RunArgs, WriterArgs};
use nsq_cli::conn::Connection;
use nsq_cli::http::get_json;
use nsq_cli::publish::{self, PubArgs};
use nsq_cli::stat::{self, StatArgs, Table};
use nsq_cli::tail::{self, TailArgs};
use nsq_cli::up::{Up, UpArgs};
use nsq_protocol::lookup::NodesResponse;
use nsq_protocol::stats::StatsResponse;
use nsqd::RunningNsqd;

async fn start_nsqd(dir: &tempfile::TempDir) -> RunningNsqd {
    let mut opts = nsqd::Options::defaults();
    opts.tcp_address = "127.0.0.1:0".into();
    opts.http_address = "127.0.0.1:0".into();
    opts.data_path = Some(dir.path().to_path_buf());
    opts.mem_queue_size = 1_000_000;
    RunningNsqd::start(opts).await.expect("nsqd starts")
}

/// A `Write` whose bytes the test can read while `tail` owns it.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn tail_args(topic: &str, n: u64) -> TailArgs {
    TailArgs {
        nsqd_tcp_address: vec![],
        lookupd_http_address: vec![],
        topic: topic.into(),
        channel: None,
        total_messages: n,
        max_in_flight: 200,
        lookupd_poll_interval: Duration::from_millis(100),
    }
}

async fn channel_stats(http: &str, topic: &str) -> Table {
    let stats: StatsResponse = get_json(http, &format!("/stats?format=json&topic={topic}"))
        .await
        .expect("/stats answers");
    let mut table = Table::new();
    stat::accumulate(&mut table, &stats);
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_run_publishes_then_drains_through_the_topic() {
    let dir = tempfile::tempdir().unwrap();
    let nsqd = start_nsqd(&dir).await;
    let args = RunArgs {
        nsqd_tcp_address: nsqd.tcp_addr.to_string(),
        topic: "sub_bench".into(),
        channel: "ch".into(),
        size: 50,
        batch_size: 20,
        rdy: 2500,
        runfor: Duration::from_millis(300),
        concurrency: 1,
        create_channel: false,
    };
    let written = bench::writer(&args.writer()).await.unwrap();
    assert!(written.messages > 0);
    assert_eq!(written.messages % 20, 0);
    assert_eq!(written.bytes, written.messages * 50);
    assert!(written.elapsed >= Duration::from_millis(300));
    // No channel existed while writing: everything waits in the topic.
    let http = nsqd.http_addr.unwrap().to_string();
    let topic_row = channel_stats(&http, "sub_bench").await[&("sub_bench".into(), None)];
    assert_eq!(topic_row.messages, written.messages);

    let mut reader = args.reader();
    reader.runfor = Duration::from_secs(4);
    let read = bench::reader(&reader).await.unwrap();
    assert_eq!(
        read.messages, written.messages,
        "the reader drains the topic"
    );
    assert_eq!(read.bytes, written.bytes);
    assert!(read.idle_at_end > Duration::ZERO);
    nsqd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_with_several_connections_and_a_precreated_channel() {
    let dir = tempfile::tempdir().unwrap();
    let nsqd = start_nsqd(&dir).await;
    let addr = nsqd.tcp_addr.to_string();
    let written = bench::writer(&WriterArgs {
        nsqd_tcp_address: addr.clone(),
        topic: "sub_bench".into(),
        size: 100,
        batch_size: 10,
        runfor: Duration::from_millis(300),
        concurrency: 3,
        create_channel: Some("ch".into()),
    })
    .await
    .unwrap();
    let http = nsqd.http_addr.unwrap().to_string();
    let ch = channel_stats(&http, "sub_bench").await[&("sub_bench".into(), Some("ch".into()))];
    assert_eq!(
        ch.messages, written.messages,
        "messages went to the channel"
    );

    let read = bench::reader(&ReaderArgs {
        nsqd_tcp_address: addr,
        topic: "sub_bench".into(),
        channel: "ch".into(),
        rdy: 100,
        runfor: Duration::from_secs(4),
        concurrency: 3,
    })
    .await
    .unwrap();
    assert_eq!(read.messages, written.messages);
    // Every delivery was FINished: nothing is left queued or in flight.
    let ch = channel_stats(&http, "sub_bench").await[&("sub_bench".into(), Some("ch".into()))];
    assert_eq!((ch.depth, ch.in_flight, ch.requeued), (0, 0, 0));
    nsqd.shutdown().await;
}

#[tokio::test]
async fn bench_refuses_bad_names_and_reports_nsqd_errors() {
    let dir = tempfile::tempdir().unwrap();
    let nsqd = start_nsqd(&dir).await;
    let writer = WriterArgs {
        nsqd_tcp_address: nsqd.tcp_addr.to_string(),
        topic: "two words".into(),
        size: 10,
        batch_size: 2,
        runfor: Duration::from_millis(100),
        concurrency: 1,
        create_channel: None,
    };
    let err = bench::writer(&writer).await.unwrap_err();
    assert!(err.to_string().contains("not valid"), "{err}");
    // RDY above --max-rdy-count (2500) is fatal in nsqd; the reader reports it.
    let err = bench::reader(&ReaderArgs {
        nsqd_tcp_address: nsqd.tcp_addr.to_string(),
        topic: "t".into(),
        channel: "ch".into(),
        rdy: 2501,
        runfor: Duration::from_secs(2),
        concurrency: 1,
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("E_INVALID"), "{err}");
    nsqd.shutdown().await;
}

#[tokio::test]
async fn pub_then_tail_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let nsqd = start_nsqd(&dir).await;
    let addr = nsqd.tcp_addr.to_string();
    let published = publish::run(&PubArgs {
        nsqd_tcp_address: addr.clone(),
        topic: "greetings".into(),
        messages: vec!["one".into(), "two".into()],
    })
    .await
    .unwrap();
    assert_eq!(published, 2);
    // Lines, as from stdin: empty lines are skipped, the last line needs no newline.
    let mut conn = Connection::connect(&addr).await.unwrap();
    let lines = publish::publish_lines(&mut conn, "greetings", &b"three\n\nfour"[..])
        .await
        .unwrap();
    assert_eq!(lines, 2);

    let out = SharedBuf::default();
    let mut args = tail_args("greetings", 4);
    args.nsqd_tcp_address = vec![addr];
    let printed = tokio::time::timeout(
        Duration::from_secs(10),
        tail::run(&args, out.clone(), std::future::pending()),
    )
    .await
    .expect("tail finishes after -n messages")
    .unwrap();
    assert_eq!(printed, 4);
    assert_eq!(out.text(), "one\ntwo\nthree\nfour\n");
    nsqd.shutdown().await;
}

#[tokio::test]
async fn pub_reports_fatal_errors() {
    let dir = tempfile::tempdir().unwrap();
    let nsqd = start_nsqd(&dir).await;
    let mut opts = PubArgs {
        nsqd_tcp_address: nsqd.tcp_addr.to_string(),
        topic: "bad topic".into(),
        messages: vec!["x".into()],
    };
    assert!(publish::run(&opts).await.is_err(), "invalid name refused");
    // An empty body is refused by nsqd itself.
    opts.topic = "t".into();
    opts.messages = vec![String::new()];
    let err = publish::run(&opts).await.unwrap_err();
    assert!(err.to_string().contains("E_BAD_MESSAGE"), "{err}");
    nsqd.shutdown().await;
}

fn up_args(dir: &tempfile::TempDir) -> UpArgs {
    UpArgs {
        data_path: dir.path().join("nsq-data"),
        tcp_address: "127.0.0.1:0".into(),
        http_address: "127.0.0.1:0".into(),
        lookupd_tcp_address: "127.0.0.1:0".into(),
        lookupd_http_address: "127.0.0.1:0".into(),
        broadcast_address: "127.0.0.1".into(),
        nsqd_flags: vec!["--mem-queue-size=50".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_registers_nsqd_with_lookupd_and_tail_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start(&up_args(&dir)).await.unwrap();
    assert!(dir.path().join("nsq-data").is_dir(), "data path created");
    assert_eq!(
        up.nsqd.nsqd.opts.mem_queue_size, 50,
        "flags after -- reach nsqd"
    );
    let text = up.describe();
    assert!(text.contains(&up.nsqd.tcp_addr.to_string()), "{text}");
    assert!(text.contains(&up.lookupd.http_addr().to_string()), "{text}");

    let lookupd_http = up.lookupd.http_addr().to_string();
    let registered = async {
        loop {
            let nodes: NodesResponse = get_json(&lookupd_http, "/nodes").await.unwrap();
            if let Some(p) = nodes.producers.first() {
                return p.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let node = tokio::time::timeout(Duration::from_secs(5), registered)
        .await
        .expect("nsqd registers with lookupd");
    assert_eq!(node.broadcast_address, "127.0.0.1");
    assert_eq!(node.tcp_port, i64::from(up.nsqd.tcp_addr.port()));

    publish::run(&PubArgs {
        nsqd_tcp_address: up.nsqd.tcp_addr.to_string(),
        topic: "found".into(),
        messages: vec!["via lookupd".into()],
    })
    .await
    .unwrap();
    let out = SharedBuf::default();
    let mut args = tail_args("found", 1);
    args.lookupd_http_address = vec![format!("http://{lookupd_http}/")];
    let printed = tokio::time::timeout(
        Duration::from_secs(10),
        tail::run(&args, out.clone(), std::future::pending()),
    )
    .await
    .expect("tail discovers the nsqd")
    .unwrap();
    assert_eq!(printed, 1);
    assert_eq!(out.text(), "via lookupd\n");

    let stat_args = StatArgs {
        nsqd_http_address: vec![],
        lookupd_http_address: vec![lookupd_http],
        topic: Some("found".into()),
        channel: None,
        interval: Duration::from_millis(10),
        count: 2,
    };
    stat::run(&stat_args, std::future::pending()).await.unwrap();
    up.shutdown().await;
}

#[test]
fn nsq_up_binary_prints_addresses_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nsq"))
        .args(["up", "--data-path"])
        .arg(&data)
        .args([
            "--tcp-address=127.0.0.1:0",
            "--http-address=127.0.0.1:0",
            "--lookupd-tcp-address=127.0.0.1:0",
            "--lookupd-http-address=127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("Ctrl-C to stop") {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{printed}");
        printed.push_str(&line);
    }
    assert!(printed.contains("nsqd        TCP  127.0.0.1:"), "{printed}");
    assert!(printed.contains("nsqlookupd  HTTP 127.0.0.1:"), "{printed}");
    assert!(data.is_dir());
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // A clean shutdown writes nsqd's metadata.
    assert!(data.join("nsqd.dat").exists());
}

#[test]
fn nsq_stat_binary_reads_stats_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nsqd = rt.block_on(start_nsqd(&dir));
    rt.block_on(publish::run(&PubArgs {
        nsqd_tcp_address: nsqd.tcp_addr.to_string(),
        topic: "watched".into(),
        messages: vec!["a".into(), "b".into(), "c".into()],
    }))
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nsq"))
        .args(["stat", "--count=1", "--nsqd-http-address"])
        .arg(nsqd.http_addr.unwrap().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("watched "))
        .unwrap_or_else(|| panic!("{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    // name, depth, mem, disk, ...: three queued in memory, none on disk.
    assert_eq!(&cols[..4], &["watched", "3", "3", "0"], "{text}");
    rt.block_on(nsqd.shutdown());
}
