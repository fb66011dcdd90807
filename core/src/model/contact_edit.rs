//! The one rule for editing a contact's fields, which every caller's edits
//! follow: the CLI's `contact edit`, each row of an import, the phone
//! bindings' `updateContact`.

use std::collections::{HashMap, HashSet};

use super::Contact;
use crate::duplicates::{normalise_email, phone_key};

/// An edit of a contact. A field left `None` (or a list left empty) stays
/// as it is; a list given replaces the list; `add_*` adds what the contact
/// does not have yet (a phone or an email it has in any form counts as
/// had) and `remove_*` takes items away; a blank text clears an optional
/// field or an address line (and a blank name or phone is refused by the
/// contact's own checks). Only the fields the edit changes become part of
/// the change, so concurrent edits of other fields on other devices stay.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ContactEdit {
    /// New full name.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub name: Option<String>,
    /// New preferred name ("" clears it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub preferred_name: Option<String>,
    /// New phone numbers, replacing the old.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub phones: Option<Vec<String>>,
    /// Phone numbers to add.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub add_phones: Vec<String>,
    /// New email addresses, replacing the old.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub emails: Option<Vec<String>>,
    /// Email addresses to add.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub add_emails: Vec<String>,
    /// Street and number ("" clears it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub street: Option<String>,
    /// Town or city ("" clears it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub city: Option<String>,
    /// Region, state or province ("" clears it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub region: Option<String>,
    /// Postal code ("" clears it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub postal_code: Option<String>,
    /// Country ("" clears it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub country: Option<String>,
    /// New preferred language ("" clears it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub preferred_language: Option<String>,
    /// New household ("" clears it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub household: Option<String>,
    /// New organisation ("" clears it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub organisation: Option<String>,
    /// New id in another system ("" clears it).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub external_id: Option<String>,
    /// New roles, replacing the old.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub roles: Option<Vec<String>>,
    /// Roles to add.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub add_roles: Vec<String>,
    /// Roles to take away.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub remove_roles: Vec<String>,
    /// New tags, replacing the old.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub tags: Option<Vec<String>>,
    /// Tags to add.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub add_tags: Vec<String>,
    /// Tags to take away.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub remove_tags: Vec<String>,
    /// Interests to add.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub add_interests: Vec<String>,
    /// The organisation's own fields to set.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub custom: HashMap<String, String>,
}

/// `Some(text)`, or `None` for a blank text.
fn optional(text: &str) -> Option<String> {
    (!text.trim().is_empty()).then(|| text.to_owned())
}

impl ContactEdit {
    /// Writes the edit into `c`; phones are compared as numbers of
    /// `phone_region` when they have no country code. The caller checks
    /// the result ([`Contact::normalise`]).
    pub fn apply(&self, c: &mut Contact, phone_region: &str) {
        if let Some(v) = &self.name {
            c.name.clone_from(v);
        }
        for (field, value) in [
            (&mut c.preferred_name, &self.preferred_name),
            (&mut c.preferred_language, &self.preferred_language),
            (&mut c.household, &self.household),
            (&mut c.organisation, &self.organisation),
            (&mut c.external_id, &self.external_id),
        ] {
            if let Some(v) = value {
                *field = optional(v);
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
        add_distinct(
            &mut c.phones,
            self.phones.as_deref(),
            &self.add_phones,
            |p| phone_key(p, phone_region),
        );
        add_distinct(
            &mut c.emails,
            self.emails.as_deref(),
            &self.add_emails,
            normalise_email,
        );
        for (set, replace, add, remove) in [
            (
                &mut c.roles,
                &self.roles,
                &self.add_roles,
                &self.remove_roles,
            ),
            (&mut c.tags, &self.tags, &self.add_tags, &self.remove_tags),
            (&mut c.interests, &None, &self.add_interests, &Vec::new()),
        ] {
            if let Some(items) = replace {
                *set = items.iter().map(|i| (i.clone(), true)).collect();
            }
            for item in add {
                set.insert(item.clone(), true);
            }
            for item in remove {
                set.remove(item);
            }
        }
        for (k, v) in &self.custom {
            c.custom.insert(k.clone(), v.clone());
        }
    }
}

/// Replaces `list` with `replace` if given, then adds the items of `add`
/// whose key is not in it yet.
fn add_distinct(
    list: &mut Vec<String>,
    replace: Option<&[String]>,
    add: &[String],
    key: impl Fn(&str) -> String,
) {
    if let Some(items) = replace {
        *list = items.to_vec();
    }
    let mut seen: HashSet<String> = list.iter().map(|i| key(i)).collect();
    for item in add {
        if seen.insert(key(item)) {
            list.push(item.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NewContact;

    fn contact() -> Contact {
        let new = NewContact {
            name: "Ana Silva".into(),
            phones: vec!["07700 900123".into()],
            emails: vec!["ana@example.org".into()],
            roles: vec!["donor".into()],
            ..Default::default()
        };
        let mut c = Contact::new("c_1".into(), &new, "desk", 0).unwrap();
        c.organisation = Some("Food bank".into());
        c.address.city = "Porto".into();
        c
    }

    #[test]
    fn a_blank_text_clears_and_a_missing_one_keeps() {
        let mut c = contact();
        let edit = ContactEdit {
            organisation: Some(" ".into()),
            city: Some(String::new()),
            preferred_name: Some("Aninha".into()),
            ..Default::default()
        };
        edit.apply(&mut c, "GB");
        c.normalise().unwrap();
        assert_eq!(c.organisation, None);
        assert_eq!(c.address.city, "");
        assert_eq!(c.preferred_name.as_deref(), Some("Aninha"));
        assert_eq!(c.name, "Ana Silva");
        assert_eq!(c.phones, ["07700 900123"]);
    }

    #[test]
    fn adding_keeps_what_is_there_in_any_form_and_replacing_replaces() {
        let mut c = contact();
        let edit = ContactEdit {
            add_phones: vec!["+44 7700 900123".into(), "+44 7700 900456".into()],
            add_emails: vec!["ANA@example.org ".into()],
            add_roles: vec!["volunteer".into()],
            remove_roles: vec!["donor".into()],
            add_tags: vec!["choir".into()],
            ..Default::default()
        };
        edit.apply(&mut c, "GB");
        assert_eq!(c.phones, ["07700 900123", "+44 7700 900456"]);
        assert_eq!(c.emails, ["ana@example.org"]);
        assert_eq!(c.roles.keys().collect::<Vec<_>>(), ["volunteer"]);
        assert_eq!(c.tags.keys().collect::<Vec<_>>(), ["choir"]);
        let replace = ContactEdit {
            phones: Some(vec!["+1 202 555 0100".into()]),
            roles: Some(vec!["staff".into()]),
            ..Default::default()
        };
        replace.apply(&mut c, "GB");
        assert_eq!(c.phones, ["+1 202 555 0100"]);
        assert_eq!(c.roles.keys().collect::<Vec<_>>(), ["staff"]);
    }
}
