//! The relay's side of a sync session, without I/O.
//!
//! A [`RelaySession`] lives for one device connection. The server feeds it
//! frames with [`RelaySession::handle_frame`], tells it the log grew with
//! [`RelaySession::handle_log_advanced`], and drains
//! [`RelaySession::poll_transmit`] — which also produces the next catch-up
//! batch when the queue is empty, so a slow device is served at its own
//! pace and the relay never holds a whole catch-up in memory. When
//! [`RelaySession::is_closed`] the server sends what is queued and closes.
//!
//! Storage is reached through [`RelayStorage`], so the same session runs
//! over SQLite (the server's default), PostgreSQL later, or the in-memory
//! [`super::memory::MemoryRelay`] of the simulation tests.

use std::collections::{HashMap, HashSet, VecDeque};

use automerge::sync::{State as DocSyncState, SyncDoc};
use automerge::{AutoCommit, Change};
use serde_bytes::ByteBuf;

pub use super::storage::{
    Auth, Author, Grant, LogEntry, NewChange, ROLE_COORDINATOR, ROLE_OBSERVER, ROLE_VOLUNTEER,
    RelayStorage, VisChange, chain_hash,
};
use super::storage::{DocState, Head, SResult};
use super::timers::{self, RelayTimers};
use super::wire::{self, Cursor, Entry, Form, Message, code};
use crate::model::{DocKind, Millis, integrity};

/// What the server must do after [`RelaySession::handle_frame`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handled {
    /// New entries were appended to the log: wake the other sessions.
    pub appended: usize,
    /// What devices may see changed without the log growing (an erasure):
    /// wake the other sessions too.
    pub visibility_changed: bool,
}

#[derive(Debug)]
enum Phase {
    AwaitHello,
    Fallback,
    CatchingUp {
        /// Entries after this `seq` are still to send.
        next_after: u64,
        /// The catch-up covers the log up to here.
        upto: u64,
        /// The device's cursor when catch-up began.
        base: u64,
        /// Documents already sent whole in this catch-up (a first sync's log
        /// pass goes by each document's first entry instead).
        sent_whole: HashSet<String>,
        /// Documents to send whole or to forget before the log pass
        /// (newly visible, erased), from the visibility log.
        whole: VecDeque<VisChange>,
        /// The visibility log position the catch-up brings the device to.
        vis_upto: u64,
    },
    Live,
    Closed,
}

/// The relay's side of one device connection. See the module documentation.
#[derive(Debug)]
pub struct RelaySession {
    phase: Phase,
    transmit: VecDeque<Vec<u8>>,
    grant: Option<Grant>,
    device: String,
    epoch: String,
    /// Last log position this device has been sent (or told about).
    cursor: (u64, [u8; 32]),
    /// Open per-document exchanges of the fallback, each with the size of
    /// the last message that went into its state (what the state holds of
    /// the device's heads, needs and bloom filters is about that much).
    fallback: HashMap<String, (DocSyncState, usize)>,
    /// The sum of those sizes, bounded by [`wire::MAX_FALLBACK_STATE_BYTES`].
    fallback_bytes: usize,
    /// What a scoped token may see, kept current from the visibility log;
    /// `None` for roles that see every document (but private ledgers are
    /// still coordinators' only).
    scope: Option<HashSet<String>>,
    /// Position in the visibility log the device has been brought to.
    vis: u64,
    /// Documents this device created in this session (no need to send
    /// them back when they join its scope).
    created: HashSet<String>,
    /// The device presented a token the relay refused (for rate limits).
    login_refused: bool,
    /// The server says the device's address is past its failed logins: a
    /// refused token is answered `rate_limited` (a right one still gets in).
    login_limited: bool,
    /// Fallback documents holding changes whose dependencies have not
    /// arrived yet. Automerge keeps such changes outside the document, so
    /// they cannot be logged (or reloaded) until they apply; the device will
    /// not send them twice, so they wait here.
    held: HashMap<String, Held>,
    /// Fallback documents whose changes were refused in this session: the
    /// exchange for them is over.
    refused: HashSet<String>,
    /// Entries queued for the device since last asked (for metrics).
    sent_entries: u64,
    /// The bytes a catch-up batch aims at ([`RelaySession::set_batch_bytes`]).
    batch_bytes: usize,
    /// The hello timeout, pings and the silence limit.
    timers: RelayTimers,
}

impl Default for RelaySession {
    fn default() -> Self {
        RelaySession::new()
    }
}

impl RelaySession {
    /// A session waiting for `hello`.
    pub fn new() -> RelaySession {
        RelaySession {
            phase: Phase::AwaitHello,
            transmit: VecDeque::new(),
            grant: None,
            device: String::new(),
            epoch: String::new(),
            cursor: (0, [0; 32]),
            fallback: HashMap::new(),
            fallback_bytes: 0,
            scope: None,
            vis: 0,
            created: HashSet::new(),
            login_refused: false,
            login_limited: false,
            held: HashMap::new(),
            refused: HashSet::new(),
            sent_entries: 0,
            batch_bytes: wire::BATCH_BYTES,
            timers: RelayTimers::default(),
        }
    }

    /// Starts the session's timers at `now` (the connection opened): the
    /// device has [`timers::HELLO_TIMEOUT`] to say `hello`, is pinged
    /// after [`timers::PING_EVERY`] of quiet, and is dropped after
    /// [`timers::SILENCE_LIMIT`] of silence. Without it no timer runs (a
    /// test driving the session by hand).
    pub fn start(&mut self, now: Millis) {
        self.timers.start(now);
    }

    /// The device was heard from at `now`: a frame, a pong.
    /// [`RelaySession::handle_frame`] counts its frame itself.
    pub fn handle_heard(&mut self, now: Millis) {
        self.timers.heard(now);
    }

