//! Live queries: a roster, a search, the event list or a contact, handed
//! to an observer again each time its answer changes — by a write on this
//! device or by changes from the relay — as Couchbase Lite's live queries
//! and Ditto's observers do, so an app shows the answer instead of
//! re-running and diffing queries itself.
//!
//! A [`Watches`] registry belongs to a [`crate::device::Device`]: its
//! notice thread gives each query its first answer, then after every change
//! asks again the queries the changed records may touch (a roster when its
//! event or any contact changed, a search when a contact did, the event
//! list when an event did, a contact when it did) and hands over only an
//! answer that differs from the last one handed over.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, Weak};

use crate::error::Result;
use crate::model::{Contact, DocKind};
use crate::store::{ContactSummary, EventSummary, RosterLine, Store};
use crate::views::SignupStatus;

/// What a live query asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// An event's roster ([`Store::roster`]), only one status if given.
    Roster {
        /// The event.
        event_id: String,
        /// Only the sign-ups in this status.
        status: Option<SignupStatus>,
    },
    /// Contacts matching a search ([`Store::search_contacts`]).
    Search {
        /// What was typed.
        text: String,
        /// At most this many.
        limit: usize,
    },
    /// Every event by start time ([`Store::list_events`]).
    Events,
    /// One contact, whole (`None` once it is gone: erased, out of scope).
    Contact {
        /// The contact.
        id: String,
    },
}

/// A live query's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// For [`Query::Roster`].
    Roster(Vec<RosterLine>),
    /// For [`Query::Search`].
    Contacts(Vec<ContactSummary>),
    /// For [`Query::Events`].
    Events(Vec<EventSummary>),
    /// For [`Query::Contact`].
    Contact(Option<Box<Contact>>),
}

impl Query {
    /// Asks the query of `store`.
    pub fn ask(&self, store: &mut Store) -> Result<Answer> {
        Ok(match self {
            Query::Roster { event_id, status } => Answer::Roster(store.roster(event_id, *status)?),
            Query::Search { text, limit } => Answer::Contacts(store.search_contacts(text, *limit)?),
            Query::Events => Answer::Events(store.list_events()?),
            Query::Contact { id } => match store.contact(id) {
                Ok(c) => Answer::Contact(Some(Box::new(c))),
                Err(crate::Error::NotFound { .. }) => Answer::Contact(None),
                Err(e) => return Err(e),
            },
        })
    }

    /// Whether a change to the records `changed` may change the answer.
    pub fn touched_by(&self, changed: &[String]) -> bool {
        let any = |kind: DocKind| changed.iter().any(|id| DocKind::of_id(id) == Some(kind));
        match self {
            // Names shown, and merges that fold people together.
            Query::Roster { event_id, .. } => {
                changed.iter().any(|id| id == event_id) || any(DocKind::Contact)
            }
            Query::Search { .. } => any(DocKind::Contact),
            Query::Events => any(DocKind::Event),
            // Its own record, or a merge that moves what it shows.
            Query::Contact { .. } => any(DocKind::Contact),
        }
    }
}

/// Hears a live query's answers, on the device's notice thread.
pub trait QueryObserver: Send + Sync {
    /// The query's answer, first when it is set up, then each time it
    /// changes.
    fn answered(&self, answer: Answer);
    /// The query could not be asked (the store failed); it is asked again
    /// at the next change.
    fn failed(&self, message: String) {
        let _ = message;
    }
}

struct Watch {
    query: Query,
    observer: Arc<dyn QueryObserver>,
    last: Option<Answer>,
}

/// The live queries of one device.
#[derive(Default)]
pub struct Watches {
    next: Mutex<u64>,
    watching: Mutex<HashMap<u64, Watch>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watches {
    /// Adds a query; returns its number (its first answer is the caller's
    /// to ask for, [`Watches::answer`]).
    pub(crate) fn add(&self, query: Query, observer: Arc<dyn QueryObserver>) -> u64 {
        let id = {
            let mut next = lock(&self.next);
            *next += 1;
            *next
        };
        lock(&self.watching).insert(
            id,
            Watch {
                query,
                observer,
                last: None,
            },
        );
        id
    }

    /// Ends a query: its observer hears nothing more.
    pub fn remove(&self, id: u64) {
        lock(&self.watching).remove(&id);
    }

    /// How many queries are live.
    pub fn len(&self) -> usize {
        lock(&self.watching).len()
    }

    /// Whether no query is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks query `id` (all of them when `None`, those `changed` may touch
    /// when given) with `read`, and hands each answer that differs from the
    /// last to its observer. Observers are called without the registry
    /// locked (one may add or end a query); one that panics is not heard
    /// from again for this answer, and the others still are.
    pub(crate) fn answer(
        &self,
        only: Option<u64>,
        changed: Option<&[String]>,
        read: &mut dyn FnMut(&Query) -> Result<Answer>,
    ) {
        let due: Vec<(u64, Query)> = lock(&self.watching)
            .iter()
            .filter(|(id, _)| only.is_none_or(|o| o == **id))
            .filter(|(_, w)| changed.is_none_or(|c| w.query.touched_by(c)))
            .map(|(id, w)| (*id, w.query.clone()))
            .collect();
        for (id, query) in due {
            let answer = read(&query);
            let observer = {
                let mut watching = lock(&self.watching);
                let Some(w) = watching.get_mut(&id) else {
                    continue;
                };
                match &answer {
                    Ok(a) if w.last.as_ref() == Some(a) => continue,
                    Ok(a) => w.last = Some(a.clone()),
                    Err(_) => {}
                }
                w.observer.clone()
            };
            let _ = catch_unwind(AssertUnwindSafe(|| match answer {
                Ok(a) => observer.answered(a),
                Err(e) => observer.failed(e.to_string()),
            }));
        }
    }
}

/// A live query, as [`crate::device::Device::watch`] returns it: ends it
/// when asked (dropping it does not).
pub struct Watching {
    pub(crate) id: u64,
    pub(crate) watches: Weak<Watches>,
}

impl Watching {
    /// Ends the query: its observer hears nothing more. Ending it twice, or
    /// after the device closed, does nothing.
    pub fn cancel(&self) {
        if let Some(w) = self.watches.upgrade() {
            w.remove(self.id);
        }
    }
}
