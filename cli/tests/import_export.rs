//! `muster import contacts` and `muster export …`: the built binary on a
//! store in a temporary directory. Records the CLI cannot make (donations,
//! shifts, feedback) are written through `muster_core::Store` first.
//!
//! Over 800 lines: one test per import or export rule of the README's
//! "Import and export" contract, sharing the fixtures at the top.

mod common;

use std::process::Command;

use common::Muster;
use muster_core::model::NewFeedback;
use muster_core::{Donation, NewContact, NewEvent, Shift, Store};
use serde_json::Value;

/// 2026-12-01T18:00:00Z.
const GALA: i64 = 1_796_148_000_000;
const HOUR: i64 = 3_600_000;

/// What only these tests ask of the binary.
impl Muster {
    /// Every contact, merged ones included, as `contact show --json` shows
    /// them, by name.
    fn contacts(&self) -> Vec<Value> {
        let list = self.json(&["contact", "list", "--json", "--limit", "1000"]);
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| self.json(&["contact", "show", c["id"].as_str().unwrap(), "--json"]))
            .collect()
    }

    /// Local changes waiting for the relay: grows with every write.
    fn pending(&self) -> i64 {
        self.store().pending_count().unwrap()
    }
}

/// The export headers, as the README documents them.
const CONTACT_HEADERS: &str = "id,name,preferred_name,phones,emails,street,city,region,postal_code,country,preferred_language,roles,tags,interests,household,organisation,external_id,custom,consent_given,consent_channels,consent_recorded_at,consent_method,notes,merged_into,created_at";
const SIGNUP_HEADERS: &str = "event_id,event_title,event_starts_at,contact_id,contact_name,status,registered_at,checked_in_at,walk_in,waitlist_position";
const DONATION_HEADERS: &str = "donation_id,contact_id,contact_name,contact_merged_into,date,amount,amount_minor,currency,method,note,recorded_by";
const HOURS_HEADERS: &str =
    "event_id,event_title,shift_id,contact_id,contact_name,role,starts_at,ends_at,minutes_worked";
const FEEDBACK_HEADERS: &str = "id,contact_id,contact_name,status,channel,category,received_at,first_response_at,resolved_at,assigned_to,overdue,satisfaction";

const PEOPLE: &str = "\
Name,Email,Phone,External ID,Tags,Notes
Ana Silva,ana@example.org,07700 900123,CRM-1,choir,likes tea
Bo Chen,bo.example.org,,CRM-2,,
,nobody@example.org,,,,
Cy Diaz,,+44 7700 900456,CRM-3,,
Ana Silva,ANA@example.org,,,kitchen,
";

