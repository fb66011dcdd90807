//! The `--json` shapes of the reports (cli/REPORTS.md): a contract, like
//! cli/JSON.md's. Times are RFC 3339, money in minor units beside the
//! amount as text, rates from 0 to 1.

use super::*;

/// The dates a report covers, as given (`null` when open).
#[derive(Serialize)]
pub(super) struct RangeJson {
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
}

#[derive(Serialize)]
pub(super) struct CountsJson {
    pub(super) sign_ups: i64,
    pub(super) registered: i64,
    pub(super) checked_in: i64,
    pub(super) walk_ins: i64,
    pub(super) no_shows: i64,
    pub(super) waitlisted: i64,
    pub(super) cancelled: i64,
    pub(super) attendance_rate: Option<f64>,
}

/// A core `SignupCounts` as JSON (a macro: the core type is not named here).
macro_rules! counts_json {
    ($c:expr) => {{
        let c = &$c;
        CountsJson {
            sign_ups: c.sign_ups,
            registered: c.registered,
            checked_in: c.checked_in,
            walk_ins: c.walk_ins,
            no_shows: c.no_shows,
            waitlisted: c.waitlisted,
            cancelled: c.cancelled,
            attendance_rate: rate(c.attendance_rate()),
        }
    }};
}

#[derive(Serialize)]
pub(super) struct EventJson {
    pub(super) id: String,
    pub(super) title: String,
    pub(super) starts_at: String,
    pub(super) status: String,
    pub(super) capacity: Option<i64>,
    #[serde(flatten)]
    pub(super) counts: CountsJson,
}

#[derive(Serialize)]
pub(super) struct EventsTotalJson {
    pub(super) events: usize,
    #[serde(flatten)]
    pub(super) counts: CountsJson,
}

#[derive(Serialize)]
pub(super) struct EventsJson {
    pub(super) range: RangeJson,
    pub(super) events: Vec<EventJson>,
    pub(super) totals: EventsTotalJson,
}

#[derive(Serialize)]
pub(super) struct WorkedJson {
    pub(super) shifts: i64,
    pub(super) minutes: i64,
    pub(super) scheduled_shifts: i64,
    pub(super) scheduled_minutes: i64,
}

/// A core `Worked` as JSON.
macro_rules! worked_json {
    ($w:expr) => {{
        let w = &$w;
        WorkedJson {
            shifts: w.shifts,
            minutes: w.minutes,
            scheduled_shifts: w.scheduled_shifts,
            scheduled_minutes: w.scheduled_minutes,
        }
    }};
}

#[derive(Serialize)]
pub(super) struct HoursRowJson {
    pub(super) period: String,
    pub(super) period_start: String,
    pub(super) contact_id: String,
    pub(super) name: Option<String>,
    #[serde(flatten)]
    pub(super) worked: WorkedJson,
}

#[derive(Serialize)]
pub(super) struct HoursPeriodJson {
    pub(super) period: String,
    pub(super) period_start: String,
    pub(super) volunteers: i64,
    #[serde(flatten)]
    pub(super) worked: WorkedJson,
}

#[derive(Serialize)]
pub(super) struct HoursVolunteerJson {
    pub(super) contact_id: String,
    pub(super) name: Option<String>,
    #[serde(flatten)]
    pub(super) worked: WorkedJson,
}

#[derive(Serialize)]
pub(super) struct HoursJson {
    pub(super) period: String,
    pub(super) range: RangeJson,
    pub(super) as_of: String,
    pub(super) rows: Vec<HoursRowJson>,
    pub(super) periods: Vec<HoursPeriodJson>,
    pub(super) volunteers: Vec<HoursVolunteerJson>,
    pub(super) total: WorkedJson,
    pub(super) upcoming_shifts: i64,
    pub(super) cancelled_event_shifts: i64,
}

#[derive(Serialize)]
pub(super) struct NewAtEventJson {
    pub(super) event_id: String,
    pub(super) title: Option<String>,
    pub(super) starts_at: Option<String>,
    pub(super) new_contacts: i64,
}

#[derive(Serialize)]
pub(super) struct NewByDeviceJson {
    pub(super) device_id: String,
    pub(super) this_device: bool,
    pub(super) new_contacts: i64,
    pub(super) first_created_at: String,
    pub(super) last_created_at: String,
}

