//! The relay on its embedded SQLite beside the relay on PostgreSQL, with
//! one relay process and with two on one database (issue 15): the same
//! organisation, the same devices and the same figures against each, in
//! one run. The bench starts a throwaway PostgreSQL cluster of its own
//! (`scripts/test-postgres`, on 127.0.0.1) and removes it at the end, or
//! uses the server `MUSTER_BENCH_POSTGRES` names
//! (`postgres://USER@HOST:PORT`), where it creates databases of its own
//! and drops them after (or keeps them, with `MUSTER_BENCH_KEEP` set, to
//! look into with `EXPLAIN`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use muster_core::Store;
use muster_core::model::now_ms;

use crate::sync_figures::{
    Relay, catch_up_after_edits, create_contacts, device_first_sync_alone, ingest, propagation,
};

/// The three ways of running the relay, the table's columns in order.
pub const COLUMNS: [&str; 3] = ["SQLite", "PostgreSQL, 1 relay", "PostgreSQL, 2 relays"];

/// How many times each column's ingest runs.
const INGEST_RUNS: usize = 3;

/// One figure measured on each of [`COLUMNS`] ("-" where it does not
/// apply).
pub struct Row {
    pub name: String,
    pub cells: [String; 3],
    pub unit: &'static str,
    pub target: &'static str,
}

fn row(
    name: impl Into<String>,
    cells: [String; 3],
    unit: &'static str,
    target: &'static str,
) -> Row {
    Row {
        name: name.into(),
        cells,
        unit,
        target,
    }
}

/// The PostgreSQL server the figures run on.
struct Postgres {
    /// `postgres://USER@HOST:PORT`, without a database.
    server: String,
    /// The cluster's directory when the bench started it (removed on drop).
    cluster: Option<PathBuf>,
    /// The databases created, dropped on drop from a server not the
    /// bench's own.
    created: Vec<String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("test-postgres")
}

