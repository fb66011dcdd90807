//! The relay's durable state on PostgreSQL, for organisations that run
//! several relay processes (`muster-server serve --database postgres://…`):
//! the same tables as the SQLite default ([`crate::SqliteRelay`]), one
//! database shared by every process, and `LISTEN`/`NOTIFY` so that what one
//! process writes wakes the live sessions of the others.
//!
//! [`PgRelay`] implements the backend half of core's [`RelayStorage`]; the
//! rules that decide what is written stay core's. How it keeps the
//! contract when many processes write at once:
//!
//! - **One writer at a time.** Every [`RelayStorage::transaction`] that
//!   writes more than a device's `hello` takes the same
//!   transaction-scoped advisory lock before its first other primitive
//!   (`pg_advisory_xact_lock`, `Tx::lock`), so appends are serialised
//!   across processes (contract 1); the lock is released only once the
//!   commit is durable
//!   and visible, so the next writer reads the log as the last one left
//!   it.
//! - **`seq` and `vseq` are counted, not drawn from sequences.** A
//!   PostgreSQL sequence skips the numbers of a rolled-back transaction;
//!   under the lock the next position is the last one plus one, so the
//!   log has no gaps and becomes visible in commit order (contract 2, 8).
//! - **Acknowledged means committed.** `transaction` returns after
//!   `COMMIT` did, with PostgreSQL's `synchronous_commit` as the server has
//!   it (on, by default): the session acknowledges nothing earlier
//!   (contract 5).
//! - **Wake-ups ride on the commit.** A transaction that grew the log or
//!   the visibility log sends `NOTIFY muster_relay, '<instance> log'`
//!   inside itself, one that changed tokens `'<instance> tokens'`;
//!   PostgreSQL delivers them only if it commits. [`PgNotifier`] listens on
//!   a connection of its own, reconnects when it is lost, and wakes every
//!   session then (what happened meanwhile is read from the database).
//!
//! The schema is created and upgraded by the relay itself ([`MIGRATIONS`],
//! under an advisory lock so relays starting together do not race); a
//! database whose schema is newer than this build knows is refused.
//!
//! The trait is synchronous (the session is sans-IO and the server calls
//! storage from `block_in_place`); `PgRelay` owns a small tokio runtime that
//! drives its connections and blocks on it for each call.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use automerge::AutoCommit;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use muster_core::Millis;
use muster_core::model::DocKind;
use muster_core::sync::storage::{
    Appended, AuditEntry, Author, Batch, DocState, Head, Inserted, LogEntry, NewChange,
    RelayStorage, RelayTx, SResult, StorageError, TokenInfo, TokenRecord, VisChange, append_in,
    chain_hash, doc_from_log_bytes, random_hex,
};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use crate::ServerError;
use crate::backend::{DashSession, Notifier, SharedState, Subscription, Wake};
use crate::log_tail::{LogTail, TailSource};

/// The schema, one entry per version: entry `i` takes a database from
/// version `i` to `i + 1`. Append only; never edit a released entry.
pub const MIGRATIONS: &[&str] = &[
    // 1: the relay's tables, as SQLite's.
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE log (
    seq         BIGINT PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    hash        BYTEA NOT NULL,
    data        BYTEA NOT NULL,
    device      TEXT NOT NULL,
    token_id    TEXT NOT NULL,
    chain       BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (doc_id, hash)
);
CREATE INDEX log_by_doc ON log (doc_id, seq);
CREATE TABLE docs (
    doc_id         TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    first_seq      BIGINT NOT NULL,
    snapshot       BYTEA,
    snapshot_upto  BIGINT NOT NULL DEFAULT 0,
    since_snapshot BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    secret_hash  BYTEA NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    label        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT,
    last_device  TEXT,
    revoked_at   BIGINT
);
CREATE TABLE token_events (
    token_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (token_id, event_id)
);
CREATE TABLE token_docs (
    token_id TEXT NOT NULL,
    doc_id   TEXT NOT NULL,
    PRIMARY KEY (token_id, doc_id)
);
CREATE INDEX token_docs_by_doc ON token_docs (doc_id);
CREATE TABLE relay_signups (
    event_id   TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (event_id, contact_id)
);
CREATE TABLE visibility (
    vseq     BIGINT PRIMARY KEY,
    token_id TEXT,
    doc_id   TEXT NOT NULL,
    forget   BOOLEAN NOT NULL
);
CREATE TABLE relay_merges (
    duplicate TEXT PRIMARY KEY,
    kept      TEXT NOT NULL
);
CREATE TABLE erased (
    doc_id    TEXT PRIMARY KEY,
    erased_at BIGINT NOT NULL,
    token_id  TEXT NOT NULL,
    device    TEXT NOT NULL
);
CREATE TABLE devices (
    device_id  TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL,
    first_seen BIGINT NOT NULL
);
"#,
    // 2: what the relay processes share besides the log: dashboard
    // sessions (keyed by the SHA-256 of the cookie, so that reading the
    // database is not logging in) and failed logins per address.
    r#"
CREATE TABLE dashboard_sessions (
    id_hash  BYTEA PRIMARY KEY,
    token_id TEXT NOT NULL,
    csrf     TEXT NOT NULL,
    expires  BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires);
CREATE TABLE failed_logins (
    addr TEXT NOT NULL,
    at   BIGINT NOT NULL
);
CREATE INDEX failed_logins_by_addr ON failed_logins (addr, at);
CREATE INDEX failed_logins_by_time ON failed_logins (at);
"#,
];

/// The advisory lock every writing transaction holds ("muster" + 1).
pub(crate) const WRITE_LOCK: i64 = 0x6d75_7374_6572_0001;
/// The advisory lock held while the schema is checked and upgraded.
const MIGRATE_LOCK: i64 = 0x6d75_7374_6572_0002;
/// The `NOTIFY` channel of the relays sharing a database.
pub const CHANNEL: &str = "muster_relay";
/// Connections each process keeps at most.
const POOL_SIZE: usize = 16;
/// How long a call waits for a connection (to connect, or for a free one
/// of the pool) before it fails as [`StorageError::Unavailable`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Log entries read per round trip by [`RelayStorage::entries_after`].
const ENTRY_CHUNK: i64 = 256;

