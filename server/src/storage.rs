//! The relay's durable state on SQLite (the embedded default): the change
//! log, per-document snapshots for first sync, tokens, scopes, the
//! visibility log and erasures.
//!
//! One file, `relay.sqlite3`, in the data directory; WAL with
//! `synchronous = FULL`, so a committed transaction is on disk — the
//! session acknowledges nothing before that. [`SqliteRelay`] implements the
//! backend half of core's [`RelayStorage`] (reads, and the primitive writes
//! of [`RelayTx`] inside one `IMMEDIATE` transaction at a time); the rules
//! that decide what is written are core's. Other backends (PostgreSQL, so
//! that several relay processes can serve one organisation) implement the
//! same trait and pass the same conformance suite.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use automerge::AutoCommit;
use muster_core::Millis;
use muster_core::model::DocKind;
pub use muster_core::sync::storage::{AuditEntry, ROLES, SecretCheck, TokenInfo, random_hex};
use muster_core::sync::storage::{
    Author, Batch, DocState, Head, Inserted, LogEntry, NewChange, RelayStorage, RelayTx, SResult,
    StorageError, TokenRecord, VisChange, chain_hash, doc_from_log_bytes,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::ServerError;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS log (
    seq         INTEGER PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    hash        BLOB NOT NULL,
    data        BLOB NOT NULL,
    device      TEXT NOT NULL,
    token_id    TEXT NOT NULL,
    chain       BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (doc_id, hash)
) STRICT;
CREATE INDEX IF NOT EXISTS log_by_doc ON log (doc_id, seq);
CREATE TABLE IF NOT EXISTS docs (
    doc_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    first_seq     INTEGER NOT NULL,
    snapshot      BLOB,
    snapshot_upto INTEGER NOT NULL DEFAULT 0,
    since_snapshot INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE IF NOT EXISTS tokens (
    id           TEXT PRIMARY KEY,
    secret_hash  BLOB NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    label        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER,
    last_device  TEXT,
    revoked_at   INTEGER
) STRICT;
-- A volunteer token's events (its scope is derived from them).
CREATE TABLE IF NOT EXISTS token_events (
    token_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (token_id, event_id)
) STRICT, WITHOUT ROWID;
-- What each scoped token may see now: its events, the contacts signed up
-- to them, and the documents its devices created.
CREATE TABLE IF NOT EXISTS token_docs (
    token_id TEXT NOT NULL,
    doc_id   TEXT NOT NULL,
    PRIMARY KEY (token_id, doc_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS token_docs_by_doc ON token_docs (doc_id);
-- Every contact ever signed up to each event, kept on each event change.
CREATE TABLE IF NOT EXISTS relay_signups (
    event_id   TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (event_id, contact_id)
) STRICT, WITHOUT ROWID;
-- The visibility log: documents entering (forget = 0) or leaving
-- (forget = 1) a token's view; token_id NULL means every device
-- (erasures). Cursors carry a position in it.
CREATE TABLE IF NOT EXISTS visibility (
    vseq     INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id TEXT,
    doc_id   TEXT NOT NULL,
    forget   INTEGER NOT NULL
) STRICT;
-- Every contact merged into another (from its `merged_into`, kept on each
-- change that sets or clears it): a scope that sees the duplicate sees the
-- kept contact too, the same person.
CREATE TABLE IF NOT EXISTS relay_merges (
    duplicate TEXT PRIMARY KEY,
    kept      TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS erased (
    doc_id    TEXT PRIMARY KEY,
    erased_at INTEGER NOT NULL,
    token_id  TEXT NOT NULL,
    device    TEXT NOT NULL
) STRICT;
-- Each device id belongs to the first token it enrolled with, so that no
-- device can take another's identity (and with it, its audit trail).
CREATE TABLE IF NOT EXISTS devices (
    device_id  TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL,
    first_seen INTEGER NOT NULL
) STRICT;
"#;

/// The relay's SQLite storage. See the module documentation.
#[derive(Debug)]
pub struct SqliteRelay {
    conn: Mutex<Connection>,
    path: PathBuf,
    epoch: String,
}

/// SQLite's errors, as the relay's storage reports them.
fn db(e: rusqlite::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

impl SqliteRelay {
    /// Opens (creating if needed) the storage in `data_dir`, unencrypted.
    pub fn open(data_dir: &Path) -> Result<SqliteRelay, ServerError> {
        SqliteRelay::open_with_key(data_dir, None)
    }

    /// Opens (creating if needed) the storage in `data_dir` encrypted with
    /// `key` (SQLCipher, the raw 256-bit key; see `--key-file`). A wrong
    /// key, or a key for a plain data directory, is refused with an error
    /// and changes nothing.
    pub fn open_encrypted(data_dir: &Path, key: &[u8; 32]) -> Result<SqliteRelay, ServerError> {
        SqliteRelay::open_with_key(data_dir, Some(key))
    }

    /// [`SqliteRelay::open`] or [`SqliteRelay::open_encrypted`]. Without a
    /// key, an encrypted data directory is refused.
    pub fn open_with_key(
        data_dir: &Path,
        key: Option<&[u8; 32]>,
    ) -> Result<SqliteRelay, ServerError> {
        std::fs::create_dir_all(data_dir).map_err(|source| ServerError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("relay.sqlite3");
        let db = |e: rusqlite::Error| ServerError::Storage(format!("{}: {e}", path.display()));
        let conn = Connection::open(&path).map_err(db)?;
        // The key (if any) before anything else reads the file.
        muster_core::store::unlock(&conn, &path, key).map_err(|e| match e {
            muster_core::Error::KeyRequired { .. } => ServerError::Storage(format!(
                "{e} (muster-server: --key-file FILE or MUSTER_DATA_KEY_FILE)"
            )),
            e => ServerError::Storage(e.to_string()),
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        // Sessions run a few dozen statements; keep them all prepared.
        conn.set_prepared_statement_cache_capacity(64);
        // Erasure must not leave a contact's bytes in freed pages.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let epoch: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)?;
        let epoch = match epoch {
            Some(e) => e,
            None => {
                let e = random_hex(16);
                conn.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?1)", [&e])
                    .map_err(db)?;
                e
            }
        };
        Ok(SqliteRelay {
            conn: Mutex::new(conn),
            path,
            epoch,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock would be a bug; the connection is
        // still usable (SQLite rolled back any open transaction).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes whenever another process commits to the database (a token
    /// created, revoked or edited from the command line): the server polls
    /// it to apply such changes to live sessions at once.
    pub fn data_version(&self) -> Result<i64, ServerError> {
        self.lock()
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| ServerError::Storage(e.to_string()))
    }

    /// Number of entries in the log.
    pub fn log_len(&self) -> SResult<u64> {
        Ok(self.head()?.seq)
    }

    /// Writes a consistent copy of the whole database to `file` (`VACUUM
    /// INTO`), as a backup would be taken from a running relay.
    pub fn backup_to(&self, file: &Path) -> SResult<()> {
        let target = file.to_str().ok_or_else(|| {
            StorageError::Refused(format!("{} is not a UTF-8 path", file.display()))
        })?;
        self.lock()
            .execute("VACUUM INTO ?1", [target])
            .map_err(db)?;
        Ok(())
    }

    /// Runs `f` on the connection, SQLite's error reported as the
    /// storage's.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> SResult<T> {
        f(&self.lock()).map_err(db)
    }
}

/// What Automerge's `load` accepts for `doc`: its snapshot, then the
/// changes logged after it.
fn snapshot_bytes(conn: &Connection, doc: &str) -> rusqlite::Result<Vec<u8>> {
    let row: Option<(Option<Vec<u8>>, i64)> = conn
        .prepare_cached("SELECT snapshot, snapshot_upto FROM docs WHERE doc_id = ?1")?
        .query_row([doc], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((snapshot, upto)) = row else {
        return Ok(Vec::new());
    };
    let mut out = snapshot.unwrap_or_default();
    let mut stmt =
        conn.prepare_cached("SELECT data FROM log WHERE doc_id = ?1 AND seq > ?2 ORDER BY seq")?;
    for data in stmt.query_map(params![doc, upto], |r| r.get::<_, Vec<u8>>(0))? {
        out.extend_from_slice(&data?);
    }
    Ok(out)
}

/// The document as the log has it ([`doc_from_log_bytes`]).
fn load(conn: &Connection, doc: &str) -> SResult<Option<AutoCommit>> {
    doc_from_log_bytes(doc, &snapshot_bytes(conn, doc).map_err(db)?)
}

fn token_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    let hash: Vec<u8> = r.get(1)?;
    Ok(TokenRecord {
        id: r.get(0)?,
        secret_hash: to_hash(&hash),
        role: r.get(2)?,
        label: r.get(3)?,
        revoked: r.get::<_, Option<i64>>(4)?.is_some(),
    })
}

const TOKEN_COLUMNS: &str = "id, secret_hash, role, label, revoked_at";

/// One transaction of [`SqliteRelay`]: the primitive writes.
struct Tx<'a>(&'a rusqlite::Transaction<'a>);

impl Tx<'_> {
    fn strings(&self, sql: &str, arg: &str) -> SResult<Vec<String>> {
        let mut stmt = self.0.prepare_cached(sql).map_err(db)?;
        let rows = stmt
            .query_map([arg], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db)?;
        Ok(rows)
    }

    fn exec(&self, sql: &str, args: impl rusqlite::Params) -> SResult<usize> {
        self.0
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(args))
            .map_err(db)
    }
}

impl RelayTx for Tx<'_> {
    fn insert_changes(
        &mut self,
        author: &Author,
        changes: &[NewChange],
        now: Millis,
    ) -> SResult<Inserted> {
        let tx = self.0;
        let run = || -> rusqlite::Result<Inserted> {
            let mut out = Inserted::default();
            let mut chain = tx
                .query_row("SELECT chain FROM log ORDER BY seq DESC LIMIT 1", [], |r| {
                    r.get::<_, Vec<u8>>(0)
                })
                .optional()?
                .map_or([0; 32], |c| to_hash(&c));
            let mut existing =
                tx.prepare_cached("SELECT seq, chain FROM log WHERE doc_id = ?1 AND hash = ?2")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO log (doc_id, hash, data, device, token_id, received_at, chain) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut doc_row = tx.prepare_cached(
                "INSERT INTO docs (doc_id, kind, first_seq, since_snapshot) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (doc_id) DO UPDATE SET since_snapshot = since_snapshot + 1
                 RETURNING since_snapshot, first_seq",
            )?;
            for (i, c) in changes.iter().enumerate() {
                let found: Option<(i64, Vec<u8>)> = existing
                    .query_row(params![c.doc, c.hash.as_slice()], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                if let Some((seq, at)) = found {
                    out.already_logged(seq as u64, to_hash(&at));
                    continue;
                }
                chain = chain_hash(&chain, &c.hash);
                insert.execute(params![
                    c.doc,
                    c.hash.as_slice(),
                    c.data,
                    author.device,
                    author.token_id,
                    now,
                    chain.as_slice()
                ])?;
                let seq = tx.last_insert_rowid();
                let kind = DocKind::of_id(&c.doc).map_or("unknown", DocKind::as_str);
                let (since, first): (i64, i64) =
                    doc_row.query_row(params![c.doc, kind, seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
                out.logged(i, &c.doc, first == seq, (seq as u64, chain), since as u64);
            }
            Ok(out)
        };
        run().map_err(db)
    }

    fn load_doc(&mut self, doc: &str) -> SResult<Option<AutoCommit>> {
        load(self.0, doc)
    }

    fn put_snapshot(&mut self, doc: &str, snapshot: &[u8], upto: u64) -> SResult<()> {
        self.exec(
            "UPDATE docs SET snapshot = ?2, snapshot_upto = ?3, since_snapshot = 0 WHERE doc_id = ?1",
            params![doc, snapshot, upto as i64],
        )?;
        Ok(())
    }

    fn record_signup(&mut self, event: &str, contact: &str) -> SResult<bool> {
        Ok(self.exec(
            "INSERT OR IGNORE INTO relay_signups (event_id, contact_id) VALUES (?1, ?2)",
            params![event, contact],
        )? > 0)
    }

    fn signups_of(&mut self, event: &str) -> SResult<Vec<String>> {
        self.strings(
            "SELECT contact_id FROM relay_signups WHERE event_id = ?1",
            event,
        )
    }

    fn event_holders(&mut self, event: &str) -> SResult<Vec<String>> {
        self.strings(
            "SELECT e.token_id FROM token_events e JOIN tokens t ON t.id = e.token_id
             WHERE e.event_id = ?1 AND t.revoked_at IS NULL ORDER BY e.token_id",
            event,
        )
    }

    fn doc_holders(&mut self, doc: &str) -> SResult<Vec<String>> {
        self.strings(
            "SELECT token_id FROM token_docs WHERE doc_id = ?1 ORDER BY token_id",
            doc,
        )
    }

    fn merge_of(&mut self, duplicate: &str) -> SResult<Option<String>> {
        Ok(self
            .strings(
                "SELECT kept FROM relay_merges WHERE duplicate = ?1",
                duplicate,
            )?
            .pop())
    }

    fn set_merge(&mut self, duplicate: &str, kept: Option<&str>) -> SResult<()> {
        match kept {
            Some(kept) => self.exec(
                "INSERT INTO relay_merges (duplicate, kept) VALUES (?1, ?2)
                 ON CONFLICT (duplicate) DO UPDATE SET kept = excluded.kept",
                params![duplicate, kept],
            )?,
            None => self.exec("DELETE FROM relay_merges WHERE duplicate = ?1", [duplicate])?,
        };
        Ok(())
    }

    fn is_erased(&mut self, doc: &str) -> SResult<bool> {
        Ok(!self
            .strings("SELECT doc_id FROM erased WHERE doc_id = ?1", doc)?
            .is_empty())
    }

    fn created_by(&mut self, token: &str) -> SResult<Vec<String>> {
        self.strings(
            "SELECT d.doc_id FROM docs d JOIN log l ON l.seq = d.first_seq
             WHERE l.token_id = ?1 ORDER BY d.doc_id",
            token,
        )
    }

    fn scope_of(&mut self, token: &str) -> SResult<BTreeSet<String>> {
        Ok(self
            .strings("SELECT doc_id FROM token_docs WHERE token_id = ?1", token)?
            .into_iter()
            .collect())
    }

    fn add_to_scope(&mut self, token: &str, doc: &str) -> SResult<bool> {
        Ok(self.exec(
            "INSERT OR IGNORE INTO token_docs (token_id, doc_id) VALUES (?1, ?2)",
            params![token, doc],
        )? > 0)
    }

    fn remove_from_scope(&mut self, token: Option<&str>, doc: &str) -> SResult<()> {
        match token {
            Some(t) => self.exec(
                "DELETE FROM token_docs WHERE token_id = ?1 AND doc_id = ?2",
                params![t, doc],
            )?,
            None => self.exec("DELETE FROM token_docs WHERE doc_id = ?1", [doc])?,
        };
        Ok(())
    }

    fn announce(&mut self, token: Option<&str>, doc: &str, forget: bool) -> SResult<()> {
        self.exec(
            "INSERT INTO visibility (token_id, doc_id, forget) VALUES (?1, ?2, ?3)",
            params![token, doc, forget as i64],
        )?;
        Ok(())
    }

    fn insert_token(&mut self, token: &TokenRecord, now: Millis) -> SResult<()> {
        self.exec(
            "INSERT INTO tokens (id, secret_hash, role, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                token.id,
                token.secret_hash.as_slice(),
                token.role,
                token.label,
                now
            ],
        )?;
        Ok(())
    }

    fn token(&mut self, id: &str) -> SResult<Option<TokenRecord>> {
        self.0
            .prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id], token_record).optional())
            .map_err(db)
    }

    fn set_token_events(&mut self, id: &str, events: &[String]) -> SResult<()> {
        self.exec("DELETE FROM token_events WHERE token_id = ?1", [id])?;
        for e in events {
            self.exec(
                "INSERT OR IGNORE INTO token_events (token_id, event_id) VALUES (?1, ?2)",
                params![id, e],
            )?;
        }
        Ok(())
    }

    fn revoke_token(&mut self, id: &str, now: Millis) -> SResult<()> {
        self.exec(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )?;
        Ok(())
    }

    fn claim_device(&mut self, device: &str, token: &str, now: Millis) -> SResult<String> {
        self.exec(
            "INSERT OR IGNORE INTO devices (device_id, token_id, first_seen) VALUES (?1, ?2, ?3)",
            params![device, token, now],
        )?;
        self.strings("SELECT token_id FROM devices WHERE device_id = ?1", device)?
            .pop()
            .ok_or_else(|| StorageError::damaged("devices", "a device row just written is missing"))
    }

    fn touch_token(&mut self, token: &str, device: &str, now: Millis) -> SResult<()> {
        self.exec(
            "UPDATE tokens SET last_seen_at = ?2, last_device = ?3 WHERE id = ?1",
            params![token, now, device],
        )?;
        Ok(())
    }

    fn erase_doc(&mut self, doc: &str, author: &Author, now: Millis) -> SResult<()> {
        // The entries stay (positions and hashes keep the log's chain);
        // their content goes. secure_delete overwrites the freed bytes.
        self.exec("UPDATE log SET data = x'' WHERE doc_id = ?1", [doc])?;
        self.exec("DELETE FROM docs WHERE doc_id = ?1", [doc])?;
        self.exec(
            "INSERT OR IGNORE INTO erased (doc_id, erased_at, token_id, device) VALUES (?1, ?2, ?3, ?4)",
            params![doc, now, author.token_id, author.device],
        )?;
        Ok(())
    }
}

impl RelayStorage for SqliteRelay {
    fn epoch(&self) -> SResult<String> {
        Ok(self.epoch.clone())
    }

    fn head(&self) -> SResult<Head> {
        self.read(|conn| {
            let log: Option<(i64, Vec<u8>)> = conn
                .prepare_cached("SELECT seq, chain FROM log ORDER BY seq DESC LIMIT 1")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let vis: Option<i64> = conn
                .prepare_cached("SELECT max(vseq) FROM visibility")?
                .query_row([], |r| r.get(0))?;
            let (seq, chain) = log.map_or((0, [0; 32]), |(s, c)| (s as u64, to_hash(&c)));
            Ok(Head {
                seq,
                chain,
                vis: vis.unwrap_or(0) as u64,
            })
        })
    }

    fn hash_at(&self, seq: u64) -> SResult<Option<[u8; 32]>> {
        self.read(|conn| {
            let hash: Option<Vec<u8>> = conn
                .prepare_cached("SELECT chain FROM log WHERE seq = ?1")?
                .query_row([seq as i64], |r| r.get(0))
                .optional()?;
            Ok(hash.map(|h| to_hash(&h)))
        })
    }

    fn entries_after(&self, after: u64, upto: u64, most: Batch) -> SResult<Vec<LogEntry>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT l.seq, l.doc_id, l.hash, l.data, l.device, l.chain, ifnull(d.first_seq, l.seq)
                 FROM log l LEFT JOIN docs d ON d.doc_id = l.doc_id
                 WHERE l.seq > ?1 AND l.seq <= ?2 AND length(l.data) > 0 ORDER BY l.seq LIMIT ?3",
            )?;
            let upto = i64::try_from(upto).unwrap_or(i64::MAX);
            let limit = i64::try_from(most.entries).unwrap_or(i64::MAX);
            let mut rows = stmt.query(params![after as i64, upto, limit])?;
            let mut out = Vec::new();
            let mut bytes = 0;
            while let Some(r) = rows.next()? {
                if most.is_full(out.len(), bytes) {
                    break;
                }
                let data: Vec<u8> = r.get(3)?;
                bytes += data.len();
                let hash: Vec<u8> = r.get(2)?;
                let chain: Vec<u8> = r.get(5)?;
                out.push(LogEntry {
                    seq: r.get::<_, i64>(0)? as u64,
                    doc: r.get(1)?,
                    hash: to_hash(&hash),
                    data,
                    device: r.get(4)?,
                    chain: to_hash(&chain),
                    first_seq: r.get::<_, i64>(6)? as u64,
                });
            }
            Ok(out)
        })
    }

    fn doc_states(&self, docs: &[&str]) -> SResult<Vec<DocState>> {
        self.read(|conn| {
            let mut exists = conn.prepare_cached("SELECT 1 FROM docs WHERE doc_id = ?1")?;
            let mut erased = conn.prepare_cached("SELECT 1 FROM erased WHERE doc_id = ?1")?;
            docs.iter()
                .map(|d| {
                    Ok(DocState {
                        exists: exists.exists([d])?,
                        erased: erased.exists([d])?,
                    })
                })
                .collect()
        })
    }

    fn snapshots(&self, docs: &[&str]) -> SResult<Vec<Vec<u8>>> {
        self.read(|conn| docs.iter().map(|d| snapshot_bytes(conn, d)).collect())
    }

    fn load_doc(&self, doc: &str) -> SResult<Option<AutoCommit>> {
        load(&self.lock(), doc)
    }

    fn vis_after(&self, token: &str, after: u64, upto: u64) -> SResult<Vec<VisChange>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT doc_id, forget FROM visibility
                 WHERE vseq > ?1 AND vseq <= ?2 AND (token_id IS NULL OR token_id = ?3)
                 ORDER BY vseq",
            )?;
            let upto = i64::try_from(upto).unwrap_or(i64::MAX);
            stmt.query_map(params![after as i64, upto, token], |r| {
                Ok(VisChange {
                    doc: r.get(0)?,
                    forget: r.get::<_, i64>(1)? != 0,
                })
            })?
            .collect()
        })
    }

    fn scope_docs(&self, token: &str) -> SResult<Vec<String>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT doc_id FROM token_docs WHERE token_id = ?1 ORDER BY doc_id",
            )?
            .query_map([token], |r| r.get(0))?
            .collect()
        })
    }

    fn token_by_secret(&self, secret_hash: &[u8; 32]) -> SResult<Option<TokenRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = ?1"
            ))?
            .query_row([secret_hash.as_slice()], token_record)
            .optional()
        })
    }

    fn token_by_id(&self, id: &str) -> SResult<Option<TokenRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1"))?
                .query_row([id], token_record)
                .optional()
        })
    }

    fn list_tokens(&self) -> SResult<Vec<TokenInfo>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, role, label, created_at, last_seen_at, last_device, revoked_at,
                        (SELECT group_concat(event_id, ' ') FROM
                            (SELECT event_id FROM token_events e WHERE e.token_id = t.id ORDER BY event_id))
                 FROM tokens t ORDER BY created_at, id",
            )?;
            stmt.query_map([], |r| {
                let events: Option<String> = r.get(7)?;
                Ok(TokenInfo {
                    id: r.get(0)?,
                    role: r.get(1)?,
                    label: r.get(2)?,
                    created_at: r.get(3)?,
                    last_seen_at: r.get(4)?,
                    last_device: r.get(5)?,
                    revoked_at: r.get(6)?,
                    events: events
                        .map(|e| e.split(' ').map(str::to_owned).collect())
                        .unwrap_or_default(),
                })
            })?
            .collect()
        })
    }

    fn device_labels(&self) -> SResult<HashMap<String, (String, String)>> {
        self.read(|conn| {
            conn.prepare(
                "SELECT d.device_id, ifnull(t.label, ''), ifnull(t.role, '')
                 FROM devices d LEFT JOIN tokens t ON t.id = d.token_id",
            )?
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
            .collect()
        })
    }

    fn audit(&self, doc: Option<&str>) -> SResult<Vec<AuditEntry>> {
        self.read(|conn| {
            conn.prepare(
                "SELECT l.seq, l.doc_id, l.device, l.token_id, ifnull(t.label, ''), ifnull(t.role, ''),
                        l.received_at, length(l.data) = 0
                 FROM log l LEFT JOIN tokens t ON t.id = l.token_id
                 WHERE ?1 IS NULL OR l.doc_id = ?1 ORDER BY l.seq",
            )?
            .query_map([doc], |r| {
                Ok(AuditEntry {
                    seq: r.get::<_, i64>(0)? as u64,
                    doc: r.get(1)?,
                    device: r.get(2)?,
                    token_id: r.get(3)?,
                    label: r.get(4)?,
                    role: r.get(5)?,
                    received_at: r.get(6)?,
                    erased: r.get(7)?,
                })
            })?
            .collect()
        })
    }

    fn transaction(&self, f: &mut dyn FnMut(&mut dyn RelayTx) -> SResult<()>) -> SResult<()> {
        let mut conn = self.lock();
        // IMMEDIATE: the write lock from the start, so that a command-line
        // process writing at the same time waits rather than fails midway.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        f(&mut Tx(&tx))?;
        tx.commit().map_err(db)
    }
}

fn to_hash(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    if bytes.len() == 32 {
        out.copy_from_slice(bytes);
    }
    out
}
