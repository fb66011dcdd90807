//! `muster_core::device::Device`, what the mobile bindings wrap, against a
//! real relay: enrollment, one-shot and live sync from its own runtime,
//! notices, and the sync status a volunteer reads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use muster_core::device::{Device, Observer, Origin, SyncActivity, SyncStatus};
use muster_core::{Error, NewContact, NewEvent, SignupStatus};

use crate::harness::{RelayProcess, clock, fingerprint};

/// Runs a device future to completion from a plain thread, as an app's
/// executor would.
fn wait<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn device(dir: &std::path::Path, name: &str) -> Device {
    Device::open(dir.join(name), None, Arc::new(clock)).unwrap()
}

#[derive(Default)]
struct Heard {
    changes: Mutex<Vec<(Vec<String>, Origin)>>,
    statuses: Mutex<Vec<SyncStatus>>,
}

impl Observer for Heard {
    fn records_changed(&self, ids: Vec<String>, origin: Origin) {
        self.changes.lock().unwrap().push((ids, origin));
    }
    fn sync_status(&self, status: SyncStatus) {
        self.statuses.lock().unwrap().push(status);
    }
    fn sync_warning(&self, _: String) {}
}

/// Polls `f` until it holds, for at most 20 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn add(d: &Device, name: &str) -> String {
    d.write(|s, now| s.create_contact(&NewContact::named(name), now))
        .unwrap()
}

#[test]
fn two_devices_work_offline_sync_once_and_converge() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let (a, b) = (device(dir.path(), "a.db"), device(dir.path(), "b.db"));
    for d in [&a, &b] {
        let enrolled = wait(d.enroll(
            &format!("http://{}", relay.addr),
            &relay.token("coordinator"),
        ))
        .unwrap();
        assert!(enrolled.reached_relay);
        assert!(d.status().unwrap().enrolled);
    }

    // Offline: each desk registers someone; A also runs the event.
    let ana = add(&a, "Ana Silva");
    let bo = add(&b, "Bo Chen");
    let gala = a
        .write(|s, now| {
            let new = NewEvent::new("Gala", now, "Hall", Some(10));
            let id = s.create_event(&new, now)?;
            s.check_in(&id, &ana, now)?;
            Ok(id)
        })
        .unwrap();
    let before = a.status().unwrap();
    assert!(before.pending_changes >= 3, "{before:?}");
    assert_eq!(before.last_confirmed_at, None);

    wait(a.sync_now()).unwrap();
    let outcome = wait(b.sync_now()).unwrap();
    assert!(
        outcome.report.changed_docs >= 2,
        "B received Ana and the gala: {outcome:?}"
    );
    assert_eq!(
        outcome.reconciliation.arrived.new_contacts, 1,
        "{outcome:?}"
    );
    assert_eq!(outcome.reconciliation.arrived.new_events, 1);
    wait(a.sync_now()).unwrap();

    for d in [&a, &b] {
        let status = d.status().unwrap();
        assert_eq!(status.pending_changes, 0, "{status:?}");
        assert!(status.last_confirmed_at.is_some(), "{status:?}");
        assert_eq!(status.activity, SyncActivity::Idle);
    }
    let (fa, fb) = (
        a.read(|s| Ok(fingerprint(s))).unwrap(),
        b.read(|s| Ok(fingerprint(s))).unwrap(),
    );
    assert_eq!(fa, fb);
    let roster = b.read(|s| s.roster(&gala, None)).unwrap();
    assert_eq!(roster.len(), 1);
    assert_eq!(roster[0].status, SignupStatus::CheckedIn);
    assert_eq!(b.read(|s| s.search_contacts("chen", 5)).unwrap()[0].id, bo);
}

