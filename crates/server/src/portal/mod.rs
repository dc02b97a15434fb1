//! The Partner Portal: server-rendered pages for partner operations staff, served under
//! `/portal` by the same binary. Every page works without JavaScript; the one small
//! script only enhances (drag and drop, live progress). Every asset is served from here.

mod account;
mod chart;
mod dashboard;
mod jobs;
mod keys;
mod layout;
mod meter_actions;
mod meters;
pub mod password;
mod programs;
pub mod session;
pub mod throttle;
mod upload;
mod users;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use gridroll_store::StoreError;
use maud::html;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;
use crate::error::ApiError;

/// The portal's routes, to be nested under `/portal`.
pub fn router(state: &AppState) -> Router<AppState> {
    let upload_limit = usize::try_from(state.config.max_body_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/", get(dashboard::show))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route(
            "/upload",
            get(upload::page)
                .post(upload::submit)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/jobs", get(jobs::list))
        .route("/jobs/{job_id}", get(jobs::show))
        .route("/jobs/{job_id}/progress", get(jobs::progress_json))
        .route("/jobs/{job_id}/failed.csv", get(jobs::failed_rows))
        .route("/meters", get(meters::list))
        .route("/meters/{meter_id}", get(meters::show))
        .route("/meters/{meter_id}/meter.csv", get(meter_actions::download))
        .route("/meters/{meter_id}/{action}", post(meter_actions::act))
        .route("/programs", get(programs::list))
        .route("/programs/{program}/template.csv", get(programs::template))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{key_id}/revoke", post(keys::revoke))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/webhooks/{webhook_id}",
            get(webhooks::show).post(webhooks::replace),
        )
        .route("/webhooks/{webhook_id}/test", post(webhooks::test))
        .route(
            "/webhooks/{webhook_id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/webhooks/{webhook_id}/enable", post(webhooks::enable))
        .route("/webhooks/{webhook_id}/delete", post(webhooks::delete))
        .route(
            "/webhooks/{webhook_id}/events/{event_id}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/users", get(users::list).post(users::invite))
        .route("/users/{user_id}/remove", post(users::remove))
        .route("/users/{user_id}/role", post(users::set_role))
        .route("/users/invitations/withdraw", post(users::withdraw))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route(
            "/invitations/{token}",
            get(users::invitation_page).post(users::accept),
        )
        .route("/assets/portal.css", get(stylesheet))
        .route("/assets/portal.js", get(script))
        .route("/assets/favicon.svg", get(favicon))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(same_origin))
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Invitation links hold their token in the path: never send it elsewhere.
        .layer(header_layer(header::REFERRER_POLICY, "same-origin"))
}

/// Refuses a form sent to the portal from another site: the browser says where a request
/// comes from (`Sec-Fetch-Site`, `Origin`), and no portal form is ever posted from
/// elsewhere. Beside the forms' own tokens, this keeps another site from signing a
/// visitor in, or acting in their session.
async fn same_origin(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if request.method() != axum::http::Method::GET
        && request.method() != axum::http::Method::HEAD
        && !from_this_site(request.headers())
    {
        tracing::info!("refused a portal form sent from another site");
        return PortalError::forbidden(
            "The form was sent from another site. Open the portal and send it from there.",
        )
        .into_response();
    }
    next.run(request).await
}

fn from_this_site(headers: &axum::http::HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Older browsers and other clients send neither; the forms' tokens still hold.
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host);
    matches!((origin_host, host), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
}

/// Pages load only what the binary serves, cannot be framed, and post only here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; \
    base-uri 'none'";

fn header_layer(
    name: header::HeaderName,
    value: &'static str,
) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/portal.css"))
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/portal.js"),
    )
}

