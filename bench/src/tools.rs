//! Figures and profiling aids run alone through hidden subcommands
//! (`__duplicates`, `__reports`, `__apply`, `__create`, `__push`): what a
//! profile is taken of.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use muster_core::{NewContact, NewEvent, Store};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::people::*;

/// `__duplicates N`: N contacts of which 5% are registered a second time
/// (see [`retyped`]); prints the detection time, precision and recall.
pub(crate) fn duplicates_figure(n: usize) -> Result<()> {
    use std::collections::HashSet;
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(dir.path().join("dups.muster"))?;
    let mut people = People::new(42);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // With MUSTER_NAMESAKES unset, the originals are distinct people by
    // name, phone and email: every pair found is either a known duplicate
    // or a mistake. (The generator otherwise makes namesakes who often
    // share an email address too, which no method can tell apart.)
    let namesakes = std::env::var_os("MUSTER_NAMESAKES").is_some();
    let mut used: HashSet<String> = HashSet::new();
    let mut originals: Vec<NewContact> = Vec::with_capacity(n);
    let mut i = 0;
    while originals.len() < n {
        let c = people.person(i).0;
        i += 1;
        let keys: Vec<String> = std::iter::once(format!("n:{}", fold(&c.name).to_lowercase()))
            .chain(c.phones.iter().map(|p| format!("p:{p}")))
            .chain(c.emails.iter().map(|e| format!("e:{e}")))
            .collect();
        if !namesakes && keys.iter().any(|k| used.contains(k)) {
            continue;
        }
        used.extend(keys);
        originals.push(c);
    }
    let ids = store.create_contacts(&originals, EPOCH_MS)?;
    let mut truth: HashSet<(String, String)> = HashSet::new();
    let mut again = Vec::new();
    let mut of = Vec::new();
    for (i, c) in originals.iter().enumerate() {
        if rng.random_bool(0.05) {
            again.push(retyped(c, again.len(), &mut rng));
            of.push(ids[i].clone());
        }
    }
    let dup_ids = store.create_contacts(&again, EPOCH_MS + 1)?;
    for (o, d) in of.iter().zip(&dup_ids) {
        truth.insert((o.clone(), d.clone()));
    }
    // As `muster duplicates` runs: the store opened afresh, and the peak
    // resident memory from here on (the kernel forgets the earlier peak,
    // of creating the contacts).
    drop(store);
    let store = Store::open(dir.path().join("dups.muster"))?;
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let resident = crate::rss_mb();
    let t = Instant::now();
    let pairs = store.duplicate_candidates()?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "resident memory before detection {resident:.0} MB, peak during it {:.0} MB",
        crate::peak_rss_mb()
    );
    let found: HashSet<(String, String)> =
        pairs.iter().map(|p| (p.a.clone(), p.b.clone())).collect();
    let hits = found.iter().filter(|p| truth.contains(*p)).count();
    println!(
        "{} contacts, {} known duplicates: {} pairs proposed in {secs:.2} s; precision {:.3}, recall {:.3}",
        n + again.len(),
        truth.len(),
        pairs.len(),
        hits as f64 / pairs.len().max(1) as f64,
        hits as f64 / truth.len().max(1) as f64,
    );
    if std::env::var_os("MUSTER_SHOW_FALSE").is_some() {
        for p in pairs
            .iter()
            .filter(|p| !truth.contains(&(p.a.clone(), p.b.clone())))
            .take(15)
        {
            println!("  false: {p:?}");
        }
    }
    for kind in 0..4 {
        let of_kind: Vec<_> = of
            .iter()
            .zip(&dup_ids)
            .enumerate()
            .filter(|(i, _)| i % 4 == kind)
            .map(|(_, (o, d))| (o.clone(), d.clone()))
            .collect();
        let got = of_kind.iter().filter(|p| found.contains(*p)).count();
        println!(
            "  kind {kind}: recall {:.3} of {}",
            got as f64 / of_kind.len().max(1) as f64,
            of_kind.len()
        );
    }
    Ok(())
}

