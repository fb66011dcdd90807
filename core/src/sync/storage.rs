//! The relay's durable state: the seam between the relay's rules (core)
//! and a database (the server's SQLite, PostgreSQL later, the in-memory
//! [`super::memory::MemoryRelay`]).
//!
//! A backend implements [`RelayStorage`]: a handful of reads, each one call
//! however much it answers, and [`RelayStorage::transaction`], which runs
//! core's code over the primitive writes of [`RelayTx`] atomically. Every
//! decision (who may see what, when a snapshot is rebuilt, which token a
//! device belongs to, what an erasure removes, what a token may be) is
//! taken here, in core, by the provided methods ([`RelayStorage::append`],
//! [`RelayStorage::erase`], [`RelayStorage::authenticate`], the token
//! administration) and by [`super::scope`]; a backend only persists what
//! they decided. Decisions that depend on stored state (a contact signed up
//! to an event joins the scope of every token holding it) are taken inside
//! the backend's transaction, so that they see a consistent state however
//! many processes write: that is why core's code runs inside
//! `transaction` rather than returning effects computed from a read taken
//! earlier, which could be stale by the time it is written.
//!
//! # The contract
//!
//! Every backend keeps each sentence below; the `muster-conformance`
//! crate has a test of each (`contract.rs`), and a backend runs them all
//! with one line (`relay_backend_tests!`).
//!
//! 1. **Appends are serialised.** Two [`RelayStorage::transaction`]s never
//!    interleave their writes to the log: each sees the log as the one
//!    committed before it left it.
//! 2. **`seq` has no gaps and becomes visible in commit order.** Entries
//!    are numbered 1, 2, 3… with nothing skipped, even after a transaction
//!    fails; a reader never sees seq 11 before seq 10 is committed, so a
//!    cursor at 11 covers 10.
//! 3. **The chain hash never forks.** Each entry's [`LogEntry::chain`] is
//!    [`chain_hash`] of the previous entry's chain (zeros before the first)
//!    and its own change hash; no two entries have the same `seq`.
//! 4. **A change is logged once.** A change (document and hash) already in
//!    the log is not appended again; [`RelayTx::insert_changes`] returns
//!    its existing position.
//! 5. **Acknowledged means durable.** When `transaction` returns `Ok`, what
//!    it wrote survives a crash of the process and of the machine.
//! 6. **A transaction is all or nothing.** If the closure returns an error,
//!    or the backend fails, nothing it wrote is kept (log entries, scope
//!    rows, visibility rows, tokens, erasures alike).
//! 7. **Erased entries are skipped.** After an erasure,
//!    [`RelayStorage::entries_after`] leaves out the erased documents'
//!    entries (their positions and hashes stay: the chain is unbroken),
//!    their snapshots are gone, and [`RelayStorage::doc_states`] says
//!    `erased`.
//! 8. **The visibility log is ordered like the log.** Its positions have
//!    no gaps and become visible in commit order, and a row written in the
//!    same transaction as log entries becomes visible with them.
//! 9. **A snapshot loads as the document.** [`RelayStorage::snapshots`]
//!    returns bytes Automerge's `load` accepts holding every logged change
//!    of the document: the last snapshot put, then the changes logged
//!    after it.
//!
//! Reads outside a transaction see some committed state (not necessarily
//! the latest): the session reads the head first and never asks beyond it.

use std::collections::BTreeSet;

use automerge::AutoCommit;

use crate::model::{DocKind, Millis};

use super::scope;

/// The result of a storage call.
pub type SResult<T> = std::result::Result<T, StorageError>;

/// Why the relay's storage could not do what was asked. Whatever the
/// variant, nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached or failed (a server down, a disk
    /// full, a lock held too long). Devices are told to try again later.
    #[error("the relay's storage is unavailable: {0}")]
    Unavailable(String),
    /// What an administrator asked breaks a rule (no such token, a role
    /// that does not exist, an id that is not an event's).
    #[error("{0}")]
    Refused(String),
    /// Stored bytes that do not read back as what they should be.
    #[error("the relay's copy of {doc} cannot be read ({detail}); restore the relay from a backup")]
    Damaged {
        /// The document (or table) concerned.
        doc: String,
        /// What failed.
        detail: String,
    },
}

