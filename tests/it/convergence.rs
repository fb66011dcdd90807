//! Devices that worked offline converge through a real relay process.

use muster_core::{NewContact, NewEvent, SignupStatus, Store};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::harness::*;

fn person(store: &mut Store, name: &str) -> String {
    store
        .create_contact(&NewContact::named(name), clock())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_desks_capture_offline_and_end_identical() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let token = relay.token("coordinator");
    let url = relay.url();
    let mut office = device(dir.path(), "office");
    let mut desk1 = device(dir.path(), "desk1");
    let mut desk2 = device(dir.path(), "desk2");

    // The office sets up the event with two pre-registered people.
    let event = office
        .create_event(
            &NewEvent::new("Food bank open day", T0, "Depot", Some(3)),
            T0,
        )
        .unwrap();
    let ana = person(&mut office, "Ana Silva");
    let bo = person(&mut office, "Bo Chen");
    office.sign_up(&event, &ana, false, T0 + 1).unwrap();
    office.sign_up(&event, &bo, false, T0 + 2).unwrap();
    sync(&mut office, &url, &token).await.unwrap();
    sync(&mut desk1, &url, &token).await.unwrap();
    sync(&mut desk2, &url, &token).await.unwrap();
    assert_eq!(desk1.roster(&event, None).unwrap().len(), 2);

    // Offline: both desks check Ana in; desk 1 registers a walk-in; desk 2
    // registers another and checks Bo in; the office cancels Bo.
    desk1.check_in(&event, &ana, T0 + 100).unwrap();
    desk2.check_in(&event, &ana, T0 + 101).unwrap();
    let cy = person(&mut desk1, "Cy Diaz");
    desk1.check_in(&event, &cy, T0 + 110).unwrap();
    let di = person(&mut desk2, "Di Evans");
    desk2.sign_up(&event, &di, true, T0 + 120).unwrap();
    desk2.check_in(&event, &bo, T0 + 130).unwrap();
    office.cancel_signup(&event, &bo, T0 + 131).unwrap();

    for _ in 0..2 {
        for d in [&mut desk1, &mut desk2, &mut office] {
            sync(d, &url, &token).await.unwrap();
        }
    }
    let expected = fingerprint(&mut office);
    assert_eq!(fingerprint(&mut desk1), expected);
    assert_eq!(fingerprint(&mut desk2), expected);
    let roster: Vec<(String, SignupStatus)> = office
        .roster(&event, None)
        .unwrap()
        .into_iter()
        .map(|r| (r.contact_id, r.status))
        .collect();
    assert_eq!(
        roster,
        vec![
            (ana, SignupStatus::CheckedIn),
            (bo, SignupStatus::CheckedIn),
            (cy, SignupStatus::CheckedIn),
            (di, SignupStatus::Waitlisted),
        ]
    );
}

/// Random work on one device.
fn random_edits(store: &mut Store, event: &str, rng: &mut StdRng, n: usize) {
    for _ in 0..n {
        let contacts: Vec<String> = store
            .doc_ids()
            .unwrap()
            .into_iter()
            .filter(|i| i.starts_with("c_"))
            .collect();
        match rng.random_range(0..5) {
            0 | 1 => {
                let id = person(store, &format!("Person {}", rng.random_range(0..10_000)));
                if rng.random_bool(0.5) {
                    store.sign_up(event, &id, false, clock()).unwrap();
                }
            }
            2 if !contacts.is_empty() => {
                let c = &contacts[rng.random_range(0..contacts.len())];
                store.check_in(event, c, clock()).unwrap();
            }
            3 if !contacts.is_empty() => {
                let c = &contacts[rng.random_range(0..contacts.len())];
                let n = rng.random_range(0..100);
                store
                    .update_contact(c, clock(), |x| {
                        x.custom.insert("visits".into(), n.to_string());
                        Ok(())
                    })
                    .unwrap();
            }
            _ if !contacts.is_empty() => {
                let c = &contacts[rng.random_range(0..contacts.len())];
                store.sign_up(event, c, false, clock()).unwrap();
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_devices_syncing_concurrently_converge() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let token = relay.token("coordinator");
    let url = relay.url();
    let seed: u64 = rand::random();
    println!("seed {seed}");

    let mut office = device(dir.path(), "office");
    let event = office
        .create_event(&NewEvent::new("Street fair", T0, "Square", Some(40)), T0)
        .unwrap();
    sync(&mut office, &url, &token).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..20 {
        let (url, token, event) = (url.clone(), token.clone(), event.clone());
        let path = dir.path().join(format!("device{i}.muster"));
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i));
            let mut store = Store::open(&path).unwrap();
            sync(&mut store, &url, &token).await.unwrap();
            for _round in 0..3 {
                random_edits(&mut store, &event, &mut rng, 5);
                sync(&mut store, &url, &token).await.unwrap();
            }
            store
        }));
    }
    let mut devices = Vec::new();
    for t in tasks {
        devices.push(t.await.unwrap());
    }
    devices.push(office);
    // Everyone has pushed everything; one more pass brings everyone level.
    for d in &mut devices {
        sync(d, &url, &token).await.unwrap();
        assert_eq!(d.pending_count().unwrap(), 0);
    }
    let expected = fingerprint(&mut devices[0]);
    assert!(devices[0].contact_count().unwrap() > 20);
    for (i, d) in devices.iter_mut().enumerate() {
        assert_eq!(fingerprint(d), expected, "device {i} differs (seed {seed})");
    }
}
