//! Read-only views of records for a coordinator's screen: the change
//! history of a document (when and by which device each change was made),
//! a contact's sign-ups across events, and the contacts merged into
//! others. Nothing here writes; everything but [`Store::change_history`]
//! reads only the index tables.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::Store;
use crate::error::{Error, Result};
use crate::model::{DocKind, Millis};
use crate::views::SignupStatus;

/// One Automerge change of a document, as a history list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// When the device that made it says it was made (its clock, ms).
    pub at: Millis,
    /// The device that made it: its id (32 hex digits), which is the
    /// change's Automerge actor. The shared genesis change of a private
    /// ledger is made by an actor derived from the contact id.
    pub device: String,
    /// The change's hash, in hex.
    pub hash: String,
    /// How many operations it holds (fields set, list items inserted…).
    pub operations: u64,
}

/// A contact's sign-up to one event, for the contact's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactSignup {
    /// The event (`e_…`).
    pub event_id: String,
    /// Its title, if this device holds the event.
    pub event_title: Option<String>,
    /// When it starts, if this device holds the event.
    pub event_starts_at: Option<Millis>,
    /// Whose sign-up it is: the contact, or a duplicate merged into it.
    pub contact_id: String,
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

/// A contact merged into another, for the list a merge can be undone from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedContact {
    /// The merged duplicate (`c_…`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The contact it was merged into.
    pub merged_into: String,
    /// That contact's name, if this device holds it.
    pub kept_name: Option<String>,
}

impl Store {
    /// Every change of a document this device holds, in causal order, with
    /// its time and the device that made it: who touched a record and when.
    pub fn change_history(&mut self, doc_id: &str) -> Result<Vec<ChangeRecord>> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let doc = self.doc_mut(doc_id, kind)?;
        Ok(doc
            .get_changes_meta(&[])
            .into_iter()
            .map(|c| ChangeRecord {
                at: c.timestamp,
                device: c.actor.to_hex_string(),
                hash: c.hash.to_string(),
                operations: (c.max_op + 1).saturating_sub(c.start_op),
            })
            .collect())
    }

    /// A contact's sign-ups across events, and those of the duplicates
    /// merged into it, by event start.
    pub fn signups_of_contact(&self, contact_id: &str) -> Result<Vec<ContactSignup>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.event_id, e.title, e.starts_at, s.contact_id, s.status, s.registered_at,
                    s.checked_in_at, s.walk_in, s.waitlist_position
             FROM signups s LEFT JOIN events e ON e.id = s.event_id
             WHERE s.contact_id = ?1
                OR s.contact_id IN (SELECT id FROM contacts WHERE merged_into = ?1)
             ORDER BY e.starts_at, s.event_id, s.contact_id",
        )?;
        let rows = stmt
            .query_map(params![contact_id], |r| {
                let status: String = r.get(4)?;
                Ok(ContactSignup {
                    event_id: r.get(0)?,
                    event_title: r.get(1)?,
                    event_starts_at: r.get(2)?,
                    contact_id: r.get(3)?,
                    status: SignupStatus::parse(&status).unwrap_or(SignupStatus::Registered),
                    registered_at: r.get(5)?,
                    checked_in_at: r.get(6)?,
                    walk_in: r.get(7)?,
                    waitlist_position: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Contacts merged into another, by name, `limit` from `offset`.
    pub fn merged_contacts(&self, limit: usize, offset: usize) -> Result<Vec<MergedContact>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.id, d.name, d.merged_into, k.name
             FROM contacts d LEFT JOIN contacts k ON k.id = d.merged_into
             WHERE d.merged_into IS NOT NULL
             ORDER BY d.sort_name, d.id LIMIT ?1 OFFSET ?2",
        )?;
        let rows = stmt
            .query_map(params![limit as i64, offset as i64], |r| {
                Ok(MergedContact {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    merged_into: r.get(2)?,
                    kept_name: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many contacts are merged into another.
    pub fn merged_contact_count(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM contacts WHERE merged_into IS NOT NULL",
            [],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use crate::{NewContact, NewEvent, SignupStatus, Store};

    #[test]
    fn history_signups_and_merged_contacts() {
        let mut s = Store::open_in_memory().unwrap();
        let new = |name: &str| NewContact::named(name);
        let ana = s.create_contact(&new("Ana Silva"), 1_000).unwrap();
        let dup = s.create_contact(&new("Ana Silva"), 2_000).unwrap();
        s.update_contact(&ana, 3_000, |c| {
            c.emails.push("ana@example.org".into());
            Ok(())
        })
        .unwrap();
        let history = s.change_history(&ana).unwrap();
        assert_eq!(
            history.iter().map(|c| c.at).collect::<Vec<_>>(),
            [1_000, 3_000]
        );
        assert!(history.iter().all(|c| c.device == s.device_id()));

        let gala = s
            .create_event(&NewEvent::new("Gala", 10_000, "", None), 4_000)
            .unwrap();
        s.sign_up(&gala, &dup, true, 5_000).unwrap();
        s.check_in(&gala, &dup, 6_000).unwrap();
        assert!(s.signups_of_contact(&ana).unwrap().is_empty());
        s.merge_contacts(&ana, &dup, 7_000).unwrap();
        let signups = s.signups_of_contact(&ana).unwrap();
        assert_eq!(signups.len(), 1);
        assert_eq!(signups[0].contact_id, dup);
        assert_eq!(signups[0].event_title.as_deref(), Some("Gala"));
        assert_eq!(signups[0].status, SignupStatus::CheckedIn);
        assert!(signups[0].walk_in);

        assert_eq!(s.merged_contact_count().unwrap(), 1);
        let merged = s.merged_contacts(10, 0).unwrap();
        assert_eq!(merged[0].id, dup);
        assert_eq!(merged[0].merged_into, ana);
        assert_eq!(merged[0].kept_name.as_deref(), Some("Ana Silva"));
        s.unmerge_contact(&dup, 8_000).unwrap();
        assert_eq!(s.merged_contact_count().unwrap(), 0);
        assert!(s.change_history("x_nonsense").is_err());
    }
}
