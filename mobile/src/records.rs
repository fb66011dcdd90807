//! The records that cross the FFI where their shape differs from the
//! core's, and their conversions. The others (`NewContact`,
//! `ContactSummary`, the reconciliation notes…) are the core's own, derived
//! for UniFFI (core feature `uniffi`).
//!
//! Times cross as the platform's own type (`SystemTime` here:
//! `java.time.Instant` in Kotlin, `Date` in Swift, `datetime` in Python),
//! so every record with a time is one of these; the core counts
//! milliseconds since the Unix epoch, and [`at`] and [`millis`] are the
//! one conversion.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use muster_core as core;
pub use muster_core::device::SyncActivity;
pub use muster_core::model::Address;
pub use muster_core::model::ContactEdit;
pub use muster_core::store::{ConflictNote, DuplicatePair, MergeNote, OnlineNote, WaitlistNote};
pub use muster_core::{
    ContactSummary, FeedbackStatus, NewConsent, NewContact, NewFeedback, SignupStatus,
};

/// A time of the core (milliseconds since the Unix epoch) as the
/// platform's.
pub fn at(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// A platform time as the core's milliseconds since the Unix epoch
/// (saturating far outside the years a record can hold).
pub fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// What a person types to create an event.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewEvent {
    /// Title (required).
    pub title: String,
    /// Start time.
    pub starts_at: SystemTime,
    /// End time.
    #[uniffi(default)]
    pub ends_at: Option<SystemTime>,
    /// Place.
    #[uniffi(default)]
    pub place: String,
    /// Capacity; `null` for no limit.
    #[uniffi(default)]
    pub capacity: Option<i64>,
}

impl From<NewEvent> for core::NewEvent {
    fn from(e: NewEvent) -> Self {
        core::NewEvent {
            title: e.title,
            starts_at: millis(e.starts_at),
            ends_at: e.ends_at.map(millis),
            place: e.place,
            capacity: e.capacity,
        }
    }
}

/// A change to an event's own fields: each `null` leaves its field alone
/// (see the core's `EventEdit`).
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct EventEdit {
    /// New title.
    #[uniffi(default)]
    pub title: Option<String>,
    /// New start time.
    #[uniffi(default)]
    pub starts_at: Option<SystemTime>,
    /// New end time.
    #[uniffi(default)]
    pub ends_at: Option<SystemTime>,
    /// Takes the end time away.
    #[uniffi(default)]
    pub clear_ends_at: bool,
    /// New place ("" clears it).
    #[uniffi(default)]
    pub place: Option<String>,
    /// New capacity: more seats move the first waiting up.
    #[uniffi(default)]
    pub capacity: Option<i64>,
    /// Takes the capacity away (no limit).
    #[uniffi(default)]
    pub clear_capacity: bool,
}

impl From<EventEdit> for core::EventEdit {
    fn from(e: EventEdit) -> Self {
        core::EventEdit {
            title: e.title,
            starts_at: e.starts_at.map(millis),
            ends_at: e.ends_at.map(millis),
            clear_ends_at: e.clear_ends_at,
            place: e.place,
            capacity: e.capacity,
            clear_capacity: e.clear_capacity,
        }
    }
}

/// An event as lists show it, with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
pub struct EventSummary {
    /// The event's id (`e_…`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Start time.
    pub starts_at: SystemTime,
    /// End time.
    pub ends_at: Option<SystemTime>,
    /// Place.
    pub place: String,
    /// Capacity, if limited.
    pub capacity: Option<i64>,
    /// `scheduled`, `cancelled` or `completed`.
    pub status: String,
    /// People holding a seat (registered, no-show or checked in).
    pub registered: i64,
    /// People waiting for a seat.
    pub waitlisted: i64,
    /// People checked in.
    pub checked_in: i64,
}

impl From<core::EventSummary> for EventSummary {
    fn from(e: core::EventSummary) -> Self {
        EventSummary {
            id: e.id,
            title: e.title,
            starts_at: at(e.starts_at),
            ends_at: e.ends_at.map(at),
            place: e.place,
            capacity: e.capacity,
            status: e.status,
            registered: e.registered,
            waitlisted: e.waitlisted,
            checked_in: e.checked_in,
        }
    }
}

/// One line of an event's roster: a person, their status and place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
pub struct RosterLine {
    /// The contact (the kept one, for a merged duplicate's sign-up).
    pub contact_id: String,
    /// Their name, when this device holds the contact.
    pub name: Option<String>,
    /// Where they stand.
    pub status: SignupStatus,
    /// When they registered.
    pub registered_at: SystemTime,
    /// When they were checked in.
    pub checked_in_at: Option<SystemTime>,
    /// Whether they registered at the door.
    pub walk_in: bool,
    /// Their place on the waitlist, from 1.
    pub waitlist_position: Option<u32>,
}

