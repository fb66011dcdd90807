//! An event, with its sign-ups, check-ins and volunteer shifts.

use std::collections::BTreeMap;

use automerge::{ObjId, ObjType, ScalarValueRef, Value, ValueRef};
use autosurgeon::{Hydrate, HydrateError, Reconcile};
use serde::{Deserialize, Serialize};

use super::Millis;
use crate::error::{Error, Result};
use crate::validate;

/// An event record, as stored in its Automerge document.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Event {
    /// The document id (`e_…`).
    pub id: String,
    /// What the event is called.
    pub title: String,
    /// When it starts.
    pub starts_at: Millis,
    /// When it ends, if known.
    pub ends_at: Option<Millis>,
    /// Where it happens.
    pub place: String,
    /// How many people it can take; `None` for no limit. Sign-ups past
    /// capacity are waitlisted by [`crate::views::roster`].
    pub capacity: Option<i64>,
    /// Whether it is going ahead.
    pub status: EventStatus,
    /// Who registered for it, and who came.
    pub signups: SignUps,
    /// Volunteer shifts, keyed by shift id.
    pub shifts: BTreeMap<String, Shift>,
    /// The device or person that created the record.
    pub created_by: String,
    /// When the record was created.
    pub created_at: Millis,
    /// Its public registration page, once it has been published (absent
    /// from events made before there were pages: `None`).
    pub publication: Option<Publication>,
}

/// An event's public registration page (`/r/SLUG` on the relay), a field
/// of the event document: it syncs and merges like the rest of the event.
#[derive(Debug, Clone, PartialEq, Eq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Publication {
    /// The page's address: 32 random hex digits, unguessable. Kept when
    /// the page is unpublished, so that publishing again brings the same
    /// address (and the posters' QR codes) back.
    pub slug: String,
    /// Whether the page takes registrations.
    pub open: bool,
    /// When registrations close; `None`: when the event starts.
    pub closes_at: Option<Millis>,
    /// What the form asks besides the name, in [`Publication::ASKABLE`]'s
    /// order.
    pub asks: Vec<String>,
    /// 32 random hex digits that sign the private links people get to
    /// cancel their own registration ([`Publication::cancel_token`]). It
    /// is in the event document: every device that holds the event may
    /// cancel its sign-ups anyway, and every relay process can check a
    /// link.
    pub secret: String,
}

/// Why a published page takes no registration now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageClosed {
    /// The event was never published, or was unpublished.
    NotPublished,
    /// Its registrations closed (at `closes_at`, or when it started).
    RegistrationsClosed,
    /// The event was cancelled or is over.
    EventOver,
}

impl Publication {
    /// What a page may ask besides the name: an email address, a phone
    /// number, a preferred language, and consent per channel.
    pub const ASKABLE: [&'static str; 4] = ["email", "phone", "language", "consent"];

    /// A page asking `asks` (every [`Publication::ASKABLE`] field when
    /// empty), checked and in canonical order.
    pub fn asking(asks: &[String]) -> Result<Vec<String>> {
        let mut wanted = Vec::new();
        for ask in asks {
            let ask = ask.trim().to_lowercase();
            if ask.is_empty() {
                continue;
            }
            if !Self::ASKABLE.contains(&ask.as_str()) {
                return Err(Error::invalid(
                    "ask",
                    format!(
                        "{ask:?} is not a field a registration page can ask (one of {})",
                        Self::ASKABLE.join(", ")
                    ),
                ));
            }
            wanted.push(ask);
        }
        Ok(Self::ASKABLE
            .iter()
            .filter(|a| wanted.is_empty() || wanted.iter().any(|w| w == *a))
            .map(|a| (*a).to_owned())
            .collect())
    }

    /// Whether the page asks for `field` (one of [`Publication::ASKABLE`]).
    pub fn asks_for(&self, field: &str) -> bool {
        self.asks.iter().any(|a| a == field)
    }

    /// The token of the private link that cancels the sign-up `contact_id`
    /// made at `registered_at`: an HMAC-SHA256 of both under the page's
    /// secret, 32 hex digits. A sign-up made again later gets another.
    pub fn cancel_token(&self, contact_id: &str, registered_at: Millis) -> String {
        use hmac::{KeyInit, Mac};
        // HMAC takes a key of any length: this cannot fail, and if it did
        // the empty token would match no link.
        let Ok(mut mac) =
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.secret.as_bytes())
        else {
            return String::new();
        };
        mac.update(b"muster cancel\0");
        mac.update(contact_id.as_bytes());
        mac.update(b"\0");
        mac.update(&registered_at.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        tag[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `token` is [`Publication::cancel_token`]'s for this sign-up,
    /// compared in constant time.
    pub fn is_cancel_token(&self, contact_id: &str, registered_at: Millis, token: &str) -> bool {
        let expected = self.cancel_token(contact_id, registered_at);
        expected.len() == 32
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                expected.as_bytes(),
                token.as_bytes(),
            ))
    }

    fn normalise(&mut self) -> Result<()> {
        let hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex32(&self.slug) || !hex32(&self.secret) {
            return Err(Error::invalid(
                "publication",
                "its address and its secret must be 32 hex digits each",
            ));
        }
        self.slug.make_ascii_lowercase();
        self.asks = Self::asking(&self.asks)?;
        Ok(())
    }
}

/// Whether an event is going ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Reconcile, Hydrate, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Planned or under way.
    #[autosurgeon(rename = "scheduled")]
    Scheduled,
    /// Called off.
    #[autosurgeon(rename = "cancelled")]
    Cancelled,
    /// Over.
    #[autosurgeon(rename = "completed")]
    Completed,
}

