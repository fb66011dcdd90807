//! The public registration page of a published event (`/r/SLUG`): people
//! register themselves from their phone, and the registration is written
//! through the dashboard's device like any of its writes, so it is a CRDT
//! change that reaches every desk at its next sync.
//!
//! The page works without JavaScript, and everything a person sends is
//! treated as hostile: the body and each value have a size limit, a
//! cross-site form is refused (the form carries the value of a
//! `SameSite=Strict` cookie set with it, and a foreign `Origin` is
//! refused), a hidden field that people never fill catches robots, an
//! address may send only so many forms in a while (a limit of its own,
//! shared with nothing else), and the same form sent twice (a double tap,
//! a reload) answers what the first did without writing again. Every value
//! is rendered through maud, which escapes by default. The page never
//! tells whether the person was known before.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use maud::{DOCTYPE, Markup, html};
use muster_core::model::{Event, PageClosed, Publication};
use muster_core::registration::{CONSENT_CHANNELS, FormProblem, PageForm};
use muster_core::store::{PageCancel, PageRegistration};
use muster_core::{Error as CoreError, SignupStatus};

use super::html::respond;
use super::{Dashboard, DashboardError, blocking};
use crate::AppState;

/// The largest form body taken (a form is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The largest value of one field, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
/// Forms one address may send in [`SUBMISSION_WINDOW`].
pub const SUBMISSIONS_PER_ADDRESS: usize = 10;
/// The window of [`SUBMISSIONS_PER_ADDRESS`].
pub const SUBMISSION_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long a sent form's answer is kept, for the same form sent again.
const ANSWER_KEPT: Duration = Duration::from_secs(60 * 60);
/// Addresses and answers kept at most (the oldest go first).
const KEPT_AT_MOST: usize = 10_000;
/// The cookie whose value the form carries back (`form`).
const FORM_COOKIE: &str = "muster_form";

/// What the pages of one relay process remember: the forms each address
/// sent lately, and the answer to each form already taken.
#[derive(Debug, Default)]
pub struct PageState {
    sent: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    answered: Mutex<HashMap<String, (Instant, Answer)>>,
    /// Forms being written now: the same form sent again meanwhile waits
    /// for their answer instead of writing a second time.
    sending: Mutex<std::collections::HashSet<String>>,
}

/// Where a form stands when it arrives ([`PageState::claim`]).
enum Claim {
    /// It was taken already: this was its answer.
    Answered(Answer),
    /// This request writes it.
    Mine,
    /// Another request is writing it now.
    Busy,
}

/// What a taken form came to, as the confirmation shows it.
#[derive(Debug, Clone)]
struct Answer {
    title: String,
    waitlist_place: Option<u32>,
    /// The private cancel link's path, for a sign-up this form made.
    cancel_path: Option<String>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PageState {
    /// Counts a registration from `addr` (an IPv6 address by its /64, the
    /// block one network holds); false if it is over the limit.
    fn allow(&self, addr: IpAddr, now: Instant) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
            v4 => v4,
        };
        let mut sent = locked(&self.sent);
        if sent.len() >= KEPT_AT_MOST && !sent.contains_key(&addr) {
            sent.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < SUBMISSION_WINDOW)
            });
            // Still full: forget the address heard from longest ago, so
            // that many addresses at once cannot shut everyone out.
            if sent.len() >= KEPT_AT_MOST
                && let Some(oldest) = sent
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(a, _)| *a)
            {
                sent.remove(&oldest);
            }
        }
        let times = sent.entry(addr).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= SUBMISSION_WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= SUBMISSIONS_PER_ADDRESS {
            return false;
        }
        times.push_back(now);
        true
    }

    fn answer_of(&self, form: &str) -> Option<Answer> {
        locked(&self.answered).get(form).map(|(_, a)| a.clone())
    }

    /// Takes `form` for this request to write, unless it was answered or
    /// is being written.
    fn claim(&self, form: &str) -> Claim {
        let mut sending = locked(&self.sending);
        if let Some(answer) = self.answer_of(form) {
            return Claim::Answered(answer);
        }
        if sending.len() < KEPT_AT_MOST && sending.insert(form.to_owned()) {
            Claim::Mine
        } else {
            Claim::Busy
        }
    }

    /// The form is written (or failed): others may take it again.
    fn release(&self, form: &str) {
        locked(&self.sending).remove(form);
    }

    fn keep_answer(&self, form: String, answer: Answer, now: Instant) {
        let mut answered = locked(&self.answered);
        if answered.len() >= KEPT_AT_MOST {
            answered.retain(|_, (at, _)| now.duration_since(*at) < ANSWER_KEPT);
            if answered.len() >= KEPT_AT_MOST
                && let Some(oldest) = answered
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                answered.remove(&oldest);
            }
        }
        answered.insert(form, (now, answer));
    }
}

