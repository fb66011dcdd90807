//! Sync figures: a relay process (this binary, `__relay DATA`) on 127.0.0.1
//! and devices driven by the core's tokio client in this process.
//!
//! Over 800 lines: each sync figure drives the same relay process and the
//! same device client; apart, each would restart and re-seed its own.

use muster_core::model::now_ms;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use muster_core::client::{Status, SyncReport, sync_live, sync_once};
use muster_core::{NewContact, Store};
use tokio::sync::Notify;

/// One measured figure: name, value, unit, target.
pub struct Figure {
    pub name: String,
    pub value: String,
    pub unit: &'static str,
    pub target: &'static str,
}

pub fn fig(
    name: impl Into<String>,
    value: impl Into<String>,
    unit: &'static str,
    target: &'static str,
) -> Figure {
    Figure {
        name: name.into(),
        value: value.into(),
        unit,
        target,
    }
}

/// `muster-bench __relay DATA [--database URL] [CATCH_UP_BATCHES
/// BATCH_BYTES]`: serves a relay on 127.0.0.1:0, its log in DATA (SQLite)
/// or on PostgreSQL at `database`, and prints `LISTENING <addr> <token>`,
/// a new coordinator token.
pub fn relay_main(
    data: &Path,
    database: Option<&str>,
    catch_up: Option<(usize, usize)>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = muster_server::AppState::open_with(data, database, None)?;
        let (_, token) = state
            .storage()
            .create_token("coordinator", "bench", &[], now_ms())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("LISTENING {} {}", listener.local_addr()?, token);
        let mut limits = muster_server::Limits::default();
        if let Some((n, bytes)) = catch_up {
            limits.catch_up_batches = n;
            limits.catch_up_batch_bytes = bytes;
        }
        muster_server::run_with_limits(listener, state, limits, std::future::pending()).await?;
        Ok(())
    })
}

/// A relay child process.
pub struct Relay {
    child: Child,
    data: PathBuf,
    /// The PostgreSQL URL it serves from (`None`: SQLite in `data`).
    database: Option<String>,
    pub url: String,
    pub token: String,
}

impl Relay {
    pub fn start(data: &Path) -> Result<Relay> {
        Relay::start_with(data, None)
    }

    /// A relay with `catch_up` (slots, batch bytes) for its catch-up
    /// limits (`None`: the relay's defaults).
    pub fn start_with(data: &Path, catch_up: Option<(usize, usize)>) -> Result<Relay> {
        Relay::start_on(data, None, catch_up)
    }

    /// A relay on PostgreSQL at `database` when given, else on SQLite in
    /// `data` (which it holds either way: one directory per process).
    pub fn start_on(
        data: &Path,
        database: Option<&str>,
        catch_up: Option<(usize, usize)>,
    ) -> Result<Relay> {
        // `MUSTER_BENCH_RELAY` runs another build's relay (its `muster-bench`
        // binary), to measure a change against the code before it.
        let exe = match std::env::var_os("MUSTER_BENCH_RELAY") {
            Some(other) => PathBuf::from(other),
            None => std::env::current_exe()?,
        };
        let mut child = Command::new(exe);
        child.arg("__relay").arg(data);
        if let Some(url) = database {
            child.arg("--database").arg(url);
        }
        if let Some((n, bytes)) = catch_up {
            child.arg(n.to_string()).arg(bytes.to_string());
        }
        let mut child = child.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("relay stdout")?).read_line(&mut line)?;
        let mut parts = line.split_whitespace().skip(1);
        let (Some(addr), Some(token)) = (parts.next(), parts.next()) else {
            bail!("the relay did not start: {line:?}");
        };
        Ok(Relay {
            url: format!("ws://{addr}/v1/sync"),
            token: token.to_owned(),
            data: data.to_path_buf(),
            database: database.map(str::to_owned),
            child,
        })
    }

    /// The relay's log as another process sees it (an administrator's
    /// command would): its own connection to the same database.
    pub fn storage(&self) -> Result<Arc<dyn muster_core::sync::storage::RelayStorage>> {
        let backend =
            muster_server::backend::Backend::open(&self.data, self.database.as_deref(), None)?;
        Ok(backend.storage)
    }

    /// Creates a token as the administrator would, from another process's
    /// connection to the relay's database.
    pub fn create_token(&self, role: &str, event: Option<&str>) -> Result<String> {
        let storage = self.storage()?;
        let events: Vec<String> = event.map(str::to_owned).into_iter().collect();
        Ok(storage.create_token(role, "bench", &events, now_ms())?.1)
    }

    /// Peak and current resident memory of the relay process, in MB.
    pub fn memory_mb(&self) -> (f64, f64) {
        process_memory_mb(self.child.id())
    }

    /// The relay process's CPU time so far, in seconds.
    pub fn cpu_secs(&self) -> f64 {
        process_cpu_secs(self.child.id())
    }
}

