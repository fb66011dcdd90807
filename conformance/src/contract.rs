//! One test per sentence of the storage contract
//! (`muster_core::sync::storage`, "The contract"), and of what the relay's
//! rules keep through it: scopes, the visibility log, erasure, tokens, the
//! audit trail. Every test starts from [`Backend::fresh`].
//!
//! Over 800 lines: one test per sentence of the contract, which a backend
//! runs whole by one line ([`crate::relay_backend_tests!`]).

use std::collections::BTreeSet;

use muster_core::sync::storage::{
    Appended, Auth, Author, Batch, DocState, NewChange, RelayStorage, SecretCheck, StorageError,
    TokenRecord, VisChange, chain_hash,
};
use muster_core::{NewContact, NewEvent, Store};

use crate::Backend;

/// A fixed start time (2026-11-01T00:00:00Z).
pub const T0: i64 = 1_793_491_200_000;

/// The office's device: makes real records and hands their changes over.
pub struct Office {
    /// Its store.
    pub store: Store,
}

impl Default for Office {
    fn default() -> Self {
        Office::new()
    }
}

impl Office {
    /// An empty office store.
    pub fn new() -> Office {
        Office {
            store: Store::open_in_memory().unwrap(),
        }
    }

    /// Creates a contact.
    pub fn contact(&mut self, name: &str) -> String {
        person(&mut self.store, name)
    }

    /// Signs a contact up to an event.
    pub fn sign_up(&mut self, event: &str, contact: &str) {
        self.store.sign_up(event, contact, false, T0).unwrap();
    }

    /// Appends every change made since the last call, as the office's
    /// coordinator device.
    pub fn push(&mut self, storage: &dyn RelayStorage) {
        storage.append(&coordinator(), &self.changes(), T0).unwrap();
    }

    /// Creates an event.
    pub fn event(&mut self, title: &str) -> String {
        self.store
            .create_event(&NewEvent::new(title, T0, "Hall", None), T0)
            .unwrap()
    }

    /// Renames a contact (one more change of it).
    pub fn rename(&mut self, contact: &str, name: &str) {
        self.store
            .update_contact(contact, T0, |c| {
                c.name = name.into();
                Ok(())
            })
            .unwrap();
    }

    /// Every change made since the last call, as the relay takes them.
    pub fn changes(&mut self) -> Vec<NewChange> {
        let pending = self.store.pending_changes(100_000).unwrap();
        let hashes: Vec<_> = pending.iter().map(|p| p.hash).collect();
        self.store.acknowledge(&hashes, T0).unwrap();
        pending
            .into_iter()
            .map(|p| NewChange {
                doc: p.doc_id,
                hash: p.hash.0,
                data: p.data,
            })
            .collect()
    }
}

/// Creates a contact with just a name in `store`.
pub fn person(store: &mut Store, name: &str) -> String {
    store.create_contact(&NewContact::named(name), T0).unwrap()
}

/// The office's coordinator device as an author.
pub fn coordinator() -> Author {
    Author {
        device: "0a".repeat(16),
        token_id: "tok_office".into(),
        scoped: false,
    }
}

/// Every entry's `(seq, chain)` from `hash_at`, checked to chain from
/// zeros over `hashes` (the change hash at each seq, from 1).
fn assert_chain(storage: &dyn RelayStorage, hashes: &[[u8; 32]]) {
    let mut prev = [0; 32];
    for (i, h) in hashes.iter().enumerate() {
        let seq = i as u64 + 1;
        let at = storage
            .hash_at(seq)
            .unwrap()
            .expect("an entry at every seq");
        assert_eq!(at, chain_hash(&prev, h), "the chain at seq {seq}");
        prev = at;
    }
    let head = storage.head().unwrap();
    assert_eq!(head.seq, hashes.len() as u64, "no entry past the last");
    assert_eq!(head.chain, prev, "the head is the last entry's chain");
    assert_eq!(storage.hash_at(hashes.len() as u64 + 1).unwrap(), None);
}

/// The change hashes of the whole log, in order (nothing erased).
fn logged_hashes(storage: &dyn RelayStorage) -> Vec<[u8; 32]> {
    let entries = storage.entries_after(0, u64::MAX, Batch::ALL).unwrap();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "seq has no gaps");
    }
    entries.into_iter().map(|e| e.hash).collect()
}

