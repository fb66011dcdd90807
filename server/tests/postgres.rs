//! The PostgreSQL backend beyond the storage contract: its schema
//! migrations, and what relay processes on one database share besides the
//! log (dashboard sessions, failed logins). A real PostgreSQL server.

mod pg;

use std::net::IpAddr;

use muster_server::backend::{DashSession, SharedState};
use muster_server::postgres::MIGRATIONS;
use muster_server::{PgRelay, ServerError};

/// The schema as PostgreSQL describes it: every column and every index.
fn schema_of(db: &pg::TestDb) -> Vec<Option<String>> {
    let mut out = db.query(
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
                || ' ' || coalesce(column_default, '')
         FROM information_schema.columns WHERE table_schema = 'public'
         ORDER BY table_name, column_name",
    );
    out.extend(db.query(
        "SELECT indexdef::text FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
    ));
    out
}

#[test]
fn an_upgraded_schema_equals_a_fresh_one() {
    assert!(MIGRATIONS.len() >= 2, "there is an older schema to upgrade");
    // A database as the first release left it, with data in it.
    let old = pg::TestDb::create();
    old.execute(&format!(
        "CREATE TABLE muster_schema (version INTEGER NOT NULL); INSERT INTO muster_schema VALUES (1); {}
         INSERT INTO meta (key, value) VALUES ('epoch', 'e-old');
         INSERT INTO tokens (id, secret_hash, role, label, created_at)
           VALUES ('tok_1', '\\x00', 'coordinator', 'office', 1);",
        MIGRATIONS[0]
    ));
    let upgraded = PgRelay::open(&old.url).unwrap();
    let fresh_db = pg::TestDb::create();
    let _fresh = PgRelay::open(&fresh_db.url).unwrap();
    assert!(
        schema_of(&fresh_db).len() > 50,
        "{:?}",
        schema_of(&fresh_db)
    );
    assert_eq!(schema_of(&old), schema_of(&fresh_db));
    assert_eq!(
        old.query("SELECT version::text FROM muster_schema"),
        vec![Some(MIGRATIONS.len().to_string())]
    );
    // What was there is still there.
    use muster_core::sync::storage::RelayStorage;
    assert_eq!(upgraded.epoch().unwrap(), "e-old");
    assert_eq!(upgraded.list_tokens().unwrap()[0].label, "office");
    // Opening again changes nothing.
    drop(upgraded);
    let _again = PgRelay::open(&old.url).unwrap();
    assert_eq!(schema_of(&old), schema_of(&fresh_db));
}

#[test]
fn a_schema_newer_than_this_build_is_refused() {
    let db = pg::TestDb::create();
    drop(PgRelay::open(&db.url).unwrap());
    db.execute("UPDATE muster_schema SET version = 99");
    let err = PgRelay::open(&db.url).unwrap_err();
    assert!(
        matches!(err, ServerError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
    // Nothing was changed.
    assert_eq!(
        db.query("SELECT version::text FROM muster_schema"),
        vec![Some("99".into())]
    );
}

#[test]
fn relays_starting_together_create_the_schema_once() {
    let db = pg::TestDb::create();
    let url = db.url.clone();
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                PgRelay::open(&url).map(|r| {
                    use muster_core::sync::storage::RelayStorage;
                    r.epoch().unwrap()
                })
            })
        })
        .collect();
    let epochs: Vec<String> = opened
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert!(
        epochs.windows(2).all(|w| w[0] == w[1]),
        "one epoch: {epochs:?}"
    );
}

#[test]
fn a_bad_database_url_or_an_unreachable_server_is_a_clear_error() {
    let err = PgRelay::open("postgres://nobody@127.0.0.1:notaport/x").unwrap_err();
    assert!(err.to_string().contains("--database"), "{err}");
    // Nothing listens on port 1.
    let err = PgRelay::open("postgres://postgres@127.0.0.1:1/x?connect_timeout=2").unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1/x"), "{err}");
}

#[test]
fn sessions_and_failed_logins_are_shared_by_relays_on_one_database() {
    let db = pg::TestDb::create();
    let one = PgRelay::open(&db.url).unwrap();
    let two = PgRelay::open(&db.url).unwrap();
    let session = DashSession {
        token_id: "tok_1".into(),
        csrf: "c".repeat(64),
        expires: 2_000,
    };
    one.put_session("s1", &session).unwrap();
    assert_eq!(two.session("s1").unwrap(), Some(session.clone()));
    // Stored by hash: the cookie is nowhere in the database.
    assert!(
        db.query("SELECT count(*)::text FROM dashboard_sessions WHERE id_hash = 's1'::bytea")[0]
            .as_deref()
            == Some("0")
    );
    one.put_session(
        "s2",
        &DashSession {
            expires: 500,
            ..session.clone()
        },
    )
    .unwrap();
    // Ending one also forgets the expired.
    two.end_session("s1", 1_000).unwrap();
    assert_eq!(one.session("s1").unwrap(), None);
    assert_eq!(one.session("s2").unwrap(), None);

    let a: IpAddr = "203.0.113.7".parse().unwrap();
    let b: IpAddr = "2001:db8::1".parse().unwrap();
    for t in 0..6 {
        let r = if t % 2 == 0 { &one } else { &two };
        r.add_failed_login(a, 10_000 + t, 0).unwrap();
    }
    two.add_failed_login(b, 10_000, 0).unwrap();
    assert_eq!(one.failed_logins_since(a, 10_000).unwrap(), 6);
    assert_eq!(two.failed_logins_since(a, 10_003).unwrap(), 3);
    assert_eq!(one.failed_logins_since(b, 0).unwrap(), 1);
    // Old failures are forgotten as new ones come.
    one.add_failed_login(b, 80_000, 70_001).unwrap();
    assert_eq!(one.failed_logins_since(a, 0).unwrap(), 0);
    assert_eq!(one.failed_logins_since(b, 0).unwrap(), 1);
}

#[test]
fn migrate_copies_every_table() {
    // Every table of the SQLite relay…
    let dir = tempfile::tempdir().unwrap();
    drop(muster_server::SqliteRelay::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("relay.sqlite3")).unwrap();
    let mut sqlite: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    sqlite.sort();
    let mut copied: Vec<String> = muster_server::migrate::tables()
        .into_iter()
        .map(str::to_owned)
        .collect();
    copied.sort();
    assert_eq!(sqlite, copied);
    // …is one of PostgreSQL's; the others are what SQLite relays keep in
    // memory (sessions, failed logins) and the schema's version.
    let db = pg::TestDb::create();
    drop(PgRelay::open(&db.url).unwrap());
    let mut pg_tables: Vec<String> = db
        .query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .into_iter()
        .flatten()
        .filter(|t| !["muster_schema", "dashboard_sessions", "failed_logins"].contains(&t.as_str()))
        .collect();
    pg_tables.sort();
    assert_eq!(pg_tables, copied);
}