impl StorageError {
    /// A document whose stored bytes do not load.
    pub fn damaged(doc: &str, detail: impl std::fmt::Display) -> StorageError {
        StorageError::Damaged {
            doc: doc.to_owned(),
            detail: detail.to_string(),
        }
    }
}

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token's id (not its secret).
    pub token_id: String,
    /// `coordinator`, `volunteer` or `observer`.
    pub role: String,
    /// The label given when the token was created.
    pub label: String,
}

impl Grant {
    /// Coordinators see and write every document.
    pub fn is_coordinator(&self) -> bool {
        self.role == ROLE_COORDINATOR
    }

    /// Whether this role's view is limited to a scope kept by the storage
    /// (volunteers: their events, the contacts signed up to them, and what
    /// their devices created).
    pub fn is_scoped(&self) -> bool {
        self.role == ROLE_VOLUNTEER
    }
}

/// Every document, every private ledger, every write.
pub const ROLE_COORDINATOR: &str = "coordinator";
/// Their events, the contacts signed up to them, what they created; never
/// a private ledger.
pub const ROLE_VOLUNTEER: &str = "volunteer";
/// Reads everything but private ledgers; writes nothing.
pub const ROLE_OBSERVER: &str = "observer";
/// Roles a token may have (PROTOCOL.md §6, README "Roles and scopes").
pub const ROLES: [&str; 3] = [ROLE_COORDINATOR, ROLE_VOLUNTEER, ROLE_OBSERVER];

/// The answer to a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A valid token.
    Granted(Grant),
    /// A token the relay never issued.
    Unknown,
    /// A token that was revoked.
    Revoked,
    /// The device id is enrolled with another token: a device cannot take
    /// another's identity.
    DeviceTaken,
}

/// Who wrote something: the device and the token it authenticated with.
/// The log records both (the audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The device id (32 hex digits), or `admin` for the command line.
    pub device: String,
    /// The token's id (never its secret), or `admin`.
    pub token_id: String,
    /// The token's view is a scope ([`Grant::is_scoped`]): what its
    /// devices create joins it.
    pub scoped: bool,
}

impl Author {
    /// The relay's administrator at the command line.
    pub fn admin() -> Author {
        Author {
            device: "admin".into(),
            token_id: "admin".into(),
            scoped: false,
        }
    }
}

/// A document entering or leaving what a device may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisChange {
    /// The document.
    pub doc: String,
    /// `true`: the device must delete it (erased, or out of scope now);
    /// `false`: it is newly visible.
    pub forget: bool,
}

/// One entry of the relay's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// The document.
    pub doc: String,
    /// The change's hash.
    pub hash: [u8; 32],
    /// The encoded change.
    pub data: Vec<u8>,
    /// The device that pushed it.
    pub device: String,
    /// The log's hash up to and including this entry (see [`chain_hash`]):
    /// what cursors carry.
    pub chain: [u8; 32],
    /// The `seq` of the document's first entry (this one's, if it is the
    /// first): a catch-up sends a document new to the device whole, at its
    /// first entry.
    pub first_seq: u64,
}

/// The log's hash after appending the change `change` to a log whose hash
/// was `prev` (32 zero bytes for the empty log): SHA-256 of `prev`
/// followed by the change's hash.
///
/// Cursors carry this, not the change's own hash, so that a cursor names
/// the whole prefix of the log it covers. A relay restored from a backup
/// may later hold, at the same `seq`, the same change the device saw there
/// but different entries before it; only a chained hash tells.
pub fn chain_hash(prev: &[u8; 32], change: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(prev);
    h.update(change);
    h.finalize().into()
}

/// A change the session has checked and wants stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    /// The document.
    pub doc: String,
    /// The change's hash.
    pub hash: [u8; 32],
    /// The encoded change.
    pub data: Vec<u8>,
}

