//! The device store: persistence across reopen, search, rosters by status,
//! compaction that keeps what the relay has not acknowledged.

mod support;

use muster_core::store::COMPACT_AFTER;
use muster_core::{NewContact, NewEvent, SignupStatus, Store};
use support::*;

fn person(name: &str, phone: Option<&str>, email: Option<&str>) -> NewContact {
    NewContact {
        name: name.into(),
        phones: phone.into_iter().map(Into::into).collect(),
        emails: email.into_iter().map(Into::into).collect(),
        ..Default::default()
    }
}

#[test]
fn everything_written_is_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.muster");
    let (ana, gala, device);
    {
        let mut s = Store::open(&path).unwrap();
        device = s.device_id().to_owned();
        ana = s
            .create_contact(&person("Ana Silva", Some("+351 912 345 678"), None), T0)
            .unwrap();
        s.splice_contact_notes(&ana, 0, 0, "Zoë's friend 🙂", T0 + 1)
            .unwrap();
        s.splice_contact_notes(&ana, 6, 0, "best ", T0 + 2).unwrap();
        gala = s
            .create_event(&NewEvent::new("Gala", T0, "Hall", Some(1)), T0)
            .unwrap();
        s.check_in(&gala, &ana, T0 + 3).unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.device_id(), device, "a store keeps its device id");
    let c = s.contact(&ana).unwrap();
    assert_eq!(c.name, "Ana Silva");
    assert_eq!(c.notes.as_str(), "Zoë's best friend 🙂");
    assert_eq!(c.created_by, device);
    let roster = s.roster(&gala, None).unwrap();
    assert_eq!(roster.len(), 1);
    assert_eq!(roster[0].status, SignupStatus::CheckedIn);
    assert!(roster[0].walk_in);
    assert_eq!(s.search_contacts("912 345", 5).unwrap()[0].id, ana);
    s.integrity_check().unwrap();
}

#[test]
fn search_finds_any_part_of_a_name_phone_or_email() {
    let mut s = Store::open_in_memory().unwrap();
    let ana = s
        .create_contact(
            &person(
                "Ana Silva",
                Some("+351 912 345 678"),
                Some("ana.s@example.org"),
            ),
            T0,
        )
        .unwrap();
    let jose = s
        .create_contact(&person("José Núñez", Some("(555) 010-9999"), None), T0)
        .unwrap();
    let zoe = s
        .create_contact(&person("Zoë Müller", None, Some("zoe@muller.de")), T0)
        .unwrap();
    fn found(s: &Store, q: &str) -> Vec<String> {
        let mut v: Vec<String> = s
            .search_contacts(q, 10)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        v.sort();
        v
    }
    let ids = |q: &str| found(&s, q);
    assert_eq!(ids("silva"), vec![ana.clone()], "family name");
    assert_eq!(ids("ilv"), vec![ana.clone()], "inside a word");
    assert_eq!(
        ids("SILVA ana"),
        vec![ana.clone()],
        "all words, any order, any case"
    );
    assert_eq!(ids("nunez"), vec![jose.clone()], "accents ignored");
    assert_eq!(ids("núñ"), vec![jose.clone()], "accents typed");
    assert_eq!(
        ids("5550109999"),
        vec![jose.clone()],
        "phone digits without separators"
    );
    assert_eq!(ids("010-99"), vec![jose.clone()], "phone as typed");
    assert_eq!(ids("345 678"), vec![ana.clone()], "phone fragments");
    assert_eq!(ids("example.org"), vec![ana.clone()], "email domain");
    assert_eq!(ids("mull"), vec![zoe.clone()], "umlaut folded");
    assert_eq!(ids("zo"), vec![zoe.clone()], "two letters: name prefix");
    assert!(ids("nobody").is_empty());
    assert!(ids("").is_empty());
    assert!(
        ids("\"; DROP TABLE contacts; --").is_empty(),
        "query syntax is quoted"
    );
    assert_eq!(s.contact_count().unwrap(), 3);

    // Edits reach the index in the same write.
    s.update_contact(&ana, T0 + 1, |c| {
        c.name = "Ana Costa".into();
        Ok(())
    })
    .unwrap();
    assert!(found(&s, "silva").is_empty());
    assert_eq!(found(&s, "costa"), vec![ana.clone()]);

    // Merged duplicates drop out of search but stay listed.
    s.update_contact(&jose, T0 + 2, |c| {
        c.merged_into = Some(ana.clone());
        Ok(())
    })
    .unwrap();
    assert!(found(&s, "nunez").is_empty());
    assert_eq!(s.list_contacts(10, 0).unwrap().len(), 3);
}

