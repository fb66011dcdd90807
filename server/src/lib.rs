//! The Muster relay as a library: [`app`] builds the HTTP router (testable
//! without a socket), [`run`] serves it on a listener until `shutdown`
//! resolves (testable on port 0).
//!
//! Routes: `GET /v1/sync` (the WebSocket of PROTOCOL.md), `GET /healthz`,
//! `GET /metrics` (Prometheus text format), and the coordinators' web
//! dashboard at `/` when it is turned on ([`AppState::enable_dashboard`];
//! the `muster-server serve` command does so unless `--no-dashboard`).
//!
//! Each WebSocket connection runs one [`RelaySession`] from muster-core: this
//! crate only moves frames between the socket and the session, wakes live
//! sessions when the log grows, and counts. Storage calls are short SQLite
//! operations made with `block_in_place` on the multi-threaded runtime.
//!
//! Near 900 lines: the router, the WebSocket driver of a session and the
//! wake-ups are one loop's parts; storage, the dashboard and the admin
//! commands are modules of their own.

pub mod backend;
pub mod dashboard;
pub mod key_file;
pub mod listener;
mod log_tail;
pub mod migrate;
pub mod postgres;
pub mod storage;
pub mod upgrade;

use muster_core::model::now_ms;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use muster_core::sync::relay::RelaySession;
use muster_core::sync::storage::RelayStorage;
use muster_core::sync::wire::{self, code};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use listener::Limits;
pub use postgres::PgRelay;
pub use storage::SqliteRelay;

/// How long a device has to send `hello` (the session's timer,
/// [`muster_core::sync::timers::HELLO_TIMEOUT`]).
pub const HELLO_TIMEOUT: Duration =
    Duration::from_millis(muster_core::sync::timers::HELLO_TIMEOUT as u64);
/// How far past [`wire::MAX_FRAME_BYTES`] the socket still reads a frame
/// (to answer it with a clear `too_large` error rather than a cut).
pub const FRAME_SLACK: usize = 1 << 20;
/// The relay pings each device after this long of quiet (PROTOCOL.md §2)...
pub const PING_EVERY: Duration =
    Duration::from_millis(muster_core::sync::timers::PING_EVERY as u64);
/// ...and closes a connection it has heard nothing from for this long, so
/// that a phone that vanished does not hold a session forever.
pub const SILENCE_LIMIT: Duration =
    Duration::from_millis(muster_core::sync::timers::SILENCE_LIMIT as u64);
/// Failed logins (unknown or revoked tokens) allowed per address within any
/// [`LOGIN_WINDOW`], counted over every relay process on the backend; past
/// that, a wrong token from the address is refused with `rate_limited`
/// until the oldest of those failures is a window old (a right token still
/// gets in).
pub const MAX_FAILED_LOGINS: u32 = 10;
/// See [`MAX_FAILED_LOGINS`].
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// How long a device may take to take in one 64 KiB fragment of a catch-up
/// batch while it holds a catch-up slot (a slow link progresses fragment by
/// fragment); past it the connection is closed (the device resumes from its
/// cursor when it reconnects) and the slot goes to another.
pub const CATCH_UP_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long shutdown waits for sessions to say goodbye.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the relay could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be created or used.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The relay's database failed.
    #[error("relay storage: {0}")]
    Storage(String),
    /// A command was given a value it cannot use.
    #[error("{0}")]
    BadRequest(String),
    /// Serving failed (the listener broke).
    #[error("serving failed: {0}")]
    Serve(#[source] std::io::Error),
    /// Another relay process is serving this data directory.
    #[error(
        "another muster-server is already serving {path}{holder}; stop it first, or give this one its own --data directory"
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// ` (process N)` when the other process wrote its id.
        holder: String,
    },
    /// The coordinators' dashboard could not start (the relay still serves
    /// devices).
    #[error("the dashboard could not start: {0}")]
    Dashboard(String),
    /// The database was set up by a newer muster-server than this one.
    #[error(
        "the relay's database has schema version {found}, newer than this muster-server knows ({known}); run the newer muster-server (or restore a backup taken before the upgrade)"
    )]
    SchemaTooNew {
        /// The database's version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
}