/// Where the log and the visibility log end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head {
    /// The last entry's `seq` (0 for an empty log).
    pub seq: u64,
    /// Its chained hash (zeros for an empty log).
    pub chain: [u8; 32],
    /// The last position of the visibility log (0 if empty).
    pub vis: u64,
}

/// What the relay knows of a document, for deciding a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DocState {
    /// The log holds entries of it.
    pub exists: bool,
    /// It was erased.
    pub erased: bool,
}

/// What an append did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// The log position of each change given (new or already there), in
    /// order.
    pub positions: Vec<u64>,
    /// How many entries were new.
    pub new: usize,
    /// The highest of `positions` with its chained hash (what the `ack`
    /// names), if any change was given.
    pub last: Option<(u64, [u8; 32])>,
}

/// What [`RelayTx::insert_changes`] wrote for one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertedDoc {
    /// The document.
    pub doc: String,
    /// This insert wrote the document's first entry.
    pub created: bool,
    /// Its last entry now.
    pub last_seq: u64,
    /// Entries of it logged since its snapshot was last put (all of them
    /// if it has none).
    pub since_snapshot: u64,
    /// Indexes (into the changes given) of its changes that were new.
    pub new_changes: Vec<usize>,
}

/// What [`RelayTx::insert_changes`] did. A backend builds it with
/// [`Inserted::already_logged`] and [`Inserted::logged`], one call per
/// change given, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inserted {
    /// As [`Appended`].
    pub appended: Appended,
    /// Every document that got a new entry, in the order first met.
    pub docs: Vec<InsertedDoc>,
    /// Where each document is in `docs`.
    index: std::collections::HashMap<String, usize>,
}

impl Inserted {
    /// The next change given was in the log already, at `seq` (chain
    /// `chain`).
    pub fn already_logged(&mut self, seq: u64, chain: [u8; 32]) {
        self.appended.positions.push(seq);
        self.note_last(seq, chain);
    }

    /// The next change given (number `change` of them, for `doc`) was
    /// appended at `seq` with `chain`; `created` if it is the document's
    /// first entry; `since_snapshot` as [`InsertedDoc::since_snapshot`].
    pub fn logged(
        &mut self,
        change: usize,
        doc: &str,
        created: bool,
        (seq, chain): (u64, [u8; 32]),
        since_snapshot: u64,
    ) {
        self.appended.positions.push(seq);
        self.appended.new += 1;
        self.note_last(seq, chain);
        let at = match self.index.get(doc) {
            Some(&at) => at,
            None => {
                self.index.insert(doc.to_owned(), self.docs.len());
                self.docs.push(InsertedDoc {
                    doc: doc.to_owned(),
                    created,
                    last_seq: seq,
                    since_snapshot,
                    new_changes: Vec::new(),
                });
                self.docs.len() - 1
            }
        };
        let d = &mut self.docs[at];
        d.last_seq = seq;
        d.since_snapshot = since_snapshot;
        d.new_changes.push(change);
    }

    fn note_last(&mut self, seq: u64, chain: [u8; 32]) {
        if self.appended.last.is_none_or(|(l, _)| seq > l) {
            self.appended.last = Some((seq, chain));
        }
    }
}

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
    /// A volunteer token's events, in id order.
    pub events: Vec<String>,
    /// When it was revoked.
    pub revoked_at: Option<Millis>,
}

/// A token as stored: what a backend hands back for a secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Its id (`tok_…`).
    pub id: String,
    /// SHA-256 of its secret.
    pub secret_hash: [u8; 32],
    /// Its role.
    pub role: String,
    /// Its label.
    pub label: String,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// What a secret presented at the dashboard's login is
/// ([`RelayStorage::check_secret`]).
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

/// After this many log entries of a document since its snapshot, the
/// snapshot is rebuilt, so a first sync gets one compact document.
pub const SNAPSHOT_AFTER: u64 = 64;

/// SHA-256 of a token's secret: all a backend stores of it.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes()).into()
}

