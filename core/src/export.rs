//! Exports for the office and for other systems: contacts, sign-ups,
//! donations, volunteer hours and feedback cases as CSV or JSON, streamed
//! (a few hundred records in memory at a time). `muster export` and the
//! relay's dashboard downloads both write through [`write`]. The headers
//! are a contract, documented in cli/README.md ("Import and export").
//!
//! UTF-8; times RFC 3339 in UTC to the second; phones in E.164 where they
//! can be read ([`crate::duplicates::normalise_phone`]); lists joined with
//! `; ` in CSV and arrays in JSON; amounts in the currency's own digits.

use std::io::Write;

use crate::duplicates::normalise_phone;
use crate::error::{Error, Result};
use crate::model::{Contact, Millis};
use crate::store::Store;

/// The record sets an export knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// One row per contact, merged duplicates included.
    Contacts,
    /// One row per sign-up to an event.
    Signups,
    /// One row per donation in the contacts' private ledgers.
    Donations,
    /// One row per volunteer shift.
    Hours,
    /// One row per feedback case.
    Feedback,
}

impl Dataset {
    /// Every dataset, in the order the documentation lists them.
    pub const ALL: [Dataset; 5] = [
        Dataset::Contacts,
        Dataset::Signups,
        Dataset::Donations,
        Dataset::Hours,
        Dataset::Feedback,
    ];

    /// Its name: `contacts`, `signups`, `donations`, `hours`, `feedback`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Contacts => "contacts",
            Dataset::Signups => "signups",
            Dataset::Donations => "donations",
            Dataset::Hours => "hours",
            Dataset::Feedback => "feedback",
        }
    }

    /// The dataset of that name.
    pub fn parse(name: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// Its CSV header (and JSON keys), in order.
    pub fn headers(self) -> &'static [&'static str] {
        match self {
            Dataset::Contacts => CONTACT_HEADERS,
            Dataset::Signups => SIGNUP_HEADERS,
            Dataset::Donations => DONATION_HEADERS,
            Dataset::Hours => HOURS_HEADERS,
            Dataset::Feedback => FEEDBACK_HEADERS,
        }
    }
}

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// A JSON array of objects keyed by the CSV headers.
    Json,
}

/// One value of an exported row. CSV writes each as text; JSON keeps its
/// type.
enum Cell {
    /// Text that is always there.
    Text(String),
    /// Text that may be missing (empty in CSV, `null` in JSON).
    Opt(Option<String>),
    /// Several values: joined with `; ` in CSV, an array in JSON.
    List(Vec<String>),
    Bool(bool),
    Int(Option<i64>),
    /// A time: RFC 3339 UTC to the second.
    Time(Option<i64>),
}

/// A time as RFC 3339 in UTC, to the second (`2026-12-01T18:00:00Z`).
pub fn iso(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// Characters that make a spreadsheet read a cell as a formula when they
/// come first (OWASP, "CSV Injection"), with their full-width forms.
const FORMULA_STARTS: [char; 10] = [
    '=', '+', '-', '@', '\t', '\r', '\u{ff1d}', '\u{ff0b}', '\u{ff0d}', '\u{ff20}',
];

/// Whether a spreadsheet may take `text` for a formula: its first
/// character after any spaces is one of [`FORMULA_STARTS`] (some
/// spreadsheets trim leading spaces before they look).
fn formula_like(text: &str) -> bool {
    text.trim_start_matches([' ', '\u{a0}'])
        .starts_with(FORMULA_STARTS)
}

/// A text cell as every CSV export writes it: text a spreadsheet would run
/// as a formula (it starts, after any spaces, with `=`, `+`, `-`, `@`, a
/// tab, a carriage return or a full-width `＝＋－＠`; a volunteer can type
/// `=HYPERLINK(…)` as a walk-in's name) gets a leading `'`, which
/// spreadsheets take as "this is text" and do not show. So does text that
/// already starts with `'` before such a character, so that the `'` a
/// person typed survives the way back. Numbers and phone numbers
/// (`-12.50`, `+447700900123`, `+44 20 7946 0958; +351 912 345 678`:
/// digits, spaces and `+-.();`) are written as they are: they cannot call
/// a function. Imports undo this ([`csv_text_read`]), so an export imports
/// back unchanged. JSON exports are never changed.
pub fn csv_text(text: &str) -> String {
    let quoted = text.strip_prefix('\'').is_some_and(formula_like);
    if quoted || (formula_like(text) && !is_numeric(text)) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// A cell of a CSV file being imported, with the `'` that [`csv_text`]
/// puts before a would-be formula taken off again.
pub fn csv_text_read(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if formula_like(rest) || rest.strip_prefix('\'').is_some_and(formula_like) => {
            rest
        }
        _ => cell,
    }
}

/// Only digits, spaces and `+ - . ( ) ;`, a digit among them: numbers and
/// phone numbers (one or a list), as typed or in E.164 form. A spreadsheet
/// may compute such a cell, but it cannot call a function or reach outside
/// the sheet, and prefixing it would spoil every phone in the export.
fn is_numeric(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b" +-.();".contains(&b))
}

