//! `muster report …`: the coordinator's reports, as text or JSON
//! (cli/REPORTS.md describes each one and its JSON).
//!
//! The figures come from `Store::reports()` in the core; this module reads
//! the clock (the core never does), turns dates into ranges, and prints.
//! `--json` shapes are a contract like those of cli/JSON.md: times are
//! RFC 3339 in UTC, money is in minor units (with the decimal amount as a
//! string beside it), rates are numbers from 0 to 1 rounded to 4 decimals,
//! `null` when there is nothing to divide by.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use muster_core::Store;
use serde::Serialize;

use crate::json::time;

#[macro_use]
mod json;
mod text;

use json::*;
use text::*;

/// Which report.
#[derive(Subcommand)]
pub enum ReportCommand {
    /// Per event: signed up, registered (holding a seat), checked in,
    /// walk-ins, no-shows, waitlisted, cancelled, with totals.
    Events {
        #[command(flatten)]
        range: DateRange,
        /// Print one JSON document (shapes: cli/REPORTS.md).
        #[arg(long)]
        json: bool,
    },
    /// Minutes worked per volunteer and period, with totals; shifts
    /// without recorded minutes count their scheduled length (and say so).
    Hours {
        /// The periods to total by, in UTC.
        #[arg(long, value_enum, default_value_t = Period::Month)]
        period: Period,
        #[command(flatten)]
        range: DateRange,
        #[command(flatten)]
        as_of: AsOf,
        /// Print one JSON document (shapes: cli/REPORTS.md).
        #[arg(long)]
        json: bool,
    },
    /// New contacts by the first event they signed up to, and by the device
    /// that created them.
    NewContacts {
        #[command(flatten)]
        range: DateRange,
        /// Print one JSON document (shapes: cli/REPORTS.md).
        #[arg(long)]
        json: bool,
    },
    /// Donors per period: retained from the previous period, lapsed, new,
    /// back; retention and repeat-gift rates; amounts per currency.
    Donors {
        /// The periods to compare, in UTC.
        #[arg(long, value_enum, default_value_t = Period::Year)]
        period: Period,
        #[command(flatten)]
        range: DateRange,
        #[command(flatten)]
        as_of: AsOf,
        /// Print one JSON document (shapes: cli/REPORTS.md).
        #[arg(long)]
        json: bool,
    },
    /// Feedback cases by status, first-response times against the 24-hour
    /// target, and the cases overdue.
    Feedback {
        #[command(flatten)]
        range: DateRange,
        #[command(flatten)]
        as_of: AsOf,
        /// Print one JSON document (shapes: cli/REPORTS.md).
        #[arg(long)]
        json: bool,
    },
    /// Contacts who gave consent, and per channel.
    Consent {
        /// Also tell, of those who did not give consent, who refused and
        /// who was never asked (reads every contact record: slower).
        #[arg(long)]
        refusals: bool,
        /// Print one JSON document (shapes: cli/REPORTS.md).
        #[arg(long)]
        json: bool,
    },
}

/// Calendar periods, in UTC.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Period {
    /// ISO weeks, Monday to Sunday (2026-W05).
    Week,
    /// Months (2026-03).
    Month,
    /// Quarters (2026-Q1).
    Quarter,
    /// Years (2026).
    Year,
}

impl Period {
    fn as_str(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }
}

/// `--from DATE --to DATE`: whole days in UTC, both included.
#[derive(Args)]
pub struct DateRange {
    /// First day included (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    from: Option<jiff::civil::Date>,
    /// Last day included (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    to: Option<jiff::civil::Date>,
}

/// `--as-of TIME`: the reports that depend on the present.
#[derive(Args)]
pub struct AsOf {
    /// Compute as if it were this time (RFC 3339, e.g.
    /// 2026-06-30T23:59:59Z) rather than now.
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    as_of: Option<i64>,
}

impl AsOf {
    fn now(&self) -> i64 {
        self.as_of
            .unwrap_or_else(|| jiff::Timestamp::now().as_millisecond())
    }
}

fn parse_date(s: &str) -> Result<jiff::civil::Date, String> {
    s.parse::<jiff::civil::Date>()
        .map_err(|e| format!("write a date as YYYY-MM-DD, such as 2026-03-31 ({e})"))
}

fn parse_instant(s: &str) -> Result<i64, String> {
    crate::json::parse_time(s).map_err(|e| e.to_string())
}

/// The range in milliseconds, `to` exclusive (the day after `--to`).
/// An end before the start is a usage error: exit 2, as clap does.
struct RangeMs {
    from: Option<i64>,
    to: Option<i64>,
}

