//! Webhook subscriptions, as Leap's `webhooks.v1.1.yml` defines them, with Gridroll's
//! delivery log, redelivery, recovery and secret rotation.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use gridroll_domain::timestamp::{format_millis, to_millis};
use gridroll_domain::webhook::SubscriptionRequest;
use gridroll_domain::{EventId, WebhookId};
use gridroll_store::{LoggedAttempt, Webhook};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::AppState;
use crate::auth::Caller;
use crate::cursor::{self, Listing};
use crate::error::{ApiError, ApiResult};
use crate::extract::{json_body, path_id};
use crate::listing::ListQuery;
use crate::webhooks::service::{self, WebhookError};

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::NotFound(id) => {
                ApiError::not_found("Webhook not found", json!({"webhook_id": id}))
            }
            WebhookError::Invalid(problems) => ApiError::bad_request(
                "Invalid webhook subscription",
                json!({"problems": problems
                    .iter()
                    .map(|p| json!({"field": p.field(), "message": p.message()}))
                    .collect::<Vec<_>>()}),
            ),
            WebhookError::InvalidTest(error) => {
                ApiError::bad_request("Invalid test event", json!({"error": error}))
            }
            WebhookError::NoSuchEvent(event) => ApiError::not_found(
                "Event not found",
                json!({"webhook_event_id": event,
                       "error": "the subscription never had this event to deliver, or it is past retention"}),
            ),
            WebhookError::Store(e) => e.into(),
        }
    }
}

/// `WebhookRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookRequest {
    receiver_url: String,
    event_types: Vec<String>,
    #[serde(default)]
    headers: Vec<HeaderBody>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderBody {
    name: String,
    value: String,
}

impl WebhookRequest {
    fn into_request(self) -> SubscriptionRequest {
        SubscriptionRequest {
            receiver_url: self.receiver_url,
            event_types: self.event_types,
            headers: self
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
        }
    }
}

/// The most a webhook request's body may hold.
const BODY_LIMIT: usize = 64 * 1024;

fn webhook_id(raw: &str) -> ApiResult<WebhookId> {
    path_id(raw, "webhook_id", "Webhook")
}

/// `Webhook`, with how its deliveries are doing.
pub fn webhook_body(w: &Webhook) -> Value {
    json!({
        "webhook_id": w.id,
        "receiver_url": w.receiver_url,
        "event_types": w.event_types,
        "headers": w.headers.iter().map(|(name, value)| json!({"name": name, "value": value})).collect::<Vec<_>>(),
        "status": if w.disabled_at.is_some() { "DISABLED" } else { "ENABLED" },
        "disabled_at": w.disabled_at.map(format_millis),
        "failing_since": w.failing_since.map(format_millis),
        "created_at": format_millis(w.created_at),
        "updated_at": format_millis(w.updated_at),
    })
}

/// `GET /v1.1/webhooks`
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let webhooks = state.webhooks.list_webhooks(caller.partner).await?;
    Ok(Json(
        json!({"webhooks": webhooks.iter().map(webhook_body).collect::<Vec<_>>()}),
    ))
}

/// `POST /v1.1/webhooks`: the answer carries the signing secret, shown this once.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let request: WebhookRequest =
        json_body(&headers, body, BODY_LIMIT, "webhook subscription").await?;
    let created = service::create(&state, caller.partner, &request.into_request()).await?;
    Ok(Json(
        json!({"webhook_id": created.id, "secret": created.secret.expose_secret()}),
    ))
}

/// `GET /v1.1/webhooks/{webhook_id}`
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = webhook_id(&raw)?;
    let webhook = service::get(&state, caller.partner, id).await?;
    Ok(Json(webhook_body(&webhook)))
}

/// `PUT /v1.1/webhooks/{webhook_id}`: overwrites every setting, and enables the
/// subscription again.
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let id = webhook_id(&raw)?;
    let request: WebhookRequest =
        json_body(&headers, body, BODY_LIMIT, "webhook subscription").await?;
    service::replace(&state, caller.partner, id, &request.into_request()).await?;
    Ok(Json(json!({"webhook_id": id})))
}

/// `DELETE /v1.1/webhooks/{webhook_id}`
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = webhook_id(&raw)?;
    service::delete(&state, caller.partner, id).await?;
    Ok(Json(json!({"message": "Operation completed successfully"})))
}

