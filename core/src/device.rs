//! The engine as an app holds it (feature `client`): one device store shared
//! between the app's threads and a background sync on the device's own
//! tokio runtime.
//!
//! A phone app, or anything else with a UI thread, needs three things the
//! plain [`Store`] does not give:
//!
//! - **Many callers at once.** Every method takes `&self`; the store sits
//!   behind a mutex that each call, and each step of a sync, holds only
//!   briefly. Local calls never wait on the network.
//! - **Sync off the caller's thread.** [`Device::start_live`] runs
//!   [`client::sync_live`] on the device's runtime; [`Device::sync_now`]
//!   runs a one-shot sync there and can be awaited from any executor (a
//!   Kotlin coroutine, a Swift task, Python's asyncio), which suits
//!   Android WorkManager and iOS background tasks.
//! - **Notifications.** An [`Observer`] hears which records changed (by a
//!   local write or from the relay) and how sync is doing. Notices are
//!   delivered in order on one thread of the device's own, never on the
//!   caller's thread and never while the store is locked, so an observer may
//!   call back into the device.
//!
//! The core still never reads the clock: the device is given one.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use crate::client::{self, Status, SyncReport};
use crate::error::{Error, Result};
use crate::live_query::{Answer, Query, QueryObserver, Watches, Watching};
use crate::model::Millis;
use crate::store::{Baseline, Reconciliation, Store};

/// The clock a device stamps its writes with, in milliseconds since the
/// Unix epoch.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// What a sync is doing now, as a sync indicator shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SyncActivity {
    /// No sync is running (never started, stopped, or a one-shot sync
    /// finished).
    Idle,
    /// Opening a connection (attempt number from 1).
    Connecting {
        /// Attempt number.
        attempt: u32,
    },
    /// Receiving: `done` of `total` log entries.
    Pulling {
        /// Entries covered.
        done: u64,
        /// Entries to cover.
        total: u64,
    },
    /// Sending local changes.
    Pushing {
        /// Changes in the last message.
        changes: u64,
    },
    /// Connected and caught up; changes flow both ways as they happen.
    Live,
    /// Not connected; live sync retries in `retry_in_ms`.
    Offline {
        /// Why the last attempt ended.
        reason: String,
        /// Delay before the next attempt, in milliseconds.
        retry_in_ms: u64,
    },
    /// Sync stopped on an error. `permanent` errors (a revoked or unknown
    /// token, an unsupported protocol) need a person: live sync does not
    /// retry them.
    Failed {
        /// What went wrong, for a person.
        message: String,
        /// Whether retrying cannot help.
        permanent: bool,
    },
}

/// The sync status a volunteer checks before handing the phone back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// What sync is doing now.
    pub activity: SyncActivity,
    /// Local changes the relay has not confirmed yet. Zero means everything
    /// typed on this device is safe on the relay.
    pub pending_changes: i64,
    /// When the relay last confirmed changes from this device.
    pub last_confirmed_at: Option<Millis>,
    /// Whether the store is enrolled with a relay.
    pub enrolled: bool,
    /// Whether live sync is running (including while offline and retrying).
    pub live: bool,
}

/// Where a change to records came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A write made through this device.
    Local,
    /// Changes received from the relay.
    Relay,
}

/// Receives a device's notices, in order, on the device's notice thread.
pub trait Observer: Send + Sync {
    /// These records changed.
    fn records_changed(&self, ids: Vec<String>, origin: Origin);
    /// The sync status changed.
    fn sync_status(&self, status: SyncStatus);
    /// The relay refused a local change, or an entry from it could not be
    /// used; sync goes on.
    fn sync_warning(&self, message: String);
    /// The relay refused this device's token (revoked, unknown, or its
    /// device id enrolled with another): sync stopped until a person
    /// enrolls the device again. Told once each time it happens, besides
    /// the status (`Failed`, permanent).
    fn access_refused(&self, message: String) {
        let _ = message;
    }
    /// What a coordinator should look at in what live sync just brought
    /// (merges made elsewhere, conflicting values, sign-ups moved to the
    /// waitlist, registrations made online, new duplicates): the report
    /// `sync_now` returns, for each batch live sync receives that holds
    /// anything of the kind.
    fn reconciled(&self, report: Reconciliation) {
        let _ = report;
    }
}

/// What [`Device::sync_now`] did: what moved, and the reconciliation
/// report a coordinator reads afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOutcome {
    /// What moved.
    pub report: SyncReport,
    /// What arrived, merged, conflicts, waitlist moves, new duplicates.
    pub reconciliation: Reconciliation,
}