/// The relay's PostgreSQL storage. See the module documentation.
pub struct PgRelay {
    /// Drives the connections; shut down in the background on drop (a
    /// runtime cannot be dropped inside another's async context).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    config: tokio_postgres::Config,
    /// `host:port/database`, for messages (never the password).
    target: String,
    epoch: String,
    /// A random id of this process's storage, in its notifications, so that
    /// its listener can skip its own.
    instance: String,
    /// Appends waiting to be committed together ([`RelayStorage::append`]).
    group: Mutex<Group>,
    /// Signalled when a group's results are in.
    group_done: Condvar,
    /// The newest entries, shared by this process's live sessions.
    tail: LogTail,
}

/// The log entry in a row's columns from `at` on: seq, doc_id, hash,
/// data, device, chain, first seq.
fn log_entry(r: &tokio_postgres::Row, at: usize) -> LogEntry {
    LogEntry {
        seq: r.get::<_, i64>(at) as u64,
        doc: r.get(at + 1),
        hash: to_hash(r.get(at + 2)),
        data: r.get(at + 3),
        device: r.get(at + 4),
        chain: to_hash(r.get(at + 5)),
        first_seq: r.get::<_, i64>(at + 6) as u64,
    }
}

/// The database as the [`LogTail`] reads it.
struct TailReads<'a>(&'a PgRelay);

impl TailSource for TailReads<'_> {
    fn read(&self, after: u64, upto: u64, most: Batch) -> SResult<Vec<LogEntry>> {
        self.0.read_log(after, upto, most)
    }

    fn read_to_head(&self, after: u64, most: Batch) -> SResult<(Vec<LogEntry>, u64)> {
        // The head and the first entries in one statement (one snapshot):
        // a live session's wake costs one round trip.
        let first = self.0.read(async |c| {
            let st = c
                .prepare_cached(
                    "WITH h AS (SELECT coalesce(max(seq), 0) AS head FROM log)
                     SELECT h.head, l.seq, l.doc_id, l.hash, l.data, l.device, l.chain,
                            coalesce((SELECT d.first_seq FROM docs d WHERE d.doc_id = l.doc_id),
                                     l.seq)
                     FROM h LEFT JOIN LATERAL (
                         SELECT * FROM log
                         WHERE seq > $1 AND seq <= h.head AND octet_length(data) > 0
                         ORDER BY seq LIMIT $2) l ON true",
                )
                .await?;
            let after = i64::try_from(after).unwrap_or(i64::MAX);
            let rows = c.query(&st, &[&after, &ENTRY_CHUNK]).await?;
            let head = rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64;
            let mut entries = Vec::new();
            for r in rows {
                // No entry after `after`: the head's row alone.
                if r.get::<_, Option<i64>>(1).is_some() {
                    entries.push(log_entry(&r, 1));
                }
            }
            Ok((entries, head))
        })?;
        let (mut entries, head) = first;
        let bytes: usize = entries.iter().map(|e| e.data.len()).sum();
        // A full first chunk: the rest up to the same head, as any read.
        if entries.len() as i64 == ENTRY_CHUNK
            && !most.is_full(entries.len(), bytes)
            && let Some(last) = entries.last().map(|e| e.seq)
        {
            let rest = Batch {
                entries: most.entries.saturating_sub(entries.len()),
                bytes: most.bytes.saturating_sub(bytes),
            };
            entries.extend(self.0.read_log(last, head, rest)?);
        }
        Ok((entries, head))
    }

    fn erased(&self, docs: &[&str]) -> SResult<Vec<String>> {
        self.0.read(async |c| {
            let st = c
                .prepare_cached("SELECT doc_id FROM erased WHERE doc_id = ANY($1)")
                .await?;
            let rows = c.query(&st, &[&docs]).await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }
}

/// Group commit: the sessions' appends that arrive while one transaction
/// is writing wait for it, and the next transaction writes them all (one
/// lock, one commit, one notification), each by core's [`append_in`].
/// Under many pushing devices the write lock is held once per group
/// instead of once per push; alone, an append is its own group and waits
/// for nothing.
#[derive(Default)]
struct Group {
    /// Appends not yet taken by a leader, by ticket.
    waiting: Vec<(u64, Pending)>,
    /// Results not yet collected, by ticket.
    results: HashMap<u64, SResult<Appended>>,
    /// Whether a session is writing a group now.
    leading: bool,
    next: u64,
}

/// The leader's turn: on drop, the next append may lead; if the leader
/// panicked while writing, the appends it held fail instead of waiting
/// for ever.
struct Lead<'a> {
    relay: &'a PgRelay,
    /// The tickets still owed a result.
    tickets: Vec<u64>,
}

impl Lead<'_> {
    /// Hands out the group's results and ends the turn, in one step: a
    /// waiter that sees no leader either has its result or still waits
    /// to be taken.
    fn finish(mut self, results: Vec<(u64, SResult<Appended>)>) {
        self.tickets.clear();
        self.relay.group().results.extend(results);
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let mut g = self.relay.group();
        g.leading = false;
        for t in self.tickets.drain(..) {
            g.results.insert(
                t,
                Err(StorageError::Unavailable(
                    "the append was interrupted; push again".into(),
                )),
            );
        }
        self.relay.group_done.notify_all();
    }
}

/// One session's append, as the group's leader writes it.
struct Pending {
    author: Author,
    changes: Vec<NewChange>,
    now: Millis,
}

impl std::fmt::Debug for PgRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRelay")
            .field("target", &self.target)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Drop for PgRelay {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// PostgreSQL's errors, as the relay's storage reports them.
fn pg(e: tokio_postgres::Error) -> StorageError {
    StorageError::Unavailable(format!("PostgreSQL: {e}"))
}

/// The pool's errors (no connection could be made or freed in time).
fn pool_err(e: deadpool_postgres::PoolError) -> StorageError {
    StorageError::Unavailable(format!("PostgreSQL: {e}"))
}

/// `host:port/database` of a connection string, for messages.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{}",
        config.get_dbname().or(config.get_user()).unwrap_or("")
    )
}

