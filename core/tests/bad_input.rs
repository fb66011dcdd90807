//! Bad input gets a clear, typed error and changes nothing.

mod support;

use muster_core::validate::{MAX_NAME_CHARS, MAX_TEXT_BYTES};
use muster_core::{Error, NewContact, NewEvent, Store};
use support::*;

/// Everything observable about a store, to prove a refused call changed nothing.
fn state(s: &mut Store) -> (String, i64) {
    (fingerprint(s), s.pending_count().unwrap())
}

fn named(name: &str) -> NewContact {
    NewContact::named(name)
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Error>, field: &str) {
    match result {
        Err(e @ Error::Invalid { .. }) => {
            let Error::Invalid { field: f, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*f, field, "{e}");
            assert!(
                e.to_string().starts_with(&format!("invalid {field}: ")),
                "{e}"
            );
        }
        other => panic!("expected invalid {field}, got {other:?}"),
    }
}

#[test]
fn invalid_values_are_refused_and_change_nothing() {
    let mut s = Store::open_in_memory().unwrap();
    let ana = contact(&mut s, "Ana Silva");
    let before = state(&mut s);

    assert_invalid(s.create_contact(&named("   "), T0), "name");
    assert_invalid(
        s.create_contact(&named(&"x".repeat(MAX_NAME_CHARS + 1)), T0),
        "name",
    );
    let mut bad_email = named("Bo");
    bad_email.emails = vec!["bo-at-example.org".into()];
    assert_invalid(s.create_contact(&bad_email, T0), "email");
    let mut bad_phone = named("Bo");
    bad_phone.phones = vec!["call me maybe".into()];
    assert_invalid(s.create_contact(&bad_phone, T0), "phone");
    let mut bad_role = named("Bo");
    bad_role.roles = vec!["superuser".into()];
    assert_invalid(s.create_contact(&bad_role, T0), "role");
    let mut many_tags = named("Bo");
    many_tags.tags = (0..500).map(|i| format!("t{i}")).collect();
    assert_invalid(s.create_contact(&many_tags, T0), "tags");

    assert_invalid(
        s.update_contact(&ana, T0, |c| {
            c.emails.push("ana@".into());
            Ok(())
        }),
        "email",
    );
    assert_invalid(
        s.update_contact(&ana, T0, |c| {
            c.address.city = "x".repeat(5_000);
            Ok(())
        }),
        "city",
    );
    assert_invalid(
        s.update_contact(&ana, T0, |c| {
            c.custom.insert("k".into(), "v".repeat(5_000));
            Ok(())
        }),
        "custom",
    );
    assert_invalid(
        s.splice_contact_notes(&ana, 0, 0, &"n".repeat(MAX_TEXT_BYTES + 1), T0),
        "notes",
    );
    assert_invalid(s.splice_contact_notes(&ana, 10, 0, "x", T0), "notes");
    assert_invalid(
        s.create_event(
            &NewEvent {
                title: "Late".into(),
                starts_at: T0,
                ends_at: Some(T0 - 1),
                place: String::new(),
                capacity: None,
            },
            T0,
        ),
        "ends_at",
    );
    assert_invalid(
        s.create_feedback(
            &muster_core::NewFeedback {
                contact_id: None,
                channel: "pigeon".into(),
                category: "complaint".into(),
                text: "x".into(),
            },
            T0,
        ),
        "channel",
    );
    assert_invalid(
        s.add_to_ledger(
            &ana,
            muster_core::Donation {
                id: String::new(),
                amount_minor: -5,
                currency: "EUR".into(),
                date: T0,
                method: "cash".into(),
                note: None,
                recorded_by: String::new(),
            },
            T0,
        ),
        "amount",
    );
    // An edit that fails half-way leaves the record as it was, on disk and
    // in memory.
    let result = s.update_contact(&ana, T0, |c| {
        c.name = "Changed".into();
        Err(Error::NotAllowed("the app changed its mind".into()))
    });
    assert!(matches!(result, Err(Error::NotAllowed(_))));

    assert_eq!(state(&mut s), before);
    assert_eq!(s.contact(&ana).unwrap().name, "Ana Silva");
}

