//! PostgreSQL for tests: a database of its own for each test, in the
//! throwaway cluster `./scripts/test` starts (`scripts/test-postgres`) and
//! names in `MUSTER_TEST_POSTGRES` (`postgres://postgres@127.0.0.1:PORT`).
//! A test that needs to stop PostgreSQL starts a [`Cluster`] of its own.
//! Shared by the server's tests and the workspace's (`#[path]`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use futures_util::{SinkExt, StreamExt};

/// Runs `f` on a runtime of its own, on a thread of its own (callers may
/// be inside a runtime already).
pub fn run<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .unwrap()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at {url}: {e}"));
    tokio::spawn(conn);
    client
}

/// The cluster the test command started.
pub fn server() -> String {
    std::env::var("MUSTER_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "MUSTER_TEST_POSTGRES is not set: run the tests with ./scripts/test, which starts a \
             throwaway PostgreSQL, or start one yourself: \
             export MUSTER_TEST_POSTGRES=$(scripts/test-postgres start /tmp/muster-pg)"
        )
    })
}

/// A database of its own, dropped with this value.
pub struct TestDb {
    /// Its URL, as `--database` takes it.
    pub url: String,
    name: String,
    server: String,
}

impl TestDb {
    /// A new, empty database in the test cluster.
    pub fn create() -> TestDb {
        TestDb::create_on(&server())
    }

    /// A new, empty database on the server at `server`.
    pub fn create_on(server: &str) -> TestDb {
        let name = format!("muster_test_{}", uuid::Uuid::new_v4().simple());
        let admin = format!("{server}/postgres");
        let create = format!("CREATE DATABASE {name}");
        run(async move {
            connect(&admin).await.batch_execute(&create).await.unwrap();
        });
        TestDb {
            url: format!("{server}/{name}"),
            name,
            server: server.to_owned(),
        }
    }

    /// Runs SQL in it (a test's look at what the relay stored).
    pub fn execute(&self, sql: &str) {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        run(async move { connect(&url).await.batch_execute(&sql).await.unwrap() });
    }

    /// The first column of each row `sql` returns (a `text` column: cast
    /// it).
    pub fn query(&self, sql: &str) -> Vec<Option<String>> {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        run(async move {
            connect(&url)
                .await
                .query(&sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        })
    }

    /// Checks the relay's log here: positions 1, 2, 3… with no gap, each
    /// entry's chain hash the previous one's chained with its change's
    /// hash (no fork), the visibility log without a gap either. Returns
    /// the number of entries.
    pub fn verify_log(&self) -> usize {
        let url = self.url.clone();
        let (log, vis) = run(async move {
            let c = connect(&url).await;
            let log: Vec<(i64, Vec<u8>, Vec<u8>)> = c
                .query("SELECT seq, hash, chain FROM log ORDER BY seq", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let vis: Vec<i64> = c
                .query("SELECT vseq FROM visibility ORDER BY vseq", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            (log, vis)
        });
        let mut chain = [0u8; 32];
        for (i, (seq, hash, stored)) in log.iter().enumerate() {
            assert_eq!(*seq, i as i64 + 1, "the log has a gap before {seq}");
            let hash: [u8; 32] = hash.as_slice().try_into().unwrap();
            chain = muster_core::sync::storage::chain_hash(&chain, &hash);
            assert_eq!(
                stored.as_slice(),
                chain.as_slice(),
                "the chain forks at {seq}"
            );
        }
        for (i, v) in vis.iter().enumerate() {
            assert_eq!(*v, i as i64 + 1, "the visibility log has a gap before {v}");
        }
        log.len()
    }

    /// Replaces everything in this database's tables with `from`'s (both
    /// with the relay's schema): a backup taken of `from` now, restored here.
    pub fn copy_from(&self, from: &TestDb) {
        let (src, dst) = (from.url.clone(), self.url.clone());
        run(async move {
            let a = connect(&src).await;
            let b = connect(&dst).await;
            let tables: Vec<String> = a
                .query(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            b.batch_execute(&format!("TRUNCATE {}", tables.join(", ")))
                .await
                .unwrap();
            for t in &tables {
                let out = a
                    .copy_out(&format!("COPY {t} TO STDOUT (FORMAT binary)"))
                    .await
                    .unwrap();
                let sink = b
                    .copy_in(&format!("COPY {t} FROM STDIN (FORMAT binary)"))
                    .await
                    .unwrap();
                futures_util::pin_mut!(out, sink);
                while let Some(chunk) = out.next().await {
                    sink.send(chunk.unwrap()).await.unwrap();
                }
                sink.finish().await.unwrap();
            }
        });
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = format!("{}/postgres", self.server);
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Best effort: a cluster already stopped takes its databases along.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok((c, conn)) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = c.batch_execute(&drop).await;
                }
            });
        })
        .join()
        .ok();
    }
}

/// A PostgreSQL cluster of a test's own (`scripts/test-postgres`), which
/// the test may stop and start again; removed with this value.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// `postgres://postgres@127.0.0.1:PORT`.
    pub server: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("test-postgres")
}

fn script_run(what: &str, dir: &Path) -> String {
    let out = std::process::Command::new(script())
        .arg(what)
        .arg(dir.join("pg"))
        .output()
        .expect("scripts/test-postgres runs");
    assert!(
        out.status.success(),
        "scripts/test-postgres {what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Cluster {
    /// Starts a new cluster.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let server = script_run("start", dir.path());
        Cluster { dir, server }
    }

    /// Stops it (fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        script_run("stop", self.dir.path());
    }

    /// Starts it again, on the same port.
    pub fn restart(&self) {
        script_run("start", self.dir.path());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script())
            .arg("remove")
            .arg(self.dir.path().join("pg"))
            .output();
    }
}
