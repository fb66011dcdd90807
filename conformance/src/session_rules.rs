//! What the relay lets a device do, checked message by message on any
//! backend: a core `RelaySession` driven in this process, no socket.
//! (One file over 800 lines on purpose: every rule shares the harness at
//! its top, and a reader checking one rule finds all of them here.)
//! These are the holes found by probing the running relay (issue 13):
//! a volunteer pulling contacts into its view, ids leaking to a scoped
//! device, the fallback's unbounded memory and bypassed identity rule,
//! unreadable new records, and an existence oracle.
//!
//! Longer than 800 lines on purpose: one test per access rule, all over the
//! one in-process harness at the top; split by rule, each file would carry
//! its own copy of that harness.

use std::collections::BTreeSet;

use automerge::sync::SyncDoc;
use automerge::sync::{ChunkList, MessageVersion};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ReadDoc};
use muster_core::sync::relay::{RelaySession, RelayStorage};

use crate::Backend;
use crate::contract::person;
use muster_core::sync::wire::{self, Cursor, Form, Message, PushChange, code};
use muster_core::{NewEvent, Store};
use serde_bytes::ByteBuf;

const T0: i64 = 1_793_491_200_000;

/// A device's connection, driven frame by frame.
struct Conn {
    session: RelaySession,
    /// Every frame the relay sent, raw.
    frames: Vec<Vec<u8>>,
}

impl Conn {
    /// Sends `hello` (with `cursor`) and takes what the relay answers.
    fn open(relay: &dyn RelayStorage, token: &str, device: &str, cursor: Option<Cursor>) -> Conn {
        let mut conn = Conn {
            session: RelaySession::new(),
            frames: Vec::new(),
        };
        conn.send(
            relay,
            &Message::Hello {
                protocol: wire::PROTOCOL_VERSION,
                token: token.to_owned(),
                device: device.to_owned(),
                cursor,
                acked: None,
            },
        );
        conn
    }

    /// Sends one message; returns what the relay answered (all of it,
    /// catch-up included).
    fn send(&mut self, relay: &dyn RelayStorage, m: &Message) -> Vec<Message> {
        self.session
            .handle_frame(relay, &wire::encode(m), T0)
            .unwrap();
        let mut out = Vec::new();
        while let Some(f) = self.session.poll_transmit(relay).unwrap() {
            out.push(wire::decode(&f).unwrap());
            self.frames.push(f);
        }
        out
    }

    fn push(&mut self, relay: &dyn RelayStorage, changes: &[(String, Vec<u8>)]) -> Vec<Message> {
        self.send(
            relay,
            &Message::Push {
                changes: changes
                    .iter()
                    .map(|(doc, data)| PushChange {
                        doc: doc.clone(),
                        data: ByteBuf::from(data.clone()),
                    })
                    .collect(),
            },
        )
    }

    fn doc_sync(&mut self, relay: &dyn RelayStorage, doc: &str, message: Vec<u8>) -> Vec<Message> {
        self.send(
            relay,
            &Message::DocSync {
                doc: doc.to_owned(),
                message: ByteBuf::from(message),
            },
        )
    }

    /// The documents the device was sent, whole or as changes.
    fn docs_sent(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for f in &self.frames {
            if let Ok(Message::Batch { entries, .. } | Message::Live { entries, .. }) =
                wire::decode(f)
            {
                out.extend(
                    entries
                        .into_iter()
                        .filter(|e| e.form != Form::Forget)
                        .map(|e| e.doc),
                );
            }
        }
        out
    }

    /// Whether `needle` appears anywhere in what the device was sent.
    fn received_bytes(&self, needle: &str) -> bool {
        let n = needle.as_bytes();
        self.frames
            .iter()
            .any(|f| f.windows(n.len()).any(|w| w == n))
    }
}

/// The rejections (code, message) among `replies`.
fn rejections(replies: &[Message]) -> Vec<(u16, String)> {
    replies
        .iter()
        .filter_map(|m| match m {
            Message::Rejected { code, message, .. } => Some((*code, message.clone())),
            _ => None,
        })
        .collect()
}

fn acked(replies: &[Message]) -> usize {
    replies
        .iter()
        .map(|m| match m {
            Message::Ack { hashes, .. } => hashes.len(),
            _ => 0,
        })
        .sum()
}

fn error_code(replies: &[Message]) -> Option<u16> {
    replies.iter().find_map(|m| match m {
        Message::Error { code, .. } => Some(*code),
        _ => None,
    })
}

/// Pushes everything `store` has pending through a coordinator session.
fn push_all(relay: &dyn RelayStorage, conn: &mut Conn, store: &mut Store) {
    let pending: Vec<(String, Vec<u8>)> = store
        .pending_changes(10_000)
        .unwrap()
        .into_iter()
        .map(|p| (p.doc_id, p.data))
        .collect();
    let replies = conn.push(relay, &pending);
    assert_eq!(rejections(&replies), vec![], "the office's changes");
    assert_eq!(acked(&replies), pending.len());
    let hashes: Vec<_> = store
        .pending_changes(10_000)
        .unwrap()
        .into_iter()
        .map(|p| p.hash)
        .collect();
    store.acknowledge(&hashes, T0).unwrap();
}

