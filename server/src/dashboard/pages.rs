//! The dashboard's pages: events with live counts, an event's roster (live),
//! contact search and detail with history, and overdue feedback.
//!
//! Over 800 lines because it holds every page's handler, each a read of the
//! dashboard's replica and its HTML; the shared pieces are `html.rs`, the
//! duplicate review `duplicates.rs`, the sign-in `auth.rs`.

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use muster_core::device::{SyncActivity, SyncStatus};
use muster_core::{DocKind, EventSummary, RosterLine, SignupStatus};
use serde::Deserialize;

use maud::{Markup, html};

use super::auth::{Coordinator, MaybeCoordinator, login_page};
use super::html::{self, Frame, Script, Section, time, time_or_dash};
use super::{DResult, Dashboard, DashboardError, blocking, now_ms};

/// Contacts listed per page when browsing without a search.
const BROWSE_PAGE: usize = 50;
/// Search results shown.
const SEARCH_LIMIT: usize = 100;

/// Checks that `id` is a contact id (`c_` and 32 hex digits).
pub fn contact_id(id: &str) -> DResult<&str> {
    if DocKind::of_id(id) == Some(DocKind::Contact) {
        Ok(id)
    } else {
        Err(DashboardError::NotFound(format!(
            "{:?} is not a contact id (c_ followed by 32 hex digits).",
            truncate(id, 80)
        )))
    }
}

/// Checks that `id` is an event id (`e_` and 32 hex digits).
pub(super) fn event_id(id: &str) -> DResult<&str> {
    if DocKind::of_id(id) == Some(DocKind::Event) {
        Ok(id)
    } else {
        Err(DashboardError::NotFound(format!(
            "{:?} is not an event id (e_ followed by 32 hex digits).",
            truncate(id, 80)
        )))
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The frame of a logged-in page.
pub fn frame<'a>(
    who: &'a Coordinator,
    section: Section,
    duplicates: Option<usize>,
    replica: String,
) -> Frame<'a> {
    Frame {
        section,
        csrf: &who.csrf,
        duplicates,
        replica,
    }
}

/// One line on how the dashboard's replica is syncing, for the footer:
/// read from the device when the page is made (the pending count from its
/// store), so it never shows a stale "sending".
pub async fn replica_line(dash: &Arc<Dashboard>) -> String {
    let d = dash.clone();
    match tokio::task::spawn_blocking(move || d.device().status()).await {
        Ok(Ok(status)) => describe(&status),
        _ => "Dashboard replica: status unknown".into(),
    }
}

fn describe(status: &SyncStatus) -> String {
    let activity = match &status.activity {
        SyncActivity::Failed { message, .. } => format!(
            "sync stopped: {message} (if its token was revoked, restart the relay: it enrolls a new one)"
        ),
        SyncActivity::Offline { reason, .. } => format!("offline ({reason}); retrying"),
        SyncActivity::Connecting { .. } => "connecting to the relay…".to_owned(),
        SyncActivity::Pulling { done, total } if done < total => format!(
            "catching up with the relay: {} of {} changes",
            html::count(*done as i64),
            html::count(*total as i64)
        ),
        _ if status.live => "in sync with the relay (live)".to_owned(),
        _ => "not syncing".to_owned(),
    };
    let pending = match status.pending_changes {
        0 => String::new(),
        1 => " · 1 change of its own being sent".to_owned(),
        n => format!(" · {n} changes of its own being sent"),
    };
    format!("Dashboard replica: {activity}{pending}")
}

/// A logged-in page with its frame (200).
pub async fn ok_page(
    who: &Coordinator,
    section: Section,
    title: &str,
    script: Script,
    body: Markup,
) -> Response {
    let replica = replica_line(&who.dash).await;
    html::respond(
        StatusCode::OK,
        html::page(
            title,
            &frame(who, section, who.dash.duplicates.pending(), replica),
            &script,
            body,
        ),
    )
}

/// The live pages' query: the change counter the page last saw.
#[derive(Debug, Deserialize)]
pub struct SinceQuery {
    #[serde(default)]
    since: Option<u64>,
}

// ----- events ---------------------------------------------------------------