    /// When the session next needs [`RelaySession::handle_timeout`], if
    /// ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.is_closed() {
            return None;
        }
        self.timers.next(self.grant.is_none())
    }

    /// Runs the timers that are due at `now`: no `hello` in time ends the
    /// session with `handshake_timeout`; silence past the limit ends it
    /// with nothing to send ([`RelaySession::went_silent`]); a ping due is
    /// handed out by [`RelaySession::poll_ping`].
    pub fn handle_timeout(&mut self, now: Millis) {
        let Some(started) = self.timers.started else {
            return;
        };
        if self.is_closed() {
            return;
        }
        if now >= self.timers.last_heard + timers::SILENCE_LIMIT {
            self.timers.silent = true;
            self.transmit.clear();
            self.close_quietly();
            return;
        }
        if self.grant.is_none() && now >= started + timers::HELLO_TIMEOUT {
            self.close_with(
                code::HANDSHAKE_TIMEOUT,
                format!(
                    "no hello within {} seconds",
                    timers::seconds(timers::HELLO_TIMEOUT)
                ),
            );
            return;
        }
        if now >= self.timers.last_heard.max(self.timers.last_ping) + timers::PING_EVERY {
            self.timers.ping_due = true;
            self.timers.last_ping = now;
        }
    }

    /// Whether a keep-alive ping is due (the driver sends a transport
    /// ping; the device's pong comes back through
    /// [`RelaySession::handle_heard`]).
    pub fn poll_ping(&mut self) -> bool {
        std::mem::take(&mut self.timers.ping_due)
    }

    /// Whether the session ended because the device went silent.
    pub fn went_silent(&self) -> bool {
        self.timers.silent
    }

    /// Sets the bytes a catch-up batch aims at, at most
    /// [`wire::BATCH_BYTES`] (PROTOCOL.md §7; a single larger snapshot is
    /// still sent alone). A server holding many connections sends smaller
    /// batches: each connection keeps a buffer as large as the largest
    /// frame it sent.
    pub fn set_batch_bytes(&mut self, bytes: usize) {
        self.batch_bytes = bytes.clamp(1, wire::BATCH_BYTES);
    }

    /// Entries queued for the device since the last call (for metrics).
    pub fn take_sent_entries(&mut self) -> u64 {
        std::mem::take(&mut self.sent_entries)
    }

    /// The device's grant, once authenticated.
    pub fn grant(&self) -> Option<&Grant> {
        self.grant.as_ref()
    }

    /// The device id it announced.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Whether the device presented a token the relay refused (unknown,
    /// revoked, or another device's): the server counts these per address.
    pub fn login_refused(&self) -> bool {
        self.login_refused
    }

    /// Tells the session whether the device's address has used up its
    /// failed logins (the server counts them per address): if so, a
    /// refused token at `hello` gets `rate_limited` rather than its own
    /// answer. A valid token is let in all the same, so that a shared
    /// address (everyone behind one proxy) cannot be locked out by one
    /// client guessing.
    pub fn set_login_limited(&mut self, limited: bool) {
        self.login_limited = limited;
    }

    /// Whether the session is over (send what is queued, then close).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the device has been caught up and now gets live entries.
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live)
    }

    /// Whether the next [`RelaySession::poll_transmit`] reads a catch-up
    /// batch from storage (nothing else is queued): the server may make it
    /// wait for one of a bounded number of slots first.
    pub fn wants_batch(&self) -> bool {
        self.transmit.is_empty() && matches!(self.phase, Phase::CatchingUp { .. })
    }

    /// Whether [`RelaySession::poll_transmit`] has (or can produce) a frame.
    pub fn wants_transmit(&self) -> bool {
        !self.transmit.is_empty() || matches!(self.phase, Phase::CatchingUp { .. })
    }

    /// Ends the session with a fatal error for the device.
    pub fn close_with(&mut self, code: u16, message: impl Into<String>) {
        self.transmit.push_back(wire::encode(&Message::Error {
            code,
            message: message.into(),
        }));
        self.close_quietly();
    }

    /// Ends the session, sending nothing more than what is queued.
    fn close_quietly(&mut self) {
        self.phase = Phase::Closed;
        // Nothing the session held is needed any more.
        self.fallback = HashMap::new();
        self.fallback_bytes = 0;
        self.held = HashMap::new();
        self.refused = HashSet::new();
    }

    /// The next frame to send. When nothing is queued during catch-up, this
    /// reads the next batch from storage.
    pub fn poll_transmit(&mut self, storage: &dyn RelayStorage) -> SResult<Option<Vec<u8>>> {
        if self.transmit.is_empty() && matches!(self.phase, Phase::CatchingUp { .. }) {
            self.next_batch(storage)?;
        }
        Ok(self.transmit.pop_front())
    }

    /// Handles one frame from the device.
    pub fn handle_frame(
        &mut self,
        storage: &dyn RelayStorage,
        frame: &[u8],
        now: Millis,
    ) -> SResult<Handled> {
        if self.is_closed() {
            return Ok(Handled::default());
        }
        self.timers.heard(now);
        let message = match wire::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                self.close_with(e.code(), e.to_string());
                return Ok(Handled::default());
            }
        };
        match (&self.phase, message) {
            (Phase::AwaitHello, hello @ Message::Hello { .. }) => self.hello(storage, hello, now),
            (Phase::AwaitHello, _) => {
                self.close_with(code::UNEXPECTED, "the first message must be hello");
                Ok(Handled::default())
            }
            (_, Message::Hello { .. }) => {
                self.close_with(code::UNEXPECTED, "hello was already received");
                Ok(Handled::default())
            }
            (_, Message::Push { changes }) => self.push(storage, changes, now),
            (Phase::Fallback, Message::DocSync { doc, message }) => {
                self.doc_sync(storage, doc, &message, now)
            }
            (Phase::Fallback, Message::ResyncDone) => {
                let head = storage.head()?;
                self.fallback.clear();
                self.fallback_bytes = 0;
                self.held.clear();
                self.refused.clear();
                // What the device may see now, not at hello: documents
                // joined its scope while the fallback ran.
                if let Some(g) = self.grant.as_ref().filter(|g| g.is_scoped()) {
                    self.scope = Some(storage.scope_docs(&g.token_id)?.into_iter().collect());
                }
                self.start_catch_up(storage, (0, [0; 32]), head.seq, 0, head.vis)?;
                Ok(Handled::default())
            }
            (_, Message::Erase { doc }) => self.erase(storage, doc, now),
            (_, other) => {
                self.close_with(
                    code::UNEXPECTED,
                    format!("unexpected {} now", message_name(&other)),
                );
                Ok(Handled::default())
            }
        }
    }

    /// The log grew (or scopes changed): once live, queue what the device
    /// may now see — documents newly in its view, whole; documents erased
    /// or out of its view, to forget — then the new entries of other
    /// devices within its view.
    pub fn handle_log_advanced(&mut self, storage: &dyn RelayStorage) -> SResult<()> {
        if !self.is_live() {
            return Ok(());
        }
        let vis_upto = storage.head()?.vis;
        if vis_upto > self.vis {
            let token = self
                .grant
                .as_ref()
                .map(|g| g.token_id.clone())
                .unwrap_or_default();
            let changes = storage.vis_after(&token, self.vis, vis_upto)?;
            self.vis = vis_upto;
            let changes: Vec<VisChange> = changes
                .into_iter()
                // Created by this very device: it has it.
                .filter(|v| v.forget || !self.created.contains(&v.doc))
                .collect();
            let out = self.vis_entries(storage, changes)?;
            self.queue_live(out);
        }
        loop {
            let entries = storage.entries_after(
                self.cursor.0,
                u64::MAX,
                wire::BATCH_ENTRIES,
                wire::BATCH_BYTES,
            )?;
            let Some(last) = entries.last() else {
                return Ok(());
            };
            self.cursor = (last.seq, last.chain);
            let out: Vec<Entry> = entries
                .into_iter()
                .filter(|e| e.device != self.device && self.visible(&e.doc))
                .map(|e| Entry {
                    doc: e.doc,
                    form: Form::Change,
                    data: ByteBuf::from(e.data),
                })
                .collect();
            self.queue_live(out);
        }
    }

    fn hello(
        &mut self,
        storage: &dyn RelayStorage,
        hello: Message,
        now: Millis,
    ) -> SResult<Handled> {
        let Message::Hello {
            protocol,
            token,
            device,
            cursor,
            acked,
        } = hello
        else {
            return Ok(Handled::default());
        };
        if protocol != wire::PROTOCOL_VERSION {
            self.close_with(
                code::UNSUPPORTED_PROTOCOL,
                format!(
                    "protocol {protocol} is not supported; this relay speaks {}",
                    wire::PROTOCOL_VERSION
                ),
            );
            return Ok(Handled::default());
        }
        if device.len() != 32 || !device.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.close_with(code::MALFORMED, "the device id must be 32 hex digits");
            return Ok(Handled::default());
        }
        let auth = storage.authenticate(&token, &device, now)?;
        self.login_refused = !matches!(auth, Auth::Granted(_));
        let grant = match auth {
            Auth::Granted(g) => g,
            _ if self.login_limited => {
                self.close_with(
                    code::RATE_LIMITED,
                    "too many failed logins from this address; try again in a minute",
                );
                return Ok(Handled::default());
            }
            Auth::Unknown => {
                self.close_with(
                    code::UNAUTHORIZED,
                    "unknown token: enroll this device again",
                );
                return Ok(Handled::default());
            }
            Auth::Revoked => {
                self.close_with(code::REVOKED, "this device's token was revoked");
                return Ok(Handled::default());
            }
            Auth::DeviceTaken => {
                self.close_with(
                    code::UNAUTHORIZED,
                    "this device id is enrolled with another token",
                );
                return Ok(Handled::default());
            }
        };
        self.epoch = storage.epoch()?;
        let Head {
            seq: head,
            vis: vis_upto,
            ..
        } = storage.head()?;
        // A position is trustworthy when this relay's log still holds, at
        // that seq, the entry the device saw there.
        let holds = |p: &Option<Cursor>| -> SResult<bool> {
            Ok(match p {
                None => true,
                Some(c) => {
                    c.epoch == self.epoch
                        && c.seq <= head
                        && (c.seq == 0
                            || storage
                                .hash_at(c.seq)?
                                .is_some_and(|h| h.as_slice() == c.hash.as_slice()))
                }
            })
        };
        let trusted = holds(&cursor)? && holds(&acked)?;
        self.device = device;
        self.transmit.push_back(wire::encode(&Message::Welcome {
            protocol: wire::PROTOCOL_VERSION,
            epoch: self.epoch.clone(),
            head,
            cursor_trusted: trusted,
            role: grant.role.clone(),
        }));
        // The visibility position first (with the head), the scope after: a
        // document that joins the scope in between is then both in the
        // scope and in the visibility rows after the catch-up, and is sent
        // (twice at worst).
        if grant.is_scoped() {
            self.scope = Some(storage.scope_docs(&grant.token_id)?.into_iter().collect());
        }
        self.grant = Some(grant);
        if trusted {
            let (base, vis) = cursor.as_ref().map_or((0, 0), |c| (c.seq, c.vis));
            // Trusted: the hash is the log's at `base` (zeros at 0).
            let hash = cursor
                .as_ref()
                .and_then(|c| <[u8; 32]>::try_from(c.hash.as_slice()).ok())
                .filter(|_| base > 0)
                .unwrap_or([0; 32]);
            self.start_catch_up(storage, (base, hash), head, vis, vis_upto)?;
        } else {
            self.phase = Phase::Fallback;
        }
        Ok(Handled::default())
    }

    /// Whether the device may see `doc`: private ledgers are for
    /// coordinators; a scoped token sees its scope.
    fn visible(&self, doc: &str) -> bool {
        may_see(self.grant.as_ref(), self.scope.as_ref(), doc)
    }

    /// Why the device may not write `doc` at all, if it may not, given
    /// what the relay knows of it. For a scoped device, a document outside
    /// its view gets the same answer whether it exists, was erased, or was
    /// never seen: a volunteer learns nothing of ids it cannot see.
    fn write_refusal(&self, doc: &str, known: DocState) -> Option<String> {
        let Some(grant) = &self.grant else {
            return Some("not authenticated".into());
        };
        if grant.is_coordinator() {
            return known.erased.then(|| "this record was erased".into());
        }
        if !grant.is_scoped() {
            return Some(format!("a {} token cannot change records", grant.role));
        }
        let kind = DocKind::of_id(doc);
        if kind == Some(DocKind::ContactPrivate) {
            return Some("private ledgers are for coordinators only".into());
        }
        if known.erased {
            return Some(OUTSIDE_SCOPE.into());
        }
        if self.visible(doc) {
            return None;
        }
        // A document new to the relay may be created: a walk-in, a
        // feedback case. Events are planned by coordinators.
        let creatable = matches!(kind, Some(DocKind::Contact | DocKind::Feedback));
        if creatable && !known.exists {
            return None;
        }
        Some(OUTSIDE_SCOPE.into())
    }

    /// Decides which of the changes a device sent for one document the
    /// relay takes, sending `rejected` for the others. The rules, the same
    /// for `push` and for the fallback's `doc_sync`:
    ///
    /// 1. the device may write the document ([`RelaySession::write_refusal`]);
    /// 2. each change is the device's own work: made under its own actor,
    ///    or the shared genesis of a private ledger — in the fallback a
    ///    coordinator's device may also hand back other authors' changes
    ///    (that is how a relay restored from a backup gets back what it
    ///    lost), a volunteer's or an observer's may not;
    /// 3. a scoped device's changes must apply to the relay's document as
    ///    it stands (a change waiting for a dependency could name anyone
    ///    once it applies, unchecked), keep its `id`, and name only records
    ///    the device can see or creates in this message
    ///    ([`integrity::references`]): it cannot sign up, merge into or link
    ///    a contact outside its view, and so cannot pull one into it. One
    ///    change breaking this refuses the document's whole group: a
    ///    conforming device never sends one, and checking change by change
    ///    would let one message cost the relay its size times the document's;
    /// 4. a document new to the relay must be a readable record of the kind
    ///    its id says ([`integrity::check_readable`]; from a coordinator's
    ///    device, its kind and id, [`integrity::check_header`]), so that no
    ///    device receives a record it cannot read.
    ///
    /// For a scoped device and a document outside its view, every refusal
    /// is the same ([`OUTSIDE_SCOPE`], code 21), whatever the reason: the
    /// device learns nothing of whether the document exists.
    fn vet(
        &mut self,
        storage: &dyn RelayStorage,
        doc_id: &str,
        known: DocState,
        changes: Vec<Change>,
        via: Via<'_>,
    ) -> SResult<Vec<NewChange>> {
        let Via { creating, fallback } = via;
        let coordinator = self.grant.as_ref().is_some_and(Grant::is_coordinator);
        let scoped = self.grant.as_ref().is_some_and(Grant::is_scoped);
        let hidden = scoped && !self.visible(doc_id);
        let refuse = |this: &mut Self, list: &[Change], code: u16, why: &str| {
            for c in list {
                if hidden {
                    this.reject(doc_id, &c.hash().0, code::FORBIDDEN, OUTSIDE_SCOPE.into());
                } else {
                    this.reject(doc_id, &c.hash().0, code, why.to_owned());
                }
            }
        };
        if let Some(why) = self.write_refusal(doc_id, known) {
            refuse(self, &changes, code::FORBIDDEN, &why);
            return Ok(Vec::new());
        }
        let genesis_actor = (DocKind::of_id(doc_id) == Some(DocKind::ContactPrivate))
            .then(|| doc_id.get(2..).unwrap_or_default().to_owned());
        let (mut ok, mut foreign) = (Vec::with_capacity(changes.len()), Vec::new());
        for c in changes {
            let actor = c.actor_id().to_hex_string();
            let own = actor == self.device || genesis_actor.as_deref() == Some(actor.as_str());
            if own || (fallback && coordinator) {
                ok.push(c);
            } else {
                foreign.push(c);
            }
        }
        if !foreign.is_empty() {
            let why = if fallback {
                "a device may hand back only changes it made itself; only a coordinator's device may return other authors' changes"
            } else {
                "a device may push only changes it made itself"
            };
            if scoped {
                // Its own changes may build on the refused ones: all go.
                foreign.append(&mut ok);
            }
            refuse(self, &foreign, code::FORBIDDEN, why);
        }
        let links_matter = scoped
            && matches!(
                DocKind::of_id(doc_id),
                Some(DocKind::Contact | DocKind::Event | DocKind::Feedback)
            );
        if ok.is_empty() || (known.exists && !links_matter) {
            return Ok(new_changes(doc_id, ok));
        }
        // The relay's document as it stands now (tolerating changes in its
        // log that wait for dependencies).
        let mut doc = if known.exists {
            storage.load_doc(doc_id)?.unwrap_or_default()
        } else {
            AutoCommit::new()
        };
        let before = links_matter.then(|| integrity::references(doc_id, &doc));
        if doc.apply_changes(ok.iter().cloned()).is_err() {
            refuse(
                self,
                &ok,
                code::BAD_CHANGE,
                "the change does not apply to the document",
            );
            return Ok(Vec::new());
        }
        if let Some(before) = before {
            let waiting = ok
                .iter()
                .any(|c| doc.get_change_by_hash(&c.hash()).is_none());
            if waiting {
                refuse(
                    self,
                    &ok,
                    code::BAD_CHANGE,
                    "a change depends on changes the relay does not have; sync the document whole",
                );
                return Ok(Vec::new());
            }
            if known.exists && integrity::id_of(&doc).as_deref() != Some(doc_id) {
                refuse(self, &ok, code::BAD_CHANGE, "a record's id cannot change");
                return Ok(Vec::new());
            }
            let unseen = integrity::references(doc_id, &doc)
                .difference(&before)
                .find(|r| !self.visible(r) && !creating.contains(*r))
                .cloned();
            if let Some(other) = unseen {
                refuse(
                    self,
                    &ok,
                    code::FORBIDDEN,
                    &format!(
                        "this change names {other}, which this device cannot see: a volunteer may sign up, merge or link only contacts it can see"
                    ),
                );
                return Ok(Vec::new());
            }
        }
        // Whole records from devices the relay does not fully trust; the
        // kind and id from coordinators' (their apps write through the
        // typed store, an office import sends thousands at once, and every
        // device skips a record it cannot read in any case).
        let check = if scoped {
            integrity::check_readable
        } else {
            integrity::check_header
        };
        if !known.exists
            && let Err(e) = check(doc_id, &doc)
        {
            refuse(
                self,
                &ok,
                code::BAD_CHANGE,
                &format!("a new record must be readable: {e}"),
            );
            return Ok(Vec::new());
        }
        Ok(new_changes(doc_id, ok))
    }

    /// A scoped device's new documents join its view as soon as the relay
    /// has them (so that its next changes may name them).
    fn note_created(&mut self, accepted: &[NewChange]) {
        if let Some(scope) = &mut self.scope {
            for c in accepted {
                if scope.insert(c.doc.clone()) {
                    self.created.insert(c.doc.clone());
                }
            }
        }
    }

    /// The entries that tell the device about visibility changes, in
    /// order (none for a document it may not see or the relay no longer
    /// has); keeps the session's scope current. The snapshots are read in
    /// one call.
    fn vis_entries(
        &mut self,
        storage: &dyn RelayStorage,
        changes: Vec<VisChange>,
    ) -> SResult<Vec<Entry>> {
        let mut entries = Vec::with_capacity(changes.len());
        for v in changes {
            if let Some(scope) = &mut self.scope {
                if v.forget {
                    scope.remove(&v.doc);
                } else {
                    scope.insert(v.doc.clone());
                }
            }
            if v.forget {
                entries.push(Entry {
                    doc: v.doc,
                    form: Form::Forget,
                    data: ByteBuf::new(),
                });
            } else if self.visible(&v.doc) {
                entries.push(Entry {
                    doc: v.doc,
                    form: Form::Snapshot,
                    data: ByteBuf::new(),
                });
            }
        }
        fill_snapshots(storage, &mut entries)?;
        entries.retain(|e| e.form == Form::Forget || !e.data.is_empty());
        Ok(entries)
    }

    /// Starts catching the device up from `base` (its cursor, whose
    /// chained hash is `base_hash`) to `upto`, and in the visibility log
    /// from `vis_base` to `vis_upto`. Until the log pass moves it, every
    /// batch carries the device's own cursor, hash included: a connection
    /// lost before then must leave the device a cursor the relay still
    /// trusts.
    fn start_catch_up(
        &mut self,
        storage: &dyn RelayStorage,
        (base, base_hash): (u64, [u8; 32]),
        upto: u64,
        vis_base: u64,
        vis_upto: u64,
    ) -> SResult<()> {
        self.cursor = (base, base_hash);
        self.vis = vis_base;
        let mut whole = VecDeque::new();
        let mut next_after = base;
        let grant = self.grant.clone();
        if let (Some(scope), 0) = (&self.scope, base) {
            // A scoped device's first sync: its scope, whole, and nothing of
            // the log — it costs what the device may see, not how big the
            // organisation is.
            let mut docs: Vec<&String> = scope.iter().collect();
            docs.sort();
            whole.extend(docs.into_iter().map(|d| VisChange {
                doc: d.clone(),
                forget: false,
            }));
            next_after = upto;
        } else if let Some(grant) = &grant
            && vis_upto > vis_base
        {
            whole.extend(storage.vis_after(&grant.token_id, vis_base, vis_upto)?);
        }
        self.phase = Phase::CatchingUp {
            next_after,
            upto,
            base,
            sent_whole: HashSet::new(),
            whole,
            vis_upto,
        };
        Ok(())
    }

    fn next_batch(&mut self, storage: &dyn RelayStorage) -> SResult<()> {
        if self.next_whole_batch(storage)? {
            return Ok(());
        }
        let (grant, scope) = (self.grant.as_ref(), self.scope.as_ref());
        let Phase::CatchingUp {
            next_after,
            upto,
            base,
            sent_whole,
            vis_upto,
            ..
        } = &mut self.phase
        else {
            return Ok(());
        };
        self.vis = *vis_upto;
        let log =
            storage.entries_after(*next_after, *upto, wire::BATCH_ENTRIES, self.batch_bytes)?;
        let Some(last) = log.last() else {
            // Done. The cursor is the catch-up's end (its hash read once).
            let hash = if *upto == 0 {
                [0; 32]
            } else {
                storage.hash_at(*upto)?.unwrap_or([0; 32])
            };
            self.cursor = (*upto, hash);
            let cursor = self.wire_cursor();
            self.transmit
                .push_back(wire::encode(&Message::CaughtUp { cursor }));
            self.phase = Phase::Live;
            // Entries appended during catch-up are sent right away.
            return self.handle_log_advanced(storage);
        };
        let (mut last_seq, mut last_hash) = (last.seq, last.chain);
        let mut entries = Vec::with_capacity(log.len());
        // Snapshots can be much larger than the log entries they replace:
        // the batch ends once its bytes reach the target, wherever that is.
        // Entries go in groups, each group's snapshots read in one call,
        // each group as large as the bytes left allow at the sizes seen.
        let mut bytes = 0;
        let mut sizes = SizeGuess::default();
        let mut log = log.into_iter().peekable();
        while bytes < self.batch_bytes && log.peek().is_some() {
            let mut group = Vec::new();
            for e in log.by_ref().take(sizes.room(self.batch_bytes - bytes)) {
                (last_seq, last_hash) = (e.seq, e.chain);
                if sent_whole.contains(&e.doc)
                    || (e.device == self.device && *base > 0)
                    || !may_see(grant, scope, &e.doc)
                {
                    continue;
                }
                if *base == 0 && e.first_seq != e.seq {
                    // A first sync sends each document whole at its first
                    // entry; its later entries are in that snapshot. (Read
                    // from the log, not kept in a set: a thousand fresh
                    // devices would each hold one as large as the organisation.)
                    continue;
                }
                if e.first_seq > *base {
                    // New to the device: whole.
                    if *base > 0 {
                        sent_whole.insert(e.doc.clone());
                    }
                    group.push(Entry {
                        doc: e.doc,
                        form: Form::Snapshot,
                        data: ByteBuf::new(),
                    });
                } else {
                    group.push(Entry {
                        doc: e.doc,
                        form: Form::Change,
                        data: ByteBuf::from(e.data),
                    });
                }
            }
            fill_snapshots(storage, &mut group)?;
            for e in group {
                sizes.saw(e.data.len());
                bytes += e.data.len();
                entries.push(e);
            }
        }
        *next_after = last_seq;
        self.sent_entries += entries.len() as u64;
        let remaining = upto.saturating_sub(last_seq);
        self.cursor = (last_seq, last_hash);
        let cursor = self.wire_cursor();
        self.transmit.push_back(wire::encode(&Message::Batch {
            entries,
            cursor,
            remaining,
        }));
        Ok(())
    }

    /// Sends the next batch of documents the catch-up sends whole or tells
    /// the device to forget, if any are left. Returns whether it did.
    fn next_whole_batch(&mut self, storage: &dyn RelayStorage) -> SResult<bool> {
        let (mut todo, log_left) = match &mut self.phase {
            Phase::CatchingUp {
                whole,
                upto,
                next_after,
                ..
            } if !whole.is_empty() => (std::mem::take(whole), upto.saturating_sub(*next_after)),
            _ => return Ok(false),
        };
        let mut entries = Vec::new();
        let mut size = 0;
        let mut sizes = SizeGuess::default();
        while size < self.batch_bytes && entries.len() < wire::BATCH_ENTRIES && !todo.is_empty() {
            let room = sizes
                .room(self.batch_bytes - size)
                .min(wire::BATCH_ENTRIES - entries.len());
            let group: Vec<VisChange> = todo.drain(..room.min(todo.len())).collect();
            if let Phase::CatchingUp { sent_whole, .. } = &mut self.phase {
                sent_whole.extend(group.iter().map(|v| v.doc.clone()));
            }
            for e in self.vis_entries(storage, group)? {
                sizes.saw(e.data.len());
                size += e.data.len();
                entries.push(e);
            }
        }
        let left = todo.len() as u64;
        if let Phase::CatchingUp { whole, .. } = &mut self.phase {
            *whole = todo;
        }
        self.sent_entries += entries.len() as u64;
        // The log position does not move until the log pass.
        let cursor = self.wire_cursor();
        self.transmit.push_back(wire::encode(&Message::Batch {
            entries,
            cursor,
            remaining: log_left + left,
        }));
        Ok(true)
    }

    fn push(
        &mut self,
        storage: &dyn RelayStorage,
        changes: Vec<wire::PushChange>,
        now: Millis,
    ) -> SResult<Handled> {
        if changes.len() > wire::MAX_PUSH_CHANGES {
            self.close_with(
                code::TOO_LARGE,
                format!("a push holds at most {} changes", wire::MAX_PUSH_CHANGES),
            );
            return Ok(Handled::default());
        }
        let total: usize = changes.iter().map(|c| c.data.len()).sum();
        if total > wire::MAX_PUSH_BYTES {
            self.close_with(
                code::TOO_LARGE,
                format!("a push holds at most {} bytes", wire::MAX_PUSH_BYTES),
            );
            return Ok(Handled::default());
        }
        // Grouped by document, in the order documents first appear; each
        // document's changes keep the order they came in.
        let mut groups: Vec<(String, Vec<Change>)> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for c in changes {
            let change = match check_change(&c.doc, &c.data) {
                Ok(change) => change,
                Err((hash, why)) => {
                    self.reject(&c.doc, &hash, code::BAD_CHANGE, why);
                    continue;
                }
            };
            match group_of.get(&c.doc) {
                Some(&i) => groups[i].1.push(change),
                None => {
                    group_of.insert(c.doc.clone(), groups.len());
                    groups.push((c.doc, vec![change]));
                }
            }
        }
        // What the relay knows of every document the push touches: one read.
        let docs: Vec<&str> = groups.iter().map(|(d, _)| d.as_str()).collect();
        let known = storage.doc_states(&docs)?;
        // Creations first: the rest of the push may then name the walk-ins
        // the relay took (and only those).
        let mut created = HashSet::new();
        let mut accepted = Vec::new();
        let mut rest = Vec::new();
        for ((doc, list), k) in groups.into_iter().zip(known) {
            if k.exists {
                rest.push((doc, list, k));
                continue;
            }
            let via = Via {
                creating: &HashSet::new(),
                fallback: false,
            };
            let taken = self.vet(storage, &doc, k, list, via)?;
            if !taken.is_empty() {
                created.insert(doc);
            }
            accepted.extend(taken);
        }
        for (doc, list, k) in rest {
            let via = Via {
                creating: &created,
                fallback: false,
            };
            accepted.extend(self.vet(storage, &doc, k, list, via)?);
        }
        self.note_created(&accepted);
        if accepted.is_empty() {
            return Ok(Handled::default());
        }
        let appended = storage.append(&self.author(), &accepted, now)?;
        let (last, hash) = appended.last.unwrap_or((0, [0; 32]));
        let upto = Cursor {
            seq: last,
            hash: ByteBuf::from(hash.to_vec()),
            epoch: self.epoch.clone(),
            vis: self.vis,
        };
        self.transmit.push_back(wire::encode(&Message::Ack {
            hashes: accepted
                .iter()
                .map(|c| ByteBuf::from(c.hash.to_vec()))
                .collect(),
            upto,
        }));
        Ok(Handled {
            appended: appended.new,
            visibility_changed: false,
        })
    }

    fn doc_sync(
        &mut self,
        storage: &dyn RelayStorage,
        doc_id: String,
        message: &[u8],
        now: Millis,
    ) -> SResult<Handled> {
        if DocKind::of_id(&doc_id).is_none() {
            self.close_with(code::MALFORMED, format!("{doc_id:?} is not a document id"));
            return Ok(Handled::default());
        }
        let parsed = if message.is_empty() {
            None
        } else {
            match automerge::sync::Message::decode(message) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.close_with(code::MALFORMED, format!("doc_sync for {doc_id}: {e}"));
                    return Ok(Handled::default());
                }
            }
        };
        if self.refused.contains(&doc_id) {
            // Changes of this document were refused: the exchange is over.
            self.reply_doc_sync(doc_id, Vec::new());
            return Ok(Handled::default());
        }
        let known = storage
            .doc_states(&[doc_id.as_str()])?
            .pop()
            .unwrap_or_default();
        // A document outside the device's view is answered as if the relay
        // had nothing of it, whether it exists or not.
        let visible = self.visible(&doc_id);
        let (mut doc, mut held_bytes) = match self.held.remove(&doc_id) {
            Some(held) => (held.doc, held.bytes),
            None if visible && known.exists => (storage.load_doc(&doc_id)?.unwrap_or_default(), 0),
            None => (AutoCommit::new(), 0),
        };
        if !self.fallback.contains_key(&doc_id)
            && self.fallback.len() + self.refused.len() >= wire::MAX_FALLBACK_DOCS
        {
            self.close_with(
                code::TOO_LARGE,
                format!(
                    "the fallback runs at most {} documents' exchanges at once",
                    wire::MAX_FALLBACK_DOCS
                ),
            );
            return Ok(Handled::default());
        }
        let (state, _) = self
            .fallback
            .entry(doc_id.clone())
            .or_insert_with(|| (DocSyncState::new(), 0));
        let mut appended = 0;
        if let Some(parsed) = parsed {
            let before = doc.get_heads();
            if let Err(e) = doc.sync().receive_sync_message(state, parsed) {
                self.close_with(code::MALFORMED, format!("doc_sync for {doc_id}: {e}"));
                return Ok(Handled::default());
            }
            let mut incoming = Vec::new();
            for c in doc.get_changes(&before) {
                let c = c.clone();
                if c.raw_bytes().len() > wire::MAX_CHANGE_BYTES {
                    self.reject(
                        &doc_id,
                        &c.hash().0,
                        code::BAD_CHANGE,
                        format!("a change may hold at most {} bytes", wire::MAX_CHANGE_BYTES),
                    );
                    self.refused.insert(doc_id.clone());
                    continue;
                }
                incoming.push(c);
            }
            let count = incoming.len();
            let accepted = if incoming.is_empty() {
                Vec::new()
            } else {
                let via = Via {
                    creating: &HashSet::new(),
                    fallback: true,
                };
                self.vet(storage, &doc_id, known, incoming, via)?
            };
            if accepted.len() < count {
                self.refused.insert(doc_id.clone());
            }
            if !accepted.is_empty() {
                appended = storage.append(&self.author(), &accepted, now)?.new;
                self.note_created(&accepted);
            }
            if self.refused.contains(&doc_id) {
                // The relay's copy now differs from what the exchange
                // assumed; end it here (the device stops on an empty reply).
                self.end_exchange(&doc_id);
                self.reply_doc_sync(doc_id, Vec::new());
                return Ok(Handled {
                    appended,
                    visibility_changed: false,
                });
            }
            held_bytes += message.len();
        }
        let Some((state, size)) = self.fallback.get_mut(&doc_id) else {
            return Ok(Handled::default());
        };
        let reply = doc.sync().generate_sync_message(state).map(|m| m.encode());
        self.fallback_bytes = self.fallback_bytes - *size + message.len();
        *size = message.len();
        if self.fallback_bytes > wire::MAX_FALLBACK_STATE_BYTES {
            self.close_with(
                code::TOO_LARGE,
                format!(
                    "the fallback holds at most {} MiB of sync state; send fewer documents at once",
                    wire::MAX_FALLBACK_STATE_BYTES >> 20
                ),
            );
            return Ok(Handled {
                appended,
                visibility_changed: false,
            });
        }
        if !doc.get_missing_deps(&[]).is_empty() {
            // Waiting for changes it depends on: held, within bounds.
            let total: usize = self.held.values().map(|h| h.bytes).sum::<usize>() + held_bytes;
            if self.held.len() >= wire::MAX_HELD_DOCS || total > wire::MAX_HELD_BYTES {
                self.close_with(
                    code::TOO_LARGE,
                    format!(
                        "the fallback holds at most {} documents and {} MiB of changes waiting for the changes they depend on; send those first",
                        wire::MAX_HELD_DOCS,
                        wire::MAX_HELD_BYTES >> 20
                    ),
                );
                return Ok(Handled {
                    appended,
                    visibility_changed: false,
                });
            }
            self.held.insert(
                doc_id.clone(),
                Held {
                    doc,
                    bytes: held_bytes,
                },
            );
        } else if reply.is_none() {
            // This document's exchange is complete.
            self.end_exchange(&doc_id);
        }
        self.reply_doc_sync(doc_id, reply.unwrap_or_default());
        Ok(Handled {
            appended,
            visibility_changed: false,
        })
    }

    /// Drops a document's fallback exchange state.
    fn end_exchange(&mut self, doc: &str) {
        if let Some((_, size)) = self.fallback.remove(doc) {
            self.fallback_bytes -= size;
        }
    }

    fn reply_doc_sync(&mut self, doc: String, message: Vec<u8>) {
        self.transmit.push_back(wire::encode(&Message::DocSync {
            doc,
            message: ByteBuf::from(message),
        }));
    }

    /// Queues a `live` message with `entries` (if any) and the cursor.
    fn queue_live(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        self.sent_entries += entries.len() as u64;
        let cursor = self.wire_cursor();
        self.transmit
            .push_back(wire::encode(&Message::Live { entries, cursor }));
    }

    /// Re-reads the device's token after tokens changed: a revoked token
    /// ends the session at once; an edited scope is followed (what entered
    /// it is sent, what left it is forgotten, via the visibility log).
    pub fn handle_tokens_changed(&mut self, storage: &dyn RelayStorage) -> SResult<()> {
        let Some(token_id) = self.grant.as_ref().map(|g| g.token_id.clone()) else {
            return Ok(());
        };
        if self.is_closed() {
            return Ok(());
        }
        match storage.grant(&token_id)? {
            Auth::Granted(g) => {
                if let Some(old) = &mut self.grant {
                    old.label = g.label;
                }
            }
            Auth::Revoked | Auth::Unknown | Auth::DeviceTaken => {
                self.close_with(code::REVOKED, "this device's token was revoked");
                return Ok(());
            }
        }
        self.handle_log_advanced(storage)
    }

    fn author(&self) -> Author {
        Author {
            device: self.device.clone(),
            token_id: self
                .grant
                .as_ref()
                .map(|g| g.token_id.clone())
                .unwrap_or_default(),
            scoped: self.grant.as_ref().is_some_and(Grant::is_scoped),
        }
    }

    fn reject(&mut self, doc: &str, hash: &[u8; 32], code: u16, message: String) {
        self.transmit.push_back(wire::encode(&Message::Rejected {
            doc: doc.to_owned(),
            hash: ByteBuf::from(hash.to_vec()),
            code,
            message,
        }));
    }

    /// A coordinator asks to erase a contact (right to be forgotten).
    fn erase(&mut self, storage: &dyn RelayStorage, doc: String, now: Millis) -> SResult<Handled> {
        if self.grant.is_none() {
            self.close_with(code::UNEXPECTED, "erase before hello");
            return Ok(Handled::default());
        }
        if !self.grant.as_ref().is_some_and(Grant::is_coordinator) {
            self.reject(
                &doc,
                &[0; 32],
                code::FORBIDDEN,
                "only a coordinator may erase a contact".into(),
            );
            return Ok(Handled::default());
        }
        if DocKind::of_id(&doc) != Some(DocKind::Contact) {
            self.reject(
                &doc,
                &[0; 32],
                code::BAD_CHANGE,
                format!("{doc:?} is not a contact id"),
            );
            return Ok(Handled::default());
        }
        storage.erase(&doc, &self.author(), now)?;
        self.transmit
            .push_back(wire::encode(&Message::Erased { doc }));
        Ok(Handled {
            appended: 0,
            visibility_changed: true,
        })
    }

    fn wire_cursor(&self) -> Cursor {
        Cursor {
            seq: self.cursor.0,
            hash: ByteBuf::from(self.cursor.1.to_vec()),
            epoch: self.epoch.clone(),
            vis: self.vis,
        }
    }
}

