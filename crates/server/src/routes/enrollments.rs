//! Enrollments: `/v2/meters/{meter_id}/enrollments`, `/v2/meters/enrollments/search`, and
//! participation preferences.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use gridroll_domain::enrollment::{self, PreferenceChange, Schedule};
use gridroll_domain::enums::ParticipationPreference;
use gridroll_domain::lifecycle::Change;
use gridroll_domain::program::Program;
use gridroll_domain::timestamp::to_millis;
use gridroll_domain::{MeterId, PartnerId};
use gridroll_store::Meter;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::meters::search_page;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::json_body;
use crate::extract::path_id;
use crate::lifecycle::{self, LifecycleError};
use crate::wire::{MeterList, meter_enrollments};

/// The programs a partner may use, by identifier.
pub async fn catalog(state: &AppState, partner: PartnerId) -> ApiResult<HashMap<String, Program>> {
    Ok(state
        .catalog
        .partner_programs(partner, state.now_millis())
        .await?
        .into_iter()
        .map(|p| (p.identifier.clone(), p))
        .collect())
}

fn render(meter: &Meter, catalog: &HashMap<String, Program>, schedule: &Schedule) -> Value {
    let shown = enrollment::view(&meter.enrollments, catalog, &meter.abstentions, schedule);
    meter_enrollments(meter, &shown, catalog)
}

/// `GET /v2/meters/{meter_id}/enrollments`
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: MeterId = path_id(&raw, "meter_id", "Meter")?;
    let meter = state
        .meters
        .get_meter(caller.partner, id)
        .await?
        .ok_or_else(|| meter_not_found(id))?;
    let catalog = catalog(&state, caller.partner).await?;
    let schedule = Schedule::new(catalog.values(), state.clock.now());
    Ok(Json(render(&meter, &catalog, &schedule)))
}

/// A meter's `MeterEnrollmentResponse`, for the answers of changes to one meter.
pub async fn enrollment_body(
    state: &AppState,
    partner: PartnerId,
    id: MeterId,
) -> ApiResult<Value> {
    let meter = state
        .meters
        .get_meter(partner, id)
        .await?
        .ok_or_else(|| meter_not_found(id))?;
    let catalog = catalog(state, partner).await?;
    let schedule = Schedule::new(catalog.values(), state.clock.now());
    Ok(render(&meter, &catalog, &schedule))
}

fn meter_not_found(id: MeterId) -> ApiError {
    ApiError::not_found("Meter not found", json!({"meter_id": id}))
}

/// `POST /v2/meters/enrollments/search`
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<MeterList>> {
    let (meters, next_page_token) = search_page(&state, caller.partner, &headers, body).await?;
    let catalog = catalog(&state, caller.partner).await?;
    let schedule = Schedule::new(catalog.values(), state.clock.now());
    Ok(Json(MeterList {
        meters: meters
            .iter()
            .map(|m| render(m, &catalog, &schedule))
            .collect(),
        next_page_token,
    }))
}

/// A participation change, for one meter or (with `meter_ids`) several.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipationRequest {
    participation_preference: ParticipationPreference,
    start_time: String,
    end_time: Option<String>,
    reason: Option<String>,
    meter_ids: Option<Vec<String>>,
}

impl ParticipationRequest {
    fn change(&self) -> ApiResult<PreferenceChange> {
        let instant = |name: &str, text: &str| {
            OffsetDateTime::parse(text, &Rfc3339).map(to_millis).map_err(|_| {
                ApiError::bad_request(
                    format!("Invalid {name}"),
                    json!({name: text, "error": "must be an RFC 3339 date-time such as 2027-06-01T00:00:00Z"}),
                )
            })
        };
        let change = PreferenceChange {
            preference: self.participation_preference,
            start: instant("start_time", &self.start_time)?,
            end: self
                .end_time
                .as_deref()
                .map(|t| instant("end_time", t))
                .transpose()?,
            reason: self.reason.clone().filter(|r| !r.trim().is_empty()),
        };
        if change
            .reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > 500)
        {
            return Err(ApiError::bad_request(
                "Invalid reason",
                json!({"reason": "must be at most 500 characters"}),
            ));
        }
        if let Some(c) = change
            .reason
            .as_deref()
            .and_then(gridroll_domain::text::control_character)
        {
            return Err(ApiError::bad_request(
                "Invalid reason",
                json!({"reason": gridroll_domain::text::control_character_message(c)}),
            ));
        }
        // Checked here so that a refusal names the problem before anything is touched.
        enrollment::apply_preference(&mut Vec::new(), change.clone()).map_err(|e| {
            ApiError::bad_request(
                "Invalid participation preference",
                json!({"error": e.to_string()}),
            )
        })?;
        Ok(change)
    }
}

async fn read_request(headers: &HeaderMap, body: Body) -> ApiResult<ParticipationRequest> {
    json_body(headers, body, 1024 * 1024, "participation request").await
}

/// `POST /v2/meters/{meter_id}/participation`
pub async fn participation(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let id: MeterId = path_id(&raw, "meter_id", "Meter")?;
    let request = read_request(&headers, body).await?;
    if request.meter_ids.is_some() {
        return Err(ApiError::bad_request(
            "meter_ids belongs to the bulk form",
            json!({"error": "use POST /v2/meters/participation to change several meters"}),
        ));
    }
    let change = Change::Preference(request.change()?);
    match lifecycle::change_each(&state, caller.partner, &[id], change).await {
        Err(LifecycleError::NotFound(_)) => return Err(meter_not_found(id)),
        changed => changed?,
    };
    Ok(Json(enrollment_body(&state, caller.partner, id).await?))
}

/// `POST /v2/meters/participation`: the same change for up to 1,000 meters, all or none.
pub async fn participation_bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let request = read_request(&headers, body).await?;
    let change = request.change()?;
    let raw_ids = request.meter_ids.unwrap_or_default();
    if raw_ids.is_empty() || raw_ids.len() > 1000 {
        return Err(ApiError::bad_request(
            "Invalid meter_ids",
            json!({"meter_ids": format!("must list from 1 to 1000 meters, not {}", raw_ids.len())}),
        ));
    }
    let mut ids = raw_ids
        .iter()
        .map(|id| path_id::<MeterId>(id, "meter_id", "Meter"))
        .collect::<ApiResult<Vec<_>>>()?;
    ids.sort();
    ids.dedup();
    match lifecycle::change_each(&state, caller.partner, &ids, Change::Preference(change)).await {
        Err(LifecycleError::NotFound(missing)) => {
            return Err(ApiError::not_found(
                "Meters not found; nothing was changed",
                json!({"meter_ids": missing}),
            ));
        }
        changed => changed?,
    };
    Ok(Json(json!({"updated": ids.len(), "meter_ids": ids})))
}
