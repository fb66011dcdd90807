//! Several relay processes on one PostgreSQL database (`serve --database`):
//! concurrent pushes through different relays, live fan-out and token
//! changes across processes, a relay killed with SIGKILL behind a TCP
//! balancer, and PostgreSQL itself going away. Real relays, a real
//! PostgreSQL server (the test command's, or a cluster of the test's own).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use muster_core::{NewEvent, Store};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::*;
use crate::pg;

/// `n` relays on the database at `url`, each with a directory of its own.
fn relays(dir: &std::path::Path, url: &str, n: usize) -> Vec<RelayProcess> {
    (0..n)
        .map(|i| RelayProcess::start_pg(&dir.join(format!("relay{i}")), url))
        .collect()
}

/// Waits until `f` holds, at most `limit`; returns how long it took.
async fn within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// A device in live sync: its store, the bell its writes ring, and the
/// task (ends on `stop` or a permanent error).
struct Live {
    store: Arc<Mutex<Store>>,
    wake: Arc<tokio::sync::Notify>,
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<muster_core::Result<()>>,
}

/// Starts live sync of a new device `name` in `dir` with `url`.
fn live(dir: &std::path::Path, name: &str, url: String, token: String) -> Live {
    let store = Arc::new(Mutex::new(device(dir, name)));
    let wake = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(tokio::sync::Notify::new());
    let (s, w, st) = (store.clone(), wake.clone(), stop.clone());
    let task = tokio::spawn(async move {
        muster_core::client::sync_live(
            &s,
            &url,
            &token,
            &clock,
            &mut |_| {},
            Some(&w),
            None,
            st.notified(),
        )
        .await
    });
    Live {
        store,
        wake,
        stop,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_relays_on_one_database_take_concurrent_pushes_and_agree() {
    let db = pg::TestDb::create();
    let dir = tempfile::tempdir().unwrap();
    let relays = relays(dir.path(), &db.url, 3);
    let token = relays[0].token("coordinator");
    let mut office = device(dir.path(), "office");
    let event = office
        .create_event(&NewEvent::new("Food drive", T0, "Hall", Some(30)), T0)
        .unwrap();
    sync(&mut office, &relays[0].url(), &token).await.unwrap();

    // Nine devices, three per relay, write at once: new contacts, and
    // sign-ups to the one event (concurrent edits of one document through
    // different processes).
    let mut tasks = Vec::new();
    for i in 0..9 {
        let (url, token, event) = (relays[i % 3].url(), token.clone(), event.clone());
        let path = dir.path().join(format!("d{i}.muster"));
        tasks.push(tokio::spawn(async move {
            let mut store = Store::open(&path).unwrap();
            sync_until_ok(&mut store, &url, &token, 5).await;
            for round in 0..5 {
                for k in 0..3 {
                    let c = add(&mut store, &format!("Device {i} round {round} person {k}"));
                    if k == 0 {
                        store.sign_up(&event, &c, false, clock()).unwrap();
                    }
                }
                sync_until_ok(&mut store, &url, &token, 5).await;
            }
            path
        }));
    }
    let mut devices = vec![office];
    for t in tasks {
        devices.push(Store::open(t.await.unwrap()).unwrap());
    }
    // Every device then syncs through every relay: all hold the same.
    for _ in 0..2 {
        for d in &mut devices {
            for r in &relays {
                sync(d, &r.url(), &token).await.unwrap();
            }
        }
    }
    let expected = fingerprint(&mut devices[0]);
    for d in &mut devices {
        assert_eq!(d.pending_count().unwrap(), 0);
        assert_eq!(fingerprint(d), expected);
    }
    assert_eq!(
        devices[0].list_contacts(1000, 0).unwrap().len(),
        9 * 5 * 3,
        "every contact of every device"
    );
    assert_eq!(
        devices[0].roster(&event, None).unwrap().len(),
        9 * 5,
        "every sign-up, through whichever relay"
    );
    // The log: no gap, no fork, every change once.
    let entries = db.verify_log();
    let changes: usize = devices[0]
        .doc_ids()
        .unwrap()
        .iter()
        .map(|d| devices[0].changes_of(d).unwrap().len())
        .sum();
    assert_eq!(entries, changes, "each change logged exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_and_token_edits_reach_live_devices_on_other_relays() {
    let db = pg::TestDb::create();
    let dir = tempfile::tempdir().unwrap();
    let relays = relays(dir.path(), &db.url, 2);
    let (one, two) = (&relays[0], &relays[1]);
    let coordinator = one.token("coordinator");
    let mut office = device(dir.path(), "office");
    let gala = office
        .create_event(&NewEvent::new("Gala", T0, "Hall", None), T0)
        .unwrap();
    let fair = office
        .create_event(&NewEvent::new("Fair", T0, "Square", None), T0)
        .unwrap();
    sync(&mut office, &one.url(), &coordinator).await.unwrap();

    // A coordinator's laptop live on relay two.
    let laptop_live = live(dir.path(), "laptop", two.url(), coordinator.clone());
    let laptop = laptop_live.store.clone();
    within(Duration::from_secs(20), "the laptop catches up", || {
        laptop.lock().unwrap().doc_ids().unwrap().contains(&gala)
    })
    .await;

    // Pushed through relay one, it reaches the laptop on relay two.
    let ana = add(&mut office, "Ana Live");
    sync(&mut office, &one.url(), &coordinator).await.unwrap();
    let took = within(Duration::from_secs(10), "a change crosses relays", || {
        laptop.lock().unwrap().contact(&ana).is_ok()
    })
    .await;
    eprintln!("relay one -> relay two -> live device: {took:?}");

    // A volunteer desk live on relay two, scoped to the gala. A token
    // edit made from the command line (a third process) rescopes it.
    let out = one
        .admin_command(&[
            "token",
            "create",
            "--role",
            "volunteer",
            "--name",
            "desk",
            "--event",
            &gala,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let desk_token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let desk_id = String::from_utf8(out.stderr)
        .unwrap()
        .split_whitespace()
        .find(|w| w.starts_with("tok_"))
        .unwrap()
        .to_owned();
    let desk_live = live(dir.path(), "desk", two.url(), desk_token.clone());
    let desk = desk_live.store.clone();
    within(Duration::from_secs(20), "the desk catches up", || {
        desk.lock().unwrap().doc_ids().unwrap().contains(&gala)
    })
    .await;
    assert!(!desk.lock().unwrap().doc_ids().unwrap().contains(&fair));
    // A sign-up pushed through relay one brings the contact into its view.
    office.sign_up(&gala, &ana, false, clock()).unwrap();
    sync(&mut office, &one.url(), &coordinator).await.unwrap();
    within(
        Duration::from_secs(10),
        "a new sign-up reaches the desk",
        || desk.lock().unwrap().contact(&ana).is_ok(),
    )
    .await;
    let out = one
        .admin_command(&["token", "update", &desk_id, "--event", &fair])
        .output()
        .unwrap();
    assert!(out.status.success());
    within(
        Duration::from_secs(10),
        "the edited scope reaches the desk",
        || {
            let ids = desk.lock().unwrap().doc_ids().unwrap();
            ids.contains(&fair) && !ids.contains(&gala)
        },
    )
    .await;

    // Revoked from the command line: the desk live on relay two is cut
    // off, and refused by relay one too.
    let revoked = Instant::now();
    let out = one
        .admin_command(&["token", "revoke", &desk_id])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = tokio::time::timeout(Duration::from_secs(10), desk_live.task)
        .await
        .expect("the live session ends after revocation")
        .unwrap()
        .unwrap_err();
    eprintln!(
        "token revoke (a process of its own) to the session cut on the other relay: {:?}",
        revoked.elapsed()
    );
    assert!(err.to_string().contains("revoked"), "{err}");
    let mut other = device(dir.path(), "other");
    let err = sync(&mut other, &one.url(), &desk_token).await.unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");

    laptop_live.stop.notify_one();
    laptop_live.task.await.unwrap().unwrap();
}

/// A TCP balancer in front of relays, as a load balancer would be in
/// production: each connection goes to the next relay in turn, skipping
/// those that refuse it.
async fn balancer(backends: Vec<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (backends, next) = (backends.clone(), next.clone());
            tokio::spawn(async move {
                let first = next.fetch_add(1, Ordering::SeqCst);
                for i in 0..backends.len() {
                    let to = &backends[(first + i) % backends.len()];
                    if let Ok(mut up) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_behind_a_balancer_loses_nothing_acknowledged() {
    let db = pg::TestDb::create();
    let dir = tempfile::tempdir().unwrap();
    let mut relays = relays(dir.path(), &db.url, 2);
    let token = relays[0].token("coordinator");
    let front = balancer(relays.iter().map(|r| r.addr.clone()).collect()).await;
    let url = format!("ws://{front}/v1/sync");

    // Four devices write and sync through the balancer in a loop; after
    // each successful sync everything they hold is acknowledged.
    let synced = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (url, token) = (url.clone(), token.clone());
        let path = dir.path().join(format!("d{i}.muster"));
        let (synced, killed) = (synced.clone(), killed.clone());
        tasks.push(tokio::spawn(async move {
            let mut store = Store::open(&path).unwrap();
            let mut acked = HashMap::new();
            let mut after_kill = 0;
            let start = Instant::now();
            while after_kill < 5 && start.elapsed() < Duration::from_secs(60) {
                add(&mut store, &format!("Device {i} person {}", acked.len()));
                let ok = matches!(
                    tokio::time::timeout(Duration::from_secs(5), sync(&mut store, &url, &token))
                        .await,
                    Ok(Ok(_))
                );
                if ok {
                    if acked.is_empty() {
                        synced.fetch_add(1, Ordering::SeqCst);
                    }
                    acked = heads_of(&mut store);
                    if killed.load(Ordering::SeqCst) {
                        after_kill += 1;
                    }
                }
            }
            assert_eq!(
                after_kill, 5,
                "device {i} carried on through the other relay"
            );
            (path, acked)
        }));
    }
    within(Duration::from_secs(60), "every device synced", || {
        synced.load(Ordering::SeqCst) == 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    relays[0].kill9();
    killed.store(true, Ordering::SeqCst);
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }

    // Everything any device saw acknowledged is on every device.
    let mut devices: Vec<Store> = results
        .iter()
        .map(|(p, _)| Store::open(p).unwrap())
        .collect();
    devices.push(device(dir.path(), "fresh"));
    for _ in 0..2 {
        for d in &mut devices {
            sync_until_ok(d, &url, &token, 5).await;
        }
    }
    for d in &mut devices {
        for (_, acked) in &results {
            for (doc, heads) in acked {
                for h in heads {
                    assert!(
                        d.has_change(doc, h).unwrap(),
                        "acknowledged {h} of {doc} lost"
                    );
                }
            }
        }
    }
    let expected = fingerprint(&mut devices[0]);
    for d in &mut devices {
        assert_eq!(d.pending_count().unwrap(), 0);
        assert_eq!(fingerprint(d), expected);
    }
    db.verify_log();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_going_away_is_reported_and_sync_resumes_when_it_is_back() {
    let cluster = pg::Cluster::start();
    let db = pg::TestDb::create_on(&cluster.server);
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_pg(&dir.path().join("relay"), &db.url);
    let token = relay.token("coordinator");
    let health = format!("http://{}/healthz", relay.addr);
    assert_eq!(http_status(&health).await, 200);

    let phone_live = live(dir.path(), "phone", relay.url(), token.clone());
    let (phone, wake) = (phone_live.store.clone(), phone_live.wake.clone());
    let first = add(&mut phone.lock().unwrap(), "Before Outage");
    wake.notify_one();
    within(
        Duration::from_secs(20),
        "the first contact is acknowledged",
        || phone.lock().unwrap().pending_count().unwrap() == 0,
    )
    .await;

    cluster.stop();
    // The relay says so: /healthz and its log.
    let mut status = 0;
    for _ in 0..100 {
        status = http_status(&health).await;
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 503, "/healthz is not ok without PostgreSQL");
    // The phone keeps working offline; a device arriving now is told to
    // try again later.
    let offline: Vec<String> = (0..3)
        .map(|i| add(&mut phone.lock().unwrap(), &format!("During Outage {i}")))
        .collect();
    wake.notify_one();
    let mut late = device(dir.path(), "late");
    let err = sync(&mut late, &relay.url(), &token).await.unwrap_err();
    assert!(
        !muster_core::client::is_permanent(&err),
        "a device is told to retry, not to give up: {err}"
    );
    within(Duration::from_secs(10), "the relay logs the outage", || {
        relay.logged("PostgreSQL is unreachable")
    })
    .await;
    assert_eq!(phone.lock().unwrap().pending_count().unwrap(), 3);

    // Back: sync resumes by itself, and nothing was lost.
    cluster.restart();
    within(
        Duration::from_secs(60),
        "the phone's offline work is acknowledged",
        || phone.lock().unwrap().pending_count().unwrap() == 0,
    )
    .await;
    assert_eq!(http_status(&health).await, 200);
    within(Duration::from_secs(10), "the relay logs the return", || {
        relay.logged("PostgreSQL is reachable again")
    })
    .await;
    sync_until_ok(&mut late, &relay.url(), &token, 5).await;
    for id in std::iter::once(&first).chain(&offline) {
        assert!(late.contact(id).is_ok(), "{id} reached the relay");
    }
    phone_live.stop.notify_one();
    phone_live.task.await.unwrap().unwrap();
    db.verify_log();
}

/// The status code of a GET (0 if nothing answers).
async fn http_status(url: &str) -> u16 {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    http(host, "GET", &format!("/{path}"), None, None).await.0
}

/// A minimal HTTP/1.1 request: (status, the whole response as text); 0 if
/// nothing answers.
async fn http(
    host: &str,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = TcpStream::connect(host).await else {
        return (0, String::new());
    };
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        req += &format!("Cookie: {c}\r\n");
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        req += &format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    req += "\r\n";
    req += body;
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_sessions_and_the_failed_login_limit_span_relays() {
    let db = pg::TestDb::create();
    let dir = tempfile::tempdir().unwrap();
    let relays = relays(dir.path(), &db.url, 2);
    let (one, two) = (&relays[0].addr, &relays[1].addr);
    let coordinator = relays[0].token("coordinator");

    // Logged in through relay one, the coordinator is logged in on relay
    // two (a load balancer may send the next request to either).
    let (status, response) = http(
        one,
        "POST",
        "/login",
        None,
        Some(&format!("token={coordinator}")),
    )
    .await;
    assert_eq!(status, 303, "{response}");
    let cookie = response
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    assert_eq!(
        http(two, "GET", "/api/events", Some(&cookie), None).await.0,
        200
    );
    assert_eq!(http(two, "GET", "/api/events", None, None).await.0, 401);
    // Logged out through relay two: relay one no longer knows the session.
    let (_, page) = http(two, "GET", "/contacts", Some(&cookie), None).await;
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let csrf = &page[at + 19..at + 19 + 64];
    let (status, _) = http(
        two,
        "POST",
        "/logout",
        Some(&cookie),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        http(one, "GET", "/api/events", Some(&cookie), None).await.0,
        401
    );

    // Wrong tokens spread over both relays count against one limit.
    let mut store = device(dir.path(), "guesser");
    for i in 0..MAX_FAILED_LOGINS {
        let url = relays[i % 2].url();
        let err = sync(&mut store, &url, &format!("mst_guess{i}"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unknown token"), "{err}");
    }
    for r in &relays {
        let err = sync(&mut store, &r.url(), "mst_guess_again")
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("too many failed logins"),
            "the address is held back on every relay: {err}"
        );
    }
    // The dashboard's login counts the same failures.
    let (status, _) = http(two, "POST", "/login", None, Some("token=mst_wrong")).await;
    assert_eq!(status, 429);
    // A right token still gets in.
    sync(&mut store, &relays[1].url(), &coordinator)
        .await
        .unwrap();
}

/// Failed logins an address is allowed (`muster_server::MAX_FAILED_LOGINS`).
const MAX_FAILED_LOGINS: usize = 10;

/// Runs an administrator's command on `relay`'s data; (ok, stdout, stderr).
fn admin(relay: &RelayProcess, args: &[&str]) -> (bool, String, String) {
    let out = relay
        .admin_command(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `muster-server migrate --from DIR --to URL`; (ok, stdout, stderr).
fn migrate(from: &std::path::Path, to: &str) -> (bool, String, String) {
    let out = std::process::Command::new(bin("muster-server"))
        .args(["migrate", "--from"])
        .arg(from)
        .args(["--to", to])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_relay_moves_to_postgres_and_its_devices_carry_on() {
    let db = pg::TestDb::create();
    let dir = tempfile::tempdir().unwrap();
    let mut old = RelayProcess::start(dir.path());
    let coordinator = old.token("coordinator");

    // Before the move: an event, contacts, a sign-up, a scoped desk, an
    // erasure.
    let mut office = device(dir.path(), "office");
    let gala = office
        .create_event(&NewEvent::new("Gala", T0, "Hall", Some(50)), T0)
        .unwrap();
    let ana = add(&mut office, "Ana Before");
    office.sign_up(&gala, &ana, false, clock()).unwrap();
    let gone = add(&mut office, "Erased Person");
    let unseen = add(&mut office, "Not At The Gala");
    sync(&mut office, &old.url(), &coordinator).await.unwrap();
    let (ok, desk_token, err) = admin(
        &old,
        &[
            "token",
            "create",
            "--role",
            "volunteer",
            "--name",
            "desk",
            "--event",
            &gala,
        ],
    );
    assert!(ok, "{err}");
    let desk_token = desk_token.trim().to_owned();
    let mut desk = device(dir.path(), "desk");
    sync(&mut desk, &old.url(), &desk_token).await.unwrap();
    assert!(desk.contact(&ana).is_ok());
    let (ok, _, err) = admin(&old, &["erase", &gone]);
    assert!(ok, "{err}");
    sync(&mut office, &old.url(), &coordinator).await.unwrap();
    assert!(office.contact(&gone).is_err());

    // Not while the SQLite relay still serves (it would take pushes the
    // copy misses).
    let (ok, _, err) = migrate(&old.data, &db.url);
    assert!(!ok);
    assert!(err.contains("already serving"), "{err}");
    old.terminate();

    let (ok, out, err) = migrate(&old.data, &db.url);
    assert!(ok, "{err}");
    assert!(out.contains("migrated"), "{out}");
    let entries = db.verify_log();
    assert!(entries > 0);
    // Into a database that holds relay data: refused, nothing changed.
    let (ok, _, err) = migrate(&old.data, &db.url);
    assert!(!ok);
    assert!(err.contains("already holds"), "{err}");
    assert_eq!(db.verify_log(), entries);

    // Served from PostgreSQL (same directory: its dashboard carries on).
    let new = RelayProcess::start_pg(&old.data, &db.url);
    for (store, token) in [(&mut office, &coordinator), (&mut desk, &desk_token)] {
        let report = sync(store, &new.url(), token).await.unwrap();
        assert!(!report.resynced, "the cursor is still valid: no first sync");
        assert_eq!(report.changed_docs, 0, "nothing new to send: {report:?}");
    }
    // New work crosses as before, and the desk's scope is the same.
    let bo = add(&mut office, "Bo After");
    office.sign_up(&gala, &bo, false, clock()).unwrap();
    let other = add(&mut office, "Also Not At The Gala");
    sync(&mut office, &new.url(), &coordinator).await.unwrap();
    sync(&mut desk, &new.url(), &desk_token).await.unwrap();
    assert!(desk.contact(&bo).is_ok());
    for id in [&unseen, &other, &gone] {
        assert!(desk.contact(id).is_err(), "{id} is outside the desk's view");
    }
    let mut fresh = device(dir.path(), "fresh");
    sync(&mut fresh, &new.url(), &coordinator).await.unwrap();
    assert_eq!(fingerprint(&mut fresh), fingerprint(&mut office));
    assert!(fresh.contact(&gone).is_err(), "the erasure moved too");
    // The administrator's view moved too.
    let (ok, tokens, _) = admin(&new, &["token", "list", "--json"]);
    assert!(ok);
    assert!(tokens.contains("\"label\":\"desk\""), "{tokens}");
    let (ok, audit, _) = admin(&new, &["audit", "--doc", &gone, "--json"]);
    assert!(ok);
    assert!(!audit.is_empty() && audit.lines().all(|l| l.contains("\"erased\":true")));
    db.verify_log();
}
