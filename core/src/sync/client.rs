//! The device's side of a sync session, without I/O.
//!
//! A [`ClientSession`] lives for one connection. The driver (the tokio
//! client, a test harness, the mobile runtime) feeds it every frame that
//! arrives with [`ClientSession::handle_frame`], tells it when local changes
//! were made with [`ClientSession::push_pending`], and after each call
//! drains [`ClientSession::poll_transmit`] (frames to send, in order) and
//! [`ClientSession::poll_event`] (what to tell the user). The session reads
//! and writes the device's [`Store`] directly — it is local and durable — but
//! owns no socket, timer or thread, and never reads the clock: `now` is an
//! argument.
//!
//! A session ends when the connection does; the next one starts from the
//! cursor the store kept. Nothing is lost at any point: entries and the
//! cursor are applied in one transaction, and pending changes stay pending
//! until the relay's `ack`, so a dropped connection only means some work is
//! done again, which is harmless because changes are idempotent.

use std::collections::{HashMap, HashSet, VecDeque};

use automerge::ChangeHash;
use automerge::sync::State as DocSyncState;
use serde_bytes::ByteBuf;

use super::wire::{self, Message, PushChange};
use crate::error::{Error, Result};
use crate::model::Millis;
use crate::store::Store;

/// What a session tells the app, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// The relay accepted the device.
    Welcomed {
        /// The device's role.
        role: String,
        /// Whether the relay could use the device's cursor; if not, the
        /// fallback (per-document sync) runs first.
        cursor_trusted: bool,
    },
    /// Catch-up progress: `done` of `total` log entries covered.
    Pulling {
        /// Entries covered so far.
        done: u64,
        /// Entries to cover in this catch-up.
        total: u64,
    },
    /// Records that changed on this device because of the relay.
    Changed {
        /// Their document ids.
        docs: Vec<String>,
    },
    /// Local changes were sent and await acknowledgement.
    Pushing {
        /// Changes sent in this message.
        changes: usize,
    },
    /// The relay confirmed it holds local changes.
    Acknowledged {
        /// How many.
        changes: usize,
    },
    /// The relay refused a local change for good.
    Rejected {
        /// Its document.
        doc: String,
        /// Why.
        reason: String,
    },
    /// An entry from the relay could not be used and was skipped.
    Skipped {
        /// Its document.
        doc: String,
        /// Why.
        reason: String,
    },
    /// The device holds everything the relay had when the session began.
    CaughtUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitWelcome,
    Fallback,
    CatchingUp,
    Live,
    Closed,
}

/// The device's side of one sync connection. See the module documentation.
#[derive(Debug)]
pub struct ClientSession {
    phase: Phase,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<SyncEvent>,
    /// Highest local `seq` sent in this session.
    last_pushed_seq: i64,
    /// Hashes of each unacknowledged push message.
    in_flight: VecDeque<HashSet<ChangeHash>>,
    fallback: HashMap<String, DocSyncState>,
    total: u64,
    start_seq: u64,
    /// Whether this session ran the fallback.
    resynced: bool,
    /// The latest ack position received in this session.
    session_ack: Option<wire::Cursor>,
    /// Erasures sent and not yet answered.
    erasing: HashSet<String>,
}

