//! The automerge-repo side of the comparison: automerge-repo's own
//! WebSocket sync server (`automerge-repo/server.mjs`, run with the
//! machine's Node.js on 127.0.0.1) and a driver (`automerge-repo/client.mjs`)
//! run once per measurement, with the library's two natural layouts: one
//! document per contact (plus an index document) and one document holding
//! all contacts. Bytes on the wire are counted here, by a TCP proxy between
//! the clients and the server; memory is read from the server's /proc entry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// The npm project folder: `bench/automerge-repo`.
fn app_dir(bench_dir: &Path) -> PathBuf {
    bench_dir.join("automerge-repo")
}

fn default_bench_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `npm ci` in `bench/automerge-repo` when its packages are missing.
pub fn ensure_installed(bench_dir: &Path) -> Result<()> {
    let app = app_dir(bench_dir);
    let marker = app.join("node_modules/@automerge/automerge-repo/package.json");
    if marker.exists() {
        return Ok(());
    }
    eprintln!(
        "automerge-repo: installing its npm packages in {}",
        app.display()
    );
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&app)
        .stdout(Stdio::null())
        .status()
        .context("running npm (is Node.js installed?)")?;
    if !status.success() || !marker.exists() {
        bail!("npm ci failed in {}", app.display());
    }
    Ok(())
}

/// automerge-repo's sync server as a child process.
pub struct Server {
    child: Child,
    port: u16,
}

