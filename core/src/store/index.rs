//! The materialised index tables: rows derived from merged documents, for
//! search and lists without opening documents.
//!
//! [`reindex`] is called inside the transaction that stores a change, so the
//! index always agrees with the documents on disk.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use automerge::AutoCommit;
use autosurgeon::Hydrate;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::merges;
use crate::model::{self, DocKind, Event, FeedbackCase, Millis};
use crate::validate;
use crate::views::{self, SignupStatus};

/// A contact as lists and search results show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ContactSummary {
    /// The contact's id (`c_…`).
    pub id: String,
    /// Name to show.
    pub name: String,
    /// First phone number, if any.
    pub phone: Option<String>,
    /// First email address, if any.
    pub email: Option<String>,
    /// Roles held, in name order.
    pub roles: Vec<String>,
    /// Set when the contact was merged into another.
    pub merged_into: Option<String>,
}

/// An event as lists show it, with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummary {
    /// The event's id (`e_…`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Start time.
    pub starts_at: Millis,
    /// End time.
    pub ends_at: Option<Millis>,
    /// Place.
    pub place: String,
    /// Capacity, if limited.
    pub capacity: Option<i64>,
    /// `scheduled`, `cancelled` or `completed`.
    pub status: String,
    /// Sign-ups holding a seat (registered, no-show or checked in).
    pub registered: i64,
    /// Sign-ups waiting for a seat.
    pub waitlisted: i64,
    /// Sign-ups checked in.
    pub checked_in: i64,
}

/// One line of an event's roster, with the contact's name when this device
/// holds the contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterLine {
    /// The contact (`c_…`).
    pub contact_id: String,
    /// The contact's name, if this device holds the contact.
    pub name: Option<String>,
    /// Where the sign-up stands.
    pub status: SignupStatus,
    /// When the contact registered.
    pub registered_at: Millis,
    /// When the contact was checked in.
    pub checked_in_at: Option<Millis>,
    /// Registered at the door.
    pub walk_in: bool,
    /// Place on the waitlist, from 1.
    pub waitlist_position: Option<u32>,
}

/// Brings the index rows of one document up to date with its merged state.
///
/// A document that cannot be read as its kind (possible only for changes
/// received from a newer app) loses its index rows rather than keep stale
/// ones; its changes are kept all the same.
///
/// Returns whether the document holds conflicting values in the fields
/// the reconciliation report lists ([`model::holds_conflicts`]): read
/// here, while the document is at hand, so that the report need not load
/// every record a sync brought.
pub(crate) fn reindex(
    tx: &Transaction<'_>,
    kind: DocKind,
    doc_id: &str,
    doc: &AutoCommit,
) -> Result<bool> {
    write_row(tx, doc_id, read_row(kind, doc_id, doc))?;
    Ok(model::holds_conflicts(kind, doc))
}

/// [`reindex`] for many documents at once, as a batch from the relay
/// brings them: the documents are read (the costly part) on two threads,
/// the rows written in order on this one. Returns the ids of those that
/// hold conflicting values.
pub(crate) fn reindex_all(
    tx: &Transaction<'_>,
    docs: &[(DocKind, &str, &AutoCommit)],
) -> Result<Vec<String>> {
    let rows = super::scan::on_two_threads(docs.iter().collect(), |(kind, id, doc)| {
        (read_row(*kind, id, doc), model::holds_conflicts(*kind, doc))
    });
    let mut conflicted = Vec::new();
    for ((_, id, _), (row, conflicts)) in docs.iter().zip(rows) {
        write_row(tx, id, row)?;
        if conflicts {
            conflicted.push((*id).to_owned());
        }
    }
    Ok(conflicted)
}

/// The index rows of a contact created on this device, from the record it
/// was made of: its new document holds exactly that record and, made by
/// one change of one writer, no conflicting values, so reading the
/// document back would find only what was just written (hydrating it was a
/// sixth of a batched create).
pub(crate) fn index_new_contact(tx: &Transaction<'_>, contact: &model::Contact) -> Result<()> {
    index_contact(tx, &ContactRow::of(contact))
}

/// What a document's index rows are made from.
enum Row {
    Contact(Box<ContactRow>),
    Event(Box<Event>),
    Feedback(Box<FeedbackCase>),
    /// Unreadable as its kind: its rows go.
    Unreadable(DocKind),
    /// Private ledgers have no index rows.
    Nothing,
}

