//! The records that cross the FFI, and their conversions from and to the
//! core's types. Times are milliseconds since the Unix epoch (`Long` in
//! Kotlin, `Int64` in Swift).

use muster_core as core;
use muster_core::device;

/// What a volunteer types to register a new contact. Only `name` is
/// required.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewContact {
    /// Full name.
    pub name: String,
    /// Phone numbers as typed.
    #[uniffi(default)]
    pub phones: Vec<String>,
    /// Email addresses.
    #[uniffi(default)]
    pub emails: Vec<String>,
    /// Roles: donor, volunteer, beneficiary, staff or other.
    #[uniffi(default)]
    pub roles: Vec<String>,
    /// Free tags.
    #[uniffi(default)]
    pub tags: Vec<String>,
    /// Preferred language (a BCP 47 tag such as `es` or `pt-BR`).
    #[uniffi(default)]
    pub preferred_language: Option<String>,
    /// An id in another system.
    #[uniffi(default)]
    pub external_id: Option<String>,
}

impl From<NewContact> for core::NewContact {
    fn from(c: NewContact) -> Self {
        core::NewContact {
            name: c.name,
            phones: c.phones,
            emails: c.emails,
            roles: c.roles,
            tags: c.tags,
            preferred_language: c.preferred_language,
            external_id: c.external_id,
        }
    }
}

/// An edit of a contact: every field left `null` stays as it is; a list
/// given replaces the list; an empty string clears an optional text.
/// Only the fields given become part of the change, so edits of other
/// fields on other devices are kept.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct ContactEdit {
    /// New full name.
    #[uniffi(default)]
    pub name: Option<String>,
    /// New preferred name ("" clears it).
    #[uniffi(default)]
    pub preferred_name: Option<String>,
    /// New phone numbers.
    #[uniffi(default)]
    pub phones: Option<Vec<String>>,
    /// New email addresses.
    #[uniffi(default)]
    pub emails: Option<Vec<String>>,
    /// New roles.
    #[uniffi(default)]
    pub roles: Option<Vec<String>>,
    /// New tags.
    #[uniffi(default)]
    pub tags: Option<Vec<String>>,
    /// New preferred language ("" clears it).
    #[uniffi(default)]
    pub preferred_language: Option<String>,
    /// New organisation ("" clears it).
    #[uniffi(default)]
    pub organisation: Option<String>,
}

fn set(items: Vec<String>) -> std::collections::BTreeMap<String, bool> {
    items.into_iter().map(|i| (i, true)).collect()
}

fn optional(text: String) -> Option<String> {
    (!text.trim().is_empty()).then_some(text)
}

impl ContactEdit {
    /// Applies the edit to a contact record.
    pub(crate) fn apply(self, c: &mut core::Contact) {
        if let Some(v) = self.name {
            c.name = v;
        }
        if let Some(v) = self.preferred_name {
            c.preferred_name = optional(v);
        }
        if let Some(v) = self.phones {
            c.phones = v;
        }
        if let Some(v) = self.emails {
            c.emails = v;
        }
        if let Some(v) = self.roles {
            c.roles = set(v);
        }
        if let Some(v) = self.tags {
            c.tags = set(v);
        }
        if let Some(v) = self.preferred_language {
            c.preferred_language = optional(v);
        }
        if let Some(v) = self.organisation {
            c.organisation = optional(v);
        }
    }
}

/// Consent as a volunteer records it at the desk.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ConsentInput {
    /// Whether the person consented.
    pub given: bool,
    /// Channels consented to (`email`, `sms`, `phone`, `post`…).
    #[uniffi(default)]
    pub channels: Vec<String>,
    /// How it was obtained (`paper form`, `verbal`, `web`…).
    #[uniffi(default)]
    pub method: Option<String>,
}

