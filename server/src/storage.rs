//! The relay's durable state on SQLite (the embedded default): the change
//! log, per-document snapshots for first sync, and device tokens.
//!
//! One file, `relay.sqlite3`, in the data directory; WAL with
//! `synchronous = FULL`, so [`RelayStorage::append`] returns only once the
//! changes are on disk — the session acknowledges nothing before that.
//! Other backends (PostgreSQL, so that several relay processes can serve one
//! organisation) implement the same [`RelayStorage`] trait.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use automerge::AutoCommit;
use muster_core::Millis;
use muster_core::model::DocKind;
use muster_core::sync::relay::{Auth, Grant, LogEntry, NewChange, RelayStorage, chain_hash};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::ServerError;

/// After this many log entries of a document since its snapshot, the
/// snapshot is rebuilt, so a first sync gets one compact document.
const SNAPSHOT_AFTER: i64 = 64;

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
    scope        TEXT NOT NULL DEFAULT '{}',
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER,
    last_device  TEXT,
    revoked_at   INTEGER
) STRICT;
"#;

/// Roles a token may have (PROTOCOL.md; scopes arrive with issue 4).
pub const ROLES: [&str; 3] = ["coordinator", "volunteer", "observer"];

/// A token as `token list` shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its id.
    pub id: String,
    /// Its role.
    pub role: String,
    /// Its label.
    pub label: String,
    /// When it was created.
    pub created_at: Millis,
    /// When a device last used it.
    pub last_seen_at: Option<Millis>,
    /// When it was revoked.
    pub revoked_at: Option<Millis>,
}

/// The relay's SQLite storage. See the module documentation.
#[derive(Debug)]
pub struct SqliteRelay {
    conn: Mutex<Connection>,
    path: PathBuf,
    epoch: String,
}

type SResult<T> = Result<T, muster_core::Error>;

impl SqliteRelay {
    /// Opens (creating if needed) the storage in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<SqliteRelay, ServerError> {
        std::fs::create_dir_all(data_dir).map_err(|source| ServerError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("relay.sqlite3");
        let db = |e: rusqlite::Error| ServerError::Storage(format!("{}: {e}", path.display()));
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock would be a bug; the connection is
        // still usable (SQLite rolled back any open transaction).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a token and returns `(id, secret)`. Only the secret's
    /// SHA-256 is stored; the secret is shown once.
    pub fn create_token(
        &self,
        role: &str,
        label: &str,
        now: Millis,
    ) -> Result<(String, String), ServerError> {
        if !ROLES.contains(&role) {
            return Err(ServerError::BadRequest(format!(
                "role {role:?} is not one of {}",
                ROLES.join(", ")
            )));
        }
        let id = format!("tok_{}", random_hex(8));
        let secret = format!("mst_{}", random_hex(32));
        self.lock()
            .execute(
                "INSERT INTO tokens (id, secret_hash, role, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, secret_hash(&secret).as_slice(), role, label, now],
            )
            .map_err(|e| ServerError::Storage(e.to_string()))?;
        Ok((id, secret))
    }

    /// Every token, oldest first.
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>, ServerError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT id, role, label, created_at, last_seen_at, revoked_at FROM tokens ORDER BY created_at, id")
            .map_err(|e| ServerError::Storage(e.to_string()))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(TokenInfo {
                    id: r.get(0)?,
                    role: r.get(1)?,
                    label: r.get(2)?,
                    created_at: r.get(3)?,
                    last_seen_at: r.get(4)?,
                    revoked_at: r.get(5)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| ServerError::Storage(e.to_string()))?;
        Ok(rows)
    }

    /// Number of entries in the log.
    pub fn log_len(&self) -> SResult<u64> {
        Ok(self.head()?.0)
    }

    fn rebuild_snapshot(conn: &Connection, doc: &str) -> SResult<()> {
        let Some(mut d) = load(conn, doc)? else {
            return Ok(());
        };
        // A change whose dependencies are not logged yet (re-pushed after a
        // restore, say) is held outside the document, and `save` would
        // drop it: keep the old snapshot and the log until it applies.
        if !d.get_missing_deps(&[]).is_empty() {
            return Ok(());
        }
        let upto: i64 =
            conn.query_row("SELECT max(seq) FROM log WHERE doc_id = ?1", [doc], |r| {
                r.get(0)
            })?;
        conn.execute(
            "UPDATE docs SET snapshot = ?2, snapshot_upto = ?3, since_snapshot = 0 WHERE doc_id = ?1",
            params![doc, d.save(), upto],
        )?;
        Ok(())
    }
}

/// What Automerge's `load` accepts for `doc`: its snapshot, then the
/// changes logged after it.
fn snapshot_bytes(conn: &Connection, doc: &str) -> SResult<Vec<u8>> {
    let row: Option<(Option<Vec<u8>>, i64)> = conn
        .query_row(
            "SELECT snapshot, snapshot_upto FROM docs WHERE doc_id = ?1",
            [doc],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
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

fn load(conn: &Connection, doc: &str) -> SResult<Option<AutoCommit>> {
    let bytes = snapshot_bytes(conn, doc)?;
    if bytes.is_empty() {
        return Ok(None);
    }
    AutoCommit::load(&bytes)
        .map(Some)
        .map_err(|e| muster_core::Error::BadDocument {
            doc_id: doc.to_owned(),
            detail: e.to_string(),
        })
}

impl RelayStorage for SqliteRelay {
    fn epoch(&self) -> SResult<String> {
        Ok(self.epoch.clone())
    }

    fn authenticate(&self, token: &str, device: &str, now: Millis) -> SResult<Auth> {
        let hash = secret_hash(token);
        let conn = self.lock();
        type TokenRow = (String, Vec<u8>, String, String, Option<i64>);
        let row: Option<TokenRow> = conn
            .query_row(
                "SELECT id, secret_hash, role, label, revoked_at FROM tokens WHERE secret_hash = ?1",
                [hash.as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((id, stored, role, label, revoked)) = row else {
            return Ok(Auth::Unknown);
        };
        // The lookup was by hash; compare again in constant time so that
        // no timing depends on how much of a guess was right.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            stored.as_slice(),
            hash.as_slice(),
        )) {
            return Ok(Auth::Unknown);
        }
        if revoked.is_some() {
            return Ok(Auth::Revoked);
        }
        conn.execute(
            "UPDATE tokens SET last_seen_at = ?2, last_device = ?3 WHERE id = ?1",
            params![id, now, device],
        )?;
        Ok(Auth::Granted(Grant {
            token_id: id,
            role,
            label,
        }))
    }

    fn head(&self) -> SResult<(u64, [u8; 32])> {
        let row: Option<(i64, Vec<u8>)> = self
            .lock()
            .query_row(
                "SELECT seq, chain FROM log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            None => (0, [0; 32]),
            Some((seq, hash)) => (seq as u64, to_hash(&hash)),
        })
    }

    fn hash_at(&self, seq: u64) -> SResult<Option<[u8; 32]>> {
        let hash: Option<Vec<u8>> = self
            .lock()
            .query_row("SELECT chain FROM log WHERE seq = ?1", [seq as i64], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(hash.map(|h| to_hash(&h)))
    }

    fn entries_after(
        &self,
        after: u64,
        upto: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> SResult<Vec<LogEntry>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, doc_id, hash, data, device, chain FROM log WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
        )?;
        let upto = i64::try_from(upto).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![after as i64, upto, max_entries as i64])?;
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(r) = rows.next()? {
            if bytes >= max_bytes && !out.is_empty() {
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
            });
        }
        Ok(out)
    }