/// The primitive writes (and the reads that decisions need) inside one
/// transaction of a backend. Each is one statement's worth of work; none
/// decides anything.
pub trait RelayTx {
    /// Appends `changes` by `author` received at `now`, skipping those the
    /// log holds already (contract 4), each with its [`chain_hash`].
    fn insert_changes(
        &mut self,
        author: &Author,
        changes: &[NewChange],
        now: Millis,
    ) -> SResult<Inserted>;
    /// The document as logged, this transaction's entries included; a
    /// change whose dependencies are not logged waits inside it (as
    /// `load_incremental` leaves it) rather than fail the load.
    fn load_doc(&mut self, doc: &str) -> SResult<Option<AutoCommit>>;
    /// Stores `snapshot` as the document up to and including `upto`.
    fn put_snapshot(&mut self, doc: &str, snapshot: &[u8], upto: u64) -> SResult<()>;

    /// Records that `contact` was signed up to `event`; whether it is new.
    fn record_signup(&mut self, event: &str, contact: &str) -> SResult<bool>;
    /// Every contact ever recorded as signed up to `event`.
    fn signups_of(&mut self, event: &str) -> SResult<Vec<String>>;
    /// The tokens, not revoked, whose events include `event`.
    fn event_holders(&mut self, event: &str) -> SResult<Vec<String>>;
    /// The tokens whose scope holds `doc`.
    fn doc_holders(&mut self, doc: &str) -> SResult<Vec<String>>;
    /// The contact `duplicate` is recorded as merged into.
    fn merge_of(&mut self, duplicate: &str) -> SResult<Option<String>>;
    /// Records (or with `None` clears) what `duplicate` is merged into.
    fn set_merge(&mut self, duplicate: &str, kept: Option<&str>) -> SResult<()>;
    /// Whether `doc` was erased.
    fn is_erased(&mut self, doc: &str) -> SResult<bool>;
    /// The documents, not erased, whose first entry was pushed with `token`.
    fn created_by(&mut self, token: &str) -> SResult<Vec<String>>;
    /// The documents in `token`'s scope.
    fn scope_of(&mut self, token: &str) -> SResult<BTreeSet<String>>;
    /// Puts `doc` in `token`'s scope; whether it was not there.
    fn add_to_scope(&mut self, token: &str, doc: &str) -> SResult<bool>;
    /// Takes `doc` out of `token`'s scope (out of every scope: `None`).
    fn remove_from_scope(&mut self, token: Option<&str>, doc: &str) -> SResult<()>;
    /// Appends to the visibility log: `doc` enters (or with `forget`,
    /// leaves) the view of `token`'s devices, of every device if `None`.
    fn announce(&mut self, token: Option<&str>, doc: &str, forget: bool) -> SResult<()>;

    /// Stores a new token.
    fn insert_token(&mut self, token: &TokenRecord, now: Millis) -> SResult<()>;
    /// The token with this id.
    fn token(&mut self, id: &str) -> SResult<Option<TokenRecord>>;
    /// Replaces a token's events.
    fn set_token_events(&mut self, id: &str, events: &[String]) -> SResult<()>;
    /// Marks a token revoked at `now`, if it was not.
    fn revoke_token(&mut self, id: &str, now: Millis) -> SResult<()>;
    /// Records a device seen with `token` at `now`: the device is claimed
    /// by the first token it is seen with. Returns the token that owns it.
    fn claim_device(&mut self, device: &str, token: &str, now: Millis) -> SResult<String>;
    /// Notes that `token` was last used by `device` at `now`.
    fn touch_token(&mut self, token: &str, device: &str, now: Millis) -> SResult<()>;

    /// Erases one document: its entries keep their place but lose their
    /// data, its snapshot goes, and it is recorded as erased by `author`
    /// at `now`.
    fn erase_doc(&mut self, doc: &str, author: &Author, now: Millis) -> SResult<()>;
}

