//! The tokio + tokio-tungstenite driver of sync sessions (feature `client`).
//!
//! [`sync_once`] connects, catches up, pushes everything pending, waits for
//! the acknowledgements and returns: what `muster sync` and a phone's
//! background task need. [`sync_live`] stays connected, reconnecting with
//! exponential backoff and full jitter, until told to stop.
//!
//! The protocol logic is all in [`crate::sync::client::ClientSession`]; this
//! module only moves frames, keeps time and retries.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::RngExt;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::{Error, Result};
use crate::model::Millis;
use crate::store::Store;
use crate::sync::client::{ClientSession, SyncEvent};
use crate::sync::wire::{self, code};

/// How long to wait for the relay before calling a connection dead.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// After this long without hearing from the relay, the client pings it, so
/// that an idle live connection proves itself alive before
/// [`READ_TIMEOUT`] (the relay answers pings, and pings every 30 s itself).
pub const PING_AFTER: Duration = Duration::from_secs(20);
/// First retry delay; doubles per failure up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

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

async fn connect(url: &str) -> Result<Socket> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(wire::MAX_FRAME_BYTES))
        .max_frame_size(Some(wire::MAX_FRAME_BYTES));
    let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| Error::Network(format!("{url}: {e}")))?;
    Ok(socket)
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
    let mut socket = connect(at.url).await?;
    let mut session = store.with(|s| ClientSession::new(s, at.token))?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = tokio::time::Instant::now();
    let mut pinged = false;
    loop {
        while let Some(frame) = session.poll_transmit() {
            report.frames_out += 1;
            report.bytes_out += frame.len();
            socket
                .send(WsMessage::Binary(frame.into()))
                .await
                .map_err(|e| Error::Network(e.to_string()))?;
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
        tokio::select! {
            incoming = socket.next() => {
                last_heard = tokio::time::Instant::now();
                pinged = false;
                let frame = match incoming {
                    None => return Err(Error::Network("the relay closed the connection".into())),
                    Some(Err(e)) => return Err(Error::Network(e.to_string())),
                    Some(Ok(WsMessage::Binary(b))) => b,
                    Some(Ok(WsMessage::Close(_))) => return Err(Error::Network("the relay closed the connection".into())),
                    // Pings are answered by tungstenite; pongs only count
                    // as a sign of life.
                    Some(Ok(_)) => continue,
                };
                report.frames_in += 1;
                report.bytes_in += frame.len();
                store.with(|s| session.handle_frame(s, &frame, (at.clock)()))?;
            }
            _ = tokio::time::sleep_until(last_heard + READ_TIMEOUT) => {
                return Err(Error::Network(format!(
                    "no answer from the relay in {} s",
                    READ_TIMEOUT.as_secs()
                )));
            }
            _ = tick.tick() => {
                if !pinged && last_heard.elapsed() >= PING_AFTER {
                    pinged = true;
                    socket
                        .send(WsMessage::Ping(Vec::new().into()))
                        .await
                        .map_err(|e| Error::Network(e.to_string()))?;
                }
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
    once(&Mutex::new(store), url, token, clock, on_status).await
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
    once(store, url, token, clock, on_status).await
}

async fn once(
    store: &impl StoreAccess,
    url: &str,
    token: &str,
    clock: &(dyn Fn() -> Millis + Sync),
    on_status: &mut (dyn FnMut(Status) + Send),
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

/// Whether an error means retrying cannot help (the user must act).
pub fn is_permanent(e: &Error) -> bool {
    matches!(
        e,
        Error::Relay { code, .. }
            if [code::UNAUTHORIZED, code::REVOKED, code::UNSUPPORTED_PROTOCOL].contains(code)
    )
}

/// The delay before retry number `attempt` (from 1): exponential from
/// [`MIN_BACKOFF`] to [`MAX_BACKOFF`], with full jitter.
pub fn backoff(attempt: u32) -> Duration {
    let cap = MIN_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let ms = rand::rng().random_range(0..=cap.as_millis() as u64);
    Duration::from_millis(ms.max(50))
}

/// Stays in sync until `stop` resolves: live changes arrive as they land,
/// local changes are pushed as soon as `wake` is notified (and within a
/// second in any case, which also picks up writes by other processes), and a
/// lost connection is retried with backoff. The store stays usable by the
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
    stop: impl Future<Output = ()> + Send,
) -> Result<()> {
    let mut stop = std::pin::pin!(stop);
    let at = Endpoint {
        url,
        token,
        clock,
        wake,
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
                tokio::select! {
                    _ = tokio::time::sleep(retry_in) => {}
                    _ = &mut stop => return Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sync_url;

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
        assert!(sync_url("ftp://x").is_err());
        assert!(sync_url("https://").is_err());
    }
}