#[test]
fn an_import_reports_created_updated_skipped_and_repeated_rows() {
    let m = Muster::new();
    let people = m.file("people.csv", PEOPLE);
    let (report, preview) = m.ok_with_stderr(&["import", "contacts", &people]);
    assert_eq!(
        report,
        "\
rows read:  5
created:    2
updated:    1
unchanged:  0
skipped:    2
  row 3: invalid email: \"bo.example.org\" has no @
  row 4: missing name
rows about the same person as an earlier row:
  row 6: same as row 2 (email)
"
    );
    for line in [
        "\"Name\"        -> name",
        "\"Email\"       -> email",
        "\"Phone\"       -> phone",
        "\"External ID\" -> external_id",
        "\"Tags\"        -> tags",
        "\"Notes\"       (ignored)",
        "read as GB numbers",
    ] {
        assert!(preview.contains(line), "{line:?} not in {preview}");
    }

    let contacts = m.contacts();
    assert_eq!(contacts.len(), 2, "{contacts:#?}");
    let ana = &contacts[0];
    assert_eq!(ana["name"], "Ana Silva");
    assert_eq!(ana["phones"], serde_json::json!(["+447700900123"]));
    assert_eq!(ana["emails"], serde_json::json!(["ana@example.org"]));
    assert_eq!(ana["external_id"], "CRM-1");
    assert_eq!(ana["tags"], serde_json::json!(["choir", "kitchen"]));
    assert_eq!(ana["notes"], "", "ignored columns are not imported");
    let cy = &contacts[1];
    assert_eq!(cy["name"], "Cy Diaz");
    assert_eq!(cy["phones"], serde_json::json!(["+447700900456"]));

    // The same report as JSON, on a fresh store.
    let fresh = Muster::new();
    let people = fresh.file("people.csv", PEOPLE);
    let report = fresh.json(&["import", "contacts", &people, "--json"]);
    assert_eq!(report["rows_read"], 5);
    assert_eq!(report["created"], 2);
    assert_eq!(report["updated"], 1);
    assert_eq!(report["unchanged"], 0);
    assert_eq!(report["skipped"], 2);
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["phone_region"], "GB");
    assert_eq!(
        report["skipped_rows"],
        serde_json::json!([
            {"row": 3, "reason": "invalid email: \"bo.example.org\" has no @"},
            {"row": 4, "reason": "missing name"},
        ])
    );
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["row"], 2);
    assert_eq!(rows[0]["outcome"], "created");
    assert_eq!(rows[0]["matched_by"], Value::Null);
    assert_eq!(rows[2]["row"], 6);
    assert_eq!(rows[2]["outcome"], "updated");
    assert_eq!(rows[2]["matched_by"], "email");
    assert_eq!(rows[2]["same_as_row"], 2);
    assert_eq!(rows[2]["contact_id"], rows[0]["contact_id"]);
    let id = rows[0]["contact_id"].as_str().unwrap();
    assert_eq!(
        fresh.json(&["contact", "show", id, "--json"])["name"],
        "Ana Silva"
    );
    assert_eq!(
        report["columns"][5],
        serde_json::json!({"column": "Notes", "field": null, "note": null})
    );
}

#[test]
fn importing_the_same_file_again_changes_nothing() {
    let m = Muster::new();
    let people = m.file("people.csv", PEOPLE);
    m.ok_with_stderr(&["import", "contacts", &people]);
    let before = m.contacts();
    let pending = m.pending();
    let report = m.json(&["import", "contacts", &people, "--json"]);
    assert_eq!(report["created"], 0);
    assert_eq!(report["updated"], 0);
    assert_eq!(report["unchanged"], 3);
    assert_eq!(report["skipped"], 2);
    assert_eq!(m.contacts(), before);
    assert_eq!(m.pending(), pending, "no change was recorded");
}

#[test]
fn rows_match_contacts_by_external_id_email_and_phone() {
    let m = Muster::new();
    let add = |args: &[&str]| -> String {
        let mut all = vec!["contact", "add"];
        all.extend_from_slice(args);
        m.ok_with_stderr(&all).0.trim().to_owned()
    };
    let ana = add(&["--name", "Ana Silva", "--email", "Ana.Silva@Example.org"]);
    let bo = add(&["--name", "Bo Chen", "--phone", "+44 7700 900123"]);
    let cy = add(&["--name", "Cy Diaz"]);
    m.ok_with_stderr(&["contact", "edit", &cy, "--external-id", "CRM-7"]);
    let dee = add(&["--name", "Dee Eve", "--phone", "07700 900999"]);

    let file = m.file(
        "update.csv",
        format!(
            "id,name,e-mail,mobile,ID in other system,city\n\
             ,,ANA.SILVA@example.ORG,,,Leeds\n\
             ,,,07700 900123,,York\n\
             ,,,,CRM-7,Hull\n\
             {dee},Dee Eve,,,,Bath\n\
             ,Eli Fox,eli@example.org,,,\n"
        ),
    );
    let report = m.json(&["import", "contacts", &file, "--json"]);
    assert_eq!(report["created"], 1, "{report:#}");
    assert_eq!(report["updated"], 4, "{report:#}");
    let rows = report["rows"].as_array().unwrap();
    let matched: Vec<(Value, Value)> = rows
        .iter()
        .map(|r| (r["contact_id"].clone(), r["matched_by"].clone()))
        .collect();
    assert_eq!(
        matched[..4],
        [
            (Value::from(ana.clone()), Value::from("email")),
            (Value::from(bo.clone()), Value::from("phone")),
            (Value::from(cy.clone()), Value::from("external_id")),
            (Value::from(dee.clone()), Value::from("id")),
        ]
    );
    let city = |id: &str| m.json(&["contact", "show", id, "--json"])["address"]["city"].clone();
    assert_eq!(city(&ana), "Leeds");
    assert_eq!(city(&bo), "York");
    assert_eq!(city(&cy), "Hull");
    assert_eq!(city(&dee), "Bath");
    let shown = m.json(&["contact", "show", &ana, "--json"]);
    assert_eq!(
        shown["emails"],
        serde_json::json!(["Ana.Silva@example.org"]),
        "the same email in other case is not added again"
    );
    let shown = m.json(&["contact", "show", &bo, "--json"]);
    assert_eq!(shown["phones"], serde_json::json!(["+44 7700 900123"]));
    assert_eq!(m.contacts().len(), 5);
}

