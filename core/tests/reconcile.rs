//! The reconciliation report after a sync: arrivals, merges, conflicting
//! values, sign-ups moved to the waitlist, new duplicate candidates.

mod support;

use muster_core::{NewContact, NewEvent, Store};
use support::*;

/// Applies every change `from` has to `to`; returns the ids that changed.
fn receive(from: &mut Store, to: &mut Store) -> Vec<String> {
    let mut changed = Vec::new();
    for id in from.doc_ids().unwrap() {
        let changes = from.changes_of(&id).unwrap();
        if to.apply_changes(&id, &changes).unwrap().new_changes > 0 {
            changed.push(id);
        }
    }
    changed
}

fn add(s: &mut Store, name: &str, phones: &[&str], at: i64) -> String {
    s.create_contact(
        &NewContact {
            name: name.into(),
            phones: phones.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        },
        at,
    )
    .unwrap()
}

#[test]
fn a_sync_reports_arrivals_merges_conflicts_waitlist_moves_and_duplicates() {
    let mut office = Store::open_in_memory().unwrap();
    let mut desk = Store::open_in_memory().unwrap();
    let gala = office
        .create_event(&NewEvent::new("Gala", T0, "Hall", Some(1)), T0)
        .unwrap();
    let ana = add(&mut office, "Ana Silva", &[], T0);
    let keep = add(&mut office, "Carla Mendes", &[], T0);
    let dup = add(&mut office, "Carla Mendez", &[], T0);
    receive(&mut office, &mut desk);

    // Offline on both sides.
    office.sign_up(&gala, &ana, false, T0 + 10).unwrap();
    office
        .update_contact(&ana, T0 + 11, |c| {
            c.name = "Ana Silva Pereira".into();
            Ok(())
        })
        .unwrap();
    office.merge_contacts(&keep, &dup, T0 + 12).unwrap();
    let dora = add(&mut office, "Dora Quist", &["+44 7700 900777"], T0 + 13);
    let bo = add(&mut desk, "Bo Chen", &[], T0 + 20);
    desk.sign_up(&gala, &bo, false, T0 + 20).unwrap(); // after Ana: loses the seat
    desk.update_contact(&ana, T0 + 21, |c| {
        c.name = "Anna Silva".into();
        Ok(())
    })
    .unwrap();
    add(&mut desk, "Dora Quist", &["07700 900777"], T0 + 22); // the same person, typed at the desk

    let before = desk.baseline().unwrap();
    let changed = receive(&mut office, &mut desk);
    let report = desk.reconcile(&before, &changed).unwrap();

    assert_eq!(report.arrived.new_contacts, 1, "{report:?}"); // Dora from the office
    assert_eq!(report.arrived.updated_contacts, 2); // Ana renamed, Carla merged
    assert_eq!(report.arrived.updated_events, 1);
    assert_eq!(report.merged.len(), 1);
    assert_eq!(report.merged[0].duplicate, dup);
    assert_eq!(report.merged[0].kept, keep);
    assert_eq!(report.merged[0].kept_name, "Carla Mendes");
    let name = report
        .conflicts
        .iter()
        .find(|c| c.record_id == ana && c.field == "name")
        .expect("the name was changed on both sides");
    let mut values = name.values.clone();
    values.sort();
    assert_eq!(values, ["Ana Silva Pereira", "Anna Silva"]);
    assert!(report.conflicts_complete);
    assert_eq!(
        report.moved_to_waitlist.len(),
        1,
        "{:?}",
        report.moved_to_waitlist
    );
    assert_eq!(report.moved_to_waitlist[0].contact_id, bo);
    assert_eq!(report.moved_to_waitlist[0].event_title, "Gala");
    assert_eq!(report.moved_to_waitlist[0].position, Some(1));
    assert_eq!(
        report.duplicate_candidates.len(),
        1,
        "{:?}",
        report.duplicate_candidates
    );
    assert_eq!(report.duplicate_candidates[0].b, dora);
    assert!(!report.is_quiet());

    // Nothing new: a quiet report.
    let before = desk.baseline().unwrap();
    let changed = receive(&mut office, &mut desk);
    assert!(changed.is_empty());
    let quiet = desk.reconcile(&before, &changed).unwrap();
    assert!(quiet.is_quiet());
    assert_eq!(quiet.arrived, Default::default());
}

