//! `muster import contacts FILE.csv` and `muster export WHAT --format
//! csv|json`: contacts in from a spreadsheet, and contacts, sign-ups,
//! donations, volunteer hours and feedback out, for the office and for other
//! systems. The README's "Import and export" section documents the columns,
//! the report and the JSON shapes; they are a contract like `--json`.
//!
//! The import rules (columns, matching, what each row changes) are
//! core's ([`muster_core::import`]); this reads the file, shows the mapping
//! and progress, and prints the report.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use muster_core::duplicates::{DEFAULT_PHONE_REGION, normalise_phone};
use muster_core::import::{self, Column, CsvFile, ImportOptions, ImportReport, RowJson};
use muster_core::{Store, export};

/// What `muster import` reads.
#[derive(Subcommand)]
pub enum ImportCommand {
    /// Contacts from a CSV file (UTF-8, first row the column names). Shows
    /// which column goes to which field, matches rows to existing contacts
    /// (by id, external id, email, then phone), creates the others, and
    /// reports rows created, updated, unchanged and skipped (with reasons).
    Contacts(ImportContactsArgs),
}

/// `muster import contacts …`.
#[derive(Args)]
pub struct ImportContactsArgs {
    /// The CSV file.
    file: PathBuf,
    /// Show the column mapping and the report, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Read column COLUMN as FIELD, or `ignore` it, instead of the guess
    /// from its name (repeatable). FIELD: id, name, first_name, last_name,
    /// preferred_name, phone, email, street, city, region, postal_code,
    /// country, preferred_language, roles, tags, interests, household,
    /// organisation, external_id, custom, custom.KEY, merged_into.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    map: Vec<String>,
    /// Print the report as JSON (and no progress bar).
    #[arg(long)]
    json: bool,
    /// Country of phone numbers written without +country code (ISO 3166,
    /// e.g. GB, US, PT). Default: the store's phone_region setting, else GB.
    #[arg(long, value_name = "CC")]
    region: Option<String>,
    /// Column separator: `,`, `;` or `tab`. Default: guessed from the first
    /// row.
    #[arg(long, value_name = "SEP")]
    delimiter: Option<String>,
}

/// What `muster export` writes.
#[derive(Args)]
pub struct ExportArgs {
    /// What to export.
    #[arg(value_enum)]
    what: Dataset,
    /// csv (a header row, then one row per record) or json (an array of
    /// objects with the same keys as the CSV header).
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Write to FILE instead of standard output. The file is replaced
    /// whole, and only once the export succeeded.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Country of stored phone numbers written without +country code, for
    /// writing them in E.164. Default: the store's phone_region setting,
    /// else GB.
    #[arg(long, value_name = "CC")]
    region: Option<String>,
    /// Start a CSV with a UTF-8 byte-order mark, so that Excel reads
    /// accents right.
    #[arg(long)]
    bom: bool,
}

/// The record sets `muster export` knows.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Dataset {
    /// One row per contact, merged duplicates included.
    Contacts,
    /// One row per sign-up to an event.
    Signups,
    /// One row per donation in the contacts' private ledgers.
    Donations,
    /// One row per volunteer shift.
    Hours,
    /// One row per feedback case.
    Feedback,
}

/// The output formats of `muster export`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Csv,
    Json,
}

/// `muster import …`.
pub fn import(store: &mut Store, command: ImportCommand) -> Result<()> {
    match command {
        ImportCommand::Contacts(args) => import_contacts(store, &args),
    }
}