fn event_rows(events: &[EventSummary]) -> Markup {
    html! {
        @if events.is_empty() {
            tr { td colspan="5" class="empty" { "No events yet." } }
        }
        @for e in events {
            tr data-event=(e.id) {
                td {
                    a href={ "/events/" (e.id) } { (e.title) }
                    div class="sub" {
                        (e.place)
                        @if e.status != "scheduled" {
                            " " span class={ "status s-" (e.status) } { (e.status) }
                        }
                    }
                }
                td { (time(e.starts_at)) }
                td class="num" data-count="registered" {
                    @match e.capacity {
                        Some(c) => { (e.registered) " / " (c) },
                        None => { (e.registered) },
                    }
                }
                td class="num" data-count="checked_in" { (e.checked_in) }
                td class="num" data-count="waitlisted" { (e.waitlisted) }
            }
        }
    }
}

/// `GET /`: the login form, or the events with live counts.
pub async fn home(maybe: Result<MaybeCoordinator, DashboardError>) -> Response {
    let who = match maybe {
        Ok(MaybeCoordinator(Some(who))) => who,
        Ok(MaybeCoordinator(None)) => return login_page(StatusCode::OK, None),
        Err(e) => return e.into_response(),
    };
    let data = blocking(&who.dash, |d| {
        let generation = d.generation();
        d.device()
            .read(|s| {
                let events = s.list_events()?;
                let contacts = s.contact_count()?;
                let feedback = s.reports().feedback(None, None, now_ms())?;
                Ok((generation, events, contacts, feedback.waiting_overdue))
            })
            .map_err(DashboardError::from)
    })
    .await;
    let (generation, events, contacts, overdue) = match data {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let pending = who.dash.duplicates.pending();
    let body = html! {
        h1 { "Events" }
        div class="table-wrap" {
            table class="events" {
                thead { tr {
                    th { "Event" } th { "Starts" }
                    th class="num" { "Registered" } th class="num" { "Checked in" } th class="num" { "Waitlisted" }
                } }
                tbody id="live-rows" { (event_rows(&events)) }
            }
        }
        p class="live-note" { span class="dot" id="live-dot" {} " Counts update live, without reloading." }
        section class="cards" aria-label="Summary" {
            a class="card" href="/contacts" { span class="n" { (html::count(contacts)) } span class="l" { "contacts" } }
            a class="card" href="/duplicates" {
                span class="n" { (pending.map_or("…".to_owned(), |n| html::count(n as i64))) }
                span class="l" { "possible duplicates" }
            }
            a class={ "card" @if overdue > 0 { " alert" } } href="/feedback" {
                span class="n" { (html::count(overdue)) } span class="l" { "overdue feedback" }
            }
            a class="card" href="/export" { span class="n" { "CSV" } span class="l" { "downloads" } }
        }
    };
    ok_page(
        &who,
        Section::Events,
        "Events",
        Script::Live {
            url: "/api/events".into(),
            generation,
        },
        body,
    )
    .await
}

/// `GET /api/events?since=N`: the events' rows, when they changed.
pub async fn events_json(
    who: Coordinator,
    q: Result<Query<SinceQuery>, QueryRejection>,
) -> Response {
    let since = q.ok().and_then(|Query(q)| q.since);
    let result = blocking(&who.dash, move |d| {
        let generation = d.generation();
        if since == Some(generation) {
            return Ok(serde_json::json!({"gen": generation, "unchanged": true}));
        }
        let events = d.device().read(|s| s.list_events())?;
        Ok(serde_json::json!({"gen": generation, "rows_html": event_rows(&events).into_string()}))
    })
    .await;
    match result {
        Ok(v) => html::json(v),
        Err(e) => json_error(e),
    }
}

fn json_error(e: DashboardError) -> Response {
    let mut r = html::json(serde_json::json!({"error": e.to_string()}));
    *r.status_mut() = e.status();
    r
}

/// How many sign-ups of a roster are in each status.
#[derive(Debug, Default)]
struct Counts {
    registered: usize,
    checked_in: usize,
    waitlisted: usize,
    cancelled: usize,
    no_show: usize,
}

impl Counts {
    fn of(lines: &[RosterLine]) -> Counts {
        let mut c = Counts::default();
        for l in lines {
            match l.status {
                SignupStatus::Registered => c.registered += 1,
                SignupStatus::CheckedIn => c.checked_in += 1,
                SignupStatus::Waitlisted => c.waitlisted += 1,
                SignupStatus::Cancelled => c.cancelled += 1,
                SignupStatus::NoShow => c.no_show += 1,
            }
        }
        c
    }

    fn html(&self, capacity: Option<i64>) -> Markup {
        let seats = self.registered + self.checked_in + self.no_show;
        let seats = match capacity {
            Some(c) => format!("{seats} / {c}"),
            None => seats.to_string(),
        };
        let counts = [
            ("checked_in", self.checked_in.to_string(), "checked in"),
            ("seats", seats, "seats taken"),
            ("registered", self.registered.to_string(), "expected"),
            ("waitlisted", self.waitlisted.to_string(), "waitlisted"),
            ("cancelled", self.cancelled.to_string(), "cancelled"),
            ("no_show", self.no_show.to_string(), "no-show"),
        ];
        html! {
            @for (key, n, label) in counts {
                div class="count" data-count=(key) { span class="n" { (n) } span class="l" { (label) } }
            }
        }
    }
}

fn status_label(s: SignupStatus) -> &'static str {
    match s {
        SignupStatus::Registered => "registered",
        SignupStatus::Waitlisted => "waitlisted",
        SignupStatus::CheckedIn => "checked in",
        SignupStatus::Cancelled => "cancelled",
        SignupStatus::NoShow => "no-show",
    }
}