impl From<muster_core::sync::storage::StorageError> for ServerError {
    fn from(e: muster_core::sync::storage::StorageError) -> ServerError {
        match e {
            muster_core::sync::storage::StorageError::Refused(why) => ServerError::BadRequest(why),
            e => ServerError::Storage(e.to_string()),
        }
    }
}

/// The relay's counters, exported at `/metrics`.
#[derive(Debug, Default)]
struct Metrics {
    connections: Gauge,
    connections_total: Counter,
    changes_in: Counter,
    changes_out: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    rejected_sessions: Counter,
    catch_up_seconds: Option<Histogram>,
    log_entries: Gauge,
    /// Catch-up batches being read or sent now, the most there have been
    /// at once, and how often a device waited for a slot.
    catch_up_active: Gauge,
    catch_up_peak: Gauge,
    catch_up_waits: Counter,
}

/// A catch-up slot held by one session while one batch is read and sent;
/// counted in the metrics while held.
struct CatchUpSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    active: Gauge,
}

impl CatchUpSlot {
    fn new(permit: tokio::sync::OwnedSemaphorePermit, m: &Metrics) -> CatchUpSlot {
        let now = m.catch_up_active.inc() + 1;
        if now > m.catch_up_peak.get() {
            m.catch_up_peak.set(now);
        }
        CatchUpSlot {
            _permit: permit,
            active: m.catch_up_active.clone(),
        }
    }
}

impl Drop for CatchUpSlot {
    fn drop(&mut self) {
        self.active.dec();
    }
}

/// What every request handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    data_dir: PathBuf,
    backend: backend::Backend,
    head: watch::Sender<u64>,
    /// Bumped when tokens changed in the database.
    tokens: watch::Sender<u64>,
    stop: watch::Sender<bool>,
    active: AtomicI64,
    metrics: Metrics,
    registry: Registry,
    /// The coordinators' dashboard, once turned on.
    dashboard: std::sync::OnceLock<dashboard::Slot>,
    /// Slots for catch-up batches ([`Limits::catch_up_batches`]) and the
    /// batches' target size, set by [`run_with_limits`].
    catch_up: std::sync::OnceLock<(Arc<tokio::sync::Semaphore>, usize)>,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    trusted_proxies: std::sync::RwLock<Vec<ipnet::IpNet>>,
    /// The data directory, locked (`flock`) while this state lives.
    _lock: std::fs::File,
}

/// Writes this process's id into `relay.lock` beside the locked
/// directory, for the message a second relay prints.
fn write_holder(dir: &Path) -> Result<(), ServerError> {
    std::fs::write(dir.join("relay.lock"), format!("{}\n", std::process::id())).map_err(|source| {
        ServerError::DataDir {
            path: dir.join("relay.lock"),
            source,
        }
    })
}

/// One address of `X-Forwarded-For` as proxies write it: `203.0.113.7`,
/// `2001:db8::1`, and also with a port (`203.0.113.7:5678`,
/// `[2001:db8::1]:80`) or brackets (`[2001:db8::1]`).
fn forwarded_ip(hop: &str) -> Option<std::net::IpAddr> {
    let ip = hop
        .parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })?;
    Some(ip.to_canonical())
}

