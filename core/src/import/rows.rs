//! What one row of a file says about a contact: read, checked as the store
//! checks, and applied to a contact without clearing anything.

use std::collections::HashSet;

use super::columns::{Column, Field};
use super::phone_key;
use crate::duplicates::{normalise_email, normalise_phone};
use crate::error::{Error, Result};
use crate::model::{Contact, DocKind, NewContact};
use crate::validate;

/// What one row says about a contact, checked and in canonical form. Empty
/// cells say nothing: applying a row never clears a field.
#[derive(Debug, Default, Clone)]
pub(crate) struct RowPatch {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) preferred_name: Option<String>,
    /// E.164 when the number can be read, else as typed.
    pub(crate) phones: Vec<String>,
    pub(crate) emails: Vec<String>,
    pub(crate) street: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) postal_code: Option<String>,
    pub(crate) country: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) household: Option<String>,
    pub(crate) organisation: Option<String>,
    pub(crate) external_id: Option<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) interests: Vec<String>,
    pub(crate) custom: Vec<(String, String)>,
    pub(crate) merged_into: Option<String>,
}

/// The items of a multi-valued cell: split on `;` if it has one (as
/// exports write them), else on `,`.
fn items(cell: &str) -> impl Iterator<Item = &str> {
    let sep = if cell.contains(';') { ';' } else { ',' };
    cell.split(sep).map(str::trim).filter(|s| !s.is_empty())
}

/// A contact with only a name, for rows that create one and for checks.
pub(crate) fn blank(name: &str) -> Result<Contact> {
    Contact::new(
        String::new(),
        &NewContact {
            name: name.to_owned(),
            ..Default::default()
        },
        "",
        0,
    )
}

impl RowPatch {
    /// Reads a row, checking each value as the store would. Returns the
    /// reason to skip the row otherwise, as the report prints it.
    pub(crate) fn parse(
        cells: &[String],
        columns: &[Column],
        region: &str,
    ) -> std::result::Result<RowPatch, String> {
        let why = |e: Error| e.to_string();
        let mut p = RowPatch::default();
        let (mut first, mut last) = (Vec::new(), Vec::new());
        for (cell, column) in cells.iter().zip(columns) {
            let Some(field) = &column.field else {
                continue;
            };
            let value = cell.trim();
            if value.is_empty() {
                continue;
            }
            let text = |name: &'static str| validate::short_text(name, value).map(Some);
            match field {
                Field::Id => {
                    if DocKind::of_id(value) != Some(DocKind::Contact) {
                        return Err(format!(
                            "invalid id: {value:?} is not a Muster contact id (c_ and 32 hex digits)"
                        ));
                    }
                    p.id = Some(value.to_owned());
                }
                Field::Name => p.name = Some(validate::name("name", value).map_err(why)?),
                Field::FirstName => first.push(value),
                Field::LastName => last.push(value),
                Field::PreferredName => {
                    p.preferred_name = Some(validate::name("preferred_name", value).map_err(why)?);
                }
                Field::Phone => {
                    for item in items(value) {
                        let typed = validate::phone(item).map_err(why)?;
                        let phone = normalise_phone(&typed, region).unwrap_or(typed);
                        let key = phone_key(&phone, region);
                        if !p.phones.iter().any(|q| phone_key(q, region) == key) {
                            p.phones.push(phone);
                        }
                    }
                }
                Field::Email => {
                    for item in items(value) {
                        let email = validate::email(item).map_err(why)?;
                        let key = normalise_email(&email);
                        if !p.emails.iter().any(|e| normalise_email(e) == key) {
                            p.emails.push(email);
                        }
                    }
                }
                Field::Street => p.street = text("street").map_err(why)?,
                Field::City => p.city = text("city").map_err(why)?,
                Field::Region => p.region = text("region").map_err(why)?,
                Field::PostalCode => p.postal_code = text("postal_code").map_err(why)?,
                Field::Country => p.country = text("country").map_err(why)?,
                Field::Language => p.language = text("preferred_language").map_err(why)?,
                Field::Household => p.household = text("household").map_err(why)?,
                Field::Organisation => p.organisation = text("organisation").map_err(why)?,
                Field::ExternalId => p.external_id = text("external_id").map_err(why)?,
                Field::Roles => p.roles.extend(items(value).map(str::to_lowercase)),
                Field::Tags => {
                    for item in items(value) {
                        p.tags.push(validate::key("tags", item).map_err(why)?);
                    }
                }
                Field::Interests => {
                    for item in items(value) {
                        p.interests
                            .push(validate::key("interests", item).map_err(why)?);
                    }
                }
                Field::CustomPairs => {
                    for item in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                        let (k, v) = item
                            .split_once('=')
                            .ok_or_else(|| format!("invalid custom: {item:?} is not KEY=VALUE"))?;
                        p.custom.push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                }
                Field::Custom(key) => p.custom.push((key.clone(), value.to_owned())),
                Field::MergedInto => p.merged_into = Some(value.to_owned()),
            }
        }
        if p.name.is_none() && !(first.is_empty() && last.is_empty()) {
            let full = first.into_iter().chain(last).collect::<Vec<_>>().join(" ");
            p.name = Some(validate::name("name", &full).map_err(why)?);
        }
        // Everything else the store checks (roles, sizes, keys): on a
        // contact holding only this row.
        let mut probe = blank(p.name.as_deref().unwrap_or("-")).map_err(why)?;
        p.apply(&mut probe, region);
        probe.normalise().map_err(why)?;
        Ok(p)
    }

    /// Writes what the row says into `c`: the fields it gives replace the
    /// contact's, the phones, emails, roles, tags, interests and custom
    /// fields it gives are added (a phone or an email the contact already
    /// has, in any form, is not added again).
    pub(crate) fn apply(&self, c: &mut Contact, region: &str) {
        if let Some(v) = &self.name {
            c.name.clone_from(v);
        }
        if let Some(v) = &self.preferred_name {
            c.preferred_name = Some(v.clone());
        }
        let mut phones: HashSet<String> = c.phones.iter().map(|p| phone_key(p, region)).collect();
        for p in &self.phones {
            if phones.insert(phone_key(p, region)) {
                c.phones.push(p.clone());
            }
        }
        let mut emails: HashSet<String> = c.emails.iter().map(|e| normalise_email(e)).collect();
        for e in &self.emails {
            if emails.insert(normalise_email(e)) {
                c.emails.push(e.clone());
            }
        }
        for (field, value) in [
            (&mut c.address.street, &self.street),
            (&mut c.address.city, &self.city),
            (&mut c.address.region, &self.region),
            (&mut c.address.postal_code, &self.postal_code),
            (&mut c.address.country, &self.country),
        ] {
            if let Some(v) = value {
                field.clone_from(v);
            }
        }
        for (field, value) in [
            (&mut c.preferred_language, &self.language),
            (&mut c.household, &self.household),
            (&mut c.organisation, &self.organisation),
            (&mut c.external_id, &self.external_id),
        ] {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        for (set, items) in [
            (&mut c.roles, &self.roles),
            (&mut c.tags, &self.tags),
            (&mut c.interests, &self.interests),
        ] {
            for item in items {
                set.insert(item.clone(), true);
            }
        }
        for (k, v) in &self.custom {
            c.custom.insert(k.clone(), v.clone());
        }
    }
}