impl Cell {
    fn opt(value: &str) -> Cell {
        Cell::Opt((!value.is_empty()).then(|| value.to_owned()))
    }

    fn csv(&self) -> String {
        match self {
            Cell::Text(s) => csv_text(s),
            Cell::Opt(s) => s.as_deref().map(csv_text).unwrap_or_default(),
            Cell::List(items) => csv_text(&items.join("; ")),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(n) => n.map(|n| n.to_string()).unwrap_or_default(),
            Cell::Time(t) => t.map(iso).unwrap_or_default(),
        }
    }

    fn json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Opt(s) => s.clone().map_or(Value::Null, Value::String),
            Cell::List(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Int(n) => n.map_or(Value::Null, Value::from),
            Cell::Time(t) => t.map_or(Value::Null, |t| Value::String(iso(t))),
        }
    }
}

/// Where exported rows go: a CSV writer, or a JSON array written an object
/// at a time.
enum Sink {
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    Json {
        out: Box<dyn Write>,
        headers: &'static [&'static str],
        rows: usize,
    },
}

impl Sink {
    fn new(
        format: Format,
        bom: bool,
        headers: &'static [&'static str],
        mut out: Box<dyn Write>,
    ) -> Result<Sink> {
        Ok(match format {
            Format::Csv => {
                if bom {
                    out.write_all("\u{feff}".as_bytes())?;
                }
                let mut w = csv::Writer::from_writer(out);
                w.write_record(headers)?;
                Sink::Csv(Box::new(w))
            }
            Format::Json => Sink::Json {
                out,
                headers,
                rows: 0,
            },
        })
    }

    fn row(&mut self, cells: &[Cell]) -> Result<()> {
        match self {
            Sink::Csv(w) => w.write_record(cells.iter().map(Cell::csv))?,
            Sink::Json { out, headers, rows } => {
                out.write_all(if *rows == 0 { b"[\n  {" } else { b",\n  {" })?;
                for (i, (key, cell)) in headers.iter().zip(cells).enumerate() {
                    if i > 0 {
                        out.write_all(b", ")?;
                    }
                    serde_json::to_writer(&mut *out, key)?;
                    out.write_all(b": ")?;
                    serde_json::to_writer(&mut *out, &cell.json())?;
                }
                out.write_all(b"}")?;
                *rows += 1;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            Sink::Csv(mut w) => w.flush()?,
            Sink::Json { mut out, rows, .. } => {
                out.write_all(if rows == 0 { b"[]\n" } else { b"\n]\n" })?;
                out.flush()?;
            }
        }
        Ok(())
    }
}

/// The CSV header (and JSON keys) of each export, in order.
pub const CONTACT_HEADERS: &[&str] = &[
    "id",
    "name",
    "preferred_name",
    "phones",
    "emails",
    "street",
    "city",
    "region",
    "postal_code",
    "country",
    "preferred_language",
    "roles",
    "tags",
    "interests",
    "household",
    "organisation",
    "external_id",
    "custom",
    "consent_given",
    "consent_channels",
    "consent_recorded_at",
    "consent_method",
    "notes",
    "merged_into",
    "created_at",
];
pub const SIGNUP_HEADERS: &[&str] = &[
    "event_id",
    "event_title",
    "event_starts_at",
    "contact_id",
    "contact_name",
    "status",
    "registered_at",
    "checked_in_at",
    "walk_in",
    "waitlist_position",
];
pub const DONATION_HEADERS: &[&str] = &[
    "donation_id",
    "contact_id",
    "contact_name",
    "contact_merged_into",
    "date",
    "amount",
    "amount_minor",
    "currency",
    "method",
    "note",
    "recorded_by",
];
pub const HOURS_HEADERS: &[&str] = &[
    "event_id",
    "event_title",
    "shift_id",
    "contact_id",
    "contact_name",
    "role",
    "starts_at",
    "ends_at",
    "minutes_worked",
];
pub const FEEDBACK_HEADERS: &[&str] = &[
    "id",
    "contact_id",
    "contact_name",
    "status",
    "channel",
    "category",
    "received_at",
    "first_response_at",
    "resolved_at",
    "assigned_to",
    "overdue",
    "satisfaction",
];

