//! HTML for the dashboard: the page frame, time and money formatting, and
//! the static assets (the dashboard's CSS and small script, the public
//! pages' CSS), embedded in the binary.
//!
//! Every page is a maud template, which escapes each value it is given:
//! names, phones and notes are typed by the public, and there is no call to
//! forget. [`respond`] takes only [`Markup`], so no hand-built string can
//! reach a browser as HTML.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

const CSS: &str = include_str!("../../assets/dashboard.css");
const JS: &str = include_str!("../../assets/dashboard.js");
const PAGE_CSS: &str = include_str!("../../assets/page.css");

/// The pages' Content-Security-Policy: nothing but this origin's files; no
/// inline script or style, no framing.
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Percent-encodes a query parameter value (`application/x-www-form-urlencoded`,
/// as browsers send forms).
pub fn url_param(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The value of the cookie `name` in a request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A time as a `<time>` element: UTC text on the server, turned into the
/// reader's local time by the script.
pub fn time(ms: i64) -> Markup {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => html! {
            time datetime=(t) data-ms=(ms) { (t.strftime("%Y-%m-%d %H:%M UTC")) }
        },
        Err(_) => html! { "—" },
    }
}

/// [`time`], or a dash when there is none.
pub fn time_or_dash(ms: Option<i64>) -> Markup {
    ms.map_or_else(|| html! { "—" }, time)
}

/// A duration in words: `3 h 20 min`, `2 days 4 h`.
pub fn duration(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    let (days, hours, mins) = (minutes / 1440, (minutes / 60) % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{mins} min"),
        (0, h) => format!("{h} h {mins} min"),
        (1, h) => format!("1 day {h} h"),
        (d, h) => format!("{d} days {h} h"),
    }
}

/// An amount in a currency's minor unit, with the currency's own digits
/// ([`muster_core::money::display_amount`], as exports write it).
pub fn money(minor: i64, currency: &str) -> String {
    muster_core::money::display_amount(minor, currency)
}

/// A number with thousands separators.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// "1 result", "2 results": `n` and the noun, plural unless one.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", count(n as i64))
    }
}

/// Which section of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Events and rosters.
    Events,
    /// Contact search and detail.
    Contacts,
    /// The duplicate review queue.
    Duplicates,
    /// Overdue feedback.
    Feedback,
    /// CSV downloads.
    Exports,
}

/// What the frame around a logged-in page shows.
pub struct Frame<'a> {
    /// The section to highlight.
    pub section: Section,
    /// The session's CSRF token, for the log-out form.
    pub csrf: &'a str,
    /// Pairs waiting in the duplicate queue, for the navigation badge.
    pub duplicates: Option<usize>,
    /// A line about the dashboard's replica (sync status).
    pub replica: String,
}

/// What the page's script does on a page, read from `<main>`'s attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// Nothing beyond local times.
    None,
    /// Polls `url` (`?since=generation`) and replaces the live rows and
    /// counts when they changed.
    Live {
        /// The JSON address.
        url: String,
        /// The change counter the page was made at.
        generation: u64,
    },
    /// Watches the duplicate cache and says when a newer list is ready.
    Duplicates {
        /// The list's run the page shows.
        run: u64,
    },
}

/// A whole logged-in page.
pub fn page(title: &str, frame: &Frame<'_>, script: &Script, body: Markup) -> Markup {
    let nav = [
        (Section::Events, "/", "Events"),
        (Section::Contacts, "/contacts", "Contacts"),
        (Section::Duplicates, "/duplicates", "Duplicates"),
        (Section::Feedback, "/feedback", "Feedback"),
        (Section::Exports, "/export", "Exports"),
    ];
    let (live, generation, dup_run, dup_state) = match script {
        Script::None => (None, None, None, None),
        Script::Live { url, generation } => (Some(url.as_str()), Some(*generation), None, None),
        Script::Duplicates { run } => (None, None, Some(*run), Some("/api/duplicates")),
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&format!("{title} · Muster"), "/assets/dashboard.css", true))
            body {
                header class="top" {
                    a class="brand" href="/" { "Muster" }
                    nav aria-label="Sections" {
                        @for (section, href, label) in nav {
                            @let here = section == frame.section;
                            a href=(href) class=[here.then_some("active")] aria-current=[here.then_some("page")] {
                                (label)
                                @if section == Section::Duplicates {
                                    @if let Some(n) = frame.duplicates.filter(|n| *n > 0) {
                                        " " span class="badge" { (count(n as i64)) }
                                    }
                                }
                            }
                        }
                    }
                    form method="post" action="/logout" class="logout" {
                        input type="hidden" name="csrf" value=(frame.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main id="main" data-live=[live] data-gen=[generation]
                    data-dup-run=[dup_run] data-dup-state=[dup_state] { (body) }
                footer { span id="replica" { (frame.replica) } }
            }
        }
    }
}

