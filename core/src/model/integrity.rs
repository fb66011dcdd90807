//! What the relay checks of records it receives from devices it does not
//! fully trust: that a new record is readable as the kind its id announces
//! ([`check_readable`]), and which other records a record names
//! ([`references`]), so that a volunteer cannot name — and so pull into its
//! view — a contact it cannot see.
//!
//! Devices apply the same rule to what they receive: an unreadable record is
//! skipped and reported, never a reason to fail a sync.

use std::collections::BTreeSet;

use automerge::{AutoCommit, ObjType, ReadDoc, ScalarValue, Value};

use super::{ContactPrivate, DocKind, Event, FeedbackCase, hydrate, kind_of};
use crate::error::{Error, Result};

/// Checks that `doc` reads as a record of the kind `doc_id` announces: its
/// `kind` key says so and every field a record of that kind needs is there
/// with the right type. A device that wrote it with this library always
/// passes; a forged or broken change does not.
pub fn check_readable(doc_id: &str, doc: &AutoCommit) -> Result<()> {
    check_header(doc_id, doc)?;
    match DocKind::of_id(doc_id) {
        Some(DocKind::Contact) => hydrate::<super::Contact>(doc_id, doc).map(drop),
        Some(DocKind::ContactPrivate) => hydrate::<ContactPrivate>(doc_id, doc).map(drop),
        Some(DocKind::Event) => hydrate::<Event>(doc_id, doc).map(drop),
        Some(DocKind::Feedback) => hydrate::<FeedbackCase>(doc_id, doc).map(drop),
        None => Err(Error::bad_document(doc_id, "not a document id")),
    }
}

/// The cheap part of [`check_readable`]: the document says it is the kind
/// its id announces and holds that id (what devices index it under). Two
/// reads, where hydrating a whole record costs dozens (the relay checks
/// coordinators' new records this far: an office import sends thousands).
pub fn check_header(doc_id: &str, doc: &AutoCommit) -> Result<()> {
    let Some(kind) = DocKind::of_id(doc_id) else {
        return Err(Error::bad_document(doc_id, "not a document id"));
    };
    match kind_of(doc) {
        Some(k) if k == kind => {}
        Some(k) => {
            return Err(Error::bad_document(
                doc_id,
                format!(
                    "it holds a {} but its id says {}",
                    k.as_str(),
                    kind.as_str()
                ),
            ));
        }
        None => {
            return Err(Error::bad_document(
                doc_id,
                format!("it is not a {} record (no kind)", kind.as_str()),
            ));
        }
    }
    // Devices index a record under the id it holds: a record holding
    // another's id would overwrite that one's rows everywhere.
    if kind != DocKind::ContactPrivate && id_of(doc).as_deref() != Some(doc_id) {
        return Err(Error::bad_document(
            doc_id,
            "the record's id is not its document's id",
        ));
    }
    Ok(())
}

/// The ids of other records a record names, read straight from the
/// document (it need not be readable as a whole):
///
/// - an event: every contact with an entry in any of its sign-up maps, and
///   every shift's volunteer;
/// - a contact: the contact it was merged into, and the entries of
///   `not_duplicates` that are contact ids (records written by this version
///   keep only one-way keys there, see
///   [`super::contact::not_duplicate_key`]);
/// - a feedback case: the contact it is about.
///
/// Only well-formed document ids are returned.
pub fn references(doc_id: &str, doc: &AutoCommit) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |s: &str| {
        if DocKind::of_id(s).is_some() && s != doc_id {
            out.insert(s.to_owned());
        }
    };
    match DocKind::of_id(doc_id) {
        Some(DocKind::Event) => {
            if let Some(signups) = map_at(doc, &automerge::ROOT, "signups") {
                for attr in doc.keys(&signups).collect::<Vec<_>>() {
                    if let Some(m) = map_at(doc, &signups, &attr) {
                        for contact in doc.keys(&m) {
                            add(&contact);
                        }
                    }
                }
            }
            if let Some(shifts) = map_at(doc, &automerge::ROOT, "shifts") {
                for shift in doc.keys(&shifts).collect::<Vec<_>>() {
                    if let Some(s) = map_at(doc, &shifts, &shift)
                        && let Some(c) = string_at(doc, &s, "contact_id")
                    {
                        add(&c);
                    }
                }
            }
        }
        Some(DocKind::Contact) => {
            if let Some(kept) = string_at(doc, &automerge::ROOT, "merged_into") {
                add(&kept);
            }
            if let Some(nd) = map_at(doc, &automerge::ROOT, "not_duplicates") {
                for other in doc.keys(&nd) {
                    add(&other);
                }
            }
        }
        Some(DocKind::Feedback) => {
            if let Some(c) = string_at(doc, &automerge::ROOT, "contact_id") {
                add(&c);
            }
        }
        Some(DocKind::ContactPrivate) | None => {}
    }
    out
}

/// The `id` a record holds (contacts, events and feedback cases keep their
/// document's id; a private ledger keeps its contact's, `contact_id`).
pub fn id_of(doc: &AutoCommit) -> Option<String> {
    string_at(doc, &automerge::ROOT, "id")
}

fn map_at(doc: &AutoCommit, obj: &automerge::ObjId, key: &str) -> Option<automerge::ObjId> {
    match doc.get(obj, key) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

fn string_at(doc: &AutoCommit, obj: &automerge::ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;

    use super::*;
    use crate::model::{NewContact, NewEvent};
    use crate::store::Store;

    #[test]
    fn records_written_by_the_store_are_readable_and_broken_ones_are_not() {
        let mut store = Store::open_in_memory().unwrap();
        let ana = store.create_contact(&NewContact::named("Ana"), 1).unwrap();
        let event = store
            .create_event(&NewEvent::new("Gala", 1, "Hall", None), 1)
            .unwrap();
        store.sign_up(&event, &ana, false, 2).unwrap();
        let doc_of = |store: &mut Store, id: &str| {
            let mut doc = AutoCommit::new();
            for c in store.changes_of(id).unwrap() {
                doc.load_incremental(&c).unwrap();
            }
            doc
        };
        for id in [&ana, &event] {
            check_readable(id, &doc_of(&mut store, id)).unwrap();
        }
        let mut event_doc = doc_of(&mut store, &event);
        assert_eq!(
            references(&event, &event_doc),
            BTreeSet::from([ana.clone()])
        );

        let c = format!("c_{}", "a".repeat(32));
        let mut empty = AutoCommit::new();
        assert!(check_readable(&c, &empty).is_err());
        empty.put(automerge::ROOT, "kind", "contact").unwrap();
        empty.put(automerge::ROOT, "name", 7).unwrap();
        assert!(
            check_readable(&c, &empty).is_err(),
            "a name that is a number"
        );
        let mut event_doc = event_doc.fork();
        assert!(
            check_readable(&c, &event_doc).is_err(),
            "an event under a contact id"
        );
        event_doc
            .put(automerge::ROOT, "merged_into", c.as_str())
            .unwrap();
        assert!(references(&ana, &event_doc).contains(&c));
    }
}
