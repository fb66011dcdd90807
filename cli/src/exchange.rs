//! `muster import contacts FILE.csv` and `muster export WHAT --format
//! csv|json`: contacts in from a spreadsheet, and contacts, sign-ups,
//! donations, volunteer hours and feedback out, for the office and for other
//! systems. The README's "Import and export" section documents the columns,
//! the report and the JSON shapes; they are a contract like `--json`.
//!
//! An import runs in two phases. First every row is read, checked with the
//! store's own validation and matched to an existing contact (by id, then
//! external id, email, phone) or to an earlier row of the file: a malformed
//! file (broken quoting, rows of the wrong length, text that is not UTF-8)
//! stops the import here, before anything is written. Then the contacts are
//! written a batch per transaction ([`Store::write_contacts`]), so an import
//! that is interrupted leaves whole batches or nothing, never half a row; a
//! bad row is skipped with its reason and never stops the others.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use muster_core::duplicates::{DEFAULT_PHONE_REGION, normalise_email, normalise_phone};
use muster_core::{Contact, DocKind, NewContact, Store, export, validate};
use serde::Serialize;

/// How many rows are written per transaction. Large enough that the
/// durable commit at the end of each is a small part of the cost, small
/// enough that an interrupted import loses little work.
const BATCH_ROWS: usize = 1_000;

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

/// What a phone number is compared by: E.164 when it can be read as a
/// number of `region`, else its digits.
fn phone_key(phone: &str, region: &str) -> String {
    normalise_phone(phone, region).unwrap_or_else(|| validate::phone_digits(phone))
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

// ----- import: columns -------------------------------------------------------

/// A contact field a CSV column can fill.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Field {
    Id,
    Name,
    FirstName,
    LastName,
    PreferredName,
    Phone,
    Email,
    Street,
    City,
    Region,
    PostalCode,
    Country,
    Language,
    Roles,
    Tags,
    Interests,
    Household,
    Organisation,
    ExternalId,
    /// `custom`: `key=value; key=value` (as exported).
    CustomPairs,
    /// `custom.KEY`: one custom field.
    Custom(String),
    /// `merged_into` (as exported): a row for a merged duplicate is skipped.
    MergedInto,
}

/// Every field name `--map` accepts (besides `custom.KEY` and `ignore`).
const FIELD_NAMES: &str = "id, name, first_name, last_name, preferred_name, phone, email, \
     street, city, region, postal_code, country, preferred_language, roles, tags, interests, \
     household, organisation, external_id, custom, custom.KEY, merged_into";

impl Field {
    /// The field's name, as the preview and `--map` write it.
    fn name(&self) -> String {
        match self {
            Field::Id => "id",
            Field::Name => "name",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::PreferredName => "preferred_name",
            Field::Phone => "phone",
            Field::Email => "email",
            Field::Street => "street",
            Field::City => "city",
            Field::Region => "region",
            Field::PostalCode => "postal_code",
            Field::Country => "country",
            Field::Language => "preferred_language",
            Field::Roles => "roles",
            Field::Tags => "tags",
            Field::Interests => "interests",
            Field::Household => "household",
            Field::Organisation => "organisation",
            Field::ExternalId => "external_id",
            Field::CustomPairs => "custom",
            Field::Custom(key) => return format!("custom.{key}"),
            Field::MergedInto => "merged_into",
        }
        .to_owned()
    }

    /// Whether several columns may fill this field (their values add up).
    fn takes_many(&self) -> bool {
        matches!(
            self,
            Field::Phone
                | Field::Email
                | Field::Roles
                | Field::Tags
                | Field::Interests
                | Field::CustomPairs
        )
    }

    /// The field a column header names, compared case-insensitively with
    /// spaces, `_`, `-`, `.` and `/` alike; `None` for a column to ignore.
    fn guess(header: &str) -> Option<Field> {
        let trimmed = header.trim();
        if let Some(key) = trimmed
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("custom."))
            .map(|_| trimmed[7..].trim())
        {
            return (!key.is_empty()).then(|| Field::Custom(key.to_owned()));
        }
        let words: String = trimmed
            .to_lowercase()
            .split(|c: char| c.is_whitespace() || matches!(c, '_' | '-' | '.' | '/'))
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Some(match words.as_str() {
            "id" | "muster id" | "contact id" => Field::Id,
            "name" | "full name" | "fullname" | "contact name" | "display name" => Field::Name,
            "first name" | "firstname" | "first" | "given name" | "forename" => Field::FirstName,
            "last name" | "lastname" | "last" | "surname" | "family name" => Field::LastName,
            "preferred name" | "nickname" | "known as" => Field::PreferredName,
            "phone" | "phones" | "phone number" | "phone numbers" | "mobile" | "mobile phone"
            | "mobile number" | "cell" | "cell phone" | "telephone" | "tel" | "home phone"
            | "work phone" | "landline" => Field::Phone,
            "email" | "emails" | "e mail" | "email address" | "e mail address" | "mail" => {
                Field::Email
            }
            "street" | "address" | "street address" | "address line 1" | "address 1" => {
                Field::Street
            }
            "city" | "town" | "town city" => Field::City,
            "region" | "state" | "county" | "province" => Field::Region,
            "postal code" | "postcode" | "post code" | "zip" | "zip code" | "zipcode" => {
                Field::PostalCode
            }
            "country" => Field::Country,
            "preferred language" | "language" | "lang" => Field::Language,
            "roles" | "role" => Field::Roles,
            "tags" | "tag" | "labels" => Field::Tags,
            "interests" | "interest" => Field::Interests,
            "household" | "household id" => Field::Household,
            "organisation" | "organization" | "company" | "org" | "employer" => Field::Organisation,
            "external id" | "externalid" | "id in other system" | "other system id"
            | "external ref" | "reference" | "ref" | "crm id" | "legacy id" | "member id"
            | "membership id" | "membership number" | "supporter id" | "donor id"
            | "constituent id" => Field::ExternalId,
            "custom" => Field::CustomPairs,
            "merged into" => Field::MergedInto,
            _ => return None,
        })
    }

    /// A field as `--map` names it: its name, or what a header may say.
    fn parse(name: &str) -> Option<Field> {
        match name.trim().to_lowercase().as_str() {
            "language" => Some(Field::Language),
            "phones" => Some(Field::Phone),
            "emails" => Some(Field::Email),
            _ => Field::guess(name),
        }
    }
}

