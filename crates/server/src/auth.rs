//! API keys: issued once in clear, stored as a SHA-256 hash, presented as
//! `Authorization: Bearer <key>`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gridroll_domain::scope::{Scope, Scopes};
use gridroll_domain::{ApiKeyId, PartnerId};
use gridroll_store::{AccountStore, ApiKeyHash, KEY_PREFIX_LEN, KeyGrant};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Every key starts with this, so that a leaked key is easy to recognise and scan for.
const KEY_PREFIX: &str = "grk_";

/// Creates a new key for a partner at `now` and returns its id and the key in clear;
/// only its hash is stored.
pub async fn issue_api_key(
    accounts: &dyn AccountStore,
    partner: PartnerId,
    name: &str,
    scopes: Scopes,
    now: i64,
) -> Result<(ApiKeyId, String), gridroll_store::StoreError> {
    let key = format!("{KEY_PREFIX}{}", random_token());
    let id = accounts
        .add_api_key(
            partner,
            name,
            scopes,
            &hash_key(&key),
            &key[..KEY_PREFIX_LEN],
            now,
        )
        .await?;
    Ok((id, key))
}

/// 32 random bytes, URL-safe base64: for keys, session tokens and invitation links.
pub fn random_token() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    URL_SAFE_NO_PAD.encode(secret)
}

pub fn hash_key(key: &str) -> ApiKeyHash {
    ApiKeyHash(sha256(key))
}

/// SHA-256 of a secret handed out once (an API key, a session or invitation token, the
/// operator token): they are random and long, so a fast hash is safe.
pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Keys seen recently and what they grant, so that a busy client's requests do not each
/// query (and note the key's use). An entry lives a minute: a key revoked through another
/// process stops working within that; this process forgets its cache on a revocation.
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<[u8; 32], (KeyGrant, Instant)>>,
}

const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
const KEY_CACHE_SIZE: usize = 10_000;

impl KeyCache {
    fn get(&self, hash: &ApiKeyHash) -> Option<KeyGrant> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&hash.0)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(grant, _)| *grant)
    }

    fn put(&self, hash: &ApiKeyHash, grant: KeyGrant) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= KEY_CACHE_SIZE {
            entries.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
            if entries.len() >= KEY_CACHE_SIZE {
                entries.clear();
            }
        }
        entries.insert(hash.0, (grant, Instant::now()));
    }

    /// Forgets every key, e.g. after one was revoked.
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The partner on whose behalf a request is made, and what its key may do. Put in the
/// request by [`guard`], which has checked the operation's scope.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub partner: PartnerId,
    pub scopes: Scopes,
}

impl From<KeyGrant> for Caller {
    fn from(grant: KeyGrant) -> Self {
        Self {
            partner: grant.partner,
            scopes: grant.scopes,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        // Only an operation with a declared scope has a caller: one added to the partner
        // API without a line in `OPERATIONS` fails closed.
        parts.extensions.get::<Caller>().copied().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a partner operation has no declared scope");
            ApiError::forbidden_scope(None)
        })
    }
}