/// How an export is written.
#[derive(Debug, Clone)]
pub struct Options {
    /// CSV or JSON.
    pub format: Format,
    /// Start a CSV with a UTF-8 byte order mark (for old Excel).
    pub bom: bool,
    /// The region phone numbers without a country code are read in, for
    /// their E.164 form.
    pub region: String,
    /// The time now, for whether a feedback case is overdue (the core has
    /// no clock).
    pub now: Millis,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Rows written.
    pub rows: usize,
    /// Records that could not be read (written by a newer Muster?) and
    /// were left out.
    pub unreadable: usize,
}

/// Writes the export of `what` to `out`.
pub fn write(
    store: &mut Store,
    what: Dataset,
    options: &Options,
    out: Box<dyn Write>,
) -> Result<Written> {
    let region = options.region.as_str();
    let headers = what.headers();
    let mut sink = Sink::new(options.format, options.bom, headers, out)?;
    let mut count = 0;
    let mut emit = |cells: Vec<Cell>| -> Result<()> {
        debug_assert_eq!(cells.len(), headers.len());
        count += 1;
        sink.row(&cells)
    };
    let unreadable = match what {
        Dataset::Contacts => store.for_each_contact(|chunk| {
            for c in chunk {
                emit(contact_cells(c, region))?;
            }
            Ok::<_, Error>(())
        })?,
        Dataset::Signups => {
            store.for_each_signup(|event, s| {
                emit(vec![
                    Cell::Text(event.id.clone()),
                    Cell::Text(event.title.clone()),
                    Cell::Time(Some(event.starts_at)),
                    Cell::Text(s.contact_id),
                    Cell::Opt(s.name),
                    Cell::Text(s.status.as_str().to_owned()),
                    Cell::Time(Some(s.registered_at)),
                    Cell::Time(s.checked_in_at),
                    Cell::Bool(s.walk_in),
                    Cell::Int(s.waitlist_position.map(i64::from)),
                ])
            })?;
            0
        }
        Dataset::Donations => {
            let names = store.contact_names()?;
            store.for_each_private_ledger(|chunk| {
                for ledger in chunk {
                    let (name, merged) = names
                        .get(&ledger.contact_id)
                        .cloned()
                        .map_or((None, None), |(n, m)| (Some(n), m));
                    for d in ledger.donations {
                        emit(vec![
                            Cell::Text(d.id),
                            Cell::Text(ledger.contact_id.clone()),
                            Cell::Opt(name.clone()),
                            Cell::Opt(merged.clone()),
                            Cell::Time(Some(d.date)),
                            Cell::Text(crate::money::decimal_amount(d.amount_minor, &d.currency)),
                            Cell::Int(Some(d.amount_minor)),
                            Cell::Text(d.currency),
                            Cell::Text(d.method),
                            Cell::Opt(d.note.filter(|n| !n.is_empty())),
                            Cell::Text(d.recorded_by),
                        ])?;
                    }
                }
                Ok::<_, Error>(())
            })?
        }
        Dataset::Hours => {
            let names = store.contact_names()?;
            for summary in store.list_events()? {
                let event = store.event(&summary.id)?;
                let mut shifts: Vec<_> = event.shifts.into_iter().collect();
                shifts.sort_by(|a, b| (a.1.starts_at, &a.0).cmp(&(b.1.starts_at, &b.0)));
                for (shift_id, s) in shifts {
                    let name = names.get(&s.contact_id).map(|(n, _)| n.clone());
                    emit(vec![
                        Cell::Text(event.id.clone()),
                        Cell::Text(event.title.clone()),
                        Cell::Text(shift_id),
                        Cell::Text(s.contact_id),
                        Cell::Opt(name),
                        Cell::Text(s.role),
                        Cell::Time(Some(s.starts_at)),
                        Cell::Time(Some(s.ends_at)),
                        Cell::Int(s.minutes_worked),
                    ])?;
                }
            }
            0
        }
        Dataset::Feedback => {
            let names = store.contact_names()?;
            let now = options.now;
            store.for_each_feedback_case(|chunk| {
                for f in chunk {
                    let name = f
                        .contact_id
                        .as_ref()
                        .and_then(|c| names.get(c))
                        .map(|(n, _)| n.clone());
                    emit(vec![
                        Cell::Text(f.id.clone()),
                        Cell::Opt(f.contact_id.clone()),
                        Cell::Opt(name),
                        Cell::Text(f.status().as_str().to_owned()),
                        Cell::Text(f.channel.clone()),
                        Cell::Text(f.category.clone()),
                        Cell::Time(Some(f.received_at)),
                        Cell::Time(f.first_response_at()),
                        Cell::Time(f.resolved_at),
                        Cell::Opt(f.assigned_to.clone()),
                        Cell::Bool(f.is_overdue(now)),
                        Cell::Int(f.satisfaction),
                    ])?;
                }
                Ok::<_, Error>(())
            })?
        }
    };
    sink.finish()?;
    Ok(Written {
        rows: count,
        unreadable,
    })
}