impl From<ConsentInput> for core::NewConsent {
    fn from(c: ConsentInput) -> Self {
        core::NewConsent {
            given: c.given,
            channels: c.channels,
            method: c.method,
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

/// A contact as a search result or list line shows it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ContactSummary {
    /// The contact's id.
    pub id: String,
    /// Name.
    pub name: String,
    /// First phone number.
    pub phone: Option<String>,
    /// First email address.
    pub email: Option<String>,
    /// Roles held.
    pub roles: Vec<String>,
    /// Set when merged into another contact.
    pub merged_into: Option<String>,
}

impl From<core::ContactSummary> for ContactSummary {
    fn from(c: core::ContactSummary) -> Self {
        ContactSummary {
            id: c.id,
            name: c.name,
            phone: c.phone,
            email: c.email,
            roles: c.roles,
            merged_into: c.merged_into,
        }
    }
}

/// A new event.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewEvent {
    /// Title.
    pub title: String,
    /// Start time.
    pub starts_at: i64,
    /// End time.
    #[uniffi(default)]
    pub ends_at: Option<i64>,
    /// Place.
    #[uniffi(default)]
    pub place: String,
    /// Seats; `null` for no limit. Sign-ups beyond it wait on a waitlist.
    #[uniffi(default)]
    pub capacity: Option<i64>,
}

impl From<NewEvent> for core::NewEvent {
    fn from(e: NewEvent) -> Self {
        core::NewEvent {
            title: e.title,
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            place: e.place,
            capacity: e.capacity,
        }
    }
}

/// An event as a list shows it, with its counts.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct EventSummary {
    /// The event's id (`e_…`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Start time.
    pub starts_at: i64,
    /// End time.
    pub ends_at: Option<i64>,
    /// Place.
    pub place: String,
    /// Seats, if limited.
    pub capacity: Option<i64>,
    /// `scheduled`, `cancelled` or `completed`.
    pub status: String,
    /// Sign-ups holding a seat.
    pub registered: i64,
    /// Sign-ups waiting for a seat.
    pub waitlisted: i64,
    /// Sign-ups checked in.
    pub checked_in: i64,
}

impl From<core::EventSummary> for EventSummary {
    fn from(e: core::EventSummary) -> Self {
        EventSummary {
            id: e.id,
            title: e.title,
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            place: e.place,
            capacity: e.capacity,
            status: e.status,
            registered: e.registered,
            waitlisted: e.waitlisted,
            checked_in: e.checked_in,
        }
    }
}

/// Where a sign-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SignupStatus {
    /// Has a seat.
    Registered,
    /// Waiting for a seat.
    Waitlisted,
    /// Came.
    CheckedIn,
    /// Cancelled.
    Cancelled,
    /// Had a seat and did not come.
    NoShow,
}

impl From<core::SignupStatus> for SignupStatus {
    fn from(s: core::SignupStatus) -> Self {
        match s {
            core::SignupStatus::Registered => SignupStatus::Registered,
            core::SignupStatus::Waitlisted => SignupStatus::Waitlisted,
            core::SignupStatus::CheckedIn => SignupStatus::CheckedIn,
            core::SignupStatus::Cancelled => SignupStatus::Cancelled,
            core::SignupStatus::NoShow => SignupStatus::NoShow,
        }
    }
}

/// One line of an event's roster.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RosterLine {
    /// The contact.
    pub contact_id: String,
    /// The contact's name, when this device holds the contact.
    pub name: Option<String>,
    /// Where the sign-up stands.
    pub status: SignupStatus,
    /// When the contact registered.
    pub registered_at: i64,
    /// When the contact was checked in.
    pub checked_in_at: Option<i64>,
    /// Registered at the door.
    pub walk_in: bool,
    /// Place on the waitlist, from 1.
    pub waitlist_position: Option<u32>,
}

impl From<core::RosterLine> for RosterLine {
    fn from(r: core::RosterLine) -> Self {
        RosterLine {
            contact_id: r.contact_id,
            name: r.name,
            status: r.status.into(),
            registered_at: r.registered_at,
            checked_in_at: r.checked_in_at,
            walk_in: r.walk_in,
            waitlist_position: r.waitlist_position,
        }
    }
}

/// A new feedback case (a complaint, a suggestion, praise…).
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewFeedback {
    /// Who it is from, if known.
    #[uniffi(default)]
    pub contact_id: Option<String>,
    /// How it arrived: `in_person`, `phone`, `email`, `sms`, `web`, `letter`
    /// or `other`.
    pub channel: String,
    /// `complaint`, `suggestion`, `praise`, `question` or `other`.
    pub category: String,
    /// What the person said.
    pub text: String,
}

impl From<NewFeedback> for core::NewFeedback {
    fn from(f: NewFeedback) -> Self {
        core::NewFeedback {
            contact_id: f.contact_id,
            channel: f.channel,
            category: f.category,
            text: f.text,
        }
    }
}

/// What sync is doing now.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum SyncActivity {
    /// No sync is running.
    Idle,
    /// Opening a connection.
    Connecting {
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Receiving: `done` of `total` entries.
    Pulling {
        /// Entries covered.
        done: u64,
        /// Entries to cover.
        total: u64,
    },
    /// Sending local changes.
    Pushing {
        /// Changes in the last message.
        changes: u64,
    },
    /// Connected and caught up.
    Live,
    /// Not connected; live sync retries in `retry_in_ms`.
    Offline {
        /// Why.
        reason: String,
        /// Delay before the next attempt.
        retry_in_ms: u64,
    },
    /// Sync stopped on an error; `permanent` ones (a revoked token) need a
    /// person.
    Failed {
        /// What went wrong.
        message: String,
        /// Whether retrying cannot help.
        permanent: bool,
    },
}