impl ClientSession {
    /// Starts a session: queues `hello` with the store's cursor.
    pub fn new(store: &Store, token: &str) -> Result<ClientSession> {
        let cursor = store.sync_cursor()?;
        let start_seq = cursor.as_ref().map_or(0, |c| c.seq);
        let hello = Message::Hello {
            protocol: wire::PROTOCOL_VERSION,
            token: token.to_owned(),
            device: store.device_id().to_owned(),
            cursor,
            acked: store.ack_position()?,
        };
        Ok(ClientSession {
            phase: Phase::AwaitWelcome,
            transmit: VecDeque::from([wire::encode(&hello)]),
            events: VecDeque::new(),
            last_pushed_seq: 0,
            in_flight: VecDeque::new(),
            fallback: HashMap::new(),
            total: 0,
            start_seq,
            resynced: false,
            session_ack: None,
            erasing: HashSet::new(),
        })
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event for the app, if any.
    pub fn poll_event(&mut self) -> Option<SyncEvent> {
        self.events.pop_front()
    }

    /// Whether the device has caught up with the relay in this session.
    pub fn is_caught_up(&self) -> bool {
        self.phase == Phase::Live
    }

    /// Whether pushed changes await acknowledgement.
    pub fn awaiting_acks(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// What the session waits for the relay to send, if anything: its
    /// `welcome`, the rest of the fallback or of the catch-up, the
    /// acknowledgement of pushed changes, the confirmation of an erasure. A
    /// driver gives the relay a limited time to answer (only protocol
    /// messages count, not pongs); `None` means the session is live and idle,
    /// and may stay silent as long as the connection is alive.
    pub fn awaiting_reply(&self) -> Option<&'static str> {
        match self.phase {
            Phase::AwaitWelcome => Some("its welcome"),
            Phase::Fallback => Some("the resync"),
            Phase::CatchingUp => Some("the rest of the catch-up"),
            Phase::Live if !self.in_flight.is_empty() => {
                Some("the acknowledgement of pushed changes")
            }
            Phase::Live if !self.erasing.is_empty() => Some("the confirmation of an erasure"),
            Phase::Live | Phase::Closed => None,
        }
    }

    /// Caught up, nothing in flight, nothing left to push: a one-shot sync
    /// may end here.
    pub fn is_settled(&self, store: &Store) -> Result<bool> {
        Ok(self.phase == Phase::Live
            && self.in_flight.is_empty()
            && self.erasing.is_empty()
            && store.pending_after(self.last_pushed_seq, 1)?.is_empty())
    }

    /// Queues `push` messages for local changes not yet sent in this
    /// session, up to the window of unacknowledged pushes. Call it after
    /// local writes; the session calls it itself after each `ack`.
    pub fn push_pending(&mut self, store: &Store) -> Result<()> {
        if !matches!(
            self.phase,
            Phase::Fallback | Phase::CatchingUp | Phase::Live
        ) {
            return Ok(());
        }
        while self.in_flight.len() < wire::PUSH_WINDOW {
            let pending = store.pending_after(self.last_pushed_seq, wire::MAX_PUSH_CHANGES)?;
            if pending.is_empty() {
                break;
            }
            let mut changes = Vec::new();
            let mut hashes = HashSet::new();
            let mut bytes = 0;
            for p in pending {
                if !changes.is_empty() && bytes + p.data.len() > wire::MAX_PUSH_BYTES {
                    break;
                }
                bytes += p.data.len();
                self.last_pushed_seq = p.seq;
                hashes.insert(p.hash);
                changes.push(PushChange {
                    doc: p.doc_id,
                    data: ByteBuf::from(p.data),
                });
            }
            self.events.push_back(SyncEvent::Pushing {
                changes: changes.len(),
            });
            self.transmit
                .push_back(wire::encode(&Message::Push { changes }));
            self.in_flight.push_back(hashes);
        }
        Ok(())
    }

    /// Handles one frame from the relay. An error means the session is
    /// over: close the connection (and reconnect later, unless the error is
    /// [`Error::Relay`] with a code that says not to).
    pub fn handle_frame(&mut self, store: &mut Store, frame: &[u8], now: Millis) -> Result<()> {
        if self.phase == Phase::Closed {
            return Err(Error::Protocol("the session is closed".into()));
        }
        let message = wire::decode(frame).map_err(|e| self.fail(e.to_string()))?;
        match message {
            Message::Welcome {
                protocol,
                head,
                cursor_trusted,
                role,
                ..
            } => {
                self.expect(Phase::AwaitWelcome, "welcome")?;
                if protocol != wire::PROTOCOL_VERSION {
                    return Err(self.fail(format!("relay speaks protocol {protocol}")));
                }
                self.events.push_back(SyncEvent::Welcomed {
                    role,
                    cursor_trusted,
                });
                // Erasures made here go first: nothing else depends on them.
                for doc in store.pending_erasures()? {
                    self.transmit
                        .push_back(wire::encode(&Message::Erase { doc: doc.clone() }));
                    self.erasing.insert(doc);
                }
                if cursor_trusted {
                    self.phase = Phase::CatchingUp;
                    self.total = head.saturating_sub(self.start_seq);
                } else {
                    self.phase = Phase::Fallback;
                    self.resynced = true;
                    self.total = head;
                    self.start_fallback(store)?;
                }
                self.push_pending(store)?;
            }
            Message::DocSync { doc, message } => {
                self.expect(Phase::Fallback, "doc_sync")?;
                let Some(state) = self.fallback.get_mut(&doc) else {
                    return Err(self.fail(format!(
                        "doc_sync for {doc}, which this device did not ask for"
                    )));
                };
                if !message.is_empty() {
                    store.receive_doc_sync(&doc, state, &message)?;
                }
                match store.doc_sync_message(&doc, state)? {
                    Some(next) => self.transmit.push_back(wire::encode(&Message::DocSync {
                        doc,
                        message: ByteBuf::from(next),
                    })),
                    None => {
                        self.fallback.remove(&doc);
                    }
                }
                if self.fallback.is_empty() {
                    self.finish_fallback();
                }
            }
            Message::Batch {
                entries,
                cursor,
                remaining,
            } => {
                self.expect(Phase::CatchingUp, "batch")?;
                let outcome = store.apply_entries(&entries, &cursor)?;
                self.report(outcome);
                self.events.push_back(SyncEvent::Pulling {
                    done: self.total.saturating_sub(remaining),
                    total: self.total,
                });
            }
            Message::CaughtUp { cursor } => {
                self.expect(Phase::CatchingUp, "caught_up")?;
                store.apply_entries(&[], &cursor)?;
                if self.resynced {
                    // The old ack position pointed into the log as it was
                    // before the relay's restore; only this session's counts.
                    store.replace_ack_position(self.session_ack.as_ref())?;
                }
                self.phase = Phase::Live;
                self.events.push_back(SyncEvent::CaughtUp);
            }
            Message::Live { entries, cursor } => {
                self.expect(Phase::Live, "live")?;
                let outcome = store.apply_entries(&entries, &cursor)?;
                self.report(outcome);
            }
            Message::Ack { hashes, upto } => {
                if self.phase == Phase::AwaitWelcome {
                    return Err(self.fail("ack before welcome".into()));
                }
                let mut acked = Vec::with_capacity(hashes.len());
                for h in &hashes {
                    let hash = ChangeHash::try_from(h.as_slice())
                        .map_err(|_| self.fail("ack with a hash that is not 32 bytes".into()))?;
                    acked.push(hash);
                }
                let count = store.acknowledge(&acked, now)?;
                store.set_ack_position(&upto)?;
                self.session_ack = Some(upto);
                for set in &mut self.in_flight {
                    for h in &acked {
                        set.remove(h);
                    }
                }
                self.in_flight.retain(|set| !set.is_empty());
                self.events
                    .push_back(SyncEvent::Acknowledged { changes: count });
                self.push_pending(store)?;
            }
            Message::Rejected {
                doc,
                hash,
                code,
                message,
            } => {
                let reason = format!("{message} (code {code})");
                if self.erasing.remove(&doc) {
                    // An erasure this device may not ask for: drop the request.
                    store.erasure_confirmed(&doc)?;
                    self.events.push_back(SyncEvent::Rejected { doc, reason });
                    return Ok(());
                }
                let hash = ChangeHash::try_from(hash.as_slice())
                    .map_err(|_| self.fail("rejected with a hash that is not 32 bytes".into()))?;
                store.mark_rejected(&hash, &reason)?;
                for set in &mut self.in_flight {
                    set.remove(&hash);
                }
                self.in_flight.retain(|set| !set.is_empty());
                self.events.push_back(SyncEvent::Rejected { doc, reason });
                self.push_pending(store)?;
            }
            Message::Erased { doc } => {
                self.erasing.remove(&doc);
                store.erasure_confirmed(&doc)?;
            }
            Message::Error { code, message } => {
                self.phase = Phase::Closed;
                return Err(Error::Relay { code, message });
            }
            Message::Hello { .. }
            | Message::Push { .. }
            | Message::ResyncDone
            | Message::Erase { .. } => {
                return Err(self.fail("the relay sent a client message".into()));
            }
        }
        Ok(())
    }

    fn start_fallback(&mut self, store: &mut Store) -> Result<()> {
        for doc in store.doc_ids()? {
            let mut state = DocSyncState::new();
            if let Some(message) = store.doc_sync_message(&doc, &mut state)? {
                self.transmit.push_back(wire::encode(&Message::DocSync {
                    doc: doc.clone(),
                    message: ByteBuf::from(message),
                }));
                self.fallback.insert(doc, state);
            }
        }
        if self.fallback.is_empty() {
            self.finish_fallback();
        }
        Ok(())
    }

    fn finish_fallback(&mut self) {
        self.transmit.push_back(wire::encode(&Message::ResyncDone));
        self.phase = Phase::CatchingUp;
    }

    fn report(&mut self, outcome: crate::store::BatchOutcome) {
        for (doc, reason) in outcome.refused {
            self.events.push_back(SyncEvent::Skipped { doc, reason });
        }
        if !outcome.changed_docs.is_empty() {
            self.events.push_back(SyncEvent::Changed {
                docs: outcome.changed_docs,
            });
        }
    }

    fn expect(&mut self, phase: Phase, what: &str) -> Result<()> {
        if self.phase == phase {
            Ok(())
        } else {
            Err(self.fail(format!("unexpected {what} while {:?}", self.phase)))
        }
    }

    fn fail(&mut self, why: String) -> Error {
        self.phase = Phase::Closed;
        Error::Protocol(why)
    }
}