impl DateRange {
    fn millis(&self) -> Result<RangeMs> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && to < from
        {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("--to {to} is before --from {from}; the range is from the first day to the last, both included\n"),
            )
            .exit();
        }
        let midnight = |d: jiff::civil::Date| -> Result<i64> {
            Ok(d.to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .with_context(|| format!("{d} is out of range"))?
                .timestamp()
                .as_millisecond())
        };
        Ok(RangeMs {
            from: self.from.map(midnight).transpose()?,
            to: self
                .to
                .map(|d| {
                    let next = d
                        .tomorrow()
                        .with_context(|| format!("{d} is out of range"))?;
                    midnight(next)
                })
                .transpose()?,
        })
    }

    /// The range as JSON shows it.
    fn json(&self) -> RangeJson {
        RangeJson {
            from: self.from.map(|d| d.to_string()),
            to: self.to.map(|d| d.to_string()),
        }
    }

    /// " from 2026-01-01 to 2026-03-31", or nothing.
    fn words(&self) -> String {
        let mut s = String::new();
        if let Some(from) = self.from {
            s.push_str(&format!(" from {from}"));
        }
        if let Some(to) = self.to {
            s.push_str(&format!(" to {to}"));
        }
        s
    }
}

/// `muster report …`.
pub fn report(store: &mut Store, command: ReportCommand) -> Result<()> {
    match command {
        ReportCommand::Events { range, json } => events(store, &range, json),
        ReportCommand::Hours {
            period,
            range,
            as_of,
            json,
        } => hours(store, period, &range, as_of.now(), json),
        ReportCommand::NewContacts { range, json } => new_contacts(store, &range, json),
        ReportCommand::Donors {
            period,
            range,
            as_of,
            json,
        } => donors(store, period, &range, as_of.now(), json),
        ReportCommand::Feedback { range, as_of, json } => {
            feedback(store, &range, as_of.now(), json)
        }
        ReportCommand::Consent { refusals, json } => consent(store, refusals, json),
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

// ----- the reports -------------------------------------------------------------

fn events(store: &Store, range: &DateRange, json: bool) -> Result<()> {
    let RangeMs { from, to } = range.millis()?;
    let r = store.reports().events(from, to)?;
    let out = EventsJson {
        range: range.json(),
        totals: EventsTotalJson {
            events: r.events.len(),
            counts: counts_json!(r.totals),
        },
        events: r
            .events
            .iter()
            .map(|e| EventJson {
                id: e.id.clone(),
                title: e.title.clone(),
                starts_at: time(e.starts_at),
                status: e.status.clone(),
                capacity: e.capacity,
                counts: counts_json!(e.counts),
            })
            .collect(),
    };
    if json {
        return print_json(&out);
    }
    if out.events.is_empty() {
        println!("no events{}", range.words());
        return Ok(());
    }
    println!(
        "{:<16}  {:<28} {:<9} {:>8} {:>10} {:>10} {:>8} {:>8} {:>10} {:>9} {:>5}",
        "starts",
        "event",
        "status",
        "sign-ups",
        "registered",
        "checked in",
        "walk-ins",
        "no-shows",
        "waitlisted",
        "cancelled",
        "came"
    );
    let line = |starts: &str, title: &str, status: &str, c: &CountsJson| {
        println!(
            "{:<16}  {:<28} {:<9} {:>8} {:>10} {:>10} {:>8} {:>8} {:>10} {:>9} {:>5}",
            starts,
            clip(title, 28),
            status,
            c.sign_ups,
            c.registered,
            c.checked_in,
            c.walk_ins,
            c.no_shows,
            c.waitlisted,
            c.cancelled,
            percent0(c.attendance_rate)
        );
    };
    for e in &out.events {
        line(&minute(&e.starts_at), &e.title, &e.status, &e.counts);
    }
    line(
        "",
        &format!("total ({})", plural(out.totals.events as i64, "event")),
        "",
        &out.totals.counts,
    );
    println!(
        "registered = holding a seat (checked in and no-shows included); came = checked in / registered"
    );
    Ok(())
}

fn hours(store: &Store, period: Period, range: &DateRange, now: i64, json: bool) -> Result<()> {
    let RangeMs { from, to } = range.millis()?;
    let r = store.reports().hours(period.as_str(), from, to, now)?;
    let out = HoursJson {
        period: r.period.clone(),
        range: range.json(),
        as_of: time(now),
        rows: r
            .rows
            .iter()
            .map(|x| HoursRowJson {
                period: x.period.clone(),
                period_start: time(x.period_start),
                contact_id: x.contact_id.clone(),
                name: x.name.clone(),
                worked: worked_json!(x.worked),
            })
            .collect(),
        periods: r
            .periods
            .iter()
            .map(|p| HoursPeriodJson {
                period: p.period.clone(),
                period_start: time(p.period_start),
                volunteers: p.volunteers,
                worked: worked_json!(p.worked),
            })
            .collect(),
        volunteers: r
            .volunteers
            .iter()
            .map(|v| HoursVolunteerJson {
                contact_id: v.contact_id.clone(),
                name: v.name.clone(),
                worked: worked_json!(v.worked),
            })
            .collect(),
        total: worked_json!(r.total),
        upcoming_shifts: r.upcoming_shifts,
        cancelled_event_shifts: r.cancelled_event_shifts,
    };
    if json {
        return print_json(&out);
    }
    if out.rows.is_empty() {
        println!("no volunteer time recorded{}", range.words());
    } else {
        let line = |period: &str, who: &str, w: &WorkedJson| {
            let text = format!(
                "{:<9} {:<32} {:>6} {:>8} {:>8}  {}",
                period,
                clip(who, 32),
                w.shifts,
                w.minutes,
                clock(w.minutes),
                from_schedule(w)
            );
            println!("{}", text.trim_end());
        };
        println!(
            "{:<9} {:<32} {:>6} {:>8} {:>8}  from schedule (no minutes recorded)",
            period.as_str(),
            "volunteer",
            "shifts",
            "minutes",
            "hours"
        );
        let mut rows = out.rows.iter().peekable();
        for p in &out.periods {
            while let Some(row) = rows.next_if(|row| row.period == p.period) {
                line(&row.period, &who(&row.name, &row.contact_id), &row.worked);
            }
            line(
                "",
                &format!("total {} ({})", p.period, plural(p.volunteers, "volunteer")),
                &p.worked,
            );
        }
        println!();
        println!("per volunteer{}", range.words());
        for v in &out.volunteers {
            line("", &who(&v.name, &v.contact_id), &v.worked);
        }
        line("", "total", &out.total);
    }
    let mut left_out = Vec::new();
    if out.upcoming_shifts > 0 {
        left_out.push(format!(
            "{} still to come",
            plural(out.upcoming_shifts, "shift")
        ));
    }
    if out.cancelled_event_shifts > 0 {
        left_out.push(format!(
            "{} at cancelled events",
            plural(out.cancelled_event_shifts, "shift")
        ));
    }
    if !left_out.is_empty() {
        println!("not counted (no minutes recorded): {}", left_out.join(", "));
    }
    Ok(())
}

fn new_contacts(store: &Store, range: &DateRange, json: bool) -> Result<()> {
    let RangeMs { from, to } = range.millis()?;
    let r = store.reports().new_contacts(from, to)?;
    let out = NewContactsJson {
        range: range.json(),
        contacts: r.contacts,
        by_event: r
            .by_event
            .iter()
            .map(|e| NewAtEventJson {
                event_id: e.event_id.clone(),
                title: e.title.clone(),
                starts_at: e.starts_at.map(time),
                new_contacts: e.new_contacts,
            })
            .collect(),
        without_event: r.without_event,
        by_device: r
            .by_device
            .iter()
            .map(|d| NewByDeviceJson {
                device_id: d.device_id.clone(),
                this_device: d.this_device,
                new_contacts: d.new_contacts,
                first_created_at: time(d.first_created_at),
                last_created_at: time(d.last_created_at),
            })
            .collect(),
    };
    if json {
        return print_json(&out);
    }
    println!(
        "{} created{} (merged duplicates not counted)",
        plural(out.contacts, "new contact"),
        range.words()
    );
    if out.contacts == 0 {
        return Ok(());
    }
    println!();
    println!("by the first event they signed up to");
    for e in &out.by_event {
        let starts = e.starts_at.as_deref().map_or(String::new(), minute);
        let title = e
            .title
            .clone()
            .unwrap_or_else(|| format!("{} (not on this device)", e.event_id));
        println!(
            "  {:<16}  {:<40} {:>7}",
            starts,
            clip(&title, 40),
            e.new_contacts
        );
    }
    println!(
        "  {:<16}  {:<40} {:>7}",
        "", "no sign-up yet", out.without_event
    );
    println!();
    println!("by the device that created them");
    for d in &out.by_device {
        println!(
            "  {}{:<14} {:>7}   {} to {}",
            d.device_id,
            if d.this_device {
                " (this device)"
            } else if d.device_id == muster_core::registration::PAGE_SOURCE {
                " (registered online)"
            } else {
                ""
            },
            d.new_contacts,
            minute(&d.first_created_at),
            minute(&d.last_created_at)
        );
    }
    Ok(())
}

fn donors(store: &Store, period: Period, range: &DateRange, now: i64, json: bool) -> Result<()> {
    let RangeMs { from, to } = range.millis()?;
    let r = store.reports().donors(period.as_str(), from, to, now)?;
    let out = DonorsJson {
        period: r.period.clone(),
        range: range.json(),
        as_of: time(now),
        periods: r
            .periods
            .iter()
            .map(|p| DonorPeriodJson {
                period: p.period.clone(),
                starts_at: time(p.starts_at),
                ends_at: time(p.ends_at),
                partial: p.partial,
                donors: p.donors,
                gifts: p.gifts,
                previous_donors: p.previous_donors,
                retained: p.retained,
                lapsed: p.lapsed,
                new_donors: p.new_donors,
                reactivated: p.reactivated,
                retention_rate: rate(p.retention_rate()),
                amounts: amounts_json(&p.amounts),
            })
            .collect(),
        donors: r.donors,
        gifts: r.gifts,
        repeat_donors: r.repeat_donors,
        repeat_gift_rate: rate(r.repeat_gift_rate()),
        amounts: amounts_json(&r.amounts),
        unreadable_ledgers: r.unreadable_ledgers,
    };
    warn_unreadable(r.unreadable_ledgers, "private ledger");
    if json {
        return print_json(&out);
    }
    if out.periods.is_empty() {
        println!("no gifts recorded");
        return Ok(());
    }
    println!(
        "{:<9} {:>6} {:>6} {:>8} {:>6} {:>5} {:>5} {:>16}  amounts",
        period.as_str(),
        "donors",
        "gifts",
        "retained",
        "lapsed",
        "new",
        "back",
        "retention"
    );
    for p in &out.periods {
        let retention = match p.retention_rate {
            Some(rate) => format!(
                "{} ({}/{})",
                percent1(Some(rate)),
                p.retained,
                p.previous_donors
            ),
            None => "-".to_owned(),
        };
        let text = format!(
            "{:<9} {:>6} {:>6} {:>8} {:>6} {:>5} {:>5} {:>16}  {}",
            format!("{}{}", p.period, if p.partial { "*" } else { "" }),
            p.donors,
            p.gifts,
            p.retained,
            p.lapsed,
            p.new_donors,
            p.reactivated,
            retention,
            money(&p.amounts)
        );
        println!("{}", text.trim_end());
    }
    if out.periods.iter().any(|p| p.partial) {
        println!("* under way: figures so far");
    }
    println!(
        "retained: gave in the previous {p} and this one; retention = retained / donors of the previous {p}; back: gave before, not in the previous {p}",
        p = period.as_str()
    );
    println!();
    let over = if range.from.is_some() || range.to.is_some() {
        format!("in the range{}", range.words())
    } else {
        "over the whole history".to_owned()
    };
    println!(
        "{over}: {} and {}; {} gave more than once (repeat-gift rate {})",
        plural(out.donors, "donor"),
        plural(out.gifts, "gift"),
        out.repeat_donors,
        percent1(out.repeat_gift_rate)
    );
    if !out.amounts.is_empty() {
        println!("received: {}", money(&out.amounts));
    }
    Ok(())
}

fn feedback(store: &Store, range: &DateRange, now: i64, json: bool) -> Result<()> {
    let RangeMs { from, to } = range.millis()?;
    let r = store.reports().feedback(from, to, now)?;
    let out = FeedbackJson {
        range: range.json(),
        as_of: time(now),
        cases: r.cases,
        by_status: r
            .by_status
            .iter()
            .map(|s| StatusJson {
                status: s.status.clone(),
                cases: s.cases,
            })
            .collect(),
        target_minutes: r.target / MINUTE,
        answered: r.answered,
        median_first_response_minutes: r.median_first_response.map(|t| t / MINUTE),
        p90_first_response_minutes: r.p90_first_response.map(|t| t / MINUTE),
        within_target: r.within_target,
        answered_late: r.answered_late,
        waiting_overdue: r.waiting_overdue,
        waiting_in_time: r.waiting_in_time,
        resolved_without_response: r.resolved_without_response,
        share_within_target: rate(r.share_within_target()),
        overdue: r
            .overdue
            .iter()
            .map(|c| OverdueJson {
                id: c.id.clone(),
                contact_id: c.contact_id.clone(),
                contact_name: c.contact_name.clone(),
                channel: c.channel.clone(),
                category: c.category.clone(),
                status: c.status.clone(),
                assigned_to: c.assigned_to.clone(),
                received_at: time(c.received_at),
                due_at: time(c.due_at),
                age_minutes: c.age / MINUTE,
                overdue_minutes: c.overdue_by / MINUTE,
            })
            .collect(),
    };
    if json {
        return print_json(&out);
    }
    let statuses: Vec<String> = out
        .by_status
        .iter()
        .map(|s| format!("{} {}", s.cases, s.status))
        .collect();
    println!(
        "{}{}: {}",
        plural(out.cases, "case"),
        range.words(),
        statuses.join(", ")
    );
    if out.cases == 0 {
        return Ok(());
    }
    match (
        out.median_first_response_minutes,
        out.p90_first_response_minutes,
    ) {
        (Some(median), Some(p90)) => println!(
            "first response ({} answered): median {}, 90th percentile {}",
            out.answered,
            duration(median),
            duration(p90)
        ),
        _ => println!("first response: no case answered yet"),
    }
    println!(
        "{} target: {} met, {} missed ({} answered late, {} still waiting) = {} within target",
        duration(out.target_minutes),
        out.within_target,
        out.answered_late + out.waiting_overdue,
        out.answered_late,
        out.waiting_overdue,
        percent1(out.share_within_target)
    );
    let mut aside = Vec::new();
    if out.waiting_in_time > 0 {
        aside.push(format!("{} not yet due", out.waiting_in_time));
    }
    if out.resolved_without_response > 0 {
        aside.push(format!(
            "{} resolved without a response",
            out.resolved_without_response
        ));
    }
    if !aside.is_empty() {
        println!("not counted in the share: {}", aside.join(", "));
    }
    if out.overdue.is_empty() {
        println!("no case is overdue");
        return Ok(());
    }
    println!();
    println!(
        "overdue: waiting for a first response for more than {} ({}), oldest first",
        duration(out.target_minutes),
        out.overdue.len()
    );
    for c in &out.overdue {
        let from = match (&c.contact_name, &c.contact_id) {
            (Some(name), _) => format!(", from {name}"),
            (None, Some(id)) => format!(", from {id}"),
            (None, None) => String::new(),
        };
        println!(
            "  {}  received {}  age {}  overdue by {}  {}  {} by {}{}",
            c.id,
            minute(&c.received_at),
            duration(c.age_minutes),
            duration(c.overdue_minutes),
            c.assigned_to
                .as_deref()
                .map_or("unassigned".to_owned(), |a| format!("assigned to {a}")),
            c.category,
            c.channel,
            from
        );
    }
    Ok(())
}

fn consent(store: &Store, refusals: bool, json: bool) -> Result<()> {
    let r = store.reports().consent(refusals)?;
    let out = ConsentJson {
        contacts: r.contacts,
        given: r.given,
        not_given: r.contacts - r.given,
        refused: r.refused,
        not_recorded: r.not_recorded,
        coverage: rate(r.coverage()),
        by_channel: r
            .by_channel
            .iter()
            .map(|c| ChannelJson {
                channel: c.channel.clone(),
                contacts: c.contacts,
                share_of_given: rate((r.given > 0).then(|| c.contacts as f64 / r.given as f64)),
            })
            .collect(),
        given_without_channel: r.given_without_channel,
        unreadable_contacts: r.unreadable_contacts,
    };
    warn_unreadable(r.unreadable_contacts, "contact");
    if json {
        return print_json(&out);
    }
    let others = match (out.refused, out.not_recorded) {
        (Some(refused), Some(never)) => format!(" ({refused} refused, {never} never asked)"),
        _ => String::new(),
    };
    println!(
        "{} (merged duplicates not counted): {} gave consent ({}), {} did not{others}",
        plural(out.contacts, "contact"),
        out.given,
        percent1(out.coverage),
        out.not_given
    );
    if out.given == 0 {
        return Ok(());
    }
    println!("by channel, of the {} who gave consent", out.given);
    for c in &out.by_channel {
        println!(
            "  {:<20} {:>7}  {:>6}",
            c.channel,
            c.contacts,
            percent1(c.share_of_given)
        );
    }
    if out.given_without_channel > 0 {
        println!(
            "  {:<20} {:>7}",
            "(no channel named)", out.given_without_channel
        );
    }
    Ok(())
}