#[test]
fn rosters_list_sign_ups_by_status() {
    let (mut s, event, ids) = replicas_with_event(1, &["A", "B", "C", "D"], Some(2));
    let s = &mut s[0];
    for (i, id) in ids.iter().enumerate() {
        s.sign_up(&event, id, false, T0 + i as i64).unwrap();
    }
    s.check_in(&event, &ids[1], T0 + 100).unwrap();
    let status = |s: &Store, st| -> Vec<String> {
        s.roster(&event, Some(st))
            .unwrap()
            .into_iter()
            .map(|r| r.contact_id)
            .collect()
    };
    assert_eq!(status(s, SignupStatus::Registered), [ids[0].clone()]);
    assert_eq!(status(s, SignupStatus::CheckedIn), [ids[1].clone()]);
    assert_eq!(
        status(s, SignupStatus::Waitlisted),
        [ids[2].clone(), ids[3].clone()]
    );
    let summary = &s.list_events().unwrap()[0];
    assert_eq!(
        (summary.registered, summary.waitlisted, summary.checked_in),
        (2, 2, 1)
    );

    s.cancel_signup(&event, &ids[0], T0 + 200).unwrap();
    assert_eq!(status(s, SignupStatus::Cancelled), [ids[0].clone()]);
    assert_eq!(status(s, SignupStatus::Registered), [ids[2].clone()]);
    assert_eq!(status(s, SignupStatus::Waitlisted), [ids[3].clone()]);

    // Signing up again after cancelling joins the back of the queue.
    s.sign_up(&event, &ids[0], false, T0 + 300).unwrap();
    assert_eq!(
        status(s, SignupStatus::Waitlisted),
        [ids[3].clone(), ids[0].clone()]
    );

    // Raising capacity seats the waitlist.
    s.update_event(&event, T0 + 400, |e| {
        e.capacity = None;
        Ok(())
    })
    .unwrap();
    assert!(status(s, SignupStatus::Waitlisted).is_empty());
    assert_eq!(s.roster(&event, None).unwrap().len(), 4);
}