#[test]
fn unknown_or_malformed_ids_are_not_found() {
    let mut s = Store::open_in_memory().unwrap();
    let ana = contact(&mut s, "Ana Silva");
    let before = state(&mut s);
    let missing_contact = "c_0123456789abcdef0123456789abcdef";
    let missing_event = "e_0123456789abcdef0123456789abcdef";
    for id in [
        missing_contact,
        "c_../../etc/passwd",
        "",
        "e_0123456789abcdef0123456789abcdef",
    ] {
        let e = s.contact(id).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotFound {
                    kind: "contact",
                    ..
                }
            ),
            "{id}: {e}"
        );
        assert!(e.to_string().starts_with("no contact "), "{e}");
    }
    assert!(matches!(
        s.event(missing_event),
        Err(Error::NotFound { kind: "event", .. })
    ));
    assert!(matches!(
        s.sign_up(missing_event, &ana, false, T0),
        Err(Error::NotFound { kind: "event", .. })
    ));
    let (mut r, event, _) = replicas_with_event(1, &[], None);
    let r = &mut r[0];
    assert!(matches!(
        r.sign_up(&event, missing_contact, false, T0),
        Err(Error::NotFound {
            kind: "contact",
            ..
        })
    ));
    assert!(matches!(
        r.cancel_signup(&event, missing_contact, T0),
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(
        s.update_contact(missing_contact, T0, |_| Ok(())),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.roster(missing_event, None),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.field_conflicts(missing_contact, &["name"]),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(state(&mut s), before);
}

#[test]
fn undecodable_or_mismatched_changes_are_refused() {
    let mut a = Store::open_in_memory().unwrap();
    let mut b = Store::open_in_memory().unwrap();
    let ana = contact(&mut a, "Ana Silva");
    let (mut r, event, _) = replicas_with_event(1, &[], None);
    let event_changes = r[0].changes_of(&event).unwrap();
    let before = state(&mut b);

    let garbage = vec![
        vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3],
        b"hello".to_vec(),
        Vec::new(),
    ];
    for bytes in garbage {
        let e = b.apply_changes(&ana, &[bytes]).unwrap_err();
        assert!(matches!(e, Error::BadDocument { .. }), "{e}");
    }
    // An event's changes sent under a contact's id.
    let e = b.apply_changes(&ana, &event_changes).unwrap_err();
    assert!(e.to_string().contains("its id says contact"), "{e}");
    // A truncated change.
    let mut good = a.changes_of(&ana).unwrap();
    let cut = good[0].len() / 2;
    good[0].truncate(cut);
    assert!(matches!(
        b.apply_changes(&ana, &good),
        Err(Error::BadDocument { .. })
    ));
    assert!(matches!(
        b.apply_changes("x_not-an-id", &[]),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(state(&mut b), before);
}

fn file_bytes(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "Shopping list: rice, beans, coffee.\n".repeat(200)).unwrap();
    let before = file_bytes(&path);
    let e = Store::open(&path).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(
        e.to_string().contains("damaged or is not a database"),
        "{e}"
    );
    assert_eq!(file_bytes(&path), before);
    assert!(!dir.path().join("notes.txt-wal").exists());
}

/// A file of whole pages that is not ciphertext (text, zeros) is not taken
/// for an encrypted store: once it was told "open it with its encryption
/// key", which it never had.
#[test]
fn a_file_of_whole_pages_that_is_not_encrypted_is_not_said_to_be() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        (
            "text.db",
            "this is not a database ".repeat(4096).into_bytes(),
        ),
        ("zeros.db", vec![0u8; 8192]),
    ] {
        let path = dir.path().join(name);
        let bytes = bytes[..8192].to_vec();
        std::fs::write(&path, &bytes).unwrap();
        let e = Store::open(&path).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{name}: {e}");
        assert!(!e.to_string().contains("encryption key"), "{name}: {e}");
        assert_eq!(file_bytes(&path), bytes);
    }
}

