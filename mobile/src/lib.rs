//! Muster for phone apps: UniFFI bindings of the engine for Kotlin
//! (Android), Swift (iOS) and Python (a coordinator's scripts).
//!
//! One object, [`Muster`], owns a device's store and its background sync
//! (a [`muster_core::device::Device`]); its methods are the calls a check-in
//! app needs. This crate only converts types and errors: the behaviour —
//! threads, the sync runtime, notices — lives in the core.
//!
//! - Every method may be called from any thread at once. Local calls lock
//!   the store briefly and never wait on the network.
//! - `enroll` and `sync_now` are `async` (a Kotlin `suspend fun`, a Swift
//!   `async` method, a Python coroutine): the sync itself runs on the
//!   object's own runtime, so awaiting it never blocks an app's main
//!   thread. Every other call is synchronous and local; `duplicate_pairs`
//!   reads every contact, so call it off the UI thread.
//! - `shutdown` (Python's `close` and `with`) stops sync, lets go of the
//!   listener and closes the store; later calls raise `NotAllowed`.
//! - A [`MusterListener`] the app implements hears which records changed
//!   and how sync is doing, on a thread of the engine's (post to the UI
//!   thread from there).
//! - Errors are one flat [`MusterError`]; its message is for a person.
//!
//! Generate the bindings with `scripts/bindings` (README.md).

#![deny(unsafe_code)]

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use muster_core::device::{self, Device, Origin};
use muster_core::live_query::{Answer, Query, QueryObserver, Watching};

mod error;
mod records;

pub use error::{ListenerError, MusterError, Result};
pub use records::*;

uniffi::setup_scaffolding!("muster");

/// What the app implements to hear from the engine. Calls arrive in order
/// on one engine thread, never on the caller's thread; a listener may call
/// back into the engine. A method that throws loses nothing: the engine
/// says so once, through `on_sync_warning`, and later notices still come.
#[uniffi::export(with_foreign)]
pub trait MusterListener: Send + Sync {
    /// These records changed: written on this device (`from_relay` false)
    /// or received from the relay (true). Refresh what shows them.
    fn on_records_changed(
        &self,
        record_ids: Vec<String>,
        from_relay: bool,
    ) -> std::result::Result<(), ListenerError>;
    /// The sync status changed.
    fn on_sync_status(&self, status: SyncStatus) -> std::result::Result<(), ListenerError>;
    /// The relay refused a change from this device, or sent one that could
    /// not be used, or the listener itself threw; sync goes on.
    fn on_sync_warning(&self, message: String) -> std::result::Result<(), ListenerError>;
    /// The relay refused this device's token (revoked, unknown): sync has
    /// stopped until a person enrolls the device again (scan a new QR
    /// code). Ask for it here rather than watching the status.
    fn on_access_refused(&self, message: String) -> std::result::Result<(), ListenerError>;
    /// What live sync just brought that a coordinator should look at:
    /// merges made elsewhere, conflicting values (settle one with
    /// `resolve_conflict`), sign-ups moved to the waitlist, registrations
    /// made online, new duplicate candidates. The report `sync_now`
    /// returns, for each batch live sync receives that holds any of these.
    fn on_reconciliation(&self, report: Reconciliation) -> std::result::Result<(), ListenerError>;
}

/// Hears a live roster ([`Muster::observe_roster`]): the lines, first at
/// once, then each time they change, on the engine's notice thread.
#[uniffi::export(with_foreign)]
pub trait RosterObserver: Send + Sync {
    /// The roster now.
    fn on_roster(&self, lines: Vec<RosterLine>) -> std::result::Result<(), ListenerError>;
}

/// Hears a live search ([`Muster::observe_search`]).
#[uniffi::export(with_foreign)]
pub trait SearchObserver: Send + Sync {
    /// The contacts matching now.
    fn on_contacts(&self, found: Vec<ContactSummary>) -> std::result::Result<(), ListenerError>;
}

