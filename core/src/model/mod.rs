//! The typed records and their mapping onto Automerge documents.
//!
//! Every record is one Automerge document whose root map holds the record's
//! fields (through autosurgeon's `Reconcile`/`Hydrate`) plus two bookkeeping
//! keys: `kind` (what record this is) and `schema` (the record layout
//! version). A document's id carries its kind as a prefix (`c_`, `p_`, `e_`,
//! `f_`), so that a relay can route and scope documents without opening them.
//!
//! The layouts are chosen so that the CRDT's own merge gives the answer a
//! person expects, and so that no two devices ever create the same container
//! concurrently (which would hide one of them):
//!
//! - every nested map, list and text is created together with its document;
//! - sets (roles, tags, interests, consent channels) are maps from the item to
//!   `true`, so adding the same tag twice gives one tag;
//! - an event's sign-ups are kept as one map per attribute, keyed by contact
//!   id ([`event::SignUps`]), so a check-in on one desk and a registration of
//!   the same person on another never compete for one object;
//! - the one record two devices may both create, a contact's
//!   [`private::ContactPrivate`], starts from a *genesis* change that is
//!   byte-identical wherever it is made, so both creations share one root.
//!
//! Rules a CRDT cannot express (capacity, the check-in versus cancellation
//! rule, a case's workflow status) are computed from the merged state by pure
//! functions in [`crate::views`], identically on every replica.

pub mod contact;
pub mod contact_edit;
pub mod event;
pub mod feedback;
pub mod integrity;
pub mod private;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use contact::{Address, Consent, Contact, NewConsent, NewContact};
pub use contact_edit::ContactEdit;
pub use event::{Event, EventEdit, EventStatus, NewEvent, PageClosed, Publication, Shift, SignUps};
pub use feedback::{FeedbackCase, FeedbackResponse, FeedbackStatus, NewFeedback};
pub use private::{ContactPrivate, Donation, Interaction, LedgerEntry, Pledge};

/// Milliseconds since the Unix epoch, UTC. The core never reads the clock:
/// every call that records a time takes it as an argument.
pub type Millis = i64;

/// The wall clock as [`Millis`]: for the binaries and drivers that pass
/// `now` into the core (the relay, the CLI, the bench). Nothing in the
/// core's own logic calls it.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
        })
}

/// The layout version written into every document's `schema` key.
pub const RECORD_SCHEMA: i64 = 1;

/// What kind of record a document holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// A person: [`Contact`].
    Contact,
    /// What only coordinators may see of a person: [`ContactPrivate`].
    ContactPrivate,
    /// An event with its sign-ups and shifts: [`Event`].
    Event,
    /// A feedback or complaint case: [`FeedbackCase`].
    Feedback,
}

impl DocKind {
    /// Every kind, in a fixed order.
    pub const ALL: [DocKind; 4] = [
        DocKind::Contact,
        DocKind::ContactPrivate,
        DocKind::Event,
        DocKind::Feedback,
    ];

    /// The name written in the document's `kind` key and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Contact => "contact",
            DocKind::ContactPrivate => "contact_private",
            DocKind::Event => "event",
            DocKind::Feedback => "feedback",
        }
    }

    /// The prefix of ids of documents of this kind.
    pub fn id_prefix(self) -> &'static str {
        match self {
            DocKind::Contact => "c_",
            DocKind::ContactPrivate => "p_",
            DocKind::Event => "e_",
            DocKind::Feedback => "f_",
        }
    }

    /// Parses the name written by [`DocKind::as_str`].
    pub fn parse(s: &str) -> Option<DocKind> {
        DocKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind a document id announces by its prefix, if it is well formed:
    /// a known prefix followed by 32 lower-case hexadecimal digits.
    pub fn of_id(id: &str) -> Option<DocKind> {
        let kind = DocKind::ALL
            .into_iter()
            .find(|k| id.starts_with(k.id_prefix()))?;
        let rest = &id[2..];
        let well_formed = rest.len() == 32
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then_some(kind)
    }
}

