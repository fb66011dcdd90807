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

mod exchange;
mod fingerprint;
pub mod history;
mod index;
mod merging;
mod reconcile;
mod remote;
pub(crate) mod scan;
mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, Change, ChangeHash};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::model::LedgerEntry;
use crate::model::{
    self, Contact, ContactEdit, ContactPrivate, DocKind, Event, FeedbackCase, FeedbackResponse,
    Millis, NewConsent, NewContact, NewEvent, NewFeedback, Shift,
};
use crate::views::SignupStatus;

pub use index::{ContactSummary, EventSummary, RosterLine};
pub use merging::{DuplicatePair, MIN_SCORE, PHONE_REGION_SETTING, name_similarity};
pub use reconcile::{Arrived, Baseline, ConflictNote, MergeNote, Reconciliation, WaitlistNote};
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
    /// The documents local writes changed since [`Store::take_touched`]
    /// last ran, in order, perhaps repeated.
    touched: Vec<String>,
    /// A reader ([`Store::reader`]) keeps no documents between calls:
    /// another connection writes them.
    reads_only: bool,
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
            rebuild_contact_rows(&mut conn)?;
        } else if !fresh && version < 4 {
            // v4 counts merged contacts by the one rule, from the links.
            let tx = conn.transaction()?;
            index::settle_all_merges(&tx)?;
            tx.commit()?;
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
            touched: Vec::new(),
            reads_only: false,
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
            touched: Vec::new(),
            reads_only: true,
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

    fn new_doc_id(&mut self, kind: DocKind) -> String {
        format!("{}{}", kind.id_prefix(), self.next_hex())
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

    // ----- contacts -------------------------------------------------------

    /// Registers a new contact and returns its id.
    pub fn create_contact(&mut self, new: &NewContact, now: Millis) -> Result<String> {
        self.create_record(DocKind::Contact, now, |id, by| {
            Contact::new(id, new, by, now)
        })
    }

    /// Registers many contacts in one transaction (imports, benchmarks):
    /// all are stored or, on any error, none. Returns their ids in order.
    pub fn create_contacts(&mut self, new: &[NewContact], now: Millis) -> Result<Vec<String>> {
        let mut docs = Vec::with_capacity(new.len());
        for n in new {
            let id = self.new_doc_id(DocKind::Contact);
            let contact = Contact::new(id.clone(), n, &self.device_id, now)?;
            let mut doc = model::create_doc(&self.actor, DocKind::Contact, &contact)?;
            let change = commit_change(&mut doc, now);
            docs.push((id, doc, change));
        }
        let tx = self.conn.transaction()?;
        for (id, doc, change) in &docs {
            if let Some(change) = change {
                persist(
                    &tx,
                    id,
                    DocKind::Contact,
                    doc,
                    std::slice::from_ref(change),
                    true,
                )?;
            }
        }
        tx.commit()?;
        let ids: Vec<String> = docs.into_iter().map(|(id, _, _)| id).collect();
        self.touched.extend(ids.iter().cloned());
        Ok(ids)
    }

    /// The contact with this id.
    pub fn contact(&mut self, id: &str) -> Result<Contact> {
        self.read_record(DocKind::Contact, id)
    }

    /// Edits a contact: `edit` changes the record, which is then validated
    /// and written. Only the fields that changed become part of the change,
    /// so concurrent edits of other fields on other devices are kept.
    pub fn update_contact(
        &mut self,
        id: &str,
        now: Millis,
        edit: impl FnOnce(&mut Contact) -> Result<()>,
    ) -> Result<()> {
        model::check_id(DocKind::Contact, id)?;
        // A merged duplicate's edits land on the contact it was merged into.
        let id = &self.kept_contact_of(id)?;
        self.edit_record(id, DocKind::Contact, now, |c: &mut Contact| {
            let before_id = c.id.clone();
            edit(c)?;
            c.id = before_id;
            c.normalise()
        })
    }

    /// Edits a contact's fields by the one rule of [`ContactEdit`] (phones
    /// without a country code read as numbers of the store's phone region).
    pub fn edit_contact(&mut self, id: &str, edit: &ContactEdit, now: Millis) -> Result<()> {
        let region = self.phone_region()?;
        self.update_contact(id, now, |c| {
            edit.apply(c, &region);
            Ok(())
        })
    }

    /// Records a contact's consent, replacing what was recorded before,
    /// stamped with `now` and this device (who recorded it).
    pub fn record_consent(
        &mut self,
        contact_id: &str,
        consent: &NewConsent,
        now: Millis,
    ) -> Result<()> {
        let recorded = consent.recorded(now, &self.device_id);
        self.update_contact(contact_id, now, |c| {
            c.consent = recorded;
            Ok(())
        })
    }

    /// Edits a contact's notes as text: deletes `delete` characters at
    /// `pos` and inserts `insert` there. Concurrent edits of the notes on
    /// other devices are merged character by character.
    pub fn splice_contact_notes(
        &mut self,
        id: &str,
        pos: usize,
        delete: usize,
        insert: &str,
        now: Millis,
    ) -> Result<()> {
        model::check_id(DocKind::Contact, id)?;
        let id = &self.kept_contact_of(id)?;
        self.edit_doc(id, DocKind::Contact, now, |doc| {
            model::splice_text(doc, id, "notes", pos, delete, insert)
        })
    }

    /// Contacts whose name, phone or email contains every word of `text`
    /// (case and accents ignored), merged duplicates left out, by name.
    /// Control characters (a NUL from a URL's `%00`, say) match nothing a
    /// person can type into a record and are read as spaces.
    pub fn search_contacts(&self, text: &str, limit: usize) -> Result<Vec<ContactSummary>> {
        let cleaned: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = cleaned.as_str();
        let limit = limit as i64;
        let rows = if let Some(query) = index::fts_query(text) {
            let mut stmt = self.conn.prepare_cached(
                "SELECT c.id, c.name, c.phone, c.email, c.roles, c.merged_into
                 FROM contacts_fts JOIN contacts c ON c.num = contacts_fts.rowid
                 WHERE contacts_fts MATCH ?1 AND c.merged_into IS NULL
                 ORDER BY c.sort_name LIMIT ?2",
            )?;
            stmt.query_map(params![query, limit], summary_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?
        } else {
            // Too short for the trigram index: names starting with the text.
            let prefix = text.trim().to_lowercase();
            if prefix.is_empty() {
                return Ok(Vec::new());
            }
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, name, phone, email, roles, merged_into FROM contacts
                 WHERE sort_name >= ?1 AND sort_name < ?1 || char(1114111)
                   AND merged_into IS NULL
                 ORDER BY sort_name LIMIT ?2",
            )?;
            stmt.query_map(params![prefix, limit], summary_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        Ok(rows)
    }

    /// Contacts by name, `limit` from `offset`, merged duplicates included.
    pub fn list_contacts(&self, limit: usize, offset: usize) -> Result<Vec<ContactSummary>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, phone, email, roles, merged_into FROM contacts
             ORDER BY sort_name, id LIMIT ?1 OFFSET ?2",
        )?;
        let rows = stmt
            .query_map(params![limit as i64, offset as i64], summary_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many contacts this device holds.
    pub fn contact_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?)
    }

    // ----- a contact's private ledger ------------------------------------

    /// The private ledger of a contact (empty if nothing was recorded yet).
    ///
    /// The ledger of a kept contact also shows the entries of the
    /// duplicates merged into it (gifts, pledges, interactions after its
    /// own, in each duplicate's order; sensitive notes appended); they stay
    /// in the duplicates' own ledgers, so an unmerge takes them back.
    pub fn contact_private(&mut self, contact_id: &str) -> Result<ContactPrivate> {
        let mut ledger = self.own_ledger(contact_id)?;
        for duplicate in self.merged_duplicates_of(contact_id)? {
            let theirs = self.own_ledger(&duplicate)?;
            ledger.donations.extend(theirs.donations);
            ledger.pledges.extend(theirs.pledges);
            ledger.interactions.extend(theirs.interactions);
            let notes = theirs.sensitive_notes.as_str();
            if !notes.is_empty() {
                let mut text = ledger.sensitive_notes.as_str().to_owned();
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(notes);
                ledger.sensitive_notes = autosurgeon::Text::with_value(text);
            }
        }
        Ok(ledger)
    }

    fn own_ledger(&mut self, contact_id: &str) -> Result<ContactPrivate> {
        self.require(DocKind::Contact, contact_id)?;
        let id = model::private_id_of(contact_id);
        if !self.exists(&id)? {
            return Ok(ContactPrivate::empty(contact_id));
        }
        let doc = self.doc(&id, DocKind::ContactPrivate)?;
        model::hydrate(&id, doc)
    }

    /// Files a donation, pledge or interaction in the private ledger of
    /// the contact `contact_id` counts as (a merged duplicate's entries go
    /// to the kept contact). The store gives the entry its id and, unless
    /// the entry names someone, this device as who recorded it (who had
    /// it, for an interaction). Returns the entry's id.
    pub fn add_to_ledger(
        &mut self,
        contact_id: &str,
        mut entry: impl LedgerEntry,
        now: Millis,
    ) -> Result<String> {
        let contact_id = &self.kept_contact_of(contact_id)?;
        let entry_id = self.new_entry_id();
        let (id, recorder) = entry.id_and_recorder();
        id.clone_from(&entry_id);
        if recorder.trim().is_empty() {
            recorder.clone_from(&self.device_id);
        }
        entry.validate()?;
        self.edit_private(contact_id, now, |p| entry.file(p))?;
        Ok(entry_id)
    }

    /// Appends to a contact's sensitive notes.
    pub fn append_sensitive_note(
        &mut self,
        contact_id: &str,
        text: &str,
        now: Millis,
    ) -> Result<()> {
        let contact_id = &self.kept_contact_of(contact_id)?;
        crate::validate::long_text("sensitive_notes", text)?;
        self.require(DocKind::Contact, contact_id)?;
        let id = self.ensure_private(contact_id)?;
        self.edit_doc(&id, DocKind::ContactPrivate, now, |doc| {
            let end = model::text_len(doc, &id, "sensitive_notes")?;
            model::splice_text(doc, &id, "sensitive_notes", end, 0, text)
        })
    }

    /// Creates the private ledger of a contact if this device has none yet,
    /// and returns its id.
    fn ensure_private(&mut self, contact_id: &str) -> Result<String> {
        let id = model::private_id_of(contact_id);
        if !self.exists(&id)? {
            // Every device creates the same genesis change for this id, so
            // ledgers started offline on two devices share one root.
            let genesis = genesis_private(contact_id)?;
            self.commit_new(&id, DocKind::ContactPrivate, genesis, 0)?;
        }
        Ok(id)
    }

    fn edit_private(
        &mut self,
        contact_id: &str,
        now: Millis,
        edit: impl FnOnce(&mut ContactPrivate),
    ) -> Result<()> {
        self.require(DocKind::Contact, contact_id)?;
        let id = self.ensure_private(contact_id)?;
        self.edit_record(
            &id,
            DocKind::ContactPrivate,
            now,
            |p: &mut ContactPrivate| {
                edit(p);
                let size: usize = p
                    .interactions
                    .iter()
                    .map(|i| i.summary.len())
                    .sum::<usize>()
                    + p.sensitive_notes.as_str().len();
                if size > 10 * crate::validate::MAX_TEXT_BYTES {
                    return Err(Error::invalid(
                        "private record",
                        "is over 1 MB of text; archive old entries",
                    ));
                }
                Ok(())
            },
        )
    }

    // ----- events ---------------------------------------------------------

    /// Creates an event and returns its id.
    pub fn create_event(&mut self, new: &NewEvent, now: Millis) -> Result<String> {
        self.create_record(DocKind::Event, now, |id, by| Event::new(id, new, by, now))
    }

    /// The event with this id.
    pub fn event(&mut self, id: &str) -> Result<Event> {
        self.read_record(DocKind::Event, id)
    }

    /// Edits an event's own fields (title, times, place, capacity, status).
    /// Sign-ups and shifts have their own calls.
    pub fn update_event(
        &mut self,
        id: &str,
        now: Millis,
        edit: impl FnOnce(&mut Event) -> Result<()>,
    ) -> Result<()> {
        self.edit_event(id, now, |e: &mut Event| {
            let (keep_signups, keep_shifts) = (e.signups.clone(), e.shifts.clone());
            edit(e)?;
            e.signups = keep_signups;
            e.shifts = keep_shifts;
            Ok(())
        })
    }

    /// Events by start time.
    pub fn list_events(&self) -> Result<Vec<EventSummary>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, title, starts_at, ends_at, place, capacity, status, registered, waitlisted, checked_in
             FROM events ORDER BY starts_at, id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(EventSummary {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    starts_at: r.get(2)?,
                    ends_at: r.get(3)?,
                    place: r.get(4)?,
                    capacity: r.get(5)?,
                    status: r.get(6)?,
                    registered: r.get(7)?,
                    waitlisted: r.get(8)?,
                    checked_in: r.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Signs a contact up to an event (in advance, or at the door when
    /// `walk_in`). Signing up someone already registered changes nothing.
    pub fn sign_up(
        &mut self,
        event_id: &str,
        contact_id: &str,
        walk_in: bool,
        now: Millis,
    ) -> Result<()> {
        self.require(DocKind::Contact, contact_id)?;
        let contact_id = &self.signup_target(event_id, contact_id)?;
        let by = self.device_id.clone();
        self.edit_signups(event_id, now, |doc| {
            model::event::ops::sign_up(doc, event_id, contact_id, &by, walk_in, now)
        })
    }

    /// Checks a contact in; a contact not signed up becomes a walk-in.
    pub fn check_in(&mut self, event_id: &str, contact_id: &str, now: Millis) -> Result<()> {
        self.require(DocKind::Contact, contact_id)?;
        let contact_id = &self.signup_target(event_id, contact_id)?;
        let by = self.device_id.clone();
        self.edit_signups(event_id, now, |doc| {
            model::event::ops::check_in(doc, event_id, contact_id, &by, now)
        })
    }

    /// Takes back a check-in made by mistake.
    pub fn undo_check_in(&mut self, event_id: &str, contact_id: &str, now: Millis) -> Result<()> {
        self.edit_signup(event_id, contact_id, now, |doc, contact_id| {
            model::event::ops::undo_check_in(doc, event_id, contact_id)
        })
    }

    /// Cancels a contact's sign-up.
    pub fn cancel_signup(&mut self, event_id: &str, contact_id: &str, now: Millis) -> Result<()> {
        self.edit_signup(event_id, contact_id, now, |doc, contact_id| {
            model::event::ops::cancel(doc, event_id, contact_id, now)
        })
    }

    /// Marks a registered contact as not having come.
    pub fn mark_no_show(&mut self, event_id: &str, contact_id: &str, now: Millis) -> Result<()> {
        self.edit_signup(event_id, contact_id, now, |doc, contact_id| {
            model::event::ops::mark_no_show(doc, event_id, contact_id, now)
        })
    }

    /// Changes the sign-up `contact_id` holds at `event_id` (a merged
    /// duplicate's, if it signed up before the merge) with `op`.
    fn edit_signup(
        &mut self,
        event_id: &str,
        contact_id: &str,
        now: Millis,
        op: impl FnOnce(&mut AutoCommit, &str) -> Result<()>,
    ) -> Result<()> {
        let contact_id = &self.signup_target(event_id, contact_id)?;
        self.edit_signups(event_id, now, |doc| op(doc, contact_id))
    }

    /// Adds a volunteer shift to an event. Returns the shift id.
    pub fn add_shift(&mut self, event_id: &str, shift: Shift, now: Millis) -> Result<String> {
        self.require(DocKind::Contact, &shift.contact_id)?;
        let shift_id = self.new_entry_id();
        let key = shift_id.clone();
        self.edit_event(event_id, now, move |e| {
            e.shifts.insert(key, shift);
            Ok(())
        })?;
        Ok(shift_id)
    }

    /// Records the minutes a volunteer actually worked on a shift.
    pub fn record_shift_minutes(
        &mut self,
        event_id: &str,
        shift_id: &str,
        minutes: i64,
        now: Millis,
    ) -> Result<()> {
        self.edit_event(event_id, now, |e| {
            let shift = e
                .shifts
                .get_mut(shift_id)
                .ok_or_else(|| Error::not_found("shift", shift_id))?;
            shift.minutes_worked = Some(minutes);
            Ok(())
        })
    }

    fn edit_signups(
        &mut self,
        event_id: &str,
        now: Millis,
        edit: impl FnOnce(&mut AutoCommit) -> Result<()>,
    ) -> Result<()> {
        model::check_id(DocKind::Event, event_id)?;
        self.edit_doc(event_id, DocKind::Event, now, edit)
    }

    fn edit_event(
        &mut self,
        event_id: &str,
        now: Millis,
        edit: impl FnOnce(&mut Event) -> Result<()>,
    ) -> Result<()> {
        model::check_id(DocKind::Event, event_id)?;
        self.edit_doc(event_id, DocKind::Event, now, |doc| {
            let mut e: Event = model::hydrate(event_id, doc)?;
            edit(&mut e)?;
            e.normalise()?;
            // Sign-ups change only through `model::event::ops`; reconciling
            // them here would cost time in proportion to the event's size.
            e.reconcile_fields(event_id, doc)
        })
    }

    /// An event's roster in registration order, optionally only the
    /// sign-ups in one status (for example the waitlist).
    pub fn roster(&self, event_id: &str, status: Option<SignupStatus>) -> Result<Vec<RosterLine>> {
        self.require(DocKind::Event, event_id)?;
        // A merged duplicate's sign-up shows as the kept contact's.
        let mut stmt = self.conn.prepare_cached(
            "SELECT coalesce(k.id, s.contact_id), coalesce(k.name, c.name), s.status,
                    s.registered_at, s.checked_in_at, s.walk_in, s.waitlist_position
             FROM signups s LEFT JOIN contacts c ON c.id = s.contact_id
                  LEFT JOIN contacts k ON k.id = c.merged_into
             WHERE s.event_id = ?1 AND (?2 IS NULL OR s.status = ?2)
             ORDER BY s.registered_at, s.contact_id",
        )?;
        let rows = stmt
            .query_map(params![event_id, status.map(SignupStatus::as_str)], |r| {
                let status: String = r.get(2)?;
                Ok(RosterLine {
                    contact_id: r.get(0)?,
                    name: r.get(1)?,
                    status: SignupStatus::parse(&status).unwrap_or(SignupStatus::Registered),
                    registered_at: r.get(3)?,
                    checked_in_at: r.get(4)?,
                    walk_in: r.get(5)?,
                    waitlist_position: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<RosterLine>>>()?;
        // A person registered twice (before the merge) keeps one line: the
        // furthest along (checked in over registered over waitlisted…),
        // with the earliest registration.
        let mut lines: Vec<RosterLine> = Vec::with_capacity(rows.len());
        let mut at: HashMap<String, usize> = HashMap::with_capacity(rows.len());
        for row in rows {
            match at.get(&row.contact_id).map(|&i| &mut lines[i]) {
                Some(line) => {
                    let registered_at = line.registered_at.min(row.registered_at);
                    if row.status.precedence() > line.status.precedence() {
                        *line = row;
                    }
                    line.registered_at = registered_at;
                }
                None => {
                    at.insert(row.contact_id.clone(), lines.len());
                    lines.push(row);
                }
            }
        }
        Ok(lines)
    }

    // ----- feedback -------------------------------------------------------

    /// Opens a feedback case and returns its id.
    pub fn create_feedback(&mut self, new: &NewFeedback, now: Millis) -> Result<String> {
        if let Some(contact) = &new.contact_id {
            self.require(DocKind::Contact, contact)?;
        }
        self.create_record(DocKind::Feedback, now, |id, by| {
            FeedbackCase::new(id, new, by, now)
        })
    }

    /// The feedback case with this id.
    pub fn feedback(&mut self, id: &str) -> Result<FeedbackCase> {
        self.read_record(DocKind::Feedback, id)
    }

    /// Assigns a case to someone.
    pub fn assign_feedback(&mut self, id: &str, assignee: &str, now: Millis) -> Result<()> {
        let assignee = crate::validate::name("assigned_to", assignee)?;
        self.edit_feedback(id, now, |f| {
            f.assigned_to = Some(assignee);
            Ok(())
        })
    }

    /// Records an answer given to the person.
    pub fn respond_feedback(&mut self, id: &str, text: &str, now: Millis) -> Result<()> {
        let by = self.device_id.clone();
        self.edit_feedback(id, now, |f| {
            f.responses.push(FeedbackResponse {
                at: now,
                by,
                text: text.to_owned(),
            });
            Ok(())
        })
    }

    /// Closes a case, with the person's satisfaction (1–5) if given.
    pub fn resolve_feedback(
        &mut self,
        id: &str,
        satisfaction: Option<i64>,
        now: Millis,
    ) -> Result<()> {
        self.edit_feedback(id, now, |f| {
            f.resolved_at.get_or_insert(now);
            if satisfaction.is_some() {
                f.satisfaction = satisfaction;
            }
            Ok(())
        })
    }

    fn edit_feedback(
        &mut self,
        id: &str,
        now: Millis,
        edit: impl FnOnce(&mut FeedbackCase) -> Result<()>,
    ) -> Result<()> {
        model::check_id(DocKind::Feedback, id)?;
        self.edit_record(id, DocKind::Feedback, now, |f: &mut FeedbackCase| {
            edit(f)?;
            f.normalise()
        })
    }

    // ----- documents, conflicts and sync support -------------------------

    /// Every value a field of a record holds after a merge, the winner (the
    /// value the record shows) first. See [`model::conflicts`].
    pub fn field_conflicts(
        &mut self,
        doc_id: &str,
        path: &[&str],
    ) -> Result<Vec<serde_json::Value>> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let doc = self.doc(doc_id, kind)?;
        model::conflicts(doc, path)
    }

    /// The ids of every document on this device, in id order.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn doc_ids(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id FROM docs ORDER BY doc_id")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// The current heads of a document.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn heads(&mut self, doc_id: &str) -> Result<Vec<ChangeHash>> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        Ok(self.doc_mut(doc_id, kind)?.get_heads())
    }

    /// Every change of a document this device knows, encoded, in causal order.
    #[cfg(feature = "internals")]
    pub fn changes_of(&mut self, doc_id: &str) -> Result<Vec<Vec<u8>>> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let doc = self.doc_mut(doc_id, kind)?;
        Ok(doc
            .get_changes(&[])
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect())
    }

    /// Stores changes of a document received from elsewhere (the relay, or
    /// another device in tests), merges them and updates the indexes, all in
    /// one transaction. Undecodable bytes, a malformed id, or changes that
    /// would make the document another kind than its id says are refused
    /// and change nothing. Changes already held are counted and skipped.
    #[cfg(feature = "internals")]
    pub fn apply_changes(&mut self, doc_id: &str, changes: &[Vec<u8>]) -> Result<Applied> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let mut parsed = Vec::with_capacity(changes.len());
        for bytes in changes {
            let change =
                Change::from_bytes(bytes.clone()).map_err(|e| Error::bad_document(doc_id, e))?;
            parsed.push(change);
        }
        let mut doc = match self.take_doc(doc_id)? {
            Some(doc) => doc,
            None => AutoCommit::new().with_actor(self.actor.clone()),
        };
        let mut fresh = Vec::new();
        let mut applied = Applied::default();
        for change in parsed {
            if doc.get_change_by_hash(&change.hash()).is_some()
                || fresh.iter().any(|c: &Change| c.hash() == change.hash())
            {
                applied.duplicates += 1;
            } else {
                fresh.push(change);
            }
        }
        if fresh.is_empty() {
            self.put_doc(doc_id, doc);
            return Ok(applied);
        }
        doc.apply_changes(fresh.clone())
            .map_err(|e| Error::bad_document(doc_id, e))?;
        if let Some(found) = model::kind_of(&doc)
            && found != kind
        {
            return Err(Error::bad_document(
                doc_id,
                format!(
                    "the changes make it a {} but its id says {}",
                    found.as_str(),
                    kind.as_str()
                ),
            ));
        }
        let tx = self.conn.transaction()?;
        persist(&tx, doc_id, kind, &doc, &fresh, false)?;
        tx.commit()?;
        applied.new_changes = fresh.len();
        self.put_doc(doc_id, doc);
        self.forward_after_apply(&[doc_id.to_owned()])?;
        Ok(applied)
    }

    /// Local changes the relay has not yet acknowledged, oldest first.
    #[cfg(feature = "internals")]
    pub fn pending_changes(&self, limit: usize) -> Result<Vec<PendingChange>> {
        self.pending_after(0, limit)
    }

    /// How many local changes wait for the relay.
    pub fn pending_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM changes WHERE acked = 0", [], |r| {
                r.get(0)
            })?)
    }

    /// Marks changes as held by the relay, so that compaction may fold them.
    /// `now` is recorded as the time of the last acknowledgement. Returns
    /// how many were newly acknowledged.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn acknowledge(&mut self, hashes: &[ChangeHash], now: Millis) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut count = 0;
        {
            let mut stmt =
                tx.prepare_cached("UPDATE changes SET acked = 1 WHERE hash = ?1 AND acked = 0")?;
            for h in hashes {
                count += stmt.execute([h.as_ref()])?;
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_ack_at', ?1)",
            )?
            .execute([now.to_string()])?;
        }
        tx.commit()?;
        Ok(count)
    }

    /// When the relay last acknowledged changes of this device, if ever.
    pub fn last_acknowledged_at(&self) -> Result<Option<Millis>> {
        let value: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'last_ack_at'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(value.and_then(|v| v.parse().ok()))
    }

    /// Compacts a document now: its history is saved as one snapshot and
    /// the stored changes the relay already holds are dropped. Changes not
    /// yet acknowledged are kept for pushing. Returns the rows dropped.
    #[cfg(feature = "internals")]
    pub fn compact(&mut self, doc_id: &str) -> Result<usize> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let mut doc = self
            .take_doc(doc_id)?
            .ok_or_else(|| Error::not_found(kind.as_str(), doc_id))?;
        let tx = self.conn.transaction()?;
        let dropped = compact_doc(&tx, doc_id, &mut doc)?;
        tx.commit()?;
        self.put_doc(doc_id, doc);
        Ok(dropped)
    }

    /// Stored change rows of a document (local unacknowledged ones included).
    #[cfg(feature = "internals")]
    pub fn stored_change_count(&self, doc_id: &str) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM changes WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )?)
    }

    /// Forgets the decoded documents kept in memory (they are reloaded from
    /// disk when next used). For tests of the load path and for low memory.
    #[cfg(feature = "internals")]
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// The coordinator's reports over this store, read-only
    /// ([`crate::reports`]).
    pub fn reports(&self) -> crate::reports::Reports<'_> {
        crate::reports::Reports::over(&self.conn, &self.device_id)
    }

    /// The ids of the documents (records) that local writes changed since
    /// the last call, each once, in the order first changed: what an app's
    /// observers hear of after a write, so no binding decides it (a merge
    /// changes the duplicate; a note on a contact changes its private
    /// ledger; an erasure removes the contact and its ledger).
    pub fn take_touched(&mut self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        std::mem::take(&mut self.touched)
            .into_iter()
            .filter(|id| seen.insert(id.clone()))
            .collect()
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
        let id = self.new_doc_id(kind);
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
        self.touched.push(doc_id.to_owned());
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
        self.touched.push(doc_id.to_owned());
        self.put_doc(doc_id, doc);
        Ok(())
    }
}

