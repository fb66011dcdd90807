//! Duplicates: candidate pairs, "not a duplicate" decisions, merging and
//! unmerging, and edits that reach a merged contact late.

mod support;

use muster_core::{Donation, Interaction, NewConsent, NewContact, NewEvent, SignupStatus, Store};
use support::*;

/// A contact, created a millisecond after the previous one.
fn person(store: &mut Store, name: &str, phones: &[&str], emails: &[&str]) -> String {
    static CLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(T0);
    let at = CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    store
        .create_contact(
            &NewContact {
                name: name.into(),
                phones: phones.iter().map(|p| p.to_string()).collect(),
                emails: emails.iter().map(|e| e.to_string()).collect(),
                ..Default::default()
            },
            at,
        )
        .unwrap()
}

fn pair_of<'a>(
    pairs: &'a [muster_core::store::DuplicatePair],
    x: &str,
    y: &str,
) -> Option<&'a muster_core::store::DuplicatePair> {
    pairs
        .iter()
        .find(|p| (p.a == x && p.b == y) || (p.a == y && p.b == x))
}

#[test]
fn names_compare_word_by_word() {
    use muster_core::store::name_similarity;
    assert_eq!(name_similarity("ana silva", "ana silva"), 1.0);
    assert!(name_similarity("jonathan smith", "jonathon smith") > 0.93);
    assert!(name_similarity("silva ana", "ana silva") > 0.99);
    // A middle name alone is not enough to tell, nor to decide.
    let middle = name_similarity("ana maria silva", "ana silva");
    assert!(middle > 0.8 && middle < 0.93, "{middle}");
    assert!(name_similarity("francisca de luca", "francois de luca") < 0.93);
    assert!(name_similarity("omar van den berg", "olumide van den berg") < 0.93);
    assert!(name_similarity("kim okafor", "dele okafor") < 0.6);
    assert!(name_similarity("maria garcia", "mario gomez") < 0.93);
}