/// The sync status a volunteer checks before handing the phone back:
/// `pending_changes == 0` means everything typed here is on the relay.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncStatus {
    /// What sync is doing now.
    pub activity: SyncActivity,
    /// Local changes the relay has not confirmed yet.
    pub pending_changes: i64,
    /// When the relay last confirmed changes from this device.
    pub last_confirmed_at: Option<i64>,
    /// Whether the device is enrolled with a relay.
    pub enrolled: bool,
    /// Whether live sync is running (also while offline and retrying).
    pub live: bool,
}

impl From<device::SyncStatus> for SyncStatus {
    fn from(s: device::SyncStatus) -> Self {
        use device::Activity as A;
        SyncStatus {
            activity: match s.activity {
                A::Idle => SyncActivity::Idle,
                A::Connecting { attempt } => SyncActivity::Connecting { attempt },
                A::Pulling { done, total } => SyncActivity::Pulling { done, total },
                A::Pushing { changes } => SyncActivity::Pushing { changes },
                A::Live => SyncActivity::Live,
                A::Offline { reason, retry_in } => SyncActivity::Offline {
                    reason,
                    retry_in_ms: retry_in.as_millis() as u64,
                },
                A::Failed { message, permanent } => SyncActivity::Failed { message, permanent },
            },
            pending_changes: s.pending_changes,
            last_confirmed_at: s.last_confirmed_at,
            enrolled: s.enrolled,
            live: s.live,
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

/// A merge (or unmerge) made on another device.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MergeNote {
    /// The duplicate.
    pub duplicate: String,
    /// Its name.
    pub duplicate_name: String,
    /// The contact it was (or had been) merged into.
    pub kept: String,
    /// Its name.
    pub kept_name: String,
}

impl From<core::store::MergeNote> for MergeNote {
    fn from(n: core::store::MergeNote) -> Self {
        MergeNote {
            duplicate: n.duplicate,
            duplicate_name: n.duplicate_name,
            kept: n.kept,
            kept_name: n.kept_name,
        }
    }
}

/// A field holding several values after devices edited it concurrently.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ConflictNote {
    /// The record.
    pub record_id: String,
    /// Its name or title.
    pub label: String,
    /// The field (`name`, `address.city`…).
    pub field: String,
    /// Its values, the one shown first.
    pub values: Vec<String>,
}

impl From<core::store::ConflictNote> for ConflictNote {
    fn from(n: core::store::ConflictNote) -> Self {
        ConflictNote {
            record_id: n.record_id,
            label: n.label,
            field: n.field,
            values: n.values,
        }
    }
}

/// A sign-up that held a seat before the sync and now waits.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct WaitlistNote {
    /// The event.
    pub event_id: String,
    /// Its title.
    pub event_title: String,
    /// The contact.
    pub contact_id: String,
    /// Their name.
    pub name: Option<String>,
    /// Their place on the waitlist.
    pub position: Option<u32>,
}

impl From<core::store::WaitlistNote> for WaitlistNote {
    fn from(n: core::store::WaitlistNote) -> Self {
        WaitlistNote {
            event_id: n.event_id,
            event_title: n.event_title,
            contact_id: n.contact_id,
            name: n.name,
            position: n.position,
        }
    }
}

/// Two contacts that may be one person.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DuplicatePair {
    /// The contact already known.
    pub a: String,
    /// Its name.
    pub a_name: String,
    /// The contact that arrived.
    pub b: String,
    /// Its name.
    pub b_name: String,
    /// From 0 to 1.
    pub score: f64,
    /// Why.
    pub reasons: Vec<String>,
}

impl From<core::store::DuplicatePair> for DuplicatePair {
    fn from(p: core::store::DuplicatePair) -> Self {
        DuplicatePair {
            a: p.a,
            a_name: p.a_name,
            b: p.b,
            b_name: p.b_name,
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
            merged: r.merged.into_iter().map(Into::into).collect(),
            unmerged: r.unmerged.into_iter().map(Into::into).collect(),
            conflicts: r.conflicts.into_iter().map(Into::into).collect(),
            moved_to_waitlist: r.moved_to_waitlist.into_iter().map(Into::into).collect(),
            duplicate_candidates: r.duplicate_candidates.into_iter().map(Into::into).collect(),
            unreadable: r.unreadable,
        }
    }
}
