//! Signing in and out, sessions and CSRF protection.
//!
//! A session is a random token in an HttpOnly, SameSite=Lax cookie; the store keeps only
//! its SHA-256. Each session has its own CSRF token, which every form carries and every
//! POST checks. The sign-in form, having no session yet, uses a double-submit token: the
//! same random value in a short-lived cookie and in the form; so does the form that
//! accepts an invitation. Repeated failed sign-ins lock out the source that made them
//! (the browser or the client's address), never the account, and are answered later and
//! later (see `throttle`).

use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Query, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use gridroll_store::{NewSession, Role, TokenHash, User};
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::layout;
use super::password;
use super::throttle::{self, ClientAddress};
use super::{PortalError, PortalResult};
use crate::AppState;
use crate::auth::{random_token, sha256};

const SESSION_COOKIE: &str = "gridroll_session";
const SIGN_IN_COOKIE: &str = "gridroll_sign_in";
/// A browser's own random token, set at its first successful sign-in: failures from a
/// browser a user signed in from before count against that browser alone.
const DEVICE_COOKIE: &str = "gridroll_device";
const DEVICE_LIFETIME: Duration = Duration::from_secs(400 * 24 * 3600);
/// How long a session lasts from sign-in.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed sign-ins in a row from one source that lock that source out of the account,
/// and for how long.
pub const LOCK_AFTER: u32 = 5;
const LOCK_FOR: Duration = Duration::from_secs(15 * 60);

/// The one answer to every refused sign-in.
const REFUSED: &str = "The email or the password is not right. After 5 failed sign-ins in a \
    row from one browser or network, signing in from there is paused for 15 minutes.";