#[derive(Serialize)]
pub(super) struct NewContactsJson {
    pub(super) range: RangeJson,
    pub(super) contacts: i64,
    pub(super) by_event: Vec<NewAtEventJson>,
    pub(super) without_event: i64,
    pub(super) by_device: Vec<NewByDeviceJson>,
}

/// An amount of one currency.
#[derive(Serialize)]
pub(super) struct AmountJson {
    pub(super) currency: String,
    /// In the currency's minor unit (cents).
    pub(super) amount_minor: i64,
    /// The same as a decimal string ("227.00"): never a float.
    pub(super) amount: String,
}

pub(super) fn amounts_json(amounts: &BTreeMap<String, i64>) -> Vec<AmountJson> {
    amounts
        .iter()
        .map(|(currency, minor)| AmountJson {
            currency: currency.clone(),
            amount_minor: *minor,
            amount: muster_core::money::decimal_amount(*minor, currency),
        })
        .collect()
}

#[derive(Serialize)]
pub(super) struct DonorPeriodJson {
    pub(super) period: String,
    pub(super) starts_at: String,
    pub(super) ends_at: String,
    pub(super) partial: bool,
    pub(super) donors: i64,
    pub(super) gifts: i64,
    pub(super) previous_donors: i64,
    pub(super) retained: i64,
    pub(super) lapsed: i64,
    pub(super) new_donors: i64,
    pub(super) reactivated: i64,
    pub(super) retention_rate: Option<f64>,
    pub(super) amounts: Vec<AmountJson>,
}

#[derive(Serialize)]
pub(super) struct DonorsJson {
    pub(super) period: String,
    pub(super) range: RangeJson,
    pub(super) as_of: String,
    pub(super) periods: Vec<DonorPeriodJson>,
    pub(super) donors: i64,
    pub(super) gifts: i64,
    pub(super) repeat_donors: i64,
    pub(super) repeat_gift_rate: Option<f64>,
    pub(super) amounts: Vec<AmountJson>,
    pub(super) unreadable_ledgers: i64,
}

#[derive(Serialize)]
pub(super) struct StatusJson {
    pub(super) status: String,
    pub(super) cases: i64,
}

#[derive(Serialize)]
pub(super) struct OverdueJson {
    pub(super) id: String,
    pub(super) contact_id: Option<String>,
    pub(super) contact_name: Option<String>,
    pub(super) channel: String,
    pub(super) category: String,
    pub(super) status: String,
    pub(super) assigned_to: Option<String>,
    pub(super) received_at: String,
    pub(super) due_at: String,
    pub(super) age_minutes: i64,
    pub(super) overdue_minutes: i64,
}

#[derive(Serialize)]
pub(super) struct FeedbackJson {
    pub(super) range: RangeJson,
    pub(super) as_of: String,
    pub(super) cases: i64,
    pub(super) by_status: Vec<StatusJson>,
    pub(super) target_minutes: i64,
    pub(super) answered: i64,
    pub(super) median_first_response_minutes: Option<i64>,
    pub(super) p90_first_response_minutes: Option<i64>,
    pub(super) within_target: i64,
    pub(super) answered_late: i64,
    pub(super) waiting_overdue: i64,
    pub(super) waiting_in_time: i64,
    pub(super) resolved_without_response: i64,
    pub(super) share_within_target: Option<f64>,
    pub(super) overdue: Vec<OverdueJson>,
}

#[derive(Serialize)]
pub(super) struct ChannelJson {
    pub(super) channel: String,
    pub(super) contacts: i64,
    pub(super) share_of_given: Option<f64>,
}

#[derive(Serialize)]
pub(super) struct ConsentJson {
    pub(super) contacts: i64,
    pub(super) given: i64,
    pub(super) not_given: i64,
    pub(super) refused: Option<i64>,
    pub(super) not_recorded: Option<i64>,
    pub(super) coverage: Option<f64>,
    pub(super) by_channel: Vec<ChannelJson>,
    pub(super) given_without_channel: i64,
    pub(super) unreadable_contacts: i64,
}
