//! Events' public registration pages (issue 17): publishing is a field of
//! the event document, so it syncs and merges like the rest of the event.

mod support;

use muster_core::{Error, PageClosed, Publication, Store};
use support::*;

const HOUR: i64 = 3_600_000;

#[test]
fn a_published_event_is_found_by_its_address_until_it_starts() {
    let (mut stores, event, _) = replicas_with_event(1, &[], Some(10));
    let s = &mut stores[0];
    let page = s.publish_event(&event, None, &[], T0 - 48 * HOUR).unwrap();
    assert_eq!(page.slug.len(), 32);
    assert!(page.slug.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(page.open);
    assert_eq!(page.asks, Publication::ASKABLE.map(str::to_owned).to_vec());

    let found = s.event_by_slug(&page.slug).unwrap().expect("found by slug");
    assert_eq!(found.id, event);
    assert_eq!(found.publication.as_ref(), Some(&page));
    assert_eq!(found.page_takes_registrations(T0 - HOUR), Ok(()));
    assert_eq!(
        found.page_takes_registrations(T0),
        Err(PageClosed::RegistrationsClosed),
        "registrations close when the event starts"
    );
    assert_eq!(s.event_by_slug(&"0".repeat(32)).unwrap(), None);
    assert_eq!(s.event_by_slug("../../etc/passwd").unwrap(), None);
    assert_eq!(s.event_by_slug(&page.slug.to_uppercase()).unwrap(), None);
}

#[test]
fn unpublishing_closes_the_page_and_publishing_again_brings_the_same_address_back() {
    let (mut stores, event, _) = replicas_with_event(2, &[], None);
    let early = T0 - 72 * HOUR;
    let closes = Some(T0 - 24 * HOUR);
    let asks = vec!["phone".to_owned(), " Email ".to_owned()];
    let page = stores[0]
        .publish_event(&event, closes, &asks, early)
        .unwrap();
    assert_eq!(page.asks, vec!["email", "phone"], "canonical order");
    assert!(page.asks_for("phone") && !page.asks_for("language"));
    sync_all(&mut stores);

    // The other replica sees the page, closed at its own time.
    let there = stores[1].event_by_slug(&page.slug).unwrap().unwrap();
    assert_eq!(there.publication.as_ref(), Some(&page));
    assert_eq!(
        there.page_takes_registrations(T0 - 2 * HOUR),
        Err(PageClosed::RegistrationsClosed)
    );

    assert!(stores[1].unpublish_event(&event, early + 1).unwrap());
    assert!(
        !stores[1].unpublish_event(&event, early + 2).unwrap(),
        "a closed page stays closed"
    );
    sync_all(&mut stores);
    let closed = stores[0].event_by_slug(&page.slug).unwrap().unwrap();
    assert_eq!(
        closed.page_takes_registrations(early + 3),
        Err(PageClosed::NotPublished)
    );

    let again = stores[0]
        .publish_event(&event, None, &[], early + 4)
        .unwrap();
    assert_eq!(again.slug, page.slug, "the posters' address still works");
    assert_eq!(again.closes_at, None);

    // Editing the event keeps its page.
    stores[0]
        .update_event(&event, early + 5, |e| {
            e.title = "Winter coat drive (hall B)".into();
            Ok(())
        })
        .unwrap();
    assert_eq!(stores[0].event(&event).unwrap().publication, Some(again));
}

#[test]
fn two_coordinators_publishing_at_once_end_with_one_address_everywhere() {
    let (mut stores, event, _) = replicas_with_event(2, &[], None);
    let at = T0 - 48 * HOUR;
    let a = stores[0].publish_event(&event, None, &[], at).unwrap();
    let b = stores[1].publish_event(&event, None, &[], at).unwrap();
    assert_ne!(a.slug, b.slug);
    sync_all(&mut stores);
    let kept = stores[0].event(&event).unwrap().publication.unwrap();
    assert!(kept == a || kept == b);
    for s in &mut stores {
        assert_eq!(s.event(&event).unwrap().publication.as_ref(), Some(&kept));
        assert_eq!(
            s.event_by_slug(&kept.slug).unwrap().map(|e| e.id),
            Some(event.clone())
        );
        let lost = if kept == a { &b.slug } else { &a.slug };
        assert_eq!(s.event_by_slug(lost).unwrap(), None);
    }
    assert_eq!(fingerprint(&mut stores[0]), fingerprint(&mut stores[1]));
}

#[test]
fn a_page_that_could_take_no_one_is_refused_and_changes_nothing() {
    let (mut stores, event, _) = replicas_with_event(1, &[], None);
    let s: &mut Store = &mut stores[0];
    let before = fingerprint(s);
    let at = T0 - 48 * HOUR;
    let fax = s
        .publish_event(&event, None, &["fax".to_owned()], at)
        .unwrap_err();
    assert!(matches!(fax, Error::Invalid { .. }), "{fax}");
    assert!(fax.to_string().contains("\"fax\""), "{fax}");
    let past = s.publish_event(&event, Some(at - 1), &[], at).unwrap_err();
    assert!(past.to_string().contains("already past"), "{past}");
    let started = s.publish_event(&event, None, &[], T0 + 1).unwrap_err();
    assert!(started.to_string().contains("--closes"), "{started}");
    assert_eq!(fingerprint(s), before);

    s.update_event(&event, at, |e| {
        e.status = muster_core::model::EventStatus::Cancelled;
        Ok(())
    })
    .unwrap();
    let cancelled = s.publish_event(&event, None, &[], at + 1).unwrap_err();
    assert!(matches!(cancelled, Error::NotAllowed(_)), "{cancelled}");
    assert!(!s.unpublish_event(&event, at + 2).unwrap());
}

use muster_core::SignupStatus;
use muster_core::registration::{CheckedForm, PAGE_SOURCE, PageForm};

fn form(name: &str, email: &str, phone: &str) -> PageForm {
    PageForm {
        name: name.into(),
        email: email.into(),
        phone: phone.into(),
        ..Default::default()
    }
}

fn published(s: &mut Store, event: &str) -> Publication {
    s.publish_event(event, None, &[], T0 - 48 * HOUR).unwrap()
}

fn checked(page: &Publication, f: PageForm) -> CheckedForm {
    f.check(page, "GB").unwrap()
}

#[test]
fn a_form_is_checked_field_by_field_and_only_for_what_the_page_asks() {
    let (mut stores, event, _) = replicas_with_event(1, &[], None);
    let page = published(&mut stores[0], &event);
    let problems = form("  ", "ana-at-example", "call me")
        .check(&page, "GB")
        .unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
    assert_eq!(fields, vec!["name", "email", "phone"], "{problems:?}");
    assert!(problems[1].message.contains("no @"), "{problems:?}");

    let nobody = form("Ana Silva", "", "").check(&page, "GB").unwrap_err();
    assert_eq!(nobody.len(), 1);
    assert!(
        nobody[0]
            .message
            .contains("email address or a phone number")
    );

    let mut f = form("Ana Silva", "Ana@Example.ORG", "07700 900123");
    f.consent = vec!["sms".into(), "email".into()];
    f.language = "Português".into();
    let ok = f.check(&page, "GB").unwrap();
    assert_eq!(ok.email.as_deref(), Some("Ana@example.org"));
    assert_eq!(ok.phone.as_deref(), Some("+447700900123"));
    assert_eq!(ok.consent, vec!["email", "sms"]);
    assert_eq!(ok.language.as_deref(), Some("Português"));
    f.consent.push("carrier pigeon".into());
    assert_eq!(f.check(&page, "GB").unwrap_err()[0].field, "consent");

    // A page asking only the email takes nothing else, whatever is posted.
    let only_email = stores[0]
        .publish_event(&event, None, &["email".into()], T0 - 47 * HOUR)
        .unwrap();
    let mut sneaky = form("Ana Silva", "ana@example.org", "not a phone");
    sneaky.consent = vec!["sms".into()];
    let ok = sneaky.check(&only_email, "GB").unwrap();
    assert_eq!((ok.phone, ok.consent), (None, Vec::<String>::new()));
}

#[test]
fn a_person_registering_online_twice_is_one_contact_with_one_sign_up() {
    let (mut stores, event, _) = replicas_with_event(1, &[], Some(10));
    let s = &mut stores[0];
    let page = published(s, &event);
    let mut f = form("Ana Silva", "ana@example.org", "07700 900123");
    f.consent = vec!["email".into()];
    let at = T0 - 24 * HOUR;
    let first = s
        .register_from_page(&event, &checked(&page, f), at)
        .unwrap();
    assert!(first.new_contact);
    assert_eq!(
        (first.status, first.waitlist_position),
        (SignupStatus::Registered, None)
    );
    let ana = s.contact(&first.contact_id).unwrap();
    assert_eq!(ana.created_by, PAGE_SOURCE);
    assert_eq!(ana.consent.method.as_deref(), Some("web form"));
    assert_eq!(ana.consent.recorded_at, Some(at));
    assert!(ana.consent.given && ana.consent.channels.contains_key("email"));
    let before = fingerprint(s);

    // The same email in other case, then the same phone typed otherwise:
    // the same person, signed up already.
    for again in [
        form("A. Silva", "ANA@example.org", ""),
        form("Ana", "", "+44 7700 900123"),
    ] {
        let r = s
            .register_from_page(&event, &checked(&page, again), at + 1)
            .unwrap();
        assert_eq!(r.contact_id, first.contact_id);
        assert!(!r.new_contact);
        assert_eq!(r.status, SignupStatus::Registered);
    }
    assert_eq!(
        fingerprint(s),
        before,
        "nothing twice, nothing about Ana changed"
    );
    assert_eq!(s.contact_count().unwrap(), 1);
}

#[test]
fn the_last_seat_goes_to_the_first_and_the_next_person_waits() {
    let (mut stores, event, _) = replicas_with_event(2, &[], Some(1));
    let page = published(&mut stores[0], &event);
    let at = T0 - 24 * HOUR;
    let s = &mut stores[0];
    let a = s
        .register_from_page(
            &event,
            &checked(&page, form("Ana", "ana@example.org", "")),
            at,
        )
        .unwrap();
    let b = s
        .register_from_page(
            &event,
            &checked(&page, form("Bo", "bo@example.org", "")),
            at + 1,
        )
        .unwrap();
    assert_eq!(a.status, SignupStatus::Registered);
    assert_eq!(
        (b.status, b.waitlist_position),
        (SignupStatus::Waitlisted, Some(1))
    );
    // Every replica applies the same capacity.
    sync_all(&mut stores);
    let there = stores[1].roster(&event, None).unwrap();
    let statuses: Vec<SignupStatus> = there.iter().map(|l| l.status).collect();
    assert_eq!(
        statuses,
        vec![SignupStatus::Registered, SignupStatus::Waitlisted]
    );
}

#[test]
fn someone_already_known_is_signed_up_as_the_contact_they_count_as() {
    let (mut stores, event, ids) = replicas_with_event(1, &["Dana Reyes", "Dana R."], None);
    let s = &mut stores[0];
    let (dana, twin) = (&ids[0], &ids[1]);
    s.update_contact(twin, T0, |c| {
        c.phones = vec!["07700 900555".into()];
        Ok(())
    })
    .unwrap();
    s.merge_contacts(dana, twin, T0 + 1).unwrap();
    let page = published(s, &event);
    let r = s
        .register_from_page(
            &event,
            &checked(&page, form("D Reyes", "", "+447700900555")),
            T0 - HOUR,
        )
        .unwrap();
    assert_eq!(&r.contact_id, dana, "the twin's phone signs up Dana");
    assert!(!r.new_contact);
    assert_eq!(s.contact_count().unwrap(), 2);
}

#[test]
fn a_closed_or_unpublished_page_registers_no_one() {
    let (mut stores, event, _) = replicas_with_event(1, &[], None);
    let s = &mut stores[0];
    let page = published(s, &event);
    let f = checked(&page, form("Ana", "ana@example.org", ""));
    let before = fingerprint(s);
    let late = s.register_from_page(&event, &f, T0).unwrap_err();
    assert!(
        matches!(late, Error::NotAllowed(_)) && late.to_string().contains("closed"),
        "{late}"
    );
    s.unpublish_event(&event, T0 - 2 * HOUR).unwrap();
    let closed_fp = fingerprint(s);
    assert_ne!(closed_fp, before);
    let off = s.register_from_page(&event, &f, T0 - HOUR).unwrap_err();
    assert!(off.to_string().contains("online"), "{off}");
    assert_eq!(fingerprint(s), closed_fp);
    assert_eq!(s.contact_count().unwrap(), 0);
}

#[test]
fn a_desk_registering_the_same_person_offline_merges_into_one_sign_up() {
    let (mut stores, event, _) = replicas_with_event(2, &[], None);
    let page = published(&mut stores[0], &event);
    sync_all(&mut stores);
    // The desk (replica 1) registers Ana offline while she registers online
    // through the relay's device (replica 0).
    let desk_ana = stores[1]
        .create_contact(
            &muster_core::NewContact {
                name: "Ana Silva".into(),
                emails: vec!["ana@example.org".into()],
                ..Default::default()
            },
            T0 - 3 * HOUR,
        )
        .unwrap();
    stores[1]
        .sign_up(&event, &desk_ana, false, T0 - 3 * HOUR)
        .unwrap();
    let web = stores[0]
        .register_from_page(
            &event,
            &checked(&page, form("Ana Silva", "ana@example.org", "")),
            T0 - 2 * HOUR,
        )
        .unwrap();
    assert!(web.new_contact, "the relay had not seen the desk's Ana yet");
    sync_all(&mut stores);
    let pair = stores[1].duplicate_candidates().unwrap();
    assert_eq!(pair.len(), 1, "{pair:?}");
    stores[1]
        .merge_contacts(&desk_ana, &web.contact_id, T0 - HOUR)
        .unwrap();
    sync_all(&mut stores);
    for s in &mut stores {
        let roster = s.roster(&event, None).unwrap();
        assert_eq!(roster.len(), 1, "{roster:?}");
        assert_eq!(roster[0].contact_id, desk_ana);
    }
}

#[test]
fn a_private_link_cancels_ones_own_registration_and_the_first_waiting_takes_the_seat() {
    use muster_core::store::PageCancel;
    let (mut stores, event, _) = replicas_with_event(2, &[], Some(1));
    let page = published(&mut stores[0], &event);
    let at = T0 - 24 * HOUR;
    let s = &mut stores[0];
    let ana = s
        .register_from_page(
            &event,
            &checked(&page, form("Ana", "ana@example.org", "")),
            at,
        )
        .unwrap();
    let bo = s
        .register_from_page(
            &event,
            &checked(&page, form("Bo", "bo@example.org", "")),
            at + 1,
        )
        .unwrap();
    assert_eq!(bo.status, SignupStatus::Waitlisted);
    let link = ana
        .cancel
        .clone()
        .expect("a new registration gets its link");

    // Typing Ana's email again gives no link: only she holds hers.
    let impostor = s
        .register_from_page(
            &event,
            &checked(&page, form("Not Ana", "ana@example.org", "")),
            at + 2,
        )
        .unwrap();
    assert_eq!(impostor.cancel, None);

    // A wrong token, or another person's, cancels nothing.
    let before = fingerprint(s);
    let wrong = "0".repeat(32);
    assert!(matches!(
        s.cancel_from_page(&event, &link.contact_id, &wrong, at + 3),
        Err(Error::NotFound { .. })
    ));
    let bo_link = bo.cancel.clone().unwrap();
    assert!(matches!(
        s.cancel_from_page(&event, &link.contact_id, &bo_link.token, at + 3),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        s.page_sign_up(&event, "c_nonsense", &link.token).unwrap(),
        None
    );
    assert_eq!(fingerprint(s), before);

    assert_eq!(
        s.cancel_from_page(&event, &link.contact_id, &link.token, at + 4)
            .unwrap(),
        PageCancel::Cancelled
    );
    assert_eq!(
        s.cancel_from_page(&event, &link.contact_id, &link.token, at + 5)
            .unwrap(),
        PageCancel::AlreadyCancelled
    );
    sync_all(&mut stores);
    for s in &mut stores {
        let roster = s.roster(&event, None).unwrap();
        let bo_line = roster
            .iter()
            .find(|l| l.contact_id == bo.contact_id)
            .unwrap();
        assert_eq!(
            bo_line.status,
            SignupStatus::Registered,
            "Bo takes the seat"
        );
    }

    // Registering again makes a new sign-up and a new link; the old one is dead.
    let s = &mut stores[0];
    let back = s
        .register_from_page(
            &event,
            &checked(&page, form("Ana", "ana@example.org", "")),
            at + 6,
        )
        .unwrap();
    let new_link = back.cancel.unwrap();
    assert_ne!(new_link.token, link.token);
    assert_eq!(
        s.page_sign_up(&event, &link.contact_id, &link.token)
            .unwrap(),
        None
    );
    let started = s
        .cancel_from_page(&event, &new_link.contact_id, &new_link.token, T0 + 1)
        .unwrap_err();
    assert!(matches!(started, Error::NotAllowed(_)), "{started}");
}