/// Reads, in one call, the snapshots of the entries marked
/// [`Form::Snapshot`] (their data empty until then).
fn fill_snapshots(storage: &dyn RelayStorage, entries: &mut [Entry]) -> SResult<()> {
    let docs: Vec<&str> = entries
        .iter()
        .filter(|e| e.form == Form::Snapshot)
        .map(|e| e.doc.as_str())
        .collect();
    if docs.is_empty() {
        return Ok(());
    }
    let mut snapshots = storage.snapshots(&docs)?.into_iter();
    for e in entries.iter_mut().filter(|e| e.form == Form::Snapshot) {
        e.data = ByteBuf::from(snapshots.next().unwrap_or_default());
    }
    Ok(())
}

/// How many entries the next group of a batch takes: as many as the bytes
/// left hold at the average size seen so far (a few hundred bytes assumed
/// before any), between 1 and 256, so that a batch overshoots its target
/// by about one group at most.
#[derive(Debug, Default)]
struct SizeGuess {
    bytes: usize,
    count: usize,
}

impl SizeGuess {
    fn saw(&mut self, size: usize) {
        self.bytes += size;
        self.count += 1;
    }

    fn room(&self, bytes_left: usize) -> usize {
        let average = self
            .bytes
            .checked_div(self.count)
            .map_or(512, |a| a.max(64));
        (bytes_left / average).clamp(1, 256)
    }
}