impl From<core::RosterLine> for RosterLine {
    fn from(l: core::RosterLine) -> Self {
        RosterLine {
            contact_id: l.contact_id,
            name: l.name,
            status: l.status,
            registered_at: at(l.registered_at),
            checked_in_at: l.checked_in_at.map(at),
            walk_in: l.walk_in,
            waitlist_position: l.waitlist_position,
        }
    }
}

/// A feedback case as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
pub struct FeedbackLine {
    /// The case (`f_…`).
    pub id: String,
    /// Who gave it, if known.
    pub contact_id: Option<String>,
    /// Where it stands.
    pub status: FeedbackStatus,
    /// How it came.
    pub channel: String,
    /// What it is about.
    pub category: String,
    /// When it was received.
    pub received_at: SystemTime,
    /// When the person first had an answer.
    pub first_response_at: Option<SystemTime>,
    /// When it was closed.
    pub resolved_at: Option<SystemTime>,
    /// Who must answer it.
    pub assigned_to: Option<String>,
}

impl From<core::store::FeedbackLine> for FeedbackLine {
    fn from(f: core::store::FeedbackLine) -> Self {
        FeedbackLine {
            id: f.id,
            contact_id: f.contact_id,
            status: f.status,
            channel: f.channel,
            category: f.category,
            received_at: at(f.received_at),
            first_response_at: f.first_response_at.map(at),
            resolved_at: f.resolved_at.map(at),
            assigned_to: f.assigned_to,
        }
    }
}

/// The sync status a volunteer checks before handing the phone back.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncStatus {
    /// What sync is doing now.
    pub activity: SyncActivity,
    /// Local changes the relay has not confirmed yet: zero means this
    /// device's changes reached the relay (not that it holds everyone's).
    pub pending_changes: i64,
    /// When the relay last confirmed changes from this device.
    pub last_confirmed_at: Option<SystemTime>,
    /// Whether the store is enrolled with a relay.
    pub enrolled: bool,
    /// Whether live sync is running (including while offline and retrying).
    pub live: bool,
}

impl From<core::device::SyncStatus> for SyncStatus {
    fn from(s: core::device::SyncStatus) -> Self {
        SyncStatus {
            activity: s.activity,
            pending_changes: s.pending_changes,
            last_confirmed_at: s.last_confirmed_at.map(at),
            enrolled: s.enrolled,
            live: s.live,
        }
    }
}

/// Consent as recorded.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Consent {
    /// Whether the person consented.
    pub given: bool,
    /// Channels consented to.
    pub channels: Vec<String>,
    /// When it was recorded.
    pub recorded_at: Option<SystemTime>,
    /// How it was obtained.
    pub method: Option<String>,
    /// The device that recorded it.
    pub recorded_by: Option<String>,
}

/// A contact, whole, as a detail screen shows it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Contact {
    /// The contact's id (`c_…`).
    pub id: String,
    /// Full name.
    pub name: String,
    /// What the person likes to be called.
    pub preferred_name: Option<String>,
    /// Phone numbers.
    pub phones: Vec<String>,
    /// Email addresses.
    pub emails: Vec<String>,
    /// Roles held.
    pub roles: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Preferred language.
    pub preferred_language: Option<String>,
    /// Postal address.
    pub address: Address,
    /// Household (a name or id shared by the people of one home).
    pub household: Option<String>,
    /// What the person is interested in (`food bank`, `tutoring`…).
    pub interests: Vec<String>,
    /// The organisation's own fields (`t-shirt size` → `M`).
    pub custom: std::collections::HashMap<String, String>,
    /// Organisation.
    pub organisation: Option<String>,
    /// An id in another system.
    pub external_id: Option<String>,
    /// Consent.
    pub consent: Consent,
    /// Notes.
    pub notes: String,
    /// Set when this contact was merged into another (the kept one).
    pub merged_into: Option<String>,
    /// The device that created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: SystemTime,
}

fn keys(set: &std::collections::BTreeMap<String, bool>) -> Vec<String> {
    set.iter()
        .filter(|(_, on)| **on)
        .map(|(k, _)| k.clone())
        .collect()
}

impl From<core::Contact> for Contact {
    fn from(c: core::Contact) -> Self {
        Contact {
            roles: keys(&c.roles),
            tags: keys(&c.tags),
            consent: Consent {
                given: c.consent.given,
                channels: keys(&c.consent.channels),
                recorded_at: c.consent.recorded_at.map(at),
                method: c.consent.method,
                recorded_by: c.consent.recorded_by,
            },
            notes: c.notes.as_str().to_owned(),
            interests: keys(&c.interests),
            address: c.address,
            household: c.household,
            custom: c.custom.into_iter().collect(),
            id: c.id,
            name: c.name,
            preferred_name: c.preferred_name,
            phones: c.phones,
            emails: c.emails,
            preferred_language: c.preferred_language,
            organisation: c.organisation,
            external_id: c.external_id,
            merged_into: c.merged_into,
            created_by: c.created_by,
            created_at: at(c.created_at),
        }
    }
}

