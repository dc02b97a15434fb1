//! `/v1.1/meters` (one meter, synchronously) and `/v2/meters/{meter_id}`.

use crate::cursor::{self, Listing};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use gridroll_domain::enums::{
    ActionType, CustomerClassification, EnrollmentStatus, LoadType, MeterType, TransmissionRegion,
};
use gridroll_domain::intake::{self, DocumentError, Problem, Problems};
use gridroll_domain::timestamp::to_millis;
use gridroll_domain::{MeterId, PartnerId};
use gridroll_store::{Meter, MeterFilter};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Query, is_json, path_id, unsupported_media_type};
use crate::listing::{decode_token, page_size};
use crate::upload;
use crate::wire::{ProvisionalAssetBody, meter_details_json, meter_page_json};

/// Bodies of single-meter requests are small; anything larger is a mistake.
const SINGLE_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    #[serde(default)]
    update_existing: bool,
}

/// `POST /v1.1/meters`: a refusal carries Leap's `errors` as well.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<CreateParams>, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ProvisionalAssetBody>> {
    let result = match params {
        Ok(Query(params)) => create_one(&state, caller, params, &headers, body).await,
        Err(refusal) => Err(refusal),
    };
    result.map_err(|e| {
        if e.status == axum::http::StatusCode::BAD_REQUEST {
            e.with_create_meter_errors()
        } else {
            e
        }
    })
}

async fn create_one(
    state: &AppState,
    caller: Caller,
    params: CreateParams,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Json<ProvisionalAssetBody>> {
    if !is_json(headers) {
        return Err(unsupported_media_type());
    }
    let bytes = body::read_small(body, SINGLE_BODY_LIMIT).await?;
    let value = intake::parse_document(&bytes).map_err(|e| match e {
        DocumentError::Syntax(e) => ApiError::invalid_assets(Problems::single(Problem::general(
            format!("the body is not valid JSON: {e}"),
        ))),
        DocumentError::Duplicates(paths) => {
            let mut problems = Problems::default();
            for path in paths {
                // Fields are named within the asset, as validation names them.
                let field = path
                    .strip_prefix("provisional_asset.")
                    .unwrap_or(&path)
                    .to_owned();
                problems.push(Problem {
                    message: intake::DUPLICATE_KEY.to_owned(),
                    json_index: None,
                    csv_row: None,
                    problem_field: Some(field),
                    suggestion: None,
                });
            }
            ApiError::invalid_assets(problems)
        }
    })?;
    let asset = upload::create_single(state, caller.partner, value, params.update_existing).await?;
    Ok(Json(asset.into()))
}

/// `GET /v2/meters/{meter_id}`
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let id: MeterId = path_id(&raw, "meter_id", "Meter")?;
    details(&state, caller.partner, id).await
}

/// A meter's details as `GET /v2/meters/{meter_id}` answers them.
pub async fn details(state: &AppState, partner: PartnerId, id: MeterId) -> ApiResult<Response> {
    let meter = state
        .meters
        .get_stored_meter(partner, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Meter not found", json!({"meter_id": id})))?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        meter_details_json(&meter),
    )
        .into_response())
}

/// The body of `POST /v2/meters/search` (`MeterFilterRequest`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    page_token: Option<String>,
    page_size: Option<i64>,
    transmission_region: Option<TransmissionRegion>,
    customer_classification: Option<CustomerClassification>,
    meter_ids: Option<Vec<String>>,
    partner_references: Option<Vec<String>>,
    global_enrollment_statuses: Option<Vec<EnrollmentStatus>>,
    meter_types: Option<Vec<MeterType>>,
    load_types: Option<Vec<LoadType>>,
    customer_groups: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    last_modified_date_time: Option<String>,
    created_after_date_time: Option<String>,
    created_before_date_time: Option<String>,
    partner_action_required: Option<bool>,
    exclude_archived: Option<bool>,
    connection_reference_ids: Option<Vec<String>>,
    action_type: Option<Vec<ActionType>>,
}

const MAX_SEARCH_PAGE: usize = 500;

impl SearchRequest {
    fn filter(self) -> ApiResult<MeterFilter> {
        for (name, list) in [
            ("partner_references", &self.partner_references),
            ("customer_groups", &self.customer_groups),
            ("tags", &self.tags),
            ("connection_reference_ids", &self.connection_reference_ids),
            ("meter_ids", &self.meter_ids),
        ] {
            plain_texts(name, list.as_deref().unwrap_or_default())?;
        }
        let meter_ids = sized("meter_ids", self.meter_ids, 0, 1000)?
            .map(|ids| {
                ids.iter()
                    .map(|id| path_id::<MeterId>(id, "meter_id", "Meter"))
                    .collect::<ApiResult<Vec<_>>>()
            })
            .transpose()?;
        Ok(MeterFilter {
            meter_ids,
            partner_references: sized("partner_references", self.partner_references, 1, 1000)?,
            transmission_region: self.transmission_region,
            customer_classification: self.customer_classification,
            meter_types: sized("meter_types", self.meter_types, 1, 20)?,
            load_types: sized("load_types", self.load_types, 1, 20)?,
            customer_groups: sized("customer_groups", self.customer_groups, 1, 20)?,
            tags: sized("tags", self.tags, 1, 20)?,
            connection_reference_ids: sized(
                "connection_reference_ids",
                self.connection_reference_ids,
                1,
                100,
            )?,
            modified_since: instant("last_modified_date_time", self.last_modified_date_time)?,
            created_after: instant("created_after_date_time", self.created_after_date_time)?,
            created_before: instant("created_before_date_time", self.created_before_date_time)?,
            exclude_archived: self.exclude_archived.unwrap_or(false),
            global_enrollment_statuses: sized(
                "global_enrollment_statuses",
                self.global_enrollment_statuses,
                1,
                5,
            )?,
            partner_action_required: self.partner_action_required.unwrap_or(false),
            action_types: sized("action_type", self.action_type, 1, 20)?,
            reference_contains: None,
        })
    }
}

