//! Everything a relay backend must do (the `muster-conformance` suite), over
//! the relay's PostgreSQL storage: a database of its own per test, in the
//! real PostgreSQL server the test command starts.

mod pg;

use muster_conformance::Backend;
use muster_core::sync::storage::RelayStorage;
use muster_server::PgRelay;

/// A PostgreSQL relay on a database of its own.
struct Postgres {
    relay: Option<PgRelay>,
    db: pg::TestDb,
}

impl Postgres {
    fn open(db: pg::TestDb) -> Postgres {
        Postgres {
            relay: Some(PgRelay::open(&db.url).unwrap()),
            db,
        }
    }
}

impl Backend for Postgres {
    fn fresh() -> Self {
        Postgres::open(pg::TestDb::create())
    }

    fn storage(&self) -> &dyn RelayStorage {
        self.relay.as_ref().expect("open")
    }

    fn backup(&self) -> Self {
        let copy = Postgres::open(pg::TestDb::create());
        copy.db.copy_from(&self.db);
        let mut copy = copy;
        copy.reopen();
        copy
    }

    fn restore(&mut self, backup: &Self) {
        self.relay = None; // closed
        self.db.copy_from(&backup.db);
        self.relay = Some(PgRelay::open(&self.db.url).unwrap());
    }

    fn reopen(&mut self) {
        self.relay = None;
        self.relay = Some(PgRelay::open(&self.db.url).unwrap());
    }
}

muster_conformance::relay_backend_tests!(Postgres);