/// What the page shows of an event.
struct Shown {
    event: Event,
    page: Publication,
    seats_left: Option<i64>,
    region: String,
}

/// The page's outer frame.
fn frame(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (super::html::head(title, "/assets/page.css", false))
            body { main id="main" { (body) } }
        }
    }
}

fn when(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%A %-d %B %Y, %H:%M UTC").to_string(),
        Err(_) => String::new(),
    }
}

/// A page that says something and offers no form.
fn notice(status: StatusCode, title: &str, message: &str) -> Response {
    respond(
        status,
        frame(title, html! { h1 { (title) } p { (message) } }),
    )
}

fn closed(event: &Event, why: PageClosed) -> Response {
    let message = match why {
        PageClosed::NotPublished => "This event does not take registrations online.",
        PageClosed::RegistrationsClosed => "Registrations for this event have closed.",
        PageClosed::EventOver => "This event was cancelled or is over.",
    };
    notice(StatusCode::GONE, &event.title, message)
}

fn unknown_page() -> Response {
    notice(
        StatusCode::NOT_FOUND,
        "No such page",
        "There is no registration page at this address. Check the link you were given.",
    )
}

fn unavailable() -> Response {
    notice(
        StatusCode::SERVICE_UNAVAILABLE,
        "Registrations are unavailable",
        "Registrations cannot be taken right now. Please try again in a few minutes.",
    )
}

/// The form, with what was typed and what is wrong with it.
fn form_page(
    status: StatusCode,
    shown: &Shown,
    typed: &PageForm,
    problems: &[FormProblem],
    nonce: &str,
) -> Response {
    let e = &shown.event;
    let page = &shown.page;
    let problem = |field: &str| problems.iter().find(|p| p.field == field);
    let text_field = |field: &'static str,
                      label: &str,
                      kind: &str,
                      value: &str,
                      autocomplete: &str,
                      hint: Option<&str>| {
        let id = format!("f-{field}");
        let p = problem(field);
        let described = match (p.is_some(), hint.is_some()) {
            (true, _) => Some(format!("{id}-problem")),
            (false, true) => Some(format!("{id}-hint")),
            _ => None,
        };
        html! {
            div class="field" {
                label for=(id) { (label) }
                input type=(kind) id=(id) name=(field) value=(value)
                    autocomplete=(autocomplete) maxlength="200"
                    aria-invalid=[p.map(|_| "true")]
                    aria-describedby=[described];
                @if let Some(p) = p {
                    p class="problem" id={ (id) "-problem" } { (p.message) }
                } @else if let Some(h) = hint {
                    p class="hint" id={ (id) "-hint" } { (h) }
                }
            }
        }
    };
    let seats = match shown.seats_left {
        None => None,
        Some(0) => Some("Fully booked: you can join the waitlist.".to_owned()),
        Some(1) => Some("1 seat left.".to_owned()),
        Some(n) => Some(format!("{n} seats left.")),
    };
    let body = html! {
        h1 { (e.title) }
        p class="when" { (when(e.starts_at)) }
        @if !e.place.is_empty() { p class="where" { (e.place) } }
        @if let Some(s) = seats { p class="seats" { (s) } }
        @if !problems.is_empty() {
            div class="summary" role="alert" {
                p { "Please check what is marked below." }
            }
        }
        form method="post" action={ "/r/" (page.slug) } novalidate {
            input type="hidden" name="form" value=(nonce);
            (text_field("name", "Your name", "text", &typed.name, "name", None))
            @if page.asks_for("email") {
                (text_field("email", "Email address", "email", &typed.email, "email", None))
            }
            @if page.asks_for("phone") {
                (text_field("phone", "Phone number", "tel", &typed.phone, "tel", None))
            }
            @if page.asks_for("language") {
                (text_field("language", "Preferred language (optional)", "text", &typed.language, "language", None))
            }
            @if page.asks_for("consent") {
                fieldset {
                    legend { "We may contact you by (optional)" }
                    @for channel in CONSENT_CHANNELS {
                        label class="check" {
                            input type="checkbox" name="consent" value=(channel)
                                checked[typed.consent.iter().any(|c| c == channel)];
                            (match channel { "email" => "Email", "sms" => "Text message", "phone" => "Phone call", _ => "Post" })
                        }
                    }
                    @if let Some(p) = problem("consent") { p class="problem" { (p.message) } }
                }
            }
            div class="trap" aria-hidden="true" {
                label for="f-website" { "Leave this empty" }
                input type="text" id="f-website" name="website" tabindex="-1" autocomplete="off";
            }
            button type="submit" { "Register" }
        }
    };
    let mut r = respond(status, frame(&e.title, body));
    set_form_cookie(&mut r, &page.slug, nonce);
    r
}