/// A document rebuilt from every change a store holds of it, written from
/// now on by `actor`.
fn doc_of(store: &mut Store, id: &str, actor: &str) -> AutoCommit {
    let mut doc = AutoCommit::new();
    for c in store.changes_of(id).unwrap() {
        doc.load_incremental(&c).unwrap();
    }
    doc.set_actor(ActorId::from(hex(actor)));
    doc
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The bytes of the change made by `edit` on `doc`.
fn change(doc: &mut AutoCommit, edit: impl FnOnce(&mut AutoCommit)) -> Vec<u8> {
    edit(doc);
    doc.commit();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

fn device_id(n: u8) -> String {
    format!("{n:02x}").repeat(16)
}

/// An office with one event, a volunteer token for it, and contacts:
/// `ana` signed up to it, `xavier` not.
struct Office<B> {
    relay: B,
    store: Store,
    coordinator_token: String,
    event: String,
    ana: String,
    xavier: String,
    volunteer_id: String,
    volunteer: String,
}

fn office<B: Backend>() -> Office<B> {
    let backend = B::fresh();
    let relay = backend.storage();
    let (_, coordinator_token) = relay
        .create_token("coordinator", "office", &[], T0)
        .unwrap();
    let mut store = Store::open_in_memory().unwrap();
    let event = store
        .create_event(&NewEvent::new("Gala", T0, "Hall", None), T0)
        .unwrap();
    let ana = person(&mut store, "Ana Silva");
    let xavier = person(&mut store, "Xavier Out-of-scope");
    store.sign_up(&event, &ana, false, T0).unwrap();
    let mut coordinator = Conn::open(relay, &coordinator_token, store.device_id(), None);
    push_all(relay, &mut coordinator, &mut store);
    let (volunteer_id, volunteer) = relay
        .create_token("volunteer", "desk", std::slice::from_ref(&event), T0)
        .unwrap();
    Office {
        relay: backend,
        store,
        coordinator_token,
        event,
        ana,
        xavier,
        volunteer_id,
        volunteer,
    }
}

/// Puts `value` under `key` in the sign-up map `attr` of an event document.
fn put_signup(doc: &mut AutoCommit, attr: &str, key: &str, value: i64) {
    let signups = doc.get(automerge::ROOT, "signups").unwrap().unwrap().1;
    let map = doc.get(&signups, attr).unwrap().unwrap().1;
    doc.put(&map, key, value).unwrap();
}

fn pending(store: &Store) -> Vec<(String, Vec<u8>)> {
    store
        .pending_changes(10_000)
        .unwrap()
        .into_iter()
        .map(|p| (p.doc_id, p.data))
        .collect()
}

pub fn a_volunteer_cannot_sign_up_a_contact_it_cannot_see<B: Backend>() {
    let mut o = office::<B>();
    let mut desk = Store::open_in_memory().unwrap();
    let desk_id = desk.device_id().to_owned();
    let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, None);
    assert_eq!(
        v.docs_sent(),
        BTreeSet::from([o.event.clone(), o.ana.clone()])
    );

    // The forged sign-up of a contact outside its view is refused...
    let mut event = doc_of(&mut o.store, &o.event, &desk_id);
    let forged = change(&mut event, |d| {
        put_signup(d, "registered_at", &o.xavier, T0)
    });
    let replies = v.push(o.relay.storage(), &[(o.event.clone(), forged)]);
    let refused = rejections(&replies);
    assert_eq!(refused.len(), 1, "{replies:?}");
    assert_eq!(refused[0].0, code::FORBIDDEN);
    assert!(refused[0].1.contains("cannot see"), "{}", refused[0].1);
    assert_eq!(acked(&replies), 0);
    // ...so it enters no volunteer's scope, and no device is sent it.
    assert!(
        !o.relay
            .storage()
            .scope_docs(&o.volunteer_id)
            .unwrap()
            .contains(&o.xavier)
    );
    let (_, second_desk) = o
        .relay
        .storage()
        .create_token("volunteer", "desk 2", std::slice::from_ref(&o.event), T0)
        .unwrap();
    let other = Conn::open(o.relay.storage(), &second_desk, &device_id(2), None);
    assert!(!other.docs_sent().contains(&o.xavier));
    assert!(!other.received_bytes(&o.xavier));

    // A walk-in created in the same push, and a check-in of someone it
    // sees, are fine.
    let walk_in = person(&mut desk, "Wanda Walk-in");
    let mut changes = pending(&desk);
    let mut event = doc_of(&mut o.store, &o.event, &desk_id);
    changes.push((
        o.event.clone(),
        change(&mut event, |d| {
            put_signup(d, "registered_at", &walk_in, T0 + 1);
            put_signup(d, "checked_in_at", &o.ana, T0 + 2);
        }),
    ));
    let replies = v.push(o.relay.storage(), &changes);
    assert_eq!(rejections(&replies), vec![]);
    assert_eq!(acked(&replies), changes.len());
    assert!(
        o.relay
            .storage()
            .scope_docs(&o.volunteer_id)
            .unwrap()
            .contains(&walk_in)
    );
    // The other desk of the event now sees the walk-in, still not Xavier.
    let other = Conn::open(o.relay.storage(), &second_desk, &device_id(3), None);
    assert!(other.docs_sent().contains(&walk_in));
    assert!(!other.received_bytes(&o.xavier));
}

pub fn a_scoped_device_is_never_sent_ids_outside_its_view<B: Backend>() {
    let mut o = office::<B>();
    // The office merges Ana into a contact the desk cannot see, and marks
    // her as not the same person as Xavier.
    let kept = person(&mut o.store, "Ana M. Silva");
    o.store.merge_contacts(&kept, &o.ana, T0 + 5).unwrap();
    o.store
        .mark_not_duplicate(&kept, &o.xavier, T0 + 6)
        .unwrap();
    o.store
        .mark_not_duplicate(&o.ana, &o.xavier, T0 + 7)
        .unwrap();
    let mut coordinator = Conn::open(
        o.relay.storage(),
        &o.coordinator_token,
        o.store.device_id(),
        None,
    );
    push_all(o.relay.storage(), &mut coordinator, &mut o.store);

    let desk = Store::open_in_memory().unwrap();
    let desk_id = desk.device_id().to_owned();
    let v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, None);
    // The kept contact is the same person: it joins the desk's view...
    assert!(v.docs_sent().contains(&kept), "{:?}", v.docs_sent());
    assert!(
        o.relay
            .storage()
            .scope_docs(&o.volunteer_id)
            .unwrap()
            .contains(&kept)
    );
    // ...Xavier does not, and his id is in no frame the desk received.
    assert!(!v.docs_sent().contains(&o.xavier));
    assert!(!v.received_bytes(&o.xavier), "Xavier's id leaked");

    // A volunteer may not merge a contact it sees into one it does not.
    let mut ana = doc_of(&mut o.store, &o.ana, &desk_id);
    let forged = change(&mut ana, |d| {
        d.put(automerge::ROOT, "merged_into", o.xavier.as_str())
            .unwrap()
    });
    let mut v = v;
    let replies = v.push(o.relay.storage(), &[(o.ana.clone(), forged)]);
    assert_eq!(rejections(&replies).len(), 1, "{replies:?}");
    assert!(
        !o.relay
            .storage()
            .scope_docs(&o.volunteer_id)
            .unwrap()
            .contains(&o.xavier)
    );
}

