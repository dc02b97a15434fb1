//! `Idempotency-Key` on the partner API's changes. The first request with a key holds it
//! while it runs (renewing the hold, so that a process that dies lets go within a
//! minute), then keeps its answer for a day: a repeat (same method, path, query and body,
//! the body hashed as it streams) gets that answer again, marked `Idempotent-Replayed`;
//! another request with the key is a `422`, and a repeat while the first still runs a
//! `409`. A server fault (5xx) or an answer asking to come back later (429, 408, 409)
//! keeps nothing, so a retry runs afresh. Keys are per
//! partner. Operations that change nothing (searches, reads, dry runs) ignore the header:
//! repeating them is already safe.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use gridroll_domain::PartnerId;
use gridroll_domain::scope::Scope;
use gridroll_store::{Claim, Hold, KeptAnswer};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, scope_of};
use crate::error::ApiError;

pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long an answer is kept for repeats.
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a hold lasts without renewal, and how often a running request renews it.
const HOLD_MS: i64 = 60_000;
const RENEW_EVERY: Duration = Duration::from_secs(20);
/// The longest key accepted.
const MAX_KEY: usize = 255;
/// The largest answer kept; a larger one is answered once and not kept.
const MAX_KEPT: u64 = 1024 * 1024;
/// The answer's headers a replay repeats.
const KEPT_HEADERS: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::CACHE_CONTROL,
];

/// Whether an operation needing `scope` changes something, so that repeating it is not
/// safe without a key.
pub fn changes(scope: Scope) -> bool {
    matches!(
        scope,
        Scope::MetersWrite | Scope::EnrollmentsWrite | Scope::WebhooksManage
    )
}

/// Whether an answer is the request's last word, to be kept for repeats: not a server
/// fault, nor an answer that asks to come back later (the upload places taken, a body
/// that stopped arriving, a conflict), which a retry must get past.
fn is_final(status: StatusCode) -> bool {
    let later = [
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::REQUEST_TIMEOUT,
        StatusCode::CONFLICT,
    ];
    !status.is_server_error() && !later.contains(&status)
}

/// A key as sent: 1 to 255 visible ASCII characters.
fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let text = value.to_str().ok().filter(|key| {
        (1..=MAX_KEY).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
    });
    text.map(str::to_owned).ok_or_else(|| {
        ApiError::bad_request(
            "Invalid Idempotency-Key",
            json!({"Idempotency-Key": format!("must be 1 to {MAX_KEY} visible ASCII characters")}),
        )
    })
}

/// The partner API's layer, inside the key guard (which has put the caller in the
/// request).
pub async fn guard(
    State(state): State<AppState>,
    route: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let Some(value) = request.headers().get(&HEADER) else {
        return next.run(request).await;
    };
    let scope = route.and_then(|route| scope_of(request.method(), route.as_str()));
    let caller = request.extensions().get::<Caller>().copied();
    let (Some(caller), true) = (caller, scope.is_some_and(changes)) else {
        return next.run(request).await;
    };
    let key = match parse_key(value) {
        Ok(key) => key,
        Err(refusal) => return refusal.into_response(),
    };
    let now = state.now_millis();
    let hold = Hold {
        owner: Uuid::now_v7(),
        until: now + HOLD_MS,
    };
    let ttl = i64::try_from(TTL.as_millis()).unwrap_or(i64::MAX);
    let claim = state
        .idempotency
        .claim_key(caller.partner, &key, hold, now, now - ttl)
        .await;
    match claim {
        Err(e) => ApiError::from(e).into_response(),
        Ok(Claim::InFlight) => ApiError::new(
            StatusCode::CONFLICT,
            "A request with this Idempotency-Key is still being answered",
            json!({"idempotency_key": key, "error": "wait for its answer, then send the request again to have it replayed"}),
        )
        .into_response(),
        Ok(Claim::Answered(kept)) => replay(&state, request, &key, kept).await,
        Ok(Claim::Held) => {
            let holder = Holder {
                state: state.clone(),
                partner: caller.partner,
                key,
                owner: hold.owner,
            };
            holder.run(request, next).await
        }
    }
}

/// A request holding its key.
#[derive(Clone)]
struct Holder {
    state: AppState,
    partner: PartnerId,
    key: String,
    owner: Uuid,
}

