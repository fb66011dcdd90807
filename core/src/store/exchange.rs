//! Bulk reads and writes for imports and exports (`muster import`,
//! `muster export`).
//!
//! An import or an export touches every contact of the device: reading them
//! one call at a time through the document cache would cost two queries and
//! a cache eviction per contact, and writing them one call at a time would
//! cost a durable commit per contact. Here documents are read in one ordered
//! scan of the file, decoded on two threads a chunk at a time (so memory
//! stays bounded whatever the number of records), and imported contacts are
//! written a batch per transaction: all of a batch or none of it.

use std::collections::HashMap;

use automerge::{AutoCommit, Change};

use super::{EventSummary, RosterLine};
use super::{Store, commit_change, index, load_doc, scan, store_changes};
use crate::error::{Error, Result};
use crate::model::{self, Contact, ContactPrivate, DocKind, FeedbackCase, Millis};
use crate::views::SignupStatus;

/// An edit of one contact in an import batch ([`Store::write_contacts`]).
pub type BatchEdit<'a> = Box<dyn FnOnce(&mut Contact) -> Result<()> + 'a>;

impl Store {
    /// Writes a batch of imported contacts in one transaction: every write
    /// is stored, with its index rows, or — on any error, such as an edit
    /// that fails validation or a disk that is full — none is, and the
    /// store is as it was before the call.
    ///
    /// `creates` are new contacts with these fields: the store gives each its
    /// id and sets `created_by` (this device) and `created_at` (`now`);
    /// `merged_into` is cleared. `updates` are edits of existing contacts,
    /// made on the record as stored when the batch is written and then
    /// validated, as [`Store::update_contact`] does (only the fields that
    /// changed become part of the change); the id is used as given, a merged
    /// duplicate is not redirected: the caller chooses the contact.
    ///
    /// Returns the ids of the created contacts in order, and for each update
    /// whether it changed the contact.
    ///
    /// A batch costs one durable commit instead of one per contact, which is
    /// what makes importing 100,000 contacts take seconds rather than hours.
    pub fn write_contacts(
        &mut self,
        creates: Vec<Contact>,
        updates: Vec<(String, BatchEdit<'_>)>,
        now: Millis,
    ) -> Result<(Vec<String>, Vec<bool>)> {
        // Documents of the updated contacts: id, document, its new changes.
        let mut docs: Vec<(String, AutoCommit, Vec<Change>)> = Vec::new();
        let mut slot: HashMap<String, usize> = HashMap::new();
        let mut changed = Vec::with_capacity(updates.len());
        // On any error below, `docs` is dropped: documents taken out of the
        // cache are reloaded from disk when next used, so memory never runs
        // ahead of the disk.
        let mut ready = Vec::with_capacity(creates.len());
        for mut contact in creates {
            contact.id = self.new_doc_id(DocKind::Contact, now);
            contact.created_by = self.device_id.clone();
            contact.created_at = now;
            contact.merged_into = None;
            contact.normalise()?;
            ready.push(contact);
        }
        for (id, edit) in updates {
            model::check_id(DocKind::Contact, &id)?;
            let at = match slot.get(&id) {
                Some(&at) => at,
                None => {
                    let doc = self
                        .take_doc(&id)?
                        .ok_or_else(|| Error::not_found("contact", &id))?;
                    slot.insert(id.clone(), docs.len());
                    docs.push((id.clone(), doc, Vec::new()));
                    docs.len() - 1
                }
            };
            let (_, doc, changes) = &mut docs[at];
            let mut contact: Contact = model::hydrate(&id, doc)?;
            edit(&mut contact)?;
            contact.id = id.clone();
            contact.normalise()?;
            model::reconcile(&id, doc, &contact)?;
            match commit_change(doc, now) {
                Some(change) => {
                    changes.push(change);
                    changed.push(true);
                }
                None => changed.push(false),
            }
        }
        let tx = self.conn.transaction()?;
        store_new_contacts(&tx, &self.actor, &ready, now)?;
        for (id, doc, changes) in &docs {
            if !changes.is_empty() {
                store_changes(&tx, id, DocKind::Contact, doc, changes, true)?;
            }
        }
        let touched: Vec<(DocKind, &str, &AutoCommit)> = docs
            .iter()
            .filter(|(_, _, changes)| !changes.is_empty())
            .map(|(id, doc, _)| (DocKind::Contact, id.as_str(), doc))
            .collect();
        index::reindex_all(&tx, &touched)?;
        tx.commit()?;
        let created: Vec<String> = ready.into_iter().map(|c| c.id).collect();
        let written: Vec<String> = touched.iter().map(|(_, id, _)| (*id).to_owned()).collect();
        self.touch(created.iter().cloned().chain(written));
        for (id, doc, _) in docs {
            self.put_doc(&id, doc);
        }
        Ok((created, changed))
    }

    /// The contacts with these ids, in the same order; `None` for an id this
    /// device does not hold. Read without filling the document cache.
    pub fn contacts_by_id(&self, ids: &[String]) -> Result<Vec<Option<Contact>>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            model::check_id(DocKind::Contact, id)?;
            let contact = match self.cache.get(id) {
                Some(doc) => Some(Contact::read(id, doc)?),
                None => match load_doc(&self.conn, id, &self.actor)? {
                    Some(doc) => Some(Contact::read(id, &doc)?),
                    None => None,
                },
            };
            out.push(contact);
        }
        Ok(out)
    }

    /// Calls `f` with every contact of this device (merged duplicates
    /// included), in id order, a few hundred at a time. Returns how many
    /// contact documents could not be read as contacts (possible only for
    /// records written by a newer app) and were left out.
    ///
    /// Reads the file in one ordered scan and decodes on two threads; memory
    /// holds one chunk, whatever the number of contacts.
    pub fn for_each_contact<E: From<Error>>(
        &self,
        f: impl FnMut(Vec<Contact>) -> Result<(), E>,
    ) -> Result<usize, E> {
        self.for_each_record(DocKind::Contact, f)
    }

    /// Calls `f` with every contact's own private ledger this device holds
    /// (a merged duplicate's entries stay in its own ledger, so each entry
    /// is seen once), in id order, a few hundred at a time. Returns how many
    /// could not be read and were left out. See [`Store::for_each_contact`].
    pub fn for_each_private_ledger<E: From<Error>>(
        &self,
        f: impl FnMut(Vec<ContactPrivate>) -> Result<(), E>,
    ) -> Result<usize, E> {
        self.for_each_record(DocKind::ContactPrivate, f)
    }

    /// Calls `f` with every feedback case, in id order, a few hundred at a
    /// time. Returns how many could not be read and were left out. See
    /// [`Store::for_each_contact`].
    pub fn for_each_feedback_case<E: From<Error>>(
        &self,
        f: impl FnMut(Vec<FeedbackCase>) -> Result<(), E>,
    ) -> Result<usize, E> {
        self.for_each_record(DocKind::Feedback, f)
    }

    /// Every contact's id with the name lists show (the preferred name if
    /// any) and the contact it was merged into, from the index.
    pub fn contact_names(&self) -> Result<HashMap<String, (String, Option<String>)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, merged_into FROM contacts")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
        let mut names = HashMap::new();
        for row in rows {
            let (id, value): (String, (String, Option<String>)) = row?;
            names.insert(id, value);
        }
        Ok(names)
    }

    /// Calls `f` with every sign-up of every event as stored (one line per
    /// sign-up; the name is the contact's own, from the index, `None` if
    /// this device does not hold the contact), events by start time, each
    /// event's sign-ups by registration time. One query per event.
    pub fn for_each_signup<E: From<Error>>(
        &self,
        mut f: impl FnMut(&EventSummary, RosterLine) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.contact_id, c.name, s.status, s.registered_at, s.checked_in_at,
                        s.walk_in, s.waitlist_position
                 FROM signups s LEFT JOIN contacts c ON c.id = s.contact_id
                 WHERE s.event_id = ?1
                 ORDER BY s.registered_at, s.contact_id",
            )
            .map_err(Error::from)?;
        for event in self.list_events()? {
            let mut rows = stmt.query([&event.id]).map_err(Error::from)?;
            while let Some(r) = rows.next().map_err(Error::from)? {
                let status: String = r.get(2).map_err(Error::from)?;
                let line = RosterLine {
                    contact_id: r.get(0).map_err(Error::from)?,
                    name: r.get(1).map_err(Error::from)?,
                    status: SignupStatus::parse(&status).unwrap_or(SignupStatus::Registered),
                    registered_at: r.get(3).map_err(Error::from)?,
                    checked_in_at: r.get(4).map_err(Error::from)?,
                    walk_in: r.get(5).map_err(Error::from)?,
                    waitlist_position: r.get(6).map_err(Error::from)?,
                };
                f(&event, line)?;
            }
        }
        Ok(())
    }

    /// The bulk reader behind the `for_each_*` calls ([`scan::scan_docs`]):
    /// every document of `kind`, read as `T`; returns how many could not be
    /// read.
    fn for_each_record<T, E>(
        &self,
        kind: DocKind,
        mut f: impl FnMut(Vec<T>) -> Result<(), E>,
    ) -> Result<usize, E>
    where
        T: Record,
        E: From<Error>,
    {
        let mut unreadable = 0;
        scan::scan_docs(
            &self.conn,
            &format!("SELECT doc_id FROM docs WHERE kind = '{}'", kind.as_str()),
            |id, doc| T::read(id, doc).ok(),
            |chunk| {
                let total = chunk.len();
                let records: Vec<T> = chunk.into_iter().filter_map(|(_, r)| r).collect();
                unreadable += total - records.len();
                f(records)
            },
        )?;
        Ok(unreadable)
    }
}