/// A new form's `form` value: the browser's cookie value (kept from its
/// request when it has one, so forms in several tabs all stay good), a
/// dot, and random digits of this form's own.
fn new_form(headers: &HeaderMap) -> String {
    let browser = super::html::cookie(headers, FORM_COOKIE)
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(|| muster_core::sync::storage::random_hex(16), str::to_owned);
    format!("{browser}.{}", muster_core::sync::storage::random_hex(16))
}

/// Sets the browser's cookie: the part of `form` before the dot.
fn set_form_cookie(r: &mut Response, slug: &str, form: &str) {
    let browser = form.split('.').next().unwrap_or_default();
    let cookie = format!(
        "{FORM_COOKIE}={browser}; Path=/r/{slug}; HttpOnly; SameSite=Strict; Max-Age=86400"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn confirmation(answer: &Answer) -> Response {
    let body = html! {
        div class="done" role="status" {
            @match answer.waitlist_place {
                None => {
                    h1 { "You are registered" }
                    p { "You are registered for " strong { (answer.title) } ". See you there!" }
                }
                Some(place) => {
                    h1 { "You are on the waitlist" }
                    p { "The event " strong { (answer.title) } " is full. You are on the waitlist, place " (place) ": we will let you know if a seat comes free." }
                }
            }
            @match &answer.cancel_path {
                Some(path) => {
                    p { "If you cannot come, cancel with this private link (keep it, and do not share it): " }
                    p { a href=(path) { "Cancel my registration" } }
                }
                None => {
                    p { "If you cannot come, use the cancel link you were given when you first registered, or tell the organisers." }
                }
            }
        }
    };
    respond(StatusCode::OK, frame(&answer.title, body))
}

/// The event at `slug` as the page shows it; `None` for no such page.
async fn shown(dash: &Arc<Dashboard>, slug: String) -> Result<Option<Shown>, DashboardError> {
    blocking(dash, move |d| {
        d.device()
            .read(|s| {
                let Some(event) = s.event_by_slug(&slug)? else {
                    return Ok(None);
                };
                let Some(page) = event.publication.clone() else {
                    return Ok(None);
                };
                let seats_left = match event.capacity {
                    None => None,
                    Some(capacity) => {
                        let holding = s.event_summary(&event.id)?.map_or(0, |e| e.registered);
                        Some((capacity - holding).max(0))
                    }
                };
                let region = s.phone_region()?;
                Ok(Some(Shown {
                    event,
                    page,
                    seats_left,
                    region,
                }))
            })
            .map_err(DashboardError::from)
    })
    .await
}

/// `GET /r/{slug}`: the form, or why there is none.
pub async fn page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(dash) = state.dashboard().cloned() else {
        return unavailable();
    };
    match shown(&dash, slug).await {
        Err(e) => {
            tracing::error!(error = %e, "a registration page failed");
            unavailable()
        }
        Ok(None) => unknown_page(),
        Ok(Some(shown)) => match shown
            .event
            .page_takes_registrations(muster_core::model::now_ms())
        {
            Err(why) => closed(&shown.event, why),
            Ok(()) => {
                let form = new_form(&headers);
                form_page(StatusCode::OK, &shown, &PageForm::default(), &[], &form)
            }
        },
    }
}

/// A form as sent: the person's fields, the form's own value, the trap.
struct Sent {
    form: PageForm,
    nonce: String,
    trap: String,
}

/// Reads a form body; `None` if a value is over [`MAX_VALUE_BYTES`].
fn read_body(body: &[u8]) -> Option<Sent> {
    let mut sent = Sent {
        form: PageForm::default(),
        nonce: String::new(),
        trap: String::new(),
    };
    for (key, value) in form_urlencoded::parse(body) {
        if value.len() > MAX_VALUE_BYTES {
            return None;
        }
        let value = value.into_owned();
        match key.as_ref() {
            "name" => sent.form.name = value,
            "email" => sent.form.email = value,
            "phone" => sent.form.phone = value,
            "language" => sent.form.language = value,
            "consent" if sent.form.consent.len() < CONSENT_CHANNELS.len() + 1 => {
                sent.form.consent.push(value)
            }
            "form" => sent.nonce = value,
            "website" => sent.trap = value,
            _ => {}
        }
    }
    Some(sent)
}

/// Whether the form came from this site's page: its `form` value starts
/// with the browser's cookie ([`new_form`]), and an `Origin`, if the
/// browser sent one, is this host (as the request or a proxy in front
/// names it).
fn from_our_page(headers: &HeaderMap, form: &str) -> bool {
    let cookie_ok = match form.split_once('.') {
        Some((browser, own)) if !browser.is_empty() && !own.is_empty() => {
            super::html::cookie(headers, FORM_COOKIE).is_some_and(|c| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    c.as_bytes(),
                    browser.as_bytes(),
                ))
            })
        }
        _ => false,
    };
    let origin_ok = match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => {
            let origin_host = origin.split_once("://").map(|(_, h)| h);
            [header::HOST.as_str(), "x-forwarded-host"]
                .iter()
                .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
                .any(|host| origin_host == Some(host))
        }
    };
    cookie_ok && origin_ok
}

