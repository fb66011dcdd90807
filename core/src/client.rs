//! The tokio + tokio-tungstenite driver of sync sessions (feature `client`).
//!
//! [`sync_once`] connects, catches up, pushes everything pending, waits for
//! the acknowledgements and returns: what `muster sync` and a phone's
//! background task need. [`sync_live`] stays connected, reconnecting with
//! exponential backoff and full jitter, until told to stop.
//!
//! The protocol logic is all in [`crate::sync::client::ClientSession`]; this
//! module only moves frames, keeps time and retries.
//!
//! Nothing waits forever ([`Timeouts`]): opening the connection (TCP and the
//! WebSocket handshake) has [`Timeouts::connect`]; while the session waits
//! for the relay to answer (its `welcome`, the catch-up up to `caught_up`,
//! acknowledgements of pushes) only protocol messages count as progress, and
//! none for [`Timeouts::reply`] ends the session, however many pongs arrive.
//! Live and idle, the connection is alive as long as the relay answers
//! pings (PROTOCOL.md §2).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::{Error, Result};
use crate::model::Millis;
use crate::store::Store;
use crate::sync::client::{ClientSession, SyncEvent};
use crate::sync::timers;
use crate::sync::wire::{self, code};

/// How long to wait for the relay before calling a connection dead: the
/// default [`Timeouts::reply`].
pub const READ_TIMEOUT: Duration = Duration::from_millis(timers::REPLY_TIMEOUT as u64);
/// How long opening a connection (TCP connect and the WebSocket handshake)
/// may take: the default [`Timeouts::connect`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// After this long without hearing from the relay, the client pings it, so
/// that an idle live connection proves itself alive before
/// [`READ_TIMEOUT`] (the relay answers pings, and pings every 30 s itself).
pub const PING_AFTER: Duration = Duration::from_millis(timers::PING_AFTER as u64);
/// First retry delay; doubles per failure up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(timers::MIN_BACKOFF as u64);
/// Longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_millis(timers::MAX_BACKOFF as u64);

/// How long a sync waits for the relay. [`Timeouts::default`] is what
/// PROTOCOL.md §2 states: [`CONNECT_TIMEOUT`] and [`READ_TIMEOUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For the TCP connection and the WebSocket handshake (TLS included).
    pub connect: Duration,
    /// For an answer from the relay. While the session awaits one (the
    /// `welcome`, the catch-up, acknowledgements), only protocol messages
    /// count and pongs do not; live and idle, any frame (pongs included)
    /// keeps the connection alive, and the client pings after a third of
    /// this (at most [`PING_AFTER`]) of silence.
    pub reply: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: CONNECT_TIMEOUT,
            reply: READ_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// `reply` as given and `connect` the lesser of it and
    /// [`CONNECT_TIMEOUT`]: "wait at most this long for the relay".
    pub fn within(reply: Duration) -> Timeouts {
        Timeouts {
            connect: reply.min(CONNECT_TIMEOUT),
            reply,
        }
    }

    /// The session's timers for these timeouts.
    fn session_timers(&self) -> timers::ClientTimers {
        timers::ClientTimers::with_reply(millis(self.reply))
    }
}

/// A duration as the sessions' milliseconds.
fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

pub use crate::sync::timers::is_timeout;

/// What a sync is doing, for a status line or a phone's sync indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Opening a connection (attempt number from 1).
    Connecting {
        /// Attempt number.
        attempt: u32,
    },
    /// Receiving: `done` of `total` log entries.
    Pulling {
        /// Entries covered.
        done: u64,
        /// Entries to cover.
        total: u64,
    },
    /// Sending local changes.
    Pushing {
        /// Changes sent in the last message.
        changes: usize,
    },
    /// Everything the relay had has arrived; live changes follow.
    CaughtUp,
    /// Records changed because of the relay.
    Changed {
        /// Their ids.
        docs: Vec<String>,
    },
    /// Not connected; the next attempt is in `retry_in`.
    Offline {
        /// Why the last attempt ended.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// The relay refused a local change, or an entry could not be used.
    Warning(String),
    /// The sync stopped on an error. `permanent` errors (an unknown or
    /// revoked token, an unsupported protocol) need the user; live sync
    /// retries the others and reports [`Status::Offline`] next.
    Error {
        /// What went wrong, for a person.
        message: String,
        /// Whether retrying cannot help.
        permanent: bool,
    },
}