#[test]
fn another_applications_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');",
        )
        .unwrap();
    }
    let before = file_bytes(&path);
    let e = Store::open(&path).unwrap_err();
    assert!(matches!(e, Error::ForeignDatabase { .. }), "{e}");
    assert!(e.to_string().contains("not a Muster store"), "{e}");
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn a_store_from_a_newer_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.muster");
    {
        let mut s = Store::open(&path).unwrap();
        contact(&mut s, "Ana Silva");
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let before = file_bytes(&path);
    let e = Store::open(&path).unwrap_err();
    match &e {
        Error::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!(*found, 99);
            assert_eq!(*supported, muster_core::store::latest_version());
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(e.to_string().contains("update the app"), "{e}");
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn a_store_with_damaged_pages_fails_its_integrity_check_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.muster");
    {
        let mut s = Store::open(&path).unwrap();
        let new: Vec<NewContact> = (0..300).map(|i| named(&format!("Person {i}"))).collect();
        s.create_contacts(&new, T0).unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let mut bytes = file_bytes(&path);
    assert!(bytes.len() > 16 * 4096, "the test needs a multi-page file");
    // Scribble over pages after the first (which holds the schema).
    for b in &mut bytes[4096 * 3..4096 * 12] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    match Store::open(&path) {
        Err(e) => assert!(
            matches!(e, Error::Corrupt { .. } | Error::Storage(_)),
            "{e}"
        ),
        Ok(s) => {
            let e = s.integrity_check().unwrap_err();
            assert!(matches!(e, Error::Corrupt { .. }), "{e}");
            // Reads fail with an error, never a panic.
            let _ = s.search_contacts("person", 10);
            let _ = s.list_contacts(1_000, 0);
        }
    }
}

/// Hands `entries` to `store` as a relay's catch-up batch ending at
/// `cursor` does, through the device's sync session; returns the documents
/// that changed.
fn arrive(
    store: &mut Store,
    entries: Vec<muster_core::sync::wire::Entry>,
    cursor: &muster_core::sync::wire::Cursor,
) -> Vec<String> {
    use muster_core::sync::client::{ClientSession, SyncEvent};
    use muster_core::sync::wire::{self, Message};
    let mut session = ClientSession::new(store, "token").unwrap();
    for m in [
        Message::Welcome {
            protocol: wire::PROTOCOL_VERSION,
            epoch: cursor.epoch.clone(),
            head: cursor.seq,
            cursor_trusted: true,
            role: "coordinator".into(),
        },
        Message::Batch {
            entries,
            cursor: cursor.clone(),
            remaining: 0,
        },
    ] {
        session.handle_frame(store, &wire::encode(&m), T0).unwrap();
    }
    let mut changed = Vec::new();
    while let Some(e) = session.poll_event() {
        if let SyncEvent::Changed { docs } = e {
            changed.extend(docs);
        }
    }
    changed
}

/// A contact the relay acknowledged before it checked new records' shape
/// (fields missing, a name that is a number, an empty root): every device
/// that receives one keeps syncing, and the report names it.
#[test]
fn an_unreadable_record_from_the_relay_is_skipped_and_reported() {
    use automerge::transaction::Transactable;
    use muster_core::sync::wire::{Cursor, Entry, Form};

    let mut office = Store::open_in_memory().unwrap();
    let ana = contact(&mut office, "Ana Silva");
    let before = office.baseline().unwrap();
    let broken: Vec<(String, Vec<u8>)> = (0..3u8)
        .map(|n| {
            let mut d = automerge::AutoCommit::new();
            match n {
                0 => d.put(automerge::ROOT, "unrelated", 1).unwrap(),
                1 => {
                    d.put(automerge::ROOT, "kind", "contact").unwrap();
                    d.put(automerge::ROOT, "name", 42).unwrap();
                }
                _ => {
                    d.put(automerge::ROOT, "kind", "contact").unwrap();
                    d.put(automerge::ROOT, "name", "Only a name").unwrap();
                }
            }
            (format!("c_{:032x}", 0xbad0 + u32::from(n)), d.save())
        })
        .collect();
    let entries: Vec<Entry> = broken
        .iter()
        .map(|(doc, data)| Entry {
            doc: doc.clone(),
            form: Form::Snapshot,
            data: serde_bytes::ByteBuf::from(data.clone()),
        })
        .collect();
    let cursor = Cursor {
        seq: 3,
        hash: serde_bytes::ByteBuf::from(vec![1; 32]),
        epoch: "e".into(),
        vis: 0,
    };
    let changed = arrive(&mut office, entries, &cursor);
    let report = office.reconcile(&before, &changed).unwrap();
    let ids: Vec<String> = broken.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(report.unreadable, ids);
    assert_eq!(report.arrived.new_contacts, 0);
    // Everything else works as before.
    assert_eq!(office.list_contacts(10, 0).unwrap().len(), 1);
    assert_eq!(office.search_contacts("Ana", 10).unwrap()[0].id, ana);
    office.duplicate_candidates().unwrap();
    assert_eq!(office.sync_cursor().unwrap(), Some((&cursor).into()));
}

/// Control characters in a search (a `%00` in the dashboard's URL) are
/// read as spaces: FTS5 refused the query ("unterminated string").
#[test]
fn control_characters_in_a_search_are_spaces() {
    let mut s = Store::open_in_memory().unwrap();
    let ana = contact(&mut s, "Ana Silva");
    for q in ["\0silva", "silva\0", "\u{7f}ana silva\r\n", "\0sil"] {
        let hits = s.search_contacts(q, 10).unwrap();
        assert_eq!(hits.len(), 1, "{q:?}");
        assert_eq!(hits[0].id, ana);
    }
    for q in ["\0", "\u{1}\u{2}", "si\u{1}lva"] {
        s.search_contacts(q, 10).unwrap();
    }
}

/// Devices index a record under the id it holds; one holding another's id
/// (a forged walk-in) is unreadable, not a way to overwrite that one's rows.
#[test]
fn a_record_holding_another_records_id_is_unreadable() {
    use automerge::transaction::Transactable;
    use muster_core::sync::wire::{Cursor, Entry, Form};

    let mut office = Store::open_in_memory().unwrap();
    let ana = contact(&mut office, "Ana Silva");
    let mut source = Store::open_in_memory().unwrap();
    let impostor = contact(&mut source, "Impostor");
    let mut doc = automerge::AutoCommit::new();
    for c in source.changes_of(&impostor).unwrap() {
        doc.load_incremental(&c).unwrap();
    }
    doc.put(automerge::ROOT, "id", ana.as_str()).unwrap();
    let before = office.baseline().unwrap();
    let entry = Entry {
        doc: impostor.clone(),
        form: Form::Snapshot,
        data: serde_bytes::ByteBuf::from(doc.save()),
    };
    let cursor = Cursor {
        seq: 1,
        hash: serde_bytes::ByteBuf::from(vec![1; 32]),
        epoch: "e".into(),
        vis: 0,
    };
    let changed = arrive(&mut office, vec![entry], &cursor);
    let report = office.reconcile(&before, &changed).unwrap();
    assert_eq!(report.unreadable, vec![impostor]);
    let listed = office.list_contacts(10, 0).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "Ana Silva");
}

/// A new record's first change to arrive may wait for an earlier one (a
/// relay restored from an older backup sends what it has): it is kept on
/// disk, nothing shows it yet, and it applies when the earlier one comes.
#[test]
fn a_new_records_change_that_waits_for_an_earlier_one_is_kept() {
    use muster_core::sync::wire::{Cursor, Entry, Form};
    use serde_bytes::ByteBuf;

    let mut office = Store::open_in_memory().unwrap();
    let ana = contact(&mut office, "Ana Silva");
    office
        .update_contact(&ana, T0 + 1, |c| {
            c.name = "Ana Pereira".into();
            Ok(())
        })
        .unwrap();
    let changes = office.changes_of(&ana).unwrap();
    assert_eq!(changes.len(), 2);
    let entry = |data: &[u8]| Entry {
        doc: ana.clone(),
        form: Form::Change,
        data: ByteBuf::from(data.to_vec()),
    };
    let cursor = |seq| Cursor {
        seq,
        hash: ByteBuf::from(vec![1; 32]),
        epoch: "e".into(),
        vis: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.muster");
    {
        let mut desk = Store::open(&path).unwrap();
        arrive(&mut desk, vec![entry(&changes[1])], &cursor(1));
        assert!(desk.search_contacts("pereira", 5).unwrap().is_empty());
        assert_eq!(desk.contact_count().unwrap(), 0);
    }
    let mut desk = Store::open(&path).unwrap();
    let changed = arrive(&mut desk, vec![entry(&changes[0])], &cursor(2));
    assert_eq!(changed, vec![ana.clone()]);
    assert_eq!(desk.contact(&ana).unwrap().name, "Ana Pereira");
    assert_eq!(desk.search_contacts("pereira", 5).unwrap().len(), 1);
}

/// An empty id is a missing one: "no event id was given", not "no event
/// with id  on this device".
#[test]
fn an_empty_id_says_none_was_given() {
    let mut s = Store::open_in_memory().unwrap();
    let e = s.roster("", None).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert_eq!(e.to_string(), "no event id was given");
    assert_eq!(
        s.contact(" ").unwrap_err().to_string(),
        "no contact id was given"
    );
    assert_eq!(
        s.contact("c_nope").unwrap_err().to_string(),
        "no contact with id c_nope on this device"
    );
}

/// An invalid entry of a list names itself, so an app marks that one.
#[test]
fn an_invalid_entry_of_a_list_names_its_value() {
    let mut s = Store::open_in_memory().unwrap();
    let e = s
        .create_contact(
            &NewContact {
                name: "Ana Silva".into(),
                emails: vec!["ana@example.org".into(), " ana.example.org ".into()],
                ..Default::default()
            },
            T0,
        )
        .unwrap_err();
    match e {
        Error::Invalid { field, value, .. } => {
            assert_eq!(
                (field, value.as_deref()),
                ("email", Some("ana.example.org"))
            );
        }
        other => panic!("{other:?}"),
    }
    let e = s.create_contact(&NewContact::named(" "), T0).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                field: "name",
                value: None,
                ..
            }
        ),
        "{e:?}"
    );
}
