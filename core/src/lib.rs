//! Muster's engine, shared by the relay, the phones and the office client.
//!
//! - [`model`]: the typed records (contacts, private ledgers, events with
//!   sign-ups and shifts, feedback cases), each one Automerge document, and
//!   the conflicting values of a field after a merge;
//! - [`views`]: rules computed after merge, identically on every replica
//!   (the roster with its waitlist, the check-in versus cancellation rule);
//! - [`validate`]: what people may type, and size limits;
//! - [`store`]: the device's durable SQLite store with its search indexes;
//! - [`sync`]: the sans-IO sync protocol (wire format, client and relay
//!   sessions);
//! - `client` (feature `client`): the tokio driver of a client session;
//! - `device` (feature `client`): a store shared between an app's threads
//!   and a background sync on its own runtime, with change notifications:
//!   what the mobile bindings wrap.
//! - feature `uniffi`: the records the bindings take and return as they
//!   are (`NewContact`, `ContactSummary`, `RosterLine`…), derived for
//!   UniFFI in their own namespace `muster_core`; muster-mobile enables it.
//!
//! The core never reads the clock: every call that records a time takes a
//! `now` in milliseconds since the Unix epoch (a `device` is given a clock).
//!
//! ```
//! use muster_core::{NewContact, NewEvent, Store, SignupStatus};
//!
//! let mut store = Store::open_in_memory()?;
//! let now = 1_700_000_000_000;
//! let ana = store.create_contact(&NewContact::named("Ana Silva"), now)?;
//! let gala = store.create_event(
//!     &NewEvent::new("Gala", now, "Hall", Some(100) ),
//!     now,
//! )?;
//! store.sign_up(&gala, &ana, false, now)?;
//! store.check_in(&gala, &ana, now + 60_000)?;
//! assert_eq!(store.search_contacts("silv", 10)?[0].id, ana);
//! assert_eq!(store.roster(&gala, None)?[0].status, SignupStatus::CheckedIn);
//! # Ok::<(), muster_core::Error>(())
//! ```

#![cfg_attr(not(feature = "uniffi"), forbid(unsafe_code))]

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("muster_core");

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod device;
pub mod duplicates;
pub mod error;
pub mod export;
pub mod import;
#[cfg(feature = "client")]
pub mod live_query;
pub mod merges;
pub mod model;
pub mod money;
pub mod registration;
pub mod reports;
pub mod store;
pub mod sync;
pub mod validate;
pub mod views;

pub use error::{Error, Result};
pub use model::{
    Contact, ContactPrivate, DocKind, Donation, Event, EventEdit, FeedbackCase, FeedbackStatus,
    Interaction, Millis, NewConsent, NewContact, NewEvent, NewFeedback, PageClosed, Pledge,
    Publication, Shift,
};
pub use store::{ContactSummary, EventSummary, PendingChange, RosterLine, Store};
pub use views::{RosterEntry, SignupStatus};
