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
//!
//! # One person, one place
//!
//! A person may hold several sign-ups to one event: their own and those of
//! duplicates merged into them (registered at two desks before anyone saw
//! they were one person). The rules above apply to the *person*, never to
//! each sign-up, so that a merge frees the seat or the waitlist place the
//! duplicate held:
//!
//! - checked in if any of their sign-ups is (at the earliest check-in);
//! - cancelled if every one of them is (a registration made after a
//!   cancellation is a new claim);
//! - the person's place in the walk is their earliest sign-up that is
//!   checked in or not cancelled (a cancelled duplicate registered early
//!   gives no head start), and a seated person is a no-show only if every
//!   sign-up not cancelled is marked so.
//!
//! Each sign-up's line carries its person's status and place. Which
//! contacts are one person is read from the contacts' merges
//! ([`crate::merges`]); every replica holding the same contacts computes the
//! same roster.

use std::collections::{HashMap, HashSet};

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

/// One line of an event's roster: one sign-up, with where its person
/// stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// The contact the sign-up names (`c_…`).
    pub contact_id: String,
    /// The person it counts for: the contact it was merged into, or itself.
    pub person: String,
    /// Where the person stands.
    pub status: SignupStatus,
    /// When this sign-up was made.
    pub registered_at: Millis,
    /// When this sign-up was checked in, if it was.
    pub checked_in_at: Option<Millis>,
    /// Whether this sign-up was made at the door.
    pub walk_in: bool,
    /// For a waiting person: their place in the queue, from 1.
    pub waitlist_position: Option<u32>,
}

/// The roster of an event: every sign-up with its person's status, in
/// registration order (ties broken by contact id). `merged` maps a contact
/// merged into another to the one it counts as (contacts absent count as
/// themselves). See the module documentation for the rules.
pub fn roster(event: &Event, merged: &HashMap<String, String>) -> Vec<RosterEntry> {
    let s = &event.signups;
    let person_of = |c: &String| merged.get(c).unwrap_or(c).clone();
    let mut order: Vec<(&String, Millis)> = s.registered_at.iter().map(|(c, t)| (c, *t)).collect();
    order.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));

    /// What the person's sign-ups add up to.
    #[derive(Default)]
    struct Person {
        checked_in: bool,
        /// Their earliest sign-up.
        first: Option<Millis>,
        /// Their earliest sign-up that was not cancelled.
        active: Option<Millis>,
        /// Their earliest sign-up that was checked in or not cancelled:
        /// where they stand in the queue.
        placing: Option<Millis>,
        /// Whether every one not cancelled is marked a no-show.
        no_show: bool,
    }
    let mut people: HashMap<String, Person> = HashMap::new();
    // The walk's order: each person once, at the sign-up that places them.
    let mut walk: Vec<String> = Vec::new();
    let mut placed: HashSet<String> = HashSet::new();
    for (contact, at) in &order {
        let person = person_of(contact);
        let p = people.entry(person.clone()).or_insert_with(|| Person {
            no_show: true,
            ..Person::default()
        });
        p.first.get_or_insert(*at);
        let checked_in = s.checked_in_at.contains_key(*contact);
        let cancelled = s.cancelled_at.contains_key(*contact);
        p.checked_in |= checked_in;
        if checked_in || !cancelled {
            p.placing.get_or_insert(*at);
        }
        if !cancelled {
            if p.active.is_none() {
                p.active = Some(*at);
            }
            p.no_show &= s.no_show_at.contains_key(*contact);
        }
    }
    // Ordered by the time that places each person (their earliest sign-up
    // that was checked in or not cancelled, or their earliest if all were
    // cancelled), then by the first contact id holding it.
    for (contact, at) in &order {
        let person = person_of(contact);
        if let Some(p) = people.get(&person)
            && p.placing.or(p.first) == Some(*at)
            && placed.insert(person.clone())
        {
            walk.push(person);
        }
    }

    // Merged data is not validated: a capacity below zero means no seats.
    let mut seats_left = event.capacity.unwrap_or(i64::MAX).max(0);
    let mut waitlist = 0u32;
    let mut standing: HashMap<&str, (SignupStatus, Option<u32>)> = HashMap::new();
    for person in &walk {
        let p = &people[person];
        let place = if p.checked_in {
            seats_left = seats_left.saturating_sub(1);
            (SignupStatus::CheckedIn, None)
        } else if p.active.is_none() {
            (SignupStatus::Cancelled, None)
        } else if seats_left > 0 {
            seats_left -= 1;
            if p.no_show {
                (SignupStatus::NoShow, None)
            } else {
                (SignupStatus::Registered, None)
            }
        } else {
            waitlist += 1;
            (SignupStatus::Waitlisted, Some(waitlist))
        };
        standing.insert(person, place);
    }
    order
        .into_iter()
        .map(|(contact_id, registered_at)| {
            let person = person_of(contact_id);
            let (status, waitlist_position) = standing
                .get(person.as_str())
                .copied()
                .unwrap_or((SignupStatus::Cancelled, None));
            RosterEntry {
                contact_id: contact_id.clone(),
                status,
                registered_at,
                checked_in_at: s.checked_in_at.get(contact_id).copied(),
                walk_in: s.walk_in.get(contact_id).copied().unwrap_or(false),
                waitlist_position,
                person,
            }
        })
        .collect()
}
