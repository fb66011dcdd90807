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
        let mut child = Command::new("node")
            .arg("server.mjs")
            .arg(data)
            .current_dir(app_dir(bench_dir))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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

/// One measurement's limit, and the setup (fill) limit.
const LIMIT: u64 = 180;
const FILL_LIMIT: u64 = 300;

/// Every automerge-repo figure, named as Muster's figure it compares with;
/// values read "per-contact layout / one-doc layout".
pub async fn figures(dir: &Path, sizes: &[usize], quick: bool) -> Result<Vec<(String, String)>> {
    let bench = default_bench_dir();
    ensure_installed(bench)?;
    let mut table = Table::default();
    for (l, layout) in LAYOUTS.iter().enumerate() {
        run_layout(
            bench,
            &dir.join(layout),
            l,
            layout,
            sizes,
            quick,
            &mut table,
        )
        .await?;
    }
    Ok(table.pairs())
}

async fn run_layout(
    bench: &Path,
    dir: &Path,
    l: usize,
    layout: &str,
    sizes: &[usize],
    quick: bool,
    table: &mut Table,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let common = |url: &str, state: &Path| -> Vec<String> {
        vec![
            "--url".into(),
            url.into(),
            "--layout".into(),
            layout.into(),
            "--state".into(),
            state.display().to_string(),
        ]
    };
    let with = |mut v: Vec<String>, extra: &[&str]| {
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let mut org_peak: f64 = 0.0;
    for &size in sizes {
        // A fresh server per size: each size is filled from nothing.
        let server = Server::start(bench, &dir.join(format!("server{size}"))).await?;
        let proxy = Proxy::start(server.addr()).await?;
        let state = dir.join(format!("state{size}.json"));
        let office = dir.join(format!("office{size}"));
        let device = dir.join(format!("device{size}"));
        let args = common(&proxy.url(), &state);
        let ok = |r: &std::result::Result<String, Failed>| r.is_ok();

        let filled = client(
            bench,
            "fill",
            &with(
                args.clone(),
                &[
                    "--n",
                    &size.to_string(),
                    "--store",
                    &office.display().to_string(),
                ],
            ),
            FILL_LIMIT,
        )
        .await;
        if let Err(e) = &filled {
            let text = format!("fill: {}", e.text());
            table.set(
                format!("first sync, {size} contacts: time"),
                l,
                text.clone(),
            );
            table.set(
                format!("first sync, {size} contacts: bytes received"),
                l,
                text,
            );
            org_peak = org_peak.max(server.memory_mb().0);
            continue;
        }

        proxy.reset();
        let first = client(
            bench,
            "first-sync",
            &with(args.clone(), &["--store", &device.display().to_string()]),
            LIMIT,
        )
        .await;
        let (_, down) = proxy.bytes();
        match &first {
            Ok(json) => {
                let secs = num(json, "secs").unwrap_or(f64::NAN);
                table.set(
                    format!("first sync, {size} contacts: time"),
                    l,
                    format!("{secs:.2}"),
                );
                table.set(
                    format!("first sync, {size} contacts: bytes received"),
                    l,
                    format!("{:.1}", down as f64 / 1e6),
                );
            }
            Err(e) => {
                table.set(format!("first sync, {size} contacts: time"), l, e.text());
                table.set(
                    format!("first sync, {size} contacts: bytes received"),
                    l,
                    e.text(),
                );
            }
        }

        if size == largest {
            let time_name = format!("catch-up after 100 edits in {size} contacts: time");
            let bytes_name = format!("catch-up after 100 edits in {size} contacts: bytes");
            if ok(&first) {
                let edited = client(
                    bench,
                    "edit",
                    &with(args.clone(), &["--store", &office.display().to_string()]),
                    LIMIT,
                )
                .await;
                if let Err(e) = edited {
                    table.set(&time_name, l, format!("edit: {}", e.text()));
                } else {
                    proxy.reset();
                    let caught = client(
                        bench,
                        "catch-up",
                        &with(args.clone(), &["--store", &device.display().to_string()]),
                        LIMIT,
                    )
                    .await;
                    let (up, down) = proxy.bytes();
                    match caught {
                        Ok(json) => {
                            let secs = num(&json, "secs").unwrap_or(f64::NAN);
                            table.set(&time_name, l, format!("{:.1}", secs * 1000.0));
                            table.set(&bytes_name, l, format!("{:.1}", (up + down) as f64 / 1e3));
                        }
                        Err(e) => {
                            table.set(&time_name, l, e.text());
                            table.set(&bytes_name, l, e.text());
                        }
                    }
                }
            }
            let (peak, rss) = server.memory_mb();
            table.set(
                format!("relay memory holding {size} contacts (peak / now)"),
                l,
                format!("{peak:.0}/{rss:.0}"),
            );

            // Propagation: per-contact on one contact document; one-doc on
            // the organisation's document as filled.
            let samples = if quick { "50" } else { "200" };
            let prop = client(
                bench,
                "propagation",
                &with(args.clone(), &["--samples", samples]),
                LIMIT,
            )
            .await;
            let p50 = "propagation device → relay → device p50";
            let p99 = "propagation device → relay → device p99";
            match prop {
                Ok(json) => {
                    let v = |k| num(&json, k).unwrap_or(f64::NAN);
                    table.set(p50, l, format!("{:.2}", v("p50_ms")));
                    table.set(p99, l, format!("{:.2}", v("p99_ms")));
                }
                Err(e) => {
                    table.set(p50, l, e.text());
                    table.set(p99, l, e.text());
                }
            }
        }
        org_peak = org_peak.max(server.memory_mb().0);
    }
    table.set(
        "relay peak memory, organisation figures",
        l,
        format!("{org_peak:.0}"),
    );

    // Ingest and idle devices on a fresh server, as Muster's are.
    let server = Server::start(bench, &dir.join("server-ingest")).await?;
    let state = dir.join("state-ingest.json");
    let args = common(&server.url(), &state);
    let devices = if quick { 20 } else { 100 };
    let per_device = devices;
    let name = format!("relay ingest, {devices} devices × {per_device} changes (coordinators)");
    let rate = client(
        bench,
        "ingest",
        &with(
            args.clone(),
            &[
                "--devices",
                &devices.to_string(),
                "--per-device",
                &per_device.to_string(),
            ],
        ),
        LIMIT,
    )
    .await;
    match rate {
        Ok(json) => table.set(
            name,
            l,
            format!("{:.0}", num(&json, "per_sec").unwrap_or(f64::NAN)),
        ),
        Err(e) => table.set(name, l, e.text()),
    }

    let n = if quick { 200 } else { 1_000 };
    let (_, before) = server.memory_mb();
    let (connected, memory) = idle(bench, &server, n).await;
    table.set(
        format!("{n} idle devices: connected and caught up"),
        l,
        connected,
    );
    // Muster's name ends with its own "; X before)": match on this prefix.
    table.set(
        format!("{n} idle devices: relay memory (peak / holding them"),
        l,
        format!("{memory} ({before:.0} before)"),
    );
    Ok(())
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