/// Hears the live event list ([`Muster::observe_events`]).
#[uniffi::export(with_foreign)]
pub trait EventsObserver: Send + Sync {
    /// Every event now, by start time.
    fn on_events(&self, events: Vec<EventSummary>) -> std::result::Result<(), ListenerError>;
}

/// Hears a live contact ([`Muster::observe_contact`]).
#[uniffi::export(with_foreign)]
pub trait ContactObserver: Send + Sync {
    /// The contact now; `null` once it is gone (erased, out of scope).
    fn on_contact(&self, contact: Option<Contact>) -> std::result::Result<(), ListenerError>;
}

/// One of the observers above, as the core hears answers.
enum ToObserver {
    Roster(Arc<dyn RosterObserver>),
    Search(Arc<dyn SearchObserver>),
    Events(Arc<dyn EventsObserver>),
    Contact(Arc<dyn ContactObserver>),
}

impl QueryObserver for ToObserver {
    fn answered(&self, answer: Answer) {
        // What an observer throws is its own: the query goes on.
        let _ = match (self, answer) {
            (ToObserver::Roster(o), Answer::Roster(lines)) => {
                o.on_roster(lines.into_iter().map(Into::into).collect())
            }
            (ToObserver::Search(o), Answer::Contacts(found)) => o.on_contacts(found),
            (ToObserver::Events(o), Answer::Events(events)) => {
                o.on_events(events.into_iter().map(Into::into).collect())
            }
            (ToObserver::Contact(o), Answer::Contact(c)) => o.on_contact(c.map(|c| (*c).into())),
            _ => Ok(()),
        };
    }
}

/// A live query: its observer hears its answer until `cancel` (or the
/// store's `shutdown`). Letting go of the object does not end it.
#[derive(uniffi::Object)]
pub struct LiveQuery {
    watching: Watching,
}

#[uniffi::export]
impl LiveQuery {
    /// Ends the query: its observer hears nothing more. Twice does nothing.
    pub fn cancel(&self) {
        self.watching.cancel();
    }
}

/// Passes the core's notices to the app's listener; what the listener
/// throws is told to it once.
struct ToListener {
    listener: Arc<dyn MusterListener>,
    told: std::sync::atomic::AtomicBool,
}

impl ToListener {
    fn delivered(&self, result: std::result::Result<(), ListenerError>) {
        if let Err(e) = result
            && !self.told.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let _ = self.listener.on_sync_warning(format!(
                "the app's listener threw on a notice ({e}); later notices are still delivered"
            ));
        }
    }
}

impl device::Observer for ToListener {
    fn records_changed(&self, ids: Vec<String>, origin: Origin) {
        self.delivered(
            self.listener
                .on_records_changed(ids, origin == Origin::Relay),
        );
    }
    fn sync_status(&self, status: device::SyncStatus) {
        self.delivered(self.listener.on_sync_status(status.into()));
    }
    fn sync_warning(&self, message: String) {
        self.delivered(self.listener.on_sync_warning(message));
    }
    fn access_refused(&self, message: String) {
        self.delivered(self.listener.on_access_refused(message));
    }
    fn reconciled(&self, report: muster_core::store::Reconciliation) {
        self.delivered(self.listener.on_reconciliation(report.into()));
    }
}

/// Each of `items` as the bindings' record.
fn all<T, U: From<T>>(items: Vec<T>) -> Vec<U> {
    items.into_iter().map(Into::into).collect()
}

/// A field's value as `field_conflicts` lists it and `resolve_conflict`
/// takes it back: text as it is, anything else as JSON.
fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn system_clock() -> device::Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

/// The engine on one device: its store and its sync.
#[derive(uniffi::Object)]
pub struct Muster {
    /// `None` once [`Muster::shutdown`] closed it.
    device: RwLock<Option<Device>>,
}

impl Muster {
    fn new(device: Device) -> Arc<Muster> {
        Arc::new(Muster {
            device: RwLock::new(Some(device)),
        })
    }