/// `POST /v1.1/webhooks/{webhook_id}/enable`
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = webhook_id(&raw)?;
    service::enable(&state, caller.partner, id).await?;
    let webhook = service::get(&state, caller.partner, id).await?;
    Ok(Json(webhook_body(&webhook)))
}

/// `POST /v1.1/webhooks/{webhook_id}/rotate-secret`: the new secret, shown this once.
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = webhook_id(&raw)?;
    let secret = service::rotate(&state, caller.partner, id).await?;
    Ok(Json(
        json!({"webhook_id": id, "secret": secret.expose_secret()}),
    ))
}

/// `POST /v1.1/webhooks/{webhook_id}/test`: `TestWebhookResponse`.
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let id = webhook_id(&raw)?;
    let payload: Value = json_body(&headers, body, BODY_LIMIT, "test event").await?;
    let attempt = service::test(&state, caller.partner, id, &payload).await?;
    let mut answer = json!({"is_successful": attempt.is_success()});
    if let Some(status) = attempt.status {
        answer["status_code"] = json!(status);
        answer["response_time_ms"] = json!(attempt.latency_ms);
    }
    if let Some(error) = attempt.error {
        answer["error"] = json!(error);
    }
    Ok(Json(answer))
}

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 500;

fn logged(a: &LoggedAttempt) -> Value {
    let (delivery_status, next_attempt_at) = match &a.delivery {
        Some((status, next)) => (status.as_str(), next.map(format_millis)),
        None if a.succeeded => ("SUCCEEDED", None),
        None => ("FAILED", None),
    };
    json!({
        "webhook_event_id": a.event_id,
        "webhook_event_type": a.event_type,
        "attempt": a.attempt,
        "attempted_at": format_millis(a.attempted_at),
        "is_successful": a.succeeded,
        "status_code": a.status_code,
        "response_time_ms": a.latency_ms,
        "response": a.response,
        "error": a.error,
        "delivery_status": delivery_status,
        "next_attempt_at": next_attempt_at,
    })
}

/// `GET /v1.1/webhooks/{webhook_id}/deliveries`: every attempt, newest first.
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let id = webhook_id(&raw)?;
    let query = ListQuery::parse(query.as_deref())?;
    query.check_keys(&[])?;
    let limit = query.page_size(DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let before = match query.position(Listing::Deliveries, caller.partner)? {
        Some(position) => Some(
            uuid::Uuid::from_slice(&position)
                .map_err(|_| ApiError::bad_request("Invalid page_token", json!({})))?,
        ),
        None => None,
    };
    let mut attempts = state
        .webhooks
        .delivery_log(caller.partner, id, before, limit + 1)
        .await?
        .ok_or(WebhookError::NotFound(id))?;
    let next_page_token = if attempts.len() > limit {
        attempts.truncate(limit);
        attempts
            .last()
            .map(|a| cursor::encode(Listing::Deliveries, caller.partner, a.id.as_bytes()))
    } else {
        None
    };
    Ok(Json(json!({
        "deliveries": attempts.iter().map(logged).collect::<Vec<_>>(),
        "next_page_token": next_page_token,
    })))
}

/// `POST /v1.1/webhooks/{webhook_id}/events/{webhook_event_id}/redeliver`
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw, raw_event)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = webhook_id(&raw)?;
    let event: EventId = path_id(&raw_event, "webhook_event_id", "Event")?;
    service::redeliver(&state, caller.partner, id, event).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "The event will be sent again shortly"})),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoverRequest {
    since: String,
}

/// `POST /v1.1/webhooks/{webhook_id}/recover`: sends again every delivery that ended
/// failed since a time.
pub async fn recover(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = webhook_id(&raw)?;
    let request: RecoverRequest = json_body(&headers, body, BODY_LIMIT, "recovery request").await?;
    let since = OffsetDateTime::parse(&request.since, &Rfc3339)
        .map(to_millis)
        .map_err(|_| {
            ApiError::bad_request(
                "Invalid since",
                json!({"since": request.since,
                       "error": "must be an RFC 3339 date-time such as 2027-06-01T00:00:00Z"}),
            )
        })?;
    let (queued, more) = service::recover(&state, caller.partner, id, since).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"queued": queued, "more": more})),
    ))
}
