//! Scrape cost of `GET /metrics` on a node with many topics and channels, and its effect
//! on publishing. Run it in release mode (figures are in monitoring/README.md):
//!
//! ```text
//! cargo run --release -p nsqd --example metrics_scrape_bench -- \
//!     [--topics 1000] [--channels 3] [--renders 50] [--seconds 5] [--publishers 4]
//! ```
//!
//! 1. Starts an in-process nsqd (loopback, temporary data path, memory queues large
//!    enough that nothing spills to disk) and creates `topics × channels`, each topic
//!    with one published message so every series has a value.
//! 2. Times `nsqd::metrics::render` directly, then whole HTTP scrapes.
//! 3. Publishers on their own threads send PUB over raw TCP, one at a time, measuring
//!    each round trip: with nothing else going on, while a scraper fetches `/metrics`
//!    once a second (still 15× a usual Prometheus interval), and while it fetches back
//!    to back (a worst case: a core spent on scraping alone).
//!
//! Clients run on plain threads, not on the node's runtime, so their timings include
//! the node's scheduling but not their own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use nsq_protocol::exposition::Format;

struct Args {
    topics: usize,
    channels: usize,
    renders: usize,
    seconds: u64,
    publishers: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        topics: 1000,
        channels: 3,
        renders: 50,
        seconds: 5,
        publishers: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse::<u64>().ok());
        let Some(v) = value else {
            eprintln!("usage: metrics_scrape_bench [--topics N] [--channels N] [--renders N] [--seconds N] [--publishers N]");
            std::process::exit(2);
        };
        match flag.as_str() {
            "--topics" => a.topics = v as usize,
            "--channels" => a.channels = v as usize,
            "--renders" => a.renders = v as usize,
            "--seconds" => a.seconds = v,
            "--publishers" => a.publishers = v as usize,
            _ => {
                eprintln!("unknown flag {flag}");
                std::process::exit(2);
            }
        }
    }
    a
}

/// Min, median, 99th percentile and max of `d`, in milliseconds.
fn summary(mut d: Vec<Duration>) -> String {
    if d.is_empty() {
        return "no samples".into();
    }
    d.sort_unstable();
    let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "min {:.2} ms, median {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        ms(d[0]),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(d[d.len() - 1]),
        d.len()
    )
}

fn latency_summary(mut d: Vec<Duration>, seconds: u64) -> String {
    if d.is_empty() {
        return "no samples".into();
    }
    d.sort_unstable();
    let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    format!(
        "{:.0} msgs/s; round trip p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs",
        d.len() as f64 / seconds as f64,
        us(at(0.5)),
        us(at(0.99)),
        us(at(0.999)),
        us(d[d.len() - 1])
    )
}

/// GET /metrics over a fresh connection; the body's length.
fn scrape(addr: SocketAddr) -> usize {
    let mut s = TcpStream::connect(addr).expect("connect HTTP");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    assert!(raw.starts_with(b"HTTP/1.1 200"), "scrape failed");
    raw.len()
}

/// One publisher: PUB to `topic`, wait for OK, repeat until `stop`.
fn publish_loop(addr: SocketAddr, topic: String, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let mut s = TcpStream::connect(addr).expect("connect TCP");
    s.set_nodelay(true).expect("nodelay");
    s.write_all(nsq_protocol::MAGIC_V2).expect("magic");
    let body = vec![b'x'; 100];
    let mut cmd = BytesMut::new();
    nsq_protocol::client::publish(&mut cmd, &topic, &body);
    let mut reply = [0u8; 10];
    let mut latencies = Vec::with_capacity(200_000);
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        s.write_all(&cmd).expect("PUB");
        s.read_exact(&mut reply).expect("reply");
        latencies.push(t0.elapsed());
        assert_eq!(&reply[8..], b"OK", "PUB failed");
    }
    latencies
}

