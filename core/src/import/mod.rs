//! Importing contacts from a spreadsheet (`muster import contacts`, and the
//! same rules for any app that imports): which column fills which field,
//! which contact each row is about, and what each row changes. Export is
//! its mirror ([`crate::export`]).
//!
//! An import runs in two phases. First every row is read, checked with the
//! store's own validation and matched to an existing contact (by id, then
//! external id, email, phone) or to an earlier row of the file: a malformed
//! file (broken quoting, rows of the wrong length, text that is not UTF-8)
//! stops the import here, before anything is written. Then the contacts are
//! written a batch per transaction ([`Store::write_contacts`]), so an import
//! that is interrupted leaves whole batches or nothing, never half a row; a
//! bad row is skipped with its reason and never stops the others.
//!
//! The caller reads the file and shows progress and the report; nothing
//! here prints.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{Contact, Millis};
use crate::store::{BatchEdit, Store};

mod columns;
mod file;
mod matching;
mod rows;
#[cfg(test)]
mod tests;

pub use columns::{Column, FIELD_NAMES, Field};
pub use file::CsvFile;
use matching::{Matcher, Target};
use rows::{RowPatch, blank};

/// How many rows are written per transaction. Large enough that the
/// durable commit at the end of each is a small part of the cost, small
/// enough that an interrupted import loses little work.
pub const BATCH_ROWS: usize = 1_000;

/// The stages of an import, as a progress bar names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the keys of the store's contacts (counted in contacts).
    Matching,
    /// Reading and checking the file's rows (counted in bytes).
    Reading,
    /// Writing (counted in rows).
    Importing,
}

impl Stage {
    /// `matching`, `reading` or `importing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Matching => "matching",
            Stage::Reading => "reading",
            Stage::Importing => "importing",
        }
    }
}

/// What an import tells its caller as it goes; every method does nothing
/// unless the caller wants it (`&mut ()` wants nothing).
pub trait Progress {
    /// A stage starts, with `total` units of work.
    fn stage(&mut self, _stage: Stage, _total: u64) {}
    /// `done` units of the current stage are done.
    fn advance(&mut self, _done: u64) {}
    /// Something the person importing should know now.
    fn warn(&mut self, _message: &str) {}
}

impl Progress for () {}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The region of phone numbers written without a country code.
    pub region: String,
    /// Check and match everything, write nothing.
    pub dry_run: bool,
    /// The time the import's changes are stamped with.
    pub now: Millis,
}

/// The columns of `file` and the field each fills: `overrides` first
/// (`COLUMN=FIELD` or `COLUMN=ignore`), then guesses from the names; a
/// column named like `id` whose first values are no Muster ids is read
/// as another system's id.
pub fn map_columns(file: &CsvFile, overrides: &[String]) -> Result<Vec<Column>> {
    let headers = file.headers()?;
    let mut columns = columns::map_columns(&headers, overrides)?;
    let mut sample = Vec::new();
    let mut reader = file.reader();
    for record in reader.records().take(100) {
        // Problems are reported, with their row, by the full read.
        let Ok(record) = record else { break };
        sample.push(record.iter().map(str::to_owned).collect::<Vec<_>>());
    }
    columns::reconsider_id_column(&mut columns, &sample);
    Ok(columns)
}

/// Refuses a mapping that could match or create nothing. Returns whether
/// a column gives the name (without one, rows that match no contact are
/// skipped).
pub fn check_mapping(columns: &[Column]) -> Result<bool> {
    let fields: HashSet<String> = columns
        .iter()
        .filter_map(|c| c.field.as_ref().map(Field::name))
        .collect();
    let identifies = [
        "id",
        "name",
        "first_name",
        "last_name",
        "external_id",
        "email",
        "phone",
    ];
    if !identifies.iter().any(|f| fields.contains(*f)) {
        let headers: Vec<String> = columns.iter().map(|c| c.header.clone()).collect();
        return Err(Error::BadImport(format!(
            "no column gives a name, id, external id, email or phone, so no row could be matched or created; the columns are {}. Name them with --map COLUMN=FIELD (fields: {FIELD_NAMES})",
            columns::quoted_list(&headers)
        )));
    }
    Ok(["name", "first_name", "last_name"]
        .iter()
        .any(|f| fields.contains(*f)))
}