impl Holder {
    async fn run(self, request: Request, next: Next) -> Response {
        let (parts, body) = request.into_parts();
        let tap = Tap::new(&parts, body);
        let request = Request::from_parts(parts, Body::from_stream(tap.clone()));
        // Until the answer is settled, the guard renews the hold; dropped unsettled (a
        // panic, the client gone), it stops renewing and lets the key go.
        let mut guard = HoldGuard {
            renewing: tokio::spawn(self.renew()),
            holder: Some(self.clone()),
        };
        let response = next.run(request).await;
        guard.settle();
        if !is_final(response.status()) {
            self.release().await;
            return response;
        }
        // The body's remainder is read (as a refused upload's is anyway), so that the
        // fingerprint covers all of it whatever the handler read.
        let Some(fingerprint) = tap.finish(self.state.config.max_body_bytes).await else {
            self.release().await;
            return response;
        };
        let (parts, body) = response.into_parts();
        let (answer, response) = match kept_body(body).await {
            Ok(bytes) => (
                KeptAnswer {
                    fingerprint,
                    status: parts.status.as_u16(),
                    headers: kept_headers(&parts.headers),
                    body: bytes.to_vec(),
                },
                Response::from_parts(parts, Body::from(bytes)),
            ),
            // Made, but too large to keep: repeats are told so rather than made again.
            Err(body) => (
                too_large_to_keep(fingerprint),
                Response::from_parts(parts, body),
            ),
        };
        match self
            .state
            .idempotency
            .answer_key(self.partner, &self.key, self.owner, &answer)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(key = %self.key, "an idempotency key's hold lapsed before its answer was kept")
            }
            Err(e) => tracing::warn!(error = %e, "could not keep the answer of an idempotency key"),
        }
        response
    }

    /// Renews the hold while the request runs; stopped by its caller.
    fn renew(&self) -> impl Future<Output = ()> + Send + 'static {
        let (state, partner, key, owner) = (
            self.state.clone(),
            self.partner,
            self.key.clone(),
            self.owner,
        );
        async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let hold = Hold {
                    owner,
                    until: state.now_millis() + HOLD_MS,
                };
                if let Err(e) = state.idempotency.renew_key(partner, &key, hold).await {
                    tracing::warn!(error = %e, "could not renew an idempotency key's hold");
                }
            }
        }
    }

    async fn release(&self) {
        if let Err(e) = self
            .state
            .idempotency
            .release_key(self.partner, &self.key, self.owner)
            .await
        {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
    }
}

/// Renews a hold while its request runs, and lets the key go if the request ends without
/// an answer (its future dropped by a panic or a client gone).
struct HoldGuard {
    renewing: tokio::task::JoinHandle<()>,
    holder: Option<Holder>,
}

impl HoldGuard {
    /// The request has its answer: stop renewing; the caller keeps or releases the key.
    fn settle(&mut self) {
        self.renewing.abort();
        self.holder = None;
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        self.renewing.abort();
        if let Some(holder) = self.holder.take() {
            tokio::spawn(async move { holder.release().await });
        }
    }
}

/// The answer's body whole, when it is small enough to keep; otherwise the body to send
/// on, nothing of it lost.
async fn kept_body(body: Body) -> Result<Bytes, Body> {
    let mut kept = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Err(Body::from_stream(
                futures_util::stream::iter([Ok(Bytes::from(kept))]).chain(stream),
            ));
        };
        if (kept.len() + chunk.len()) as u64 > MAX_KEPT {
            let seen = futures_util::stream::iter([Ok(Bytes::from(kept)), Ok(chunk)]);
            return Err(Body::from_stream(seen.chain(stream)));
        }
        kept.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(kept))
}

fn kept_headers(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect()
}

/// What repeats of a request whose answer was too large to keep are told.
fn too_large_to_keep(fingerprint: [u8; 32]) -> KeptAnswer {
    let body = json!({
        "title": "The request with this Idempotency-Key was made, and its answer was too large to keep",
        "status": 409,
        "details": {"error": "the change was made once; read its outcome rather than sending it again"},
    });
    KeptAnswer {
        fingerprint,
        status: 409,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: body.to_string().into_bytes(),
    }
}

/// A repeat gets the kept answer; another request with the key is refused.
async fn replay(state: &AppState, request: Request, key: &str, kept: KeptAnswer) -> Response {
    let (parts, body) = request.into_parts();
    let tap = Tap::new(&parts, body);
    let fingerprint = tap.finish(state.config.max_body_bytes).await;
    if fingerprint != Some(kept.fingerprint) {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The Idempotency-Key was used for another request",
            json!({
                "idempotency_key": key,
                "error": "a key may be used again only for the same method, path, query and body; use a new key for a new request",
            }),
        )
        .into_response();
    }
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let mut response = (status, with_this_request_id(kept.body)).into_response();
    for (name, value) in &kept.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// A kept error body names the request that first got it; its replay names this one, as