#[test]
fn a_merged_duplicate_leads_to_the_contact_it_was_merged_into() {
    let m = Muster::new();
    let kept = m
        .ok_with_stderr(&["contact", "add", "--name", "Ana Silva"])
        .0
        .trim()
        .to_owned();
    let dup = m
        .ok_with_stderr(&[
            "contact",
            "add",
            "--name",
            "Ana S",
            "--email",
            "old@example.org",
        ])
        .0
        .trim()
        .to_owned();
    {
        let mut store = m.store();
        let into = kept.clone();
        store
            .update_contact(&dup, 1, |c| {
                c.merged_into = Some(into);
                Ok(())
            })
            .unwrap();
    }
    let file = m.file("m.csv", "email,city\nold@example.org,Porto\n");
    let report = m.json(&["import", "contacts", &file, "--json"]);
    assert_eq!(report["updated"], 1, "{report:#}");
    assert_eq!(report["rows"][0]["contact_id"], kept.as_str());
    let city = |id: &str| m.json(&["contact", "show", id, "--json"])["address"]["city"].clone();
    assert_eq!(city(&kept), "Porto");
    assert_eq!(city(&dup), "");
}

/// Two coordinators merged a pair in opposite directions while offline:
/// an import matching either leads to the one contact every replica
/// keeps (the smaller id), as search and reports show (it once refused
/// the row: "merges go round in a loop").
#[test]
fn an_import_follows_opposite_merges_to_the_contact_kept() {
    let m = Muster::new();
    let add = |name: &str, email: &str| {
        m.ok_with_stderr(&["contact", "add", "--name", name, "--email", email])
            .0
            .trim()
            .to_owned()
    };
    let x = add("Ana Silva", "ana@example.org");
    let y = add("Ana S", "old@example.org");
    {
        let mut store = m.store();
        for (from, to) in [(&x, &y), (&y, &x)] {
            let to = to.clone();
            store
                .update_contact(from, 1, |c| {
                    c.merged_into = Some(to);
                    Ok(())
                })
                .unwrap();
        }
    }
    let kept = x.clone().min(y.clone());
    let other = if kept == x { &y } else { &x };
    let file = m.file(
        "m.csv",
        "email,city\nold@example.org,Porto\nana@example.org,Porto\n",
    );
    let report = m.json(&["import", "contacts", &file, "--json"]);
    assert_eq!(report["rows"][0]["contact_id"], kept.as_str(), "{report:#}");
    assert_eq!(report["rows"][0]["outcome"], "updated", "{report:#}");
    assert_eq!(report["rows"][1]["contact_id"], kept.as_str(), "{report:#}");
    assert_eq!(report["rows"][1]["same_as_row"], 2, "{report:#}");
    // The second row adds its email to the contact kept unless that
    // contact already has it (ids are random: either may be kept).
    let second = if kept == y { "updated" } else { "unchanged" };
    assert_eq!(report["rows"][1]["outcome"], second, "{report:#}");
    let city = |id: &str| m.json(&["contact", "show", id, "--json"])["address"]["city"].clone();
    assert_eq!(city(&kept), "Porto");
    assert_eq!(city(other), "");
}

