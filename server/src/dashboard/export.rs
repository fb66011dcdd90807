//! CSV (and JSON) downloads: `/export/contacts.csv`, `signups.csv`,
//! `donations.csv`, `hours.csv`, `feedback.csv`.
//!
//! The rows are those of `muster export` ([`muster_core::export::write`],
//! headers documented in cli/README.md). Each download reads the
//! dashboard's store through a connection of its own, so a large export
//! never holds the device's store lock, and streams: rows go to the browser
//! as they are written, 64 KiB at a time.

use std::io::Write;
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use muster_core::Store;
use muster_core::export::{Dataset, Format, Options};
use tokio::sync::mpsc;

use super::auth::Coordinator;
use super::html::{self, Script, Section};
use super::pages::ok_page;
use super::{DashboardError, now_ms};

/// Bytes gathered before a chunk is sent to the browser.
const CHUNK: usize = 64 * 1024;

/// What each download holds, for the exports page.
const DESCRIPTIONS: [(Dataset, &str); 5] = [
    (
        Dataset::Contacts,
        "Every contact with phones, emails, address, roles, consent and notes (merged duplicates included, with the contact they were merged into).",
    ),
    (
        Dataset::Signups,
        "Every sign-up to every event: status, registration and check-in times, walk-ins, waitlist positions.",
    ),
    (
        Dataset::Donations,
        "Every donation in the contacts' private ledgers.",
    ),
    (
        Dataset::Hours,
        "Every volunteer shift, with the minutes worked once recorded.",
    ),
    (
        Dataset::Feedback,
        "Every feedback case with its status, response times and whether it is overdue.",
    ),
];

/// `GET /export`: the downloads.
pub async fn index(who: Coordinator) -> Response {
    let body = maud::html! {
        h1 { "Exports" }
        p class="sub" {
            "UTF-8 CSV with a header line, the same columns as " code { "muster export" }
            ". Times are UTC (RFC 3339)."
        }
        ul class="downloads" {
            @for (d, what) in DESCRIPTIONS {
                li {
                    a class="button" href={ "/export/" (d.as_str()) ".csv" } download { (d.as_str()) ".csv" }
                    " "
                    a class="sub" href={ "/export/" (d.as_str()) ".json" } download { "JSON" }
                    p { (what) }
                }
            }
        }
    };
    ok_page(&who, Section::Exports, "Exports", Script::None, body).await
}

/// A `Write` that hands what is written to the response body in chunks.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the browser stopped the download",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

fn open_reader(path: &PathBuf, key: Option<&[u8; 32]>) -> muster_core::Result<Store> {
    match key {
        Some(k) => Store::open_encrypted(path, k),
        None => Store::open(path),
    }
}

/// `GET /export/{dataset}.csv` (or `.json`): the download.
pub async fn download(who: Coordinator, file: Result<Path<String>, PathRejection>) -> Response {
    let unknown = || {
        DashboardError::NotFound(
            "There is no such export. The downloads are contacts.csv, signups.csv, donations.csv, hours.csv and feedback.csv."
                .into(),
        )
        .into_response()
    };
    let Ok(Path(file)) = file else {
        return unknown();
    };
    let (name, format) = match file.rsplit_once('.') {
        Some((name, "csv")) => (name, Format::Csv),
        Some((name, "json")) => (name, Format::Json),
        _ => return unknown(),
    };
    let Some(dataset) = Dataset::parse(name) else {
        return unknown();
    };
    let (path, key) = (who.dash.store_path.clone(), who.dash.key);
    // Open the reader first, so that a failure is a proper error page.
    let opened = tokio::task::spawn_blocking(move || -> muster_core::Result<(Store, String)> {
        let store = open_reader(&path, key.as_ref())?;
        let region = store.phone_region()?;
        Ok((store, region))
    })
    .await;
    let (mut store, region) = match opened {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return DashboardError::from(e).into_response(),
        Err(e) => {
            return DashboardError::Unavailable(format!("an export task failed: {e}"))
                .into_response();
        }
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let options = Options {
        format,
        bom: false,
        region,
        now: now_ms(),
    };
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        match muster_core::export::write(&mut store, dataset, &options, Box::new(writer)) {
            Ok(w) => tracing::info!(
                export = dataset.as_str(),
                rows = w.rows,
                unreadable = w.unreadable,
                "dashboard export"
            ),
            Err(e) => {
                tracing::warn!(export = dataset.as_str(), error = %e, "dashboard export stopped");
                // Cut the download so the browser shows it failed, rather
                // than keep a file that looks complete.
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(match format {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
        }),
    );
    let date = jiff::Timestamp::from_millisecond(now_ms())
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"muster-{}-{date}.{}\"",
        dataset.as_str(),
        match format {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    html::security_headers(h);
    r
}
