//! The coordinators' web dashboard, served by the relay at `/`.
//!
//! # How it works
//!
//! The relay embeds a coordinator *device* of its own: a
//! [`muster_core::device::Device`] over a store at
//! `<data dir>/dashboard.muster` (encrypted with the relay's key when it has
//! one), enrolled with a coordinator token the relay creates for itself
//! (label `dashboard`; its secret lives only in that store's settings and is
//! reused on restart while the token is not revoked), and kept in live sync
//! with the relay over `ws://127.0.0.1:<port>/v1/sync` once the listener is
//! bound ([`crate::run`]). The relay's own log never holds a materialised
//! index; the dashboard's replica does (search, rosters, duplicates), so
//! pages read it, and writes (merge, unmerge, "not a duplicate") are CRDT
//! operations of that device, pushed to the relay like any device's and
//! attributed to it in `muster-server audit`.
//!
//! The device's [`Observer`] bumps a change counter whenever records change:
//! pages that show live data (the events list, a roster) poll a JSON
//! endpoint every 1.5 s with the counter they last saw, and get new rows
//! only when it moved. Contact changes also mark the cached duplicate list
//! stale; a background thread recomputes it on a read-only connection of
//! its own ([`duplicates`]).
//!
//! Coordinators log in with a coordinator token ([`auth`]); sessions are in
//! memory, and every form that changes something carries the session's
//! CSRF token.

mod auth;
mod duplicates;
mod export;
mod html;
mod pages;
mod publishing;
mod registration;

pub use registration::{SUBMISSION_WINDOW, SUBMISSIONS_PER_ADDRESS};

use muster_core::model::now_ms;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use muster_core::client;
use muster_core::device::{Clock, Device, Observer, Origin, SyncActivity, SyncStatus};
use muster_core::sync::relay::ROLE_COORDINATOR;

use crate::storage::SecretCheck;
use crate::{AppState, ServerError};
use muster_core::sync::storage::RelayStorage;

/// The dashboard's store, in the relay's data directory.
pub const STORE_FILE: &str = "dashboard.muster";
/// The label of the token the relay creates for its dashboard.
pub const TOKEN_LABEL: &str = "dashboard";
/// The sync URL saved before the listener's port is known; replaced when
/// the relay starts listening.
const UNBOUND_URL: &str = "ws://127.0.0.1:0/v1/sync";

/// Why a dashboard page or action failed: each variant is shown to the
/// coordinator as an error page with the matching HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The page or record does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be used as sent: a malformed form or query (400).
    #[error("{0}")]
    BadRequest(String),
    /// Not logged in, not a coordinator, or a form without the session's
    /// CSRF token (403).
    #[error("{0}")]
    Forbidden(String),
    /// The dashboard is off or could not start (503).
    #[error("{0}")]
    Unavailable(String),
    /// The dashboard's store refused or failed: an unknown record (404),
    /// an invalid value (400), an action that does not fit the record's
    /// state such as merging a contact already merged (409), or a storage
    /// failure (500).
    #[error("the dashboard's store: {0}")]
    Store(#[from] muster_core::Error),
    /// The relay's own storage failed.
    #[error("{0}")]
    Relay(#[from] ServerError),
    /// The relay's own storage failed.
    #[error("{0}")]
    RelayStorage(#[from] muster_core::sync::storage::StorageError),
}

impl DashboardError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        use muster_core::Error as E;
        match self {
            DashboardError::NotFound(_) => StatusCode::NOT_FOUND,
            DashboardError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DashboardError::Forbidden(_) => StatusCode::FORBIDDEN,
            DashboardError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            DashboardError::Store(E::NotFound { .. }) => StatusCode::NOT_FOUND,
            DashboardError::Store(E::Invalid { .. }) => StatusCode::BAD_REQUEST,
            DashboardError::Store(E::NotAllowed(_)) => StatusCode::CONFLICT,
            DashboardError::Store(_)
            | DashboardError::Relay(_)
            | DashboardError::RelayStorage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the page says, for a person.
    fn message(&self) -> String {
        match self {
            // The core's own words already say what was not found or why.
            DashboardError::Store(e @ muster_core::Error::NotFound { .. })
            | DashboardError::Store(e @ muster_core::Error::Invalid { .. })
            | DashboardError::Store(e @ muster_core::Error::NotAllowed(_)) => e.to_string(),
            e => e.to_string(),
        }
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "dashboard request failed");
        }
        html::error_page(status, &self.message())
    }
}

