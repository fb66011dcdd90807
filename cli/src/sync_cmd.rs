//! `muster login` and `muster sync`: the office client's connection to the
//! relay, on the core's tokio client.

use muster_core::model::now_ms;
use std::io::Write;

use anyhow::{Context, bail};
use muster_core::Store;
use muster_core::client::{self, Status, SyncReport, Timeouts};
use muster_core::store::Reconciliation;
use serde::Serialize;

fn credentials(store: &Store) -> anyhow::Result<(String, String)> {
    match client::enrollment(store)? {
        Some(enrolled) => Ok(enrolled),
        None => {
            bail!("this store is not enrolled with a relay: run `muster login URL TOKEN` first")
        }
    }
}

/// `muster login URL TOKEN`: checks the token with the relay (one sync) and
/// saves both in the store. If the relay cannot be reached the credentials
/// are saved anyway and the next `muster sync` uses them; if it does not
/// answer within `timeouts`, they are saved too but the command fails, so
/// that a script notices.
pub fn login(store: &mut Store, url: &str, token: &str, timeouts: Timeouts) -> anyhow::Result<()> {
    let url = client::sync_url(url)?;
    let token = token.trim();
    if token.is_empty() {
        bail!("the token is empty");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(client::sync_once_with(
        store,
        &url,
        token,
        &now_ms,
        &mut |_| {},
        timeouts,
    ));
    match result {
        Ok(report) => {
            client::save_enrollment(store, &url, token)?;
            println!(
                "logged in to {url}; {} records received, {} changes sent",
                report.changed_docs, report.acknowledged
            );
            Ok(())
        }
        Err(e) if client::is_permanent(&e) => Err(e).context("the relay refused this token"),
        Err(e) if client::is_timeout(&e) => {
            client::save_enrollment(store, &url, token)?;
            bail!(
                "the token could not be checked: {e} (the URL and token are saved; `muster sync` will retry)"
            )
        }
        Err(e) => {
            client::save_enrollment(store, &url, token)?;
            eprintln!(
                "muster: saved, but the relay is not reachable now ({e}); `muster sync` will retry"
            );
            Ok(())
        }
    }
}

/// The stable JSON of `muster sync --json` (documented in cli/JSON.md).
#[derive(Debug, Serialize)]
struct SyncJson {
    changed_records: usize,
    pushed: usize,
    acknowledged: usize,
    rejected: usize,
    skipped: usize,
    resynced: bool,
    pending: i64,
    bytes_in: usize,
    bytes_out: usize,
    reconciliation: Reconciliation,
}

/// `muster sync`: one-shot, prints what moved.
pub fn sync_once(store: &mut Store, json: bool, timeouts: Timeouts) -> anyhow::Result<()> {
    let (url, token) = credentials(store)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let before = store.baseline()?;
    let mut changed: Vec<String> = Vec::new();
    let mut progress = |s: Status| match s {
        Status::Pulling { done, total } if !json => {
            eprint!("\rpulling {done}/{total}");
            let _ = std::io::stderr().flush();
        }
        Status::Changed { docs } => changed.extend(docs),
        _ => {}
    };
    let report: SyncReport = runtime
        .block_on(client::sync_once_with(
            store,
            &url,
            &token,
            &now_ms,
            &mut progress,
            timeouts,
        ))
        .with_context(|| format!("sync with {url} failed"))?;
    let pending = store.pending_count()?;
    let reconciliation = store.reconcile(&before, &changed)?;
    if json {
        let out = SyncJson {
            changed_records: report.changed_docs,
            pushed: report.pushed,
            acknowledged: report.acknowledged,
            rejected: report.rejected,
            skipped: report.skipped,
            resynced: report.resynced,
            pending,
            bytes_in: report.bytes_in,
            bytes_out: report.bytes_out,
            reconciliation,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if report.frames_in > 2 {
            eprintln!();
        }
        println!(
            "received changes to {} records; sent {} changes, {} acknowledged{}; {} waiting",
            report.changed_docs,
            report.pushed,
            report.acknowledged,
            if report.rejected > 0 {
                format!(", {} refused", report.rejected)
            } else {
                String::new()
            },
            pending
        );
        if report.resynced {
            println!(
                "the relay could not use this device's position (restored from a backup?); a full resync ran"
            );
        }
        print_reconciliation(&reconciliation);
    }
    Ok(())
}

/// `muster sync --watch`: stays connected until Ctrl-C, one line per event.
/// Writes made meanwhile by other `muster` commands on the same store are
/// pushed within a second.
pub fn sync_watch(store: Store, timeouts: Timeouts) -> anyhow::Result<()> {
    let (url, token) = credentials(&store)?;
    let store = std::sync::Mutex::new(store);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut print = |s: Status| {
        let line = match s {
            Status::Connecting { attempt } => format!("connecting to {url} (attempt {attempt})"),
            Status::Pulling { done, total } => format!("pulling {done}/{total}"),
            Status::Pushing { changes } => format!("pushing {changes} changes"),
            Status::CaughtUp => "caught up; live".to_owned(),
            Status::Changed { docs } => format!("{} records changed", docs.len()),
            Status::Offline { reason, retry_in } => {
                format!(
                    "offline: {reason}; retrying in {:.1}s",
                    retry_in.as_secs_f64()
                )
            }
            Status::Warning(w) => format!("warning: {w}"),
            Status::Error { message, .. } => format!("error: {message}"),
        };
        println!("{line}");
        let _ = std::io::stdout().flush();
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    runtime
        .block_on(client::sync_live_with(
            &store, &url, &token, &now_ms, &mut print, None, None, stop, timeouts,
        ))
        .context("live sync stopped")?;
    Ok(())
}

/// The reconciliation report, one line per thing to look at.
fn print_reconciliation(r: &Reconciliation) {
    for line in reconciliation_lines(r) {
        println!("{line}");
    }
}

/// The lines [`print_reconciliation`] prints.
fn reconciliation_lines(r: &Reconciliation) -> Vec<String> {
    let mut out = Vec::new();
    let a = &r.arrived;
    let arrived = [
        (a.new_contacts, "new contacts"),
        (a.updated_contacts, "contacts changed"),
        (a.new_events, "new events"),
        (a.updated_events, "events changed"),
        (a.new_feedback, "new feedback cases"),
        (a.updated_feedback, "feedback cases changed"),
        (a.ledgers, "ledgers changed"),
        (a.removed, "records removed"),
        (r.registered_online.len() as u64, "registered online"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect::<Vec<_>>();
    if !arrived.is_empty() {
        out.push(format!("arrived: {}", arrived.join(", ")));
    }
    for id in &r.unreadable {
        out.push(format!(
            "unreadable: {id} (kept as it came, not shown: it cannot be read as a record)"
        ));
    }
    for m in &r.merged {
        out.push(format!(
            "merged elsewhere: {} {:?} into {} {:?}",
            m.duplicate, m.duplicate_name, m.kept, m.kept_name
        ));
    }
    for m in &r.unmerged {
        out.push(format!(
            "unmerged elsewhere: {} {:?}",
            m.duplicate, m.duplicate_name
        ));
    }
    for c in &r.conflicts {
        out.push(format!(
            "conflicting values: {} {:?} {}: {}",
            c.record_id,
            c.label,
            c.field,
            c.values
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(" / ")
        ));
    }
    // "registered online: 3 at "Food drive" (Ana Silva, Bo Chen, Cy Diaz)"
    let mut online: Vec<(&str, Vec<String>)> = Vec::new();
    for o in &r.registered_online {
        let who = match (&o.name, o.position) {
            (Some(n), Some(p)) => format!("{n} (waitlist place {p})"),
            (Some(n), None) => n.clone(),
            (None, _) => o.contact_id.clone(),
        };
        match online.iter_mut().find(|(t, _)| *t == o.event_title) {
            Some((_, names)) => names.push(who),
            None => online.push((&o.event_title, vec![who])),
        }
    }
    for (title, names) in &online {
        out.push(format!(
            "registered online: {} at {title:?} ({})",
            names.len(),
            names.join(", ")
        ));
    }
    for w in &r.moved_to_waitlist {
        out.push(format!(
            "moved to the waitlist: {} {} at {:?} (place {})",
            w.contact_id,
            w.name
                .as_deref()
                .map(|n| format!("{n:?}"))
                .unwrap_or_default(),
            w.event_title,
            w.position
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into())
        ));
    }
    for p in &r.duplicate_candidates {
        out.push(format!(
            "possible duplicate: {} {:?} ~ {} {:?} ({})",
            p.a,
            p.a_name,
            p.b,
            p.b_name,
            p.reasons.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_core::store::OnlineNote;

    #[test]
    fn registrations_made_online_are_counted_and_named_by_event() {
        let note = |event: &str, name: &str, position| OnlineNote {
            event_id: format!("e_{event}"),
            event_title: event.into(),
            contact_id: format!("c_{name}"),
            name: Some(name.into()),
            position,
        };
        let mut r = Reconciliation::default();
        r.arrived.new_contacts = 2;
        r.registered_online = vec![
            note("Food drive", "Ana Silva", None),
            note("Gala", "Bo Chen", None),
            note("Food drive", "Cy Diaz", Some(1)),
        ];
        assert_eq!(
            reconciliation_lines(&r),
            [
                "arrived: 2 new contacts, 3 registered online",
                "registered online: 2 at \"Food drive\" (Ana Silva, Cy Diaz (waitlist place 1))",
                "registered online: 1 at \"Gala\" (Bo Chen)",
            ]
        );
        assert!(reconciliation_lines(&Reconciliation::default()).is_empty());
    }
}
