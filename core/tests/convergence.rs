//! Property: whatever 3–5 devices do, and in whatever order they exchange
//! changes, once every device has every change they all show the same
//! thing: the same document heads, the same typed records, and the same
//! materialised lists (contacts, events, rosters with their waitlists).
//!
//! Cases: 500 by default (`PROPTEST_CASES` overrides). A failing case is
//! shrunk and saved in `tests/convergence.proptest-regressions`, and replayed first on the
//! next run; keep those files in git.

mod support;

use muster_core::{Donation, NewContact, Store};
use proptest::prelude::*;
use support::*;

const NAMES: [&str; 6] = [
    "Ana Silva",
    "Bo Chen",
    "Chidi Okafor",
    "Zoë Müller",
    "José Núñez",
    "Nguyễn Thị Lan",
];
const PHONES: [&str; 3] = ["+44 7700 900123", "+351 912 345 678", "(555) 010-9999"];
const TAGS: [&str; 4] = ["food-bank", "choir", "youth", "donor-2026"];
const SNIPPETS: [&str; 4] = ["needs ramp", "vegetarian", "🙂", "calls after 6pm"];

#[derive(Debug, Clone)]
enum Op {
    CreateContact {
        at: usize,
        name: usize,
    },
    Rename {
        at: usize,
        contact: usize,
        name: usize,
    },
    AddPhone {
        at: usize,
        contact: usize,
        phone: usize,
    },
    ClearPhones {
        at: usize,
        contact: usize,
    },
    Tag {
        at: usize,
        contact: usize,
        tag: usize,
        on: bool,
    },
    Notes {
        at: usize,
        contact: usize,
        pos: usize,
        del: usize,
        text: usize,
    },
    SignUp {
        at: usize,
        contact: usize,
    },
    CheckIn {
        at: usize,
        contact: usize,
    },
    Cancel {
        at: usize,
        contact: usize,
    },
    Capacity {
        at: usize,
        capacity: Option<i64>,
    },
    Donate {
        at: usize,
        contact: usize,
        amount: i64,
    },
    /// One-way partial merge: `to` receives everything `from` has.
    Push {
        from: usize,
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0usize..5;
    let c = 0usize..16;
    prop_oneof![
        2 => (r.clone(), 0..NAMES.len()).prop_map(|(at, name)| Op::CreateContact { at, name }),
        2 => (r.clone(), c.clone(), 0..NAMES.len()).prop_map(|(at, contact, name)| Op::Rename { at, contact, name }),
        1 => (r.clone(), c.clone(), 0..PHONES.len()).prop_map(|(at, contact, phone)| Op::AddPhone { at, contact, phone }),
        1 => (r.clone(), c.clone()).prop_map(|(at, contact)| Op::ClearPhones { at, contact }),
        1 => (r.clone(), c.clone(), 0..TAGS.len(), any::<bool>()).prop_map(|(at, contact, tag, on)| Op::Tag { at, contact, tag, on }),
        2 => (r.clone(), c.clone(), 0..40usize, 0..4usize, 0..SNIPPETS.len())
            .prop_map(|(at, contact, pos, del, text)| Op::Notes { at, contact, pos, del, text }),
        3 => (r.clone(), c.clone()).prop_map(|(at, contact)| Op::SignUp { at, contact }),
        2 => (r.clone(), c.clone()).prop_map(|(at, contact)| Op::CheckIn { at, contact }),
        1 => (r.clone(), c.clone()).prop_map(|(at, contact)| Op::Cancel { at, contact }),
        1 => (r.clone(), prop::option::of(0i64..4)).prop_map(|(at, capacity)| Op::Capacity { at, capacity }),
        1 => (r.clone(), c.clone(), 1i64..100_000).prop_map(|(at, contact, amount)| Op::Donate { at, contact, amount }),
        3 => (r.clone(), r).prop_map(|(from, to)| Op::Push { from, to }),
    ]
}

/// Contacts a replica holds, in id order: ops pick among them by index.
fn contacts_of(store: &Store) -> Vec<String> {
    store
        .doc_ids()
        .unwrap()
        .into_iter()
        .filter(|id| id.starts_with("c_"))
        .collect()
}

fn run(replicas: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let (mut s, event, _) = replicas_with_event(replicas, &["Seed One", "Seed Two"], Some(3));
    for (step, op) in ops.iter().enumerate() {
        let now = T0 + 1_000 * step as i64;
        let pick = |store: &Store, i: usize| {
            let ids = contacts_of(store);
            ids[i % ids.len()].clone()
        };
        // Errors the API refuses on purpose (cancelling someone not signed
        // up) are part of the game; anything else fails the case.
        let result = match op.clone() {
            Op::CreateContact { at, name } => {
                let at = at % replicas;
                s[at]
                    .create_contact(&NewContact::named(NAMES[name]), now)
                    .map(drop)
            }
            Op::Rename { at, contact, name } => {
                let at = at % replicas;
                let id = pick(&s[at], contact);
                s[at].update_contact(&id, now, |c| {
                    c.name = NAMES[name].into();
                    Ok(())
                })
            }
            Op::AddPhone { at, contact, phone } => {
                let at = at % replicas;
                let id = pick(&s[at], contact);
                s[at].update_contact(&id, now, |c| {
                    c.phones.push(PHONES[phone].into());
                    Ok(())
                })
            }
            Op::ClearPhones { at, contact } => {
                let at = at % replicas;
                let id = pick(&s[at], contact);
                s[at].update_contact(&id, now, |c| {
                    c.phones.clear();
                    Ok(())
                })
            }
            Op::Tag {
                at,
                contact,
                tag,
                on,
            } => {
                let at = at % replicas;
                let id = pick(&s[at], contact);
                s[at].update_contact(&id, now, |c| {
                    if on {
                        c.tags.insert(TAGS[tag].into(), true);
                    } else {
                        c.tags.remove(TAGS[tag]);
                    }
                    Ok(())
                })
            }
            Op::Notes {
                at,
                contact,
                pos,
                del,
                text,
            } => {
                let at = at % replicas;
                let id = pick(&s[at], contact);
                let len = s[at].contact(&id).unwrap().notes.as_str().chars().count();
                let pos = pos.min(len);
                let del = del.min(len - pos);
                s[at].splice_contact_notes(&id, pos, del, SNIPPETS[text], now)
            }
            Op::SignUp { at, contact } => {
                let at = at % replicas;
                let id = pick(&s[at], contact);
                s[at].sign_up(&event, &id, false, now)
            }
            Op::CheckIn { at, contact } => {
                let at = at % replicas;
                let id = pick(&s[at], contact);
                s[at].check_in(&event, &id, now)
            }
            Op::Cancel { at, contact } => {
                let at = at % replicas;
                let id = pick(&s[at], contact);
                match s[at].cancel_signup(&event, &id, now) {
                    Err(muster_core::Error::NotAllowed(_)) => Ok(()),
                    other => other,
                }
            }
            Op::Capacity { at, capacity } => {
                let at = at % replicas;
                s[at].update_event(&event, now, |e| {
                    e.capacity = capacity;
                    Ok(())
                })
            }
            Op::Donate {
                at,
                contact,
                amount,
            } => {
                let at = at % replicas;
                let id = pick(&s[at], contact);
                s[at]
                    .add_to_ledger(
                        &id,
                        Donation {
                            id: String::new(),
                            amount_minor: amount,
                            currency: "EUR".into(),
                            date: now,
                            method: "cash".into(),
                            note: None,
                            recorded_by: String::new(),
                        },
                        now,
                    )
                    .map(drop)
            }
            Op::Push { from, to } => {
                let (from, to) = (from % replicas, to % replicas);
                if from != to {
                    let (a, b) = two(&mut s, from, to);
                    push(a, b);
                }
                Ok(())
            }
        };
        prop_assert!(result.is_ok(), "step {step} {op:?}: {:?}", result.err());
    }

    sync_all(&mut s);
    let expected = fingerprint(&mut s[0]);
    for (i, store) in s.iter_mut().enumerate().skip(1) {
        let got = fingerprint(store);
        prop_assert_eq!(&got, &expected, "replica {} differs from replica 0", i);
    }
    // The materialised rows were updated incrementally, in a different
    // order on each replica; a store that replays everything from scratch
    // must agree with them too.
    let order: Vec<usize> = (0..replicas).rev().collect();
    prop_assert_eq!(replay(&mut s, &order), expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(500),
        max_shrink_iters: 2_000,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("tests/convergence.proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn replicas_converge_whatever_the_edits_and_the_merge_order(
        replicas in 3usize..=5,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run(replicas, &ops)?;
    }
}