/// The id of the private record of a contact: derived from the contact's
/// id, so that every device finds (and creates) the same document.
///
/// `contact_id` should be a contact id (check it with [`check_id`]); for
/// any other string the result is simply not an id of anything.
pub fn private_id_of(contact_id: &str) -> String {
    let rest = contact_id
        .strip_prefix(DocKind::Contact.id_prefix())
        .unwrap_or(contact_id);
    format!("{}{rest}", DocKind::ContactPrivate.id_prefix())
}

/// Checks that `id` is a well-formed id of a `kind` document.
pub fn check_id(kind: DocKind, id: &str) -> Result<()> {
    if DocKind::of_id(id) == Some(kind) {
        Ok(())
    } else {
        Err(Error::not_found(kind.as_str(), id))
    }
}

/// The kind written in a document's root, if any.
pub fn kind_of(doc: &AutoCommit) -> Option<DocKind> {
    match doc.get(automerge::ROOT, "kind").ok().flatten() {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(s) => DocKind::parse(s),
            _ => None,
        },
        _ => None,
    }
}

/// A new, empty document that will be written by `actor`, holding `record`.
pub(crate) fn create_doc<T: autosurgeon::Reconcile>(
    actor: &ActorId,
    kind: DocKind,
    record: &T,
) -> Result<AutoCommit> {
    let mut doc = AutoCommit::new().with_actor(actor.clone());
    // The record goes into the empty document first: autosurgeon writes an
    // empty document's whole tree in one batch (two splices of automerge's
    // op set), where a document already holding the header gets a put per
    // field (`__create 20000`: 18.4 s before, 8.5 s after).
    autosurgeon::reconcile(&mut doc, record).map_err(|e| Error::bad_document(kind.as_str(), e))?;
    write_header(&mut doc, kind)?;
    Ok(doc)
}

/// [`create_doc`] for a document whose first change every device must make
/// byte for byte alike (a private ledger's genesis): the header first, then
/// the record field by field, as every version before made it. Changing
/// this order gives new devices another genesis than the ones in the field.
pub(crate) fn create_shared_genesis<T: autosurgeon::Reconcile>(
    actor: &ActorId,
    kind: DocKind,
    record: &T,
) -> Result<AutoCommit> {
    let mut doc = AutoCommit::new().with_actor(actor.clone());
    write_header(&mut doc, kind)?;
    autosurgeon::reconcile(&mut doc, record).map_err(|e| Error::bad_document(kind.as_str(), e))?;
    Ok(doc)
}

pub(crate) fn write_header(doc: &mut AutoCommit, kind: DocKind) -> Result<()> {
    doc.put(automerge::ROOT, "kind", kind.as_str())
        .and_then(|_| doc.put(automerge::ROOT, "schema", RECORD_SCHEMA))
        .map_err(|e| Error::bad_document(kind.as_str(), e))?;
    Ok(())
}

/// Reads the typed record out of a document.
pub fn hydrate<T: autosurgeon::Hydrate>(doc_id: &str, doc: &AutoCommit) -> Result<T> {
    autosurgeon::hydrate(doc).map_err(|e| Error::bad_document(doc_id, e))
}

/// Writes the typed record into a document, touching only what changed.
pub fn reconcile<T: autosurgeon::Reconcile>(
    doc_id: &str,
    doc: &mut AutoCommit,
    record: &T,
) -> Result<()> {
    autosurgeon::reconcile(doc, record).map_err(|e| Error::bad_document(doc_id, e))
}

/// The text object under `key` at the root of a document.
fn text_obj(doc: &AutoCommit, doc_id: &str, key: &str) -> Result<ObjId> {
    match doc.get(automerge::ROOT, key) {
        Ok(Some((Value::Object(ObjType::Text), id))) => Ok(id),
        _ => Err(Error::bad_document(doc_id, format!("{key} is not text"))),
    }
}