/// One column of the file and what it is read as.
#[derive(Debug, Clone)]
struct Column {
    header: String,
    field: Option<Field>,
    /// Why the column is read so (or ignored), when it is not plain.
    note: Option<String>,
}

/// Reads the headers as fields: `--map` first, then the guesses in column
/// order; a field that takes one value goes to the first column that names
/// it, and first/last names only count when no column gives the full name.
fn map_columns(headers: &[String], overrides: &[String]) -> Result<Vec<Column>> {
    let mut columns: Vec<Column> = headers
        .iter()
        .map(|h| Column {
            header: h.clone(),
            field: None,
            note: None,
        })
        .collect();
    let mut by_map = vec![false; columns.len()];
    for spec in overrides {
        let (column, field) = spec.rsplit_once('=').with_context(|| {
            format!("--map {spec:?}: write COLUMN=FIELD, e.g. --map \"Mobile 2=phone\"")
        })?;
        let field = match field.trim().to_lowercase().as_str() {
            "ignore" | "none" | "-" | "" => None,
            _ => Some(Field::parse(field).with_context(|| {
                format!(
                    "--map {spec:?}: {field:?} is not a field; fields are {FIELD_NAMES}, or ignore"
                )
            })?),
        };
        let mut found = false;
        for (i, c) in columns.iter_mut().enumerate() {
            if c.header.trim().to_lowercase() == column.trim().to_lowercase() {
                c.field = field.clone();
                c.note = Some(if field.is_some() {
                    "--map".to_owned()
                } else {
                    "ignored by --map".to_owned()
                });
                by_map[i] = true;
                found = true;
            }
        }
        if !found {
            bail!(
                "--map {spec:?}: no column is called {column:?}; the columns are {}",
                quoted_list(headers)
            );
        }
    }
    for (i, c) in columns.iter_mut().enumerate() {
        if !by_map[i] {
            c.field = Field::guess(&c.header);
        }
    }
    // One column per single-valued field: --map first, then the leftmost.
    let mut taken: HashMap<Field, String> = HashMap::new();
    for pass_by_map in [true, false] {
        for (i, c) in columns.iter_mut().enumerate() {
            if by_map[i] != pass_by_map {
                continue;
            }
            let Some(field) = c.field.clone() else {
                continue;
            };
            if field.takes_many() {
                continue;
            }
            match taken.get(&field) {
                Some(first) => {
                    c.note = Some(format!("{} already comes from {first:?}", field.name()));
                    c.field = None;
                }
                None => {
                    taken.insert(field, c.header.clone());
                }
            }
        }
    }
    if let Some(full) = taken.get(&Field::Name).cloned() {
        for c in &mut columns {
            if matches!(c.field, Some(Field::FirstName | Field::LastName)) {
                c.note = Some(format!("the name comes from {full:?}"));
                c.field = None;
            }
        }
    }
    Ok(columns)
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column guessed to be `id` whose values are not Muster ids is another
/// system's id: read it as `external_id` (or ignore it if a column already
/// gives that). Decided on the first values of the column.
fn reconsider_id_column(columns: &mut [Column], sample: &[Vec<String>]) {
    let Some(at) = columns
        .iter()
        .position(|c| c.field == Some(Field::Id) && c.note.is_none())
    else {
        return;
    };
    let values: Vec<&str> = sample
        .iter()
        .filter_map(|row| row.get(at).map(|v| v.trim()))
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty()
        || values
            .iter()
            .any(|v| DocKind::of_id(v) == Some(DocKind::Contact))
    {
        return;
    }
    let has_external = columns.iter().any(|c| c.field == Some(Field::ExternalId));
    let column = &mut columns[at];
    if has_external {
        column.field = None;
        column.note =
            Some("holds no Muster ids (c_…), and external_id comes from another column".into());
    } else {
        column.field = Some(Field::ExternalId);
        column.note = Some("holds no Muster ids (c_…): read as another system's id".into());
    }
}

// ----- import: reading the file ------------------------------------------------

/// The CSV file, read whole (a contacts file is a few megabytes).
struct CsvFile {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Where the text starts (after a UTF-8 byte-order mark).
    start: usize,
    delimiter: u8,
}

impl CsvFile {
    fn open(path: &Path, delimiter: Option<&str>) -> Result<CsvFile> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
            bail!(
                "{} is UTF-16 text; save it as UTF-8 (in Excel: \"CSV UTF-8\") and import again",
                path.display()
            );
        }
        let start = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else {
            0
        };
        if bytes[start..].iter().all(u8::is_ascii_whitespace) {
            bail!(
                "{} is empty: a contacts file starts with a row of column names, such as name,email,phone",
                path.display()
            );
        }
        let delimiter = match delimiter.map(str::trim) {
            None => sniff_delimiter(&bytes[start..]),
            Some(",") => b',',
            Some(";") => b';',
            Some("tab" | "\\t" | "\t") => b'\t',
            Some(other) => bail!("--delimiter {other:?}: use \",\", \";\" or tab"),
        };
        Ok(CsvFile {
            path: path.to_owned(),
            bytes,
            start,
            delimiter,
        })
    }

    fn reader(&self) -> csv::Reader<&[u8]> {
        csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(true)
            .flexible(false)
            .from_reader(&self.bytes[self.start..])
    }

    /// The column names (the first row).
    fn headers(&self) -> Result<Vec<String>> {
        let mut reader = self.reader();
        let headers = reader.byte_headers().map_err(|e| self.problem(e))?.clone();
        headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                String::from_utf8(h.to_vec()).map_err(|_| {
                    anyhow!(
                        "{}: row 1 (the column names), column {} is not UTF-8 text; save the file as UTF-8 (in Excel: \"CSV UTF-8\"). Nothing was imported",
                        self.path.display(),
                        i + 1
                    )
                })
            })
            .collect()
    }

    /// A CSV error, in words that say what to fix.
    fn problem(&self, e: csv::Error) -> anyhow::Error {
        let path = self.path.display();
        match e.kind() {
            csv::ErrorKind::UnequalLengths {
                pos,
                expected_len,
                len,
            } => {
                let row = pos.as_ref().map_or(0, |p| p.record() + 1);
                anyhow!(
                    "{path}: row {row} has {len} columns but the first row has {expected_len}; check that row's quotes and separators. Nothing was imported"
                )
            }
            csv::ErrorKind::Io(err) => anyhow!("cannot read {path}: {err}"),
            _ => anyhow!("{path} cannot be read as CSV: {e}. Nothing was imported"),
        }
    }
}

