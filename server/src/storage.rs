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
use muster_core::sync::relay::{
    Auth, Author, Grant, LogEntry, NewChange, ROLE_COORDINATOR, ROLE_OBSERVER, ROLE_VOLUNTEER,
    RelayStorage, VisChange, chain_hash,
};
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

/// Roles a token may have (PROTOCOL.md §6, README "Roles and scopes").
pub const ROLES: [&str; 3] = [ROLE_COORDINATOR, ROLE_VOLUNTEER, ROLE_OBSERVER];

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
    /// The last device that used it.
    pub last_device: Option<String>,
    /// A volunteer token's events.
    pub events: Vec<String>,
    /// When it was revoked.
    pub revoked_at: Option<Millis>,
}

/// What a secret presented at the dashboard's login is
/// ([`SqliteRelay::check_secret`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretCheck {
    /// No token has this secret.
    Unknown,
    /// The token was revoked.
    Revoked,
    /// A live token.
    Valid {
        /// The token's id (`tok_…`).
        id: String,
        /// Its role: `coordinator`, `volunteer` or `observer`.
        role: String,
    },
}

/// One log entry as the audit trail shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its position in the log.
    pub seq: u64,
    /// The document.
    pub doc: String,
    /// The device that pushed it.
    pub device: String,
    /// The token that device authenticated with.
    pub token_id: String,
    /// That token's label.
    pub label: String,
    /// That token's role.
    pub role: String,
    /// When the relay received it.
    pub received_at: Millis,
    /// Whether its content was erased.
    pub erased: bool,
}

fn storage_err(e: rusqlite::Error) -> ServerError {
    ServerError::Storage(e.to_string())
}

/// The most a key file may hold: 64 hex digits and generous whitespace.
pub const MAX_KEY_FILE_BYTES: usize = 1024;

/// Reads the relay's data key from `path`: 64 hex digits (a 256-bit key),
/// surrounding whitespace ignored. The error never shows the file's content.
pub fn read_key_file(path: &Path) -> Result<[u8; 32], ServerError> {
    let bad = |why: &str| {
        ServerError::BadRequest(format!(
            "the key file {} {why}; it must hold the key as 64 hex digits (for example from `openssl rand -hex 32`)",
            path.display()
        ))
    };
    // A FIFO would block the start until something writes to it, and a
    // device such as /dev/zero would be read until memory runs out: only a
    // regular file, and only as much as a key file can hold.
    let meta = std::fs::metadata(path).map_err(|e| bad(&format!("cannot be read ({e})")))?;
    if !meta.is_file() {
        return Err(bad("is not a regular file"));
    }
    let mut text = Vec::with_capacity(MAX_KEY_FILE_BYTES + 1);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|e| bad(&format!("cannot be read ({e})")))?,
            MAX_KEY_FILE_BYTES as u64 + 1,
        ),
        &mut text,
    )
    .map_err(|e| bad(&format!("cannot be read ({e})")))?;
    if text.len() > MAX_KEY_FILE_BYTES {
        text.fill(0);
        return Err(bad(&format!(
            "is larger than a key file can be ({MAX_KEY_FILE_BYTES} bytes)"
        )));
    }
    let digits = text.trim_ascii();
    let key = if digits.len() == 64 {
        let mut key = [0u8; 32];
        let mut ok = true;
        for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
            let hex = |c: u8| char::from(c).to_digit(16);
            match (hex(pair[0]), hex(pair[1])) {
                (Some(hi), Some(lo)) => *byte = (hi * 16 + lo) as u8,
                _ => ok = false,
            }
        }
        ok.then_some(key)
    } else {
        None
    };
    // Best effort: do not leave the key's text in freed memory.
    text.fill(0);
    std::hint::black_box(&text);
    key.ok_or_else(|| bad("does not hold 64 hex digits"))
}