/// SHA-256 of a token handed out once.
pub fn hash_token(token: &str) -> TokenHash {
    TokenHash(sha256(token))
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of a cookie of the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` for the portal's path; `max_age` zero removes the cookie.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Duration) -> HeaderValue {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::try_from(format!(
        "{name}={value}; Path=/portal; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        max_age.as_secs()
    ))
    .expect("cookie values are URL-safe base64")
}

/// The signed-in user of a portal request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    csrf_token: String,
    token: TokenHash,
}

impl SignedIn {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Refuses members where only admins may act.
    pub fn require_admin(&self) -> PortalResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(PortalError::forbidden(
                "Only an admin of your organisation can do this.",
            ))
        }
    }

    /// The hidden field every form of the session carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf_token); }
    }

    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    /// The hash of this session's token: the session a password change keeps.
    pub fn session(&self) -> TokenHash {
        self.token
    }

    /// Refuses a form that does not carry this session's token.
    pub fn check_csrf(&self, submitted: &str) -> PortalResult<()> {
        if same_secret(submitted, &self.csrf_token) {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }
}

pub fn csrf_refused() -> PortalError {
    PortalError::forbidden(
        "The form was not sent from this session (its security token is missing or out of \
         date). Reload the page and send it again.",
    )
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> PortalResult<Self> {
        let next = if parts.method == axum::http::Method::GET {
            // Inside the nested portal router the URI has lost its /portal prefix.
            let uri = parts
                .extensions
                .get::<OriginalUri>()
                .map_or(&parts.uri, |original| &original.0);
            uri.path_and_query()
                .map_or("/portal".to_owned(), |p| p.as_str().to_owned())
        } else {
            "/portal".to_owned()
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(PortalError::SignIn { next });
        };
        let token = hash_token(token);
        let session = state.accounts.session(&token, state.now_millis()).await?;
        let Some(session) = session else {
            return Err(PortalError::SignIn { next });
        };
        Ok(Self {
            user: session.user,
            csrf_token: session.csrf_token,
            token,
        })
    }
}

/// `axum::Form` whose rejections are portal pages.
pub struct PortalForm<T>(pub T);

impl<T, S> FromRequest<S> for PortalForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PortalError;

    async fn from_request(req: Request, state: &S) -> PortalResult<Self> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|form| Self(form.0))
            .map_err(|e| PortalError::bad_request(e.body_text()))
    }
}

#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    next: String,
}

/// Only a portal path is a place to return to after signing in.
fn safe_next(next: &str) -> &str {
    let local = next.starts_with("/portal")
        && !next.contains('\\')
        && next.chars().all(|c| c.is_ascii_graphic());
    if local { next } else { "/portal" }
}

/// A token as `random_token` makes them: 43 characters of URL-safe base64.
fn is_token(t: &str) -> bool {
    t.len() == 43
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The double-submit token of a form shown before there is a session (signing in,
/// accepting an invitation): one already handed out is kept, so that two open tabs both
/// work.
pub fn form_token(headers: &HeaderMap) -> String {
    cookie(headers, SIGN_IN_COOKIE)
        .filter(|t| is_token(t))
        .map_or_else(random_token, str::to_owned)
}

/// The cookie that carries [`form_token`].
pub fn form_token_cookie(state: &AppState, token: &str) -> HeaderValue {
    set_cookie(state, SIGN_IN_COOKIE, token, Duration::from_secs(3600))
}

/// Refuses a form shown before there is a session whose token is not its cookie's: a
/// form sent from another site carries no cookie (they are SameSite), so it cannot sign a
/// browser into someone else's account.
pub fn check_form_token(headers: &HeaderMap, submitted: &str) -> PortalResult<()> {
    let expected = cookie(headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(submitted, expected) {
        return Err(csrf_refused());
    }
    Ok(())
}

/// `GET /portal/sign-in`
pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    sign_in_form(
        &state,
        &headers,
        StatusCode::OK,
        safe_next(&query.next),
        "",
        None,
    )
}

fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    email: &str,
    problem: Option<&str>,
) -> Response {
    let token = form_token(headers);
    let body = layout::bare(
        "Sign in",
        html! {
            h1 { "Sign in to Gridroll" }
            @if let Some(problem) = problem {
                p.alert role="alert" { (problem) }
            }
            form.stack method="post" action="/portal/sign-in" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label for="email" { "Email" }
                input id="email" name="email" type="email" autocomplete="username" required value=(email) autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            p.hint { "No account yet? Ask an admin of your organisation for an invitation." }
        },
    );
    (
        status,
        [(SET_COOKIE, form_token_cookie(state, &token))],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /portal/sign-in`
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    PortalForm(form): PortalForm<SignInForm>,
) -> PortalResult<Response> {
    check_form_token(&headers, &form.csrf)?;
    let next = safe_next(&form.next);
    let Ok(email) = password::normalize_email(&form.email) else {
        return Ok(refused(&state, &headers, next, &form.email));
    };
    // One address may be a user of several partners; the password says which.
    let candidates = state.accounts.user_credentials(&email).await?;
    let device = cookie(&headers, DEVICE_COOKIE).filter(|t| is_token(t));
    let now = state.now_millis();
    let until = now + LOCK_FOR.as_millis() as i64;
    let mut account_failures = 0;
    let mut signed_in_as = None;
    for candidate in candidates.iter().take(MAX_CANDIDATES) {
        let source = source(&state, &candidate.user, device, address).await?;
        // The attempt is counted before the (slow) check, so a burst cannot outrun the
        // lock. A locked-out source is refused like a wrong password, after the same
        // work, so that the answer tells nothing about which emails have accounts.
        let attempt = state
            .accounts
            .sign_in_attempt(candidate.user.id, &source, now, LOCK_AFTER, until)
            .await?;
        account_failures = account_failures.max(attempt.account_failures);
        let stored = attempt.allowed.then(|| candidate.password_hash.clone());
        if password::verify(form.password.clone(), stored)
            .await
            .map_err(|_| busy())?
        {
            signed_in_as = Some((candidate.user.clone(), source));
            break;
        }
    }
    if candidates.is_empty() {
        // The same work as for a known email.
        password::verify(form.password, None)
            .await
            .map_err(|_| busy())?;
    }
    let Some((user, source)) = signed_in_as else {
        tracing::info!(%address, "a portal sign-in failed");
        let wait = throttle::account_delay(account_failures)
            .max(state.sign_ins.failed(address, std::time::Instant::now()));
        tokio::time::sleep(wait).await;
        return Ok(refused(&state, &headers, next, &email));
    };
    state.sign_ins.succeeded(address);
    let device = device.map_or_else(random_token, str::to_owned);
    let token = start_session_from(&state, &user, Some(source), Some(&device)).await?;
    tracing::info!(user = %user.id, "a portal user signed in");
    let mut response = signed_in(&state, &token, next);
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(&state, DEVICE_COOKIE, &device, DEVICE_LIFETIME),
    );
    Ok(response)
}