/// Whether a device with `grant` (and, if scoped, `scope`) may see `doc`:
/// private ledgers are for coordinators; a scoped token sees its scope.
fn may_see(grant: Option<&Grant>, scope: Option<&HashSet<String>>, doc: &str) -> bool {
    let Some(grant) = grant else {
        return false;
    };
    if DocKind::of_id(doc) == Some(DocKind::ContactPrivate) && !grant.is_coordinator() {
        return false;
    }
    scope.is_none_or(|s| s.contains(doc))
}

/// Checks one pushed change: a well-formed document id, within the size
/// limit, decodable. Returns the change, or its hash (zeros if
/// undecodable) and the reason for refusing it.
fn check_change(doc: &str, data: &[u8]) -> std::result::Result<Change, ([u8; 32], String)> {
    // A compressed change chunk (type 2 after the magic bytes and the
    // checksum) would be inflated without a bound before any size check;
    // devices push changes uncompressed.
    if data.get(8) == Some(&2) {
        return Err((
            [0; 32],
            "compressed changes are not accepted; push changes uncompressed".into(),
        ));
    }
    // Decoded first, so that every refusal of a real change names its hash
    // and the device can stop waiting for it.
    let change = match Change::from_bytes(data.to_vec()) {
        Ok(change) => change,
        Err(e) => return Err(([0; 32], format!("not an Automerge change: {e}"))),
    };
    let hash = change.hash().0;
    if DocKind::of_id(doc).is_none() {
        return Err((hash, format!("{doc:?} is not a document id")));
    }
    if data.len() > wire::MAX_CHANGE_BYTES {
        return Err((
            hash,
            format!("a change may hold at most {} bytes", wire::MAX_CHANGE_BYTES),
        ));
    }
    Ok(change)
}