/// `POST /r/{slug}`: takes a registration.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(dash) = state.dashboard().cloned() else {
        return unavailable();
    };
    let Some(sent) = read_body(&body) else {
        return notice(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too long",
            "Something typed in the form is far longer than any name or address. Go back and check it.",
        );
    };
    let shown = match shown(&dash, slug).await {
        Err(e) => {
            tracing::error!(error = %e, "a registration page failed");
            return unavailable();
        }
        Ok(None) => return unknown_page(),
        Ok(Some(shown)) => shown,
    };
    let pages = dash.pages();
    if let Err(why) = shown
        .event
        .page_takes_registrations(muster_core::model::now_ms())
    {
        return closed(&shown.event, why);
    }
    let fresh = new_form(&headers);
    if !from_our_page(&headers, &sent.nonce) {
        let expired = [FormProblem {
            field: "name",
            message: "This form had expired or did not come from this page. Check what you typed and send it again.".into(),
        }];
        return form_page(StatusCode::FORBIDDEN, &shown, &sent.form, &expired, &fresh);
    }
    // The same form again (a double tap, a reload) from the same browser:
    // the answer the first got, written once.
    let key = format!("{}\0{}", shown.page.slug, sent.nonce);
    let mut waited = 0;
    loop {
        match pages.claim(&key) {
            Claim::Answered(answer) => return confirmation(&answer),
            Claim::Mine => break,
            Claim::Busy if waited < 50 => {
                waited += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Claim::Busy => return unavailable(),
        }
    }
    let answer = take(&state, &dash, &shown, sent, peer, &headers, &fresh).await;
    pages.release(&key);
    answer
}