/// CPU time a process has used so far (user + system, from
/// /proc/PID/stat), in seconds; zero if it is gone.
pub fn process_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of stat(5); 11 and 12 here.
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => (u + s) / CLOCK_TICKS,
        _ => 0.0,
    }
}

/// CPU time every core of the machine has spent busy so far (all but idle
/// and I/O wait, from /proc/stat), in seconds.
pub fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else {
        return 0.0;
    };
    let ticks: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy: f64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, t)| t)
        .sum();
    busy / CLOCK_TICKS
}

/// `sysconf(_SC_CLK_TCK)` on Linux, the unit of /proc's CPU times.
const CLOCK_TICKS: f64 = 100.0;

/// Peak and current resident memory of a process, in MB (VmHWM and VmRSS
/// from /proc; zeros if it is gone).
pub fn process_memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmHWM:") / 1024.0, kb("VmRSS:") / 1024.0)
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn once(store: &mut Store, relay: &Relay) -> Result<SyncReport> {
    Ok(sync_once(store, &relay.url, &relay.token, &now_ms, &mut |_| {}).await?)
}

/// Runs `__device-sync` in a child process: a fresh device's first sync;
/// returns the child's peak resident memory in MB and the sync's seconds.
pub fn device_first_sync_alone(relay: &Relay, path: &Path) -> Result<(f64, f64)> {
    let out = device_sync_child(relay, path, false, false)?;
    Ok((out.number("PEAK")?, out.number("SECS")?))
}

/// What a child of the bench (`__device-sync`, `__import`) printed: `KEY
/// value` pairs.
pub struct ChildFigures(Vec<(String, String)>);

impl ChildFigures {
    pub fn get(&self, key: &str) -> Result<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .with_context(|| format!("the child printed no {key}"))
    }

    pub fn number(&self, key: &str) -> Result<f64> {
        let v = self.get(key)?;
        v.parse()
            .with_context(|| format!("the child printed {key} {v:?}"))
    }
}

/// Runs `__device-sync` (with `--report` when `report`, `--searches` when
/// `searches`) for the device at `path` in a child process.
pub fn device_sync_child(
    relay: &Relay,
    path: &Path,
    report: bool,
    searches: bool,
) -> Result<ChildFigures> {
    let mut child = Command::new(std::env::current_exe()?);
    child
        .arg("__device-sync")
        .args([relay.url.as_str(), relay.token.as_str()])
        .arg(path);
    if report {
        child.arg("--report");
    }
    if searches {
        child.arg("--searches");
    }
    child_figures(child, "__device-sync")
}

/// Runs a child of this bench (`what` names it in errors) and reads the
/// `KEY value` pairs it prints.
pub fn child_figures(mut child: Command, what: &str) -> Result<ChildFigures> {
    let out = child.output()?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    Ok(ChildFigures(
        words
            .chunks(2)
            .filter_map(|kv| Some((kv.first()?.to_string(), kv.get(1)?.to_string())))
            .collect(),
    ))
}

