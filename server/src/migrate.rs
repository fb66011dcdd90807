//! Outgrowing SQLite: `muster-server migrate --from DIR --to postgres://…`
//! copies a SQLite relay's data into an empty PostgreSQL database, so that
//! devices enrolled with it carry on with their cursors (no first sync
//! again) once the relays serve from PostgreSQL.
//!
//! Everything that makes a cursor valid moves as it is: the log with its
//! positions, hashes and chain hashes, the relay's epoch, the visibility
//! log, and with them snapshots, tokens (by the hash of their secrets: the
//! same secrets keep working), scopes, sign-ups, merges, erasures and
//! devices. Dashboard sessions are not kept by SQLite relays (memory) and
//! do not move: coordinators log in again.
//!
//! The copy is one PostgreSQL transaction (`COPY … FROM STDIN` in binary
//! format, table by table): it lands whole or not at all. The SQLite data
//! directory is locked for the copy, so a relay still serving it is refused
//! rather than left to take pushes the copy would miss; it is read, never
//! changed.

use std::path::Path;

use futures_util::pin_mut;
use muster_core::sync::storage::{Head, RelayStorage};
use rusqlite::types::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::{PgRelay, ServerError, SqliteRelay};

/// How a column is read from SQLite and written to PostgreSQL.
#[derive(Clone, Copy)]
enum Col {
    Int,
    Text,
    Blob,
    /// SQLite's 0/1 as PostgreSQL's boolean.
    Bool,
}

/// Every table a relay keeps, with its columns in the order both schemas
/// name them. A table added to the schema must be added here: the test
/// `migrate_copies_every_table` compares this list with PostgreSQL's.
const TABLES: &[(&str, &[(&str, Col)])] = &[
    ("meta", &[("key", Col::Text), ("value", Col::Text)]),
    (
        "log",
        &[
            ("seq", Col::Int),
            ("doc_id", Col::Text),
            ("hash", Col::Blob),
            ("data", Col::Blob),
            ("device", Col::Text),
            ("token_id", Col::Text),
            ("chain", Col::Blob),
            ("received_at", Col::Int),
        ],
    ),
    (
        "docs",
        &[
            ("doc_id", Col::Text),
            ("kind", Col::Text),
            ("first_seq", Col::Int),
            ("snapshot", Col::Blob),
            ("snapshot_upto", Col::Int),
            ("since_snapshot", Col::Int),
        ],
    ),
    (
        "tokens",
        &[
            ("id", Col::Text),
            ("secret_hash", Col::Blob),
            ("role", Col::Text),
            ("label", Col::Text),
            ("created_at", Col::Int),
            ("last_seen_at", Col::Int),
            ("last_device", Col::Text),
            ("revoked_at", Col::Int),
        ],
    ),
    (
        "token_events",
        &[("token_id", Col::Text), ("event_id", Col::Text)],
    ),
    (
        "token_docs",
        &[("token_id", Col::Text), ("doc_id", Col::Text)],
    ),
    (
        "relay_signups",
        &[("event_id", Col::Text), ("contact_id", Col::Text)],
    ),
    (
        "visibility",
        &[
            ("vseq", Col::Int),
            ("token_id", Col::Text),
            ("doc_id", Col::Text),
            ("forget", Col::Bool),
        ],
    ),
    (
        "relay_merges",
        &[("duplicate", Col::Text), ("kept", Col::Text)],
    ),
    (
        "erased",
        &[
            ("doc_id", Col::Text),
            ("erased_at", Col::Int),
            ("token_id", Col::Text),
            ("device", Col::Text),
        ],
    ),
    (
        "devices",
        &[
            ("device_id", Col::Text),
            ("token_id", Col::Text),
            ("first_seen", Col::Int),
        ],
    ),
];

/// The tables [`migrate`] copies (for the test that no table is missed).
pub fn tables() -> Vec<&'static str> {
    TABLES.iter().map(|(t, _)| *t).collect()
}

/// What a migration copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Rows per table, in [`TABLES`] order.
    pub rows: Vec<(&'static str, u64)>,
    /// Where the log ends, the same on both sides.
    pub head: Head,
    /// The relay's epoch, kept.
    pub epoch: String,
}

