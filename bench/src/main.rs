//! `cargo run --release -p muster-bench [-- --quick] [--markdown FILE]
//! [--only core|sync|backends]`: measures what users feel and prints one table
//! (figure, Muster, automerge-repo, ratio, unit, target) to stdout, progress
//! to stderr. Every store lives in a fresh temporary directory; data comes
//! from a fixed seed (ChaCha8, 42) and fixed clock values, so two runs
//! measure the same work. Only loopback is used.
//!
//! Hidden subcommands (this binary spawns itself):
//! - `__open-probe PATH`: open the store cold, search, print
//!   `OPEN <open µs> <first search µs> <peak RSS MB>`;
//! - `__relay DATA [CATCH_UP_BATCHES BATCH_BYTES]`: a relay for the sync
//!   figures;
//! - `__stampede [N SIZE [SLOTS KIB]]`: N fresh devices (1,000) begin a
//!   first sync of SIZE contacts (2,000) at once; the relay's memory with
//!   the catch-up limits given, or with its defaults and with none (as it
//!   was before);
//! - `__device-sync URL TOKEN PATH [--report] [--searches]`: a device's
//!   sync, printing `PEAK <MB> SECS <s>` (its peak resident memory, the
//!   sync's time), with
//!   `--report` as `muster sync` does it (baseline, reconciliation report),
//!   with `--searches` searching through a reader every 50 ms meanwhile;
//! - `__automerge-repo [SIZE] [--quick]`: the automerge-repo figures alone;
//! - `__ingest COLUMN [DEVICES PER_DEVICE]`: the relay-backend ingest
//!   figure alone (0 SQLite, 1 and 2 PostgreSQL with one and two relays);
//! - `__enrolled [N…]`: a device enrolled earlier receives N new contacts
//!   (1,000), as `muster sync` in a process of its own;
//! - `__create N`: create N contacts in a scratch store (for profiling).

mod automerge_repo;
mod core_figures;
mod enrolled;
mod import_figures;
mod people;
mod registration_figures;
mod relay_backends;
mod sync_figures;
mod tools;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use muster_core::Store;
use people::*;
use rand::RngExt;
use sync_figures::Figure;

/// The `p` quantile (0..=1) of sorted samples, nearest rank.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// This process's peak resident memory (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// This process's resident memory now (VmRSS), in MB.
pub fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// A memory line of /proc/self/status, in MB.
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `12345` → `12,345`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Size on disk of the store file and of its write-ahead log, in bytes.
fn store_bytes(path: &Path) -> (u64, u64) {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    (size(path), size(Path::new(&wal)))
}

const PROBE_QUERIES: &[&str] = &[
    "silv",
    "müll",
    "jose",
    "7700 9",
    "okafor",
    "chen",
    "lucía",
    "gonz",
    "tanak",
    "rossi",
    "nguy",
    "zoe",
    "ürge",
    "0012",
    "example.c",
    "anders",
    "élod",
    "haddad",
    "smit",
    "kowal",
];

/// `__open-probe PATH`: opens the store in this fresh process, runs one
/// search, then 99 more, and prints
/// `OPEN <open µs> <first search µs> <peak RSS MB>`.
fn open_probe(path: &Path) -> Result<()> {
    let t = Instant::now();
    let store = Store::open(path)?;
    let open_us = t.elapsed().as_micros();
    let t = Instant::now();
    store.search_contacts(PROBE_QUERIES[0], 20)?;
    let first_us = t.elapsed().as_micros();
    for q in PROBE_QUERIES.iter().cycle().skip(1).take(99) {
        store.search_contacts(q, 20)?;
    }
    println!("OPEN {open_us} {first_us} {:.1}", peak_rss_mb());
    Ok(())
}

