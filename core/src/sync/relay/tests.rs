//! The session's access rules and timers in process; the whole rules,
//! message by message over every backend, are in `muster-conformance`.
use super::access::{OUTSIDE_SCOPE, check_change, may_see};
use super::*;

fn grant(role: &str) -> Grant {
    Grant {
        token_id: format!("tok_{role}"),
        role: role.to_owned(),
        label: role.to_owned(),
    }
}

const CONTACT: &str = "c_00000000000000000000000000000001";
const LEDGER: &str = "p_00000000000000000000000000000001";
const EVENT: &str = "e_00000000000000000000000000000002";
const UNSEEN: &str = "c_00000000000000000000000000000003";

fn session(role: &str, scope: &[&str]) -> RelaySession {
    let mut s = RelaySession::new();
    let g = grant(role);
    if g.is_scoped() {
        s.scope = Some(scope.iter().map(|d| d.to_string()).collect());
    }
    s.grant = Some(g);
    s
}

const NEW: DocState = DocState {
    exists: false,
    erased: false,
};
const EXISTING: DocState = DocState {
    exists: true,
    erased: false,
};
const ERASED: DocState = DocState {
    exists: false,
    erased: true,
};

#[test]
fn who_may_see_what() {
    let scope: HashSet<String> = [CONTACT.to_owned()].into();
    assert!(!may_see(None, None, CONTACT), "nobody before hello");
    let observer = grant(ROLE_OBSERVER);
    assert!(may_see(Some(&observer), None, CONTACT));
    assert!(
        !may_see(Some(&observer), None, LEDGER),
        "ledgers: coordinators'"
    );
    let coordinator = grant(ROLE_COORDINATOR);
    assert!(may_see(Some(&coordinator), None, LEDGER));
    let volunteer = grant(ROLE_VOLUNTEER);
    assert!(may_see(Some(&volunteer), Some(&scope), CONTACT));
    assert!(!may_see(Some(&volunteer), Some(&scope), UNSEEN));
    assert!(!may_see(Some(&volunteer), Some(&scope), LEDGER));
}

#[test]
fn who_may_write_what() {
    assert_eq!(
        RelaySession::new()
            .write_refusal(CONTACT, EXISTING)
            .as_deref(),
        Some("not authenticated")
    );
    let office = session(ROLE_COORDINATOR, &[]);
    assert_eq!(office.write_refusal(LEDGER, EXISTING), None);
    assert_eq!(office.write_refusal(UNSEEN, NEW), None);
    assert_eq!(
        office.write_refusal(CONTACT, ERASED).as_deref(),
        Some("this record was erased")
    );
    let screen = session(ROLE_OBSERVER, &[]);
    assert!(
        screen
            .write_refusal(CONTACT, EXISTING)
            .is_some_and(|w| w.contains("cannot change records"))
    );
    let desk = session(ROLE_VOLUNTEER, &[CONTACT, EVENT]);
    assert_eq!(desk.write_refusal(CONTACT, EXISTING), None, "in view");
    assert_eq!(desk.write_refusal(EVENT, EXISTING), None);
    assert_eq!(desk.write_refusal(UNSEEN, NEW), None, "a walk-in");
    assert!(
        desk.write_refusal(LEDGER, EXISTING)
            .is_some_and(|w| w.contains("coordinators only"))
    );
    // Outside the view, the same answer whatever the relay knows.
    for known in [EXISTING, ERASED] {
        assert_eq!(
            desk.write_refusal(UNSEEN, known).as_deref(),
            Some(OUTSIDE_SCOPE)
        );
    }
    assert_eq!(
        desk.write_refusal(CONTACT, ERASED).as_deref(),
        Some(OUTSIDE_SCOPE)
    );
    assert_eq!(
        desk.write_refusal("e_00000000000000000000000000000009", NEW)
            .as_deref(),
        Some(OUTSIDE_SCOPE),
        "events are planned by coordinators"
    );
}

#[test]
fn pushed_changes_are_checked_before_anything_else() {
    let mut doc = AutoCommit::new();
    automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "id", CONTACT).unwrap();
    doc.commit();
    let change = doc.get_last_local_change().unwrap().clone();
    let bytes = change.raw_bytes().to_vec();
    let hash = change.hash().0;
    assert_eq!(check_change(CONTACT, &bytes).unwrap().hash().0, hash);
    let (h, why) = check_change("x_1", &bytes).unwrap_err();
    assert_eq!(h, hash, "a decodable change is named by its hash");
    assert!(why.contains("not a document id"), "{why}");
    let (h, why) = check_change(CONTACT, b"not a change").unwrap_err();
    assert_eq!(h, [0; 32]);
    assert!(why.contains("not an Automerge change"), "{why}");
    let mut compressed = bytes.clone();
    compressed[8] = 2;
    let (_, why) = check_change(CONTACT, &compressed).unwrap_err();
    assert!(why.contains("compressed"), "{why}");
}

#[test]
fn a_device_that_never_says_hello_is_closed_in_time() {
    let mut s = RelaySession::new();
    assert_eq!(s.poll_timeout(), None, "no timers until started");
    s.start(1_000);
    assert_eq!(s.poll_timeout(), Some(1_000 + timers::HELLO_TIMEOUT));
    s.handle_timeout(1_000 + timers::HELLO_TIMEOUT - 1);
    assert!(!s.is_closed());
    s.handle_timeout(1_000 + timers::HELLO_TIMEOUT);
    assert!(s.is_closed() && !s.went_silent());
    let sent = wire::decode(&s.transmit.pop_front().unwrap()).unwrap();
    assert!(matches!(
        sent,
        Message::Error {
            code: code::HANDSHAKE_TIMEOUT,
            ..
        }
    ));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_quiet_device_is_pinged_and_a_silent_one_dropped() {
    let mut s = session(ROLE_COORDINATOR, &[]);
    s.start(0);
    assert_eq!(s.poll_timeout(), Some(timers::PING_EVERY), "no hello timer");
    s.handle_timeout(timers::PING_EVERY);
    assert!(s.poll_ping());
    assert!(!s.poll_ping(), "one ping");
    // The pong comes back: quiet again until the next ping.
    s.handle_heard(timers::PING_EVERY + 5);
    assert_eq!(s.poll_timeout(), Some(2 * timers::PING_EVERY + 5));
    // Nothing heard since: pinged again, then dropped.
    s.handle_timeout(2 * timers::PING_EVERY + 5);
    assert!(s.poll_ping());
    s.handle_timeout(timers::PING_EVERY + 5 + timers::SILENCE_LIMIT);
    assert!(s.is_closed() && s.went_silent());
    assert!(s.transmit.is_empty(), "nothing to say to a silent device");
}