#[test]
fn observers_hear_local_writes_and_live_changes_from_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let (a, b) = (device(dir.path(), "a.db"), device(dir.path(), "b.db"));
    let url = format!("ws://{}", relay.addr);
    for d in [&a, &b] {
        wait(d.enroll(&url, &relay.token("coordinator"))).unwrap();
    }
    let (heard_a, heard_b) = (Arc::new(Heard::default()), Arc::new(Heard::default()));
    a.set_observer(Some(heard_a.clone()));
    b.set_observer(Some(heard_b.clone()));
    a.start_live().unwrap();
    b.start_live().unwrap();
    a.start_live().unwrap(); // a second start changes nothing
    for (d, heard) in [(&a, &heard_a), (&b, &heard_b)] {
        eventually("live sync is caught up", || {
            heard
                .statuses
                .lock()
                .unwrap()
                .iter()
                .any(|s| s.activity == SyncActivity::Live)
        });
        assert!(d.status().unwrap().live);
    }

    let ana = add(&a, "Ana Silva");
    eventually("A hears its own write", || {
        heard_a
            .changes
            .lock()
            .unwrap()
            .contains(&(vec![ana.clone()], Origin::Local))
    });
    eventually("B hears Ana arrive from the relay", || {
        heard_b
            .changes
            .lock()
            .unwrap()
            .iter()
            .any(|(ids, origin)| *origin == Origin::Relay && ids.contains(&ana))
    });
    assert_eq!(b.read(|s| s.contact(&ana)).unwrap().name, "Ana Silva");
    eventually("the relay confirms A's write", || {
        a.status().unwrap().pending_changes == 0
    });

    // A one-shot sync while live pauses live sync and resumes it.
    wait(a.sync_now()).unwrap();
    eventually("live again after sync_now", || a.status().unwrap().live);

    a.stop_live();
    let status = a.status().unwrap();
    assert!(!status.live);
    assert_eq!(status.activity, SyncActivity::Idle);
    let bo = add(&a, "Bo Chen");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        a.status().unwrap().pending_changes > 0,
        "stopped: nothing is pushed"
    );
    assert!(b.read(|s| s.contact(&bo)).is_err());
}

#[test]
fn a_refused_token_is_not_saved_and_an_unreachable_relay_is() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let d = device(dir.path(), "a.db");

    let refused = wait(d.enroll(&format!("ws://{}", relay.addr), "not-a-token"));
    assert!(
        matches!(&refused, Err(e @ Error::Relay { .. }) if muster_core::client::is_permanent(e)),
        "{refused:?}"
    );
    assert!(!d.status().unwrap().enrolled);
    assert!(matches!(wait(d.sync_now()), Err(Error::NotAllowed(_))));
    assert!(matches!(d.start_live(), Err(Error::NotAllowed(_))));
    assert!(matches!(
        wait(d.enroll("relay.example.org", "x")),
        Err(Error::Invalid { .. })
    ));

    // A port nobody listens on: saved, reported as not reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let offline = wait(d.enroll(&format!("ws://127.0.0.1:{port}"), "some-token")).unwrap();
    assert!(!offline.reached_relay);
    // In words for a person: no "(os error 111)", no "(code 1)".
    let problem = offline.problem.unwrap();
    assert!(problem.contains("connection refused"), "{problem}");
    assert!(!problem.contains("os error"), "{problem}");
    let refused = refused.unwrap_err().to_string();
    assert!(!refused.contains("code"), "{refused}");
    assert!(d.status().unwrap().enrolled);
}

