//! Signing in and out, sessions and CSRF protection.
//!
//! A session is a random token in an HttpOnly, SameSite=Lax cookie; the store keeps only
//! its SHA-256. Each session has its own CSRF token, which every form carries and every
//! POST checks. The sign-in form, having no session yet, uses a double-submit token: the
//! same random value in a short-lived cookie and in the form. Repeated failed sign-ins
//! lock the user out for a while.

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
use super::{PortalError, PortalResult};
use crate::AppState;
use crate::auth::{random_token, sha256};

const SESSION_COOKIE: &str = "gridroll_session";
const SIGN_IN_COOKIE: &str = "gridroll_sign_in";
/// How long a session lasts from sign-in.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed sign-ins in a row that lock a user out, and for how long.
pub const LOCK_AFTER: u32 = 5;
const LOCK_FOR: Duration = Duration::from_secs(15 * 60);

/// The one answer to every refused sign-in.
const REFUSED: &str = "The email or the password is not right. After 5 failed sign-ins in a \
    row, signing in is paused for 15 minutes.";

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
        let session = state.store.session(&token, state.now_millis()).await?;
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
    // A token already handed out is kept, so that two open sign-in tabs both work.
    let token = cookie(headers, SIGN_IN_COOKIE)
        .filter(|t| {
            t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(random_token, str::to_owned);
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
        [(
            SET_COOKIE,
            set_cookie(state, SIGN_IN_COOKIE, &token, Duration::from_secs(3600)),
        )],
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
    headers: HeaderMap,
    PortalForm(form): PortalForm<SignInForm>,
) -> PortalResult<Response> {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, expected) {
        return Err(csrf_refused());
    }
    let next = safe_next(&form.next);
    let Ok(email) = password::normalize_email(&form.email) else {
        return Ok(refused(&state, &headers, next, &form.email));
    };
    let credentials = state.store.user_credentials(&email).await?;
    let now = state.now_millis();
    // The attempt is counted before the (slow) check, so a burst cannot outrun the lock.
    // A locked user is refused like a wrong password, after the same work, so that the
    // answer tells nothing about which emails have accounts.
    let allowed = match &credentials {
        Some(c) => {
            let until = now + LOCK_FOR.as_millis() as i64;
            state
                .store
                .sign_in_attempt(c.user.id, now, LOCK_AFTER, until)
                .await?
        }
        None => true,
    };
    let stored = credentials
        .as_ref()
        .filter(|_| allowed)
        .map(|c| c.password_hash.clone());
    let verified = password::verify(form.password, stored).await.map_err(|_| {
        PortalError::page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "Too many people are signing in at this moment. Try again in a minute.",
        )
    })?;
    let Some(credentials) = credentials.filter(|_| verified) else {
        tracing::info!("a portal sign-in failed");
        return Ok(refused(&state, &headers, next, &email));
    };
    let token = start_session(&state, &credentials.user).await?;
    tracing::info!(user = %credentials.user.id, "a portal user signed in");
    Ok(signed_in(&state, &token, next))
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
    let token = random_token();
    let now = state.now_millis();
    state
        .store
        .start_session(&NewSession {
            token: hash_token(&token),
            user: user.id,
            csrf_token: random_token(),
            created_at: now,
            expires_at: now + SESSION_LIFETIME.as_millis() as i64,
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
    state.store.end_session(&who.token).await?;
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