/// The sign-ups of an event, one map per attribute, each keyed by contact id.
///
/// Why not one object per sign-up: two desks registering the same walk-in
/// offline would each create an object under the same key, and Automerge
/// would show only one of them, hiding a check-in made on the other. Kept
/// as flat registers, every attribute of every sign-up merges on its own:
/// the same person registered twice is one sign-up, and a check-in made on
/// one desk survives whatever another desk did.
///
/// A contact is signed up when it has a `registered_at` entry. What the
/// entries mean together (checked in beats cancelled, capacity) is decided by
/// [`crate::views::roster`].
#[derive(Debug, Clone, Default, PartialEq, Reconcile)]
pub struct SignUps {
    /// When each contact registered: the order of the waitlist.
    pub registered_at: BTreeMap<String, Millis>,
    /// Who registered each contact.
    pub registered_by: BTreeMap<String, String>,
    /// Contacts registered at the door rather than in advance.
    pub walk_in: BTreeMap<String, bool>,
    /// When each contact cancelled.
    pub cancelled_at: BTreeMap<String, Millis>,
    /// When each contact was marked as not having come.
    pub no_show_at: BTreeMap<String, Millis>,
    /// When each contact was checked in.
    pub checked_in_at: BTreeMap<String, Millis>,
    /// Who checked each contact in.
    pub checked_in_by: BTreeMap<String, String>,
}

/// A volunteer's shift at an event.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Shift {
    /// The volunteer (`c_…`).
    pub contact_id: String,
    /// What they do (`registration desk`, `kitchen`…).
    pub role: String,
    /// When the shift starts.
    pub starts_at: Millis,
    /// When it ends.
    pub ends_at: Millis,
    /// Minutes actually worked, once recorded; `None` until then.
    pub minutes_worked: Option<i64>,
}

/// What a person types to create an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Title (required).
    pub title: String,
    /// Start time.
    pub starts_at: Millis,
    /// End time.
    pub ends_at: Option<Millis>,
    /// Place.
    pub place: String,
    /// Capacity; `None` for no limit.
    pub capacity: Option<i64>,
}

/// A change to an event's own fields, as an edit screen makes it: each
/// `None` leaves its field alone. Sign-ups and shifts have calls of their
/// own; so does cancelling the event ([`crate::Store::cancel_event`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventEdit {
    /// New title.
    pub title: Option<String>,
    /// New start time.
    pub starts_at: Option<Millis>,
    /// New end time.
    pub ends_at: Option<Millis>,
    /// Takes the end time away.
    pub clear_ends_at: bool,
    /// New place ("" clears it).
    pub place: Option<String>,
    /// New capacity: those past it wait, and places free up for the
    /// waiting when it grows.
    pub capacity: Option<i64>,
    /// Takes the capacity away (no limit).
    pub clear_capacity: bool,
}