/// A contact's export row (CONTACT_HEADERS), phones in E.164 where they
/// can be read.
fn contact_cells(c: Contact, region: &str) -> Vec<Cell> {
    let set = |m: &std::collections::BTreeMap<String, bool>| {
        Cell::List(
            m.iter()
                .filter(|(_, on)| **on)
                .map(|(k, _)| k.clone())
                .collect(),
        )
    };
    vec![
        Cell::Text(c.id.clone()),
        Cell::Text(c.name.clone()),
        Cell::Opt(c.preferred_name.clone()),
        Cell::List(
            c.phones
                .iter()
                .map(|p| normalise_phone(p, region).unwrap_or_else(|| p.clone()))
                .collect(),
        ),
        Cell::List(c.emails.clone()),
        Cell::opt(&c.address.street),
        Cell::opt(&c.address.city),
        Cell::opt(&c.address.region),
        Cell::opt(&c.address.postal_code),
        Cell::opt(&c.address.country),
        Cell::Opt(c.preferred_language.clone()),
        set(&c.roles),
        set(&c.tags),
        set(&c.interests),
        Cell::Opt(c.household.clone()),
        Cell::Opt(c.organisation.clone()),
        Cell::Opt(c.external_id.clone()),
        Cell::List(c.custom.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        Cell::Bool(c.consent.given),
        set(&c.consent.channels),
        Cell::Time(c.consent.recorded_at),
        Cell::Opt(c.consent.method.clone()),
        Cell::opt(c.notes.as_str()),
        Cell::Opt(c.merged_into.clone()),
        Cell::Time(Some(c.created_at)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_8601_in_utc() {
        assert_eq!(iso(1_796_148_000_000), "2026-12-01T18:00:00Z");
    }

    #[test]
    fn would_be_formulas_are_neutralised_and_read_back() {
        for (typed, written) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+A1", "'+1+A1"),
            ("-2+SUM(A1:A9)", "'-2+SUM(A1:A9)"),
            // Digits and signs only: no function to call.
            ("+44 (0)20 7946-0958", "+44 (0)20 7946-0958"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("Ana Silva", "Ana Silva"),
            ("+447700900123", "+447700900123"),
            (
                "+447700900123; +442079460958",
                "+447700900123; +442079460958",
            ),
            ("+447700900123; =1+1", "'+447700900123; =1+1"),
            ("+999 123456", "+999 123456"),
            ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
            ("+", "'+"),
            ("-12.50", "-12.50"),
            ("'quoted", "'quoted"),
            ("'=typed with a quote", "''=typed with a quote"),
            ("  =SUM(A1)", "'  =SUM(A1)"),
            ("\u{ff1d}SUM(A1)", "'\u{ff1d}SUM(A1)"),
        ] {
            assert_eq!(csv_text(typed), written, "{typed:?}");
            assert_eq!(csv_text_read(written), typed, "{written:?}");
        }
    }

    #[test]
    fn datasets_are_named_and_parsed() {
        for d in Dataset::ALL {
            assert_eq!(Dataset::parse(d.as_str()), Some(d));
            assert!(!d.headers().is_empty());
        }
        assert_eq!(Dataset::parse("people"), None);
    }
}
