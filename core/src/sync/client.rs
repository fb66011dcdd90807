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

use super::timers::{self, ClientTimers};
use super::wire::{self, Message, PushChange};
use crate::error::{Error, Result};
use crate::model::Millis;
use crate::store::{Arrival, ArrivalForm, LogPosition, Store};

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
    /// The relay's time to answer, and the idle ping.
    timers: ClientTimers,
}

impl ClientSession {
    /// Starts a session: queues `hello` with the store's cursor.
    pub fn new(store: &Store, token: &str) -> Result<ClientSession> {
        let cursor = store.sync_cursor()?.map(wire::Cursor::from);
        let start_seq = cursor.as_ref().map_or(0, |c| c.seq);
        let hello = Message::Hello {
            protocol: wire::PROTOCOL_VERSION,
            token: token.to_owned(),
            device: store.device_id().to_owned(),
            cursor,
            acked: store.ack_position()?.map(wire::Cursor::from),
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
            timers: ClientTimers::default(),
        })
    }

    /// Gives the relay `reply` milliseconds to answer (default
    /// [`timers::REPLY_TIMEOUT`]); see [`ClientTimers`].
    pub fn set_reply_timeout(&mut self, reply: Millis) {
        self.timers.reply = reply.max(1);
    }

    /// Starts the session's timers at `now` (the connection opened; the
    /// timers' clock, see [`super::timers`]). Without it no timer runs.
    pub fn start(&mut self, now: Millis) {
        let awaiting = self.awaiting_reply().is_some();
        let t = &mut self.timers;
        t.started = true;
        t.last_heard = now;
        t.last_progress = now;
        t.was_awaiting = awaiting;
    }

    /// A frame arrived at `now`: a protocol `message` (then also give it to
    /// [`ClientSession::handle_frame`]), or only a sign of life (a pong, a
    /// ping).
    pub fn handle_heard(&mut self, now: Millis, message: bool) {
        let t = &mut self.timers;
        t.last_heard = t.last_heard.max(now);
        t.pinged = false;
        if message {
            t.last_progress = t.last_progress.max(now);
        }
    }

    /// When the session next needs [`ClientSession::handle_timeout`]: the
    /// end of the relay's time to answer, or the idle ping.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let t = &self.timers;
        if !t.started || self.phase == Phase::Closed {
            return None;
        }
        let answer = if t.was_awaiting {
            t.last_progress + t.reply
        } else {
            t.last_heard + t.reply
        };
        Some(if t.pinged {
            answer
        } else {
            answer.min(t.last_heard + t.ping_after())
        })
    }

    /// Runs the timers due at `now`. Call it after every step (it also
    /// notes when a wait for the relay begins: a push from idle). An error
    /// means the relay did not answer in time ([`timers::is_timeout`]): the
    /// session is over.
    pub fn handle_timeout(&mut self, now: Millis) -> Result<()> {
        if !self.timers.started || self.phase == Phase::Closed {
            return Ok(());
        }
        let awaiting = self.awaiting_reply();
        let t = &mut self.timers;
        if awaiting.is_some() && !t.was_awaiting {
            // The relay's time to answer starts now.
            t.last_progress = now;
        }
        t.was_awaiting = awaiting.is_some();
        let since = if awaiting.is_some() {
            t.last_progress
        } else {
            t.last_heard
        };
        if now >= since + t.reply {
            let waited = timers::seconds(t.reply);
            self.phase = Phase::Closed;
            return Err(Error::Network(match awaiting {
                Some(what) => format!(
                    "{}the relay in {waited} s (waiting for {what}); try again later, or check the relay",
                    timers::NO_ANSWER
                ),
                None => format!("{}the relay in {waited} s", timers::NO_ANSWER),
            }));
        }
        if !t.pinged && now >= t.last_heard + t.ping_after() {
            t.pinged = true;
            t.ping_due = true;
        }
        Ok(())
    }

    /// Whether a keep-alive ping is due (the driver sends a transport
    /// ping; the pong comes back through [`ClientSession::handle_heard`]).
    pub fn poll_ping(&mut self) -> bool {
        std::mem::take(&mut self.timers.ping_due)
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
                let outcome =
                    store.apply_entries(&arrivals(entries), &LogPosition::from(&cursor))?;
                self.report(outcome);
                self.events.push_back(SyncEvent::Pulling {
                    done: self.total.saturating_sub(remaining),
                    total: self.total,
                });
            }
            Message::CaughtUp { cursor } => {
                self.expect(Phase::CatchingUp, "caught_up")?;
                store.apply_entries(&[], &LogPosition::from(&cursor))?;
                if self.resynced {
                    // The old ack position pointed into the log as it was
                    // before the relay's restore; only this session's counts.
                    store.replace_ack_position(
                        self.session_ack.as_ref().map(LogPosition::from).as_ref(),
                    )?;
                }
                self.phase = Phase::Live;
                self.events.push_back(SyncEvent::CaughtUp);
            }
            Message::Live { entries, cursor } => {
                self.expect(Phase::Live, "live")?;
                let outcome =
                    store.apply_entries(&arrivals(entries), &LogPosition::from(&cursor))?;
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
                store.set_ack_position(&LogPosition::from(&upto))?;
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

/// Entries of a `batch` or `live` message as the store takes them.
fn arrivals(entries: Vec<wire::Entry>) -> Vec<Arrival> {
    entries
        .into_iter()
        .map(|e| Arrival {
            doc: e.doc,
            form: match e.form {
                wire::Form::Change => ArrivalForm::Change,
                wire::Form::Snapshot => ArrivalForm::Snapshot,
                wire::Form::Forget => ArrivalForm::Forget,
            },
            data: e.data.into_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::timers::{PING_AFTER, REPLY_TIMEOUT, is_timeout};

    #[test]
    fn the_relay_has_its_time_to_answer_and_pongs_do_not_count() {
        let store = Store::open_in_memory().unwrap();
        let mut s = ClientSession::new(&store, "mst_x").unwrap();
        assert_eq!(s.poll_timeout(), None, "no timers until started");
        s.start(0);
        assert_eq!(s.poll_timeout(), Some(PING_AFTER));
        s.handle_timeout(PING_AFTER).unwrap();
        assert!(s.poll_ping(), "silence: ping");
        // Pongs prove the connection alive, not that the relay answers.
        s.handle_heard(PING_AFTER + 10, false);
        assert_eq!(
            s.poll_timeout(),
            Some(REPLY_TIMEOUT.min(2 * PING_AFTER + 10))
        );
        s.handle_timeout(REPLY_TIMEOUT - 1).unwrap();
        let e = s.handle_timeout(REPLY_TIMEOUT).unwrap_err();
        assert!(is_timeout(&e), "{e}");
        assert!(e.to_string().contains("its welcome"), "{e}");
        assert_eq!(s.poll_timeout(), None, "over");
    }

    #[test]
    fn a_shorter_reply_timeout_pings_sooner() {
        let store = Store::open_in_memory().unwrap();
        let mut s = ClientSession::new(&store, "mst_x").unwrap();
        s.set_reply_timeout(3_000);
        s.start(100);
        assert_eq!(s.poll_timeout(), Some(1_100));
        s.handle_heard(900, true);
        s.handle_timeout(1_900).unwrap();
        assert!(s.poll_ping());
        let e = s.handle_timeout(3_900).unwrap_err();
        assert!(e.to_string().contains("in 3 s"), "{e}");
    }
}