/// Contract 1 and 2: appends from several threads at once are serialised;
/// every change gets one seq, 1, 2, 3… with nothing skipped; a reader
/// reading while they write never sees an entry before those under it.
pub fn appends_are_serialised_and_seen_in_commit_order<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    const THREADS: usize = 4;
    const EACH: usize = 25;
    let mut batches: Vec<Vec<NewChange>> = Vec::new();
    for t in 0..THREADS {
        let mut office = Office::new();
        for i in 0..EACH {
            office.contact(&format!("Person {t}-{i}"));
        }
        batches.push(office.changes());
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let head = storage.head().unwrap();
                let seen = storage.entries_after(0, head.seq, Batch::ALL).unwrap();
                assert_eq!(seen.len() as u64, head.seq, "every entry under the head");
                for (i, e) in seen.iter().enumerate() {
                    assert_eq!(e.seq, i as u64 + 1, "no entry seen before one under it");
                }
                reads += 1;
            }
        });
        let writers: Vec<_> = batches
            .iter()
            .map(|batch| {
                s.spawn(move || {
                    for c in batch {
                        let a = storage
                            .append(&coordinator(), std::slice::from_ref(c), T0)
                            .unwrap();
                        assert_eq!(a.new, 1);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        reader.join().unwrap();
    });
    let hashes = logged_hashes(storage);
    assert_eq!(hashes.len(), THREADS * EACH);
    let distinct: BTreeSet<_> = hashes.iter().collect();
    assert_eq!(distinct.len(), THREADS * EACH, "every change once");
    assert_chain(storage, &hashes);
}

/// Contract 1 and 3: among appends made at once from many threads (which a
/// backend may commit together), each append's result names its own
/// changes' positions, in its order; a change pushed by two at once is
/// logged once and both are told where.
pub fn concurrent_appends_each_learn_their_own_positions<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    const THREADS: usize = 12;
    const PUSHES: usize = 4;
    let mut pushes: Vec<Vec<Vec<NewChange>>> = Vec::new();
    for t in 0..THREADS {
        let mut office = Office::new();
        let mut mine = Vec::new();
        for p in 0..PUSHES {
            for i in 0..=p {
                office.contact(&format!("Person {t}-{p}-{i}"));
            }
            mine.push(office.changes());
        }
        pushes.push(mine);
    }
    // Two threads push the same change as their last push.
    let mut office = Office::new();
    office.contact("Shared");
    let shared = office.changes();
    pushes[0].push(shared.clone());
    pushes[1].push(shared.clone());
    let results: Vec<Vec<(Vec<NewChange>, Appended)>> = std::thread::scope(|s| {
        let handles: Vec<_> = pushes
            .iter()
            .map(|mine| {
                s.spawn(move || {
                    mine.iter()
                        .map(|changes| {
                            let a = storage.append(&coordinator(), changes, T0).unwrap();
                            (changes.clone(), a)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let log = storage.entries_after(0, u64::MAX, Batch::ALL).unwrap();
    let expected = THREADS * PUSHES * (PUSHES + 1) / 2 + 1;
    assert_eq!(log.len(), expected, "every change once, the shared one too");
    let mut new = 0;
    for (changes, a) in results.iter().flatten() {
        assert_eq!(a.positions.len(), changes.len());
        for (c, pos) in changes.iter().zip(&a.positions) {
            let e = &log[*pos as usize - 1];
            assert_eq!(
                (e.seq, e.hash),
                (*pos, c.hash),
                "a position names its change"
            );
        }
        let top = *a.positions.iter().max().unwrap();
        assert_eq!(a.last, Some((top, log[top as usize - 1].chain)));
        new += a.new;
    }
    assert_eq!(new, expected, "the shared change was new to one push only");
    let hashes: Vec<_> = log.iter().map(|e| e.hash).collect();
    assert_chain(storage, &hashes);
}

/// Contract 6 and 2: a transaction that fails keeps nothing it wrote (log,
/// scopes, visibility, tokens) and leaves no gap in `seq`.
pub fn a_failed_transaction_keeps_nothing_and_leaves_no_gap<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    let mut office = Office::new();
    office.contact("Ana");
    let first = office.changes();
    storage.append(&coordinator(), &first, T0).unwrap();
    let (_, _) = storage
        .create_token("coordinator", "office", &[], T0)
        .unwrap();
    let before = (storage.head().unwrap(), storage.list_tokens().unwrap());
    office.contact("Ben");
    let second = office.changes();
    let failed = storage.transaction(&mut |tx| {
        tx.insert_changes(&coordinator(), &second, T0)?;
        tx.add_to_scope("tok_x", &second[0].doc)?;
        tx.announce(None, &second[0].doc, false)?;
        tx.insert_token(
            &TokenRecord {
                id: "tok_x".into(),
                secret_hash: [9; 32],
                role: "observer".into(),
                label: "never".into(),
                revoked: false,
            },
            T0,
        )?;
        Err(StorageError::Refused("changed my mind".into()))
    });
    assert!(matches!(failed, Err(StorageError::Refused(_))));
    assert_eq!(
        (storage.head().unwrap(), storage.list_tokens().unwrap()),
        before
    );
    assert!(storage.scope_docs("tok_x").unwrap().is_empty());
    assert_eq!(
        storage.doc_states(&[second[0].doc.as_str()]).unwrap(),
        vec![DocState::default()]
    );
    // The next append takes the next seq: no gap where the failed one was.
    let a = storage.append(&coordinator(), &second, T0).unwrap();
    assert_eq!(a.positions, vec![2]);
    let hashes = logged_hashes(storage);
    assert_chain(storage, &hashes);
}

/// Contract 3: each entry's chain is the previous chain and its change
/// hash; the head and `hash_at` agree; an append names the last position
/// and its chain.
pub fn the_chain_never_forks<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    assert_eq!(storage.head().unwrap().seq, 0);
    assert_eq!(storage.head().unwrap().chain, [0; 32]);
    let mut office = Office::new();
    let mut all = Vec::new();
    for round in 0..3 {
        let c = office.contact(&format!("Round {round}"));
        office.rename(&c, &format!("Round {round} renamed"));
        let changes = office.changes();
        let a = storage.append(&coordinator(), &changes, T0).unwrap();
        all.extend(changes.iter().map(|c| c.hash));
        let last = a.last.unwrap();
        assert_eq!(last.0, all.len() as u64);
        assert_eq!(Some(last.1), storage.hash_at(last.0).unwrap());
    }
    assert_eq!(logged_hashes(storage), all);
    assert_chain(storage, &all);
}

/// Contract 4: a change already logged is not appended again, in another
/// append or twice in one.
pub fn a_change_is_logged_once<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    let mut office = Office::new();
    office.contact("Ana");
    office.contact("Ben");
    office.contact("Chen");
    let c = office.changes();
    let a = storage.append(&coordinator(), &c[..2], T0).unwrap();
    assert_eq!((a.positions.clone(), a.new), (vec![1, 2], 2));
    let again = storage.append(&coordinator(), &c[1..], T0).unwrap();
    assert_eq!((again.positions, again.new), (vec![2, 3], 1));
    let twice = storage
        .append(&coordinator(), &[c[0].clone(), c[0].clone()], T0)
        .unwrap();
    assert_eq!((twice.positions, twice.new), (vec![1, 1], 0));
    assert_eq!(twice.last, Some((1, storage.hash_at(1).unwrap().unwrap())));
    assert_eq!(storage.head().unwrap().seq, 3);
}

/// Contract 5: what an append acknowledged is there after a restart.
pub fn acknowledged_changes_survive_a_restart<B: Backend>() {
    let mut b = B::fresh();
    let mut office = Office::new();
    let ana = office.contact("Ana");
    let changes = office.changes();
    b.storage().append(&coordinator(), &changes, T0).unwrap();
    let (_, secret) = b
        .storage()
        .create_token("observer", "screen", &[], T0)
        .unwrap();
    let head = b.storage().head().unwrap();
    let epoch = b.storage().epoch().unwrap();
    b.reopen();
    let storage = b.storage();
    assert_eq!(storage.head().unwrap(), head);
    assert_eq!(storage.epoch().unwrap(), epoch, "the epoch is kept");
    assert!(storage.load_doc(&ana).unwrap().is_some());
    assert!(matches!(
        storage.check_secret(&secret).unwrap(),
        SecretCheck::Valid { .. }
    ));
}

/// Contract 7: an erased contact's entries keep their place in the chain
/// but are skipped, its snapshot and ledger go, it leaves every scope, and
/// every device is told to forget it.
pub fn erased_entries_are_skipped<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    let mut office = Office::new();
    let event = office.event("Gala");
    let ana = office.contact("Ana");
    office.rename(&ana, "Ana Silva");
    let ben = office.contact("Ben");
    office.sign_up(&event, &ana);
    let changes = office.changes();
    let hashes: Vec<_> = changes.iter().map(|c| c.hash).collect();
    storage.append(&coordinator(), &changes, T0).unwrap();
    let (volunteer, _) = storage
        .create_token("volunteer", "desk", std::slice::from_ref(&event), T0)
        .unwrap();
    assert!(storage.scope_docs(&volunteer).unwrap().contains(&ana));
    let vis = storage.head().unwrap().vis;
    // A live session read the entries before the erasure (a backend may
    // keep what it read): they must not be served again after it.
    let live = storage.head().unwrap().seq;
    let before = storage.entries_after(0, live, Batch::ALL).unwrap();
    assert!(before.iter().any(|e| e.doc == ana));

    storage.erase(&ana, &Author::admin(), T0 + 1).unwrap();
    let after = storage.entries_after(0, live, Batch::ALL).unwrap();
    assert!(after.iter().all(|e| e.doc != ana), "nor by a live read");
    assert_eq!(after.len(), before.len() - 2, "Ana's two changes are gone");

    let left: Vec<String> = storage
        .entries_after(
            0,
            u64::MAX,
            Batch {
                entries: 1_000,
                bytes: usize::MAX,
            },
        )
        .unwrap()
        .into_iter()
        .map(|e| e.doc)
        .collect();
    assert!(!left.contains(&ana), "erased entries are skipped");
    assert!(left.contains(&ben) && left.contains(&event));
    assert_chain(storage, &hashes);
    assert_eq!(
        storage.doc_states(&[ana.as_str(), ben.as_str()]).unwrap(),
        vec![
            DocState {
                exists: false,
                erased: true
            },
            DocState {
                exists: true,
                erased: false
            }
        ]
    );
    assert_eq!(
        storage.snapshots(&[ana.as_str()]).unwrap(),
        vec![Vec::<u8>::new()]
    );
    assert!(storage.load_doc(&ana).unwrap().is_none());
    assert!(!storage.scope_docs(&volunteer).unwrap().contains(&ana));
    let private = muster_core::model::private_id_of(&ana);
    let told = storage
        .vis_after("any token", vis, storage.head().unwrap().vis)
        .unwrap();
    assert_eq!(
        told,
        vec![
            VisChange {
                doc: ana.clone(),
                forget: true
            },
            VisChange {
                doc: private,
                forget: true
            }
        ],
        "every device forgets the contact and its ledger"
    );
    let audit = storage.audit(Some(&ana)).unwrap();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|e| e.erased));
    // A re-scoped token does not get it back through its sign-up.
    storage
        .set_token_events(&volunteer, std::slice::from_ref(&event))
        .unwrap();
    assert!(!storage.scope_docs(&volunteer).unwrap().contains(&ana));
    // Nor when the office signs her up to another of its events later.
    let fair = office.event("Fair");
    office.push(storage);
    storage
        .set_token_events(&volunteer, &[event.clone(), fair.clone()])
        .unwrap();
    office.sign_up(&fair, &ana);
    office.push(storage);
    let scope = storage.scope_docs(&volunteer).unwrap();
    assert!(scope.contains(&fair) && !scope.contains(&ana), "{scope:?}");
    assert!(matches!(
        storage.erase(&event, &Author::admin(), T0),
        Err(StorageError::Refused(_))
    ));
}

/// Contract 8: the visibility log's positions have no gaps, and each
/// token reads its own rows and everyone's, in order.
pub fn the_visibility_log_is_ordered<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    let mut office = Office::new();
    let gala = office.event("Gala");
    let fair = office.event("Fair");
    let ana = office.contact("Ana");
    let ben = office.contact("Ben");
    office.sign_up(&gala, &ana);
    office.sign_up(&fair, &ben);
    office.push(storage);
    let (one, _) = storage
        .create_token("volunteer", "gala desk", std::slice::from_ref(&gala), T0)
        .unwrap();
    let (two, _) = storage
        .create_token("volunteer", "fair desk", std::slice::from_ref(&fair), T0)
        .unwrap();
    // A new token's scope is set without announcing it (no devices yet).
    assert_eq!(storage.head().unwrap().vis, 0);
    storage
        .set_token_events(&one, &[gala.clone(), fair.clone()])
        .unwrap();
    let after_edit = storage.head().unwrap().vis;
    assert_eq!(
        after_edit, 2,
        "the fair and Ben entered the gala desk's view"
    );
    storage.erase(&ana, &Author::admin(), T0).unwrap();
    let end = storage.head().unwrap().vis;
    assert_eq!(end, after_edit + 2);
    let mine = storage.vis_after(&one, 0, end).unwrap();
    let entered: BTreeSet<_> = mine[..2].iter().map(|v| v.doc.clone()).collect();
    assert_eq!(entered, BTreeSet::from([fair.clone(), ben.clone()]));
    assert!(mine[..2].iter().all(|v| !v.forget));
    assert_eq!(mine[2].doc, ana);
    assert!(mine[2].forget);
    // The other token sees only everyone's rows; a range reads only itself.
    let theirs = storage.vis_after(&two, 0, end).unwrap();
    assert_eq!(theirs.len(), 2);
    assert!(theirs.iter().all(|v| v.forget));
    assert_eq!(storage.vis_after(&one, 1, 2).unwrap().len(), 1);
    assert_eq!(storage.vis_after(&one, end, end).unwrap(), vec![]);
    // What an append admits is visible with its entries.
    let mut desk = Office::new();
    desk.contact("Walk-in");
    let walk_in = desk.changes();
    let scoped = Author {
        device: "0b".repeat(16),
        token_id: two.clone(),
        scoped: true,
    };
    storage.append(&scoped, &walk_in, T0).unwrap();
    let head = storage.head().unwrap();
    assert_eq!(
        storage.vis_after(&two, end, head.vis).unwrap(),
        vec![VisChange {
            doc: walk_in[0].doc.clone(),
            forget: false
        }]
    );
}

/// Contract 9: the snapshot (rebuilt every 64 entries) and the changes
/// after it load as the document, also with a change that waits for a
/// dependency the log does not hold.
pub fn a_snapshot_loads_as_the_document<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    let mut office = Office::new();
    let ana = office.contact("Ana");
    let mut total = 0;
    for round in 0..7 {
        for i in 0..10 {
            office.rename(&ana, &format!("Ana {round}-{i}"));
        }
        let changes = office.changes();
        total += changes.iter().map(|c| c.data.len()).sum::<usize>();
        storage.append(&coordinator(), &changes, T0).unwrap();
    }
    let snapshot = storage.snapshots(&[ana.as_str()]).unwrap().remove(0);
    assert!(
        snapshot.len() < total,
        "compacted: {} bytes for {total} of changes",
        snapshot.len()
    );
    let mut loaded = automerge::AutoCommit::load(&snapshot).unwrap();
    let mut heads = loaded.get_heads();
    heads.sort();
    let mut expected = office.store.heads(&ana).unwrap();
    expected.sort();
    assert_eq!(heads, expected);
    let mut from_load = storage.load_doc(&ana).unwrap().unwrap();
    assert_eq!(from_load.get_heads().len(), expected.len());
    // A change whose dependency is missing waits inside the document.
    let mut other = Office::new();
    let ben = other.contact("Ben");
    let _genesis = other.changes();
    other.rename(&ben, "Ben Ode");
    let orphan = other.changes();
    storage.append(&coordinator(), &orphan, T0).unwrap();
    let mut doc = storage.load_doc(&ben).unwrap().unwrap();
    assert!(!doc.get_missing_deps(&[]).is_empty(), "it waits");
    assert!(!storage.snapshots(&[ben.as_str()]).unwrap()[0].is_empty());
}

/// `entries_after` keeps to its bounds: entries, bytes (at least one entry),
/// and the range.
pub fn entries_come_in_bounded_batches<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    let mut office = Office::new();
    for i in 0..10 {
        office.contact(&format!("Person {i}"));
    }
    office.push(storage);
    assert_eq!(
        storage
            .entries_after(
                0,
                10,
                Batch {
                    entries: 3,
                    bytes: usize::MAX
                }
            )
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        storage
            .entries_after(
                0,
                10,
                Batch {
                    entries: 100,
                    bytes: 1
                }
            )
            .unwrap()
            .len(),
        1
    );
    let range = storage
        .entries_after(
            4,
            7,
            Batch {
                entries: 100,
                bytes: usize::MAX,
            },
        )
        .unwrap();
    assert_eq!(
        range.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    assert!(range.iter().all(|e| e.first_seq == e.seq));
    assert_eq!(
        storage
            .entries_after(
                10,
                u64::MAX,
                Batch {
                    entries: 100,
                    bytes: usize::MAX
                }
            )
            .unwrap(),
        vec![]
    );
}

/// The scope rules through the backend: a volunteer token sees its events,
/// the contacts signed up to them, what its devices created, and the
/// contacts those were merged into; a token edit recomputes it.
pub fn a_volunteer_scope_follows_sign_ups_creations_and_merges<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    let mut office = Office::new();
    let gala = office.event("Gala");
    let fair = office.event("Fair");
    let ana = office.contact("Ana");
    let out = office.contact("Out of scope");
    let fay = office.contact("Fay");
    office.sign_up(&gala, &ana);
    office.sign_up(&fair, &fay);
    office.push(storage);
    let (desk, _) = storage
        .create_token("volunteer", "desk", std::slice::from_ref(&gala), T0)
        .unwrap();
    let scope = |s: &dyn RelayStorage| -> BTreeSet<String> {
        s.scope_docs(&desk).unwrap().into_iter().collect()
    };
    assert_eq!(scope(storage), BTreeSet::from([gala.clone(), ana.clone()]));

    // A walk-in its device creates joins it.
    let mut phone = Office::new();
    phone.contact("Walk-in");
    let walk_in = phone.changes();
    let author = Author {
        device: "0b".repeat(16),
        token_id: desk.clone(),
        scoped: true,
    };
    storage.append(&author, &walk_in, T0).unwrap();
    let w = walk_in[0].doc.clone();
    assert!(scope(storage).contains(&w));

    // A contact newly signed up to its event joins it.
    let late = office.contact("Late");
    office.sign_up(&gala, &late);
    office.push(storage);
    assert!(scope(storage).contains(&late));

    // Ana merged into a new contact, that one into another: both join.
    let kept = office.contact("Ana Maria");
    let kept2 = office.contact("Ana Maria Silva");
    office.store.merge_contacts(&kept, &ana, T0 + 1).unwrap();
    office.push(storage);
    office.store.merge_contacts(&kept2, &kept, T0 + 2).unwrap();
    office.push(storage);
    let now = scope(storage);
    assert!(now.contains(&kept) && now.contains(&kept2), "{now:?}");
    assert!(!now.contains(&out) && !now.contains(&fay));

    // Another event instead: the gala, its people and the merged ones go;
    // the walk-in stays (its device created it); the fair's come.
    let vis = storage.head().unwrap().vis;
    storage
        .set_token_events(&desk, std::slice::from_ref(&fair))
        .unwrap();
    assert_eq!(
        scope(storage),
        BTreeSet::from([fair.clone(), fay.clone(), w.clone()])
    );
    let told = storage
        .vis_after(&desk, vis, storage.head().unwrap().vis)
        .unwrap();
    let forgotten: BTreeSet<_> = told
        .iter()
        .filter(|v| v.forget)
        .map(|v| v.doc.clone())
        .collect();
    assert_eq!(
        forgotten,
        BTreeSet::from([gala, ana, late, kept, kept2]),
        "what left is forgotten"
    );
    let entered: BTreeSet<_> = told
        .iter()
        .filter(|v| !v.forget)
        .map(|v| v.doc.clone())
        .collect();
    assert_eq!(entered, BTreeSet::from([fair, fay]));
}

