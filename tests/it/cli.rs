//! Two office laptops using the `muster` command line against a real relay.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

fn muster(store: &Path, args: &[&str]) -> String {
    let out = Command::new(bin("muster"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "muster {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(store: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&muster(store, args)).unwrap()
}

#[test]
fn two_laptops_with_the_cli_end_identical() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let token = relay.token("coordinator");
    let url = format!("ws://{}", relay.addr);
    let a: PathBuf = dir.path().join("a.store");
    let b: PathBuf = dir.path().join("b.store");
    assert!(muster(&a, &["login", &url, &token]).starts_with("logged in"));
    muster(&b, &["login", &url, &token]);

    let event = muster(
        &a,
        &[
            "event",
            "add",
            "--title",
            "Gala",
            "--starts",
            "2026-12-01T18:00:00Z",
            "--capacity",
            "2",
        ],
    );
    let event = event.trim();
    let ana = muster(&a, &["contact", "add", "--name", "Ana Silva"])
        .trim()
        .to_owned();
    let sync_a = json(&a, &["sync", "--json"]);
    assert_eq!(sync_a["acknowledged"], 2);
    assert_eq!(sync_a["pending"], 0);
    muster(&b, &["sync"]);

    // Offline at both laptops.
    muster(&a, &["signup", event, &ana]);
    muster(&b, &["checkin", event, &ana]);
    let bo = muster(&b, &["contact", "add", "--name", "Bo Chen"])
        .trim()
        .to_owned();
    muster(&b, &["signup", event, &bo, "--walk-in"]);
    let cy = muster(&a, &["contact", "add", "--name", "Cy Diaz"])
        .trim()
        .to_owned();
    muster(&a, &["signup", event, &cy]);

    let line = muster(&a, &["sync"]);
    assert!(line.contains("acknowledged"), "{line}");
    let line = muster(&b, &["sync"]);
    assert!(
        line.contains("arrived: 1 new contacts, 1 events changed"),
        "{line}"
    );
    // Laptop A learns that B's walk-in took the last seat before Cy.
    let second = json(&a, &["sync", "--json"]);
    let moved = &second["reconciliation"]["moved_to_waitlist"];
    assert_eq!(moved.as_array().unwrap().len(), 1, "{second}");
    assert_eq!(moved[0]["contact_id"], cy);
    assert_eq!(moved[0]["event_title"], "Gala");
    assert_eq!(moved[0]["position"], 1);
    assert_eq!(second["reconciliation"]["arrived"]["new_contacts"], 1);
    muster(&b, &["sync"]);
    for args in [
        vec!["contact", "list", "--json"],
        vec!["roster", event, "--json"],
        vec!["event", "list", "--json"],
    ] {
        assert_eq!(json(&a, &args), json(&b, &args), "{args:?}");
    }
    let roster = json(&a, &["roster", event, "--json"]);
    let status: Vec<&str> = roster
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["checked_in", "registered", "waitlisted"]);
    assert_eq!(roster[2]["contact_id"], cy);
}

/// `muster sync --watch` stays connected: work synced by another laptop
/// arrives without running anything, and the watcher says so.
#[test]
fn sync_watch_receives_other_laptops_work_live() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(dir.path());
    let token = relay.token("coordinator");
    let url = format!("ws://{}", relay.addr);
    let a: PathBuf = dir.path().join("a.store");
    let b: PathBuf = dir.path().join("b.store");
    muster(&a, &["login", &url, &token]);
    muster(&b, &["login", &url, &token]);

    let mut watch = Command::new(bin("muster"))
        .arg("--store")
        .arg(&a)
        .args(["sync", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str| -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                let done = line.contains(what);
                seen.push(line);
                if done {
                    return seen;
                }
            }
        }
        panic!("`sync --watch` never printed {what:?}; it printed {seen:?}");
    };
    wait_for("caught up");

    let bo = muster(&b, &["contact", "add", "--name", "Bo Chen"])
        .trim()
        .to_owned();
    muster(&b, &["sync"]);
    wait_for("records changed");
    let _ = watch.kill();
    let _ = watch.wait();

    let shown = json(&a, &["contact", "show", &bo, "--json"]);
    assert_eq!(shown["name"], "Bo Chen");
}

/// A fake relay on 127.0.0.1 that never does its part.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// Accepts TCP connections and says nothing.
    Silent,
    /// Completes the WebSocket handshake, never sends `welcome`.
    NoWelcome,
    /// Sends `welcome` after the device's first frame, then nothing (it
    /// still answers pings: tungstenite does as it reads).
    WelcomeOnly,
}

/// Serves `how` on every connection; returns the relay's URL.
async fn hostile_relay(how: Hostile) -> String {
    use futures_util::{SinkExt, StreamExt};
    use muster_core::sync::wire::{self, Message};
    use tokio_tungstenite::tungstenite::Message as Ws;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                if let Hostile::Silent = how {
                    // Holds the connection open, reads nothing, says nothing.
                    let _held = tcp;
                    return std::future::pending::<()>().await;
                }
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let mut welcomed = false;
                while let Some(Ok(frame)) = ws.next().await {
                    if let (Hostile::WelcomeOnly, Ws::Binary(_), false) = (how, &frame, welcomed) {
                        welcomed = true;
                        let welcome = wire::encode(&Message::Welcome {
                            protocol: wire::PROTOCOL_VERSION,
                            epoch: "hostile".into(),
                            head: 1_000,
                            cursor_trusted: true,
                            role: "coordinator".into(),
                        });
                        if ws.send(Ws::Binary(welcome.into())).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    url
}

/// `muster login` and `muster sync --timeout 2` against relays that never
/// answer (issue 13, defect 8): each gives up within the bound with exit 1
/// and a message naming the wait, instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_sync_give_up_on_a_relay_that_does_not_answer() {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            Hostile::Silent,
            "within 2 s: is the relay running and reachable?",
        ),
        (Hostile::NoWelcome, "in 2 s (waiting for its welcome)"),
        (
            Hostile::WelcomeOnly,
            "in 2 s (waiting for the rest of the catch-up)",
        ),
    ];
    let mut runs = Vec::new();
    for (how, expected) in cases {
        let url = hostile_relay(how).await;
        let store = dir.path().join(format!("{how:?}.store"));
        runs.push(tokio::task::spawn_blocking(move || {
            // Runs `muster ARGS --timeout 2`; kills it if it is still
            // waiting after the bound.
            let run = |args: &[&str]| {
                let started = Instant::now();
                let mut child = Command::new(bin("muster"))
                    .arg("--store")
                    .arg(&store)
                    .args(args)
                    .args(["--timeout", "2"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let status = loop {
                    if let Some(status) = child.try_wait().unwrap() {
                        break status;
                    }
                    if started.elapsed() > Duration::from_secs(20) {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("{how:?}: `muster {args:?} --timeout 2` still waiting after 20 s");
                    }
                    std::thread::sleep(Duration::from_millis(50));
                };
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                (status, err, started.elapsed())
            };
            for args in [vec!["login", url.as_str(), "mst_hostile"], vec!["sync"]] {
                let (status, err, took) = run(&args);
                assert_eq!(status.code(), Some(1), "{how:?} {args:?}: {err}");
                assert!(
                    err.contains("no answer from") && err.contains(expected),
                    "{how:?} {args:?}: {err}"
                );
                assert!(
                    took >= Duration::from_secs(2),
                    "{how:?} {args:?} took {took:?}"
                );
            }
        }));
    }
    for run in runs {
        run.await.unwrap();
    }
}