/// What one sync moved.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncSummary {
    /// Records that changed on this device.
    pub records_changed: u64,
    /// Local changes sent.
    pub pushed: u64,
    /// Local changes the relay confirmed.
    pub confirmed: u64,
    /// Local changes the relay refused (a warning said why).
    pub refused: u64,
    /// Local changes still waiting for the relay.
    pub pending_changes: i64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// What a coordinator should look at after this sync (`null` for the
    /// first sync of an enrollment).
    pub reconciliation: Option<Reconciliation>,
}

impl SyncSummary {
    pub(crate) fn of(r: &core::client::SyncReport, pending_changes: i64) -> Self {
        SyncSummary {
            reconciliation: None,
            records_changed: r.changed_docs as u64,
            pushed: r.pushed as u64,
            confirmed: r.acknowledged as u64,
            refused: r.rejected as u64,
            pending_changes,
            bytes_in: r.bytes_in as u64,
            bytes_out: r.bytes_out as u64,
        }
    }
}

/// What enrolling found.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Enrollment {
    /// Whether the relay was reached and accepted the token. If not, the
    /// enrollment is saved anyway and later syncs use it.
    pub reached_relay: bool,
    /// Why the relay was not reached.
    pub problem: Option<String>,
    /// What the first sync moved.
    pub summary: SyncSummary,
}

/// A contact that may be the same person as another, with why.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PossibleDuplicate {
    /// The contact already on this device.
    pub contact_id: String,
    /// Its name.
    pub name: String,
    /// From 0 to 1: how likely it is the same person.
    pub score: f64,
    /// Why: `same phone +447700900123`, `same email …`, `names 0.97 alike`.
    pub reasons: Vec<String>,
}

impl From<core::store::DuplicatePair> for PossibleDuplicate {
    fn from(p: core::store::DuplicatePair) -> Self {
        PossibleDuplicate {
            contact_id: p.a,
            name: p.a_name,
            score: p.score,
            reasons: p.reasons,
        }
    }
}

/// The reconciliation report of a sync: what arrived, what was merged,
/// which fields hold conflicting values, which sign-ups moved to the
/// waitlist, and new duplicate candidates.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Reconciliation {
    /// Contacts new to this device.
    pub new_contacts: u64,
    /// Contacts it had that changed.
    pub updated_contacts: u64,
    /// New events.
    pub new_events: u64,
    /// Events that changed.
    pub updated_events: u64,
    /// New feedback cases.
    pub new_feedback: u64,
    /// Feedback cases that changed.
    pub updated_feedback: u64,
    /// Records no longer on this device (erased or out of scope).
    pub removed: u64,
    /// Merges made elsewhere.
    pub merged: Vec<MergeNote>,
    /// Unmerges made elsewhere.
    pub unmerged: Vec<MergeNote>,
    /// Fields with conflicting values.
    pub conflicts: Vec<ConflictNote>,
    /// Sign-ups moved from a seat to the waitlist.
    pub moved_to_waitlist: Vec<WaitlistNote>,
    /// Sign-ups made on events' public pages that arrived.
    pub registered_online: Vec<OnlineNote>,
    /// New contacts that may be people already known.
    pub duplicate_candidates: Vec<DuplicatePair>,
    /// Records that arrived but cannot be read (kept, not shown).
    pub unreadable: Vec<String>,
}

impl From<core::store::Reconciliation> for Reconciliation {
    fn from(r: core::store::Reconciliation) -> Self {
        let a = r.arrived;
        Reconciliation {
            new_contacts: a.new_contacts,
            updated_contacts: a.updated_contacts,
            new_events: a.new_events,
            updated_events: a.updated_events,
            new_feedback: a.new_feedback,
            updated_feedback: a.updated_feedback,
            removed: a.removed,
            merged: r.merged,
            unmerged: r.unmerged,
            conflicts: r.conflicts,
            moved_to_waitlist: r.moved_to_waitlist,
            registered_online: r.registered_online,
            duplicate_candidates: r.duplicate_candidates,
            unreadable: r.unreadable,
        }
    }
}

