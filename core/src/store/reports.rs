//! The queries behind the coordinator's reports (`muster report`):
//! attendance per event, volunteer hours, new contacts, donor retention,
//! feedback response times and consent coverage.
//!
//! # Rules every report follows
//!
//! - **SQL over the index tables** wherever they hold the data (events,
//!   sign-ups, shifts, feedback, contacts). Two things live only in the
//!   documents and are read from them: gifts (in the private ledgers, which
//!   have no index rows) and consent channels (the index keeps only whether
//!   consent was given).
//! - **The core never reads the clock**: a report that depends on the
//!   present (what is overdue, which period is under way, which shifts are
//!   still to come) takes `now`.
//! - **Ranges** are `from` (inclusive) to `to` (exclusive), in milliseconds;
//!   either may be open. A range whose end is not after its start is refused.
//! - **Merged duplicates are never counted twice.** A contact whose
//!   `merged_into` is set is left out of every count of contacts, and what
//!   it did (sign-ups, shifts, gifts) counts for the contact it was merged
//!   into, following chains (a duplicate of a duplicate counts for the
//!   contact finally kept).
//! - **Periods** are calendar periods in UTC: ISO weeks (Monday to Sunday,
//!   labelled `2026-W05`), months (`2026-03`), quarters (`2026-Q1`) and
//!   years (`2026`).
//! - **Money** is summed in minor units (cents) per currency, in integers;
//!   amounts in different currencies are never added together.

use std::collections::{BTreeMap, HashMap, HashSet};

use autosurgeon::Hydrate;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use automerge::{AutoCommit, Change};

use super::Store;
use crate::error::{Error, Result};
use crate::model::feedback::FIRST_RESPONSE_TARGET;
use crate::model::{self, DocKind, Millis};
use crate::views::SignupStatus;

/// One day in milliseconds.
const DAY: Millis = 86_400_000;
/// One minute in milliseconds.
const MINUTE: Millis = 60_000;
/// The most periods one report lists (a century of quarters, or twenty
/// years of weeks): past that, the range or the period is a mistake.
const MAX_PERIODS: i64 = 2_000;

// ----- results ---------------------------------------------------------------

/// Sign-up counts of one event, or of several added together. Each person
/// counts once per event: when duplicates of one person both signed up,
/// with the sign-up furthest along (checked in, then registered,
/// waitlisted, no show, cancelled), as the roster shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SignupCounts {
    /// People signed up, whatever their status.
    pub sign_ups: i64,
    /// People holding a seat: registered, checked in or no-show (the
    /// `registered` of `muster event list`).
    pub registered: i64,
    /// People who came.
    pub checked_in: i64,
    /// People registered at the door (cancelled sign-ups left out).
    pub walk_ins: i64,
    /// People who held a seat and did not come.
    pub no_shows: i64,
    /// People waiting for a seat.
    pub waitlisted: i64,
    /// People who cancelled.
    pub cancelled: i64,
}

impl SignupCounts {
    fn add(&mut self, other: &SignupCounts) {
        self.sign_ups += other.sign_ups;
        self.registered += other.registered;
        self.checked_in += other.checked_in;
        self.walk_ins += other.walk_ins;
        self.no_shows += other.no_shows;
        self.waitlisted += other.waitlisted;
        self.cancelled += other.cancelled;
    }

    /// Share of the seats held whose holder came: `checked_in / registered`,
    /// `None` when no seat was held.
    pub fn attendance_rate(&self) -> Option<f64> {
        ratio(self.checked_in, self.registered)
    }
}

/// One event of [`Store::report_events`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventAttendance {
    /// The event (`e_…`).
    pub id: String,
    /// Its title.
    pub title: String,
    /// When it starts.
    pub starts_at: Millis,
    /// `scheduled`, `cancelled` or `completed`.
    pub status: String,
    /// Its capacity, if limited.
    pub capacity: Option<i64>,
    /// Its sign-ups.
    pub counts: SignupCounts,
}

/// Attendance per event: [`Store::report_events`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventsReport {
    /// Events starting in the range, by start time.
    pub events: Vec<EventAttendance>,
    /// The counts of every event listed, added up (a person at two events
    /// counts at each).
    pub totals: SignupCounts,
}

/// Time worked, in minutes, and how much of it is only the schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Worked {
    /// Shifts counted.
    pub shifts: i64,
    /// Minutes worked: the minutes recorded, or the scheduled length of a
    /// shift whose minutes were never recorded.
    pub minutes: i64,
    /// Of `shifts`, those counted at their scheduled length because no
    /// minutes were recorded.
    pub scheduled_shifts: i64,
    /// Of `minutes`, those that come from scheduled lengths.
    pub scheduled_minutes: i64,
}

impl Worked {
    fn add(&mut self, other: &Worked) {
        // Merged records are not validated: never overflow on their values.
        self.shifts = self.shifts.saturating_add(other.shifts);
        self.minutes = self.minutes.saturating_add(other.minutes);
        self.scheduled_shifts = self.scheduled_shifts.saturating_add(other.scheduled_shifts);
        self.scheduled_minutes = self
            .scheduled_minutes
            .saturating_add(other.scheduled_minutes);
    }
}

/// One volunteer in one period of [`Store::report_hours`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolunteerPeriod {
    /// The period's label (`2026-03`, `2026-W05`, `2026-Q1`, `2026`).
    pub period: String,
    /// When the period starts.
    pub period_start: Millis,
    /// The volunteer (`c_…`): the kept contact for merged duplicates.
    pub contact_id: String,
    /// The volunteer's name, if this device holds the contact.
    pub name: Option<String>,
    /// Their time in the period.
    pub worked: Worked,
}

/// The total of one period of [`Store::report_hours`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeriodHours {
    /// The period's label.
    pub period: String,
    /// When the period starts.
    pub period_start: Millis,
    /// Volunteers who worked in it.
    pub volunteers: i64,
    /// Their time, added up.
    pub worked: Worked,
}

/// One volunteer's total over the range of [`Store::report_hours`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolunteerHours {
    /// The volunteer (`c_…`).
    pub contact_id: String,
    /// The volunteer's name, if this device holds the contact.
    pub name: Option<String>,
    /// Their time over every period.
    pub worked: Worked,
}

/// Volunteer time per person and period: [`Store::report_hours`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoursReport {
    /// `week`, `month`, `quarter` or `year`.
    pub period: String,
    /// Per volunteer and period, by period then name.
    pub rows: Vec<VolunteerPeriod>,
    /// Per period, in order.
    pub periods: Vec<PeriodHours>,
    /// Per volunteer, by name.
    pub volunteers: Vec<VolunteerHours>,
    /// Everything counted.
    pub total: Worked,
    /// Shifts without recorded minutes that had not ended by `now`: not
    /// worked yet, so not counted.
    pub upcoming_shifts: i64,
    /// Shifts without recorded minutes at cancelled events: not counted.
    pub cancelled_event_shifts: i64,
}

/// The contacts first seen at one event ([`Store::report_new_contacts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewAtEvent {
    /// The event (`e_…`).
    pub event_id: String,
    /// Its title, if this device holds the event.
    pub title: Option<String>,
    /// When it starts, if this device holds the event.
    pub starts_at: Option<Millis>,
    /// Contacts whose first sign-up was to this event.
    pub new_contacts: i64,
}

/// The contacts created by one device ([`Store::report_new_contacts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewByDevice {
    /// The device id (`created_by` of the contacts).
    pub device_id: String,
    /// Whether it is the device this store belongs to.
    pub this_device: bool,
    /// Contacts it created.
    pub new_contacts: i64,
    /// When it created the first of them.
    pub first_created_at: Millis,
    /// When it created the last of them.
    pub last_created_at: Millis,
}

/// New contacts per event and per device: [`Store::report_new_contacts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewContactsReport {
    /// Contacts created in the range (merged duplicates left out).
    pub contacts: i64,
    /// Those contacts by the first event they signed up to (earliest
    /// registration, their merged duplicates' sign-ups included), by the
    /// event's start time.
    pub by_event: Vec<NewAtEvent>,
    /// Those contacts that never signed up to an event.
    pub without_event: i64,
    /// Those contacts by the device that created them, most first.
    pub by_device: Vec<NewByDevice>,
}

/// Donors and gifts of one period ([`Store::report_donors`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DonorPeriod {
    /// The period's label.
    pub period: String,
    /// When the period starts.
    pub starts_at: Millis,
    /// When the next period starts.
    pub ends_at: Millis,
    /// Whether `now` falls in it: its figures are so far, not final.
    pub partial: bool,
    /// People who gave in it.
    pub donors: i64,
    /// Gifts received in it.
    pub gifts: i64,
    /// Donors of the previous period.
    pub previous_donors: i64,
    /// Donors who gave in the previous period and in this one.
    pub retained: i64,
    /// Donors of the previous period who did not give in this one.
    pub lapsed: i64,
    /// Donors whose first gift ever is in this period.
    pub new_donors: i64,
    /// Donors who gave before, but not in the previous period.
    pub reactivated: i64,
    /// Amount received, in minor units, per currency.
    pub amounts: BTreeMap<String, i64>,
}

