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
//!
//! The session is in four files: this one (the session, `hello`, frames in
//! and out, erasure, timers), `access.rs` (what a device may see and write:
//! `vet` and `push`), `catch_up.rs` (what a device is sent: catch-up
//! batches and live entries) and `fallback.rs` (per-document sync when the
//! cursor cannot be trusted).

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
use fallback::Held;

mod access;
mod catch_up;
mod fallback;
#[cfg(test)]
mod tests;

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
                self.start_catch_up(storage, (0, [0; 32]), head.seq, None, head.vis)?;
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
            let (base, vis) = cursor.as_ref().map_or((0, None), |c| (c.seq, Some(c.vis)));
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