/// Imports the contacts of `file`, its columns read as `columns`
/// ([`map_columns`]): the two phases of the module documentation.
pub fn import_contacts(
    store: &mut Store,
    file: &CsvFile,
    columns: &[Column],
    options: &ImportOptions,
    progress: &mut dyn Progress,
) -> Result<ImportReport> {
    // Phase 1: read, check and match every row; nothing is written. What
    // a row changes is read again when it is written (`patches` below):
    // holding every row's values took 0.8 kB a row.
    let region = options.region.as_str();
    let mut matcher = Matcher::load(store, region, progress)?;
    let mut rows: Vec<RowState> = Vec::new();
    let headers = file.headers()?;
    file::read_rows(file, &headers, progress, |row, at, cells| {
        let index = rows.len();
        if cells.iter().all(|c| c.trim().is_empty()) {
            // Spreadsheets leave blank rows (`,,,,`) below the data: they
            // say nothing and are passed over.
            return Ok(());
        }
        let placed =
            RowPatch::parse(&cells, columns, region).and_then(|patch| matcher.place(&patch, index));
        rows.push(match placed {
            Err(reason) => RowState {
                row,
                at,
                outcome: Outcome::Skipped(reason),
                target: None,
                matched_by: None,
            },
            Ok((target, by)) => RowState {
                row,
                at,
                outcome: Outcome::Pending,
                target: Some(target),
                matched_by: by,
            },
        });
        Ok(())
    })?;
    let targets = std::mem::take(&mut matcher.targets);
    drop(matcher);

    // Phase 2: a batch of contacts at a time, decide what each row changes
    // and write the batch in one transaction.
    let to_write: usize = targets.iter().map(|t| t.rows.len()).sum();
    progress.stage(Stage::Importing, to_write as u64);
    let now = options.now;
    let mut created_ids: Vec<Option<String>> = vec![None; targets.len()];
    let mut written = 0;
    let mut start = 0;
    let mut again = file::RowReader::new(file);
    while start < targets.len() {
        let mut end = start;
        let mut batch_rows = 0;
        while end < targets.len() && (end == start || batch_rows < BATCH_ROWS) {
            batch_rows += targets[end].rows.len();
            end += 1;
        }
        let existing: Vec<String> = targets[start..end]
            .iter()
            .filter_map(|t| t.contact.clone())
            .collect();
        // The batch's rows, read and checked again as in phase 1.
        let mut patches: HashMap<usize, RowPatch> = HashMap::new();
        for target in &targets[start..end] {
            for &r in &target.rows {
                let cells = again.row_at(rows[r].at, rows[r].row, &headers)?;
                let patch = RowPatch::parse(&cells, columns, region).map_err(|reason| {
                    Error::BadImport(format!(
                        "{}: row {} reads differently the second time ({reason}); nothing more was imported",
                        file.name(),
                        rows[r].row
                    ))
                })?;
                patches.insert(r, patch);
            }
        }
        let mut current: HashMap<String, Contact> = existing
            .iter()
            .cloned()
            .zip(store.contacts_by_id(&existing)?)
            .filter_map(|(id, c)| c.map(|c| (id, c)))
            .collect();
        let mut creates: Vec<Contact> = Vec::new();
        let mut created_for: Vec<usize> = Vec::new();
        let mut updates: Vec<(String, BatchEdit<'_>)> = Vec::new();
        for (t, target) in targets.iter().enumerate().take(end).skip(start) {
            let original = match &target.contact {
                None => None,
                Some(id) => match current.remove(id) {
                    Some(mut c) => {
                        // Compare with the contact as it would be written.
                        let stored = c.clone();
                        if c.normalise().is_err() {
                            c = stored;
                        }
                        Some(c)
                    }
                    None => {
                        for &r in &target.rows {
                            rows[r].outcome = Outcome::Skipped(format!(
                                "matches {id}, which is no longer on this device"
                            ));
                        }
                        continue;
                    }
                },
            };
            let mut state = original.clone();
            let mut accepted: Vec<usize> = Vec::new();
            for &r in &target.rows {
                let patch = &patches[&r];
                let mut next = match &state {
                    Some(c) => c.clone(),
                    None => match &patch.edit.name {
                        None => {
                            rows[r].outcome = Outcome::Skipped("missing name".into());
                            continue;
                        }
                        Some(name) => match blank(name) {
                            Ok(c) => c,
                            Err(e) => {
                                rows[r].outcome = Outcome::Skipped(e.to_string());
                                continue;
                            }
                        },
                    },
                };
                patch.apply(&mut next, region);
                if let Err(e) = next.normalise() {
                    rows[r].outcome = Outcome::Skipped(e.to_string());
                    continue;
                }
                rows[r].outcome = match &state {
                    None => Outcome::Created,
                    Some(before) if *before != next => Outcome::Updated,
                    Some(_) => Outcome::Unchanged,
                };
                state = Some(next);
                accepted.push(r);
            }
            if target.contact.is_some() && state == original {
                // Rows that undo each other (a name spelt two ways) leave
                // the contact as it was: none of them changed it.
                for &r in &accepted {
                    rows[r].outcome = Outcome::Unchanged;
                }
            }
            match (&target.contact, state) {
                (None, Some(contact)) => {
                    creates.push(contact);
                    created_for.push(t);
                }
                (Some(id), Some(contact)) if Some(&contact) != original.as_ref() => {
                    let mine: Vec<&RowPatch> = accepted.iter().map(|&r| &patches[&r]).collect();
                    updates.push((
                        id.clone(),
                        Box::new(move |c: &mut Contact| {
                            for p in mine {
                                p.apply(c, region);
                            }
                            Ok(())
                        }),
                    ));
                }
                _ => {}
            }
        }
        if !options.dry_run {
            let (ids, _) =
                store
                    .write_contacts(creates, updates, now)
                    .map_err(|e| Error::ImportStopped {
                        written,
                        total: to_write,
                        batch: BATCH_ROWS,
                        source: Box::new(e),
                    })?;
            for (t, id) in created_for.into_iter().zip(ids) {
                created_ids[t] = Some(id);
            }
        }
        written += batch_rows;
        progress.advance(written as u64);
        start = end;
    }

    Ok(build_report(
        file,
        options,
        columns,
        &rows,
        &targets,
        &created_ids,
    ))
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Matched or placed, not yet decided.
    Pending,
    Created,
    Updated,
    Unchanged,
    Skipped(String),
}

/// One row of the file as the import sees it.
struct RowState {
    row: usize,
    /// Where the row starts in the file ([`file::RowReader::row_at`]).
    at: u64,
    outcome: Outcome,
    target: Option<usize>,
    matched_by: Option<&'static str>,
}

/// What an import did, row by row: the report of `muster import contacts
/// --json` (README: "Import and export", a contract like `--json`).
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// The file (as the caller named it).
    pub file: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// The region of phone numbers without a country code.
    pub phone_region: String,
    /// Each column and the field it filled.
    pub columns: Vec<ColumnJson>,
    /// Data rows read (blank rows passed over are not counted).
    pub rows_read: usize,
    /// Rows that created a contact.
    pub created: usize,
    /// Rows that changed a contact.
    pub updated: usize,
    /// Rows that changed nothing.
    pub unchanged: usize,
    /// Rows skipped, each with its reason in `skipped_rows`.
    pub skipped: usize,
    /// Why each skipped row was skipped.
    pub skipped_rows: Vec<SkippedJson>,
    /// Every row not skipped, with the contact it went to.
    pub rows: Vec<RowJson>,
}

