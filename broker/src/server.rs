//! Listeners, the accept loop, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use nsq_protocol::frame::{put_frame, FrameType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::lookup::{self, Advertised};
use crate::nsqd::Nsqd;
use crate::options::Options;
use crate::{protocol_v2, queue_scan};

/// What lookupd is told: `--broadcast-*` values, defaulting to the bound ports.
fn advertised(opts: &Options, tcp: SocketAddr, http: Option<SocketAddr>) -> Advertised {
    let pick = |flag: u16, bound: u16| if flag != 0 { flag } else { bound };
    Advertised {
        broadcast_address: opts.effective_broadcast_address(),
        hostname: crate::options::hostname(),
        tcp_port: pick(opts.broadcast_tcp_port, tcp.port()),
        http_port: pick(opts.broadcast_http_port, http.map_or(0, |a| a.port())),
    }
}

/// Why nsqd could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Metadata(#[from] crate::metadata::MetadataError),
    #[error("failed to listen on TCP {addr}: {source}")]
    Tcp {
        addr: String,
        source: std::io::Error,
    },
    #[error("failed to listen on HTTP {addr}: {source}")]
    Http {
        addr: String,
        source: std::io::Error,
    },
}

/// A started nsqd: its node, its bound addresses, and the handle that stops it.
pub struct RunningNsqd {
    pub nsqd: Arc<Nsqd>,
    pub tcp_addr: SocketAddr,
    /// The bound HTTP address; `None` when `--http-address` is empty.
    pub http_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    accept_task: tokio::task::JoinHandle<()>,
    scan_task: tokio::task::JoinHandle<()>,
    lookup_task: tokio::task::JoinHandle<()>,
    http_task: Option<tokio::task::JoinHandle<()>>,
    statsd_task: Option<tokio::task::JoinHandle<()>>,
    /// Released when the node is dropped, after shutdown has flushed everything.
    _dir_lock: crate::metadata::DirLock,
}

/// How long shutdown waits for connections to finish after asking them to close.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

impl RunningNsqd {
    /// Binds the listeners and starts serving.
    pub async fn start(opts: Options) -> Result<RunningNsqd, StartError> {
        let tcp = TcpListener::bind(&opts.tcp_address)
            .await
            .map_err(|source| StartError::Tcp {
                addr: opts.tcp_address.clone(),
                source,
            })?;
        let tcp_addr = tcp.local_addr().map_err(|source| StartError::Tcp {
            addr: opts.tcp_address.clone(),
            source,
        })?;
        let http = bind_http(&opts.http_address).await?;
        let data_path = opts.effective_data_path();
        let dir_lock = crate::metadata::DirLock::acquire(&data_path)?;
        let nsqd = Nsqd::new(opts).into_shared();
        nsqd.load_metadata()?;
        let (stop, stop_rx) = watch::channel(false);
        tracing::info!(address = %tcp_addr, "TCP: listening");
        let http_addr = http.as_ref().map(|(_, addr)| *addr);
        let http_task = http.map(|(listener, http_addr)| {
            let state = Arc::new(crate::http::HttpState {
                nsqd: nsqd.clone(),
                tcp_addr,
                http_addr,
            });
            tokio::spawn(crate::http::serve(listener, state, stop_rx.clone()))
        });
        let accept_task = tokio::spawn(accept_loop(tcp, nsqd.clone(), stop_rx.clone()));
        let scan_task = tokio::spawn(queue_scan::run(nsqd.clone(), stop_rx.clone()));
        let advertised = advertised(&nsqd.opts, tcp_addr, http_addr);
        let statsd_task = nsqd
            .opts
            .statsd_address
            .clone()
            .filter(|a| !a.is_empty())
            .map(|addr| {
                let prefix = crate::statsd::resolve_prefix(
                    &nsqd.opts.statsd_prefix,
                    &advertised.broadcast_address,
                    advertised.http_port,
                );
                tokio::spawn(crate::statsd::run(
                    nsqd.clone(),
                    addr,
                    prefix,
                    stop_rx.clone(),
                ))
            });
        let lookup_task = tokio::spawn(lookup::run(nsqd.clone(), advertised, stop_rx));
        Ok(RunningNsqd {
            nsqd,
            tcp_addr,
            http_addr,
            stop,
            accept_task,
            scan_task,
            lookup_task,
            http_task,
            statsd_task,
            _dir_lock: dir_lock,
        })
    }

    /// Graceful shutdown: stop accepting, close every client, then persist queues.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.stop.send_replace(true);
        let _ = self.accept_task.await;
        if let Some(mut http) = self.http_task {
            // Requests in progress get the same grace as TCP connections.
            if tokio::time::timeout(CLOSE_GRACE, &mut http).await.is_err() {
                http.abort();
            }
        }
        let _ = self.scan_task.await;
        let _ = self.lookup_task.await;
        if let Some(t) = self.statsd_task {
            let _ = t.await;
        }
        crate::shutdown::persist(&self.nsqd);
        tracing::info!("shutdown complete");
    }
}

/// Binds `--http-address` unless it is empty.
async fn bind_http(addr: &str) -> Result<Option<(TcpListener, SocketAddr)>, StartError> {
    if addr.is_empty() {
        return Ok(None);
    }
    let err = |source| StartError::Http {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let bound = listener.local_addr().map_err(err)?;
    Ok(Some((listener, bound)))
}

async fn accept_loop(listener: TcpListener, nsqd: Arc<Nsqd>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(5);
                    let _ = stream.set_nodelay(true);
                    conns.spawn(handle_connection(stream, peer, nsqd.clone(), stop.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    for c in nsqd.clients() {
        c.kill();
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

async fn handle_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    nsqd: Arc<Nsqd>,
    mut stop: watch::Receiver<bool>,
) {
    let mut magic = [0u8; 4];
    // nsqd applies no deadline while waiting for the magic; shutdown still interrupts.
    let read = tokio::select! {
        r = stream.read_exact(&mut magic) => r,
        _ = stop.changed() => return,
    };
    if read.is_err() {
        return;
    }
    if &magic != nsq_protocol::MAGIC_V2 {
        tracing::error!(peer = %peer, magic = ?String::from_utf8_lossy(&magic), "bad protocol magic");
        let mut out = BytesMut::new();
        put_frame(&mut out, FrameType::Error, b"E_BAD_PROTOCOL");
        let _ = stream.write_all(&out).await;
        let _ = stream.shutdown().await;
        return;
    }
    if *stop.borrow() {
        return;
    }
    let (r, w) = stream.into_split();
    protocol_v2::serve(nsqd, r, w, peer).await;
}