impl DonorPeriod {
    /// `retained / previous_donors`; `None` when nobody gave in the
    /// previous period.
    pub fn retention_rate(&self) -> Option<f64> {
        ratio(self.retained, self.previous_donors)
    }
}

/// Donor retention and repeat gifts: [`Store::report_donors`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DonorsReport {
    /// `week`, `month`, `quarter` or `year`.
    pub period: String,
    /// Every period of the range, in order, empty ones included.
    pub periods: Vec<DonorPeriod>,
    /// People who gave in the range.
    pub donors: i64,
    /// Gifts in the range.
    pub gifts: i64,
    /// Donors who gave at least twice in the range.
    pub repeat_donors: i64,
    /// Amount received in the range, in minor units, per currency.
    pub amounts: BTreeMap<String, i64>,
    /// Private ledgers that could not be read (written by a newer app, or
    /// damaged) and are not counted.
    pub unreadable_ledgers: i64,
}

impl DonorsReport {
    /// `repeat_donors / donors`; `None` when nobody gave.
    pub fn repeat_gift_rate(&self) -> Option<f64> {
        ratio(self.repeat_donors, self.donors)
    }
}

/// How many cases are in one workflow status ([`Store::report_feedback`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusCount {
    /// `received`, `assigned`, `responded` or `resolved`.
    pub status: String,
    /// Cases in it.
    pub cases: i64,
}

/// A case still waiting for its first response past the target
/// ([`Store::report_feedback`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverdueCase {
    /// The case (`f_…`).
    pub id: String,
    /// Who it is from, if known.
    pub contact_id: Option<String>,
    /// Their name, if this device holds the contact.
    pub contact_name: Option<String>,
    /// How it arrived.
    pub channel: String,
    /// Kind of feedback.
    pub category: String,
    /// `received` or `assigned`.
    pub status: String,
    /// Who must answer it.
    pub assigned_to: Option<String>,
    /// When it was received.
    pub received_at: Millis,
    /// When the first response was due.
    pub due_at: Millis,
    /// `now - received_at`.
    pub age: Millis,
    /// `now - due_at`.
    pub overdue_by: Millis,
}

/// Feedback cases against the first-response target:
/// [`Store::report_feedback`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackReport {
    /// Cases received in the range.
    pub cases: i64,
    /// Per workflow status, in workflow order (every status listed).
    pub by_status: Vec<StatusCount>,
    /// The first-response target (24 hours).
    pub target: Millis,
    /// Cases with a response.
    pub answered: i64,
    /// Median time to the first response of the answered cases (the mean
    /// of the two middle ones for an even count).
    pub median_first_response: Option<Millis>,
    /// 90th percentile of the same (nearest rank).
    pub p90_first_response: Option<Millis>,
    /// Cases answered within the target.
    pub within_target: i64,
    /// Cases answered after the target.
    pub answered_late: i64,
    /// Cases with no response, not resolved, past the target: `overdue`.
    pub waiting_overdue: i64,
    /// Cases with no response, not resolved, still within the target.
    pub waiting_in_time: i64,
    /// Cases resolved without a recorded response.
    pub resolved_without_response: i64,
    /// The cases of `waiting_overdue`, oldest first.
    pub overdue: Vec<OverdueCase>,
}

impl FeedbackReport {
    /// Share of the cases whose target has been met or missed that met it:
    /// `within_target / (within_target + answered_late + waiting_overdue)`.
    /// Cases still within their 24 hours, and cases resolved without a
    /// response, are neither. `None` when no case has been decided.
    pub fn share_within_target(&self) -> Option<f64> {
        ratio(
            self.within_target,
            self.within_target + self.answered_late + self.waiting_overdue,
        )
    }
}

/// Contacts who consented to one channel ([`Store::report_consent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelConsent {
    /// `email`, `sms`, `phone`, `post`…
    pub channel: String,
    /// Contacts who gave consent and named this channel.
    pub contacts: i64,
}

/// Consent coverage: [`Store::report_consent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentReport {
    /// Contacts (merged duplicates left out).
    pub contacts: i64,
    /// Contacts who gave consent.
    pub given: i64,
    /// Of the others, those whose refusal was recorded; `None` unless
    /// asked for (it reads every contact).
    pub refused: Option<i64>,
    /// Of the others, those never asked (no consent recorded); `None`
    /// unless asked for.
    pub not_recorded: Option<i64>,
    /// Per channel, most first, among those who gave consent.
    pub by_channel: Vec<ChannelConsent>,
    /// Contacts who gave consent without naming any channel.
    pub given_without_channel: i64,
    /// Contact documents that could not be read (written by a newer app,
    /// or damaged): their channels (or refusal) are not counted.
    pub unreadable_contacts: i64,
}

impl ConsentReport {
    /// `given / contacts`; `None` when there are no contacts.
    pub fn coverage(&self) -> Option<f64> {
        ratio(self.given, self.contacts)
    }
}

// ----- the reports -----------------------------------------------------------