/// Locks the data directory for this process: two relays on one directory
/// would each miss the other's pushes and contend for the database. The
/// lock is the operating system's (`flock` on the directory), so it goes
/// with the process however the process ends; `relay.lock` keeps the
/// holder's process id for the message the next one prints.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<std::fs::File, ServerError> {
    std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let io = |source| ServerError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    // The directory itself is what is locked, so that a refused start
    // creates nothing in it; `relay.lock` only names the holder.
    let handle = std::fs::File::open(dir).map_err(io)?;
    match handle.try_lock() {
        Ok(()) => Ok(handle),
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(dir.join("relay.lock")).unwrap_or_default();
            let holder = match pid.trim().parse::<u32>() {
                Ok(pid) => format!(" (process {pid})"),
                Err(_) => String::new(),
            };
            Err(ServerError::Locked {
                path: dir.to_path_buf(),
                holder,
            })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

impl AppState {
    /// Opens (creating if needed) the relay's data directory.
    pub fn open(data_dir: &Path) -> Result<AppState, ServerError> {
        AppState::open_with_key(data_dir, None)
    }

    /// Opens (creating if needed) the relay's data directory, its database
    /// encrypted with `key` ([`SqliteRelay::open_encrypted`]); a wrong key
    /// is an error.
    pub fn open_encrypted(data_dir: &Path, key: &[u8; 32]) -> Result<AppState, ServerError> {
        AppState::open_with_key(data_dir, Some(key))
    }

    /// [`AppState::open`] or [`AppState::open_encrypted`].
    /// The data directory is this process's while the state lives: a
    /// second [`AppState`] on it, in this process or another, is refused
    /// with [`ServerError::Locked`]. (The `token`, `audit` and `erase`
    /// commands open the storage alone and may run beside a serving relay.)
    pub fn open_with_key(data_dir: &Path, key: Option<&[u8; 32]>) -> Result<AppState, ServerError> {
        AppState::open_with(data_dir, None, key)
    }

    /// The relay's state on PostgreSQL at `database` when given
    /// (`--database`), shared with any number of other relay processes;
    /// otherwise on SQLite in `data_dir` ([`AppState::open_with_key`]).
    /// `data_dir` is this process's either way: it holds the dashboard's
    /// replica and is locked while the state lives, so every relay process
    /// on one database needs a directory of its own.
    pub fn open_with(
        data_dir: &Path,
        database: Option<&str>,
        key: Option<&[u8; 32]>,
    ) -> Result<AppState, ServerError> {
        // The lock first: a second relay must not even open (and perhaps
        // upgrade) the database under a running one.
        let lock = lock_data_dir(data_dir)?;
        let backend = backend::Backend::open(data_dir, database, key)?;
        // Only now that the data opened: a refused start writes nothing.
        write_holder(data_dir)?;
        AppState::with_backend(data_dir, backend, lock)
    }

    /// The state over an opened backend; `data_dir` holds the dashboard's
    /// store and is locked by `lock`.
    fn with_backend(
        data_dir: &Path,
        backend: backend::Backend,
        lock: std::fs::File,
    ) -> Result<AppState, ServerError> {
        let head_seq = backend.storage.head()?.seq;
        let metrics = Metrics {
            catch_up_seconds: Some(Histogram::new([
                0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])),
            ..Metrics::default()
        };
        metrics.log_entries.set(head_seq as i64);
        let mut registry = Registry::with_prefix("muster");
        registry.register(
            "connections_open",
            "Open device connections",
            metrics.connections.clone(),
        );
        registry.register(
            "connections",
            "Device connections accepted",
            metrics.connections_total.clone(),
        );
        registry.register(
            "changes_in",
            "Changes appended to the log",
            metrics.changes_in.clone(),
        );
        registry.register(
            "changes_out",
            "Log entries sent to devices",
            metrics.changes_out.clone(),
        );
        registry.register(
            "bytes_in",
            "Bytes received from devices",
            metrics.bytes_in.clone(),
        );
        registry.register(
            "bytes_out",
            "Bytes sent to devices",
            metrics.bytes_out.clone(),
        );
        registry.register(
            "sessions_refused",
            "Sessions ended by an error sent to the device",
            metrics.rejected_sessions.clone(),
        );
        registry.register(
            "catch_up_batches",
            "Catch-up batches being read or sent now",
            metrics.catch_up_active.clone(),
        );
        registry.register(
            "catch_up_batches_peak",
            "The most catch-up batches read or sent at once since the relay started",
            metrics.catch_up_peak.clone(),
        );
        registry.register(
            "catch_up_waits",
            "Times a device in catch-up waited for a free slot",
            metrics.catch_up_waits.clone(),
        );
        registry.register(
            "log_entries",
            "Entries in the change log",
            metrics.log_entries.clone(),
        );
        if let Some(h) = &metrics.catch_up_seconds {
            registry.register(
                "sync_duration_seconds",
                "Time from hello to caught_up",
                h.clone(),
            );
        }
        Ok(AppState {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                backend,
                head: watch::channel(head_seq).0,
                tokens: watch::channel(0).0,
                stop: watch::channel(false).0,
                active: AtomicI64::new(0),
                metrics,
                registry,
                dashboard: std::sync::OnceLock::new(),
                catch_up: std::sync::OnceLock::new(),
                trusted_proxies: std::sync::RwLock::new(Vec::new()),
                _lock: lock,
            }),
        })
    }

    /// Turns on the coordinators' dashboard: opens (or creates) its store,
    /// `dashboard.muster` in the data directory, encrypted with `key` when
    /// the relay's data is, and makes sure it holds a coordinator token of
    /// this relay ([`dashboard::Dashboard::open`]). [`run`] connects it once
    /// the listener is bound. On failure the relay still serves devices;
    /// the dashboard's pages say what went wrong. Turning it on twice keeps
    /// the first.
    pub fn enable_dashboard(&self, key: Option<&[u8; 32]>) -> Result<(), ServerError> {
        if self.inner.dashboard.get().is_some() {
            return Ok(());
        }
        match dashboard::Dashboard::open(
            &self.inner.data_dir,
            self.storage(),
            self.inner.backend.shared.clone(),
            key,
        ) {
            Ok(d) => {
                let _ = self
                    .inner
                    .dashboard
                    .set(dashboard::Slot::Ready(std::sync::Arc::new(d)));
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                let _ = self
                    .inner
                    .dashboard
                    .set(dashboard::Slot::Failed(why.clone()));
                Err(ServerError::Dashboard(why))
            }
        }
    }

    /// The dashboard, if it was turned on and started.
    pub fn dashboard(&self) -> Option<&std::sync::Arc<dashboard::Dashboard>> {
        match self.inner.dashboard.get() {
            Some(dashboard::Slot::Ready(d)) => Some(d),
            _ => None,
        }
    }

    fn dashboard_slot(&self) -> Option<&dashboard::Slot> {
        self.inner.dashboard.get()
    }

    /// The relay's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// `host:port/database` of the PostgreSQL database the relay keeps its
    /// data in, if it is not SQLite.
    pub fn database(&self) -> Option<&str> {
        self.inner.backend.database.as_deref()
    }

    /// The relay's storage.
    pub fn storage(&self) -> &dyn RelayStorage {
        &*self.inner.backend.storage
    }

    /// Trusts these reverse proxies (addresses or networks) to say, in
    /// `X-Forwarded-For`, whom they forward: see [`AppState::client_ip`].
    /// Nobody is trusted until this is called (`serve --trusted-proxy`).
    pub fn trust_proxies(&self, proxies: Vec<ipnet::IpNet>) {
        *self
            .inner
            .trusted_proxies
            .write()
            .unwrap_or_else(|p| p.into_inner()) = proxies;
    }

    /// The client behind a connection from `peer`: `peer` itself, unless
    /// `peer` is a trusted proxy; then the right-most address of
    /// `X-Forwarded-For` that is not a trusted proxy (proxies append the
    /// address they received from, so what is left of it is the client's
    /// word and cannot be trusted). Without the header, `peer`.
    pub fn client_ip(
        &self,
        peer: std::net::IpAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        let trusted = self
            .inner
            .trusted_proxies
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
        // `::ffff:127.0.0.1` on a dual-stack listener is 127.0.0.1.
        let peer = peer.to_canonical();
        if !is_trusted(&peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            let Some(ip) = forwarded_ip(hop) else {
                // Garbage in the header: stop at the last address known good.
                break;
            };
            client = ip;
            if !is_trusted(&ip) {
                break;
            }
        }
        client
    }

    /// Whether `addr` has used up its failed logins for now (over every
    /// relay process on this backend). If the count cannot be read, the
    /// address is not held back: the storage failing is answered anyway.
    fn rate_limited(&self, addr: std::net::IpAddr) -> bool {
        let since = now_ms() - LOGIN_WINDOW.as_millis() as i64;
        match self.inner.backend.shared.failed_logins_since(addr, since) {
            Ok(n) => n >= MAX_FAILED_LOGINS,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the failed-login count");
                false
            }
        }
    }

    fn record_failed_login(&self, addr: std::net::IpAddr) {
        let now = now_ms();
        let forget = now - LOGIN_WINDOW.as_millis() as i64;
        if let Err(e) = self
            .inner
            .backend
            .shared
            .add_failed_login(addr, now, forget)
        {
            tracing::warn!(error = %e, "cannot count a failed login");
        }
    }
}