/// A cursor the relay cannot trust: the session falls back (PROTOCOL.md §5).
fn bogus_cursor() -> Option<Cursor> {
    Some(Cursor {
        seq: 999_999,
        hash: ByteBuf::from(vec![7; 32]),
        epoch: "not-this-relay".into(),
        vis: 0,
    })
}

/// An Automerge sync message carrying only `changes`, whatever the relay
/// has: what a hostile client can send.
fn sync_message(changes: Vec<Vec<u8>>) -> Vec<u8> {
    automerge::sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: ChunkList::from(changes),
        flags: None,
        version: MessageVersion::V1,
    }
    .encode()
}

/// Sends `doc_sync` messages (`message(n)`) for the new ids `first`,
/// `first + 1`, … until the relay ends the session, at most `count`;
/// returns how many went before and the error code.
fn doc_syncs_until_closed(
    v: &mut Conn,
    relay: &dyn RelayStorage,
    first: u32,
    count: u32,
    message: impl Fn(u32) -> Vec<u8>,
) -> (u32, u16) {
    for n in 0..count {
        let replies = v.doc_sync(relay, &new_contact_id(first + n), message(n));
        if let Some(code) = error_code(&replies) {
            return (n, code);
        }
    }
    panic!("the relay did not end the session after {count} messages");
}

/// A change to a new document that depends on a change never sent, with
/// `pad` bytes of text: it can only wait.
fn orphan_change(pad: usize) -> Vec<u8> {
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "kind", "contact").unwrap();
    doc.commit();
    let text = "x".repeat(pad);
    doc.put(automerge::ROOT, "name", text.as_str()).unwrap();
    doc.commit();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

fn new_contact_id(n: u32) -> String {
    format!("c_{n:032x}")
}

