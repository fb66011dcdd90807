//! HTML for the dashboard: escaping, the page frame, time and money
//! formatting, and the two static assets (one CSS file, one small script),
//! embedded in the binary.
//!
//! Every text that comes from a record goes through [`esc`]: names, phones
//! and notes are typed by the public.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../../assets/dashboard.css");
const JS: &str = include_str!("../../assets/dashboard.js");
const PAGE_CSS: &str = include_str!("../../assets/page.css");

/// The pages' Content-Security-Policy: nothing but this origin's files; no
/// inline script or style, no framing.
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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
pub fn time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => format!(
            "<time datetime=\"{}\" data-ms=\"{ms}\">{}</time>",
            t,
            t.strftime("%Y-%m-%d %H:%M UTC")
        ),
        Err(_) => "—".into(),
    }
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
/// ([`muster_core::money::display_amount`], as exports write it), escaped.
pub fn money(minor: i64, currency: &str) -> String {
    esc(&muster_core::money::display_amount(minor, currency))
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

/// A whole logged-in page. `main_attrs` are attributes of `<main>` the
/// script reads (`data-live` …), already escaped.
pub fn page(title: &str, frame: &Frame<'_>, main_attrs: &str, body: &str) -> String {
    let link = |s: Section, href: &str, label: &str, extra: &str| {
        format!(
            "<a href=\"{href}\"{}>{label}{extra}</a>",
            if s == frame.section {
                " class=\"active\" aria-current=\"page\""
            } else {
                ""
            }
        )
    };
    let badge = match frame.duplicates {
        Some(n) if n > 0 => format!(" <span class=\"badge\">{}</span>", count(n as i64)),
        _ => String::new(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Muster</title>\
         <link rel=\"stylesheet\" href=\"/assets/dashboard.css\">\
         <script src=\"/assets/dashboard.js\" defer></script></head>\
         <body><header class=\"top\"><a class=\"brand\" href=\"/\">Muster</a>\
         <nav aria-label=\"Sections\">{}{}{}{}{}</nav>\
         <form method=\"post\" action=\"/logout\" class=\"logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Log out</button></form>\
         </header><main id=\"main\"{main_attrs}>{body}</main>\
         <footer><span id=\"replica\">{}</span></footer></body></html>\n",
        link(Section::Events, "/", "Events", ""),
        link(Section::Contacts, "/contacts", "Contacts", ""),
        link(Section::Duplicates, "/duplicates", "Duplicates", &badge),
        link(Section::Feedback, "/feedback", "Feedback", ""),
        link(Section::Exports, "/export", "Exports", ""),
        esc(frame.csrf),
        frame.replica,
        title = esc(title),
    )
}

/// A page without the logged-in frame (login, errors).
pub fn bare_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Muster</title>\
         <link rel=\"stylesheet\" href=\"/assets/dashboard.css\"></head>\
         <body class=\"bare\"><main id=\"main\">{body}</main></body></html>\n",
        esc(title)
    )
}

/// An HTML response with the pages' security headers: the CSP, no
/// sniffing, no caching (pages hold personal data), same-origin referrers.
pub fn respond(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
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
            &format!(
                "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>\
                 <p><a href=\"/\">Back to the dashboard</a></p>",
                esc(title),
                esc(message)
            ),
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
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(url_param("Ana Sílva&x"), "Ana+S%C3%ADlva%26x");
        assert_eq!(count(100_000), "100,000");
        assert_eq!(count(999), "999");
        assert_eq!(money(1250, "EUR"), "12.50 EUR");
        // As the export writes it: once "10.00 JPY" here and "1000" there.
        assert_eq!(money(1000, "JPY"), "1000 JPY");
        assert_eq!(
            money(1000, "JPY"),
            format!("{} JPY", muster_core::money::decimal_amount(1000, "JPY"))
        );
        assert_eq!(money(1500, "KWD"), "1.500 KWD");
        assert_eq!(duration(26 * 3_600_000 + 60_000), "1 day 2 h");
        assert!(time(0).contains("1970-01-01 00:00 UTC"));
    }
}
