//! The relay in-process on 127.0.0.1 and port 0, devices syncing through it
//! with the core's tokio client.

mod common;

use common::{T0, clock, start_relay, start_relay_with};
use muster_core::client::{Status, sync_once};
use muster_core::{NewContact, NewEvent, SignupStatus, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_desks_offline_then_sync_end_identical() {
    let relay = start_relay(false).await;
    let token = relay.token("coordinator");
    let mut a = Store::open_in_memory().unwrap();
    let mut b = Store::open_in_memory().unwrap();

    // The office prepares the event and one attendee, syncs.
    let ana = a
        .create_contact(&NewContact::named("Ana Silva"), T0)
        .unwrap();
    let event = a
        .create_event(&NewEvent::new("Coat drive", T0, "Hall", Some(2)), T0)
        .unwrap();
    let report = sync_once(&mut a, &relay.url, &token, &clock, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.acknowledged, 2);
    assert_eq!(a.pending_count().unwrap(), 0);
    let mut statuses = Vec::new();
    sync_once(&mut b, &relay.url, &token, &clock, &mut |s| {
        statuses.push(s)
    })
    .await
    .unwrap();
    assert!(statuses.contains(&Status::CaughtUp));
    assert_eq!(b.contact(&ana).unwrap().name, "Ana Silva");

    // Offline at two desks: the same person, walk-ins, a check-in.
    a.sign_up(&event, &ana, false, T0 + 10).unwrap();
    b.check_in(&event, &ana, T0 + 20).unwrap();
    let bo = b.create_contact(&NewContact::named("Bo Chen"), T0).unwrap();
    b.sign_up(&event, &bo, true, T0 + 30).unwrap();
    let cy = a.create_contact(&NewContact::named("Cy Diaz"), T0).unwrap();
    a.sign_up(&event, &cy, false, T0 + 40).unwrap();

    for _ in 0..2 {
        sync_once(&mut a, &relay.url, &token, &clock, &mut |_| {})
            .await
            .unwrap();
        sync_once(&mut b, &relay.url, &token, &clock, &mut |_| {})
            .await
            .unwrap();
    }
    for s in [&mut a, &mut b] {
        let roster = s.roster(&event, None).unwrap();
        let status: Vec<_> = roster
            .iter()
            .map(|r| (r.contact_id.clone(), r.status))
            .collect();
        assert_eq!(
            status,
            vec![
                (ana.clone(), SignupStatus::CheckedIn),
                (bo.clone(), SignupStatus::Registered),
                (cy.clone(), SignupStatus::Waitlisted)
            ]
        );
    }
    assert_eq!(a.heads(&event).unwrap(), b.heads(&event).unwrap());
    assert_eq!(a.pending_count().unwrap() + b.pending_count().unwrap(), 0);

    // Reconnecting with nothing new: one round trip, well under 1 KB.
    let report = sync_once(&mut b, &relay.url, &token, &clock, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((report.frames_out, report.frames_in), (1, 2), "{report:?}");
    assert!(report.bytes_in + report.bytes_out < 1_024, "{report:?}");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_refused_with_a_clear_error() {
    let relay = start_relay(false).await;
    let mut a = Store::open_in_memory().unwrap();
    let mut statuses = Vec::new();
    let err = sync_once(&mut a, &relay.url, "mst_nope", &clock, &mut |s| {
        statuses.push(s)
    })
    .await
    .unwrap_err();
    assert!(muster_core::client::is_permanent(&err), "{err}");
    assert!(err.to_string().contains("unknown token"), "{err}");
    // The app's status line hears it too, as permanent.
    assert!(
        matches!(
            statuses.last(),
            Some(Status::Error { message, permanent: true }) if message.contains("unknown token")
        ),
        "{statuses:?}"
    );
    relay.stop().await;
}

async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The value of metric `name` in a `/metrics` answer.
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_changes_and_bytes() {
    let relay = start_relay(false).await;
    let token = relay.token("coordinator");
    let mut a = Store::open_in_memory().unwrap();
    let mut b = Store::open_in_memory().unwrap();
    for i in 0..3 {
        a.create_contact(&NewContact::named(format!("P{i}")), T0)
            .unwrap();
    }
    sync_once(&mut a, &relay.url, &token, &clock, &mut |_| {})
        .await
        .unwrap();
    sync_once(&mut b, &relay.url, &token, &clock, &mut |_| {})
        .await
        .unwrap();
    let addr = relay
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/v1/sync")
        .to_owned();
    let body = http_get(&addr, "/metrics").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let value = |name: &str| metric(&body, name);
    assert_eq!(value("muster_changes_in_total"), 3.0);
    assert_eq!(value("muster_changes_out_total"), 3.0);
    assert_eq!(value("muster_connections_total"), 2.0);
    // Both devices have hung up; the relay notices within moments.
    let mut open = value("muster_connections_open");
    for _ in 0..50 {
        if open == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let again = http_get(&addr, "/metrics").await;
        open = again
            .lines()
            .find_map(|l| l.strip_prefix("muster_connections_open "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
    }
    assert_eq!(open, 0.0, "open connections after both devices left");
    // Every metric family is declared once (a valid exposition).
    let mut families: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let declared = families.len();
    families.sort_unstable();
    families.dedup();
    assert_eq!(families.len(), declared, "a family declared twice: {body}");
    assert_eq!(value("muster_log_entries"), 3.0);
    assert!(value("muster_bytes_in_total") > 0.0);
    assert!(value("muster_bytes_out_total") > 0.0);
    assert_eq!(value("muster_sync_duration_seconds_count"), 2.0);
    assert!(http_get(&addr, "/healthz").await.ends_with("ok\n"));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_devices_see_each_others_writes_without_polling() {
    use std::sync::{Arc, Mutex};
    use tokio::sync::Notify;
    let relay = start_relay(false).await;
    let token = relay.token("coordinator");
    let a = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
    let b = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
    let wake_a = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (changed_tx, mut changed_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
    let mut tasks = Vec::new();
    for (store, wake, tx) in [
        (a.clone(), Some(wake_a.clone()), None),
        (b.clone(), None, Some(changed_tx)),
    ] {
        let (url, token) = (relay.url.clone(), token.clone());
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut on_status = move |s: Status| {
                if let (Status::Changed { docs }, Some(tx)) = (s, &tx) {
                    let _ = tx.send(docs);
                }
            };
            muster_core::client::sync_live(
                &store,
                &url,
                &token,
                &clock,
                &mut on_status,
                wake.as_deref(),
                None,
                async move {
                    let _ = stop.wait_for(|v| *v).await;
                },
            )
            .await
            .unwrap();
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for i in 0..5 {
        let id = a
            .lock()
            .unwrap()
            .create_contact(&NewContact::named(format!("Live {i}")), T0)
            .unwrap();
        wake_a.notify_one();
        let docs = tokio::time::timeout(std::time::Duration::from_secs(5), changed_rx.recv())
            .await
            .expect("the write reached the other device")
            .unwrap();
        assert_eq!(docs, vec![id.clone()]);
        assert_eq!(
            b.lock().unwrap().contact(&id).unwrap().name,
            format!("Live {i}")
        );
    }
    stop_tx.send_replace(true);
    for t in tasks {
        t.await.unwrap();
    }
    relay.stop().await;
}

/// A thousand fresh phones at once each got a catch-up frame of their own
/// in the relay's memory: catch-up batches now take turns for a bounded
/// number of slots (`Limits::catch_up_batches`), and every device still
/// gets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_devices_take_turns_for_catch_up_batches() {
    let relay = start_relay_with(
        false,
        muster_server::Limits {
            catch_up_batches: 1,
            ..Default::default()
        },
    )
    .await;
    let token = relay.token("coordinator");
    // Enough for several batches per device.
    let mut office = Store::open_in_memory().unwrap();
    let people: Vec<NewContact> = (0..5_000)
        .map(|i| {
            NewContact::named(format!(
                "Person {i} with a name long enough to fill batches"
            ))
        })
        .collect();
    office.create_contacts(&people, T0).unwrap();
    sync_once(&mut office, &relay.url, &token, &clock, &mut |_| {})
        .await
        .unwrap();
    let mut devices = Vec::new();
    for _ in 0..12 {
        let (url, token) = (relay.url.clone(), token.clone());
        devices.push(tokio::spawn(async move {
            let mut store = Store::open_in_memory().unwrap();
            sync_once(&mut store, &url, &token, &clock, &mut |_| {})
                .await
                .unwrap();
            store.contact_count().unwrap()
        }));
    }
    for d in devices {
        assert_eq!(d.await.unwrap(), 5_000);
    }
    let body = http_get(&relay.addr, "/metrics").await;
    let value = |name: &str| metric(&body, name);
    assert_eq!(
        value("muster_catch_up_batches_peak"),
        1.0,
        "one slot, one batch at a time"
    );
    assert_eq!(
        value("muster_catch_up_batches"),
        0.0,
        "every slot is free again"
    );
    // How often devices waited is exported too (how often depends on timing).
    value("muster_catch_up_waits_total");
    relay.stop().await;
}
