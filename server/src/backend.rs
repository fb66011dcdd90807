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

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use muster_core::sync::storage::RelayStorage;

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

/// The relay's storage and its notifier.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Everything durable.
    pub storage: Arc<dyn RelayStorage>,
    /// Wake-ups from other processes.
    pub notifier: Arc<dyn Notifier>,
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
