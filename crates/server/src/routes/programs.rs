//! Extensions beyond Leap: the program catalog a partner may use (`/v1.1/programs`), and a
//! dry run of an upload (`/v1.1/meters/validate`).

use std::ops::ControlFlow;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gridroll_domain::enrollment;
use gridroll_domain::enums::EnrollmentStatus;
use gridroll_domain::intake::{self, Format, IntakeError, MAX_LISTED_PROBLEMS, Problems};
use gridroll_domain::program::Program;
use gridroll_domain::template::csv_template;
use serde_json::{Value, json};

use super::jobs::body_format;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::upload::{self, UploadError};
use crate::wire;

/// `GET /v1.1/programs`
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let programs = state
        .catalog
        .partner_programs(caller.partner, state.now_millis())
        .await?;
    Ok(Json(json!({
        "programs": programs.iter().map(|p| wire::program(p, now)).collect::<Vec<_>>()
    })))
}

/// `GET /v1.1/programs/{program_identifier}`
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> ApiResult<Json<Value>> {
    let programs = state
        .catalog
        .partner_programs(caller.partner, state.now_millis())
        .await?;
    programs
        .iter()
        .find(|p| p.identifier == identifier)
        .map(|p| Json(wire::program(p, state.clock.now())))
        .ok_or_else(|| {
            ApiError::not_found(
                "Program not found",
                json!({"program_identifier": identifier}),
            )
        })
}

/// `GET /v1.1/programs/{program_identifier}/template`: the program's CSV template, the
/// file the portal's Programs page offers.
pub async fn template(
    State(state): State<AppState>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> ApiResult<Response> {
    let programs = state
        .catalog
        .partner_programs(caller.partner, state.now_millis())
        .await?;
    let program = programs
        .iter()
        .find(|p| p.identifier == identifier)
        .ok_or_else(|| {
            ApiError::not_found(
                "Program not found",
                json!({"program_identifier": identifier}),
            )
        })?;
    template_file(program)
}

/// A program's CSV template (the columns it needs and one example row it accepts) as a
/// file to download.
pub fn template_file(program: &Program) -> ApiResult<Response> {
    let body = csv_template(program)
        .to_csv()
        .map_err(|e| ApiError::internal(&e))?;
    // Identifiers are letters, digits and dashes, safe in a header.
    let disposition = HeaderValue::try_from(format!(
        "attachment; filename=\"{}-template.csv\"",
        program
            .identifier
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Largest body a dry run takes.
const VALIDATE_LIMIT: u64 = 32 * 1024 * 1024;

/// `POST /v1.1/meters/validate`: what an upload of this body would be refused for, and for
/// each valid asset the programs it could join and what each still needs. Stores nothing.
pub async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let format = body_format(&headers)?;
    // A dry run answers per asset; uploads of any size go to the jobs API. The body is
    // read as it arrives, on a thread of its own, like an upload.
    let limit = state.config.max_body_bytes.min(VALIDATE_LIMIT);
    let _permit = upload::permit(&state, caller.partner)?;
    let programs = state
        .catalog
        .partner_programs(caller.partner, state.now_millis())
        .await?;
    let mut reader = upload::blocking_reader(body, limit);
    let read = tokio::task::spawn_blocking(move || {
        let mut assets = Vec::new();
        let mut more = 0usize;
        let result = intake::read_all_assets(format, &mut reader, &mut |position, data| {
            if assets.len() >= MAX_LISTED_PROBLEMS {
                more += 1;
                return ControlFlow::Continue(());
            }
            let enrollments = enrollment::reevaluate(&programs, &data, &[]);
            let verdicts: Vec<Value> = enrollments
                .iter()
                .map(|e| {
                    let mut v = json!({
                        "program_identifier": e.program,
                        "eligible": e.status != EnrollmentStatus::Ineligible,
                        "ready": e.status == EnrollmentStatus::Pending,
                    });
                    if !e.missing.is_empty() {
                        v["missing_fields"] = json!(e.missing);
                    }
                    if let Some(program) = programs.iter().find(|p| p.identifier == e.program)
                        && !e.reasons.is_empty()
                    {
                        let reasons: Vec<String> = e
                            .reasons
                            .iter()
                            .map(|r| r.describe(program, &data))
                            .collect();
                        v["ineligibility_reasons"] = json!(reasons);
                    }
                    v
                })
                .collect();
            let locator = match format {
                Format::Json => "json_index",
                Format::Csv => "csv_row",
            };
            assets.push(json!({
                locator: position,
                "partner_reference": data.partner_reference(),
                "programs": verdicts,
            }));
            ControlFlow::Continue(())
        });
        if matches!(result, Err(IntakeError::Rejected(_))) {
            upload::drain(&mut reader);
        }
        (result, assets, more)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let (result, assets, more) = read;
    let problems = match result {
        Ok(_) => Problems::default(),
        Err(IntakeError::Rejected(problems)) => problems,
        Err(error @ IntakeError::Read(_)) => {
            return Err(UploadError::of_intake(error, limit).into());
        }
        Err(IntakeError::Stopped) => Problems::default(),
    };
    Ok(Json(json!({
        "valid": problems.is_empty(),
        "problems_count": problems.total,
        "problems": problems.listed,
        "assets": assets,
        "assets_not_listed": more,
    })))
}