#[test]
fn candidates_come_from_phones_emails_and_names_alike() {
    let mut s = Store::open_in_memory().unwrap();
    let ana = person(&mut s, "Ana Silva", &["+44 7700 900123"], &[]);
    let ana2 = person(&mut s, "Ana Sílva", &["07700 900123"], &[]);
    let bo = person(&mut s, "Bo Chen", &[], &["bo.chen@example.org"]);
    let bo2 = person(&mut s, "Bo  Chen", &[], &["Bo.Chen@Example.org"]);
    let jon = person(&mut s, "Jonathan Smith", &[], &[]);
    let jon2 = person(&mut s, "Jonathon Smith", &[], &[]);
    let maria = person(&mut s, "Maria Garcia", &["+44 7700 900555"], &[]);
    let mario = person(&mut s, "Mario Gomez", &[], &[]);
    // A household sharing a phone is not one person.
    let kim = person(&mut s, "Kim Okafor", &["+44 7700 900999"], &[]);
    let dee = person(&mut s, "Dele Okafor", &["+44 7700 900999"], &[]);

    let pairs = s.duplicate_candidates().unwrap();
    let same_phone = pair_of(&pairs, &ana, &ana2).expect("same phone, accent aside");
    assert!(
        same_phone
            .reasons
            .iter()
            .any(|r| r == "same phone +447700900123"),
        "{same_phone:?}"
    );
    assert!(same_phone.score > 0.95, "{same_phone:?}");
    assert_eq!(
        (same_phone.a.as_str(), same_phone.b.as_str()),
        (ana.as_str(), ana2.as_str()),
        "the older is proposed to keep"
    );
    let same_email = pair_of(&pairs, &bo, &bo2).expect("same email, case aside");
    assert!(
        same_email
            .reasons
            .iter()
            .any(|r| r == "same email bo.chen@example.org")
    );
    let typo = pair_of(&pairs, &jon, &jon2).expect("a typo in a name");
    assert!(typo.score >= 0.8 && typo.score < 0.95, "{typo:?}");
    assert!(pair_of(&pairs, &maria, &mario).is_none());
    assert!(pair_of(&pairs, &kim, &dee).is_none(), "{pairs:?}");
    assert_eq!(pairs.len(), 3, "{pairs:?}");
    // Best first.
    assert!(pairs.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn a_phone_warns_at_capture_time() {
    let mut s = Store::open_in_memory().unwrap();
    let ana = person(
        &mut s,
        "Ana Silva",
        &["+44 7700 900123"],
        &["ana@example.org"],
    );
    person(&mut s, "Bo Chen", &[], &[]);
    let typed = NewContact {
        name: "Anna Silva".into(),
        phones: vec!["07700 900123".into()],
        ..Default::default()
    };
    let warn = s.possible_duplicates_of(&typed).unwrap();
    assert_eq!(warn.len(), 1, "{warn:?}");
    assert_eq!(warn[0].a, ana);
    let stranger = NewContact::named("Zed Quist");
    assert!(s.possible_duplicates_of(&stranger).unwrap().is_empty());
}

#[test]
fn not_a_duplicate_is_remembered_on_every_device() {
    let mut s = vec![
        Store::open_in_memory().unwrap(),
        Store::open_in_memory().unwrap(),
    ];
    let a = person(&mut s[0], "Sam Lee", &[], &[]);
    let b = person(&mut s[0], "Sam Lee", &[], &[]);
    sync_all(&mut s);
    assert_eq!(s[1].duplicate_candidates().unwrap().len(), 1);
    s[0].mark_not_duplicate(&a, &b, T0 + 1).unwrap();
    assert!(s[0].duplicate_candidates().unwrap().is_empty());
    sync_all(&mut s);
    assert!(s[1].duplicate_candidates().unwrap().is_empty());
    assert!(s[0].mark_not_duplicate(&a, &a, T0).is_err());
}

#[test]
fn a_merge_repoints_sign_ups_and_ledger_and_an_unmerge_restores_both() {
    let mut s = Store::open_in_memory().unwrap();
    let keep = person(&mut s, "Ana Silva", &["+44 7700 900123"], &[]);
    let dup = person(&mut s, "Ana Silva", &["07700 900123"], &["ana@example.org"]);
    let gala = s
        .create_event(&NewEvent::new("Gala", T0, "Hall", None), T0)
        .unwrap();
    s.sign_up(&gala, &dup, false, T0).unwrap();
    s.add_to_ledger(
        &dup,
        Donation {
            id: String::new(),
            amount_minor: 2500,
            currency: "GBP".into(),
            date: T0,
            method: "cash".into(),
            note: None,
            recorded_by: String::new(),
        },
        T0,
    )
    .unwrap();
    let before_dup = s.contact(&dup).unwrap();
    let before_keep = s.contact(&keep).unwrap();

    s.merge_contacts(&keep, &dup, T0 + 1).unwrap();
    assert_eq!(
        s.contact(&dup).unwrap().merged_into.as_deref(),
        Some(keep.as_str())
    );
    assert_eq!(s.kept_contact_of(&dup).unwrap(), keep);
    assert_eq!(s.merged_duplicates_of(&keep).unwrap(), vec![dup.clone()]);
    let found: Vec<String> = s
        .search_contacts("silva", 10)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(found, vec![keep.clone()]);
    assert!(s.duplicate_candidates().unwrap().is_empty());
    let roster = s.roster(&gala, None).unwrap();
    assert_eq!(roster.len(), 1);
    assert_eq!(
        roster[0].contact_id, keep,
        "the duplicate's sign-up counts for the kept contact"
    );
    assert_eq!(s.contact_private(&keep).unwrap().donations.len(), 1);
    // The desk checks in the kept contact: the duplicate's sign-up is used.
    s.check_in(&gala, &keep, T0 + 2).unwrap();
    let roster = s.roster(&gala, None).unwrap();
    assert_eq!(roster.len(), 1);
    assert_eq!(roster[0].status, SignupStatus::CheckedIn);
    // Refusals.
    assert!(s.merge_contacts(&keep, &dup, T0).is_err(), "already merged");
    assert!(
        s.merge_contacts(&dup, &keep, T0).is_err(),
        "into a merged contact"
    );
    assert!(s.merge_contacts(&keep, &keep, T0).is_err());

    s.unmerge_contact(&dup, T0 + 3).unwrap();
    let restored = s.contact(&dup).unwrap();
    assert_eq!(restored.merged_into, None);
    assert_eq!(restored.phones, before_dup.phones);
    assert_eq!(restored.emails, before_dup.emails);
    assert_eq!(s.contact(&keep).unwrap(), before_keep);
    assert!(s.contact_private(&keep).unwrap().donations.is_empty());
    assert_eq!(s.contact_private(&dup).unwrap().donations.len(), 1);
    let roster = s.roster(&gala, None).unwrap();
    assert_eq!(roster[0].contact_id, dup);
    assert_eq!(roster[0].status, SignupStatus::CheckedIn);
    assert!(s.unmerge_contact(&dup, T0).is_err(), "not merged any more");
}

#[test]
fn an_offline_edit_of_the_duplicate_lands_on_the_kept_contact() {
    let mut s = vec![
        Store::open_in_memory().unwrap(),
        Store::open_in_memory().unwrap(),
    ];
    let keep = person(&mut s[0], "Ana Silva", &["+44 7700 900123"], &[]);
    let dup = person(&mut s[0], "Ana Silva", &[], &["ana@example.org"]);
    sync_all(&mut s);

    // The office merges while a desk, offline, edits the duplicate.
    s[0].merge_contacts(&keep, &dup, T0 + 10).unwrap();
    s[1].update_contact(&dup, T0 + 20, |c| {
        c.phones.push("+44 20 7946 0958".into());
        c.organisation = Some("Food Bank".into());
        c.tags.insert("driver".into(), true);
        Ok(())
    })
    .unwrap();
    // Before it hears of the merge the desk sees its own edit on the duplicate.
    assert_eq!(
        s[1].contact(&dup).unwrap().organisation.as_deref(),
        Some("Food Bank")
    );

    sync_all(&mut s);
    sync_all(&mut s);
    for store in &mut s {
        let kept = store.contact(&keep).unwrap();
        assert_eq!(kept.organisation.as_deref(), Some("Food Bank"));
        assert!(
            kept.phones.contains(&"+44 20 7946 0958".to_owned()),
            "{kept:?}"
        );
        assert!(kept.phones.contains(&"+44 7700 900123".to_owned()));
        assert_eq!(kept.tags.get("driver"), Some(&true));
        assert_eq!(
            store.contact(&dup).unwrap().merged_into.as_deref(),
            Some(keep.as_str())
        );
    }
    let (a, b) = two(&mut s, 0, 1);
    assert_eq!(fingerprint(a), fingerprint(b));

    // Carried over once: syncing again writes nothing more.
    let heads = s[1].heads(&keep).unwrap();
    sync_all(&mut s);
    assert_eq!(s[1].heads(&keep).unwrap(), heads);
}

#[test]
fn edits_to_a_contact_known_to_be_merged_go_to_the_kept_one() {
    let mut s = vec![
        Store::open_in_memory().unwrap(),
        Store::open_in_memory().unwrap(),
    ];
    let keep = person(&mut s[0], "Ana Silva", &[], &[]);
    let dup = person(&mut s[0], "Ana Silva", &[], &[]);
    s[0].merge_contacts(&keep, &dup, T0 + 1).unwrap();
    sync_all(&mut s);
    // The desk's screen still shows the duplicate's id.
    s[1].update_contact(&dup, T0 + 2, |c| {
        c.preferred_name = Some("Aninha".into());
        Ok(())
    })
    .unwrap();
    sync_all(&mut s);
    for store in &mut s {
        assert_eq!(
            store.contact(&keep).unwrap().preferred_name.as_deref(),
            Some("Aninha")
        );
        assert_eq!(store.contact(&dup).unwrap().preferred_name, None);
    }
}

/// Two coordinators merge the same pair offline, in opposite directions
/// (x into y on one laptop, y into x on the other). After sync every
/// replica shows one person, the same one (the smaller id), in search,
/// the contact list, rosters and reports, and both ids lead to it (once
/// each replica hid both people, and reports and writes followed the
/// links each by a rule of its own).
#[test]
fn opposite_merges_made_at_once_leave_one_person_on_every_replica() {
    let mut s = vec![
        Store::open_in_memory().unwrap(),
        Store::open_in_memory().unwrap(),
    ];
    let x = person(&mut s[0], "Ana Silva", &["+44 7700 900123"], &[]);
    let y = person(&mut s[0], "Ana Silva", &["07700 900123"], &[]);
    let gala = s[0]
        .create_event(&NewEvent::new("Gala", T0, "Hall", None), T0)
        .unwrap();
    s[0].sign_up(&gala, &y, false, T0).unwrap();
    let (a, b) = two(&mut s, 0, 1);
    sync(a, b);
    s[0].merge_contacts(&x, &y, T0 + 1).unwrap();
    s[1].merge_contacts(&y, &x, T0 + 1).unwrap();
    let (a, b) = two(&mut s, 0, 1);
    sync(a, b);
    let kept = x.clone().min(y.clone());
    let other = if kept == x { y.clone() } else { x.clone() };
    for (i, store) in s.iter_mut().enumerate() {
        let found: Vec<String> = store
            .search_contacts("silva", 10)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(found, vec![kept.clone()], "replica {i}: search");
        let listed: Vec<(String, Option<String>)> = store
            .list_contacts(10, 0)
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.merged_into))
            .collect();
        assert!(listed.contains(&(kept.clone(), None)), "replica {i}: list");
        assert!(
            listed.contains(&(other.clone(), Some(kept.clone()))),
            "replica {i}: list"
        );
        assert_eq!(store.kept_contact_of(&x).unwrap(), kept, "replica {i}");
        assert_eq!(store.kept_contact_of(&y).unwrap(), kept, "replica {i}");
        assert_eq!(
            store.merged_duplicates_of(&kept).unwrap(),
            vec![other.clone()]
        );
        let roster = store.roster(&gala, None).unwrap();
        assert_eq!(roster.len(), 1, "replica {i}: roster");
        assert_eq!(roster[0].contact_id, kept, "replica {i}: roster");
        let report = store.reports().new_contacts(None, None).unwrap();
        assert_eq!(report.contacts, 1, "replica {i}: report");
        // Undoing the merge that made the cycle frees the other again.
        let mut copy = Store::open_in_memory().unwrap();
        push(store, &mut copy);
        copy.unmerge_contact(&kept, T0 + 2).unwrap();
        assert_eq!(copy.kept_contact_of(&kept).unwrap(), kept);
        assert_eq!(copy.kept_contact_of(&other).unwrap(), kept);
        copy.unmerge_contact(&other, T0 + 3).unwrap();
        assert_eq!(copy.search_contacts("silva", 10).unwrap().len(), 2);
    }
}