impl Store {
    /// Attendance per event: for each event starting in `[from, to)`, the
    /// people signed up, holding a seat, checked in, walk-ins, no-shows,
    /// waitlisted and cancelled, and the totals. Merged duplicates count
    /// once, for the kept contact, with their best status.
    pub fn report_events(&self, from: Option<Millis>, to: Option<Millis>) -> Result<EventsReport> {
        check_range(from, to)?;
        let merges = self.merges()?;
        let mut events = Vec::new();
        let mut position = HashMap::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, title, starts_at, status, capacity FROM events
                 WHERE (?1 IS NULL OR starts_at >= ?1) AND (?2 IS NULL OR starts_at < ?2)
                 ORDER BY starts_at, id",
            )?;
            let rows = stmt.query_map(params![from, to], |r| {
                Ok(EventAttendance {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    starts_at: r.get(2)?,
                    status: r.get(3)?,
                    capacity: r.get(4)?,
                    counts: SignupCounts::default(),
                })
            })?;
            for row in rows {
                let row = row?;
                position.insert(row.id.clone(), events.len());
                events.push(row);
            }
        }
        // Per event, each person's best sign-up.
        let mut people: Vec<HashMap<String, (SignupStatus, bool)>> =
            vec![HashMap::new(); events.len()];
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT s.event_id, s.contact_id, s.status, s.walk_in
                 FROM signups s JOIN events e ON e.id = s.event_id
                 WHERE (?1 IS NULL OR e.starts_at >= ?1) AND (?2 IS NULL OR e.starts_at < ?2)",
            )?;
            let mut rows = stmt.query(params![from, to])?;
            while let Some(r) = rows.next()? {
                let event: String = r.get(0)?;
                let contact: String = r.get(1)?;
                let status: String = r.get(2)?;
                let walk_in: bool = r.get(3)?;
                let Some(&at) = position.get(&event) else {
                    continue;
                };
                // As the roster does: a status this build does not know
                // holds a seat.
                let status = SignupStatus::parse(&status).unwrap_or(SignupStatus::Registered);
                let person = merges.kept(&contact).to_owned();
                let best = people[at].entry(person).or_insert((status, walk_in));
                if status.precedence() > best.0.precedence() {
                    *best = (status, walk_in);
                }
            }
        }
        let mut totals = SignupCounts::default();
        for (event, people) in events.iter_mut().zip(people) {
            let c = &mut event.counts;
            for (status, walk_in) in people.into_values() {
                c.sign_ups += 1;
                match status {
                    SignupStatus::Registered => c.registered += 1,
                    SignupStatus::CheckedIn => {
                        c.registered += 1;
                        c.checked_in += 1;
                    }
                    SignupStatus::NoShow => {
                        c.registered += 1;
                        c.no_shows += 1;
                    }
                    SignupStatus::Waitlisted => c.waitlisted += 1,
                    SignupStatus::Cancelled => c.cancelled += 1,
                }
                if walk_in && status != SignupStatus::Cancelled {
                    c.walk_ins += 1;
                }
            }
            totals.add(c);
        }
        Ok(EventsReport { events, totals })
    }

    /// Volunteer time per person and `period` (`week`, `month`, `quarter`
    /// or `year`) for shifts starting in `[from, to)`, with totals per
    /// period, per volunteer and overall.
    ///
    /// A shift counts its recorded minutes; one without recorded minutes
    /// counts its scheduled length and is reported as such
    /// (`scheduled_shifts`), unless it had not ended by `now` or
    /// its event was cancelled: those were not worked and are only counted
    /// apart. A merged duplicate's shifts count for the kept contact.
    pub fn report_hours(
        &self,
        period: &str,
        from: Option<Millis>,
        to: Option<Millis>,
        now: Millis,
    ) -> Result<HoursReport> {
        let period = Period::parse(period)?;
        check_range(from, to)?;
        let merges = self.merges()?;
        let mut cells: BTreeMap<(i64, String), Worked> = BTreeMap::new();
        let (mut upcoming_shifts, mut cancelled_event_shifts) = (0, 0);
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT s.contact_id, s.starts_at, s.ends_at, s.minutes_worked, e.status
                 FROM shifts s LEFT JOIN events e ON e.id = s.event_id
                 WHERE (?1 IS NULL OR s.starts_at >= ?1) AND (?2 IS NULL OR s.starts_at < ?2)",
            )?;
            let mut rows = stmt.query(params![from, to])?;
            while let Some(r) = rows.next()? {
                let contact: String = r.get(0)?;
                let starts_at: Millis = r.get(1)?;
                let ends_at: Millis = r.get(2)?;
                let minutes_worked: Option<i64> = r.get(3)?;
                let event_status: Option<String> = r.get(4)?;
                let mut shift = Worked {
                    shifts: 1,
                    ..Worked::default()
                };
                match minutes_worked {
                    Some(minutes) => shift.minutes = minutes.max(0),
                    None if event_status.as_deref() == Some("cancelled") => {
                        cancelled_event_shifts += 1;
                        continue;
                    }
                    None if ends_at > now => {
                        upcoming_shifts += 1;
                        continue;
                    }
                    None => {
                        let minutes = ends_at.saturating_sub(starts_at).max(0) / MINUTE;
                        shift.minutes = minutes;
                        shift.scheduled_shifts = 1;
                        shift.scheduled_minutes = minutes;
                    }
                }
                let person = merges.kept(&contact).to_owned();
                cells
                    .entry((period.index(starts_at), person))
                    .or_default()
                    .add(&shift);
            }
        }
        let names = self.names(cells.keys().map(|(_, c)| c.as_str()))?;
        // By name; volunteers this device does not hold last, by id.
        let by_name = |id: &str| {
            let sort_name = names.get(id).map(|n| n.1.clone());
            (sort_name.is_none(), sort_name, id.to_owned())
        };

        let mut rows = Vec::with_capacity(cells.len());
        let mut periods: BTreeMap<i64, PeriodHours> = BTreeMap::new();
        let mut volunteers: HashMap<String, Worked> = HashMap::new();
        let mut total = Worked::default();
        for ((index, contact), worked) in cells {
            let label = period.label(index);
            let start = period.start(index);
            let p = periods.entry(index).or_insert_with(|| PeriodHours {
                period: label.clone(),
                period_start: start,
                volunteers: 0,
                worked: Worked::default(),
            });
            p.volunteers += 1;
            p.worked.add(&worked);
            volunteers.entry(contact.clone()).or_default().add(&worked);
            total.add(&worked);
            rows.push(VolunteerPeriod {
                period: label,
                period_start: start,
                name: names.get(&contact).map(|n| n.0.clone()),
                contact_id: contact,
                worked,
            });
        }
        rows.sort_by_cached_key(|r| (r.period_start, by_name(&r.contact_id)));
        let mut volunteers: Vec<VolunteerHours> = volunteers
            .into_iter()
            .map(|(contact_id, worked)| VolunteerHours {
                name: names.get(&contact_id).map(|n| n.0.clone()),
                contact_id,
                worked,
            })
            .collect();
        volunteers.sort_by_cached_key(|v| by_name(&v.contact_id));
        Ok(HoursReport {
            period: period.as_str().to_owned(),
            rows,
            periods: periods.into_values().collect(),
            volunteers,
            total,
            upcoming_shifts,
            cancelled_event_shifts,
        })
    }

    /// Contacts created in `[from, to)` (merged duplicates left out), by
    /// the first event each signed up to and by the device that created
    /// it (`created_by`).
    ///
    /// A contact's first event is the one of its earliest registration,
    /// counting the sign-ups of duplicates merged into it and sign-ups in
    /// any status (a cancelled sign-up still brought the person in); ties
    /// go to the event that starts first.
    pub fn report_new_contacts(
        &self,
        from: Option<Millis>,
        to: Option<Millis>,
    ) -> Result<NewContactsReport> {
        check_range(from, to)?;
        let merges = self.merges()?;
        // Each person's first sign-up: (registered_at, event start, event).
        let mut first: HashMap<String, (Millis, Millis, String)> = HashMap::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT s.contact_id, s.registered_at, ifnull(e.starts_at, 9223372036854775807), s.event_id
                 FROM signups s LEFT JOIN events e ON e.id = s.event_id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let contact: String = r.get(0)?;
                let sign_up: (Millis, Millis, String) = (r.get(1)?, r.get(2)?, r.get(3)?);
                let person = merges.kept(&contact);
                match first.get_mut(person) {
                    Some(known) if *known <= sign_up => {}
                    Some(known) => *known = sign_up,
                    None => {
                        first.insert(person.to_owned(), sign_up);
                    }
                }
            }
        }
        let this_device = self.device_id.as_str();
        let mut contacts = 0;
        let mut without_event = 0;
        let mut per_event: HashMap<String, i64> = HashMap::new();
        let mut per_device: HashMap<String, NewByDevice> = HashMap::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, created_by, created_at FROM contacts
                 WHERE merged_into IS NULL
                   AND (?1 IS NULL OR created_at >= ?1) AND (?2 IS NULL OR created_at < ?2)",
            )?;
            let mut rows = stmt.query(params![from, to])?;
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let device: String = r.get(1)?;
                let created_at: Millis = r.get(2)?;
                contacts += 1;
                match first.get(&id) {
                    Some((_, _, event)) => *per_event.entry(event.clone()).or_default() += 1,
                    None => without_event += 1,
                }
                let d = per_device
                    .entry(device)
                    .or_insert_with_key(|device| NewByDevice {
                        this_device: device == this_device,
                        device_id: device.clone(),
                        new_contacts: 0,
                        first_created_at: created_at,
                        last_created_at: created_at,
                    });
                d.new_contacts += 1;
                d.first_created_at = d.first_created_at.min(created_at);
                d.last_created_at = d.last_created_at.max(created_at);
            }
        }
        let mut by_event = Vec::with_capacity(per_event.len());
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT title, starts_at FROM events WHERE id = ?1")?;
            for (event_id, new_contacts) in per_event {
                let found: Option<(String, Millis)> = stmt
                    .query_row([&event_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let (title, starts_at) = found.unzip();
                by_event.push(NewAtEvent {
                    event_id,
                    title,
                    starts_at,
                    new_contacts,
                });
            }
        }
        // Events this device does not hold go last.
        by_event.sort_by(|a, b| {
            (a.starts_at.unwrap_or(Millis::MAX), &a.event_id)
                .cmp(&(b.starts_at.unwrap_or(Millis::MAX), &b.event_id))
        });
        let mut by_device: Vec<NewByDevice> = per_device.into_values().collect();
        by_device.sort_by(|a, b| {
            b.new_contacts
                .cmp(&a.new_contacts)
                .then_with(|| a.device_id.cmp(&b.device_id))
        });
        Ok(NewContactsReport {
            contacts,
            by_event,
            without_event,
            by_device,
        })
    }

    /// Donors per `period` (`week`, `month`, `quarter` or `year`): for each
    /// period of `[from, to)` (by default from the first gift to the period
    /// under way at `now`), the donors, those retained from the previous
    /// period, lapsed, new and reactivated, and the amounts per currency;
    /// over the range, the repeat-gift rate (donors with two or more gifts
    /// out of all donors) and the amounts.
    ///
    /// Gifts are read from the private ledgers. Whether a donor is new
    /// looks at their whole history, before `from` too. A merged
    /// duplicate's gifts count for the kept contact.
    pub fn report_donors(
        &self,
        period: &str,
        from: Option<Millis>,
        to: Option<Millis>,
        now: Millis,
    ) -> Result<DonorsReport> {
        let period = Period::parse(period)?;
        check_range(from, to)?;
        let merges = self.merges()?;
        let (gifts, unreadable_ledgers) = self.gifts(&merges)?;

        // Donors are numbered, so that the sets below hold integers.
        let mut donor_number: HashMap<&str, usize> = HashMap::new();
        let mut first_period: Vec<i64> = Vec::new();
        let mut in_period: HashMap<i64, HashSet<usize>> = HashMap::new();
        let mut period_totals: HashMap<i64, (i64, BTreeMap<String, i64>)> = HashMap::new();
        let mut gifts_in_range: HashMap<usize, i64> = HashMap::new();
        let mut report = DonorsReport {
            period: period.as_str().to_owned(),
            periods: Vec::new(),
            donors: 0,
            gifts: 0,
            repeat_donors: 0,
            amounts: BTreeMap::new(),
            unreadable_ledgers,
        };
        let (mut earliest, mut latest) = (None::<i64>, None::<i64>);
        for gift in &gifts {
            let index = period.index(gift.date);
            earliest = Some(earliest.map_or(index, |e| e.min(index)));
            latest = Some(latest.map_or(index, |l| l.max(index)));
            let next = donor_number.len();
            let donor = *donor_number.entry(gift.donor.as_str()).or_insert(next);
            if donor == first_period.len() {
                first_period.push(index);
            } else {
                first_period[donor] = first_period[donor].min(index);
            }
            in_period.entry(index).or_default().insert(donor);
            let totals = period_totals.entry(index).or_default();
            totals.0 += 1;
            add_money(&mut totals.1, &gift.currency, gift.amount_minor);
            if in_range(gift.date, from, to) {
                report.gifts += 1;
                *gifts_in_range.entry(donor).or_default() += 1;
                add_money(&mut report.amounts, &gift.currency, gift.amount_minor);
            }
        }
        report.donors = gifts_in_range.len() as i64;
        report.repeat_donors = gifts_in_range.values().filter(|n| **n >= 2).count() as i64;

        let first = match (from, earliest) {
            (Some(from), _) => period.index(from),
            (None, Some(earliest)) => earliest,
            (None, None) => return Ok(report),
        };
        let last = match to {
            Some(to) => period.index(to.saturating_sub(1)),
            None => latest.map_or(period.index(now), |l| l.max(period.index(now))),
        };
        if last.saturating_sub(first) >= MAX_PERIODS {
            return Err(Error::invalid(
                "period",
                format!(
                    "the range holds {} {}s, more than {MAX_PERIODS}; choose a longer period or a shorter range",
                    last.saturating_sub(first).saturating_add(1),
                    period.as_str()
                ),
            ));
        }
        let empty = HashSet::new();
        for index in first..=last {
            let donors = in_period.get(&index).unwrap_or(&empty);
            let previous = in_period.get(&(index - 1)).unwrap_or(&empty);
            let retained = donors.intersection(previous).count() as i64;
            let new_donors = donors.iter().filter(|d| first_period[**d] == index).count() as i64;
            let (gifts, amounts) = period_totals.remove(&index).unwrap_or_default();
            let starts_at = period.start(index);
            let ends_at = period.start(index + 1);
            report.periods.push(DonorPeriod {
                period: period.label(index),
                starts_at,
                ends_at,
                partial: starts_at <= now && now < ends_at,
                donors: donors.len() as i64,
                gifts,
                previous_donors: previous.len() as i64,
                retained,
                lapsed: previous.len() as i64 - retained,
                new_donors,
                reactivated: donors.len() as i64 - new_donors - retained,
                amounts,
            });
        }
        Ok(report)
    }

    /// Feedback cases received in `[from, to)`: how many in each workflow
    /// status, the median and 90th percentile of the time to the first
    /// response, how many met the 24-hour target
    /// ([`FIRST_RESPONSE_TARGET`]) and how many missed it, and the list of
    /// cases still waiting for a first response past the target at `now`
    /// (what [`crate::FeedbackCase::is_overdue`] says of an unanswered case).
    pub fn report_feedback(
        &self,
        from: Option<Millis>,
        to: Option<Millis>,
        now: Millis,
    ) -> Result<FeedbackReport> {
        check_range(from, to)?;
        let merges = self.merges()?;
        let statuses = ["received", "assigned", "responded", "resolved"];
        let mut by_status = [0i64; 4];
        let mut times = Vec::new();
        let mut report = FeedbackReport {
            cases: 0,
            by_status: Vec::new(),
            target: FIRST_RESPONSE_TARGET,
            answered: 0,
            median_first_response: None,
            p90_first_response: None,
            within_target: 0,
            answered_late: 0,
            waiting_overdue: 0,
            waiting_in_time: 0,
            resolved_without_response: 0,
            overdue: Vec::new(),
        };
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, contact_id, status, channel, category, received_at, first_response_at,
                        resolved_at, assigned_to
                 FROM feedback
                 WHERE (?1 IS NULL OR received_at >= ?1) AND (?2 IS NULL OR received_at < ?2)
                 ORDER BY received_at, id",
            )?;
            let mut rows = stmt.query(params![from, to])?;
            while let Some(r) = rows.next()? {
                let status: String = r.get(2)?;
                let received_at: Millis = r.get(5)?;
                let first_response_at: Option<Millis> = r.get(6)?;
                let resolved_at: Option<Millis> = r.get(7)?;
                report.cases += 1;
                if let Some(at) = statuses.iter().position(|s| *s == status) {
                    by_status[at] += 1;
                }
                let due_at = received_at.saturating_add(FIRST_RESPONSE_TARGET);
                match (first_response_at, resolved_at) {
                    (Some(first), _) => {
                        report.answered += 1;
                        // Clocks disagree at times: never a negative wait.
                        times.push(first.saturating_sub(received_at).max(0));
                        if first <= due_at {
                            report.within_target += 1;
                        } else {
                            report.answered_late += 1;
                        }
                    }
                    (None, Some(_)) => report.resolved_without_response += 1,
                    (None, None) if now > due_at => {
                        report.waiting_overdue += 1;
                        report.overdue.push(OverdueCase {
                            id: r.get(0)?,
                            contact_id: r.get(1)?,
                            contact_name: None,
                            channel: r.get(3)?,
                            category: r.get(4)?,
                            status,
                            assigned_to: r.get(8)?,
                            received_at,
                            due_at,
                            age: now.saturating_sub(received_at),
                            overdue_by: now.saturating_sub(due_at),
                        });
                    }
                    (None, None) => report.waiting_in_time += 1,
                }
            }
        }
        report.by_status = statuses
            .iter()
            .zip(by_status)
            .map(|(status, cases)| StatusCount {
                status: (*status).to_owned(),
                cases,
            })
            .collect();
        times.sort_unstable();
        report.median_first_response = median(&times);
        report.p90_first_response = nearest_rank(&times, 90);
        let names = self.names(
            report
                .overdue
                .iter()
                .filter_map(|c| c.contact_id.as_deref())
                .map(|c| merges.kept(c)),
        )?;
        for case in &mut report.overdue {
            case.contact_name = case
                .contact_id
                .as_deref()
                .and_then(|c| names.get(merges.kept(c)))
                .map(|n| n.0.clone());
        }
        Ok(report)
    }

    /// Consent coverage over the contacts (merged duplicates left out):
    /// how many gave consent, and per channel how many of those named it.
    ///
    /// Who gave consent comes from the index; channels live only in the
    /// contact documents, so the documents of those who gave consent are
    /// read (about 20 µs each on two threads). With `refusals`, the
    /// documents of the others are read too, to tell a recorded refusal
    /// from a person never asked: every contact is read then.
    pub fn report_consent(&self, refusals: bool) -> Result<ConsentReport> {
        let (contacts, given) = self.conn.query_row(
            "SELECT count(*), ifnull(sum(consent_given <> 0), 0) FROM contacts
             WHERE merged_into IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut report = ConsentReport {
            contacts,
            given,
            refused: None,
            not_recorded: None,
            by_channel: Vec::new(),
            given_without_channel: 0,
            unreadable_contacts: 0,
        };
        // Channels and refusals are index columns (schema v3): SQL only.
        let mut channels: HashMap<String, i64> = HashMap::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT consent_channels, count(*) FROM contacts
             WHERE merged_into IS NULL AND consent_given <> 0 GROUP BY consent_channels",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (list, n) = row?;
            if list.is_empty() {
                report.given_without_channel += n;
            }
            for channel in list.split(',').filter(|c| !c.is_empty()) {
                *channels.entry(channel.to_owned()).or_default() += n;
            }
        }
        if refusals {
            let (refused, not_recorded) = self.conn.query_row(
                "SELECT ifnull(sum(consent_recorded_at IS NOT NULL), 0),
                        ifnull(sum(consent_recorded_at IS NULL), 0)
                 FROM contacts WHERE merged_into IS NULL AND consent_given = 0",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?;
            report.refused = Some(refused);
            report.not_recorded = Some(not_recorded);
        }
        report.by_channel = channels
            .into_iter()
            .map(|(channel, contacts)| ChannelConsent { channel, contacts })
            .collect();
        report.by_channel.sort_by(|a, b| {
            b.contacts
                .cmp(&a.contacts)
                .then_with(|| a.channel.cmp(&b.channel))
        });
        Ok(report)
    }

    // ----- helpers ------------------------------------------------------------

    /// Where each merged duplicate's records count.
    fn merges(&self) -> Result<Merges> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, merged_into FROM contacts WHERE merged_into IS NOT NULL")?;
        // The index holds where each counts ([`crate::merges`]).
        let kept = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<HashMap<_, _>>>()?;
        Ok(Merges { kept })
    }

    /// The display name and sort key of each of `ids` this device holds.
    fn names<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<String, (String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, sort_name FROM contacts WHERE id = ?1")?;
        let mut names = HashMap::new();
        for id in ids {
            if names.contains_key(id) {
                continue;
            }
            if let Some(name) = stmt
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
            {
                names.insert(id.to_owned(), name);
            }
        }
        Ok(names)
    }

    /// Decodes every document whose id `ids_sql` selects, reads it with
    /// `read`, and hands each result to `each` in id order (`None` for a
    /// document that cannot be decoded or read).
    ///
    /// The stored bytes are read in two queries (snapshots, then changes,
    /// both in id order), not two per document; decoding, the costly part,
    /// is spread over two threads, batch by batch, so that memory holds one
    /// batch of documents at a time.
    fn decode_docs<T: Send>(
        &self,
        ids_sql: &str,
        read: impl Fn(&str, &AutoCommit) -> Option<T> + Sync,
        mut each: impl FnMut(&str, Option<T>),
    ) -> Result<()> {
        /// Documents decoded together.
        const BATCH: usize = 1024;
        let mut docs = self.conn.prepare(&format!(
            "SELECT doc_id, snapshot FROM docs WHERE doc_id IN ({ids_sql}) ORDER BY doc_id"
        ))?;
        let mut changes = self.conn.prepare(&format!(
            "SELECT doc_id, data FROM changes WHERE doc_id IN ({ids_sql}) ORDER BY doc_id, seq"
        ))?;
        let mut docs = docs.query([])?;
        let mut changes = changes.query([])?;
        // The next change row, read ahead of its document.
        let mut next_change: Option<(String, Vec<u8>)> = match changes.next()? {
            Some(r) => Some((r.get(0)?, r.get(1)?)),
            None => None,
        };
        let decode_batch = |batch: Vec<Stored>| -> Vec<(String, Option<T>)> {
            let decode = |part: Vec<Stored>| -> Vec<(String, Option<T>)> {
                part.into_iter()
                    .map(|s| {
                        let (id, doc) = s.decode();
                        let value = doc.and_then(|doc| read(&id, &doc));
                        (id, value)
                    })
                    .collect()
            };
            if batch.len() < 64 {
                return decode(batch);
            }
            let mut first = batch;
            let second = first.split_off(first.len() / 2);
            std::thread::scope(|scope| {
                let other = scope.spawn(|| decode(second));
                let mut out = decode(first);
                // A panic while decoding is a bug; surface it here.
                out.extend(
                    other
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                );
                out
            })
        };
        let mut batch = Vec::with_capacity(BATCH);
        let mut flush = |batch: &mut Vec<Stored>| {
            for (id, value) in decode_batch(std::mem::take(batch)) {
                each(&id, value);
            }
        };
        while let Some(r) = docs.next()? {
            let mut stored = Stored {
                id: r.get(0)?,
                snapshot: r.get(1)?,
                changes: Vec::new(),
            };
            // Changes come in the same id order: take this document's.
            while let Some((doc, data)) = next_change.take() {
                match doc.cmp(&stored.id) {
                    // Changes of a document without a `docs` row: none.
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => stored.changes.push(data),
                    std::cmp::Ordering::Greater => {
                        next_change = Some((doc, data));
                        break;
                    }
                }
                next_change = match changes.next()? {
                    Some(r) => Some((r.get(0)?, r.get(1)?)),
                    None => None,
                };
            }
            batch.push(stored);
            if batch.len() >= BATCH {
                flush(&mut batch);
            }
        }
        flush(&mut batch);
        Ok(())
    }

    /// Every gift of every private ledger, attributed to the kept contact,
    /// and how many ledgers could not be read.
    fn gifts(&self, merges: &Merges) -> Result<(Vec<Gift>, i64)> {
        let mut gifts = Vec::new();
        let mut unreadable = 0;
        self.decode_docs(
            "SELECT doc_id FROM docs WHERE kind = 'contact_private'",
            |id, doc| model::hydrate::<LedgerGifts>(id, doc).ok(),
            |id, ledger| {
                let Some(ledger) = ledger else {
                    unreadable += 1;
                    return;
                };
                // The ledger `p_X` belongs to the contact `c_X`.
                let contact = format!(
                    "{}{}",
                    DocKind::Contact.id_prefix(),
                    id.get(DocKind::ContactPrivate.id_prefix().len()..)
                        .unwrap_or_default()
                );
                let donor = merges.kept(&contact).to_owned();
                gifts.extend(ledger.donations.into_iter().map(|g| Gift {
                    donor: donor.clone(),
                    date: g.date,
                    amount_minor: g.amount_minor,
                    currency: g.currency,
                }));
            },
        )?;
        Ok((gifts, unreadable))
    }
}

