//! The relay's data directory encrypted at rest: it reopens with its key,
//! and without it or with another key it is refused with a clear error (a
//! failed command, exit code 1, never a panic) and left untouched.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use muster_core::sync::storage::RelayStorage;
use muster_server::key_file::read_key_file;
use muster_server::{AppState, SqliteRelay};

const T0: i64 = 1_793_491_200_000;
const LABEL: &str = "Ana Silva's phone";
const KEY_HEX: &str = "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const OTHER_HEX: &str = "ffeeddccbbaa99887766554433221100f0e1d2c3b4a5968778695a4b3c2d1e0f";

fn key(hex: &str) -> [u8; 32] {
    std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn an_encrypted_data_dir_reopens_with_its_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay-data");
    {
        let relay = SqliteRelay::open_encrypted(&data, &key(KEY_HEX)).unwrap();
        relay.create_token("coordinator", LABEL, &[], T0).unwrap();
    }
    let before = files(&data);
    assert!(
        before.values().all(|bytes| !contains(bytes, LABEL)),
        "the token's label is not readable on disk"
    );

    let relay = SqliteRelay::open_encrypted(&data, &key(KEY_HEX)).unwrap();
    let tokens = relay.list_tokens().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].label, LABEL);
    drop(relay);
    let state = AppState::open_encrypted(&data, &key(KEY_HEX)).unwrap();
    assert_eq!(state.storage().list_tokens().unwrap().len(), 1);
    drop(state);
    let before = files(&data);

    let e = SqliteRelay::open(&data).unwrap_err().to_string();
    assert!(e.contains("is encrypted"), "{e}");
    assert!(e.contains("open it with its encryption key"), "{e}");
    assert!(e.contains("--key-file"), "{e}");
    assert_eq!(files(&data), before);

    let e = SqliteRelay::open_encrypted(&data, &key(OTHER_HEX))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the encryption key is wrong"), "{e}");
    assert_eq!(files(&data), before);

    let e = AppState::open_encrypted(&data, &key(OTHER_HEX))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the encryption key is wrong"), "{e}");
    let e = AppState::open(&data).unwrap_err().to_string();
    assert!(e.contains("is encrypted"), "{e}");
    assert_eq!(files(&data), before);
}

#[test]
fn a_plain_data_dir_is_not_used_with_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay-data");
    {
        let relay = SqliteRelay::open(&data).unwrap();
        relay.create_token("coordinator", LABEL, &[], T0).unwrap();
    }
    let before = files(&data);
    assert!(
        before.values().any(|bytes| contains(bytes, LABEL)),
        "a plain relay keeps the label readable (the check above can fail)"
    );
    let e = SqliteRelay::open_encrypted(&data, &key(KEY_HEX))
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not encrypted"), "{e}");
    assert_eq!(files(&data), before);
    assert_eq!(
        SqliteRelay::open(&data)
            .unwrap()
            .list_tokens()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn key_files_hold_64_hex_digits() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.key");
    std::fs::write(&file, format!("  {KEY_HEX}\n")).unwrap();
    assert_eq!(read_key_file(&file).unwrap(), key(KEY_HEX));
    std::fs::write(&file, KEY_HEX.to_uppercase()).unwrap();
    assert_eq!(read_key_file(&file).unwrap(), key(KEY_HEX));
    let secret_like = "zz".repeat(32);
    for bad in [&KEY_HEX[..62], &format!("{KEY_HEX}00"), &secret_like, ""] {
        std::fs::write(&file, bad).unwrap();
        let e = read_key_file(&file).unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
        assert!(bad.is_empty() || !e.contains(bad), "the error shows no key");
    }
    let e = read_key_file(&dir.path().join("missing.key"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be read"), "{e}");
}

/// A FIFO hung the start silently and /dev/zero was read until memory ran
/// out: only a regular file of a key file's size is read. Each refusal
/// comes at once (the test would hang on the FIFO otherwise).
#[test]
fn key_files_that_are_not_small_regular_files_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("relay.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let paths = [fifo, "/dev/zero".into(), dir.path().to_path_buf()];
    std::thread::spawn(move || {
        for p in paths {
            let _ = tx.send(read_key_file(&p).map(drop).map_err(|e| e.to_string()));
        }
    });
    for what in ["a FIFO", "/dev/zero", "a directory"] {
        let e = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("reading {what} as a key file did not return"))
            .unwrap_err();
        assert!(e.contains("is not a regular file"), "{what}: {e}");
    }
    let big = dir.path().join("big.key");
    std::fs::write(&big, format!("{KEY_HEX}{}", " ".repeat(2_000_000))).unwrap();
    let e = read_key_file(&big).unwrap_err().to_string();
    assert!(e.contains("larger than a key file can be"), "{e}");
}

fn relay_cmd(args: &[&str], data: &Path, key_file: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_muster-server"));
    cmd.args(args)
        .arg("--data")
        .arg(data)
        .env_remove("MUSTER_DATA_KEY_FILE")
        .env("NO_COLOR", "1");
    if let Some(f) = key_file {
        cmd.arg("--key-file").arg(f);
    }
    cmd
}

fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_binary_takes_a_key_file_and_refuses_a_wrong_or_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay-data");
    let key_file = dir.path().join("relay.key");
    let other_file = dir.path().join("other.key");
    std::fs::write(&key_file, format!("{KEY_HEX}\n")).unwrap();
    std::fs::write(&other_file, OTHER_HEX).unwrap();

    let out = run(relay_cmd(
        &["token", "create", "--role", "coordinator", "--name", LABEL],
        &data,
        Some(&key_file),
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    // The key file through the environment.
    let mut list = relay_cmd(&["token", "list", "--json"], &data, None);
    list.env("MUSTER_DATA_KEY_FILE", &key_file);
    let out = run(list);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(LABEL));
    let before = files(&data);

    for key in [None, Some(other_file.as_path())] {
        for args in [
            &["token", "list"][..],
            &["serve", "--listen", "127.0.0.1:0"],
        ] {
            let out = run(relay_cmd(args, &data, key));
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{args:?} {key:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
            let expected = if key.is_some() {
                "the encryption key is wrong"
            } else {
                "open it with its encryption key"
            };
            assert!(err.contains(expected), "{args:?} {key:?}: {err}");
        }
    }
    assert_eq!(files(&data), before);

    // A key file that is not a key is a clear error too.
    let junk = dir.path().join("junk.key");
    std::fs::write(&junk, "not a key").unwrap();
    let out = run(relay_cmd(&["token", "list"], &data, Some(&junk)));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("64 hex digits"), "{}", stderr(&out));

    // With the right key the relay serves.
    let mut child = relay_cmd(
        &["serve", "--listen", "127.0.0.1:0"],
        &data,
        Some(&key_file),
    )
    .env("RUST_LOG", "info")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on http://"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
}