/// Shorthand for the dashboard's results.
pub type DResult<T> = Result<T, DashboardError>;

/// Whether the dashboard runs, as [`AppState`] keeps it.
#[derive(Debug)]
pub(crate) enum Slot {
    /// Running.
    Ready(Arc<Dashboard>),
    /// Asked for, but could not start: why (shown on its pages).
    Failed(String),
}

/// The relay's coordinator device and what its pages share. See the
/// [module documentation](self).
pub struct Dashboard {
    device: Device,
    /// The store's file, for the connections of its own that the duplicate
    /// finder and the exports read through.
    store_path: PathBuf,
    /// The relay's data key, if the store is encrypted with it.
    key: Option<[u8; 32]>,
    token_id: String,
    /// Bumped whenever records change (the live pages' "since").
    generation: Arc<AtomicU64>,
    duplicates: Arc<duplicates::Cache>,
    sessions: auth::Sessions,
    pages: registration::PageState,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

/// Hears the device's notices: counts changes, marks the duplicate list
/// stale when contacts changed, logs sync failures.
struct Watcher {
    generation: Arc<AtomicU64>,
    duplicates: Arc<duplicates::Cache>,
}

impl Observer for Watcher {
    fn records_changed(&self, ids: Vec<String>, _origin: Origin) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if ids.iter().any(|id| id.starts_with("c_")) {
            self.duplicates.mark_dirty();
        }
    }

    fn sync_status(&self, status: SyncStatus) {
        if let SyncActivity::Failed { message, .. } = &status.activity {
            tracing::warn!(%message, "the dashboard's replica cannot sync");
        }
    }

    fn sync_warning(&self, message: String) {
        tracing::warn!(%message, "dashboard replica");
    }
}