impl Server {
    pub async fn start(bench_dir: &Path, data: &Path) -> Result<Server> {
        std::fs::create_dir_all(data)?;
        // Its complaints go to a file beside its data, for whoever wonders
        // why a figure is missing.
        let log = std::fs::File::create(data.with_extension("log"))?;
        let mut child = Command::new("node")
            .arg("server.mjs")
            .arg(data)
            .current_dir(app_dir(bench_dir))
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting node server.mjs")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("server stdout")?;
        tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .context("the automerge-repo server did not start in 30 s")??;
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .with_context(|| format!("the automerge-repo server said {line:?}"))?;
        Ok(Server { child, port })
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr())
    }

    /// Peak and current resident memory of the server process, in MB.
    pub fn memory_mb(&self) -> (f64, f64) {
        let Some(pid) = self.child.id() else {
            return (0.0, 0.0);
        };
        crate::sync_figures::process_memory_mb(pid)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A TCP proxy on 127.0.0.1 counting the bytes that pass each way.
pub struct Proxy {
    port: u16,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: String) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let up = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicU64::new(0));
        let (u, d) = (up.clone(), down.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (target, u, d) = (target.clone(), u.clone(), d.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let a = tokio::spawn(pipe(cr, sw, u));
                    let b = tokio::spawn(pipe(sr, cw, d));
                    let _ = tokio::join!(a, b);
                });
            }
        });
        Ok(Proxy {
            port,
            up,
            down,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn reset(&self) {
        self.up.store(0, Ordering::SeqCst);
        self.down.store(0, Ordering::SeqCst);
    }

    /// Bytes client → server and server → client since the last reset.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::SeqCst),
            self.down.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                count.fetch_add(n as u64, Ordering::SeqCst);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Why a client run gave no figure.
enum Failed {
    Timeout(u64),
    Error,
}

impl Failed {
    fn text(&self) -> String {
        match self {
            Failed::Timeout(s) => format!("did not finish in {s} s"),
            Failed::Error => "failed".into(),
        }
    }
}

/// A number from the one-line JSON object a client prints.
fn num(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// Runs `node client.mjs COMMAND ARGS…` and returns its JSON line.
async fn client(
    bench_dir: &Path,
    command: &str,
    args: &[String],
    limit_secs: u64,
) -> std::result::Result<String, Failed> {
    eprintln!("automerge-repo: {command} {}", args.join(" "));
    let child = Command::new("node")
        .arg("client.mjs")
        .arg(command)
        .args(args)
        .args(["--timeout", &limit_secs.to_string()])
        .current_dir(app_dir(bench_dir))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|_| Failed::Error)?;
    let out = tokio::time::timeout(
        Duration::from_secs(limit_secs + 5),
        child.wait_with_output(),
    )
    .await
    .map_err(|_| Failed::Timeout(limit_secs))?
    .map_err(|_| Failed::Error)?;
    if out.status.code() == Some(3) {
        return Err(Failed::Timeout(limit_secs));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().rev().find(|l| l.starts_with('{')) {
        Some(line) if out.status.success() => Ok(line.to_owned()),
        _ => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(5).collect();
            eprintln!("automerge-repo: {command} failed: {}", tail.join(" | "));
            Err(Failed::Error)
        }
    }
}

/// Figures in insertion order, one value per layout.
#[derive(Default)]
struct Table {
    order: Vec<String>,
    values: HashMap<String, [Option<String>; 2]>,
}

impl Table {
    fn set(&mut self, name: impl Into<String>, layout: usize, value: String) {
        let name = name.into();
        if !self.values.contains_key(&name) {
            self.order.push(name.clone());
        }
        self.values.entry(name).or_default()[layout] = Some(value);
    }

    fn pairs(self) -> Vec<(String, String)> {
        let values = self.values;
        self.order
            .into_iter()
            .map(|name| {
                let [a, b] = values.get(&name).cloned().unwrap_or_default();
                let show = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                let value = format!("{} / {}", show(a), show(b));
                (name, value)
            })
            .collect()
    }
}

const LAYOUTS: [&str; 2] = ["per-contact", "one-doc"];

/// The largest organisation the per-contact layout is run at: filling it
/// grows faster than linearly with the number of documents (10,000 take
/// minutes on this machine, see BENCHMARKS.md), so 100,000 would not end
/// in a bench run.
fn per_contact_max(quick: bool) -> usize {
    if quick { 2_000 } else { 10_000 }
}

/// One measurement's limit, and the setup (fill) limit.
const LIMIT: u64 = 300;
const FILL_LIMIT: u64 = 600;

/// Every automerge-repo figure, named as Muster's figure it compares with;
/// values read "per-contact layout / one-doc layout". `devices` is the
/// number of concurrent devices for ingest (as Muster's).
pub async fn figures(
    dir: &Path,
    sizes: &[usize],
    devices: usize,
    quick: bool,
) -> Result<Vec<(String, String)>> {
    let bench = default_bench_dir();
    ensure_installed(bench)?;
    let mut table = Table::default();
    for (l, layout) in LAYOUTS.iter().enumerate() {
        let run = Run {
            bench,
            dir: dir.join(layout),
            l,
            layout,
            quick,
        };
        std::fs::create_dir_all(&run.dir)?;
        run.organisation(sizes, &mut table).await?;
        run.ingest_and_idle(devices, &mut table).await?;
    }
    Ok(table.pairs())
}

/// One layout's measurements.
struct Run<'a> {
    bench: &'a Path,
    dir: PathBuf,
    /// The layout's column in [`Table`].
    l: usize,
    layout: &'a str,
    quick: bool,
}

impl Run<'_> {
    fn args(&self, url: &str, state: &Path, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--url".into(),
            url.into(),
            "--layout".into(),
            self.layout.into(),
            "--state".into(),
            state.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// Sets both figures of a (time, bytes) pair to the same text.
    fn both(&self, table: &mut Table, names: [&str; 2], text: &str) {
        for name in names {
            table.set(name, self.l, text.to_owned());
        }
    }

    /// Fill, first sync and catch-up at each size, each on a fresh server;
    /// memory, and propagation at the largest size run.
    async fn organisation(&self, sizes: &[usize], table: &mut Table) -> Result<()> {
        let max = if self.layout == "per-contact" {
            per_contact_max(self.quick)
        } else {
            usize::MAX
        };
        let run_sizes: Vec<usize> = sizes.iter().copied().filter(|&s| s <= max).collect();
        let largest = run_sizes.iter().copied().max().unwrap_or(0);
        let mut org_peak: f64 = 0.0;
        for &size in sizes {
            let first_names = [
                format!("first sync, {size} contacts: time"),
                format!("first sync, {size} contacts: bytes received"),
            ];
            let first_names = [first_names[0].as_str(), first_names[1].as_str()];
            let catch_names = [
                format!("catch-up after 100 edits in {size} contacts: time"),
                format!("catch-up after 100 edits in {size} contacts: bytes"),
            ];
            let catch_names = [catch_names[0].as_str(), catch_names[1].as_str()];
            let device_name = format!("device peak memory, first sync of {size} contacts");
            let device_name = device_name.as_str();
            if size > max {
                table.set(device_name, self.l, "not run".into());
                self.both(table, first_names, "not run");
                self.both(table, catch_names, "not run");
                continue;
            }
            let server = Server::start(self.bench, &self.dir.join(format!("server{size}"))).await?;
            let proxy = Proxy::start(server.addr()).await?;
            let state = self.dir.join(format!("state{size}.json"));
            let office = self.dir.join(format!("office{size}"));
            let office = office.display().to_string();
            let device = self.dir.join(format!("device{size}"));
            let device = device.display().to_string();
            let url = proxy.url();

            let n = size.to_string();
            let fill_args = self.args(&url, &state, &["--n", &n, "--store", &office]);
            let filled = client(self.bench, "fill", &fill_args, FILL_LIMIT).await;
            let push_name = format!("office creates and pushes {size} contacts (one device)");
            match &filled {
                Ok(json) => {
                    let secs = num(json, "secs").unwrap_or(f64::NAN);
                    table.set(&push_name, self.l, format!("{:.0}", size as f64 / secs));
                }
                Err(e) => {
                    table.set(&push_name, self.l, e.text());
                    self.both(table, first_names, &format!("fill: {}", e.text()));
                    self.both(table, catch_names, &format!("fill: {}", e.text()));
                    org_peak = org_peak.max(server.memory_mb().0);
                    continue;
                }
            }

            proxy.reset();
            let first_args = self.args(&url, &state, &["--store", &device]);
            let first = client(self.bench, "first-sync", &first_args, LIMIT).await;
            let (_, down) = proxy.bytes();
            match &first {
                Ok(json) if num(json, "unavailable").unwrap_or(0.0) > 0.0 => {
                    let missing = num(json, "unavailable").unwrap_or(0.0);
                    let text = format!("{missing:.0} of {size} unavailable");
                    self.both(table, first_names, &text);
                }
                Ok(json) => {
                    let secs = num(json, "secs").unwrap_or(f64::NAN);
                    table.set(first_names[0], self.l, format!("{secs:.2}"));
                    table.set(first_names[1], self.l, format!("{:.1}", down as f64 / 1e6));
                    let rss = num(json, "max_rss_mb").unwrap_or(f64::NAN);
                    table.set(device_name, self.l, format!("{rss:.0}"));
                }
                Err(e) => self.both(table, first_names, &e.text()),
            }

            if first.is_ok() {
                let edit_args = self.args(&url, &state, &["--store", &office]);
                match client(self.bench, "edit", &edit_args, LIMIT).await {
                    Err(e) => self.both(table, catch_names, &format!("edit: {}", e.text())),
                    Ok(_) => {
                        proxy.reset();
                        let caught = client(self.bench, "catch-up", &first_args, LIMIT).await;
                        let (up, down) = proxy.bytes();
                        match caught {
                            Ok(json) => {
                                let secs = num(&json, "secs").unwrap_or(f64::NAN);
                                table.set(catch_names[0], self.l, format!("{:.1}", secs * 1e3));
                                let kb = (up + down) as f64 / 1e3;
                                table.set(catch_names[1], self.l, format!("{kb:.1}"));
                            }
                            Err(e) => self.both(table, catch_names, &e.text()),
                        }
                    }
                }
            } else {
                self.both(table, catch_names, "no first sync");
            }
            let (peak, rss) = server.memory_mb();
            table.set(
                format!("relay memory holding {size} contacts (peak / now)"),
                self.l,
                format!("{peak:.0}/{rss:.0}"),
            );

            if size == largest {
                // Propagation: per-contact on one contact document; one-doc
                // on the organisation's document as filled.
                let samples = if self.quick { "20" } else { "200" };
                let prop_args = self.args(&url, &state, &["--samples", samples]);
                let prop = client(self.bench, "propagation", &prop_args, LIMIT).await;
                let names = [
                    "propagation device → relay → device p50",
                    "propagation device → relay → device p99",
                ];
                match prop {
                    Ok(json) => {
                        let v = |k| num(&json, k).unwrap_or(f64::NAN);
                        table.set(names[0], self.l, format!("{:.2}", v("p50_ms")));
                        table.set(names[1], self.l, format!("{:.2}", v("p99_ms")));
                    }
                    Err(e) => self.both(table, names, &e.text()),
                }
            }
            org_peak = org_peak.max(server.memory_mb().0);
        }
        table.set(
            "relay peak memory, organisation figures",
            self.l,
            format!("{org_peak:.0}"),
        );
        Ok(())
    }

    /// Ingest and idle devices on a fresh server, as Muster's are.
    async fn ingest_and_idle(&self, devices: usize, table: &mut Table) -> Result<()> {
        let server = Server::start(self.bench, &self.dir.join("server-ingest")).await?;
        let state = self.dir.join("state-ingest.json");
        let d = devices.to_string();
        let ingest_args = self.args(
            &server.url(),
            &state,
            &["--devices", &d, "--per-device", &d],
        );
        let name = format!("relay ingest, {devices} devices × {devices} changes (coordinators)");
        match client(self.bench, "ingest", &ingest_args, LIMIT).await {
            Ok(json) => {
                let rate = num(&json, "per_sec").unwrap_or(f64::NAN);
                table.set(name, self.l, format!("{rate:.0}"));
            }
            Err(e) => table.set(name, self.l, e.text()),
        }

        let n = if self.quick { 100 } else { 1_000 };
        let (_, before) = server.memory_mb();
        let (connected, memory) = idle(self.bench, &server, n).await;
        table.set(
            format!("{n} idle devices: connected and caught up"),
            self.l,
            connected,
        );
        // Muster's name ends with its own "; X before …)": matched on this
        // prefix.
        table.set(
            format!("{n} idle devices: relay memory (peak / holding them"),
            self.l,
            format!("{memory} ({before:.0} before)"),
        );
        Ok(())
    }
}

/// `n` raw WebSockets do the automerge-repo handshake and stay connected;
/// the server's memory once they have idled for 5 s.
async fn idle(bench: &Path, server: &Server, n: usize) -> (String, String) {
    let spawned = Command::new("node")
        .arg("client.mjs")
        .arg("idle")
        .args(["--url", &server.url(), "--devices", &n.to_string()])
        .args(["--timeout", &LIMIT.to_string()])
        .current_dir(app_dir(bench))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = spawned else {
        return ("failed".into(), "-".into());
    };
    let Some(stdout) = child.stdout.take() else {
        return ("failed".into(), "-".into());
    };
    let mut line = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(LIMIT),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await;
    let result = match read {
        Ok(Ok(_)) if line.starts_with('{') => {
            let got = num(&line, "connected").unwrap_or(0.0);
            let secs = num(&line, "secs").unwrap_or(f64::NAN);
            tokio::time::sleep(Duration::from_secs(5)).await;
            let (peak, held) = server.memory_mb();
            (
                format!("{got:.0} in {secs:.1} s"),
                format!("{peak:.0}/{held:.0}"),
            )
        }
        Ok(_) => ("failed".into(), "-".into()),
        Err(_) => (format!("did not finish in {LIMIT} s"), "-".into()),
    };
    drop(child.stdin.take());
    let _ = child.kill().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_reads_a_field_of_the_drivers_json_line() {
        let line = r#"{"secs":1.5,"contacts":2000,"unavailable":0,"max_rss_mb":167.25}"#;
        assert_eq!(num(line, "secs"), Some(1.5));
        assert_eq!(num(line, "max_rss_mb"), Some(167.25));
        assert_eq!(num(line, "unavailable"), Some(0.0));
        assert_eq!(num(line, "missing"), None);
        assert_eq!(num(r#"{"max_rss_mb":null}"#, "max_rss_mb"), None);
    }

    #[test]
    fn table_pairs_read_per_contact_then_one_doc() {
        let mut t = Table::default();
        t.set("b", 1, "2".into());
        t.set("a", 0, "1".into());
        t.set("b", 0, "3".into());
        assert_eq!(
            t.pairs(),
            [("b".into(), "3 / 2".into()), ("a".into(), "1 / -".into())]
        );
    }
}