pub fn the_fallback_holds_a_bounded_number_of_waiting_documents<B: Backend>() {
    let o = office::<B>();
    let mut v = Conn::open(
        o.relay.storage(),
        &o.volunteer,
        &device_id(9),
        bogus_cursor(),
    );
    let (n, code) = doc_syncs_until_closed(
        &mut v,
        o.relay.storage(),
        0,
        wire::MAX_HELD_DOCS as u32 + 10,
        |_| sync_message(vec![orphan_change(10)]),
    );
    assert_eq!(code, code::TOO_LARGE);
    assert_eq!(n as usize, wire::MAX_HELD_DOCS);
    assert!(v.session.is_closed());

    // And in bytes: 1 MiB changes that can only wait, well before 24 × 8 MiB.
    let mut v = Conn::open(
        o.relay.storage(),
        &o.volunteer,
        &device_id(9),
        bogus_cursor(),
    );
    let (n, code) = doc_syncs_until_closed(&mut v, o.relay.storage(), 1000, 24, |_| {
        sync_message(vec![orphan_change(1 << 20)])
    });
    assert_eq!(code, code::TOO_LARGE);
    assert!(
        (n as usize) <= wire::MAX_HELD_BYTES >> 20,
        "closed after {n}"
    );
    // Nothing of it reached the log.
    assert_eq!(o.relay.storage().head().unwrap().seq, 4);
}

pub fn doc_sync_applies_the_rules_of_push<B: Backend>() {
    let mut o = office::<B>();
    let desk = Store::open_in_memory().unwrap();
    let desk_id = desk.device_id().to_owned();
    let head = o.relay.storage().head().unwrap().seq;

    // The coordinator's actor renaming Ana: refused by push...
    let office_id = o.store.device_id().to_owned();
    let mut ana = doc_of(&mut o.store, &o.ana, &office_id);
    let forged = change(&mut ana, |d| {
        d.put(automerge::ROOT, "name", "Forged by a desk").unwrap()
    });
    let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, None);
    let replies = v.push(o.relay.storage(), &[(o.ana.clone(), forged.clone())]);
    assert_eq!(rejections(&replies)[0].0, code::FORBIDDEN);
    // ...and by doc_sync after a bogus cursor, alike.
    let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, bogus_cursor());
    let replies = v.doc_sync(
        o.relay.storage(),
        &o.ana,
        sync_message(vec![forged.clone()]),
    );
    let refused = rejections(&replies);
    assert_eq!(refused.len(), 1, "{replies:?}");
    assert_eq!(refused[0].0, code::FORBIDDEN);
    assert_eq!(
        o.relay.storage().head().unwrap().seq,
        head,
        "nothing was logged"
    );
    // The relay's Ana is unchanged.
    let doc = o.relay.storage().load_doc(&o.ana).unwrap().unwrap();
    assert_eq!(
        doc.get(automerge::ROOT, "name")
            .unwrap()
            .unwrap()
            .0
            .into_string()
            .ok(),
        Some("Ana Silva".to_owned())
    );

    // A desk's own edit through the fallback is taken, as through push
    // (in a new session: the exchange about Ana ended at the refusal).
    let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, bogus_cursor());
    let mut ana = doc_of(&mut o.store, &o.ana, &desk_id);
    let own = change(&mut ana, |d| {
        d.put(automerge::ROOT, "preferred_name", "Aninha").unwrap()
    });
    let replies = v.doc_sync(o.relay.storage(), &o.ana, sync_message(vec![own]));
    assert_eq!(rejections(&replies), vec![]);
    assert_eq!(o.relay.storage().head().unwrap().seq, head + 1);

    // A coordinator's device may hand back other authors' changes: that is
    // how a relay restored from a backup gets back what it lost.
    let mut office2 = Conn::open(
        o.relay.storage(),
        &o.coordinator_token,
        &device_id(7),
        bogus_cursor(),
    );
    let replies = office2.doc_sync(o.relay.storage(), &o.ana, sync_message(vec![forged]));
    assert_eq!(rejections(&replies), vec![]);
    assert_eq!(o.relay.storage().head().unwrap().seq, head + 2);
}