/// The refusal a scoped device gets for any document outside its view,
/// whatever the relay knows of it.
const OUTSIDE_SCOPE: &str = "outside this device's scope (a volunteer changes what it can see and may create new contacts and feedback cases, each a readable record)";

/// How changes reached [`RelaySession::vet`].
#[derive(Clone, Copy)]
struct Via<'a> {
    /// Documents the same message creates (walk-ins it may also sign up).
    creating: &'a HashSet<String>,
    /// Through the fallback's `doc_sync` rather than `push`.
    fallback: bool,
}

/// The changes of `doc` the relay takes, as storage appends them.
fn new_changes(doc: &str, changes: Vec<Change>) -> Vec<NewChange> {
    changes
        .into_iter()
        .map(|c| NewChange {
            doc: doc.to_owned(),
            hash: c.hash().0,
            data: c.raw_bytes().to_vec(),
        })
        .collect()
}

/// A fallback document holding changes whose dependencies have not come.
#[derive(Debug)]
struct Held {
    doc: AutoCommit,
    /// Bytes of the `doc_sync` messages that went into it.
    bytes: usize,
}

fn message_name(m: &Message) -> &'static str {
    match m {
        Message::Hello { .. } => "hello",
        Message::Push { .. } => "push",
        Message::DocSync { .. } => "doc_sync",
        Message::ResyncDone => "resync_done",
        Message::Erase { .. } => "erase",
        Message::Erased { .. } => "erased",
        Message::Welcome { .. } => "welcome",
        Message::Batch { .. } => "batch",
        Message::CaughtUp { .. } => "caught_up",
        Message::Live { .. } => "live",
        Message::Ack { .. } => "ack",
        Message::Rejected { .. } => "rejected",
        Message::Error { .. } => "error",
    }
}