/// What [`Device::enroll`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// Whether the relay was reached and accepted the token. When it was
    /// not reachable, the enrollment is saved anyway and later syncs use it.
    pub reached_relay: bool,
    /// Why the relay was not reached, if it was not.
    pub problem: Option<String>,
    /// What the first sync moved (empty when the relay was not reached).
    pub report: SyncReport,
}

enum Notice {
    Changed(Vec<String>, Origin),
    Status(SyncStatus),
    Warning(String),
    Refused(String),
    Reconciled(Box<Reconciliation>),
    /// A live query was set up: its first answer is due.
    Watch(u64),
}

/// State shared with the sync tasks and the notice thread.
struct Shared {
    /// A second connection for [`Device::read`] ([`Store::reader`]), so
    /// reads wait for no write and no sync; `None` for a store in memory.
    /// Declared before `store` so that it closes first: the writer, closing
    /// last, folds the WAL into the file and removes it, as it did alone.
    reader: Option<Mutex<Store>>,
    store: Mutex<Store>,
    clock: Clock,
    activity: Mutex<SyncActivity>,
    live: Mutex<Option<LiveSync>>,
    notices: Mutex<Option<mpsc::Sender<Notice>>>,
    /// Cuts live sync's wait before its next attempt ([`Device::retry_now`]).
    retry: Notify,
    /// What the device held before live sync's next batch, for its
    /// reconciliation report.
    live_baseline: Mutex<Option<Baseline>>,
    /// The live queries ([`Device::watch`]), answered on the notice thread.
    watches: Arc<Watches>,
}

/// The live sync task and how to stop it (`stop` is taken once asked).
struct LiveSync {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// Set once stopping is asked: what the session reports after that no
    /// longer changes the device's activity (it is `Idle`).
    stopping: Arc<AtomicBool>,
}