pub fn a_new_record_must_be_readable<B: Backend>() {
    let o = office::<B>();
    let head = o.relay.storage().head().unwrap().seq;
    let desk = Store::open_in_memory().unwrap();
    let desk_id = desk.device_id().to_owned();
    let actor = ActorId::from(hex(&desk_id));
    let broken: Vec<(&str, AutoCommit)> = vec![
        ("an empty root", {
            let mut d = AutoCommit::new().with_actor(actor.clone());
            d.put(automerge::ROOT, "unrelated", 1).unwrap();
            d
        }),
        ("a name that is a number", {
            let mut d = AutoCommit::new().with_actor(actor.clone());
            d.put(automerge::ROOT, "kind", "contact").unwrap();
            d.put(automerge::ROOT, "name", 42).unwrap();
            d
        }),
        ("fields missing", {
            let mut d = AutoCommit::new().with_actor(actor.clone());
            d.put(automerge::ROOT, "kind", "contact").unwrap();
            d.put(automerge::ROOT, "name", "Only a name").unwrap();
            d
        }),
    ];
    let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, None);
    let mut office = Conn::open(o.relay.storage(), &o.coordinator_token, &device_id(5), None);
    for (n, (what, mut doc)) in broken.into_iter().enumerate() {
        doc.commit();
        let data = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        let id = new_contact_id(5000 + n as u32);
        let replies = v.push(o.relay.storage(), &[(id.clone(), data)]);
        assert_eq!(rejections(&replies).len(), 1, "{what}: {replies:?}");
        assert_eq!(acked(&replies), 0, "{what}");
    }
    assert_eq!(
        o.relay.storage().head().unwrap().seq,
        head,
        "nothing was logged"
    );
    let broken = {
        let mut d = AutoCommit::new().with_actor(ActorId::from(hex(&device_id(5))));
        d.put(automerge::ROOT, "kind", "contact").unwrap();
        d.commit();
        d.get_last_local_change().unwrap().raw_bytes().to_vec()
    };
    let replies = office.push(o.relay.storage(), &[(new_contact_id(6000), broken)]);
    let refused = rejections(&replies);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, code::BAD_CHANGE);
    assert!(refused[0].1.contains("readable"), "{}", refused[0].1);
    assert_eq!(o.relay.storage().head().unwrap().seq, head);
}

pub fn a_volunteer_cannot_tell_whether_an_id_exists<B: Backend>() {
    let mut o = office::<B>();
    let desk = Store::open_in_memory().unwrap();
    let desk_id = desk.device_id().to_owned();
    let unknown = new_contact_id(77);
    let existing = o.xavier.clone();

    // The fallback: the same question about each gets the same answer.
    let mut answers = Vec::new();
    for id in [&unknown, &existing] {
        let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, bogus_cursor());
        let mut empty = AutoCommit::new();
        let mut state = automerge::sync::State::new();
        let hello = empty
            .sync()
            .generate_sync_message(&mut state)
            .unwrap()
            .encode();
        answers.push(v.doc_sync(o.relay.storage(), id, hello));
    }
    assert_eq!(answers[0].len(), answers[1].len());
    let strip = |m: &Message| match m {
        Message::DocSync { message, .. } => message.to_vec(),
        other => wire::encode(other),
    };
    assert_eq!(
        answers[0].iter().map(strip).collect::<Vec<_>>(),
        answers[1].iter().map(strip).collect::<Vec<_>>()
    );

    // A change that edits a record (it depends on earlier changes), pushed
    // to each: refused alike, with the same words.
    let mut xavier = doc_of(&mut o.store, &o.xavier, &desk_id);
    let edit = change(&mut xavier, |d| {
        d.put(automerge::ROOT, "name", "X").unwrap()
    });
    let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, None);
    let to_existing = rejections(&v.push(o.relay.storage(), &[(existing.clone(), edit.clone())]));
    let to_unknown = rejections(&v.push(o.relay.storage(), &[(unknown.clone(), edit)]));
    assert_eq!(to_existing.len(), 1);
    assert_eq!(to_existing, to_unknown);

    // The same for a broken new record.
    let mut d = AutoCommit::new().with_actor(ActorId::from(hex(&desk_id)));
    d.put(automerge::ROOT, "kind", "contact").unwrap();
    d.commit();
    let junk = d.get_last_local_change().unwrap().raw_bytes().to_vec();
    let to_existing = rejections(&v.push(o.relay.storage(), &[(existing, junk.clone())]));
    let to_unknown = rejections(&v.push(o.relay.storage(), &[(new_contact_id(78), junk)]));
    assert_eq!(to_existing.len(), 1);
    assert_eq!(to_existing, to_unknown);
}

/// A change waiting for a dependency names nobody until it applies: the
/// relay must not take one from a volunteer and let it apply later,
/// unchecked (the held documents of the fallback were the way round).
pub fn a_waiting_change_cannot_carry_an_unseen_contact_in<B: Backend>() {
    let mut o = office::<B>();
    let desk = Store::open_in_memory().unwrap();
    let desk_id = desk.device_id().to_owned();
    let mut event = doc_of(&mut o.store, &o.event, &desk_id);
    let harmless = change(&mut event, |d| {
        put_signup(d, "checked_in_at", &o.ana, T0 + 1)
    });
    let forged = change(&mut event, |d| {
        put_signup(d, "registered_at", &o.xavier, T0 + 2)
    });
    let head = o.relay.storage().head().unwrap().seq;

    // The fallback: the forged change first, waiting for the harmless one.
    let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, bogus_cursor());
    v.doc_sync(
        o.relay.storage(),
        &o.event,
        sync_message(vec![forged.clone()]),
    );
    // The harmless one pushed, then handed over too.
    let mut p = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, None);
    assert_eq!(
        acked(&p.push(o.relay.storage(), &[(o.event.clone(), harmless.clone())])),
        1
    );
    let replies = v.doc_sync(
        o.relay.storage(),
        &o.event,
        sync_message(vec![harmless.clone()]),
    );
    assert!(!rejections(&replies).is_empty(), "{replies:?}");
    // A push in the other order, the forged change first.
    let replies = p.push(o.relay.storage(), &[(o.event.clone(), forged.clone())]);
    assert_eq!(rejections(&replies).len(), 1, "{replies:?}");
    assert_eq!(
        o.relay.storage().head().unwrap().seq,
        head + 1,
        "only the harmless change"
    );
    assert!(
        !o.relay
            .storage()
            .scope_docs(&o.volunteer_id)
            .unwrap()
            .contains(&o.xavier)
    );
    let doc = o.relay.storage().load_doc(&o.event).unwrap().unwrap();
    assert!(!muster_core::model::integrity::references(&o.event, &doc).contains(&o.xavier));
}