#[test]
fn a_dry_run_writes_nothing() {
    let m = Muster::new();
    m.ok_with_stderr(&[
        "contact",
        "add",
        "--name",
        "Ana Silva",
        "--email",
        "ana@example.org",
    ]);
    let before = m.contacts();
    let pending = m.pending();
    let people = m.file("people.csv", PEOPLE);
    let (report, _) = m.ok_with_stderr(&["import", "contacts", &people, "--dry-run"]);
    assert!(report.contains("created:    1\n"), "{report}");
    assert!(report.contains("updated:    2\n"), "{report}");
    assert!(
        report.ends_with("dry run: nothing was written\n"),
        "{report}"
    );
    let json = m.json(&["import", "contacts", &people, "--dry-run", "--json"]);
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["created"], 1);
    assert_eq!(m.contacts(), before);
    assert_eq!(m.pending(), pending);
}

#[test]
fn a_malformed_file_writes_nothing() {
    let m = Muster::new();
    let good_rows: String = (0..50)
        .map(|i| format!("Person {i},p{i}@example.org\n"))
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "short.csv",
            format!("name,email\n{good_rows}Broken,b@example.org,extra\n").into_bytes(),
            "row 52 has 3 columns but the first row has 2",
        ),
        (
            "latin1.csv",
            [
                format!("name,email\n{good_rows}").into_bytes(),
                b"Jos\xe9 Silva,jose@example.org\n".to_vec(),
            ]
            .concat(),
            "row 52, column \"name\" is not UTF-8 text",
        ),
        ("empty.csv", Vec::new(), "is empty"),
        ("blank.csv", b"\xef\xbb\xbf\n\n".to_vec(), "is empty"),
        (
            "unknown.csv",
            b"colour,size\nred,M\n".to_vec(),
            "no column gives a name, id, external id, email or phone",
        ),
        (
            "utf16.csv",
            b"\xff\xfen\x00a\x00m\x00e\x00".to_vec(),
            "UTF-16",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = m.file(name, bytes);
        let err = m.fails(&["import", "contacts", &path]);
        assert!(err.contains(expected), "{name}: {err}");
        assert!(
            err.starts_with("muster: ") || err.contains("\nmuster: "),
            "{err}"
        );
    }
    let err = m.fails(&["import", "contacts", "/nonexistent/people.csv"]);
    assert!(err.contains("cannot read /nonexistent/people.csv"), "{err}");
    let people = m.file("people.csv", PEOPLE);
    let err = m.fails(&["import", "contacts", &people, "--map", "Shoe=name"]);
    assert!(err.contains("no column is called \"Shoe\""), "{err}");
    let err = m.fails(&["import", "contacts", &people, "--region", "XX"]);
    assert!(err.contains("\"XX\" is not a country code"), "{err}");
    assert_eq!(m.store().contact_count().unwrap(), 0);
    assert_eq!(m.pending(), 0);
}

#[test]
fn bom_semicolons_map_and_region_are_understood() {
    let m = Muster::new();
    let file = m.file(
        "excel.csv",
        "\u{feff}Prénom;Nom;Téléphone;Courriel;Rôle\r\nJosé;Núñez;(415) 555-0132;jose@example.org;Volunteer\r\n;;;;\r\n;; ;;\r\n",
    );
    let (_, preview) = m.ok_with_stderr(&[
        "import",
        "contacts",
        &file,
        "--dry-run",
        "--region",
        "US",
        "--map",
        "Prénom=first_name",
        "--map",
        "Nom=last_name",
        "--map",
        "Téléphone=phone",
        "--map",
        "courriel=email",
        "--map",
        "RÔLE=roles",
    ]);
    assert!(preview.contains("(separator \";\")"), "{preview}");
    assert!(preview.contains("read as US numbers"), "{preview}");
    let report = m.json(&[
        "import",
        "contacts",
        &file,
        "--json",
        "--region",
        "us",
        "--map",
        "Prénom=first_name",
        "--map",
        "Nom=last_name",
        "--map",
        "Téléphone=phone",
        "--map",
        "courriel=email",
        "--map",
        "Rôle=roles",
    ]);
    assert_eq!(
        report["rows_read"], 1,
        "blank rows are passed over: {report:#}"
    );
    assert_eq!(report["created"], 1);
    let contacts = m.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["name"], "José Núñez");
    assert_eq!(contacts[0]["phones"], serde_json::json!(["+14155550132"]));
    assert_eq!(contacts[0]["roles"], serde_json::json!(["volunteer"]));
}