/// the answer's `x-request-id` does.
fn with_this_request_id(body: Vec<u8>) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut members)) = serde_json::from_slice(&body) else {
        return body;
    };
    let Some(id) = crate::telemetry::request_id() else {
        return body;
    };
    if !members.contains_key("request_id") {
        return body;
    }
    members.insert("request_id".to_owned(), json!(id));
    serde_json::to_vec(&members).unwrap_or(body)
}

/// A request body that hashes what it passes on, and whose unread remainder can still be
/// read (and hashed) once the handler is done with it.
#[derive(Clone)]
struct Tap(Arc<Mutex<Tapped>>);

struct Tapped {
    rest: Option<BodyDataStream>,
    hasher: Sha256,
    read: u64,
    ended: bool,
    /// The body failed part-way (stalled, cut off, bad gzip): what was read is not all.
    failed: bool,
}

impl Tap {
    /// Starts the fingerprint with the request's method, path and query.
    fn new(parts: &axum::http::request::Parts, body: Body) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(parts.method.as_str().as_bytes());
        hasher.update(b" ");
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        hasher.update(target.as_bytes());
        hasher.update(b"\n");
        Self(Arc::new(Mutex::new(Tapped {
            rest: Some(body.into_data_stream()),
            hasher,
            read: 0,
            ended: false,
            failed: false,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tapped> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads what is left of the body; answers the fingerprint, or `None` when the body
    /// failed or grew past `limit` bytes.
    async fn finish(&self, limit: u64) -> Option<[u8; 32]> {
        let rest = self.lock().rest.take();
        if let Some(mut rest) = rest {
            while let Some(chunk) = rest.next().await {
                let Ok(chunk) = chunk else {
                    self.lock().failed = true;
                    return None;
                };
                let mut tapped = self.lock();
                tapped.read += chunk.len() as u64;
                if tapped.read > limit {
                    return None;
                }
                tapped.hasher.update(&chunk);
            }
            self.lock().ended = true;
        }
        let tapped = self.lock();
        (tapped.ended && !tapped.failed).then(|| tapped.hasher.clone().finalize().into())
    }
}

impl Stream for Tap {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut tapped = self.lock();
        let Some(rest) = tapped.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match rest.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                tapped.read += chunk.len() as u64;
                tapped.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                tapped.ended = true;
                tapped.rest = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                tapped.failed = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        for kept in ["a", "retry-7f3c_2026.12.04", &"k".repeat(MAX_KEY)] {
            assert_eq!(
                parse_key(&HeaderValue::from_str(kept).unwrap()).unwrap(),
                kept
            );
        }
        for refused in ["", "two words", &"k".repeat(MAX_KEY + 1)] {
            let error = parse_key(&HeaderValue::from_str(refused).unwrap()).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert!(error.details.get("Idempotency-Key").is_some());
        }
        let binary = HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
        assert!(parse_key(&binary).is_err());
    }

    #[test]
    fn answers_that_ask_to_come_back_later_are_not_kept() {
        for kept in [200, 201, 400, 404, 413, 415, 422] {
            assert!(is_final(StatusCode::from_u16(kept).unwrap()), "{kept}");
        }
        for passed in [408, 409, 429, 500, 503, 507] {
            assert!(!is_final(StatusCode::from_u16(passed).unwrap()), "{passed}");
        }
    }

    #[tokio::test]
    async fn a_fingerprint_covers_the_target_and_the_whole_body_read_or_not() {
        let request = |uri: &str, body: &'static str| {
            Request::post(uri)
                .body(Body::from(body))
                .unwrap()
                .into_parts()
        };
        let fingerprint = |uri: &'static str, body: &'static str| async move {
            let (parts, body) = request(uri, body);
            Tap::new(&parts, body).finish(1024).await
        };
        let first = fingerprint("/v1.1/jobs/meters?update_existing=true", "abc").await;
        assert!(first.is_some());
        assert_eq!(
            first,
            fingerprint("/v1.1/jobs/meters?update_existing=true", "abc").await
        );
        assert_ne!(first, fingerprint("/v1.1/jobs/meters", "abc").await);
        assert_ne!(
            first,
            fingerprint("/v1.1/jobs/meters?update_existing=true", "abd").await
        );

        // Half read by a handler, the rest read after: the same fingerprint.
        let (parts, body) = request("/v1.1/jobs/meters?update_existing=true", "abc");
        let tap = Tap::new(&parts, body);
        let mut passed = Body::from_stream(tap.clone()).into_data_stream();
        assert_eq!(passed.next().await.unwrap().unwrap(), "abc");
        drop(passed);
        assert_eq!(tap.finish(1024).await, first);

        let (parts, body) = request("/v1.1/meters", "too long");
        assert_eq!(Tap::new(&parts, body).finish(3).await, None);
    }
}