/// Length in characters (Unicode code points) of the text under `key`.
pub(crate) fn text_len(doc: &AutoCommit, doc_id: &str, key: &str) -> Result<usize> {
    Ok(doc.length(text_obj(doc, doc_id, key)?))
}

/// Edits the text under `key` in place: deletes `delete` characters at
/// `pos` and inserts `insert`, positions in Unicode code points (the
/// document's text encoding). Concurrent splices on other replicas merge
/// character by character. The result must stay within the size limit.
pub(crate) fn splice_text(
    doc: &mut AutoCommit,
    doc_id: &str,
    key: &'static str,
    pos: usize,
    delete: usize,
    insert: &str,
) -> Result<()> {
    let obj = text_obj(doc, doc_id, key)?;
    let len = doc.length(&obj);
    if pos > len || delete > len - pos {
        return Err(Error::invalid(
            key,
            format!(
                "edit at {pos}..{} is outside the {len} characters",
                pos.saturating_add(delete)
            ),
        ));
    }
    let text = doc.text(&obj).map_err(|e| Error::bad_document(doc_id, e))?;
    let removed: usize = text
        .chars()
        .skip(pos)
        .take(delete)
        .map(char::len_utf8)
        .sum();
    let after = text.len() - removed + insert.len();
    if after > crate::validate::MAX_TEXT_BYTES {
        return Err(Error::invalid(
            key,
            format!(
                "would be larger than {} bytes",
                crate::validate::MAX_TEXT_BYTES
            ),
        ));
    }
    doc.splice_text(&obj, pos, delete as isize, insert)
        .map_err(|e| Error::bad_document(doc_id, e))?;
    Ok(())
}

/// Fields of a contact whose conflicting values the reconciliation report
/// lists.
pub const CONTACT_CONFLICT_FIELDS: [&[&str]; 10] = [
    &["name"],
    &["preferred_name"],
    &["organisation"],
    &["household"],
    &["external_id"],
    &["preferred_language"],
    &["address", "street"],
    &["address", "city"],
    &["address", "postal_code"],
    &["consent", "given"],
];
/// Fields of an event whose conflicting values the reconciliation report
/// lists.
pub const EVENT_CONFLICT_FIELDS: [&[&str]; 5] = [
    &["title"],
    &["place"],
    &["starts_at"],
    &["capacity"],
    &["status"],
];

/// The fields of a record of `kind` whose conflicting values are reported
/// (none for feedback and private ledgers).
pub fn conflict_fields(kind: DocKind) -> &'static [&'static [&'static str]] {
    match kind {
        DocKind::Contact => &CONTACT_CONFLICT_FIELDS,
        DocKind::Event => &EVENT_CONFLICT_FIELDS,
        DocKind::Feedback | DocKind::ContactPrivate => &[],
    }
}

/// Whether any of [`conflict_fields`] holds several values: a few map
/// lookups, cheap enough to ask of every document a sync indexes.
pub fn holds_conflicts(kind: DocKind, doc: &AutoCommit) -> bool {
    conflict_fields(kind).iter().any(|path| {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut obj = automerge::ROOT;
        for key in parents {
            obj = match doc.get(&obj, *key) {
                Ok(Some((Value::Object(ObjType::Map), id))) => id,
                _ => return false,
            };
        }
        doc.get_all(&obj, *last).is_ok_and(|all| all.len() > 1)
    })
}