/// Tokens: what may be created, how a secret and a device are checked,
/// revocation, edits, and what the lists show.
pub fn tokens_are_checked_and_administered<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    let event = Office::new().event("Gala");
    let refused = |r: Result<(String, String), StorageError>| match r {
        Err(StorageError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(refused(storage.create_token("admin", "x", &[], T0)).contains("not one of"));
    assert!(refused(storage.create_token("volunteer", "x", &[], T0)).contains("at least one"));
    assert!(
        refused(storage.create_token("coordinator", "x", std::slice::from_ref(&event), T0))
            .contains("sees every event")
    );
    assert!(
        refused(storage.create_token("volunteer", "x", &["c_nope".into()], T0))
            .contains("not an event id")
    );
    assert!(
        storage.list_tokens().unwrap().is_empty(),
        "nothing was created"
    );

    let (office, secret) = storage
        .create_token("coordinator", "office", &[], T0)
        .unwrap();
    assert!(office.starts_with("tok_") && secret.starts_with("mst_"));
    let (desk, desk_secret) = storage
        .create_token("volunteer", "desk", std::slice::from_ref(&event), T0 + 1)
        .unwrap();
    let phone = "0c".repeat(16);
    let granted = storage.authenticate(&secret, &phone, T0 + 5).unwrap();
    assert_eq!(
        granted,
        Auth::Granted(muster_core::sync::storage::Grant {
            token_id: office.clone(),
            role: "coordinator".into(),
            label: "office".into()
        })
    );
    assert_eq!(
        storage.authenticate("mst_wrong", &phone, T0).unwrap(),
        Auth::Unknown
    );
    assert_eq!(
        storage.authenticate(&desk_secret, &phone, T0).unwrap(),
        Auth::DeviceTaken,
        "a device id belongs to its first token"
    );
    assert_eq!(
        storage.check_secret("mst_wrong").unwrap(),
        SecretCheck::Unknown
    );
    let tokens = storage.list_tokens().unwrap();
    assert_eq!(
        tokens.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![office.clone(), desk.clone()],
        "oldest first"
    );
    assert_eq!(tokens[0].last_seen_at, Some(T0 + 5));
    assert_eq!(tokens[0].last_device.as_deref(), Some(phone.as_str()));
    assert_eq!(tokens[1].events, vec![event.clone()]);
    assert_eq!(
        storage.device_labels().unwrap().get(&phone),
        Some(&("office".to_owned(), "coordinator".to_owned()))
    );

    let why = |r: Result<(), StorageError>| match r {
        Err(StorageError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        why(storage.set_token_events(&office, std::slice::from_ref(&event)))
            .contains("sees every event")
    );
    assert!(why(storage.set_token_events(&desk, &[])).contains("revoke it instead"));
    assert!(
        why(storage.set_token_events("tok_none", std::slice::from_ref(&event)))
            .contains("no token")
    );

    assert!(storage.revoke_token(&office, T0 + 9).unwrap());
    assert!(!storage.revoke_token(&office, T0 + 10).unwrap(), "already");
    assert!(matches!(
        storage.revoke_token("tok_none", T0),
        Err(StorageError::Refused(_))
    ));
    assert_eq!(
        storage.authenticate(&secret, &phone, T0).unwrap(),
        Auth::Revoked
    );
    assert_eq!(storage.check_secret(&secret).unwrap(), SecretCheck::Revoked);
    assert_eq!(storage.grant(&office).unwrap(), Auth::Revoked);
    assert_eq!(storage.grant("tok_none").unwrap(), Auth::Unknown);
    assert_eq!(
        storage.list_tokens().unwrap()[0].revoked_at,
        Some(T0 + 9),
        "the first revocation's time"
    );
}

/// The audit trail: every entry with the device and token that pushed it.
pub fn the_audit_names_who_wrote_what<B: Backend>() {
    let b = B::fresh();
    let storage = b.storage();
    let (token, secret) = storage
        .create_token("coordinator", "office laptop", &[], T0)
        .unwrap();
    let device = "0d".repeat(16);
    storage.authenticate(&secret, &device, T0).unwrap();
    let mut office = Office::new();
    let ana = office.contact("Ana");
    let ben = office.contact("Ben");
    let author = Author {
        device: device.clone(),
        token_id: token.clone(),
        scoped: false,
    };
    storage.append(&author, &office.changes(), T0 + 3).unwrap();
    let all = storage.audit(None).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].seq, 1);
    assert_eq!(all[0].device, device);
    assert_eq!(all[0].token_id, token);
    assert_eq!(all[0].label, "office laptop");
    assert_eq!(all[0].role, "coordinator");
    assert_eq!(all[0].received_at, T0 + 3);
    assert!(!all[0].erased);
    let one = storage.audit(Some(&ben)).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].doc, ben);
    assert_ne!(one[0].doc, ana);
}