/// The separator of the first row: the most frequent of `,`, `;` and tab
/// outside quotes (`,` when none appears).
fn sniff_delimiter(text: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in text {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3)
        .max_by_key(|&i| (counts[i], usize::from(i == 0)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        [b',', b';', b'\t'][best]
    }
}

/// Reads every data row as text, calling `f` with the row number (the header
/// is row 1, as a spreadsheet numbers them) and the cells. A structural
/// problem or text that is not UTF-8 stops the reading with an error naming
/// the row.
fn read_rows(
    file: &CsvFile,
    headers: &[String],
    bar: &ProgressBar,
    mut f: impl FnMut(usize, Vec<String>) -> Result<()>,
) -> Result<()> {
    let mut reader = file.reader();
    let mut record = csv::ByteRecord::new();
    let mut row = 1;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(file.problem(e)),
        }
        row += 1;
        let mut cells = Vec::with_capacity(record.len());
        for (i, cell) in record.iter().enumerate() {
            match std::str::from_utf8(cell) {
                // An export's `'` before a would-be formula comes off.
                Ok(text) => cells.push(muster_core::export::csv_text_read(text).to_owned()),
                Err(e) => bail!(
                    "{}: row {row}, column {:?} is not UTF-8 text (byte {} of the cell); the file is probably in another encoding such as Windows-1252: save it as UTF-8 (in Excel: \"CSV UTF-8\"). Nothing was imported",
                    file.path.display(),
                    headers.get(i).map_or("?", String::as_str),
                    e.valid_up_to() + 1
                ),
            }
        }
        if row % 1_000 == 0 {
            bar.set_position(record.position().map_or(0, |p| p.byte()));
        }
        f(row, cells)?;
    }
    bar.finish_and_clear();
    Ok(())
}

// ----- import: rows -------------------------------------------------------------

/// What one row says about a contact, checked and in canonical form. Empty
/// cells say nothing: applying a row never clears a field.
#[derive(Debug, Default, Clone)]
struct RowPatch {
    id: Option<String>,
    name: Option<String>,
    preferred_name: Option<String>,
    /// E.164 when the number can be read, else as typed.
    phones: Vec<String>,
    emails: Vec<String>,
    street: Option<String>,
    city: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
    language: Option<String>,
    household: Option<String>,
    organisation: Option<String>,
    external_id: Option<String>,
    roles: Vec<String>,
    tags: Vec<String>,
    interests: Vec<String>,
    custom: Vec<(String, String)>,
    merged_into: Option<String>,
}

/// The items of a multi-valued cell: split on `;` if it has one (as
/// exports write them), else on `,`.
fn items(cell: &str) -> impl Iterator<Item = &str> {
    let sep = if cell.contains(';') { ';' } else { ',' };
    cell.split(sep).map(str::trim).filter(|s| !s.is_empty())
}

/// A contact with only a name, for rows that create one and for checks.
fn blank(name: &str) -> muster_core::Result<Contact> {
    Contact::new(
        String::new(),
        &NewContact {
            name: name.to_owned(),
            ..Default::default()
        },
        "",
        0,
    )
}