/// Rows are read again when they are written: quoted cells holding commas
/// and line breaks (in a column not imported), after a byte-order mark, and a later row that matches
/// an earlier one come out as the file says.
#[test]
fn quoted_cells_and_rows_that_match_each_other_come_out_as_the_file_says() {
    let m = Muster::new();
    let file = m.file(
        "quoted.csv",
        "\u{feff}Name,Email,Phone,Notes\r\n\"Silva, Ana\",ana@example.org,,\"first line\nsecond, line\"\r\nBo Chen,bo@example.org,,\r\n\"Silva, Ana\",ANA@example.org,07700 900123,\r\n",
    );
    let report = m.json(&["import", "contacts", &file, "--json"]);
    assert_eq!(report["rows_read"], 3, "{report:#}");
    assert_eq!(report["created"], 2, "{report:#}");
    let contacts = m.contacts();
    assert_eq!(contacts.len(), 2);
    let ana = contacts
        .iter()
        .find(|c| c["name"] == "Silva, Ana")
        .expect("Silva, Ana");
    assert_eq!(ana["emails"], serde_json::json!(["ana@example.org"]));
    assert_eq!(ana["phones"], serde_json::json!(["+447700900123"]));
    // The line break in the (ignored) notes did not end the row early.
    let bo = contacts
        .iter()
        .find(|c| c["name"] == "Bo Chen")
        .expect("Bo Chen");
    assert_eq!(bo["emails"], serde_json::json!(["bo@example.org"]));
}

/// A store with one of everything the exports show.
fn office() -> (Muster, String, String) {
    let m = Muster::new();
    let mut store = m.store();
    let ana = store
        .create_contact(
            &NewContact {
                name: "Ana Silva".into(),
                phones: vec!["07700 900123".into(), "+351 912 345 678".into()],
                emails: vec!["ana@example.org".into()],
                roles: vec!["volunteer".into(), "donor".into()],
                tags: vec!["choir".into()],
                ..Default::default()
            },
            GALA - 48 * HOUR,
        )
        .unwrap();
    store
        .update_contact(&ana, GALA - 47 * HOUR, |c| {
            c.address.city = "Lisboa".into();
            c.custom.insert("shirt".into(), "M".into());
            Ok(())
        })
        .unwrap();
    let bo = store
        .create_contact(
            &NewContact {
                name: "Bo Chen".into(),
                phones: vec!["+999 123456".into()],
                ..Default::default()
            },
            GALA - 48 * HOUR,
        )
        .unwrap();
    store
        .add_to_ledger(
            &ana,
            Donation {
                id: String::new(),
                amount_minor: 1250,
                currency: "EUR".into(),
                date: GALA,
                method: "cash".into(),
                note: Some("gala".into()),
                recorded_by: String::new(),
            },
            GALA,
        )
        .unwrap();
    let gala = store
        .create_event(
            &NewEvent {
                title: "Gala".into(),
                starts_at: GALA,
                ends_at: Some(GALA + 3 * HOUR),
                place: "Hall".into(),
                capacity: Some(1),
            },
            GALA - 48 * HOUR,
        )
        .unwrap();
    store.sign_up(&gala, &ana, false, GALA - 24 * HOUR).unwrap();
    store.sign_up(&gala, &bo, false, GALA - 23 * HOUR).unwrap();
    store.check_in(&gala, &ana, GALA + HOUR / 6).unwrap();
    let shift = store
        .add_shift(
            &gala,
            Shift {
                contact_id: bo.clone(),
                role: "desk".into(),
                starts_at: GALA,
                ends_at: GALA + 2 * HOUR,
                minutes_worked: None,
            },
            GALA - HOUR,
        )
        .unwrap();
    store
        .record_shift_minutes(&gala, &shift, 110, GALA + 2 * HOUR)
        .unwrap();
    let case = store
        .create_feedback(
            &NewFeedback {
                contact_id: Some(ana.clone()),
                channel: "email".into(),
                category: "complaint".into(),
                text: "The queue was long".into(),
            },
            GALA,
        )
        .unwrap();
    store
        .respond_feedback(&case, "Sorry", GALA + 30 * HOUR)
        .unwrap();
    drop(store);
    (m, ana, bo)
}