fn read_row(kind: DocKind, doc_id: &str, doc: &AutoCommit) -> Row {
    // A record holding another record's id would overwrite that one's
    // rows: it is unreadable.
    let own = |id: &str| id == doc_id;
    let row = match kind {
        DocKind::Contact => model::hydrate::<ContactRow>(doc_id, doc)
            .ok()
            .filter(|c| own(&c.id))
            .map(|c| Row::Contact(Box::new(c))),
        DocKind::Event => model::hydrate::<Event>(doc_id, doc)
            .ok()
            .filter(|e| own(&e.id))
            .map(|e| Row::Event(Box::new(e))),
        DocKind::Feedback => model::hydrate::<FeedbackCase>(doc_id, doc)
            .ok()
            .filter(|f| own(&f.id))
            .map(|f| Row::Feedback(Box::new(f))),
        DocKind::ContactPrivate => Some(Row::Nothing),
    };
    row.unwrap_or(Row::Unreadable(kind))
}

fn write_row(tx: &Transaction<'_>, doc_id: &str, row: Row) -> Result<()> {
    match row {
        Row::Contact(c) => index_contact(tx, &c),
        Row::Event(e) => index_event(tx, &e),
        Row::Feedback(f) => index_feedback(tx, &f),
        Row::Unreadable(kind) => unindex(tx, kind, doc_id),
        Row::Nothing => Ok(()),
    }
}

/// Removes the index rows of a document that is being deleted (erased, or
/// out of this device's scope).
pub(crate) fn unindex(tx: &Transaction<'_>, kind: DocKind, doc_id: &str) -> Result<()> {
    match kind {
        DocKind::Contact => remove_contact(tx, doc_id),
        DocKind::Event => remove_event(tx, doc_id),
        DocKind::Feedback => {
            tx.prepare_cached("DELETE FROM feedback WHERE id = ?1")?
                .execute([doc_id])?;
            Ok(())
        }
        DocKind::ContactPrivate => Ok(()),
    }
}

/// The fields of a [`model::Contact`] its index rows hold. Hydrating only
/// these, not the notes, address, interests and custom fields, halves the
/// cost of indexing a contact (a first sync indexes every contact).
#[derive(Hydrate, Debug, PartialEq)]
struct ContactRow {
    id: String,
    name: String,
    preferred_name: Option<String>,
    phones: Vec<String>,
    emails: Vec<String>,
    roles: BTreeMap<String, bool>,
    tags: BTreeMap<String, bool>,
    consent: ConsentGiven,
    household: Option<String>,
    organisation: Option<String>,
    external_id: Option<String>,
    merged_into: Option<String>,
    #[autosurgeon(missing = "BTreeMap::new")]
    not_duplicates: BTreeMap<String, bool>,
    created_by: String,
    created_at: Millis,
}

#[derive(Hydrate, Debug, PartialEq)]
struct ConsentGiven {
    given: bool,
    channels: BTreeMap<String, bool>,
    recorded_at: Option<Millis>,
}

impl ContactRow {
    /// The fields of `contact` that its rows hold: what hydrating the
    /// contact's document gives.
    fn of(c: &model::Contact) -> ContactRow {
        ContactRow {
            id: c.id.clone(),
            name: c.name.clone(),
            preferred_name: c.preferred_name.clone(),
            phones: c.phones.clone(),
            emails: c.emails.clone(),
            roles: c.roles.clone(),
            tags: c.tags.clone(),
            consent: ConsentGiven {
                given: c.consent.given,
                channels: c.consent.channels.clone(),
                recorded_at: c.consent.recorded_at,
            },
            household: c.household.clone(),
            organisation: c.organisation.clone(),
            external_id: c.external_id.clone(),
            merged_into: c.merged_into.clone(),
            not_duplicates: c.not_duplicates.clone(),
            created_by: c.created_by.clone(),
            created_at: c.created_at,
        }
    }

    fn display_name(&self) -> &str {
        self.preferred_name.as_deref().unwrap_or(&self.name)
    }
}