impl RowPatch {
    /// Reads a row, checking each value as the store would. Returns the
    /// reason to skip the row otherwise, as the report prints it.
    fn parse(cells: &[String], columns: &[Column], region: &str) -> Result<RowPatch, String> {
        let why = |e: muster_core::Error| e.to_string();
        let mut p = RowPatch::default();
        let (mut first, mut last) = (Vec::new(), Vec::new());
        for (cell, column) in cells.iter().zip(columns) {
            let Some(field) = &column.field else {
                continue;
            };
            let value = cell.trim();
            if value.is_empty() {
                continue;
            }
            let text = |name: &'static str| validate::short_text(name, value).map(Some);
            match field {
                Field::Id => {
                    if DocKind::of_id(value) != Some(DocKind::Contact) {
                        return Err(format!(
                            "invalid id: {value:?} is not a Muster contact id (c_ and 32 hex digits)"
                        ));
                    }
                    p.id = Some(value.to_owned());
                }
                Field::Name => p.name = Some(validate::name("name", value).map_err(why)?),
                Field::FirstName => first.push(value),
                Field::LastName => last.push(value),
                Field::PreferredName => {
                    p.preferred_name = Some(validate::name("preferred_name", value).map_err(why)?);
                }
                Field::Phone => {
                    for item in items(value) {
                        let typed = validate::phone(item).map_err(why)?;
                        let phone = normalise_phone(&typed, region).unwrap_or(typed);
                        let key = phone_key(&phone, region);
                        if !p.phones.iter().any(|q| phone_key(q, region) == key) {
                            p.phones.push(phone);
                        }
                    }
                }
                Field::Email => {
                    for item in items(value) {
                        let email = validate::email(item).map_err(why)?;
                        let key = normalise_email(&email);
                        if !p.emails.iter().any(|e| normalise_email(e) == key) {
                            p.emails.push(email);
                        }
                    }
                }
                Field::Street => p.street = text("street").map_err(why)?,
                Field::City => p.city = text("city").map_err(why)?,
                Field::Region => p.region = text("region").map_err(why)?,
                Field::PostalCode => p.postal_code = text("postal_code").map_err(why)?,
                Field::Country => p.country = text("country").map_err(why)?,
                Field::Language => p.language = text("preferred_language").map_err(why)?,
                Field::Household => p.household = text("household").map_err(why)?,
                Field::Organisation => p.organisation = text("organisation").map_err(why)?,
                Field::ExternalId => p.external_id = text("external_id").map_err(why)?,
                Field::Roles => p.roles.extend(items(value).map(str::to_lowercase)),
                Field::Tags => {
                    for item in items(value) {
                        p.tags.push(validate::key("tags", item).map_err(why)?);
                    }
                }
                Field::Interests => {
                    for item in items(value) {
                        p.interests
                            .push(validate::key("interests", item).map_err(why)?);
                    }
                }
                Field::CustomPairs => {
                    for item in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                        let (k, v) = item
                            .split_once('=')
                            .ok_or_else(|| format!("invalid custom: {item:?} is not KEY=VALUE"))?;
                        p.custom.push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                }
                Field::Custom(key) => p.custom.push((key.clone(), value.to_owned())),
                Field::MergedInto => p.merged_into = Some(value.to_owned()),
            }
        }
        if p.name.is_none() && !(first.is_empty() && last.is_empty()) {
            let full = first.into_iter().chain(last).collect::<Vec<_>>().join(" ");
            p.name = Some(validate::name("name", &full).map_err(why)?);
        }
        // Everything else the store checks (roles, sizes, keys): on a
        // contact holding only this row.
        let mut probe = blank(p.name.as_deref().unwrap_or("-")).map_err(why)?;
        p.apply(&mut probe, region);
        probe.normalise().map_err(why)?;
        Ok(p)
    }

