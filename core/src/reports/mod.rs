//! The queries behind the coordinator's reports (`muster report`):
//! attendance per event, volunteer hours, new contacts, donor retention,
//! feedback response times and consent coverage.
//!
//! # Rules every report follows
//!
//! - **SQL over the index tables** wherever they hold the data (events,
//!   sign-ups, shifts, feedback, contacts). Two things live only in the
//!   documents and are read from them: gifts (in the private ledgers, which
//!   have no index rows) and consent channels (the index keeps only whether
//!   consent was given).
//! - **The core never reads the clock**: a report that depends on the
//!   present (what is overdue, which period is under way, which shifts are
//!   still to come) takes `now`.
//! - **Ranges** are `from` (inclusive) to `to` (exclusive), in milliseconds;
//!   either may be open. A range whose end is not after its start is refused.
//! - **Merged duplicates are never counted twice.** A contact whose
//!   `merged_into` is set is left out of every count of contacts, and what
//!   it did (sign-ups, shifts, gifts) counts for the contact it was merged
//!   into, following chains (a duplicate of a duplicate counts for the
//!   contact finally kept).
//! - **Periods** are calendar periods in UTC: ISO weeks (Monday to Sunday,
//!   labelled `2026-W05`), months (`2026-03`), quarters (`2026-Q1`) and
//!   years (`2026`).
//! - **Money** is summed in minor units (cents) per currency, in integers;
//!   amounts in different currencies are never added together.

//!
//! # Shape
//!
//! [`Reports`] is a read-only view of a store ([`crate::Store::reports`]):
//! it holds the store's connection for reading and nothing else, so a
//! report cannot write, and needs no document cache. Each report is one
//! file: `attendance` (events, volunteer hours), `people` (new contacts,
//! consent), `giving` (donors), `feedback`; `period` has the calendar
//! periods (jiff does the calendar), `results` what they return.

use std::collections::{BTreeMap, HashMap, HashSet};

use autosurgeon::Hydrate;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::feedback::FIRST_RESPONSE_TARGET;
use crate::model::{self, DocKind, Millis};
use crate::views::SignupStatus;
use period::Period;

/// One day in milliseconds.
const DAY: Millis = 86_400_000;
/// One minute in milliseconds.
const MINUTE: Millis = 60_000;
/// The most periods one report lists (a century of quarters, or twenty
/// years of weeks): past that, the range or the period is a mistake.
const MAX_PERIODS: i64 = 2_000;

mod attendance;
mod feedback;
mod giving;
mod people;
pub(crate) mod period;
mod results;
#[cfg(test)]
mod tests;

pub use results::*;

/// The reports of one store, read over its connection
/// ([`crate::Store::reports`]).
pub struct Reports<'a> {
    conn: &'a Connection,
    /// The store's device (what "added on this device" means).
    device_id: &'a str,
}

impl<'a> Reports<'a> {
    /// The reports over `conn`, the connection of the store of `device_id`.
    pub(crate) fn over(conn: &'a Connection, device_id: &'a str) -> Reports<'a> {
        Reports { conn, device_id }
    }
}

impl Reports<'_> {
    // ----- helpers ------------------------------------------------------------

    /// Where each merged duplicate's records count.
    fn merges(&self) -> Result<Merges> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, merged_into FROM contacts WHERE merged_into IS NOT NULL")?;
        // The index holds where each counts ([`crate::merges`]).
        let kept = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<HashMap<_, _>>>()?;
        Ok(Merges { kept })
    }

    /// The display name and sort key of each of `ids` this device holds.
    fn names<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<String, (String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, sort_name FROM contacts WHERE id = ?1")?;
        let mut names = HashMap::new();
        for id in ids {
            if names.contains_key(id) {
                continue;
            }
            if let Some(name) = stmt
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
            {
                names.insert(id.to_owned(), name);
            }
        }
        Ok(names)
    }
}

/// The contact each merged duplicate counts as.
struct Merges {
    kept: HashMap<String, String>,
}

impl Merges {
    /// The contact whose records `id`'s count as: itself unless merged.
    fn kept<'a>(&'a self, id: &'a str) -> &'a str {
        self.kept.get(id).map_or(id, String::as_str)
    }
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn in_range(t: Millis, from: Option<Millis>, to: Option<Millis>) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
}

fn check_range(from: Option<Millis>, to: Option<Millis>) -> Result<()> {
    match (from, to) {
        (Some(f), Some(t)) if t <= f => {
            Err(Error::invalid("range", "its end must be after its start"))
        }
        _ => Ok(()),
    }
}

/// The median of sorted values: the middle one, or the mean of the two
/// middle ones (rounded down).
fn median(sorted: &[Millis]) -> Option<Millis> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => {
            let (a, b) = (sorted[n / 2 - 1], sorted[n / 2]);
            Some(a + (b - a) / 2)
        }
    }
}

/// The `percent`th percentile of sorted values by nearest rank: the
/// smallest value with at least `percent`% of the values at or below it.
fn nearest_rank(sorted: &[Millis], percent: usize) -> Option<Millis> {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}