#[test]
fn compaction_keeps_changes_the_relay_has_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.muster");
    let mut s = Store::open(&path).unwrap();
    let ana = contact(&mut s, "Ana Silva");
    // Acknowledge the creation, then make many more edits than the
    // compaction threshold without any acknowledgement.
    let first: Vec<_> = s
        .pending_changes(10)
        .unwrap()
        .iter()
        .map(|p| p.hash)
        .collect();
    assert_eq!(s.acknowledge(&first, T0).unwrap(), 1);
    let edits = COMPACT_AFTER as usize * 2 + 5;
    for i in 0..edits {
        s.update_contact(&ana, T0 + i as i64, |c| {
            c.custom.insert("visits".into(), i.to_string());
            Ok(())
        })
        .unwrap();
    }
    assert_eq!(
        s.pending_count().unwrap(),
        edits as i64,
        "every unacknowledged edit is kept"
    );
    // Acknowledge half; the next compaction drops exactly those.
    let pending = s.pending_changes(1_000).unwrap();
    let half: Vec<_> = pending[..edits / 2].iter().map(|p| p.hash).collect();
    s.acknowledge(&half, T0 + 10_000).unwrap();
    assert_eq!(s.last_acknowledged_at().unwrap(), Some(T0 + 10_000));
    s.compact(&ana).unwrap();
    let left = edits - edits / 2;
    assert_eq!(s.stored_change_count(&ana).unwrap(), left as i64);
    assert_eq!(s.pending_count().unwrap(), left as i64);
    let still_pending: Vec<_> = s
        .pending_changes(1_000)
        .unwrap()
        .iter()
        .map(|p| p.hash)
        .collect();
    assert_eq!(
        still_pending,
        pending[edits / 2..]
            .iter()
            .map(|p| p.hash)
            .collect::<Vec<_>>()
    );

    // Reopened from snapshot + remaining changes, the record is whole, and
    // another device that receives the pending changes after the
    // acknowledged history converges with it.
    drop(s);
    let mut s = Store::open(&path).unwrap();
    let heads = s.heads(&ana).unwrap();
    assert_eq!(
        s.contact(&ana)
            .unwrap()
            .custom
            .get("visits")
            .map(String::as_str),
        Some((edits - 1).to_string().as_str())
    );
    let mut other = Store::open_in_memory().unwrap();
    push(&mut s, &mut other);
    assert_eq!(other.heads(&ana).unwrap(), heads);
    assert_eq!(other.contact(&ana).unwrap(), s.contact(&ana).unwrap());
}

#[test]
fn long_histories_are_compacted_automatically() {
    let mut s = Store::open_in_memory().unwrap();
    let ana = contact(&mut s, "Ana Silva");
    let mut other = Store::open_in_memory().unwrap();
    // Changes received from elsewhere are born acknowledged, so they fold.
    for i in 0..(COMPACT_AFTER * 3) {
        s.update_contact(&ana, T0 + i, |c| {
            c.custom.insert("n".into(), i.to_string());
            Ok(())
        })
        .unwrap();
    }
    push(&mut s, &mut other);
    assert!(
        other.stored_change_count(&ana).unwrap() < COMPACT_AFTER,
        "remote history was compacted"
    );
    other.clear_cache();
    assert_eq!(other.contact(&ana).unwrap(), s.contact(&ana).unwrap());
}

#[test]
fn changes_applied_twice_are_stored_once() {
    let mut a = Store::open_in_memory().unwrap();
    let mut b = Store::open_in_memory().unwrap();
    let ana = contact(&mut a, "Ana Silva");
    let changes = a.changes_of(&ana).unwrap();
    let first = b.apply_changes(&ana, &changes).unwrap();
    let again = b.apply_changes(&ana, &changes).unwrap();
    assert_eq!((first.new_changes, first.duplicates), (1, 0));
    assert_eq!((again.new_changes, again.duplicates), (0, 1));
    assert_eq!(b.stored_change_count(&ana).unwrap(), 1);
    assert_eq!(
        b.pending_count().unwrap(),
        0,
        "remote changes are not pushed back"
    );
    assert_eq!(b.search_contacts("silva", 5).unwrap().len(), 1);
}

#[test]
fn a_batch_of_contacts_is_one_pending_change_each() {
    let mut a = Store::open_in_memory().unwrap();
    let new: Vec<NewContact> = (0..500)
        .map(|i| person(&format!("Person {i}"), None, None))
        .collect();
    let ids = a.create_contacts(&new, T0).unwrap();
    assert_eq!(ids.len(), 500);
    let mut b = Store::open_in_memory().unwrap();
    push(&mut a, &mut b);
    assert_eq!(b.contact_count().unwrap(), 500);
    assert_eq!(a.pending_count().unwrap(), 500);
}