fn index_contact(tx: &Transaction<'_>, c: &ContactRow) -> Result<()> {
    let roles = model::contact::set_items(&c.roles).join(",");
    let tags = model::contact::set_items(&c.tags).join(",");
    // Plain statements with IGNORE conflict handling, not an upsert: an
    // upsert opens a statement savepoint, and every savepoint makes FTS5
    // flush its pending terms to disk — once per contact instead of once
    // per transaction (a first sync of 100,000 contacts spent a third of
    // its time there). The id is unique and looked up first, so IGNORE
    // never has anything to ignore.
    let known: Option<(i64, Option<String>)> = tx
        .prepare_cached("SELECT num, merged_into FROM contacts WHERE id = ?1")?
        .query_row([&c.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let kept_before = known.as_ref().and_then(|(_, k)| k.clone());
    let known = known.map(|(num, _)| num);
    // `merged_link` is the document's own link; `merged_into`, where the
    // contact counts ([`crate::merges`]), is settled below.
    let merged_link = c.merged_into.as_deref().filter(|k| *k != c.id);
    let display = c.display_name();
    let values = params![
        c.id,
        display,
        display.to_lowercase(),
        c.phones.first(),
        c.emails.first(),
        roles,
        tags,
        c.household,
        c.organisation,
        c.external_id,
        c.consent.given,
        merged_link,
        c.created_by,
        c.created_at,
        c.phones.join("\n"),
        c.emails.join("\n"),
        model::contact::set_items(&c.consent.channels).join(","),
        c.consent.recorded_at,
    ];
    let num = match known {
        Some(num) => {
            tx.prepare_cached(
                "UPDATE OR IGNORE contacts SET name = ?2, sort_name = ?3, phone = ?4, email = ?5,
                    roles = ?6, tags = ?7, household = ?8, organisation = ?9, external_id = ?10,
                    consent_given = ?11, merged_link = ?12, created_by = ?13, created_at = ?14,
                    phones = ?15, emails = ?16, consent_channels = ?17, consent_recorded_at = ?18
                 WHERE id = ?1",
            )?
            .execute(values)?;
            num
        }
        None => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO contacts (id, name, sort_name, phone, email, roles, tags,
                    household, organisation, external_id, consent_given, merged_link,
                    created_by, created_at, phones, emails, consent_channels, consent_recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                         ?17, ?18)",
            )?
            .execute(values)?;
            tx.last_insert_rowid()
        }
    };
    let mut names = c.name.clone();
    if let Some(p) = &c.preferred_name {
        names.push(' ');
        names.push_str(p);
    }
    let phones = c
        .phones
        .iter()
        .flat_map(|p| [p.clone(), validate::phone_digits(p)])
        .collect::<Vec<_>>()
        .join(" ");
    if known.is_some() {
        tx.prepare_cached("DELETE FROM contacts_fts WHERE rowid = ?1")?
            .execute([num])?;
    }
    tx.prepare_cached(
        "INSERT INTO contacts_fts (rowid, name, phones, emails) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![num, names, phones, c.emails.join(" ")])?;
    if known.is_some() {
        tx.prepare_cached("DELETE FROM not_duplicates WHERE contact_id = ?1")?
            .execute([&c.id])?;
    }
    for other in model::contact::set_items(&c.not_duplicates) {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO not_duplicates (contact_id, other_id) VALUES (?1, ?2)",
        )?
        .execute([&c.id, other])?;
    }
    settle_merges(tx, &c.id, merged_link.is_some(), kept_before.as_deref())
}

/// After contact `id`'s row was written or removed: sets `merged_into`
/// (where a contact counts, by [`merges::follow`] over the `merged_link`
/// columns) for every contact whose walk may pass through `id`. Those
/// counted as `id`, or as what `id` counted as before (`kept_before`),
/// and that contact itself: a walk through `id` ends where `id`'s does.
/// `linked`: whether `id` has a link now. A contact neither linked nor
/// merged before, that nobody counts as, costs one indexed lookup.
fn settle_merges(
    tx: &Transaction<'_>,
    id: &str,
    linked: bool,
    kept_before: Option<&str>,
) -> Result<()> {
    let mut touched: BTreeSet<String> = BTreeSet::new();
    if linked || kept_before.is_some() {
        touched.insert(id.to_owned());
    }
    let mut counted_as = tx.prepare_cached("SELECT id FROM contacts WHERE merged_into = ?1")?;
    for k in std::iter::once(id).chain(kept_before) {
        if k != id {
            touched.insert(k.to_owned());
        }
        for x in counted_as.query_map([k], |r| r.get::<_, String>(0))? {
            touched.insert(x?);
        }
    }
    if touched.is_empty() {
        return Ok(());
    }
    let mut link = tx.prepare_cached("SELECT merged_link FROM contacts WHERE id = ?1")?;
    let mut set = tx.prepare_cached(
        "UPDATE contacts SET merged_into = ?2 WHERE id = ?1 AND merged_into IS NOT ?2",
    )?;
    let mut moved = Vec::new();
    for x in touched {
        let kept = merges::follow(&x, |at| -> Result<Option<String>> {
            Ok(link
                .query_row([at], |r| r.get::<_, Option<String>>(0))
                .optional()?
                .flatten())
        })?
        .kept;
        if set.execute(params![x, (kept != x).then_some(&kept)])? > 0 {
            moved.push(x);
        }
    }
    rerank_events_of(tx, &moved)
}

