//! Helpers shared by the integration tests: moving changes between stores
//! the way sync will, and a fingerprint of everything a store shows.

#![allow(dead_code)]

use muster_core::{NewContact, NewEvent, Store};

/// A fixed start time for tests (2026-11-01T00:00:00Z).
pub const T0: i64 = 1_793_491_200_000;

/// Copies every change `from` has into `to` (one direction).
pub fn push(from: &mut Store, to: &mut Store) {
    for id in from.doc_ids().unwrap() {
        let changes = from.changes_of(&id).unwrap();
        to.apply_changes(&id, &changes).unwrap();
    }
}

/// Both directions: afterwards `a` and `b` hold the same changes.
pub fn sync(a: &mut Store, b: &mut Store) {
    push(a, b);
    push(b, a);
}

/// Every store receives every change of every other.
pub fn sync_all(stores: &mut [Store]) {
    for i in 0..stores.len() {
        for j in 0..stores.len() {
            if i != j {
                let (a, b) = two(stores, i, j);
                push(a, b);
            }
        }
    }
}

/// Two distinct mutable elements of a slice.
pub fn two(stores: &mut [Store], i: usize, j: usize) -> (&mut Store, &mut Store) {
    assert_ne!(i, j);
    if i < j {
        let (l, r) = stores.split_at_mut(j);
        (&mut l[i], &mut r[0])
    } else {
        let (l, r) = stores.split_at_mut(i);
        (&mut r[0], &mut l[j])
    }
}

/// Everything a store shows, as text ([`Store::fingerprint`]).
pub fn fingerprint(store: &mut Store) -> String {
    store.fingerprint().unwrap()
}

/// Applies, into a fresh store, the changes of `sources` in the given order,
/// and returns its fingerprint.
pub fn replay(sources: &mut [Store], order: &[usize]) -> String {
    let mut fresh = Store::open_in_memory().unwrap();
    for &i in order {
        push(&mut sources[i], &mut fresh);
    }
    fingerprint(&mut fresh)
}

/// All orderings of `0..n`.
pub fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn go(prefix: &mut Vec<usize>, n: usize, out: &mut Vec<Vec<usize>>) {
        if prefix.len() == n {
            out.push(prefix.clone());
            return;
        }
        for i in 0..n {
            if !prefix.contains(&i) {
                prefix.push(i);
                go(prefix, n, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    go(&mut Vec::new(), n, &mut out);
    out
}

/// `n` stores that share one event (capacity `capacity`) and the given
/// contacts, created on the first and synced to all.
pub fn replicas_with_event(
    n: usize,
    contacts: &[&str],
    capacity: Option<i64>,
) -> (Vec<Store>, String, Vec<String>) {
    let mut stores: Vec<Store> = (0..n).map(|_| Store::open_in_memory().unwrap()).collect();
    let event = stores[0]
        .create_event(
            &NewEvent {
                title: "Winter coat drive".into(),
                starts_at: T0,
                ends_at: Some(T0 + 3 * 3_600_000),
                place: "Community hall".into(),
                capacity,
            },
            T0,
        )
        .unwrap();
    let ids = contacts
        .iter()
        .map(|name| contact(&mut stores[0], name))
        .collect();
    sync_all(&mut stores);
    (stores, event, ids)
}

/// Creates a contact with just a name.
pub fn contact(store: &mut Store, name: &str) -> String {
    store.create_contact(&NewContact::named(name), T0).unwrap()
}