// ----- internals -------------------------------------------------------------

/// A document as stored: its snapshot and the changes stored after it.
struct Stored {
    id: String,
    snapshot: Option<Vec<u8>>,
    changes: Vec<Vec<u8>>,
}

impl Stored {
    /// The id, and the document or `None` if its bytes do not decode
    /// (where [`super::load_doc`] would fail).
    fn decode(self) -> (String, Option<AutoCommit>) {
        let Stored {
            id,
            snapshot,
            changes,
        } = self;
        let doc = (|| {
            let mut doc = match snapshot {
                Some(bytes) => AutoCommit::load(&bytes).ok()?,
                None => AutoCommit::new(),
            };
            let changes = changes
                .into_iter()
                .map(|data| Change::from_bytes(data).ok())
                .collect::<Option<Vec<_>>>()?;
            doc.apply_changes(changes).ok()?;
            Some(doc)
        })();
        (id, doc)
    }
}

/// The fields of a private ledger the donor report reads.
#[derive(Hydrate)]
struct LedgerGifts {
    donations: Vec<GiftRow>,
}

/// The fields of a donation the donor report reads.
#[derive(Hydrate)]
struct GiftRow {
    amount_minor: i64,
    currency: String,
    date: Millis,
}

/// A gift, attributed to the contact that counts as its donor.
struct Gift {
    donor: String,
    date: Millis,
    amount_minor: i64,
    currency: String,
}