impl EventEdit {
    /// Writes the edit into `e`; the caller checks the result
    /// ([`Event::normalise`]).
    pub fn apply(&self, e: &mut Event) {
        if let Some(t) = &self.title {
            e.title = t.clone();
        }
        if let Some(t) = self.starts_at {
            e.starts_at = t;
        }
        if self.clear_ends_at {
            e.ends_at = None;
        }
        if self.ends_at.is_some() {
            e.ends_at = self.ends_at;
        }
        if let Some(p) = &self.place {
            e.place = p.clone();
        }
        if self.clear_capacity {
            e.capacity = None;
        }
        if self.capacity.is_some() {
            e.capacity = self.capacity;
        }
    }
}

impl NewEvent {
    /// An event starting at `starts_at` at `place`, with `capacity` seats
    /// (`None`: no limit) and no end time.
    pub fn new(
        title: impl Into<String>,
        starts_at: Millis,
        place: impl Into<String>,
        capacity: Option<i64>,
    ) -> NewEvent {
        NewEvent {
            title: title.into(),
            starts_at,
            ends_at: None,
            place: place.into(),
            capacity,
        }
    }
}

impl Event {
    /// An event built from what was typed, validated.
    pub fn new(id: String, new: &NewEvent, created_by: &str, now: Millis) -> Result<Event> {
        let mut event = Event {
            id,
            title: new.title.clone(),
            starts_at: new.starts_at,
            ends_at: new.ends_at,
            place: new.place.clone(),
            capacity: new.capacity,
            status: EventStatus::Scheduled,
            signups: SignUps::default(),
            shifts: BTreeMap::new(),
            created_by: created_by.to_owned(),
            created_at: now,
            publication: None,
        };
        event.normalise()?;
        Ok(event)
    }

    /// Checks every field and puts it in canonical form. Called before every write.
    pub fn normalise(&mut self) -> Result<()> {
        self.title = validate::name("title", &self.title)?;
        self.place = validate::short_text("place", &self.place)?;
        if self.ends_at.is_some_and(|end| end < self.starts_at) {
            return Err(Error::invalid("ends_at", "is before the event starts"));
        }
        if self.capacity.is_some_and(|c| c < 0) {
            return Err(Error::invalid("capacity", "must not be negative"));
        }
        if let Some(p) = &mut self.publication {
            p.normalise()?;
        }
        for shift in self.shifts.values_mut() {
            shift.role = validate::short_text("role", &shift.role)?;
            if shift.ends_at < shift.starts_at {
                return Err(Error::invalid("shift", "ends before it starts"));
            }
            if shift
                .minutes_worked
                .is_some_and(|m| !(0..=24 * 60).contains(&m))
            {
                return Err(Error::invalid(
                    "minutes_worked",
                    "must be between 0 and 1440 (one day)",
                ));
            }
        }
        Ok(())
    }

    /// Writes every field but the sign-ups (and the id) into the document.
    pub(crate) fn reconcile_fields(
        &self,
        event_id: &str,
        doc: &mut automerge::AutoCommit,
    ) -> Result<()> {
        let root = automerge::ROOT;
        let bad = |e: autosurgeon::ReconcileError| Error::bad_document(event_id, e);
        autosurgeon::reconcile_prop(doc, &root, "title", &self.title).map_err(bad)?;
        autosurgeon::reconcile_prop(doc, &root, "starts_at", self.starts_at).map_err(bad)?;
        autosurgeon::reconcile_prop(doc, &root, "ends_at", self.ends_at).map_err(bad)?;
        autosurgeon::reconcile_prop(doc, &root, "place", &self.place).map_err(bad)?;
        autosurgeon::reconcile_prop(doc, &root, "capacity", self.capacity).map_err(bad)?;
        autosurgeon::reconcile_prop(doc, &root, "status", self.status).map_err(bad)?;
        autosurgeon::reconcile_prop(doc, &root, "shifts", &self.shifts).map_err(bad)?;
        // An event never published keeps what it holds (no key, or null).
        if self.publication.is_some() {
            autosurgeon::reconcile_prop(doc, &root, "publication", &self.publication)
                .map_err(bad)?;
        }
        Ok(())
    }

