//! The reconciliation report after a sync: what arrived, what was merged,
//! which fields now hold conflicting values, which sign-ups moved to the
//! waitlist, and new duplicate candidates — what a coordinator reads after
//! the desks come back online.
//!
//! Take a [`Baseline`] before the sync ([`Store::baseline`]), then ask
//! [`Store::reconcile`] with the ids of the records the sync changed.

use std::collections::{BTreeSet, HashMap, HashSet};

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use super::Store;
use super::merging::DuplicatePair;
use crate::error::Result;
use crate::model::{self, DocKind};
use crate::views::SignupStatus;

/// What the device held before a sync, to compare with after.
#[derive(Debug, Default, Clone)]
pub struct Baseline {
    docs: HashSet<String>,
    signups: HashMap<(String, String), String>,
    merged: HashMap<String, String>,
}

/// How many records arrived, new or changed, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrived {
    /// Contacts this device did not have.
    pub new_contacts: u64,
    /// Contacts it had that changed.
    pub updated_contacts: u64,
    /// New events.
    pub new_events: u64,
    /// Events that changed (sign-ups, check-ins, details).
    pub updated_events: u64,
    /// New feedback cases.
    pub new_feedback: u64,
    /// Feedback cases that changed.
    pub updated_feedback: u64,
    /// Private ledgers (gifts, interactions) that changed.
    pub ledgers: u64,
    /// Records this device no longer holds (erased, or out of its scope).
    pub removed: u64,
}

/// A merge (or unmerge) that arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MergeNote {
    /// The duplicate.
    pub duplicate: String,
    /// Its name.
    pub duplicate_name: String,
    /// The contact it was merged into (for an unmerge: was merged into).
    pub kept: String,
    /// Its name.
    pub kept_name: String,
}

/// A field holding several values after devices edited it concurrently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ConflictNote {
    /// The record.
    pub record_id: String,
    /// Its name or title.
    pub label: String,
    /// The field, dotted (`address.city`).
    pub field: String,
    /// Its values, the one shown first (text as is, others as JSON).
    pub values: Vec<String>,
}

/// A sign-up that held a seat before the sync and now waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct WaitlistNote {
    /// The event.
    pub event_id: String,
    /// Its title.
    pub event_title: String,
    /// The contact.
    pub contact_id: String,
    /// Their name, if on this device.
    pub name: Option<String>,
    /// Their place on the waitlist.
    pub position: Option<u32>,
}

/// A sign-up made on an event's public page that arrived
/// (`registered_by` is [`crate::registration::PAGE_SOURCE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OnlineNote {
    /// The event.
    pub event_id: String,
    /// Its title.
    pub event_title: String,
    /// The contact as the sign-up names it.
    pub contact_id: String,
    /// Their name, if on this device.
    pub name: Option<String>,
    /// Their place on the waitlist, if they wait.
    pub position: Option<u32>,
}

/// The reconciliation report of one sync.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// Records that arrived.
    pub arrived: Arrived,
    /// Merges made elsewhere that arrived.
    pub merged: Vec<MergeNote>,
    /// Unmerges made elsewhere that arrived.
    pub unmerged: Vec<MergeNote>,
    /// Fields of the records that arrived holding conflicting values.
    pub conflicts: Vec<ConflictNote>,
    /// Whether every changed record was checked for conflicting values:
    /// always, as each is indexed on arrival (kept for the apps that read
    /// it).
    pub conflicts_complete: bool,
    /// Sign-ups that moved from a seat to the waitlist.
    pub moved_to_waitlist: Vec<WaitlistNote>,
    /// Sign-ups made on events' public pages that arrived ("3 registered
    /// online").
    #[serde(default)]
    pub registered_online: Vec<OnlineNote>,
    /// New contacts that may be people already known.
    pub duplicate_candidates: Vec<DuplicatePair>,
    /// Whether every new contact was checked for duplicates: always, in
    /// one pass over the store whatever their number (kept for the apps
    /// that read it).
    pub duplicates_complete: bool,
    /// Records that arrived but cannot be read as their kind (written by a
    /// broken or newer app): kept as they came, left out of searches, lists
    /// and the rest of this report. A sync never fails because of them.
    #[serde(default)]
    pub unreadable: Vec<String>,
}

impl Reconciliation {
    /// Whether there is nothing a coordinator needs to look at.
    pub fn is_quiet(&self) -> bool {
        self.merged.is_empty()
            && self.unmerged.is_empty()
            && self.conflicts.is_empty()
            && self.moved_to_waitlist.is_empty()
            && self.registered_online.is_empty()
            && self.duplicate_candidates.is_empty()
            && self.unreadable.is_empty()
    }
}

