//! The coordinators' dashboard, end to end over HTTP: the relay in-process
//! on 127.0.0.1 and port 0 with its dashboard turned on, a desk syncing
//! records to it, and a small HTTP client of our own (no client crate).

use std::time::Duration;

mod common;

use common::http::{eventually, form, http};
use common::{Relay, T0, clock, serve, start_relay};
use muster_core::client::sync_once;
use muster_core::{NewContact, NewEvent, Store};
use muster_server::AppState;

impl Relay {
    /// Reads the dashboard's own store.
    fn dash<R>(&self, f: impl FnOnce(&mut Store) -> muster_core::Result<R>) -> R {
        self.state.dashboard().unwrap().device().read(f).unwrap()
    }
}

/// Logs in with `secret`; returns the `Cookie` header value.
async fn login(addr: &str, secret: &str) -> String {
    let r = http(
        addr,
        "POST",
        "/login",
        None,
        Some(&form(&[("token", secret)])),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r.header("set-cookie").expect("a session cookie");
    cookie.split(';').next().unwrap().to_owned()
}

/// The CSRF token in a page's forms.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn contact(name: &str, phone: Option<&str>) -> NewContact {
    NewContact {
        name: name.into(),
        phones: phone.into_iter().map(str::to_owned).collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_coordinator_tokens_log_in_and_pages_need_the_session() {
    let relay = start_relay(true).await;
    let addr = relay.addr.clone();
    let (_, observer) = relay.token_in("observer", &[]);
    let event = format!("e_{}", "ab".repeat(16));
    let (_, volunteer) = relay.token_in("volunteer", &[event]);
    let (coord_id, coordinator) = relay.token_in("coordinator", &[]);

    // Without a session: the login form, redirects, 401 for the live JSON,
    // 403 for a form.
    let home = http(&addr, "GET", "/", None, None).await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("name=\"token\""), "{}", home.body);
    assert!(
        home.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'self'")),
        "{:?}",
        home.headers
    );
    for path in [
        "/contacts",
        "/duplicates",
        "/feedback",
        "/export/contacts.csv",
    ] {
        let r = http(&addr, "GET", path, None, None).await;
        assert_eq!((r.status, r.header("location")), (303, Some("/")), "{path}");
    }
    assert_eq!(
        http(&addr, "GET", "/api/events", None, None).await.status,
        401
    );
    let post = http(&addr, "POST", "/duplicates/merge", None, Some("keep=x")).await;
    assert_eq!(post.status, 403);
    let forged = http(
        &addr,
        "GET",
        "/contacts",
        Some(&format!("muster_session={}", "0".repeat(64))),
        None,
    )
    .await;
    assert_eq!(forged.status, 303, "an unknown session is no session");

    // Refused: a wrong token, an observer's, a volunteer's.
    for (secret, status, says) in [
        ("mst_wrong", 401, "not valid"),
        (observer.as_str(), 403, "observer token"),
        (volunteer.as_str(), 403, "volunteer token"),
        ("", 400, "Paste a coordinator token"),
    ] {
        let r = http(
            &addr,
            "POST",
            "/login",
            None,
            Some(&form(&[("token", secret)])),
        )
        .await;
        assert_eq!(r.status, status, "{secret}: {}", r.body);
        assert!(r.body.contains(says), "{secret}: {}", r.body);
        assert!(r.header("set-cookie").is_none(), "{secret}: no session");
    }
    // A body that is not a form is a clear 400, not a crash.
    let mut raw = http(&addr, "POST", "/login", None, None).await;
    assert_eq!(raw.status, 400, "{}", raw.body);
    assert!(raw.body.contains("not sent as a form"));

    // Accepted: a coordinator's.
    let r = http(
        &addr,
        "POST",
        "/login",
        None,
        Some(&form(&[("token", &coordinator)])),
    )
    .await;
    assert_eq!((r.status, r.header("location")), (303, Some("/")));
    let set = r.header("set-cookie").unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(part), "{set}");
    }
    let value = set
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("muster_session=");
    assert_eq!(value.len(), 64, "256 random bits in hex: {set}");
    assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
    let cookie = format!("muster_session={value}");
    let home = http(&addr, "GET", "/", Some(&cookie), None).await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("<h1>Events</h1>"), "{}", home.body);
    assert!(home.body.contains("data-live=\"/api/events\""));
    for path in [
        "/contacts",
        "/duplicates",
        "/feedback",
        "/export",
        "/api/events",
    ] {
        let r = http(&addr, "GET", path, Some(&cookie), None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    // Unknown things are clear pages with the right status.
    for (path, status) in [
        ("/contacts/c_nope", 404),
        (&format!("/contacts/c_{}", "0".repeat(32)), 404),
        ("/events/e_nope", 404),
        ("/export/passwords.csv", 404),
        ("/no/such/page", 404),
        ("/contacts?offset=-1", 400),
        ("/duplicates/merge", 405),
    ] {
        let r = http(&addr, "GET", path, Some(&cookie), None).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.body.contains("class=\"error\""), "{path}: {}", r.body);
    }

    // Logging out needs the CSRF token, then ends the session.
    raw = http(&addr, "POST", "/logout", Some(&cookie), Some("")).await;
    assert_eq!(raw.status, 403, "{}", raw.body);
    let csrf = csrf_of(&home.body);
    let out = http(
        &addr,
        "POST",
        "/logout",
        Some(&cookie),
        Some(&form(&[("csrf", &csrf)])),
    )
    .await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        http(&addr, "GET", "/contacts", Some(&cookie), None)
            .await
            .status,
        303
    );

    // A revoked token ends its sessions at the next request.
    let cookie = login(&addr, &coordinator).await;
    assert_eq!(
        http(&addr, "GET", "/contacts", Some(&cookie), None)
            .await
            .status,
        200
    );
    relay.state.storage().revoke_token(&coord_id, T0).unwrap();
    assert_eq!(
        http(&addr, "GET", "/contacts", Some(&cookie), None)
            .await
            .status,
        303
    );
    let home = http(&addr, "GET", "/", Some(&cookie), None).await;
    assert!(
        home.body.contains("name=\"token\""),
        "back to the login form"
    );
    let again = http(
        &addr,
        "POST",
        "/login",
        None,
        Some(&form(&[("token", &coordinator)])),
    )
    .await;
    assert_eq!(again.status, 401, "a revoked token cannot log in");

    // The dashboard's own token is a live coordinator token of this relay.
    let dash_token = relay.state.dashboard().unwrap().token_id().to_owned();
    let listed = relay.state.storage().list_tokens().unwrap();
    let mine = listed.iter().find(|t| t.id == dash_token).unwrap();
    assert_eq!(
        (mine.role.as_str(), mine.label.as_str()),
        ("coordinator", "dashboard")
    );
    assert!(mine.revoked_at.is_none());
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_per_address() {
    let relay = start_relay(true).await;
    let (_, coordinator) = relay.token_in("coordinator", &[]);
    for _ in 0..muster_server::MAX_FAILED_LOGINS {
        let r = http(&relay.addr, "POST", "/login", None, Some("token=mst_guess")).await;
        assert_eq!(r.status, 401);
    }
    let r = http(&relay.addr, "POST", "/login", None, Some("token=mst_guess")).await;
    assert_eq!(
        r.status, 429,
        "guesses are locked out for the rest of the minute: {}",
        r.body
    );
    assert!(r.body.contains("Too many failed logins"));
    // A right token still gets in: everyone behind one proxy shares its
    // address, and one guesser must not keep the office out.
    let r = http(
        &relay.addr,
        "POST",
        "/login",
        None,
        Some(&form(&[("token", &coordinator)])),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_without_the_dashboard_says_so() {
    let relay = start_relay(false).await;
    let r = http(&relay.addr, "GET", "/", None, None).await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("--no-dashboard"), "{}", r.body);
    let r = http(&relay.addr, "POST", "/login", None, Some("token=x")).await;
    assert_eq!(r.status, 503);
    assert!(
        http(&relay.addr, "GET", "/healthz", None, None)
            .await
            .body
            .ends_with("ok\n")
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_unmerge_escaping_live_roster_and_csv_through_http() {
    let relay = start_relay(true).await;
    let addr = relay.addr.clone();
    let (_, desk_token) = relay.token_in("coordinator", &[]);
    let (_, coordinator) = relay.token_in("coordinator", &[]);

    // A desk records an event, a duplicate pair and a hostile name.
    let mut desk = Store::open_in_memory().unwrap();
    let maria = desk
        .create_contact(&contact("Maria Gonzalez", Some("+44 7700 900123")), T0)
        .unwrap();
    let maria2 = desk
        .create_contact(&contact("María González", Some("07700 900123")), T0 + 1)
        .unwrap();
    let hostile = desk
        .create_contact(&contact("<script>alert(1)</script>", None), T0 + 2)
        .unwrap();
    let gala = desk
        .create_event(
            &NewEvent::new("Gala <i>night</i>", T0, "Hall", Some(10)),
            T0,
        )
        .unwrap();
    desk.sign_up(&gala, &hostile, false, T0 + 3).unwrap();
    desk.sign_up(&gala, &maria, false, T0 + 4).unwrap();
    sync_once(&mut desk, &relay.url, &desk_token, &clock, &mut |_| {})
        .await
        .unwrap();
    eventually(
        "the dashboard's replica holds the desk's records",
        async || relay.dash(|s| s.contact_count()) == 3,
    )
    .await;

    let cookie = login(&addr, &coordinator).await;
    let get = |path: String| {
        let (addr, cookie) = (addr.clone(), cookie.clone());
        async move { http(&addr, "GET", &path, Some(&cookie), None).await }
    };

    // Hostile names are escaped everywhere they show.
    let page = get("/contacts?q=script".into()).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    for path in [
        "/contacts?q=script".to_owned(),
        format!("/contacts/{hostile}"),
        format!("/events/{gala}"),
        format!("/api/events/{gala}"),
        "/".to_owned(),
        "/api/events".to_owned(),
        "/contacts".to_owned(),
    ] {
        let r = get(path.clone()).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(!r.body.contains("<script>alert"), "{path}: {}", r.body);
        assert!(!r.body.contains("<i>night"), "{path}");
    }
    // A NUL (or any control character) in a search is read as a space,
    // not handed to FTS5 (it answered "unterminated string": a 500).
    for q in ["%00abc", "abc%00", "%00", "scr%01ipt%7F"] {
        let r = get(format!("/contacts?q={q}")).await;
        assert_eq!(r.status, 200, "{q}: {}", r.body);
    }
    let search = get("/contacts?q=%3Cscript%3E%22".into()).await;
    assert!(
        search.body.contains("value=\"&lt;script&gt;&quot;\""),
        "{}",
        search.body
    );

    // The duplicate pair reaches the review queue.
    let mut queue = String::new();
    eventually("the pair is in the duplicate queue", async || {
        queue = get("/duplicates".into()).await.body;
        queue.contains(&format!("data-b=\"{maria2}\""))
    })
    .await;
    assert!(queue.contains("same phone +447700900123"), "{queue}");
    let csrf = csrf_of(&queue);

    // A merge without the CSRF token, or with another, changes nothing.
    let merge = |extra: Vec<(&'static str, String)>| {
        let (addr, cookie) = (addr.clone(), cookie.clone());
        let mut fields = vec![("keep", maria.clone()), ("duplicate", maria2.clone())];
        fields.extend(extra);
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http(
                &addr,
                "POST",
                "/duplicates/merge",
                Some(&cookie),
                Some(&form(&pairs)),
            )
            .await
        }
    };
    assert_eq!(merge(vec![]).await.status, 403);
    assert_eq!(merge(vec![("csrf", "0".repeat(64))]).await.status, 403);
    assert_eq!(relay.dash(|s| s.contact(&maria2)).merged_into, None);

    // With it: merged in the store, pushed to the relay, gone from the queue.
    let done = merge(vec![("csrf", csrf.clone())]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location"),
        Some(format!("/duplicates?merged={maria2}").as_str())
    );
    assert_eq!(
        relay.dash(|s| s.contact(&maria2)).merged_into.as_deref(),
        Some(maria.as_str())
    );
    let after = get(format!("/duplicates?merged={maria2}")).await.body;
    assert!(!after.contains(&format!("data-b=\"{maria2}\"")), "{after}");
    assert!(
        after.contains(
            "Merged <strong>María González</strong> into <strong>Maria Gonzalez</strong>"
        )
    );
    assert!(after.contains(&format!("/contacts/{maria2}/unmerge")));
    let mut merged_on_desk = false;
    for _ in 0..100 {
        sync_once(&mut desk, &relay.url, &desk_token, &clock, &mut |_| {})
            .await
            .unwrap();
        if desk.contact(&maria2).unwrap().merged_into.as_deref() == Some(maria.as_str()) {
            merged_on_desk = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(merged_on_desk, "the merge reached the relay and the desk");
    // Her page shows the merged duplicate and her change history.
    let page = get(format!("/contacts/{maria}")).await.body;
    assert!(
        page.contains("Duplicates merged into this contact"),
        "{page}"
    );
    assert!(page.contains("Change history"));

    // Merging again, or into itself, or an unknown id: clear refusals.
    let again = merge(vec![("csrf", csrf.clone())]).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("already merged"), "{}", again.body);
    let bad = http(
        &addr,
        "POST",
        "/duplicates/merge",
        Some(&cookie),
        Some(&form(&[
            ("csrf", &csrf),
            ("keep", "c_x"),
            ("duplicate", &maria2),
        ])),
    )
    .await;
    assert_eq!(bad.status, 404, "{}", bad.body);

    // Unmerge through the route: the duplicate is a contact of its own.
    let r = http(
        &addr,
        "POST",
        &format!("/contacts/{maria2}/unmerge"),
        Some(&cookie),
        Some(&form(&[("csrf", &csrf), ("back", "duplicates")])),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(relay.dash(|s| s.contact(&maria2)).merged_into, None);
    let r = http(
        &addr,
        "POST",
        &format!("/contacts/{maria2}/unmerge"),
        Some(&cookie),
        Some(&form(&[("csrf", &csrf)])),
    )
    .await;
    assert_eq!(r.status, 409, "not merged any more: {}", r.body);

    // "Not a duplicate" takes the pair out of detection for good.
    let r = http(
        &addr,
        "POST",
        "/duplicates/not-duplicate",
        Some(&cookie),
        Some(&form(&[("csrf", &csrf), ("a", &maria), ("b", &maria2)])),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(relay.dash(|s| s.duplicate_candidates()).is_empty());

    // A check-in made at the desk shows in the roster's live JSON.
    let live = get(format!("/api/events/{gala}")).await;
    let v: serde_json::Value = serde_json::from_str(&live.body).unwrap();
    let generation = v["gen"].as_u64().unwrap();
    assert_eq!(v["checked_in"], 0);
    let unchanged = get(format!("/api/events/{gala}?since={generation}")).await;
    assert!(
        unchanged.body.contains("\"unchanged\":true"),
        "{}",
        unchanged.body
    );
    desk.check_in(&gala, &maria, T0 + 60_000).unwrap();
    sync_once(&mut desk, &relay.url, &desk_token, &clock, &mut |_| {})
        .await
        .unwrap();
    eventually("the check-in reaches the live roster", async || {
        let r = get(format!("/api/events/{gala}?since={generation}")).await;
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        v["checked_in"] == 1 && v["rows_html"].as_str().unwrap().contains("checked in")
    })
    .await;

    // CSV downloads carry their header line.
    let csv = get("/export/contacts.csv".into()).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        csv.header("content-disposition")
            .unwrap()
            .contains("attachment")
    );
    assert!(csv.body.starts_with("id,name,"), "{}", csv.body);
    assert_eq!(csv.body.lines().count(), 4, "a header and three contacts");
    let signups = get("/export/signups.csv".into()).await;
    assert!(
        signups.body.starts_with("event_id,event_title,"),
        "{}",
        signups.body
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_relay_keeps_its_dashboard_replica_encrypted_and_reuses_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let key = [7u8; 32];
    let canary = "Plaintext Canary Zebediah";
    let first_token;
    {
        let state = AppState::open_encrypted(dir.path(), &key).unwrap();
        state.enable_dashboard(Some(&key)).unwrap();
        first_token = state.dashboard().unwrap().token_id().to_owned();
        let (addr, tx, task) = serve(&state).await;
        let url = format!("ws://{addr}/v1/sync");
        let (_, token) = state
            .storage()
            .create_token("coordinator", "desk", &[], T0)
            .unwrap();
        let mut desk = Store::open_in_memory().unwrap();
        desk.create_contact(&contact(canary, None), T0).unwrap();
        sync_once(&mut desk, &url, &token, &clock, &mut |_| {})
            .await
            .unwrap();
        let dash = state.dashboard().unwrap().clone();
        eventually("the replica holds the contact", async || {
            dash.device().read(|s| s.contact_count()).unwrap() == 1
        })
        .await;
        drop(dash);
        let _ = tx.send(());
        task.await.unwrap();
    }
    let mut seen = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("dashboard.muster") {
            seen += 1;
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{name} holds the name in plain text"
            );
        }
    }
    assert!(seen >= 1, "the dashboard's store is in the data directory");
    assert!(
        Store::open(dir.path().join("dashboard.muster")).is_err(),
        "not readable without the key"
    );
    // Reopened: the same token, no new one.
    let state = AppState::open_encrypted(dir.path(), &key).unwrap();
    state.enable_dashboard(Some(&key)).unwrap();
    assert_eq!(state.dashboard().unwrap().token_id(), first_token);
    let dashboards = state
        .storage()
        .list_tokens()
        .unwrap()
        .into_iter()
        .filter(|t| t.label == "dashboard")
        .count();
    assert_eq!(dashboards, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_publishes_an_events_page_from_the_dashboard_and_unpublishes_it() {
    use muster_core::model::now_ms;
    let relay = start_relay(true).await;
    let addr = relay.addr.clone();
    let (_, secret) = relay.token_in("coordinator", &[]);
    let desk_token = relay.token("coordinator");
    let mut desk = Store::open_in_memory().unwrap();
    let now = now_ms();
    let event = desk
        .create_event(
            &NewEvent::new("Food drive", now + 7 * 86_400_000, "Hall", None),
            now,
        )
        .unwrap();
    sync_once(&mut desk, &relay.url, &desk_token, &now_ms, &mut |_| {})
        .await
        .unwrap();
    let cookie = login(&addr, &secret).await;
    let path = format!("/events/{event}");
    eventually("the event reaches the dashboard", async || {
        http(&addr, "GET", &path, Some(&cookie), None).await.status == 200
    })
    .await;
    let page = http(&addr, "GET", &path, Some(&cookie), None).await;
    assert!(page.body.contains("Publish the page"), "{}", page.body);
    let csrf = csrf_of(&page.body);

    // Without the session's CSRF token, nothing is published.
    let publish = format!("/events/{event}/publish");
    let r = http(&addr, "POST", &publish, Some(&cookie), Some("ask=email")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = http(
        &addr,
        "POST",
        &publish,
        Some(&cookie),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, 400, "nothing to ask: {}", r.body);
    let fields = format!("csrf={csrf}&ask=email&ask=phone&closes=");
    let r = http(&addr, "POST", &publish, Some(&cookie), Some(&fields)).await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some(path.as_str())),
        "{}",
        r.body
    );

    // The event page gives the address and its QR code.
    let page = http(&addr, "GET", &path, Some(&cookie), None).await;
    let at = page
        .body
        .find(&format!("http://{addr}/r/"))
        .expect("the page's address");
    let url = &page.body[at..at + format!("http://{addr}/r/").len() + 32];
    let public = &url[format!("http://{addr}").len()..];
    assert!(page.body.contains("Unpublish the page"), "{}", page.body);
    let qr = http(
        &addr,
        "GET",
        &format!("/events/{event}/qr.svg"),
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(qr.status, 200);
    assert_eq!(qr.header("content-type"), Some("image/svg+xml"));
    assert!(qr.body.contains("<svg"), "{}", qr.body);
    let anonymous = http(&addr, "GET", &format!("/events/{event}/qr.svg"), None, None).await;
    assert_eq!(anonymous.status, 303, "the QR code needs the session too");

    // The public page asks what was ticked.
    let form = http(&addr, "GET", public, None, None).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("id=\"f-email\"") && form.body.contains("id=\"f-phone\""));
    assert!(!form.body.contains("id=\"f-language\""), "{}", form.body);

    // Unpublished: the page is gone, and the desk learns it at its sync.
    let unpublish = format!("/events/{event}/unpublish");
    let r = http(
        &addr,
        "POST",
        &unpublish,
        Some(&cookie),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(http(&addr, "GET", public, None, None).await.status, 410);
    let slug = &public["/r/".len()..];
    let mut closed = false;
    for _ in 0..40 {
        sync_once(&mut desk, &relay.url, &desk_token, &now_ms, &mut |_| {})
            .await
            .unwrap();
        let page = desk.event(&event).unwrap().publication.unwrap();
        assert_eq!(page.slug, slug);
        closed = !page.open;
        if closed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the desk sees the page closed");
    relay.stop().await;
}