/// The store, not each binding, says which records a write changed: a
/// merge changes the duplicate and the views of the contact kept and of
/// the events the duplicate signed up to; consent and interactions are
/// stamped with the time and this device.
#[test]
fn writes_tell_what_they_changed_and_stamp_who_recorded() {
    let mut s = Store::open_in_memory().unwrap();
    person(&mut s, "Someone Else", &[], &[]);
    assert!(
        s.take_touched().is_empty(),
        "nothing is counted unless asked"
    );
    s.track_touched(true);
    let ana = person(&mut s, "Ana Silva", &["+44 7700 900123"], &[]);
    let dup = person(&mut s, "Ana Sílva", &["07700 900123"], &[]);
    let new_event = NewEvent::new("Gala", T0, "Hall", None);
    let gala = s.create_event(&new_event, T0).unwrap();
    assert_eq!(
        s.take_touched(),
        vec![ana.clone(), dup.clone(), gala.clone()]
    );
    s.sign_up(&gala, &dup, false, T0).unwrap();
    assert_eq!(s.take_touched(), vec![gala.clone()]);
    assert!(s.take_touched().is_empty(), "taken once");

    s.merge_contacts(&ana, &dup, T0 + 1).unwrap();
    assert_eq!(
        s.take_touched(),
        vec![dup.clone(), ana.clone(), gala.clone()]
    );

    // A merged duplicate's consent lands on the contact kept.
    let consent = NewConsent {
        given: true,
        channels: vec!["sms".into()],
        method: Some("paper form".into()),
    };
    s.record_consent(&dup, &consent, T0 + 2).unwrap();
    assert_eq!(s.take_touched(), vec![ana.clone()]);
    let recorded = s.contact(&ana).unwrap().consent;
    assert!(recorded.given);
    assert_eq!(recorded.recorded_at, Some(T0 + 2));
    assert_eq!(recorded.recorded_by.as_deref(), Some(s.device_id()));
    assert_eq!(recorded.method.as_deref(), Some("paper form"));
    assert_eq!(recorded.channels.keys().collect::<Vec<_>>(), ["sms"]);

    let call = Interaction {
        id: String::new(),
        channel: "call".into(),
        at: T0 + 3,
        by: String::new(),
        summary: "Thanked for the gift".into(),
    };
    s.add_to_ledger(&ana, call, T0 + 3).unwrap();
    let ledger = muster_core::model::private_id_of(&ana);
    assert_eq!(s.take_touched(), vec![ledger]);
    let logged = &s.contact_private(&ana).unwrap().interactions[0];
    assert_eq!(logged.by, s.device_id());

    // A write that changes nothing tells of nothing; a refused one neither.
    s.record_consent(&ana, &consent, T0 + 2).unwrap();
    assert!(s.merge_contacts(&ana, &ana, T0 + 4).is_err());
    assert!(s.take_touched().is_empty());

    s.unmerge_contact(&dup, T0 + 5).unwrap();
    assert_eq!(s.take_touched(), vec![dup, ana, gala]);
}

