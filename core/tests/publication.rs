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