/// `__device-sync URL TOKEN PATH [--report]`: the device at PATH syncs
/// once and prints `PEAK <MB> SECS <s>`: its peak resident memory and how
/// long the sync took. With `--report` it does what `muster sync` does
/// (the baseline before, the reconciliation report after, both timed
/// with the sync) and adds `NEW <new contacts> DUPLICATES <candidates>
/// COMPLETE <duplicates and conflicts checked for every record>`. With
/// `--searches` a second thread searches the store through its own
/// reader every 50 ms during the sync, as a volunteer at the desk would,
/// and it adds `SEARCHES <n> SEARCH_P50 <ms> SEARCH_P99 <ms> SEARCH_MAX
/// <ms>`.
pub fn device_sync_main(
    url: &str,
    token: &str,
    path: &Path,
    report: bool,
    searches: bool,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let t = Instant::now();
    let mut store = Store::open(path)?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = if searches {
        let reader = store
            .reader(None)?
            .context("a store on disk has a reader")?;
        let stop = stop.clone();
        Some(std::thread::spawn(move || -> Result<Vec<f64>> {
            let mut took = Vec::new();
            let words = ["smith", "ana", "lee", "mar", "jo", "07700"];
            for word in words.iter().cycle() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let t = Instant::now();
                reader.search_contacts(word, 20)?;
                took.push(t.elapsed().as_secs_f64() * 1000.0);
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(took)
        }))
    } else {
        None
    };
    let before = if report {
        Some(store.baseline()?)
    } else {
        None
    };
    let mut changed: Vec<String> = Vec::new();
    let mut on_status = |s: Status| {
        if let Status::Changed { docs } = s {
            changed.extend(docs);
        }
    };
    runtime.block_on(sync_once(&mut store, url, token, &now_ms, &mut on_status))?;
    let reconciliation = match &before {
        Some(before) => Some(store.reconcile(before, &changed)?),
        None => None,
    };
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let searched = match probe {
        Some(probe) => {
            Some(crate::sorted(probe.join().map_err(|_| {
                anyhow::anyhow!("the search thread panicked")
            })??))
        }
        None => None,
    };
    drop(store);
    print!("PEAK {:.1} SECS {secs:.3}", crate::peak_rss_mb());
    if let Some(took) = searched {
        print!(
            " SEARCHES {} SEARCH_P50 {:.2} SEARCH_P99 {:.2} SEARCH_MAX {:.2}",
            took.len(),
            pct(&took, 0.5),
            pct(&took, 0.99),
            took.last().copied().unwrap_or(0.0)
        );
    }
    if let Some(r) = reconciliation {
        print!(
            " NEW {} DUPLICATES {} COMPLETE {}",
            r.arrived.new_contacts,
            r.duplicate_candidates.len(),
            r.duplicates_complete && r.conflicts_complete
        );
    }
    println!();
    Ok(())
}

/// The office edits 100 contacts (marking each with `mark`, so that every
/// call changes them) and syncs through `office_relay`; then `device`,
/// caught up before, catches up through `device_relay`: how long that took
/// and its report.
pub async fn catch_up_after_edits(
    office: &mut Store,
    office_relay: &Relay,
    device: &mut Store,
    device_relay: &Relay,
    mark: &str,
) -> Result<(f64, SyncReport)> {
    let ids: Vec<String> = office
        .list_contacts(100, 0)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    for (i, id) in ids.iter().enumerate() {
        office.update_contact(id, now_ms(), |c| {
            c.custom.insert("bench".into(), format!("{mark}-{i}"));
            Ok(())
        })?;
    }
    once(office, office_relay).await?;
    let t = Instant::now();
    let report = once(device, device_relay).await?;
    Ok((t.elapsed().as_secs_f64(), report))
}

/// Creates people `start..start + n` of `people` in `store`, 5,000 per
/// transaction.
pub fn create_contacts(
    store: &mut Store,
    people: &mut crate::People,
    start: usize,
    n: usize,
) -> Result<()> {
    let mut made = 0;
    while made < n {
        let step = (n - made).min(5_000);
        store.create_contacts(&contacts(people, start + made, step), now_ms())?;
        made += step;
    }
    Ok(())
}

/// Contacts `start..start + n` of a realistic data set (see
/// [`crate::People`]); each data set is its own seed.
pub fn contacts(people: &mut crate::People, start: usize, n: usize) -> Vec<NewContact> {
    (start..start + n).map(|i| people.person(i).0).collect()
}