fn is_iso_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Parses a CSV export: the header and the rows, as maps from column name.
fn parse_csv(text: &str) -> (String, Vec<std::collections::HashMap<String, String>>) {
    let header = text.lines().next().unwrap_or_default().to_owned();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let names: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            names
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (header, rows)
}

#[test]
fn every_export_has_its_documented_headers_iso_times_and_e164_phones() {
    let (m, ana, bo) = office();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let cases = [
        ("contacts", CONTACT_HEADERS, 2),
        ("signups", SIGNUP_HEADERS, 2),
        ("donations", DONATION_HEADERS, 1),
        ("hours", HOURS_HEADERS, 1),
        ("feedback", FEEDBACK_HEADERS, 1),
    ];
    for (what, headers, count) in cases {
        assert!(
            readme.contains(headers),
            "the README does not document the {what} headers {headers}"
        );
        let (csv_text, _) = m.ok_with_stderr(&["export", what]);
        let (header, rows) = parse_csv(&csv_text);
        assert_eq!(header, headers, "{what}");
        assert_eq!(rows.len(), count, "{what}: {csv_text}");
        let json = m.json(&["export", what, "--format", "json"]);
        let objects = json.as_array().unwrap();
        assert_eq!(objects.len(), count, "{what}");
        let keys: Vec<&str> = headers.split(',').collect();
        for o in objects {
            let o = o.as_object().unwrap();
            assert_eq!(o.keys().count(), keys.len(), "{what}");
            for k in &keys {
                assert!(o.contains_key(*k), "{what}: no {k} in {o:?}");
            }
        }
        // Every time, in both formats, is RFC 3339 UTC to the second.
        for key in keys.iter().filter(|k| k.ends_with("_at") || **k == "date") {
            for row in &rows {
                let v = &row[*key];
                assert!(v.is_empty() || is_iso_time(v), "{what}.{key}: {v:?}");
            }
            for o in objects {
                let v = &o[*key];
                assert!(
                    v.is_null() || is_iso_time(v.as_str().unwrap()),
                    "{what}.{key}: {v}"
                );
            }
        }
    }

    let (text, _) = m.ok_with_stderr(&["export", "contacts"]);
    let (_, rows) = parse_csv(&text);
    let ana_row = rows.iter().find(|r| r["id"] == ana).unwrap();
    assert_eq!(ana_row["phones"], "+447700900123; +351912345678");
    assert_eq!(ana_row["roles"], "donor; volunteer");
    assert_eq!(ana_row["city"], "Lisboa");
    assert_eq!(ana_row["custom"], "shirt=M");
    assert_eq!(ana_row["created_at"], "2026-11-29T18:00:00Z");
    let bo_row = rows.iter().find(|r| r["id"] == bo).unwrap();
    assert_eq!(
        bo_row["phones"], "+999 123456",
        "a phone that cannot be read is kept as stored"
    );
    let json = m.json(&["export", "contacts", "--format", "json"]);
    let ana_json = json
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == ana.as_str())
        .unwrap();
    assert_eq!(
        ana_json["phones"],
        serde_json::json!(["+447700900123", "+351912345678"])
    );
    assert_eq!(ana_json["consent_given"], false);
    assert_eq!(ana_json["street"], Value::Null);

    let signups = m.json(&["export", "signups", "--format", "json"]);
    assert_eq!(signups[0]["contact_name"], "Ana Silva");
    assert_eq!(signups[0]["status"], "checked_in");
    assert_eq!(signups[0]["event_starts_at"], "2026-12-01T18:00:00Z");
    assert_eq!(signups[0]["checked_in_at"], "2026-12-01T18:10:00Z");
    assert_eq!(signups[0]["walk_in"], false);
    assert_eq!(signups[1]["status"], "waitlisted");
    assert_eq!(signups[1]["waitlist_position"], 1);

    let (text, _) = m.ok_with_stderr(&["export", "donations"]);
    let (_, rows) = parse_csv(&text);
    assert_eq!(rows[0]["contact_id"], ana);
    assert_eq!(rows[0]["amount"], "12.50");
    assert_eq!(rows[0]["amount_minor"], "1250");
    assert_eq!(rows[0]["currency"], "EUR");
    assert_eq!(rows[0]["date"], "2026-12-01T18:00:00Z");

    let hours = m.json(&["export", "hours", "--format", "json"]);
    assert_eq!(hours[0]["contact_id"], bo.as_str());
    assert_eq!(hours[0]["contact_name"], "Bo Chen");
    assert_eq!(hours[0]["minutes_worked"], 110);
    assert_eq!(hours[0]["ends_at"], "2026-12-01T20:00:00Z");

    let feedback = m.json(&["export", "feedback", "--format", "json"]);
    assert_eq!(feedback[0]["status"], "responded");
    assert_eq!(feedback[0]["first_response_at"], "2026-12-03T00:00:00Z");
    assert_eq!(feedback[0]["overdue"], true, "answered after 30 h");
    assert_eq!(feedback[0]["contact_name"], "Ana Silva");

    // --output writes the same bytes to a file; --bom starts it with one.
    let out = m.dir.path().join("contacts.csv");
    m.ok_with_stderr(&["export", "contacts", "--output", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        text_of(&m, &["export", "contacts"])
    );
    m.ok_with_stderr(&["export", "contacts", "--bom", "-o", out.to_str().unwrap()]);
    assert!(
        std::fs::read(&out)
            .unwrap()
            .starts_with(b"\xef\xbb\xbfid,name,")
    );
    let err = m.fails(&["export", "contacts", "--region", "Narnia"]);
    assert!(err.contains("is not a country code"), "{err}");
    let out = m.run(&["export", "volunteers"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown export is a usage error"
    );
}

fn text_of(m: &Muster, args: &[&str]) -> String {
    m.ok_with_stderr(args).0
}

#[test]
fn an_empty_store_exports_headers_and_empty_arrays() {
    let m = Muster::new();
    assert_eq!(
        text_of(&m, &["export", "contacts"]),
        format!("{CONTACT_HEADERS}\n")
    );
    assert_eq!(
        text_of(&m, &["export", "feedback", "--format", "json"]),
        "[]\n"
    );
}

#[test]
fn exported_contacts_import_back_without_creating_anything() {
    let (m, ana, bo) = office();
    // A merged duplicate is exported (with merged_into) but not imported.
    let dup = m
        .ok_with_stderr(&[
            "contact",
            "add",
            "--name",
            "Ana S",
            "--email",
            "ana.s@example.org",
        ])
        .0
        .trim()
        .to_owned();
    {
        let mut store = m.store();
        let into = ana.clone();
        store
            .update_contact(&dup, 1, |c| {
                c.merged_into = Some(into);
                Ok(())
            })
            .unwrap();
    }
    let before = m.contacts();
    let pending = m.pending();
    let (csv_text, _) = m.ok_with_stderr(&["export", "contacts"]);
    assert!(csv_text.contains(&format!(",{ana},")), "{csv_text}");
    let file = m.file("export.csv", &csv_text);
    let report = m.json(&["import", "contacts", &file, "--json"]);
    assert_eq!(report["rows_read"], 3, "{report:#}");
    assert_eq!(report["created"], 0, "{report:#}");
    assert_eq!(report["updated"], 0, "{report:#}");
    assert_eq!(report["unchanged"], 2, "{report:#}");
    assert_eq!(
        report["skipped_rows"][0]["reason"],
        format!("a merged duplicate (merged into {ana}): not imported")
    );
    for row in report["rows"].as_array().unwrap() {
        assert_eq!(row["matched_by"], "id");
    }
    assert_eq!(m.contacts(), before);
    assert_eq!(m.pending(), pending);

    // Into another store, the same file creates the kept contacts.
    let other = Muster::new();
    let file = other.file("export.csv", &csv_text);
    let report = other.json(&["import", "contacts", &file, "--json"]);
    assert_eq!(report["created"], 2, "{report:#}");
    let names: Vec<Value> = other.contacts().iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, ["Ana Silva", "Bo Chen"]);
    let _ = bo;
}

