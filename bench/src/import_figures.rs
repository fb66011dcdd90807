//! Importing a CSV file as a new user would (issue 16): a plain file of
//! four columns (first_name, last_name, email, a `+44 7700 NNNNNN` phone),
//! imported into a fresh store by a child process of its own, so its peak
//! memory is the import's alone. Two sizes show whether it stays linear in
//! rows.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use muster_core::Store;
use muster_core::import::{self, CsvFile, ImportOptions};

use crate::people::EPOCH_MS;
use crate::sync_figures::child_figures;
use crate::{Figure, Figures, thousands};

const FIRST: [&str; 20] = [
    "Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jun", "Kofi", "Lena",
    "Mia", "Nils", "Omar", "Pia", "Quinn", "Rosa", "Sami", "Tara",
];
const LAST: [&str; 20] = [
    "Silva", "Okafor", "Nguyen", "Müller", "Kowalski", "Haddad", "Smith", "Jones", "García",
    "Rossi", "Dubois", "Kim", "Patel", "Sato", "Novak", "Berg", "Costa", "Moreau", "Khan", "Lopez",
];

/// Writes the plain file of `n` rows: every row a different person (its
/// own email and phone), names repeating as real lists' do.
pub(crate) fn write_plain_csv(path: &Path, n: usize) -> Result<()> {
    let mut text = String::from("first_name,last_name,email,phone\n");
    for i in 0..n {
        // Not in step with each other, so the 400 name pairs all occur.
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i / FIRST.len() + i) % LAST.len()];
        let _ = writeln!(
            text,
            "{first},{last},{}.{}{i}@example.org,+44 7700 {i:06}",
            first.to_lowercase(),
            last.to_lowercase()
        );
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `__import FILE STORE`: imports FILE into a new store at STORE as
/// `muster import contacts FILE` does (columns mapped from their names,
/// GB phone region) and prints `SECS <s> PEAK <MB> CREATED <n>`.
pub(crate) fn import_main(file: &Path, store: &Path) -> Result<()> {
    let mut store = Store::open(store)?;
    let t = Instant::now();
    let bytes = std::fs::read(file)?;
    let file = CsvFile::new(file.display().to_string(), bytes, None)?;
    let columns = import::map_columns(&file, &[])?;
    let options = ImportOptions {
        region: "GB".into(),
        dry_run: false,
        now: EPOCH_MS,
    };
    let report = import::import_contacts(&mut store, &file, &columns, &options, &mut ())?;
    println!(
        "SECS {:.2} PEAK {:.0} CREATED {}",
        t.elapsed().as_secs_f64(),
        crate::peak_rss_mb(),
        report.created
    );
    Ok(())
}

/// The import figures at each size in `sizes`.
pub(crate) fn import_figures(dir: &Path, sizes: &[usize]) -> Result<Vec<Figure>> {
    let mut figs = Figures::default();
    let mut per_row = Vec::new();
    for &n in sizes {
        let nn = thousands(n);
        eprintln!("import: a plain {nn}-row CSV into a fresh store");
        let file = dir.join(format!("plain-{n}.csv"));
        write_plain_csv(&file, n)?;
        let mut child = Command::new(std::env::current_exe()?);
        child
            .arg("__import")
            .arg(&file)
            .arg(dir.join(format!("import-{n}.muster")));
        let got = child_figures(child, "__import")?;
        let created = got.number("CREATED")?;
        anyhow::ensure!(
            created as usize == n,
            "__import created {created} contacts of {n} rows"
        );
        let secs = got.number("SECS")?;
        figs.target(
            format!("import of a plain {nn}-row CSV (first_name, last_name, email, phone)"),
            format!("{secs:.1}"),
            "s",
            if n == 100_000 { "≤ 8" } else { "" },
        );
        figs.target(
            "  peak memory",
            format!("{:.0}", got.number("PEAK")?),
            "MB",
            if n == 100_000 { "≤ 100" } else { "" },
        );
        per_row.push((nn, secs * 1e6 / n as f64));
        std::fs::remove_file(&file)?;
    }
    if let [(small_n, small), .., (big_n, big)] = per_row.as_slice() {
        figs.target(
            format!("  time per row at {big_n} ÷ at {small_n}"),
            format!("{:.2}", big / small),
            "",
            "≈ 1 (linear)",
        );
    }
    Ok(figs.0)
}
