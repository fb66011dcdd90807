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

use super::auth::{Coordinator, MaybeCoordinator, login_page};
use super::html::{self, Frame, Section, esc};
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
        Ok(Ok(status)) => esc(&describe(&status)),
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
    attrs: &str,
    body: &str,
) -> Response {
    let replica = replica_line(&who.dash).await;
    html::respond(
        StatusCode::OK,
        html::page(
            title,
            &frame(who, section, who.dash.duplicates.pending(), replica),
            attrs,
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

fn event_rows(events: &[EventSummary]) -> String {
    if events.is_empty() {
        return "<tr><td colspan=\"5\" class=\"empty\">No events yet.</td></tr>".into();
    }
    let mut out = String::new();
    for e in events {
        let seats = match e.capacity {
            Some(c) => format!("{} / {}", e.registered, c),
            None => e.registered.to_string(),
        };
        out += &format!(
            "<tr data-event=\"{id}\"><td><a href=\"/events/{id}\">{}</a>\
             <div class=\"sub\">{}{}</div></td><td>{}</td>\
             <td class=\"num\" data-count=\"registered\">{seats}</td>\
             <td class=\"num\" data-count=\"checked_in\">{}</td>\
             <td class=\"num\" data-count=\"waitlisted\">{}</td></tr>",
            esc(&e.title),
            esc(&e.place),
            if e.status == "scheduled" {
                String::new()
            } else {
                format!(" <span class=\"status s-{0}\">{0}</span>", esc(&e.status))
            },
            html::time(e.starts_at),
            e.checked_in,
            e.waitlisted,
            id = esc(&e.id),
        );
    }
    out
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
    let body = format!(
        "<h1>Events</h1>\
         <div class=\"table-wrap\"><table class=\"events\"><thead><tr><th>Event</th><th>Starts</th>\
         <th class=\"num\">Registered</th><th class=\"num\">Checked in</th><th class=\"num\">Waitlisted</th>\
         </tr></thead><tbody id=\"live-rows\">{}</tbody></table></div>\
         <p class=\"live-note\"><span class=\"dot\" id=\"live-dot\"></span> Counts update live, without reloading.</p>\
         <section class=\"cards\" aria-label=\"Summary\">\
         <a class=\"card\" href=\"/contacts\"><span class=\"n\">{}</span><span class=\"l\">contacts</span></a>\
         <a class=\"card\" href=\"/duplicates\"><span class=\"n\">{}</span><span class=\"l\">possible duplicates</span></a>\
         <a class=\"card{}\" href=\"/feedback\"><span class=\"n\">{}</span><span class=\"l\">overdue feedback</span></a>\
         <a class=\"card\" href=\"/export\"><span class=\"n\">CSV</span><span class=\"l\">downloads</span></a>\
         </section>",
        event_rows(&events),
        html::count(contacts),
        pending.map_or("…".to_owned(), |n| html::count(n as i64)),
        if overdue > 0 { " alert" } else { "" },
        html::count(overdue),
    );
    ok_page(
        &who,
        Section::Events,
        "Events",
        &format!(" data-live=\"/api/events\" data-gen=\"{generation}\""),
        &body,
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
        Ok(serde_json::json!({"gen": generation, "rows_html": event_rows(&events)}))
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

    fn html(&self, capacity: Option<i64>) -> String {
        let seats = self.registered + self.checked_in + self.no_show;
        let count = |key: &str, n: String, label: &str| {
            format!(
                "<div class=\"count\" data-count=\"{key}\"><span class=\"n\">{n}</span>\
                 <span class=\"l\">{label}</span></div>"
            )
        };
        [
            count("checked_in", self.checked_in.to_string(), "checked in"),
            count(
                "seats",
                match capacity {
                    Some(c) => format!("{seats} / {c}"),
                    None => seats.to_string(),
                },
                "seats taken",
            ),
            count("registered", self.registered.to_string(), "expected"),
            count("waitlisted", self.waitlisted.to_string(), "waitlisted"),
            count("cancelled", self.cancelled.to_string(), "cancelled"),
            count("no_show", self.no_show.to_string(), "no-show"),
        ]
        .concat()
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

fn status_badge(s: SignupStatus) -> String {
    format!(
        "<span class=\"status s-{}\">{}</span>",
        s.as_str(),
        status_label(s)
    )
}

fn roster_rows(lines: &[RosterLine]) -> String {
    if lines.is_empty() {
        return "<tr><td colspan=\"5\" class=\"empty\">Nobody has signed up yet.</td></tr>".into();
    }
    let mut out = String::new();
    for l in lines {
        let name = match &l.name {
            Some(n) => esc(n),
            None => format!(
                "<span class=\"sub\">(contact {} not synced)</span>",
                esc(&l.contact_id)
            ),
        };
        out += &format!(
            "<tr data-contact=\"{id}\" data-status=\"{}\"><td><a href=\"/contacts/{id}\">{name}</a>{}</td>\
             <td>{}</td><td>{}</td><td class=\"wide\">{}</td><td class=\"num\">{}</td></tr>",
            l.status.as_str(),
            if l.walk_in {
                "<span class=\"sub narrow\">walk-in</span>"
            } else {
                ""
            },
            status_badge(l.status),
            l.checked_in_at.map_or("—".to_owned(), html::time),
            if l.walk_in { "walk-in" } else { "" },
            l.waitlist_position
                .map_or(String::new(), |p| format!("#{p}")),
            id = esc(&l.contact_id),
        );
    }
    out
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
        let publication = record
            .map(|r| super::publishing::section(&r, &headers, &who.csrf))
            .unwrap_or_default();
        let e = summary.map_err(|id| {
            DashboardError::NotFound(format!(
                "No event {id} on the dashboard (it may not have reached the relay yet)."
            ))
        })?;
        let body = format!(
            "<p class=\"crumbs\"><a href=\"/\">Events</a> ›</p><h1>{}</h1>\
             <p class=\"sub\">{}{}{}{}</p>\
             <div class=\"counts\" id=\"live-counts\">{}</div>\
             <p class=\"live-note\"><span class=\"dot\" id=\"live-dot\"></span> The roster updates live, without reloading.</p>\
             <div class=\"table-wrap\"><table class=\"roster\"><thead><tr><th>Name</th><th>Status</th>\
             <th>Checked in</th><th class=\"wide\">Walk-in</th><th class=\"num\">Waitlist</th></tr></thead>\
             <tbody id=\"live-rows\">{}</tbody></table></div>{publication}",
            esc(&e.title),
            html::time(e.starts_at),
            if e.place.is_empty() { String::new() } else { format!(" · {}", esc(&e.place)) },
            e.capacity.map_or(String::new(), |c| format!(" · capacity {c}")),
            if e.status == "scheduled" { String::new() } else { format!(" · {}", esc(&e.status)) },
            Counts::of(&lines).html(e.capacity),
            roster_rows(&lines),
        );
        Ok(ok_page(
            &who,
            Section::Events,
            &e.title,
            &format!(
                " data-live=\"/api/events/{}\" data-gen=\"{generation}\"",
                esc(&e.id)
            ),
            &body,
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
                "counts_html": counts.html(capacity),
                "rows_html": roster_rows(&lines),
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
        let mut body = format!(
            "<h1>Contacts</h1><form method=\"get\" action=\"/contacts\" class=\"search\" role=\"search\">\
             <label for=\"q\" class=\"visually-hidden\">Search contacts</label>\
             <input type=\"search\" id=\"q\" name=\"q\" value=\"{}\" placeholder=\"Name, phone or email\" \
             autocomplete=\"off\"{}><button type=\"submit\">Search</button></form>",
            esc(&text),
            if text.is_empty() { " autofocus" } else { "" },
        );
        if text.is_empty() {
            body += &format!(
                "<p class=\"sub\">{} contacts (merged duplicates included), by name.</p>",
                html::count(total)
            );
        } else {
            body += &format!(
                "<p class=\"sub\" id=\"result-count\">{}{} result{} for “{}”.</p>",
                if found.len() >= SEARCH_LIMIT { "The first " } else { "" },
                found.len(),
                if found.len() == 1 { "" } else { "s" },
                esc(&text)
            );
        }
        if found.is_empty() {
            body += "<p class=\"empty\">No contact matches.</p>";
        } else {
            body += "<div class=\"table-wrap\"><table class=\"contacts\"><thead><tr><th>Name</th>\
                     <th>Phone</th><th>Email</th><th class=\"wide\">Roles</th></tr></thead><tbody>";
            for c in &found {
                body += &format!(
                    "<tr data-contact=\"{id}\"><td><a href=\"/contacts/{id}\">{}</a>{}</td><td>{}</td><td>{}</td>\
                     <td class=\"wide\">{}</td></tr>",
                    esc(&c.name),
                    if c.merged_into.is_some() {
                        " <span class=\"status s-merged\">merged</span>"
                    } else {
                        ""
                    },
                    esc(c.phone.as_deref().unwrap_or("")),
                    esc(c.email.as_deref().unwrap_or("")),
                    esc(&c.roles.join(", ")),
                    id = esc(&c.id),
                );
            }
            body += "</tbody></table></div>";
        }
        if text.is_empty() && total as usize > BROWSE_PAGE {
            body += "<nav class=\"pager\" aria-label=\"Pages\">";
            if offset > 0 {
                body += &format!(
                    "<a href=\"/contacts?offset={}\">← Previous</a>",
                    offset.saturating_sub(BROWSE_PAGE)
                );
            }
            body += &format!(
                "<span>{}–{} of {}</span>",
                html::count((offset + 1).min(total as usize) as i64),
                html::count((offset + BROWSE_PAGE).min(total as usize) as i64),
                html::count(total)
            );
            if offset + BROWSE_PAGE < total as usize {
                body += &format!("<a href=\"/contacts?offset={}\">Next →</a>", offset + BROWSE_PAGE);
            }
            body += "</nav>";
        }
        Ok(ok_page(&who, Section::Contacts, "Contacts", "", &body).await)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A device id with the label of the token it enrolled with, if known.
fn device_name(labels: &HashMap<String, (String, String)>, device: &str) -> String {
    let short = esc(&device.chars().take(8).collect::<String>());
    match labels.get(device) {
        Some((label, role)) if !label.is_empty() => format!(
            "<span title=\"device {}\">{} <span class=\"sub\">({}, {short}…)</span></span>",
            esc(device),
            esc(label),
            esc(role)
        ),
        Some((_, role)) => format!(
            "<span title=\"device {}\">{short}… <span class=\"sub\">({})</span></span>",
            esc(device),
            esc(role)
        ),
        None => format!("<span title=\"device {}\">{short}…</span>", esc(device)),
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
        let csrf = esc(&who.csrf);
        let mut body = format!(
            "<p class=\"crumbs\"><a href=\"/contacts\">Contacts</a> ›</p><h1>{}</h1>",
            esc(&c.name)
        );
        if let Some(p) = &c.preferred_name {
            body += &format!("<p class=\"sub\">Prefers to be called {}</p>", esc(p));
        }
        if let Some(into) = &c.merged_into {
            body += &format!(
                "<div class=\"notice\" role=\"status\">This contact was merged into \
                 <a href=\"/contacts/{}\">{}</a>; its sign-ups and ledger show there. \
                 <form method=\"post\" action=\"/contacts/{}/unmerge\" class=\"inline\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button type=\"submit\" class=\"secondary\">Unmerge</button></form></div>",
                esc(into),
                esc(kept.as_deref().filter(|k| !k.is_empty()).unwrap_or(into)),
                esc(&c.id),
            );
        }
        let mut facts: Vec<(&str, String)> = Vec::new();
        let list = |v: &[String]| v.iter().map(|x| esc(x)).collect::<Vec<_>>().join("<br>");
        if !c.phones.is_empty() {
            facts.push(("Phone", list(&c.phones)));
        }
        if !c.emails.is_empty() {
            facts.push(("Email", list(&c.emails)));
        }
        let roles = c.role_list();
        if !roles.is_empty() {
            facts.push(("Roles", esc(&roles.join(", "))));
        }
        let tags = c.tag_list();
        if !tags.is_empty() {
            facts.push(("Tags", esc(&tags.join(", "))));
        }
        let a = &c.address;
        let address = [&a.street, &a.city, &a.region, &a.postal_code, &a.country]
            .into_iter()
            .filter(|x| !x.is_empty())
            .map(|x| esc(x))
            .collect::<Vec<_>>()
            .join(", ");
        if !address.is_empty() {
            facts.push(("Address", address));
        }
        for (label, value) in [
            ("Language", &c.preferred_language),
            ("Organisation", &c.organisation),
            ("Household", &c.household),
            ("External id", &c.external_id),
        ] {
            if let Some(v) = value {
                facts.push((label, esc(v)));
            }
        }
        facts.push((
            "Consent",
            if c.consent.given {
                let channels: Vec<&str> = c
                    .consent
                    .channels
                    .iter()
                    .filter(|(_, on)| **on)
                    .map(|(k, _)| k.as_str())
                    .collect();
                format!(
                    "given{}{}",
                    if channels.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", esc(&channels.join(", ")))
                    },
                    c.consent.recorded_at.map_or(String::new(), |t| format!(", {}", html::time(t)))
                )
            } else {
                "not recorded".into()
            },
        ));
        facts.push((
            "Created",
            format!(
                "{} by {}",
                html::time(c.created_at),
                device_name(&labels, &c.created_by)
            ),
        ));
        body += "<dl class=\"facts\">";
        for (k, v) in &facts {
            body += &format!("<dt>{k}</dt><dd>{v}</dd>");
        }
        body += "</dl>";
        let notes = c.notes.as_str();
        if !notes.trim().is_empty() {
            body += &format!("<h2>Notes</h2><p class=\"notes\">{}</p>", esc(notes));
        }

        body += &format!("<h2>Sign-ups <span class=\"sub\">({})</span></h2>", signups.len());
        if signups.is_empty() {
            body += "<p class=\"empty\">No sign-ups.</p>";
        } else {
            body += "<div class=\"table-wrap\"><table><thead><tr><th>Event</th><th>Starts</th>\
                     <th>Status</th><th>Checked in</th><th class=\"wide\">Registered</th></tr></thead><tbody>";
            for s in &signups {
                body += &format!(
                    "<tr><td><a href=\"/events/{}\">{}</a>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"wide\">{}</td></tr>",
                    esc(&s.event_id),
                    esc(s.event_title.as_deref().unwrap_or(&s.event_id)),
                    if s.walk_in { " <span class=\"sub\">walk-in</span>" } else { "" },
                    if s.contact_id != c.id {
                        format!(" <span class=\"sub\">(as merged duplicate <a href=\"/contacts/{0}\">{0}</a>)</span>", esc(&s.contact_id))
                    } else {
                        String::new()
                    },
                    s.event_starts_at.map_or("—".to_owned(), html::time),
                    status_badge(s.status),
                    s.checked_in_at.map_or("—".to_owned(), html::time),
                    html::time(s.registered_at),
                );
            }
            body += "</tbody></table></div>";
        }

        body += &format!(
            "<h2>Donations <span class=\"sub\">({})</span></h2>",
            ledger.donations.len()
        );
        if ledger.donations.is_empty() {
            body += "<p class=\"empty\">No donations recorded.</p>";
        } else {
            body += "<div class=\"table-wrap\"><table><thead><tr><th>Date</th><th class=\"num\">Amount</th>\
                     <th>Method</th><th class=\"wide\">Note</th></tr></thead><tbody>";
            let mut donations = ledger.donations.clone();
            donations.sort_by_key(|d| std::cmp::Reverse(d.date));
            for d in &donations {
                body += &format!(
                    "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"wide\">{}</td></tr>",
                    html::time(d.date),
                    html::money(d.amount_minor, &d.currency),
                    esc(&d.method),
                    esc(d.note.as_deref().unwrap_or(""))
                );
            }
            body += "</tbody></table></div>";
            let totals: Vec<String> = ledger
                .totals()
                .iter()
                .map(|(cur, minor)| html::money(*minor, cur))
                .collect();
            body += &format!("<p class=\"sub\">Total: {}</p>", totals.join(" · "));
        }
        if !ledger.pledges.is_empty() {
            body += "<h2>Pledges</h2><div class=\"table-wrap\"><table><thead><tr><th>From</th>\
                     <th class=\"num\">Amount</th><th>Frequency</th><th>Until</th></tr></thead><tbody>";
            for p in &ledger.pledges {
                body += &format!(
                    "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                    html::time(p.starts),
                    html::money(p.amount_minor, &p.currency),
                    esc(&p.frequency),
                    p.ends.map_or("—".to_owned(), html::time)
                );
            }
            body += "</tbody></table></div>";
        }

        body += &format!(
            "<h2>Interactions <span class=\"sub\">({})</span></h2>",
            ledger.interactions.len()
        );
        if ledger.interactions.is_empty() {
            body += "<p class=\"empty\">No interactions recorded.</p>";
        } else {
            body += "<ul class=\"timeline\">";
            let mut interactions = ledger.interactions.clone();
            interactions.sort_by_key(|i| std::cmp::Reverse(i.at));
            for i in &interactions {
                body += &format!(
                    "<li><div class=\"when\">{} · {} · {}</div><div>{}</div></li>",
                    html::time(i.at),
                    esc(&i.channel),
                    esc(&i.by),
                    esc(&i.summary)
                );
            }
            body += "</ul>";
        }

        if !merged.is_empty() {
            body += &format!(
                "<h2>Duplicates merged into this contact <span class=\"sub\">({})</span></h2><ul class=\"plain\">",
                merged.len()
            );
            for (dup, name) in &merged {
                body += &format!(
                    "<li><a href=\"/contacts/{id}\">{}</a> \
                     <form method=\"post\" action=\"/contacts/{id}/unmerge\" class=\"inline\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <button type=\"submit\" class=\"secondary\">Unmerge</button></form></li>",
                    esc(if name.is_empty() { dup } else { name }),
                    id = esc(dup),
                );
            }
            body += "</ul>";
        }

        body += &format!(
            "<h2>Change history <span class=\"sub\">({} change{})</span></h2>",
            history.len(),
            if history.len() == 1 { "" } else { "s" }
        );
        body += "<div class=\"table-wrap\"><table class=\"history\"><thead><tr><th>When</th><th>Device</th>\
                 <th class=\"num wide\">Operations</th></tr></thead><tbody>";
        for h in history.iter().rev() {
            body += &format!(
                "<tr><td>{}</td><td>{}</td><td class=\"num wide\">{}</td></tr>",
                html::time(h.at),
                device_name(&labels, &h.device),
                h.operations
            );
        }
        body += "</tbody></table></div>";
        Ok(ok_page(&who, Section::Contacts, &c.name, "", &body).await)
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
        let mut body = String::from("<h1>Feedback</h1><section class=\"cards\" aria-label=\"Cases by status\">");
        for s in &report.by_status {
            body += &format!(
                "<div class=\"card\" data-status=\"{0}\"><span class=\"n\">{1}</span><span class=\"l\">{0}</span></div>",
                esc(&s.status),
                html::count(s.cases)
            );
        }
        body += &format!(
            "<div class=\"card{}\" data-status=\"overdue\"><span class=\"n\">{}</span><span class=\"l\">overdue</span></div></section>",
            if report.waiting_overdue > 0 { " alert" } else { "" },
            html::count(report.waiting_overdue)
        );
        body += &format!(
            "<h2>Overdue cases</h2><p class=\"sub\">No first response within {} hours of receipt.</p>",
            report.target / 3_600_000
        );
        if report.overdue.is_empty() {
            body += "<p class=\"empty\">No case is overdue.</p>";
        } else {
            body += "<div class=\"table-wrap\"><table class=\"overdue\"><thead><tr><th>Received</th><th>From</th>\
                     <th>Category</th><th class=\"wide\">Channel</th><th>Status</th><th class=\"wide\">Assigned to</th>\
                     <th class=\"num\">Overdue by</th></tr></thead><tbody>";
            for c in &report.overdue {
                let from = match (&c.contact_id, &c.contact_name) {
                    (Some(id), Some(name)) => format!("<a href=\"/contacts/{}\">{}</a>", esc(id), esc(name)),
                    (Some(id), None) => format!("<a href=\"/contacts/{0}\">{0}</a>", esc(id)),
                    _ => "<span class=\"sub\">anonymous</span>".into(),
                };
                body += &format!(
                    "<tr data-case=\"{}\"><td>{}</td><td>{from}</td><td>{}</td><td class=\"wide\">{}</td>\
                     <td><span class=\"status s-{st}\">{st}</span></td><td class=\"wide\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&c.id),
                    html::time(c.received_at),
                    esc(&c.category),
                    esc(&c.channel),
                    esc(c.assigned_to.as_deref().unwrap_or("—")),
                    html::duration(c.overdue_by),
                    st = esc(&c.status),
                );
            }
            body += "</tbody></table></div>";
        }
        body += &format!(
            "<p class=\"sub\">{} case{} answered, {} within the target; {} still within their first 24 hours.</p>",
            html::count(report.answered),
            if report.answered == 1 { "" } else { "s" },
            html::count(report.within_target),
            html::count(report.waiting_in_time),
        );
        Ok::<_, DashboardError>(ok_page(&who, Section::Feedback, "Feedback", "", &body).await)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