impl LiveSync {
    fn running(&self) -> bool {
        self.stop.is_some() && !self.task.is_finished()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn notify(&self, notice: Notice) {
        if let Some(tx) = &*lock(&self.notices) {
            // The thread is gone only while the device is being dropped.
            let _ = tx.send(notice);
        }
    }

    fn status(&self) -> Result<SyncStatus> {
        let activity = lock(&self.activity).clone();
        let live = lock(&self.live).as_ref().is_some_and(LiveSync::running);
        // Read where reads go: a sync step holding the writer is not waited for.
        let store = lock(self.reader.as_ref().unwrap_or(&self.store));
        Ok(SyncStatus {
            activity,
            pending_changes: store.pending_count()?,
            last_confirmed_at: store.last_acknowledged_at()?,
            enrolled: client::enrollment(&store)?.is_some(),
            live,
        })
    }

    fn set_activity(&self, activity: SyncActivity) {
        self.set_activity_unless(activity, None);
    }

    /// Sets the activity unless `stopping` is set; checked under the
    /// activity's lock, so a session being stopped cannot overwrite the
    /// `Idle` that stopping it sets.
    fn set_activity_unless(&self, activity: SyncActivity, stopping: Option<&AtomicBool>) {
        {
            let mut now = lock(&self.activity);
            if stopping.is_some_and(|s| s.load(Ordering::SeqCst)) {
                return;
            }
            *now = activity;
        }
        if let Ok(status) = self.status() {
            self.notify(Notice::Status(status));
        }
    }

    /// Turns the client's progress into notices.
    fn on_status(&self, status: Status) {
        self.on_session_status(status, None);
    }

    /// [`Shared::on_status`] for a session that is stopped once `stopping`
    /// is set: records it changed are still told, its activity no more.
    fn on_session_status(&self, status: Status, stopping: Option<&AtomicBool>) {
        let set = |activity| self.set_activity_unless(activity, stopping);
        match status {
            Status::Connecting { attempt } => set(SyncActivity::Connecting { attempt }),
            Status::Pulling { done, total } => set(SyncActivity::Pulling { done, total }),
            Status::Pushing { changes } => set(SyncActivity::Pushing {
                changes: changes as u64,
            }),
            Status::CaughtUp => set(SyncActivity::Live),
            Status::Changed { docs } => {
                if stopping.is_some() {
                    self.reconcile_live(&docs);
                }
                self.notify(Notice::Changed(docs, Origin::Relay))
            }
            Status::Offline { reason, retry_in } => {
                let retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
                set(SyncActivity::Offline {
                    reason,
                    retry_in_ms,
                })
            }
            Status::Warning(w) => self.notify(Notice::Warning(w)),
            Status::Error { message, permanent } => {
                if permanent {
                    self.notify(Notice::Refused(message.clone()));
                }
                set(SyncActivity::Failed { message, permanent })
            }
        }
    }

    /// The reconciliation report of a batch live sync applied, told when it
    /// holds anything; the baseline then moves past the batch.
    fn reconcile_live(&self, docs: &[String]) {
        let mut slot = lock(&self.live_baseline);
        let Some(before) = slot.as_mut() else {
            return;
        };
        let mut store = lock(&self.store);
        let report = store.reconcile(before, docs);
        let refreshed = store.refresh_baseline(before, docs);
        drop(store);
        if let Err(e) = refreshed {
            *slot = None;
            self.notify(Notice::Warning(format!(
                "live sync stopped reporting what it brings (its baseline could not be read: {e}); sync goes on"
            )));
        }
        match report {
            Ok(r) if !r.is_quiet() => self.notify(Notice::Reconciled(Box::new(r))),
            Ok(_) => {}
            Err(e) => self.notify(Notice::Warning(format!(
                "what live sync brought could not be reconciled: {e}"
            ))),
        }
    }

    /// Asks a live query of the store, where reads go.
    fn ask(&self, query: &Query) -> Result<Answer> {
        let mut store = lock(self.reader.as_ref().unwrap_or(&self.store));
        query.ask(&mut store)
    }

    fn enrollment(&self) -> Result<(String, String)> {
        client::enrollment(&lock(&self.store))?.ok_or_else(|| {
            Error::NotAllowed(
                "this device is not enrolled with a relay yet; enroll it with the relay's address and a token".into(),
            )
        })
    }

    /// Asks live sync to stop; returns its task (to await before another
    /// session starts) and whether it was running.
    fn stop_live(&self) -> (Option<tokio::task::JoinHandle<()>>, bool) {
        match lock(&self.live).take() {
            Some(mut live) => {
                let running = live.running();
                live.stopping.store(true, Ordering::SeqCst);
                if let Some(stop) = live.stop.take() {
                    let _ = stop.send(());
                }
                (Some(live.task), running)
            }
            None => (None, false),
        }
    }

    /// Asks live sync to stop and leaves its task where [`Shared::start_live`]
    /// awaits it, so a session started next begins once this one has
    /// ended; returns whether it was running.
    fn stop_live_in_place(&self) -> bool {
        match lock(&self.live).as_mut() {
            Some(live) => {
                let running = live.running();
                live.stopping.store(true, Ordering::SeqCst);
                if let Some(stop) = live.stop.take() {
                    let _ = stop.send(());
                }
                running
            }
            None => false,
        }
    }

    /// Starts live sync on `runtime` unless it is running already. A
    /// stopping session is awaited first, so one session runs at a time.
    fn start_live(self: &Arc<Self>, runtime: &tokio::runtime::Handle, wake: &Arc<Notify>) {
        let mut slot = lock(&self.live);
        if slot.as_ref().is_some_and(LiveSync::running) {
            return;
        }
        let previous = slot.take().map(|l| l.task);
        let (stop, stopped) = oneshot::channel::<()>();
        let stopping = Arc::new(AtomicBool::new(false));
        let shared = self.clone();
        let wake = wake.clone();
        let stopping_seen = stopping.clone();
        let task = runtime.spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let Ok((url, token)) = shared.enrollment() else {
                return;
            };
            // The store's lock is let go before the baseline's is taken
            // (`reconcile_live` takes them the other way round).
            let baseline = lock(&shared.store).baseline().ok();
            *lock(&shared.live_baseline) = baseline;
            let clock = shared.clock.clone();
            // A permanent error was reported through the status already.
            let _ = client::sync_live(
                &shared.store,
                &url,
                &token,
                &*clock,
                &mut |s| shared.on_session_status(s, Some(&stopping_seen)),
                Some(&wake),
                Some(&shared.retry),
                async {
                    let _ = stopped.await;
                },
            )
            .await;
            // Writes made until the next session need not keep it up.
            *lock(&shared.live_baseline) = None;
        });
        *slot = Some(LiveSync {
            stop: Some(stop),
            task,
            stopping,
        });
    }
}

/// One device store, safe to share between threads, with its background
/// sync. See the [module documentation](self).
pub struct Device {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    wake: Arc<Notify>,
    observer: Arc<Mutex<Option<Arc<dyn Observer>>>>,
    notice_thread: Option<JoinHandle<()>>,
}