#[test]
fn a_batch_with_one_bad_contact_stores_none_of_it() {
    let mut a = Store::open_in_memory().unwrap();
    // The bad one comes after the first few hundred were written (new
    // contacts are built and written a chunk at a time).
    let mut new: Vec<NewContact> = (0..600)
        .map(|i| person(&format!("Person {i}"), None, None))
        .collect();
    new[550].name = "   ".into();
    let err = a.create_contacts(&new, T0).unwrap_err();
    assert!(err.to_string().contains("name"), "{err}");
    assert_eq!(a.contact_count().unwrap(), 0);
    assert_eq!(a.pending_count().unwrap(), 0);
    assert!(a.search_contacts("person", 5).unwrap().is_empty());
}

/// New documents' ids sort in the order they were made, so the tables
/// keyed by id grow at their end (a 100,000-row import stays linear).
#[test]
fn records_made_one_after_another_have_ids_in_that_order() {
    let mut a = Store::open_in_memory().unwrap();
    let new: Vec<NewContact> = (0..300)
        .map(|i| person(&format!("Person {i}"), None, None))
        .collect();
    let mut ids = a.create_contacts(&new, T0).unwrap();
    ids.push(contact(&mut a, "Ana Silva"));
    ids.push(contact(&mut a, "Ben Okafor"));
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    sorted.dedup();
    assert_eq!(sorted.len(), 302);
}

#[test]
fn changes_that_arrive_before_their_dependencies_survive_compaction() {
    let mut a = Store::open_in_memory().unwrap();
    let ana = contact(&mut a, "Ana Silva");
    for i in 0..3 {
        a.update_contact(&ana, T0 + i, |c| {
            c.custom.insert("n".into(), i.to_string());
            Ok(())
        })
        .unwrap();
    }
    let changes = a.changes_of(&ana).unwrap();
    let mut b = Store::open_in_memory().unwrap();
    // The last change arrives first, alone: it cannot be applied yet.
    b.apply_changes(&ana, &changes[3..]).unwrap();
    b.compact(&ana).unwrap();
    assert_eq!(
        b.stored_change_count(&ana).unwrap(),
        1,
        "the waiting change is kept"
    );
    b.clear_cache();
    // The rest arrives; the record is whole.
    b.apply_changes(&ana, &changes[..3]).unwrap();
    b.clear_cache();
    assert_eq!(b.contact(&ana).unwrap(), a.contact(&ana).unwrap());
    assert_eq!(b.heads(&ana).unwrap(), a.heads(&ana).unwrap());
    assert_eq!(b.search_contacts("silva", 5).unwrap().len(), 1);
}

