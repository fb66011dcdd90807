//! A device's reads run on their own connection: they see every write that
//! returned before them, never wait for a write (a long report or export
//! does not hold up a check-in, nor a check-in a search), and cannot write.

use std::sync::{Arc, mpsc};
use std::time::Duration;

use muster_core::device::Device;
use muster_core::{Error, NewContact};

fn device(dir: &std::path::Path) -> Device {
    Device::open(dir.join("desk.db"), None, Arc::new(|| 1_800_000_000_000)).unwrap()
}

fn new(name: &str) -> NewContact {
    NewContact::named(name)
}

#[test]
fn a_write_completes_while_a_read_is_under_way() {
    let dir = tempfile::tempdir().unwrap();
    let d = Arc::new(device(dir.path()));
    let ana = d
        .write(|s, now| s.create_contact(&new("Ana Silva"), now))
        .unwrap();
    let (reading, read_started) = mpsc::channel();
    let (wrote, write_done) = mpsc::channel::<String>();
    let reader = {
        let d = d.clone();
        std::thread::spawn(move || {
            d.read(|s| {
                let before = s.contact_count()?;
                reading.send(()).unwrap();
                // The read stays open until the write has returned: with one
                // connection for both, the write could not begin.
                let bo = write_done
                    .recv_timeout(Duration::from_secs(30))
                    .expect("the write waited for the read");
                Ok((before, bo))
            })
        })
    };
    read_started.recv().unwrap();
    let bo = d
        .write(|s, now| s.create_contact(&new("Bo Chen"), now))
        .unwrap();
    wrote.send(bo.clone()).unwrap();
    let (before, _) = reader.join().unwrap().unwrap();
    assert_eq!(before, 1);
    // A read that begins after the write sees it, and sees edits of a
    // record it read before (nothing stale is kept between reads).
    assert_eq!(d.read(|s| s.contact_count()).unwrap(), 2);
    assert_eq!(d.read(|s| s.contact(&ana)).unwrap().name, "Ana Silva");
    d.write(|s, now| {
        s.update_contact(&ana, now, |c| {
            c.name = "Ana Sousa".into();
            Ok(())
        })
    })
    .unwrap();
    assert_eq!(d.read(|s| s.contact(&ana)).unwrap().name, "Ana Sousa");
    assert_eq!(d.read(|s| s.search_contacts("chen", 5)).unwrap()[0].id, bo);
}

#[test]
fn a_write_through_a_read_fails_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = device(dir.path());
    let err = d
        .read(|s| s.create_contact(&new("Ana Silva"), 1))
        .unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert_eq!(d.read(|s| s.contact_count()).unwrap(), 0);
    assert_eq!(d.read(|s| s.pending_count()).unwrap(), 0);
}

/// Closing a device leaves the store one file, as before it had a read
/// connection: the writer closes last and folds the WAL in (a read-only
/// connection closing last cannot, and left `-wal` and `-shm` behind).
#[test]
fn a_closed_device_leaves_no_wal_behind() {
    let dir = tempfile::tempdir().unwrap();
    let d = device(dir.path());
    d.write(|s, now| s.create_contact(&new("Ana Silva"), now))
        .unwrap();
    assert_eq!(d.read(|s| s.contact_count()).unwrap(), 1);
    drop(d);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["desk.db"]);
}
