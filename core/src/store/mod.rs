//! The device store: every document of this device in one SQLite file.
//!
//! # What it promises
//!
//! - **Durable writes.** A call that records something returns only after
//!   the change is committed to disk (WAL, `synchronous = FULL`): a kill or
//!   a power cut after the return loses nothing.
//! - **All or nothing.** A change, the document's compaction and the index
//!   rows derived from it are written in one transaction. A call that
//!   returns an error has changed nothing on disk.
//! - **No change is lost before the relay has it.** Local changes stay in
//!   the `changes` table, flagged unacknowledged, until
//!   [`Store::acknowledge`]; compaction folds other changes into a snapshot
//!   but keeps those.
//! - **Fast open.** Opening reads two pragmas and a few meta rows; documents
//!   are loaded one at a time when first used and a few are kept in memory.
//!
//! # Identity
//!
//! Each store has a random device id, created with it. Its 16 bytes are
//! the Automerge actor id of every change this device makes, and its text
//! form is recorded as `created_by`/`registered_by` in records. Document ids
//! and the device id are the store's only use of randomness; the store never
//! reads the clock: every call that records a time takes `now`.

mod contacts;
mod documents;
mod events;
mod exchange;
mod feedback;
mod file;
mod fingerprint;
pub mod history;
mod index;
mod merging;
mod pages;
mod reconcile;
mod remote;
pub(crate) mod scan;
mod schema;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, Change, ChangeHash};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::model::LedgerEntry;
use crate::model::{
    self, Contact, ContactEdit, ContactPrivate, DocKind, Event, EventEdit, FeedbackCase,
    FeedbackResponse, Millis, NewConsent, NewContact, NewEvent, NewFeedback, Publication, Shift,
};
use crate::views::SignupStatus;

pub use exchange::BatchEdit;
pub use feedback::FeedbackLine;
pub use file::unlock;
use file::{classify, open_file};
pub use index::{ContactSummary, EventSummary, RosterLine};
pub use merging::{DuplicatePair, MIN_SCORE, PHONE_REGION_SETTING, name_similarity};
pub use pages::{CancelLink, PageCancel, PageRegistration};
pub use reconcile::{
    Arrived, Baseline, ConflictNote, MergeNote, OnlineNote, Reconciliation, WaitlistNote,
};
pub(crate) use remote::{Arrival, ArrivalForm};
pub use remote::{BatchOutcome, LogPosition};
pub use schema::{APPLICATION_ID, latest_version};

/// When a document has this many stored changes that the relay already
/// holds, they are folded into its snapshot.
pub const COMPACT_AFTER: i64 = 64;
/// WAL size (in 4 KiB pages) at which SQLite checkpoints during a write.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 4_000;
/// How many documents are kept decoded in memory.
const CACHE_DOCS: usize = 256;

/// A local change that the relay has not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    /// Order of the change on this device.
    pub seq: i64,
    /// The document it belongs to.
    pub doc_id: String,
    /// Its Automerge hash: the id under which it is acknowledged.
    pub hash: ChangeHash,
    /// The encoded change.
    pub data: Vec<u8>,
}

/// What [`Store::apply_changes`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Changes new to this device, now stored.
    pub new_changes: usize,
    /// Changes this device already had.
    pub duplicates: usize,
}