/// Enrolling again a phone that syncs live (its QR code scanned again):
/// a refused token changes nothing — the saved enrollment,
/// live sync and the status stay as they were, and later writes still
/// reach the relay — and an accepted one carries live sync on with it.
/// Once live sync stopped for good either way and the status said
/// "enroll this device again".
#[test]
fn enrolling_a_live_phone_again_keeps_it_syncing_whether_or_not_the_token_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let url = format!("ws://{}", relay.addr);
    let phone = device(dir.path(), "phone.db");
    let office = device(dir.path(), "office.db");
    let token = relay.token("coordinator");
    wait(phone.enroll(&url, &token)).unwrap();
    wait(office.enroll(&url, &relay.token("coordinator"))).unwrap();
    phone.start_live().unwrap();
    office.start_live().unwrap();
    let live = |d: &Device| {
        let s = d.status().unwrap();
        s.live && s.activity == SyncActivity::Live
    };
    eventually("the phone is live", || live(&phone));

    let refused = wait(phone.enroll(&url, "not-a-token"));
    assert!(
        matches!(&refused, Err(e) if muster_core::client::is_permanent(e)),
        "{refused:?}"
    );
    let status = phone.status().unwrap();
    assert!(status.enrolled && status.live, "{status:?}");
    assert!(
        !matches!(status.activity, SyncActivity::Failed { .. }),
        "{status:?}"
    );
    eventually("the phone is live again", || live(&phone));
    let ana = add(&phone, "Ana Silva");
    eventually("the write reaches the office", || {
        office.read(|s| s.contact(&ana)).is_ok()
    });
    eventually("the write is confirmed", || {
        phone.status().unwrap().pending_changes == 0
    });

    // Enrolled again, taken (its QR code scanned again): live sync goes on.
    assert!(wait(phone.enroll(&url, &token)).unwrap().reached_relay);
    eventually("the phone is live after enrolling again", || live(&phone));
    // Another token for the same phone is refused (a device id keeps the
    // token it first enrolled with), and changes nothing either.
    let other = wait(phone.enroll(&url, &relay.token("coordinator")));
    assert!(other.is_err(), "{other:?}");
    assert!(phone.status().unwrap().live);
    let bo = add(&phone, "Bo Chen");
    eventually("the next write reaches the office", || {
        office.read(|s| s.contact(&bo)).is_ok()
    });
}

/// An observer that panics (an app's listener that threw) is told once,
/// through its own `sync_warning`, and every later notice still arrives,
/// to it and to the next observer. Once the notice thread died with it.
#[test]
fn an_observer_that_panics_keeps_hearing_and_is_told_once() {
    #[derive(Default)]
    struct Faulty {
        changes: Mutex<Vec<Vec<String>>>,
        warnings: Mutex<Vec<String>>,
    }
    impl Observer for Faulty {
        fn records_changed(&self, ids: Vec<String>, _: Origin) {
            self.changes.lock().unwrap().push(ids);
            panic!("the app's code threw");
        }
        fn sync_status(&self, _: SyncStatus) {}
        fn sync_warning(&self, message: String) {
            self.warnings.lock().unwrap().push(message);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let d = device(dir.path(), "phone.db");
    let faulty = Arc::new(Faulty::default());
    d.set_observer(Some(faulty.clone()));
    let ana = add(&d, "Ana Silva");
    let bo = add(&d, "Bo Chen");
    eventually("both writes are heard", || {
        faulty.changes.lock().unwrap().len() == 2
    });
    assert_eq!(*faulty.changes.lock().unwrap(), [vec![ana], vec![bo]]);
    let warnings = faulty.warnings.lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("the app's code threw"), "{warnings:?}");

    let next = Arc::new(Heard::default());
    d.set_observer(Some(next.clone()));
    let cy = add(&d, "Cy Diaz");
    eventually("the next observer hears", || {
        next.changes
            .lock()
            .unwrap()
            .iter()
            .any(|(ids, _)| ids.contains(&cy))
    });
}

#[test]
fn a_device_reopened_keeps_its_work_and_enrollment() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let token = relay.token("coordinator");
    let ana = {
        let d = device(dir.path(), "a.db");
        wait(d.enroll(&format!("ws://{}", relay.addr), &token)).unwrap();
        d.start_live().unwrap();
        add(&d, "Ana Silva")
        // Dropped while live: the runtime and notice thread end.
    };
    let d = device(dir.path(), "a.db");
    assert_eq!(d.read(|s| s.contact(&ana)).unwrap().name, "Ana Silva");
    assert!(d.status().unwrap().enrolled);
    wait(d.sync_now()).unwrap();
    assert_eq!(d.status().unwrap().pending_changes, 0);
}