/// Deletes a store file and its WAL and shared-memory files.
fn remove_store(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(PathBuf::from(p)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

impl Dashboard {
    /// Opens (creating if needed) the dashboard's store in `data_dir`,
    /// encrypted with `key` if given, and makes sure it holds a live
    /// coordinator token of this relay: the saved one if it is still valid,
    /// else a new one (label [`TOKEN_LABEL`]) with a fresh store, since the
    /// relay ties a device id to the first token it used. Does not connect:
    /// see [`Dashboard::connect`].
    pub fn open(
        data_dir: &Path,
        storage: &dyn RelayStorage,
        shared: Arc<dyn crate::backend::SharedState>,
        key: Option<&[u8; 32]>,
    ) -> DResult<Dashboard> {
        let path = data_dir.join(STORE_FILE);
        let clock: Clock = Arc::new(now_ms);
        let mut device = Device::open(&path, key, clock.clone())?;
        let saved = device.read(|s| client::enrollment(s))?;
        let valid = match &saved {
            Some((_, secret)) => match storage.check_secret(secret)? {
                SecretCheck::Valid { id, role } if role == ROLE_COORDINATOR => Some(id),
                _ => None,
            },
            None => None,
        };
        let token_id = match valid {
            Some(id) => id,
            None => {
                if saved.is_some() {
                    // Its token was revoked (or this relay never knew it):
                    // start over with a new device id.
                    tracing::warn!(
                        path = %path.display(),
                        "the dashboard's token is revoked or unknown: starting a fresh dashboard replica"
                    );
                    drop(device);
                    remove_store(&path).map_err(|e| {
                        DashboardError::Unavailable(format!(
                            "cannot replace {}: {e}",
                            path.display()
                        ))
                    })?;
                    device = Device::open(&path, key, clock)?;
                }
                let now = now_ms();
                let (id, secret) = storage.create_token(ROLE_COORDINATOR, TOKEN_LABEL, &[], now)?;
                if let Err(e) =
                    device.write(|s, _| client::save_enrollment(s, UNBOUND_URL, &secret))
                {
                    let _ = storage.revoke_token(&id, now);
                    return Err(e.into());
                }
                tracing::info!(token = %id, "created the dashboard's coordinator token");
                id
            }
        };
        let generation = Arc::new(AtomicU64::new(1));
        let duplicates = duplicates::Cache::start(path.clone(), key.copied());
        device.set_observer(Some(Arc::new(Watcher {
            generation: generation.clone(),
            duplicates: duplicates.clone(),
        })));
        Ok(Dashboard {
            device,
            store_path: path,
            key: key.copied(),
            token_id,
            generation,
            duplicates,
            sessions: auth::Sessions::new(shared),
            pages: registration::PageState::default(),
        })
    }

    /// Starts live sync with the relay listening on `addr`: loopback on
    /// the same port (an unspecified address such as `0.0.0.0` is reached
    /// at `127.0.0.1`, `[::]` at `[::1]`; a specific address at itself).
    pub fn connect(&self, addr: SocketAddr) -> DResult<()> {
        let ip = match addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let url = format!("ws://{}/v1/sync", SocketAddr::new(ip, addr.port()));
        self.device.write(|s, _| {
            let (_, secret) = client::enrollment(s)?.ok_or_else(|| {
                muster_core::Error::NotAllowed("the dashboard's store lost its token".into())
            })?;
            client::save_enrollment(s, &url, &secret)
        })?;
        self.device.start_live()?;
        tracing::info!(%url, "dashboard replica syncing with the relay");
        Ok(())
    }

    /// Stops live sync (the relay is shutting down).
    pub fn disconnect(&self) {
        self.device.stop_live();
    }

    /// The id of the token the dashboard's device uses (`tok_…`).
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// The change counter: it moves whenever records change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The device, for reads and writes of its store.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// What the public registration pages remember.
    fn pages(&self) -> &registration::PageState {
        &self.pages
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.duplicates.stop();
    }
}

/// Runs a blocking read or write of the dashboard on the blocking pool, so
/// that neither SQLite nor a long query holds up the relay's runtime.
async fn blocking<R: Send + 'static>(
    dash: &Arc<Dashboard>,
    f: impl FnOnce(&Dashboard) -> DResult<R> + Send + 'static,
) -> DResult<R> {
    let dash = dash.clone();
    tokio::task::spawn_blocking(move || f(&dash))
        .await
        .map_err(|e| DashboardError::Unavailable(format!("a dashboard task failed: {e}")))?
}

/// The dashboard's routes (merged into [`crate::app`]).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", post(auth::login).get(auth::login_again))
        .route("/logout", post(auth::logout))
        .route("/events/{id}", get(pages::event))
        .route("/events/{id}/publish", post(publishing::publish))
        .route("/events/{id}/unpublish", post(publishing::unpublish))
        .route("/events/{id}/qr.svg", get(publishing::qr))
        .route("/contacts", get(pages::contacts))
        .route("/contacts/{id}", get(pages::contact))
        .route("/contacts/{id}/unmerge", post(duplicates::unmerge))
        .route("/duplicates", get(duplicates::page))
        .route("/duplicates/merge", post(duplicates::merge))
        .route("/duplicates/not-duplicate", post(duplicates::not_duplicate))
        .route("/feedback", get(pages::feedback))
        .route("/export", get(export::index))
        .route("/export/{file}", get(export::download))
        .route("/api/events", get(pages::events_json))
        .route("/api/events/{id}", get(pages::event_json))
        .route("/api/duplicates", get(duplicates::state_json))
        .route(
            "/r/{slug}",
            get(registration::page).post(registration::submit).layer(
                axum::extract::DefaultBodyLimit::max(registration::MAX_BODY_BYTES),
            ),
        )
        .route(
            "/r/{slug}/cancel/{contact}/{token}",
            get(registration::cancel_page)
                .post(registration::cancel)
                .layer(axum::extract::DefaultBodyLimit::max(
                    registration::MAX_BODY_BYTES,
                )),
        )
        .route("/assets/page.css", get(html::page_css))
        .route("/assets/dashboard.css", get(html::css))
        .route("/assets/dashboard.js", get(html::js))
        .route("/favicon.ico", get(html::no_icon))
        .method_not_allowed_fallback(html::wrong_method)
        .fallback(html::not_found)
}