/// A roster line as (contact, status, waitlist place).
type Line = (String, SignupStatus, Option<u32>);

/// Where each person stands at an event, by roster line, and the event's
/// counts (registered, waitlisted).
fn standing(s: &Store, event: &str) -> (Vec<Line>, (i64, i64)) {
    let lines = s
        .roster(event, None)
        .unwrap()
        .into_iter()
        .map(|l| (l.contact_id, l.status, l.waitlist_position))
        .collect();
    let e = s.event_summary(event).unwrap().unwrap();
    (lines, (e.registered, e.waitlisted))
}

/// Capacity 1: Dana, then her duplicate, then Chen. Merged, Dana is one
/// person with one seat: Chen waits at place 1 and the counts say one
/// waiting; when Dana cancels, Chen takes the seat. Once the duplicate's
/// sign-up kept a place of its own (Chen waited at 2, nobody at 1) and a
/// cancel freed only one of Dana's two seats. Every replica agrees, the one
/// that merged and the one that heard of the merge.
#[test]
fn a_merged_person_holds_one_seat_and_cancels_as_one() {
    use muster_core::SignupStatus::{Cancelled, Registered, Waitlisted};
    let (mut s, gala, ids) =
        replicas_with_event(2, &["Dana Smith", "Dana Smith", "Chen Li"], Some(1));
    let (dana, twin, chen) = (&ids[0], &ids[1], &ids[2]);
    s[0].sign_up(&gala, dana, false, T0 + 1).unwrap();
    s[0].sign_up(&gala, twin, false, T0 + 2).unwrap();
    s[0].sign_up(&gala, chen, false, T0 + 3).unwrap();
    sync_all(&mut s);
    assert_eq!(
        standing(&s[1], &gala),
        (
            vec![
                (dana.clone(), Registered, None),
                (twin.clone(), Waitlisted, Some(1)),
                (chen.clone(), Waitlisted, Some(2)),
            ],
            (1, 2)
        )
    );

    s[1].merge_contacts(dana, twin, T0 + 10).unwrap();
    sync_all(&mut s);
    let merged = (
        vec![
            (dana.clone(), Registered, None),
            (chen.clone(), Waitlisted, Some(1)),
        ],
        (1, 1),
    );
    for store in &s {
        assert_eq!(standing(store, &gala), merged);
    }
    // Registering the person again, by either id, changes nothing.
    let heads = s[0].heads(&gala).unwrap();
    s[0].sign_up(&gala, twin, false, T0 + 11).unwrap();
    s[0].sign_up(&gala, dana, false, T0 + 11).unwrap();
    assert_eq!(s[0].heads(&gala).unwrap(), heads);

    // Cancelled by the duplicate's id (a desk's screen still shows it).
    s[0].cancel_signup(&gala, twin, T0 + 20).unwrap();
    sync_all(&mut s);
    let cancelled = (
        vec![
            (dana.clone(), Cancelled, None),
            (chen.clone(), Registered, None),
        ],
        (1, 0),
    );
    for store in &s {
        assert_eq!(standing(store, &gala), cancelled);
    }
    let (a, b) = two(&mut s, 0, 1);
    assert_eq!(fingerprint(a), fingerprint(b));

    // Unmerged, the two are two people again, both cancelled.
    s[1].unmerge_contact(twin, T0 + 30).unwrap();
    sync_all(&mut s);
    for store in &s {
        let (lines, counts) = standing(store, &gala);
        assert_eq!(counts, (1, 0));
        assert_eq!(lines[0], (dana.clone(), Cancelled, None));
        assert_eq!(lines[1], (twin.clone(), Cancelled, None));
        assert_eq!(lines[2], (chen.clone(), Registered, None));
    }
}