/// Every value a field holds after a merge, the deterministic winner first.
///
/// When two devices set the same field concurrently, Automerge keeps both
/// values and picks the same winner on every replica (the one the record
/// shows). This returns all of them, so that an app can show "two values were
/// typed for this field" and let a person choose. A field that was never
/// edited concurrently returns one value; a missing field returns none.
///
/// `path` walks maps by key from the root, e.g. `["address", "city"]`.
pub fn conflicts(doc: &AutoCommit, path: &[&str]) -> Result<Vec<serde_json::Value>> {
    let (last, parents) = match path.split_last() {
        Some(split) => split,
        None => return Err(Error::invalid("field", "the field path is empty")),
    };
    let mut obj = automerge::ROOT;
    for key in parents {
        obj = match doc.get(&obj, *key) {
            Ok(Some((Value::Object(ObjType::Map), id))) => id,
            _ => return Ok(Vec::new()),
        };
    }
    let all = doc
        .get_all(&obj, *last)
        .map_err(|e| Error::invalid("field", e.to_string()))?;
    // `get_all` lists values in operation order; the winner is the last.
    let mut values: Vec<serde_json::Value> = all
        .into_iter()
        .map(|(value, id)| value_to_json(doc, &value, &id))
        .collect();
    values.reverse();
    Ok(values)
}

/// Settles a conflict ([`conflicts`]) on the value `chosen`, one of those
/// the field holds: written again, it supersedes every concurrent value on
/// every replica that receives the change. Only a single value (text, a
/// number, true or false) can be chosen; a field without conflicting
/// values, or a value it does not hold, is refused and nothing is written.
pub fn choose_value(doc: &mut AutoCommit, path: &[&str], chosen: &serde_json::Value) -> Result<()> {
    let values = conflicts(doc, path)?;
    if values.len() < 2 {
        return Err(Error::NotAllowed(format!(
            "{} holds no conflicting values to choose from",
            path.join(".")
        )));
    }
    if !values.contains(chosen) {
        return Err(Error::invalid(
            "value",
            format!("{chosen} is not one of the values {} holds", path.join(".")),
        ));
    }
    let scalar: ScalarValue = match chosen {
        serde_json::Value::String(s) => s.as_str().into(),
        serde_json::Value::Bool(b) => (*b).into(),
        serde_json::Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or_default().into(),
        serde_json::Value::Number(n) if n.is_u64() => n.as_u64().unwrap_or_default().into(),
        serde_json::Value::Number(n) => n.as_f64().unwrap_or_default().into(),
        serde_json::Value::Null => ScalarValue::Null,
        _ => {
            return Err(Error::NotAllowed(
                "only a single value (text, a number, true or false) can be chosen".into(),
            ));
        }
    };
    let Some((last, parents)) = path.split_last() else {
        return Err(Error::invalid("field", "the field path is empty"));
    };
    let mut obj = automerge::ROOT;
    for key in parents {
        obj = match doc.get(&obj, *key) {
            Ok(Some((Value::Object(ObjType::Map), id))) => id,
            _ => {
                return Err(Error::invalid(
                    "field",
                    format!("{} is not a field", path.join(".")),
                ));
            }
        };
    }
    doc.put(&obj, *last, scalar)
        .map_err(|e| Error::invalid("field", e.to_string()))
}

fn value_to_json(doc: &AutoCommit, value: &Value<'_>, id: &ObjId) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Null => J::Null,
            ScalarValue::Boolean(b) => J::Bool(*b),
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => J::from(*i),
            ScalarValue::Uint(u) => J::from(*u),
            ScalarValue::F64(f) => J::from(*f),
            ScalarValue::Counter(c) => J::from(i64::from(c)),
            ScalarValue::Str(s) => J::String(s.to_string()),
            ScalarValue::Bytes(_) | ScalarValue::Unknown { .. } => J::Null,
        },
        Value::Object(ObjType::Text) => J::String(doc.text(id).unwrap_or_default()),
        Value::Object(ObjType::List) => J::Array(
            doc.values(id)
                .map(|(v, child)| value_to_json(doc, &v, &child))
                .collect(),
        ),
        Value::Object(_) => J::Object(
            doc.keys(id)
                .filter_map(|key| {
                    let (v, child) = doc.get(id, key.as_str()).ok().flatten()?;
                    Some((key.clone(), value_to_json(doc, &v, &child)))
                })
                .collect(),
        ),
    }
}
