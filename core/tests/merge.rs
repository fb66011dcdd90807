//! Merge semantics: replicas edit concurrently (offline), then merge in
//! every order; every order gives the same, expected, result.

mod support;

use muster_core::{Donation, NewFeedback, SignupStatus, Store};
use support::*;

/// Merges the replicas pairwise in place, and checks that replaying their
/// changes into a fresh store in every order gives what they all show.
fn converge(stores: &mut [Store]) -> String {
    let orders = permutations(stores.len());
    let replayed: Vec<String> = orders.iter().map(|o| replay(stores, o)).collect();
    sync_all(stores);
    let first = fingerprint(&mut stores[0]);
    for (i, s) in stores.iter_mut().enumerate() {
        assert_eq!(fingerprint(s), first, "replica {i} differs after merge");
    }
    for (order, fp) in orders.iter().zip(&replayed) {
        assert_eq!(fp, &first, "merging in order {order:?} differs");
    }
    first
}

#[test]
fn different_fields_edited_on_two_devices_are_both_kept() {
    let (mut s, _, ids) = replicas_with_event(2, &["Ana Silva"], None);
    let ana = &ids[0];
    s[0].update_contact(ana, T0 + 1, |c| {
        c.phones.push("+351 912 345 678".into());
        Ok(())
    })
    .unwrap();
    s[1].update_contact(ana, T0 + 2, |c| {
        c.emails.push("ana@example.org".into());
        c.address.city = "Lisboa".into();
        Ok(())
    })
    .unwrap();
    converge(&mut s);
    for store in &mut s {
        let c = store.contact(ana).unwrap();
        assert_eq!(c.phones, ["+351 912 345 678"]);
        assert_eq!(c.emails, ["ana@example.org"]);
        assert_eq!(c.address.city, "Lisboa");
        assert_eq!(
            store
                .field_conflicts(ana, &["address", "city"])
                .unwrap()
                .len(),
            1
        );
    }
}

#[test]
fn same_field_on_two_devices_has_one_winner_and_keeps_the_other_as_a_conflict() {
    let (mut s, _, ids) = replicas_with_event(3, &["Ana Silva"], None);
    let ana = &ids[0];
    s[0].update_contact(ana, T0 + 1, |c| {
        c.name = "Ana Sylva".into();
        Ok(())
    })
    .unwrap();
    s[1].update_contact(ana, T0 + 2, |c| {
        c.name = "Anna Silva".into();
        Ok(())
    })
    .unwrap();
    converge(&mut s);
    let winner = s[0].contact(ana).unwrap().name;
    assert!(winner == "Ana Sylva" || winner == "Anna Silva", "{winner}");
    for store in &mut s {
        assert_eq!(store.contact(ana).unwrap().name, winner);
        let values = store.field_conflicts(ana, &["name"]).unwrap();
        assert_eq!(values.len(), 2, "{values:?}");
        assert_eq!(values[0], serde_json::json!(winner), "winner listed first");
        let mut all: Vec<_> = values
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        all.sort();
        assert_eq!(all, ["Ana Sylva", "Anna Silva"]);
        // The search index shows the winner.
        assert_eq!(store.search_contacts(&winner, 5).unwrap()[0].name, winner);
    }
    // Resolving the conflict by writing a value clears it everywhere.
    s[2].update_contact(ana, T0 + 3, |c| {
        c.name = "Ana Silva".into();
        Ok(())
    })
    .unwrap();
    converge(&mut s);
    for store in &mut s {
        assert_eq!(store.field_conflicts(ana, &["name"]).unwrap().len(), 1);
        assert_eq!(store.contact(ana).unwrap().name, "Ana Silva");
    }
}

#[test]
fn the_same_person_signed_up_at_two_desks_is_one_sign_up() {
    let (mut s, event, ids) = replicas_with_event(2, &["Ana Silva"], Some(10));
    s[0].sign_up(&event, &ids[0], false, T0 + 10).unwrap();
    s[1].sign_up(&event, &ids[0], true, T0 + 20).unwrap();
    converge(&mut s);
    for store in &mut s {
        let roster = store.roster(&event, None).unwrap();
        assert_eq!(roster.len(), 1, "{roster:?}");
        assert_eq!(roster[0].contact_id, ids[0]);
        assert_eq!(roster[0].status, SignupStatus::Registered);
        assert_eq!(roster[0].name.as_deref(), Some("Ana Silva"));
        assert_eq!(store.list_events().unwrap()[0].registered, 1);
    }
}

