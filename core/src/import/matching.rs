//! Which contact each row is about: an existing contact (by id, external
//! id, email, then phone, following merges by the one rule of
//! [`crate::merges`]), an earlier row of the same file, or a new contact.

use std::collections::HashMap;

use super::rows::RowPatch;
use super::{Progress, Stage};
use crate::duplicates::{normalise_email, phone_key};
use crate::error::{Error, Result};
use crate::store::Store;

/// Where a key (an external id, an email, a phone) leads.
#[derive(Debug, Clone)]
enum Slot {
    /// An existing contact (maybe a merged duplicate: resolved when used).
    Contact(String),
    /// A contact this import plans: an index into the targets.
    Planned(usize),
}

/// One contact the import writes to: an existing one, or a new one, and the
/// rows about it in file order.
#[derive(Debug)]
pub(crate) struct Target {
    /// The existing contact (`None`: a contact to create).
    pub(crate) contact: Option<String>,
    pub(crate) rows: Vec<usize>,
}

/// The keys of every contact of the store and of every row read so far.
pub(crate) struct Matcher {
    region: String,
    /// Every contact of the store and the contact it counts as, if merged.
    merged: HashMap<String, Option<String>>,
    by_external: HashMap<String, Slot>,
    by_email: HashMap<String, Slot>,
    by_phone: HashMap<String, Slot>,
    /// Existing contacts already planned, by id.
    planned: HashMap<String, usize>,
    pub(crate) targets: Vec<Target>,
}

impl Matcher {
    /// The keys of the store's contacts. A merged duplicate is a match
    /// target only for keys no kept contact has, and then leads to the
    /// contact it was merged into.
    pub(crate) fn load(
        store: &Store,
        region: &str,
        progress: &mut dyn Progress,
    ) -> Result<Matcher> {
        progress.stage(Stage::Matching, store.contact_count()?.max(0) as u64);
        let mut seen = 0;
        let mut m = Matcher {
            region: region.to_owned(),
            merged: HashMap::new(),
            by_external: HashMap::new(),
            by_email: HashMap::new(),
            by_phone: HashMap::new(),
            planned: HashMap::new(),
            targets: Vec::new(),
        };
        m.merged = store
            .contact_names()?
            .into_iter()
            .map(|(id, (_, kept))| (id, kept))
            .collect();
        let unreadable = store.for_each_contact(|chunk| {
            seen += chunk.len() as u64;
            progress.advance(seen);
            for c in chunk {
                let kept = !matches!(m.merged.get(&c.id), Some(Some(_)));
                let id = c.id.clone();
                let keys = [
                    (&mut m.by_external, c.external_id.iter().cloned().collect()),
                    (
                        &mut m.by_email,
                        c.emails.iter().map(|e| normalise_email(e)).collect(),
                    ),
                    (
                        &mut m.by_phone,
                        c.phones
                            .iter()
                            .map(|p| phone_key(p, region))
                            .collect::<Vec<_>>(),
                    ),
                ];
                for (map, keys) in keys {
                    for key in keys {
                        match map.get(&key) {
                            None => {
                                map.insert(key, Slot::Contact(id.clone()));
                            }
                            Some(Slot::Contact(other))
                                if kept && m.merged.get(other).is_some_and(Option::is_some) =>
                            {
                                map.insert(key, Slot::Contact(id.clone()));
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
            Ok::<_, Error>(())
        })?;
        if unreadable > 0 {
            progress.warn(&format!(
                "{unreadable} contacts of the store could not be read (written by a newer Muster?); rows are not matched against them"
            ));
        }
        Ok(m)
    }

    /// The contact that stands for `id`: itself, or the contact it counts
    /// as (the store's index follows merges by the one rule of
    /// `muster_core::merges`).
    fn resolve(&self, id: &str) -> std::result::Result<String, String> {
        match self.merged.get(id) {
            Some(None) => Ok(id.to_owned()),
            Some(Some(kept)) if self.merged.contains_key(kept) => Ok(kept.clone()),
            Some(Some(kept)) => Err(format!(
                "matches {id}, which was merged into {kept}, a contact not on this device"
            )),
            None => Err(format!("matches {id}, a contact not on this device")),
        }
    }

    /// The target of a row: the contact its id, external id, email or phone
    /// leads to (in that order), else a new contact. Returns the target and
    /// the key that matched, or the reason to skip the row.
    pub(crate) fn place(
        &mut self,
        patch: &RowPatch,
        row: usize,
    ) -> std::result::Result<(usize, Option<&'static str>), String> {
        if let Some(into) = &patch.merged_into {
            return Err(format!(
                "a merged duplicate (merged into {into}): not imported"
            ));
        }
        let keyed = |slot: Option<&Slot>, by: &'static str| slot.map(|s| (s.clone(), by));
        let edit = &patch.edit;
        let found = patch
            .id
            .as_ref()
            .filter(|id| self.merged.contains_key(*id))
            .map(|id| (Slot::Contact(id.clone()), "id"))
            .or_else(|| {
                let slot = edit
                    .external_id
                    .as_ref()
                    .and_then(|x| self.by_external.get(x));
                keyed(slot, "external_id")
            })
            .or_else(|| {
                let mut emails = edit.add_emails.iter();
                keyed(
                    emails.find_map(|e| self.by_email.get(&normalise_email(e))),
                    "email",
                )
            })
            .or_else(|| {
                let mut phones = edit.add_phones.iter();
                let region = &self.region;
                keyed(
                    phones.find_map(|p| self.by_phone.get(&phone_key(p, region))),
                    "phone",
                )
            });
        let (target, matched_by) = match found {
            Some((Slot::Planned(t), by)) => (t, Some(by)),
            Some((Slot::Contact(id), by)) => {
                let kept = self.resolve(&id)?;
                let t = match self.planned.get(&kept) {
                    Some(&t) => t,
                    None => {
                        self.targets.push(Target {
                            contact: Some(kept.clone()),
                            rows: Vec::new(),
                        });
                        self.planned.insert(kept, self.targets.len() - 1);
                        self.targets.len() - 1
                    }
                };
                (t, Some(by))
            }
            None => {
                if patch.edit.name.is_none() {
                    return Err("missing name".to_owned());
                }
                self.targets.push(Target {
                    contact: None,
                    rows: Vec::new(),
                });
                (self.targets.len() - 1, None)
            }
        };
        self.targets[target].rows.push(row);
        // Later rows with the same keys are about the same person.
        if let Some(x) = &patch.edit.external_id {
            self.by_external
                .entry(x.clone())
                .or_insert(Slot::Planned(target));
        }
        for e in &patch.edit.add_emails {
            self.by_email
                .entry(normalise_email(e))
                .or_insert(Slot::Planned(target));
        }
        for p in &patch.edit.add_phones {
            self.by_phone
                .entry(phone_key(p, &self.region))
                .or_insert(Slot::Planned(target));
        }
        Ok((target, matched_by))
    }
}