/// The document whose log bytes (a snapshot and changes, as
/// [`RelayStorage::snapshots`] returns them) are `bytes`; `None` for no
/// bytes. A logged change whose dependencies are not logged yet (re-pushed
/// after a restore) waits inside the document, as it would on a device,
/// rather than make the whole document unreadable. Every backend's
/// `load_doc` is this over its own bytes.
pub fn doc_from_log_bytes(doc: &str, bytes: &[u8]) -> SResult<Option<AutoCommit>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut d = AutoCommit::new();
    d.load_incremental(bytes)
        .map_err(|e| StorageError::damaged(doc, e))?;
    Ok(Some(d))
}

/// How much one read of the log returns at most ([`RelayStorage::entries_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Entries.
    pub entries: usize,
    /// About so many bytes of entry data (at least one entry if any).
    pub bytes: usize,
}

impl Batch {
    /// No limit: every entry of the range.
    pub const ALL: Batch = Batch {
        entries: usize::MAX,
        bytes: usize::MAX,
    };

    /// Whether a read holding `entries` entries of `bytes` bytes of data
    /// must stop before the next: at the entry limit, or at the byte limit
    /// once it holds at least one.
    pub fn is_full(&self, entries: usize, bytes: usize) -> bool {
        entries >= self.entries || (bytes >= self.bytes && entries > 0)
    }
}

/// [`RelayStorage::append`]'s work inside a transaction: the changes
/// logged, then what follows from them — the snapshots of documents grown
/// by [`SNAPSHOT_AFTER`] entries and the scopes ([`scope::after_append`]).
/// One implementation, whether a transaction holds one append or several.
pub fn append_in(
    tx: &mut dyn RelayTx,
    author: &Author,
    changes: &[NewChange],
    now: Millis,
) -> SResult<Appended> {
    let inserted = tx.insert_changes(author, changes, now)?;
    for d in &inserted.docs {
        if d.since_snapshot >= SNAPSHOT_AFTER {
            rebuild_snapshot(tx, &d.doc, d.last_seq)?;
        }
    }
    scope::after_append(tx, author, changes, &inserted.docs)?;
    Ok(inserted.appended)
}

/// The relay's durable state. See the module documentation for the
/// contract a backend keeps; the provided methods are the relay's rules
/// and are not meant to be overridden.
pub trait RelayStorage: Send + Sync + std::fmt::Debug {
    /// The random id this relay's data was created with.
    fn epoch(&self) -> SResult<String>;
    /// Where the log and the visibility log end.
    fn head(&self) -> SResult<Head>;
    /// The chained log hash at `seq` ([`LogEntry::chain`]), if there is an
    /// entry there.
    fn hash_at(&self, seq: u64) -> SResult<Option<[u8; 32]>>;
    /// Entries with `after < seq <= upto` that are not erased, in order,
    /// at most `most.entries` and about `most.bytes` (at least one entry if
    /// any).
    fn entries_after(&self, after: u64, upto: u64, most: Batch) -> SResult<Vec<LogEntry>>;
    /// What the relay knows of each document, in the order given.
    fn doc_states(&self, docs: &[&str]) -> SResult<Vec<DocState>>;
    /// Everything the relay has of each document, as bytes Automerge's
    /// `load` accepts (contract 9), in the order given; empty for a
    /// document it does not have.
    fn snapshots(&self, docs: &[&str]) -> SResult<Vec<Vec<u8>>>;
    /// The document as the relay has it (for checks and the fallback), as
    /// [`RelayTx::load_doc`] reads it.
    fn load_doc(&self, doc: &str) -> SResult<Option<AutoCommit>>;
    /// The visibility rows with positions in `(after, upto]` that concern
    /// `token`'s devices (its own and every device's), in order.
    fn vis_after(&self, token: &str, after: u64, upto: u64) -> SResult<Vec<VisChange>>;
    /// Every document in `token`'s scope, in id order.
    fn scope_docs(&self, token: &str) -> SResult<Vec<String>>;
    /// The token whose secret has this SHA-256.
    fn token_by_secret(&self, secret_hash: &[u8; 32]) -> SResult<Option<TokenRecord>>;
    /// The token with this id.
    fn token_by_id(&self, id: &str) -> SResult<Option<TokenRecord>>;
    /// Every token, oldest first (never their secrets).
    fn list_tokens(&self) -> SResult<Vec<TokenInfo>>;
    /// Every device that has enrolled, with the label and role of the
    /// token it enrolled with: device id → (label, role).
    fn device_labels(&self) -> SResult<std::collections::HashMap<String, (String, String)>>;
    /// The log entries of one document (or all), in order, with who
    /// pushed each.
    fn audit(&self, doc: Option<&str>) -> SResult<Vec<AuditEntry>>;
    /// Runs `f` in one transaction (contract 1, 5, 6): commits if it
    /// returns `Ok`, keeps nothing if it or the backend fails.
    fn transaction(&self, f: &mut dyn FnMut(&mut dyn RelayTx) -> SResult<()>) -> SResult<()>;