/// Every doc_sync keeps a sync state (the device's heads, needs and bloom
/// filters) until its exchange ends: what a session keeps is bounded in
/// bytes too, not only the documents waiting for dependencies.
pub fn the_fallback_bounds_its_sync_states<B: Backend>() {
    let o = office::<B>();
    let mut v = Conn::open(
        o.relay.storage(),
        &o.volunteer,
        &device_id(9),
        bogus_cursor(),
    );
    // Messages of 1 MiB of made-up heads, each for a new id.
    let heads: Vec<automerge::ChangeHash> = (0..32_000u32)
        .map(|i| {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_be_bytes());
            automerge::ChangeHash(h)
        })
        .collect();
    let message = automerge::sync::Message {
        heads,
        need: Vec::new(),
        have: Vec::new(),
        changes: ChunkList::empty(),
        flags: None,
        version: MessageVersion::V1,
    }
    .encode();
    let (n, code) =
        doc_syncs_until_closed(&mut v, o.relay.storage(), 20_000, 200, |_| message.clone());
    assert_eq!(code, code::TOO_LARGE);
    assert!(
        (n as usize) <= (wire::MAX_FALLBACK_STATE_BYTES / message.len()) + 1,
        "closed after {n}"
    );
}

/// Devices index a record under the id it holds: a new record holding
/// another's id would overwrite that one's rows on every device.
pub fn a_record_must_hold_its_own_id<B: Backend>() {
    let mut o = office::<B>();
    let mut desk = Store::open_in_memory().unwrap();
    let desk_id = desk.device_id().to_owned();
    let walk_in = person(&mut desk, "Impostor");
    let mut doc = doc_of(&mut desk, &walk_in, &desk_id);
    let rename = change(&mut doc, |d| {
        d.put(automerge::ROOT, "id", o.ana.as_str()).unwrap()
    });
    let mut changes = pending(&desk);
    changes.push((walk_in.clone(), rename.clone()));
    let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, None);
    let replies = v.push(o.relay.storage(), &changes);
    assert_eq!(rejections(&replies).len(), 2, "{replies:?}");
    assert_eq!(acked(&replies), 0);
    // Nor may an existing record's id change.
    let mut ana = doc_of(&mut o.store, &o.ana, &desk_id);
    let rename = change(&mut ana, |d| {
        d.put(automerge::ROOT, "id", o.xavier.as_str()).unwrap()
    });
    let replies = v.push(o.relay.storage(), &[(o.ana.clone(), rename)]);
    assert_eq!(rejections(&replies).len(), 1, "{replies:?}");
}

/// The kept contact of a merge stays in the views that see its duplicate
/// when a token's events are edited, and so does a merge of a merge.
pub fn merges_are_followed_through_token_edits_and_chains<B: Backend>() {
    let mut o = office::<B>();
    let kept = person(&mut o.store, "Ana M. Silva");
    let last = person(&mut o.store, "Ana Maria Silva");
    o.store.merge_contacts(&kept, &o.ana, T0 + 5).unwrap();
    o.store.merge_contacts(&last, &kept, T0 + 6).unwrap();
    let mut coordinator = Conn::open(
        o.relay.storage(),
        &o.coordinator_token,
        o.store.device_id(),
        None,
    );
    push_all(o.relay.storage(), &mut coordinator, &mut o.store);
    let scope = o.relay.storage().scope_docs(&o.volunteer_id).unwrap();
    assert!(scope.contains(&kept) && scope.contains(&last), "{scope:?}");
    // `token update` recomputes the scope: the merges are kept.
    o.relay
        .storage()
        .set_token_events(&o.volunteer_id, std::slice::from_ref(&o.event))
        .unwrap();
    let scope = o.relay.storage().scope_docs(&o.volunteer_id).unwrap();
    assert!(scope.contains(&kept) && scope.contains(&last), "{scope:?}");
    assert!(!scope.contains(&o.xavier));
    // A token given the event afterwards sees them from the start.
    let (_, later) = o
        .relay
        .storage()
        .create_token("volunteer", "desk 3", std::slice::from_ref(&o.event), T0)
        .unwrap();
    let v = Conn::open(o.relay.storage(), &later, &device_id(4), None);
    assert!(v.docs_sent().contains(&last), "{:?}", v.docs_sent());
}