/// Copies the SQLite relay in `from` (encrypted with `key`, if given) into
/// the empty PostgreSQL database at `to`. Refuses, changing nothing, if the
/// data directory is being served, if the database already holds relay
/// data, or if anything fails midway.
pub fn migrate(from: &Path, key: Option<&[u8; 32]>, to: &str) -> Result<Migrated, ServerError> {
    if !from.join("relay.sqlite3").exists() {
        return Err(ServerError::BadRequest(format!(
            "{} holds no relay data (no relay.sqlite3): give the directory `serve --data` used",
            from.display()
        )));
    }
    let _lock = crate::lock_data_dir(from)?;
    let sqlite = SqliteRelay::open_with_key(from, key)?;
    let head = sqlite.head()?;
    let epoch = sqlite.epoch()?;
    let pg = PgRelay::open(to)?;
    let rows = pg.block_on(copy(&sqlite, &pg))?;
    drop(pg);
    // Opened again: what a relay started on it now reads.
    let check = PgRelay::open(to)?;
    let copied = check.head()?;
    if copied != head || check.epoch()? != epoch {
        // Cannot happen after a committed copy of a locked directory; if
        // it does, say so rather than let devices find out.
        return Err(ServerError::Storage(format!(
            "the copy in {} does not match {} (log at {}/{} there, {}/{} here)",
            check.target(),
            from.display(),
            copied.seq,
            copied.vis,
            head.seq,
            head.vis
        )));
    }
    Ok(Migrated { rows, head, epoch })
}

fn pg_err(e: tokio_postgres::Error) -> ServerError {
    ServerError::Storage(format!("PostgreSQL: {e}"))
}

// The SQLite connection's lock is held across the copy's awaits on
// purpose: the command's own runtime runs nothing else, and the source must
// not change while it is read.
#[allow(clippy::await_holding_lock)]
async fn copy(sqlite: &SqliteRelay, pg: &PgRelay) -> Result<Vec<(&'static str, u64)>, ServerError> {
    let mut client = pg
        .pool()
        .get()
        .await
        .map_err(|e| ServerError::Storage(format!("PostgreSQL: {e}")))?;
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&crate::postgres::WRITE_LOCK],
    )
    .await
    .map_err(pg_err)?;
    let held: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM log) + (SELECT count(*) FROM tokens)
                  + (SELECT count(*) FROM visibility) + (SELECT count(*) FROM devices)",
            &[],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    if held > 0 {
        return Err(ServerError::BadRequest(format!(
            "{} already holds a relay's data (log entries, tokens or devices): migrate into an \
             empty database (createdb a new one), so that nothing is mixed",
            pg.target()
        )));
    }
    // The epoch the new database drew when its schema was created gives way
    // to the SQLite relay's: cursors name it.
    tx.execute("DELETE FROM meta", &[]).await.map_err(pg_err)?;
    let conn = sqlite.lock();
    let mut out = Vec::new();
    for (table, cols) in TABLES {
        let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
        let types: Vec<Type> = cols
            .iter()
            .map(|(_, c)| match c {
                Col::Int => Type::INT8,
                Col::Text => Type::TEXT,
                Col::Blob => Type::BYTEA,
                Col::Bool => Type::BOOL,
            })
            .collect();
        let sink = tx
            .copy_in(&format!(
                "COPY {table} ({}) FROM STDIN (FORMAT binary)",
                names.join(", ")
            ))
            .await
            .map_err(pg_err)?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        let sqlite_err = |e: rusqlite::Error| ServerError::Storage(format!("{table}: {e}"));
        let mut stmt = conn
            .prepare(&format!("SELECT {} FROM {table}", names.join(", ")))
            .map_err(sqlite_err)?;
        let mut rows = stmt.query([]).map_err(sqlite_err)?;
        while let Some(r) = rows.next().map_err(sqlite_err)? {
            let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(cols.len());
            for (i, (name, col)) in cols.iter().enumerate() {
                let v: Value = r.get(i).map_err(sqlite_err)?;
                let bad = || {
                    ServerError::Storage(format!(
                        "{table}.{name} holds a value of the wrong type; the SQLite relay's data \
                         is damaged"
                    ))
                };
                values.push(match (col, v) {
                    (_, Value::Null) => match col {
                        Col::Int => Box::new(None::<i64>),
                        Col::Text => Box::new(None::<String>),
                        Col::Blob => Box::new(None::<Vec<u8>>),
                        Col::Bool => Box::new(None::<bool>),
                    },
                    (Col::Int, Value::Integer(n)) => Box::new(n),
                    (Col::Bool, Value::Integer(n)) => Box::new(n != 0),
                    (Col::Text, Value::Text(t)) => Box::new(t),
                    (Col::Blob, Value::Blob(b)) => Box::new(b),
                    _ => return Err(bad()),
                });
            }
            let refs: Vec<&(dyn ToSql + Sync)> = values
                .iter()
                .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                .collect();
            writer.as_mut().write(&refs).await.map_err(pg_err)?;
        }
        let n = writer.as_mut().finish().await.map_err(pg_err)?;
        out.push((*table, n));
    }
    drop(conn);
    tx.commit().await.map_err(pg_err)?;
    Ok(out)
}