/// How many new contacts' documents are built (on two threads) before they
/// are written and dropped: enough to keep both threads busy, few enough
/// that a batch of 100,000 never holds more than this many documents.
pub(super) const NEW_CONTACTS_AT_ONCE: usize = 256;

/// Stores contacts made on this device inside `tx`: the documents are built
/// on two threads a chunk at a time, each written with its first change and
/// the index rows of the record it was made of, then dropped. Memory stays
/// bounded however many contacts there are; the created documents are not
/// cached (a batch of thousands would only push the useful ones out).
pub(super) fn store_new_contacts(
    tx: &rusqlite::Transaction<'_>,
    actor: &automerge::ActorId,
    contacts: &[Contact],
    now: Millis,
) -> Result<()> {
    let build = |contact: &Contact| -> Result<(AutoCommit, Change)> {
        let mut doc = model::create_doc(actor, DocKind::Contact, contact)?;
        let change = commit_change(&mut doc, now)
            .ok_or_else(|| Error::bad_document(&contact.id, "a new document must hold a change"))?;
        Ok((doc, change))
    };
    for chunk in contacts.chunks(NEW_CONTACTS_AT_ONCE) {
        let docs = scan::on_two_threads(chunk.iter().collect(), build);
        for (contact, doc) in chunk.iter().zip(docs) {
            let (doc, change) = doc?;
            store_changes(tx, &contact.id, DocKind::Contact, &doc, &[change], true)?;
            index::index_new_contact(tx, contact)?;
        }
    }
    Ok(())
}

