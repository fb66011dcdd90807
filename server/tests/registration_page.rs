//! An event's public registration page (`/r/SLUG`), end to end over HTTP:
//! a real relay on 127.0.0.1 with its dashboard on, a desk that publishes
//! the event and syncs, and people registering through the page.

mod common;

use common::http::{Resp, eventually, form, request};
use common::{Relay, start_relay};
use muster_core::client::sync_once;
use muster_core::model::now_ms;
use muster_core::registration::PAGE_SOURCE;
use muster_core::{NewEvent, SignupStatus, Store};

const DAY: i64 = 86_400_000;

/// A desk enrolled with the relay, holding an event of `capacity` seats a
/// week from now, published and synced; returns the desk, the event and
/// the page's path and the desk's token, once the relay's replica serves
/// the page.
async fn published_event(relay: &Relay, capacity: Option<i64>) -> (Store, String, String, String) {
    let token = relay.token("coordinator");
    let mut desk = Store::open_in_memory().unwrap();
    let now = now_ms();
    let event = desk
        .create_event(
            &NewEvent::new("Food drive <b>", now + 7 * DAY, "Hall & yard", capacity),
            now,
        )
        .unwrap();
    let page = desk.publish_event(&event, None, &[], now).unwrap();
    sync_once(&mut desk, &relay.url, &token, &now_ms, &mut |_| {})
        .await
        .unwrap();
    let path = format!("/r/{}", page.slug);
    let addr = relay.addr.clone();
    eventually("the relay serves the page", async || {
        request(&addr, "GET", &path, &[], None).await.status == 200
    })
    .await;
    (desk, event, path, token)
}