fn status_badge(s: SignupStatus) -> Markup {
    html! { span class={ "status s-" (s.as_str()) } { (status_label(s)) } }
}

fn roster_rows(lines: &[RosterLine]) -> Markup {
    html! {
        @if lines.is_empty() {
            tr { td colspan="5" class="empty" { "Nobody has signed up yet." } }
        }
        @for l in lines {
            tr data-contact=(l.contact_id) data-status=(l.status.as_str()) {
                td {
                    a href={ "/contacts/" (l.contact_id) } {
                        @match &l.name {
                            Some(n) => { (n) },
                            None => { span class="sub" { "(contact " (l.contact_id) " not synced)" } },
                        }
                    }
                    @if l.walk_in { span class="sub narrow" { "walk-in" } }
                }
                td { (status_badge(l.status)) }
                td { (time_or_dash(l.checked_in_at)) }
                td class="wide" { @if l.walk_in { "walk-in" } }
                td class="num" { @if let Some(p) = l.waitlist_position { "#" (p) } }
            }
        }
    }
}

/// `GET /events/{id}`: the roster, with counts that update live.
pub async fn event(
    who: Coordinator,
    id: Result<Path<String>, PathRejection>,
    headers: axum::http::HeaderMap,
) -> Response {
    let result = async {
        let Ok(Path(id)) = id else {
            return Err(DashboardError::NotFound("No such event.".into()));
        };
        let id = event_id(&id)?.to_owned();
        let (generation, summary, lines, record) = blocking(&who.dash, move |d| {
            let generation = d.generation();
            d.device()
                .read(|s| {
                    let summary = s.event_summary(&id)?;
                    let (lines, record) = match &summary {
                        Some(_) => (s.roster(&id, None)?, Some(s.event(&id)?)),
                        None => (Vec::new(), None),
                    };
                    Ok((generation, summary.ok_or(id), lines, record))
                })
                .map_err(DashboardError::from)
        })
        .await?;
        let publication = record.map(|r| super::publishing::section(&r, &headers, &who.csrf));
        let e = summary.map_err(|id| {
            DashboardError::NotFound(format!(
                "No event {id} on the dashboard (it may not have reached the relay yet)."
            ))
        })?;
        let body = html! {
            p class="crumbs" { a href="/" { "Events" } " ›" }
            h1 { (e.title) }
            p class="sub" {
                (time(e.starts_at))
                @if !e.place.is_empty() { " · " (e.place) }
                @if let Some(c) = e.capacity { " · capacity " (c) }
                @if e.status != "scheduled" { " · " (e.status) }
            }
            div class="counts" id="live-counts" { (Counts::of(&lines).html(e.capacity)) }
            p class="live-note" { span class="dot" id="live-dot" {} " The roster updates live, without reloading." }
            div class="table-wrap" {
                table class="roster" {
                    thead { tr {
                        th { "Name" } th { "Status" } th { "Checked in" }
                        th class="wide" { "Walk-in" } th class="num" { "Waitlist" }
                    } }
                    tbody id="live-rows" { (roster_rows(&lines)) }
                }
            }
            @if let Some(p) = publication { (p) }
        };
        Ok(ok_page(
            &who,
            Section::Events,
            &e.title,
            Script::Live {
                url: format!("/api/events/{}", e.id),
                generation,
            },
            body,
        )
        .await)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/events/{id}?since=N`: the roster's counts and rows, when
/// anything changed.
pub async fn event_json(
    who: Coordinator,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<SinceQuery>, QueryRejection>,
) -> Response {
    let since = q.ok().and_then(|Query(q)| q.since);
    let result = async {
        let Ok(Path(id)) = id else {
            return Err(DashboardError::NotFound("No such event.".into()));
        };
        let id = event_id(&id)?.to_owned();
        blocking(&who.dash, move |d| {
            let generation = d.generation();
            if since == Some(generation) {
                return Ok(serde_json::json!({"gen": generation, "unchanged": true}));
            }
            let (capacity, lines) = d.device().read(|s| {
                let capacity = s.event_summary(&id)?.and_then(|e| e.capacity);
                Ok((capacity, s.roster(&id, None)?))
            })?;
            let counts = Counts::of(&lines);
            Ok(serde_json::json!({
                "gen": generation,
                "checked_in": counts.checked_in,
                "counts_html": counts.html(capacity).into_string(),
                "rows_html": roster_rows(&lines).into_string(),
            }))
        })
        .await
    }
    .await;
    match result {
        Ok(v) => html::json(v),
        Err(e) => json_error(e),
    }
}

// ----- contacts -------------------------------------------------------------

/// The contacts page's query.
#[derive(Debug, Deserialize)]
pub struct ContactsQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    offset: Option<usize>,
}

/// `GET /contacts?q=`: search by any part of a name, phone or email; without
/// `q`, every contact by name, a page at a time.
pub async fn contacts(
    who: Coordinator,
    q: Result<Query<ContactsQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Ok(Query(q)) = q else {
            return Err(DashboardError::BadRequest(
                "This search address is malformed; search again from the contacts page.".into(),
            ));
        };
        let text = q.q.unwrap_or_default().trim().chars().take(200).collect::<String>();
        let offset = q.offset.unwrap_or(0);
        let search = text.clone();
        let (total, found) = blocking(&who.dash, move |d| {
            d.device()
                .read(|s| {
                    let total = s.contact_count()?;
                    let found = if search.is_empty() {
                        s.list_contacts(BROWSE_PAGE, offset)?
                    } else {
                        s.search_contacts(&search, SEARCH_LIMIT)?
                    };
                    Ok((total, found))
                })
                .map_err(DashboardError::from)
        })
        .await?;
        let total = total as usize;
        let body = html! {
            h1 { "Contacts" }
            form method="get" action="/contacts" class="search" role="search" {
                label for="q" class="visually-hidden" { "Search contacts" }
                input type="search" id="q" name="q" value=(text) placeholder="Name, phone or email"
                    autocomplete="off" autofocus[text.is_empty()];
                button type="submit" { "Search" }
            }
            @if text.is_empty() {
                p class="sub" { (html::count(total as i64)) " contacts (merged duplicates included), by name." }
            } @else {
                p class="sub" id="result-count" {
                    @if found.len() >= SEARCH_LIMIT { "The first " }
                    (html::plural(found.len(), "result", "results")) " for “" (text) "”."
                }
            }
            @if found.is_empty() {
                p class="empty" { "No contact matches." }
            } @else {
                div class="table-wrap" { table class="contacts" {
                    thead { tr { th { "Name" } th { "Phone" } th { "Email" } th class="wide" { "Roles" } } }
                    tbody {
                        @for c in &found {
                            tr data-contact=(c.id) {
                                td {
                                    a href={ "/contacts/" (c.id) } { (c.name) }
                                    @if c.merged_into.is_some() { " " span class="status s-merged" { "merged" } }
                                }
                                td { (c.phone.as_deref().unwrap_or("")) }
                                td { (c.email.as_deref().unwrap_or("")) }
                                td class="wide" { (c.roles.join(", ")) }
                            }
                        }
                    }
                } }
            }
            @if text.is_empty() {
                (pager("/contacts", offset, BROWSE_PAGE, total))
            }
        };
        Ok(ok_page(&who, Section::Contacts, "Contacts", Script::None, body).await)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Links to the previous and next pages of a list of `total` shown
/// `size` at a time from `offset` (`?offset=` on `path`); nothing when it
/// fits one page.
pub fn pager(path: &str, offset: usize, size: usize, total: usize) -> Markup {
    html! {
        @if total > size {
            nav class="pager" aria-label="Pages" {
                @if offset > 0 {
                    a href={ (path) "?offset=" (offset.saturating_sub(size)) } { "← Previous" }
                }
                span {
                    (html::count((offset + 1).min(total) as i64)) "–"
                    (html::count((offset + size).min(total) as i64)) " of " (html::count(total as i64))
                }
                @if offset + size < total {
                    a href={ (path) "?offset=" (offset + size) } { "Next →" }
                }
            }
        }
    }
}

/// A device id with the label of the token it enrolled with, if known.
fn device_name(labels: &HashMap<String, (String, String)>, device: &str) -> Markup {
    let short: String = device.chars().take(8).collect();
    html! {
        span title={ "device " (device) } {
            @match labels.get(device) {
                Some((label, role)) if !label.is_empty() => {
                    (label) " " span class="sub" { "(" (role) ", " (short) "…)" }
                },
                Some((_, role)) => { (short) "… " span class="sub" { "(" (role) ")" } },
                None => { (short) "…" },
            }
        }
    }
}

/// The button that unmerges the duplicate `id` (back to the duplicates
/// page after, if `back_to_queue`), `inline` in a sentence or a list.
pub fn unmerge_form(
    id: &str,
    csrf: &str,
    back_to_queue: bool,
    inline: bool,
    button_class: &str,
    label: &str,
) -> Markup {
    html! {
        form method="post" action={ "/contacts/" (id) "/unmerge" } class=[inline.then_some("inline")] {
            input type="hidden" name="csrf" value=(csrf);
            @if back_to_queue { input type="hidden" name="back" value="duplicates"; }
            button type="submit" class=(button_class) { (label) }
        }
    }
}

/// `GET /contacts/{id}`: a contact with its history.
pub async fn contact(
    State(state): State<crate::AppState>,
    who: Coordinator,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let result = async {
        let Ok(Path(id)) = id else {
            return Err(DashboardError::NotFound("No such contact.".into()));
        };
        let id = contact_id(&id)?.to_owned();
        let data = blocking(&who.dash, move |d| {
            d.device()
                .read(|s| {
                    let c = s.contact(&id)?;
                    let kept = c
                        .merged_into
                        .as_ref()
                        .map(|into| s.contact(into).map(|k| k.name).unwrap_or_default());
                    let signups = s.signups_of_contact(&id)?;
                    let ledger = s.contact_private(&id)?;
                    let mut merged = Vec::new();
                    for dup in s.merged_duplicates_of(&id)? {
                        let name = s.contact(&dup).map(|c| c.name).unwrap_or_default();
                        merged.push((dup, name));
                    }
                    let history = s.change_history(&id)?;
                    Ok((c, kept, signups, ledger, merged, history))
                })
                .map_err(DashboardError::from)
        })
        .await?;
        let (c, kept, signups, ledger, merged, history) = data;
        let labels = {
            let state = state.clone();
            tokio::task::spawn_blocking(move || state.storage().device_labels())
                .await
                .map_err(|e| DashboardError::Unavailable(format!("a dashboard task failed: {e}")))??
        };
        let csrf = who.csrf.as_str();
        let mut facts: Vec<(&str, Markup)> = Vec::new();
        let lines = |v: &[String]| html! { @for (i, x) in v.iter().enumerate() { @if i > 0 { br; } (x) } };
        if !c.phones.is_empty() {
            facts.push(("Phone", lines(&c.phones)));
        }
        if !c.emails.is_empty() {
            facts.push(("Email", lines(&c.emails)));
        }
        let roles = c.role_list();
        if !roles.is_empty() {
            facts.push(("Roles", html! { (roles.join(", ")) }));
        }
        let tags = c.tag_list();
        if !tags.is_empty() {
            facts.push(("Tags", html! { (tags.join(", ")) }));
        }
        let a = &c.address;
        let address = [&a.street, &a.city, &a.region, &a.postal_code, &a.country]
            .into_iter()
            .filter(|x| !x.is_empty())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if !address.is_empty() {
            facts.push(("Address", html! { (address) }));
        }
        for (label, value) in [
            ("Language", &c.preferred_language),
            ("Organisation", &c.organisation),
            ("Household", &c.household),
            ("External id", &c.external_id),
        ] {
            if let Some(v) = value {
                facts.push((label, html! { (v) }));
            }
        }
        let channels: Vec<&str> = c
            .consent
            .channels
            .iter()
            .filter(|(_, on)| **on)
            .map(|(k, _)| k.as_str())
            .collect();
        facts.push((
            "Consent",
            html! {
                @if c.consent.given {
                    "given"
                    @if !channels.is_empty() { " (" (channels.join(", ")) ")" }
                    @if let Some(t) = c.consent.recorded_at { ", " (time(t)) }
                } @else {
                    "not recorded"
                }
            },
        ));
        facts.push((
            "Created",
            html! { (time(c.created_at)) " by " (device_name(&labels, &c.created_by)) },
        ));
        let mut donations = ledger.donations.clone();
        donations.sort_by_key(|d| std::cmp::Reverse(d.date));
        let totals: Vec<String> = ledger
            .totals()
            .iter()
            .map(|(cur, minor)| html::money(*minor, cur))
            .collect();
        let mut interactions = ledger.interactions.clone();
        interactions.sort_by_key(|i| std::cmp::Reverse(i.at));
        let notes = c.notes.as_str();
        let body = html! {
            p class="crumbs" { a href="/contacts" { "Contacts" } " ›" }
            h1 { (c.name) }
            @if let Some(p) = &c.preferred_name { p class="sub" { "Prefers to be called " (p) } }
            @if let Some(into) = &c.merged_into {
                div class="notice" role="status" {
                    "This contact was merged into "
                    a href={ "/contacts/" (into) } { (kept.as_deref().filter(|k| !k.is_empty()).unwrap_or(into)) }
                    "; its sign-ups and ledger show there. "
                    (unmerge_form(&c.id, csrf, false, true, "secondary", "Unmerge"))
                }
            }
            dl class="facts" { @for (k, v) in &facts { dt { (k) } dd { (v) } } }
            @if !notes.trim().is_empty() {
                h2 { "Notes" }
                p class="notes" { (notes) }
            }

            h2 { "Sign-ups " span class="sub" { "(" (signups.len()) ")" } }
            @if signups.is_empty() {
                p class="empty" { "No sign-ups." }
            } @else {
                div class="table-wrap" { table {
                    thead { tr {
                        th { "Event" } th { "Starts" } th { "Status" } th { "Checked in" } th class="wide" { "Registered" }
                    } }
                    tbody { @for s in &signups { tr {
                        td {
                            a href={ "/events/" (s.event_id) } { (s.event_title.as_deref().unwrap_or(&s.event_id)) }
                            @if s.walk_in { " " span class="sub" { "walk-in" } }
                            @if s.contact_id != c.id {
                                " " span class="sub" {
                                    "(as merged duplicate " a href={ "/contacts/" (s.contact_id) } { (s.contact_id) } ")"
                                }
                            }
                        }
                        td { (time_or_dash(s.event_starts_at)) }
                        td { (status_badge(s.status)) }
                        td { (time_or_dash(s.checked_in_at)) }
                        td class="wide" { (time(s.registered_at)) }
                    } } }
                } }
            }

            h2 { "Donations " span class="sub" { "(" (donations.len()) ")" } }
            @if donations.is_empty() {
                p class="empty" { "No donations recorded." }
            } @else {
                div class="table-wrap" { table {
                    thead { tr { th { "Date" } th class="num" { "Amount" } th { "Method" } th class="wide" { "Note" } } }
                    tbody { @for d in &donations { tr {
                        td { (time(d.date)) }
                        td class="num" { (html::money(d.amount_minor, &d.currency)) }
                        td { (d.method) }
                        td class="wide" { (d.note.as_deref().unwrap_or("")) }
                    } } }
                } }
                p class="sub" { "Total: " (totals.join(" · ")) }
            }
            @if !ledger.pledges.is_empty() {
                h2 { "Pledges" }
                div class="table-wrap" { table {
                    thead { tr { th { "From" } th class="num" { "Amount" } th { "Frequency" } th { "Until" } } }
                    tbody { @for p in &ledger.pledges { tr {
                        td { (time(p.starts)) }
                        td class="num" { (html::money(p.amount_minor, &p.currency)) }
                        td { (p.frequency) }
                        td { (time_or_dash(p.ends)) }
                    } } }
                } }
            }

            h2 { "Interactions " span class="sub" { "(" (interactions.len()) ")" } }
            @if interactions.is_empty() {
                p class="empty" { "No interactions recorded." }
            } @else {
                ul class="timeline" { @for i in &interactions { li {
                    div class="when" { (time(i.at)) " · " (i.channel) " · " (i.by) }
                    div { (i.summary) }
                } } }
            }

            @if !merged.is_empty() {
                h2 { "Duplicates merged into this contact " span class="sub" { "(" (merged.len()) ")" } }
                ul class="plain" { @for (dup, name) in &merged { li {
                    a href={ "/contacts/" (dup) } { (if name.is_empty() { dup } else { name }) }
                    " "
                    (unmerge_form(dup, csrf, false, true, "secondary", "Unmerge"))
                } } }
            }

            h2 { "Change history " span class="sub" { "(" (html::plural(history.len(), "change", "changes")) ")" } }
            div class="table-wrap" { table class="history" {
                thead { tr { th { "When" } th { "Device" } th class="num wide" { "Operations" } } }
                tbody { @for h in history.iter().rev() { tr {
                    td { (time(h.at)) }
                    td { (device_name(&labels, &h.device)) }
                    td class="num wide" { (h.operations) }
                } } }
            } }
        };
        Ok(ok_page(&who, Section::Contacts, &c.name, Script::None, body).await)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

// ----- feedback -------------------------------------------------------------

/// `GET /feedback`: cases by status and the overdue ones.
pub async fn feedback(who: Coordinator) -> Response {
    let result = async {
        let report = blocking(&who.dash, |d| {
            d.device()
                .read(|s| s.reports().feedback(None, None, now_ms()))
                .map_err(DashboardError::from)
        })
        .await?;
        let body = html! {
            h1 { "Feedback" }
            section class="cards" aria-label="Cases by status" {
                @for s in &report.by_status {
                    div class="card" data-status=(s.status) {
                        span class="n" { (html::count(s.cases)) } span class="l" { (s.status) }
                    }
                }
                div class={ "card" @if report.waiting_overdue > 0 { " alert" } } data-status="overdue" {
                    span class="n" { (html::count(report.waiting_overdue)) } span class="l" { "overdue" }
                }
            }
            h2 { "Overdue cases" }
            p class="sub" { "No first response within " (report.target / 3_600_000) " hours of receipt." }
            @if report.overdue.is_empty() {
                p class="empty" { "No case is overdue." }
            } @else {
                div class="table-wrap" { table class="overdue" {
                    thead { tr {
                        th { "Received" } th { "From" } th { "Category" } th class="wide" { "Channel" }
                        th { "Status" } th class="wide" { "Assigned to" } th class="num" { "Overdue by" }
                    } }
                    tbody { @for c in &report.overdue { tr data-case=(c.id) {
                        td { (time(c.received_at)) }
                        td {
                            @match &c.contact_id {
                                Some(id) => { a href={ "/contacts/" (id) } { (c.contact_name.as_deref().unwrap_or(id)) } },
                                None => { span class="sub" { "anonymous" } },
                            }
                        }
                        td { (c.category) }
                        td class="wide" { (c.channel) }
                        td { span class={ "status s-" (c.status) } { (c.status) } }
                        td class="wide" { (c.assigned_to.as_deref().unwrap_or("—")) }
                        td class="num" { (html::duration(c.overdue_by)) }
                    } } }
                } }
            }
            p class="sub" {
                (html::plural(report.answered as usize, "case", "cases")) " answered, "
                (html::count(report.within_target)) " within the target; "
                (html::count(report.waiting_in_time)) " still within their first 24 hours."
            }
        };
        Ok::<_, DashboardError>(ok_page(&who, Section::Feedback, "Feedback", Script::None, body).await)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