impl Status {
    fn error(e: &Error) -> Status {
        Status::Error {
            message: e.to_string(),
            permanent: is_permanent(e),
        }
    }
}

/// What one sync moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Records that changed on this device.
    pub changed_docs: usize,
    /// Local changes sent.
    pub pushed: usize,
    /// Local changes the relay confirmed.
    pub acknowledged: usize,
    /// Local changes the relay refused for good.
    pub rejected: usize,
    /// Entries from the relay that could not be used.
    pub skipped: usize,
    /// Whether the relay could not trust the cursor (fallback ran).
    pub resynced: bool,
    /// Frames received.
    pub frames_in: usize,
    /// Frames sent.
    pub frames_out: usize,
    /// Bytes received.
    pub bytes_in: usize,
    /// Bytes sent.
    pub bytes_out: usize,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, within: Duration) -> Result<Socket> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(wire::MAX_FRAME_BYTES))
        .max_frame_size(Some(wire::MAX_FRAME_BYTES));
    let opening = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    let (socket, _) = tokio::time::timeout(within, opening)
        .await
        .map_err(|_| {
            Error::Network(format!(
                "{}{url} within {} s: is the relay running and reachable?",
                timers::NO_ANSWER,
                timers::seconds(millis(within))
            ))
        })?
        .map_err(|e| Error::Network(format!("{url}: {}", connection_problem(&e))))?;
    Ok(socket)
}

/// What went wrong with the connection, in words for a person: an error of
/// the operating system by its kind ("connection refused"), without the
/// "(os error 111)" that means nothing to a volunteer.
fn connection_problem(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use std::io::ErrorKind;
    use tokio_tungstenite::tungstenite::Error as Ws;
    match e {
        Ws::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => {
                "connection refused: nothing answers at this address; is the relay running?".into()
            }
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
                "the connection was cut".into()
            }
            ErrorKind::TimedOut => "the connection timed out".into(),
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                "the network cannot reach the relay (is this device online?)".into()
            }
            kind => {
                // A failed name lookup is an uncategorised error whose text
                // says so; anything else by its kind.
                let text = io.to_string();
                if text.contains("failed to lookup address")
                    || text.contains("Name or service not known")
                {
                    "the relay's host name cannot be found (is this device online, and the address right?)".into()
                } else {
                    kind.to_string()
                }
            }
        },
        other => other.to_string(),
    }
}

/// Access to the device store for the length of one call: exclusive for a
/// one-shot sync, shared with the app (which writes meanwhile) for live sync.
trait StoreAccess: Sync {
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R;
}