    /// Whether its public page takes a registration at `now`: published
    /// and open, before registrations close (`closes_at`, else the start),
    /// and the event still scheduled. The one rule for the page, the
    /// relay and every replica.
    pub fn page_takes_registrations(&self, now: Millis) -> std::result::Result<(), PageClosed> {
        let Some(p) = self.publication.as_ref().filter(|p| p.open) else {
            return Err(PageClosed::NotPublished);
        };
        if self.status != EventStatus::Scheduled {
            return Err(PageClosed::EventOver);
        }
        if now >= p.closes_at.unwrap_or(self.starts_at) {
            return Err(PageClosed::RegistrationsClosed);
        }
        Ok(())
    }

    /// Whether `contact_id` has a sign-up (in any state) for this event.
    pub fn is_signed_up(&self, contact_id: &str) -> bool {
        self.signups.registered_at.contains_key(contact_id)
    }
}

/// Reads the sign-up maps in one pass each (autosurgeon's map hydration
/// looks every key up again, which is quadratic on Automerge 0.12's
/// columnar storage: 50 ms for an event of 2,000 sign-ups).
impl Hydrate for SignUps {
    fn hydrate_map<D: autosurgeon::ReadDoc>(doc: &D, obj: &ObjId) -> Result<Self, HydrateError> {
        let attr = |name: &str| -> Result<Option<ObjId>, HydrateError> {
            Ok(match doc.get(obj, name)? {
                Some((Value::Object(ObjType::Map), id)) => Some(id),
                _ => None,
            })
        };
        fn read<D: autosurgeon::ReadDoc, T>(
            doc: &D,
            obj: Option<ObjId>,
            f: impl Fn(&ScalarValueRef<'_>) -> Option<T>,
        ) -> BTreeMap<String, T> {
            let Some(obj) = obj else {
                return BTreeMap::new();
            };
            doc.map_range(&obj, ..)
                .filter_map(|item| match &item.value {
                    ValueRef::Scalar(v) => f(v).map(|v| (item.key.to_string(), v)),
                    ValueRef::Object(_) => None,
                })
                .collect()
        }
        let int = |v: &ScalarValueRef<'_>| match v {
            ScalarValueRef::Int(i) | ScalarValueRef::Timestamp(i) => Some(*i),
            ScalarValueRef::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        };
        let text = |v: &ScalarValueRef<'_>| match v {
            ScalarValueRef::Str(s) => Some(s.to_string()),
            _ => None,
        };
        let flag = |v: &ScalarValueRef<'_>| match v {
            ScalarValueRef::Boolean(b) => Some(*b),
            _ => None,
        };
        Ok(SignUps {
            registered_at: read(doc, attr("registered_at")?, int),
            registered_by: read(doc, attr("registered_by")?, text),
            walk_in: read(doc, attr("walk_in")?, flag),
            cancelled_at: read(doc, attr("cancelled_at")?, int),
            no_show_at: read(doc, attr("no_show_at")?, int),
            checked_in_at: read(doc, attr("checked_in_at")?, int),
            checked_in_by: read(doc, attr("checked_in_by")?, text),
        })
    }
}

