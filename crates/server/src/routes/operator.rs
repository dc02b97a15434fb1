//! The operator API under `/operator/v1`: the program catalog, which programs a partner
//! may use, enrollment activation, and imports of meters from other channels. Requests
//! carry the operator token (`--operator-token`) as a bearer token; without a configured
//! token the operator API is closed.

use std::ops::ControlFlow;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::intake::{self, Format, IntakeError};
use gridroll_domain::program::Program;
use gridroll_domain::scope::{KeyName, Scopes};
use gridroll_domain::{MeterId, PartnerId};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::path_id;
use crate::extract::{is_json, json_body, unsupported_media_type};

/// A request made with the operator token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = &state.config.operator_token_hash else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "The operator API is closed",
                json!({"error": "start the server with --operator-token to open it"}),
            ));
        };
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| Sha256::digest(token.trim().as_bytes()));
        // Comparing hashes keeps the comparison's time independent of the token.
        match presented {
            Some(hash) if hash.as_slice() == expected.as_slice() => Ok(Self),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// `GET /operator/v1/programs`: every program, retired ones included.
pub async fn programs(State(state): State<AppState>, _: Operator) -> ApiResult<Json<Value>> {
    let entries = state.catalog.list_programs().await?;
    Ok(Json(json!({
        "programs": entries.iter().map(|e| json!({
            "definition": e.program,
            "retired": e.retired,
        })).collect::<Vec<_>>()
    })))
}

/// `PUT /operator/v1/programs/{identifier}`: adds or changes a program.
pub async fn put_program(
    State(state): State<AppState>,
    _: Operator,
    Path(identifier): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let program: Program = json_body(&headers, body, 256 * 1024, "request body").await?;
    if program.identifier != identifier {
        return Err(ApiError::bad_request(
            "The identifier in the body differs from the path",
            json!({"path": identifier, "body": program.identifier}),
        ));
    }
    program
        .check()
        .map_err(|e| ApiError::bad_request("Invalid program", json!({"error": e})))?;
    state
        .catalog
        .put_program(&program, state.now_millis())
        .await?;
    Ok(Json(json!({"definition": program, "retired": false})))
}

/// `DELETE /operator/v1/programs/{identifier}`: retires a program.
pub async fn retire_program(
    State(state): State<AppState>,
    _: Operator,
    Path(identifier): Path<String>,
) -> ApiResult<StatusCode> {
    if state
        .catalog
        .retire_program(&identifier, state.now_millis())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "Program not found",
            json!({"program_identifier": identifier}),
        ))
    }
}

async fn partner(state: &AppState, raw: &str) -> ApiResult<PartnerId> {
    let id: PartnerId = path_id(raw, "partner_id", "Partner")?;
    match state.accounts.get_partner(id).await? {
        Some(_) => Ok(id),
        None => Err(ApiError::not_found(
            "Partner not found",
            json!({"partner_id": id}),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerPrograms {
    /// `null`: every program.
    programs: Option<Vec<String>>,
}

/// `PUT /operator/v1/partners/{partner_id}/programs`
pub async fn set_partner_programs(
    State(state): State<AppState>,
    _: Operator,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let partner: PartnerId = path_id(&raw, "partner_id", "Partner")?;
    let request: PartnerPrograms = json_body(&headers, body, 64 * 1024, "request body").await?;
    state
        .catalog
        .set_partner_programs(partner, request.programs.as_deref())
        .await?;
    let now_enabled = state
        .catalog
        .partner_programs(partner, state.now_millis())
        .await?;
    Ok(Json(json!({
        "partner_id": partner,
        "programs": now_enabled.iter().map(|p| &p.identifier).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
    /// Scope names; without them, every scope.
    scopes: Option<Vec<String>>,
}

/// `POST /operator/v1/partners/{partner_id}/keys`: a new API key for the partner, shown
/// this once.
pub async fn create_key(
    State(state): State<AppState>,
    _: Operator,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let partner = partner(&state, &raw).await?;
    let request: NewKey = json_body(&headers, body, 64 * 1024, "request body").await?;
    let name = KeyName::parse(&request.name)
        .map_err(|e| ApiError::bad_request("Invalid key name", json!({"name": e.to_string()})))?;
    let scopes = match &request.scopes {
        None => Scopes::ALL,
        Some(names) => Scopes::from_names(names.iter().map(String::as_str)).map_err(|e| {
            ApiError::bad_request("Invalid scopes", json!({"scopes": e.to_string()}))
        })?,
    };
    let (id, key) = crate::auth::issue_api_key(
        state.accounts.as_ref(),
        partner,
        name.as_str(),
        scopes,
        state.now_millis(),
    )
    .await?;
    tracing::info!(%partner, key = %id, "an API key was created through the operator API");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "key_id": id,
            "partner_id": partner,
            "name": name.as_str(),
            "scopes": scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "api_key": key,
        })),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    program: String,
    /// None: every PENDING meter of the partner in the program.
    meter_ids: Option<Vec<String>>,
}

/// `POST /operator/v1/partners/{partner_id}/enrollments/activate`: PENDING → ACTIVE.
pub async fn activate(
    State(state): State<AppState>,
    _: Operator,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let partner = partner(&state, &raw).await?;
    let request: Activation = json_body(&headers, body, 1024 * 1024, "request body").await?;
    let activated = match &request.meter_ids {
        None => {
            state
                .catalog
                .activate_enrollments(partner, &request.program, None, state.now_millis())
                .await?
        }
        Some(ids) => {
            let mut total = 0;
            for raw in ids {
                let id: MeterId = path_id(raw, "meter_id", "Meter")?;
                total += state
                    .catalog
                    .activate_enrollments(partner, &request.program, Some(id), state.now_millis())
                    .await?;
            }
            total
        }
    };
    Ok(Json(
        json!({"program": request.program, "activated": activated}),
    ))
}

/// `POST /operator/v1/partners/{partner_id}/enrollments/refresh`: evaluates every meter of
/// the partner again, after the catalog changed.
pub async fn refresh(
    State(state): State<AppState>,
    _: Operator,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let partner = partner(&state, &raw).await?;
    let changed = state
        .catalog
        .refresh_enrollments(partner, state.now_millis())
        .await?;
    Ok(Json(json!({"changed": changed})))
}

/// `POST /operator/v1/partners/{partner_id}/meters/import`: meters from other channels
/// (utility authorizations), which may share a `partner_reference`.
pub async fn import(
    State(state): State<AppState>,
    _: Operator,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let partner = partner(&state, &raw).await?;
    if !is_json(&headers) {
        return Err(unsupported_media_type());
    }
    let limit = state.config.max_body_bytes;
    let bytes = crate::body::read_small(body, usize::try_from(limit).unwrap_or(usize::MAX)).await?;
    let meters = tokio::task::spawn_blocking(move || {
        let mut meters = Vec::new();
        intake::read_assets(Format::Json, bytes.as_ref(), &mut |data| {
            meters.push(data);
            ControlFlow::Continue(())
        })
        .map(|_| meters)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| match e {
        IntakeError::Rejected(problems) => ApiError::invalid_assets(problems),
        other => ApiError::bad_request(
            "The request body could not be read",
            json!({"error": other.to_string()}),
        ),
    })?;
    let ids = state
        .meters
        .import_meters(partner, CreatedBy::Utility, meters, state.now_millis())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"imported": ids.len(), "meter_ids": ids})),
    ))
}