/// Rewrites the index rows of every contact from its document, in one
/// transaction (after a migration that added index columns).
fn rebuild_contact_rows(conn: &mut Connection) -> Result<()> {
    let ids: Vec<String> = conn
        .prepare("SELECT doc_id FROM docs WHERE kind = ?1 ORDER BY doc_id")?
        .query_map([DocKind::Contact.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let actor = ActorId::random();
    let tx = conn.transaction()?;
    for id in ids {
        if let Some(doc) = load_doc(&tx, &id, &actor)? {
            index::reindex(&tx, DocKind::Contact, &id, &doc)?;
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
fn persist(
    tx: &rusqlite::Transaction<'_>,
    doc_id: &str,
    kind: DocKind,
    doc: &AutoCommit,
    changes: &[Change],
    local: bool,
) -> Result<()> {
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
    let count: i64 = tx.prepare_cached("UPDATE docs SET change_count = change_count + ?2 WHERE doc_id = ?1 RETURNING change_count")?
        .query_row(params![doc_id, inserted as i64],
        |r| r.get(0),
    )?;
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
    model::create_doc(
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

/// A connection to the store file at `path`, created if missing; nothing is
/// read or written yet.
fn open_file(path: &Path) -> Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))
}

/// Turns SQLite's "not a database" and "corrupt" into [`Error::Corrupt`],
/// or [`Error::KeyRequired`] for a file that looks encrypted.
fn classify(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) if looks_encrypted(path) => Error::KeyRequired {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        _ => Error::Storage(e),
    }
}

/// The first 16 bytes of every plain SQLite database.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether the file starts like a plain SQLite database.
fn has_plain_header(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == SQLITE_HEADER)
}

/// Whether the file looks like an encrypted database: whole pages (SQLCipher
/// pages are 512 bytes to 64 KiB) that do not start like a plain one. Random
/// bytes look the same; that is the point of encryption.
fn looks_encrypted(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() >= 512 && m.len() % 512 == 0)
        && !has_plain_header(path)
}

/// Makes a just-opened connection to the database file `path` ready for use,
/// before anything else runs on it: with a key, sets it (SQLCipher, raw
/// 256-bit key) and checks that it decrypts the file; without one, checks
/// that the file is not encrypted. Reads the first page at most; writes
/// nothing. [`Store::open_encrypted`] and the relay's storage open through
/// this.
///
/// Errors: [`Error::WrongKey`] (the key does not decrypt the file),
/// [`Error::NotEncrypted`] (a key was given for a plain database),
/// [`Error::KeyRequired`] (no key for a file that looks encrypted),
/// [`Error::Corrupt`] (not a database, or damaged).
pub fn unlock(conn: &Connection, path: &Path, key: Option<&[u8; 32]>) -> Result<()> {
    if let Some(key) = key {
        // The key comes first: SQLCipher reads nothing until it is set.
        apply_key(conn, key)?;
    }
    // The first read of the file tells whether it can be decrypted.
    let Err(e) = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    }) else {
        return Ok(());
    };
    if key.is_none() || e.sqlite_error_code() != Some(rusqlite::ErrorCode::NotADatabase) {
        return Err(classify(path, e));
    }
    let path = path.to_path_buf();
    Err(if has_plain_header(&path) {
        Error::NotEncrypted { path }
    } else {
        Error::WrongKey { path }
    })
}

/// Sets the SQLCipher key: `PRAGMA key = "x'<64 hex digits>'"` (a raw key,
/// no derivation). Must be the first statement on the connection. Fails if
/// this build has no SQLCipher (plain SQLite would ignore the pragma and
/// write the data in the clear).
fn apply_key(conn: &Connection, key: &[u8; 32]) -> Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut sql = String::with_capacity(84);
    sql.push_str("PRAGMA key = \"x'");
    for b in key {
        sql.push(char::from(HEX[usize::from(b >> 4)]));
        sql.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    sql.push_str("'\"");
    let keyed = conn.execute_batch(&sql);
    // Best effort: do not leave the key's text in freed memory.
    let mut text = sql.into_bytes();
    text.fill(0);
    std::hint::black_box(&text);
    keyed?;
    let cipher: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .optional()?;
    if cipher.is_none() {
        return Err(Error::NotAllowed(
            "this build of Muster has no SQLCipher, so it cannot encrypt the store; build rusqlite with the bundled-sqlcipher feature"
                .into(),
        ));
    }
    Ok(())
}