/// A column of the file and the field it filled.
#[derive(Debug, Serialize)]
pub struct ColumnJson {
    /// The column's name.
    pub column: String,
    /// The field (`None`: ignored).
    pub field: Option<String>,
    /// Why, when it is not plain.
    pub note: Option<String>,
}

/// A row skipped.
#[derive(Debug, Serialize)]
pub struct SkippedJson {
    /// Its number (the header is row 1).
    pub row: usize,
    /// Why, as a person can act on it.
    pub reason: String,
}

/// A row imported.
#[derive(Debug, Serialize)]
pub struct RowJson {
    /// Its number (the header is row 1).
    pub row: usize,
    /// `created`, `updated` or `unchanged`.
    pub outcome: &'static str,
    /// The contact it went to (`None` in a dry run that would create it).
    pub contact_id: Option<String>,
    /// `id`, `external_id`, `email` or `phone`; `None` for a new contact.
    pub matched_by: Option<&'static str>,
    /// The earlier row about the same contact, if any.
    pub same_as_row: Option<usize>,
}

fn build_report(
    file: &CsvFile,
    options: &ImportOptions,
    columns: &[Column],
    rows: &[RowState],
    targets: &[Target],
    created_ids: &[Option<String>],
) -> ImportReport {
    // The first row of each target that was imported: later rows about the
    // same contact are "the same as" it.
    let mut first_row: Vec<Option<usize>> = vec![None; targets.len()];
    let mut report = ImportReport {
        file: file.name().to_owned(),
        dry_run: options.dry_run,
        phone_region: options.region.clone(),
        columns: columns
            .iter()
            .map(|c| ColumnJson {
                column: c.header.clone(),
                field: c.field.as_ref().map(Field::name),
                note: c.note.clone(),
            })
            .collect(),
        rows_read: rows.len(),
        created: 0,
        updated: 0,
        unchanged: 0,
        skipped: 0,
        skipped_rows: Vec::new(),
        rows: Vec::new(),
    };
    for r in rows {
        let outcome = match &r.outcome {
            Outcome::Skipped(reason) => {
                report.skipped += 1;
                report.skipped_rows.push(SkippedJson {
                    row: r.row,
                    reason: reason.clone(),
                });
                continue;
            }
            Outcome::Pending => {
                // Cannot happen: every placed row is decided in phase 2.
                continue;
            }
            Outcome::Created => {
                report.created += 1;
                "created"
            }
            Outcome::Updated => {
                report.updated += 1;
                "updated"
            }
            Outcome::Unchanged => {
                report.unchanged += 1;
                "unchanged"
            }
        };
        let Some(t) = r.target else { continue };
        let same_as_row = match first_row[t] {
            Some(first) => Some(first),
            None => {
                first_row[t] = Some(r.row);
                None
            }
        };
        report.rows.push(RowJson {
            row: r.row,
            outcome,
            contact_id: targets[t]
                .contact
                .clone()
                .or_else(|| created_ids[t].clone()),
            matched_by: r.matched_by,
            same_as_row,
        });
    }
    report
}