/// Runs `__open-probe` in a child process; returns (open ms, first search
/// ms, peak RSS MB).
fn run_probe(path: &Path) -> Result<(f64, f64, f64)> {
    let probe = std::process::Command::new(std::env::current_exe()?)
        .arg("__open-probe")
        .arg(path)
        .output()?;
    let out = String::from_utf8_lossy(&probe.stdout);
    if !probe.status.success() {
        bail!(
            "open probe failed ({}): {out}{}",
            probe.status,
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    let line = out
        .lines()
        .find(|l| l.starts_with("OPEN "))
        .with_context(|| format!("open probe printed {out:?}"))?;
    let nums: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("open probe printed {line:?}"))?;
    let [open_us, first_us, rss] = nums[..] else {
        bail!("open probe printed {line:?}");
    };
    Ok((open_us / 1000.0, first_us / 1000.0, rss))
}

/// Collects figures as rows of the table.
#[derive(Default)]
struct Figures(Vec<Figure>);

impl Figures {
    fn add(&mut self, name: impl Into<String>, value: String, unit: &'static str) {
        self.target(name, value, unit, "");
    }

    fn target(
        &mut self,
        name: impl Into<String>,
        value: String,
        unit: &'static str,
        target: &'static str,
    ) {
        self.0.push(Figure {
            name: name.into(),
            value,
            unit,
            target,
        });
    }
}

/// The leading number of a cell ("37 / 37" → 37, "448/384" → 448).
fn leading_number(cell: &str) -> Option<f64> {
    let end = cell
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(cell.len());
    cell[..end].parse().ok().filter(|v: &f64| v.is_finite())
}

/// "automerge-repo ÷ Muster" for each layout of an automerge-repo cell
/// ("per-contact / one-doc"), or "-" where either side is not a number.
fn ratio(muster: &str, other: &str) -> String {
    // Only where Muster's cell is a number (or "peak / now" numbers), not
    // a sentence such as "200 in 0.2 s".
    if !muster.split(" / ").all(|p| p.trim().parse::<f64>().is_ok()) {
        return "-".into();
    }
    let Some(m) = leading_number(muster).filter(|m| *m > 0.0) else {
        return "-".into();
    };
    let parts: Vec<String> = other
        .split(" / ")
        .map(|v| match leading_number(v) {
            Some(o) if o / m >= 10.0 => format!("{:.0}", o / m),
            Some(o) if o / m >= 0.095 => format!("{:.1}", o / m),
            Some(o) => format!("{:.2}", o / m),
            None => "-".into(),
        })
        .collect();
    if parts.iter().all(|p| p == "-") {
        "-".into()
    } else {
        parts.join(" / ")
    }
}

/// The table as Markdown, columns padded so that it also reads as text.
/// `others` are automerge-repo's figures by name: each joins the Muster
/// figure of the same name (or whose name it begins), and any left over get
/// rows of their own after the rest.
fn table(figures: &[Figure], others: &[(String, String)]) -> String {
    let header = [
        "figure",
        "Muster",
        "automerge-repo",
        "ratio",
        "unit",
        "target",
    ];
    let mut used = vec![false; others.len()];
    let mut rows: Vec<[String; 6]> = figures
        .iter()
        .map(|f| {
            let found = others.iter().position(|(n, _)| *n == f.name).or_else(|| {
                others
                    .iter()
                    .position(|(n, _)| n.ends_with("holding them") && f.name.starts_with(n))
            });
            let (other, r) = match found {
                Some(i) => {
                    used[i] = true;
                    (others[i].1.clone(), ratio(&f.value, &others[i].1))
                }
                None => ("-".into(), "-".into()),
            };
            [
                f.name.clone(),
                f.value.clone(),
                other,
                r,
                f.unit.into(),
                f.target.into(),
            ]
        })
        .collect();
    for ((name, value), _) in others.iter().zip(&used).filter(|(_, u)| !**u) {
        rows.push([
            name.clone(),
            "-".into(),
            value.clone(),
            "-".into(),
            String::new(),
            String::new(),
        ]);
    }
    markdown(&header, &rows)
}

/// A Markdown table, columns padded so that it also reads as text; the
/// columns between the first and the last two hold numbers and are set to
/// the right.
fn markdown<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let numeric = |i: usize| i > 0 && i + 2 < N;
    let mut width = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut s = String::from("|");
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            if numeric(i) {
                s += &format!(" {pad}{cell} |");
            } else {
                s += &format!(" {cell}{pad} |");
            }
        }
        s + "\n"
    };
    let mut s = line(*header);
    s += "|";
    for (i, w) in width.iter().enumerate() {
        let dashes = "-".repeat(*w);
        s += &if numeric(i) {
            format!(" {dashes}:|")
        } else {
            format!(" {dashes} |")
        };
    }
    s += "\n";
    for row in rows {
        s += &line(row.each_ref().map(String::as_str));
    }
    s
}

