//! The coordinator's side of an event's public registration page, on the
//! dashboard's event page: publish it (what it asks, when it closes),
//! unpublish it, and its address with a QR code for posters. The same
//! store calls as `muster event publish` and `unpublish`.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use maud::{Markup, html};
use muster_core::model::{Event, Publication};

use super::auth::Coordinator;
use super::html::see_other;
use super::{DResult, DashboardError, blocking};

/// The public address of the page at `slug`, as the coordinator's browser
/// reached this relay: its `Host`, over HTTPS when a proxy in front says
/// the request came so (`X-Forwarded-Proto`).
pub fn public_url(headers: &HeaderMap, slug: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|p| p.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{host}/r/{slug}")
}

/// The event page's section about its public page: the form to publish
/// (or change) it, its address and QR code, the button to unpublish.
pub fn section(e: &Event, headers: &HeaderMap, csrf: &str) -> Markup {
    let page = e.publication.as_ref();
    let open = page.is_some_and(|p| p.open);
    let asks = |field: &str| page.is_none_or(|p| p.asks_for(field));
    let closes = page
        .and_then(|p| p.closes_at)
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default();
    html! {
        section class="publication" aria-labelledby="pub-h" {
            h2 id="pub-h" { "Online registration" }
            @if let (Some(p), true) = (page, open) {
                p { "Open: people register themselves at " a href=(public_url(headers, &p.slug)) { (public_url(headers, &p.slug)) } }
                p {
                    img src={ "/events/" (e.id) "/qr.svg" } width="200" height="200"
                        alt="QR code of the registration page's address";
                }
                p { a href={ "/events/" (e.id) "/qr.svg" } download={ "registration-" (p.slug) ".svg" } { "Download the QR code (SVG) for posters" } }
                form method="post" action={ "/events/" (e.id) "/unpublish" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Unpublish the page" }
                }
            } @else if page.is_some() {
                p { "The page is closed: its address says registrations are closed. Publishing again opens it at the same address." }
            } @else {
                p { "Publish a page where people register themselves from their phone." }
            }
            form method="post" action={ "/events/" (e.id) "/publish" } {
                input type="hidden" name="csrf" value=(csrf);
                fieldset {
                    legend { "The page asks for the name and" }
                    @for field in Publication::ASKABLE {
                        label class="check" {
                            input type="checkbox" name="ask" value=(field) checked[asks(field)];
                            (match field { "email" => "email", "phone" => "phone", "language" => "preferred language", _ => "consent per channel" })
                        }
                    }
                }
                label for="pub-closes" { "Registrations close (UTC; empty: when the event starts)" }
                input type="datetime-local" id="pub-closes" name="closes" value=(closes);
                button type="submit" { @if open { "Save the page" } @else { "Publish the page" } }
            }
        }
    }
}

fn event_of(id: Result<Path<String>, PathRejection>) -> DResult<String> {
    let Ok(Path(id)) = id else {
        return Err(DashboardError::NotFound("No such event.".into()));
    };
    super::pages::event_id(&id).map(str::to_owned)
}

/// The publish form: the CSRF token, the fields asked, when it closes.
struct PublishForm {
    csrf: Option<String>,
    asks: Vec<String>,
    closes: Option<i64>,
}

fn read_form(body: &[u8]) -> DResult<PublishForm> {
    let mut form = PublishForm {
        csrf: None,
        asks: Vec::new(),
        closes: None,
    };
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "csrf" => form.csrf = Some(v.into_owned()),
            "ask" if form.asks.len() < Publication::ASKABLE.len() => form.asks.push(v.into_owned()),
            "closes" if !v.trim().is_empty() => {
                // A browser's datetime-local: "2026-12-01T12:00", in UTC here.
                let t: jiff::civil::DateTime = v.trim().parse().map_err(|_| {
                    DashboardError::BadRequest(format!(
                        "{v:?} is not a date and time such as 2026-12-01T12:00."
                    ))
                })?;
                let at = jiff::tz::TimeZone::UTC
                    .to_timestamp(t)
                    .map_err(|e| DashboardError::BadRequest(e.to_string()))?;
                form.closes = Some(at.as_millisecond());
            }
            _ => {}
        }
    }
    if form.asks.is_empty() {
        return Err(DashboardError::BadRequest(
            "Tick at least one thing for the page to ask besides the name.".into(),
        ));
    }
    Ok(form)
}

/// `POST /events/{id}/publish`: opens (or changes) the event's page.
pub async fn publish(
    who: Coordinator,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let result = async {
        let id = event_of(id)?;
        let form = read_form(&body)?;
        who.check_csrf(form.csrf.as_deref())?;
        let event = id.clone();
        blocking(&who.dash, move |d| {
            let page = d
                .device()
                .write(|s, now| s.publish_event(&event, form.closes, &form.asks, now))?;
            tracing::info!(event = %event, slug = %page.slug, "dashboard: event page published");
            Ok(())
        })
        .await?;
        Ok::<_, DashboardError>(see_other(&format!("/events/{id}")))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /events/{id}/unpublish`: closes the event's page.
pub async fn unpublish(
    who: Coordinator,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let result = async {
        let id = event_of(id)?;
        let csrf = form_urlencoded::parse(&body)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        who.check_csrf(csrf.as_deref())?;
        let event = id.clone();
        blocking(&who.dash, move |d| {
            d.device().write(|s, now| s.unpublish_event(&event, now))?;
            Ok(())
        })
        .await?;
        Ok::<_, DashboardError>(see_other(&format!("/events/{id}")))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /events/{id}/qr.svg`: a QR code of the open page's address.
pub async fn qr(
    who: Coordinator,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let id = event_of(id)?;
        let event = blocking(&who.dash, move |d| Ok(d.device().read(|s| s.event(&id))?)).await?;
        let Some(page) = event.publication.filter(|p| p.open) else {
            return Err(DashboardError::NotFound(
                "This event's page is not published.".into(),
            ));
        };
        let url = public_url(&headers, &page.slug);
        let code = qrcode::QrCode::new(url.as_bytes())
            .map_err(|e| DashboardError::Unavailable(format!("cannot make the QR code: {e}")))?;
        let svg = code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build();
        let mut r = (StatusCode::OK, svg).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml"),
        );
        super::html::security_headers(h);
        Ok(r)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