/// A record the bulk readers can read out of its document.
trait Record: Send + Sized {
    fn read(doc_id: &str, doc: &AutoCommit) -> Result<Self>;
}

impl Record for ContactPrivate {
    fn read(doc_id: &str, doc: &AutoCommit) -> Result<Self> {
        model::hydrate(doc_id, doc)
    }
}

impl Record for FeedbackCase {
    fn read(doc_id: &str, doc: &AutoCommit) -> Result<Self> {
        model::hydrate(doc_id, doc)
    }
}

/// Contacts are read in one pass over each map of the document: autosurgeon
/// looks every field up by key, which on Automerge 0.12 is half the cost of
/// exporting or matching 100,000 contacts. Anything unexpected (a value of
/// another type, a field written by a newer app) is read by autosurgeon, so
/// the result, and any error, is the same as [`model::hydrate`]'s — except
/// that `notes` is a fresh [`autosurgeon::Text`] (equal as text): write
/// through [`Store::update_contact`] or [`Store::write_contacts`], which
/// read the record themselves.
impl Record for Contact {
    fn read(doc_id: &str, doc: &AutoCommit) -> Result<Self> {
        match fast::contact(doc) {
            Some(contact) => Ok(contact),
            None => model::hydrate(doc_id, doc),
        }
    }
}

/// The one-pass contact reader (see `impl Record for Contact`).
mod fast {
    use std::collections::BTreeMap;