/// A page without the logged-in frame (login, errors).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&format!("{title} · Muster"), "/assets/dashboard.css", false))
            body class="bare" { main id="main" { (body) } }
        }
    }
}

/// Every page's `<head>`: its title, its one stylesheet, and the
/// dashboard's script when `scripted` (never on the public pages).
pub fn head(title: &str, stylesheet: &str, scripted: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) }
            link rel="stylesheet" href=(stylesheet);
            @if scripted { script src="/assets/dashboard.js" defer {} }
        }
    }
}

/// An HTML response with the pages' security headers: the CSP, no
/// sniffing, no caching (pages hold personal data), same-origin referrers.
pub fn respond(status: StatusCode, page: Markup) -> Response {
    let mut r = (status, page.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    security_headers(h);
    r
}

/// The headers every dashboard response carries.
pub fn security_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// An error page: what went wrong, and the way back.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    respond(
        status,
        bare_page(
            title,
            html! {
                h1 { (title) }
                p class="error" role="alert" { (message) }
                p { a href="/" { "Back to the dashboard" } }
            },
        ),
    )
}

/// A redirect after a form (303 See Other), with the security headers.
pub fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    security_headers(r.headers_mut());
    r
}

/// A JSON response for the live pages (never cached).
pub fn json(value: serde_json::Value) -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response();
    security_headers(r.headers_mut());
    r
}

/// `GET /assets/dashboard.css`.
pub async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// `GET /assets/page.css`: the public registration pages' style.
pub async fn page_css() -> Response {
    asset(PAGE_CSS, "text/css; charset=utf-8")
}

/// `GET /assets/dashboard.js`.
pub async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, kind)], body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Embedded in the binary: it changes only with the relay.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /favicon.ico`: none (browsers ask for it on every page).
pub async fn no_icon() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A dashboard address asked with the wrong method (a form's address
/// opened as a page, say).
pub async fn wrong_method() -> Response {
    error_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "This address does not take that kind of request: use the dashboard's pages and buttons.",
    )
}

/// Any other path.
pub async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "There is no page at this address.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_formatted() {
        let frame = Frame {
            section: Section::Contacts,
            csrf: "\"><script>",
            duplicates: Some(3),
            replica: "<b>".into(),
        };
        let hostile = "<script>alert('x') & \"y\"</script>";
        let out = page(
            hostile,
            &frame,
            &Script::Live {
                url: "/api/\"x".into(),
                generation: 7,
            },
            html! { p { (hostile) } },
        )
        .into_string();
        assert!(!out.contains("<script>alert"), "{out}");
        assert!(out.contains("<p>&lt;script&gt;alert('x') &amp; &quot;y&quot;&lt;/script&gt;</p>"));
        assert!(out.contains("value=\"&quot;&gt;&lt;script&gt;\""), "{out}");
        assert!(
            out.contains("data-live=\"/api/&quot;x\" data-gen=\"7\""),
            "{out}"
        );
        assert!(
            out.contains("<span id=\"replica\">&lt;b&gt;</span>"),
            "{out}"
        );
        assert!(
            out.contains(
                "<a href=\"/contacts\" class=\"active\" aria-current=\"page\">Contacts</a>"
            )
        );
        assert!(
            out.contains("Duplicates <span class=\"badge\">3</span>"),
            "{out}"
        );
        assert!(!out.contains("data-dup-state"));

        assert_eq!(url_param("Ana Sílva&x"), "Ana+S%C3%ADlva%26x");
        assert_eq!(count(100_000), "100,000");
        assert_eq!(count(999), "999");
        assert_eq!(plural(1, "case", "cases"), "1 case");
        assert_eq!(plural(1200, "case", "cases"), "1,200 cases");
        assert_eq!(money(1250, "EUR"), "12.50 EUR");
        // As the export writes it: once "10.00 JPY" here and "1000" there.
        assert_eq!(money(1000, "JPY"), "1000 JPY");
        assert_eq!(
            money(1000, "JPY"),
            format!("{} JPY", muster_core::money::decimal_amount(1000, "JPY"))
        );
        assert_eq!(money(1500, "KWD"), "1.500 KWD");
        assert_eq!(duration(26 * 3_600_000 + 60_000), "1 day 2 h");
        assert!(time(0).into_string().contains("1970-01-01 00:00 UTC"));
    }
}