/// Computes again the rosters of the events `contacts` signed up to, after
/// they came to count as another person (merged, unmerged): a merged
/// duplicate's seat or waitlist place is its person's
/// ([`views::roster`]). Each event is read from its document.
fn rerank_events_of(tx: &Transaction<'_>, contacts: &[String]) -> Result<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let events: Vec<String> = tx
        .prepare_cached(
            "SELECT DISTINCT s.event_id FROM json_each(?1) j JOIN signups s ON s.contact_id = j.value
             ORDER BY s.event_id",
        )?
        .query_map([serde_json::Value::from(contacts.to_vec()).to_string()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let actor = automerge::ActorId::random();
    for id in events {
        if let Some(doc) = super::load_doc(tx, &id, &actor)? {
            write_row(tx, &id, read_row(DocKind::Event, &id, &doc))?;
        }
    }
    Ok(())
}

/// Sets `merged_into` for every linked contact from the `merged_link`
/// columns (a store upgraded to v4 had only the links).
pub(crate) fn settle_all_merges(tx: &Transaction<'_>) -> Result<()> {
    let linked: Vec<String> = tx
        .prepare("SELECT id FROM contacts WHERE merged_link IS NOT NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in linked {
        settle_merges(tx, &id, true, None)?;
    }
    Ok(())
}

fn remove_contact(tx: &Transaction<'_>, id: &str) -> Result<()> {
    let removed: Option<(i64, Option<String>)> = tx
        .query_row(
            "DELETE FROM contacts WHERE id = ?1 RETURNING num, merged_into",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let num = removed.as_ref().map(|(num, _)| *num);
    if let Some((_, kept_before)) = &removed {
        settle_merges(tx, id, false, kept_before.as_deref())?;
    }
    if let Some(num) = num {
        tx.prepare_cached("DELETE FROM contacts_fts WHERE rowid = ?1")?
            .execute([num])?;
    }
    tx.prepare_cached("DELETE FROM not_duplicates WHERE contact_id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Which of the contacts signed up to `e` were merged into another, and
/// the one each counts as: the roster treats them as one person.
fn merged_among_signups(tx: &Transaction<'_>, e: &Event) -> Result<HashMap<String, String>> {
    let ids = serde_json::Value::from(e.signups.registered_at.keys().cloned().collect::<Vec<_>>())
        .to_string();
    let mut stmt = tx.prepare_cached(
        "SELECT c.id, c.merged_into FROM json_each(?1) j JOIN contacts c ON c.id = j.value
         WHERE c.merged_into IS NOT NULL",
    )?;
    let merged = stmt
        .query_map([ids], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(merged)
}

fn index_event(tx: &Transaction<'_>, e: &Event) -> Result<()> {
    let roster = views::roster(e, &merged_among_signups(tx, e)?);
    // Counted by person: a merged duplicate's sign-up is its person's.
    let count = |pred: fn(SignupStatus) -> bool| {
        roster
            .iter()
            .filter(|r| pred(r.status))
            .map(|r| r.person.as_str())
            .collect::<HashSet<_>>()
            .len() as i64
    };
    let checked_in = count(|s| s == SignupStatus::CheckedIn);
    let holding = count(|s| {
        matches!(
            s,
            SignupStatus::Registered | SignupStatus::NoShow | SignupStatus::CheckedIn
        )
    });
    let waitlisted = count(|s| s == SignupStatus::Waitlisted);
    let status = match e.status {
        model::EventStatus::Scheduled => "scheduled",
        model::EventStatus::Cancelled => "cancelled",
        model::EventStatus::Completed => "completed",
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO events (id, title, starts_at, ends_at, place, capacity, status,
                                        registered, waitlisted, checked_in, public_slug, public_open)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        e.id,
        e.title,
        e.starts_at,
        e.ends_at,
        e.place,
        e.capacity,
        status,
        holding,
        waitlisted,
        checked_in,
        e.publication.as_ref().map(|p| p.slug.as_str()),
        e.publication.as_ref().is_some_and(|p| p.open),
    ])?;

    // Rewrite only the sign-up rows that changed: a check-in at a desk with
    // thousands of sign-ups touches one or two rows, not all of them.
    type Row = (String, i64, Option<i64>, bool, Option<u32>);
    let mut existing: HashMap<String, Row> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT contact_id, status, registered_at, checked_in_at, walk_in, waitlist_position
             FROM signups WHERE event_id = ?1",
        )?;
        let rows = stmt.query_map([&e.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
            ))
        })?;
        for row in rows {
            let (contact, fields) = row?;
            existing.insert(contact, fields);
        }
    }
    {
        let mut upsert = tx.prepare_cached(
            "INSERT OR REPLACE INTO signups (event_id, contact_id, status, registered_at,
                                             checked_in_at, walk_in, waitlist_position)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for entry in &roster {
            let row: Row = (
                entry.status.as_str().to_owned(),
                entry.registered_at,
                entry.checked_in_at,
                entry.walk_in,
                entry.waitlist_position,
            );
            if existing.remove(&entry.contact_id).as_ref() != Some(&row) {
                upsert.execute(params![
                    e.id,
                    entry.contact_id,
                    row.0,
                    row.1,
                    row.2,
                    row.3,
                    row.4
                ])?;
            }
        }
        let mut delete =
            tx.prepare_cached("DELETE FROM signups WHERE event_id = ?1 AND contact_id = ?2")?;
        for gone in existing.keys() {
            delete.execute(params![e.id, gone])?;
        }
    }

    tx.prepare_cached("DELETE FROM shifts WHERE event_id = ?1")?
        .execute([&e.id])?;
    let mut shift = tx.prepare_cached(
        "INSERT INTO shifts (event_id, shift_id, contact_id, role, starts_at, ends_at, minutes_worked)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (id, s) in &e.shifts {
        shift.execute(params![
            e.id,
            id,
            s.contact_id,
            s.role,
            s.starts_at,
            s.ends_at,
            s.minutes_worked
        ])?;
    }
    Ok(())
}

fn remove_event(tx: &Transaction<'_>, id: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM events WHERE id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM signups WHERE event_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM shifts WHERE event_id = ?1")?
        .execute([id])?;
    Ok(())
}

fn index_feedback(tx: &Transaction<'_>, f: &FeedbackCase) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO feedback (id, contact_id, status, channel, category, received_at,
                                          first_response_at, resolved_at, assigned_to)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        f.id,
        f.contact_id,
        f.status().as_str(),
        f.channel,
        f.category,
        f.received_at,
        f.first_response_at(),
        f.resolved_at,
        f.assigned_to
    ])?;
    Ok(())
}

