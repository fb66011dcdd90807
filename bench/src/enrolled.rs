//! A device enrolled earlier receives many new contacts through the log
//! (issue 16): the whole of `muster sync` in a process of its own (open,
//! baseline, sync, reconciliation report), as a desk's laptop runs it
//! after the office imported a list.

use std::path::Path;

use anyhow::{Result, bail};
use muster_core::Store;

use crate::sync_figures::{Figure, Relay, create_contacts, device_sync_child, fig, once};

/// For each of `sizes`, on an organisation of its own: a desk enrolls
/// while it is empty, the office creates that many contacts and pushes
/// them, the desk syncs them in a child process; then a fresh device
/// first-syncs the same records, for comparison.
pub async fn figures(dir: &Path, sizes: &[usize]) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    for &n in sizes {
        let dir = dir.join(n.to_string());
        std::fs::create_dir_all(&dir)?;
        let relay = Relay::start(&dir.join("relay"))?;
        let mut office = Store::open(dir.join("office.muster"))?;
        let desk = dir.join("desk.muster");
        device_sync_child(&relay, &desk, false, false)?;
        eprintln!("enrolled: the office pushes {n} new contacts");
        // A seed of its own: these people are not the other figures'.
        let mut people = crate::People::new(7);
        create_contacts(&mut office, &mut people, 0, n)?;
        once(&mut office, &relay).await?;
        eprintln!("enrolled: the desk receives them");
        let got = device_sync_child(&relay, &desk, true, false)?;
        let new = got.number("NEW")? as usize;
        if new != n {
            bail!("the desk reported {new} new contacts, not {n}");
        }
        let secs = got.number("SECS")?;
        let fresh = device_sync_child(&relay, &dir.join("fresh.muster"), false, true)?;
        let first = fresh.number("SECS")?;
        let first_target = n == 1_000;
        let n = crate::thousands(n);
        out.push(fig(
            format!(
                "a device enrolled earlier receives {n} new contacts (muster sync, whole process)"
            ),
            format!("{secs:.2}"),
            "s",
            if first_target { "≤ 0.3" } else { "" },
        ));
        out.push(fig(
            format!("  a fresh device's first sync of the same {n}; enrolled ÷ fresh"),
            format!("{first:.2}; {:.2}", secs / first),
            "s; ×",
            if first_target { "" } else { "≤ 1.5 ×" },
        ));
        out.push(fig(
            format!(
                "  a search during that first sync (every 50 ms, own reader): p99 / max ({} searches)",
                fresh.get("SEARCHES")?
            ),
            format!(
                "{} / {}",
                fresh.get("SEARCH_P99")?,
                fresh.get("SEARCH_MAX")?
            ),
            "ms",
            "< 50",
        ));
        out.push(fig(
            "  the enrolled device's report: duplicate candidates / every record checked",
            format!("{} / {}", got.get("DUPLICATES")?, got.get("COMPLETE")?),
            "",
            "complete",
        ));
        out.push(fig(
            "  the enrolled device's peak memory",
            format!("{:.0}", got.number("PEAK")?),
            "MB",
            "",
        ));
    }
    Ok(out)
}

/// `__enrolled N…`: these figures alone (for profiling).
pub fn run(dir: &Path, sizes: &[usize]) -> Result<Vec<Figure>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(figures(dir, sizes))
}