impl StoreAccess for Mutex<Store> {
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl StoreAccess for Mutex<&mut Store> {
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Where to sync, as whom, and the clock to stamp acknowledgements with.
struct Endpoint<'a> {
    url: &'a str,
    token: &'a str,
    clock: &'a (dyn Fn() -> Millis + Sync),
    wake: Option<&'a Notify>,
    timeouts: Timeouts,
}

/// One connection's work. `settle_and_return` ends it once settled (one
/// shot); otherwise it runs until `stop` resolves or the connection fails.
async fn run_session(
    store: &impl StoreAccess,
    at: &Endpoint<'_>,
    on_status: &mut (dyn FnMut(Status) + Send),
    report: &mut SyncReport,
    settle_and_return: bool,
    stop: &mut (dyn Future<Output = ()> + Unpin + Send),
) -> Result<()> {
    let mut socket = connect(at.url, at.timeouts.connect).await?;
    let mut session = store.with(|s| ClientSession::new(s, at.token))?;
    session.set_reply_timeout(at.timeouts.session_timers().reply);
    // The local writes of other processes are picked up at this pace.
    let period = Duration::from_millis(at.timeouts.session_timers().ping_after() as u64)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The session's timers run on this clock (monotonic).
    let opened = tokio::time::Instant::now();
    let clock = || millis(opened.elapsed());
    session.start(clock());
    loop {
        while let Some(frame) = session.poll_transmit() {
            report.frames_out += 1;
            report.bytes_out += frame.len();
            socket
                .send(WsMessage::Binary(frame.into()))
                .await
                .map_err(|e| Error::Network(connection_problem(&e)))?;
        }
        while let Some(event) = session.poll_event() {
            match event {
                SyncEvent::Welcomed { cursor_trusted, .. } => report.resynced |= !cursor_trusted,
                SyncEvent::Pulling { done, total } => on_status(Status::Pulling { done, total }),
                SyncEvent::Changed { docs } => {
                    report.changed_docs += docs.len();
                    on_status(Status::Changed { docs });
                }
                SyncEvent::Pushing { changes } => {
                    report.pushed += changes;
                    on_status(Status::Pushing { changes });
                }
                SyncEvent::Acknowledged { changes } => report.acknowledged += changes,
                SyncEvent::Rejected { doc, reason } => {
                    report.rejected += 1;
                    on_status(Status::Warning(format!(
                        "the relay refused a change to {doc}: {reason}"
                    )));
                }
                SyncEvent::Skipped { doc, reason } => {
                    report.skipped += 1;
                    on_status(Status::Warning(format!(
                        "skipped an entry of {doc}: {reason}"
                    )));
                }
                SyncEvent::CaughtUp => on_status(Status::CaughtUp),
            }
        }
        if settle_and_return && store.with(|s| session.is_settled(s))? {
            let _ = socket.close(None).await;
            store.with(|s| s.checkpoint())?;
            return Ok(());
        }
        session.handle_timeout(clock())?;
        if session.poll_ping() {
            socket
                .send(WsMessage::Ping(Vec::new().into()))
                .await
                .map_err(|e| Error::Network(connection_problem(&e)))?;
        }
        let deadline = session
            .poll_timeout()
            .map(|t| opened + Duration::from_millis(t.max(0) as u64));
        tokio::select! {
            incoming = socket.next() => {
                let heard = clock();
                let frame = match incoming {
                    None => return Err(Error::Network("the relay closed the connection".into())),
                    Some(Err(e)) => return Err(Error::Network(connection_problem(&e))),
                    Some(Ok(WsMessage::Binary(b))) => b,
                    Some(Ok(WsMessage::Close(_))) => return Err(Error::Network("the relay closed the connection".into())),
                    // Pings are answered by tungstenite; pongs only count
                    // as a sign of life, not as an answer.
                    Some(Ok(_)) => {
                        session.handle_heard(heard, false);
                        continue;
                    }
                };
                session.handle_heard(heard, true);
                report.frames_in += 1;
                report.bytes_in += frame.len();
                store.with(|s| session.handle_frame(s, &frame, (at.clock)()))?;
            }
            // The session's next timer: handled at the top of the loop.
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = tick.tick() => {
                // Local writes made meanwhile (by this or another process).
                store.with(|s| session.push_pending(s))?;
            }
            _ = async {
                match at.wake {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            } => {
                // The app just wrote: push now rather than at the next tick.
                store.with(|s| session.push_pending(s))?;
            }
            _ = &mut *stop => {
                let _ = socket.close(None).await;
                return Ok(());
            }
        }
    }
}

/// Syncs once: pulls everything new, pushes everything pending, returns when
/// the relay has acknowledged it all. The store is held for the whole sync;
/// see [`sync_once_shared`] for a store the app keeps using meanwhile.
pub async fn sync_once(
    store: &mut Store,
    url: &str,
    token: &str,
    clock: &(dyn Fn() -> Millis + Sync),
    on_status: &mut (dyn FnMut(Status) + Send),
) -> Result<SyncReport> {
    sync_once_with(store, url, token, clock, on_status, Timeouts::default()).await
}

/// [`sync_once`] with other [`Timeouts`] than PROTOCOL.md's.
pub async fn sync_once_with(
    store: &mut Store,
    url: &str,
    token: &str,
    clock: &(dyn Fn() -> Millis + Sync),
    on_status: &mut (dyn FnMut(Status) + Send),
    timeouts: Timeouts,
) -> Result<SyncReport> {
    once(&Mutex::new(store), url, token, clock, on_status, timeouts).await
}

/// [`sync_once`] on a store shared with the app: it is locked only for each
/// short step, so local writes and searches go on during a long first sync
/// (what a phone's background task needs).
pub async fn sync_once_shared(
    store: &Mutex<Store>,
    url: &str,
    token: &str,
    clock: &(dyn Fn() -> Millis + Sync),
    on_status: &mut (dyn FnMut(Status) + Send),
) -> Result<SyncReport> {
    once(store, url, token, clock, on_status, Timeouts::default()).await
}

async fn once(
    store: &impl StoreAccess,
    url: &str,
    token: &str,
    clock: &(dyn Fn() -> Millis + Sync),
    on_status: &mut (dyn FnMut(Status) + Send),
    timeouts: Timeouts,
) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    on_status(Status::Connecting { attempt: 1 });
    let never = std::future::pending::<()>();
    let mut never = std::pin::pin!(never);
    let at = Endpoint {
        url,
        token,
        clock,
        wake: None,
        timeouts,
    };
    match run_session(store, &at, on_status, &mut report, true, &mut never).await {
        Ok(()) => Ok(report),
        Err(e) => {
            on_status(Status::error(&e));
            Err(e)
        }
    }
}

/// The store setting that holds the relay's sync URL once enrolled.
pub const URL_SETTING: &str = "relay_url";
/// The store setting that holds the device's token once enrolled.
pub const TOKEN_SETTING: &str = "relay_token";

/// The relay URL and token this store was enrolled with, if any.
pub fn enrollment(store: &Store) -> Result<Option<(String, String)>> {
    Ok(
        match (store.setting(URL_SETTING)?, store.setting(TOKEN_SETTING)?) {
            (Some(url), Some(token)) => Some((url, token)),
            _ => None,
        },
    )
}

/// Saves the relay URL (as given by [`sync_url`]) and token in the store.
pub fn save_enrollment(store: &mut Store, url: &str, token: &str) -> Result<()> {
    store.set_setting(URL_SETTING, url)?;
    store.set_setting(TOKEN_SETTING, token)
}

/// Accepts `ws://`, `wss://`, `http://` or `https://`, with or without the
/// `/v1/sync` path, and returns the WebSocket URL of the sync endpoint: what
/// a person copies from the relay's address bar works.
pub fn sync_url(url: &str) -> Result<String> {
    let bad = |reason: String| Error::invalid("relay URL", reason);
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        bad(format!(
            "{url:?} is not a URL; use ws://HOST:PORT or wss://HOST"
        ))
    })?;
    let scheme = match scheme {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => {
            return Err(bad(format!(
                "unsupported scheme {other:?}; use ws://, wss://, http:// or https://"
            )));
        }
    };
    if rest.is_empty() {
        return Err(bad(format!("{url:?} has no host")));
    }
    let rest = rest.strip_suffix("/v1/sync").unwrap_or(rest);
    Ok(format!("{scheme}://{rest}/v1/sync"))
}