/// Builds the FTS5 query for what a person typed: every word of three or
/// more characters must appear somewhere (as a substring) in the name, a
/// phone or an email. Words that look like phone numbers also match their
/// digits alone. Returns `None` when no word is long enough for the index.
pub(crate) fn fts_query(text: &str) -> Option<String> {
    let mut terms = Vec::new();
    for word in text.split_whitespace() {
        if word.chars().count() < 3 {
            continue;
        }
        let quoted = format!("\"{}\"", word.replace('"', "\"\""));
        let digits = validate::phone_digits(word);
        let phoneish = word
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')'));
        if phoneish && digits.trim_start_matches('+').len() >= 3 && digits != word {
            terms.push(format!("({quoted} OR \"{digits}\")"));
        } else {
            terms.push(quoted);
        }
    }
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new contact is indexed from its record, every other write from its
    /// document: both must give the same rows.
    #[test]
    fn a_new_contacts_row_from_its_record_is_the_row_its_document_gives() {
        let set = |items: &[&str]| items.iter().map(|i| ((*i).to_owned(), true)).collect();
        let mut contact = model::Contact::new(
            "c_0123456789abcdef0123456789abcdef".into(),
            &model::NewContact {
                name: "Dana Émile".into(),
                phones: vec!["+44 7700 900123".into(), "+44 7700 900124".into()],
                emails: vec!["dana@example.org".into()],
                roles: vec!["volunteer".into(), "donor".into()],
                tags: vec!["north".into()],
                preferred_language: Some("fr".into()),
                external_id: Some("X-17".into()),
            },
            "0123456789abcdef0123456789abcdef",
            1_700_000_000_000,
        )
        .unwrap();
        contact.preferred_name = Some("Dee".into());
        contact.household = Some("h-4".into());
        contact.organisation = Some("Food Bank".into());
        contact.consent.given = true;
        contact.consent.channels = set(&["email", "sms"]);
        contact.consent.recorded_at = Some(1_700_000_000_001);
        contact.not_duplicates = set(&["c_fedcba9876543210fedcba9876543210"]);
        contact.merged_into = Some("c_00000000000000000000000000000001".into());
        let doc =
            model::create_doc(&automerge::ActorId::random(), DocKind::Contact, &contact).unwrap();
        let hydrated: ContactRow = model::hydrate(&contact.id, &doc).unwrap();
        assert_eq!(ContactRow::of(&contact), hydrated);
        assert!(!model::holds_conflicts(DocKind::Contact, &doc));
    }
}