/// The probes that told an unknown id from an existing out-of-scope one:
/// a change under another actor, and one naming an unseen contact.
pub fn every_refusal_about_an_unseen_id_is_the_same<B: Backend>() {
    let mut o = office::<B>();
    let desk = Store::open_in_memory().unwrap();
    let desk_id = desk.device_id().to_owned();
    let office_id = o.store.device_id().to_owned();
    let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk_id, None);
    let probes: Vec<Vec<u8>> = vec![
        // Another actor's new record.
        walk_in_bytes(&office_id, "Probe one", None),
        // The desk's own new record, naming an unseen contact.
        walk_in_bytes(&desk_id, "Probe two", Some(&o.xavier)),
        // Not applicable at all: depends on nothing the relay has.
        {
            let mut x = doc_of(&mut o.store, &o.xavier, &desk_id);
            change(&mut x, |d| d.put(automerge::ROOT, "name", "X").unwrap())
        },
    ];
    for probe in probes {
        let to_existing =
            rejections(&v.push(o.relay.storage(), &[(o.xavier.clone(), probe.clone())]));
        let to_unknown = rejections(&v.push(o.relay.storage(), &[(new_contact_id(999), probe)]));
        assert_eq!(to_existing.len(), 1);
        assert_eq!(to_existing, to_unknown);
    }
}

