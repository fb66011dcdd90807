//! An event, with its sign-ups, check-ins and volunteer shifts.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
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
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate)]
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

    /// Whether `contact_id` has a sign-up (in any state) for this event.
    pub fn is_signed_up(&self, contact_id: &str) -> bool {
        self.signups.registered_at.contains_key(contact_id)
    }

    /// Signs a contact up. Signing up again someone who had cancelled puts
    /// them back at the end of the queue; signing up someone already
    /// registered changes nothing.
    pub fn sign_up(&mut self, contact_id: &str, by: &str, walk_in: bool, now: Millis) {
        let s = &mut self.signups;
        let cancelled = s.cancelled_at.remove(contact_id).is_some();
        if s.registered_at.contains_key(contact_id) && !cancelled {
            return;
        }
        s.registered_at.insert(contact_id.to_owned(), now);
        s.registered_by.insert(contact_id.to_owned(), by.to_owned());
        if walk_in {
            s.walk_in.insert(contact_id.to_owned(), true);
        }
    }

    /// Records that a contact came. A walk-in who was never signed up is
    /// signed up at the same time.
    pub fn check_in(&mut self, contact_id: &str, by: &str, now: Millis) {
        if !self.is_signed_up(contact_id) {
            self.sign_up(contact_id, by, true, now);
        }
        let s = &mut self.signups;
        s.no_show_at.remove(contact_id);
        s.checked_in_at.entry(contact_id.to_owned()).or_insert(now);
        s.checked_in_by
            .entry(contact_id.to_owned())
            .or_insert_with(|| by.to_owned());
    }

    /// Takes back a check-in made by mistake.
    pub fn undo_check_in(&mut self, contact_id: &str) {
        self.signups.checked_in_at.remove(contact_id);
        self.signups.checked_in_by.remove(contact_id);
    }

    /// Records that a contact cancelled.
    pub fn cancel(&mut self, contact_id: &str, now: Millis) -> Result<()> {
        if !self.is_signed_up(contact_id) {
            return Err(Error::NotAllowed(format!(
                "{contact_id} is not signed up to {}",
                self.title
            )));
        }
        self.signups
            .cancelled_at
            .entry(contact_id.to_owned())
            .or_insert(now);
        Ok(())
    }

    /// Records that a registered contact did not come.
    pub fn mark_no_show(&mut self, contact_id: &str, now: Millis) -> Result<()> {
        if !self.is_signed_up(contact_id) {
            return Err(Error::NotAllowed(format!(
                "{contact_id} is not signed up to {}",
                self.title
            )));
        }
        self.signups
            .no_show_at
            .entry(contact_id.to_owned())
            .or_insert(now);
        Ok(())
    }
}
