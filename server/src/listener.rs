//! The relay's accept loop: hyper connections of our own rather than
//! `axum::serve`, so that the relay bounds what a connection may cost it.
//!
//! - **Request timeout** ([`Limits::request_timeout`]): a connection must
//!   deliver a complete request head within it, counted from when it was
//!   accepted and, on a kept-alive connection, from when the previous
//!   response ended; otherwise it is closed. Sockets that send nothing, or a
//!   header byte now and then, no longer stay open. Once a connection is
//!   upgraded to a WebSocket this no longer applies (the session has its own
//!   silence rules).
//! - **Connection cap** ([`Limits::max_connections`]): past it, a new
//!   connection gets a short `503 Service Unavailable` written straight to
//!   the socket and is closed, without hyper. Upgraded WebSockets count until
//!   they end. At startup the cap is lowered to what the process's open-file
//!   limit leaves room for.
//!
//! Graceful shutdown is `axum::serve`'s: once the signal resolves no new
//! connection is accepted, every open one is asked to finish (an idle
//! keep-alive connection closes at once) and the loop waits for them, at most
//! [`crate::SHUTDOWN_GRACE`]. (hyper-util's `GracefulShutdown` cannot watch an
//! upgradeable HTTP/1-only connection, so a `watch` channel does it.)

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

/// Default of [`Limits::max_connections`].
pub const MAX_CONNECTIONS: usize = 4096;
/// Default of [`Limits::request_timeout`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest [`Limits::request_timeout`] the relay uses.
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// File descriptors kept out of the connection cap for everything else the
/// relay opens: its databases, the dashboard's replica and its loopback
/// client, logs.
pub const FD_RESERVE: u64 = 64;
/// The relay warns about refused connections at most this often (with the
/// number refused since the last warning).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// What a connection may cost the relay; [`crate::run_with_limits`] takes
/// them (`muster-server serve --max-connections N --request-timeout SECS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most (WebSockets included); past it a new
    /// connection is answered `503` and closed. Lowered at startup to what
    /// the open-file limit leaves room for (less [`FD_RESERVE`]).
    pub max_connections: usize,
    /// How long a connection has to deliver a complete request head, from
    /// when it opened or its previous response ended (at most
    /// [`MAX_REQUEST_TIMEOUT`] is used).
    pub request_timeout: Duration,
    /// Catch-up batches being built or sent at once, over all devices: a
    /// device in catch-up waits for a slot before the relay reads its next
    /// batch, and frees it once the batch is on its way, so a thousand
    /// fresh phones at once cost this many batches of memory, not a
    /// thousand.
    pub catch_up_batches: usize,
    /// The bytes a catch-up batch aims at (at most the protocol's 1 MiB).
    /// Fewer bytes mean more batches, each one transaction on the device:
    /// slower first syncs. (What a connection keeps afterwards does not
    /// grow with it: messages go out in 64 KiB fragments,
    /// [`crate::upgrade::FRAGMENT_BYTES`].)
    pub catch_up_batch_bytes: usize,
}

/// Default [`Limits::catch_up_batch_bytes`].
pub const CATCH_UP_BATCH_BYTES: usize = 1 << 20;

/// Default [`Limits::catch_up_batches`].
pub const CATCH_UP_BATCHES: usize = 16;

impl Default for Limits {
    /// [`MAX_CONNECTIONS`] connections, [`REQUEST_TIMEOUT`],
    /// [`CATCH_UP_BATCHES`] of [`CATCH_UP_BATCH_BYTES`].
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            request_timeout: REQUEST_TIMEOUT,
            catch_up_batches: CATCH_UP_BATCHES,
            catch_up_batch_bytes: CATCH_UP_BATCH_BYTES,
        }
    }
}

/// The line a client past the cap reads in the body of its `503`.
pub fn refusal_message(cap: usize) -> String {
    format!("muster-server: too many open connections (cap {cap}); try again shortly\n")
}

/// The connection cap the process can honour: `wanted`, or less if the soft
/// open-file limit (`ulimit -n`) is below `wanted` + [`FD_RESERVE`].
pub fn effective_max_connections(wanted: usize) -> usize {
    let wanted = wanted.clamp(1, Semaphore::MAX_PERMITS);
    // First raise the soft limit towards the hard one, as far as the cap
    // needs (a common soft default of 1,024 would otherwise cap a relay of
    // a thousand phones).
    #[cfg(unix)]
    if let Err(e) = rlimit::increase_nofile_limit(wanted as u64 + FD_RESERVE) {
        tracing::debug!(error = %e, "cannot raise the open-file limit");
    }
    #[cfg(unix)]
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _hard)) => {
            let room = soft.saturating_sub(FD_RESERVE).max(1);
            if (wanted as u64) > room {
                let cap = usize::try_from(room).unwrap_or(wanted);
                tracing::warn!(
                    open_file_limit = soft,
                    wanted,
                    cap,
                    "the open-file limit (ulimit -n {soft}) leaves room for {cap} connections, \
                     not {wanted}; serving at most {cap} (raise the limit to serve more)"
                );
                return cap;
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot read the open-file limit"),
    }
    wanted
}