/// The comparison of the relay's backends as a Markdown table.
fn backends_table(rows: &[relay_backends::Row]) -> String {
    let [a, b, c] = relay_backends::COLUMNS;
    let header = ["figure", a, b, c, "unit", "target"];
    let rows: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let [x, y, z] = r.cells.clone();
            [r.name.clone(), x, y, z, r.unit.into(), r.target.into()]
        })
        .collect();
    markdown(&header, &rows)
}

/// `muster-bench`: the performance table.
#[derive(Parser)]
#[command(
    name = "muster-bench",
    about = "Measures what Muster's users feel and prints one table (figure, Muster, automerge-repo, ratio, unit, target)"
)]
struct Cli {
    /// Smaller sizes (about a minute and a half); compares with
    /// automerge-repo at the smaller size only.
    #[arg(long)]
    quick: bool,
    /// Also write the table to FILE (Markdown).
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Only the core figures, the sync figures, or the relay on SQLite
    /// beside PostgreSQL with one and two relays (`backends`).
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Leave the automerge-repo column out (it needs Node.js).
    #[arg(long)]
    no_automerge_repo: bool,
    #[command(subcommand)]
    tool: Option<Tool>,
}

/// Which half of the table `--only` keeps.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    Core,
    Sync,
    Backends,
}

