//! `muster report …` on stores filled through the core with fixtures whose
//! every figure is known, run as the built binary.

mod common;

use common::Muster;
use muster_core::model::{EventStatus, NewFeedback};
use muster_core::{Donation, NewContact, NewEvent, Shift, Store};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Midnight UTC of a date.
fn day(date: &str) -> i64 {
    let d: jiff::civil::Date = date.parse().unwrap();
    d.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn person(store: &mut Store, name: &str, now: i64) -> String {
    store.create_contact(&NewContact::named(name), now).unwrap()
}

fn event(store: &mut Store, title: &str, starts_at: i64, capacity: Option<i64>) -> String {
    store
        .create_event(
            &NewEvent::new(title, starts_at, "Hall", capacity),
            starts_at - 30 * DAY,
        )
        .unwrap()
}

/// Marks `duplicate` as merged into `kept`, the way the brief's fixture
/// asks: through `update_contact`.
fn merge(store: &mut Store, duplicate: &str, kept: &str, now: i64) {
    let kept = kept.to_owned();
    store
        .update_contact(duplicate, now, |c| {
            c.merged_into = Some(kept);
            Ok(())
        })
        .unwrap();
}

/// Lines of text output with their runs of spaces folded, for comparing
/// table rows without counting columns.
fn folded(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn has_line(text: &str, line: &str) {
    assert!(
        folded(text).iter().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
}

#[test]
fn report_events_counts_each_status_once_per_person() {
    let office = Muster::new();
    let (gala, picnic) = {
        let mut s = office.store();
        let t = day("2026-03-01");
        let door = day("2026-03-20") + 18 * HOUR;
        let gala = event(&mut s, "Gala", door, Some(3));
        let picnic = event(&mut s, "Picnic", day("2026-04-10"), None);
        let [ana, bo, cy, di, ed, fay, ana2] =
            ["Ana", "Bo", "Cy", "Di", "Ed", "Fay", "Ana S."].map(|n| person(&mut s, n, t));
        s.sign_up(&gala, &ana, false, t + 1).unwrap();
        s.sign_up(&gala, &bo, false, t + 2).unwrap();
        s.sign_up(&gala, &cy, false, t + 3).unwrap();
        s.sign_up(&gala, &ana2, false, t + 4).unwrap(); // Ana again
        s.sign_up(&gala, &ed, false, t + 5).unwrap(); // no seat left
        s.sign_up(&gala, &fay, false, t + 6).unwrap();
        s.cancel_signup(&gala, &fay, t + 7).unwrap();
        s.check_in(&gala, &ana, door).unwrap();
        s.check_in(&gala, &di, door + 1).unwrap(); // a walk-in
        s.mark_no_show(&gala, &cy, door + 3 * HOUR).unwrap();
        s.sign_up(&picnic, &bo, false, t + 8).unwrap();
        s.sign_up(&picnic, &ana2, false, t + 9).unwrap();
        s.sign_up(&picnic, &ana, false, t + 10).unwrap();
        merge(&mut s, &ana2, &ana, door + DAY);
        (gala, picnic)
    };

    let report = office.json(&["report", "events", "--json"]);
    assert_eq!(
        report,
        json!({
            "range": {"from": null, "to": null},
            "events": [
                {
                    "id": gala, "title": "Gala", "starts_at": "2026-03-20T18:00:00.000Z",
                    "status": "scheduled", "capacity": 3,
                    // Ana (with her duplicate), Bo, Cy, Di, Ed, Fay; seats:
                    // Ana, Bo, Cy, Di; came: Ana, Di.
                    "sign_ups": 6, "registered": 4, "checked_in": 2, "walk_ins": 1,
                    "no_shows": 1, "waitlisted": 1, "cancelled": 1, "attendance_rate": 0.5
                },
                {
                    "id": picnic, "title": "Picnic", "starts_at": "2026-04-10T00:00:00.000Z",
                    "status": "scheduled", "capacity": null,
                    "sign_ups": 2, "registered": 2, "checked_in": 0, "walk_ins": 0,
                    "no_shows": 0, "waitlisted": 0, "cancelled": 0, "attendance_rate": 0.0
                }
            ],
            "totals": {
                "events": 2, "sign_ups": 8, "registered": 6, "checked_in": 2, "walk_ins": 1,
                "no_shows": 1, "waitlisted": 1, "cancelled": 1, "attendance_rate": 0.3333
            }
        })
    );

    let march = office.json(&[
        "report",
        "events",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--json",
    ]);
    assert_eq!(
        march["range"],
        json!({"from": "2026-03-01", "to": "2026-03-31"})
    );
    assert_eq!(march["events"].as_array().unwrap().len(), 1);
    assert_eq!(march["totals"]["sign_ups"], 6);

    let text = office.ok(&["report", "events"]);
    has_line(&text, "2026-03-20 18:00 Gala scheduled 6 4 2 1 1 1 1 50%");
    has_line(&text, "2026-04-10 00:00 Picnic scheduled 2 2 0 0 0 0 0 0%");
    has_line(&text, "total (2 events) 8 6 2 1 1 1 1 33%");
    let none = office.ok(&["report", "events", "--from", "2027-01-01"]);
    assert_eq!(none.trim(), "no events from 2027-01-01");
}

#[test]
fn report_hours_per_volunteer_and_month() {
    let office = Muster::new();
    let (vera, walt) = {
        let mut s = office.store();
        let t = day("2026-01-01");
        let [vera, walt, walt2] = ["Vera", "Walt", "Walter"].map(|n| person(&mut s, n, t));
        let fair = event(&mut s, "Fair", day("2026-01-10"), None);
        let dinner = event(&mut s, "Dinner", day("2026-02-05"), None);
        let run = event(&mut s, "Run", day("2026-02-08"), None);
        let shift = |contact: &str, start: i64, hours: i64, minutes: Option<i64>| Shift {
            contact_id: contact.to_owned(),
            role: "desk".into(),
            starts_at: start,
            ends_at: start + hours * HOUR,
            minutes_worked: minutes,
        };
        let jan10 = day("2026-01-10") + 10 * HOUR;
        let jan20 = day("2026-01-20") + 18 * HOUR;
        let feb5 = day("2026-02-05") + 9 * HOUR;
        s.add_shift(&fair, shift(&vera, jan10, 4, Some(200)), t)
            .unwrap();
        s.add_shift(&fair, shift(&walt, jan20, 3, None), t).unwrap(); // 180 scheduled
        let w = s.add_shift(&fair, shift(&walt, jan20, 3, None), t).unwrap();
        s.record_shift_minutes(&fair, &w, 150, jan20 + 3 * HOUR)
            .unwrap();
        s.add_shift(&dinner, shift(&vera, feb5, 3, None), t)
            .unwrap(); // 180 scheduled
        s.add_shift(&dinner, shift(&walt2, feb5, 2, Some(60)), t)
            .unwrap(); // Walt's duplicate
        s.add_shift(&dinner, shift(&walt, day("2026-02-20"), 2, None), t)
            .unwrap(); // to come
        s.add_shift(&run, shift(&vera, day("2026-02-08"), 5, None), t)
            .unwrap();
        s.update_event(&run, t, |e| {
            e.status = EventStatus::Cancelled;
            Ok(())
        })
        .unwrap();
        merge(&mut s, &walt2, &walt, t);
        (vera, walt)
    };
    let as_of = ["--as-of", "2026-02-15T00:00:00Z"];
    let report = office.json(&[&["report", "hours", "--json"][..], &as_of].concat());
    let row = |period: &str, id: &str, name: &str, shifts: i64, minutes: i64, sch: (i64, i64)| {
        json!({
            "period": period, "period_start": format!("{period}-01T00:00:00.000Z"),
            "contact_id": id, "name": name, "shifts": shifts, "minutes": minutes,
            "scheduled_shifts": sch.0, "scheduled_minutes": sch.1
        })
    };
    assert_eq!(
        report,
        json!({
            "period": "month",
            "range": {"from": null, "to": null},
            "as_of": "2026-02-15T00:00:00.000Z",
            "rows": [
                row("2026-01", &vera, "Vera", 1, 200, (0, 0)),
                row("2026-01", &walt, "Walt", 2, 330, (1, 180)),
                row("2026-02", &vera, "Vera", 1, 180, (1, 180)),
                row("2026-02", &walt, "Walt", 1, 60, (0, 0)),
            ],
            "periods": [
                {"period": "2026-01", "period_start": "2026-01-01T00:00:00.000Z", "volunteers": 2,
                 "shifts": 3, "minutes": 530, "scheduled_shifts": 1, "scheduled_minutes": 180},
                {"period": "2026-02", "period_start": "2026-02-01T00:00:00.000Z", "volunteers": 2,
                 "shifts": 2, "minutes": 240, "scheduled_shifts": 1, "scheduled_minutes": 180},
            ],
            "volunteers": [
                {"contact_id": vera, "name": "Vera", "shifts": 2, "minutes": 380,
                 "scheduled_shifts": 1, "scheduled_minutes": 180},
                {"contact_id": walt, "name": "Walt", "shifts": 3, "minutes": 390,
                 "scheduled_shifts": 1, "scheduled_minutes": 180},
            ],
            "total": {"shifts": 5, "minutes": 770, "scheduled_shifts": 2, "scheduled_minutes": 360},
            "upcoming_shifts": 1,
            "cancelled_event_shifts": 1
        })
    );

    let text = office.ok(&[&["report", "hours"][..], &as_of].concat());
    has_line(&text, "2026-01 Walt 2 330 5:30 1 shift, 180 min");
    has_line(
        &text,
        "total 2026-01 (2 volunteers) 3 530 8:50 1 shift, 180 min",
    );
    has_line(&text, "total 5 770 12:50 2 shifts, 360 min");
    has_line(
        &text,
        "not counted (no minutes recorded): 1 shift still to come, 1 shift at cancelled events",
    );

    let year = office.json(
        &[
            &[
                "report",
                "hours",
                "--period",
                "year",
                "--from",
                "2026-02-01",
                "--json",
            ][..],
            &as_of,
        ]
        .concat(),
    );
    assert_eq!(year["periods"][0]["period"], "2026");
    assert_eq!(year["total"]["minutes"], 240);
    let week = office.json(
        &[
            &["report", "hours", "--period", "week", "--json"][..],
            &as_of,
        ]
        .concat(),
    );
    let weeks: Vec<&str> = week["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["period"].as_str().unwrap())
        .collect();
    assert_eq!(weeks, ["2026-W02", "2026-W04", "2026-W06"]);
}

#[test]
fn report_new_contacts_by_first_event_and_by_device() {
    let office = Muster::new();
    let phone_dir = tempfile::tempdir().unwrap();
    let mut phone = Store::open(phone_dir.path().join("phone.store")).unwrap();
    let t = day("2026-02-01");
    let (open_day, concert, office_device) = {
        let mut s = office.store();
        let open_day = event(&mut s, "Open day", day("2026-03-01"), None);
        let concert = event(&mut s, "Concert", day("2026-03-08"), None);
        let ana = person(&mut s, "Ana", t);
        let bea = person(&mut s, "Bea", t + HOUR);
        let ana2 = person(&mut s, "Ana Silva", t + 2 * HOUR);
        let [cy, di, ed] = ["Cy", "Di", "Ed"].map(|n| person(&mut phone, n, t + 3 * HOUR));
        for id in [&cy, &di, &ed] {
            let changes = phone.changes_of(id).unwrap();
            s.apply_changes(id, &changes).unwrap();
        }
        let feb = |d: &str| day(&format!("2026-02-{d}"));
        s.sign_up(&open_day, &ana2, false, feb("10")).unwrap(); // Ana's first, as her duplicate
        s.sign_up(&concert, &ana, false, feb("25")).unwrap();
        s.sign_up(&concert, &bea, false, feb("22")).unwrap();
        s.sign_up(&concert, &cy, false, feb("21")).unwrap(); // Cy's first
        s.sign_up(&open_day, &cy, false, feb("26")).unwrap();
        merge(&mut s, &ana2, &ana, feb("27"));
        (open_day, concert, s.device_id().to_owned())
    };
    let report = office.json(&["report", "new-contacts", "--json"]);
    assert_eq!(
        report,
        json!({
            "range": {"from": null, "to": null},
            "contacts": 5,
            "by_event": [
                {"event_id": open_day, "title": "Open day",
                 "starts_at": "2026-03-01T00:00:00.000Z", "new_contacts": 1},
                {"event_id": concert, "title": "Concert",
                 "starts_at": "2026-03-08T00:00:00.000Z", "new_contacts": 2},
            ],
            "without_event": 2,
            "by_device": [
                {"device_id": phone.device_id(), "this_device": false, "new_contacts": 3,
                 "first_created_at": "2026-02-01T03:00:00.000Z",
                 "last_created_at": "2026-02-01T03:00:00.000Z"},
                {"device_id": office_device, "this_device": true, "new_contacts": 2,
                 "first_created_at": "2026-02-01T00:00:00.000Z",
                 "last_created_at": "2026-02-01T01:00:00.000Z"},
            ]
        })
    );
    let text = office.ok(&["report", "new-contacts"]);
    has_line(
        &text,
        "5 new contacts created (merged duplicates not counted)",
    );
    has_line(&text, "2026-03-01 00:00 Open day 1");
    has_line(&text, "no sign-up yet 2");
    has_line(
        &text,
        &format!("{office_device} (this device) 2 2026-02-01 00:00 to 2026-02-01 01:00"),
    );
    let later = office.json(&["report", "new-contacts", "--from", "2026-02-02", "--json"]);
    assert_eq!(later["contacts"], 0);
}

#[test]
fn report_donors_retention_and_repeat_gifts() {
    let office = Muster::new();
    {
        let mut s = office.store();
        let t = day("2024-01-01");
        let [dan, eve, flo, gus, dan2] =
            ["Dan", "Eve", "Flo", "Gus", "Daniel"].map(|n| person(&mut s, n, t));
        let mut gift = |donor: &str, date: &str, amount_minor: i64, currency: &str| {
            s.add_to_ledger(
                donor,
                Donation {
                    id: String::new(),
                    amount_minor,
                    currency: currency.into(),
                    date: day(date),
                    method: "card".into(),
                    note: None,
                    recorded_by: String::new(),
                },
                day(date),
            )
            .unwrap();
        };
        gift(&gus, "2024-05-03", 1_000, "EUR");
        gift(&dan, "2025-03-01", 5_000, "EUR");
        gift(&eve, "2025-06-01", 10_000, "EUR");
        gift(&dan2, "2025-09-01", 700, "EUR"); // Dan's duplicate
        gift(&flo, "2026-01-15", 2_000, "EUR");
        gift(&dan, "2026-02-01", 2_500, "EUR");
        gift(&flo, "2026-04-01", 3_000, "USD");
        gift(&gus, "2026-05-01", 1_500, "EUR");
        merge(&mut s, &dan2, &dan, day("2026-05-02"));
    }
    let as_of = "2026-06-01T00:00:00Z";
    let report = office.json(&["report", "donors", "--as-of", as_of, "--json"]);
    let eur = |minor: i64, amount: &str| json!({"currency": "EUR", "amount_minor": minor, "amount": amount});
    assert_eq!(
        report,
        json!({
            "period": "year",
            "range": {"from": null, "to": null},
            "as_of": "2026-06-01T00:00:00.000Z",
            "periods": [
                {"period": "2024", "starts_at": "2024-01-01T00:00:00.000Z",
                 "ends_at": "2025-01-01T00:00:00.000Z", "partial": false,
                 "donors": 1, "gifts": 1, "previous_donors": 0, "retained": 0, "lapsed": 0,
                 "new_donors": 1, "reactivated": 0, "retention_rate": null,
                 "amounts": [eur(1_000, "10.00")]},
                // Dan (twice: once as his duplicate) and Eve, new; Gus lapsed.
                {"period": "2025", "starts_at": "2025-01-01T00:00:00.000Z",
                 "ends_at": "2026-01-01T00:00:00.000Z", "partial": false,
                 "donors": 2, "gifts": 3, "previous_donors": 1, "retained": 0, "lapsed": 1,
                 "new_donors": 2, "reactivated": 0, "retention_rate": 0.0,
                 "amounts": [eur(15_700, "157.00")]},
                // Dan retained, Eve lapsed, Flo new, Gus back.
                {"period": "2026", "starts_at": "2026-01-01T00:00:00.000Z",
                 "ends_at": "2027-01-01T00:00:00.000Z", "partial": true,
                 "donors": 3, "gifts": 4, "previous_donors": 2, "retained": 1, "lapsed": 1,
                 "new_donors": 1, "reactivated": 1, "retention_rate": 0.5,
                 "amounts": [eur(6_000, "60.00"),
                             {"currency": "USD", "amount_minor": 3_000, "amount": "30.00"}]},
            ],
            // Dan (3 gifts), Flo (2) and Gus (2) gave more than once.
            "donors": 4, "gifts": 8, "repeat_donors": 3, "repeat_gift_rate": 0.75,
            "amounts": [eur(22_700, "227.00"),
                        {"currency": "USD", "amount_minor": 3_000, "amount": "30.00"}],
            "unreadable_ledgers": 0
        })
    );
    let text = office.ok(&["report", "donors", "--as-of", as_of]);
    has_line(&text, "2026* 3 4 1 1 1 1 50.0% (1/2) 60.00 EUR, 30.00 USD");
    has_line(&text, "2024 1 1 0 0 1 0 - 10.00 EUR");
    has_line(
        &text,
        "over the whole history: 4 donors and 8 gifts; 3 gave more than once (repeat-gift rate 75.0%)",
    );
    has_line(&text, "received: 227.00 EUR, 30.00 USD");

    let ranged = office.json(&[
        "report",
        "donors",
        "--from",
        "2025-01-01",
        "--to",
        "2026-12-31",
        "--as-of",
        as_of,
        "--json",
    ]);
    assert_eq!(ranged["periods"].as_array().unwrap().len(), 2);
    assert_eq!(ranged["periods"][0]["previous_donors"], 1);
    assert_eq!(ranged["repeat_donors"], 2);
    assert_eq!(ranged["repeat_gift_rate"], 0.5);
    let months = office.json(&[
        "report",
        "donors",
        "--period",
        "month",
        "--from",
        "2026-01-01",
        "--as-of",
        as_of,
        "--json",
    ]);
    let donors: Vec<(&str, i64)> = months["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["period"].as_str().unwrap(), p["donors"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        donors,
        [
            ("2026-01", 1),
            ("2026-02", 1),
            ("2026-03", 0),
            ("2026-04", 1),
            ("2026-05", 1),
            ("2026-06", 0)
        ]
    );
}

#[test]
fn report_feedback_against_the_24_hour_target() {
    let office = Muster::new();
    let t0 = day("2026-06-01") + 9 * HOUR;
    let now = t0 + 50 * HOUR;
    let forgotten = {
        let mut s = office.store();
        let rui = person(&mut s, "Rui", t0);
        let open = |s: &mut Store, at: i64, contact: Option<&str>| {
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
        open(&mut s, now - 2 * HOUR, None); // not due yet
        (forgotten, rui)
    };
    let as_of = "2026-06-03T11:00:00Z";
    assert_eq!(day("2026-06-03") + 11 * HOUR, now);
    let report = office.json(&["report", "feedback", "--as-of", as_of, "--json"]);
    assert_eq!(
        report,
        json!({
            "range": {"from": null, "to": null},
            "as_of": "2026-06-03T11:00:00.000Z",
            "cases": 5,
            "by_status": [
                {"status": "received", "cases": 1},
                {"status": "assigned", "cases": 1},
                {"status": "responded", "cases": 2},
                {"status": "resolved", "cases": 1},
            ],
            "target_minutes": 1440,
            "answered": 3,
            // Answers after 1 h, 3 h and 30 h.
            "median_first_response_minutes": 180,
            "p90_first_response_minutes": 1800,
            "within_target": 2,
            "answered_late": 1,
            "waiting_overdue": 1,
            "waiting_in_time": 1,
            "resolved_without_response": 0,
            "share_within_target": 0.5,
            "overdue": [{
                "id": forgotten.0, "contact_id": forgotten.1, "contact_name": "Rui",
                "channel": "phone", "category": "complaint", "status": "assigned",
                "assigned_to": "Mia",
                "received_at": "2026-06-01T09:00:00.000Z",
                "due_at": "2026-06-02T09:00:00.000Z",
                "age_minutes": 3000, "overdue_minutes": 1560
            }]
        })
    );
    let text = office.ok(&["report", "feedback", "--as-of", as_of]);
    has_line(
        &text,
        "5 cases: 1 received, 1 assigned, 2 responded, 1 resolved",
    );
    has_line(
        &text,
        "first response (3 answered): median 3 h, 90th percentile 30 h",
    );
    has_line(
        &text,
        "24 h target: 2 met, 2 missed (1 answered late, 1 still waiting) = 50.0% within target",
    );
    has_line(
        &text,
        &format!(
            "{} received 2026-06-01 09:00 age 2 d 2 h overdue by 26 h assigned to Mia complaint by phone, from Rui",
            forgotten.0
        ),
    );
}

#[test]
fn report_consent_coverage_by_channel() {
    let office = Muster::new();
    {
        let mut s = office.store();
        let t = day("2026-01-01");
        let [c1, c2, c3, c4, _never_asked, c6] =
            ["Ana", "Bo", "Cy", "Di", "Ed", "Ana S."].map(|n| person(&mut s, n, t));
        let mut consent = |id: &str, given: bool, channels: &[&str]| {
            s.update_contact(id, t + 1, |c| {
                c.consent.given = given;
                c.consent.recorded_at = Some(t + 1);
                c.consent.channels = channels.iter().map(|ch| ((*ch).to_owned(), true)).collect();
                Ok(())
            })
            .unwrap();
        };
        consent(&c1, true, &["email", "sms"]);
        consent(&c2, true, &["email"]);
        consent(&c3, true, &[]);
        consent(&c4, false, &[]);
        consent(&c6, true, &["sms", "post"]); // Ana's duplicate: not counted
        merge(&mut s, &c6, &c1, t + 2);
    }
    let report = office.json(&["report", "consent", "--refusals", "--json"]);
    assert_eq!(
        report,
        json!({
            "contacts": 5, "given": 3, "not_given": 2, "refused": 1, "not_recorded": 1,
            "coverage": 0.6,
            "by_channel": [
                {"channel": "email", "contacts": 2, "share_of_given": 0.6667},
                {"channel": "sms", "contacts": 1, "share_of_given": 0.3333},
            ],
            "given_without_channel": 1,
            "unreadable_contacts": 0
        })
    );
    let quick = office.json(&["report", "consent", "--json"]);
    assert_eq!(
        (&quick["refused"], &quick["not_recorded"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(quick["by_channel"], report["by_channel"]);
    let text = office.ok(&["report", "consent", "--refusals"]);
    has_line(
        &text,
        "5 contacts (merged duplicates not counted): 3 gave consent (60.0%), 2 did not (1 refused, 1 never asked)",
    );
    let text = office.ok(&["report", "consent"]);
    has_line(
        &text,
        "5 contacts (merged duplicates not counted): 3 gave consent (60.0%), 2 did not",
    );
    has_line(&text, "email 2 66.7%");
    has_line(&text, "(no channel named) 1");
}

#[test]
fn reports_of_an_empty_store_say_so() {
    let office = Muster::new();
    assert_eq!(office.ok(&["report", "events"]).trim(), "no events");
    assert_eq!(office.ok(&["report", "donors"]).trim(), "no gifts recorded");
    assert_eq!(
        office.ok(&["report", "hours"]).trim(),
        "no volunteer time recorded"
    );
    assert_eq!(
        office.ok(&["report", "feedback"]).trim(),
        "0 cases: 0 received, 0 assigned, 0 responded, 0 resolved"
    );
    let consent = office.json(&["report", "consent", "--json"]);
    assert_eq!(consent["contacts"], 0);
    assert_eq!(consent["coverage"], Value::Null);
}

#[test]
fn bad_dates_and_periods_are_usage_errors() {
    let office = Muster::new();
    let err = office.fails_with(2, &["report", "events", "--from", "2026-13-01"]);
    assert!(err.contains("YYYY-MM-DD"), "{err}");
    let err = office.fails_with(2, &["report", "hours", "--period", "fortnight"]);
    assert!(err.contains("week, month, quarter, year"), "{err}");
    let err = office.fails_with(
        2,
        &[
            "report",
            "donors",
            "--from",
            "2026-02-01",
            "--to",
            "2026-01-31",
        ],
    );
    assert!(
        err.contains("--to 2026-01-31 is before --from 2026-02-01"),
        "{err}"
    );
    let err = office.fails_with(2, &["report", "feedback", "--as-of", "yesterday"]);
    assert!(err.contains("RFC 3339"), "{err}");
    // A range of one day is fine.
    office.ok(&[
        "report",
        "events",
        "--from",
        "2026-02-01",
        "--to",
        "2026-02-01",
    ]);
    // Twenty centuries of weeks: refused with what to do instead.
    {
        let mut s = office.store();
        let dan = person(&mut s, "Dan", 0);
        s.add_to_ledger(
            &dan,
            Donation {
                id: String::new(),
                amount_minor: 100,
                currency: "EUR".into(),
                date: 0,
                method: "cash".into(),
                note: None,
                recorded_by: String::new(),
            },
            0,
        )
        .unwrap();
    }
    let err = office.fails_with(
        1,
        &[
            "report",
            "donors",
            "--period",
            "week",
            "--from",
            "0100-01-01",
        ],
    );
    assert!(
        err.contains("choose a longer period or a shorter range"),
        "{err}"
    );
}