/// The contact each merged duplicate counts as.
struct Merges {
    kept: HashMap<String, String>,
}

impl Merges {
    /// The contact whose records `id`'s count as: itself unless merged.
    fn kept<'a>(&'a self, id: &'a str) -> &'a str {
        self.kept.get(id).map_or(id, String::as_str)
    }
}

/// Adds an amount to a total per currency. Merged records are not
/// validated: a total saturates rather than overflow.
fn add_money(totals: &mut BTreeMap<String, i64>, currency: &str, amount_minor: i64) {
    match totals.get_mut(currency) {
        Some(total) => *total = total.saturating_add(amount_minor),
        None => {
            totals.insert(currency.to_owned(), amount_minor);
        }
    }
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn in_range(t: Millis, from: Option<Millis>, to: Option<Millis>) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
}

fn check_range(from: Option<Millis>, to: Option<Millis>) -> Result<()> {
    match (from, to) {
        (Some(f), Some(t)) if t <= f => {
            Err(Error::invalid("range", "its end must be after its start"))
        }
        _ => Ok(()),
    }
}

/// The median of sorted values: the middle one, or the mean of the two
/// middle ones (rounded down).
fn median(sorted: &[Millis]) -> Option<Millis> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => {
            let (a, b) = (sorted[n / 2 - 1], sorted[n / 2]);
            Some(a + (b - a) / 2)
        }
    }
}

/// The `percent`th percentile of sorted values by nearest rank: the
/// smallest value with at least `percent`% of the values at or below it.
fn nearest_rank(sorted: &[Millis], percent: usize) -> Option<Millis> {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// A calendar period, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Week,
    Month,
    Quarter,
    Year,
}

