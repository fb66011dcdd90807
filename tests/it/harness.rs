//! A real `muster-server` process on 127.0.0.1 with an unused port, devices
//! as stores in a temporary directory, and helpers to compare them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use muster_core::client::{SyncReport, sync_once};
use muster_core::{DocKind, Store};

pub const T0: i64 = 1_793_491_200_000;

/// A binary of the workspace, built next to this test binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or ./scripts/test) so it is built",
        path.display()
    );
    path
}

/// A relay process and its data directory.
pub struct RelayProcess {
    pub data: PathBuf,
    pub addr: String,
    /// `--database`, when its storage is PostgreSQL.
    pub database: Option<String>,
    /// Every line it wrote to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    child: Option<Child>,
}

impl RelayProcess {
    /// Starts a relay on a fresh data directory inside `dir`.
    pub fn start(dir: &Path) -> RelayProcess {
        let data = dir.join("relay-data");
        RelayProcess::start_on(&data, "127.0.0.1:0")
    }

    /// Starts a relay on `data`, listening on `listen`.
    pub fn start_on(data: &Path, listen: &str) -> RelayProcess {
        RelayProcess::start_with(data, listen, None)
    }

    /// Starts a relay whose storage is the PostgreSQL database at
    /// `database`, with `data` for its own files (the dashboard's replica).
    pub fn start_pg(data: &Path, database: &str) -> RelayProcess {
        RelayProcess::start_with(data, "127.0.0.1:0", Some(database))
    }

    /// Starts a relay on `data` (and `database`, if given), listening on
    /// `listen`.
    pub fn start_with(data: &Path, listen: &str, database: Option<&str>) -> RelayProcess {
        let mut command = Command::new(bin("muster-server"));
        command
            .args(["serve", "--listen", listen, "--data"])
            .arg(data);
        if let Some(db) = database {
            command.args(["--database", db]);
        }
        let mut child = command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let addr = loop {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "the relay exited before listening: {:?}",
                log.lock().unwrap()
            );
            log.lock().unwrap().push(line.clone());
            if let Some(rest) = line.split("http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep reading its log so it never blocks on a full pipe.
        let kept = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                kept.lock().unwrap().push(std::mem::take(&mut line));
            }
        });
        RelayProcess {
            data: data.to_path_buf(),
            addr,
            database: database.map(str::to_owned),
            log,
            child: Some(child),
        }
    }

    /// The WebSocket URL of the sync endpoint.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/sync", self.addr)
    }

    /// Creates a token with `muster-server token create` (a separate
    /// process, as an administrator would) and returns it.
    pub fn token(&self, role: &str) -> String {
        let out = self
            .admin_command(&["token", "create", "--role", role, "--name", "e2e"])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            stdout.lines().count(),
            1,
            "token create prints one line: {stdout:?}"
        );
        stdout.trim().to_owned()
    }

    /// `muster-server` with `--data` and `--database` as this relay has
    /// them: an administrator's command on its data.
    pub fn admin_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("muster-server"));
        c.args(args).arg("--data").arg(&self.data);
        if let Some(db) = &self.database {
            c.args(["--database", db]);
        }
        c
    }

    /// Whether a line of its log contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(text))
    }

    /// Kills the relay with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Stops the relay with SIGTERM and waits; asserts a clean exit.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let ok = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
            let status = c.wait().unwrap();
            assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One sync, with the default clock and no status output.
pub async fn sync(store: &mut Store, url: &str, token: &str) -> muster_core::Result<SyncReport> {
    sync_once(store, url, token, &clock, &mut |_| {}).await
}

/// Syncs until it succeeds (the network may be hostile), at most `tries`.
pub async fn sync_until_ok(store: &mut Store, url: &str, token: &str, tries: usize) -> SyncReport {
    let mut last = None;
    for _ in 0..tries {
        match tokio::time::timeout(Duration::from_secs(20), sync(store, url, token)).await {
            Ok(Ok(r)) => return r,
            Ok(Err(e)) => last = Some(e.to_string()),
            Err(_) => last = Some("timed out".into()),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("sync never succeeded: {last:?}");
}

/// Everything a device shows: every document's sorted heads and record,
/// and the materialised lists. Devices that converged have equal ones.
pub fn fingerprint(store: &mut Store) -> String {
    let mut out = String::new();
    for id in store.doc_ids().unwrap() {
        let mut heads = store.heads(&id).unwrap();
        heads.sort();
        out += &format!("{id} {heads:?}\n");
        match DocKind::of_id(&id).unwrap() {
            DocKind::Contact => out += &format!("{:?}\n", store.contact(&id).unwrap()),
            DocKind::Event => {
                out += &format!(
                    "{:?}\n{:?}\n",
                    store.event(&id).unwrap(),
                    store.roster(&id, None).unwrap()
                )
            }
            DocKind::Feedback => out += &format!("{:?}\n", store.feedback(&id).unwrap()),
            DocKind::ContactPrivate => {}
        }
    }
    out += &format!(
        "{:?}\n{:?}\n",
        store.list_contacts(100_000, 0).unwrap(),
        store.list_events().unwrap()
    );
    out
}

/// A new contact named `name` on `store`; its id.
pub fn add(store: &mut Store, name: &str) -> String {
    store
        .create_contact(&muster_core::NewContact::named(name), clock())
        .unwrap()
}

/// Every document's heads, as acknowledged at some moment.
pub fn heads_of(
    store: &mut Store,
) -> std::collections::HashMap<String, Vec<automerge::ChangeHash>> {
    store
        .doc_ids()
        .unwrap()
        .into_iter()
        .map(|id| {
            let h = store.heads(&id).unwrap();
            (id, h)
        })
        .collect()
}

/// Opens a device store in `dir`.
pub fn device(dir: &Path, name: &str) -> Store {
    Store::open(dir.join(format!("{name}.muster"))).unwrap()
}
