//! The daemon's lifetime: bind both listeners, serve them, and shut down on request
//! (listeners closed, TCP connections closed and their peers unregistered, in-flight HTTP
//! requests finished).

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use nsq_protocol::lookup::IdentifyReply;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::http::{self, HttpState};
use crate::options::{os_hostname, version_string, Options};
use crate::protocol_v1::Context;
use crate::registration_db::RegistrationDb;

/// A listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("listen ({addr}) failed - {source}")]
pub struct BindError {
    pub addr: String,
    #[source]
    pub source: io::Error,
}

/// A running nsqlookupd.
#[derive(Debug)]
pub struct Server {
    tcp_addr: SocketAddr,
    http_addr: SocketAddr,
    ctx: Arc<Context>,
    stop: watch::Sender<bool>,
    tcp_task: JoinHandle<()>,
    http_task: JoinHandle<()>,
}

impl Server {
    /// Binds `--tcp-address` and `--http-address` (port 0 picks a free port) and starts
    /// serving both.
    pub async fn bind(opts: Options) -> Result<Server, BindError> {
        info!("{}", version_string());
        let tcp = listen(&opts.tcp_address).await?;
        let http = listen(&opts.http_address).await?;
        let local = |l: &TcpListener, addr: &str| {
            l.local_addr().map_err(|source| BindError {
                addr: addr.to_string(),
                source,
            })
        };
        let tcp_addr = local(&tcp, &opts.tcp_address)?;
        let http_addr = local(&http, &opts.http_address)?;

        let ctx = Arc::new(Context {
            db: RegistrationDb::new(),
            identity: IdentifyReply {
                broadcast_address: opts.broadcast_address.clone(),
                hostname: os_hostname(),
                http_port: i64::from(http_addr.port()),
                tcp_port: i64::from(tcp_addr.port()),
                version: nsq_protocol::NSQ_VERSION.to_string(),
            },
        });
        let (stop, stop_rx) = watch::channel(false);

        info!("TCP: listening on {tcp_addr}");
        let tcp_task = tokio::spawn(crate::tcp::accept_loop(
            tcp,
            Arc::clone(&ctx),
            stop_rx.clone(),
        ));

        info!("HTTP: listening on {http_addr}");
        let app = http::router(Arc::new(HttpState {
            ctx: Arc::clone(&ctx),
            inactive_producer_timeout: opts.inactive_producer_timeout,
            tombstone_lifetime: opts.tombstone_lifetime,
            start_time: crate::registration_db::unix_nanos_now() / 1_000_000_000,
        }));
        let mut http_stop = stop_rx;
        let http_task = tokio::spawn(async move {
            let serve = axum::serve(
                http,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                crate::tcp::stopped(&mut http_stop).await;
            });
            if let Err(e) = serve.await {
                tracing::error!("http.Serve() - {e}");
            }
            info!("HTTP: closing {http_addr}");
        });

        Ok(Server {
            tcp_addr,
            http_addr,
            ctx,
            stop,
            tcp_task,
            http_task,
        })
    }

    /// The bound TCP address (for `--tcp-address …:0`, the chosen port).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The registrations, for embedding and tests.
    pub fn db(&self) -> &RegistrationDb {
        &self.ctx.db
    }

    /// Stops accepting, closes every TCP connection (unregistering its peer), lets
    /// in-flight HTTP requests finish, and returns when all of that is done.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.tcp_task.await;
        let _ = self.http_task.await;
    }
}

/// Opens a listener on a Go-style `host:port`. A wildcard host (empty, `0.0.0.0`, `::`)
/// listens on IPv6 and IPv4 together, as Go's `net.Listen("tcp", …)` does; other hosts
/// are resolved and the first address is used.
async fn listen(addr: &str) -> Result<TcpListener, BindError> {
    let err = |source: io::Error| BindError {
        addr: addr.to_string(),
        source,
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| {
        err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "missing port in address",
        ))
    })?;
    let port: u16 = port
        .parse()
        .map_err(|_| err(io::Error::new(io::ErrorKind::InvalidInput, "invalid port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if matches!(host, "" | "0.0.0.0" | "::") {
        if let Ok(listener) = listen_dual_stack(port) {
            return Ok(listener);
        }
        return TcpListener::bind(("0.0.0.0", port)).await.map_err(err);
    }
    let target = tokio::net::lookup_host((host, port))
        .await
        .map_err(err)?
        .next()
        .ok_or_else(|| err(io::Error::new(io::ErrorKind::NotFound, "no such host")))?;
    TcpListener::bind(target).await.map_err(err)
}

fn listen_dual_stack(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v6()?;
    let off: libc::c_int = 0;
    // SAFETY: a valid socket descriptor and a pointer/length pair describing `off`.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            (&off as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port))?;
    socket.listen(1024)
}

/// Reports an IPv4 peer of a dual-stack listener as IPv4 (`10.0.0.1:5`, not
/// `[::ffff:10.0.0.1]:5`), as Go does.
pub(crate) fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// SIGINT/SIGTERM watchers. Create them before binding, so a signal sent as soon as the
/// daemon reports it is listening is not fatal.
#[derive(Debug)]
pub struct ShutdownSignal {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Installs the handlers (inside a runtime).
    pub fn install() -> io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignal {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for either signal.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// How long the binary waits for a clean shutdown before giving up.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
