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
//!   `async` method): the sync itself runs on the object's own runtime, so
//!   awaiting it never blocks an app's main thread.
//! - A [`MusterListener`] the app implements hears which records changed
//!   and how sync is doing, on a thread of the engine's (post to the UI
//!   thread from there).
//! - Errors are one flat [`MusterError`]; its message is for a person.
//!
//! Generate the bindings with `scripts/bindings` (README.md).

#![deny(unsafe_code)]

use std::sync::Arc;

use muster_core::device::{self, Device, Origin};
use muster_core::model::Interaction;

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
        self.delivered(self.listener.on_sync_status(status));
    }
    fn sync_warning(&self, message: String) {
        self.delivered(self.listener.on_sync_warning(message));
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
    device: Device,
}

#[uniffi::export]
impl Muster {
    /// Opens the store at `path` (a file in the app's private storage),
    /// creating it if needed.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Muster>> {
        Ok(Arc::new(Muster {
            device: Device::open(path, None, system_clock())?,
        }))
    }

    /// Opens (or creates) a store encrypted with a 32-byte key, which the
    /// app keeps in the Android Keystore or the iOS Keychain.
    #[uniffi::constructor]
    pub fn open_encrypted(path: String, key: Vec<u8>) -> Result<Arc<Muster>> {
        let key: [u8; 32] = key.try_into().map_err(|k: Vec<u8>| {
            MusterError::Invalid(format!(
                "invalid key: an encryption key is 32 bytes, not {}",
                k.len()
            ))
        })?;
        Ok(Arc::new(Muster {
            device: Device::open(path, Some(&key), system_clock())?,
        }))
    }

    /// This device's id, stamped on what it creates.
    pub fn device_id(&self) -> Result<String> {
        Ok(self.device.read(|s| Ok(s.device_id().to_owned()))?)
    }

    /// Sets the listener (`null` removes it).
    pub fn set_listener(&self, listener: Option<Arc<dyn MusterListener>>) {
        self.device.set_observer(listener.map(|listener| {
            Arc::new(ToListener {
                listener,
                told: false.into(),
            }) as Arc<dyn device::Observer>
        }));
    }

    // ----- contacts -----------------------------------------------------

    /// Registers a new contact; returns its id.
    pub fn create_contact(&self, contact: NewContact) -> Result<String> {
        Ok(self
            .device
            .write(|s, now| s.create_contact(&contact, now))?)
    }

    /// Edits a contact (see [`ContactEdit`]).
    pub fn update_contact(&self, id: String, edit: ContactEdit) -> Result<()> {
        Ok(self
            .device
            .write(|s, now| s.edit_contact(&id, &edit, now))?)
    }

    /// Records a contact's consent, stamped with the time and this device.
    pub fn record_consent(&self, contact_id: String, consent: NewConsent) -> Result<()> {
        Ok(self
            .device
            .write(|s, now| s.record_consent(&contact_id, &consent, now))?)
    }

    /// Contacts on this device that may be the person being typed in, best
    /// first (at most 5): call before `create_contact` to ask the volunteer
    /// "maybe the same person as …?".
    pub fn possible_duplicates(&self, contact: NewContact) -> Result<Vec<PossibleDuplicate>> {
        let found = self.device.read(|s| s.possible_duplicates_of(&contact))?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    /// Merges `duplicate` into `keep` (a coordinator's decision): the
    /// duplicate leaves searches, its sign-ups and history count for
    /// `keep`, later edits of it land on `keep`. `unmerge` undoes it.
    pub fn merge(&self, keep: String, duplicate: String) -> Result<()> {
        Ok(self
            .device
            .write(|s, now| s.merge_contacts(&keep, &duplicate, now))?)
    }

    /// Undoes a merge: `duplicate` is a contact of its own again.
    pub fn unmerge(&self, duplicate: String) -> Result<()> {
        Ok(self
            .device
            .write(|s, now| s.unmerge_contact(&duplicate, now))?)
    }

    /// A contact, whole.
    pub fn contact(&self, id: String) -> Result<Contact> {
        Ok(self.device.read(|s| s.contact(&id))?.into())
    }

    /// Contacts whose name, phone or email contains every word typed (case
    /// and accents ignored), by name, at most `limit`.
    pub fn search_contacts(&self, text: String, limit: u32) -> Result<Vec<ContactSummary>> {
        let found = self
            .device
            .read(|s| s.search_contacts(&text, limit as usize))?;
        Ok(found)
    }

    /// Contacts by name, `limit` from `offset`.
    pub fn list_contacts(&self, limit: u32, offset: u32) -> Result<Vec<ContactSummary>> {
        let page = self
            .device
            .read(|s| s.list_contacts(limit as usize, offset as usize))?;
        Ok(page)
    }

    /// How many contacts this device holds.
    pub fn contact_count(&self) -> Result<i64> {
        Ok(self.device.read(|s| s.contact_count())?)
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
        Ok(self.device.write(|s, now| {
            let interaction = Interaction {
                id: String::new(),
                channel,
                at: now,
                by: String::new(),
                summary,
            };
            s.add_to_ledger(&contact_id, interaction, now)
        })?)
    }

    // ----- events -------------------------------------------------------

    /// Creates an event; returns its id.
    pub fn create_event(&self, event: NewEvent) -> Result<String> {
        Ok(self.device.write(|s, now| s.create_event(&event, now))?)
    }

    /// Events by start time, with their counts.
    pub fn list_events(&self) -> Result<Vec<EventSummary>> {
        let events = self.device.read(|s| s.list_events())?;
        Ok(events)
    }

    /// Signs a contact up to an event, in advance or at the door
    /// (`walk_in`). Past the event's capacity the sign-up waits on the
    /// waitlist. Registering someone already registered changes nothing.
    pub fn register(&self, event_id: String, contact_id: String, walk_in: bool) -> Result<()> {
        self.on_event(|s, now| s.sign_up(&event_id, &contact_id, walk_in, now))
    }

    /// Checks a contact in; someone not signed up becomes a walk-in.
    pub fn check_in(&self, event_id: String, contact_id: String) -> Result<()> {
        self.on_event(|s, now| s.check_in(&event_id, &contact_id, now))
    }

    /// Takes back a check-in made by mistake.
    pub fn undo_check_in(&self, event_id: String, contact_id: String) -> Result<()> {
        self.on_event(|s, now| s.undo_check_in(&event_id, &contact_id, now))
    }

    /// Cancels a sign-up; the first on the waitlist takes the seat.
    pub fn cancel(&self, event_id: String, contact_id: String) -> Result<()> {
        self.on_event(|s, now| s.cancel_signup(&event_id, &contact_id, now))
    }

    /// An event's roster in registration order, the waitlist included
    /// (with each waiting contact's place).
    pub fn roster(&self, event_id: String) -> Result<Vec<RosterLine>> {
        let lines = self.device.read(|s| s.roster(&event_id, None))?;
        Ok(lines)
    }

    // ----- feedback and conflicts ---------------------------------------

    /// Opens a feedback case; returns its id.
    pub fn create_feedback(&self, feedback: NewFeedback) -> Result<String> {
        Ok(self
            .device
            .write(|s, now| s.create_feedback(&feedback, now))?)
    }

    /// Every value a field of a record holds after devices edited it
    /// concurrently, the one the record shows first; one value when there
    /// was no conflict. `field` is a name such as `name`, or a path such as
    /// `address.city`. Text values are returned as they are, others as JSON.
    pub fn field_conflicts(&self, record_id: String, field: String) -> Result<Vec<String>> {
        let path: Vec<&str> = field.split('.').collect();
        let values = self.device.read(|s| s.field_conflicts(&record_id, &path))?;
        Ok(values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect())
    }

    // ----- sync ---------------------------------------------------------

    /// Enrolls this device with a relay (its address, as `https://…`,
    /// `wss://…` or `ws://host:port`) and the token a coordinator created
    /// for it. Checks the token with one sync; a token the relay refuses
    /// raises `Unauthorized` and is not saved. When the relay cannot be
    /// reached the enrollment is saved and `reached_relay` is false.
    pub async fn enroll(&self, relay_url: String, token: String) -> Result<Enrollment> {
        let found = self.device.enroll(&relay_url, &token).await?;
        let pending = self.device.read(|s| s.pending_count())?;
        Ok(Enrollment {
            reached_relay: found.reached_relay,
            problem: found.problem,
            summary: SyncSummary::of(&found.report, pending),
        })
    }

    /// Syncs once and returns when the relay has confirmed every local
    /// change: for Android WorkManager and iOS background tasks, and for a
    /// "sync now" button. Pauses live sync meanwhile, if it runs. The
    /// summary carries the reconciliation report (what arrived, merges,
    /// conflicting values, sign-ups moved to the waitlist, new duplicates).
    pub async fn sync_now(&self) -> Result<SyncSummary> {
        let outcome = self.device.sync_now().await?;
        let pending = self.device.read(|s| s.pending_count())?;
        Ok(SyncSummary {
            reconciliation: Some(outcome.reconciliation.into()),
            ..SyncSummary::of(&outcome.report, pending)
        })
    }

    /// Starts live sync in the background: changes flow both ways as they
    /// happen while the relay is reachable, with retries while it is not.
    /// Returns at once.
    pub fn start_sync(&self) -> Result<()> {
        Ok(self.device.start_live()?)
    }

    /// Stops live sync. Returns at once.
    pub fn stop_sync(&self) {
        self.device.stop_live();
    }

    /// The sync status now: what sync is doing, how many local changes wait
    /// for the relay, and when the relay last confirmed some. Local only.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        Ok(self.device.status()?)
    }
}

impl Muster {
    fn on_event(
        &self,
        f: impl FnOnce(&mut muster_core::Store, i64) -> muster_core::Result<()>,
    ) -> Result<()> {
        Ok(self.device.write(f)?)
    }
}