/// `__reports [STORE]`: how long each coordinator report takes over
/// 100,000 contacts (a third with consent, 10,000 donors, 20 events of
/// 1,000 sign-ups, 2,000 shifts, 1,000 feedback cases). Filling takes
/// minutes; with STORE the filled store is kept there and reused.
pub(crate) fn reports_figure(keep: Option<&Path>) -> Result<()> {
    use muster_core::{Donation, NewFeedback, Shift};
    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;
    let dir = tempfile::tempdir()?;
    let path = keep.map_or_else(|| dir.path().join("reports.muster"), Path::to_path_buf);
    let t = EPOCH_MS;
    if !path.exists() {
        let started = Instant::now();
        let mut s = Store::open(&path)?;
        let mut people = People::new(42);
        let mut ids = Vec::new();
        for chunk in 0..10 {
            let batch: Vec<NewContact> = (0..10_000)
                .map(|i| people.person(chunk * 10_000 + i).0)
                .collect();
            ids.extend(s.create_contacts(&batch, t + chunk as i64)?);
        }
        for (i, id) in ids.iter().enumerate().step_by(3) {
            let channel = ["email", "sms", "post"][(i / 3) % 3].to_owned();
            s.update_contact(id, t + 1, |c| {
                c.consent.given = true;
                c.consent.recorded_at = Some(t + 1);
                c.consent.channels = [(channel, true)].into_iter().collect();
                Ok(())
            })?;
        }
        for (i, id) in ids.iter().enumerate().step_by(10) {
            let gift = Donation {
                id: String::new(),
                amount_minor: 1_000 + i as i64,
                currency: "EUR".into(),
                date: t + (i as i64 % 700) * DAY,
                method: "card".into(),
                note: None,
                recorded_by: String::new(),
            };
            s.add_to_ledger(id, gift, t)?;
        }
        for e in 0..20i64 {
            let ev = s.create_event(
                &NewEvent::new(format!("Event {e}"), t + e * 7 * DAY, "Hall", Some(900)),
                t,
            )?;
            for (i, id) in ids
                .iter()
                .enumerate()
                .skip(e as usize)
                .step_by(100)
                .take(1_000)
            {
                s.sign_up(&ev, id, false, t + i as i64)?;
            }
            for (i, id) in ids.iter().enumerate().take(100) {
                let shift = Shift {
                    contact_id: id.clone(),
                    role: "desk".into(),
                    starts_at: t + e * 7 * DAY + i as i64 * HOUR,
                    ends_at: t + e * 7 * DAY + (i as i64 + 2) * HOUR,
                    minutes_worked: None,
                };
                s.add_shift(&ev, shift, t)?;
            }
        }
        for (i, id) in ids.iter().enumerate().take(1_000) {
            let case = NewFeedback {
                contact_id: Some(id.clone()),
                channel: "email".into(),
                category: "question".into(),
                text: "When does it start?".into(),
            };
            s.create_feedback(&case, t + i as i64 * HOUR)?;
        }
        s.checkpoint()?;
        println!(
            "filled {} in {:.1} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let s = Store::open(&path)?;
    let now = t + 800 * DAY;
    let time = |name: &str, f: &dyn Fn() -> muster_core::Result<()>| -> Result<()> {
        let started = Instant::now();
        f()?;
        println!(
            "report {name:<20} {:>8.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(())
    };
    time("events", &|| s.reports().events(None, None).map(drop))?;
    time("hours", &|| {
        s.reports().hours("month", None, None, now).map(drop)
    })?;
    time("new-contacts", &|| {
        s.reports().new_contacts(None, None).map(drop)
    })?;
    time("donors", &|| {
        s.reports().donors("year", None, None, now).map(drop)
    })?;
    time("feedback", &|| {
        s.reports().feedback(None, None, now).map(drop)
    })?;
    time("consent", &|| s.reports().consent(false).map(drop))?;
    time("consent --refusals", &|| {
        s.reports().consent(true).map(drop)
    })?;
    Ok(())
}

/// How long a device takes to apply `n` contacts arriving as snapshots (a
/// first sync without the network), through the device's session as a
/// relay's batches arrive.
pub(crate) fn apply(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut office = Store::open(dir.path().join("office.muster"))?;
    let mut people = People::new(42);
    let batch: Vec<NewContact> = (0..n).map(|i| people.person(i).0).collect();
    let ids = office.create_contacts(&batch, EPOCH_MS)?;
    let mut entries = Vec::with_capacity(n);
    for id in &ids {
        let data: Vec<u8> = office.changes_of(id)?.concat();
        entries.push(muster_core::sync::wire::Entry {
            doc: id.clone(),
            form: muster_core::sync::wire::Form::Snapshot,
            data: data.into(),
        });
    }
    // Through the device's session, as a relay's batches arrive.
    use muster_core::sync::wire::{self, Message};
    let mut device = Store::open(dir.path().join("device.muster"))?;
    let mut session = muster_core::sync::client::ClientSession::new(&device, "bench")?;
    let welcome = wire::encode(&Message::Welcome {
        protocol: wire::PROTOCOL_VERSION,
        epoch: "bench".into(),
        head: n as u64,
        cursor_trusted: true,
        role: "coordinator".into(),
    });
    session.handle_frame(&mut device, &welcome, EPOCH_MS)?;
    let frames: Vec<Vec<u8>> = entries
        .chunks(1_600)
        .map(|chunk| {
            wire::encode(&Message::Batch {
                entries: chunk.to_vec(),
                cursor: wire::start_cursor("bench"),
                remaining: 0,
            })
        })
        .collect();
    let t = Instant::now();
    for frame in &frames {
        session.handle_frame(&mut device, frame, EPOCH_MS)?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "applied {n} contacts in {secs:.2} s ({:.0} µs each)",
        secs * 1e6 / n as f64
    );
    Ok(())
}

/// Creates `n` contacts in a scratch store, a thousand per batch.
pub(crate) fn create(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(dir.path().join("p.muster"))?;
    let mut people = People::new(42);
    let t = Instant::now();
    for chunk in 0..n.div_ceil(1_000) {
        let batch: Vec<NewContact> = (chunk * 1_000..((chunk + 1) * 1_000).min(n))
            .map(|i| people.person(i).0)
            .collect();
        store.create_contacts(&batch, EPOCH_MS + chunk as i64)?;
    }
    println!("{n} contacts in {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// `__push N`: an office holding N new contacts (created first, not timed)
/// pushes them to a fresh relay on SQLite in one `sync_once`; prints the
/// push's time and rate. With `then_sync`, a fresh device in a process of
/// its own then first-syncs them: its time and peak memory.
pub(crate) fn push(n: usize, then_sync: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut office = Store::open(dir.path().join("office.muster"))?;
    let mut people = People::new(42);
    crate::sync_figures::create_contacts(&mut office, &mut people, 0, n)?;
    let relay = crate::sync_figures::Relay::start(&dir.path().join("relay"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let t = Instant::now();
    runtime.block_on(crate::sync_figures::once(&mut office, &relay))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "pushed {n} contacts in {secs:.2} s ({:.0} changes/s)",
        n as f64 / secs
    );
    if then_sync {
        let (peak, secs) =
            crate::sync_figures::device_first_sync_alone(&relay, &dir.path().join("fresh.muster"))?;
        println!("a fresh device's first sync of them: {secs:.2} s, peak {peak:.0} MB");
    }
    Ok(())
}