    /// Appends changes pushed by `author`, durably, and keeps what follows
    /// from them in the same transaction: scopes ([`scope::after_append`])
    /// and the snapshots of documents grown by [`SNAPSHOT_AFTER`] entries.
    /// A backend may override it to commit several sessions' appends in
    /// one transaction, each made by [`append_in`].
    fn append(&self, author: &Author, changes: &[NewChange], now: Millis) -> SResult<Appended> {
        let mut out = Appended::default();
        self.transaction(&mut |tx| {
            out = append_in(tx, author, changes, now)?;
            Ok(())
        })?;
        Ok(out)
    }

    /// Erases a contact and its private ledger (the right to be
    /// forgotten): their log entries lose their data, their snapshots go,
    /// they leave every scope, and every device is told to forget them.
    fn erase(&self, contact: &str, author: &Author, now: Millis) -> SResult<()> {
        if DocKind::of_id(contact) != Some(DocKind::Contact) {
            return Err(StorageError::Refused(format!(
                "{contact:?} is not a contact id (c_ followed by 32 hex digits)"
            )));
        }
        let private = crate::model::private_id_of(contact);
        self.transaction(&mut |tx| {
            for doc in [contact, private.as_str()] {
                tx.erase_doc(doc, author, now)?;
                tx.remove_from_scope(None, doc)?;
                tx.announce(None, doc, true)?;
            }
            Ok(())
        })
    }

    /// Checks a token presented by `device` and records that it was seen.
    /// A device id belongs to the first token it enrolled with.
    fn authenticate(&self, secret: &str, device: &str, now: Millis) -> SResult<Auth> {
        let token = match self.check_secret(secret)? {
            SecretCheck::Unknown => return Ok(Auth::Unknown),
            SecretCheck::Revoked => return Ok(Auth::Revoked),
            SecretCheck::Valid { id, .. } => id,
        };
        let mut auth = Auth::Unknown;
        self.transaction(&mut |tx| {
            let Some(t) = tx.token(&token)? else {
                auth = Auth::Unknown;
                return Ok(());
            };
            if t.revoked {
                auth = Auth::Revoked;
                return Ok(());
            }
            if tx.claim_device(device, &t.id, now)? != t.id {
                auth = Auth::DeviceTaken;
                return Ok(());
            }
            tx.touch_token(&t.id, device, now)?;
            auth = Auth::Granted(Grant {
                token_id: t.id,
                role: t.role,
                label: t.label,
            });
            Ok(())
        })?;
        Ok(auth)
    }

    /// The token with this id as it stands now (a live session checks
    /// again when tokens change: revoked, or its scope edited).
    fn grant(&self, token_id: &str) -> SResult<Auth> {
        Ok(match self.token_by_id(token_id)? {
            None => Auth::Unknown,
            Some(t) if t.revoked => Auth::Revoked,
            Some(t) => Auth::Granted(Grant {
                token_id: t.id,
                role: t.role,
                label: t.label,
            }),
        })
    }

