//! Reading a CSV file as people save them: UTF-8 with or without a
//! byte-order mark, `,`, `;` or tab between columns, and problems named by
//! row and column with what to do about them.

use super::{Progress, Stage};
use crate::error::{Error, Result};

/// A CSV file, read whole (a contacts file is a few megabytes).
pub struct CsvFile {
    /// What messages call the file (its path).
    name: String,
    bytes: Vec<u8>,
    /// Where the text starts (after a UTF-8 byte-order mark).
    start: usize,
    /// The column separator.
    pub delimiter: u8,
}

impl CsvFile {
    /// The file `name` holding `bytes`, its columns separated by
    /// `delimiter` (`,`, `;` or `tab`; guessed from the first row when
    /// `None`). Refuses UTF-16 text and an empty file, saying what to do.
    pub fn new(name: String, bytes: Vec<u8>, delimiter: Option<&str>) -> Result<CsvFile> {
        if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
            return Err(Error::BadImport(format!(
                "{name} is UTF-16 text; save it as UTF-8 (in Excel: \"CSV UTF-8\") and import again"
            )));
        }
        let start = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else {
            0
        };
        if bytes[start..].iter().all(u8::is_ascii_whitespace) {
            return Err(Error::BadImport(format!(
                "{name} is empty: a contacts file starts with a row of column names, such as name,email,phone"
            )));
        }
        let delimiter = match delimiter.map(str::trim) {
            None => sniff_delimiter(&bytes[start..]),
            Some(",") => b',',
            Some(";") => b';',
            Some("tab" | "\\t" | "\t") => b'\t',
            Some(other) => {
                return Err(Error::BadImport(format!(
                    "--delimiter {other:?}: use \",\", \";\" or tab"
                )));
            }
        };
        Ok(CsvFile {
            name,
            bytes,
            start,
            delimiter,
        })
    }

    /// What messages call the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn reader(&self) -> csv::Reader<&[u8]> {
        csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(true)
            .flexible(false)
            .from_reader(&self.bytes[self.start..])
    }

    /// The column names (the first row).
    pub fn headers(&self) -> Result<Vec<String>> {
        let mut reader = self.reader();
        let headers = reader.byte_headers().map_err(|e| self.problem(e))?.clone();
        headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                String::from_utf8(h.to_vec()).map_err(|_| {
                    Error::BadImport(format!(
                        "{}: row 1 (the column names), column {} is not UTF-8 text; save the file as UTF-8 (in Excel: \"CSV UTF-8\"). Nothing was imported",
                        self.name,
                        i + 1
                    ))
                })
            })
            .collect()
    }

    /// A CSV error, in words that say what to fix.
    fn problem(&self, e: csv::Error) -> Error {
        let path = &self.name;
        match e.kind() {
            csv::ErrorKind::UnequalLengths {
                pos,
                expected_len,
                len,
            } => {
                let row = pos.as_ref().map_or(0, |p| p.record() + 1);
                Error::BadImport(format!(
                    "{path}: row {row} has {len} columns but the first row has {expected_len}; check that row's quotes and separators. Nothing was imported"
                ))
            }
            csv::ErrorKind::Io(err) => Error::BadImport(format!("cannot read {path}: {err}")),
            _ => Error::BadImport(format!(
                "{path} cannot be read as CSV: {e}. Nothing was imported"
            )),
        }
    }
}

/// The separator of the first row: the most frequent of `,`, `;` and tab
/// outside quotes (`,` when none appears).
pub(crate) fn sniff_delimiter(text: &[u8]) -> u8 {
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
/// is row 1, as a spreadsheet numbers them), where the row starts in the
/// file (for [`RowReader::row_at`]) and the cells. A structural problem or
/// text that is not UTF-8 stops the reading with an error naming the row.
pub(crate) fn read_rows(
    file: &CsvFile,
    headers: &[String],
    progress: &mut dyn Progress,
    mut f: impl FnMut(usize, u64, Vec<String>) -> Result<()>,
) -> Result<()> {
    progress.stage(Stage::Reading, file.bytes.len() as u64);
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
        let at = record.position().map_or(0, |p| p.byte());
        let cells = file.cells(&record, row, headers)?;
        if row % 1_000 == 0 {
            progress.advance(at);
        }
        f(row, at, cells)?;
    }
    Ok(())
}

/// Reads rows again where [`read_rows`] found them: an import reads each
/// row a second time when it writes it rather than holding every row's
/// values while it matches them. One reader for all of them: building a
/// CSV reader per row was 7% of an import.
pub(crate) struct RowReader<'a> {
    file: &'a CsvFile,
    reader: csv::Reader<std::io::Cursor<&'a [u8]>>,
    record: csv::ByteRecord,
}

impl<'a> RowReader<'a> {
    pub(crate) fn new(file: &'a CsvFile) -> RowReader<'a> {
        RowReader {
            file,
            reader: csv::ReaderBuilder::new()
                .delimiter(file.delimiter)
                .has_headers(false)
                .flexible(false)
                .buffer_capacity(1 << 10)
                .from_reader(std::io::Cursor::new(&file.bytes[..])),
            record: csv::ByteRecord::new(),
        }
    }

    /// The cells of data row `row`, which starts at `at` ([`read_rows`]
    /// gives both).
    pub(crate) fn row_at(
        &mut self,
        at: u64,
        row: usize,
        headers: &[String],
    ) -> Result<Vec<String>> {
        let file = self.file;
        let missing = || Error::BadImport(format!("{}: row {row} is not in the file", file.name));
        let from = usize::try_from(at)
            .ok()
            .and_then(|at| file.start.checked_add(at))
            .filter(|&from| from <= file.bytes.len())
            .ok_or_else(missing)?;
        self.reader
            .seek_raw(std::io::SeekFrom::Start(from as u64), csv::Position::new())
            .map_err(|e| file.problem(e))?;
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => file.cells(&self.record, row, headers),
            Ok(false) => Err(missing()),
            Err(e) => Err(file.problem(e)),
        }
    }
}

impl CsvFile {
    /// A record's cells as text.
    fn cells(
        &self,
        record: &csv::ByteRecord,
        row: usize,
        headers: &[String],
    ) -> Result<Vec<String>> {
        let mut cells = Vec::with_capacity(record.len());
        for (i, cell) in record.iter().enumerate() {
            match std::str::from_utf8(cell) {
                // An export's `'` before a would-be formula comes off.
                Ok(text) => cells.push(crate::export::csv_text_read(text).to_owned()),
                Err(e) => {
                    return Err(Error::BadImport(format!(
                        "{}: row {row}, column {:?} is not UTF-8 text (byte {} of the cell); the file is probably in another encoding such as Windows-1252: save it as UTF-8 (in Excel: \"CSV UTF-8\"). Nothing was imported",
                        self.name,
                        headers.get(i).map_or("?", String::as_str),
                        e.valid_up_to() + 1
                    )));
                }
            }
        }
        Ok(cells)
    }
}