/// The merge and the sign-ups made at once on different replicas, in any
/// order: the same roster everywhere, the person once.
#[test]
fn a_merge_made_while_desks_register_the_twins_counts_one_person_everywhere() {
    use muster_core::SignupStatus::{Registered, Waitlisted};
    let (mut s, gala, ids) =
        replicas_with_event(3, &["Dana Smith", "Dana Smith", "Chen Li"], Some(1));
    let (dana, twin, chen) = (&ids[0], &ids[1], &ids[2]);
    s[0].sign_up(&gala, dana, false, T0 + 1).unwrap();
    s[1].sign_up(&gala, twin, false, T0 + 2).unwrap();
    s[1].sign_up(&gala, chen, false, T0 + 3).unwrap();
    s[2].merge_contacts(dana, twin, T0 + 4).unwrap();
    for order in permutations(3) {
        let mut fresh = Store::open_in_memory().unwrap();
        for i in order {
            push(&mut s[i], &mut fresh);
        }
        assert_eq!(
            standing(&fresh, &gala),
            (
                vec![
                    (dana.clone(), Registered, None),
                    (chen.clone(), Waitlisted, Some(1))
                ],
                (1, 1)
            )
        );
    }
}

/// A saved contact checked for duplicates: itself left out, and a pair
/// marked "not a duplicate" left out too.
#[test]
fn a_saved_contact_is_checked_without_rebuilding_it() {
    let mut s = Store::open_in_memory().unwrap();
    let ana = person(&mut s, "Ana Silva", &["+44 7700 900123"], &[]);
    let twin = person(&mut s, "Ana Silva", &["07700 900123"], &[]);
    let other = person(&mut s, "Bo Chen", &[], &[]);
    let found = s.possible_duplicates_of_contact(&twin).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].a.as_str(), found[0].b.as_str()),
        (ana.as_str(), twin.as_str())
    );
    assert!(s.possible_duplicates_of_contact(&other).unwrap().is_empty());
    s.mark_not_duplicate(&ana, &twin, T0 + 5).unwrap();
    assert!(s.possible_duplicates_of_contact(&twin).unwrap().is_empty());
    assert!(s.possible_duplicates_of_contact(&ana).unwrap().is_empty());
    assert!(s.possible_duplicates_of_contact("c_nope").is_err());
}