#[cfg(test)]
mod tests {
    //! The session's access rules and timers in process; the whole rules,
    //! message by message over every backend, are in `muster-conformance`.
    use super::*;

    fn grant(role: &str) -> Grant {
        Grant {
            token_id: format!("tok_{role}"),
            role: role.to_owned(),
            label: role.to_owned(),
        }
    }

    const CONTACT: &str = "c_00000000000000000000000000000001";
    const LEDGER: &str = "p_00000000000000000000000000000001";
    const EVENT: &str = "e_00000000000000000000000000000002";
    const UNSEEN: &str = "c_00000000000000000000000000000003";

    fn session(role: &str, scope: &[&str]) -> RelaySession {
        let mut s = RelaySession::new();
        let g = grant(role);
        if g.is_scoped() {
            s.scope = Some(scope.iter().map(|d| d.to_string()).collect());
        }
        s.grant = Some(g);
        s
    }

    const NEW: DocState = DocState {
        exists: false,
        erased: false,
    };
    const EXISTING: DocState = DocState {
        exists: true,
        erased: false,
    };
    const ERASED: DocState = DocState {
        exists: false,
        erased: true,
    };

    #[test]
    fn who_may_see_what() {
        let scope: HashSet<String> = [CONTACT.to_owned()].into();
        assert!(!may_see(None, None, CONTACT), "nobody before hello");
        let observer = grant(ROLE_OBSERVER);
        assert!(may_see(Some(&observer), None, CONTACT));
        assert!(
            !may_see(Some(&observer), None, LEDGER),
            "ledgers: coordinators'"
        );
        let coordinator = grant(ROLE_COORDINATOR);
        assert!(may_see(Some(&coordinator), None, LEDGER));
        let volunteer = grant(ROLE_VOLUNTEER);
        assert!(may_see(Some(&volunteer), Some(&scope), CONTACT));
        assert!(!may_see(Some(&volunteer), Some(&scope), UNSEEN));
        assert!(!may_see(Some(&volunteer), Some(&scope), LEDGER));
    }

