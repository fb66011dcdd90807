//! A relay in this test process on 127.0.0.1 and an unused port, with its
//! data in a temporary directory: what the sync and dashboard tests start.
#![allow(dead_code)]

use muster_server::{AppState, Limits};

pub mod http;

/// The clock of every test: 2026-11-01T00:00:00Z.
pub const T0: i64 = 1_793_491_200_000;

/// The core never reads the clock; tests hand it this one.
pub fn clock() -> i64 {
    T0
}

pub struct Relay {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The sync endpoint, `ws://127.0.0.1:PORT/v1/sync`.
    pub url: String,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// Serves `state` on 127.0.0.1 and an unused port until the sender is
/// used; returns the address.
pub async fn serve(
    state: &AppState,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    serve_with(state, Limits::default()).await
}

/// [`serve`] within `limits`.
pub async fn serve_with(
    state: &AppState,
    limits: Limits,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s = state.clone();
    let task = tokio::spawn(async move {
        muster_server::run_with_limits(listener, s, limits, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx, task)
}

/// A fresh relay, its dashboard on or off.
pub async fn start_relay(dashboard: bool) -> Relay {
    start_relay_with(dashboard, Limits::default()).await
}

/// A fresh relay within `limits`, its dashboard on or off.
pub async fn start_relay_with(dashboard: bool, limits: Limits) -> Relay {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path()).unwrap();
    if dashboard {
        state.enable_dashboard(None).unwrap();
    }
    let (addr, tx, task) = serve_with(&state, limits).await;
    Relay {
        url: format!("ws://{addr}/v1/sync"),
        addr,
        state,
        stop: Some(tx),
        task,
        _dir: dir,
    }
}

impl Relay {
    /// A new device token for `role`, scoped to `events`: (its id, the
    /// token).
    pub fn token_in(&self, role: &str, events: &[String]) -> (String, String) {
        self.state
            .storage()
            .create_token(role, "test", events, T0)
            .unwrap()
    }

    /// A new unscoped device token for `role`.
    pub fn token(&self, role: &str) -> String {
        self.token_in(role, &[]).1
    }

    /// Stops serving and waits (at most 15 s) for the server to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(std::time::Duration::from_secs(15), self.task)
            .await
            .expect("the relay stops")
            .unwrap();
    }
}