/// Sets a token's events and brings its scope (`token_docs`) in line:
/// events, the contacts signed up to them, the documents its devices
/// created. With `announce`, what entered or left the scope goes into the
/// visibility log so devices that synced before follow (a new token has no
/// devices yet).
fn set_events(
    tx: &rusqlite::Transaction<'_>,
    token_id: &str,
    events: &[String],
    announce: bool,
) -> SResult<()> {
    for e in events {
        if DocKind::of_id(e) != Some(DocKind::Event) {
            return Err(muster_core::Error::Protocol(format!(
                "{e:?} is not an event id (e_ followed by 32 hex digits)"
            )));
        }
    }
    tx.execute("DELETE FROM token_events WHERE token_id = ?1", [token_id])?;
    for e in events {
        tx.execute(
            "INSERT OR IGNORE INTO token_events (token_id, event_id) VALUES (?1, ?2)",
            params![token_id, e],
        )?;
    }
    // The scope it should have now.
    let mut want: std::collections::BTreeSet<String> = events.iter().cloned().collect();
    {
        let mut signed = tx.prepare_cached(
            "SELECT contact_id FROM relay_signups WHERE event_id = ?1
             AND contact_id NOT IN (SELECT doc_id FROM erased)",
        )?;
        for e in events {
            for c in signed.query_map([e], |r| r.get::<_, String>(0))? {
                want.insert(c?);
            }
        }
        let mut created = tx.prepare_cached(
            "SELECT d.doc_id FROM docs d JOIN log l ON l.seq = d.first_seq WHERE l.token_id = ?1",
        )?;
        for d in created.query_map([token_id], |r| r.get::<_, String>(0))? {
            want.insert(d?);
        }
    }
    // And the contacts those were merged into: the same people.
    let mut kept = Vec::new();
    for d in &want {
        if DocKind::of_id(d) == Some(DocKind::Contact) {
            kept.extend(kept_chain(tx, d)?);
        }
    }
    want.extend(kept);
    let have: std::collections::BTreeSet<String> = tx
        .prepare_cached("SELECT doc_id FROM token_docs WHERE token_id = ?1")?
        .query_map([token_id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    for d in want.difference(&have) {
        tx.execute(
            "INSERT INTO token_docs (token_id, doc_id) VALUES (?1, ?2)",
            params![token_id, d],
        )?;
        if announce {
            tx.execute(
                "INSERT INTO visibility (token_id, doc_id, forget) VALUES (?1, ?2, 0)",
                params![token_id, d],
            )?;
        }
    }
    for d in have.difference(&want) {
        tx.execute(
            "DELETE FROM token_docs WHERE token_id = ?1 AND doc_id = ?2",
            params![token_id, d],
        )?;
        if announce {
            tx.execute(
                "INSERT INTO visibility (token_id, doc_id, forget) VALUES (?1, ?2, 1)",
                params![token_id, d],
            )?;
        }
    }
    Ok(())
}

/// After an event changed: records contacts newly signed up to it, and
/// brings them into the scope of every volunteer token holding the event.
fn follow_signups(tx: &rusqlite::Transaction<'_>, event: &str) -> SResult<()> {
    let Some(doc) = load(tx, event)? else {
        return Ok(());
    };
    let Ok(contacts) = muster_core::model::event::ops::signed_up(&doc, event) else {
        // Not readable as an event: nothing to follow.
        return Ok(());
    };
    let mut record = tx.prepare_cached(
        "INSERT OR IGNORE INTO relay_signups (event_id, contact_id) VALUES (?1, ?2)",
    )?;
    let mut tokens = tx.prepare_cached(
        "SELECT e.token_id FROM token_events e JOIN tokens t ON t.id = e.token_id
         WHERE e.event_id = ?1 AND t.revoked_at IS NULL",
    )?;
    let mut holders: Option<Vec<String>> = None;
    for c in contacts {
        if record.execute(params![event, c])? == 0 {
            continue; // known already
        }
        if DocKind::of_id(&c) != Some(DocKind::Contact) {
            continue;
        }
        let holders = match &holders {
            Some(h) => h,
            None => holders.insert(
                tokens
                    .query_map([event], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<_>>()?,
            ),
        };
        let chain = kept_chain(tx, &c)?;
        for t in holders {
            for d in std::iter::once(&c).chain(&chain) {
                admit(tx, t, d)?;
            }
        }
    }
    Ok(())
}

/// Brings `doc` into the scope of `token`, and if it was not there already
/// records it in the visibility log, so the token's devices are sent it.
fn admit(tx: &rusqlite::Transaction<'_>, token: &str, doc: &str) -> SResult<()> {
    let added = tx
        .prepare_cached("INSERT OR IGNORE INTO token_docs (token_id, doc_id) VALUES (?1, ?2)")?
        .execute(params![token, doc])?;
    if added > 0 {
        tx.prepare_cached("INSERT INTO visibility (token_id, doc_id, forget) VALUES (?1, ?2, 0)")?
            .execute(params![token, doc])?;
    }
    Ok(())
}

/// Whether a contact's change may set or clear its `merged_into`, from its
/// bytes alone (no decoding, which would cost every new contact of an
/// import): it holds the key, and names another contact (a merge) or the
/// contact is a known duplicate (an unmerge, or a merge into another).
/// Keys and strings stand uncompressed in a change (pushes are).
fn may_change_merge(tx: &rusqlite::Transaction<'_>, contact: &str, data: &[u8]) -> SResult<bool> {
    if memchr::memmem::find(data, b"merged_into").is_none() {
        return Ok(false);
    }
    let names_another = memchr::memmem::find_iter(data, b"c_").any(|at| {
        data.get(at..at + 34).is_some_and(|id| {
            id != contact.as_bytes()
                && id[2..]
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        })
    });
    if names_another {
        return Ok(true);
    }
    Ok(tx
        .prepare_cached("SELECT 1 FROM relay_merges WHERE duplicate = ?1")?
        .query_row([contact], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The contacts `contact` was merged into, nearest first (a duplicate of a
/// duplicate leads on), erased ones left out; at most 16, and a cycle ends
/// it.
fn kept_chain(tx: &rusqlite::Transaction<'_>, contact: &str) -> SResult<Vec<String>> {
    let mut chain: Vec<String> = Vec::new();
    let mut at = contact.to_owned();
    let mut next = tx.prepare_cached(
        "SELECT kept FROM relay_merges WHERE duplicate = ?1
         AND kept NOT IN (SELECT doc_id FROM erased)",
    )?;
    while chain.len() < 16 {
        let Some(kept) = next
            .query_row([&at], |r| r.get::<_, String>(0))
            .optional()?
        else {
            break;
        };
        if kept == contact || chain.contains(&kept) {
            break;
        }
        chain.push(kept.clone());
        at = kept;
    }
    Ok(chain)
}

/// After a change set or cleared a contact's `merged_into`: records it, and
/// brings the kept contact (and what it was merged into in turn) into the
/// scope of every token that sees the duplicate. It is the same person,
/// already visible there; a desk's roster shows the duplicate's sign-up as
/// the kept contact's, and a phone must never hold an id (`merged_into`)
/// of a record it cannot see. An unmerge leaves the kept contact in those
/// scopes (a scope only narrows through `token update`, which recomputes it).
fn follow_merge(tx: &rusqlite::Transaction<'_>, contact: &str) -> SResult<()> {
    let Some(doc) = load(tx, contact)? else {
        return Ok(());
    };
    let kept = match automerge::ReadDoc::get(&doc, automerge::ROOT, "merged_into") {
        Ok(Some((automerge::Value::Scalar(v), _))) => v
            .as_str()
            .filter(|k| DocKind::of_id(k) == Some(DocKind::Contact) && *k != contact)
            .map(str::to_owned),
        _ => None,
    };
    let Some(kept) = kept else {
        tx.execute("DELETE FROM relay_merges WHERE duplicate = ?1", [contact])?;
        return Ok(());
    };
    tx.execute(
        "INSERT INTO relay_merges (duplicate, kept) VALUES (?1, ?2)
         ON CONFLICT (duplicate) DO UPDATE SET kept = excluded.kept",
        params![contact, kept],
    )?;
    let holders: Vec<String> = tx
        .prepare_cached("SELECT token_id FROM token_docs WHERE doc_id = ?1")?
        .query_map([contact], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if holders.is_empty() {
        return Ok(());
    }
    let chain = kept_chain(tx, contact)?;
    for t in &holders {
        for k in &chain {
            admit(tx, t, k)?;
        }
    }
    Ok(())
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock would be a bug; the connection is
        // still usable (SQLite rolled back any open transaction).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a token and returns `(id, secret)`. Only the secret's
    /// SHA-256 is stored; the secret is shown once. A volunteer token needs
    /// at least one event (`events`); other roles take none.
    pub fn create_token(
        &self,
        role: &str,
        label: &str,
        events: &[String],
        now: Millis,
    ) -> Result<(String, String), ServerError> {
        if !ROLES.contains(&role) {
            return Err(ServerError::BadRequest(format!(
                "role {role:?} is not one of {}",
                ROLES.join(", ")
            )));
        }
        match (role == ROLE_VOLUNTEER, events.is_empty()) {
            (true, true) => {
                return Err(ServerError::BadRequest(
                    "a volunteer token needs at least one --event".into(),
                ));
            }
            (false, false) => {
                return Err(ServerError::BadRequest(format!(
                    "a {role} token sees every event; --event is for volunteer tokens"
                )));
            }
            _ => {}
        }
        let id = format!("tok_{}", random_hex(8));
        // 256 random bits: guessing is hopeless, and failed logins are
        // rate-limited per address on top.
        let secret = format!("mst_{}", random_hex(32));
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(storage_err)?;
        tx.execute(
            "INSERT INTO tokens (id, secret_hash, role, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, secret_hash(&secret).as_slice(), role, label, now],
        )
        .map_err(storage_err)?;
        set_events(&tx, &id, events, false).map_err(|e| ServerError::Storage(e.to_string()))?;
        tx.commit().map_err(storage_err)?;
        Ok((id, secret))
    }

    /// Replaces a volunteer token's events. Its devices receive what entered
    /// the scope and forget what left it, at their next sync (live ones at
    /// once).
    pub fn set_token_events(&self, id: &str, events: &[String]) -> Result<(), ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(storage_err)?;
        let role: Option<String> = tx
            .query_row("SELECT role FROM tokens WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(storage_err)?;
        match role.as_deref() {
            None => return Err(ServerError::BadRequest(format!("no token {id}"))),
            Some(ROLE_VOLUNTEER) if events.is_empty() => {
                return Err(ServerError::BadRequest(
                    "a volunteer token needs at least one --event (revoke it instead)".into(),
                ));
            }
            Some(ROLE_VOLUNTEER) => {}
            Some(r) => {
                return Err(ServerError::BadRequest(format!(
                    "{id} is a {r} token: it sees every event"
                )));
            }
        }
        set_events(&tx, id, events, true).map_err(|e| ServerError::Storage(e.to_string()))?;
        tx.commit().map_err(storage_err)?;
        Ok(())
    }

    /// Revokes a token: its devices are disconnected at once and refused
    /// from then on. Returns false if it was already revoked.
    pub fn revoke_token(&self, id: &str, now: Millis) -> Result<bool, ServerError> {
        let conn = self.lock();
        let exists: bool = conn
            .query_row("SELECT count(*) FROM tokens WHERE id = ?1", [id], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(storage_err)?
            > 0;
        if !exists {
            return Err(ServerError::BadRequest(format!(
                "no token {id} (see `muster-server token list`)"
            )));
        }
        let changed = conn
            .execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now],
            )
            .map_err(storage_err)?;
        Ok(changed > 0)
    }

    /// Every token, oldest first (never their secrets).
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>, ServerError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, role, label, created_at, last_seen_at, last_device, revoked_at,
                        (SELECT group_concat(event_id, ' ') FROM
                            (SELECT event_id FROM token_events e WHERE e.token_id = t.id ORDER BY event_id))
                 FROM tokens t ORDER BY created_at, id",
            )
            .map_err(storage_err)?;
        let rows = stmt
            .query_map([], |r| {
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
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(storage_err)?;
        Ok(rows)
    }

    /// Which token a secret belongs to, for the coordinators' dashboard
    /// login: looked up by its SHA-256 and compared again in constant time,
    /// as a device's hello is. Records nothing (a device's `last_seen` is
    /// about devices).
    pub fn check_secret(&self, secret: &str) -> Result<SecretCheck, ServerError> {
        let hash = secret_hash(secret);
        let row: Option<(String, Vec<u8>, String, Option<i64>)> = self
            .lock()
            .query_row(
                "SELECT id, secret_hash, role, revoked_at FROM tokens WHERE secret_hash = ?1",
                [hash.as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(storage_err)?;
        let Some((id, stored, role, revoked)) = row else {
            return Ok(SecretCheck::Unknown);
        };
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            stored.as_slice(),
            hash.as_slice(),
        )) {
            return Ok(SecretCheck::Unknown);
        }
        if revoked.is_some() {
            return Ok(SecretCheck::Revoked);
        }
        Ok(SecretCheck::Valid { id, role })
    }

    /// Every device that has enrolled, with the label and role of the
    /// token it enrolled with: device id → (label, role). What the
    /// dashboard shows next to "created by" and a record's history.
    pub fn device_labels(
        &self,
    ) -> Result<std::collections::HashMap<String, (String, String)>, ServerError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT d.device_id, ifnull(t.label, ''), ifnull(t.role, '')
                 FROM devices d LEFT JOIN tokens t ON t.id = d.token_id",
            )
            .map_err(storage_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
            .map_err(storage_err)?;
        Ok(rows)
    }

    /// Erases a contact from the relay's command line (an administrator
    /// acting on a request); the audit trail names `admin` as the author.
    pub fn erase_contact(&self, contact: &str, now: Millis) -> Result<(), ServerError> {
        if DocKind::of_id(contact) != Some(DocKind::Contact) {
            return Err(ServerError::BadRequest(format!(
                "{contact:?} is not a contact id (c_ followed by 32 hex digits)"
            )));
        }
        let admin = Author {
            device: "admin".into(),
            token_id: "admin".into(),
        };
        self.erase(contact, &admin, now)
            .map_err(|e| ServerError::Storage(e.to_string()))
    }

    /// Who wrote what: the log entries of one document (or all), in order,
    /// with the device and token that pushed each.
    pub fn audit(&self, doc: Option<&str>) -> Result<Vec<AuditEntry>, ServerError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT l.seq, l.doc_id, l.device, l.token_id, ifnull(t.label, ''), ifnull(t.role, ''),
                        l.received_at, length(l.data) = 0
                 FROM log l LEFT JOIN tokens t ON t.id = l.token_id
                 WHERE ?1 IS NULL OR l.doc_id = ?1 ORDER BY l.seq",
            )
            .map_err(storage_err)?;
        let rows = stmt
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
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(storage_err)?;
        Ok(rows)
    }

    /// Changes whenever another process commits to the database (a token
    /// created, revoked or edited from the command line): the server polls
    /// it to apply such changes to live sessions at once.
    pub fn data_version(&self) -> Result<i64, ServerError> {
        self.lock()
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(storage_err)
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

/// The document as the log has it. A logged change whose dependencies are
/// not logged yet (re-pushed after a restore) waits inside the document, as
/// it would on a device, rather than make the whole document unreadable.
fn load(conn: &Connection, doc: &str) -> SResult<Option<AutoCommit>> {
    let bytes = snapshot_bytes(conn, doc)?;
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut d = AutoCommit::new();
    d.load_incremental(&bytes)
        .map(|_| Some(d))
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
            "INSERT OR IGNORE INTO devices (device_id, token_id, first_seen) VALUES (?1, ?2, ?3)",
            params![device, id, now],
        )?;
        let owner: String = conn.query_row(
            "SELECT token_id FROM devices WHERE device_id = ?1",
            [device],
            |r| r.get(0),
        )?;
        if owner != id {
            return Ok(Auth::DeviceTaken);
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

    fn grant(&self, token_id: &str) -> SResult<Auth> {
        let row: Option<(String, String, Option<i64>)> = self
            .lock()
            .query_row(
                "SELECT role, label, revoked_at FROM tokens WHERE id = ?1",
                [token_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(match row {
            None => Auth::Unknown,
            Some((_, _, Some(_))) => Auth::Revoked,
            Some((role, label, None)) => Auth::Granted(Grant {
                token_id: token_id.to_owned(),
                role,
                label,
            }),
        })
    }

    fn vis_head(&self) -> SResult<u64> {
        let v: Option<i64> =
            self.lock()
                .query_row("SELECT max(vseq) FROM visibility", [], |r| r.get(0))?;
        Ok(v.unwrap_or(0) as u64)
    }

    fn vis_after(&self, grant: &Grant, after: u64, upto: u64) -> SResult<Vec<VisChange>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT doc_id, forget FROM visibility
             WHERE vseq > ?1 AND vseq <= ?2 AND (token_id IS NULL OR token_id = ?3)
             ORDER BY vseq",
        )?;
        let upto = i64::try_from(upto).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![after as i64, upto, grant.token_id], |r| {
                Ok(VisChange {
                    doc: r.get(0)?,
                    forget: r.get::<_, i64>(1)? != 0,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn scope_docs(&self, token_id: &str) -> SResult<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT doc_id FROM token_docs WHERE token_id = ?1 ORDER BY doc_id")?;
        let rows = stmt
            .query_map([token_id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    }

    fn is_erased(&self, doc: &str) -> SResult<bool> {
        Ok(self
            .lock()
            .query_row("SELECT 1 FROM erased WHERE doc_id = ?1", [doc], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn erase(&self, contact: &str, author: &Author, now: Millis) -> SResult<()> {
        let private = muster_core::model::private_id_of(contact);
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for doc in [contact, private.as_str()] {
            // The entries stay (positions and hashes keep the log's chain);
            // their content goes. secure_delete overwrites the freed bytes.
            tx.execute("UPDATE log SET data = x'' WHERE doc_id = ?1", [doc])?;
            tx.execute("DELETE FROM docs WHERE doc_id = ?1", [doc])?;
            tx.execute("DELETE FROM token_docs WHERE doc_id = ?1", [doc])?;
            tx.execute(
                "INSERT OR IGNORE INTO erased (doc_id, erased_at, token_id, device) VALUES (?1, ?2, ?3, ?4)",
                params![doc, now, author.token_id, author.device],
            )?;
            tx.execute(
                "INSERT INTO visibility (token_id, doc_id, forget) VALUES (NULL, ?1, 1)",
                [doc],
            )?;
        }
        tx.commit()?;
        Ok(())
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
            "SELECT l.seq, l.doc_id, l.hash, l.data, l.device, l.chain, ifnull(d.first_seq, l.seq)
             FROM log l LEFT JOIN docs d ON d.doc_id = l.doc_id
             WHERE l.seq > ?1 AND l.seq <= ?2 AND length(l.data) > 0 ORDER BY l.seq LIMIT ?3",
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
                first_seq: r.get::<_, i64>(6)? as u64,
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

    fn append(&self, author: &Author, changes: &[NewChange], now: Millis) -> SResult<Vec<u64>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let scoped: bool = tx
            .query_row(
                "SELECT role = ?2 FROM tokens WHERE id = ?1",
                params![author.token_id, ROLE_VOLUNTEER],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false);
        let mut events: Vec<String> = Vec::new();
        let mut contacts: Vec<String> = Vec::new();
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
                "INSERT INTO log (doc_id, hash, data, device, token_id, received_at, chain) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut doc_row = tx.prepare_cached(
                "INSERT INTO docs (doc_id, kind, first_seq, since_snapshot) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (doc_id) DO UPDATE SET since_snapshot = since_snapshot + 1
                 RETURNING since_snapshot, first_seq",
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
                    author.device,
                    author.token_id,
                    now,
                    chain.as_slice()
                ])?;
                let seq = tx.last_insert_rowid();
                let kind = DocKind::of_id(&c.doc).map_or("unknown", DocKind::as_str);
                let (since, first): (i64, i64) =
                    doc_row.query_row(params![c.doc, kind, seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
                if first == seq && scoped {
                    // Created by a volunteer's device: in its scope from now.
                    admit(&tx, &author.token_id, &c.doc)?;
                }
                if kind == DocKind::Event.as_str() && !events.contains(&c.doc) {
                    events.push(c.doc.clone());
                }
                if kind == DocKind::Contact.as_str()
                    && !contacts.contains(&c.doc)
                    && may_change_merge(&tx, &c.doc, &c.data)?
                {
                    contacts.push(c.doc.clone());
                }
                if since >= SNAPSHOT_AFTER && !grown.contains(&c.doc) {
                    grown.push(c.doc.clone());
                }
                positions.push(seq as u64);
            }
        }
        for doc in &grown {
            SqliteRelay::rebuild_snapshot(&tx, doc)?;
        }
        for event in &events {
            follow_signups(&tx, event)?;
        }
        for contact in &contacts {
            follow_merge(&tx, contact)?;
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

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
