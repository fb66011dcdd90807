//! Everything a relay backend must do (the `muster-conformance` suite:
//! the storage contract, the session's access rules, the simulation), over
//! the relay's SQLite storage in a temporary directory.

use std::path::Path;

use muster_conformance::Backend;
use muster_core::sync::storage::RelayStorage;
use muster_server::SqliteRelay;

/// A SQLite relay in a directory of its own.
struct Sqlite {
    relay: Option<SqliteRelay>,
    dir: tempfile::TempDir,
}

impl Sqlite {
    fn file(dir: &Path) -> std::path::PathBuf {
        dir.join("relay.sqlite3")
    }
}

impl Backend for Sqlite {
    fn fresh() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Sqlite {
            relay: Some(SqliteRelay::open(dir.path()).unwrap()),
            dir,
        }
    }

    fn storage(&self) -> &dyn RelayStorage {
        self.relay.as_ref().expect("open")
    }

    fn backup(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        self.relay
            .as_ref()
            .unwrap()
            .backup_to(&Sqlite::file(dir.path()))
            .unwrap();
        Sqlite {
            relay: Some(SqliteRelay::open(dir.path()).unwrap()),
            dir,
        }
    }

    fn restore(&mut self, backup: &Self) {
        let copy = tempfile::tempdir().unwrap();
        backup
            .relay
            .as_ref()
            .unwrap()
            .backup_to(&Sqlite::file(copy.path()))
            .unwrap();
        self.relay = None; // closed
        let file = Sqlite::file(self.dir.path());
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
        std::fs::copy(Sqlite::file(copy.path()), &file).unwrap();
        self.relay = Some(SqliteRelay::open(self.dir.path()).unwrap());
    }

    fn reopen(&mut self) {
        self.relay = None;
        self.relay = Some(SqliteRelay::open(self.dir.path()).unwrap());
    }
}

muster_conformance::relay_backend_tests!(Sqlite);