#[test]
fn the_ledger_shifts_and_the_feedback_workflow_survive_reopening() {
    use muster_core::model::feedback::FeedbackStatus;
    use muster_core::{Interaction, NewFeedback, Pledge, Shift};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.muster");
    let (ana, gala, shift, case);
    {
        let mut s = Store::open(&path).unwrap();
        ana = s
            .create_contact(&person("Ana Silva", None, None), T0)
            .unwrap();
        s.update_contact(&ana, T0 + 1, |c| {
            c.household = Some("Silva family".into());
            c.consent.given = true;
            c.consent.channels.insert("sms".into(), true);
            c.consent.recorded_at = Some(T0 + 1);
            c.consent.method = Some("paper form".into());
            Ok(())
        })
        .unwrap();
        s.add_to_ledger(
            &ana,
            Pledge {
                id: String::new(),
                amount_minor: 1_000,
                currency: "EUR".into(),
                frequency: "monthly".into(),
                starts: T0,
                ends: None,
                recorded_by: String::new(),
            },
            T0 + 2,
        )
        .unwrap();
        s.add_to_ledger(
            &ana,
            Interaction {
                id: String::new(),
                channel: "call".into(),
                at: T0 + 3,
                by: "Bo".into(),
                summary: "Thanked her for the pledge".into(),
            },
            T0 + 3,
        )
        .unwrap();
        s.append_sensitive_note(&ana, "Prefers no photos", T0 + 4)
            .unwrap();

        gala = s
            .create_event(&NewEvent::new("Gala", T0, "Hall", Some(10)), T0)
            .unwrap();
        s.sign_up(&gala, &ana, false, T0 + 5).unwrap();
        s.check_in(&gala, &ana, T0 + 6).unwrap();
        s.undo_check_in(&gala, &ana, T0 + 7).unwrap();
        shift = s
            .add_shift(
                &gala,
                Shift {
                    contact_id: ana.clone(),
                    role: "registration desk".into(),
                    starts_at: T0,
                    ends_at: T0 + 3 * 3_600_000,
                    minutes_worked: None,
                },
                T0 + 8,
            )
            .unwrap();
        s.record_shift_minutes(&gala, &shift, 170, T0 + 9).unwrap();
        assert!(
            s.record_shift_minutes(&gala, "no-such-shift", 1, T0 + 9)
                .is_err(),
            "an unknown shift is an error"
        );

        case = s
            .create_feedback(
                &NewFeedback {
                    contact_id: Some(ana.clone()),
                    channel: "phone".into(),
                    category: "complaint".into(),
                    text: "The queue was long".into(),
                },
                T0 + 10,
            )
            .unwrap();
        assert_eq!(
            s.feedback(&case).unwrap().status(),
            FeedbackStatus::Received
        );
        s.assign_feedback(&case, "Bo", T0 + 11).unwrap();
        assert_eq!(
            s.feedback(&case).unwrap().status(),
            FeedbackStatus::Assigned
        );
        s.respond_feedback(&case, "Sorry: two desks next time", T0 + 12)
            .unwrap();
        assert_eq!(
            s.feedback(&case).unwrap().status(),
            FeedbackStatus::Responded
        );
        s.resolve_feedback(&case, Some(4), T0 + 13).unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    s.integrity_check().unwrap();

    let c = s.contact(&ana).unwrap();
    assert_eq!(c.household.as_deref(), Some("Silva family"));
    assert!(c.consent.given);
    assert_eq!(c.consent.channels.get("sms"), Some(&true));
    assert_eq!(c.consent.method.as_deref(), Some("paper form"));

    let p = s.contact_private(&ana).unwrap();
    assert_eq!(p.pledges.len(), 1);
    assert_eq!(p.pledges[0].frequency, "monthly");
    assert!(!p.pledges[0].id.is_empty(), "the store gives entries ids");
    assert_eq!(p.interactions.len(), 1);
    assert_eq!(p.interactions[0].summary, "Thanked her for the pledge");
    assert!(p.sensitive_notes.as_str().contains("Prefers no photos"));

    let e = s.event(&gala).unwrap();
    assert_eq!(e.shifts[&shift].minutes_worked, Some(170));
    let roster = s.roster(&gala, None).unwrap();
    assert_eq!(roster.len(), 1);
    assert_eq!(
        roster[0].status,
        SignupStatus::Registered,
        "check-in undone"
    );
    assert_eq!(roster[0].checked_in_at, None);

    let f = s.feedback(&case).unwrap();
    assert_eq!(f.status(), FeedbackStatus::Resolved);
    assert_eq!(f.first_response_at(), Some(T0 + 12));
    assert_eq!(f.resolved_at, Some(T0 + 13));
    assert_eq!(f.satisfaction, Some(4));
    assert!(!f.is_overdue(T0 + 10 * 86_400_000), "answered within 24 h");
}

/// What a phone's lists page through: the roster, a search, events by
/// date, feedback by status; and an event's own fields edited, then the
/// event cancelled.
#[test]
fn lists_page_and_filter_and_an_event_is_edited_then_cancelled() {
    use muster_core::{EventEdit, FeedbackStatus, NewFeedback};
    let mut s = Store::open_in_memory().unwrap();
    let past = s
        .create_event(
            &NewEvent::new("Spring fair", T0 - 86_400_000, "Park", None),
            T0,
        )
        .unwrap();
    let gala = s
        .create_event(&NewEvent::new("Gala", T0 + 86_400_000, "Hall", Some(2)), T0)
        .unwrap();
    let ids: Vec<String> = ["Ana Silva", "Ana Sousa", "Ana Santos", "Bo Chen"]
        .iter()
        .map(|n| s.create_contact(&NewContact::named(*n), T0).unwrap())
        .collect();
    for (i, c) in ids.iter().enumerate() {
        s.sign_up(&gala, c, false, T0 + i as i64).unwrap();
    }

    let upcoming: Vec<String> = s
        .events_between(Some(T0), None)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(upcoming, [gala.as_str()]);
    let before: Vec<String> = s
        .events_between(None, Some(T0))
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(before, [past.as_str()]);

    let page = |limit, offset| -> Vec<String> {
        s.roster_page(&gala, None, limit, offset)
            .unwrap()
            .into_iter()
            .map(|l| l.contact_id)
            .collect()
    };
    assert_eq!(page(Some(2), 0), ids[..2]);
    assert_eq!(page(Some(2), 2), ids[2..]);
    assert_eq!(page(None, 3), ids[3..]);
    let waiting = s
        .roster_page(&gala, Some(SignupStatus::Waitlisted), Some(10), 0)
        .unwrap();
    assert_eq!(waiting.len(), 2);

    let first: Vec<String> = s
        .search_contacts_page("ana", 2, 0)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    let next: Vec<String> = s
        .search_contacts_page("ana", 2, 2)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(first, ["Ana Santos", "Ana Silva"]);
    assert_eq!(next, ["Ana Sousa"]);

    // More seats: the waiting take them, in order.
    s.edit_event_fields(
        &gala,
        &EventEdit {
            title: Some("Winter gala".into()),
            capacity: Some(3),
            ..Default::default()
        },
        T0 + 10,
    )
    .unwrap();
    let e = s.event_summary(&gala).unwrap().unwrap();
    assert_eq!(
        (e.title.as_str(), e.capacity, e.registered, e.waitlisted),
        ("Winter gala", Some(3), 3, 1)
    );
    s.edit_event_fields(
        &gala,
        &EventEdit {
            clear_capacity: true,
            ..Default::default()
        },
        T0 + 11,
    )
    .unwrap();
    assert_eq!(s.event_summary(&gala).unwrap().unwrap().waitlisted, 0);
    let bad = s.edit_event_fields(
        &gala,
        &EventEdit {
            title: Some(" ".into()),
            ..Default::default()
        },
        T0 + 12,
    );
    assert!(bad.is_err());
    assert_eq!(
        s.event_summary(&gala).unwrap().unwrap().title,
        "Winter gala"
    );
    s.cancel_event(&gala, T0 + 13).unwrap();
    let e = s.event_summary(&gala).unwrap().unwrap();
    assert_eq!(e.status, "cancelled");
    assert_eq!(e.registered, 4, "the sign-ups stay");

    let new = |text: &str| NewFeedback {
        contact_id: Some(ids[0].clone()),
        channel: "phone".into(),
        category: "complaint".into(),
        text: text.into(),
    };
    let older = s.create_feedback(&new("The queue was long"), T0).unwrap();
    let newer = s.create_feedback(&new("No parking"), T0 + 1).unwrap();
    s.assign_feedback(&older, "Dana", T0 + 2).unwrap();
    let all: Vec<String> = s
        .list_feedback(None, 10, 0)
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(all, [newer.clone(), older.clone()]);
    let assigned = s
        .list_feedback(Some(FeedbackStatus::Assigned), 10, 0)
        .unwrap();
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0].assigned_to.as_deref(), Some("Dana"));
    assert_eq!(s.list_feedback(None, 1, 1).unwrap()[0].id, older);
}