/// An event starting now, without capacity.
fn event_now(title: &str) -> muster_core::NewEvent {
    muster_core::NewEvent {
        title: title.into(),
        starts_at: now_ms(),
        ends_at: None,
        place: String::new(),
        capacity: None,
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// [`fresh_stampede`] on a runtime of its own (`__stampede`), with the
/// given catch-up limits (slots, batch bytes) or, without, the default pair.
pub fn stampede(
    dir: &Path,
    n: usize,
    size: usize,
    limits: Option<(usize, usize)>,
) -> Result<Vec<Figure>> {
    let label = limits.map(|(slots, bytes)| format!("catch-up {slots} × {} KiB", bytes >> 10));
    let configs: Vec<(String, Option<(usize, usize)>)> = match (label, limits) {
        (Some(l), Some(c)) => vec![(l, Some(c))],
        _ => stampede_configs(),
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(fresh_stampede(dir, n, size, &configs))
}

/// The relay's catch-up limits (16 batches of 1 MiB at a time: the
/// defaults) and, for comparison, no limit on concurrent batches.
fn stampede_configs() -> Vec<(String, Option<(usize, usize)>)> {
    vec![
        ("catch-up 16 × 1 MiB".into(), None),
        (
            "any number of 1 MiB batches".into(),
            Some((1_000_000, 1 << 20)),
        ),
    ]
}

/// `n` fresh devices begin their first sync at the same moment, each time
/// on a relay of its own holding `size` contacts, once per catch-up
/// configuration: the relay's peak memory. The devices are bare WebSocket
/// clients that take 20 ms over each batch, as a phone applying it would;
/// what the relay holds for them is the measure, not what they hold.
async fn fresh_stampede(
    dir: &Path,
    n: usize,
    size: usize,
    configs: &[(String, Option<(usize, usize)>)],
) -> Result<Vec<Figure>> {
    use futures_util::{SinkExt, StreamExt};
    use muster_core::sync::wire::{self, Message};
    use tokio_tungstenite::tungstenite::Message as Ws;
    let mut out = Vec::new();
    for (i, (label, limits)) in configs.iter().enumerate() {
        eprintln!("sync: {n} fresh devices at once, {label}");
        let relay = Relay::start_with(&dir.join(format!("stampede-{i}")), *limits)?;
        let mut office = Store::open(dir.join(format!("stampede-{i}.muster")))?;
        let mut people = crate::People::new(7);
        office.create_contacts(&contacts(&mut people, 0, size), now_ms())?;
        once(&mut office, &relay).await?;
        let (_, before) = relay.memory_mb();
        let t = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for d in 0..n {
            let (url, token) = (relay.url.clone(), relay.token.clone());
            tasks.push(tokio::spawn(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
                let hello = Message::Hello {
                    protocol: wire::PROTOCOL_VERSION,
                    token,
                    device: format!("{:032x}", 0x5eed_0000_u64 + d as u64),
                    cursor: None,
                    acked: None,
                };
                ws.send(Ws::Binary(wire::encode(&hello).into())).await?;
                while let Some(frame) = ws.next().await {
                    let Ws::Binary(b) = frame? else { continue };
                    match wire::decode(&b) {
                        Ok(Message::CaughtUp { .. }) => return anyhow::Ok(true),
                        Ok(Message::Batch { .. }) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Ok(Message::Error { message, .. }) => anyhow::bail!(message),
                        _ => {}
                    }
                }
                Ok(false)
            }));
        }
        let mut done = 0;
        for task in tasks {
            if let Ok(Ok(Ok(true))) = tokio::time::timeout(Duration::from_secs(300), task).await {
                done += 1;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        let (peak, held) = relay.memory_mb();
        out.push(fig(
            format!("{n} fresh devices at once, {size} contacts: relay memory, {label}"),
            format!(
                "peak {peak:.0}, then {held:.0} ({before:.0} before); {done} caught up in {secs:.1} s"
            ),
            "MB",
            if limits.is_none() { "bounded" } else { "" },
        ));
    }
    Ok(out)
}

/// `n` devices connect live to `relay` and stay idle: the relay's memory
/// holding them, and whether it holds them — every one still connected and
/// receiving a change made afterwards.
async fn idle_devices(dir: &Path, relay: &Relay, n: usize) -> Result<Vec<Figure>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    eprintln!("sync: {n} idle devices");
    let caught_up = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let target = Arc::new(Mutex::new(String::new()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Phones that synced before (25 at a time), now reconnecting live and
    // staying idle: what a relay holds at an event, not n first syncs at
    // once.
    let mut stores = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(25) {
        let mut wave = Vec::new();
        for _ in chunk * 25..((chunk + 1) * 25).min(n) {
            let (url, token) = (relay.url.clone(), relay.token.clone());
            wave.push(tokio::spawn(async move {
                let mut store = Store::open_in_memory()?;
                sync_once(&mut store, &url, &token, &now_ms, &mut |_| {}).await?;
                anyhow::Ok(store)
            }));
        }
        for w in wave {
            stores.push(w.await??);
        }
    }
    let (_, before) = relay.memory_mb();
    let mut tasks = Vec::new();
    for store in stores {
        let store = Arc::new(Mutex::new(store));
        let (url, token) = (relay.url.clone(), relay.token.clone());
        let (caught_up, received, target) = (caught_up.clone(), received.clone(), target.clone());
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut on = move |s: Status| match s {
                Status::CaughtUp => {
                    caught_up.fetch_add(1, Ordering::Relaxed);
                }
                Status::Changed { docs } => {
                    let want = target.lock().map(|t| t.clone()).unwrap_or_default();
                    if !want.is_empty() && docs.contains(&want) {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {}
            };
            let _ = sync_live(
                &store,
                &url,
                &token,
                &now_ms,
                &mut on,
                None,
                None,
                async move {
                    let _ = stop.wait_for(|v| *v).await;
                },
            )
            .await;
        }));
    }
    let t = Instant::now();
    while caught_up.load(Ordering::Relaxed) < n && t.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connected = caught_up.load(Ordering::Relaxed);
    let connect_secs = t.elapsed().as_secs_f64();
    // Idle for a while (pings flow), then one change for everyone.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (peak, held) = relay.memory_mb();
    let mut office = Store::open(dir.join("idle-office.muster"))?;
    let id = office.create_contact(&NewContact::named("For everyone"), now_ms())?;
    *target.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = id;
    let t = Instant::now();
    once(&mut office, relay).await?;
    while received.load(Ordering::Relaxed) < connected && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = received.load(Ordering::Relaxed);
    let fan_out = t.elapsed().as_secs_f64();
    stop_tx.send_replace(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(vec![
        fig(
            format!("{n} idle devices: connected and caught up"),
            format!("{connected} in {connect_secs:.1} s"),
            "devices",
            "all",
        ),
        fig(
            format!(
                "{n} idle devices: relay memory (peak / holding them; {before:.0} before they connected)"
            ),
            format!("{peak:.0} / {held:.0}"),
            "MB",
            "",
        ),
        fig(
            format!("{n} idle devices: one change reaches them all"),
            format!("{got} in {fan_out:.2} s"),
            "devices",
            "all",
        ),
    ])
}

/// `devices` devices, already enrolled and caught up, each push
/// `per_device` new contacts at the same moment, device `d` through
/// `relays[d % relays.len()]`; returns changes per second acknowledged
/// (durably committed) by the relays.
pub async fn ingest(
    dir: &Path,
    relays: &[&Relay],
    token: &str,
    tag: &str,
    devices: usize,
    per_device: usize,
) -> Result<Ingest> {
    eprintln!(
        "sync: ingest from {devices} concurrent devices through {} relay(s) ({tag})",
        relays.len()
    );
    let via = |d: usize| relays[d % relays.len()];
    let mut stores = Vec::new();
    for d in 0..devices {
        let mut s = Store::open(dir.join(format!("ingest-{tag}{d}.muster")))?;
        // Enrolled and caught up beforehand, as devices in the field are.
        sync_once(&mut s, &via(d).url, token, &now_ms, &mut |_| {}).await?;
        let mut people = crate::People::new(1_000 + d as u64);
        s.create_contacts(&contacts(&mut people, 0, per_device), now_ms())?;
        stores.push(s);
    }
    // The log's own count of committed entries is the clock's stop, read
    // as another process would (every relay shares the one log).
    let log = relays[0].storage()?;
    let committed = || anyhow::Ok(log.head()?.seq);
    let before = committed()?;
    let expected = (devices * per_device) as u64;
    let frames = stores
        .iter()
        .map(|s| push_frames(s, token))
        .collect::<Result<Vec<_>>>()?;
    let relays_cpu = || relays.iter().map(|r| r.cpu_secs()).sum::<f64>();
    let (machine_before, relays_before) = (machine_busy_secs(), relays_cpu());
    let t = Instant::now();
    let mut handles = Vec::new();
    for (d, (hello, push, count)) in frames.into_iter().enumerate() {
        let url = via(d).url.clone();
        handles.push(tokio::spawn(async move {
            push_only(&url, hello, push, count).await
        }));
    }
    while committed()? < before + expected {
        if t.elapsed() > Duration::from_secs(600) {
            bail!(
                "the relays committed only {} of {expected} changes",
                committed()? - before
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let per_1000 = |cpu: f64| cpu * 1e3 / (expected as f64 / 1e3);
    let machine_ms = per_1000(machine_busy_secs() - machine_before);
    let relays_ms = per_1000(relays_cpu() - relays_before);
    let mut acked = 0;
    for h in handles {
        acked += h.await??;
    }
    if acked != expected as usize {
        bail!("{acked} of {expected} changes acknowledged");
    }
    Ok(Ingest {
        rate: expected as f64 / secs,
        machine_ms,
        relays_ms,
    })
}

/// One ingest run.
pub struct Ingest {
    /// Changes committed per second.
    pub rate: f64,
    /// CPU time the whole machine spent per 1,000 changes while the clock
    /// ran (relays, PostgreSQL, the pushing devices), in ms.
    pub machine_ms: f64,
    /// Of which the relay processes', in ms.
    pub relays_ms: f64,
}

/// A device that only pushes: hello with its cursor, one `push` of its
/// pending changes, then waits for their `ack` and leaves, applying
/// nothing it receives. Measures the relay's ingest without the devices'
/// own work (applying each other's changes) on the same two cores.
async fn push_only(url: &str, hello: Vec<u8>, push: Vec<u8>, count: usize) -> Result<usize> {
    use futures_util::{SinkExt, StreamExt};
    use muster_core::sync::wire::{self, Message};
    use tokio_tungstenite::tungstenite::Message as Ws;

    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    ws.send(Ws::Binary(hello.into())).await?;
    ws.send(Ws::Binary(push.into())).await?;
    let mut acked = 0;
    while acked < count {
        let Some(frame) = ws.next().await else {
            bail!("the relay closed the connection");
        };
        if let Ws::Binary(b) = frame? {
            match wire::decode(&b)? {
                Message::Ack { hashes, .. } => acked += hashes.len(),
                Message::Error { code, message } => bail!("error {code}: {message}"),
                _ => {}
            }
        }
    }
    let _ = ws.close(None).await;
    Ok(acked)
}

/// The `hello` and `push` a device would send for its pending changes,
/// and how many changes the push holds.
fn push_frames(store: &Store, token: &str) -> Result<(Vec<u8>, Vec<u8>, usize)> {
    use muster_core::sync::wire::{self, Message, PushChange};
    let pending = store.pending_changes(wire::MAX_PUSH_CHANGES)?;
    let hello = Message::Hello {
        protocol: wire::PROTOCOL_VERSION,
        token: token.to_owned(),
        device: store.device_id().to_owned(),
        cursor: store.sync_cursor()?.map(wire::Cursor::from),
        acked: store.ack_position()?.map(wire::Cursor::from),
    };
    let push = Message::Push {
        changes: pending
            .iter()
            .map(|p| PushChange {
                doc: p.doc_id.clone(),
                data: serde_bytes::ByteBuf::from(p.data.clone()),
            })
            .collect(),
    };
    Ok((wire::encode(&hello), wire::encode(&push), pending.len()))
}

/// Propagation device → relay → device: device A live on `from` writes a
/// contact, `samples` times, and device B live on `to` (the same relay or
/// another on its database) is told of it; returns the sorted latencies
/// in ms. `tag` keeps each call's stores apart.
pub async fn propagation(
    dir: &Path,
    from: &Relay,
    to: &Relay,
    samples: usize,
    tag: &str,
) -> Result<Vec<f64>> {
    eprintln!("sync: propagation latency");
    let a = Arc::new(Mutex::new(Store::open(
        dir.join(format!("live-a{tag}.muster")),
    )?));
    let b = Arc::new(Mutex::new(Store::open(
        dir.join(format!("live-b{tag}.muster")),
    )?));
    let wake = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<String>)>();
    let mut tasks = Vec::new();
    for (store, relay, w, tx) in [
        (a.clone(), from, Some(wake.clone()), None),
        (b.clone(), to, None, Some(tx)),
    ] {
        let (url, token) = (relay.url.clone(), relay.token.clone());
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut on = move |s: Status| {
                if let (Status::Changed { docs }, Some(tx)) = (s, &tx) {
                    let _ = tx.send((Instant::now(), docs));
                }
            };
            let _ = sync_live(
                &store,
                &url,
                &token,
                &now_ms,
                &mut on,
                w.as_deref(),
                None,
                async move {
                    let _ = stop.wait_for(|v| *v).await;
                },
            )
            .await;
        }));
    }
    // Wait until B has caught up (its first Changed events are the org).
    tokio::time::sleep(Duration::from_millis(500)).await;
    while tokio::time::timeout(Duration::from_millis(2_000), rx.recv())
        .await
        .is_ok()
    {}
    let mut lat = Vec::new();
    for i in 0..samples {
        let start = Instant::now();
        let id = a
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .create_contact(&NewContact::named(format!("Latency {i}")), now_ms())?;
        wake.notify_one();
        loop {
            let (at, docs) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .context("a write never reached the other device")?
                .context("closed")?;
            if docs.contains(&id) {
                lat.push((at - start).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    stop_tx.send_replace(true);
    for t in tasks {
        let _ = t.await;
    }
    lat.sort_by(f64::total_cmp);
    Ok(lat)
}

/// Runs every sync figure; `sizes` are the organisation sizes for first sync.
pub fn run(dir: &Path, sizes: &[usize], devices: usize, quick: bool) -> Result<Vec<Figure>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(dir.to_path_buf(), sizes.to_vec(), devices, quick))
}

async fn run_async(
    dir: PathBuf,
    sizes: Vec<usize>,
    devices: usize,
    quick: bool,
) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    let relay = Relay::start(&dir.join("relay"))?;

    // Fill the organisation through one office device, in steps.
    let mut office = Store::open(dir.join("office.muster"))?;
    let mut people = crate::People::new(42);
    let mut have = 0;
    let largest = sizes.iter().copied().max().unwrap_or(0);
    for &size in &sizes {
        eprintln!("sync: filling the organisation to {size} contacts");
        let t = Instant::now();
        let mut pushed = 0;
        if have < size {
            create_contacts(&mut office, &mut people, have, size - have)?;
            pushed += size - have;
            have = size;
        }
        let created = t.elapsed().as_secs_f64();
        let t = Instant::now();
        once(&mut office, &relay).await?;
        let push = t.elapsed().as_secs_f64();
        // The push alone (the row), and with the creating before
        // it: automerge-repo's office creates and sends at once, so only
        // the second has its shape.
        out.push(fig(
            format!("office push filling to {size} contacts (one device)"),
            format!("{:.0}", pushed as f64 / push),
            "changes/s",
            if size >= 100_000 { "≥ 15000" } else { "" },
        ));
        out.push(fig(
            format!("office creates and pushes {size} contacts (one device)"),
            format!("{:.0}", pushed as f64 / (created + push)),
            "changes/s",
            "",
        ));
        eprintln!("sync: first sync of a fresh device at {size} contacts");
        let mut fresh = Store::open(dir.join(format!("fresh{size}.muster")))?;
        let t = Instant::now();
        let report = once(&mut fresh, &relay).await?;
        let secs = t.elapsed().as_secs_f64();
        out.push(fig(
            format!("first sync, {size} contacts: time"),
            format!("{secs:.2}"),
            "s",
            if size >= 100_000 { "< 10" } else { "" },
        ));
        out.push(fig(
            format!("first sync, {size} contacts: bytes received"),
            format!("{:.1}", report.bytes_in as f64 / 1e6),
            "MB",
            "",
        ));
        // The same first sync by a device alone in its own process, as a
        // phone or laptop runs it: its peak memory, and its time without
        // this process's heap (the office's 100,000 documents, the rest).
        let alone_run = device_sync_child(
            &relay,
            &dir.join(format!("alone{size}.muster")),
            false,
            true,
        )?;
        let (peak, alone) = (alone_run.number("PEAK")?, alone_run.number("SECS")?);
        out.push(fig(
            format!("first sync, {size} contacts: time, device alone in its process"),
            format!("{alone:.2}"),
            "s",
            if size >= 100_000 { "< 10" } else { "" },
        ));
        out.push(fig(
            format!("device peak memory, first sync of {size} contacts"),
            format!("{peak:.0}"),
            "MB",
            "",
        ));
        out.push(fig(
            format!(
                "search during the first sync of {size} contacts (every 50 ms, own reader): p99 / max ({} searches)",
                alone_run.get("SEARCHES")?
            ),
            format!(
                "{} / {}",
                alone_run.get("SEARCH_P99")?,
                alone_run.get("SEARCH_MAX")?
            ),
            "ms",
            "< 50",
        ));
        if size == largest {
            // Reconnect with nothing new.
            let report = once(&mut fresh, &relay).await?;
            out.push(fig(
                format!("reconnect, nothing changed ({size} contacts): messages"),
                format!("{} up, {} down", report.frames_out, report.frames_in),
                "frames",
                "1 round trip",
            ));
            out.push(fig(
                format!("reconnect, nothing changed ({size} contacts): bytes"),
                format!("{}", report.bytes_in + report.bytes_out),
                "B",
                "< 1024",
            ));
        }
        // Catch-up after 100 edits over 100 documents, at every size (the
        // comparison runs automerge-repo's per-contact layout only at the
        // smaller one).
        let (secs, report) =
            catch_up_after_edits(&mut office, &relay, &mut fresh, &relay, &size.to_string())
                .await?;
        out.push(fig(
            format!("catch-up after 100 edits in {size} contacts: time"),
            format!("{:.1}", secs * 1000.0),
            "ms",
            if size >= 100_000 { "< 200" } else { "" },
        ));
        out.push(fig(
            format!("catch-up after 100 edits in {size} contacts: bytes"),
            format!("{:.1}", (report.bytes_in + report.bytes_out) as f64 / 1e3),
            "KB",
            "",
        ));
        if size == largest {
            // A volunteer whose event has 2,000 sign-ups: its first sync
            // costs its scope, not the organisation.
            eprintln!("sync: a volunteer's first sync (2,000 sign-ups in {size})");
            let event = office.create_event(&event_now("Food bank"), now_ms())?;
            for c in office.list_contacts(2_000, 100)? {
                office.sign_up(&event, &c.id, false, now_ms())?;
            }
            once(&mut office, &relay).await?;
            let volunteer = relay.create_token("volunteer", Some(&event))?;
            let mut phone = Store::open(dir.join("volunteer.muster"))?;
            let t = Instant::now();
            let report =
                sync_once(&mut phone, &relay.url, &volunteer, &now_ms, &mut |_| {}).await?;
            let secs = t.elapsed().as_secs_f64();
            out.push(fig(
                format!("volunteer first sync, 2,000 sign-ups in {size} contacts: time"),
                format!("{:.0}", secs * 1000.0),
                "ms",
                "< 1000",
            ));
            out.push(fig(
                format!("volunteer first sync, 2,000 sign-ups in {size} contacts: bytes"),
                format!("{:.2}", report.bytes_in as f64 / 1e6),
                "MB",
                "",
            ));
            out.push(fig(
                "  records received",
                format!("{}", phone.doc_ids()?.len()),
                "",
                "",
            ));
        }
        let (peak, rss) = relay.memory_mb();
        out.push(fig(
            format!("relay memory holding {size} contacts (peak / now)"),
            format!("{peak:.0} / {rss:.0}"),
            "MB",
            "< 300",
        ));
    }

    let (peak, _) = relay.memory_mb();
    out.push(fig(
        "relay peak memory, organisation figures",
        format!("{peak:.0}"),
        "MB",
        "< 300",
    ));
    drop(relay);

    // Latency and ingest on a fresh relay: they do not depend on the
    // organisation's size, and fresh devices would first download it all.
    let relay = Relay::start(&dir.join("relay2"))?;

    // Propagation latency device → relay → device, both live.
    let samples = if quick { 50 } else { 200 };
    let lat = propagation(&dir, &relay, &relay, samples, "").await?;
    out.push(fig(
        "propagation device → relay → device p50",
        format!("{:.2}", pct(&lat, 0.5)),
        "ms",
        "",
    ));
    out.push(fig(
        "propagation device → relay → device p99",
        format!("{:.2}", pct(&lat, 0.99)),
        "ms",
        "< 20",
    ));

    // Ingest from many devices pushing at once: as a coordinator's devices,
    // then as volunteers' (every change checked against a scope, every
    // creation added to it).
    let per_device = if quick { 20 } else { 100 };
    let rate = ingest(&dir, &[&relay], &relay.token, "coord", devices, per_device)
        .await?
        .rate;
    out.push(fig(
        format!("relay ingest, {devices} devices × {per_device} changes (coordinators)"),
        format!("{rate:.0}"),
        "changes/s",
        "≥ 5000",
    ));
    let event = {
        let mut s = Store::open(dir.join("planner.muster"))?;
        let e = s.create_event(&event_now("Ingest"), now_ms())?;
        once(&mut s, &relay).await?;
        e
    };
    let volunteer = relay.create_token("volunteer", Some(&event))?;
    let rate = ingest(&dir, &[&relay], &volunteer, "vol", devices, per_device)
        .await?
        .rate;
    out.push(fig(
        format!("relay ingest, {devices} devices × {per_device} changes (volunteers, scoped)"),
        format!("{rate:.0}"),
        "changes/s",
        "",
    ));

    // Many idle devices held by one relay, then one change reaching all,
    // on a relay of their own: on this one each would first download the
    // ingest figures' 20,000 contacts.
    drop(relay);
    let relay = Relay::start(&dir.join("relay3"))?;
    let idle = if quick { 100 } else { 1_000 };
    out.extend(idle_devices(&dir, &relay, idle).await?);
    drop(relay);
    out.extend(fresh_stampede(&dir, idle, 2_000, &stampede_configs()).await?);
    Ok(out)
}
