//! `GET /v1.1/events`: the partner's events in commit order, for a partner that rebuilds
//! its state without webhooks (or after its receiver was down).

use axum::Json;
use axum::extract::{RawQuery, State};
use gridroll_domain::timestamp::format_millis;
use gridroll_domain::webhook::EventType;
use gridroll_store::{EventTypes, StoredEvent};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::cursor::{self, Listing};
use crate::error::{ApiError, ApiResult};
use crate::listing::{decode_token, page_size};

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;

/// The feed's query: where to start, which types, how many.
#[derive(Debug, Default)]
struct FeedQuery {
    after: Option<String>,
    types: EventTypes,
    page_size: Option<String>,
}

impl FeedQuery {
    fn parse(raw: Option<&str>) -> ApiResult<Self> {
        let mut query = Self::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "after" => query.after = Some(value.into_owned()),
                "page_size" => query.page_size = Some(value.into_owned()),
                "event_types" => {
                    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        let t = name.parse::<EventType>().map_err(|_| {
                            ApiError::bad_request(
                                "Invalid event_types",
                                json!({"event_types": gridroll_domain::suggest::clip(name),
                                       "known": EventType::ALL.map(EventType::as_str)}),
                            )
                        })?;
                        query.types = query.types.with(t);
                    }
                }
                other => {
                    return Err(ApiError::bad_request(
                        "Unknown query parameter",
                        json!({"parameter": gridroll_domain::suggest::clip(other),
                               "known": ["after", "event_types", "page_size"]}),
                    ));
                }
            }
        }
        Ok(query)
    }
}

fn event_body(partner_event: &StoredEvent) -> ApiResult<Value> {
    // Stored as the JSON text the change wrote; it goes out as it is.
    let payload =
        RawValue::from_string(partner_event.payload.clone()).map_err(|e| ApiError::internal(&e))?;
    Ok(json!({
        "webhook_event_id": partner_event.id,
        "created_at": format_millis(partner_event.created_at),
        "payload": payload,
    }))
}

/// `GET /v1.1/events?after=CURSOR&event_types=...&page_size=...`: oldest first. The
/// answer's `next_cursor` continues where it ended, also once nothing follows yet: a
/// partner keeps it and asks again later. A page may hold fewer events than asked for
/// when a filter by type passes over many; `has_more` says whether to ask at once.
pub async fn feed(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = FeedQuery::parse(raw.as_deref())?;
    let limit = match &query.page_size {
        None => DEFAULT_PAGE_SIZE,
        Some(raw) => page_size(raw.parse::<i64>().ok(), raw, MAX_PAGE_SIZE)?,
    };
    let after = match &query.after {
        None => 0,
        Some(token) => {
            let position = decode_token(token, Listing::Events, caller.partner)?;
            let bytes: [u8; 8] = position
                .try_into()
                .map_err(|_| ApiError::bad_request("Invalid after", json!({})))?;
            u64::from_be_bytes(bytes)
        }
    };
    let page = state
        .events
        .feed(caller.partner, after, query.types, limit)
        .await?;
    let events = page
        .events
        .iter()
        .map(event_body)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({
        "events": events,
        "next_cursor": cursor::encode(Listing::Events, caller.partner, &page.position.to_be_bytes()),
        "has_more": page.more,
    })))
}