/// Writes a registration that came from our page: unless it is a robot's,
/// has mistakes, or its address sent too many.
async fn take(
    state: &AppState,
    dash: &Arc<Dashboard>,
    shown: &Shown,
    sent: Sent,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    fresh: &str,
) -> Response {
    if !sent.trap.is_empty() {
        // Filled by a robot: thank it, write nothing.
        return notice(StatusCode::OK, "Thank you", "Thank you.");
    }
    let checked = match sent.form.check(&shown.page, &shown.region) {
        Ok(checked) => checked,
        Err(problems) => {
            return form_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                shown,
                &sent.form,
                &problems,
                fresh,
            );
        }
    };
    let pages = dash.pages();
    let now = Instant::now();
    if !pages.allow(state.client_ip(peer.ip(), headers), now) {
        return notice(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many registrations",
            "Many registrations came from your network in the last few minutes. Please try again later.",
        );
    }
    let event_id = shown.event.id.clone();
    let written = blocking(dash, move |d| {
        d.device()
            .write(|s, now| s.register_from_page(&event_id, &checked, now))
            .map_err(DashboardError::from)
    })
    .await;
    match written {
        Ok(PageRegistration {
            status,
            waitlist_position,
            cancel,
            ..
        }) => {
            let answer = Answer {
                title: shown.event.title.clone(),
                waitlist_place: match status {
                    SignupStatus::Waitlisted => waitlist_position,
                    _ => None,
                },
                cancel_path: cancel
                    .map(|c| format!("/r/{}/cancel/{}/{}", shown.page.slug, c.contact_id, c.token)),
            };
            let key = format!("{}\0{}", shown.page.slug, sent.nonce);
            pages.keep_answer(key, answer.clone(), now);
            confirmation(&answer)
        }
        // Closed, unpublished or cancelled between the check and the write.
        Err(DashboardError::Store(CoreError::NotAllowed(why))) => {
            notice(StatusCode::GONE, &shown.event.title, &why)
        }
        Err(e) => {
            tracing::error!(error = %e, "a registration could not be written");
            unavailable()
        }
    }
}

/// The cancel page's form: a button, so that nothing is cancelled by
/// merely opening the link (mail scanners and link previews open links).
fn cancel_form(shown: &Shown, path: &str, nonce: &str) -> Response {
    let e = &shown.event;
    let body = html! {
        h1 { "Cancel your registration" }
        p { "For " strong { (e.title) } ", " (when(e.starts_at)) "." }
        form method="post" action=(path) {
            input type="hidden" name="form" value=(nonce);
            button type="submit" { "Cancel my registration" }
        }
    };
    let mut r = respond(StatusCode::OK, frame(&e.title, body));
    set_form_cookie(&mut r, &shown.page.slug, nonce);
    r
}

fn no_such_link() -> Response {
    notice(
        StatusCode::NOT_FOUND,
        "No such link",
        "This cancel link is not valid. Use the link you were given when you registered, or tell the organisers.",
    )
}

/// The sign-up a cancel link names, checked: its event as the page
/// shows it, and whether it is cancelled already.
async fn linked(
    dash: &Arc<Dashboard>,
    slug: String,
    contact: String,
    token: String,
) -> Result<Option<(Shown, bool)>, DashboardError> {
    let Some(shown) = shown(dash, slug).await? else {
        return Ok(None);
    };
    let event_id = shown.event.id.clone();
    let status = blocking(dash, move |d| {
        d.device()
            .read(|s| s.page_sign_up(&event_id, &contact, &token))
            .map_err(DashboardError::from)
    })
    .await?;
    Ok(status.map(|(_, status)| (shown, status == SignupStatus::Cancelled)))
}

