//! Coordinator login, sessions and CSRF tokens.
//!
//! A coordinator logs in with a coordinator token (the secret
//! `muster-server token create --role coordinator` printed). The relay
//! checks it as it checks a device's hello (by hash, compared in constant
//! time), counts unknown and revoked secrets against the same per-address
//! limit as device logins, and answers with a session cookie: 256 random
//! bits, `HttpOnly; SameSite=Strict; Path=/`, valid 12 hours, kept by the
//! backend's [`SharedState`]: in memory for SQLite (a relay restart logs
//! everyone out), in the database for PostgreSQL (every relay process on
//! it knows every session). Every request checks that
//! the session's token is still a live coordinator token, so revoking it
//! (`muster-server token revoke`) ends its sessions at their next request.
//! Every form that changes something carries the session's CSRF token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use muster_core::sync::relay::{Auth, ROLE_COORDINATOR};
use serde::Deserialize;

use super::html;
use super::{DResult, Dashboard, DashboardError, Slot};
use crate::AppState;
use crate::backend::{DashSession, SharedState};
use crate::storage::{SecretCheck, random_hex};
use muster_core::model::now_ms;

/// The session cookie's name.
pub const COOKIE: &str = "muster_session";
/// How long a session lasts after login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// The sessions of logged-in coordinators: the rules (random ids, the
/// lifetime, expiry) over the backend's [`SharedState`], which keeps them
/// in memory for SQLite and in the database for PostgreSQL, so that every
/// relay process on it knows them.
#[derive(Debug)]
pub struct Sessions {
    shared: Arc<dyn SharedState>,
}

impl Sessions {
    /// Sessions kept in `shared`.
    pub fn new(shared: Arc<dyn SharedState>) -> Sessions {
        Sessions { shared }
    }

    /// Opens a session for a token; returns its id (the cookie's value).
    fn create(&self, token_id: &str) -> DResult<String> {
        let id = random_hex(32);
        let session = DashSession {
            token_id: token_id.to_owned(),
            csrf: random_hex(32),
            expires: now_ms() + SESSION_LIFETIME.as_millis() as i64,
        };
        self.shared.put_session(&id, &session)?;
        Ok(id)
    }

