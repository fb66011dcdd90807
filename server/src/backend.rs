//! The relay's backend as the server holds it: storage (core's
//! [`RelayStorage`]) and a [`Notifier`], so that nothing else in the
//! server knows which database it is.
//!
//! Sessions of this process are woken by the server itself when they
//! write. What other processes write to the same backend reaches this one
//! through the notifier: for SQLite, the `token` and `erase` commands run
//! from the command line (the relay polls the database's `data_version`);
//! for a database shared by several relays, their pushes too (PostgreSQL's
//! `LISTEN`/`NOTIFY`, say).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use muster_core::Millis;
use muster_core::sync::storage::{RelayStorage, SResult};

use crate::postgres::PgNotifier;
use crate::{PgRelay, ServerError, SqliteRelay};

/// What changed, as a wake-up says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The log or the visibility log grew: live sessions send what is new.
    Log,
    /// Tokens changed (revoked, scopes edited) or something else another
    /// process wrote: live sessions check their token again and send what
    /// is new.
    Tokens,
}

/// Wake-ups between processes sharing one backend.
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Tells the other processes sharing the backend that `what` changed
    /// (this process's own sessions are woken by the server).
    fn publish(&self, what: Wake);
    /// Calls `wake` whenever another process changed something, until the
    /// returned [`Subscription`] is dropped.
    fn subscribe(&self, wake: Box<dyn Fn(Wake) + Send + Sync>) -> Subscription;
}

/// A running subscription; dropping it stops the calls.
#[derive(Debug)]
pub struct Subscription {
    stop: Arc<AtomicBool>,
}

impl Subscription {
    /// A subscription that ends when `stop` is set.
    pub fn new(stop: Arc<AtomicBool>) -> Subscription {
        Subscription { stop }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A coordinator's dashboard session, as [`SharedState`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashSession {
    /// The coordinator token it was opened with.
    pub token_id: String,
    /// The CSRF token its forms carry.
    pub csrf: String,
    /// When it ends (milliseconds since the epoch).
    pub expires: Millis,
}

/// What the relay processes sharing one backend agree on besides the
/// storage: the dashboard's sessions (a coordinator logged in through one
/// relay is logged in on all, whichever a load balancer picks) and the
/// failed logins per address (counted over all of them, so that spreading
/// guesses over relays gains nothing). Primitives only: when a session
/// expires and how many failures an address gets are decided by the
/// callers (`dashboard::auth`, [`crate::AppState`]).
pub trait SharedState: Send + Sync + std::fmt::Debug {
    /// Stores a session under `id` (the cookie's value).
    fn put_session(&self, id: &str, session: &DashSession) -> SResult<()>;
    /// The session stored under `id`, expired or not.
    fn session(&self, id: &str) -> SResult<Option<DashSession>>;
    /// Forgets the session `id`, and every session that expired before
    /// `now`.
    fn end_session(&self, id: &str, now: Millis) -> SResult<()>;
    /// Counts a failed login from `addr` at `at`, forgetting those older
    /// than `forget_before` (of every address).
    fn add_failed_login(&self, addr: IpAddr, at: Millis, forget_before: Millis) -> SResult<()>;
    /// The failed logins from `addr` at or after `since`.
    fn failed_logins_since(&self, addr: IpAddr, since: Millis) -> SResult<u32>;
}

/// [`SharedState`] in this process's memory: for SQLite, whose data
/// directory one relay process serves. A restart logs coordinators out and
/// forgets failed logins.
#[derive(Debug, Default)]
pub struct LocalState {
    sessions: Mutex<HashMap<String, DashSession>>,
    failed: Mutex<HashMap<IpAddr, VecDeque<Millis>>>,
}

/// Sessions [`LocalState`] keeps at most (the soonest to expire go first);
/// only coordinators open sessions, so this is a guard, not a limit anyone
/// meets.
const LOCAL_SESSIONS: usize = 10_000;
/// Addresses [`LocalState`] counts failures of at most (IPv6 makes new
/// ones cheap); past it the oldest failures go first.
const LOCAL_ADDRESSES: usize = 10_000;
/// Failures kept per address: more than any limit needs to count.
const LOCAL_FAILURES_PER_ADDRESS: usize = 64;

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock would be a bug; the map is still
    // consistent (every change is one call).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SharedState for LocalState {
    fn put_session(&self, id: &str, session: &DashSession) -> SResult<()> {
        let mut map = locked(&self.sessions);
        if map.len() >= LOCAL_SESSIONS
            && let Some(first) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&first);
        }
        map.insert(id.to_owned(), session.clone());
        Ok(())
    }

    fn session(&self, id: &str) -> SResult<Option<DashSession>> {
        Ok(locked(&self.sessions).get(id).cloned())
    }

    fn end_session(&self, id: &str, now: Millis) -> SResult<()> {
        let mut map = locked(&self.sessions);
        map.remove(id);
        map.retain(|_, s| s.expires > now);
        Ok(())
    }

    fn add_failed_login(&self, addr: IpAddr, at: Millis, forget_before: Millis) -> SResult<()> {
        let mut map = locked(&self.failed);
        if map.len() >= LOCAL_ADDRESSES {
            map.retain(|_, times| times.back().is_some_and(|&t| t >= forget_before));
        }
        let times = map.entry(addr).or_default();
        while times.front().is_some_and(|&t| t < forget_before)
            || times.len() >= LOCAL_FAILURES_PER_ADDRESS
        {
            times.pop_front();
        }
        times.push_back(at);
        Ok(())
    }

    fn failed_logins_since(&self, addr: IpAddr, since: Millis) -> SResult<u32> {
        Ok(locked(&self.failed).get(&addr).map_or(0, |times| {
            times.iter().filter(|&&t| t >= since).count() as u32
        }))
    }
}

