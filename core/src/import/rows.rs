//! What one row of a file says about a contact: read, checked as the store
//! checks, and applied to a contact without clearing anything.

use super::columns::{Column, Field};
use crate::duplicates::{normalise_email, normalise_phone, phone_key};
use crate::error::{Error, Result};
use crate::model::{Contact, ContactEdit, DocKind, NewContact};
use crate::validate;

/// What one row says about a contact, checked and in canonical form. Empty
/// cells say nothing: applying a row never clears a field.
#[derive(Debug, Default, Clone)]
pub(crate) struct RowPatch {
    /// The contact's Muster id, if the file gives it.
    pub(crate) id: Option<String>,
    /// What the row changes, by the one rule of [`ContactEdit`]: phones
    /// (E.164 when they can be read), emails, roles, tags and interests
    /// are added; the fields given replace the contact's.
    pub(crate) edit: ContactEdit,
    /// Set when the row is an exported merged duplicate (skipped).
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
    Contact::new(String::new(), &NewContact::named(name), "", 0)
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
        let mut phone_keys: Vec<String> = Vec::new();
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
                Field::Name => p.edit.name = Some(validate::name("name", value).map_err(why)?),
                Field::FirstName => first.push(value),
                Field::LastName => last.push(value),
                Field::PreferredName => {
                    p.edit.preferred_name =
                        Some(validate::name("preferred_name", value).map_err(why)?);
                }
                Field::Phone => {
                    for item in items(value) {
                        let typed = validate::phone(item).map_err(why)?;
                        // Read as a number once: its E.164 form is its key
                        // too (`phone_key`), and reading a number is most
                        // of an import's row checks.
                        let (phone, key) = match normalise_phone(&typed, region) {
                            Some(e164) => (e164.clone(), e164),
                            None => {
                                let key = phone_key(&typed, region);
                                (typed, key)
                            }
                        };
                        if !phone_keys.contains(&key) {
                            phone_keys.push(key);
                            p.edit.add_phones.push(phone);
                        }
                    }
                }
                Field::Email => {
                    for item in items(value) {
                        let email = validate::email(item).map_err(why)?;
                        let key = normalise_email(&email);
                        if !p.edit.add_emails.iter().any(|e| normalise_email(e) == key) {
                            p.edit.add_emails.push(email);
                        }
                    }
                }
                Field::Street => p.edit.street = text("street").map_err(why)?,
                Field::City => p.edit.city = text("city").map_err(why)?,
                Field::Region => p.edit.region = text("region").map_err(why)?,
                Field::PostalCode => p.edit.postal_code = text("postal_code").map_err(why)?,
                Field::Country => p.edit.country = text("country").map_err(why)?,
                Field::Language => {
                    p.edit.preferred_language = text("preferred_language").map_err(why)?
                }
                Field::Household => p.edit.household = text("household").map_err(why)?,
                Field::Organisation => p.edit.organisation = text("organisation").map_err(why)?,
                Field::ExternalId => p.edit.external_id = text("external_id").map_err(why)?,
                Field::Roles => p.edit.add_roles.extend(items(value).map(str::to_lowercase)),
                Field::Tags => {
                    for item in items(value) {
                        p.edit
                            .add_tags
                            .push(validate::key("tags", item).map_err(why)?);
                    }
                }
                Field::Interests => {
                    for item in items(value) {
                        p.edit
                            .add_interests
                            .push(validate::key("interests", item).map_err(why)?);
                    }
                }
                Field::CustomPairs => {
                    for item in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                        let (k, v) = item
                            .split_once('=')
                            .ok_or_else(|| format!("invalid custom: {item:?} is not KEY=VALUE"))?;
                        p.edit
                            .custom
                            .insert(k.trim().to_owned(), v.trim().to_owned());
                    }
                }
                Field::Custom(key) => {
                    p.edit.custom.insert(key.clone(), value.to_owned());
                }
                Field::MergedInto => p.merged_into = Some(value.to_owned()),
            }
        }
        if p.edit.name.is_none() && !(first.is_empty() && last.is_empty()) {
            let full = first.into_iter().chain(last).collect::<Vec<_>>().join(" ");
            p.edit.name = Some(validate::name("name", &full).map_err(why)?);
        }
        // Everything else the store checks (roles, sizes, keys): on a
        // contact holding only this row.
        let mut probe = blank(p.edit.name.as_deref().unwrap_or("-")).map_err(why)?;
        p.apply(&mut probe, region);
        probe.normalise().map_err(why)?;
        Ok(p)
    }

    /// Writes what the row says into `c` ([`ContactEdit::apply`]): the
    /// fields it gives replace the contact's, the phones, emails, roles,
    /// tags, interests and custom fields it gives are added (a phone or an
    /// email the contact already has, in any form, is not added again).
    pub(crate) fn apply(&self, c: &mut Contact, region: &str) {
        self.edit.apply(c, region);
    }
}
