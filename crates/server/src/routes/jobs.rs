//! `/v1.1/jobs/meters`: bulk uploads and their status.

use crate::cursor::{self, Listing};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use gridroll_domain::intake::Format;
use gridroll_domain::{JobId, schema};
use gridroll_store::StoreError;
use gridroll_store::{JobField, JobFilter, JobPage};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Query, path_id};
use crate::listing::ListQuery;
use crate::upload::{self, Upload};
use crate::wire::{AssetBody, CreatedJob, FilterOptions, JobBody, JobList};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    #[serde(default)]
    update_existing: bool,
    file_name: Option<String>,
}

/// `POST /v1.1/jobs/meters`
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<CreateParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<CreatedJob>)> {
    let format = body_format(&headers)?;
    if let Some(name) = &params.file_name {
        check_file_name(name)?;
    }
    let limit = state.config.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    let _permit = upload::permit(&state, caller.partner)?;
    let upload = Upload {
        format,
        file_name: params.file_name,
        update_existing: params.update_existing,
    };
    let job_id = upload::receive(&state, caller.partner, upload, body).await?;
    Ok((StatusCode::CREATED, Json(CreatedJob { job_id })))
}

pub fn body_format(headers: &HeaderMap) -> ApiResult<Format> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(Format::Json),
        "text/csv" | "application/csv" => Ok(Format::Csv),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Type",
            json!({
                "content_type": raw,
                "supported": ["application/json", "text/csv"],
            }),
        )),
    }
}

pub fn check_file_name(name: &str) -> ApiResult<()> {
    if name.chars().count() <= 255 && schema::FILE_NAME.is_match(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "Invalid file_name",
            json!({
                "file_name": name,
                "error": format!("must be at most 255 characters: {}", schema::FILE_NAME.explain),
            }),
        ))
    }
}

#[derive(Debug, Deserialize)]
pub struct GetParams {
    /// False answers the job alone (its status and counts): what a client following the
    /// job's progress asks for again and again, without the status of every asset.
    #[serde(default = "yes")]
    include_assets: bool,
}

fn yes() -> bool {
    true
}

/// `GET /v1.1/jobs/meters/{job_id}`
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(params): Query<GetParams>,
) -> ApiResult<Response> {
    let id: JobId = path_id(&raw, "job_id", "Job")?;
    let job = state
        .jobs
        .get_job(caller.partner, id)
        .await?
        .ok_or_else(|| job_not_found(id))?;
    if !params.include_assets {
        return Ok(Json(JobBody::from(job)).into_response());
    }
    // A job may hold a million assets: the answer streams them a batch at a time, so the
    // server's memory does not grow with the job.
    let mut head =
        serde_json::to_string(&JobBody::from(job)).map_err(|e| ApiError::internal(&e))?;
    head.pop();
    head.push_str(",\"assets\":[");
    let (store, partner) = (state.jobs.clone(), caller.partner);
    let batches = futures_util::stream::unfold(Some(0u64), move |from| {
        let store = store.clone();
        async move {
            let from = from?;
            match store.job_assets(partner, id, from, ASSET_BATCH).await {
                Ok(assets) => {
                    let next = (assets.len() == ASSET_BATCH)
                        .then(|| assets.last().map(|a| a.seq + 1))
                        .flatten();
                    let mut chunk = Vec::with_capacity(assets.len() * 200);
                    for asset in assets {
                        if from > 0 || !chunk.is_empty() {
                            chunk.push(b',');
                        }
                        serde_json::to_writer(&mut chunk, &AssetBody::from(asset))
                            .expect("asset bodies serialize");
                    }
                    Some((Ok::<_, StoreError>(Bytes::from(chunk)), next))
                }
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "a job's answer stopped part-way");
                    Some((Err(e), None))
                }
            }
        }
    });
    let body = futures_util::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(batches)
        .chain(futures_util::stream::once(async {
            Ok(Bytes::from_static(b"]}"))
        }));
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

/// Assets read per query while a job's answer streams.
const ASSET_BATCH: usize = 5000;

fn job_not_found(id: JobId) -> ApiError {
    ApiError::not_found("Job not found", json!({"job_id": id}))
}

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 500;

/// The filter keys of the job listing.
const FILTER_KEYS: &[&str] = &["status", "transmission_region", "file_name"];

/// `GET /v1.1/jobs/meters`
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<JobList>> {
    let query = ListQuery::parse(raw.as_deref())?;
    query.check_keys(FILTER_KEYS)?;
    let filter = JobFilter {
        statuses: query.parsed("status")?,
        transmission_regions: query.parsed("transmission_region")?,
        file_names: query.texts("file_name"),
        search: query.search(JobField::ALL)?,
    };
    let limit = query.page_size(DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let before = match query.position(Listing::Jobs, caller.partner)? {
        Some(position) => Some(job_at(&position)?),
        None => None,
    };
    let mut jobs = state
        .jobs
        .list_jobs(
            caller.partner,
            &filter,
            &JobPage {
                before,
                limit: limit + 1,
            },
        )
        .await?;
    let next_page_token = if jobs.len() > limit {
        jobs.truncate(limit);
        jobs.last()
            .map(|j| cursor::encode(Listing::Jobs, caller.partner, j.id.as_uuid().as_bytes()))
    } else {
        None
    };
    Ok(Json(JobList {
        jobs: jobs.into_iter().map(JobBody::from).collect(),
        next_page_token,
    }))
}

fn job_at(position: &[u8]) -> ApiResult<JobId> {
    uuid::Uuid::from_slice(position)
        .map(JobId::from_uuid)
        .map_err(|_| {
            ApiError::bad_request(
                "Invalid page_token",
                json!({"error": "use the next_page_token of the previous answer unchanged"}),
            )
        })
}

/// `GET /v1.1/jobs/meter-job-filters`
pub async fn filters(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<FilterOptions>> {
    let facets = state.jobs.job_facets(caller.partner).await?;
    Ok(Json(FilterOptions::from(facets)))
}