    use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValueRef, ValueRef};

    use crate::model::{Address, Consent, Contact};

    /// A value of a map: a scalar, or the id of a nested object.
    enum Item<'a> {
        Scalar(ScalarValueRef<'a>),
        Object(ObjType, ObjId),
    }

    fn items<'a>(doc: &'a AutoCommit, obj: &ObjId) -> Vec<(String, Item<'a>)> {
        doc.map_range(obj, ..)
            .map(|item| {
                let id = item.id();
                let value = match item.value {
                    ValueRef::Scalar(s) => Item::Scalar(s),
                    ValueRef::Object(t) => Item::Object(t, id),
                };
                (item.key.into_owned(), value)
            })
            .collect()
    }

    fn text(item: &Item<'_>) -> Option<String> {
        match item {
            Item::Scalar(ScalarValueRef::Str(s)) => Some(s.to_string()),
            _ => None,
        }
    }

    fn opt_text(item: &Item<'_>) -> Option<Option<String>> {
        match item {
            Item::Scalar(ScalarValueRef::Null) => Some(None),
            other => text(other).map(Some),
        }
    }

    fn int(item: &Item<'_>) -> Option<i64> {
        match item {
            Item::Scalar(ScalarValueRef::Int(i)) => Some(*i),
            _ => None,
        }
    }

    fn opt_int(item: &Item<'_>) -> Option<Option<i64>> {
        match item {
            Item::Scalar(ScalarValueRef::Null) => Some(None),
            other => int(other).map(Some),
        }
    }

    fn flag(item: &Item<'_>) -> Option<bool> {
        match item {
            Item::Scalar(ScalarValueRef::Boolean(b)) => Some(*b),
            _ => None,
        }
    }

    fn map<T>(
        doc: &AutoCommit,
        item: &Item<'_>,
        value: impl Fn(&Item<'_>) -> Option<T>,
    ) -> Option<BTreeMap<String, T>> {
        let Item::Object(ObjType::Map, id) = item else {
            return None;
        };
        items(doc, id)
            .into_iter()
            .map(|(k, v)| value(&v).map(|v| (k, v)))
            .collect()
    }

    fn list(doc: &AutoCommit, item: &Item<'_>) -> Option<Vec<String>> {
        let Item::Object(ObjType::List, id) = item else {
            return None;
        };
        doc.list_range(id, ..)
            .map(|i| match i.value {
                ValueRef::Scalar(ScalarValueRef::Str(s)) => Some(s.to_string()),
                _ => None,
            })
            .collect()
    }

    fn address(doc: &AutoCommit, item: &Item<'_>) -> Option<Address> {
        let fields = map(doc, item, text)?;
        let get = |k: &str| fields.get(k).cloned();
        Some(Address {
            street: get("street")?,
            city: get("city")?,
            region: get("region")?,
            postal_code: get("postal_code")?,
            country: get("country")?,
        })
    }

    fn consent(doc: &AutoCommit, item: &Item<'_>) -> Option<Consent> {
        let Item::Object(ObjType::Map, id) = item else {
            return None;
        };
        let fields: BTreeMap<String, Item<'_>> = items(doc, id).into_iter().collect();
        Some(Consent {
            given: flag(fields.get("given")?)?,
            channels: map(doc, fields.get("channels")?, flag)?,
            recorded_at: opt_int(fields.get("recorded_at")?)?,
            method: opt_text(fields.get("method")?)?,
            recorded_by: opt_text(fields.get("recorded_by")?)?,
        })
    }

    /// The contact, or `None` if the document holds anything this reader
    /// does not expect.
    pub(super) fn contact(doc: &AutoCommit) -> Option<Contact> {
        let root: BTreeMap<String, Item<'_>> = items(doc, &automerge::ROOT).into_iter().collect();
        let get = |k: &str| root.get(k);
        let notes = match get("notes")? {
            Item::Object(ObjType::Text, id) => doc.text(id).ok()?,
            _ => return None,
        };
        Some(Contact {
            id: text(get("id")?)?,
            name: text(get("name")?)?,
            preferred_name: opt_text(get("preferred_name")?)?,
            phones: list(doc, get("phones")?)?,
            emails: list(doc, get("emails")?)?,
            address: address(doc, get("address")?)?,
            preferred_language: opt_text(get("preferred_language")?)?,
            roles: map(doc, get("roles")?, flag)?,
            tags: map(doc, get("tags")?, flag)?,
            interests: map(doc, get("interests")?, flag)?,
            consent: consent(doc, get("consent")?)?,
            household: opt_text(get("household")?)?,
            organisation: opt_text(get("organisation")?)?,
            external_id: opt_text(get("external_id")?)?,
            custom: map(doc, get("custom")?, text)?,
            notes: autosurgeon::Text::with_value(notes),
            merged_into: opt_text(get("merged_into")?)?,
            not_duplicates: match get("not_duplicates") {
                None => BTreeMap::new(),
                Some(item) => map(doc, item, flag)?,
            },
            created_by: text(get("created_by")?)?,
            created_at: int(get("created_at")?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Donation, NewContact};

    fn new(name: &str, email: &str) -> NewContact {
        NewContact {
            name: name.into(),
            emails: vec![email.into()],
            ..Default::default()
        }
    }

    fn blank(name: &str) -> Contact {
        Contact::new(String::new(), &new(name, "x@example.org"), "", 0).unwrap()
    }

    #[test]
    fn bulk_reads_see_every_contact_in_id_order_in_chunks() {
        let mut store = Store::open_in_memory().unwrap();
        let many: Vec<NewContact> = (0..1_100)
            .map(|i| new(&format!("Person {i}"), &format!("p{i}@example.org")))
            .collect();
        let mut ids = store.create_contacts(&many, 1).unwrap();
        // One contact edited after creation (two changes), one compacted
        // (a snapshot plus nothing): all three stored forms are read.
        store
            .update_contact(&ids[5], 2, |c| {
                c.address.city = "Lisboa".into();
                Ok(())
            })
            .unwrap();
        store.compact(&ids[6]).unwrap();
        ids.sort();
        let mut seen = Vec::new();
        let mut chunks = 0;
        let bad = store
            .for_each_contact(|chunk| {
                chunks += 1;
                assert!(chunk.len() <= scan::SCAN_CHUNK);
                seen.extend(chunk);
                Ok::<_, Error>(())
            })
            .unwrap();
        assert_eq!(bad, 0);
        assert_eq!(chunks, 3);
        assert_eq!(seen.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids);
        for c in &seen {
            assert_eq!(c, &store.contact(&c.id).unwrap());
        }
    }

    #[test]
    fn the_one_pass_reader_reads_what_autosurgeon_reads() {
        let mut store = Store::open_in_memory().unwrap();
        let plain = store
            .create_contact(&new("Ana", "ana@example.org"), 1)
            .unwrap();
        let full = store
            .create_contact(&new("Bo Chen", "bo@example.org"), 1)
            .unwrap();
        store
            .update_contact(&full, 2, |c| {
                c.preferred_name = Some("Bo".into());
                c.phones = vec!["+44 7700 900123".into(), "07700 900456".into()];
                c.address.street = "1 Main St".into();
                c.address.city = "Leeds".into();
                c.address.region = "Yorkshire".into();
                c.address.postal_code = "LS1 1AA".into();
                c.address.country = "GB".into();
                c.preferred_language = Some("pt-BR".into());
                c.roles.insert("volunteer".into(), true);
                c.tags.insert("choir".into(), true);
                c.tags.insert("gone".into(), false);
                c.interests.insert("music".into(), true);
                c.consent.given = true;
                c.consent.channels.insert("email".into(), true);
                c.consent.recorded_at = Some(5);
                c.consent.method = Some("paper form".into());
                c.consent.recorded_by = Some("desk".into());
                c.household = Some("h1".into());
                c.organisation = Some("Choir".into());
                c.external_id = Some("CRM-1".into());
                c.custom.insert("shirt".into(), "M".into());
                c.merged_into = Some(plain.clone());
                c.not_duplicates.insert(plain.clone(), true);
                Ok(())
            })
            .unwrap();
        store.splice_contact_notes(&plain, 0, 0, "Olá", 3).unwrap();
        for id in [&plain, &full] {
            let doc = store.doc(id, DocKind::Contact).unwrap().clone();
            let fast = fast::contact(&doc).expect("read in one pass");
            assert_eq!(fast, model::hydrate::<Contact>(id, &doc).unwrap());
        }
        // A field of an unexpected type: read (and refused) by autosurgeon.
        let mut doc = store.doc(&plain, DocKind::Contact).unwrap().clone();
        automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "name", 7_i64)
            .unwrap();
        assert!(fast::contact(&doc).is_none());
        assert!(Contact::read(&plain, &doc).is_err());
    }

    #[test]
    fn a_batch_creates_and_updates_in_one_transaction() {
        let mut store = Store::open_in_memory().unwrap();
        let ana = store
            .create_contact(&new("Ana", "ana@example.org"), 1)
            .unwrap();
        let mut bo = blank("Bo Chen");
        bo.address.city = "Leeds".into();
        let (created, changed) = store
            .write_contacts(
                vec![bo],
                vec![
                    (
                        ana.clone(),
                        Box::new(|c: &mut Contact| {
                            c.organisation = Some("Choir".into());
                            Ok(())
                        }),
                    ),
                    (ana.clone(), Box::new(|_: &mut Contact| Ok(()))),
                ],
                5,
            )
            .unwrap();
        assert_eq!(changed, vec![true, false]);
        assert_eq!(created.len(), 1);
        let bo = store.contact(&created[0]).unwrap();
        assert_eq!((bo.address.city.as_str(), bo.created_at), ("Leeds", 5));
        assert_eq!(bo.created_by, store.device_id());
        assert_eq!(
            store.contact(&ana).unwrap().organisation.as_deref(),
            Some("Choir")
        );
        assert_eq!(store.search_contacts("Chen", 5).unwrap().len(), 1);
        assert_eq!(store.pending_count().unwrap(), 3);
        assert_eq!(
            store.contacts_by_id(std::slice::from_ref(&ana)).unwrap()[0]
                .as_ref()
                .unwrap()
                .organisation
                .as_deref(),
            Some("Choir")
        );
    }

    #[test]
    fn a_failing_write_leaves_the_whole_batch_unwritten() {
        let mut store = Store::open_in_memory().unwrap();
        let ana = store
            .create_contact(&new("Ana", "ana@example.org"), 1)
            .unwrap();
        let before = store.contact(&ana).unwrap();
        let err = store
            .write_contacts(
                vec![blank("Bo Chen")],
                vec![
                    (
                        ana.clone(),
                        Box::new(|c: &mut Contact| {
                            c.organisation = Some("Choir".into());
                            Ok(())
                        }),
                    ),
                    (
                        ana.clone(),
                        Box::new(|c: &mut Contact| {
                            c.emails.push("not an email".into());
                            Ok(())
                        }),
                    ),
                ],
                5,
            )
            .unwrap_err();
        assert!(
            matches!(err, Error::Invalid { field: "email", .. }),
            "{err}"
        );
        assert_eq!(store.contact_count().unwrap(), 1);
        assert_eq!(store.contact(&ana).unwrap(), before);
        assert_eq!(store.pending_count().unwrap(), 1);
    }

    #[test]
    fn ledgers_feedback_and_signups_are_read_in_bulk() {
        let mut store = Store::open_in_memory().unwrap();
        let ana = store
            .create_contact(&new("Ana", "ana@example.org"), 1)
            .unwrap();
        store
            .add_to_ledger(
                &ana,
                Donation {
                    id: String::new(),
                    amount_minor: 1250,
                    currency: "eur".into(),
                    date: 10,
                    method: "cash".into(),
                    note: None,
                    recorded_by: String::new(),
                },
                11,
            )
            .unwrap();
        let gala = store
            .create_event(&crate::NewEvent::new("Gala", 100, "Hall", None), 1)
            .unwrap();
        store.sign_up(&gala, &ana, false, 20).unwrap();
        store
            .create_feedback(
                &crate::NewFeedback {
                    contact_id: Some(ana.clone()),
                    channel: "email".into(),
                    category: "praise".into(),
                    text: "Lovely".into(),
                },
                30,
            )
            .unwrap();
        let mut ledgers = Vec::new();
        store
            .for_each_private_ledger(|c| {
                ledgers.extend(c);
                Ok::<_, Error>(())
            })
            .unwrap();
        assert_eq!(ledgers.len(), 1);
        assert_eq!(ledgers[0].contact_id, ana);
        assert_eq!(ledgers[0].donations[0].currency, "EUR");
        let mut cases = Vec::new();
        store
            .for_each_feedback_case(|c| {
                cases.extend(c);
                Ok::<_, Error>(())
            })
            .unwrap();
        assert_eq!(cases.len(), 1);
        let mut signups = Vec::new();
        store
            .for_each_signup(|e, s| {
                signups.push((e.title.clone(), s));
                Ok::<_, Error>(())
            })
            .unwrap();
        assert_eq!(signups.len(), 1);
        assert_eq!(signups[0].0, "Gala");
        assert_eq!(signups[0].1.name.as_deref(), Some("Ana"));
        assert_eq!(signups[0].1.registered_at, 20);
        assert_eq!(
            store.contact_names().unwrap()[&ana],
            ("Ana".to_owned(), None)
        );
    }
}