/// A change by `actor` to a contact record a store wrote, renaming it to
/// `name`, or merging it into `merged_into` if given: a probe, refused for
/// one reason or another wherever it is sent.
fn walk_in_bytes(actor: &str, name: &str, merged_into: Option<&str>) -> Vec<u8> {
    let mut store = Store::open_in_memory().unwrap();
    let id = person(&mut store, name);
    let mut doc = AutoCommit::new().with_actor(ActorId::from(hex(actor)));
    let original = doc_of(&mut store, &id, actor);
    doc.merge(&mut original.clone()).unwrap();
    if let Some(m) = merged_into {
        doc.put(automerge::ROOT, "merged_into", m).unwrap();
        doc.commit();
        return doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    }
    doc.put(automerge::ROOT, "name", format!("{name}, renamed"))
        .unwrap();
    doc.commit();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

/// The cursor of the last `batch` or `caught_up` among `replies`.
fn last_cursor(replies: &[Message]) -> Option<Cursor> {
    replies.iter().rev().find_map(|m| match m {
        Message::Batch { cursor, .. } | Message::CaughtUp { cursor } => Some(cursor.clone()),
        _ => None,
    })
}

fn welcomed_trusted(replies: &[Message]) -> Option<bool> {
    replies.iter().find_map(|m| match m {
        Message::Welcome { cursor_trusted, .. } => Some(*cursor_trusted),
        _ => None,
    })
}

/// The office signs up a new contact to the desk's event (it joins the
/// desk's view); returns its id.
fn sign_up_late<B: Backend>(o: &mut Office<B>) -> String {
    let late = person(&mut o.store, "Lena Late");
    o.store.sign_up(&o.event, &late, false, T0).unwrap();
    let mut office = Conn::open(
        o.relay.storage(),
        &o.coordinator_token,
        o.store.device_id(),
        None,
    );
    push_all(o.relay.storage(), &mut office, &mut o.store);
    late
}

/// A catch-up sends the documents that joined a device's view before its
/// log pass; a connection lost after those batches must leave the device
/// a cursor the relay still trusts (once it carried zeros for a hash, and
/// the next connection fell back to a whole resync).
pub fn a_catch_up_cut_short_leaves_a_cursor_the_relay_trusts<B: Backend>() {
    let mut o = office::<B>();
    let desk = device_id(4);
    let first = Conn::open(o.relay.storage(), &o.volunteer, &desk, None);
    let mut cursor = None;
    for f in &first.frames {
        if let Ok(m) = wire::decode(f) {
            cursor = last_cursor(std::slice::from_ref(&m)).or(cursor);
        }
    }
    let cursor = cursor.expect("caught up");
    // A contact joins the desk's view: the next catch-up sends it whole
    // before its log pass.
    let late = sign_up_late(&mut o);
    let again = Conn::open(o.relay.storage(), &o.volunteer, &desk, Some(cursor.clone()));
    let whole_batch = again
        .frames
        .iter()
        .filter_map(|f| wire::decode(f).ok())
        .find_map(|m| match m {
            Message::Batch {
                entries, cursor, ..
            } if entries.iter().any(|e| e.doc == late) => Some(cursor),
            _ => None,
        })
        .expect("the newly visible contact, whole");
    assert_eq!(whole_batch.seq, cursor.seq, "before the log pass");
    assert_eq!(whole_batch.hash, cursor.hash, "the device's own hash");
    // Cut there: the device comes back with that cursor and is trusted.
    let back = Conn::open(o.relay.storage(), &o.volunteer, &desk, Some(whole_batch));
    let replies: Vec<Message> = back
        .frames
        .iter()
        .filter_map(|f| wire::decode(f).ok())
        .collect();
    assert_eq!(welcomed_trusted(&replies), Some(true));
}

/// A volunteer's device in the fallback is sent, after `resync_done`,
/// what joined its view while the fallback ran (once its view was read at
/// `hello` only, and such a contact never reached the desk).
pub fn what_joins_a_view_during_the_fallback_is_sent_after_it<B: Backend>() {
    let mut o = office::<B>();
    let desk = device_id(5);
    let mut v = Conn::open(o.relay.storage(), &o.volunteer, &desk, bogus_cursor());
    assert_eq!(
        welcomed_trusted(
            &v.frames
                .iter()
                .filter_map(|f| wire::decode(f).ok())
                .collect::<Vec<_>>()
        ),
        Some(false)
    );
    let late = sign_up_late(&mut o);
    v.send(o.relay.storage(), &Message::ResyncDone);
    let sent = v.docs_sent();
    assert!(sent.contains(&late), "{sent:?}");
    assert!(sent.contains(&o.ana) && !sent.contains(&o.xavier));
}

/// A coordinator's edit of a record the relay lost (restored from an older
/// backup) waits for the record instead of being refused for good as an
/// unreadable new record: the record comes back through another device's
/// fallback, and the edit with it.
pub fn an_edit_of_a_record_the_relay_lost_waits_for_it<B: Backend>() {
    let o = office::<B>();
    let mut laptop = Store::open_in_memory().unwrap();
    let lost = person(&mut laptop, "Lena Lost");
    let genesis = pending(&laptop);
    let hashes: Vec<_> = laptop
        .pending_changes(10)
        .unwrap()
        .into_iter()
        .map(|p| p.hash)
        .collect();
    laptop.acknowledge(&hashes, T0).unwrap(); // acknowledged by the old relay
    laptop
        .update_contact(&lost, T0 + 1, |c| {
            c.name = "Lena Found".into();
            Ok(())
        })
        .unwrap();
    let edit = pending(&laptop);
    let laptop_id = laptop.device_id().to_owned();
    let mut conn = Conn::open(o.relay.storage(), &o.coordinator_token, &laptop_id, None);
    let replies = conn.push(o.relay.storage(), &edit);
    assert_eq!(rejections(&replies), vec![], "the edit is not refused");
    assert_eq!(acked(&replies), 1);
    // Another coordinator's device hands the record back: it is whole.
    let replies = conn.push(o.relay.storage(), &genesis);
    assert_eq!(rejections(&replies), vec![]);
    let mut doc = o.relay.storage().load_doc(&lost).unwrap().unwrap();
    assert!(doc.get_missing_deps(&[]).is_empty());
    let mut heads = doc.get_heads();
    heads.sort();
    let mut expected = laptop.heads(&lost).unwrap();
    expected.sort();
    assert_eq!(heads, expected);
}

/// A volunteer's first sync sends its view whole; a connection lost before
/// it ends, then an erasure (or a token edit) that takes a record out of
/// the view, and the next first sync must tell the device to forget what
/// the lost one sent it (once it sent the view again and said nothing of
/// the erased contact, which the desk then kept: simulation seed
/// 346995946723422165).
pub fn a_first_sync_cut_short_forgets_what_left_the_view_meanwhile<B: Backend>() {
    let o = office::<B>();
    let desk = device_id(6);
    let first = Conn::open(o.relay.storage(), &o.volunteer, &desk, None);
    let (sent, cut_at) = first
        .frames
        .iter()
        .filter_map(|f| wire::decode(f).ok())
        .find_map(|m| match m {
            Message::Batch {
                entries, cursor, ..
            } => Some((entries, cursor)),
            _ => None,
        })
        .expect("a first batch");
    assert!(sent.iter().any(|e| e.doc == o.ana), "Ana is in the view");
    assert_eq!(cut_at.seq, 0, "cut short before the first sync ended");
    let mut office = Conn::open(
        o.relay.storage(),
        &o.coordinator_token,
        o.store.device_id(),
        None,
    );
    let replies = office.send(o.relay.storage(), &Message::Erase { doc: o.ana.clone() });
    assert!(
        replies.iter().any(|m| matches!(m, Message::Erased { .. })),
        "{replies:?}"
    );
    let again = Conn::open(o.relay.storage(), &o.volunteer, &desk, Some(cut_at));
    let forgotten = again
        .frames
        .iter()
        .filter_map(|f| wire::decode(f).ok())
        .any(|m| {
            matches!(m, Message::Batch { entries, .. } | Message::Live { entries, .. }
            if entries.iter().any(|e| e.doc == o.ana && e.form == Form::Forget))
        });
    assert!(forgotten, "the desk is told to forget the erased contact");
    assert!(!again.docs_sent().contains(&o.ana));
}