    #[test]
    fn who_may_write_what() {
        assert_eq!(
            RelaySession::new()
                .write_refusal(CONTACT, EXISTING)
                .as_deref(),
            Some("not authenticated")
        );
        let office = session(ROLE_COORDINATOR, &[]);
        assert_eq!(office.write_refusal(LEDGER, EXISTING), None);
        assert_eq!(office.write_refusal(UNSEEN, NEW), None);
        assert_eq!(
            office.write_refusal(CONTACT, ERASED).as_deref(),
            Some("this record was erased")
        );
        let screen = session(ROLE_OBSERVER, &[]);
        assert!(
            screen
                .write_refusal(CONTACT, EXISTING)
                .is_some_and(|w| w.contains("cannot change records"))
        );
        let desk = session(ROLE_VOLUNTEER, &[CONTACT, EVENT]);
        assert_eq!(desk.write_refusal(CONTACT, EXISTING), None, "in view");
        assert_eq!(desk.write_refusal(EVENT, EXISTING), None);
        assert_eq!(desk.write_refusal(UNSEEN, NEW), None, "a walk-in");
        assert!(
            desk.write_refusal(LEDGER, EXISTING)
                .is_some_and(|w| w.contains("coordinators only"))
        );
        // Outside the view, the same answer whatever the relay knows.
        for known in [EXISTING, ERASED] {
            assert_eq!(
                desk.write_refusal(UNSEEN, known).as_deref(),
                Some(OUTSIDE_SCOPE)
            );
        }
        assert_eq!(
            desk.write_refusal(CONTACT, ERASED).as_deref(),
            Some(OUTSIDE_SCOPE)
        );
        assert_eq!(
            desk.write_refusal("e_00000000000000000000000000000009", NEW)
                .as_deref(),
            Some(OUTSIDE_SCOPE),
            "events are planned by coordinators"
        );
    }