/// The address of an event's public registration page (`/r/SLUG`) on the
/// relay whose sync URL is `sync_url` (as [`sync_url`] gives it): the same
/// host, over HTTPS when the relay is reached over `wss://`.
pub fn page_url(sync_url: &str, slug: &str) -> String {
    let url = sync_url.trim().trim_end_matches('/');
    let url = url.strip_suffix("/v1/sync").unwrap_or(url);
    let url = match url.split_once("://") {
        Some(("wss" | "https", rest)) => format!("https://{rest}"),
        Some((_, rest)) => format!("http://{rest}"),
        None => format!("http://{url}"),
    };
    format!("{url}/r/{slug}")
}

/// Whether an error means retrying cannot help (the user must act).
pub fn is_permanent(e: &Error) -> bool {
    matches!(
        e,
        Error::Relay { code, .. }
            if [code::UNAUTHORIZED, code::REVOKED, code::UNSUPPORTED_PROTOCOL].contains(code)
    )
}

/// The delay before retry number `attempt` (from 1):
/// [`timers::backoff`] on the thread's random source.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(timers::backoff(attempt, &mut rand::rng()) as u64)
}

/// Stays in sync until `stop` resolves: live changes arrive as they land,
/// local changes are pushed as soon as `wake` is notified (and within a
/// second in any case, which also picks up writes by other processes), and a
/// lost connection is retried with backoff — at once, with the backoff
/// started afresh, when `retry` is notified while waiting (the phone says
/// the network is back). The store stays usable by the
/// app meanwhile: it is locked only for each short step. Returns early only
/// on a permanent error (unknown or revoked token, unsupported protocol).
#[allow(clippy::too_many_arguments)]
pub async fn sync_live(
    store: &Mutex<Store>,
    url: &str,
    token: &str,
    clock: &(dyn Fn() -> Millis + Sync),
    on_status: &mut (dyn FnMut(Status) + Send),
    wake: Option<&Notify>,
    retry: Option<&Notify>,
    stop: impl Future<Output = ()> + Send,
) -> Result<()> {
    sync_live_with(
        store,
        url,
        token,
        clock,
        on_status,
        wake,
        retry,
        stop,
        Timeouts::default(),
    )
    .await
}

