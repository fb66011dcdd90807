//! The reports, tested on a store in memory.

use super::*;
use crate::model::{EventStatus, NewContact, NewEvent, NewFeedback, Shift};
use crate::{Donation, FeedbackCase, Store};

const HOUR: Millis = 3_600_000;

/// Midnight UTC of a date.
fn day(y: i64, m: i64, d: i64) -> Millis {
    let date = jiff::civil::date(y as i16, m as i8, d as i8);
    jiff::tz::TimeZone::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .unwrap()
        .as_millisecond()
}

fn person(store: &mut Store, name: &str, now: Millis) -> String {
    store.create_contact(&NewContact::named(name), now).unwrap()
}

fn event(store: &mut Store, title: &str, starts_at: Millis, capacity: Option<i64>) -> String {
    store
        .create_event(
            &NewEvent::new(title, starts_at, "Hall", capacity),
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
        .add_to_ledger(
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
    assert_eq!(period::utc_date(-1), jiff::civil::date(1969, 12, 31));
    assert_eq!(
        period::utc_date(day(2024, 2, 29) + DAY - 1),
        jiff::civil::date(2024, 2, 29)
    );
    // A time no calendar holds (a damaged record) still has a period, and
    // periods stay in order at the ends of the calendar.
    for period in [Period::Week, Period::Month, Period::Quarter, Period::Year] {
        for t in [Millis::MIN, Millis::MAX] {
            let index = period.index(t);
            assert!(period.start(index) <= period.start(index + 1));
            assert!(!period.label(index).is_empty());
        }
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

    let report = s.reports().events(None, None).unwrap();
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
        .reports()
        .events(Some(day(2026, 3, 1)), Some(day(2026, 4, 1)))
        .unwrap();
    assert_eq!(march.events.len(), 1);
    assert_eq!(march.totals, g.counts);
    assert!(matches!(
        s.reports()
            .events(Some(day(2026, 4, 1)), Some(day(2026, 3, 1))),
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
    let r = s.reports().hours("month", None, None, now).unwrap();
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
        .reports()
        .hours("year", Some(day(2026, 2, 1)), None, now)
        .unwrap();
    assert_eq!(feb.periods.len(), 1);
    assert_eq!(feb.periods[0].period, "2026");
    assert_eq!(feb.total.minutes, 240);
    // Once the last shift is over, its schedule counts.
    let later = s
        .reports()
        .hours("month", None, None, day(2026, 3, 1))
        .unwrap();
    assert_eq!(later.total.minutes, 770 + 120);
    assert_eq!(later.upcoming_shifts, 0);
    assert!(matches!(
        s.reports().hours("fortnight", None, None, now),
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

    let r = office.reports().new_contacts(None, None).unwrap();
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
    let r = office.reports().new_contacts(Some(t + HOUR), None).unwrap();
    assert_eq!(r.contacts, 4);
    assert_eq!(r.by_event.len(), 1);
    assert_eq!(r.by_event[0].new_contacts, 2);
}

/// Donors over 2024–2026, `now` in June 2026.
fn donors() -> (Store, Millis) {
    let mut s = Store::open_in_memory().unwrap();
    let t = day(2024, 1, 1);
    let [d1, d2, d3, d4, d5] = ["Dan", "Eve", "Flo", "Gus", "Daniel"].map(|n| person(&mut s, n, t));
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
    let r = s.reports().donors("year", None, None, now).unwrap();
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
        .reports()
        .donors("year", Some(day(2025, 1, 1)), Some(day(2027, 1, 1)), now)
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
        .reports()
        .donors("quarter", Some(day(2026, 1, 1)), None, now)
        .unwrap();
    let q: Vec<(&str, i64, i64, i64)> = r
        .periods
        .iter()
        .map(|p| (p.period.as_str(), p.donors, p.previous_donors, p.retained))
        .collect();
    assert_eq!(q, [("2026-Q1", 2, 0, 0), ("2026-Q2", 2, 2, 1)]);

    let none = Store::open_in_memory()
        .unwrap()
        .reports()
        .donors("year", None, None, now)
        .unwrap();
    assert!(none.periods.is_empty());
    assert_eq!((none.donors, none.repeat_gift_rate()), (0, None));
    assert!(matches!(
        s.reports().donors("week", Some(0), None, now),
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
        .reports()
        .donors("year", None, None, day(2026, 6, 1))
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

    let r = s.reports().feedback(None, None, now).unwrap();
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
    let r = s
        .reports()
        .feedback(Some(t0 + 2 * HOUR), None, now)
        .unwrap();
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

    let r = s.reports().consent(true).unwrap();
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
    let quick = s.reports().consent(false).unwrap();
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
        .map(|i| NewContact::named(format!("Person {i}")))
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
    let r = s.reports().consent(true).unwrap();
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