#[test]
fn a_check_in_beats_a_concurrent_cancellation() {
    // Rule (views.rs): a person who was checked in was there.
    let (mut s, event, ids) = replicas_with_event(2, &["Ana Silva", "Bo Chen"], Some(10));
    for id in &ids {
        s[0].sign_up(&event, id, false, T0 + 10).unwrap();
    }
    sync_all(&mut s);
    // Ana: checked in at the door while the office records her cancellation.
    s[0].check_in(&event, &ids[0], T0 + 100).unwrap();
    s[1].cancel_signup(&event, &ids[0], T0 + 90).unwrap();
    // Bo: marked as a no-show by the office while the desk checks him in.
    s[0].check_in(&event, &ids[1], T0 + 200).unwrap();
    s[1].mark_no_show(&event, &ids[1], T0 + 300).unwrap();
    converge(&mut s);
    for store in &mut s {
        let roster = store.roster(&event, None).unwrap();
        assert!(
            roster.iter().all(|r| r.status == SignupStatus::CheckedIn),
            "{roster:?}"
        );
        assert_eq!(store.list_events().unwrap()[0].checked_in, 2);
    }
}

#[test]
fn a_walk_in_checked_in_at_one_desk_and_registered_at_another_stays_checked_in() {
    let (mut s, event, ids) = replicas_with_event(2, &["Ana Silva"], Some(10));
    s[0].check_in(&event, &ids[0], T0 + 100).unwrap();
    s[1].sign_up(&event, &ids[0], false, T0 + 50).unwrap();
    converge(&mut s);
    for store in &mut s {
        let roster = store.roster(&event, None).unwrap();
        assert_eq!(roster.len(), 1);
        assert_eq!(roster[0].status, SignupStatus::CheckedIn);
        assert_eq!(roster[0].checked_in_at, Some(T0 + 100));
    }
}

#[test]
fn sign_ups_past_capacity_made_offline_are_waitlisted_alike_everywhere() {
    let names = ["A", "B", "C", "D", "E", "F", "G"];
    let (mut s, event, ids) = replicas_with_event(3, &names, Some(4));
    // Each desk registers people offline; registration times interleave,
    // and two share one millisecond (ties break by contact id).
    s[0].sign_up(&event, &ids[0], false, T0 + 30).unwrap();
    s[0].sign_up(&event, &ids[1], false, T0 + 60).unwrap();
    s[1].sign_up(&event, &ids[2], false, T0 + 10).unwrap();
    s[1].sign_up(&event, &ids[3], false, T0 + 60).unwrap();
    s[2].sign_up(&event, &ids[4], false, T0 + 20).unwrap();
    s[2].sign_up(&event, &ids[5], false, T0 + 70).unwrap();
    s[2].sign_up(&event, &ids[6], false, T0 + 5).unwrap();
    // Before merging, each desk sees no waitlist of its own.
    for store in &s {
        assert!(
            store
                .roster(&event, Some(SignupStatus::Waitlisted))
                .unwrap()
                .is_empty()
        );
    }
    converge(&mut s);

    let mut by_time: Vec<(i64, &String)> = vec![
        (T0 + 30, &ids[0]),
        (T0 + 60, &ids[1]),
        (T0 + 10, &ids[2]),
        (T0 + 60, &ids[3]),
        (T0 + 20, &ids[4]),
        (T0 + 70, &ids[5]),
        (T0 + 5, &ids[6]),
    ];
    by_time.sort();
    let seated: Vec<&String> = by_time[..4].iter().map(|(_, id)| *id).collect();
    let waiting: Vec<&String> = by_time[4..].iter().map(|(_, id)| *id).collect();
    for store in &mut s {
        let roster = store.roster(&event, None).unwrap();
        let registered: Vec<&String> = roster
            .iter()
            .filter(|r| r.status == SignupStatus::Registered)
            .map(|r| &r.contact_id)
            .collect();
        assert_eq!(registered, seated);
        let waitlist = store
            .roster(&event, Some(SignupStatus::Waitlisted))
            .unwrap();
        let listed: Vec<&String> = waitlist.iter().map(|r| &r.contact_id).collect();
        assert_eq!(listed, waiting);
        let positions: Vec<_> = waitlist.iter().map(|r| r.waitlist_position).collect();
        assert_eq!(positions, [Some(1), Some(2), Some(3)]);
    }

    // A cancellation frees a seat: the first on the waitlist moves up.
    s[0].cancel_signup(&event, seated[0], T0 + 500).unwrap();
    converge(&mut s);
    for store in &mut s {
        let registered = store
            .roster(&event, Some(SignupStatus::Registered))
            .unwrap();
        assert!(registered.iter().any(|r| &r.contact_id == waiting[0]));
        assert_eq!(
            store
                .roster(&event, Some(SignupStatus::Waitlisted))
                .unwrap()
                .len(),
            2
        );
    }
}

#[test]
fn notes_typed_concurrently_keep_both_insertions() {
    let (mut s, _, ids) = replicas_with_event(3, &["Ana Silva"], None);
    let ana = &ids[0];
    s[0].splice_contact_notes(ana, 0, 0, "Prefers Portuguese.", T0 + 1)
        .unwrap();
    sync_all(&mut s);
    s[0].splice_contact_notes(ana, 0, 0, "Allergic to nuts. ", T0 + 2)
        .unwrap();
    s[1].splice_contact_notes(ana, 19, 0, " Volunteered in 2025.", T0 + 3)
        .unwrap();
    s[2].splice_contact_notes(ana, 8, 10, "Spanish", T0 + 4)
        .unwrap();
    converge(&mut s);
    for store in &mut s {
        let notes = store.contact(ana).unwrap().notes.as_str().to_owned();
        assert_eq!(
            notes,
            "Allergic to nuts. Prefers Spanish. Volunteered in 2025."
        );
    }
}

