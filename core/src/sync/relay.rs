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

use super::wire::{self, Cursor, Entry, Form, Message, code};
use crate::error::Result;
use crate::model::{DocKind, Millis};

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

/// The answer to a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A valid token.
    Granted(Grant),
    /// A token the relay never issued.
    Unknown,
    /// A token that was revoked.
    Revoked,
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

/// The relay's durable state, as a session needs it. Implementations must
/// make [`RelayStorage::append`] durable before it returns: the session
/// acknowledges what it returns.
pub trait RelayStorage {
    /// The random id this relay's data was created with.
    fn epoch(&self) -> Result<String>;
    /// Checks a token presented by `device` and records that it was seen.
    fn authenticate(&self, token: &str, device: &str, now: Millis) -> Result<Auth>;
    /// The last entry's `seq` and chained log hash (`0` and zeros for an
    /// empty log).
    fn head(&self) -> Result<(u64, [u8; 32])>;
    /// The chained log hash at `seq` ([`LogEntry::chain`]), if there is an
    /// entry there.
    fn hash_at(&self, seq: u64) -> Result<Option<[u8; 32]>>;
    /// Entries with `after < seq <= upto`, in order, at most `max_entries`
    /// and about `max_bytes` (at least one entry if any).
    fn entries_after(
        &self,
        after: u64,
        upto: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<LogEntry>>;
    /// The `seq` of a document's first entry.
    fn first_seq(&self, doc: &str) -> Result<Option<u64>>;
    /// Everything the relay has of a document, as bytes Automerge's `load`
    /// accepts (a compacted document, then any later changes).
    fn snapshot(&self, doc: &str) -> Result<Vec<u8>>;
    /// The document as the relay has it (for the per-document fallback).
    fn load_doc(&self, doc: &str) -> Result<Option<AutoCommit>>;
    /// Appends changes pushed by `device`, skipping those already in the
    /// log, durably, each with its [`chain_hash`]. Returns the log position of each change (new or
    /// already there), in order.
    fn append(&self, device: &str, changes: &[NewChange], now: Millis) -> Result<Vec<u64>>;
}

/// What the server must do after [`RelaySession::handle_frame`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handled {
    /// New entries were appended to the log: wake the other sessions.
    pub appended: usize,
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
        /// Documents already sent whole in this catch-up.
        sent_whole: HashSet<String>,
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
    fallback: HashMap<String, DocSyncState>,
    /// Fallback documents holding changes whose dependencies have not
    /// arrived yet. Automerge keeps such changes outside the document, so
    /// they cannot be logged (or reloaded) until they apply; the device will
    /// not send them twice, so they wait here.
    held: HashMap<String, AutoCommit>,
    /// Entries queued for the device since last asked (for metrics).
    sent_entries: u64,
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
            held: HashMap::new(),
            sent_entries: 0,
        }
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

    /// Whether the session is over (send what is queued, then close).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the device has been caught up and now gets live entries.
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live)
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
        self.phase = Phase::Closed;
    }

    /// The next frame to send. When nothing is queued during catch-up, this
    /// reads the next batch from storage.
    pub fn poll_transmit(&mut self, storage: &dyn RelayStorage) -> Result<Option<Vec<u8>>> {
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
    ) -> Result<Handled> {
        if self.is_closed() {
            return Ok(Handled::default());
        }
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
                let (head, _) = storage.head()?;
                self.fallback.clear();
                self.held.clear();
                self.start_catch_up(0, head);
                Ok(Handled::default())
            }
            (_, other) => {
                self.close_with(
                    code::UNEXPECTED,
                    format!("unexpected {} now", message_name(&other)),
                );
                Ok(Handled::default())
            }
        }
    }

    /// The log grew: once live, queue the new entries of other devices.
    pub fn handle_log_advanced(&mut self, storage: &dyn RelayStorage) -> Result<()> {
        if !self.is_live() {
            return Ok(());
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
                .filter(|e| e.device != self.device)
                .map(|e| Entry {
                    doc: e.doc,
                    form: Form::Change,
                    data: ByteBuf::from(e.data),
                })
                .collect();
            if !out.is_empty() {
                self.sent_entries += out.len() as u64;
                let cursor = self.wire_cursor();
                self.transmit.push_back(wire::encode(&Message::Live {
                    entries: out,
                    cursor,
                }));
            }
        }
    }

    fn hello(
        &mut self,
        storage: &dyn RelayStorage,
        hello: Message,
        now: Millis,
    ) -> Result<Handled> {
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
        let grant = match storage.authenticate(&token, &device, now)? {
            Auth::Granted(g) => g,
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
        };
        self.epoch = storage.epoch()?;
        let (head, _) = storage.head()?;
        // A position is trustworthy when this relay's log still holds, at
        // that seq, the entry the device saw there.
        let holds = |p: &Option<Cursor>| -> Result<bool> {
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
        self.grant = Some(grant);
        if trusted {
            let base = cursor.map_or(0, |c| c.seq);
            self.start_catch_up(base, head);
        } else {
            self.phase = Phase::Fallback;
        }
        Ok(Handled::default())
    }

    fn start_catch_up(&mut self, base: u64, upto: u64) {
        self.cursor = (base, [0; 32]);
        self.phase = Phase::CatchingUp {
            next_after: base,
            upto,
            base,
            sent_whole: HashSet::new(),
        };
    }

    fn next_batch(&mut self, storage: &dyn RelayStorage) -> Result<()> {
        let Phase::CatchingUp {
            next_after,
            upto,
            base,
            sent_whole,
        } = &mut self.phase
        else {
            return Ok(());
        };
        let log =
            storage.entries_after(*next_after, *upto, wire::BATCH_ENTRIES, wire::BATCH_BYTES)?;
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
        let mut bytes = 0;
        for e in log {
            if bytes >= wire::BATCH_BYTES {
                break;
            }
            (last_seq, last_hash) = (e.seq, e.chain);
            if sent_whole.contains(&e.doc) || (e.device == self.device && *base > 0) {
                continue;
            }
            let new_to_device = *base == 0 || storage.first_seq(&e.doc)?.is_some_and(|f| f > *base);
            let entry = if new_to_device {
                let data = storage.snapshot(&e.doc)?;
                sent_whole.insert(e.doc.clone());
                Entry {
                    doc: e.doc,
                    form: Form::Snapshot,
                    data: ByteBuf::from(data),
                }
            } else {
                Entry {
                    doc: e.doc,
                    form: Form::Change,
                    data: ByteBuf::from(e.data),
                }
            };
            bytes += entry.data.len();
            entries.push(entry);
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

    fn push(
        &mut self,
        storage: &dyn RelayStorage,
        changes: Vec<wire::PushChange>,
        now: Millis,
    ) -> Result<Handled> {
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
        let mut accepted = Vec::with_capacity(changes.len());
        for c in changes {
            match check_change(&c.doc, &c.data) {
                Ok(hash) => accepted.push(NewChange {
                    doc: c.doc,
                    hash,
                    data: c.data.into_vec(),
                }),
                Err((hash, why)) => self.transmit.push_back(wire::encode(&Message::Rejected {
                    doc: c.doc,
                    hash: ByteBuf::from(hash.to_vec()),
                    code: code::BAD_CHANGE,
                    message: why,
                })),
            }
        }
        if accepted.is_empty() {
            return Ok(Handled::default());
        }
        let (head_before, _) = storage.head()?;
        let positions = storage.append(&self.device, &accepted, now)?;
        let (head_after, _) = storage.head()?;
        let last = positions.iter().copied().max().unwrap_or(0);
        let upto = Cursor {
            seq: last,
            hash: ByteBuf::from(storage.hash_at(last)?.unwrap_or([0; 32]).to_vec()),
            epoch: self.epoch.clone(),
        };
        self.transmit.push_back(wire::encode(&Message::Ack {
            hashes: accepted
                .iter()
                .map(|c| ByteBuf::from(c.hash.to_vec()))
                .collect(),
            upto,
        }));
        Ok(Handled {
            appended: head_after.saturating_sub(head_before) as usize,
        })
    }

    fn doc_sync(
        &mut self,
        storage: &dyn RelayStorage,
        doc_id: String,
        message: &[u8],
        now: Millis,
    ) -> Result<Handled> {
        if DocKind::of_id(&doc_id).is_none() {
            self.close_with(code::MALFORMED, format!("{doc_id:?} is not a document id"));
            return Ok(Handled::default());
        }
        let mut doc = match self.held.remove(&doc_id) {
            Some(doc) => doc,
            None => storage.load_doc(&doc_id)?.unwrap_or_default(),
        };
        let state = self.fallback.entry(doc_id.clone()).or_default();
        let before = doc.get_heads();
        let mut appended = 0;
        if !message.is_empty() {
            let parsed = match automerge::sync::Message::decode(message) {
                Ok(m) => m,
                Err(e) => {
                    self.close_with(code::MALFORMED, format!("doc_sync for {doc_id}: {e}"));
                    return Ok(Handled::default());
                }
            };
            if let Err(e) = doc.sync().receive_sync_message(state, parsed) {
                self.close_with(code::MALFORMED, format!("doc_sync for {doc_id}: {e}"));
                return Ok(Handled::default());
            }
            let new: Vec<NewChange> = doc
                .get_changes(&before)
                .into_iter()
                .map(|c| NewChange {
                    doc: doc_id.clone(),
                    hash: c.hash().0,
                    data: c.raw_bytes().to_vec(),
                })
                .collect();
            if !new.is_empty() {
                let (before, _) = storage.head()?;
                storage.append(&self.device, &new, now)?;
                appended = storage.head()?.0.saturating_sub(before) as usize;
            }
        }
        let reply = doc.sync().generate_sync_message(state).map(|m| m.encode());
        if !doc.get_missing_deps(&[]).is_empty() {
            self.held.insert(doc_id.clone(), doc);
        }
        self.transmit.push_back(wire::encode(&Message::DocSync {
            doc: doc_id,
            message: ByteBuf::from(reply.unwrap_or_default()),
        }));
        Ok(Handled { appended })
    }

    fn wire_cursor(&self) -> Cursor {
        Cursor {
            seq: self.cursor.0,
            hash: ByteBuf::from(self.cursor.1.to_vec()),
            epoch: self.epoch.clone(),
        }
    }
}

/// Checks one pushed change: a well-formed document id, within the size
/// limit, decodable. Returns its hash, or the hash (zeros if unknown) and
/// the reason for refusing it.
fn check_change(doc: &str, data: &[u8]) -> std::result::Result<[u8; 32], ([u8; 32], String)> {
    // Decoded first, so that every refusal of a real change names its hash
    // and the device can stop waiting for it.
    let hash = match Change::from_bytes(data.to_vec()) {
        Ok(change) => change.hash().0,
        Err(e) => return Err(([0; 32], format!("not an Automerge change: {e}"))),
    };
    if DocKind::of_id(doc).is_none() {
        return Err((hash, format!("{doc:?} is not a document id")));
    }
    if data.len() > wire::MAX_CHANGE_BYTES {
        return Err((
            hash,
            format!("a change may hold at most {} bytes", wire::MAX_CHANGE_BYTES),
        ));
    }
    Ok(hash)
}

fn message_name(m: &Message) -> &'static str {
    match m {
        Message::Hello { .. } => "hello",
        Message::Push { .. } => "push",
        Message::DocSync { .. } => "doc_sync",
        Message::ResyncDone => "resync_done",
        Message::Welcome { .. } => "welcome",
        Message::Batch { .. } => "batch",
        Message::CaughtUp { .. } => "caught_up",
        Message::Live { .. } => "live",
        Message::Ack { .. } => "ack",
        Message::Rejected { .. } => "rejected",
        Message::Error { .. } => "error",
    }
}