/// The portal's icon, drawn in its brand colour and served from the binary.
async fn favicon() -> Response {
    asset("image/svg+xml", include_str!("assets/favicon.svg"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn not_found() -> PortalError {
    PortalError::not_found("This page does not exist.")
}

/// A query parameter of a list page: empty means "any"; anything else must name a value.
pub fn query_value<T: std::str::FromStr>(raw: &str, what: &str) -> PortalResult<Option<T>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|_| PortalError::bad_request(format!("{raw:?} is not a {what} the list knows.")))
}

/// What a portal page can fail with: a redirect to sign in, or an error page.
#[derive(Debug)]
pub enum PortalError {
    /// Not signed in: off to the sign-in page, then back to `next`.
    SignIn { next: String },
    Page {
        status: StatusCode,
        title: String,
        message: String,
    },
}

pub type PortalResult<T> = Result<T, PortalError>;

impl PortalError {
    pub fn page(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Page {
            status,
            title: title.into(),
            message: message.into(),
        }
    }

    /// 404: also the answer for another partner's objects.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::page(StatusCode::NOT_FOUND, "Not found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::page(
            StatusCode::BAD_REQUEST,
            "Something in the form is wrong",
            message,
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::page(StatusCode::FORBIDDEN, "Not allowed", message)
    }

    /// The error in one sentence, for showing inside a page.
    pub fn message(&self) -> String {
        match self {
            Self::SignIn { .. } => "Sign in again.".to_owned(),
            Self::Page { title, message, .. } if message.is_empty() => title.clone(),
            Self::Page { title, message, .. } => format!("{title}: {message}"),
        }
    }
}

impl From<StoreError> for PortalError {
    fn from(error: StoreError) -> Self {
        ApiError::internal(&error).into()
    }
}

impl From<ApiError> for PortalError {
    fn from(error: ApiError) -> Self {
        let message = sentence(&error.details);
        Self::page(error.status, error.title, message)
    }
}

/// The details of an API error as a sentence for a page: what is wrong, naming the field
/// or value it is about, never the JSON itself.
pub fn sentence(details: &serde_json::Value) -> String {
    use serde_json::Value;
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    match details {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(map) if map.len() == 1 => map.values().next().map(text).unwrap_or_default(),
        Value::Object(map) => {
            let error = map.get("error").map(text);
            let subject = map
                .get("field")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    map.iter()
                        .find(|(k, v)| k.as_str() != "error" && v.is_string())
                        .map(|(k, v)| format!("{k} “{}”", text(v)))
                });
            match (subject, error) {
                (Some(subject), Some(error)) => format!("{subject}: {error}"),
                (None, Some(error)) => error,
                _ => map
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", text(v)))
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        }
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn { next } => {
                let target = format!(
                    "/portal/sign-in?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                Redirect::to(&target).into_response()
            }
            Self::Page {
                status,
                title,
                message,
            } => {
                let body = layout::bare(
                    &title,
                    html! {
                        h1 { (title) }
                        p { (message) }
                        p { a href="/portal" { "Back to the dashboard" } }
                    },
                );
                (status, body).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{from_this_site, sentence};
    use serde_json::json;

    #[test]
    fn a_refused_field_is_a_sentence_naming_it_not_json() {
        let file_name =
            json!({"file_name": "meters (1).csv", "error": "must be a name with an extension"});
        assert_eq!(
            sentence(&file_name),
            "file_name “meters (1).csv”: must be a name with an extension"
        );
        let field = json!({"field": "tags.0", "error": "must not contain ,"});
        assert_eq!(sentence(&field), "tags.0: must not contain ,");
        assert_eq!(
            sentence(&json!({"reason": "must be at most 500 characters"})),
            "must be at most 500 characters"
        );
        assert!(!sentence(&json!({"a": 1, "b": [2]})).contains('{'));
    }
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn forms_from_this_site_pass_and_forms_from_others_do_not() {
        let host = ("host", "portal.example:8080");
        assert!(from_this_site(&headers(&[host])));
        assert!(from_this_site(&headers(&[
            host,
            ("origin", "https://portal.example:8080"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!from_this_site(&headers(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(!from_this_site(&headers(&[host, ("origin", "null")])));
        assert!(!from_this_site(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
    }
}