/// Serves `router` on `listener` within `limits` until `signal` resolves,
/// then shuts down gracefully (see the module's documentation).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    signal: impl Future<Output = ()>,
) {
    let cap = effective_max_connections(limits.max_connections);
    let timeout = limits.request_timeout.min(MAX_REQUEST_TIMEOUT);
    tracing::debug!(
        cap,
        request_timeout = ?timeout,
        "accepting connections"
    );
    let open = Arc::new(Semaphore::new(cap));
    let refusal = refusal_response(cap);
    let mut refusals = Throttle::new(REFUSAL_LOG_EVERY);
    let mut accept_errors = Throttle::new(REFUSAL_LOG_EVERY);
    // Flipped when the signal resolves: connections finish gracefully.
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; closed once all are done.
    let (done_tx, done_rx) = watch::channel(());
    let mut signal = pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors (EMFILE) and the like: wait a
                    // little rather than spin on a listener that stays ready.
                    if let Some(more) = accept_errors.hit() {
                        tracing::error!(error = %e, more, "cannot accept connections");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refuse(stream, &refusal);
            match refusals.hit() {
                Some(0) => tracing::warn!(
                    %peer,
                    cap,
                    "refusing connections: {cap} are open, the cap (--max-connections)"
                ),
                Some(more) => tracing::warn!(
                    %peer,
                    cap,
                    "refusing connections: {cap} are open, the cap (--max-connections); \
                     {more} more refused since the last warning"
                ),
                None => {}
            }
            continue;
        };
        // Frames go out as they are written: a live change, or the last
        // fragment of a batch, does not wait for the previous one's ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        tokio::spawn(connection(
            stream,
            peer,
            permit,
            router.clone(),
            timeout,
            stop_rx.clone(),
            done_rx.clone(),
        ));
    }
    drop(listener);
    drop(done_rx);
    stop_tx.send_replace(true);
    if tokio::time::timeout(crate::SHUTDOWN_GRACE, done_tx.closed())
        .await
        .is_err()
    {
        tracing::info!(
            left = done_tx.receiver_count(),
            "connections still open at the end of the shutdown grace period"
        );
    }
}

/// Drives one accepted connection to its end.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    router: Router,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
    _done: watch::Receiver<()>,
) {
    // hyper's header read timeout starts only once the first byte is in
    // (hyper-util first reads to tell HTTP/1 from HTTP/2), so the first
    // request head has a deadline of ours, counted from the accept.
    let first_deadline = Instant::now() + timeout;
    let seen_request = Arc::new(AtomicBool::new(false));
    let service = {
        let seen_request = seen_request.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            seen_request.store(true, Ordering::Relaxed);
            request.extensions_mut().insert(ConnectInfo(peer));
            tower_service::Service::call(&mut router.clone(), request)
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // On keep-alive, hyper restarts this timer when a response has been
    // written, so an idle kept-alive connection is closed after `timeout`.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout);
    // The permit travels with the socket, also into an upgraded WebSocket,
    // and is given back when the socket is closed.
    let io = TokioIo::new(Counted {
        io: stream,
        _permit: permit,
    });
    let mut conn = pin!(builder.serve_connection_with_upgrades(io, service));
    let mut first_pending = true;
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(first_deadline), if first_pending => {
                if !seen_request.load(Ordering::Relaxed) {
                    tracing::debug!(%peer, ?timeout, "closing a connection that sent no request in time");
                    return;
                }
                first_pending = false;
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A socket that holds one place under the connection cap while it is open.
struct Counted {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The whole answer to a connection past the cap.
fn refusal_response(cap: usize) -> Vec<u8> {
    let body = refusal_message(cap);
    format!(
        "HTTP/1.1 503 Service Unavailable\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Retry-After: 5\r\n\
         Connection: close\r\n\
         \r\n\
         {body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a connection past the cap and closes it, without waiting: the
/// answer fits in a fresh socket's send buffer. What the client already
/// sent is read away first, so that the close is a FIN rather than a reset
/// that could discard the answer. (Through the std socket: tokio's
/// `try_write` would not even try before the reactor has seen the new
/// socket writable, which under load it may not have yet.)
fn refuse(stream: TcpStream, response: &[u8]) {
    use std::io::{Read, Write};
    let Ok(stream) = stream.into_std() else {
        return;
    };
    // Non-blocking, as tokio left it.
    let _ = (&stream).write(response);
    let mut sink = [0u8; 2048];
    for _ in 0..8 {
        match (&stream).read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// Errors of one connection that `accept` reports; the listener is fine.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Lets an event through at most once per period, counting the others.
struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(events held back since the last one let through)`, or `None`
    /// to stay quiet.
    fn hit(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}