impl Device {
    /// Opens (or creates) the store at `path`, encrypted with `key` if one
    /// is given (see [`Store::open_encrypted`]), and starts the device's
    /// runtime and notice thread. Nothing touches the network until a sync
    /// is asked for.
    pub fn open(path: impl AsRef<Path>, key: Option<&[u8; 32]>, clock: Clock) -> Result<Device> {
        let store = match key {
            Some(key) => Store::open_encrypted(path, key)?,
            None => Store::open(path)?,
        };
        let reader = store.reader(key)?;
        Device::with_stores(store, reader, clock)
    }

    /// A device over an already opened store; reads share its connection
    /// (see [`Device::open`] for a device whose reads have their own).
    pub fn with_store(store: Store, clock: Clock) -> Result<Device> {
        Device::with_stores(store, None, clock)
    }

    fn with_stores(mut store: Store, reader: Option<Store>, clock: Clock) -> Result<Device> {
        // Observers hear which records each write changed.
        store.track_touched(true);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("muster-sync")
            .enable_all()
            .build()
            .map_err(|e| Error::NotAllowed(format!("cannot start the sync runtime: {e}")))?;
        let (tx, rx) = mpsc::channel::<Notice>();
        let observer: Arc<Mutex<Option<Arc<dyn Observer>>>> = Arc::new(Mutex::new(None));
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            reader: reader.map(Mutex::new),
            clock,
            activity: Mutex::new(SyncActivity::Idle),
            live: Mutex::new(None),
            notices: Mutex::new(Some(tx)),
            retry: Notify::new(),
            live_baseline: Mutex::new(None),
            watches: Arc::new(Watches::default()),
        });
        let for_thread = observer.clone();
        let asks = shared.clone();
        let notice_thread = std::thread::Builder::new()
            .name("muster-notices".into())
            .spawn(move || {
                // The observer that last failed, told once.
                let mut told: Option<Arc<dyn Observer>> = None;
                for notice in rx {
                    let changed = match &notice {
                        Notice::Watch(id) => {
                            asks.watches.answer(Some(*id), None, &mut |q| asks.ask(q));
                            continue;
                        }
                        Notice::Changed(ids, _) if !asks.watches.is_empty() => Some(ids.clone()),
                        _ => None,
                    };
                    // Not held while the observer runs: it may set another.
                    let current = lock(&for_thread).clone();
                    if let Some(o) = current {
                        // An observer that panics (an app's listener that
                        // threw) must not end the thread: every later
                        // notice, to it or to the next observer, would be
                        // lost.
                        let delivered = catch_unwind(AssertUnwindSafe(|| match notice {
                            Notice::Changed(ids, origin) => o.records_changed(ids, origin),
                            Notice::Status(s) => o.sync_status(s),
                            Notice::Warning(w) => o.sync_warning(w),
                            Notice::Refused(m) => o.access_refused(m),
                            Notice::Reconciled(r) => o.reconciled(*r),
                            Notice::Watch(_) => {}
                        }));
                        if let Err(panic) = delivered
                            && !told.as_ref().is_some_and(|t| Arc::ptr_eq(t, &o))
                        {
                            told = Some(o.clone());
                            let message = format!(
                                "the app's listener failed on a notice ({}); later notices are still delivered",
                                panic_message(&*panic)
                            );
                            let _ = catch_unwind(AssertUnwindSafe(|| o.sync_warning(message)));
                        }
                    }
                    if let Some(ids) = changed {
                        asks.watches.answer(None, Some(&ids), &mut |q| asks.ask(q));
                    }
                }
            })
            .map_err(|e| Error::NotAllowed(format!("cannot start the notice thread: {e}")))?;
        Ok(Device {
            shared,
            runtime: Some(runtime),
            wake: Arc::new(Notify::new()),
            observer,
            notice_thread: Some(notice_thread),
        })
    }

    /// Sets up a live query: `observer` hears its answer at once, then
    /// again each time a write here or a change from the relay changes it
    /// (on the notice thread, in order with the other notices). Ends when
    /// [`Watching::cancel`] is called or the device closes.
    pub fn watch(&self, query: Query, observer: Arc<dyn QueryObserver>) -> Watching {
        let id = self.shared.watches.add(query, observer);
        self.shared.notify(Notice::Watch(id));
        Watching {
            id,
            watches: Arc::downgrade(&self.shared.watches),
        }
    }

    /// Sets (or, with `None`, removes) the observer that receives notices.
    pub fn set_observer(&self, observer: Option<Arc<dyn Observer>>) {
        *lock(&self.observer) = observer;
    }

    /// The time now, by the device's clock.
    pub fn now(&self) -> Millis {
        (self.shared.clock)()
    }

    /// Runs a read of the local store, on the device's read connection:
    /// it sees every write that returned before it, and neither waits for
    /// a write or a sync step nor holds one up. `f` must only read (a
    /// write through the read connection fails).
    pub fn read<R>(&self, f: impl FnOnce(&mut Store) -> Result<R>) -> Result<R> {
        match &self.shared.reader {
            Some(reader) => f(&mut lock(reader)),
            None => f(&mut lock(&self.shared.store)),
        }
    }

    /// Runs a local write: `f` gets the store and the time now. Observers
    /// hear of the records it changed (as the store counts them,
    /// [`Store::take_touched`]), and live sync pushes the change at once,
    /// also when `f` fails after writing part of its work.
    pub fn write<R>(&self, f: impl FnOnce(&mut Store, Millis) -> Result<R>) -> Result<R> {
        let now = self.now();
        let (result, changed) = {
            // Taken before the store, as `reconcile_live` does: what this
            // write changes joins live sync's baseline under the same
            // locks, so the next batch does not report it as arrived.
            let mut baseline = lock(&self.shared.live_baseline);
            let mut store = lock(&self.shared.store);
            // Writes made by sync (late edits forwarded) are its to report.
            store.take_touched();
            let result = f(&mut store, now);
            let changed = store.take_touched();
            if let Some(before) = baseline.as_mut()
                && !changed.is_empty()
                && store.advance_baseline(before, &changed).is_err()
            {
                // Reports stop rather than tell of this write as an arrival.
                *baseline = None;
            }
            (result, changed)
        };
        if !changed.is_empty() {
            self.wake.notify_one();
            self.shared.notify(Notice::Changed(changed, Origin::Local));
        }
        result
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the device")
            .handle()
    }

    /// Enrolls the store with a relay: checks the token with one sync and
    /// saves the URL (any of the forms [`client::sync_url`] accepts) and
    /// token in the store. A token the relay refuses is not saved. When the
    /// relay cannot be reached (a volunteer enrolling in a basement), the
    /// enrollment is saved and [`Enrollment::reached_relay`] is false.
    ///
    /// Live sync, if it runs, pauses for the check and then goes on: with
    /// the new enrollment once it is saved (a token rotated by scanning a
    /// new QR code), with the one saved before when the relay refused the
    /// new token — a call that fails changes nothing, the status included.
    pub fn enroll(
        &self,
        url: &str,
        token: &str,
    ) -> impl Future<Output = Result<Enrollment>> + Send + use<> {
        let shared = self.shared.clone();
        let wake = self.wake.clone();
        let checked = client::sync_url(url).and_then(|url| match token.trim() {
            "" => Err(Error::invalid("token", "is empty")),
            token => Ok((url, token.to_owned())),
        });
        let before = lock(&self.shared.activity).clone();
        // A malformed address or token is refused before anything pauses.
        let (stopping, resume) = match &checked {
            Ok(_) => self.shared.stop_live(),
            Err(_) => (None, false),
        };
        let task = self.handle().spawn(async move {
            let (url, token) = checked?;
            if let Some(stopping) = stopping {
                let _ = stopping.await;
            }
            let clock = shared.clock.clone();
            let result = client::sync_once_shared(&shared.store, &url, &token, &*clock, &mut |s| {
                // The new token's refusal is the call's error, not the
                // device's state: its saved enrollment still stands.
                if !matches!(s, Status::Error { .. }) {
                    shared.on_status(s)
                }
            })
            .await;
            let outcome = match result {
                Ok(report) => Ok(Enrollment {
                    reached_relay: true,
                    problem: None,
                    report,
                }),
                Err(e) if client::is_permanent(&e) => Err(e),
                Err(e) => Ok(Enrollment {
                    reached_relay: false,
                    problem: Some(e.to_string()),
                    report: SyncReport::default(),
                }),
            };
            let outcome = match outcome {
                Ok(found) => {
                    client::save_enrollment(&mut lock(&shared.store), &url, &token).map(|()| found)
                }
                Err(e) => Err(e),
            };
            shared.set_activity(match &outcome {
                Ok(_) => SyncActivity::Idle,
                Err(_) => before,
            });
            if resume {
                shared.start_live(&tokio::runtime::Handle::current(), &wake);
            }
            outcome
        });
        join(task)
    }

    /// Syncs once on the device's runtime: pulls what is new, pushes what is
    /// pending, and resolves when the relay has confirmed it all. If live
    /// sync is running it is paused for the length of this sync and then
    /// resumed, so that only one session runs at a time.
    pub fn sync_now(&self) -> impl Future<Output = Result<SyncOutcome>> + Send + use<> {
        self.sync_now_within(None)
    }

    /// [`Device::sync_now`], given up after `limit` (a background task's
    /// time is short): what arrived until then is kept, what was not
    /// confirmed stays pending, and the error says the sync ran out of time.
    pub fn sync_now_within(
        &self,
        limit: Option<Duration>,
    ) -> impl Future<Output = Result<SyncOutcome>> + Send + use<> {
        let (stopping, resume) = self.shared.stop_live();
        let shared = self.shared.clone();
        let wake = self.wake.clone();
        let task = self.handle().spawn(async move {
            if let Some(stopping) = stopping {
                let _ = stopping.await;
            }
            let sync = async {
                let (url, token) = shared.enrollment()?;
                let before = lock(&shared.store).baseline()?;
                let clock = shared.clock.clone();
                let mut changed = Vec::new();
                let report =
                    client::sync_once_shared(&shared.store, &url, &token, &*clock, &mut |s| {
                        if let Status::Changed { docs } = &s {
                            changed.extend(docs.iter().cloned());
                        }
                        shared.on_status(s)
                    })
                    .await?;
                let reconciliation = lock(&shared.store).reconcile(&before, &changed)?;
                Ok(SyncOutcome {
                    report,
                    reconciliation,
                })
            };
            let result = match limit {
                None => sync.await,
                Some(limit) => match tokio::time::timeout(limit, sync).await {
                    Ok(result) => result,
                    Err(_) => {
                        let message = format!(
                            "the sync ran out of its {} s; what arrived is kept, and what was not confirmed is sent next time",
                            limit.as_secs_f64()
                        );
                        // The status must not go on saying it is pulling.
                        shared.set_activity(SyncActivity::Failed {
                            message: message.clone(),
                            permanent: false,
                        });
                        Err(Error::Network(message))
                    }
                },
            };

            if result.is_ok() {
                shared.set_activity(SyncActivity::Idle);
            }
            if resume {
                shared.start_live(&tokio::runtime::Handle::current(), &wake);
            }
            result
        });
        join(task)
    }

    /// Starts live sync on the device's runtime: connected while the relay
    /// is reachable, retrying with backoff while it is not, until
    /// [`Device::stop_live`] or a permanent error. Starting it while it
    /// runs does nothing more. Returns at once.
    pub fn start_live(&self) -> Result<()> {
        self.shared.enrollment()?;
        self.shared.start_live(self.handle(), &self.wake);
        Ok(())
    }

    /// Stops live sync; returns at once, and the connection closes on the
    /// device's runtime. Local changes made afterwards stay pending until
    /// the next sync.
    pub fn stop_live(&self) {
        let was_running = self.shared.stop_live_in_place();
        if was_running {
            self.shared.set_activity(SyncActivity::Idle);
        }
    }

    /// The network is back (the phone says so): live sync, waiting before
    /// its next attempt, tries at once, its backoff started afresh. Does
    /// nothing while connected or when live sync is off.
    pub fn retry_now(&self) {
        self.shared.retry.notify_waiters();
    }

    /// The sync status now (read from the local store; never waits on the
    /// network).
    pub fn status(&self) -> Result<SyncStatus> {
        self.shared.status()
    }
}

/// What a panic said, when it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "it panicked".to_owned())
}

/// Awaits a task of the device's runtime from any executor.
async fn join<T>(task: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    match task.await {
        Ok(result) => result,
        Err(e) => Err(Error::NotAllowed(format!(
            "the sync task ended abnormally: {e}"
        ))),
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.shared.stop_live();
        if let Some(runtime) = self.runtime.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            } else {
                // Cancels the tasks (a live connection just drops, which
                // the relay treats like any lost connection) and waits for
                // the runtime's threads to finish.
                runtime.shutdown_timeout(Duration::from_secs(2));
            }
        }
        // Ends the notice thread once it has delivered what is queued.
        lock(&self.shared.notices).take();
        if let Some(t) = self.notice_thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
        let _ = lock(&self.shared.store).checkpoint();
    }
}