/// The relay's storage and its notifier.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Everything durable.
    pub storage: Arc<dyn RelayStorage>,
    /// Wake-ups from other processes.
    pub notifier: Arc<dyn Notifier>,
    /// Dashboard sessions and failed logins, shared by the processes on
    /// this backend.
    pub shared: Arc<dyn SharedState>,
    /// `host:port/database` when the storage is PostgreSQL.
    pub database: Option<String>,
}

/// How often the SQLite notifier looks for commits by other processes: a
/// token revoked from the command line cuts its devices off within this.
pub const SQLITE_POLL: Duration = Duration::from_millis(500);

impl Backend {
    /// The embedded default: SQLite in `data_dir` (encrypted with `key`).
    pub fn open_sqlite(data_dir: &Path, key: Option<&[u8; 32]>) -> Result<Backend, ServerError> {
        let sqlite = Arc::new(SqliteRelay::open_with_key(data_dir, key)?);
        Ok(Backend {
            storage: sqlite.clone(),
            notifier: Arc::new(SqliteNotifier { relay: sqlite }),
            shared: Arc::new(LocalState::default()),
            database: None,
        })
    }
}

impl Backend {
    /// PostgreSQL at `url`, shared with any number of other relay
    /// processes ([`PgRelay::open`]).
    pub fn open_postgres(url: &str) -> Result<Backend, ServerError> {
        let pg = Arc::new(PgRelay::open(url)?);
        Ok(Backend {
            database: Some(pg.target().to_owned()),
            storage: pg.clone(),
            shared: pg.clone(),
            notifier: Arc::new(PgNotifier::new(pg)),
        })
    }

    /// PostgreSQL when `database` is given (`--database`), otherwise
    /// SQLite in `data_dir`: what every command of `muster-server` opens.
    pub fn open(
        data_dir: &Path,
        database: Option<&str>,
        key: Option<&[u8; 32]>,
    ) -> Result<Backend, ServerError> {
        match database {
            Some(url) => Backend::open_postgres(url),
            None => Backend::open_sqlite(data_dir, key),
        }
    }
}

/// SQLite's other writers are command-line processes on the same file: a
/// thread polls `PRAGMA data_version` (which changes with every commit of
/// another connection) and reports any change as [`Wake::Tokens`].
#[derive(Debug)]
struct SqliteNotifier {
    relay: Arc<SqliteRelay>,
}

impl Notifier for SqliteNotifier {
    fn publish(&self, _what: Wake) {
        // Every process on the file sees its commits through data_version.
    }

    fn subscribe(&self, wake: Box<dyn Fn(Wake) + Send + Sync>) -> Subscription {
        let stop = Arc::new(AtomicBool::new(false));
        let relay = self.relay.clone();
        let stopped = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("muster-sqlite-notifier".into())
            .spawn(move || {
                let mut seen = relay.data_version().ok();
                while !stopped.load(Ordering::SeqCst) {
                    std::thread::sleep(SQLITE_POLL);
                    let now = relay.data_version().ok();
                    if now.is_some() && now != seen {
                        seen = now;
                        wake(Wake::Tokens);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot watch the database for other processes' changes");
        }
        Subscription::new(stop)
    }
}
