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