impl Period {
    fn parse(name: &str) -> Result<Period> {
        match name {
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            "quarter" => Ok(Period::Quarter),
            "year" => Ok(Period::Year),
            other => Err(Error::invalid(
                "period",
                format!("{other:?} is not one of week, month, quarter, year"),
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }

    /// The number of the period holding `t`: consecutive periods have
    /// consecutive numbers.
    fn index(self, t: Millis) -> i64 {
        let days = t.div_euclid(DAY);
        let (y, m, _) = civil_from_days(days);
        match self {
            // Week 0 starts on Monday 1969-12-29.
            Period::Week => (days + 3).div_euclid(7),
            Period::Month => y * 12 + (m - 1),
            Period::Quarter => y * 4 + (m - 1) / 3,
            Period::Year => y,
        }
    }

    /// When period `index` starts.
    fn start(self, index: i64) -> Millis {
        let days = match self {
            Period::Week => index.saturating_mul(7) - 3,
            Period::Month => days_from_civil(index.div_euclid(12), index.rem_euclid(12) + 1, 1),
            Period::Quarter => days_from_civil(index.div_euclid(4), index.rem_euclid(4) * 3 + 1, 1),
            Period::Year => days_from_civil(index, 1, 1),
        };
        days.saturating_mul(DAY)
    }

    /// How period `index` is written: `2026-W05`, `2026-03`, `2026-Q1`,
    /// `2026`.
    fn label(self, index: i64) -> String {
        match self {
            Period::Week => {
                // An ISO week belongs to the year of its Thursday.
                let thursday = index.saturating_mul(7);
                let (year, _, _) = civil_from_days(thursday);
                let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
                format!("{year}-W{week:02}")
            }
            Period::Month => format!(
                "{:04}-{:02}",
                index.div_euclid(12),
                index.rem_euclid(12) + 1
            ),
            Period::Quarter => format!("{}-Q{}", index.div_euclid(4), index.rem_euclid(4) + 1),
            Period::Year => index.to_string(),
        }
    }
}

/// (year, month 1–12, day 1–31) of a day counted from 1970-01-01
/// (Howard Hinnant's algorithm, proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day, counted from 1970-01-01, of a (year, month, day).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.saturating_mul(146_097).saturating_add(doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventStatus, NewContact, NewEvent, NewFeedback, Shift};
    use crate::{Donation, FeedbackCase};

    const HOUR: Millis = 3_600_000;

    /// Midnight UTC of a date.
    fn day(y: i64, m: i64, d: i64) -> Millis {
        days_from_civil(y, m, d) * DAY
    }

    fn person(store: &mut Store, name: &str, now: Millis) -> String {
        store
            .create_contact(
                &NewContact {
                    name: name.into(),
                    ..Default::default()
                },
                now,
            )
            .unwrap()
    }

    fn event(store: &mut Store, title: &str, starts_at: Millis, capacity: Option<i64>) -> String {
        store
            .create_event(
                &NewEvent {
                    title: title.into(),
                    starts_at,
                    ends_at: None,
                    place: "Hall".into(),
                    capacity,
                },
                starts_at - 30 * DAY,
            )
            .unwrap()
    }

    fn merge(store: &mut Store, duplicate: &str, kept: &str, now: Millis) {
        let kept = kept.to_owned();
        store
            .update_contact(duplicate, now, |c| {
                c.merged_into = Some(kept);
                Ok(())
            })
            .unwrap();
    }

    fn gift(store: &mut Store, donor: &str, date: Millis, amount_minor: i64, currency: &str) {
        store
            .record_donation(
                donor,
                Donation {
                    id: String::new(),
                    amount_minor,
                    currency: currency.into(),
                    date,
                    method: "card".into(),
                    note: None,
                    recorded_by: String::new(),
                },
                date,
            )
            .unwrap();
    }

    #[test]
    fn calendar_arithmetic_matches_known_dates() {
        // 2026-01-01T00:00:00Z is 1,767,225,600 seconds after the epoch.
        assert_eq!(day(2026, 1, 1), 1_767_225_600_000);
        assert_eq!(day(1970, 1, 1), 0);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(day(2024, 2, 29) / DAY), (2024, 2, 29));
        for days in [-800_000, -1, 0, 59, 10_000, 20_454, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn periods_are_labelled_and_bounded_like_a_calendar() {
        let t = day(2026, 5, 17) + 13 * HOUR;
        let cases = [
            (Period::Year, "2026", day(2026, 1, 1)),
            (Period::Quarter, "2026-Q2", day(2026, 4, 1)),
            (Period::Month, "2026-05", day(2026, 5, 1)),
            // Sunday 17 May 2026 is in ISO week 20, which began Monday 11th.
            (Period::Week, "2026-W20", day(2026, 5, 11)),
        ];
        for (period, label, start) in cases {
            let index = period.index(t);
            assert_eq!(period.label(index), label);
            assert_eq!(period.start(index), start);
            assert_eq!(period.index(start), index);
            assert_eq!(period.index(start - 1), index - 1, "{label}");
        }
        // ISO week years: 1 January 2027 is a Friday, in 2026's week 53;
        // Monday 30 December 2024 starts 2025's week 1.
        assert_eq!(
            Period::Week.label(Period::Week.index(day(2027, 1, 1))),
            "2026-W53"
        );
        assert_eq!(
            Period::Week.label(Period::Week.index(day(2024, 12, 30))),
            "2025-W01"
        );
        assert_eq!(Period::Week.label(Period::Week.index(0)), "1970-W01");
        assert_eq!(Period::Month.label(Period::Month.index(-1)), "1969-12");
        assert_eq!(
            Period::Quarter.start(Period::Quarter.index(day(2025, 12, 31)) + 1),
            day(2026, 1, 1)
        );
        assert!(matches!(
            Period::parse("fortnight"),
            Err(Error::Invalid {
                field: "period",
                ..
            })
        ));
    }

    #[test]
    fn percentiles() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5]), Some(5));
        assert_eq!(median(&[1, 3, 30]), Some(3));
        assert_eq!(median(&[1, 2, 4, 9]), Some(3));
        assert_eq!(nearest_rank(&[], 90), None);
        assert_eq!(nearest_rank(&[1, 3, 30], 90), Some(30));
        let hundred: Vec<Millis> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 90), Some(90));
        assert_eq!(nearest_rank(&hundred[..10], 90), Some(9));
    }

    #[test]
    fn events_count_each_status_and_a_merged_duplicate_once() {
        let mut s = Store::open_in_memory().unwrap();
        let t = day(2026, 3, 1);
        let gala = event(&mut s, "Gala", day(2026, 3, 20) + 18 * HOUR, Some(3));
        let later = event(&mut s, "Picnic", day(2026, 4, 10), None);
        let [ana, bo, cy, di, ed, fay, ana2] =
            ["Ana", "Bo", "Cy", "Di", "Ed", "Fay", "Ana S."].map(|n| person(&mut s, n, t));
        s.sign_up(&gala, &ana, false, t + 1).unwrap();
        s.sign_up(&gala, &bo, false, t + 2).unwrap();
        s.sign_up(&gala, &cy, false, t + 3).unwrap();
        // Ana's duplicate signs up too, and waits for a seat with Ed.
        s.sign_up(&gala, &ana2, false, t + 4).unwrap();
        s.sign_up(&gala, &ed, false, t + 5).unwrap();
        s.sign_up(&gala, &fay, false, t + 6).unwrap();
        s.cancel_signup(&gala, &fay, t + 7).unwrap();
        let door = day(2026, 3, 20) + 18 * HOUR;
        s.check_in(&gala, &ana, door).unwrap();
        s.check_in(&gala, &di, door + 1).unwrap(); // a walk-in
        s.mark_no_show(&gala, &cy, door + 3 * HOUR).unwrap();
        merge(&mut s, &ana2, &ana, door + DAY);
        s.sign_up(&later, &bo, false, t + 8).unwrap();
        s.sign_up(&later, &ana2, false, t + 9).unwrap();
        s.sign_up(&later, &ana, false, t + 10).unwrap();

        let report = s.report_events(None, None).unwrap();
        assert_eq!(report.events.len(), 2);
        let g = &report.events[0];
        assert_eq!((g.id.as_str(), g.title.as_str()), (gala.as_str(), "Gala"));
        assert_eq!((g.status.as_str(), g.capacity), ("scheduled", Some(3)));
        assert_eq!(
            g.counts,
            SignupCounts {
                sign_ups: 6,   // Ana (and her duplicate), Bo, Cy, Di, Ed, Fay
                registered: 4, // Ana, Bo, Cy, Di hold seats
                checked_in: 2, // Ana, Di
                walk_ins: 1,   // Di
                no_shows: 1,   // Cy
                waitlisted: 1, // Ed
                cancelled: 1,  // Fay
            }
        );
        assert_eq!(g.counts.attendance_rate(), Some(0.5));
        // The picnic: Bo and Ana, whose duplicate's sign-up is hers.
        let p = &report.events[1];
        assert_eq!((p.counts.sign_ups, p.counts.registered), (2, 2));
        assert_eq!(report.totals.sign_ups, 8);
        assert_eq!(report.totals.registered, 6);
        assert_eq!(report.totals.checked_in, 2);

        // Only events starting in March.
        let march = s
            .report_events(Some(day(2026, 3, 1)), Some(day(2026, 4, 1)))
            .unwrap();
        assert_eq!(march.events.len(), 1);
        assert_eq!(march.totals, g.counts);
        assert!(matches!(
            s.report_events(Some(day(2026, 4, 1)), Some(day(2026, 3, 1))),
            Err(Error::Invalid { field: "range", .. })
        ));
    }

    /// Two volunteers, January and February 2026; returns the store, the
    /// volunteers and `now`.
    fn volunteering() -> (Store, String, String, Millis) {
        let mut s = Store::open_in_memory().unwrap();
        let t = day(2026, 1, 1);
        let [vera, walt, walt2] = ["Vera", "Walt", "Walter"].map(|n| person(&mut s, n, t));
        let fair = event(&mut s, "Fair", day(2026, 1, 10), None);
        let dinner = event(&mut s, "Dinner", day(2026, 2, 5), None);
        let rained_off = event(&mut s, "Run", day(2026, 2, 8), None);
        let shift = |contact: &str, start: Millis, hours: i64, minutes: Option<i64>| Shift {
            contact_id: contact.to_owned(),
            role: "desk".into(),
            starts_at: start,
            ends_at: start + hours * HOUR,
            minutes_worked: minutes,
        };
        let jan10 = day(2026, 1, 10) + 10 * HOUR;
        let jan20 = day(2026, 1, 20) + 18 * HOUR;
        let feb5 = day(2026, 2, 5) + 9 * HOUR;
        s.add_shift(&fair, shift(&vera, jan10, 4, Some(200)), t)
            .unwrap();
        s.add_shift(&fair, shift(&walt, jan20, 3, None), t).unwrap();
        let walts = s.add_shift(&fair, shift(&walt, jan20, 3, None), t).unwrap();
        s.record_shift_minutes(&fair, &walts, 150, jan20 + 3 * HOUR)
            .unwrap();
        // No minutes recorded: counts its 3 scheduled hours.
        s.add_shift(&dinner, shift(&vera, feb5, 3, None), t)
            .unwrap();
        // Walt's duplicate worked an hour in February.
        s.add_shift(&dinner, shift(&walt2, feb5, 2, Some(60)), t)
            .unwrap();
        // Still to come on 15 February: not worked yet.
        s.add_shift(&dinner, shift(&walt, day(2026, 2, 20), 2, None), t)
            .unwrap();
        // At a cancelled event: not worked.
        s.add_shift(&rained_off, shift(&vera, day(2026, 2, 8), 5, None), t)
            .unwrap();
        s.update_event(&rained_off, t, |e| {
            e.status = EventStatus::Cancelled;
            Ok(())
        })
        .unwrap();
        merge(&mut s, &walt2, &walt, t);
        (s, vera, walt, day(2026, 2, 15))
    }

    #[test]
    fn hours_per_volunteer_and_month_with_scheduled_lengths_said() {
        let (s, vera, walt, now) = volunteering();
        let r = s.report_hours("month", None, None, now).unwrap();
        // Walt's first January shift has no minutes and is counted at its
        // scheduled 180; his second has 150 recorded.
        let rows: Vec<(&str, &str, i64, i64, i64, i64)> = r
            .rows
            .iter()
            .map(|r| {
                (
                    r.period.as_str(),
                    r.name.as_deref().unwrap(),
                    r.worked.shifts,
                    r.worked.minutes,
                    r.worked.scheduled_shifts,
                    r.worked.scheduled_minutes,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("2026-01", "Vera", 1, 200, 0, 0),
                ("2026-01", "Walt", 2, 330, 1, 180),
                ("2026-02", "Vera", 1, 180, 1, 180),
                ("2026-02", "Walt", 1, 60, 0, 0),
            ]
        );
        assert_eq!(r.rows[3].contact_id, walt);
        assert_eq!(r.periods.len(), 2);
        assert_eq!(
            (r.periods[0].period.as_str(), r.periods[0].period_start),
            ("2026-01", day(2026, 1, 1))
        );
        assert_eq!(
            (r.periods[0].volunteers, r.periods[0].worked.minutes),
            (2, 530)
        );
        assert_eq!(
            (r.periods[1].volunteers, r.periods[1].worked.minutes),
            (2, 240)
        );
        let volunteers: Vec<(&str, i64, i64)> = r
            .volunteers
            .iter()
            .map(|v| (v.contact_id.as_str(), v.worked.shifts, v.worked.minutes))
            .collect();
        assert_eq!(
            volunteers,
            [(vera.as_str(), 2, 380), (walt.as_str(), 3, 390)]
        );
        assert_eq!(
            r.total,
            Worked {
                shifts: 5,
                minutes: 770,
                scheduled_shifts: 2,
                scheduled_minutes: 360,
            }
        );
        assert_eq!((r.upcoming_shifts, r.cancelled_event_shifts), (1, 1));

        // By year, from February: one period.
        let feb = s
            .report_hours("year", Some(day(2026, 2, 1)), None, now)
            .unwrap();
        assert_eq!(feb.periods.len(), 1);
        assert_eq!(feb.periods[0].period, "2026");
        assert_eq!(feb.total.minutes, 240);
        // Once the last shift is over, its schedule counts.
        let later = s
            .report_hours("month", None, None, day(2026, 3, 1))
            .unwrap();
        assert_eq!(later.total.minutes, 770 + 120);
        assert_eq!(later.upcoming_shifts, 0);
        assert!(matches!(
            s.report_hours("fortnight", None, None, now),
            Err(Error::Invalid {
                field: "period",
                ..
            })
        ));
    }

    #[test]
    fn new_contacts_by_first_event_and_by_device() {
        let mut office = Store::open_in_memory().unwrap();
        let mut phone = Store::open_in_memory().unwrap();
        let t = day(2026, 2, 1);
        let march1 = event(&mut office, "Open day", day(2026, 3, 1), None);
        let march8 = event(&mut office, "Concert", day(2026, 3, 8), None);
        let a1 = person(&mut office, "Ana", t);
        let a2 = person(&mut office, "Bea", t + HOUR);
        let a3 = person(&mut office, "Ana Silva", t + 2 * HOUR);
        let [b1, b2, b3] = ["Cy", "Di", "Ed"].map(|n| person(&mut phone, n, t + 3 * HOUR));
        for id in [&b1, &b2, &b3] {
            let changes = phone.changes_of(id).unwrap();
            office.apply_changes(id, &changes).unwrap();
        }
        let feb = |d: i64| day(2026, 2, d);
        // Ana's first sign-up is her duplicate's, to the open day.
        office.sign_up(&march1, &a3, false, feb(10)).unwrap();
        office.sign_up(&march8, &a1, false, feb(25)).unwrap();
        office.sign_up(&march8, &a2, false, feb(22)).unwrap();
        // Cy registered for the concert first, then the open day.
        office.sign_up(&march8, &b1, false, feb(21)).unwrap();
        office.sign_up(&march1, &b1, false, feb(26)).unwrap();
        merge(&mut office, &a3, &a1, feb(27));

        let r = office.report_new_contacts(None, None).unwrap();
        assert_eq!(r.contacts, 5, "Ana's duplicate is not counted");
        let by_event: Vec<(&str, Option<&str>, i64)> = r
            .by_event
            .iter()
            .map(|e| (e.event_id.as_str(), e.title.as_deref(), e.new_contacts))
            .collect();
        assert_eq!(
            by_event,
            [
                (march1.as_str(), Some("Open day"), 1), // Ana
                (march8.as_str(), Some("Concert"), 2),  // Bea, Cy
            ]
        );
        assert_eq!(r.without_event, 2); // Di, Ed
        let by_device: Vec<(&str, bool, i64, Millis, Millis)> = r
            .by_device
            .iter()
            .map(|d| {
                (
                    d.device_id.as_str(),
                    d.this_device,
                    d.new_contacts,
                    d.first_created_at,
                    d.last_created_at,
                )
            })
            .collect();
        assert_eq!(
            by_device,
            [
                (phone.device_id(), false, 3, t + 3 * HOUR, t + 3 * HOUR),
                (office.device_id(), true, 2, t, t + HOUR),
            ]
        );

        // Created from an hour on: Bea and the phone's three.
        let r = office.report_new_contacts(Some(t + HOUR), None).unwrap();
        assert_eq!(r.contacts, 4);
        assert_eq!(r.by_event.len(), 1);
        assert_eq!(r.by_event[0].new_contacts, 2);
    }

    /// Donors over 2024–2026, `now` in June 2026.
    fn donors() -> (Store, Millis) {
        let mut s = Store::open_in_memory().unwrap();
        let t = day(2024, 1, 1);
        let [d1, d2, d3, d4, d5] =
            ["Dan", "Eve", "Flo", "Gus", "Daniel"].map(|n| person(&mut s, n, t));
        gift(&mut s, &d4, day(2024, 5, 3), 1_000, "EUR");
        gift(&mut s, &d1, day(2025, 3, 1), 5_000, "EUR");
        gift(&mut s, &d2, day(2025, 6, 1), 10_000, "EUR");
        // Dan's duplicate gave too: his second gift of 2025.
        gift(&mut s, &d5, day(2025, 9, 1), 700, "eur");
        gift(&mut s, &d3, day(2026, 1, 15), 2_000, "EUR");
        gift(&mut s, &d1, day(2026, 2, 1), 2_500, "EUR");
        gift(&mut s, &d3, day(2026, 4, 1), 3_000, "USD");
        gift(&mut s, &d4, day(2026, 5, 1), 1_500, "EUR");
        merge(&mut s, &d5, &d1, day(2026, 5, 2));
        (s, day(2026, 6, 1))
    }

    #[test]
    fn donors_retained_lapsed_new_and_repeat() {
        let (mut s, now) = donors();
        s.clear_cache();
        let r = s.report_donors("year", None, None, now).unwrap();
        type Row<'a> = (&'a str, bool, i64, i64, i64, i64, i64, i64, i64);
        let rows: Vec<Row<'_>> = r
            .periods
            .iter()
            .map(|p| {
                (
                    p.period.as_str(),
                    p.partial,
                    p.donors,
                    p.gifts,
                    p.previous_donors,
                    p.retained,
                    p.lapsed,
                    p.new_donors,
                    p.reactivated,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                // Gus.
                ("2024", false, 1, 1, 0, 0, 0, 1, 0),
                // Dan (twice, once as his duplicate) and Eve, both new;
                // Gus lapsed.
                ("2025", false, 2, 3, 1, 0, 1, 2, 0),
                // Dan retained, Eve lapsed, Flo new, Gus back.
                ("2026", true, 3, 4, 2, 1, 1, 1, 1),
            ]
        );
        assert_eq!(r.periods[2].retention_rate(), Some(0.5));
        assert_eq!(r.periods[0].retention_rate(), None);
        assert_eq!(
            r.periods[1].amounts,
            BTreeMap::from([("EUR".into(), 15_700)])
        );
        assert_eq!(
            r.periods[2].amounts,
            BTreeMap::from([("EUR".into(), 6_000), ("USD".into(), 3_000)])
        );
        assert_eq!(
            (r.periods[2].starts_at, r.periods[2].ends_at),
            (day(2026, 1, 1), day(2027, 1, 1))
        );
        // Over all time: Dan (3 gifts), Flo (2) and Gus (2) gave again.
        assert_eq!((r.donors, r.gifts, r.repeat_donors), (4, 8, 3));
        assert_eq!(r.repeat_gift_rate(), Some(0.75));
        assert_eq!(
            r.amounts,
            BTreeMap::from([("EUR".into(), 22_700), ("USD".into(), 3_000)])
        );
        assert_eq!(r.unreadable_ledgers, 0);

        // 2025 and 2026 only: Gus's 2024 gift still makes 2025's previous
        // period, but no longer a repeat in range.
        let r = s
            .report_donors("year", Some(day(2025, 1, 1)), Some(day(2027, 1, 1)), now)
            .unwrap();
        assert_eq!(r.periods.len(), 2);
        assert_eq!(
            (r.periods[0].previous_donors, r.periods[0].new_donors),
            (1, 2)
        );
        assert_eq!((r.donors, r.gifts, r.repeat_donors), (4, 7, 2));
        assert_eq!(r.repeat_gift_rate(), Some(0.5));

        // By quarter, 2026: Q1 Flo and Dan (nobody gave in 2025's last
        // quarter), Q2 Flo again and Gus.
        let r = s
            .report_donors("quarter", Some(day(2026, 1, 1)), None, now)
            .unwrap();
        let q: Vec<(&str, i64, i64, i64)> = r
            .periods
            .iter()
            .map(|p| (p.period.as_str(), p.donors, p.previous_donors, p.retained))
            .collect();
        assert_eq!(q, [("2026-Q1", 2, 0, 0), ("2026-Q2", 2, 2, 1)]);

        let none = Store::open_in_memory()
            .unwrap()
            .report_donors("year", None, None, now)
            .unwrap();
        assert!(none.periods.is_empty());
        assert_eq!((none.donors, none.repeat_gift_rate()), (0, None));
        assert!(matches!(
            s.report_donors("week", Some(0), None, now),
            Err(Error::Invalid {
                field: "period",
                ..
            })
        ));
    }

    #[test]
    fn huge_amounts_saturate_rather_than_overflow() {
        let mut s = Store::open_in_memory().unwrap();
        let rich = person(&mut s, "Rich", 0);
        gift(&mut s, &rich, day(2026, 1, 1), i64::MAX, "EUR");
        gift(&mut s, &rich, day(2026, 1, 2), i64::MAX, "EUR");
        let r = s
            .report_donors("year", None, None, day(2026, 6, 1))
            .unwrap();
        assert_eq!(r.amounts, BTreeMap::from([("EUR".into(), i64::MAX)]));
        assert_eq!(r.periods[0].amounts["EUR"], i64::MAX);
        assert_eq!((r.gifts, r.repeat_donors), (2, 1));
    }

    #[test]
    fn feedback_response_times_against_the_target() {
        let mut s = Store::open_in_memory().unwrap();
        let t0 = day(2026, 6, 1) + 9 * HOUR;
        let now = t0 + 50 * HOUR;
        let rui = person(&mut s, "Rui", t0);
        let open = |s: &mut Store, at: Millis, contact: Option<&str>| {
            s.create_feedback(
                &NewFeedback {
                    contact_id: contact.map(str::to_owned),
                    channel: "phone".into(),
                    category: "complaint".into(),
                    text: "The door was locked".into(),
                },
                at,
            )
            .unwrap()
        };
        let quick = open(&mut s, t0, None);
        s.respond_feedback(&quick, "Sorry", t0 + 3 * HOUR).unwrap();
        let slow = open(&mut s, t0, None);
        s.respond_feedback(&slow, "Sorry", t0 + 30 * HOUR).unwrap();
        let forgotten = open(&mut s, t0, Some(&rui));
        s.assign_feedback(&forgotten, "Mia", t0 + HOUR).unwrap();
        let closed = open(&mut s, t0 + HOUR, None);
        s.respond_feedback(&closed, "Fixed", t0 + 2 * HOUR).unwrap();
        s.resolve_feedback(&closed, Some(5), t0 + 3 * HOUR).unwrap();
        let fresh = open(&mut s, now - 2 * HOUR, None);

        let r = s.report_feedback(None, None, now).unwrap();
        assert_eq!(r.cases, 5);
        let by_status: Vec<(&str, i64)> = r
            .by_status
            .iter()
            .map(|c| (c.status.as_str(), c.cases))
            .collect();
        assert_eq!(
            by_status,
            [
                ("received", 1),
                ("assigned", 1),
                ("responded", 2),
                ("resolved", 1)
            ]
        );
        assert_eq!(r.target, 24 * HOUR);
        assert_eq!(r.answered, 3);
        // Waits of 1 h, 3 h and 30 h.
        assert_eq!(r.median_first_response, Some(3 * HOUR));
        assert_eq!(r.p90_first_response, Some(30 * HOUR));
        assert_eq!(
            (
                r.within_target,
                r.answered_late,
                r.waiting_overdue,
                r.waiting_in_time
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(r.resolved_without_response, 0);
        assert_eq!(r.share_within_target(), Some(0.5));
        assert_eq!(r.overdue.len(), 1);
        let o = &r.overdue[0];
        assert_eq!(o.id, forgotten);
        assert_eq!(o.contact_name.as_deref(), Some("Rui"));
        assert_eq!(
            (o.status.as_str(), o.assigned_to.as_deref()),
            ("assigned", Some("Mia"))
        );
        assert_eq!((o.age, o.overdue_by), (50 * HOUR, 26 * HOUR));
        // The list agrees with the model's own rule for unanswered cases.
        for id in [&quick, &slow, &forgotten, &closed, &fresh] {
            let case: FeedbackCase = s.feedback(id).unwrap();
            let listed = r.overdue.iter().any(|o| &o.id == id);
            assert_eq!(
                listed,
                case.is_overdue(now) && case.responses.is_empty(),
                "{id}"
            );
        }

        // Received after the first day: the fresh case only.
        let r = s.report_feedback(Some(t0 + 2 * HOUR), None, now).unwrap();
        assert_eq!((r.cases, r.answered, r.waiting_in_time), (1, 0, 1));
        assert_eq!(
            (r.median_first_response, r.share_within_target()),
            (None, None)
        );
    }

    #[test]
    fn consent_coverage_by_channel_without_merged_duplicates() {
        let mut s = Store::open_in_memory().unwrap();
        let t = day(2026, 1, 1);
        let [c1, c2, c3, c4, _c5, c6] =
            ["Ana", "Bo", "Cy", "Di", "Ed", "Ana S."].map(|n| person(&mut s, n, t));
        let consent = |s: &mut Store, id: &str, given: bool, channels: &[&str]| {
            s.update_contact(id, t + 1, |c| {
                c.consent.given = given;
                c.consent.recorded_at = Some(t + 1);
                c.consent.channels = channels.iter().map(|ch| ((*ch).to_owned(), true)).collect();
                Ok(())
            })
            .unwrap();
        };
        consent(&mut s, &c1, true, &["email", "sms"]);
        consent(&mut s, &c2, true, &["email"]);
        consent(&mut s, &c3, true, &[]);
        consent(&mut s, &c4, false, &[]);
        consent(&mut s, &c6, true, &["sms", "post"]);
        merge(&mut s, &c6, &c1, t + 2);
        s.clear_cache();

        let r = s.report_consent(true).unwrap();
        assert_eq!(
            (r.contacts, r.given, r.refused, r.not_recorded),
            (5, 3, Some(1), Some(1))
        );
        assert_eq!(r.coverage(), Some(0.6));
        let channels: Vec<(&str, i64)> = r
            .by_channel
            .iter()
            .map(|c| (c.channel.as_str(), c.contacts))
            .collect();
        assert_eq!(channels, [("email", 2), ("sms", 1)]);
        assert_eq!(r.given_without_channel, 1);
        assert_eq!(r.unreadable_contacts, 0);
        // Without refusals: the same but for the split of the others.
        let quick = s.report_consent(false).unwrap();
        assert_eq!((quick.refused, quick.not_recorded), (None, None));
        assert_eq!(
            ConsentReport {
                refused: Some(1),
                not_recorded: Some(1),
                ..quick
            },
            r
        );
    }

    #[test]
    fn documents_are_read_in_batches_over_two_threads() {
        // More than one batch, with compacted and uncompacted documents.
        let mut s = Store::open_in_memory().unwrap();
        let t = day(2026, 1, 1);
        let news: Vec<NewContact> = (0..2_100)
            .map(|i| NewContact {
                name: format!("Person {i}"),
                ..Default::default()
            })
            .collect();
        let ids = s.create_contacts(&news, t).unwrap();
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
            s.update_contact(id, t + 1, |c| {
                c.consent.given = true;
                let channel = if i % 2 == 0 { "email" } else { "sms" };
                c.consent.channels = [(channel.to_owned(), true)].into_iter().collect();
                Ok(())
            })
            .unwrap();
        }
        s.compact(&ids[0]).unwrap();
        let r = s.report_consent(true).unwrap();
        assert_eq!(
            (r.contacts, r.given, r.not_recorded),
            (2_100, 700, Some(1_400))
        );
        assert_eq!(
            r.by_channel,
            [
                ChannelConsent {
                    channel: "email".into(),
                    contacts: 350
                },
                ChannelConsent {
                    channel: "sms".into(),
                    contacts: 350
                }
            ]
        );
    }
}
