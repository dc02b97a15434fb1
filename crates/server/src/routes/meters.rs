//! `/v1.1/meters` (one meter, synchronously) and `/v2/meters/{meter_id}`.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use gridroll_domain::MeterId;
use gridroll_domain::intake::{Problem, Problems};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Query, path_id};
use crate::upload;
use crate::wire::{ProvisionalAssetBody, meter_details};

/// Bodies of single-meter requests are small; anything larger is a mistake.
const SINGLE_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    #[serde(default)]
    update_existing: bool,
}

/// `POST /v1.1/meters`
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<CreateParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ProvisionalAssetBody>> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Type",
            json!({"supported": ["application/json"]}),
        ));
    }
    let bytes = to_bytes(body, SINGLE_BODY_LIMIT)
        .await
        .map_err(|_| ApiError::payload_too_large(SINGLE_BODY_LIMIT as u64))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::invalid_assets(Problems::single(Problem::general(format!(
            "the body is not valid JSON: {e}"
        ))))
    })?;
    let asset =
        upload::create_single(&state, caller.partner, value, params.update_existing).await?;
    Ok(Json(asset.into()))
}

/// `GET /v2/meters/{meter_id}`
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: MeterId = path_id(&raw, "meter_id", "Meter")?;
    let meter = state
        .store
        .get_meter(caller.partner, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Meter not found", json!({"meter_id": id})))?;
    Ok(Json(meter_details(meter)))
}