/// The page's form: its cookie (as a `Cookie` header value) and the value
/// of its `form` field.
async fn open_form(addr: &str, path: &str) -> (String, String) {
    let r = request(addr, "GET", path, &[], None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    form_of(&r)
}

fn form_of(r: &Resp) -> (String, String) {
    let cookie = r
        .header("set-cookie")
        .expect("the form's cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let at = r
        .body
        .find("name=\"form\" value=\"")
        .expect("the form field")
        + 19;
    let nonce = r.body[at..at + r.body[at..].find('"').unwrap()].to_owned();
    (cookie, nonce)
}

async fn post(addr: &str, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Resp {
    request(
        addr,
        "POST",
        path,
        &[("Cookie", cookie)],
        Some(&form(fields)),
    )
    .await
}

fn web_contacts(relay: &Relay) -> Vec<String> {
    relay
        .state
        .dashboard()
        .unwrap()
        .device()
        .read(|s| {
            let ids: Vec<String> = s.list_contacts(100, 0)?.into_iter().map(|c| c.id).collect();
            let mut web = Vec::new();
            for id in ids {
                if s.contact(&id)?.created_by == PAGE_SOURCE {
                    web.push(id);
                }
            }
            Ok(web)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_register_on_the_page_and_the_desk_sees_them_at_its_next_sync() {
    let relay = start_relay(true).await;
    let addr = relay.addr.clone();
    let (mut desk, event, path, token) = published_event(&relay, Some(1)).await;

    let page = request(&addr, "GET", &path, &[], None).await;
    assert!(page.body.contains("Food drive &lt;b&gt;"), "{}", page.body);
    assert!(page.body.contains("Hall &amp; yard"), "{}", page.body);
    assert!(page.body.contains("1 seat left."), "{}", page.body);
    for label in [
        "for=\"f-name\"",
        "for=\"f-email\"",
        "for=\"f-phone\"",
        "name=\"consent\"",
    ] {
        assert!(page.body.contains(label), "{label}: {}", page.body);
    }
    assert!(!page.body.contains("checked"), "consent starts unticked");
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.starts_with("default-src 'self'")),
        "{:?}",
        page.headers
    );
    let (cookie, nonce) = form_of(&page);
    assert!(cookie.starts_with("muster_form="));

    // A form from another site (no cookie, or a foreign Origin) writes nothing.
    let ana = [
        ("form", nonce.as_str()),
        ("name", "Ana Silva"),
        ("email", "ana@example.org"),
        ("phone", ""),
        ("consent", "email"),
        ("website", ""),
    ];
    let forged = request(&addr, "POST", &path, &[], Some(&form(&ana))).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let foreign = request(
        &addr,
        "POST",
        &path,
        &[("Cookie", &cookie), ("Origin", "https://evil.example")],
        Some(&form(&ana)),
    )
    .await;
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    assert!(
        foreign.body.contains("value=\"Ana Silva\""),
        "what was typed stays"
    );
    assert!(web_contacts(&relay).is_empty());

    let done = post(&addr, &path, &cookie, &ana).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("You are registered"), "{}", done.body);
    // The same form again (a double tap): the same answer, nothing twice.
    let again = post(&addr, &path, &cookie, &ana).await;
    assert!(again.body.contains("You are registered"), "{}", again.body);
    // Sent from elsewhere, that used form gets no answer, nor Ana's link.
    let replayed = request(&addr, "POST", &path, &[], Some(&form(&ana))).await;
    assert_eq!(replayed.status, 403, "{}", replayed.body);
    assert!(!replayed.body.contains("/cancel/"), "{}", replayed.body);
    assert_eq!(web_contacts(&relay).len(), 1);

    // A new form for the same email, in other case: the same person, and
    // the page says nothing about knowing her.
    let (cookie2, nonce2) = open_form(&addr, &path).await;
    let known = post(
        &addr,
        &path,
        &cookie2,
        &[
            ("form", &nonce2),
            ("name", "A. Silva"),
            ("email", "ANA@example.org"),
        ],
    )
    .await;
    assert!(known.body.contains("You are registered"), "{}", known.body);
    assert!(!known.body.contains("Ana Silva"), "{}", known.body);
    assert_eq!(web_contacts(&relay).len(), 1);

    // The seat is taken: the next person waits.
    let full = request(&addr, "GET", &path, &[], None).await;
    assert!(full.body.contains("Fully booked"), "{}", full.body);
    let (cookie3, nonce3) = form_of(&full);
    let bo = post(
        &addr,
        &path,
        &cookie3,
        &[
            ("form", &nonce3),
            ("name", "Bo Chen"),
            ("phone", "07700 900123"),
        ],
    )
    .await;
    assert!(bo.body.contains("on the waitlist, place 1"), "{}", bo.body);
    assert!(
        !known.body.contains("/cancel/"),
        "only Ana's own form gets her link"
    );

    // Ana cancels with her private link: opening it cancels nothing, its
    // button does, and Bo takes the seat.
    let at = done.body.find("/cancel/").expect("a cancel link");
    let start = done.body[..at].rfind('"').unwrap() + 1;
    let link = &done.body[start..at + done.body[at..].find('"').unwrap()];
    assert!(link.starts_with(&path), "{link}");
    let confirm = request(&addr, "GET", link, &[], None).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("Cancel my registration"),
        "{}",
        confirm.body
    );
    let (cookie4, nonce4) = form_of(&confirm);
    let forged = request(&addr, "POST", link, &[], Some(&form(&[("form", &nonce4)]))).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let wrong = format!("{}{}", &link[..link.len() - 32], "0".repeat(32));
    assert_eq!(request(&addr, "GET", &wrong, &[], None).await.status, 404);
    let cancelled = post(&addr, link, &cookie4, &[("form", &nonce4)]).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert!(
        cancelled.body.contains("is cancelled"),
        "{}",
        cancelled.body
    );

    // The desk's next sync brings both, as the web form made them.
    sync_once(&mut desk, &relay.url, &token, &now_ms, &mut |_| {})
        .await
        .unwrap();
    let roster = desk.roster(&event, None).unwrap();
    let statuses: Vec<SignupStatus> = roster.iter().map(|l| l.status).collect();
    assert_eq!(
        statuses,
        vec![SignupStatus::Cancelled, SignupStatus::Registered]
    );
    let first = desk.contact(&roster[0].contact_id).unwrap();
    assert_eq!(first.name, "Ana Silva");
    assert_eq!(first.created_by, PAGE_SOURCE);
    assert_eq!(first.consent.method.as_deref(), Some("web form"));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_hostile_form_gets_a_clear_answer_and_writes_nothing() {
    let relay = start_relay(true).await;
    let addr = relay.addr.clone();
    let (mut desk, event, path, token) = published_event(&relay, None).await;
    let (cookie, nonce) = open_form(&addr, &path).await;

    // Mistakes are named next to their field, and what was typed stays,
    // escaped.
    let bad = post(
        &addr,
        &path,
        &cookie,
        &[
            ("form", &nonce),
            ("name", "<script>x</script>"),
            ("email", "ana-at-example"),
        ],
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("id=\"f-email-problem\""), "{}", bad.body);
    assert!(bad.body.contains("has no @"), "{}", bad.body);
    assert!(bad.body.contains("aria-invalid=\"true\""), "{}", bad.body);
    assert!(
        bad.body
            .contains("value=\"&lt;script&gt;x&lt;/script&gt;\""),
        "{}",
        bad.body
    );
    assert!(!bad.body.contains("<script>"), "{}", bad.body);

    // A robot filling the hidden field is thanked and nothing is written.
    let (cookie, nonce) = form_of(&bad);
    let robot = post(
        &addr,
        &path,
        &cookie,
        &[
            ("form", &nonce),
            ("name", "Bot"),
            ("email", "bot@example.org"),
            ("website", "http://spam"),
        ],
    )
    .await;
    assert_eq!(robot.status, 200);
    assert!(!robot.body.contains("registered"), "{}", robot.body);

    // Too long, and too large.
    let long = "x".repeat(2_000);
    let r = post(&addr, &path, &cookie, &[("form", &nonce), ("name", &long)]).await;
    assert_eq!(r.status, 413, "{}", r.body);
    let huge = "y".repeat(20_000);
    let r = post(&addr, &path, &cookie, &[("form", &nonce), ("x", &huge)]).await;
    assert_eq!(r.status, 413);

    // No such page; an unpublished page is gone.
    let r = request(&addr, "GET", &format!("/r/{}", "0".repeat(32)), &[], None).await;
    assert_eq!(r.status, 404);
    let r = request(&addr, "GET", "/r/%3Cscript%3E", &[], None).await;
    assert_eq!(r.status, 404);
    assert!(web_contacts(&relay).is_empty());

    desk.unpublish_event(&event, now_ms()).unwrap();
    sync_once(&mut desk, &relay.url, &token, &now_ms, &mut |_| {})
        .await
        .unwrap();
    eventually("the page closes", async || {
        request(&addr, "GET", &path, &[], None).await.status == 410
    })
    .await;
    let closed = post(
        &addr,
        &path,
        &cookie,
        &[
            ("form", &nonce),
            ("name", "Late Comer"),
            ("email", "late@example.org"),
        ],
    )
    .await;
    assert_eq!(closed.status, 410, "{}", closed.body);
    assert!(web_contacts(&relay).is_empty());
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_sending_form_after_form_is_held_back() {
    let relay = start_relay(true).await;
    let addr = relay.addr.clone();
    let (_desk, _event, path, _) = published_event(&relay, None).await;
    let mut statuses = Vec::new();
    for i in 0..(muster_server::dashboard::SUBMISSIONS_PER_ADDRESS + 1) {
        let (cookie, nonce) = open_form(&addr, &path).await;
        let email = format!("person{i}@example.org");
        let r = post(
            &addr,
            &path,
            &cookie,
            &[("form", &nonce), ("name", "Person"), ("email", &email)],
        )
        .await;
        statuses.push(r.status);
    }
    let last = statuses.pop();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(last, Some(429));
    assert_eq!(
        web_contacts(&relay).len(),
        muster_server::dashboard::SUBMISSIONS_PER_ADDRESS
    );
    relay.stop().await;
}