    /// Which token a secret belongs to: looked up by its SHA-256 and
    /// compared again in constant time, so that no timing depends on how
    /// much of a guess was right. Records nothing.
    fn check_secret(&self, secret: &str) -> SResult<SecretCheck> {
        let hash = secret_hash(secret);
        let Some(t) = self.token_by_secret(&hash)? else {
            return Ok(SecretCheck::Unknown);
        };
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            t.secret_hash.as_slice(),
            hash.as_slice(),
        )) {
            return Ok(SecretCheck::Unknown);
        }
        if t.revoked {
            return Ok(SecretCheck::Revoked);
        }
        Ok(SecretCheck::Valid {
            id: t.id,
            role: t.role,
        })
    }

    /// Creates a token and returns `(id, secret)`. Only the secret's
    /// SHA-256 is stored; the secret is shown once. A volunteer token needs
    /// at least one event; other roles take none.
    fn create_token(
        &self,
        role: &str,
        label: &str,
        events: &[String],
        now: Millis,
    ) -> SResult<(String, String)> {
        if !ROLES.contains(&role) {
            return Err(StorageError::Refused(format!(
                "role {role:?} is not one of {}",
                ROLES.join(", ")
            )));
        }
        match (role == ROLE_VOLUNTEER, events.is_empty()) {
            (true, true) => {
                return Err(StorageError::Refused(
                    "a volunteer token needs at least one --event".into(),
                ));
            }
            (false, false) => {
                return Err(StorageError::Refused(format!(
                    "a {role} token sees every event; --event is for volunteer tokens"
                )));
            }
            _ => {}
        }
        scope::check_event_ids(events)?;
        let id = format!("tok_{}", random_hex(8));
        // 256 random bits: guessing is hopeless, and failed logins are
        // rate-limited per address on top.
        let secret = format!("mst_{}", random_hex(32));
        let record = TokenRecord {
            id: id.clone(),
            secret_hash: secret_hash(&secret),
            role: role.to_owned(),
            label: label.to_owned(),
            revoked: false,
        };
        self.transaction(&mut |tx| {
            tx.insert_token(&record, now)?;
            // A new token has no devices yet: nothing to announce.
            scope::rescope(tx, &id, events, false)
        })?;
        Ok((id, secret))
    }

    /// Replaces a volunteer token's events. Its devices receive what entered
    /// the scope and forget what left it, at their next sync (live ones at
    /// once).
    fn set_token_events(&self, id: &str, events: &[String]) -> SResult<()> {
        scope::check_event_ids(events)?;
        self.transaction(&mut |tx| {
            match tx.token(id)?.map(|t| t.role) {
                None => return Err(StorageError::Refused(format!("no token {id}"))),
                Some(r) if r == ROLE_VOLUNTEER && events.is_empty() => {
                    return Err(StorageError::Refused(
                        "a volunteer token needs at least one --event (revoke it instead)".into(),
                    ));
                }
                Some(r) if r == ROLE_VOLUNTEER => {}
                Some(r) => {
                    return Err(StorageError::Refused(format!(
                        "{id} is a {r} token: it sees every event"
                    )));
                }
            }
            scope::rescope(tx, id, events, true)
        })
    }

    /// Revokes a token: its devices are disconnected at once and refused
    /// from then on. Returns false if it was already revoked.
    fn revoke_token(&self, id: &str, now: Millis) -> SResult<bool> {
        let mut changed = false;
        self.transaction(&mut |tx| {
            match tx.token(id)? {
                None => {
                    return Err(StorageError::Refused(format!(
                        "no token {id} (see `muster-server token list`)"
                    )));
                }
                Some(t) if t.revoked => changed = false,
                Some(_) => {
                    tx.revoke_token(id, now)?;
                    changed = true;
                }
            }
            Ok(())
        })?;
        Ok(changed)
    }
}

/// Rebuilds a document's snapshot from its logged changes, unless one of
/// them waits for a dependency not logged yet (re-pushed after a restore,
/// say): `save` would drop it, so the old snapshot and the log stay until
/// it applies.
fn rebuild_snapshot(tx: &mut dyn RelayTx, doc: &str, upto: u64) -> SResult<()> {
    let Some(mut d) = tx.load_doc(doc)? else {
        return Ok(());
    };
    if !d.get_missing_deps(&[]).is_empty() {
        return Ok(());
    }
    tx.put_snapshot(doc, &d.save(), upto)
}

/// `bytes` random bytes as hex: token ids, secrets, epochs.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
