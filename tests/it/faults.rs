//! Faults: the relay killed with SIGKILL, the relay restored from an older
//! copy of its data directory, a network that drops, delays and cuts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use muster_core::Store;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_killed_while_devices_push_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path());
    let token = relay.token("coordinator");
    let url = relay.url();

    // Four devices write and sync in a loop; after each successful sync,
    // everything they hold has been acknowledged: remember it.
    let mut tasks = Vec::new();
    let synced_once = Arc::new(AtomicUsize::new(0));
    for i in 0..4 {
        let (url, token) = (url.clone(), token.clone());
        let path = dir.path().join(format!("d{i}.muster"));
        let synced_once = synced_once.clone();
        tasks.push(tokio::spawn(async move {
            let mut store = Store::open(&path).unwrap();
            let mut acked = HashMap::new();
            for n in 0.. {
                add(&mut store, &format!("Device {i} person {n}"));
                match tokio::time::timeout(Duration::from_secs(5), sync(&mut store, &url, &token))
                    .await
                {
                    Ok(Ok(_)) => {
                        assert_eq!(store.pending_count().unwrap(), 0);
                        if acked.is_empty() {
                            synced_once.fetch_add(1, Ordering::SeqCst);
                        }
                        acked = heads_of(&mut store);
                    }
                    _ => break, // the relay is gone
                }
            }
            (path, acked)
        }));
    }
    // Once every device has had changes acknowledged, kill at a random
    // moment while they keep pushing.
    let waited = std::time::Instant::now();
    while synced_once.load(Ordering::SeqCst) < 4 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "devices never synced"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(rand::rng().random_range(50..500))).await;
    relay.kill9();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert!(
        results.iter().all(|(_, acked)| !acked.is_empty()),
        "every device synced before the kill"
    );

    // Restart on the same data. A fresh device pulls what the relay has:
    // everything any device saw acknowledged must be there.
    let relay = RelayProcess::start_on(&relay.data.clone(), "127.0.0.1:0");
    let url = relay.url();
    let mut fresh = device(dir.path(), "fresh");
    sync(&mut fresh, &url, &token).await.unwrap();
    for (_, acked) in &results {
        for (doc, heads) in acked {
            for h in heads {
                assert!(
                    fresh.has_change(doc, h).unwrap(),
                    "acknowledged change {h} of {doc} lost"
                );
            }
        }
    }
    // The devices re-push whatever was not acknowledged; all converge.
    let mut devices: Vec<Store> = results
        .iter()
        .map(|(p, _)| Store::open(p).unwrap())
        .collect();
    devices.push(fresh);
    for _ in 0..2 {
        for d in &mut devices {
            sync(d, &url, &token).await.unwrap();
        }
    }
    let expected = fingerprint(&mut devices[0]);
    for d in &mut devices {
        assert_eq!(d.pending_count().unwrap(), 0);
        assert_eq!(fingerprint(d), expected);
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_restored_from_an_older_copy_ends_with_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path());
    let token = relay.token("coordinator");
    let data = relay.data.clone();
    let backup = dir.path().join("backup");
    let mut a = device(dir.path(), "a");
    let mut b = device(dir.path(), "b");
    let early = add(&mut a, "Early Bird");
    sync(&mut a, &relay.url(), &token).await.unwrap();
    sync(&mut b, &relay.url(), &token).await.unwrap();

    // Nightly backup (relay stopped cleanly, files copied).
    relay.terminate();
    copy_dir(&data, &backup);
    let mut relay = RelayProcess::start_on(&data, "127.0.0.1:0");

    // A day of work, all acknowledged by the relay.
    let late_a = add(&mut a, "Late A");
    let late_b = add(&mut b, "Late B");
    b.update_contact(&early, clock(), |c| {
        c.emails.push("early@example.org".into());
        Ok(())
    })
    .unwrap();
    sync(&mut a, &relay.url(), &token).await.unwrap();
    sync(&mut b, &relay.url(), &token).await.unwrap();
    sync(&mut a, &relay.url(), &token).await.unwrap();
    assert_eq!(a.pending_count().unwrap() + b.pending_count().unwrap(), 0);

    // Disaster: the relay's disk is replaced by last night's copy.
    relay.terminate();
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&backup, &data);
    let relay = RelayProcess::start_on(&data, "127.0.0.1:0");
    let url = relay.url();
    // New work after the restore, then both devices reconnect.
    let after = add(&mut a, "After Restore");
    for _ in 0..2 {
        for d in [&mut a, &mut b] {
            sync(d, &url, &token).await.unwrap();
        }
    }
    let mut fresh = device(dir.path(), "fresh");
    sync(&mut fresh, &url, &token).await.unwrap();
    for id in [&early, &late_a, &late_b, &after] {
        assert!(fresh.contact(id).is_ok(), "{id} missing on the relay");
    }
    assert_eq!(fresh.contact(&early).unwrap().emails, ["early@example.org"]);
    let expected = fingerprint(&mut fresh);
    assert_eq!(fingerprint(&mut a), expected);
    assert_eq!(fingerprint(&mut b), expected);
}

/// A TCP proxy that delays chunks, and cuts connections at random points
/// (often in the middle of a WebSocket frame).
async fn hostile_proxy(upstream: String, seed: u64, cuts: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            n += 1;
            let upstream = upstream.clone();
            let cuts = cuts.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(n));
                // Every other connection dies after a few hundred to a few
                // thousand bytes: in the middle of a frame, usually of the
                // first push or batch. The others live (a batch can be
                // larger than any cut-short connection, so some must live
                // for progress to be possible at all).
                let budget = if n % 2 == 1 {
                    rng.random_range(100..3_000usize)
                } else {
                    usize::MAX
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = pump(cr, sw, budget, rng.random());
                let down = pump(sr, cw, budget, rng.random());
                let cut = tokio::select! { c = up => c, c = down => c };
                if cut {
                    cuts.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    format!("ws://{addr}/v1/sync")
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut budget: usize,
    seed: u64,
) -> bool {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        if rng.random_bool(0.2) {
            tokio::time::sleep(Duration::from_millis(rng.random_range(1..30))).await;
        }
        let n_out = n.min(budget);
        if to.write_all(&buf[..n_out]).await.is_err() {
            return false;
        }
        budget -= n_out;
        if budget == 0 {
            return true; // cut: the rest of this frame never arrives
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_network_still_converges() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let token = relay.token("coordinator");
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let cuts = Arc::new(AtomicUsize::new(0));
    let url = hostile_proxy(relay.addr.clone(), seed, cuts.clone()).await;

    let mut devices: Vec<Store> = (0..3)
        .map(|i| device(dir.path(), &format!("p{i}")))
        .collect();
    for round in 0..4 {
        for (i, d) in devices.iter_mut().enumerate() {
            for k in 0..30 {
                add(d, &format!("r{round} d{i} n{k}"));
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), sync(d, &url, &token)).await;
        }
    }
    // Through the same hostile proxy, keep trying until everyone is level.
    for _ in 0..2 {
        for d in &mut devices {
            sync_until_ok(d, &url, &token, 200).await;
        }
    }
    assert!(
        cuts.load(Ordering::SeqCst) > 0,
        "the proxy cut no connection (seed {seed})"
    );
    let expected = fingerprint(&mut devices[0]);
    assert_eq!(devices[0].contact_count().unwrap(), 3 * 4 * 30);
    for d in &mut devices {
        assert_eq!(d.pending_count().unwrap(), 0);
        assert_eq!(fingerprint(d), expected, "seed {seed}");
    }
}