/// `GET /r/{slug}/cancel/{contact}/{token}`: the private cancel link.
pub async fn cancel_page(
    State(state): State<AppState>,
    Path((slug, contact, token)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(dash) = state.dashboard().cloned() else {
        return unavailable();
    };
    let path = format!("/r/{slug}/cancel/{contact}/{token}");
    match linked(&dash, slug, contact, token).await {
        Err(e) => {
            tracing::error!(error = %e, "a cancel link failed");
            unavailable()
        }
        Ok(None) => no_such_link(),
        Ok(Some((shown, true))) => notice(
            StatusCode::OK,
            &shown.event.title,
            "Your registration is cancelled.",
        ),
        Ok(Some((shown, false))) => {
            let e = &shown.event;
            if e.status != muster_core::model::EventStatus::Scheduled
                || muster_core::model::now_ms() >= e.starts_at
            {
                return notice(
                    StatusCode::GONE,
                    &e.title,
                    "The event has started or is over: to change your registration, tell the organisers.",
                );
            }
            cancel_form(&shown, &path, &new_form(&headers))
        }
    }
}

/// `POST /r/{slug}/cancel/{contact}/{token}`: cancels the sign-up.
pub async fn cancel(
    State(state): State<AppState>,
    Path((slug, contact, token)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(dash) = state.dashboard().cloned() else {
        return unavailable();
    };
    let path = format!("/r/{slug}/cancel/{contact}/{token}");
    let Some(sent) = read_body(&body) else {
        return notice(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too long",
            "This form is far longer than the cancel page sends.",
        );
    };
    let shown = match linked(&dash, slug, contact.clone(), token.clone()).await {
        Err(e) => {
            tracing::error!(error = %e, "a cancel link failed");
            return unavailable();
        }
        Ok(None) => return no_such_link(),
        Ok(Some((shown, _))) => shown,
    };
    if !from_our_page(&headers, &sent.nonce) {
        let mut r = cancel_form(&shown, &path, &new_form(&headers));
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let event_id = shown.event.id.clone();
    let done = blocking(&dash, move |d| {
        d.device()
            .write(|s, now| s.cancel_from_page(&event_id, &contact, &token, now))
            .map_err(DashboardError::from)
    })
    .await;
    match done {
        Ok(PageCancel::Cancelled | PageCancel::AlreadyCancelled) => notice(
            StatusCode::OK,
            &shown.event.title,
            "Your registration is cancelled. Thank you for letting us know.",
        ),
        Err(DashboardError::Store(CoreError::NotAllowed(why))) => {
            notice(StatusCode::GONE, &shown.event.title, &why)
        }
        Err(DashboardError::Store(CoreError::NotFound { .. })) => no_such_link(),
        Err(e) => {
            tracing::error!(error = %e, "a cancellation could not be written");
            unavailable()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_one_ipv6_network_share_one_count() {
        let state = PageState::default();
        let now = Instant::now();
        for i in 0..SUBMISSIONS_PER_ADDRESS as u16 {
            let addr: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            assert!(state.allow(addr, now), "{i}");
        }
        assert!(!state.allow("2001:db8:1:2:ffff::1".parse().unwrap(), now));
        assert!(
            state.allow("2001:db8:1:3::1".parse().unwrap(), now),
            "another /64"
        );
        assert!(
            state.allow("2001:db8:1:2::1".parse().unwrap(), now + SUBMISSION_WINDOW),
            "the window passes"
        );
    }

    #[test]
    fn a_form_being_written_is_written_once() {
        let state = PageState::default();
        assert!(matches!(state.claim("f"), Claim::Mine));
        assert!(matches!(state.claim("f"), Claim::Busy));
        let answer = Answer {
            title: "Food drive".into(),
            waitlist_place: None,
            cancel_path: None,
        };
        state.keep_answer("f".into(), answer, Instant::now());
        state.release("f");
        assert!(matches!(state.claim("f"), Claim::Answered(_)));
        assert!(matches!(state.claim("g"), Claim::Mine));
    }

    #[test]
    fn a_form_must_carry_its_browsers_cookie() {
        let mut headers = HeaderMap::new();
        let form = new_form(&headers);
        let (browser, _) = form.split_once('.').unwrap();
        assert!(!from_our_page(&headers, &form), "no cookie");
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{FORM_COOKIE}={browser}")).unwrap(),
        );
        assert!(from_our_page(&headers, &form));
        assert_eq!(
            new_form(&headers).split('.').next(),
            Some(browser),
            "kept across tabs"
        );
        assert!(
            !from_our_page(&headers, browser),
            "the cookie alone is not a form"
        );
        assert!(!from_our_page(&headers, &format!("{}.x", "0".repeat(32))));
        headers.insert(header::HOST, HeaderValue::from_static("relay.example.org"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!from_our_page(&headers, &form));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://relay.example.org"),
        );
        assert!(from_our_page(&headers, &form));
    }
}