/// Runs the publishers for `seconds`, with no scraper (`None`) or one that scrapes
/// every `interval` (zero: back to back).
fn publish_phase(
    args: &Args,
    tcp: SocketAddr,
    http: SocketAddr,
    scraping: Option<Duration>,
) -> (Vec<Duration>, Vec<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..args.publishers)
        .map(|i| {
            let stop = stop.clone();
            let topic = format!("bench_{:04}", i % args.topics.max(1));
            std::thread::spawn(move || publish_loop(tcp, topic, stop))
        })
        .collect();
    let scraper = scraping.map(|interval| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                scrape(http);
                took.push(t0.elapsed());
                std::thread::sleep(interval.saturating_sub(t0.elapsed()));
            }
            took
        })
    });
    std::thread::sleep(Duration::from_secs(args.seconds));
    stop.store(true, Ordering::Relaxed);
    let latencies = publishers
        .into_iter()
        .flat_map(|p| p.join().expect("publisher"))
        .collect();
    let scrapes = scraper.map_or_else(Vec::new, |s| s.join().expect("scraper"));
    (latencies, scrapes)
}

fn main() {
    let args = parse_args();
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut opts = nsqd::Options::defaults();
    opts.tcp_address = "127.0.0.1:0".into();
    opts.http_address = "127.0.0.1:0".into();
    opts.data_path = Some(dir.path().to_path_buf());
    opts.mem_queue_size = 10_000_000;
    let running = runtime
        .block_on(nsqd::RunningNsqd::start(opts))
        .expect("start nsqd");
    let (tcp, http) = (running.tcp_addr, running.http_addr.expect("HTTP bound"));
    let nsqd = running.nsqd.clone();

    let t0 = Instant::now();
    {
        let mut s = TcpStream::connect(tcp).expect("connect");
        s.write_all(nsq_protocol::MAGIC_V2).expect("magic");
        let mut reply = [0u8; 10];
        for i in 0..args.topics {
            let topic = nsqd.get_or_create_topic(&format!("bench_{i:04}"));
            for c in 0..args.channels {
                nsqd.get_or_create_channel(&topic, &format!("ch{c}"));
            }
            let mut cmd = BytesMut::new();
            nsq_protocol::client::publish(&mut cmd, &topic.name, b"seed");
            s.write_all(&cmd).expect("PUB");
            s.read_exact(&mut reply).expect("reply");
        }
    }
    println!(
        "node: {} topics x {} channels created and seeded in {:.1} s",
        args.topics,
        args.channels,
        t0.elapsed().as_secs_f64()
    );

    let mut renders = Vec::with_capacity(args.renders);
    let mut text = String::new();
    for _ in 0..args.renders {
        let t0 = Instant::now();
        text = nsqd::metrics::render(&nsqd, Format::Prometheus);
        renders.push(t0.elapsed());
    }
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "exposition: {series} series, {} KiB",
        text.len().div_ceil(1024)
    );
    println!("render (in process):   {}", summary(renders));
    let mut scrapes = Vec::with_capacity(args.renders);
    for _ in 0..args.renders {
        let t0 = Instant::now();
        scrape(http);
        scrapes.push(t0.elapsed());
    }
    println!("scrape (HTTP, idle):   {}", summary(scrapes));

    let n = args.publishers;
    // Warm-up (connections, queue growth), not measured.
    publish_phase(
        &Args {
            seconds: 1,
            ..parse_args()
        },
        tcp,
        http,
        None,
    );
    let (quiet, _) = publish_phase(&args, tcp, http, None);
    println!(
        "publish, {n} publishers, no scraping:      {}",
        latency_summary(quiet, args.seconds)
    );
    let (every_second, scrapes) = publish_phase(&args, tcp, http, Some(Duration::from_secs(1)));
    println!(
        "publish, {n} publishers, scrape every 1 s: {}",
        latency_summary(every_second, args.seconds)
    );
    println!("  scrapes meanwhile: {}", summary(scrapes));
    let (nonstop, scrapes) = publish_phase(&args, tcp, http, Some(Duration::ZERO));
    println!(
        "publish, {n} publishers, scrape nonstop:   {}",
        latency_summary(nonstop, args.seconds)
    );
    println!("  scrapes meanwhile: {}", summary(scrapes));

    runtime.block_on(running.shutdown());
}