/// The most users of one email a sign-in tries (each costs a password check).
const MAX_CANDIDATES: usize = 5;

fn busy() -> PortalError {
    PortalError::page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "Too many people are signing in at this moment. Try again in a minute.",
    )
}

/// Whose failures an attempt on `user` counts as: the browser's, when the user signed
/// in from it before, else the client address's.
async fn source(
    state: &AppState,
    user: &User,
    device: Option<&str>,
    address: std::net::IpAddr,
) -> PortalResult<TokenHash> {
    if let Some(device) = device {
        let device = hash_token(device);
        if state.accounts.is_known_device(user.id, &device).await? {
            return Ok(device);
        }
    }
    Ok(hash_token(&format!("address:{address}")))
}

fn refused(state: &AppState, headers: &HeaderMap, next: &str, email: &str) -> Response {
    sign_in_form(
        state,
        headers,
        StatusCode::UNAUTHORIZED,
        next,
        email,
        Some(REFUSED),
    )
}

/// Starts a session for a user and returns its token.
pub async fn start_session(state: &AppState, user: &User) -> PortalResult<String> {
    start_session_from(state, user, None, None).await
}

/// Starts a session for a user who signed in from `source` with the browser `device`.
async fn start_session_from(
    state: &AppState,
    user: &User,
    source: Option<TokenHash>,
    device: Option<&str>,
) -> PortalResult<String> {
    let token = random_token();
    let now = state.now_millis();
    state
        .accounts
        .start_session(&NewSession {
            token: hash_token(&token),
            user: user.id,
            csrf_token: random_token(),
            created_at: now,
            expires_at: now + SESSION_LIFETIME.as_millis() as i64,
            source,
            device: device.map(hash_token),
        })
        .await?;
    Ok(token)
}

/// The answer that sets a new session's cookie and goes on to `next`.
pub fn signed_in(state: &AppState, token: &str, next: &str) -> Response {
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        set_cookie(state, SESSION_COOKIE, token, SESSION_LIFETIME),
    );
    headers.append(
        SET_COOKIE,
        set_cookie(state, SIGN_IN_COOKIE, "", Duration::ZERO),
    );
    response
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /portal/sign-out`
pub async fn sign_out(
    State(state): State<AppState>,
    who: SignedIn,
    PortalForm(form): PortalForm<CsrfForm>,
) -> PortalResult<Response> {
    who.check_csrf(&form.csrf)?;
    state.accounts.end_session(&who.token).await?;
    let mut response = Redirect::to("/portal/sign-in").into_response();
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", Duration::ZERO),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_portal_paths_are_returned_to() {
        assert_eq!(safe_next("/portal/jobs?x=1"), "/portal/jobs?x=1");
        assert_eq!(safe_next("https://evil.example/portal"), "/portal");
        assert_eq!(safe_next("//evil.example"), "/portal");
        assert_eq!(safe_next("/v2/meters"), "/portal");
        assert_eq!(safe_next("/portal\nSet-Cookie: x=1"), "/portal");
        assert_eq!(safe_next("/portal/jobs\u{7f}"), "/portal");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; gridroll_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }
}
