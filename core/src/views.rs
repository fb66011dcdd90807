//! Rules a CRDT cannot enforce, computed after merge as pure functions of
//! the merged record, so that every replica shows the same answer.
//!
//! # The roster of an event
//!
//! Each contact with a `registered_at` entry has one status:
//!
//! 1. **checked in** if a check-in is recorded — *whatever else happened*: a
//!    person who was checked in was there, so a cancellation or a no-show
//!    made concurrently on another device does not undo it;
//! 2. otherwise **cancelled** if a cancellation is recorded;
//! 3. otherwise the remaining sign-ups are ordered by registration time, then
//!    by contact id (so that equal times break ties the same way everywhere).
//!    Walking that order, each takes a seat while seats remain:
//!    **registered** (or **no show** if marked so after the event); those
//!    left without a seat are **waitlisted**, with their place in the queue.
//!
//! Checked-in people take a seat in that same walk (in their registration
//! order) and are never waitlisted: if the door let more people in than the
//! capacity, the room is over capacity, and the roster says so rather than
//! pretend someone who is present is waiting.

use serde::{Deserialize, Serialize};

use crate::model::{Event, Millis};

/// Where a sign-up stands, as every replica computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
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

impl SignupStatus {
    /// Every status, in the order lists show them.
    pub const ALL: [SignupStatus; 5] = [
        SignupStatus::CheckedIn,
        SignupStatus::Registered,
        SignupStatus::Waitlisted,
        SignupStatus::NoShow,
        SignupStatus::Cancelled,
    ];

    /// The name used in the store, in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SignupStatus::Registered => "registered",
            SignupStatus::Waitlisted => "waitlisted",
            SignupStatus::CheckedIn => "checked_in",
            SignupStatus::Cancelled => "cancelled",
            SignupStatus::NoShow => "no_show",
        }
    }

    /// How far along a sign-up is: when one person holds two (a duplicate's
    /// and the kept contact's, after a merge), the higher counts — checked
    /// in, then registered, waitlisted, no-show, cancelled. The roster and
    /// the reports both choose by this.
    pub fn precedence(self) -> u8 {
        match self {
            SignupStatus::CheckedIn => 4,
            SignupStatus::Registered => 3,
            SignupStatus::Waitlisted => 2,
            SignupStatus::NoShow => 1,
            SignupStatus::Cancelled => 0,
        }
    }

    /// Parses the name given by [`SignupStatus::as_str`].
    pub fn parse(s: &str) -> Option<SignupStatus> {
        SignupStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// One line of an event's roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// The contact (`c_…`).
    pub contact_id: String,
    /// Where the sign-up stands.
    pub status: SignupStatus,
    /// When the contact registered.
    pub registered_at: Millis,
    /// When the contact was checked in, if they were.
    pub checked_in_at: Option<Millis>,
    /// Whether they registered at the door.
    pub walk_in: bool,
    /// For the waitlisted: their place in the queue, from 1.
    pub waitlist_position: Option<u32>,
}

/// The roster of an event: every sign-up with its status, in registration
/// order (ties broken by contact id). See the module documentation for the
/// rules.
pub fn roster(event: &Event) -> Vec<RosterEntry> {
    let s = &event.signups;
    let mut order: Vec<(&String, Millis)> = s.registered_at.iter().map(|(c, t)| (c, *t)).collect();
    order.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));

    // Merged data is not validated: a capacity below zero means no seats.
    let mut seats_left = event.capacity.unwrap_or(i64::MAX).max(0);
    let mut waitlist = 0u32;
    order
        .into_iter()
        .map(|(contact_id, registered_at)| {
            let checked_in_at = s.checked_in_at.get(contact_id).copied();
            let mut waitlist_position = None;
            let status = if checked_in_at.is_some() {
                seats_left = seats_left.saturating_sub(1);
                SignupStatus::CheckedIn
            } else if s.cancelled_at.contains_key(contact_id) {
                SignupStatus::Cancelled
            } else if seats_left > 0 {
                seats_left -= 1;
                if s.no_show_at.contains_key(contact_id) {
                    SignupStatus::NoShow
                } else {
                    SignupStatus::Registered
                }
            } else {
                waitlist += 1;
                waitlist_position = Some(waitlist);
                SignupStatus::Waitlisted
            };
            RosterEntry {
                contact_id: contact_id.clone(),
                status,
                registered_at,
                checked_in_at,
                walk_in: s.walk_in.get(contact_id).copied().unwrap_or(false),
                waitlist_position,
            }
        })
        .collect()
}
