//! A child process writes records in a loop and is killed with SIGKILL at a
//! random moment, many times over the same store. Every write whose call had
//! returned (the child printed it) must be there after reopening, and the
//! file must pass SQLite's integrity check.
//!
//! The kill times come from a seeded RNG; the seed is printed, and
//! `MUSTER_DURABILITY_SEED=<seed>` replays a run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use muster_core::{SignupStatus, Store};
use rand::{RngExt, SeedableRng};

const ROUNDS: usize = 30;

#[test]
fn writes_that_returned_survive_sigkill() {
    let seed: u64 = std::env::var("MUSTER_DURABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("MUSTER_DURABILITY_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.muster");

    // What the children reported as done.
    let mut created: HashMap<String, String> = HashMap::new(); // id -> name
    let mut latest_n: HashMap<String, u64> = HashMap::new();
    let mut signed: Vec<(String, String)> = Vec::new();
    let mut notes: Vec<(String, String)> = Vec::new();
    let mut total_lines = 0;

    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_muster-durability-writer"))
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            // Only whole lines count: a line cut by the kill was not reported.
            while r.read_until(b'\n', &mut buf).unwrap_or(0) > 0 {
                if buf.ends_with(b"\n") {
                    lines.push(String::from_utf8_lossy(&buf).trim_end().to_owned());
                }
                buf.clear();
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        // Killed, not failed: a writer that exited on an error would look
        // the same to a bare "not success" check.
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "round {round}: the writer was not killed but stopped: {status:?}, stderr: {}",
            child
                .stderr
                .take()
                .map(|mut e| {
                    let mut s = String::new();
                    let _ = std::io::Read::read_to_string(&mut e, &mut s);
                    s
                })
                .unwrap_or_default()
        );
        let lines = reader.join().unwrap();
        total_lines += lines.len();
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["E", _] => {}
                ["C", id, i] => {
                    created.insert(id.to_string(), format!("Person {i}"));
                }
                ["U", id, i] => {
                    latest_n.insert(id.to_string(), i.parse().unwrap());
                }
                ["S", event, id] => signed.push((event.to_string(), id.to_string())),
                ["N", id, i] => notes.push((id.to_string(), format!("x{i};"))),
                _ => panic!("unexpected line {line:?}"),
            }
        }

        // After every kill: reopen and check everything reported so far.
        let mut store = Store::open(&path)
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): reopen failed: {e}"));
        store.integrity_check().unwrap();
        for (id, name) in &created {
            let c = store
                .contact(id)
                .unwrap_or_else(|e| panic!("round {round} (seed {seed}): {id} lost: {e}"));
            assert_eq!(&c.name, name);
        }
        for (id, n) in &latest_n {
            let c = store.contact(id).unwrap();
            let found: u64 = c.custom.get("n").and_then(|v| v.parse().ok()).unwrap_or(0);
            assert!(
                found >= *n,
                "round {round} (seed {seed}): {id} n={found}, expected ≥ {n}"
            );
        }
        for (event, id) in &signed {
            let roster = store.roster(event, None).unwrap();
            assert!(
                roster
                    .iter()
                    .any(|r| &r.contact_id == id && r.status != SignupStatus::Cancelled),
                "round {round} (seed {seed}): sign-up of {id} lost"
            );
        }
        for (id, text) in &notes {
            let c = store.contact(id).unwrap();
            assert!(
                c.notes.as_str().contains(text.as_str()),
                "round {round} (seed {seed}): note {text} of {id} lost"
            );
        }
        // Every reported change is still waiting for the relay: none was
        // half-written or lost from the outbox.
        assert!(store.pending_count().unwrap() as usize >= created.len());
    }
    assert!(
        total_lines > ROUNDS * 2,
        "the children wrote too little to prove anything ({total_lines} lines)"
    );
    println!("{total_lines} writes reported across {ROUNDS} kills, all present");
}
