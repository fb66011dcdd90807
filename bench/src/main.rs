//! `cargo run --release -p muster-bench [-- --quick] [--markdown FILE]`:
//! measures what users feel and prints one table (figure, Muster, unit,
//! target). Data comes from a fixed seed. Only loopback is used.

mod sync_figures;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use muster_core::{NewContact, NewEvent, Store};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sync_figures::Figure;

const GIVEN: &[&str] = &[
    "Ana", "José", "Zoë", "Mohammed", "Li", "Sofia", "Olumide", "Ingrid", "Mateo", "Aisha",
    "Chloé", "Nguyễn", "Priya", "Tomasz", "Fatima", "Kwame", "Élodie", "Hiroshi", "Amara", "Björn",
    "Lucía", "Dmitri", "Noor", "Siobhán", "Rafael", "Yuki", "Grace", "Omar", "Leila", "Pedro",
    "Hannah", "Kofi", "Marta", "Jonas", "Ayesha", "Carlos", "Emily", "Tariq", "Nadia", "Luca",
    "Isabel", "Samuel", "Mei", "Diego", "Rosa", "Ahmed", "Clara", "Felix", "Ines", "Victor",
];
const FAMILY: &[&str] = &[
    "Silva",
    "Núñez",
    "Müller",
    "Okafor",
    "Chen",
    "García",
    "Nowak",
    "Haddad",
    "Andersen",
    "Rossi",
    "Dubois",
    "Thị Lan",
    "Patel",
    "Kowalski",
    "Mensah",
    "Tanaka",
    "O'Brien",
    "Fernández",
    "Ivanov",
    "Khan",
    "Schmidt",
    "Costa",
    "Yilmaz",
    "Smith",
    "Jones",
    "Nguyen",
    "Kim",
    "Santos",
    "Pereira",
    "Martin",
    "Bernard",
    "López",
    "Gonzalez",
    "Wilson",
    "Taylor",
    "Brown",
    "Moreau",
    "Lefèvre",
    "Almeida",
    "Sørensen",
    "Virtanen",
    "Horváth",
    "Popescu",
    "Papadopoulos",
    "Cohen",
    "Mwangi",
    "Abebe",
    "Ramírez",
    "Sato",
    "Wójcik",
];
const TAGS: &[&str] = &[
    "food-bank",
    "choir",
    "youth",
    "donor-2026",
    "newsletter",
    "driver",
    "translator",
    "board",
];