    /// The live session with this id, if any (an expired one is dropped).
    fn get(&self, id: &str) -> DResult<Option<DashSession>> {
        let now = now_ms();
        match self.shared.session(id)? {
            Some(s) if s.expires > now => Ok(Some(s)),
            Some(_) => {
                self.end(id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Ends a session (logout, or its token revoked).
    fn end(&self, id: &str) {
        if let Err(e) = self.shared.end_session(id, now_ms()) {
            tracing::warn!(error = %e, "cannot end a dashboard session");
        }
    }
}

/// The dashboard, when it runs; otherwise the request is answered with why
/// not (503: turned off or failed to start).
pub struct Dash(pub Arc<Dashboard>);

impl FromRequestParts<AppState> for Dash {
    type Rejection = DashboardError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match state.dashboard_slot() {
            Some(Slot::Ready(d)) => Ok(Dash(d.clone())),
            Some(Slot::Failed(why)) => Err(DashboardError::Unavailable(format!(
                "The dashboard could not start: {why}. The relay itself is running; see its log."
            ))),
            None => Err(DashboardError::Unavailable(
                "The dashboard is turned off on this relay (muster-server serve --no-dashboard)."
                    .into(),
            )),
        }
    }
}

/// A logged-in coordinator: the request's session, still valid, of a
/// token that is still a live coordinator token.
pub struct Coordinator {
    /// The dashboard.
    pub dash: Arc<Dashboard>,
    /// The session's id.
    session: String,
    /// The session's CSRF token, to put in forms.
    pub csrf: String,
}

impl Coordinator {
    /// Refuses a form that does not carry this session's CSRF token.
    pub fn check_csrf(&self, given: Option<&str>) -> DResult<()> {
        let ok = given.is_some_and(|g| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                g.as_bytes(),
                self.csrf.as_bytes(),
            ))
        });
        if ok {
            Ok(())
        } else {
            Err(DashboardError::Forbidden(
                "This form did not come from your dashboard session (its security token is missing or old). Go back, reload the page and try again."
                    .into(),
            ))
        }
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    super::html::cookie(headers, COOKIE)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The request's coordinator, if it has a valid session.
async fn session_of(
    dash: &Arc<Dashboard>,
    state: &AppState,
    headers: &HeaderMap,
) -> DResult<Option<Coordinator>> {
    let Some(id) = session_cookie(headers) else {
        return Ok(None);
    };
    let Some(session) = dash.sessions.get(&id)? else {
        return Ok(None);
    };
    let storage_state = state.clone();
    let token_id = session.token_id.clone();
    let grant = tokio::task::spawn_blocking(move || storage_state.storage().grant(&token_id))
        .await
        .map_err(|e| DashboardError::Unavailable(format!("a dashboard task failed: {e}")))??;
    match grant {
        Auth::Granted(g) if g.role == ROLE_COORDINATOR => Ok(Some(Coordinator {
            dash: dash.clone(),
            session: id,
            csrf: session.csrf,
        })),
        _ => {
            // Revoked (or no longer a coordinator): the session ends here.
            dash.sessions.end(&id);
            Ok(None)
        }
    }
}

/// What a request without a valid session gets: the login page for pages
/// (a redirect to `/`), 401 for the live JSON, 403 for a form.
fn not_logged_in(parts: &Parts) -> Response {
    if parts.uri.path().starts_with("/api/") {
        let mut r = html::json(serde_json::json!({"error": "not logged in"}));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        r
    } else if parts.method == Method::GET || parts.method == Method::HEAD {
        html::see_other("/")
    } else {
        DashboardError::Forbidden(
            "You are not logged in, or your session has ended. Log in again, then repeat what you were doing."
                .into(),
        )
        .into_response()
    }
}

impl FromRequestParts<AppState> for Coordinator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Dash(dash) = Dash::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match session_of(&dash, state, &parts.headers).await {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(not_logged_in(parts)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The coordinator if logged in, for `/` (which shows the login form
/// otherwise).
pub struct MaybeCoordinator(pub Option<Coordinator>);

impl FromRequestParts<AppState> for MaybeCoordinator {
    type Rejection = DashboardError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Dash(dash) = Dash::from_request_parts(parts, state).await?;
        Ok(MaybeCoordinator(
            session_of(&dash, state, &parts.headers).await?,
        ))
    }
}

/// The login page, with a message after a refused attempt.
pub fn login_page(status: StatusCode, message: Option<&str>) -> Response {
    html::respond(
        status,
        html::bare_page(
            "Log in",
            maud::html! {
                div class="login" {
                    h1 { "Muster" }
                    p class="sub" { "Coordinators' dashboard" }
                    @if let Some(m) = message { p class="error" role="alert" { (m) } }
                    form method="post" action="/login" {
                        label for="token" { "Coordinator token" }
                        input id="token" name="token" type="password" autocomplete="off"
                            spellcheck="false" required autofocus;
                        button type="submit" { "Log in" }
                    }
                    p class="hint" {
                        "An administrator creates one with "
                        code { "muster-server token create --role coordinator" } "."
                    }
                }
            },
        ),
    )
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `POST /login`: checks the token and opens a session.
pub async fn login(
    State(state): State<AppState>,
    Dash(dash): Dash,
    extensions: Extensions,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let addr = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| state.client_ip(c.0.ip(), &headers));
    // Checked for wrong tokens only: a locked-out address (everyone behind
    // one proxy, say) still lets a right token in.
    let limited = addr.is_some_and(|a| state.rate_limited(a));
    let Ok(Form(form)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("The login form was not sent as a form. Reload the page and try again."),
        );
    };
    let secret = form.token.trim().to_owned();
    if secret.is_empty() {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("Paste a coordinator token to log in."),
        );
    }
    let lookup = state.clone();
    let checked = tokio::task::spawn_blocking(move || lookup.storage().check_secret(&secret)).await;
    let checked = match checked {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return DashboardError::from(e).into_response(),
        Err(e) => {
            return DashboardError::Unavailable(format!("a dashboard task failed: {e}"))
                .into_response();
        }
    };
    match checked {
        SecretCheck::Unknown | SecretCheck::Revoked if limited => login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed logins from this address. Wait a minute and try again."),
        ),
        SecretCheck::Unknown | SecretCheck::Revoked => {
            if let Some(a) = addr {
                state.record_failed_login(a);
            }
            tracing::info!(addr = ?addr, "dashboard login refused: unknown or revoked token");
            login_page(
                StatusCode::UNAUTHORIZED,
                Some("This token is not valid: it is unknown or has been revoked."),
            )
        }
        SecretCheck::Valid { role, .. } if role != ROLE_COORDINATOR => {
            tracing::info!(addr = ?addr, %role, "dashboard login refused: not a coordinator token");
            login_page(
                StatusCode::FORBIDDEN,
                Some(&format!(
                    "This is a{} {role} token. The dashboard is for coordinators: log in with a coordinator token.",
                    if role.starts_with(['a', 'e', 'i', 'o', 'u']) {
                        "n"
                    } else {
                        ""
                    }
                )),
            )
        }
        SecretCheck::Valid { id, .. } => {
            let session = match dash.sessions.create(&id) {
                Ok(s) => s,
                Err(e) => return e.into_response(),
            };
            tracing::info!(token = %id, addr = ?addr, "coordinator logged in to the dashboard");
            let secure = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https"));
            let cookie = format!(
                "{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
                SESSION_LIFETIME.as_secs(),
                if secure { "; Secure" } else { "" }
            );
            let mut r = html::see_other("/");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
    }
}

/// `GET /login` (a bookmark, or a reload after a refused login): the form
/// is at `/`.
pub async fn login_again() -> Response {
    html::see_other("/")
}

/// A form with nothing but the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
}

/// `POST /logout`: ends the session.
pub async fn logout(who: Coordinator, form: Result<Form<CsrfForm>, FormRejection>) -> Response {
    let given = form.ok().and_then(|Form(f)| f.csrf);
    if let Err(e) = who.check_csrf(given.as_deref()) {
        return e.into_response();
    }
    who.dash.sessions.end(&who.session);
    let mut r = html::see_other("/");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("muster_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}

/// Turns a form extraction failure into a 400 page.
pub fn form_or_400<T>(form: Result<Form<T>, FormRejection>) -> DResult<T> {
    form.map(|Form(f)| f).map_err(|e| {
        DashboardError::BadRequest(format!(
            "The form could not be read ({}). Go back, reload the page and try again.",
            e.body_text()
        ))
    })
}
