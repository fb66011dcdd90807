//! What each report returns.

use super::*;

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
    pub(super) fn add(&mut self, other: &SignupCounts) {
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
    pub(super) fn add(&mut self, other: &Worked) {
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
