//! What only coordinators may see of a person: money, pledges, sensitive
//! notes and the log of interactions. One document per contact, with an id
//! derived from the contact's ([`super::private_id_of`]).

use autosurgeon::{Hydrate, Reconcile, Text};
use serde::{Deserialize, Serialize};

use super::Millis;
use crate::error::{Error, Result};
use crate::validate;

/// The private ledger of one contact.
///
/// Lists only grow by appending entries with their own ids, so entries added
/// on two devices are both kept.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct ContactPrivate {
    /// The contact this ledger belongs to (`c_…`).
    pub contact_id: String,
    /// Gifts received.
    pub donations: Vec<Donation>,
    /// Promises of future gifts.
    pub pledges: Vec<Pledge>,
    /// Notes that must not reach a field volunteer's phone.
    pub sensitive_notes: Text,
    /// Calls, visits, emails and meetings, in the order recorded.
    pub interactions: Vec<Interaction>,
}

/// One gift.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Donation {
    /// Unique id of the entry.
    pub id: String,
    /// Amount in the currency's minor unit (cents), to avoid rounding.
    pub amount_minor: i64,
    /// ISO 4217 currency code, upper case (`EUR`, `USD`).
    pub currency: String,
    /// When the gift was received.
    pub date: Millis,
    /// How it was given (`cash`, `card`, `bank transfer`, `cheque`, `in kind`…).
    pub method: String,
    /// Free note (campaign, fund…).
    pub note: Option<String>,
    /// Who recorded it.
    pub recorded_by: String,
}

/// A promise of one or more future gifts.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Pledge {
    /// Unique id of the entry.
    pub id: String,
    /// Amount per instalment in the currency's minor unit.
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// `once`, `monthly`, `quarterly` or `yearly`.
    pub frequency: String,
    /// First instalment.
    pub starts: Millis,
    /// Last instalment, if bounded.
    pub ends: Option<Millis>,
    /// Who recorded it.
    pub recorded_by: String,
}

/// A call, visit, email or meeting with the person.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Interaction {
    /// Unique id of the entry.
    pub id: String,
    /// `call`, `visit`, `email`, `meeting`, `message` or `other`.
    pub channel: String,
    /// When it happened.
    pub at: Millis,
    /// Who had it.
    pub by: String,
    /// What was said or done.
    pub summary: String,
}

/// Pledge frequencies accepted.
pub const FREQUENCIES: [&str; 4] = ["once", "monthly", "quarterly", "yearly"];
/// Interaction channels accepted.
pub const CHANNELS: [&str; 6] = ["call", "visit", "email", "meeting", "message", "other"];

impl ContactPrivate {
    /// The empty ledger of a contact: the content of the genesis change.
    pub fn empty(contact_id: &str) -> ContactPrivate {
        ContactPrivate {
            contact_id: contact_id.to_owned(),
            donations: Vec::new(),
            pledges: Vec::new(),
            sensitive_notes: Text::with_value(""),
            interactions: Vec::new(),
        }
    }

    /// Total given per currency, in minor units, currencies in order.
    pub fn totals(&self) -> Vec<(String, i64)> {
        let mut totals = std::collections::BTreeMap::<String, i64>::new();
        for d in &self.donations {
            *totals.entry(d.currency.clone()).or_default() += d.amount_minor;
        }
        totals.into_iter().collect()
    }
}

/// An entry of a contact's private ledger ([`Donation`], [`Pledge`],
/// [`Interaction`]) as [`crate::Store::add_to_ledger`] files it: the store
/// gives it its id and, unless it names someone, this device as who
/// recorded it; then checks and appends it. Sealed: only these three are
/// ledger entries.
pub trait LedgerEntry: sealed::Sealed {
    /// The entry's id and who recorded it.
    fn id_and_recorder(&mut self) -> (&mut String, &mut String);
    /// Checks and normalises the entry.
    fn validate(&mut self) -> Result<()>;
    /// Appends the entry to its list in `ledger`.
    fn file(self, ledger: &mut ContactPrivate);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Donation {}
    impl Sealed for super::Pledge {}
    impl Sealed for super::Interaction {}
}

/// Checks the amount, currency and method.
impl LedgerEntry for Donation {
    fn id_and_recorder(&mut self) -> (&mut String, &mut String) {
        (&mut self.id, &mut self.recorded_by)
    }
    fn validate(&mut self) -> Result<()> {
        self.currency = amount(self.amount_minor, &self.currency)?;
        self.method = validate::short_text("method", &self.method)?;
        if self.method.is_empty() {
            return Err(Error::invalid("method", "must say how the gift was given"));
        }
        if let Some(note) = &self.note {
            self.note = Some(validate::short_text("note", note)?);
        }
        Ok(())
    }
    fn file(self, ledger: &mut ContactPrivate) {
        ledger.donations.push(self);
    }
}

/// Checks the amount, currency, frequency and dates.
impl LedgerEntry for Pledge {
    fn id_and_recorder(&mut self) -> (&mut String, &mut String) {
        (&mut self.id, &mut self.recorded_by)
    }
    fn validate(&mut self) -> Result<()> {
        self.currency = amount(self.amount_minor, &self.currency)?;
        if !FREQUENCIES.contains(&self.frequency.as_str()) {
            return Err(Error::invalid(
                "frequency",
                format!(
                    "{:?} is not one of {}",
                    self.frequency,
                    FREQUENCIES.join(", ")
                ),
            ));
        }
        if self.ends.is_some_and(|end| end < self.starts) {
            return Err(Error::invalid("ends", "is before the pledge starts"));
        }
        Ok(())
    }
    fn file(self, ledger: &mut ContactPrivate) {
        ledger.pledges.push(self);
    }
}

/// Checks the channel and the summary.
impl LedgerEntry for Interaction {
    fn id_and_recorder(&mut self) -> (&mut String, &mut String) {
        (&mut self.id, &mut self.by)
    }
    fn validate(&mut self) -> Result<()> {
        if !CHANNELS.contains(&self.channel.as_str()) {
            return Err(Error::invalid(
                "channel",
                format!("{:?} is not one of {}", self.channel, CHANNELS.join(", ")),
            ));
        }
        validate::long_text("summary", &self.summary)?;
        Ok(())
    }
    fn file(self, ledger: &mut ContactPrivate) {
        ledger.interactions.push(self);
    }
}

/// Checks an amount of money: more than zero, in a currency named by its
/// ISO 4217 code. Returns the code, upper case.
fn amount(minor: i64, currency_code: &str) -> Result<String> {
    if minor <= 0 {
        return Err(Error::invalid("amount", "must be more than zero"));
    }
    currency(currency_code)
}

fn currency(code: &str) -> Result<String> {
    let code = code.trim().to_ascii_uppercase();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Error::invalid(
            "currency",
            format!("{code:?} is not a three-letter ISO 4217 code such as EUR"),
        ));
    }
    Ok(code)
}
