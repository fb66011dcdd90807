//! The `muster` binary on a store in a temporary directory, offline.

mod common;

use common::Muster;
use serde_json::Value;

#[test]
fn an_office_day_offline() {
    let m = Muster::new();
    let ana = m.ok(&[
        "contact",
        "add",
        "--name",
        "Ana Silva",
        "--phone",
        "+351 912 345 678",
        "--email",
        "ana@example.org",
        "--role",
        "volunteer",
    ]);
    assert_eq!(
        ana.lines().count(),
        1,
        "contact add prints exactly the id: {ana:?}"
    );
    let ana = ana.trim().to_owned();
    assert!(ana.starts_with("c_") && ana.len() == 34, "{ana}");
    let bo = m
        .ok(&["contact", "add", "--name", "Bo Chen"])
        .trim()
        .to_owned();
    let cy = m
        .ok(&["contact", "add", "--name", "Cy Diaz"])
        .trim()
        .to_owned();

    let found = m.json(&["contact", "search", "silv", "--json"]);
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], ana);
    assert_eq!(found[0]["name"], "Ana Silva");
    assert_eq!(found[0]["phone"], "+351 912 345 678");
    assert_eq!(found[0]["roles"], serde_json::json!(["volunteer"]));
    assert_eq!(
        m.json(&["contact", "search", "912345", "--json"])[0]["id"],
        ana,
        "phone digits"
    );
    assert_eq!(
        m.json(&["contact", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        3
    );

    m.ok(&[
        "contact",
        "edit",
        &ana,
        "--city",
        "Lisboa",
        "--add-tag",
        "choir",
        "--custom",
        "shirt=M",
        "--consent",
        "yes",
        "--consent-channel",
        "email",
    ]);
    let shown = m.json(&["contact", "show", &ana, "--json"]);
    assert_eq!(shown["address"]["city"], "Lisboa");
    assert_eq!(shown["tags"], serde_json::json!(["choir"]));
    assert_eq!(shown["custom"]["shirt"], "M");
    assert_eq!(shown["consent"]["given"], true);
    assert_eq!(shown["consent"]["channels"], serde_json::json!(["email"]));
    // Recorded by this device, as on a phone (it once stayed empty here).
    assert_eq!(shown["consent"]["recorded_by"], shown["created_by"]);
    assert!(shown["consent"]["recorded_at"].is_string(), "{shown:#}");
    assert!(shown["created_at"].as_str().unwrap().ends_with('Z'));

    let event = m.ok(&[
        "event",
        "add",
        "--title",
        "Choir night",
        "--starts",
        "2026-12-01T18:00:00Z",
        "--capacity",
        "2",
    ]);
    let event = event.trim().to_owned();
    assert!(event.starts_with("e_"));
    for c in [&ana, &bo, &cy] {
        m.ok(&["signup", &event, c]);
    }
    m.ok(&["checkin", &event, &bo]);
    let roster = m.json(&["roster", &event, "--json"]);
    let statuses: Vec<(&str, &str)> = roster
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["contact_id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            (ana.as_str(), "registered"),
            (bo.as_str(), "checked_in"),
            (cy.as_str(), "waitlisted")
        ]
    );
    assert_eq!(roster[2]["waitlist_position"], 1);
    assert_eq!(roster[1]["name"], "Bo Chen");
    let waitlist = m.json(&["roster", &event, "--status", "waitlisted", "--json"]);
    assert_eq!(waitlist.as_array().unwrap().len(), 1);

    let events = m.json(&["event", "list", "--json"]);
    assert_eq!(events[0]["starts_at"], "2026-12-01T18:00:00.000Z");
    assert_eq!(
        (
            events[0]["registered"].as_i64(),
            events[0]["waitlisted"].as_i64(),
            events[0]["checked_in"].as_i64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(events[0]["capacity"], 2);

    // The human table names everyone.
    let table = m.ok(&["roster", &event]);
    assert!(
        table.contains("Cy Diaz") && table.contains("waitlisted"),
        "{table}"
    );
}

#[test]
fn bad_input_is_a_clear_error_with_exit_1() {
    let m = Muster::new();
    let err = m.fails(&["contact", "add", "--name", "Bo", "--email", "bo-at-example"]);
    assert!(err.contains("invalid email"), "{err}");
    let err = m.fails(&["contact", "add", "--name", "  "]);
    assert!(err.contains("invalid name"), "{err}");
    let err = m.fails(&["contact", "show", "c_0123456789abcdef0123456789abcdef"]);
    assert!(err.contains("no contact with id"), "{err}");
    let err = m.fails(&["event", "add", "--title", "X", "--starts", "next tuesday"]);
    assert!(err.contains("RFC 3339"), "{err}");
    let err = m.fails(&["sync"]);
    assert!(err.contains("muster login"), "{err}");
    assert!(
        m.json(&["contact", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was stored"
    );
    // Usage errors are clap's: exit 2.
    assert_eq!(m.run(&["contact", "frobnicate"]).status.code(), Some(2));
}

#[test]
fn duplicates_are_listed_merged_unmerged_and_dismissed() {
    let m = Muster::new();
    let ana = m.ok(&[
        "contact",
        "add",
        "--name",
        "Ana Silva",
        "--phone",
        "+44 7700 900123",
    ]);
    let ana = ana.trim();
    // Typed again at another desk, differently.
    let out = m.run(&[
        "contact",
        "add",
        "--name",
        "Ana Sílva",
        "--phone",
        "07700 900123",
    ]);
    assert!(out.status.success());
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains(&format!("maybe the same person as {ana}")),
        "{warning}"
    );
    let dup = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    m.ok(&["contact", "add", "--name", "Bo Chen"]);

    let pairs = m.json(&["duplicates", "--json"]);
    let pairs = pairs.as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(pairs[0]["a"], ana);
    assert_eq!(pairs[0]["b"], dup);
    assert!(pairs[0]["score"].as_f64().unwrap() > 0.9);
    assert!(
        pairs[0]["reasons"]
            .as_array()
            .unwrap()
            .contains(&Value::from("same phone +447700900123"))
    );
    assert!(m.ok(&["duplicates"]).contains("same phone +447700900123"));

    m.ok(&["merge", ana, &dup]);
    assert!(
        m.json(&["duplicates", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let found = m.json(&["contact", "search", "silva", "--json"]);
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert!(
        !m.run(&["merge", ana, &dup]).status.success(),
        "already merged"
    );

    m.ok(&["unmerge", &dup]);
    assert_eq!(
        m.json(&["contact", "search", "silva", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        m.json(&["duplicates", "--json"]).as_array().unwrap().len(),
        1
    );
    m.ok(&["not-duplicate", ana, &dup]);
    assert!(m.ok(&["duplicates"]).contains("no likely duplicates"));
    let bad = m.run(&["merge", ana, "c_00000000000000000000000000000000"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("muster: "));
}

#[test]
fn the_phone_region_decides_how_national_numbers_match() {
    let m = Muster::new();
    assert_eq!(m.ok(&["phone-region"]).trim(), "GB");
    m.ok(&[
        "contact",
        "add",
        "--name",
        "Sam Lee",
        "--phone",
        "+1 415 555 0132",
    ]);
    m.ok(&[
        "contact",
        "add",
        "--name",
        "Sam Lee",
        "--phone",
        "(415) 555-0132",
    ]);
    // Read as a British number, the second does not match the first, and
    // namesakes with different phones are not proposed.
    let pairs = m.json(&["duplicates", "--json"]);
    assert_eq!(pairs.as_array().unwrap().len(), 0, "{pairs}");
    m.ok(&["phone-region", "us"]);
    assert_eq!(m.ok(&["phone-region"]).trim(), "US");
    let pairs = m.json(&["duplicates", "--json"]);
    assert!(
        pairs[0]["reasons"]
            .to_string()
            .contains("same phone +14155550132"),
        "{pairs}"
    );
    let bad = m.run(&["phone-region", "XX"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(m.ok(&["phone-region"]).trim(), "US");
}

/// `contact edit` follows the one edit rule of the phones' `updateContact`
/// and of imports: an empty value clears an optional field (it once stored
/// an empty organisation), and a phone or email already there in another
/// form is not added again (it once was).
#[test]
fn an_edit_clears_with_an_empty_value_and_adds_nothing_twice() {
    let m = Muster::new();
    let ana = m
        .ok(&[
            "contact",
            "add",
            "--name",
            "Ana Silva",
            "--phone",
            "07700 900123",
            "--email",
            "ana@example.org",
        ])
        .trim()
        .to_owned();
    m.ok(&["contact", "edit", &ana, "--organisation", "Food bank"]);
    let shown = m.json(&["contact", "show", &ana, "--json"]);
    assert_eq!(shown["organisation"], "Food bank");
    m.ok(&[
        "contact",
        "edit",
        &ana,
        "--organisation",
        "",
        "--add-phone",
        "+44 7700 900123",
        "--add-email",
        "ANA@example.org",
        "--add-phone",
        "+44 7700 900456",
    ]);
    let shown = m.json(&["contact", "show", &ana, "--json"]);
    assert_eq!(shown["organisation"], Value::Null, "{shown:#}");
    assert_eq!(
        shown["phones"],
        serde_json::json!(["07700 900123", "+44 7700 900456"])
    );
    assert_eq!(shown["emails"], serde_json::json!(["ana@example.org"]));
}

#[test]
fn an_event_published_prints_its_page_and_keeps_the_address_when_published_again() {
    let m = Muster::new();
    let event = m.ok(&[
        "event",
        "add",
        "--title",
        "Food drive",
        "--starts",
        "2099-06-01T10:00:00Z",
    ]);
    let event = event.trim();
    let out = m.ok(&["event", "publish", event, "--ask", "phone,email"]);
    let mut lines = out.lines();
    let first = lines.next().unwrap();
    let slug = first.strip_prefix("/r/").expect(first);
    assert_eq!(slug.len(), 32, "{out}");
    assert!(out.contains("2099-06-01T10:00:00.000Z"), "{out}");
    assert!(out.contains("and: email, phone\n"), "{out}");

    // Enrolled, it prints the whole address on the relay.
    m.store()
        .set_setting(
            muster_core::client::URL_SETTING,
            "wss://relay.example.org/v1/sync",
        )
        .unwrap();
    let again = m.ok(&[
        "event",
        "publish",
        event,
        "--closes",
        "2099-05-31T18:00:00Z",
    ]);
    assert_eq!(
        again.lines().next().unwrap(),
        format!("https://relay.example.org/r/{slug}")
    );
    assert!(again.contains("2099-05-31T18:00:00.000Z"), "{again}");
    assert!(again.contains("email, phone, language, consent"), "{again}");
    let held = m.store().event_by_slug(slug).unwrap().unwrap();
    assert!(held.publication.unwrap().open);

    assert!(
        m.ok(&["event", "unpublish", event])
            .starts_with("unpublished")
    );
    assert!(
        m.ok(&["event", "unpublish", event])
            .contains("nothing changed")
    );
    let held = m.store().event_by_slug(slug).unwrap().unwrap();
    assert!(!held.publication.unwrap().open);

    let err = m.fails(&["event", "publish", event, "--ask", "fax"]);
    assert!(
        err.contains("\"fax\"") && err.contains("email, phone"),
        "{err}"
    );
    let err = m.fails(&[
        "event",
        "publish",
        event,
        "--closes",
        "2000-01-01T00:00:00Z",
    ]);
    assert!(err.contains("already past"), "{err}");
}

#[test]
fn registrations_from_a_public_page_are_a_source_of_their_own_in_new_contacts() {
    let m = Muster::new();
    let event = m.ok(&[
        "event",
        "add",
        "--title",
        "Food drive",
        "--starts",
        "2099-06-01T10:00:00Z",
    ]);
    let event = event.trim();
    m.ok(&["event", "publish", event]);
    m.ok(&["contact", "add", "--name", "Desk Person"]);
    {
        let mut store = m.store();
        let page = store.event(event).unwrap().publication.unwrap();
        let form = muster_core::registration::PageForm {
            name: "Web Person".into(),
            email: "web@example.org".into(),
            ..Default::default()
        };
        let checked = form.check(&page, "GB").unwrap();
        store
            .register_from_page(event, &checked, muster_core::model::now_ms())
            .unwrap();
    }
    let out = m.ok(&["report", "new-contacts"]);
    assert!(out.contains("web form (registered online)"), "{out}");
    assert!(out.contains("(this device)"), "{out}");
    let json = m.json(&["report", "new-contacts", "--json"]);
    let sources: Vec<&str> = json["by_device"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert!(sources.contains(&"web form"), "{json:#}");
}