/// The report used to stop checking duplicates above 1,000 new contacts
/// and conflicting values above 2,000 records, saying only "incomplete".
#[test]
fn the_report_is_complete_however_many_records_arrive() {
    let mut office = Store::open_in_memory().unwrap();
    let mut laptop = Store::open_in_memory().unwrap();
    let mut desk = Store::open_in_memory().unwrap();
    let known = add(&mut desk, "Wilhelmina Oyelaran", &["+44 7700 900123"], T0);
    let people: Vec<NewContact> = (0..2_100)
        .map(|i| NewContact {
            name: format!("Person {i}"),
            emails: vec![format!("p{i}@example.org")],
            ..Default::default()
        })
        .collect();
    let ids = office.create_contacts(&people, T0).unwrap();
    // The person the desk knows, typed again at the office.
    let again = add(
        &mut office,
        "Wilhelmina Oyelaran",
        &["07700 900123"],
        T0 + 1,
    );
    // One new person registered twice.
    let twin = add(&mut office, "Xavier Quintero", &["+44 7700 900555"], T0 + 2);
    let twin_again = add(&mut office, "Xavier Quintero", &["07700 900555"], T0 + 3);
    // A record new to the desk, renamed on two office devices offline.
    receive(&mut office, &mut laptop);
    office
        .update_contact(&ids[7], T0 + 4, |c| {
            c.name = "Renamed Here".into();
            Ok(())
        })
        .unwrap();
    laptop
        .update_contact(&ids[7], T0 + 5, |c| {
            c.name = "Renamed There".into();
            Ok(())
        })
        .unwrap();
    receive(&mut laptop, &mut office);

    let before = desk.baseline().unwrap();
    let changed = receive(&mut office, &mut desk);
    let report = desk.reconcile(&before, &changed).unwrap();
    assert_eq!(report.arrived.new_contacts, 2_103);
    assert!(report.duplicates_complete && report.conflicts_complete);
    let renamed: Vec<_> = report
        .conflicts
        .iter()
        .filter(|c| c.record_id == ids[7])
        .collect();
    assert_eq!(renamed.len(), 1, "{:?}", report.conflicts);
    assert_eq!(renamed[0].field, "name");
    let mut values = renamed[0].values.clone();
    values.sort();
    assert_eq!(values, ["Renamed Here", "Renamed There"]);
    let proposed = |a: &str, b: &str| {
        report
            .duplicate_candidates
            .iter()
            .any(|p| p.a == a && p.b == b)
    };
    // The contact known before first, the one that arrived second.
    assert!(
        proposed(&known, &again),
        "{:?}",
        report.duplicate_candidates
    );
    assert!(
        proposed(&twin, &twin_again),
        "{:?}",
        report.duplicate_candidates
    );
}

#[test]
fn registrations_made_on_a_public_page_are_reported_at_the_desks_next_sync() {
    use muster_core::registration::PageForm;
    let mut relay = Store::open_in_memory().unwrap();
    let mut desk = Store::open_in_memory().unwrap();
    let drive = relay
        .create_event(&NewEvent::new("Food drive", T0, "Hall", Some(2)), T0 - 100)
        .unwrap();
    let page = relay.publish_event(&drive, None, &[], T0 - 99).unwrap();
    let walk_in = add(&mut relay, "Desk Walk-in", &[], T0 - 98);
    relay.sign_up(&drive, &walk_in, false, T0 - 97).unwrap();
    receive(&mut relay, &mut desk);

    for (i, (name, email)) in [
        ("Ana Silva", "ana@example.org"),
        ("Bo Chen", "bo@example.org"),
    ]
    .into_iter()
    .enumerate()
    {
        let form = PageForm {
            name: name.into(),
            email: email.into(),
            ..Default::default()
        };
        let checked = form.check(&page, "GB").unwrap();
        relay
            .register_from_page(&drive, &checked, T0 - 50 + i as i64)
            .unwrap();
    }
    let before = desk.baseline().unwrap();
    let changed = receive(&mut relay, &mut desk);
    let report = desk.reconcile(&before, &changed).unwrap();
    let online: Vec<(Option<&str>, Option<u32>)> = report
        .registered_online
        .iter()
        .map(|o| (o.name.as_deref(), o.position))
        .collect();
    assert_eq!(online.len(), 2, "{report:#?}");
    assert!(online.contains(&(Some("Ana Silva"), None)), "{online:?}");
    assert!(online.contains(&(Some("Bo Chen"), Some(1))), "{online:?}");
    assert!(
        report
            .registered_online
            .iter()
            .all(|o| o.event_title == "Food drive")
    );

    // Nothing new: nothing reported again.
    let before = desk.baseline().unwrap();
    let changed = receive(&mut relay, &mut desk);
    assert!(
        desk.reconcile(&before, &changed)
            .unwrap()
            .registered_online
            .is_empty()
    );
}