impl Store {
    /// What the device holds now, for [`Store::reconcile`] after a sync.
    /// Starts a new record of the arriving documents that hold
    /// conflicting values.
    pub fn baseline(&mut self) -> Result<Baseline> {
        self.conflicted.clear();
        let docs = self
            .conn
            .prepare_cached("SELECT doc_id FROM docs")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let signups = self
            .conn
            .prepare_cached("SELECT event_id, contact_id, status FROM signups")?
            .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let merged = self
            .conn
            .prepare_cached("SELECT id, merged_into FROM contacts WHERE merged_into IS NOT NULL")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Baseline {
            docs,
            signups,
            merged,
        })
    }

    /// Brings `before` up to what the device holds now, after a batch that
    /// changed `changed` was reconciled, reading only what it touched (the
    /// records, the sign-ups of the events they are or sign up to, the
    /// merges): live sync reconciles batch after batch without reading
    /// every record each time, as [`Store::baseline`] does. Starts a new
    /// record of the arriving documents that hold conflicting values.
    pub fn refresh_baseline(&mut self, before: &mut Baseline, changed: &[String]) -> Result<()> {
        self.conflicted.clear();
        self.advance_baseline(before, changed)
    }

    /// Brings `before` up to what the device holds now for the records in
    /// `changed` (as [`Store::refresh_baseline`] does), for a local write
    /// made between two batches: the next report then tells of what the
    /// batch brought, not of what the device did itself. The record of
    /// conflicting arrivals is left as it is.
    pub fn advance_baseline(&mut self, before: &mut Baseline, changed: &[String]) -> Result<()> {
        let ids = serde_json::to_string(changed)?;
        let held = self.ids_among(&ids, "SELECT doc_id FROM docs")?;
        for id in changed {
            if held.contains(id) {
                before.docs.insert(id.clone());
            } else {
                before.docs.remove(id);
            }
        }
        // The events whose rosters may have moved: those that changed, and
        // those the changed contacts sign up to (a merge ranks them again).
        let events: BTreeSet<String> = self
            .conn
            .prepare_cached(
                "SELECT j.value FROM json_each(?1) j WHERE j.value LIKE 'e\\_%' ESCAPE '\\'
                 UNION SELECT s.event_id FROM json_each(?1) j JOIN signups s ON s.contact_id = j.value",
            )?
            .query_map([&ids], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        before
            .signups
            .retain(|(event, _), _| !events.contains(event));
        let mut rows = self
            .conn
            .prepare_cached("SELECT contact_id, status FROM signups WHERE event_id = ?1")?;
        for event in &events {
            for row in rows.query_map([event], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
                let (contact, status) = row?;
                before.signups.insert((event.clone(), contact), status);
            }
        }
        before.merged = self
            .conn
            .prepare_cached("SELECT id, merged_into FROM contacts WHERE merged_into IS NOT NULL")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(())
    }

    fn name_of(&self, contact_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT name FROM contacts WHERE id = ?1")?
            .query_row([contact_id], |r| r.get(0))
            .optional()?)
    }

    /// The reconciliation report of a sync that changed `changed` (the
    /// record ids the sync reported), against what the device held before.
    pub fn reconcile(&mut self, before: &Baseline, changed: &[String]) -> Result<Reconciliation> {
        let mut report = Reconciliation {
            conflicts_complete: true,
            duplicates_complete: true,
            ..Default::default()
        };
        let changed: BTreeSet<&String> = changed.iter().collect();
        // What the store holds of them, in a few statements whatever their
        // number (a first sync reports every record).
        let ids = serde_json::to_string(&changed)?;
        let held = self.ids_among(&ids, "SELECT doc_id FROM docs")?;
        let mut readable = self.ids_among(&ids, "SELECT id FROM contacts")?;
        readable.extend(self.ids_among(&ids, "SELECT id FROM events")?);
        readable.extend(self.ids_among(&ids, "SELECT id FROM feedback")?);
        let merged_now: HashMap<String, String> = self
            .conn
            .prepare_cached(
                "SELECT c.id, c.merged_into FROM json_each(?1) j
                 JOIN contacts c ON c.id = j.value WHERE c.merged_into IS NOT NULL",
            )?
            .query_map([&ids], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut present = Vec::new();
        for id in &changed {
            let Some(kind) = DocKind::of_id(id) else {
                continue;
            };
            if !held.contains(id.as_str()) {
                report.arrived.removed += 1;
                continue;
            }
            // A record that cannot be read as its kind has no index row
            // (see `index::reindex`); private ledgers have none anyway.
            if kind != DocKind::ContactPrivate && !readable.contains(id.as_str()) {
                report.unreadable.push((*id).clone());
                continue;
            }
            let new = !before.docs.contains(*id);
            let a = &mut report.arrived;
            match (kind, new) {
                (DocKind::Contact, true) => a.new_contacts += 1,
                (DocKind::Contact, false) => a.updated_contacts += 1,
                (DocKind::Event, true) => a.new_events += 1,
                (DocKind::Event, false) => a.updated_events += 1,
                (DocKind::Feedback, true) => a.new_feedback += 1,
                (DocKind::Feedback, false) => a.updated_feedback += 1,
                (DocKind::ContactPrivate, _) => a.ledgers += 1,
            }
            present.push(((*id).clone(), kind, new));
        }

        // Merges and unmerges.
        for (id, kind, _) in &present {
            if *kind != DocKind::Contact {
                continue;
            }
            let now = merged_now.get(id);
            let was = before.merged.get(id);
            let note = |s: &Store, kept: &str| -> Result<MergeNote> {
                Ok(MergeNote {
                    duplicate: id.clone(),
                    duplicate_name: s.name_of(id)?.unwrap_or_default(),
                    kept: kept.to_owned(),
                    kept_name: s.name_of(kept)?.unwrap_or_default(),
                })
            };
            match (was, now) {
                (None, Some(kept)) => report.merged.push(note(self, kept)?),
                (Some(kept), None) => report.unmerged.push(note(self, kept)?),
                _ => {}
            }
        }

        // Conflicting values: in the records whose indexing, as they
        // arrived, found some (`Store::conflicted`).
        for (id, kind, _) in &present {
            if !self.conflicted.contains(id) {
                continue;
            }
            for path in model::conflict_fields(*kind) {
                let values = self.field_conflicts(id, path)?;
                if values.len() > 1 {
                    let label = match kind {
                        DocKind::Contact => self.name_of(id)?.unwrap_or_default(),
                        _ => self.event(id)?.title,
                    };
                    report.conflicts.push(ConflictNote {
                        record_id: id.clone(),
                        label,
                        field: path.join("."),
                        values: values
                            .into_iter()
                            .map(|v| match v {
                                serde_json::Value::String(s) => s,
                                other => other.to_string(),
                            })
                            .collect(),
                    });
                }
            }
        }

        // Sign-ups that lost their seat.
        for (id, kind, _) in &present {
            if *kind != DocKind::Event {
                continue;
            }
            let event = self.event(id)?;
            let title = event.title.clone();
            // Sign-ups the public page made, new to this device.
            for (contact, by) in &event.signups.registered_by {
                if by != crate::registration::PAGE_SOURCE
                    || before.signups.contains_key(&(id.clone(), contact.clone()))
                {
                    continue;
                }
                let position: Option<Option<u32>> = self
                    .conn
                    .prepare_cached(
                        "SELECT waitlist_position FROM signups WHERE event_id = ?1 AND contact_id = ?2",
                    )?
                    .query_row([id.as_str(), contact.as_str()], |r| r.get(0))
                    .optional()?;
                report.registered_online.push(OnlineNote {
                    event_id: id.clone(),
                    event_title: title.clone(),
                    contact_id: contact.clone(),
                    name: self.name_of(&self.kept_contact_of(contact)?)?,
                    position: position.flatten(),
                });
            }
            for line in self.roster(id, Some(SignupStatus::Waitlisted))? {
                // The roster shows a merged duplicate's line as the kept
                // contact; either id may be the one recorded before.
                let held_seat = [line.contact_id.clone()]
                    .into_iter()
                    .chain(self.merged_duplicates_of(&line.contact_id)?)
                    .any(|c| {
                        before
                            .signups
                            .get(&(id.clone(), c))
                            .is_some_and(|s| s == SignupStatus::Registered.as_str())
                    });
                if held_seat {
                    report.moved_to_waitlist.push(WaitlistNote {
                        event_id: id.clone(),
                        event_title: title.clone(),
                        contact_id: line.contact_id,
                        name: line.name,
                        position: line.waitlist_position,
                    });
                }
            }
        }

        // New contacts that may be people already known.
        let new_contacts: Vec<&String> = present
            .iter()
            .filter(|(_, kind, new)| *kind == DocKind::Contact && *new)
            .map(|(id, _, _)| id)
            .collect();
        let new_contacts: HashSet<&str> = new_contacts.into_iter().map(String::as_str).collect();
        for mut pair in self.duplicates_involving(&new_contacts)? {
            // The contact known before first, the one that arrived second.
            if new_contacts.contains(pair.a.as_str()) && !new_contacts.contains(pair.b.as_str()) {
                std::mem::swap(&mut pair.a, &mut pair.b);
                std::mem::swap(&mut pair.a_name, &mut pair.b_name);
            }
            report.duplicate_candidates.push(pair);
        }
        Ok(report)
    }
}