/// The hidden subcommands: this binary spawns itself for the figures that
/// need a process of their own, and a profile is taken of one alone.
#[derive(Subcommand)]
enum Tool {
    /// The automerge-repo figures alone, at SIZE contacts.
    #[command(name = "__automerge-repo", hide = true)]
    AutomergeRepo {
        #[arg(default_value_t = 10_000)]
        size: usize,
        #[arg(long)]
        quick: bool,
    },
    /// Open the store cold and search: `OPEN <µs> <first search µs> <MB>`.
    #[command(name = "__open-probe", hide = true)]
    OpenProbe { path: PathBuf },
    /// A fresh device's first sync: `PEAK <MB> SECS <s>`.
    #[command(name = "__device-sync", hide = true)]
    DeviceSync {
        url: String,
        token: String,
        path: PathBuf,
        /// Also the baseline and the reconciliation report, as `muster sync`.
        #[arg(long)]
        report: bool,
        /// Search through a reader every 50 ms during the sync.
        #[arg(long)]
        searches: bool,
    },
    /// N fresh devices begin a first sync of SIZE contacts at once, with
    /// the catch-up limits SLOTS × KIB, or the relay's defaults and none.
    #[command(name = "__stampede", hide = true)]
    Stampede {
        #[arg(default_value_t = 1_000)]
        n: usize,
        #[arg(default_value_t = 2_000)]
        size: usize,
        slots: Option<usize>,
        #[arg(default_value_t = 256)]
        kib: usize,
    },
    /// A relay for the sync figures.
    #[command(name = "__relay", hide = true)]
    Relay {
        data: PathBuf,
        /// Serve from PostgreSQL at URL instead of SQLite in DATA.
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        catch_up_batches: Option<usize>,
        batch_bytes: Option<usize>,
    },
    /// Apply N contacts arriving as snapshots.
    #[command(name = "__apply", hide = true)]
    Apply {
        #[arg(default_value_t = 10_000)]
        n: usize,
    },
    /// The duplicate-finding figures at N contacts.
    #[command(name = "__duplicates", hide = true)]
    Duplicates {
        #[arg(default_value_t = 100_000)]
        n: usize,
    },
    /// The report figures (keeping the store at PATH if given).
    #[command(name = "__reports", hide = true)]
    Reports { keep: Option<PathBuf> },
    /// The relay-backend ingest figure alone on COLUMN (0 SQLite, 1 and 2
    /// PostgreSQL with one and two relays), for profiling.
    #[command(name = "__ingest", hide = true)]
    Ingest {
        column: usize,
        #[arg(default_value_t = 100)]
        devices: usize,
        #[arg(default_value_t = 100)]
        per_device: usize,
    },
    /// The enrolled-device figures alone, for these sizes (1,000 if none).
    #[command(name = "__enrolled", hide = true)]
    Enrolled { sizes: Vec<usize> },
    /// Create N contacts in a scratch store.
    #[command(name = "__create", hide = true)]
    Create {
        #[arg(default_value_t = 20_000)]
        n: usize,
    },
    /// An office pushes N new contacts to a fresh relay, the push alone
    /// timed.
    #[command(name = "__push", hide = true)]
    Push {
        #[arg(default_value_t = 100_000)]
        n: usize,
        /// Then a fresh device's first sync of them (time, peak memory).
        #[arg(long)]
        then_sync: bool,
    },
    /// N people register through an event's public page (at most 2,500).
    #[command(name = "__registrations", hide = true)]
    Registrations {
        #[arg(default_value_t = 2_000)]
        n: usize,
    },
    /// Import FILE into a new store at STORE: `SECS <s> PEAK <MB> CREATED <n>`.
    #[command(name = "__import", hide = true)]
    Import { file: PathBuf, store: PathBuf },
    /// The import figures alone, at each of SIZES rows (default 20,000 and
    /// 100,000).
    #[command(name = "__imports", hide = true)]
    Imports { sizes: Vec<usize> },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(tool) = cli.tool {
        return run_tool(tool);
    }
    let Cli {
        quick,
        markdown,
        only,
        no_automerge_repo,
        ..
    } = cli;
    let compare = !no_automerge_repo;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut figures = Vec::new();
    let mut others = Vec::new();
    if only.is_none() || only == Some(Only::Core) {
        figures.extend(core_figures::core_figures(
            dir.path(),
            if quick { 10_000 } else { 100_000 },
            quick,
        )?);
        let sizes: &[usize] = if quick {
            &[2_000, 10_000]
        } else {
            &[20_000, 100_000]
        };
        figures.extend(import_figures::import_figures(dir.path(), sizes)?);
    }
    if only.is_none() || only == Some(Only::Sync) {
        let sizes: &[usize] = if quick {
            &[2_000, 10_000]
        } else {
            &[10_000, 100_000]
        };
        let devices = if quick { 20 } else { 100 };
        figures.extend(sync_figures::run(
            &dir.path().join("sync"),
            sizes,
            devices,
            quick,
        )?);
        let enrolled: &[usize] = if quick {
            &[1_000]
        } else {
            &[1_000, 10_000, 100_000]
        };
        figures.extend(enrolled::run(&dir.path().join("enrolled"), enrolled)?);
        figures.extend(registration_figures::registration_figures(
            &dir.path().join("registration"),
            if quick { 200 } else { 2_000 },
        )?);
        if compare {
            // The same shapes on automerge-repo's sync server, after
            // Muster's relay has stopped, so neither shares the machine.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            // --quick compares at the smaller size only, to stay near a
            // minute.
            let compared = if quick { &sizes[..1] } else { sizes };
            // Without Node.js (or npm's registry) Muster's table still
            // prints, its comparison column empty, and says why.
            match runtime.block_on(automerge_repo::figures(
                &dir.path().join("automerge-repo"),
                compared,
                devices,
                quick,
            )) {
                Ok(pairs) => others = pairs,
                Err(e) => eprintln!("automerge-repo: left out: {e:#}"),
            }
        }
    }
    let mut text = if figures.is_empty() {
        String::new()
    } else {
        table(&figures, &others)
    };
    if only.is_none() || only == Some(Only::Backends) {
        let rows = if quick {
            relay_backends::run(&dir.path().join("backends"), 10_000, 20, 20, 50)?
        } else {
            relay_backends::run(&dir.path().join("backends"), 100_000, 100, 100, 200)?
        };
        if !text.is_empty() {
            text += "\n";
        }
        text += &backends_table(&rows);
    }
    println!("{text}");
    println!(
        "(run took {:.0} s{})",
        started.elapsed().as_secs_f64(),
        if quick { ", --quick" } else { "" }
    );
    if let Some(path) = markdown {
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs one hidden subcommand.
fn run_tool(tool: Tool) -> Result<()> {
    match tool {
        Tool::AutomergeRepo { size, quick } => {
            let dir = tempfile::tempdir()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let devices = if quick { 20 } else { 100 };
            let pairs =
                runtime.block_on(automerge_repo::figures(dir.path(), &[size], devices, quick))?;
            for (name, value) in pairs {
                println!("{name}\t{value}");
            }
            Ok(())
        }
        Tool::OpenProbe { path } => open_probe(&path),
        Tool::Enrolled { sizes } => {
            let dir = tempfile::tempdir()?;
            let sizes = if sizes.is_empty() { vec![1_000] } else { sizes };
            let figures = enrolled::run(dir.path(), &sizes)?;
            println!("{}", table(&figures, &[]));
            Ok(())
        }
        Tool::DeviceSync {
            url,
            token,
            path,
            report,
            searches,
        } => sync_figures::device_sync_main(&url, &token, &path, report, searches),
        Tool::Stampede {
            n,
            size,
            slots,
            kib,
        } => {
            let limits = slots.map(|slots| (slots, kib << 10));
            let dir = tempfile::tempdir()?;
            for f in sync_figures::stampede(dir.path(), n, size, limits)? {
                println!("{}: {} {}", f.name, f.value, f.unit);
            }
            Ok(())
        }
        Tool::Relay {
            data,
            database,
            catch_up_batches,
            batch_bytes,
        } => {
            let catch_up = catch_up_batches.zip(batch_bytes);
            sync_figures::relay_main(&data, database.as_deref(), catch_up)
        }
        Tool::Apply { n } => tools::apply(n),
        Tool::Duplicates { n } => tools::duplicates_figure(n),
        Tool::Reports { keep } => tools::reports_figure(keep.as_deref()),
        Tool::Ingest {
            column,
            devices,
            per_device,
        } => relay_backends::ingest_alone(column, devices, per_device),
        Tool::Create { n } => tools::create(n),
        Tool::Push { n, then_sync } => tools::push(n, then_sync),
        Tool::Registrations { n } => {
            let dir = tempfile::tempdir()?;
            let figures = registration_figures::registration_figures(dir.path(), n)?;
            println!("{}", table(&figures, &[]));
            Ok(())
        }
        Tool::Import { file, store } => import_figures::import_main(&file, &store),
        Tool::Imports { sizes } => {
            let dir = tempfile::tempdir()?;
            let sizes = if sizes.is_empty() {
                vec![20_000, 100_000]
            } else {
                sizes
            };
            let figures = import_figures::import_figures(dir.path(), &sizes)?;
            println!("{}", table(&figures, &[]));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(name: &str, value: &str) -> Figure {
        Figure {
            name: name.into(),
            value: value.into(),
            unit: "s",
            target: "",
        }
    }

    #[test]
    fn ratio_is_automerge_repo_over_muster_per_layout() {
        assert_eq!(ratio("2.00", "5.00 / 1.00"), "2.5 / 0.5");
        assert_eq!(ratio("100", "5 / 1"), "0.05 / 0.01");
        assert_eq!(ratio("2", "40 / not run"), "20 / -");
        assert_eq!(ratio("37 / 37", "448/384 / 74/70"), "12 / 2.0");
        // Not numbers on Muster's side: no ratio.
        assert_eq!(ratio("200 in 0.2 s", "200 in 0.1 s / -"), "-");
        assert_eq!(ratio("0", "5 / 5"), "-");
        assert_eq!(ratio("3", "failed / did not finish in 300 s"), "-");
    }

    #[test]
    fn table_puts_each_automerge_repo_value_beside_its_figure() {
        let figures = [
            figure("first sync, 10000 contacts: time", "1.00"),
            figure(
                "100 idle devices: relay memory (peak / holding them; 45 before they connected)",
                "60 / 50",
            ),
            figure("open cold", "1.4"),
        ];
        let others = [
            (
                "100 idle devices: relay memory (peak / holding them".to_string(),
                "120/100 (90 before) / 90/90 (80 before)".to_string(),
            ),
            (
                "first sync, 10000 contacts: time".to_string(),
                "6.00 / 3.00".to_string(),
            ),
            (
                "only automerge-repo has this".to_string(),
                "7 / 8".to_string(),
            ),
        ];
        let text = table(&figures, &others);
        let row = |start: &str| -> Vec<String> {
            let line = text
                .lines()
                .find(|l| l.trim_start_matches("| ").starts_with(start))
                .unwrap_or_else(|| panic!("no row {start:?} in\n{text}"));
            line.split('|').map(|c| c.trim().to_string()).collect()
        };
        let first = row("first sync, 10000");
        assert_eq!(first[2..5], ["1.00", "6.00 / 3.00", "6.0 / 3.0"]);
        let idle = row("100 idle devices");
        assert_eq!(idle[3], "120/100 (90 before) / 90/90 (80 before)");
        assert_eq!(idle[4], "2.0 / 1.5");
        let open = row("open cold");
        assert_eq!(open[3..5], ["-", "-"]);
        // A figure Muster has no row for gets its own, after the rest.
        let extra = row("only automerge-repo");
        assert_eq!(extra[2..4], ["-", "7 / 8"]);
        assert!(text.find("open cold") < text.find("only automerge-repo"));
    }
}