impl PgRelay {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST:PORT/DATABASE`,
    /// or libpq's `key=value` form), creating or upgrading the relay's
    /// schema. A schema newer than this build's is refused, and so is a
    /// database that cannot be reached (after [`CONNECT_TIMEOUT`]).
    pub fn open(url: &str) -> Result<PgRelay, ServerError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            ServerError::BadRequest(format!(
                "--database: {e} (expected postgres://USER@HOST:PORT/DATABASE)"
            ))
        })?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(ServerError::BadRequest(
                "--database: sslmode=require is not supported yet; reach PostgreSQL over a \
                 private network or a local socket (sslmode=disable)"
                    .into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("muster-server");
        }
        // A relay that lost its database by a silent network must notice.
        config.keepalives_idle(Duration::from_secs(30));
        let target = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("muster-postgres")
            .enable_all()
            .build()
            .map_err(|e| ServerError::Storage(format!("cannot start PostgreSQL's runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| ServerError::Storage(format!("PostgreSQL pool: {e}")))?;
        let mut relay = PgRelay {
            runtime: Some(runtime),
            handle,
            pool,
            config,
            target,
            epoch: String::new(),
            instance: random_hex(8),
            group: Mutex::new(Group::default()),
            group_done: Condvar::new(),
            tail: LogTail::default(),
        };
        relay.epoch = relay.block(migrate(&relay.pool)).map_err(|e| match e {
            e @ ServerError::SchemaTooNew { .. } => e,
            e => ServerError::Storage(format!("{}: {e}", relay.target)),
        })?;
        Ok(relay)
    }

    fn group(&self) -> MutexGuard<'_, Group> {
        // A panic while holding it leaves the queue itself consistent.
        self.group.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes what is waiting in one transaction, taken from the queue
    /// once the write lock is held: what arrives while another process
    /// holds the lock joins this group instead of waiting for the next.
    /// If the transaction fails, each append is written in a transaction
    /// of its own, so that one bad append fails alone.
    fn write_group(&self, lead: &mut Lead<'_>) -> Vec<(u64, SResult<Appended>)> {
        let mut batch: Vec<(u64, Pending)> = Vec::new();
        let mut take = |batch: &mut Vec<(u64, Pending)>| {
            if batch.is_empty() {
                *batch = std::mem::take(&mut self.group().waiting);
                lead.tickets = batch.iter().map(|(t, _)| *t).collect();
            }
        };
        let mut outs = Vec::new();
        let together = self.run_transaction(true, &mut |tx| {
            take(&mut batch);
            outs.clear();
            for (_, p) in &batch {
                outs.push(append_in(tx, &p.author, &p.changes, p.now)?);
            }
            Ok(())
        });
        match together {
            Ok(()) => batch
                .iter()
                .zip(outs)
                .map(|((ticket, _), out)| (*ticket, Ok(out)))
                .collect(),
            Err(e) => {
                // Taken here if the transaction failed before it began.
                take(&mut batch);
                if let [(ticket, _)] = batch[..] {
                    return vec![(ticket, Err(e))];
                }
                batch
                    .iter()
                    .map(|(ticket, p)| {
                        let mut out = Appended::default();
                        let alone = self.transaction(&mut |tx| {
                            out = append_in(tx, &p.author, &p.changes, p.now)?;
                            Ok(())
                        });
                        (*ticket, alone.map(|()| out))
                    })
                    .collect()
            }
        }
    }

    /// The log's entries in `(after, upto]`, at most `most`, read from
    /// the database.
    fn read_log(&self, after: u64, upto: u64, most: Batch) -> SResult<Vec<LogEntry>> {
        let upto = i64::try_from(upto).unwrap_or(i64::MAX);
        self.read(async |c| {
            let st = c
                .prepare_cached(
                    // The first seq by a lookup per row returned, not a
                    // join: PostgreSQL joined by hashing the whole of
                    // `docs` for every read (a live session's few entries
                    // cost a scan of every document).
                    "SELECT l.seq, l.doc_id, l.hash, l.data, l.device, l.chain,
                            coalesce((SELECT d.first_seq FROM docs d WHERE d.doc_id = l.doc_id),
                                     l.seq)
                     FROM log l
                     WHERE l.seq > $1 AND l.seq <= $2 AND octet_length(l.data) > 0
                     ORDER BY l.seq LIMIT $3",
                )
                .await?;
            let mut out = Vec::new();
            let mut bytes = 0;
            let mut cursor = i64::try_from(after).unwrap_or(i64::MAX);
            // In chunks, so that a byte limit does not make PostgreSQL
            // send (and this process skip) the rest of the log.
            loop {
                let want = (most.entries - out.len()).min(ENTRY_CHUNK as usize) as i64;
                let rows = c.query(&st, &[&cursor, &upto, &want]).await?;
                let full = rows.len() as i64 == want;
                for r in rows {
                    if most.is_full(out.len(), bytes) {
                        return Ok(out);
                    }
                    let entry = log_entry(&r, 0);
                    bytes += entry.data.len();
                    cursor = entry.seq as i64;
                    out.push(entry);
                }
                if !full || most.is_full(out.len(), bytes) {
                    return Ok(out);
                }
            }
        })
    }

    /// `host:port/database`, as messages name it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `f` to completion on this storage's runtime from synchronous
    /// code: a plain thread, a blocking task, or a worker of a
    /// multi-threaded runtime (through `block_in_place`).
    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.handle.block_on(f))
            }
            _ => self.handle.block_on(f),
        }
    }

    /// Reclaims the space of old row versions now (`VACUUM`), so that the
    /// content an erasure removed is not left in the table files until
    /// autovacuum gets to it. `muster-server erase` runs it.
    pub fn vacuum(&self) -> SResult<()> {
        self.read(async |c| c.batch_execute("VACUUM log, docs").await)
    }

    /// The connection pool (for [`crate::migrate`]).
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Blocks on `f` as every call of this storage does.
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.block(f)
    }

    /// Runs a read on a pooled connection.
    fn read<T>(
        &self,
        f: impl AsyncFnOnce(&deadpool_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> SResult<T> {
        self.block(async {
            let client = self.pool.get().await.map_err(pool_err)?;
            f(&client).await.map_err(pg)
        })
    }
}

/// Creates or upgrades the schema and returns the relay's epoch.
async fn migrate(pool: &Pool) -> Result<String, ServerError> {
    let storage = |e: tokio_postgres::Error| ServerError::Storage(e.to_string());
    let mut client = pool
        .get()
        .await
        .map_err(|e| ServerError::Storage(e.to_string()))?;
    let tx = client.transaction().await.map_err(storage)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(storage)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS muster_schema (version INTEGER NOT NULL)")
        .await
        .map_err(storage)?;
    let found: i32 = tx
        .query_opt("SELECT max(version) FROM muster_schema", &[])
        .await
        .map_err(storage)?
        .and_then(|r| r.get::<_, Option<i32>>(0))
        .unwrap_or(0);
    let known = MIGRATIONS.len();
    if found < 0 || found as usize > known {
        return Err(ServerError::SchemaTooNew {
            found: found as i64,
            known: known as i64,
        });
    }
    for m in &MIGRATIONS[found as usize..] {
        tx.batch_execute(m).await.map_err(storage)?;
    }
    if found as usize != known {
        tx.execute("DELETE FROM muster_schema", &[])
            .await
            .map_err(storage)?;
        tx.execute(
            "INSERT INTO muster_schema (version) VALUES ($1)",
            &[&(known as i32)],
        )
        .await
        .map_err(storage)?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING",
        &[&random_hex(16)],
    )
    .await
    .map_err(storage)?;
    let epoch: String = tx
        .query_one("SELECT value FROM meta WHERE key = 'epoch'", &[])
        .await
        .map_err(storage)?
        .get(0);
    tx.commit().await.map_err(storage)?;
    Ok(epoch)
}

/// What Automerge's `load` accepts for each of `docs` (its snapshot, then
/// the changes logged after it), in the order given; empty for a document
/// the relay does not have.
async fn snapshot_bytes<C: GenericClient>(
    c: &C,
    docs: &[&str],
) -> Result<Vec<Vec<u8>>, tokio_postgres::Error> {
    let mut out: HashMap<String, Vec<u8>> = HashMap::with_capacity(docs.len());
    let st = c
        .prepare_cached("SELECT doc_id, snapshot FROM docs WHERE doc_id = ANY($1)")
        .await?;
    for r in c.query(&st, &[&docs]).await? {
        let snapshot: Option<Vec<u8>> = r.get(1);
        out.insert(r.get(0), snapshot.unwrap_or_default());
    }
    let st = c
        .prepare_cached(
            "SELECT l.doc_id, l.data FROM log l JOIN docs d ON d.doc_id = l.doc_id
             WHERE l.doc_id = ANY($1) AND l.seq > d.snapshot_upto ORDER BY l.doc_id, l.seq",
        )
        .await?;
    for r in c.query(&st, &[&docs]).await? {
        let doc: String = r.get(0);
        let data: &[u8] = r.get(1);
        if let Some(bytes) = out.get_mut(&doc) {
            bytes.extend_from_slice(data);
        }
    }
    Ok(docs
        .iter()
        .map(|d| out.get(*d).cloned().unwrap_or_default())
        .collect())
}

fn token_record(r: &tokio_postgres::Row) -> TokenRecord {
    TokenRecord {
        id: r.get(0),
        secret_hash: to_hash(r.get(1)),
        role: r.get(2),
        label: r.get(3),
        revoked: r.get::<_, Option<i64>>(4).is_some(),
    }
}

const TOKEN_COLUMNS: &str = "id, secret_hash, role, label, revoked_at";

fn to_hash(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    if bytes.len() == 32 {
        out.copy_from_slice(bytes);
    }
    out
}

/// One transaction of [`PgRelay`]: the primitive writes.
struct Tx<'a> {
    tx: &'a deadpool_postgres::Transaction<'a>,
    relay: &'a PgRelay,
    /// The log or the visibility log grew: other relays' sessions send
    /// what is new.
    grew: bool,
    /// Tokens changed: other relays' sessions check theirs again.
    tokens: bool,
    /// `WRITE_LOCK` is held (from the first primitive that needs it to
    /// the commit).
    locked: bool,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Tx<'_> {
    /// Takes `WRITE_LOCK` if this transaction does not hold it yet. Every
    /// primitive calls it first, except those of a device's `hello`
    /// (`token`, `claim_device`, `touch_token`): they assign no position
    /// and decide nothing another writer could change under them. A
    /// token revoked or edited just after a `hello` read it is caught
    /// by the session itself: it listens for token changes from before
    /// its `hello`, and the edit's commit wakes it to check again. So a
    /// hundred devices connecting do not queue with the pushes for the
    /// one lock, and `touch_token` never waits for a row either.
    fn lock(&mut self) -> SResult<()> {
        if !self.locked {
            self.exec("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
            self.locked = true;
        }
        Ok(())
    }

    fn rows(&self, sql: &str, params: Params<'_>) -> SResult<Vec<tokio_postgres::Row>> {
        self.relay
            .block(async {
                let st = self.tx.prepare_cached(sql).await?;
                self.tx.query(&st, params).await
            })
            .map_err(pg)
    }

    fn exec(&self, sql: &str, params: Params<'_>) -> SResult<u64> {
        self.relay
            .block(async {
                let st = self.tx.prepare_cached(sql).await?;
                self.tx.execute(&st, params).await
            })
            .map_err(pg)
    }

    fn strings(&self, sql: &str, arg: &str) -> SResult<Vec<String>> {
        Ok(self
            .rows(sql, &[&arg])?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect())
    }
}

impl RelayTx for Tx<'_> {
    fn insert_changes(
        &mut self,
        author: &Author,
        changes: &[NewChange],
        now: Millis,
    ) -> SResult<Inserted> {
        self.lock()?;
        let mut out = Inserted::default();
        if changes.is_empty() {
            return Ok(out);
        }
        let (mut seq, mut chain) = self
            .rows("SELECT seq, chain FROM log ORDER BY seq DESC LIMIT 1", &[])?
            .first()
            .map_or((0, [0; 32]), |r| (r.get::<_, i64>(0), to_hash(r.get(1))));
        let docs: Vec<&str> = changes.iter().map(|c| c.doc.as_str()).collect();
        let hashes: Vec<&[u8]> = changes.iter().map(|c| c.hash.as_slice()).collect();
        // Changes logged already (contract 4), in one round trip.
        let mut logged: HashMap<(String, [u8; 32]), (i64, [u8; 32])> = self
            .rows(
                "SELECT l.doc_id, l.hash, l.seq, l.chain FROM log l
                 JOIN unnest($1::text[], $2::bytea[]) AS u(doc_id, hash)
                   ON l.doc_id = u.doc_id AND l.hash = u.hash",
                &[&docs, &hashes],
            )?
            .iter()
            .map(|r| {
                (
                    (r.get::<_, String>(0), to_hash(r.get(1))),
                    (r.get::<_, i64>(2), to_hash(r.get(3))),
                )
            })
            .collect();
        // The new entries, numbered and chained here under the write lock.
        struct New {
            change: usize,
            seq: i64,
            chain: [u8; 32],
        }
        let mut new: Vec<New> = Vec::new();
        let mut known: Vec<Option<(i64, [u8; 32])>> = Vec::with_capacity(changes.len());
        for (i, c) in changes.iter().enumerate() {
            let key = (c.doc.clone(), c.hash);
            if let Some(&at) = logged.get(&key) {
                known.push(Some(at));
                continue;
            }
            seq += 1;
            chain = chain_hash(&chain, &c.hash);
            logged.insert(key, (seq, chain));
            new.push(New {
                change: i,
                seq,
                chain,
            });
            known.push(None);
        }
        // Per document: how many new entries, and the first one's seq.
        let mut per_doc: Vec<(&str, i64, i64)> = Vec::new();
        let mut at: HashMap<&str, usize> = HashMap::new();
        for n in &new {
            let doc = changes[n.change].doc.as_str();
            match at.get(doc) {
                Some(&i) => per_doc[i].1 += 1,
                None => {
                    at.insert(doc, per_doc.len());
                    per_doc.push((doc, 1, n.seq));
                }
            }
        }
        let mut totals: HashMap<String, (i64, i64)> = HashMap::new();
        if !new.is_empty() {
            let seqs: Vec<i64> = new.iter().map(|n| n.seq).collect();
            let new_docs: Vec<&str> = new.iter().map(|n| docs[n.change]).collect();
            let new_hashes: Vec<&[u8]> = new.iter().map(|n| hashes[n.change]).collect();
            let data: Vec<&[u8]> = new
                .iter()
                .map(|n| changes[n.change].data.as_slice())
                .collect();
            let chains: Vec<&[u8]> = new.iter().map(|n| n.chain.as_slice()).collect();
            self.exec(
                "INSERT INTO log (seq, doc_id, hash, data, chain, device, token_id, received_at)
                 SELECT s, d, h, x, c, $6, $7, $8
                 FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[])
                      AS u(s, d, h, x, c)",
                &[
                    &seqs,
                    &new_docs,
                    &new_hashes,
                    &data,
                    &chains,
                    &author.device,
                    &author.token_id,
                    &now,
                ],
            )?;
            let doc_ids: Vec<&str> = per_doc.iter().map(|d| d.0).collect();
            let kinds: Vec<&str> = per_doc
                .iter()
                .map(|d| DocKind::of_id(d.0).map_or("unknown", DocKind::as_str))
                .collect();
            let counts: Vec<i64> = per_doc.iter().map(|d| d.1).collect();
            let firsts: Vec<i64> = per_doc.iter().map(|d| d.2).collect();
            for r in self.rows(
                "INSERT INTO docs (doc_id, kind, first_seq, since_snapshot)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
                 ON CONFLICT (doc_id) DO UPDATE
                   SET since_snapshot = docs.since_snapshot + excluded.since_snapshot
                 RETURNING doc_id, since_snapshot, first_seq",
                &[&doc_ids, &kinds, &firsts, &counts],
            )? {
                totals.insert(r.get(0), (r.get(1), r.get(2)));
            }
            self.grew = true;
        }
        // What each change became, in the order given.
        let mut left: HashMap<&str, i64> = per_doc.iter().map(|d| (d.0, d.1)).collect();
        let mut next_new = new.iter();
        for (i, c) in changes.iter().enumerate() {
            if let Some((s, ch)) = known[i] {
                out.already_logged(s as u64, ch);
                continue;
            }
            let Some(n) = next_new.next() else {
                return Err(StorageError::damaged(
                    "log",
                    "an appended change went missing",
                ));
            };
            let doc = c.doc.as_str();
            let (since_total, first) = totals
                .get(doc)
                .copied()
                .ok_or_else(|| StorageError::damaged(doc, "its docs row was not written"))?;
            let remaining = left.get_mut(doc).map_or(0, |l| {
                *l -= 1;
                *l
            });
            out.logged(
                i,
                doc,
                first == n.seq,
                (n.seq as u64, n.chain),
                (since_total - remaining) as u64,
            );
        }
        Ok(out)
    }

    fn load_doc(&mut self, doc: &str) -> SResult<Option<AutoCommit>> {
        self.lock()?;
        let bytes = self
            .relay
            .block(snapshot_bytes(self.tx, &[doc]))
            .map_err(pg)?;
        doc_from_log_bytes(doc, bytes.first().map_or(&[][..], Vec::as_slice))
    }

    fn put_snapshot(&mut self, doc: &str, snapshot: &[u8], upto: u64) -> SResult<()> {
        self.lock()?;
        self.exec(
            "UPDATE docs SET snapshot = $2, snapshot_upto = $3, since_snapshot = 0 WHERE doc_id = $1",
            &[&doc, &snapshot, &(upto as i64)],
        )?;
        Ok(())
    }

    fn record_signup(&mut self, event: &str, contact: &str) -> SResult<bool> {
        self.lock()?;
        Ok(self.exec(
            "INSERT INTO relay_signups (event_id, contact_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&event, &contact],
        )? > 0)
    }

    fn signups_of(&mut self, event: &str) -> SResult<Vec<String>> {
        self.lock()?;
        self.strings(
            "SELECT contact_id FROM relay_signups WHERE event_id = $1",
            event,
        )
    }

    fn event_holders(&mut self, event: &str) -> SResult<Vec<String>> {
        self.lock()?;
        self.strings(
            "SELECT e.token_id FROM token_events e JOIN tokens t ON t.id = e.token_id
             WHERE e.event_id = $1 AND t.revoked_at IS NULL ORDER BY e.token_id",
            event,
        )
    }

    fn doc_holders(&mut self, doc: &str) -> SResult<Vec<String>> {
        self.lock()?;
        self.strings(
            "SELECT token_id FROM token_docs WHERE doc_id = $1 ORDER BY token_id",
            doc,
        )
    }

    fn merge_of(&mut self, duplicate: &str) -> SResult<Option<String>> {
        self.lock()?;
        Ok(self
            .strings(
                "SELECT kept FROM relay_merges WHERE duplicate = $1",
                duplicate,
            )?
            .pop())
    }

    fn set_merge(&mut self, duplicate: &str, kept: Option<&str>) -> SResult<()> {
        self.lock()?;
        match kept {
            Some(kept) => self.exec(
                "INSERT INTO relay_merges (duplicate, kept) VALUES ($1, $2)
                 ON CONFLICT (duplicate) DO UPDATE SET kept = excluded.kept",
                &[&duplicate, &kept],
            )?,
            None => self.exec(
                "DELETE FROM relay_merges WHERE duplicate = $1",
                &[&duplicate],
            )?,
        };
        Ok(())
    }

    fn is_erased(&mut self, doc: &str) -> SResult<bool> {
        self.lock()?;
        Ok(!self
            .strings("SELECT doc_id FROM erased WHERE doc_id = $1", doc)?
            .is_empty())
    }

    fn created_by(&mut self, token: &str) -> SResult<Vec<String>> {
        self.lock()?;
        self.strings(
            "SELECT d.doc_id FROM docs d JOIN log l ON l.seq = d.first_seq
             WHERE l.token_id = $1 ORDER BY d.doc_id",
            token,
        )
    }

    fn scope_of(&mut self, token: &str) -> SResult<BTreeSet<String>> {
        self.lock()?;
        Ok(self
            .strings("SELECT doc_id FROM token_docs WHERE token_id = $1", token)?
            .into_iter()
            .collect())
    }

    fn add_to_scope(&mut self, token: &str, doc: &str) -> SResult<bool> {
        self.lock()?;
        Ok(self.exec(
            "INSERT INTO token_docs (token_id, doc_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&token, &doc],
        )? > 0)
    }

    fn remove_from_scope(&mut self, token: Option<&str>, doc: &str) -> SResult<()> {
        self.lock()?;
        match token {
            Some(t) => self.exec(
                "DELETE FROM token_docs WHERE token_id = $1 AND doc_id = $2",
                &[&t, &doc],
            )?,
            None => self.exec("DELETE FROM token_docs WHERE doc_id = $1", &[&doc])?,
        };
        Ok(())
    }

    fn announce(&mut self, token: Option<&str>, doc: &str, forget: bool) -> SResult<()> {
        self.lock()?;
        // Counted under the write lock, not drawn from a sequence: no gaps.
        self.exec(
            "INSERT INTO visibility (vseq, token_id, doc_id, forget)
             SELECT coalesce(max(vseq), 0) + 1, $1, $2, $3 FROM visibility",
            &[&token, &doc, &forget],
        )?;
        self.grew = true;
        Ok(())
    }

    fn insert_token(&mut self, token: &TokenRecord, now: Millis) -> SResult<()> {
        self.lock()?;
        self.exec(
            "INSERT INTO tokens (id, secret_hash, role, label, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[
                &token.id,
                &token.secret_hash.as_slice(),
                &token.role,
                &token.label,
                &now,
            ],
        )?;
        self.tokens = true;
        Ok(())
    }

    fn token(&mut self, id: &str) -> SResult<Option<TokenRecord>> {
        Ok(self
            .rows(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"),
                &[&id],
            )?
            .first()
            .map(token_record))
    }

    fn set_token_events(&mut self, id: &str, events: &[String]) -> SResult<()> {
        self.lock()?;
        self.exec("DELETE FROM token_events WHERE token_id = $1", &[&id])?;
        self.exec(
            "INSERT INTO token_events (token_id, event_id)
             SELECT $1, e FROM unnest($2::text[]) AS u(e) ON CONFLICT DO NOTHING",
            &[&id, &events],
        )?;
        self.tokens = true;
        Ok(())
    }

    fn revoke_token(&mut self, id: &str, now: Millis) -> SResult<()> {
        self.lock()?;
        self.exec(
            "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &now],
        )?;
        self.tokens = true;
        Ok(())
    }

    fn claim_device(&mut self, device: &str, token: &str, now: Millis) -> SResult<String> {
        self.exec(
            "INSERT INTO devices (device_id, token_id, first_seen) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&device, &token, &now],
        )?;
        self.strings("SELECT token_id FROM devices WHERE device_id = $1", device)?
            .pop()
            .ok_or_else(|| StorageError::damaged("devices", "a device row just written is missing"))
    }

    fn touch_token(&mut self, token: &str, device: &str, now: Millis) -> SResult<()> {
        // Devices sharing a token connect at once (a hundred desks at
        // nine): if another's hello holds the row, it is recording the
        // same moment, and this one does not queue behind it.
        self.exec(
            "UPDATE tokens SET last_seen_at = $2, last_device = $3
             WHERE id = (SELECT id FROM tokens WHERE id = $1 FOR UPDATE SKIP LOCKED)",
            &[&token, &now, &device],
        )?;
        Ok(())
    }

    fn erase_doc(&mut self, doc: &str, author: &Author, now: Millis) -> SResult<()> {
        self.lock()?;
        // The entries stay (positions and hashes keep the log's chain);
        // their content goes. PostgreSQL keeps the old row versions until
        // VACUUM reclaims them: `muster-server erase` runs it after.
        self.exec("UPDATE log SET data = ''::bytea WHERE doc_id = $1", &[&doc])?;
        self.exec("DELETE FROM docs WHERE doc_id = $1", &[&doc])?;
        self.exec(
            "INSERT INTO erased (doc_id, erased_at, token_id, device) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&doc, &now, &author.token_id, &author.device],
        )?;
        self.tokens = true;
        Ok(())
    }
}

impl RelayStorage for PgRelay {
    fn epoch(&self) -> SResult<String> {
        Ok(self.epoch.clone())
    }

    /// Group commit ([`Group`]): acknowledged, as always, only once the
    /// transaction holding this append has committed.
    fn append(&self, author: &Author, changes: &[NewChange], now: Millis) -> SResult<Appended> {
        let ticket = {
            let mut g = self.group();
            let ticket = g.next;
            g.next += 1;
            g.waiting.push((
                ticket,
                Pending {
                    author: author.clone(),
                    changes: changes.to_vec(),
                    now,
                },
            ));
            ticket
        };
        let mut g = self.group();
        loop {
            if let Some(result) = g.results.remove(&ticket) {
                return result;
            }
            if g.leading {
                g = self.group_done.wait(g).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: write everything waiting, this append among it.
            g.leading = true;
            drop(g);
            let mut lead = Lead {
                relay: self,
                tickets: Vec::new(),
            };
            let results = self.write_group(&mut lead);
            lead.finish(results);
            g = self.group();
        }
    }

    fn head(&self) -> SResult<Head> {
        self.read(async |c| {
            let st = c
                .prepare_cached(
                    "SELECT (SELECT seq FROM log ORDER BY seq DESC LIMIT 1),
                            (SELECT chain FROM log ORDER BY seq DESC LIMIT 1),
                            (SELECT max(vseq) FROM visibility)",
                )
                .await?;
            let r = c.query_one(&st, &[]).await?;
            Ok(Head {
                seq: r.get::<_, Option<i64>>(0).unwrap_or(0) as u64,
                chain: r.get::<_, Option<&[u8]>>(1).map_or([0; 32], to_hash),
                vis: r.get::<_, Option<i64>>(2).unwrap_or(0) as u64,
            })
        })
    }

    fn hash_at(&self, seq: u64) -> SResult<Option<[u8; 32]>> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.read(async |c| {
            let st = c
                .prepare_cached("SELECT chain FROM log WHERE seq = $1")
                .await?;
            Ok(c.query_opt(&st, &[&seq]).await?.map(|r| to_hash(r.get(0))))
        })
    }

    /// Live sessions' reads come from the process's [`LogTail`]; the rest
    /// from the database.
    fn entries_after(&self, after: u64, upto: u64, most: Batch) -> SResult<Vec<LogEntry>> {
        self.tail.entries_after(&TailReads(self), after, upto, most)
    }

    fn doc_states(&self, docs: &[&str]) -> SResult<Vec<DocState>> {
        self.read(async |c| {
            let st = c
                .prepare_cached(
                    "SELECT u.doc_id,
                            EXISTS (SELECT 1 FROM docs d WHERE d.doc_id = u.doc_id),
                            EXISTS (SELECT 1 FROM erased e WHERE e.doc_id = u.doc_id)
                     FROM unnest($1::text[]) AS u(doc_id)",
                )
                .await?;
            let states: HashMap<String, DocState> = c
                .query(&st, &[&docs])
                .await?
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        DocState {
                            exists: r.get(1),
                            erased: r.get(2),
                        },
                    )
                })
                .collect();
            Ok(docs
                .iter()
                .map(|d| states.get(*d).copied().unwrap_or_default())
                .collect())
        })
    }

    fn snapshots(&self, docs: &[&str]) -> SResult<Vec<Vec<u8>>> {
        self.read(async |c| snapshot_bytes(c, docs).await)
    }

    fn load_doc(&self, doc: &str) -> SResult<Option<AutoCommit>> {
        let bytes = self.snapshots(&[doc])?;
        doc_from_log_bytes(doc, bytes.first().map_or(&[][..], Vec::as_slice))
    }

    fn vis_after(&self, token: &str, after: u64, upto: u64) -> SResult<Vec<VisChange>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let upto = i64::try_from(upto).unwrap_or(i64::MAX);
        self.read(async |c| {
            let st = c
                .prepare_cached(
                    "SELECT doc_id, forget FROM visibility
                     WHERE vseq > $1 AND vseq <= $2 AND (token_id IS NULL OR token_id = $3)
                     ORDER BY vseq",
                )
                .await?;
            Ok(c.query(&st, &[&after, &upto, &token])
                .await?
                .iter()
                .map(|r| VisChange {
                    doc: r.get(0),
                    forget: r.get(1),
                })
                .collect())
        })
    }

    fn scope_docs(&self, token: &str) -> SResult<Vec<String>> {
        self.read(async |c| {
            let st = c
                .prepare_cached("SELECT doc_id FROM token_docs WHERE token_id = $1 ORDER BY doc_id")
                .await?;
            Ok(c.query(&st, &[&token])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn token_by_secret(&self, secret_hash: &[u8; 32]) -> SResult<Option<TokenRecord>> {
        let hash = secret_hash.as_slice();
        self.read(async |c| {
            let st = c
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = $1"
                ))
                .await?;
            Ok(c.query_opt(&st, &[&hash]).await?.as_ref().map(token_record))
        })
    }

    fn token_by_id(&self, id: &str) -> SResult<Option<TokenRecord>> {
        self.read(async |c| {
            let st = c
                .prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"))
                .await?;
            Ok(c.query_opt(&st, &[&id]).await?.as_ref().map(token_record))
        })
    }

    fn list_tokens(&self) -> SResult<Vec<TokenInfo>> {
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT id, role, label, created_at, last_seen_at, last_device, revoked_at,
                            (SELECT array_agg(event_id ORDER BY event_id) FROM token_events e
                             WHERE e.token_id = t.id)
                     FROM tokens t ORDER BY created_at, id",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| TokenInfo {
                    id: r.get(0),
                    role: r.get(1),
                    label: r.get(2),
                    created_at: r.get(3),
                    last_seen_at: r.get(4),
                    last_device: r.get(5),
                    revoked_at: r.get(6),
                    events: r.get::<_, Option<Vec<String>>>(7).unwrap_or_default(),
                })
                .collect())
        })
    }

    fn device_labels(&self) -> SResult<HashMap<String, (String, String)>> {
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT d.device_id, coalesce(t.label, ''), coalesce(t.role, '')
                     FROM devices d LEFT JOIN tokens t ON t.id = d.token_id",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect())
        })
    }

    fn audit(&self, doc: Option<&str>) -> SResult<Vec<AuditEntry>> {
        self.read(async |c| {
            let rows = c
                .query(
                    "SELECT l.seq, l.doc_id, l.device, l.token_id, coalesce(t.label, ''),
                            coalesce(t.role, ''), l.received_at, octet_length(l.data) = 0
                     FROM log l LEFT JOIN tokens t ON t.id = l.token_id
                     WHERE $1::text IS NULL OR l.doc_id = $1 ORDER BY l.seq",
                    &[&doc],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| AuditEntry {
                    seq: r.get::<_, i64>(0) as u64,
                    doc: r.get(1),
                    device: r.get(2),
                    token_id: r.get(3),
                    label: r.get(4),
                    role: r.get(5),
                    received_at: r.get(6),
                    erased: r.get(7),
                })
                .collect())
        })
    }

    fn transaction(&self, f: &mut dyn FnMut(&mut dyn RelayTx) -> SResult<()>) -> SResult<()> {
        self.run_transaction(false, f)
    }
}

impl PgRelay {
    /// [`RelayStorage::transaction`], holding `WRITE_LOCK` before `f`
    /// runs if `lock_first` (a group commit takes its group once it holds
    /// it), or from the first primitive that needs it ([`Tx::lock`]).
    fn run_transaction(
        &self,
        lock_first: bool,
        f: &mut dyn FnMut(&mut dyn RelayTx) -> SResult<()>,
    ) -> SResult<()> {
        let mut client = self.block(self.pool.get()).map_err(pool_err)?;
        let tx = self.block(client.transaction()).map_err(pg)?;
        let mut t = Tx {
            tx: &tx,
            relay: self,
            grew: false,
            tokens: false,
            locked: false,
        };
        if lock_first {
            t.lock()?;
        }
        if let Err(e) = f(&mut t) {
            let _ = self.block(tx.rollback());
            return Err(e);
        }
        let (grew, tokens) = (t.grew, t.tokens);
        for (changed, what) in [(grew, "log"), (tokens, "tokens")] {
            if changed {
                let payload = format!("{} {what}", self.instance);
                self.block(tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]))
                    .map_err(pg)?;
            }
        }
        self.block(tx.commit()).map_err(pg)
    }
}

/// The key a dashboard session is stored under.
fn session_key(id: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(id.as_bytes()).to_vec()
}

impl SharedState for PgRelay {
    fn put_session(&self, id: &str, session: &DashSession) -> SResult<()> {
        let key = session_key(id);
        self.read(async |c| {
            c.execute(
                "INSERT INTO dashboard_sessions (id_hash, token_id, csrf, expires)
                 VALUES ($1, $2, $3, $4)",
                &[&key, &session.token_id, &session.csrf, &session.expires],
            )
            .await
        })?;
        Ok(())
    }

    fn session(&self, id: &str) -> SResult<Option<DashSession>> {
        let key = session_key(id);
        self.read(async |c| {
            let st = c
                .prepare_cached(
                    "SELECT token_id, csrf, expires FROM dashboard_sessions WHERE id_hash = $1",
                )
                .await?;
            Ok(c.query_opt(&st, &[&key]).await?.map(|r| DashSession {
                token_id: r.get(0),
                csrf: r.get(1),
                expires: r.get(2),
            }))
        })
    }

    fn end_session(&self, id: &str, now: Millis) -> SResult<()> {
        let key = session_key(id);
        self.read(async |c| {
            c.execute(
                "DELETE FROM dashboard_sessions WHERE id_hash = $1 OR expires <= $2",
                &[&key, &now],
            )
            .await
        })?;
        Ok(())
    }

    fn add_failed_login(
        &self,
        addr: std::net::IpAddr,
        at: Millis,
        forget_before: Millis,
    ) -> SResult<()> {
        let addr = addr.to_string();
        self.read(async |c| {
            c.execute("DELETE FROM failed_logins WHERE at < $1", &[&forget_before])
                .await?;
            c.execute(
                "INSERT INTO failed_logins (addr, at) VALUES ($1, $2)",
                &[&addr, &at],
            )
            .await
        })?;
        Ok(())
    }

    fn failed_logins_since(&self, addr: std::net::IpAddr, since: Millis) -> SResult<u32> {
        let addr = addr.to_string();
        self.read(async |c| {
            let st = c
                .prepare_cached("SELECT count(*) FROM failed_logins WHERE addr = $1 AND at >= $2")
                .await?;
            let n: i64 = c.query_one(&st, &[&addr, &since]).await?.get(0);
            Ok(n.clamp(0, u32::MAX as i64) as u32)
        })
    }
}

/// Wake-ups between the relays sharing one PostgreSQL database: a
/// connection of its own `LISTEN`s on [`CHANNEL`].
#[derive(Debug)]
pub struct PgNotifier {
    relay: Arc<PgRelay>,
}

impl PgNotifier {
    /// Listens to the other processes writing to `relay`'s database.
    pub fn new(relay: Arc<PgRelay>) -> PgNotifier {
        PgNotifier { relay }
    }
}

/// What the relay logs when PostgreSQL goes away (the listener's
/// connection is lost or cannot be made), once per outage.
pub const UNREACHABLE: &str = "PostgreSQL is unreachable: devices are told to try again later, \
     and sync resumes by itself when it is back";
/// What it logs when PostgreSQL is back.
pub const REACHABLE: &str = "PostgreSQL is reachable again; sync resumes";

/// How often the listener looks whether it was stopped.
const LISTEN_TICK: Duration = Duration::from_millis(250);
/// The longest wait between two attempts to reconnect the listener.
const LISTEN_BACKOFF: Duration = Duration::from_secs(2);

impl Notifier for PgNotifier {
    fn publish(&self, _what: Wake) {
        // Sent inside the transaction that wrote (see `transaction`), so
        // that it is delivered exactly when the write is visible.
    }

    fn subscribe(&self, wake: Box<dyn Fn(Wake) + Send + Sync>) -> Subscription {
        let stop = Arc::new(AtomicBool::new(false));
        self.relay.handle.spawn(listen(
            self.relay.config.clone(),
            self.relay.target.clone(),
            self.relay.instance.clone(),
            wake,
            stop.clone(),
        ));
        Subscription::new(stop)
    }
}

/// The listener: `LISTEN`, wake on each other instance's notification,
/// reconnect with a backoff when the connection goes, and wake every
/// session after reconnecting (what was missed is in the database).
async fn listen(
    config: tokio_postgres::Config,
    target: String,
    instance: String,
    wake: Box<dyn Fn(Wake) + Send + Sync>,
    stop: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut lost = false;
    while !stop.load(Ordering::SeqCst) {
        let (client, mut connection) = match config.connect(NoTls).await {
            Ok(c) => c,
            Err(e) => {
                if !lost {
                    tracing::error!(database = %target, error = %e, "{UNREACHABLE}");
                    lost = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(LISTEN_BACKOFF);
                continue;
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
            while let Some(m) = messages.next().await {
                match m {
                    Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                        if tx.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
            if !lost {
                tracing::error!(database = %target, error = %e, "{UNREACHABLE}");
            }
            driver.abort();
            lost = true;
            tokio::time::sleep(backoff).await;
            continue;
        }
        if lost {
            tracing::info!(database = %target, "{REACHABLE}");
            lost = false;
        }
        backoff = Duration::from_millis(100);
        // Whatever was written while nobody listened.
        wake(Wake::Tokens);
        wake(Wake::Log);
        loop {
            tokio::select! {
                payload = rx.recv() => match payload {
                    Some(p) => {
                        let (from, what) = p.split_once(' ').unwrap_or(("", p.as_str()));
                        if from == instance {
                            continue;
                        }
                        wake(if what == "log" { Wake::Log } else { Wake::Tokens });
                    }
                    None => break,
                },
                _ = tokio::time::sleep(LISTEN_TICK) => {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                }
            }
        }
        driver.abort();
        drop(client);
        if !stop.load(Ordering::SeqCst) {
            tracing::error!(database = %target, "{UNREACHABLE}");
            lost = true;
        }
    }
}
