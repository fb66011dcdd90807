//! The JSON that `--json` prints. These shapes are a contract with the
//! scripts that read them (documented in cli/JSON.md): add fields freely,
//! never rename or remove one. A record whose JSON is its serde form
//! (`ContactSummary` in `contact list` and `contact search`) is printed as
//! it is; these are the shapes that differ (times as RFC 3339, sets as
//! lists).

use muster_core::{Contact, EventSummary, RosterLine};
use serde::Serialize;

/// A time as RFC 3339 in UTC with milliseconds ("2026-11-24T10:00:00.000Z").
pub fn time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// Parses RFC 3339 ("2026-12-01T18:00:00Z", "2026-12-01T18:00:00+01:00").
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    let t: jiff::Timestamp = s.parse().map_err(|e| {
        anyhow::anyhow!("{s:?} is not an RFC 3339 time such as 2026-12-01T18:00:00Z: {e}")
    })?;
    Ok(t.as_millisecond())
}

/// Consent, as `contact show` prints it.
#[derive(Debug, Serialize)]
pub struct ConsentJson {
    pub given: bool,
    pub channels: Vec<String>,
    pub recorded_at: Option<String>,
    pub method: Option<String>,
    pub recorded_by: Option<String>,
}

/// A whole contact, as `contact show` prints it.
#[derive(Debug, Serialize)]
pub struct ContactDetail {
    pub id: String,
    pub name: String,
    pub preferred_name: Option<String>,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub address: muster_core::model::Address,
    pub preferred_language: Option<String>,
    pub roles: Vec<String>,
    pub tags: Vec<String>,
    pub interests: Vec<String>,
    pub consent: ConsentJson,
    pub household: Option<String>,
    pub organisation: Option<String>,
    pub external_id: Option<String>,
    pub custom: std::collections::BTreeMap<String, String>,
    pub notes: String,
    pub merged_into: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

fn set(m: &std::collections::BTreeMap<String, bool>) -> Vec<String> {
    m.iter()
        .filter(|(_, v)| **v)
        .map(|(k, _)| k.clone())
        .collect()
}

impl From<Contact> for ContactDetail {
    fn from(c: Contact) -> Self {
        ContactDetail {
            roles: set(&c.roles),
            tags: set(&c.tags),
            interests: set(&c.interests),
            consent: ConsentJson {
                given: c.consent.given,
                channels: set(&c.consent.channels),
                recorded_at: c.consent.recorded_at.map(time),
                method: c.consent.method.clone(),
                recorded_by: c.consent.recorded_by.clone(),
            },
            notes: c.notes.as_str().to_owned(),
            created_at: time(c.created_at),
            id: c.id,
            name: c.name,
            preferred_name: c.preferred_name,
            phones: c.phones,
            emails: c.emails,
            address: c.address,
            preferred_language: c.preferred_language,
            household: c.household,
            organisation: c.organisation,
            external_id: c.external_id,
            custom: c.custom,
            merged_into: c.merged_into,
            created_by: c.created_by,
        }
    }
}

/// One event in `event list`.
#[derive(Debug, Serialize)]
pub struct EventLine {
    pub id: String,
    pub title: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub place: String,
    pub capacity: Option<i64>,
    pub status: String,
    pub registered: i64,
    pub waitlisted: i64,
    pub checked_in: i64,
}

impl From<EventSummary> for EventLine {
    fn from(e: EventSummary) -> Self {
        EventLine {
            id: e.id,
            title: e.title,
            starts_at: time(e.starts_at),
            ends_at: e.ends_at.map(time),
            place: e.place,
            capacity: e.capacity,
            status: e.status,
            registered: e.registered,
            waitlisted: e.waitlisted,
            checked_in: e.checked_in,
        }
    }
}

/// One sign-up in `roster`.
#[derive(Debug, Serialize)]
pub struct RosterJson {
    pub contact_id: String,
    pub name: Option<String>,
    pub status: &'static str,
    pub registered_at: String,
    pub checked_in_at: Option<String>,
    pub walk_in: bool,
    pub waitlist_position: Option<u32>,
}

impl From<RosterLine> for RosterJson {
    fn from(r: RosterLine) -> Self {
        RosterJson {
            contact_id: r.contact_id,
            name: r.name,
            status: r.status.as_str(),
            registered_at: time(r.registered_at),
            checked_in_at: r.checked_in_at.map(time),
            walk_in: r.walk_in,
            waitlist_position: r.waitlist_position,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(super::time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::time(1_793_491_200_123), "2026-11-01T00:00:00.123Z");
        assert_eq!(
            super::parse_time("2026-11-01T01:00:00+01:00").unwrap(),
            1_793_491_200_000
        );
        assert!(super::parse_time("tomorrow").is_err());
    }
}