/// [`sync_live`] with other [`Timeouts`] than PROTOCOL.md's, for each
/// connection: one that runs out is retried with backoff like any other
/// lost connection.
#[allow(clippy::too_many_arguments)]
pub async fn sync_live_with(
    store: &Mutex<Store>,
    url: &str,
    token: &str,
    clock: &(dyn Fn() -> Millis + Sync),
    on_status: &mut (dyn FnMut(Status) + Send),
    wake: Option<&Notify>,
    retry: Option<&Notify>,
    stop: impl Future<Output = ()> + Send,
    timeouts: Timeouts,
) -> Result<()> {
    let mut stop = std::pin::pin!(stop);
    let at = Endpoint {
        url,
        token,
        clock,
        wake,
        timeouts,
    };
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        on_status(Status::Connecting { attempt });
        let mut report = SyncReport::default();
        let mut caught_up = false;
        let mut status = |s: Status| {
            if s == Status::CaughtUp {
                caught_up = true;
            }
            on_status(s);
        };
        let result = run_session(store, &at, &mut status, &mut report, false, &mut stop).await;
        if let Err(e) = &result {
            on_status(Status::error(e));
        }
        match result {
            Ok(()) => return Ok(()),
            Err(e) if is_permanent(&e) => return Err(e),
            Err(e) => {
                if caught_up {
                    attempt = 1;
                }
                let retry_in = backoff(attempt);
                on_status(Status::Offline {
                    reason: e.to_string(),
                    retry_in,
                });
                let retry_now = async {
                    match retry {
                        Some(r) => r.notified().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(retry_in) => {}
                    _ = retry_now => attempt = 0,
                    _ = &mut stop => return Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::{SinkExt, StreamExt};
    use serde_bytes::ByteBuf;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message as Ws;

    use super::*;
    use crate::sync::wire::{Cursor, Message};

    fn welcome() -> Message {
        Message::Welcome {
            protocol: wire::PROTOCOL_VERSION,
            epoch: "ep".into(),
            head: 10,
            cursor_trusted: true,
            role: "coordinator".into(),
        }
    }

    /// A relay on 127.0.0.1 that answers the device's first frame with
    /// `replies` and then only reads (so tungstenite answers its pings with
    /// pongs). Returns its URL and how many pings it has received.
    async fn fake_relay(replies: Vec<Message>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/v1/sync", listener.local_addr().unwrap());
        let pings = Arc::new(AtomicUsize::new(0));
        let counter = pings.clone();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let mut answered = false;
            while let Some(Ok(frame)) = ws.next().await {
                match frame {
                    Ws::Binary(_) if !answered => {
                        answered = true;
                        for m in &replies {
                            ws.send(Ws::Binary(wire::encode(m).into())).await.unwrap();
                        }
                    }
                    Ws::Ping(_) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
        });
        (url, pings)
    }

    #[tokio::test]
    async fn pongs_are_no_answer_while_the_catch_up_is_awaited() {
        let (url, pings) = fake_relay(vec![welcome()]).await;
        let mut store = Store::open_in_memory().unwrap();
        let timeouts = Timeouts {
            connect: Duration::from_secs(5),
            reply: Duration::from_secs(2),
        };
        let started = tokio::time::Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            sync_once_with(&mut store, &url, "mst_x", &|| 0, &mut |_| {}, timeouts),
        )
        .await
        .expect("sync_once gives up instead of waiting forever");
        let err = result.unwrap_err();
        assert!(is_timeout(&err), "{err}");
        assert!(
            err.to_string()
                .contains("no answer from the relay in 2 s (waiting for the rest of the catch-up)"),
            "{err}"
        );
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert!(
            pings.load(Ordering::SeqCst) >= 1,
            "the relay was pinged (and answered) meanwhile"
        );
    }

    #[tokio::test]
    async fn a_listener_that_says_nothing_fails_the_connect_in_time() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/v1/sync", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (_tcp, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
        });
        let mut store = Store::open_in_memory().unwrap();
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            reply: Duration::from_secs(60),
        };
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            sync_once_with(&mut store, &url, "mst_x", &|| 0, &mut |_| {}, timeouts),
        )
        .await
        .expect("the connect gives up");
        let err = result.unwrap_err();
        assert!(is_timeout(&err), "{err}");
        assert!(
            err.to_string().contains(&format!(
                "no answer from {url} within 1 s: is the relay running and reachable?"
            )),
            "{err}"
        );
    }

    #[tokio::test]
    async fn pongs_keep_an_idle_live_connection_alive() {
        let caught_up = Message::CaughtUp {
            cursor: Cursor {
                seq: 0,
                hash: ByteBuf::from(vec![0; 32]),
                epoch: "ep".into(),
                vis: 0,
            },
        };
        let (url, pings) = fake_relay(vec![welcome(), caught_up]).await;
        let store = Mutex::new(Store::open_in_memory().unwrap());
        let timeouts = Timeouts {
            connect: Duration::from_secs(5),
            reply: Duration::from_secs(1),
        };
        let mut seen = Vec::new();
        let stop = tokio::time::sleep(Duration::from_millis(3500));
        sync_live_with(
            &store,
            &url,
            "mst_x",
            &|| 0,
            &mut |s| seen.push(s),
            None,
            None,
            stop,
            timeouts,
        )
        .await
        .unwrap();
        assert!(seen.contains(&Status::CaughtUp), "{seen:?}");
        assert!(
            !seen
                .iter()
                .any(|s| matches!(s, Status::Offline { .. } | Status::Error { .. })),
            "an idle connection whose relay answers pings stays up: {seen:?}"
        );
        assert!(pings.load(Ordering::SeqCst) >= 2);
    }

    #[test]
    fn timeouts_default_to_the_protocol_and_within_caps_the_connect() {
        assert_eq!(
            Timeouts::default(),
            Timeouts {
                connect: Duration::from_secs(15),
                reply: Duration::from_secs(60)
            }
        );
        assert_eq!(
            Timeouts::default().session_timers().ping_after(),
            millis(PING_AFTER)
        );
        assert_eq!(
            Timeouts::within(Duration::from_secs(2)),
            Timeouts {
                connect: Duration::from_secs(2),
                reply: Duration::from_secs(2)
            }
        );
        assert_eq!(
            Timeouts::within(Duration::from_secs(300)).connect,
            CONNECT_TIMEOUT
        );
    }

    #[test]
    fn relay_urls_are_normalised() {
        assert_eq!(
            sync_url("http://127.0.0.1:7878").unwrap(),
            "ws://127.0.0.1:7878/v1/sync"
        );
        assert_eq!(
            sync_url("wss://relay.example.org/").unwrap(),
            "wss://relay.example.org/v1/sync"
        );
        assert_eq!(sync_url("ws://h:1/v1/sync").unwrap(), "ws://h:1/v1/sync");
        assert!(sync_url("relay.example.org").is_err());
        let slug = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            page_url("wss://relay.example.org/v1/sync", slug),
            format!("https://relay.example.org/r/{slug}")
        );
        assert_eq!(
            page_url(&sync_url("http://127.0.0.1:8080").unwrap(), slug),
            format!("http://127.0.0.1:8080/r/{slug}")
        );
        assert!(sync_url("ftp://x").is_err());
        assert!(sync_url("https://").is_err());
    }
}