fn run_script(what: &str, dir: &Path) -> Result<String> {
    let out = Command::new(script())
        .arg(what)
        .arg(dir)
        .output()
        .with_context(|| format!("running {}", script().display()))?;
    if !out.status.success() {
        bail!(
            "scripts/test-postgres {what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs one statement (or several, `;`-separated) on `url`, and returns
/// the first column of the first row's text, if any.
async fn sql(url: &str, statement: &str) -> Result<Option<String>> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let task = tokio::spawn(connection);
    let mut first = None;
    for message in client.simple_query(statement).await? {
        if let (None, tokio_postgres::SimpleQueryMessage::Row(r)) = (&first, message) {
            first = r.get(0).map(str::to_owned);
        }
    }
    drop(client);
    let _ = task.await;
    Ok(first)
}

impl Postgres {
    async fn start(dir: &Path) -> Result<Postgres> {
        // Set but empty counts as unset (`MUSTER_BENCH_POSTGRES= …`).
        if let Ok(server) = std::env::var("MUSTER_BENCH_POSTGRES")
            && !server.is_empty()
        {
            return Ok(Postgres {
                server: server.trim_end_matches('/').to_owned(),
                cluster: None,
                created: Vec::new(),
            });
        }
        eprintln!("backends: starting a PostgreSQL cluster of the bench's own");
        let server = run_script("start", dir)?;
        Ok(Postgres {
            server,
            cluster: Some(dir.to_path_buf()),
            created: Vec::new(),
        })
    }

    /// A new, empty database; its URL.
    async fn create(&mut self, what: &str) -> Result<String> {
        let name = format!("muster_bench_{}_{what}", std::process::id());
        sql(
            &format!("{}/postgres", self.server),
            &format!("CREATE DATABASE {name}"),
        )
        .await?;
        self.created.push(name.clone());
        Ok(format!("{}/{name}", self.server))
    }

    /// `pg_database_size` of the database at `url`, in bytes; and its two
    /// largest tables with their sizes (indexes and TOAST included).
    async fn size(&self, url: &str) -> Result<(u64, String)> {
        let total = sql(url, "SELECT pg_database_size(current_database())")
            .await?
            .context("pg_database_size returned nothing")?
            .parse()?;
        let largest = sql(
            url,
            "SELECT string_agg(format('%s %s', relname, pg_size_pretty(size)), ', ') FROM \
             (SELECT relname, pg_total_relation_size(c.oid) AS size FROM pg_class c \
              WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace \
              ORDER BY size DESC LIMIT 2) t",
        )
        .await?
        .unwrap_or_default();
        Ok((total, largest))
    }

    async fn stop(mut self) -> Result<()> {
        if let Some(dir) = self.cluster.take() {
            run_script("remove", &dir)?;
        } else if std::env::var_os("MUSTER_BENCH_KEEP").is_some() {
            eprintln!("backends: kept the databases {:?}", self.created);
        } else {
            for name in std::mem::take(&mut self.created) {
                sql(
                    &format!("{}/postgres", self.server),
                    &format!("DROP DATABASE {name} WITH (FORCE)"),
                )
                .await?;
            }
        }
        Ok(())
    }
}

impl Drop for Postgres {
    /// A run that failed still leaves no server behind.
    fn drop(&mut self) {
        if let Some(dir) = &self.cluster {
            let _ = run_script("remove", dir);
        }
    }
}

/// Copies a closed store (its file and any write-ahead log) to `to`.
fn copy_store(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)?;
    for suffix in ["-wal", "-shm"] {
        let (mut f, mut t) = (from.as_os_str().to_owned(), to.as_os_str().to_owned());
        f.push(suffix);
        t.push(suffix);
        if Path::new(&f).exists() {
            std::fs::copy(&f, &t)?;
        }
    }
    Ok(())
}

/// What one device sees of the organisation through one relay.
struct DeviceFigures {
    first_sync_secs: f64,
    device_peak_mb: f64,
    catch_up_ms: f64,
    catch_up_kb: f64,
}

/// A fresh device's first sync through `device_relay`, alone in its
/// process; then, with the office editing through `office_relay`, its
/// catch-up after 100 edits.
async fn device_figures(
    dir: &Path,
    tag: &str,
    office: &mut Store,
    office_relay: &Relay,
    device_relay: &Relay,
) -> Result<DeviceFigures> {
    eprintln!("backends: first sync of a fresh device ({tag})");
    let path = dir.join(format!("device-{tag}.muster"));
    let (device_peak_mb, first_sync_secs) = device_first_sync_alone(device_relay, &path)?;
    let mut device = Store::open(&path)?;
    let (secs, report) =
        catch_up_after_edits(office, office_relay, &mut device, device_relay, tag).await?;
    Ok(DeviceFigures {
        first_sync_secs,
        device_peak_mb,
        catch_up_ms: secs * 1000.0,
        catch_up_kb: (report.bytes_in + report.bytes_out) as f64 / 1e3,
    })
}

/// The office (a copy of `seed`) pushes the organisation through `relay`:
/// changes per second.
async fn fill(seed: &Path, path: &Path, relay: &Relay, size: usize) -> Result<(Store, f64)> {
    copy_store(seed, path)?;
    let mut office = Store::open(path)?;
    let t = Instant::now();
    muster_core::client::sync_once(&mut office, &relay.url, &relay.token, &now_ms, &mut |_| {})
        .await?;
    Ok((office, size as f64 / t.elapsed().as_secs_f64()))
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

fn memory(relays: &[&Relay]) -> String {
    let one = |r: &Relay| {
        let (peak, now) = r.memory_mb();
        format!("{peak:.0} / {now:.0}")
    };
    match relays {
        [r] => one(r),
        _ => relays
            .iter()
            .enumerate()
            .map(|(i, r)| format!("relay {}: {}", i + 1, one(r)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// What [`live`] measured on one column.
struct Live {
    /// Propagation device → relay → device, sorted, in ms.
    latencies: Vec<f64>,
    /// Ingest, changes per second, each of [`INGEST_RUNS`], sorted.
    ingest: Vec<f64>,
    /// CPU per 1,000 changes ingested, the mean of the runs, in ms: the
    /// whole machine's and the relays'.
    cpu: (f64, f64),
    /// Each relay's peak memory, "A + B" MB.
    peaks: String,
}

/// On a fresh log for `column` of [`COLUMNS`]: `samples` propagations
/// (none if 0), then ingest from `devices` × `per_device`.
async fn live(
    dir: &Path,
    pg: &mut Postgres,
    column: usize,
    samples: usize,
    devices: usize,
    per_device: usize,
) -> Result<Live> {
    eprintln!("backends: propagation and ingest, {}", COLUMNS[column]);
    // Ingest varies the most from run to run (fsyncs and the two cores
    // shared by every process): the median of three, each on relays and a
    // log of its own (devices enrolled on a used log would first sync all
    // that the runs before wrote).
    let mut rates = Vec::new();
    let mut cpu = (0.0, 0.0);
    let mut latencies = Vec::new();
    let mut peaks = String::new();
    for run in 0..INGEST_RUNS {
        let relays = match column {
            0 => vec![Relay::start(&dir.join(format!("sqlite-live{run}")))?],
            _ => {
                let url = pg.create(&format!("live{column}_{run}")).await?;
                (1..=column)
                    .map(|i| {
                        let data = dir.join(format!("pg-live{column}-{run}-{i}"));
                        Relay::start_on(&data, Some(&url), None)
                    })
                    .collect::<Result<Vec<_>>>()?
            }
        };
        let (from, to) = (&relays[0], relays.last().unwrap_or(&relays[0]));
        if run == 0 && samples > 0 {
            latencies = propagation(dir, from, to, samples, &format!("-{column}")).await?;
        }
        let refs: Vec<&Relay> = relays.iter().collect();
        let tag = format!("b{column}-{run}-");
        let run = ingest(dir, &refs, &from.token, &tag, devices, per_device).await?;
        rates.push(run.rate);
        cpu.0 += run.machine_ms / INGEST_RUNS as f64;
        cpu.1 += run.relays_ms / INGEST_RUNS as f64;
        peaks = refs
            .iter()
            .map(|r| format!("{:.0}", r.memory_mb().0))
            .collect::<Vec<_>>()
            .join(" + ");
    }
    rates.sort_by(f64::total_cmp);
    Ok(Live {
        latencies,
        ingest: rates,
        cpu,
        peaks,
    })
}

/// `__ingest COLUMN [DEVICES PER_DEVICE]`: the ingest figure alone on
/// column 0 (SQLite), 1 (PostgreSQL, one relay) or 2 (two relays), for
/// profiling; prints `INGEST <changes/s>` and the CPU it took.
pub fn ingest_alone(column: usize, devices: usize, per_device: usize) -> Result<()> {
    if column >= COLUMNS.len() {
        bail!("column {column}: 0 (SQLite), 1 or 2 (PostgreSQL with 1 or 2 relays)");
    }
    let dir = tempfile::tempdir()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut pg = Postgres::start(&dir.path().join("postgres")).await?;
            let live = live(dir.path(), &mut pg, column, 0, devices, per_device).await;
            pg.stop().await?;
            let live = live?;
            println!(
                "INGEST {:.0} changes/s, CPU per 1,000 changes: machine {:.0} ms, relays {:.0} ms",
                crate::percentile(&live.ingest, 0.5),
                live.cpu.0,
                live.cpu.1
            );
            Ok(())
        })
}

/// Every figure of the comparison: an organisation of `size` contacts,
/// `devices` × `per_device` changes of ingest, `samples` propagations.
pub fn run(
    dir: &Path,
    size: usize,
    devices: usize,
    per_device: usize,
    samples: usize,
) -> Result<Vec<Row>> {
    std::fs::create_dir_all(dir)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut pg = Postgres::start(&dir.join("postgres")).await?;
            let rows = figures(dir, &mut pg, size, devices, per_device, samples).await;
            pg.stop().await?;
            rows
        })
}

async fn figures(
    dir: &Path,
    pg: &mut Postgres,
    size: usize,
    devices: usize,
    per_device: usize,
    samples: usize,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let n = crate::thousands(size);

    // One office store holding the organisation, made once and copied for
    // each backend, so that each receives the very same changes.
    eprintln!("backends: creating {n} contacts in the office's store");
    let seed = dir.join("office-seed.muster");
    {
        let mut office = Store::open(&seed)?;
        create_contacts(&mut office, &mut crate::People::new(42), 0, size)?;
    }

    // SQLite: one relay.
    eprintln!("backends: the organisation on SQLite");
    let sqlite = Relay::start(&dir.join("sqlite"))?;
    let (mut office, sqlite_push) =
        fill(&seed, &dir.join("office-sqlite.muster"), &sqlite, size).await?;
    let on_sqlite = device_figures(dir, "sqlite", &mut office, &sqlite, &sqlite).await?;
    drop(office);
    let file = |name: &str| std::fs::metadata(dir.join("sqlite").join(name)).map_or(0, |m| m.len());
    let sqlite_bytes = file("relay.sqlite3") + file("relay.sqlite3-wal");
    let sqlite_memory = memory(&[&sqlite]);
    drop(sqlite);

    // PostgreSQL: relay 1 takes the office's push and serves a device;
    // then relay 2 joins on the same database and serves another.
    eprintln!("backends: the organisation on PostgreSQL");
    let org = pg.create("org").await?;
    let first = Relay::start_on(&dir.join("pg-1"), Some(&org), None)?;
    let (mut office, pg_push) = fill(&seed, &dir.join("office-pg.muster"), &first, size).await?;
    let on_one = device_figures(dir, "pg-one", &mut office, &first, &first).await?;
    let (pg_bytes, pg_tables) = pg.size(&org).await?;
    let one_memory = memory(&[&first]);
    let second = Relay::start_on(&dir.join("pg-2"), Some(&org), None)?;
    let on_two = device_figures(dir, "pg-two", &mut office, &first, &second).await?;
    let two_memory = memory(&[&first, &second]);
    drop((office, first, second));

    let each = |f: fn(&DeviceFigures) -> String| [f(&on_sqlite), f(&on_one), f(&on_two)];
    rows.push(row(
        format!("office push of {n} contacts (one device)"),
        [
            format!("{sqlite_push:.0}"),
            format!("{pg_push:.0}"),
            "-".into(),
        ],
        "changes/s",
        "",
    ));
    rows.push(row(
        format!("first sync, {n} contacts, device alone in its process (2 relays: from the one that took no writes)"),
        each(|d| format!("{:.2}", d.first_sync_secs)),
        "s",
        "PostgreSQL within 20% of SQLite",
    ));
    rows.push(row(
        format!("device peak memory, first sync of {n} contacts"),
        each(|d| format!("{:.0}", d.device_peak_mb)),
        "MB",
        "",
    ));
    rows.push(row(
        format!("catch-up after 100 edits in {n} contacts (2 relays: edits through relay 1, device on relay 2): time"),
        each(|d| format!("{:.1}", d.catch_up_ms)),
        "ms",
        "< 200",
    ));
    rows.push(row(
        format!("catch-up after 100 edits in {n} contacts: bytes"),
        each(|d| format!("{:.1}", d.catch_up_kb)),
        "KB",
        "",
    ));
    rows.push(row(
        format!("relay memory holding {n} contacts (peak / now)"),
        [sqlite_memory, one_memory, two_memory],
        "MB",
        "< 300",
    ));
    rows.push(row(
        format!("relay database on disk, {n} contacts (SQLite: file + WAL; PostgreSQL: pg_database_size)"),
        [mb(sqlite_bytes), mb(pg_bytes), "-".into()],
        "MB",
        "",
    ));
    rows.push(row(
        "  largest tables (PostgreSQL, with indexes)",
        ["-".into(), pg_tables, "-".into()],
        "",
        "",
    ));

    // Live devices and ingest, each on a fresh log.
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut rates = Vec::new();
    let mut peaks = Vec::new();
    let mut cpus = Vec::new();
    for column in 0..3 {
        let live = live(dir, pg, column, samples, devices, per_device).await?;
        p50.push(format!("{:.2}", crate::percentile(&live.latencies, 0.5)));
        p99.push(format!("{:.2}", crate::percentile(&live.latencies, 0.99)));
        let r = &live.ingest;
        rates.push(format!(
            "{:.0} ({:.0}–{:.0})",
            crate::percentile(r, 0.5),
            r[0],
            r[r.len() - 1]
        ));
        peaks.push(live.peaks);
        cpus.push(format!("{:.0} / {:.0}", live.cpu.0, live.cpu.1));
    }
    let three = |v: Vec<String>| -> Result<[String; 3]> {
        v.try_into()
            .map_err(|_| anyhow::anyhow!("one figure per column"))
    };
    rows.push(row(
        "propagation device → relay → device p50 (2 relays: device on relay 1 → device on relay 2)",
        three(p50)?,
        "ms",
        "",
    ));
    rows.push(row(
        "propagation device → relay → device p99",
        three(p99)?,
        "ms",
        "< 20",
    ));
    rows.push(row(
        format!("relay ingest, {devices} devices × {per_device} changes, median of {INGEST_RUNS} (lowest–highest; coordinators; 2 relays: half through each)"),
        three(rates)?,
        "changes/s",
        "2 relays on PostgreSQL ≥ SQLite",
    ));
    rows.push(row(
        "  CPU per 1,000 changes ingested, mean of the runs: whole machine (relays, PostgreSQL, devices) / relays",
        three(cpus)?,
        "ms",
        "",
    ));
    rows.push(row(
        "relay peak memory, propagation and ingest",
        three(peaks)?,
        "MB",
        "< 300",
    ));
    Ok(rows)
}
