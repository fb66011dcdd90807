//! The store's SQLite schema and its migrations.
//!
//! Two groups of tables:
//!
//! - the *source of truth*: `docs` (one row per document: its kind and its
//!   latest compacted snapshot) and `changes` (every Automerge change not yet
//!   folded into a snapshot, plus every local change the relay has not yet
//!   acknowledged, whether folded or not);
//! - *materialised indexes* (`contacts`, `contacts_fts`, `events`,
//!   `signups`, `shifts`, `feedback`), rewritten from the merged document in
//!   the same transaction as each change, so they are never out of date.
//!   They can always be rebuilt from the documents.
//!
//! Migrations are append-only: never edit one that has shipped, add a new one.

use rusqlite_migration::{M, Migrations};

/// `PRAGMA application_id` of a Muster store ("MUST"), so a foreign SQLite
/// file is recognised and left alone.
pub const APPLICATION_ID: i64 = 0x4D55_5354;

/// The migrations, in order. The schema version of a store is the number of
/// migrations applied (SQLite's `user_version`).
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1), M::up(V2), M::up(V3), M::up(V4), M::up(V5)])
}

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    5
}

/// v5: events' public registration pages. The page's address and whether
/// it is open, from the event's `publication`, so the relay finds the
/// event of `/r/SLUG` without reading every event. A store upgraded from
/// v4 reads them from its events when it is first opened (`Store::init`).
const V5: &str = r#"
ALTER TABLE events ADD COLUMN public_slug TEXT;
ALTER TABLE events ADD COLUMN public_open INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_by_public_slug ON events (public_slug) WHERE public_slug IS NOT NULL;
"#;

/// v4: where a merged contact counts. `merged_link` is the contact's own
/// `merged_into` as its document has it; `merged_into` now holds the
/// contact it counts as, by the one rule of [`crate::merges`] (chains
/// followed to their end, a cycle of concurrent merges kept at its
/// smallest id), so that every query that leaves merged duplicates out
/// agrees with the rule. A v3 store's column held the document's link:
/// it moves over, and `Store::init` settles the rest.
const V4: &str = r#"
ALTER TABLE contacts ADD COLUMN merged_link TEXT;
UPDATE contacts SET merged_link = merged_into;
"#;

/// v3: duplicates and reports. Every phone and email of a contact (not
/// only the first), for finding duplicates without opening 100,000
/// documents; the consent channels and when consent was recorded, for the
/// consent report; and the pairs coordinators marked "not a duplicate".
/// All are index rows, derived from the contacts; a store upgraded from v2
/// rebuilds them from its documents when it is first opened
/// (`Store::init`).
const V3: &str = r#"
ALTER TABLE contacts ADD COLUMN phones TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN emails TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN consent_channels TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN consent_recorded_at INTEGER;
CREATE INDEX contacts_by_merged_into ON contacts (merged_into) WHERE merged_into IS NOT NULL;
CREATE TABLE not_duplicates (
    contact_id TEXT NOT NULL,
    other_id   TEXT NOT NULL,
    PRIMARY KEY (contact_id, other_id)
) STRICT, WITHOUT ROWID;
"#;

/// v2: acknowledgements name changes by hash alone; without this index
/// each one scanned every stored change (an office pushing 90,000 new
/// contacts spent minutes there). Partial, so it holds only what waits.
const V2: &str = r#"
CREATE INDEX changes_pending_by_hash ON changes (hash) WHERE acked = 0;
"#;

const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE docs (
    doc_id       TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    -- Automerge save() of the document at its last compaction, or NULL.
    snapshot     BLOB,
    -- Rows in `changes` for this document.
    change_count INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES docs(doc_id),
    hash   BLOB NOT NULL,
    data   BLOB NOT NULL,
    -- 1 if the change was made on this device.
    local  INTEGER NOT NULL,
    -- 1 once the relay confirmed it holds the change (remote ones are born acked).
    acked  INTEGER NOT NULL,
    UNIQUE (doc_id, hash)
) STRICT;
CREATE INDEX changes_by_doc ON changes (doc_id, seq);
CREATE INDEX changes_pending ON changes (seq) WHERE acked = 0;

