//! Encryption at rest: a store opened with `Store::open_encrypted` keeps no
//! plain text on disk, reopens with its key, and is refused — untouched —
//! without it or with another key; a plain store is never used when a key
//! is given.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use muster_core::{Error, NewContact, Store};
use support::T0;

const NAME: &str = "Ana Silva";
const PHONE: &str = "+351 912 345 678";
const EMAIL: &str = "ana.silva@example.org";

fn key(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
}

fn ana() -> NewContact {
    NewContact {
        name: NAME.into(),
        phones: vec![PHONE.into()],
        emails: vec![EMAIL.into()],
        ..Default::default()
    }
}

/// Every file in a directory with its bytes.
type Files = BTreeMap<String, Vec<u8>>;

/// Every file in `dir` (the database, and its `-wal` and `-shm` if any) with
/// its bytes.
fn files(dir: &Path) -> Files {
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

/// Which of the contact's values appear in the raw bytes of the store's files.
fn plain_values_on_disk(files: &Files) -> Vec<&'static str> {
    [NAME, PHONE, EMAIL]
        .into_iter()
        .filter(|v| files.values().any(|bytes| contains(bytes, v)))
        .collect()
}

/// Writes a few contacts through `open`, and returns the files on disk while
/// the store is open (changes still in the WAL) and after it is closed
/// (checkpointed into the database).
fn write_contacts(dir: &Path, open: impl Fn() -> Result<Store, Error>) -> (String, Files, Files) {
    let mut s = open().unwrap();
    let id = s.create_contact(&ana(), T0).unwrap();
    for i in 0..20 {
        s.create_contact(&NewContact::named(format!("Person {i}")), T0 + 1 + i)
            .unwrap();
    }
    let while_open = files(dir);
    assert!(
        while_open.keys().any(|f| f.ends_with("-wal")),
        "the test expects the changes in a WAL while the store is open: {:?}",
        while_open.keys().collect::<Vec<_>>()
    );
    drop(s);
    let after_close = files(dir);
    (id, while_open, after_close)
}

#[test]
fn an_encrypted_store_keeps_everything_and_shows_no_plain_text_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.muster");
    let key = key(11);
    let (id, while_open, after_close) =
        write_contacts(dir.path(), || Store::open_encrypted(&path, &key));

    assert_eq!(plain_values_on_disk(&while_open), Vec::<&str>::new());
    assert_eq!(plain_values_on_disk(&after_close), Vec::<&str>::new());
    let db = &after_close["device.muster"];
    assert!(db.len() >= 4096, "the database has pages");
    assert!(
        !db.starts_with(b"SQLite format 3\0"),
        "an encrypted file has no plain SQLite header"
    );

    let mut s = Store::open_encrypted(&path, &key).unwrap();
    let c = s.contact(&id).unwrap();
    assert_eq!(c.name, NAME);
    assert_eq!(c.phones, vec![PHONE.to_owned()]);
    assert_eq!(c.emails, vec![EMAIL.to_owned()]);
    for query in ["silva", "Ana Sil", "ana.silva@", "912 345", "An"] {
        let hits = s.search_contacts(query, 10).unwrap();
        assert_eq!(
            hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            vec![id.as_str()],
            "search {query:?}"
        );
    }
    assert_eq!(s.list_contacts(100, 0).unwrap().len(), 21);
    s.integrity_check().unwrap();
}

/// The control: the same writes to a plain store leave the values readable
/// in its files, so the test above would catch a store that is not
/// encrypted.
#[test]
fn a_plain_store_shows_the_same_values_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.muster");
    let (_, while_open, after_close) = write_contacts(dir.path(), || Store::open(&path));
    assert_eq!(plain_values_on_disk(&while_open), vec![NAME, PHONE, EMAIL]);
    assert_eq!(plain_values_on_disk(&after_close), vec![NAME, PHONE, EMAIL]);
}

/// An encrypted store with one contact, closed; returns its path.
fn encrypted_store(dir: &Path, key: &[u8; 32]) -> std::path::PathBuf {
    let path = dir.join("device.muster");
    let mut s = Store::open_encrypted(&path, key).unwrap();
    s.create_contact(&ana(), T0).unwrap();
    drop(s);
    path
}

#[test]
fn an_encrypted_store_opened_without_its_key_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = encrypted_store(dir.path(), &key(11));
    let before = files(dir.path());
    let e = Store::open(&path).unwrap_err();
    assert!(matches!(e, Error::KeyRequired { .. }), "{e:?}");
    assert!(
        e.to_string().contains("open it with its encryption key"),
        "{e}"
    );
    assert_eq!(files(dir.path()), before);
}

#[test]
fn a_wrong_key_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = encrypted_store(dir.path(), &key(11));
    let before = files(dir.path());
    for wrong in [key(12), [0u8; 32], [0xff; 32]] {
        let e = Store::open_encrypted(&path, &wrong).unwrap_err();
        assert!(matches!(e, Error::WrongKey { .. }), "{e:?}");
        assert!(e.to_string().contains("the encryption key is wrong"), "{e}");
        assert_eq!(files(dir.path()), before);
    }
    // The right key still opens it.
    let s = Store::open_encrypted(&path, &key(11)).unwrap();
    assert_eq!(s.search_contacts("silva", 10).unwrap().len(), 1);
}

#[test]
fn a_plain_store_opened_with_a_key_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.muster");
    {
        let mut s = Store::open(&path).unwrap();
        s.create_contact(&ana(), T0).unwrap();
    }
    let before = files(dir.path());
    let e = Store::open_encrypted(&path, &key(11)).unwrap_err();
    assert!(matches!(e, Error::NotEncrypted { .. }), "{e:?}");
    assert!(e.to_string().contains("is not encrypted"), "{e}");
    assert_eq!(files(dir.path()), before);
    // Still a working plain store.
    let s = Store::open(&path).unwrap();
    assert_eq!(s.search_contacts("silva", 10).unwrap().len(), 1);
}

#[test]
fn a_text_file_opened_with_a_key_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "Shopping list: rice, beans, coffee.\n".repeat(200)).unwrap();
    let before = files(dir.path());
    let e = Store::open_encrypted(&path, &key(11)).unwrap_err();
    assert!(matches!(e, Error::WrongKey { .. }), "{e:?}");
    assert_eq!(files(dir.path()), before);
}

/// The file is standard SQLCipher keyed with the raw key, so SQLCipher
/// tools (and SQLCipher for Android/iOS) can read it with the same key.
#[test]
fn the_file_is_standard_sqlcipher_with_the_raw_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = key(11);
    let path = encrypted_store(dir.path(), &key);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\""))
        .unwrap();
    let name: String = conn
        .query_row("SELECT name FROM contacts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, NAME);
}

/// A wrong key writes nothing to stderr (logcat on Android): SQLCipher
/// logged three "ERROR CORE" lines for each failed decryption. Run in a
/// process of its own (this test binary again), whose stderr is read whole.
#[test]
fn a_wrong_key_logs_nothing_to_stderr() {
    if let Some(dir) = std::env::var_os("MUSTER_WRONG_KEY_CHILD") {
        let path = encrypted_store(Path::new(&dir), &key(1));
        let e = Store::open_encrypted(&path, &key(2)).unwrap_err();
        assert!(matches!(e, Error::WrongKey { .. }), "{e:?}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_wrong_key_logs_nothing_to_stderr",
            "--nocapture",
        ])
        .env("MUSTER_WRONG_KEY_CHILD", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
}