/// What a background task and a phone's connectivity callbacks need: a
/// sync given up after a time limit, live sync trying at once when told the
/// network is back, and a revoked token told to the observer.
#[test]
fn a_sync_runs_out_of_time_and_the_network_coming_back_retries_at_once() {
    // A relay that takes connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    silent.set_nonblocking(true).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let held = std::thread::spawn({
        let done = done.clone();
        move || {
            let mut conns = Vec::new();
            let start = Instant::now();
            while !done.load(std::sync::atomic::Ordering::SeqCst)
                && start.elapsed() < Duration::from_secs(20)
            {
                if let Ok((c, _)) = silent.accept() {
                    conns.push(c);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    {
        let mut store = muster_core::Store::open(&path).unwrap();
        let url = muster_core::client::sync_url(&format!("ws://{silent_addr}")).unwrap();
        muster_core::client::save_enrollment(&mut store, &url, "some-token").unwrap();
    }
    let d = Device::open(&path, None, Arc::new(clock)).unwrap();
    let started = Instant::now();
    let out = wait(d.sync_now_within(Some(Duration::from_millis(300))));
    match out {
        Err(Error::Network(m)) => assert!(m.contains("ran out of its 0.3 s"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "given up, not waited out"
    );
    // The status says so, rather than go on saying it connects.
    match d.status().unwrap().activity {
        SyncActivity::Failed { message, permanent } => {
            assert!(!permanent);
            assert!(message.contains("ran out of its 0.3 s"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    held.join().unwrap();

    // Live sync against a port nobody listens on: attempts 1, 2, 3… with
    // backoff; told the network is back, it starts again at attempt 1.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let d = device(dir.path(), "live.db");
    wait(d.enroll(&format!("ws://127.0.0.1:{port}"), "some-token")).unwrap();
    let heard = Arc::new(Heard::default());
    d.set_observer(Some(heard.clone()));
    d.start_live().unwrap();
    let attempts = |heard: &Heard| -> Vec<u32> {
        heard
            .statuses
            .lock()
            .unwrap()
            .iter()
            .filter_map(|s| match s.activity {
                SyncActivity::Connecting { attempt } => Some(attempt),
                _ => None,
            })
            .collect()
    };
    eventually("a third attempt", || attempts(&heard).contains(&3));
    let seen = attempts(&heard).len();
    eventually("an attempt 1 again once told the network is back", || {
        d.retry_now();
        attempts(&heard)[seen..].contains(&1)
    });
    d.stop_live();
}

#[test]
fn a_revoked_token_is_told_to_the_observer() {
    #[derive(Default)]
    struct Refusals(Mutex<Vec<String>>);
    impl Observer for Refusals {
        fn records_changed(&self, _: Vec<String>, _: Origin) {}
        fn sync_status(&self, _: SyncStatus) {}
        fn sync_warning(&self, _: String) {}
        fn access_refused(&self, message: String) {
            self.0.lock().unwrap().push(message);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let created = relay
        .admin_command(&[
            "token",
            "create",
            "--role",
            "coordinator",
            "--name",
            "lost phone",
        ])
        .output()
        .unwrap();
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let id = String::from_utf8_lossy(&created.stderr)
        .split_whitespace()
        .find(|w| w.starts_with("tok_"))
        .unwrap()
        .to_owned();
    let d = device(dir.path(), "phone.db");
    wait(d.enroll(&format!("ws://{}", relay.addr), &token)).unwrap();
    let refusals = Arc::new(Refusals::default());
    d.set_observer(Some(refusals.clone()));
    d.start_live().unwrap();
    eventually("live", || {
        d.status().unwrap().activity == SyncActivity::Live
    });
    assert!(refusals.0.lock().unwrap().is_empty());
    let revoked = relay
        .admin_command(&["token", "revoke", &id])
        .output()
        .unwrap();
    assert!(revoked.status.success());
    eventually("the refusal is told", || {
        !refusals.0.lock().unwrap().is_empty()
    });
    let told = refusals.0.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("revoked"), "{told:?}");
    assert!(matches!(
        d.status().unwrap().activity,
        SyncActivity::Failed {
            permanent: true,
            ..
        }
    ));
}

/// Live sync tells what merged: a merge made at the office reaches a live
/// desk with its reconciliation report (as `sync_now` returns it), and a
/// batch with nothing to look at tells nothing; a merge the desk made
/// itself is not told as arriving when a later batch touches it.
#[test]
fn live_sync_tells_the_observer_what_merged() {
    #[derive(Default)]
    struct Reports(
        Mutex<Vec<muster_core::store::Reconciliation>>,
        Mutex<Vec<String>>,
    );
    impl Observer for Reports {
        fn records_changed(&self, ids: Vec<String>, origin: Origin) {
            if origin == Origin::Relay {
                self.1.lock().unwrap().extend(ids);
            }
        }
        fn sync_status(&self, _: SyncStatus) {}
        fn sync_warning(&self, _: String) {}
        fn reconciled(&self, report: muster_core::store::Reconciliation) {
            self.0.lock().unwrap().push(report);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let url = format!("ws://{}", relay.addr);
    let office = device(dir.path(), "office.db");
    let desk = device(dir.path(), "desk.db");
    wait(office.enroll(&url, &relay.token("coordinator"))).unwrap();
    wait(desk.enroll(&url, &relay.token("coordinator"))).unwrap();
    let ana = add(&office, "Ana Silva");
    let twin = add(&office, "Ana Silva");
    wait(office.sync_now()).unwrap();
    let reports = Arc::new(Reports::default());
    desk.set_observer(Some(reports.clone()));
    desk.start_live().unwrap();
    eventually("the desk holds both", || {
        desk.read(|s| s.contact_count()).unwrap() == 2
    });
    // A plain new contact: nothing to look at, nothing told.
    let bo = add(&office, "Bo Chen");
    wait(office.sync_now()).unwrap();
    eventually("the desk holds Bo", || {
        desk.read(|s| s.contact(&bo)).is_ok()
    });
    office
        .write(|s, now| s.merge_contacts(&ana, &twin, now))
        .unwrap();
    wait(office.sync_now()).unwrap();
    eventually("the merge is told", || {
        reports.0.lock().unwrap().iter().any(|r| {
            r.merged
                .iter()
                .any(|m| m.duplicate == twin && m.kept == ana)
        })
    });
    let told = reports.0.lock().unwrap().clone();
    assert!(told.iter().all(|r| !r.is_quiet()), "{told:?}");

    // The desk merges Cy's two records while live; the office, not yet
    // knowing, edits the duplicate. That edit's batch touches the merged
    // duplicate, and the desk's own merge is not told back to it.
    let cy = add(&office, "Cy Diaz");
    let cy_twin = add(&office, "Cy Diaz");
    wait(office.sync_now()).unwrap();
    eventually("the desk holds Cy's twin", || {
        reports.1.lock().unwrap().contains(&cy_twin)
    });
    desk.write(|s, now| s.merge_contacts(&cy, &cy_twin, now))
        .unwrap();
    reports.1.lock().unwrap().clear();
    office
        .write(|s, now| {
            s.update_contact(&cy_twin, now, |c| {
                c.name = "Cy Díaz".into();
                Ok(())
            })
        })
        .unwrap();
    wait(office.sync_now()).unwrap();
    // Notices come in order: the batch's report, if any, before its ids.
    eventually("the office's edit reaches the desk", || {
        reports.1.lock().unwrap().contains(&cy_twin)
    });
    let told = reports.0.lock().unwrap().clone();
    assert!(
        told.iter()
            .all(|r| r.merged.iter().all(|m| m.duplicate != cy_twin)),
        "{told:?}"
    );
    desk.stop_live();
}

/// Live queries: a roster, a search and a contact handed over at once,
/// again when a write here or a sync changes their answer, and not when
/// an answer stays the same; a cancelled query hears nothing more.
#[test]
fn live_queries_hand_over_each_new_answer() {
    use muster_core::live_query::{Answer, Query, QueryObserver};
    #[derive(Default)]
    struct Answers(Mutex<Vec<Answer>>);
    impl QueryObserver for Answers {
        fn answered(&self, answer: Answer) {
            self.0.lock().unwrap().push(answer);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let url = format!("ws://{}", relay.addr);
    let desk = device(dir.path(), "desk.db");
    let office = device(dir.path(), "office.db");
    wait(desk.enroll(&url, &relay.token("coordinator"))).unwrap();
    wait(office.enroll(&url, &relay.token("coordinator"))).unwrap();
    let gala = desk
        .write(|s, now| {
            s.create_event(
                &NewEvent::new("Gala", now + 86_400_000, "Hall", Some(1)),
                now,
            )
        })
        .unwrap();
    let fair = desk
        .write(|s, now| s.create_event(&NewEvent::new("Fair", now + 86_400_000, "Park", None), now))
        .unwrap();
    let roster = Arc::new(Answers::default());
    let search = Arc::new(Answers::default());
    let watching_roster = desk.watch(
        Query::Roster {
            event_id: gala.clone(),
            status: None,
        },
        roster.clone(),
    );
    desk.watch(
        Query::Search {
            text: "silva".into(),
            limit: 10,
        },
        search.clone(),
    );
    let count = |a: &Answers| a.0.lock().unwrap().len();
    eventually("the first answers", || {
        count(&roster) == 1 && count(&search) == 1
    });
    assert_eq!(roster.0.lock().unwrap()[0], Answer::Roster(Vec::new()));

    let ana = add(&desk, "Ana Silva");
    eventually("the search hears Ana", || count(&search) == 2);
    desk.write(|s, now| s.sign_up(&gala, &ana, false, now))
        .unwrap();
    eventually("the roster hears Ana", || count(&roster) == 2);
    match &roster.0.lock().unwrap()[1] {
        Answer::Roster(lines) => {
            assert_eq!(lines.len(), 1);
            assert_eq!(lines[0].status, SignupStatus::Registered);
        }
        other => panic!("{other:?}"),
    }
    // A sign-up to another event, and a contact the search does not find:
    // the answers stay the same, and nothing is handed over.
    let bo = add(&desk, "Bo Chen");
    desk.write(|s, now| s.sign_up(&fair, &bo, false, now))
        .unwrap();

    // From the relay: the office registers Cy for the gala, the desk syncs.
    wait(desk.sync_now()).unwrap();
    wait(office.sync_now()).unwrap();
    let cy = add(&office, "Cy Silva");
    office
        .write(|s, now| s.sign_up(&gala, &cy, false, now))
        .unwrap();
    wait(office.sync_now()).unwrap();
    wait(desk.sync_now()).unwrap();
    eventually("both hear Cy", || {
        count(&roster) == 3 && count(&search) == 3
    });
    match &roster.0.lock().unwrap()[2] {
        Answer::Roster(lines) => {
            assert_eq!(lines.len(), 2);
            assert_eq!(lines[1].status, SignupStatus::Waitlisted);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&search), 3, "Bo changed nothing the search shows");

    watching_roster.cancel();
    desk.write(|s, now| s.cancel_signup(&gala, &ana, now))
        .unwrap();
    let dan = add(&desk, "Dan Silva");
    eventually("the search hears Dan", || count(&search) == 4);
    assert_eq!(count(&roster), 3, "a cancelled query hears nothing more");
    let _ = dan;
}
