//! Keeping meters in order: tags (`/v1.1/meters/tags`), partner references
//! (`/v1.1/meters/{meter_id}/partner_meter_ref`, `/v1.1/meters/partner_meter_ref`) and
//! archiving (`/v1.1/meters/archive`, `/v1.1/meters/unarchive`). Each request is all or
//! nothing.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gridroll_domain::MeterId;
use gridroll_domain::lifecycle::{Change, PartnerReference, Refusal, Tag};
use gridroll_store::{Applied, MeterEdit, Unknown};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{json_body, path_id};
use crate::lifecycle::{self, LifecycleError, meter_ids};

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        let message = e.to_string();
        match e {
            LifecycleError::Invalid { field, message } => ApiError::bad_request(
                format!("Invalid {}", field.split('.').next().unwrap_or(&field)),
                json!({"field": field, "error": message}),
            ),
            LifecycleError::NotFound(ids) => ApiError::not_found(
                if ids.len() == 1 {
                    "Meter not found; nothing was changed"
                } else {
                    "Meters not found; nothing was changed"
                },
                json!({"meter_ids": ids, "error": message}),
            ),
            LifecycleError::Refused(refusals) => {
                let status = refusals
                    .first()
                    .map_or(StatusCode::CONFLICT, |(_, r)| refusal_status(r));
                ApiError::new(
                    status,
                    "The meters cannot take the change; nothing was changed",
                    json!({"error": message, "meters": refusals.iter().map(|(id, r)| {
                        json!({"meter_id": id, "error": r.to_string()})
                    }).collect::<Vec<_>>()}),
                )
            }
            LifecycleError::ReferenceTaken(taken) => ApiError::new(
                StatusCode::CONFLICT,
                "A reference is another meter's; nothing was changed",
                json!({"error": message, "meters": taken.iter().map(|t| json!({
                    "meter_id": t.meter,
                    "partner_reference": t.reference,
                    "held_by_meter_id": t.held_by,
                })).collect::<Vec<_>>()}),
            ),
            LifecycleError::Store(e) => e.into(),
        }
    }
}

/// The status a meter's refusal answers: a period that is not there is Leap's 404, a
/// meter in the wrong state a conflict, and a request the meter cannot take a 400.
fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::NoSuchIdlePeriod(_) => StatusCode::NOT_FOUND,
        Refusal::AlreadyArchived | Refusal::NotArchived | Refusal::Archived => StatusCode::CONFLICT,
        Refusal::TooManyTags { .. }
        | Refusal::TooManyPeriods { .. }
        | Refusal::DisenrollNotInFuture { .. }
        | Refusal::RegistrationNotApplicable { .. } => StatusCode::BAD_REQUEST,
    }
}

/// The most a request of this module may hold: 1,000 meters with their references.
const BODY_LIMIT: usize = 1024 * 1024;

/// What a change of many meters did.
pub fn summary(applied: &Applied) -> Value {
    json!({
        "updated": applied.changed.len(),
        "meter_ids": applied.changed,
        "unchanged_meter_ids": applied.unchanged,
        "not_found_meter_ids": applied.unknown,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsRequest {
    meter_ids: Vec<String>,
    tags: Vec<String>,
}

impl TagsRequest {
    fn parse(self) -> Result<(Vec<MeterId>, Vec<Tag>), LifecycleError> {
        let ids = meter_ids("meter_ids", &self.meter_ids)?;
        if self.tags.is_empty() || self.tags.len() > gridroll_domain::schema::MAX_TAGS {
            return Err(LifecycleError::invalid(
                "tags",
                format!(
                    "must list from 1 to {} tags, not {}",
                    gridroll_domain::schema::MAX_TAGS,
                    self.tags.len()
                ),
            ));
        }
        let tags = self
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Tag::parse(t).map_err(|e| LifecycleError::invalid(format!("tags.{i}"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((ids, tags))
    }
}

async fn tags(
    state: &AppState,
    caller: Caller,
    headers: &HeaderMap,
    body: Body,
    add: bool,
) -> ApiResult<Json<Value>> {
    let request: TagsRequest = json_body(headers, body, BODY_LIMIT, "tags request").await?;
    let (ids, tags) = request.parse()?;
    let change = if add {
        Change::AddTags(tags)
    } else {
        Change::RemoveTags(tags)
    };
    let applied = lifecycle::change_each(state, caller.partner, &ids, change).await?;
    Ok(Json(summary(&applied)))
}

/// `POST /v1.1/meters/tags`: adds the tags to every meter listed.
pub async fn add_tags(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    tags(&state, caller, &headers, body, true).await
}

/// `DELETE /v1.1/meters/tags`: removes the tags from every meter listed.
pub async fn remove_tags(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    tags(&state, caller, &headers, body, false).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceRequest {
    partner_reference: String,
}

fn reference(field: &str, text: &str) -> Result<PartnerReference, LifecycleError> {
    PartnerReference::parse(text).map_err(|e| LifecycleError::invalid(field, e))
}

/// `PATCH /v1.1/meters/{meter_id}/partner_meter_ref`: answers the meter's details.
pub async fn change_reference(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let id: MeterId = path_id(&raw, "meter_id", "Meter")?;
    let request: ReferenceRequest =
        json_body(&headers, body, BODY_LIMIT, "reference request").await?;
    let change = Change::Reference(reference("partner_reference", &request.partner_reference)?);
    lifecycle::change_each(&state, caller.partner, &[id], change).await?;
    super::meters::details(&state, caller.partner, id).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferencesRequest {
    meters: Vec<MeterReference>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeterReference {
    meter_id: String,
    partner_reference: String,
}

/// `PATCH /v1.1/meters/partner_meter_ref`: a reference for each meter listed, all or
/// none; two meters may swap theirs.
pub async fn change_references(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let request: ReferencesRequest =
        json_body(&headers, body, BODY_LIMIT, "references request").await?;
    let raw: Vec<String> = request.meters.iter().map(|m| m.meter_id.clone()).collect();
    let ids = meter_ids("meters", &raw)?;
    if ids.len() != raw.len() {
        return Err(LifecycleError::invalid("meters", "lists a meter more than once").into());
    }
    let edits = request
        .meters
        .iter()
        .zip(ids)
        .enumerate()
        .map(|(i, (m, meter))| {
            let field = format!("meters.{i}.partner_reference");
            Ok(MeterEdit {
                meter,
                change: Change::Reference(reference(&field, &m.partner_reference)?),
            })
        })
        .collect::<Result<Vec<_>, LifecycleError>>()?;
    let applied = lifecycle::change(&state, caller.partner, edits, Unknown::Refuse).await?;
    Ok(Json(summary(&applied)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetersRequest {
    meter_ids: Vec<String>,
}

async fn archiving(
    state: &AppState,
    caller: Caller,
    headers: &HeaderMap,
    body: Body,
    change: Change,
) -> ApiResult<Json<Value>> {
    let request: MetersRequest = json_body(headers, body, BODY_LIMIT, "archive request").await?;
    let ids = meter_ids("meter_ids", &request.meter_ids)?;
    let applied = lifecycle::change_each(state, caller.partner, &ids, change).await?;
    Ok(Json(summary(&applied)))
}

/// `POST /v1.1/meters/archive`
pub async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    archiving(&state, caller, &headers, body, Change::Archive).await
}

/// `POST /v1.1/meters/unarchive`
pub async fn unarchive(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    archiving(&state, caller, &headers, body, Change::Unarchive).await
}
