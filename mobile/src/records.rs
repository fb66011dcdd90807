//! The records that cross the FFI where their shape differs from the
//! core's, and their conversions. The others (`NewContact`,
//! `ContactSummary`, `RosterLine`, the reconciliation notes…) are the
//! core's own, derived for UniFFI (core feature `uniffi`). Times are milliseconds since the Unix epoch (`Long` in
//! Kotlin, `Int64` in Swift).

use muster_core as core;
pub use muster_core::device::{SyncActivity, SyncStatus};
pub use muster_core::model::ContactEdit;
pub use muster_core::store::{ConflictNote, DuplicatePair, MergeNote, OnlineNote, WaitlistNote};
pub use muster_core::{
    ContactSummary, EventSummary, NewConsent, NewContact, NewEvent, NewFeedback, RosterLine,
    SignupStatus,
};

/// Consent as recorded.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Consent {
    /// Whether the person consented.
    pub given: bool,
    /// Channels consented to.
    pub channels: Vec<String>,
    /// When it was recorded.
    pub recorded_at: Option<i64>,
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
    pub created_at: i64,
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
                recorded_at: c.consent.recorded_at,
                method: c.consent.method,
                recorded_by: c.consent.recorded_by,
            },
            notes: c.notes.as_str().to_owned(),
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
            created_at: c.created_at,
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
