//! The core figures: what a volunteer at a check-in desk feels on one
//! device (create, search, roster, open, import and export, reports), with
//! no network.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use muster_core::{NewEvent, Store};

use crate::people::*;
use crate::sync_figures::Figure;
use crate::*;

pub(crate) fn core_figures(dir: &Path, n: usize, quick: bool) -> Result<Vec<Figure>> {
    let mut figs = Figures::default();
    let nn = thousands(n);
    let path = dir.join("device.muster");
    let mut store = Store::open(&path)?;
    let mut people = People::new(42);
    let mut clock = Clock(EPOCH_MS);
    // Every 50th person, to search for later.
    let mut remembered = Vec::new();

    // 1. Bulk creation.
    eprintln!("core: creating {nn} contacts in batches of 1,000");
    let mut made = 0;
    let mut busy = 0.0;
    while made < n {
        let mut batch = Vec::with_capacity(1_000);
        for i in made..(made + 1_000).min(n) {
            let (contact, who) = people.person(i);
            if i % 50 == 0 {
                remembered.push(who);
            }
            batch.push(contact);
        }
        made += batch.len();
        let t = Instant::now();
        store.create_contacts(&batch, clock.tick())?;
        busy += t.elapsed().as_secs_f64();
        if made % 20_000 == 0 {
            eprintln!("  {} contacts, {busy:.1} s", thousands(made));
        }
    }
    figs.add(
        format!("create {nn} contacts (batched, 1,000 per transaction)"),
        format!("{busy:.1}"),
        "s",
    );
    figs.add("  rate", format!("{:.0}", n as f64 / busy), "contacts/s");
    let (db, wal) = store_bytes(&path);
    figs.add(
        format!("store size after creating {nn} (db + wal)"),
        format!("{:.1}", (db + wal) as f64 / 1e6),
        "MB",
    );
    figs.add("  of which wal", format!("{:.1}", wal as f64 / 1e6), "MB");
    figs.add(
        "  per contact",
        format!("{:.2}", (db + wal) as f64 / 1e3 / n as f64),
        "kB",
    );

    // 2. Single durable writes: one transaction, fsync'd, each.
    store.checkpoint()?; // as an app does when idle
    let writes = if quick { 300 } else { 1_000 };
    eprintln!(
        "core: {} single durable writes (create_contact)",
        thousands(writes)
    );
    let mut lat = Vec::with_capacity(writes);
    for i in 0..writes {
        let (contact, _) = people.person(n + i);
        let now = clock.tick();
        let t = Instant::now();
        store.create_contact(&contact, now)?;
        lat.push(ms_since(t));
    }
    let lat = sorted(lat);
    figs.add(
        "single durable write (create_contact) p50",
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
    );
    figs.target(
        "single durable write (create_contact) p99",
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
        "< 2",
    );
    figs.add(
        "single durable write (create_contact) max",
        format!("{:.2}", percentile(&lat, 1.0)),
        "ms",
    );

    let signups = 2_000;
    let checkins = 1_000;
    eprintln!(
        "core: {} sign-ups to one event, then {} check-ins",
        thousands(signups),
        thousands(checkins)
    );
    let starts = clock.tick() + 86_400_000;
    let event = store.create_event(
        &NewEvent {
            title: "Bench gala".into(),
            starts_at: starts,
            ends_at: Some(starts + 4 * 3_600_000),
            place: "Town hall".into(),
            capacity: Some(2_500),
        },
        clock.tick(),
    )?;
    let ids: Vec<String> = store
        .list_contacts(signups, 0)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut lat = Vec::with_capacity(signups);
    for id in &ids {
        let now = clock.tick();
        let t = Instant::now();
        store.sign_up(&event, id, false, now)?;
        lat.push(ms_since(t));
    }
    let lat = sorted(lat);
    figs.add(
        format!("sign-up, event growing to {} p50", thousands(signups)),
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
    );
    figs.add(
        format!("sign-up, event growing to {} p99", thousands(signups)),
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
    );
    // People arrive in any order.
    let mut order: Vec<usize> = (0..ids.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, people.rng.random_range(0..=i));
    }
    let mut lat = Vec::with_capacity(checkins);
    for &k in order.iter().take(checkins) {
        let now = clock.tick();
        let t = Instant::now();
        store.check_in(&event, &ids[k], now)?;
        lat.push(ms_since(t));
    }
    let lat = sorted(lat);
    figs.add(
        format!("check-in, event with {} sign-ups p50", thousands(signups)),
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
    );
    figs.add(
        format!("check-in, event with {} sign-ups p99", thousands(signups)),
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
    );

    // 4. Search.
    let searches = 1_000;
    eprintln!("core: {} searches", thousands(searches));
    let queries: Vec<String> = (0..searches)
        .map(|_| {
            let who = &remembered[people.rng.random_range(0..remembered.len())];
            people.query(who)
        })
        .collect();
    let mut lat = Vec::with_capacity(searches);
    let mut hits = Vec::with_capacity(searches);
    let mut slowest: Vec<(f64, &str, usize)> = Vec::new();
    for q in &queries {
        let t = Instant::now();
        let found = store.search_contacts(q, 20)?;
        let ms = ms_since(t);
        lat.push(ms);
        hits.push(found.len() as f64);
        slowest.push((ms, q, found.len()));
    }
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!(
        "  slowest: {}",
        slowest
            .iter()
            .take(5)
            .map(|(ms, q, k)| format!("{q:?} {ms:.2} ms ({k} results)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "  sample queries: {}",
        queries
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let lat = sorted(lat);
    let hits = sorted(hits);
    figs.add(
        format!("name search among {nn} contacts p50"),
        format!("{:.2}", percentile(&lat, 0.5)),
        "ms",
    );
    figs.target(
        format!("name search among {nn} contacts p99"),
        format!("{:.2}", percentile(&lat, 0.99)),
        "ms",
        "< 5",
    );
    figs.add(
        "  median results per search (limit 20)",
        format!("{:.0}", percentile(&hits, 0.5)),
        "",
    );
    figs.add(
        "  searches with no result",
        format!("{}", hits.iter().filter(|h| **h == 0.0).count()),
        "of 1,000",
    );

    // 3. Size once closed: the last connection checkpoints the WAL away.
    drop(store);
    let (db, wal) = store_bytes(&path);
    figs.add(
        "store size after close (db + wal, checkpointed)",
        format!("{:.1}", (db + wal) as f64 / 1e6),
        "MB",
    );

    // 5. Cold open in a fresh process (file in the page cache).
    let probes = 5;
    eprintln!("core: open in a fresh process, {probes} times");
    let mut opens = Vec::new();
    let mut firsts = Vec::new();
    let mut rss: f64 = 0.0;
    for _ in 0..probes {
        let (open, first, peak) = run_probe(&path)?;
        opens.push(open);
        firsts.push(first);
        rss = rss.max(peak);
    }
    let opens = sorted(opens);
    let firsts = sorted(firsts);
    figs.target(
        format!("open cold (fresh process, median of {probes})"),
        format!("{:.1}", percentile(&opens, 0.5)),
        "ms",
        "< 200",
    );
    figs.add(
        "  first search after open",
        format!("{:.1}", percentile(&firsts, 0.5)),
        "ms",
    );
    figs.add(
        format!("memory at {nn} contacts (open + 100 searches, peak RSS)"),
        format!("{rss:.0}"),
        "MB",
    );

    // The first check-in after the app starts loads the event from disk.
    let mut store = Store::open(&path)?;
    let changes = store.stored_change_count(&event)?;
    let now = clock.tick();
    let t = Instant::now();
    store.check_in(&event, &ids[order[checkins]], now)?;
    let first = ms_since(t);
    eprintln!("  first check-in after reopen: {first:.1} ms ({changes} stored changes)");
    figs.add(
        format!(
            "first check-in after reopen (event of {} stored changes)",
            thousands(changes as usize)
        ),
        format!("{first:.1}"),
        "ms",
    );
    drop(store);

    // 6.
    figs.add(
        "bench process peak RSS (after the above)",
        format!("{:.0}", peak_rss_mb()),
        "MB",
    );
    Ok(figs.0)
}