fn person(rng: &mut StdRng, i: usize) -> NewContact {
    let given = GIVEN[rng.random_range(0..GIVEN.len())];
    let family = FAMILY[rng.random_range(0..FAMILY.len())];
    let ascii: String = format!("{given}.{family}")
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    let tags = (0..rng.random_range(0..3))
        .map(|_| TAGS[rng.random_range(0..TAGS.len())].to_owned())
        .collect();
    NewContact {
        name: format!("{given} {family}"),
        phones: vec![format!("+44 7700 {:06}", rng.random_range(0..1_000_000))],
        emails: vec![format!("{ascii}{i}@example.org")],
        tags,
        ..Default::default()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn timed_ms(samples: &mut Vec<f64>, f: impl FnOnce() -> Result<()>) -> Result<()> {
    let t = Instant::now();
    f()?;
    samples.push(t.elapsed().as_secs_f64() * 1000.0);
    Ok(())
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn now() -> i64 {
    1_793_491_200_000
}

/// `__open-probe PATH`: open the store cold in a fresh process, run 100
/// searches, print `OPEN <µs> <peak RSS MB>`.
fn open_probe(path: &Path) -> Result<()> {
    let t = Instant::now();
    let store = Store::open(path)?;
    let open_us = t.elapsed().as_micros();
    for q in [
        "silv", "müll", "ana", "7700 1", "okafor", "chen", "lucía", "gonz", "tanak", "rossi",
    ]
    .iter()
    .cycle()
    .take(100)
    {
        store.search_contacts(q, 20)?;
    }
    println!("OPEN {open_us} {:.1}", peak_rss_mb());
    Ok(())
}

fn core_figures(dir: &Path, n: usize, quick: bool) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    let mut fig = |name: String, value: String, unit: &'static str, target: &'static str| {
        out.push(Figure {
            name,
            value,
            unit,
            target,
        })
    };
    let path = dir.join("device.muster");
    let mut store = Store::open(&path)?;
    let mut rng = StdRng::seed_from_u64(42);

    eprintln!("core: creating {n} contacts");
    let t = Instant::now();
    let mut made = 0;
    while made < n {
        let batch: Vec<NewContact> = (made..(made + 1_000).min(n))
            .map(|i| person(&mut rng, i))
            .collect();
        made += batch.len();
        store.create_contacts(&batch, now())?;
    }
    let secs = t.elapsed().as_secs_f64();
    fig(
        format!("create {n} contacts (batches of 1,000)"),
        format!("{secs:.1}"),
        "s",
        "",
    );
    fig(
        "  rate".into(),
        format!("{:.0}", n as f64 / secs),
        "contacts/s",
        "",
    );

    eprintln!("core: single durable writes");
    store.checkpoint()?; // as an app does when idle
    let writes = if quick { 300 } else { 1_000 };
    let mut lat = Vec::new();
    for i in 0..writes {
        let p = person(&mut rng, n + i);
        timed_ms(&mut lat, || {
            Ok(store.create_contact(&p, now()).map(drop)?)
        })?;
    }
    lat.sort_by(f64::total_cmp);
    fig(
        "durable write (new contact) p50".into(),
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
        "",
    );
    fig(
        "durable write (new contact) p99".into(),
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
        "< 2",
    );
    fig(
        "durable write (new contact) max".into(),
        format!("{:.2}", percentile(&lat, 1.0)),
        "ms",
        "",
    );

    eprintln!("core: check-ins on an event with 2,000 sign-ups");
    let event = store.create_event(
        &NewEvent {
            title: "Bench gala".into(),
            starts_at: now(),
            ends_at: None,
            place: "Hall".into(),
            capacity: Some(1_500),
        },
        now(),
    )?;
    let ids: Vec<String> = store
        .list_contacts(2_000, 0)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    for id in &ids {
        store.sign_up(&event, id, false, now())?;
    }
    let mut lat = Vec::new();
    for id in ids.iter().take(writes) {
        timed_ms(&mut lat, || Ok(store.check_in(&event, id, now() + 1)?))?;
    }
    lat.sort_by(f64::total_cmp);
    fig(
        "check-in, event with 2,000 sign-ups p50".into(),
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
        "",
    );
    fig(
        "check-in, event with 2,000 sign-ups p99".into(),
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
        "",
    );

    eprintln!("core: searches");
    let mut queries = Vec::new();
    for _ in 0..1_000 {
        let q = match rng.random_range(0..4) {
            0 => FAMILY[rng.random_range(0..FAMILY.len())]
                .chars()
                .take(rng.random_range(3..6))
                .collect::<String>(),
            1 => {
                let g = GIVEN[rng.random_range(0..GIVEN.len())];
                let chars: Vec<char> = g.chars().collect();
                let start = rng.random_range(0..chars.len().saturating_sub(2).max(1));
                chars[start..(start + 3).min(chars.len())].iter().collect()
            }
            2 => format!("{:04}", rng.random_range(0..10_000)),
            _ => format!(
                "{}.",
                GIVEN[rng.random_range(0..GIVEN.len())].to_lowercase()
            ),
        };
        queries.push(q);
    }
    let mut lat = Vec::new();
    let mut hits = Vec::new();
    for q in &queries {
        let t = Instant::now();
        let found = store.search_contacts(q, 20)?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        hits.push(found.len() as f64);
    }
    lat.sort_by(f64::total_cmp);
    hits.sort_by(f64::total_cmp);
    fig(
        format!("search among {n} contacts p50"),
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
        "",
    );
    fig(
        format!("search among {n} contacts p99"),
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
        "< 5",
    );
    fig(
        "  median results per search (limit 20)".into(),
        format!("{:.0}", percentile(&hits, 0.5)),
        "",
        "",
    );
    drop(store);

    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = path.with_file_name("device.muster-wal");
    let total = size(&path) + size(&wal);
    fig(
        format!("store size, {n} contacts"),
        format!("{:.1}", total as f64 / 1e6),
        "MB",
        "",
    );

    eprintln!("core: cold open in a fresh process");
    let probe = std::process::Command::new(std::env::current_exe()?)
        .arg("__open-probe")
        .arg(&path)
        .output()?;
    let line = String::from_utf8_lossy(&probe.stdout).to_string();
    let mut parts = line.split_whitespace().skip(1);
    let open_us: f64 = parts
        .next()
        .and_then(|v| v.parse().ok())
        .context("open probe")?;
    let rss: f64 = parts
        .next()
        .and_then(|v| v.parse().ok())
        .context("open probe")?;
    fig(
        "store open (fresh process)".into(),
        format!("{:.1}", open_us / 1000.0),
        "ms",
        "< 200",
    );
    fig(
        format!("device memory: open + 100 searches, {n} contacts"),
        format!("{rss:.0}"),
        "MB (peak RSS)",
        "",
    );
    fig(
        "bench process peak memory so far".into(),
        format!("{:.0}", peak_rss_mb()),
        "MB",
        "",
    );
    Ok(out)
}

fn table(figures: &[Figure]) -> String {
    let mut s = String::new();
    s +=
        "| figure | Muster | automerge-repo | ratio | unit | target |\n|---|---|---|---|---|---|\n";
    for f in figures {
        s += &format!(
            "| {} | {} | - | - | {} | {} |\n",
            f.name, f.value, f.unit, f.target
        );
    }
    s
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__open-probe") {
        return open_probe(Path::new(args.get(1).context("path")?));
    }
    if args.first().map(String::as_str) == Some("__create") {
        // For profiling: create N contacts in a scratch store.
        let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(20_000);
        let dir = tempfile::tempdir()?;
        let mut store = Store::open(dir.path().join("p.muster"))?;
        let mut rng = StdRng::seed_from_u64(42);
        let t = Instant::now();
        for chunk in 0..n.div_ceil(1_000) {
            let batch: Vec<NewContact> = (0..1_000)
                .map(|i| person(&mut rng, chunk * 1_000 + i))
                .collect();
            store.create_contacts(&batch, now())?;
        }
        println!("{n} contacts in {:.2} s", t.elapsed().as_secs_f64());
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("__relay") {
        return sync_figures::relay_main(Path::new(args.get(1).context("path")?));
    }
    let quick = args.iter().any(|a| a == "--quick");
    let markdown = args
        .iter()
        .position(|a| a == "--markdown")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut figures = Vec::new();
    if only.as_deref() != Some("sync") {
        figures.extend(core_figures(
            dir.path(),
            if quick { 10_000 } else { 100_000 },
            quick,
        )?);
    }
    if only.as_deref() != Some("core") {
        let sizes: &[usize] = if quick {
            &[2_000, 10_000]
        } else {
            &[10_000, 100_000]
        };
        figures.extend(sync_figures::run(
            &dir.path().join("sync"),
            sizes,
            if quick { 20 } else { 100 },
            quick,
        )?);
    }
    let text = table(&figures);
    println!("{text}");
    println!(
        "(run took {:.0} s{})",
        started.elapsed().as_secs_f64(),
        if quick { ", --quick" } else { "" }
    );
    if let Some(path) = markdown {
        std::fs::write(&path, &text).with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