/// The WebSocket read and write buffer of a connection, in bytes.
const IDLE_BUFFER: usize = 8 * 1024;

/// The relay's routes, the dashboard's included (they answer 503 while
/// the dashboard is off).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/sync", get(sync_ws))
        .merge(dashboard::routes())
        .layer(axum::middleware::from_fn(request_deadline))
        .with_state(state)
}

/// How long a request may take to be read and answered (its body
/// included, the start of a streamed download too); a WebSocket upgrade is
/// answered at once and its connection is not held to it.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Answers `408 Request Timeout` to a request not handled within
/// [`REQUEST_DEADLINE`]: a client trickling a form's body cannot hold a
/// connection (and its place under the cap) longer than that.
async fn request_deadline(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            "the request took too long to arrive\n",
        )
            .into_response(),
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    match tokio::task::block_in_place(|| state.storage().head()) {
        Ok(_) => "ok\n".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("storage: {e}\n")).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, &state.inner.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn sync_ws(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let client = state.client_ip(addr.ip(), request.headers());
    // The socket reads a little past the protocol's limit, so that a
    // frame just over it reaches the session and gets a `too_large` error
    // the device can read; beyond the slack the connection is cut.
    let config = WebSocketConfig::default()
        .max_message_size(Some(wire::MAX_FRAME_BYTES + FRAME_SLACK))
        .max_frame_size(Some(wire::MAX_FRAME_BYTES + FRAME_SLACK))
        // Idle devices are the common case: small buffers that grow with a
        // large frame rather than 128 KiB each way per connection.
        .read_buffer_size(IDLE_BUFFER)
        .write_buffer_size(IDLE_BUFFER);
    upgrade::accept(request, config, move |socket| async move {
        let inner = state.inner.clone();
        inner.active.fetch_add(1, Ordering::SeqCst);
        inner.metrics.connections.inc();
        inner.metrics.connections_total.inc();
        serve_device(socket, &state, addr, client).await;
        inner.metrics.connections.dec();
        inner.active.fetch_sub(1, Ordering::SeqCst);
    })
}