/// A gift recorded in a contact's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
pub struct Donation {
    /// The entry's id.
    pub id: String,
    /// The amount in the currency's minor unit (cents, pence…).
    pub amount_minor: i64,
    /// ISO 4217 code (`EUR`, `GBP`…).
    pub currency: String,
    /// The amount as exports and the dashboard write it (`12.50 EUR`).
    pub amount_text: String,
    /// When it was given.
    pub date: SystemTime,
    /// How (`cash`, `card`, `transfer`…).
    pub method: String,
    /// A note.
    pub note: Option<String>,
    /// The device that recorded it.
    pub recorded_by: String,
}

/// A promise of regular gifts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
pub struct Pledge {
    /// The entry's id.
    pub id: String,
    /// Each gift, in the currency's minor unit.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// `once`, `monthly`, `quarterly` or `yearly`.
    pub frequency: String,
    /// From when.
    pub starts: SystemTime,
    /// Until when, if it ends.
    pub ends: Option<SystemTime>,
    /// The device that recorded it.
    pub recorded_by: String,
}

/// A call, visit, email, meeting or message with a contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
pub struct Interaction {
    /// The entry's id.
    pub id: String,
    /// `call`, `visit`, `email`, `meeting`, `message` or `other`.
    pub channel: String,
    /// When.
    pub at: SystemTime,
    /// The device that recorded it.
    pub by: String,
    /// What was said or done.
    pub summary: String,
}

/// A contact's private ledger: gifts, pledges and interactions. Only
/// coordinators' devices receive it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Ledger {
    /// The contact.
    pub contact_id: String,
    /// Gifts, newest first.
    pub donations: Vec<Donation>,
    /// Pledges.
    pub pledges: Vec<Pledge>,
    /// Interactions, newest first.
    pub interactions: Vec<Interaction>,
}

impl From<core::ContactPrivate> for Ledger {
    fn from(p: core::ContactPrivate) -> Self {
        let mut donations: Vec<Donation> = p
            .donations
            .into_iter()
            .map(|d| Donation {
                amount_text: core::money::display_amount(d.amount_minor, &d.currency),
                id: d.id,
                amount_minor: d.amount_minor,
                currency: d.currency,
                date: at(d.date),
                method: d.method,
                note: d.note,
                recorded_by: d.recorded_by,
            })
            .collect();
        donations.sort_by_key(|d| std::cmp::Reverse(d.date));
        let mut interactions: Vec<Interaction> = p
            .interactions
            .into_iter()
            .map(|i| Interaction {
                id: i.id,
                channel: i.channel,
                at: at(i.at),
                by: i.by,
                summary: i.summary,
            })
            .collect();
        interactions.sort_by_key(|i| std::cmp::Reverse(i.at));
        Ledger {
            contact_id: p.contact_id,
            donations,
            pledges: p
                .pledges
                .into_iter()
                .map(|p| Pledge {
                    id: p.id,
                    amount_minor: p.amount_minor,
                    currency: p.currency,
                    frequency: p.frequency,
                    starts: at(p.starts),
                    ends: p.ends.map(at),
                    recorded_by: p.recorded_by,
                })
                .collect(),
            interactions,
        }
    }
}

/// An answer given to the person who gave feedback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
pub struct FeedbackResponse {
    /// When.
    pub at: SystemTime,
    /// The device that recorded it.
    pub by: String,
    /// What was said.
    pub text: String,
}

/// A feedback case, whole.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FeedbackCase {
    /// The case (`f_…`).
    pub id: String,
    /// Who gave it, if known.
    pub contact_id: Option<String>,
    /// Where it stands.
    pub status: FeedbackStatus,
    /// How it came.
    pub channel: String,
    /// What it is about.
    pub category: String,
    /// What the person said.
    pub text: String,
    /// When it was received.
    pub received_at: SystemTime,
    /// The device that took it.
    pub received_by: String,
    /// Who must answer it.
    pub assigned_to: Option<String>,
    /// The answers given, in order.
    pub responses: Vec<FeedbackResponse>,
    /// When it was closed.
    pub resolved_at: Option<SystemTime>,
    /// The person's satisfaction, 1 to 5, if asked.
    pub satisfaction: Option<i64>,
    /// Whether the first answer is late (none within 24 hours).
    pub overdue: bool,
}

impl FeedbackCase {
    pub(crate) fn of(f: core::FeedbackCase, now: i64) -> Self {
        FeedbackCase {
            status: f.status(),
            overdue: f.is_overdue(now),
            id: f.id,
            contact_id: f.contact_id,
            channel: f.channel,
            category: f.category,
            text: f.text,
            received_at: at(f.received_at),
            received_by: f.received_by,
            assigned_to: f.assigned_to,
            responses: f
                .responses
                .into_iter()
                .map(|r| FeedbackResponse {
                    at: at(r.at),
                    by: r.by,
                    text: r.text,
                })
                .collect(),
            resolved_at: f.resolved_at.map(at),
            satisfaction: f.satisfaction,
        }
    }
}