/// Edits of sign-ups, made directly on the document: each touches a few
/// keys, whatever the event's size (hydrating and reconciling the whole
/// event would cost time in proportion to its sign-ups).
pub mod ops {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, Value};

    use crate::error::{Error, Result};
    use crate::model::Millis;

    fn attr(doc: &AutoCommit, event_id: &str, name: &str) -> Result<ObjId> {
        let signups = match doc.get(automerge::ROOT, "signups") {
            Ok(Some((Value::Object(ObjType::Map), id))) => id,
            _ => return Err(Error::bad_document(event_id, "an event without sign-ups")),
        };
        match doc.get(&signups, name) {
            Ok(Some((Value::Object(ObjType::Map), id))) => Ok(id),
            _ => Err(Error::bad_document(
                event_id,
                format!("sign-ups without {name}"),
            )),
        }
    }

    /// The contacts signed up to an event (every `registered_at` key,
    /// whatever their status), read without hydrating the whole event: the
    /// relay needs this on every event change to keep volunteers' scopes.
    pub fn signed_up(doc: &AutoCommit, event_id: &str) -> Result<Vec<String>> {
        let obj = attr(doc, event_id, "registered_at")?;
        Ok(doc.keys(&obj).collect())
    }

    fn has(doc: &AutoCommit, event_id: &str, name: &str, contact: &str) -> Result<bool> {
        let obj = attr(doc, event_id, name)?;
        Ok(doc.get(&obj, contact).ok().flatten().is_some())
    }

    fn put(
        doc: &mut AutoCommit,
        event_id: &str,
        name: &str,
        contact: &str,
        value: impl Into<automerge::ScalarValue>,
    ) -> Result<()> {
        let obj = attr(doc, event_id, name)?;
        doc.put(&obj, contact, value)
            .map_err(|e| Error::bad_document(event_id, e))
    }

    fn delete(doc: &mut AutoCommit, event_id: &str, name: &str, contact: &str) -> Result<()> {
        if has(doc, event_id, name, contact)? {
            let obj = attr(doc, event_id, name)?;
            doc.delete(&obj, contact)
                .map_err(|e| Error::bad_document(event_id, e))?;
        }
        Ok(())
    }

    fn title(doc: &AutoCommit) -> String {
        match doc.get(automerge::ROOT, "title") {
            Ok(Some((Value::Scalar(s), _))) => s.as_str().unwrap_or("the event").to_owned(),
            _ => "the event".to_owned(),
        }
    }

    /// Whether `contact` has a sign-up (in any state).
    pub fn is_signed_up(doc: &AutoCommit, event_id: &str, contact: &str) -> Result<bool> {
        has(doc, event_id, "registered_at", contact)
    }

    /// Signs a contact up. Signing up again someone who had cancelled puts
    /// them back at the end of the queue; signing up someone already
    /// registered changes nothing.
    pub fn sign_up(
        doc: &mut AutoCommit,
        event_id: &str,
        contact: &str,
        by: &str,
        walk_in: bool,
        now: Millis,
    ) -> Result<()> {
        let cancelled = has(doc, event_id, "cancelled_at", contact)?;
        if is_signed_up(doc, event_id, contact)? && !cancelled {
            return Ok(());
        }
        delete(doc, event_id, "cancelled_at", contact)?;
        put(doc, event_id, "registered_at", contact, now)?;
        put(doc, event_id, "registered_by", contact, by)?;
        if walk_in {
            put(doc, event_id, "walk_in", contact, true)?;
        }
        Ok(())
    }

    /// Records that a contact came. A walk-in who was never signed up is
    /// signed up at the same time.
    pub fn check_in(
        doc: &mut AutoCommit,
        event_id: &str,
        contact: &str,
        by: &str,
        now: Millis,
    ) -> Result<()> {
        if !is_signed_up(doc, event_id, contact)? {
            sign_up(doc, event_id, contact, by, true, now)?;
        }
        delete(doc, event_id, "no_show_at", contact)?;
        if !has(doc, event_id, "checked_in_at", contact)? {
            put(doc, event_id, "checked_in_at", contact, now)?;
            put(doc, event_id, "checked_in_by", contact, by)?;
        }
        Ok(())
    }

    /// Takes back a check-in made by mistake.
    pub fn undo_check_in(doc: &mut AutoCommit, event_id: &str, contact: &str) -> Result<()> {
        delete(doc, event_id, "checked_in_at", contact)?;
        delete(doc, event_id, "checked_in_by", contact)
    }

    /// Records that a contact cancelled.
    pub fn cancel(doc: &mut AutoCommit, event_id: &str, contact: &str, now: Millis) -> Result<()> {
        mark(doc, event_id, "cancelled_at", contact, now)
    }

    /// Records that a registered contact did not come.
    pub fn mark_no_show(
        doc: &mut AutoCommit,
        event_id: &str,
        contact: &str,
        now: Millis,
    ) -> Result<()> {
        mark(doc, event_id, "no_show_at", contact, now)
    }

    fn mark(
        doc: &mut AutoCommit,
        event_id: &str,
        name: &str,
        contact: &str,
        now: Millis,
    ) -> Result<()> {
        if !is_signed_up(doc, event_id, contact)? {
            return Err(Error::NotAllowed(format!(
                "{contact} is not signed up to {}",
                title(doc)
            )));
        }
        if !has(doc, event_id, name, contact)? {
            put(doc, event_id, name, contact, now)?;
        }
        Ok(())
    }
}