/// Every operation of the partner API, by method and route, with the scope its key
/// needs. The router's guard and the OpenAPI document both read it.
pub const OPERATIONS: &[(&str, &str, Scope)] = &[
    ("GET", "/v1.1/jobs/meters", Scope::MetersRead),
    ("POST", "/v1.1/jobs/meters", Scope::MetersWrite),
    ("GET", "/v1.1/jobs/meters/{job_id}", Scope::MetersRead),
    ("GET", "/v1.1/jobs/meter-job-filters", Scope::MetersRead),
    ("GET", "/v1.1/provisional-assets", Scope::MetersRead),
    ("GET", "/v1.1/provisional-assets-filters", Scope::MetersRead),
    ("POST", "/v2/meters/search", Scope::MetersRead),
    ("POST", "/v1.1/meters", Scope::MetersWrite),
    ("GET", "/v2/meters/{meter_id}", Scope::MetersRead),
    (
        "GET",
        "/v2/meters/{meter_id}/enrollments",
        Scope::MetersRead,
    ),
    ("POST", "/v2/meters/enrollments/search", Scope::MetersRead),
    (
        "POST",
        "/v2/meters/{meter_id}/participation",
        Scope::EnrollmentsWrite,
    ),
    ("POST", "/v2/meters/participation", Scope::EnrollmentsWrite),
    ("POST", "/v1.1/meters/tags", Scope::MetersWrite),
    ("DELETE", "/v1.1/meters/tags", Scope::MetersWrite),
    (
        "PATCH",
        "/v1.1/meters/{meter_id}/partner_meter_ref",
        Scope::MetersWrite,
    ),
    (
        "PATCH",
        "/v1.1/meters/partner_meter_ref",
        Scope::MetersWrite,
    ),
    ("POST", "/v1.1/meters/archive", Scope::MetersWrite),
    ("POST", "/v1.1/meters/unarchive", Scope::MetersWrite),
    (
        "GET",
        "/v1.1/enrollment/meters/{meter_id}/idle_periods",
        Scope::MetersRead,
    ),
    (
        "POST",
        "/v1.1/enrollment/meters/{meter_id}/idle_periods",
        Scope::EnrollmentsWrite,
    ),
    (
        "DELETE",
        "/v1.1/enrollment/meters/{meter_id}/idle_periods",
        Scope::EnrollmentsWrite,
    ),
    (
        "GET",
        "/v1.1/enrollment/meters/idle_periods",
        Scope::MetersRead,
    ),
    (
        "POST",
        "/v1.1/enrollment/meters/idle_periods",
        Scope::EnrollmentsWrite,
    ),
    (
        "DELETE",
        "/v1.1/enrollment/meters/idle_periods",
        Scope::EnrollmentsWrite,
    ),
    (
        "POST",
        "/v1.1/enrollment/meters/{meter_id}/disenrollment_requests",
        Scope::EnrollmentsWrite,
    ),
    (
        "POST",
        "/v1.1/enrollment/meters/disenrollment_requests",
        Scope::EnrollmentsWrite,
    ),
    (
        "POST",
        "/v1.1/enrollment/meters/{meter_id}/participate",
        Scope::EnrollmentsWrite,
    ),
    (
        "POST",
        "/v1.1/enrollment/meters/participate",
        Scope::EnrollmentsWrite,
    ),
    (
        "POST",
        "/v1.1/enrollment/meters/{meter_id}/market_registration_refresh",
        Scope::EnrollmentsWrite,
    ),
    ("GET", "/v1.1/programs", Scope::MetersRead),
    (
        "GET",
        "/v1.1/programs/{program_identifier}",
        Scope::MetersRead,
    ),
    (
        "GET",
        "/v1.1/programs/{program_identifier}/template",
        Scope::MetersRead,
    ),
    ("POST", "/v1.1/meters/validate", Scope::MetersRead),
    ("GET", "/v1.1/webhooks", Scope::WebhooksRead),
    ("POST", "/v1.1/webhooks", Scope::WebhooksManage),
    ("GET", "/v1.1/webhooks/{webhook_id}", Scope::WebhooksRead),
    ("PUT", "/v1.1/webhooks/{webhook_id}", Scope::WebhooksManage),
    (
        "DELETE",
        "/v1.1/webhooks/{webhook_id}",
        Scope::WebhooksManage,
    ),
    (
        "POST",
        "/v1.1/webhooks/{webhook_id}/test",
        Scope::WebhooksManage,
    ),
    (
        "POST",
        "/v1.1/webhooks/{webhook_id}/rotate-secret",
        Scope::WebhooksManage,
    ),
    (
        "POST",
        "/v1.1/webhooks/{webhook_id}/enable",
        Scope::WebhooksManage,
    ),
    (
        "GET",
        "/v1.1/webhooks/{webhook_id}/deliveries",
        Scope::WebhooksRead,
    ),
    (
        "POST",
        "/v1.1/webhooks/{webhook_id}/events/{webhook_event_id}/redeliver",
        Scope::WebhooksManage,
    ),
    (
        "POST",
        "/v1.1/webhooks/{webhook_id}/recover",
        Scope::WebhooksManage,
    ),
    ("GET", "/v1.1/events", Scope::EventsRead),
];

/// The scope an operation needs; `None` for a method the route does not serve (the
/// router answers those with its 405). `HEAD` is served as `GET`.
pub fn scope_of(method: &Method, route: &str) -> Option<Scope> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    OPERATIONS
        .iter()
        .find(|(m, r, _)| *m == method && *r == route)
        .map(|(_, _, scope)| *scope)
}

/// The partner API's gate, before any of the request's body is read: the key must be
/// valid (401), within its rate limit (429) and hold the operation's scope (403 naming
/// it). The caller it admits is left in the request for the handler; every answer to a
/// key carries its rate-limit headers.
pub async fn guard(
    State(state): State<AppState>,
    route: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let scope = route.and_then(|route| scope_of(request.method(), route.as_str()));
    let Some(scope) = scope else {
        return next.run(request).await;
    };
    let (caller, hash) = match authenticate(&state, request.headers()).await {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let standing = state.rate_limits.check(&hash.0, state.now_millis());
    let mut response = if !standing.allowed {
        standing.refusal().into_response()
    } else if !caller.scopes.contains(scope) {
        ApiError::forbidden_scope(Some(scope)).into_response()
    } else {
        request.extensions_mut().insert(caller);
        next.run(request).await
    };
    response.headers_mut().extend(standing.headers());
    // For the access log, which runs outside the router.
    response.extensions_mut().insert(caller.partner);
    response
}

/// The caller a request's `Authorization: Bearer <key>` names, and the key's hash.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Caller, ApiKeyHash), ApiError> {
    let key = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
        .filter(|key| !key.is_empty())
        .ok_or_else(ApiError::unauthorized)?;
    let hash = hash_key(key);
    if let Some(grant) = state.keys.get(&hash) {
        return Ok((grant.into(), hash));
    }
    let grant = state
        .accounts
        .use_api_key(&hash, state.now_millis())
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    state.keys.put(&hash, grant);
    Ok((grant.into(), hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_is_stable_and_distinguishes_keys() {
        assert_eq!(hash_key("grk_a"), hash_key("grk_a"));
        assert_ne!(hash_key("grk_a"), hash_key("grk_b"));
    }

    #[test]
    fn every_operation_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for (method, route, _) in OPERATIONS {
            assert!(seen.insert((method, route)), "{method} {route} twice");
        }
    }

    #[test]
    fn a_head_request_needs_what_its_get_needs() {
        assert_eq!(
            scope_of(&Method::HEAD, "/v1.1/events"),
            Some(Scope::EventsRead)
        );
        assert_eq!(scope_of(&Method::DELETE, "/v1.1/events"), None);
    }
}