/// Capacity 1. Dana registered and cancelled; Chen registered; Dana then
/// walked in at another desk as a new contact and was checked in; the two
/// Danas are merged. Chen keeps the seat (a cancelled sign-up gives Dana no
/// head start: she is placed at the sign-up she was checked in on, over
/// capacity), and Dana's line shows when she was checked in.
#[test]
fn a_merged_walk_in_does_not_take_the_seat_of_someone_registered_before_her() {
    use muster_core::SignupStatus::{CheckedIn, Registered};
    let (mut s, gala, ids) =
        replicas_with_event(2, &["Dana Smith", "Dana Smith", "Chen Li"], Some(1));
    let (dana, twin, chen) = (&ids[0], &ids[1], &ids[2]);
    s[0].sign_up(&gala, dana, false, T0 + 1).unwrap();
    s[0].cancel_signup(&gala, dana, T0 + 2).unwrap();
    s[0].sign_up(&gala, chen, false, T0 + 3).unwrap();
    s[1].sign_up(&gala, twin, true, T0 + 4).unwrap();
    s[1].check_in(&gala, twin, T0 + 5).unwrap();
    sync_all(&mut s);
    s[1].merge_contacts(dana, twin, T0 + 10).unwrap();
    sync_all(&mut s);
    for store in &s {
        assert_eq!(
            standing(store, &gala).0,
            vec![
                (dana.clone(), CheckedIn, None),
                (chen.clone(), Registered, None),
            ]
        );
        let line = &store.roster(&gala, None).unwrap()[0];
        assert_eq!(line.checked_in_at, Some(T0 + 5));
    }
    let (a, b) = two(&mut s, 0, 1);
    assert_eq!(fingerprint(a), fingerprint(b));
}
