//! A person the organisation knows: attendee, volunteer, donor, beneficiary.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile, Text};
use serde::{Deserialize, Serialize};

use super::Millis;
use crate::error::{Error, Result};
use crate::validate;

/// The roles a contact may hold. Roles are stored as a set of these names.
pub const ROLES: [&str; 5] = ["donor", "volunteer", "beneficiary", "staff", "other"];

/// A contact record, as stored in its Automerge document.
///
/// Sets (roles, tags, interests) are maps from the item to `true`. `notes` is
/// collaborative text: two devices typing into it concurrently keep both
/// insertions. `custom` holds the organisation's own fields.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct Contact {
    /// The document id (`c_…`).
    pub id: String,
    /// Full name as the person gives it.
    pub name: String,
    /// What the person likes to be called, if not their name.
    pub preferred_name: Option<String>,
    /// Phone numbers as typed (validated).
    pub phones: Vec<String>,
    /// Email addresses (validated).
    pub emails: Vec<String>,
    /// Postal address.
    pub address: Address,
    /// Preferred language (a BCP 47 tag such as `es` or `pt-BR`).
    pub preferred_language: Option<String>,
    /// Roles held (see [`ROLES`]).
    pub roles: BTreeMap<String, bool>,
    /// Free tags.
    pub tags: BTreeMap<String, bool>,
    /// Interests, used to choose invitations.
    pub interests: BTreeMap<String, bool>,
    /// Consent to be contacted and to have data kept.
    pub consent: Consent,
    /// The household this person belongs to (an id shared by its members).
    pub household: Option<String>,
    /// The organisation this person belongs to or represents.
    pub organisation: Option<String>,
    /// An id in another system (for imports).
    pub external_id: Option<String>,
    /// The organisation's own fields.
    pub custom: BTreeMap<String, String>,
    /// Notes, edited as collaborative text.
    pub notes: Text,
    /// Set when this contact was found to duplicate another: the kept one.
    /// Clearing it (an unmerge) restores the contact as it was.
    pub merged_into: Option<String>,
    /// Contacts a coordinator decided are not the same person as this one
    /// (recorded on both), so they are never proposed as duplicates again.
    /// Missing in records made before duplicates existed.
    #[autosurgeon(missing = "BTreeMap::new")]
    pub not_duplicates: BTreeMap<String, bool>,
    /// The device or person that created the record.
    pub created_by: String,
    /// When the record was created.
    pub created_at: Millis,
}

/// A postal address. Every field may be empty.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Hash, Reconcile, Hydrate, Serialize, Deserialize,
)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Address {
    /// Street and number.
    pub street: String,
    /// Town or city.
    pub city: String,
    /// Region, state or province.
    pub region: String,
    /// Postal code.
    pub postal_code: String,
    /// Country (ISO 3166 code or name).
    pub country: String,
}

/// Consent as recorded, with who recorded it, when and how.
#[derive(Debug, Clone, Default, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Consent {
    /// Whether the person consented.
    pub given: bool,
    /// The channels consented to (`email`, `sms`, `phone`, `post`…).
    pub channels: BTreeMap<String, bool>,
    /// When consent was recorded.
    pub recorded_at: Option<Millis>,
    /// How it was obtained (`paper form`, `verbal`, `web`…).
    pub method: Option<String>,
    /// Who recorded it.
    pub recorded_by: Option<String>,
}

/// Consent as a person gives it (at the desk, on a form, by phone). The
/// store records it with the time and the device that recorded it
/// ([`crate::Store::record_consent`]), so no caller stamps those itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NewConsent {
    /// Whether the person consented.
    pub given: bool,
    /// The channels consented to (`email`, `sms`, `phone`, `post`…).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub channels: Vec<String>,
    /// How it was obtained (`paper form`, `verbal`, `web form`…).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub method: Option<String>,
}

impl NewConsent {
    /// The consent as recorded at `now` by `device`.
    pub(crate) fn recorded(&self, now: Millis, device: &str) -> Consent {
        Consent {
            given: self.given,
            channels: self.channels.iter().map(|c| (c.clone(), true)).collect(),
            recorded_at: Some(now),
            method: self.method.clone(),
            recorded_by: Some(device.to_owned()),
        }
    }
}

/// What a person types to register a new contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NewContact {
    /// Full name (required).
    pub name: String,
    /// Phone numbers.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub phones: Vec<String>,
    /// Email addresses.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub emails: Vec<String>,
    /// Roles (see [`ROLES`]).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub roles: Vec<String>,
    /// Tags.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub tags: Vec<String>,
    /// Preferred language.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub preferred_language: Option<String>,
    /// An id in another system.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub external_id: Option<String>,
}

impl NewContact {
    /// A new contact with only a name.
    pub fn named(name: impl Into<String>) -> NewContact {
        NewContact {
            name: name.into(),
            ..Default::default()
        }
    }
}