#[test]
fn private_ledgers_started_offline_on_two_devices_keep_every_entry() {
    let (mut s, _, ids) = replicas_with_event(2, &["Ana Silva"], None);
    let gift = |amount, method: &str| Donation {
        id: String::new(),
        amount_minor: amount,
        currency: "eur".into(),
        date: T0,
        method: method.into(),
        note: None,
        recorded_by: String::new(),
    };
    // Neither device has a ledger for Ana; both start one offline.
    s[0].add_to_ledger(&ids[0], gift(2_500, "cash"), T0 + 1)
        .unwrap();
    s[1].add_to_ledger(&ids[0], gift(10_000, "card"), T0 + 2)
        .unwrap();
    s[1].append_sensitive_note(&ids[0], "Asked not to be phoned.", T0 + 3)
        .unwrap();
    converge(&mut s);
    for store in &mut s {
        let ledger = store.contact_private(&ids[0]).unwrap();
        let mut amounts: Vec<i64> = ledger.donations.iter().map(|d| d.amount_minor).collect();
        amounts.sort();
        assert_eq!(amounts, [2_500, 10_000]);
        assert_eq!(ledger.totals(), [("EUR".to_owned(), 12_500)]);
        assert_eq!(ledger.sensitive_notes.as_str(), "Asked not to be phoned.");
    }
}

#[test]
fn a_case_assigned_on_one_device_and_answered_on_another_is_responded() {
    let (mut s, _, ids) = replicas_with_event(2, &["Ana Silva"], None);
    let case = s[0]
        .create_feedback(
            &NewFeedback {
                contact_id: Some(ids[0].clone()),
                channel: "in_person".into(),
                category: "complaint".into(),
                text: "The queue was two hours long.".into(),
            },
            T0,
        )
        .unwrap();
    sync_all(&mut s);
    s[0].assign_feedback(&case, "Marta (events lead)", T0 + 1_000)
        .unwrap();
    s[1].respond_feedback(&case, "Sorry — we are adding a second desk.", T0 + 5_000)
        .unwrap();
    s[0].respond_feedback(&case, "Called back to apologise.", T0 + 3_000)
        .unwrap();
    converge(&mut s);
    for store in &mut s {
        let f = store.feedback(&case).unwrap();
        assert_eq!(
            f.status(),
            muster_core::model::feedback::FeedbackStatus::Responded
        );
        assert_eq!(f.first_response_at(), Some(T0 + 3_000));
        assert_eq!(f.responses.len(), 2);
        assert_eq!(f.assigned_to.as_deref(), Some("Marta (events lead)"));
        assert!(!f.is_overdue(T0 + 48 * 3_600_000));
    }
}

/// A conflict settled by a person choosing one of its values: the choice
/// supersedes both on every replica, and a value the field never held is
/// refused, writing nothing.
#[test]
fn a_conflict_is_settled_by_choosing_one_of_its_values() {
    let (mut s, _, ids) = replicas_with_event(2, &["Ana Silva"], None);
    let ana = &ids[0];
    s[0].update_contact(ana, T0 + 1, |c| {
        c.name = "Ana Sylva".into();
        Ok(())
    })
    .unwrap();
    s[1].update_contact(ana, T0 + 2, |c| {
        c.name = "Anna Silva".into();
        Ok(())
    })
    .unwrap();
    sync_all(&mut s);
    let values = s[0].field_conflicts(ana, &["name"]).unwrap();
    assert_eq!(values.len(), 2);
    let loser = values[1].clone();
    let heads = s[0].heads(ana).unwrap();
    assert!(
        s[0].resolve_conflict(ana, &["name"], &serde_json::json!("Ana Smith"), T0 + 3)
            .is_err()
    );
    assert!(
        s[0].resolve_conflict(ana, &["phones"], &loser, T0 + 3)
            .is_err()
    );
    assert_eq!(
        s[0].heads(ana).unwrap(),
        heads,
        "a refused choice writes nothing"
    );
    s[0].resolve_conflict(ana, &["name"], &loser, T0 + 3)
        .unwrap();
    sync_all(&mut s);
    for store in &mut s {
        assert_eq!(serde_json::json!(store.contact(ana).unwrap().name), loser);
        assert_eq!(
            store.field_conflicts(ana, &["name"]).unwrap(),
            std::slice::from_ref(&loser)
        );
        let found = store.search_contacts(loser.as_str().unwrap(), 5).unwrap();
        assert_eq!(found.len(), 1, "the index shows the choice");
    }
    assert!(
        s[1].resolve_conflict(ana, &["name"], &loser, T0 + 4)
            .is_err(),
        "nothing left to choose"
    );
}
