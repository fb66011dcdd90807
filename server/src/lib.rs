//! The Muster relay as a library: [`app`] builds the HTTP router (testable
//! without a socket), [`run`] serves it on a listener until `shutdown`
//! resolves (testable on port 0).
//!
//! Today the relay answers `/healthz` only; the sync endpoint, the durable
//! change log, device tokens and metrics arrive with the sync issue (#3).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tokio::net::TcpListener;

/// Why the relay could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be created or used.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Serving failed (the listener broke).
    #[error("serving failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// What every request handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    data_dir: PathBuf,
}

impl AppState {
    /// Opens (creating if needed) the relay's data directory.
    pub fn open(data_dir: &Path) -> Result<AppState, ServerError> {
        std::fs::create_dir_all(data_dir).map_err(|source| ServerError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        Ok(AppState {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
            }),
        })
    }

    /// The relay's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }
}

/// The relay's routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn healthz(State(_state): State<AppState>) -> &'static str {
    "ok\n"
}

/// Serves the relay on `listener` until `shutdown` resolves, then finishes
/// the requests in flight and returns.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Serve)
}