/// Refuses a list of texts of which one holds a control character: no stored value has
/// one, and PostgreSQL cannot take a NUL.
fn plain_texts(name: &str, values: &[String]) -> ApiResult<()> {
    for (i, value) in values.iter().enumerate() {
        if let Some(c) = gridroll_domain::text::control_character(value) {
            return Err(ApiError::bad_request(
                format!("Invalid {name}"),
                json!({"field": format!("{name}.{i}"),
                       "error": gridroll_domain::text::control_character_message(c)}),
            ));
        }
    }
    Ok(())
}

/// A list with the contract's bounds on its length.
fn sized<T>(name: &str, list: Option<Vec<T>>, min: usize, max: usize) -> ApiResult<Option<Vec<T>>> {
    match list {
        Some(items) if items.len() < min || items.len() > max => Err(ApiError::bad_request(
            format!("Invalid {name}"),
            json!({name: format!("must list from {min} to {max} values, not {}", items.len())}),
        )),
        other => Ok(other),
    }
}

/// An RFC 3339 date-time as stored milliseconds.
fn instant(name: &str, value: Option<String>) -> ApiResult<Option<i64>> {
    value
        .map(|text| {
            OffsetDateTime::parse(&text, &Rfc3339)
                .map(to_millis)
                .map_err(|_| {
                    ApiError::bad_request(
                        format!("Invalid {name}"),
                        json!({name: text, "error": "must be an RFC 3339 date-time such as 2024-10-21T11:43:05.892Z"}),
                    )
                })
        })
        .transpose()
}

/// `POST /v2/meters/search`: the page written out as text, each meter's details spliced
/// in from its stored data as `GET /v2/meters/{meter_id}` answers them (no tree is built
/// for the page's hundreds of meters).
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let page = SearchPage::read(caller.partner, &headers, body).await?;
    let meters = state
        .meters
        .search_stored_meters(caller.partner, &page.filter, page.after, page.limit + 1)
        .await?;
    let (meters, next_page_token) = page.split(meters, |m| m.id);
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        meter_page_json(&meters, next_page_token.as_deref()),
    )
        .into_response())
}

/// Reads a `MeterFilterRequest` body and answers the page of meters it asks for, with the
/// token of the next page, for the enrollment search.
pub async fn search_page(
    state: &AppState,
    partner: PartnerId,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<(Vec<Meter>, Option<String>)> {
    let page = SearchPage::read(partner, headers, body).await?;
    let meters = state
        .meters
        .search_meters(partner, &page.filter, page.after, page.limit + 1)
        .await?;
    Ok(page.split(meters, |m| m.id))
}

/// What a `MeterFilterRequest` body asks for: the meters, where the page starts, its size.
struct SearchPage {
    partner: PartnerId,
    filter: MeterFilter,
    after: Option<MeterId>,
    limit: usize,
}

impl SearchPage {
    async fn read(partner: PartnerId, headers: &HeaderMap, body: Body) -> ApiResult<Self> {
        let bytes = body::read_small(body, SINGLE_BODY_LIMIT).await?;
        let request: SearchRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
            SearchRequest::default()
        } else {
            if !is_json(headers) {
                return Err(unsupported_media_type());
            }
            serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::bad_request("Invalid search request", json!({"error": e.to_string()}))
            })?
        };
        let limit = match request.page_size {
            None => MAX_SEARCH_PAGE,
            Some(n) => page_size(Some(n), &n.to_string(), MAX_SEARCH_PAGE)?,
        };
        let after = match &request.page_token {
            Some(token) => {
                let position = decode_token(token, Listing::Meters, partner)?;
                let id = uuid::Uuid::from_slice(&position).map_err(|_| {
                    ApiError::bad_request(
                        "Invalid page_token",
                        json!({"error": "use the next_page_token of the previous answer unchanged"}),
                    )
                })?;
                Some(MeterId::from_uuid(id))
            }
            None => None,
        };
        Ok(Self {
            partner,
            filter: request.filter()?,
            after,
            limit,
        })
    }

    /// The page's meters, of the `limit + 1` read, and the token of the next page when
    /// there is one more.
    fn split<T>(&self, mut meters: Vec<T>, id: impl Fn(&T) -> MeterId) -> (Vec<T>, Option<String>) {
        let next_page_token = if meters.len() > self.limit {
            meters.truncate(self.limit);
            meters
                .last()
                .map(|m| cursor::encode(Listing::Meters, self.partner, id(m).as_uuid().as_bytes()))
        } else {
            None
        };
        (meters, next_page_token)
    }
}