CREATE TABLE contacts (
    num           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    sort_name     TEXT NOT NULL,
    phone         TEXT,
    email         TEXT,
    roles         TEXT NOT NULL,
    tags          TEXT NOT NULL,
    household     TEXT,
    organisation  TEXT,
    external_id   TEXT,
    consent_given INTEGER NOT NULL,
    merged_into   TEXT,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX contacts_by_sort_name ON contacts (sort_name);
CREATE INDEX contacts_by_external_id ON contacts (external_id) WHERE external_id IS NOT NULL;

-- Substring search over names, phones and emails. Contentless: the text
-- lives in `contacts`; rowid = contacts.num.
CREATE VIRTUAL TABLE contacts_fts USING fts5 (
    name, phones, emails,
    tokenize = 'trigram remove_diacritics 1',
    content = '',
    contentless_delete = 1
);

CREATE TABLE events (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER,
    place      TEXT NOT NULL,
    capacity   INTEGER,
    status     TEXT NOT NULL,
    registered INTEGER NOT NULL,
    waitlisted INTEGER NOT NULL,
    checked_in INTEGER NOT NULL
) STRICT;
CREATE INDEX events_by_start ON events (starts_at);

CREATE TABLE signups (
    event_id          TEXT NOT NULL,
    contact_id        TEXT NOT NULL,
    status            TEXT NOT NULL,
    registered_at     INTEGER NOT NULL,
    checked_in_at     INTEGER,
    walk_in           INTEGER NOT NULL,
    waitlist_position INTEGER,
    PRIMARY KEY (event_id, contact_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX signups_by_status ON signups (event_id, status, registered_at);
CREATE INDEX signups_by_contact ON signups (contact_id);

CREATE TABLE shifts (
    event_id       TEXT NOT NULL,
    shift_id       TEXT NOT NULL,
    contact_id     TEXT NOT NULL,
    role           TEXT NOT NULL,
    starts_at      INTEGER NOT NULL,
    ends_at        INTEGER NOT NULL,
    minutes_worked INTEGER,
    PRIMARY KEY (event_id, shift_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX shifts_by_contact ON shifts (contact_id);

CREATE TABLE feedback (
    id                TEXT PRIMARY KEY,
    contact_id        TEXT,
    status            TEXT NOT NULL,
    channel           TEXT NOT NULL,
    category          TEXT NOT NULL,
    received_at       INTEGER NOT NULL,
    first_response_at INTEGER,
    resolved_at       INTEGER,
    assigned_to       TEXT
) STRICT;
CREATE INDEX feedback_by_status ON feedback (status, received_at);
"#;

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// `type name tbl_name sql` of every schema object, sorted.
    fn schema_of(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT type, name, tbl_name, ifnull(sql, '') FROM sqlite_schema ORDER BY type, name")
            .unwrap();
        stmt.query_map([], |r| {
            Ok(format!(
                "{} {} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    #[test]
    fn a_store_upgraded_from_v1_equals_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("v1.muster");
        {
            // A store as the first release wrote it.
            let mut conn = Connection::open(&old).unwrap();
            conn.pragma_update(None, "application_id", super::APPLICATION_ID)
                .unwrap();
            rusqlite_migration::Migrations::new(vec![rusqlite_migration::M::up(super::V1)])
                .to_latest(&mut conn)
                .unwrap();
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(version, 1);
        }
        let mut upgraded = crate::Store::open(&old).unwrap();
        let ana = upgraded
            .create_contact(&crate::NewContact::named("Ana Silva"), 1)
            .unwrap();
        assert_eq!(upgraded.contact(&ana).unwrap().name, "Ana Silva");
        drop(upgraded);
        let fresh_path = dir.path().join("fresh.muster");
        drop(crate::Store::open(&fresh_path).unwrap());

        let a = Connection::open(&old).unwrap();
        let b = Connection::open(&fresh_path).unwrap();
        assert_eq!(schema_of(&a), schema_of(&b));
        let version = |c: &Connection| -> i64 {
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(version(&a), super::latest_version());
        assert_eq!(version(&b), super::latest_version());
    }

    #[test]
    fn a_v2_store_gets_its_contact_rows_rebuilt_for_v3() {
        let dir = tempfile::tempdir().unwrap();
        // A contact as any device makes it.
        let mut maker = crate::Store::open_in_memory().unwrap();
        let ana = maker
            .create_contact(
                &crate::NewContact {
                    name: "Ana Silva".into(),
                    phones: vec!["+44 20 7946 0958".into(), "07700 900123".into()],
                    ..Default::default()
                },
                1,
            )
            .unwrap();
        maker
            .update_contact(&ana, 2, |c| {
                c.consent.given = true;
                c.consent.channels.insert("sms".into(), true);
                Ok(())
            })
            .unwrap();
        let changes = maker.changes_of(&ana).unwrap();
        // The same document in a store as schema v2 wrote it.
        let old = dir.path().join("v2.muster");
        {
            let mut conn = Connection::open(&old).unwrap();
            conn.pragma_update(None, "application_id", super::APPLICATION_ID)
                .unwrap();
            rusqlite_migration::Migrations::new(vec![
                rusqlite_migration::M::up(super::V1),
                rusqlite_migration::M::up(super::V2),
            ])
            .to_latest(&mut conn)
            .unwrap();
            conn.execute(
                "INSERT INTO docs (doc_id, kind) VALUES (?1, 'contact')",
                [&ana],
            )
            .unwrap();
            for (i, data) in changes.iter().enumerate() {
                conn.execute(
                    "INSERT INTO changes (doc_id, hash, data, local, acked) VALUES (?1, ?2, ?3, 0, 1)",
                    rusqlite::params![&ana, vec![i as u8; 32], data],
                )
                .unwrap();
            }
        }
        let store = crate::Store::open(&old).unwrap();
        // The second phone is searchable and the consent channel counted:
        // both come from v3 columns the upgrade filled from the document.
        let found = store.search_contacts("900123", 5).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, ana);
        let consent = store.reports().consent(false).unwrap();
        assert_eq!(consent.by_channel.len(), 1);
        assert_eq!(consent.by_channel[0].channel, "sms");
        let phones: String = store
            .conn
            .query_row("SELECT phones FROM contacts WHERE id = ?1", [&ana], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(phones, "+44 20 7946 0958\n07700 900123");
    }

    #[test]
    fn a_v3_store_counts_its_merges_by_the_rule_for_v4() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.muster");
        let new = |name: &str| crate::NewContact::named(name);
        let (x, y, a) = {
            // A cycle of two concurrent merges and a contact merged into
            // one of its members, written by this build...
            let mut s = crate::Store::open(&path).unwrap();
            let x = s.create_contact(&new("Ana Silva"), 1).unwrap();
            let y = s.create_contact(&new("Ana Silva"), 2).unwrap();
            let a = s.create_contact(&new("Ana S."), 3).unwrap();
            for (from, to) in [(&y, &x), (&x, &y), (&a, &y)] {
                s.update_contact(from, 4, |c| {
                    c.merged_into = Some(to.clone());
                    Ok(())
                })
                .unwrap();
            }
            (x, y, a)
        };
        {
            // ...then taken back to what v3 held: the documents' own links.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "UPDATE contacts SET merged_into = merged_link;
                 ALTER TABLE contacts DROP COLUMN merged_link;
                 DROP INDEX events_by_public_slug;
                 ALTER TABLE events DROP COLUMN public_slug;
                 ALTER TABLE events DROP COLUMN public_open;
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        }
        let s = crate::Store::open(&path).unwrap();
        let kept = x.clone().min(y.clone());
        for id in [&x, &y, &a] {
            assert_eq!(s.kept_contact_of(id).unwrap(), kept);
        }
        let found: Vec<String> = s
            .search_contacts("silva", 10)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(found, vec![kept]);
    }

    #[test]
    fn a_v4_store_finds_the_pages_of_events_it_holds_for_v5() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.muster");
        let (event, slug) = {
            // An event published by a newer device, synced here...
            let mut s = crate::Store::open(&path).unwrap();
            let event = s
                .create_event(&crate::NewEvent::new("Food drive", 10_000, "Hall", None), 1)
                .unwrap();
            let page = s.publish_event(&event, None, &[], 2).unwrap();
            (event, page.slug)
        };
        {
            // ...by a v4 build, which had no columns for it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "DROP INDEX events_by_public_slug;
                 ALTER TABLE events DROP COLUMN public_slug;
                 ALTER TABLE events DROP COLUMN public_open;
                 PRAGMA user_version = 4;",
            )
            .unwrap();
        }
        let mut s = crate::Store::open(&path).unwrap();
        let found = s.event_by_slug(&slug).unwrap().map(|e| e.id);
        assert_eq!(found, Some(event));
    }

    #[test]
    fn acknowledging_by_hash_uses_an_index() {
        let conn = Connection::open_in_memory().unwrap();
        let mut conn = conn;
        super::migrations().to_latest(&mut conn).unwrap();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN UPDATE changes SET acked = 1 WHERE hash = ?1 AND acked = 0",
            )
            .unwrap()
            .query_map([b"x".as_slice()], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("changes_pending_by_hash")),
            "{plan:?}"
        );
    }

    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
        assert_eq!(
            super::migrations()
                .pending_migrations(&rusqlite::Connection::open_in_memory().unwrap())
                .unwrap() as i64,
            super::latest_version()
        );
    }
}