    fn first_seq(&self, doc: &str) -> SResult<Option<u64>> {
        let seq: Option<i64> = self
            .lock()
            .query_row("SELECT first_seq FROM docs WHERE doc_id = ?1", [doc], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(seq.map(|s| s as u64))
    }

    fn snapshot(&self, doc: &str) -> SResult<Vec<u8>> {
        snapshot_bytes(&self.lock(), doc)
    }

    fn load_doc(&self, doc: &str) -> SResult<Option<AutoCommit>> {
        load(&self.lock(), doc)
    }

    fn append(&self, device: &str, changes: &[NewChange], now: Millis) -> SResult<Vec<u64>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut positions = Vec::with_capacity(changes.len());
        let mut grown: Vec<String> = Vec::new();
        let mut chain = tx
            .query_row("SELECT chain FROM log ORDER BY seq DESC LIMIT 1", [], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()?
            .map_or([0; 32], |c| to_hash(&c));
        {
            let mut existing =
                tx.prepare_cached("SELECT seq FROM log WHERE doc_id = ?1 AND hash = ?2")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO log (doc_id, hash, data, device, token_id, received_at, chain) VALUES (?1, ?2, ?3, ?4, '', ?5, ?6)",
            )?;
            let mut doc_row = tx.prepare_cached(
                "INSERT INTO docs (doc_id, kind, first_seq, since_snapshot) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (doc_id) DO UPDATE SET since_snapshot = since_snapshot + 1
                 RETURNING since_snapshot",
            )?;
            for c in changes {
                let found: Option<i64> = existing
                    .query_row(params![c.doc, c.hash.as_slice()], |r| r.get(0))
                    .optional()?;
                if let Some(seq) = found {
                    positions.push(seq as u64);
                    continue;
                }
                chain = chain_hash(&chain, &c.hash);
                insert.execute(params![
                    c.doc,
                    c.hash.as_slice(),
                    c.data,
                    device,
                    now,
                    chain.as_slice()
                ])?;
                let seq = tx.last_insert_rowid();
                let kind = DocKind::of_id(&c.doc).map_or("unknown", DocKind::as_str);
                let since: i64 = doc_row.query_row(params![c.doc, kind, seq], |r| r.get(0))?;
                if since >= SNAPSHOT_AFTER && !grown.contains(&c.doc) {
                    grown.push(c.doc.clone());
                }
                positions.push(seq as u64);
            }
        }
        for doc in &grown {
            SqliteRelay::rebuild_snapshot(&tx, doc)?;
        }
        tx.commit()?;
        Ok(positions)
    }
}

fn to_hash(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    if bytes.len() == 32 {
        out.copy_from_slice(bytes);
    }
    out
}

fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