    /// Writes what the row says into `c`: the fields it gives replace the
    /// contact's, the phones, emails, roles, tags, interests and custom
    /// fields it gives are added (a phone or an email the contact already
    /// has, in any form, is not added again).
    fn apply(&self, c: &mut Contact, region: &str) {
        if let Some(v) = &self.name {
            c.name.clone_from(v);
        }
        if let Some(v) = &self.preferred_name {
            c.preferred_name = Some(v.clone());
        }
        let mut phones: HashSet<String> = c.phones.iter().map(|p| phone_key(p, region)).collect();
        for p in &self.phones {
            if phones.insert(phone_key(p, region)) {
                c.phones.push(p.clone());
            }
        }
        let mut emails: HashSet<String> = c.emails.iter().map(|e| normalise_email(e)).collect();
        for e in &self.emails {
            if emails.insert(normalise_email(e)) {
                c.emails.push(e.clone());
            }
        }
        for (field, value) in [
            (&mut c.address.street, &self.street),
            (&mut c.address.city, &self.city),
            (&mut c.address.region, &self.region),
            (&mut c.address.postal_code, &self.postal_code),
            (&mut c.address.country, &self.country),
        ] {
            if let Some(v) = value {
                field.clone_from(v);
            }
        }
        for (field, value) in [
            (&mut c.preferred_language, &self.language),
            (&mut c.household, &self.household),
            (&mut c.organisation, &self.organisation),
            (&mut c.external_id, &self.external_id),
        ] {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        for (set, items) in [
            (&mut c.roles, &self.roles),
            (&mut c.tags, &self.tags),
            (&mut c.interests, &self.interests),
        ] {
            for item in items {
                set.insert(item.clone(), true);
            }
        }
        for (k, v) in &self.custom {
            c.custom.insert(k.clone(), v.clone());
        }
    }
}

// ----- import: matching ---------------------------------------------------------

/// Where a key (an external id, an email, a phone) leads.
#[derive(Debug, Clone)]
enum Slot {
    /// An existing contact (maybe a merged duplicate: resolved when used).
    Contact(String),
    /// A contact this import plans: an index into the targets.
    Planned(usize),
}

/// One contact the import writes to: an existing one, or a new one, and the
/// rows about it in file order.
#[derive(Debug)]
struct Target {
    /// The existing contact (`None`: a contact to create).
    contact: Option<String>,
    rows: Vec<usize>,
}

/// The keys of every contact of the store and of every row read so far.
struct Matcher {
    region: String,
    /// Every contact of the store and the contact it counts as, if merged.
    merged: HashMap<String, Option<String>>,
    by_external: HashMap<String, Slot>,
    by_email: HashMap<String, Slot>,
    by_phone: HashMap<String, Slot>,
    /// Existing contacts already planned, by id.
    planned: HashMap<String, usize>,
    targets: Vec<Target>,
}

impl Matcher {
    /// The keys of the store's contacts. A merged duplicate is a match
    /// target only for keys no kept contact has, and then leads to the
    /// contact it was merged into.
    fn load(store: &Store, region: &str, bar: &ProgressBar) -> Result<Matcher> {
        let mut m = Matcher {
            region: region.to_owned(),
            merged: HashMap::new(),
            by_external: HashMap::new(),
            by_email: HashMap::new(),
            by_phone: HashMap::new(),
            planned: HashMap::new(),
            targets: Vec::new(),
        };
        m.merged = store
            .contact_names()?
            .into_iter()
            .map(|(id, (_, kept))| (id, kept))
            .collect();
        let unreadable = store.for_each_contact(|chunk| {
            bar.inc(chunk.len() as u64);
            for c in chunk {
                let kept = !matches!(m.merged.get(&c.id), Some(Some(_)));
                let id = c.id.clone();
                let keys = [
                    (&mut m.by_external, c.external_id.iter().cloned().collect()),
                    (
                        &mut m.by_email,
                        c.emails.iter().map(|e| normalise_email(e)).collect(),
                    ),
                    (
                        &mut m.by_phone,
                        c.phones
                            .iter()
                            .map(|p| phone_key(p, region))
                            .collect::<Vec<_>>(),
                    ),
                ];
                for (map, keys) in keys {
                    for key in keys {
                        match map.get(&key) {
                            None => {
                                map.insert(key, Slot::Contact(id.clone()));
                            }
                            Some(Slot::Contact(other))
                                if kept && m.merged.get(other).is_some_and(Option::is_some) =>
                            {
                                map.insert(key, Slot::Contact(id.clone()));
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        })?;
        bar.finish_and_clear();
        if unreadable > 0 {
            eprintln!(
                "warning: {unreadable} contacts of the store could not be read (written by a newer Muster?); rows are not matched against them"
            );
        }
        Ok(m)
    }

    /// The contact that stands for `id`: itself, or the contact it counts
    /// as (the store's index follows merges by the one rule of
    /// `muster_core::merges`).
    fn resolve(&self, id: &str) -> Result<String, String> {
        match self.merged.get(id) {
            Some(None) => Ok(id.to_owned()),
            Some(Some(kept)) if self.merged.contains_key(kept) => Ok(kept.clone()),
            Some(Some(kept)) => Err(format!(
                "matches {id}, which was merged into {kept}, a contact not on this device"
            )),
            None => Err(format!("matches {id}, a contact not on this device")),
        }
    }

    /// The target of a row: the contact its id, external id, email or phone
    /// leads to (in that order), else a new contact. Returns the target and
    /// the key that matched, or the reason to skip the row.
    fn place(
        &mut self,
        patch: &RowPatch,
        row: usize,
    ) -> Result<(usize, Option<&'static str>), String> {
        if let Some(into) = &patch.merged_into {
            return Err(format!(
                "a merged duplicate (merged into {into}): not imported"
            ));
        }
        let mut found: Option<(Slot, &'static str)> = None;
        if let Some(id) = &patch.id
            && self.merged.contains_key(id)
        {
            found = Some((Slot::Contact(id.clone()), "id"));
        }
        if found.is_none()
            && let Some(slot) = patch
                .external_id
                .as_ref()
                .and_then(|x| self.by_external.get(x))
        {
            found = Some((slot.clone(), "external_id"));
        }
        if found.is_none()
            && let Some(slot) = patch
                .emails
                .iter()
                .find_map(|e| self.by_email.get(&normalise_email(e)))
        {
            found = Some((slot.clone(), "email"));
        }
        if found.is_none()
            && let Some(slot) = patch
                .phones
                .iter()
                .find_map(|p| self.by_phone.get(&phone_key(p, &self.region)))
        {
            found = Some((slot.clone(), "phone"));
        }
        let (target, matched_by) = match found {
            Some((Slot::Planned(t), by)) => (t, Some(by)),
            Some((Slot::Contact(id), by)) => {
                let kept = self.resolve(&id)?;
                let t = match self.planned.get(&kept) {
                    Some(&t) => t,
                    None => {
                        self.targets.push(Target {
                            contact: Some(kept.clone()),
                            rows: Vec::new(),
                        });
                        self.planned.insert(kept, self.targets.len() - 1);
                        self.targets.len() - 1
                    }
                };
                (t, Some(by))
            }
            None => {
                if patch.name.is_none() {
                    return Err("missing name".to_owned());
                }
                self.targets.push(Target {
                    contact: None,
                    rows: Vec::new(),
                });
                (self.targets.len() - 1, None)
            }
        };
        self.targets[target].rows.push(row);
        // Later rows with the same keys are about the same person.
        if let Some(x) = &patch.external_id {
            self.by_external
                .entry(x.clone())
                .or_insert(Slot::Planned(target));
        }
        for e in &patch.emails {
            self.by_email
                .entry(normalise_email(e))
                .or_insert(Slot::Planned(target));
        }
        for p in &patch.phones {
            self.by_phone
                .entry(phone_key(p, &self.region))
                .or_insert(Slot::Planned(target));
        }
        Ok((target, matched_by))
    }
}

// ----- import: the command ------------------------------------------------------

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Matched or placed, not yet decided.
    Pending,
    Created,
    Updated,
    Unchanged,
    Skipped(String),
}

/// One row of the file as the import sees it.
struct RowState {
    row: usize,
    outcome: Outcome,
    target: Option<usize>,
    matched_by: Option<&'static str>,
}

/// The report of `muster import contacts --json` (README: "Import and
/// export").
#[derive(Debug, Serialize)]
struct ImportReport {
    file: String,
    dry_run: bool,
    phone_region: String,
    columns: Vec<ColumnJson>,
    rows_read: usize,
    created: usize,
    updated: usize,
    unchanged: usize,
    skipped: usize,
    skipped_rows: Vec<SkippedJson>,
    rows: Vec<RowJson>,
}

#[derive(Debug, Serialize)]
struct ColumnJson {
    column: String,
    field: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct SkippedJson {
    row: usize,
    reason: String,
}

#[derive(Debug, Serialize)]
struct RowJson {
    row: usize,
    outcome: &'static str,
    contact_id: Option<String>,
    matched_by: Option<&'static str>,
    same_as_row: Option<usize>,
}

/// An edit of one contact, as [`Store::write_contacts`] takes it.
type Edit<'a> = Box<dyn FnOnce(&mut Contact) -> muster_core::Result<()> + 'a>;

/// `muster import contacts FILE.csv`: the preview, then the two phases of
/// the module documentation, then the report on stdout.
fn import_contacts(store: &mut Store, args: &ImportContactsArgs) -> Result<()> {
    let region = phone_region(store, args.region.as_deref())?;
    let file = CsvFile::open(&args.file, args.delimiter.as_deref())?;
    let headers = file.headers()?;
    let mut columns = map_columns(&headers, &args.map)?;
    {
        let mut sample = Vec::new();
        let mut reader = file.reader();
        for record in reader.records().take(100) {
            // Problems are reported, with their row, by the full read below.
            let Ok(record) = record else { break };
            sample.push(record.iter().map(str::to_owned).collect::<Vec<_>>());
        }
        reconsider_id_column(&mut columns, &sample);
    }
    print_preview(&file, &columns, &region);
    let fields: HashSet<String> = columns
        .iter()
        .filter_map(|c| c.field.as_ref().map(Field::name))
        .collect();
    let identifies = [
        "id",
        "name",
        "first_name",
        "last_name",
        "external_id",
        "email",
        "phone",
    ];
    if !identifies.iter().any(|f| fields.contains(*f)) {
        bail!(
            "no column gives a name, id, external id, email or phone, so no row could be matched or created; the columns are {}. Name them with --map COLUMN=FIELD (fields: {FIELD_NAMES})",
            quoted_list(&headers)
        );
    }
    if !["name", "first_name", "last_name"]
        .iter()
        .any(|f| fields.contains(*f))
    {
        eprintln!(
            "note: no column gives the name: rows that match no existing contact will be skipped"
        );
    }
    let hidden = args.json;

    // Phase 1: read, check and match every row; nothing is written.
    let bar = progress(store.contact_count()?.max(0) as u64, "matching", hidden);
    let mut matcher = Matcher::load(store, &region, &bar)?;
    let mut rows: Vec<RowState> = Vec::new();
    let mut patches: Vec<RowPatch> = Vec::new();
    let bar = progress(file.bytes.len() as u64, "reading", hidden);
    read_rows(&file, &headers, &bar, |row, cells| {
        let index = rows.len();
        if cells.iter().all(|c| c.trim().is_empty()) {
            // Spreadsheets leave blank rows (`,,,,`) below the data: they
            // say nothing and are passed over.
            return Ok(());
        }
        let (state, patch) = {
            match RowPatch::parse(&cells, &columns, &region) {
                Err(reason) => (Outcome::Skipped(reason), RowPatch::default()),
                Ok(patch) => match matcher.place(&patch, index) {
                    Err(reason) => (Outcome::Skipped(reason), RowPatch::default()),
                    Ok((target, by)) => {
                        rows.push(RowState {
                            row,
                            outcome: Outcome::Pending,
                            target: Some(target),
                            matched_by: by,
                        });
                        patches.push(patch);
                        return Ok(());
                    }
                },
            }
        };
        rows.push(RowState {
            row,
            outcome: state,
            target: None,
            matched_by: None,
        });
        patches.push(patch);
        Ok(())
    })?;
    let targets = std::mem::take(&mut matcher.targets);
    drop(matcher);

    // Phase 2: a batch of contacts at a time, decide what each row changes
    // and write the batch in one transaction.
    let to_write: usize = targets.iter().map(|t| t.rows.len()).sum();
    let bar = progress(to_write as u64, "importing", hidden);
    let now = jiff::Timestamp::now().as_millisecond();
    let mut created_ids: Vec<Option<String>> = vec![None; targets.len()];
    let mut written = 0;
    let mut start = 0;
    while start < targets.len() {
        let mut end = start;
        let mut batch_rows = 0;
        while end < targets.len() && (end == start || batch_rows < BATCH_ROWS) {
            batch_rows += targets[end].rows.len();
            end += 1;
        }
        let existing: Vec<String> = targets[start..end]
            .iter()
            .filter_map(|t| t.contact.clone())
            .collect();
        let mut current: HashMap<String, Contact> = existing
            .iter()
            .cloned()
            .zip(store.contacts_by_id(&existing)?)
            .filter_map(|(id, c)| c.map(|c| (id, c)))
            .collect();
        let mut creates: Vec<Contact> = Vec::new();
        let mut created_for: Vec<usize> = Vec::new();
        let mut updates: Vec<(String, Edit<'_>)> = Vec::new();
        for (t, target) in targets.iter().enumerate().take(end).skip(start) {
            let original = match &target.contact {
                None => None,
                Some(id) => match current.remove(id) {
                    Some(mut c) => {
                        // Compare with the contact as it would be written.
                        let stored = c.clone();
                        if c.normalise().is_err() {
                            c = stored;
                        }
                        Some(c)
                    }
                    None => {
                        for &r in &target.rows {
                            rows[r].outcome = Outcome::Skipped(format!(
                                "matches {id}, which is no longer on this device"
                            ));
                        }
                        continue;
                    }
                },
            };
            let mut state = original.clone();
            let mut accepted: Vec<usize> = Vec::new();
            for &r in &target.rows {
                let patch = &patches[r];
                let mut next = match &state {
                    Some(c) => c.clone(),
                    None => match &patch.name {
                        None => {
                            rows[r].outcome = Outcome::Skipped("missing name".into());
                            continue;
                        }
                        Some(name) => match blank(name) {
                            Ok(c) => c,
                            Err(e) => {
                                rows[r].outcome = Outcome::Skipped(e.to_string());
                                continue;
                            }
                        },
                    },
                };
                patch.apply(&mut next, &region);
                if let Err(e) = next.normalise() {
                    rows[r].outcome = Outcome::Skipped(e.to_string());
                    continue;
                }
                rows[r].outcome = match &state {
                    None => Outcome::Created,
                    Some(before) if *before != next => Outcome::Updated,
                    Some(_) => Outcome::Unchanged,
                };
                state = Some(next);
                accepted.push(r);
            }
            if target.contact.is_some() && state == original {
                // Rows that undo each other (a name spelt two ways) leave
                // the contact as it was: none of them changed it.
                for &r in &accepted {
                    rows[r].outcome = Outcome::Unchanged;
                }
            }
            match (&target.contact, state) {
                (None, Some(contact)) => {
                    creates.push(contact);
                    created_for.push(t);
                }
                (Some(id), Some(contact)) if Some(&contact) != original.as_ref() => {
                    let mine: Vec<&RowPatch> = accepted.iter().map(|&r| &patches[r]).collect();
                    let region = region.as_str();
                    updates.push((
                        id.clone(),
                        Box::new(move |c: &mut Contact| {
                            for p in mine {
                                p.apply(c, region);
                            }
                            Ok(())
                        }),
                    ));
                }
                _ => {}
            }
        }
        if !args.dry_run {
            let (ids, _) = store.write_contacts(creates, updates, now).with_context(|| {
                format!(
                    "the import stopped after writing {written} of {to_write} rows (each batch of about {BATCH_ROWS} rows is written whole or not at all; importing the file again matches what was written)"
                )
            })?;
            for (t, id) in created_for.into_iter().zip(ids) {
                created_ids[t] = Some(id);
            }
        }
        written += batch_rows;
        bar.inc(batch_rows as u64);
        start = end;
    }
    bar.finish_and_clear();

    let report = build_report(args, &region, &columns, &rows, &targets, &created_ids);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The mapping, on stderr, before anything is imported.
fn print_preview(file: &CsvFile, columns: &[Column], region: &str) {
    let separator = match file.delimiter {
        b'\t' => "tab".to_owned(),
        d => format!("\"{}\"", char::from(d)),
    };
    eprintln!(
        "Columns of {} (separator {separator}):",
        file.path.display()
    );
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

fn build_report(
    args: &ImportContactsArgs,
    region: &str,
    columns: &[Column],
    rows: &[RowState],
    targets: &[Target],
    created_ids: &[Option<String>],
) -> ImportReport {
    // The first row of each target that was imported: later rows about the
    // same contact are "the same as" it.
    let mut first_row: Vec<Option<usize>> = vec![None; targets.len()];
    let mut report = ImportReport {
        file: args.file.display().to_string(),
        dry_run: args.dry_run,
        phone_region: region.to_owned(),
        columns: columns
            .iter()
            .map(|c| ColumnJson {
                column: c.header.clone(),
                field: c.field.as_ref().map(Field::name),
                note: c.note.clone(),
            })
            .collect(),
        rows_read: rows.len(),
        created: 0,
        updated: 0,
        unchanged: 0,
        skipped: 0,
        skipped_rows: Vec::new(),
        rows: Vec::new(),
    };
    for r in rows {
        let outcome = match &r.outcome {
            Outcome::Skipped(reason) => {
                report.skipped += 1;
                report.skipped_rows.push(SkippedJson {
                    row: r.row,
                    reason: reason.clone(),
                });
                continue;
            }
            Outcome::Pending => {
                // Cannot happen: every placed row is decided in phase 2.
                continue;
            }
            Outcome::Created => {
                report.created += 1;
                "created"
            }
            Outcome::Updated => {
                report.updated += 1;
                "updated"
            }
            Outcome::Unchanged => {
                report.unchanged += 1;
                "unchanged"
            }
        };
        let Some(t) = r.target else { continue };
        let same_as_row = match first_row[t] {
            Some(first) => Some(first),
            None => {
                first_row[t] = Some(r.row);
                None
            }
        };
        report.rows.push(RowJson {
            row: r.row,
            outcome,
            contact_id: targets[t]
                .contact
                .clone()
                .or_else(|| created_ids[t].clone()),
            matched_by: r.matched_by,
            same_as_row,
        });
    }
    report
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn fields(columns: &[Column]) -> Vec<Option<String>> {
        columns
            .iter()
            .map(|c| c.field.as_ref().map(Field::name))
            .collect()
    }

    #[test]
    fn common_headers_are_recognised_whatever_their_case() {
        let cols = map_columns(
            &headers(&[
                "Full Name",
                "E-mail",
                "MOBILE",
                "Telephone",
                "ID in other system",
                "Post code",
                "Organization",
                "Member ID",
                "Favourite colour",
                "custom.shirt",
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(
            fields(&cols),
            vec![
                Some("name".into()),
                Some("email".into()),
                Some("phone".into()),
                Some("phone".into()),
                Some("external_id".into()),
                Some("postal_code".into()),
                Some("organisation".into()),
                None,
                None,
                Some("custom.shirt".into()),
            ]
        );
        assert_eq!(
            cols[7].note.as_deref(),
            Some("external_id already comes from \"ID in other system\"")
        );
        assert_eq!(Field::guess("member_id"), Some(Field::ExternalId));
        assert_eq!(Field::guess(" Town/City "), Some(Field::City));
        assert_eq!(Field::guess("colour"), None);
    }

    #[test]
    fn map_overrides_and_one_column_per_single_field() {
        let cols = map_columns(
            &headers(&["Name", "Nom complet", "First name", "City", "Town"]),
            &["nom complet=name".into(), "city=ignore".into()],
        )
        .unwrap();
        assert_eq!(
            fields(&cols),
            vec![None, Some("name".into()), None, None, Some("city".into())]
        );
        assert_eq!(
            cols[0].note.as_deref(),
            Some("name already comes from \"Nom complet\"")
        );
        assert_eq!(
            cols[2].note.as_deref(),
            Some("the name comes from \"Nom complet\"")
        );
        let err = map_columns(&headers(&["Name"]), &["Phone=phone".into()]).unwrap_err();
        assert!(
            err.to_string().contains("no column is called \"Phone\""),
            "{err}"
        );
        let err = map_columns(&headers(&["Name"]), &["Name=shoe size".into()]).unwrap_err();
        assert!(err.to_string().contains("is not a field"), "{err}");
    }

    #[test]
    fn an_id_column_without_muster_ids_is_another_systems_id() {
        let mut cols = map_columns(&headers(&["ID", "Name"]), &[]).unwrap();
        reconsider_id_column(&mut cols, &[vec!["1042".into(), "Ana".into()]]);
        assert_eq!(cols[0].field, Some(Field::ExternalId));
        let mut cols = map_columns(&headers(&["ID", "Name"]), &[]).unwrap();
        reconsider_id_column(
            &mut cols,
            &[vec![
                "c_0123456789abcdef0123456789abcdef".into(),
                "Ana".into(),
            ]],
        );
        assert_eq!(cols[0].field, Some(Field::Id));
    }

    #[test]
    fn separators_are_guessed_from_the_first_row() {
        assert_eq!(sniff_delimiter(b"name,email\nA;B,c"), b',');
        assert_eq!(sniff_delimiter(b"name;email;\"a,b\"\n"), b';');
        assert_eq!(sniff_delimiter(b"name\temail\n"), b'\t');
        assert_eq!(sniff_delimiter(b"name\n"), b',');
    }

    #[test]
    fn rows_are_checked_and_put_in_canonical_form() {
        let cols = map_columns(
            &headers(&["first name", "last name", "phone", "email", "roles", "tags"]),
            &[],
        )
        .unwrap();
        let row = |cells: &[&str]| {
            RowPatch::parse(
                &cells.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                &cols,
                "GB",
            )
        };
        let p = row(&[
            " Ana ",
            "Silva",
            "07700 900123; +44 7700 900123",
            "Ana@Example.ORG",
            "Volunteer",
            "choir, kitchen",
        ])
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("Ana Silva"));
        assert_eq!(p.phones, vec!["+447700900123"]);
        assert_eq!(p.emails, vec!["Ana@example.org"]);
        assert_eq!(p.roles, vec!["volunteer"]);
        assert_eq!(p.tags, vec!["choir", "kitchen"]);
        assert_eq!(
            row(&["Ana", "", "", "ana.example.org", "", ""]).unwrap_err(),
            "invalid email: \"ana.example.org\" has no @"
        );
        assert!(
            row(&["Ana", "", "", "", "helper", ""])
                .unwrap_err()
                .starts_with("invalid role: \"helper\"")
        );
        assert!(
            row(&["Ana", "", "call me", "", "", ""])
                .unwrap_err()
                .starts_with("invalid phone")
        );
    }

    #[test]
    fn applying_a_row_adds_what_is_new_and_keeps_the_rest() {
        let cols = map_columns(&headers(&["name", "phone", "email", "city"]), &[]).unwrap();
        let cells: Vec<String> = ["Ana Silva", "+44 7700 900123", "ANA@example.org", ""]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let p = RowPatch::parse(&cells, &cols, "GB").unwrap();
        let mut c = blank("Ana Silva").unwrap();
        c.phones = vec!["07700 900123".into()];
        c.emails = vec!["ana@example.org".into()];
        c.address.city = "Leeds".into();
        let before = c.clone();
        p.apply(&mut c, "GB");
        assert_eq!(c, before, "nothing new: nothing changes");
    }
}
