//! The TCP listener: accepts nsqd connections, checks the `"  V1"` magic, and runs each
//! connection's read → frame → exec → reply loop until the peer leaves, a fatal error,
//! or shutdown; the peer is then removed from every registration.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use nsq_protocol::lookup::encode_response;
use nsq_protocol::MAGIC_V1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info, info_span, warn, Instrument};

use crate::protocol_v1::{self, Context, FrameError, Framed, Session};

/// Accepts connections until `stop` turns true, then waits for them to close.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Context>,
    mut stop: watch::Receiver<bool>,
) {
    let local = listener.local_addr().ok();
    let mut conns = JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    let conn_stop = stop.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    backoff = Duration::from_millis(5);
                    let remote = crate::server::canonical_addr(remote);
                    let span = info_span!("client", peer = %remote);
                    conns.spawn(
                        serve(stream, remote, Arc::clone(&ctx), conn_stop.clone()).instrument(span),
                    );
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    warn!("temporary Accept() failure - {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
        }
    }
    drop(listener);
    if let Some(local) = local {
        info!("TCP: closing {local}");
    }
    while conns.join_next().await.is_some() {}
}

async fn serve(
    mut stream: TcpStream,
    remote: SocketAddr,
    ctx: Arc<Context>,
    mut stop: watch::Receiver<bool>,
) {
    info!("TCP: new client({remote})");
    let mut session = Session::new(remote);
    if let Err(e) = run(&mut stream, &mut session, &ctx, &mut stop).await {
        debug!("connection error - {e}");
    }
    session.disconnect(&ctx);
    info!("CLIENT({remote}): closing");
}

/// Resolves once shutdown has begun.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stopping| stopping).await;
}

/// Reads into `buf`; `None` once shutdown has begun.
async fn read_more(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    stop: &mut watch::Receiver<bool>,
) -> io::Result<Option<usize>> {
    tokio::select! {
        n = stream.read_buf(buf) => n.map(Some),
        _ = stopped(stop) => Ok(None),
    }
}

async fn run(
    stream: &mut TcpStream,
    session: &mut Session,
    ctx: &Context,
    stop: &mut watch::Receiver<bool>,
) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(4096);
    while buf.len() < MAGIC_V1.len() {
        match read_more(stream, &mut buf, stop).await? {
            Some(0) => {
                error!("failed to read protocol version - EOF");
                return Ok(());
            }
            Some(_) => {}
            None => return Ok(()),
        }
    }
    if &buf[..MAGIC_V1.len()] != MAGIC_V1 {
        error!(
            "bad protocol magic '{}'",
            String::from_utf8_lossy(&buf[..MAGIC_V1.len()])
        );
        return reply_and_close(stream, Vec::new(), b"E_BAD_PROTOCOL").await;
    }
    buf.advance(MAGIC_V1.len());

    let mut out = Vec::new();
    loop {
        let pending = loop {
            match protocol_v1::frame(&buf, session.is_identified()) {
                Ok(Framed::Command(cmd, len)) => {
                    buf.advance(len);
                    match session.exec(ctx, cmd) {
                        Ok(reply) => encode_response(&reply, &mut out),
                        Err(e) => {
                            error!("{e}");
                            return reply_and_close(stream, out, e.to_string().as_bytes()).await;
                        }
                    }
                }
                Ok(pending) => break pending,
                Err(FrameError::Fatal(e)) => {
                    error!("{e}");
                    return reply_and_close(stream, out, e.to_string().as_bytes()).await;
                }
                Err(FrameError::LineTooLong(e)) => {
                    error!("{e}");
                    stream.write_all(&out).await?;
                    return Ok(());
                }
            }
        };
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        match read_more(stream, &mut buf, stop).await? {
            Some(0) => {
                if let Some(e) = protocol_v1::eof_error(&pending) {
                    error!("{e}");
                    return reply_and_close(stream, out, e.to_string().as_bytes()).await;
                }
                return Ok(());
            }
            Some(_) => {}
            None => return Ok(()),
        }
    }
}

/// Sends the replies so far plus a final error, then closes our side.
async fn reply_and_close(stream: &mut TcpStream, mut out: Vec<u8>, last: &[u8]) -> io::Result<()> {
    encode_response(last, &mut out);
    stream.write_all(&out).await?;
    stream.shutdown().await
}