/// How long to sleep until a session's next timer (`deadline`, in
/// [`now_ms`] time); a long while if it has none.
fn until(deadline: Option<i64>) -> Duration {
    match deadline {
        Some(t) => Duration::from_millis(t.saturating_sub(now_ms()).max(0) as u64),
        None => Duration::from_secs(3600),
    }
}

/// Runs one device connection to its end. `client` is the device's
/// address as [`AppState::client_ip`] reads it (the failed-login limit
/// counts per client).
async fn serve_device(
    socket: upgrade::Socket,
    state: &AppState,
    addr: std::net::SocketAddr,
    client: std::net::IpAddr,
) {
    let inner = &state.inner;
    let storage = state.storage();
    let m = &inner.metrics;
    let (mut sink, mut stream) = socket.split();
    let mut session = RelaySession::new();
    let mut head_rx = inner.head.subscribe();
    let mut tokens_rx = inner.tokens.subscribe();
    let mut stop_rx = inner.stop.subscribe();
    let mut login_counted = false;
    let opened = Instant::now();
    let mut caught_up_reported = false;
    // The session keeps the hello timeout, pings and the silence limit.
    session.start(now_ms());
    let (slots, batch_bytes) = inner
        .catch_up
        .get_or_init(|| {
            (
                Arc::new(tokio::sync::Semaphore::new(listener::CATCH_UP_BATCHES)),
                listener::CATCH_UP_BATCH_BYTES,
            )
        })
        .clone();
    session.set_batch_bytes(batch_bytes);
    // A catch-up slot, held while one batch is read and sent.
    let mut slot: Option<CatchUpSlot> = None;
    // Waiting for one: the same future across turns of the loop, so the
    // session keeps its place in the queue whatever else wakes it.
    type Acquire = std::pin::Pin<
        Box<
            dyn Future<
                    Output = Result<tokio::sync::OwnedSemaphorePermit, tokio::sync::AcquireError>,
                > + Send,
        >,
    >;
    let mut waiting: Option<Acquire> = None;
    if *stop_rx.borrow() {
        session.close_with(
            code::UNAVAILABLE,
            "the relay is shutting down; try again shortly",
        );
    }

    loop {
        session.handle_timeout(now_ms());
        if session.poll_ping() && sink.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
            break;
        }
        if session.went_silent() {
            tracing::info!(%addr, device = session.device(), "closing a silent connection");
            break;
        }
        if slot.is_none() && waiting.is_none() && session.wants_batch() {
            match slots.clone().try_acquire_owned() {
                Ok(p) => slot = Some(CatchUpSlot::new(p, m)),
                Err(_) => {
                    m.catch_up_waits.inc();
                    waiting = Some(Box::pin(slots.clone().acquire_owned()));
                }
            }
        }
        if session.is_closed() && !session.wants_transmit() {
            m.rejected_sessions.inc();
            let _ = sink.send(WsMessage::Close(None)).await;
            break;
        }
        if !caught_up_reported && session.is_live() {
            caught_up_reported = true;
            if let Some(h) = &m.catch_up_seconds {
                h.observe(opened.elapsed().as_secs_f64());
            }
            tracing::debug!(%addr, device = session.device(), "caught up");
        }
        tokio::select! {
            biased;
            incoming = stream.next() => {
                session.handle_heard(now_ms());
                let frame = match incoming {
                    Some(Ok(WsMessage::Binary(b))) => b,
                    Some(Ok(WsMessage::Text(_))) => {
                        session.close_with(code::MALFORMED, "binary frames only (PROTOCOL.md §2)");
                        continue;
                    }
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
                    Some(Ok(WsMessage::Close(_))) | None => break,
                    Some(Err(e)) => {
                        // Oversized frames and broken framing end up here.
                        tracing::info!(%addr, error = %e, "connection error");
                        let msg = e.to_string();
                        if msg.contains("too long") || msg.contains("too big") || msg.contains("size") {
                            session.close_with(code::TOO_LARGE, format!("frame refused: {msg}"));
                            continue;
                        }
                        break;
                    }
                };
                m.bytes_in.inc_by(frame.len() as u64);
                if session.grant().is_none() {
                    // Checked at each hello, whenever it comes: a wrong
                    // token from an address past its failed logins is
                    // answered `rate_limited`; a right one still gets in.
                    session.set_login_limited(state.rate_limited(client));
                }
                let result = tokio::task::block_in_place(|| session.handle_frame(storage, &frame, now_ms()));
                if !login_counted && session.login_refused() {
                    login_counted = true;
                    state.record_failed_login(client);
                }
                match result {
                    Ok(handled) if handled.appended > 0 || handled.visibility_changed => {
                        m.changes_in.inc_by(handled.appended as u64);
                        inner.backend.notifier.publish(backend::Wake::Log);
                        if let Ok(head) = tokio::task::block_in_place(|| storage.head()) {
                            let head = head.seq;
                            m.log_entries.set(head as i64);
                            // Wakes every live session, also when only what
                            // devices may see changed (an erasure).
                            inner.head.send_replace(head);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(%addr, error = %e, "storage failed during a session");
                        session.close_with(code::UNAVAILABLE, "the relay cannot reach its storage; try again later");
                    }
                }
                if session.is_closed() {
                    tracing::info!(%addr, device = session.device(), "session refused or ended by protocol error");
                }
            }
            changed = head_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                if let Err(e) = tokio::task::block_in_place(|| session.handle_log_advanced(storage)) {
                    tracing::error!(%addr, error = %e, "storage failed during fan-out");
                    session.close_with(code::UNAVAILABLE, "the relay cannot reach its storage; try again later");
                }
            }
            changed = tokens_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                if let Err(e) = tokio::task::block_in_place(|| session.handle_tokens_changed(storage)) {
                    tracing::error!(%addr, error = %e, "storage failed while checking a token");
                    session.close_with(code::UNAVAILABLE, "the relay cannot reach its storage; try again later");
                }
                if session.is_closed() {
                    tracing::info!(%addr, device = session.device(), "token revoked: device disconnected");
                }
            }
            // The session's next timer: handled at the top of the loop.
            _ = tokio::time::sleep(until(session.poll_timeout())) => {}
            _ = stop_rx.changed() => {
                session.close_with(code::UNAVAILABLE, "the relay is shutting down; try again shortly");
            }
            permit = async { waiting.as_mut().expect("guarded by is_some").await }, if waiting.is_some() => {
                waiting = None;
                slot = permit.ok().map(|p| CatchUpSlot::new(p, m));
            }
            _ = std::future::ready(()), if session.wants_transmit() && (slot.is_some() || !session.wants_batch()) => {
                match tokio::task::block_in_place(|| session.poll_transmit(storage)) {
                    Ok(Some(frame)) => {
                        m.bytes_out.inc_by(frame.len() as u64);
                        m.changes_out.inc_by(session.take_sent_entries());
                        // A batch goes out fragment by fragment, each
                        // within the time, or the connection does and the
                        // slot is free again.
                        let held = slot.take();
                        let within = held.as_ref().map(|_| CATCH_UP_SEND_TIMEOUT);
                        let sent = upgrade::send_binary(&mut sink, frame, within).await;
                        drop(held);
                        if let Err(e) = sent {
                            if matches!(e, upgrade::SendError::Stalled) {
                                tracing::info!(%addr, device = session.device(), "closing a device that stopped taking in a catch-up batch");
                            }
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(%addr, error = %e, "storage failed during catch-up");
                        session.close_with(code::UNAVAILABLE, "the relay cannot reach its storage; try again later");
                    }
                }
            }
        }
    }
}

