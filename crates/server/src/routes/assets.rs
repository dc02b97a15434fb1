//! `/v1.1/provisional-assets`: every asset of every upload, as JSON pages or as one CSV in
//! the upload layout (to fix failed rows and upload them again).

use std::sync::Arc;

use crate::cursor::{self, Listing};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use gridroll_domain::csv_layout::{STATUS_COLUMNS, export_cells, export_header};
use gridroll_domain::timestamp::format_millis;
use gridroll_domain::{JobId, PartnerId};
use gridroll_store::{AssetField, AssetFilter, JobStore, ProvisionalAsset, StoreError};
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::listing::ListQuery;
use crate::wire::{FilterOptions, ProvisionalAssetList};

const FILTER_KEYS: &[&str] = &[
    "job_id",
    "status",
    "transmission_region",
    "customer_classification",
    "meter_type",
    "partner_reference",
];
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 500;
/// Rows fetched per query while a CSV export streams.
const EXPORT_BATCH: usize = 1000;

/// `GET /v1.1/provisional-assets`; `Accept: text/csv` answers every matching row as CSV.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    list_assets(state, caller, raw, headers)
        .await
        .map_err(ApiError::with_message)
}

async fn list_assets(
    state: AppState,
    caller: Caller,
    raw: Option<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let query = ListQuery::parse(raw.as_deref())?;
    query.check_keys(FILTER_KEYS)?;
    let job_ids = query
        .texts("job_id")
        .map(|ids| {
            ids.iter()
                .map(|id| {
                    id.parse::<JobId>().map_err(|_| {
                        ApiError::bad_request(
                            "Invalid filter value",
                            json!({"filter": "job_id", "value": id, "error": "not a UUID"}),
                        )
                    })
                })
                .collect::<ApiResult<Vec<_>>>()
        })
        .transpose()?;
    let filter = AssetFilter {
        job_ids,
        statuses: query.parsed("status")?,
        transmission_regions: query.parsed("transmission_region")?,
        customer_classifications: query.parsed("customer_classification")?,
        meter_types: query.parsed("meter_type")?,
        partner_references: query.texts("partner_reference"),
        search: query.search(AssetField::ALL)?,
    };
    if crate::extract::prefers_csv(&headers) {
        return export_csv(
            state.jobs.clone(),
            caller.partner,
            filter,
            "provisional-assets.csv",
        )
        .await;
    }

    let limit = query.page_size(DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let after = match query.position(Listing::ProvisionalAssets, caller.partner)? {
        Some(position) => Some(asset_at(&position)?),
        None => None,
    };
    let mut assets = state
        .jobs
        .list_provisional_assets(caller.partner, &filter, after, limit + 1)
        .await?;
    let next_page_token = if assets.len() > limit {
        assets.truncate(limit);
        assets.last().map(|a| {
            cursor::encode(
                Listing::ProvisionalAssets,
                caller.partner,
                &position_of(a.job_id, a.state.seq),
            )
        })
    } else {
        None
    };
    Ok(Json(ProvisionalAssetList {
        provisional_assets: assets.into_iter().map(Into::into).collect(),
        next_page_token,
    })
    .into_response())
}

fn position_of(job: JobId, seq: u64) -> Vec<u8> {
    let mut position = job.as_uuid().as_bytes().to_vec();
    position.extend_from_slice(&seq.to_be_bytes());
    position
}

fn asset_at(position: &[u8]) -> ApiResult<(JobId, u64)> {
    let invalid = || {
        ApiError::bad_request(
            "Invalid page_token",
            json!({"error": "use the next_page_token of the previous answer unchanged"}),
        )
    };
    if position.len() != 24 {
        return Err(invalid());
    }
    let job = uuid::Uuid::from_slice(&position[..16]).map_err(|_| invalid())?;
    let seq = u64::from_be_bytes(position[16..].try_into().map_err(|_| invalid())?);
    Ok((JobId::from_uuid(job), seq))
}

/// Streams every matching asset as CSV: the upload layout, then the status columns
/// (which an upload ignores, so the file can be fixed and uploaded again).
pub async fn export_csv(
    store: Arc<dyn JobStore>,
    partner: PartnerId,
    filter: AssetFilter,
    file_name: &str,
) -> ApiResult<Response> {
    let site_devices = store.max_site_devices(partner, &filter).await?;
    let header = export_header(site_devices);
    // The byte order mark tells spreadsheets the file is UTF-8; uploads skip it.
    let first = csv_bytes("\u{feff}".as_bytes(), [header]);

    struct Progress {
        after: Option<(JobId, u64)>,
        done: bool,
    }
    let filter = Arc::new(filter);
    let rows = futures_util::stream::unfold(
        Progress {
            after: None,
            done: false,
        },
        move |progress| {
            let store = store.clone();
            let filter = filter.clone();
            async move {
                if progress.done {
                    return None;
                }
                let batch = store
                    .list_provisional_assets(partner, &filter, progress.after, EXPORT_BATCH)
                    .await;
                let assets = match batch {
                    Ok(assets) => assets,
                    Err(e) => {
                        tracing::error!(error = %e, "a CSV export stopped part-way");
                        return Some((
                            Err(e),
                            Progress {
                                after: None,
                                done: true,
                            },
                        ));
                    }
                };
                let done = assets.len() < EXPORT_BATCH;
                let after = assets.last().map(|a| (a.job_id, a.state.seq));
                let chunk = csv_bytes(
                    b"",
                    assets.iter().map(|asset| asset_record(asset, site_devices)),
                );
                Some((Ok(chunk), Progress { after, done }))
            }
        },
    );
    let body = futures_util::stream::once(async move { Ok::<_, StoreError>(first) }).chain(rows);
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::try_from(format!("attachment; filename=\"{file_name}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
    );
    Ok(response)
}

fn asset_record(asset: &ProvisionalAsset, site_devices: usize) -> Vec<String> {
    let mut cells = export_cells(&asset.data, site_devices);
    let state = &asset.state;
    let status_cells = [
        asset.job_id.to_string(),
        state.status.to_string(),
        state.status_name.map(|n| n.to_string()).unwrap_or_default(),
        state.status_description.clone().unwrap_or_default(),
        state.meter_id.map(|m| m.to_string()).unwrap_or_default(),
        format_millis(state.created_at),
    ];
    debug_assert_eq!(status_cells.len(), STATUS_COLUMNS.len());
    cells.extend(status_cells);
    cells
}

/// Renders CSV records; `prefix` (a byte order mark) goes first.
fn csv_bytes<I, R>(prefix: &[u8], records: I) -> Bytes
where
    I: IntoIterator<Item = R>,
    R: IntoIterator,
    R::Item: AsRef<[u8]>,
{
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(prefix.to_vec());
    for record in records {
        // Writing to memory cannot fail.
        let _ = writer.write_record(record);
    }
    Bytes::from(writer.into_inner().unwrap_or_default())
}

/// `GET /v1.1/provisional-assets-filters`
pub async fn filters(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<FilterOptions>> {
    let facets = state.jobs.asset_facets(caller.partner).await?;
    Ok(Json(FilterOptions::from(facets)))
}