    #[test]
    fn pushed_changes_are_checked_before_anything_else() {
        let mut doc = AutoCommit::new();
        automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "id", CONTACT)
            .unwrap();
        doc.commit();
        let change = doc.get_last_local_change().unwrap().clone();
        let bytes = change.raw_bytes().to_vec();
        let hash = change.hash().0;
        assert_eq!(check_change(CONTACT, &bytes).unwrap().hash().0, hash);
        let (h, why) = check_change("x_1", &bytes).unwrap_err();
        assert_eq!(h, hash, "a decodable change is named by its hash");
        assert!(why.contains("not a document id"), "{why}");
        let (h, why) = check_change(CONTACT, b"not a change").unwrap_err();
        assert_eq!(h, [0; 32]);
        assert!(why.contains("not an Automerge change"), "{why}");
        let mut compressed = bytes.clone();
        compressed[8] = 2;
        let (_, why) = check_change(CONTACT, &compressed).unwrap_err();
        assert!(why.contains("compressed"), "{why}");
    }

    #[test]
    fn a_device_that_never_says_hello_is_closed_in_time() {
        let mut s = RelaySession::new();
        assert_eq!(s.poll_timeout(), None, "no timers until started");
        s.start(1_000);
        assert_eq!(s.poll_timeout(), Some(1_000 + timers::HELLO_TIMEOUT));
        s.handle_timeout(1_000 + timers::HELLO_TIMEOUT - 1);
        assert!(!s.is_closed());
        s.handle_timeout(1_000 + timers::HELLO_TIMEOUT);
        assert!(s.is_closed() && !s.went_silent());
        let sent = wire::decode(&s.transmit.pop_front().unwrap()).unwrap();
        assert!(matches!(
            sent,
            Message::Error {
                code: code::HANDSHAKE_TIMEOUT,
                ..
            }
        ));
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn a_quiet_device_is_pinged_and_a_silent_one_dropped() {
        let mut s = session(ROLE_COORDINATOR, &[]);
        s.start(0);
        assert_eq!(s.poll_timeout(), Some(timers::PING_EVERY), "no hello timer");
        s.handle_timeout(timers::PING_EVERY);
        assert!(s.poll_ping());
        assert!(!s.poll_ping(), "one ping");
        // The pong comes back: quiet again until the next ping.
        s.handle_heard(timers::PING_EVERY + 5);
        assert_eq!(s.poll_timeout(), Some(2 * timers::PING_EVERY + 5));
        // Nothing heard since: pinged again, then dropped.
        s.handle_timeout(2 * timers::PING_EVERY + 5);
        assert!(s.poll_ping());
        s.handle_timeout(timers::PING_EVERY + 5 + timers::SILENCE_LIMIT);
        assert!(s.is_closed() && s.went_silent());
        assert!(s.transmit.is_empty(), "nothing to say to a silent device");
    }
}