impl Contact {
    /// A contact built from what was typed, validated.
    pub fn new(id: String, new: &NewContact, created_by: &str, now: Millis) -> Result<Contact> {
        let mut contact = Contact {
            id,
            name: new.name.clone(),
            preferred_name: None,
            phones: new.phones.clone(),
            emails: new.emails.clone(),
            address: Address::default(),
            preferred_language: new.preferred_language.clone(),
            roles: new.roles.iter().map(|r| (r.clone(), true)).collect(),
            tags: new.tags.iter().map(|t| (t.clone(), true)).collect(),
            interests: BTreeMap::new(),
            consent: Consent::default(),
            household: None,
            organisation: None,
            external_id: new.external_id.clone(),
            custom: BTreeMap::new(),
            notes: Text::with_value(""),
            merged_into: None,
            not_duplicates: BTreeMap::new(),
            created_by: created_by.to_owned(),
            created_at: now,
        };
        contact.normalise()?;
        Ok(contact)
    }

    /// Checks every field against the rules of [`crate::validate`] and puts
    /// each in its canonical form (trimmed, email domains lower-cased).
    /// Called before every write.
    pub fn normalise(&mut self) -> Result<()> {
        self.name = validate::name("name", &self.name)?;
        if let Some(p) = &self.preferred_name {
            self.preferred_name = Some(validate::name("preferred_name", p)?);
        }
        validate::entries("phones", self.phones.len())?;
        self.phones = self
            .phones
            .iter()
            .map(|p| validate::phone(p))
            .collect::<Result<_>>()?;
        validate::entries("emails", self.emails.len())?;
        self.emails = self
            .emails
            .iter()
            .map(|e| validate::email(e))
            .collect::<Result<_>>()?;
        for (field, value) in [
            ("street", &mut self.address.street),
            ("city", &mut self.address.city),
            ("region", &mut self.address.region),
            ("postal_code", &mut self.address.postal_code),
            ("country", &mut self.address.country),
        ] {
            *value = validate::short_text(field, value)?;
        }
        for (field, value) in [
            ("preferred_language", &mut self.preferred_language),
            ("household", &mut self.household),
            ("organisation", &mut self.organisation),
            ("external_id", &mut self.external_id),
            ("consent_method", &mut self.consent.method),
        ] {
            if let Some(v) = value {
                *v = validate::short_text(field, v)?;
            }
        }
        for role in self.roles.keys() {
            if !ROLES.contains(&role.as_str()) {
                return Err(Error::invalid(
                    "role",
                    format!("{role:?} is not one of {}", ROLES.join(", ")),
                ));
            }
        }
        for (field, set) in [
            ("tags", &mut self.tags),
            ("interests", &mut self.interests),
            ("consent_channels", &mut self.consent.channels),
        ] {
            validate::entries(field, set.len())?;
            *set = set
                .iter()
                .map(|(k, v)| Ok((validate::key(field, k)?, *v)))
                .collect::<Result<_>>()?;
        }
        validate::entries("custom", self.custom.len())?;
        for (k, v) in &self.custom {
            validate::key("custom", k)?;
            validate::short_text("custom", v)?;
        }
        validate::long_text("notes", self.notes.as_str())?;
        Ok(())
    }

    /// The name to show: the preferred name if there is one.
    pub fn display_name(&self) -> &str {
        self.preferred_name.as_deref().unwrap_or(&self.name)
    }

    /// The roles held, in name order.
    pub fn role_list(&self) -> Vec<&str> {
        set_items(&self.roles)
    }

    /// The tags, in name order.
    pub fn tag_list(&self) -> Vec<&str> {
        set_items(&self.tags)
    }
}

/// The members of a set (a map to `true`), in name order.
pub(crate) fn set_items(set: &BTreeMap<String, bool>) -> Vec<&str> {
    set.iter()
        .filter(|(_, present)| **present)
        .map(|(k, _)| k.as_str())
        .collect()
}

/// The key under which a contact records, in its `not_duplicates`, that
/// it is not the same person as `other`: a one-way digest of `other`'s id
/// (`nd_` and 32 hex digits), not the id itself. Devices compare keys, so
/// every device still honours the decision; but a volunteer's phone that
/// may see this contact and not the other never learns the other's id.
/// Records written before this kept the id itself; readers accept both
/// ([`not_duplicate_key_of_entry`]).
pub fn not_duplicate_key(other: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"muster not-duplicate\0")
        .chain_update(other.as_bytes())
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("nd_{hex}")
}

/// The key of one entry of `not_duplicates` as stored: already a key, or
/// (in records written before keys) a contact id, turned into its key.
pub fn not_duplicate_key_of_entry(entry: &str) -> String {
    if super::DocKind::of_id(entry) == Some(super::DocKind::Contact) {
        not_duplicate_key(entry)
    } else {
        entry.to_owned()
    }
}