/// `muster export …`.
pub fn export(store: &mut Store, args: ExportArgs) -> Result<()> {
    let region = phone_region(store, args.region.as_deref())?;
    let result = match &args.output {
        None => {
            let stdout = std::io::stdout();
            let out = std::io::BufWriter::new(stdout.lock());
            write_export(store, &args, &region, Box::new(out)).map(|_| ())
        }
        Some(path) => export_to_file(store, &args, &region, path),
    };
    match result {
        // `muster export contacts | head`: the reader has all it wanted.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

// ----- shared ---------------------------------------------------------------

/// The region for phone numbers without a country code: `--region`, else the
/// store's setting, else the default; refused unless it is a country code
/// the phone library knows.
fn phone_region(store: &Store, given: Option<&str>) -> Result<String> {
    let (region, from) = match given {
        Some(r) => (r.trim().to_ascii_uppercase(), "--region"),
        None => match store.setting(muster_core::store::PHONE_REGION_SETTING)? {
            Some(r) => (
                r.trim().to_ascii_uppercase(),
                "the store's phone_region setting",
            ),
            None => (DEFAULT_PHONE_REGION.to_owned(), "the default region"),
        },
    };
    if normalise_phone("+447700900123", &region).is_none() {
        bail!("{from} {region:?} is not a country code such as GB, US or PT");
    }
    Ok(region)
}

/// A progress bar on stderr, or a hidden one when stderr is not a terminal
/// (a script, a log file) or the output is JSON.
fn progress(len: u64, message: &'static str, hidden: bool) -> ProgressBar {
    if hidden || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({eta} left)")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}

// ----- import ------------------------------------------------------------------

/// `muster import contacts FILE.csv`: the preview on stderr, the import
/// ([`muster_core::import`]), then the report on stdout.
fn import_contacts(store: &mut Store, args: &ImportContactsArgs) -> Result<()> {
    let region = phone_region(store, args.region.as_deref())?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let file = CsvFile::new(
        args.file.display().to_string(),
        bytes,
        args.delimiter.as_deref(),
    )?;
    let columns = import::map_columns(&file, &args.map)?;
    print_preview(&file, &columns, &region);
    if !import::check_mapping(&columns)? {
        eprintln!(
            "note: no column gives the name: rows that match no existing contact will be skipped"
        );
    }
    let options = ImportOptions {
        region,
        dry_run: args.dry_run,
        now: jiff::Timestamp::now().as_millisecond(),
    };
    let mut bars = Bars {
        hidden: args.json,
        bar: None,
    };
    let report = import::import_contacts(store, &file, &columns, &options, &mut bars)?;
    bars.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The import's progress as bars on stderr, one per stage.
struct Bars {
    hidden: bool,
    bar: Option<ProgressBar>,
}

impl Bars {
    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl import::Progress for Bars {
    fn stage(&mut self, stage: import::Stage, total: u64) {
        self.finish();
        self.bar = Some(progress(total, stage.as_str(), self.hidden));
    }

    fn advance(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    fn warn(&mut self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }
}

/// The mapping, on stderr, before anything is imported.
fn print_preview(file: &CsvFile, columns: &[Column], region: &str) {
    let separator = match file.delimiter {
        b'\t' => "tab".to_owned(),
        d => format!("\"{}\"", char::from(d)),
    };
    eprintln!("Columns of {} (separator {separator}):", file.name());
    let width = columns
        .iter()
        .map(|c| format!("{:?}", c.header).chars().count())
        .max()
        .unwrap_or(0);
    for c in columns {
        let header = format!("{:?}", c.header);
        let target = match &c.field {
            Some(f) => format!("-> {}", f.name()),
            None => "(ignored)".to_owned(),
        };
        match &c.note {
            Some(note) => eprintln!("  {header:<width$} {target} ({note})"),
            None => eprintln!("  {header:<width$} {target}"),
        }
    }
    eprintln!("Phones without a country code are read as {region} numbers (--region to change).");
}

fn print_report(report: &ImportReport) {
    println!("rows read:  {}", report.rows_read);
    println!("created:    {}", report.created);
    println!("updated:    {}", report.updated);
    println!("unchanged:  {}", report.unchanged);
    println!("skipped:    {}", report.skipped);
    for s in &report.skipped_rows {
        println!("  row {}: {}", s.row, s.reason);
    }
    let repeats: Vec<&RowJson> = report
        .rows
        .iter()
        .filter(|r| r.same_as_row.is_some())
        .collect();
    if !repeats.is_empty() {
        println!("rows about the same person as an earlier row:");
        for r in repeats {
            println!(
                "  row {}: same as row {} ({})",
                r.row,
                r.same_as_row.unwrap_or_default(),
                r.matched_by.unwrap_or("matched")
            );
        }
    }
    if report.dry_run {
        println!("dry run: nothing was written");
    }
}

// ----- export -----------------------------------------------------------------

/// Writes the export into a temporary file next to `path`, then moves it
/// over `path`: a failed export leaves whatever was there before.
fn export_to_file(store: &mut Store, args: &ExportArgs, region: &str, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let file = tmp.as_file().try_clone()?;
    let count = write_export(store, args, region, Box::new(std::io::BufWriter::new(file)))
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {count} rows to {}", path.display());
    Ok(())
}

/// Writes the export to `out` ([`muster_core::export::write`]); returns
/// the number of rows.
fn write_export(
    store: &mut Store,
    args: &ExportArgs,
    region: &str,
    out: Box<dyn Write>,
) -> Result<usize> {
    let what = match args.what {
        Dataset::Contacts => export::Dataset::Contacts,
        Dataset::Signups => export::Dataset::Signups,
        Dataset::Donations => export::Dataset::Donations,
        Dataset::Hours => export::Dataset::Hours,
        Dataset::Feedback => export::Dataset::Feedback,
    };
    let options = export::Options {
        format: match args.format {
            Format::Csv => export::Format::Csv,
            Format::Json => export::Format::Json,
        },
        bom: args.bom,
        region: region.to_owned(),
        now: jiff::Timestamp::now().as_millisecond(),
    };
    let written = export::write(store, what, &options, out)?;
    if written.unreadable > 0 {
        eprintln!(
            "warning: {} records could not be read (written by a newer Muster?) and were left out",
            written.unreadable
        );
    }
    Ok(written.rows)
}

/// Whether an export failed only because the reader of standard output went
/// away (`muster export contacts | head`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<muster_core::Error>().is_some_and(|c| {
                matches!(c, muster_core::Error::Write(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
            })
            || cause.downcast_ref::<csv::Error>().is_some_and(|c| {
                matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
            })
    })
}