/// The device's database of documents. See the module documentation.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    device_id: String,
    actor: ActorId,
    cache: HashMap<String, AutoCommit>,
    /// When set, ids come from this deterministic stream (simulations).
    id_seed: Option<u64>,
    /// Keeps new document ids in order within a millisecond
    /// ([`Store::new_doc_id`]).
    id_order: uuid::ContextV7,
    /// The documents local writes changed since [`Store::take_touched`]
    /// last ran, in order, perhaps repeated; `None` unless someone asked
    /// ([`Store::track_touched`]), so a store nobody asks grows nothing.
    touched: Option<Vec<String>>,
    /// A reader ([`Store::reader`]) keeps no documents between calls:
    /// another connection writes them.
    reads_only: bool,
    /// The documents that arrived from elsewhere since the last
    /// [`Store::baseline`] and held conflicting values when indexed: the
    /// reconciliation report's conflicts are looked for in these only.
    conflicted: HashSet<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path`, creating it if the file does not exist.
    ///
    /// Refuses, leaving the file untouched: a file that is not a database or
    /// is damaged ([`Error::Corrupt`]), another application's database
    /// ([`Error::ForeignDatabase`]), a store from a newer Muster
    /// ([`Error::NewerSchema`]), an encrypted store ([`Error::KeyRequired`]:
    /// see [`Store::open_encrypted`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let conn = open_file(&path)?;
        Store::init(conn, path)
    }

    /// Opens the store at `path` encrypted with `key`, creating it (encrypted)
    /// if the file does not exist.
    ///
    /// Every page of the file and of its WAL is encrypted (SQLCipher:
    /// AES-256 with an HMAC per page); `key` is used as the raw 256-bit key,
    /// without key derivation. The app generates it once (32 random bytes)
    /// and keeps it in the Android Keystore or the iOS Keychain; without it
    /// the file is unreadable. The store does not keep the key.
    ///
    /// Refuses, leaving the file untouched: a key that does not decrypt the
    /// file ([`Error::WrongKey`]), a plain store, which is never used
    /// unencrypted when a key is given ([`Error::NotEncrypted`]), and
    /// whatever [`Store::open`] refuses.
    pub fn open_encrypted(path: impl AsRef<Path>, key: &[u8; 32]) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let conn = open_file(&path)?;
        unlock(&conn, &path, Some(key))?;
        Store::init(conn, path)
    }

    /// A store that lives in memory only, for tests and scratch work.
    pub fn open_in_memory() -> Result<Store> {
        Store::init(Connection::open_in_memory()?, PathBuf::from(":memory:"))
    }

    fn init(mut conn: Connection, path: PathBuf) -> Result<Store> {
        // Read-only checks first: nothing is written until the file is known
        // to be ours (or empty).
        let (app_id, version, objects) = conn
            .query_row(
                "SELECT (SELECT application_id FROM pragma_application_id),
                        (SELECT user_version FROM pragma_user_version),
                        (SELECT count(*) FROM sqlite_schema)",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .map_err(|e| classify(&path, e))?;
        let fresh = app_id == 0 && version == 0 && objects == 0;
        if !fresh && app_id != APPLICATION_ID {
            return Err(Error::ForeignDatabase { path });
        }
        if version > latest_version() {
            return Err(Error::NewerSchema {
                path,
                found: version,
                supported: latest_version(),
            });
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| classify(&path, e))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints copy the WAL into the database and fsync it: done on
        // the write path they are the slowest writes. Let the WAL grow to
        // 16 MB before SQLite does it inline; apps call `checkpoint` when
        // idle (the sync driver does after each sync).
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Every write runs a dozen statements; keep them all prepared.
        conn.set_prepared_statement_cache_capacity(64);
        if fresh {
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        schema::migrations()
            .to_latest(&mut conn)
            .map_err(|e| Error::Migration(e.to_string()))?;
        if !fresh && version < 3 {
            // v3 added index columns that only the documents can fill.
            rebuild_rows(&mut conn, DocKind::Contact)?;
        } else if !fresh && version < 4 {
            // v4 counts merged contacts by the one rule, from the links.
            let tx = conn.transaction()?;
            index::settle_all_merges(&tx)?;
            tx.commit()?;
        }
        if !fresh && version < 5 {
            // v5 indexes events' public pages, which an event synced from
            // a newer device may already hold.
            rebuild_rows(&mut conn, DocKind::Event)?;
        }

        let device_id: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let device_id = match device_id {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('device_id', ?1)",
                    [&id],
                )?;
                id
            }
        };
        let actor = ActorId::from(
            uuid::Uuid::parse_str(&device_id)
                .map_err(|e| Error::Corrupt {
                    path: path.clone(),
                    detail: format!("device id {device_id:?}: {e}"),
                })?
                .as_bytes()
                .as_slice(),
        );
        Ok(Store {
            conn,
            path,
            device_id,
            actor,
            cache: HashMap::new(),
            id_seed: None,
            id_order: uuid::ContextV7::new(),
            touched: None,
            reads_only: false,
            conflicted: HashSet::new(),
        })
    }

    /// A second connection to this store's file, for reads only, with the
    /// same `key` as this one if it is encrypted. SQLite's WAL lets it read
    /// while this connection writes: each read sees every write committed
    /// before it began, so a long report or export on one thread does not
    /// hold up a volunteer's search or check-in on another. A write through
    /// it fails; it keeps no documents in memory between calls (the writer
    /// changes them). `None` for a store in memory, which no second
    /// connection can see.
    pub fn reader(&self, key: Option<&[u8; 32]>) -> Result<Option<Store>> {
        if self.path == Path::new(":memory:") {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(&self.path, e))?;
        if key.is_some() {
            unlock(&conn, &self.path, key)?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Some(Store {
            conn,
            path: self.path.clone(),
            device_id: self.device_id.clone(),
            actor: self.actor.clone(),
            cache: HashMap::new(),
            id_seed: None,
            id_order: uuid::ContextV7::new(),
            touched: None,
            reads_only: true,
            conflicted: HashSet::new(),
        }))
    }

    /// An in-memory store whose device id and every id it creates come from
    /// `seed`, so that a simulation run can be replayed exactly from its
    /// seed. Not for real devices: ids from two stores with the same seed
    /// collide.
    #[cfg(feature = "internals")]
    pub fn open_in_memory_seeded(seed: u64) -> Result<Store> {
        let mut store = Store::open_in_memory()?;
        store.id_seed = Some(seed);
        let device = store.next_hex();
        store.conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'device_id'",
            [&device],
        )?;
        store.actor = ActorId::from(
            uuid::Uuid::parse_str(&device)
                .map_err(|e| Error::Migration(e.to_string()))?
                .as_bytes()
                .as_slice(),
        );
        store.device_id = device;
        Ok(store)
    }

    /// 32 hex digits: random, or the next of the seeded stream.
    fn next_hex(&mut self) -> String {
        match &mut self.id_seed {
            None => uuid::Uuid::new_v4().simple().to_string(),
            Some(state) => {
                // splitmix64, twice.
                let mut next = || {
                    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = *state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    z ^ (z >> 31)
                };
                format!("{:016x}{:016x}", next(), next())
            }
        }
    }

    /// A new document's id: a UUIDv7 of `now` (the time in milliseconds,
    /// then 74 random bits, ordered within a millisecond), so the documents
    /// a device creates one after another sort one after another. Every
    /// table keyed by document id then grows at its end instead of at a
    /// random page: with random ids, importing 100,000 contacts read and
    /// wrote a page of each index per contact once the store outgrew
    /// SQLite's page cache. The id tells when the record was made, as the
    /// record itself does.
    fn new_doc_id(&mut self, kind: DocKind, now: Millis) -> String {
        let hex = match self.id_seed {
            None => {
                let ms = u64::try_from(now).unwrap_or(0);
                let at = uuid::Timestamp::from_unix(
                    &self.id_order,
                    ms / 1_000,
                    (ms % 1_000) as u32 * 1_000_000,
                );
                uuid::Uuid::new_v7(at).simple().to_string()
            }
            Some(_) => self.next_hex(),
        };
        format!("{}{hex}", kind.id_prefix())
    }

    fn new_entry_id(&mut self) -> String {
        self.next_hex()
    }

    /// This device's id (32 hex digits), recorded as the author of its work.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves what the write-ahead log holds into the database file, without
    /// waiting for readers. Cheap when there is little to move; call it when
    /// the app is idle so that writes rarely have to.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Runs SQLite's full integrity check; `Ok(())` when the file is sound.
    pub fn integrity_check(&self) -> Result<()> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if result == "ok" {
            Ok(())
        } else {
            Err(Error::Corrupt {
                path: self.path.clone(),
                detail: result,
            })
        }
    }

    // ----- internals ------------------------------------------------------

    fn exists(&self, doc_id: &str) -> Result<bool> {
        if !self.reads_only && self.cache.contains_key(doc_id) {
            return Ok(true);
        }
        Ok(self
            .conn
            .query_row("SELECT 1 FROM docs WHERE doc_id = ?1", [doc_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn require(&self, kind: DocKind, id: &str) -> Result<()> {
        model::check_id(kind, id)?;
        if self.exists(id)? {
            Ok(())
        } else {
            Err(Error::not_found(kind.as_str(), id))
        }
    }

    fn load(&self, doc_id: &str) -> Result<Option<AutoCommit>> {
        load_doc(&self.conn, doc_id, &self.actor)
    }

    fn take_doc(&mut self, doc_id: &str) -> Result<Option<AutoCommit>> {
        match self.cache.remove(doc_id) {
            Some(doc) => Ok(Some(doc)),
            None => self.load(doc_id),
        }
    }

    /// Which of `ids` (a JSON array of ids) `select` (a query of one column
    /// of ids) returns: one statement however many ids there are.
    pub(crate) fn ids_among(&self, ids: &str, select: &str) -> Result<HashSet<String>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT j.value FROM json_each(?1) j WHERE j.value IN ({select})"
            ))?
            .query_map([ids], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn put_doc(&mut self, doc_id: &str, doc: AutoCommit) {
        if self.cache.len() >= CACHE_DOCS
            && let Some(victim) = self.cache.keys().next().cloned()
        {
            self.cache.remove(&victim);
        }
        self.cache.insert(doc_id.to_owned(), doc);
    }

    fn doc_mut(&mut self, doc_id: &str, kind: DocKind) -> Result<&mut AutoCommit> {
        if self.reads_only {
            // What another connection wrote since is read afresh.
            self.cache.clear();
        }
        if !self.cache.contains_key(doc_id) {
            let doc = self
                .load(doc_id)?
                .ok_or_else(|| Error::not_found(kind.as_str(), doc_id))?;
            self.put_doc(doc_id, doc);
        }
        Ok(self.cache.get_mut(doc_id).expect("inserted above"))
    }

    fn doc(&mut self, doc_id: &str, kind: DocKind) -> Result<&AutoCommit> {
        Ok(&*self.doc_mut(doc_id, kind)?)
    }

    /// Creates a record of `kind` made by `make` from its new id and this
    /// device's, and returns the id.
    fn create_record<T: autosurgeon::Reconcile>(
        &mut self,
        kind: DocKind,
        now: Millis,
        make: impl FnOnce(String, &str) -> Result<T>,
    ) -> Result<String> {
        let id = self.new_doc_id(kind, now);
        let record = make(id.clone(), &self.device_id)?;
        let doc = model::create_doc(&self.actor, kind, &record)?;
        self.commit_new(&id, kind, doc, now)?;
        Ok(id)
    }

    /// The record of `kind` with this id, typed.
    fn read_record<T: autosurgeon::Hydrate>(&mut self, kind: DocKind, id: &str) -> Result<T> {
        model::check_id(kind, id)?;
        let doc = self.doc(id, kind)?;
        model::hydrate(id, doc)
    }

    /// Stores the first change of a document created on this device.
    fn commit_new(
        &mut self,
        doc_id: &str,
        kind: DocKind,
        mut doc: AutoCommit,
        now: Millis,
    ) -> Result<()> {
        let change = commit_change(&mut doc, now)
            .ok_or_else(|| Error::bad_document(doc_id, "a new document must hold a change"))?;
        // A private ledger's genesis was made under a shared actor; the
        // device's own edits continue under its own.
        doc.set_actor(self.actor.clone());
        let tx = self.conn.transaction()?;
        persist(&tx, doc_id, kind, &doc, &[change], true)?;
        tx.commit()?;
        self.touch([doc_id.to_owned()]);
        self.put_doc(doc_id, doc);
        Ok(())
    }

    /// Edits a record through its typed form: hydrate, let `edit` change
    /// it, and reconcile (only what changed becomes operations).
    fn edit_record<T>(
        &mut self,
        doc_id: &str,
        kind: DocKind,
        now: Millis,
        edit: impl FnOnce(&mut T) -> Result<()>,
    ) -> Result<()>
    where
        T: autosurgeon::Hydrate + autosurgeon::Reconcile,
    {
        self.edit_doc(doc_id, kind, now, |doc| {
            let mut record: T = model::hydrate(doc_id, doc)?;
            edit(&mut record)?;
            model::reconcile(doc_id, doc, &record)
        })
    }

    /// The one write path for edits: `edit` operates on the document, then
    /// the change is committed and persisted with the index rows in one
    /// transaction. On any error the in-memory document is dropped (it is
    /// reloaded from disk next time), so memory never runs ahead of the disk.
    fn edit_doc(
        &mut self,
        doc_id: &str,
        kind: DocKind,
        now: Millis,
        edit: impl FnOnce(&mut AutoCommit) -> Result<()>,
    ) -> Result<()> {
        let mut doc = self
            .take_doc(doc_id)?
            .ok_or_else(|| Error::not_found(kind.as_str(), doc_id))?;
        edit(&mut doc)?;
        let Some(change) = commit_change(&mut doc, now) else {
            self.put_doc(doc_id, doc);
            return Ok(());
        };
        let tx = self.conn.transaction()?;
        persist(&tx, doc_id, kind, &doc, &[change], true)?;
        tx.commit()?;
        self.touch([doc_id.to_owned()]);
        self.put_doc(doc_id, doc);
        Ok(())
    }
}

/// Rewrites the index rows of every contact from its document, in one
/// transaction (after a migration that added index columns).
fn rebuild_rows(conn: &mut Connection, kind: DocKind) -> Result<()> {
    let ids: Vec<String> = conn
        .prepare("SELECT doc_id FROM docs WHERE kind = ?1 ORDER BY doc_id")?
        .query_map([kind.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let actor = ActorId::random();
    let tx = conn.transaction()?;
    for id in ids {
        if let Some(doc) = load_doc(&tx, &id, &actor)? {
            index::reindex(&tx, kind, &id, &doc)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Loads a document from disk (snapshot, then the changes stored after it),
/// or `None` if this device does not have it. Edits continue as `actor`.
fn load_doc(conn: &Connection, doc_id: &str, actor: &ActorId) -> Result<Option<AutoCommit>> {
    let snapshot: Option<Option<Vec<u8>>> = conn
        .query_row(
            "SELECT snapshot FROM docs WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };
    let mut stmt =
        conn.prepare_cached("SELECT data FROM changes WHERE doc_id = ?1 ORDER BY seq")?;
    let changes = stmt
        .query_map([doc_id], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut doc = scan::assemble(doc_id, snapshot.as_deref(), changes)?;
    doc.set_actor(actor.clone());
    Ok(Some(doc))
}

/// Commits the pending operations of `doc` as one change stamped `now`.
fn commit_change(doc: &mut AutoCommit, now: Millis) -> Option<Change> {
    doc.commit_with(CommitOptions::default().with_time(now))?;
    doc.get_last_local_change()
}

/// Writes changes of a document, compacts it when its history grew long,
/// and refreshes its index rows. Runs inside the caller's transaction.
/// Returns whether the document holds conflicting values
/// ([`index::reindex`]).
fn persist(
    tx: &rusqlite::Transaction<'_>,
    doc_id: &str,
    kind: DocKind,
    doc: &AutoCommit,
    changes: &[Change],
    local: bool,
) -> Result<bool> {
    store_changes(tx, doc_id, kind, doc, changes, local)?;
    index::reindex(tx, kind, doc_id, doc)
}

/// [`persist`] without the index rows: for a batch that indexes every
/// document it touched once, at its end.
fn store_changes(
    tx: &rusqlite::Transaction<'_>,
    doc_id: &str,
    kind: DocKind,
    doc: &AutoCommit,
    changes: &[Change],
    local: bool,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO docs (doc_id, kind) VALUES (?1, ?2) ON CONFLICT (doc_id) DO NOTHING",
    )?
    .execute(params![doc_id, kind.as_str()])?;
    let mut inserted = 0;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO changes (doc_id, hash, data, local, acked) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for change in changes {
            inserted += stmt.execute(params![
                doc_id,
                change.hash().as_ref(),
                change.raw_bytes(),
                local,
                !local
            ])?;
        }
    }
    // UPDATE … RETURNING opens a statement savepoint, and at each one FTS5
    // writes its pending terms out as a segment of their own: 13% of a
    // batched create. Without it (an UPDATE and a SELECT) a batch of 1,000
    // became one large segment, and merging those later made one single
    // durable write in a hundred take 8 ms instead of 2.5 (p99 after the
    // bench's batched create): kept, for the desk's writes.
    let count: i64 = tx
        .prepare_cached(
            "UPDATE docs SET change_count = change_count + ?2 WHERE doc_id = ?1 RETURNING change_count",
        )?
        .query_row(params![doc_id, inserted as i64], |r| r.get(0))?;
    // Compact only when it frees rows: changes the relay has not
    // acknowledged stay whatever happens, so a snapshot alone saves nothing.
    if count >= COMPACT_AFTER {
        let droppable: i64 = tx
            .prepare_cached("SELECT count(*) FROM changes WHERE doc_id = ?1 AND acked = 1")?
            .query_row([doc_id], |r| r.get(0))?;
        if droppable >= COMPACT_AFTER {
            let mut doc = doc.clone();
            compact_doc(tx, doc_id, &mut doc)?;
        }
    }
    Ok(())
}

/// Saves `doc` as the snapshot of `doc_id` and drops the stored changes the
/// snapshot holds and the relay already holds. Kept: unacknowledged local
/// changes (to push) and changes still waiting for their dependencies
/// (Automerge queues those outside the document, so no snapshot has them).
fn compact_doc(
    tx: &rusqlite::Transaction<'_>,
    doc_id: &str,
    doc: &mut AutoCommit,
) -> Result<usize> {
    let snapshot = doc.save();
    let acked: Vec<(i64, Vec<u8>)> = {
        let mut stmt =
            tx.prepare_cached("SELECT seq, hash FROM changes WHERE doc_id = ?1 AND acked = 1")?;
        stmt.query_map([doc_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut dropped = 0;
    {
        let mut delete = tx.prepare_cached("DELETE FROM changes WHERE seq = ?1")?;
        for (seq, hash) in acked {
            let in_snapshot = ChangeHash::try_from(hash.as_slice())
                .ok()
                .is_some_and(|h| doc.get_change_by_hash(&h).is_some());
            if in_snapshot {
                dropped += delete.execute([seq])?;
            }
        }
    }
    tx.prepare_cached(
        "UPDATE docs SET snapshot = ?2,
                change_count = (SELECT count(*) FROM changes WHERE doc_id = ?1)
         WHERE doc_id = ?1",
    )?
    .execute(params![doc_id, snapshot])?;
    Ok(dropped)
}

/// The genesis change of a contact's private ledger: written by an actor
/// derived from the contact id, at time 0, so every device produces the
/// same bytes and the same hash.
fn genesis_private(contact_id: &str) -> Result<AutoCommit> {
    let uuid = uuid::Uuid::parse_str(&contact_id[2..])
        .map_err(|_| Error::not_found("contact", contact_id))?;
    let actor = ActorId::from(uuid.as_bytes().as_slice());
    model::create_shared_genesis(
        &actor,
        DocKind::ContactPrivate,
        &ContactPrivate::empty(contact_id),
    )
}

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContactSummary> {
    let roles: String = r.get(4)?;
    Ok(ContactSummary {
        id: r.get(0)?,
        name: r.get(1)?,
        phone: r.get(2)?,
        email: r.get(3)?,
        roles: roles
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        merged_into: r.get(5)?,
    })
}

#[cfg(test)]
mod genesis_tests {
    use super::*;

    /// Every device, of every version, must make the same genesis change for
    /// a contact's private ledger: a device that made another would hold two
    /// roots of one ledger, every field in conflict. The hash is the one the
    /// devices in the field make.
    #[test]
    fn the_genesis_of_a_private_ledger_never_changes() {
        let mut doc = genesis_private("c_0123456789abcdef0123456789abcdef").unwrap();
        let change = commit_change(&mut doc, 0).unwrap();
        assert_eq!(
            change.hash().to_string(),
            "352afe40b4a6c0f5142ad3d047b1b2a8aa38c2428ab578b53151af10b10879c6"
        );
    }
}