    /// Runs `f` with the device, or says the store was closed.
    fn with<R>(&self, f: impl FnOnce(&Device) -> muster_core::Result<R>) -> Result<R> {
        let slot = self.device.read().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(d) => Ok(f(d)?),
            None => Err(MusterError::not_allowed(
                "this store was closed (shutdown); open it again to use it",
            )),
        }
    }

    fn watch(&self, query: Query, observer: ToObserver) -> Result<Arc<LiveQuery>> {
        self.with(|d| {
            Ok(Arc::new(LiveQuery {
                watching: d.watch(query, Arc::new(observer)),
            }))
        })
    }

    fn read<R>(
        &self,
        f: impl FnOnce(&mut muster_core::Store) -> muster_core::Result<R>,
    ) -> Result<R> {
        self.with(|d| d.read(f))
    }

    fn write<R>(
        &self,
        f: impl FnOnce(&mut muster_core::Store, i64) -> muster_core::Result<R>,
    ) -> Result<R> {
        self.with(|d| d.write(f))
    }
}

#[uniffi::export]
impl Muster {
    /// Opens the store at `path` (a file in the app's private storage),
    /// creating it if needed.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Muster>> {
        Ok(Muster::new(Device::open(path, None, system_clock())?))
    }

    /// Opens (or creates) a store encrypted with a 32-byte key, which the
    /// app keeps in the Android Keystore or the iOS Keychain.
    #[uniffi::constructor]
    pub fn open_encrypted(path: String, key: Vec<u8>) -> Result<Arc<Muster>> {
        let key: [u8; 32] = key.try_into().map_err(|k: Vec<u8>| MusterError::Invalid {
            reason: format!(
                "invalid key: an encryption key is 32 bytes, not {}",
                k.len()
            ),
            field: "key".into(),
            value: None,
        })?;
        Ok(Muster::new(Device::open(path, Some(&key), system_clock())?))
    }

    /// Stops sync, lets go of the listener and closes the store, now (an
    /// app's `onDestroy`, Python's `close()` or the end of a `with`). Later
    /// calls raise `NotAllowed`; closing twice does nothing.
    pub fn shutdown(&self) {
        let device = self
            .device
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(d) = device {
            d.set_observer(None);
            drop(d);
        }
    }

    /// This device's id, stamped on what it creates.
    pub fn device_id(&self) -> Result<String> {
        self.read(|s| Ok(s.device_id().to_owned()))
    }

    /// Sets the listener (`null` removes it).
    pub fn set_listener(&self, listener: Option<Arc<dyn MusterListener>>) -> Result<()> {
        self.with(|d| {
            d.set_observer(listener.map(|listener| {
                Arc::new(ToListener {
                    listener,
                    told: false.into(),
                }) as Arc<dyn device::Observer>
            }));
            Ok(())
        })
    }

    // ----- contacts -----------------------------------------------------

    /// Registers a new contact; returns its id.
    pub fn create_contact(&self, contact: NewContact) -> Result<String> {
        self.write(|s, now| s.create_contact(&contact, now))
    }

    /// Edits a contact (see [`ContactEdit`]): name, phones, emails, the
    /// address, language, household, organisation, roles, tags, interests
    /// and the organisation's own fields.
    pub fn update_contact(&self, id: String, edit: ContactEdit) -> Result<()> {
        self.write(|s, now| s.edit_contact(&id, &edit, now))
    }

    /// Edits a contact's notes where the person typed: deletes `delete`
    /// characters at `position` and inserts `insert` there. Notes are
    /// collaborative text: two desks typing at once both keep their words.
    pub fn edit_notes(
        &self,
        contact_id: String,
        position: u32,
        delete: u32,
        insert: String,
    ) -> Result<()> {
        self.write(|s, now| {
            s.splice_contact_notes(
                &contact_id,
                position as usize,
                delete as usize,
                &insert,
                now,
            )
        })
    }

    /// Records a contact's consent, stamped with the time and this device.
    pub fn record_consent(&self, contact_id: String, consent: NewConsent) -> Result<()> {
        self.write(|s, now| s.record_consent(&contact_id, &consent, now))
    }

    /// Contacts on this device that may be the person being typed in, best
    /// first (at most 5): call before `create_contact` to ask the volunteer
    /// "maybe the same person as …?".
    pub fn possible_duplicates(&self, contact: NewContact) -> Result<Vec<PossibleDuplicate>> {
        let found = self.read(|s| s.possible_duplicates_of(&contact))?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    /// Contacts that may be the same person as a saved contact, best first
    /// (at most 5; those marked "not a duplicate" left out).
    pub fn possible_duplicates_of_contact(&self, id: String) -> Result<Vec<PossibleDuplicate>> {
        let found = self.read(|s| s.possible_duplicates_of_contact(&id))?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    /// Every likely duplicate pair among the contacts, best first, for a
    /// coordinator's review (as `muster duplicates` and the dashboard list
    /// them). Reads every contact: call it off the UI thread.
    pub fn duplicate_pairs(&self) -> Result<Vec<DuplicatePair>> {
        self.read(|s| s.duplicate_candidates())
    }

    /// Records that two contacts are two people: the pair is never proposed
    /// again, on any device.
    pub fn mark_not_duplicate(&self, a: String, b: String) -> Result<()> {
        self.write(|s, now| s.mark_not_duplicate(&a, &b, now))
    }

    /// Merges `duplicate` into `keep` (a coordinator's decision): the
    /// duplicate leaves searches, its sign-ups and history count for
    /// `keep`, later edits of it land on `keep`. `unmerge` undoes it.
    pub fn merge(&self, keep: String, duplicate: String) -> Result<()> {
        self.write(|s, now| s.merge_contacts(&keep, &duplicate, now))
    }

    /// Undoes a merge: `duplicate` is a contact of its own again.
    pub fn unmerge(&self, duplicate: String) -> Result<()> {
        self.write(|s, now| s.unmerge_contact(&duplicate, now))
    }

    /// Erases a contact from this device at once (its record and private
    /// ledger), and from the relay and every device at the next sync of a
    /// coordinator's device: a person's right to be forgotten.
    pub fn erase_contact(&self, id: String) -> Result<()> {
        self.write(|s, _| s.erase_contact(&id))
    }

    /// A contact, whole.
    pub fn contact(&self, id: String) -> Result<Contact> {
        Ok(self.read(|s| s.contact(&id))?.into())
    }

    /// A contact's private ledger: gifts, pledges and interactions. Only a
    /// coordinator's device holds ledgers; elsewhere it is empty.
    pub fn ledger(&self, contact_id: String) -> Result<Ledger> {
        Ok(self.read(|s| s.contact_private(&contact_id))?.into())
    }

    /// Contacts whose name, phone or email contains every word typed (case
    /// and accents ignored), by name, `limit` from `offset`.
    #[uniffi::method(default(offset = 0))]
    pub fn search_contacts(
        &self,
        text: String,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<ContactSummary>> {
        self.read(|s| s.search_contacts_page(&text, limit as usize, offset as usize))
    }

    /// Contacts by name, `limit` from `offset`.
    pub fn list_contacts(&self, limit: u32, offset: u32) -> Result<Vec<ContactSummary>> {
        self.read(|s| s.list_contacts(limit as usize, offset as usize))
    }

    /// How many contacts this device holds.
    pub fn contact_count(&self) -> Result<i64> {
        self.read(|s| s.contact_count())
    }

    /// Logs a call, visit, email, meeting or message with a contact (kept in
    /// the contact's private ledger, which volunteers' devices never
    /// receive). Returns the entry's id.
    pub fn add_interaction(
        &self,
        contact_id: String,
        channel: String,
        summary: String,
    ) -> Result<String> {
        self.write(|s, now| {
            let interaction = muster_core::model::Interaction {
                id: String::new(),
                channel,
                at: now,
                by: String::new(),
                summary,
            };
            s.add_to_ledger(&contact_id, interaction, now)
        })
    }

    // ----- live queries -------------------------------------------------

    /// An event's roster (only `status` if given), handed to `observer` at
    /// once and again each time it changes, here or from the relay.
    #[uniffi::method(default(status = None))]
    pub fn observe_roster(
        &self,
        event_id: String,
        observer: Arc<dyn RosterObserver>,
        status: Option<SignupStatus>,
    ) -> Result<Arc<LiveQuery>> {
        self.watch(
            Query::Roster { event_id, status },
            ToObserver::Roster(observer),
        )
    }

    /// A search (as `search_contacts`, the first `limit`), handed to
    /// `observer` at once and again each time its results change.
    pub fn observe_search(
        &self,
        text: String,
        limit: u32,
        observer: Arc<dyn SearchObserver>,
    ) -> Result<Arc<LiveQuery>> {
        self.watch(
            Query::Search {
                text,
                limit: limit as usize,
            },
            ToObserver::Search(observer),
        )
    }

    /// Every event, handed to `observer` at once and again each time the
    /// list or an event's counts change.
    pub fn observe_events(&self, observer: Arc<dyn EventsObserver>) -> Result<Arc<LiveQuery>> {
        self.watch(Query::Events, ToObserver::Events(observer))
    }

    /// A contact, whole, handed to `observer` at once and again each time
    /// it changes (`null` once it is gone).
    pub fn observe_contact(
        &self,
        id: String,
        observer: Arc<dyn ContactObserver>,
    ) -> Result<Arc<LiveQuery>> {
        self.watch(Query::Contact { id }, ToObserver::Contact(observer))
    }

    // ----- events -------------------------------------------------------

    /// Creates an event; returns its id.
    pub fn create_event(&self, event: NewEvent) -> Result<String> {
        let event = event.into();
        self.write(|s, now| s.create_event(&event, now))
    }

    /// Edits an event's title, times, place or capacity ([`EventEdit`]):
    /// more seats move the first waiting up, fewer move the last seated
    /// to the waitlist, identically on every device.
    pub fn edit_event(&self, id: String, edit: EventEdit) -> Result<()> {
        let edit = edit.into();
        self.write(|s, now| s.edit_event_fields(&id, &edit, now))
    }

    /// Cancels an event; it stays, with its sign-ups, marked cancelled.
    pub fn cancel_event(&self, id: String) -> Result<()> {
        self.write(|s, now| s.cancel_event(&id, now))
    }

    /// One event with its counts.
    pub fn event(&self, id: String) -> Result<EventSummary> {
        self.read(|s| {
            muster_core::model::check_id(muster_core::DocKind::Event, &id)?;
            s.event_summary(&id)?
                .ok_or_else(|| muster_core::Error::NotFound { kind: "event", id })
        })
        .map(Into::into)
    }

    /// Events by start time, with their counts.
    pub fn list_events(&self) -> Result<Vec<EventSummary>> {
        self.read(|s| s.list_events()).map(all)
    }

    /// Events starting at `from` or later and before `until` (either
    /// `null` for no bound), by start time.
    pub fn events_between(
        &self,
        from: Option<SystemTime>,
        until: Option<SystemTime>,
    ) -> Result<Vec<EventSummary>> {
        self.read(|s| s.events_between(from.map(millis), until.map(millis)))
            .map(all)
    }

    /// Events that have not started yet, soonest first.
    pub fn upcoming_events(&self) -> Result<Vec<EventSummary>> {
        self.with(|d| {
            let now = d.now();
            d.read(|s| s.events_between(Some(now), None))
        })
        .map(all)
    }

    /// Events that have started, most recent first.
    pub fn past_events(&self) -> Result<Vec<EventSummary>> {
        self.with(|d| {
            let now = d.now();
            let mut past = d.read(|s| s.events_between(None, Some(now)))?;
            past.reverse();
            Ok(past)
        })
        .map(all)
    }

    /// Signs a contact up to an event, in advance or at the door
    /// (`walk_in`). Past the event's capacity the sign-up waits on the
    /// waitlist. Registering someone already registered changes nothing.
    pub fn register(&self, event_id: String, contact_id: String, walk_in: bool) -> Result<()> {
        self.write(|s, now| s.sign_up(&event_id, &contact_id, walk_in, now))
    }

    /// Checks a contact in; someone not signed up becomes a walk-in.
    pub fn check_in(&self, event_id: String, contact_id: String) -> Result<()> {
        self.write(|s, now| s.check_in(&event_id, &contact_id, now))
    }

    /// Takes back a check-in made by mistake.
    pub fn undo_check_in(&self, event_id: String, contact_id: String) -> Result<()> {
        self.write(|s, now| s.undo_check_in(&event_id, &contact_id, now))
    }

    /// Cancels a person's sign-up; the first on the waitlist takes the
    /// seat.
    pub fn cancel(&self, event_id: String, contact_id: String) -> Result<()> {
        self.write(|s, now| s.cancel_signup(&event_id, &contact_id, now))
    }

    /// Marks a registered person as not having come (after the event).
    pub fn mark_no_show(&self, event_id: String, contact_id: String) -> Result<()> {
        self.write(|s, now| s.mark_no_show(&event_id, &contact_id, now))
    }

    /// An event's roster in registration order, the waitlist included
    /// (with each waiting person's place), a person once: only those in
    /// `status` if given, `limit` lines (all if `null`) from `offset`.
    #[uniffi::method(default(status = None, limit = None, offset = 0))]
    pub fn roster(
        &self,
        event_id: String,
        status: Option<SignupStatus>,
        limit: Option<u32>,
        offset: u32,
    ) -> Result<Vec<RosterLine>> {
        self.read(|s| {
            s.roster_page(
                &event_id,
                status,
                limit.map(|l| l as usize),
                offset as usize,
            )
        })
        .map(all)
    }

    // ----- feedback and conflicts ---------------------------------------

    /// Opens a feedback case; returns its id.
    pub fn create_feedback(&self, feedback: NewFeedback) -> Result<String> {
        self.write(|s, now| s.create_feedback(&feedback, now))
    }

    /// A feedback case, whole, with its answers.
    pub fn feedback(&self, id: String) -> Result<FeedbackCase> {
        self.with(|d| {
            let now = d.now();
            Ok(FeedbackCase::of(d.read(|s| s.feedback(&id))?, now))
        })
    }

    /// Feedback cases, newest first: `limit` from `offset`, only those in
    /// `status` if given.
    #[uniffi::method(default(status = None, offset = 0))]
    pub fn list_feedback(
        &self,
        limit: u32,
        status: Option<FeedbackStatus>,
        offset: u32,
    ) -> Result<Vec<FeedbackLine>> {
        self.read(|s| s.list_feedback(status, limit as usize, offset as usize))
            .map(all)
    }

    /// Assigns a case to someone who must answer it.
    pub fn assign_feedback(&self, id: String, assignee: String) -> Result<()> {
        self.write(|s, now| s.assign_feedback(&id, &assignee, now))
    }

    /// Records the answer given to the person (the first one ends the
    /// 24-hour wait).
    pub fn answer_feedback(&self, id: String, text: String) -> Result<()> {
        self.write(|s, now| s.respond_feedback(&id, &text, now))
    }

    /// Closes a case, with the person's satisfaction (1 to 5) if asked.
    #[uniffi::method(default(satisfaction = None))]
    pub fn resolve_feedback(&self, id: String, satisfaction: Option<i64>) -> Result<()> {
        self.write(|s, now| s.resolve_feedback(&id, satisfaction, now))
    }

    /// Every value a field of a record holds after devices edited it
    /// concurrently, the one the record shows first; one value when there
    /// was no conflict. `field` is a name such as `name`, or a path such as
    /// `address.city`. Text values are returned as they are, others as JSON.
    pub fn field_conflicts(&self, record_id: String, field: String) -> Result<Vec<String>> {
        let path: Vec<&str> = field.split('.').collect();
        let values = self.read(|s| s.field_conflicts(&record_id, &path))?;
        Ok(values.iter().map(shown).collect())
    }

    /// Settles a conflict on one of the values `field_conflicts` listed
    /// for the field (as it listed it: text as it is, anything else as
    /// JSON): the choice supersedes the others on every device. A value
    /// the field does not hold is refused (`Invalid`), a field without
    /// conflicting values too (`NotAllowed`); nothing is written then.
    pub fn resolve_conflict(&self, record_id: String, field: String, value: String) -> Result<()> {
        let path: Vec<&str> = field.split('.').collect();
        self.write(|s, now| {
            // The value as field_conflicts gave it: text, or JSON for the rest.
            let held = s.field_conflicts(&record_id, &path)?;
            let chosen = held
                .into_iter()
                .find(|v| shown(v) == value)
                .unwrap_or(serde_json::Value::String(value));
            s.resolve_conflict(&record_id, &path, &chosen, now)
        })
    }

    // ----- sync ---------------------------------------------------------

    /// Enrolls this device with a relay (its address, as `https://…`,
    /// `wss://…` or `ws://host:port`) and the token a coordinator created
    /// for it. Checks the token with one sync; a token the relay refuses
    /// raises `Unauthorized` and is not saved, and changes nothing else:
    /// live sync, if it ran, goes on with the enrollment saved before.
    /// After a successful enrollment live sync, if it ran, goes on too.
    /// When the relay cannot be reached the enrollment is saved and
    /// `reached_relay` is false. A device keeps the token it first
    /// enrolled with on a relay: another token for the same store is
    /// refused (a new phone, or a new store, takes a new token).
    pub async fn enroll(&self, relay_url: String, token: String) -> Result<Enrollment> {
        let enrolling = self.with(|d| Ok(d.enroll(&relay_url, &token)))?;
        let found = enrolling.await?;
        let pending = self.read(|s| s.pending_count())?;
        Ok(Enrollment {
            reached_relay: found.reached_relay,
            problem: found.problem,
            summary: SyncSummary::of(&found.report, pending),
        })
    }

    /// Syncs once and returns when the relay has confirmed every local
    /// change: for Android WorkManager and iOS background tasks, and for a
    /// "sync now" button. Pauses live sync meanwhile, if it runs. Given up
    /// after `timeout_ms` if set (a background task's time is short): what
    /// arrived is kept, and `Network` says the sync ran out of time. The
    /// summary carries the reconciliation report (what arrived, merges,
    /// conflicting values, sign-ups moved to the waitlist, new duplicates).
    #[uniffi::method(default(timeout_ms = None))]
    pub async fn sync_now(&self, timeout_ms: Option<u64>) -> Result<SyncSummary> {
        let limit = timeout_ms.map(Duration::from_millis);
        let syncing = self.with(|d| Ok(d.sync_now_within(limit)))?;
        let outcome = syncing.await?;
        let pending = self.read(|s| s.pending_count())?;
        Ok(SyncSummary {
            reconciliation: Some(outcome.reconciliation.into()),
            ..SyncSummary::of(&outcome.report, pending)
        })
    }

    /// Starts live sync in the background: changes flow both ways as they
    /// happen while the relay is reachable, with retries while it is not.
    /// Returns at once.
    pub fn start_sync(&self) -> Result<()> {
        self.with(|d| d.start_live())
    }

    /// Stops live sync. Returns at once.
    pub fn stop_sync(&self) -> Result<()> {
        self.with(|d| {
            d.stop_live();
            Ok(())
        })
    }

    /// The network is back (Android's `ConnectivityManager` callback,
    /// iOS's `NWPathMonitor`): live sync, waiting to retry (its backoff
    /// reaches 60 s), tries at once. Does nothing when connected.
    pub fn network_available(&self) -> Result<()> {
        self.with(|d| {
            d.retry_now();
            Ok(())
        })
    }

    /// The sync status now: what sync is doing, how many local changes wait
    /// for the relay, and when the relay last confirmed some. Local only.
    /// `pending_changes == 0` means this device's changes reached the
    /// relay, not that it holds everyone else's.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        self.with(|d| d.status()).map(Into::into)
    }
}