/// Serves the relay on `listener` until `shutdown` resolves; then tells
/// every connected device the relay is going away, waits (up to
/// [`SHUTDOWN_GRACE`]) for their sessions to end, and returns. Every
/// acknowledged change is already on disk; unacknowledged ones are re-sent
/// by devices when they reconnect. Connections are held to the default
/// [`Limits`]; see [`run_with_limits`].
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_with_limits(listener, state, Limits::default(), shutdown).await
}

/// [`run`] with connections held to `limits`: a complete request head
/// within [`Limits::request_timeout`] (of the connection's opening or of its
/// previous response), at most [`Limits::max_connections`] open (a `503`
/// past it); see [`crate::listener`].
pub async fn run_with_limits(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let inner = state.inner.clone();
    let _ = inner.catch_up.set((
        Arc::new(tokio::sync::Semaphore::new(
            limits
                .catch_up_batches
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        )),
        limits.catch_up_batch_bytes,
    ));
    let stop = inner.stop.clone();
    // The dashboard's replica syncs with this very listener.
    if let Some(d) = state.dashboard() {
        match listener.local_addr() {
            Ok(addr) => {
                if let Err(e) = d.connect(addr) {
                    tracing::error!(error = %e, "the dashboard cannot sync with the relay");
                }
            }
            Err(e) => tracing::error!(error = %e, "the dashboard cannot learn the relay's address"),
        }
    }
    let dashboard = state.dashboard().cloned();
    let signal = async move {
        shutdown.await;
        // First, so that it does not try to reconnect while sessions end.
        if let Some(d) = dashboard {
            d.disconnect();
        }
        stop.send_replace(true);
    };
    // Tokens are managed by `muster-server token …`, another process (and
    // a shared backend has other relays): live sessions check again when
    // the notifier says something changed elsewhere.
    let watcher = {
        let tokens = inner.tokens.clone();
        let head = inner.head.clone();
        inner
            .backend
            .notifier
            .subscribe(Box::new(move |what| match what {
                // Sessions read the new head from storage.
                backend::Wake::Log => head.send_modify(|_| {}),
                backend::Wake::Tokens => tokens.send_modify(|v| *v += 1),
            }))
    };
    crate::listener::serve(listener, app(state), limits, signal).await;
    drop(watcher);
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while inner.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