#[test]
fn an_import_killed_midway_keeps_whole_rows_and_resumes() {
    let m = Muster::new();
    let rows = 3_000;
    let mut text = String::from("name,email,phone,external id\n");
    for i in 0..rows {
        text.push_str(&format!(
            "Person {i},p{i}@example.org,07700 {:06},X-{i}\n",
            100_000 + i
        ));
    }
    let file = m.file("big.csv", text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_muster"))
        .arg("--store")
        .arg(m.store_path())
        .args(["import", "contacts", &file])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as a first batch is in (or let it finish, if it is
    // faster than we look).
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if m.store_path().exists()
            && let Ok(store) = Store::open(m.store_path())
            && store.contact_count().unwrap_or(0) > 0
        {
            child.kill().unwrap();
            break;
        }
        assert!(started.elapsed().as_secs() < 120, "the import hangs");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.wait().unwrap();

    let written = {
        let store = m.store();
        store.integrity_check().unwrap();
        let mut contacts = Vec::new();
        store
            .for_each_contact(|chunk| {
                contacts.extend(chunk);
                Ok::<_, muster_core::Error>(())
            })
            .unwrap();
        // Every contact is a whole row: all of its fields, or no contact.
        for c in &contacts {
            let i: usize = c.name.strip_prefix("Person ").unwrap().parse().unwrap();
            assert_eq!(c.emails, vec![format!("p{i}@example.org")]);
            assert_eq!(c.phones, vec![format!("+447700{:06}", 100_000 + i)]);
            assert_eq!(c.external_id, Some(format!("X-{i}")));
        }
        assert_eq!(contacts.len() % 1_000, 0, "whole batches only");
        contacts.len()
    };
    eprintln!("{written} of {rows} rows were in when the import was killed");
    let report = m.json(&["import", "contacts", &file, "--json"]);
    assert_eq!(report["created"], rows - written, "{written} were written");
    assert_eq!(report["unchanged"], written);
    assert_eq!(m.store().contact_count().unwrap(), rows as i64);
}

/// A name typed as a formula at a walk-in desk is exported as text a
/// spreadsheet will not run (OWASP "CSV Injection"), in every CSV export
/// that names contacts, and imports back as typed.
#[test]
fn formulas_are_neutralised_in_csv_and_import_back_as_typed() {
    let m = Muster::new();
    let formula = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let id = m
        .ok_with_stderr(&[
            "contact",
            "add",
            "--name",
            formula,
            "--phone",
            "+447700900123",
        ])
        .0
        .trim()
        .to_owned();
    let (csv_text, _) = m.ok_with_stderr(&["export", "contacts"]);
    let mut rows = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let row = rows.records().next().unwrap().unwrap();
    let cell = |name: &str| {
        row.get(headers.iter().position(|h| h == name).unwrap())
            .unwrap()
    };
    assert_eq!(cell("name"), format!("'{formula}"));
    // A phone in E.164 form is a number, not a formula: left as it is.
    assert_eq!(cell("phones"), "+447700900123");
    // JSON is never changed.
    let json = m.json(&["export", "contacts", "--format", "json"]);
    assert_eq!(json[0]["name"], formula);
    // Back in, the contact is unchanged.
    let file = m.file("export.csv", &csv_text);
    let report = m.json(&["import", "contacts", &file, "--json"]);
    assert_eq!(report["unchanged"], 1, "{report:#}");
    let other = Muster::new();
    let file = other.file("export.csv", &csv_text);
    other.json(&["import", "contacts", &file, "--json"]);
    assert_eq!(other.contacts()[0]["name"], formula);
    let _ = id;
}
