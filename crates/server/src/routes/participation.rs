//! Leap's v1.1 enrollment writes, on the participation model of `/v2/.../participation`:
//! idle periods (`/v1.1/enrollment/meters/{meter_id}/idle_periods` and for many),
//! disenrollment requests, participate, and the market-registration refresh. Dates are
//! the meter's local dates, both inclusive.
//!
//! All or nothing, except creating idle periods for many meters, which follows Leap:
//! changes are applied if at least one meter can be found, and the periods of unknown
//! meters are discarded (the answer lists them).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use gridroll_domain::MeterId;
use gridroll_domain::lifecycle::{
    Change, LocalPeriod, PeriodError, parse_local_date, parse_reason,
};
use gridroll_store::{MeterEdit, Unknown};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::enrollments::enrollment_body;
use super::lifecycle::summary;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{json_body, path_id};
use crate::lifecycle::{self, IdlePeriods, LifecycleError, meter_ids, meter_ids_up_to};

/// The most a request of this module may hold.
const BODY_LIMIT: usize = 1024 * 1024;

/// The most meters a bulk read of idle periods names in its query.
const MAX_READ: usize = 100;

/// The most periods one meter's part of a request holds.
const MAX_PERIODS: usize = 100;

fn meter_id(raw: &str) -> ApiResult<MeterId> {
    path_id(raw, "meter_id", "Meter")
}

fn period_error(field: &str, e: PeriodError) -> LifecycleError {
    LifecycleError::invalid(field, e.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodBody {
    start_date: String,
    end_date: String,
    reason: Option<String>,
}

fn periods(field: &str, given: &[PeriodBody]) -> Result<Vec<LocalPeriod>, LifecycleError> {
    if given.len() > MAX_PERIODS {
        return Err(LifecycleError::invalid(
            field,
            format!(
                "must list at most {MAX_PERIODS} periods, not {}",
                given.len()
            ),
        ));
    }
    let periods = given
        .iter()
        .enumerate()
        .map(|(i, p)| {
            LocalPeriod::parse(&p.start_date, &p.end_date, p.reason.as_deref())
                .map_err(|e| period_error(&format!("{field}.{i}"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    LocalPeriod::check_all(&periods).map_err(|e| period_error(field, e))?;
    Ok(periods)
}

/// A meter's idle periods as the API shows them.
fn idle_body(idle: &IdlePeriods) -> Value {
    json!({
        "meter_id": idle.meter,
        "time_zone": idle.zone,
        "idle_periods": idle.periods.iter().map(|p| {
            let mut period = json!({"start_date": p.start.to_string(), "end_date": p.end.to_string()});
            if let Some(reason) = &p.reason {
                period["reason"] = json!(reason);
            }
            period
        }).collect::<Vec<_>>(),
    })
}

async fn one_meters_idle(state: &AppState, caller: Caller, id: MeterId) -> ApiResult<Json<Value>> {
    let idle = lifecycle::idle_periods_of(state, caller.partner, &[id]).await?;
    Ok(Json(idle.first().map(idle_body).unwrap_or_default()))
}

/// `GET /v1.1/enrollment/meters/{meter_id}/idle_periods`
pub async fn idle_periods(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    one_meters_idle(&state, caller, meter_id(&raw)?).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdleRequest {
    idle_periods: Vec<PeriodBody>,
}

async fn change_idle(
    state: &AppState,
    caller: Caller,
    raw: &str,
    headers: &HeaderMap,
    body: Body,
    add: bool,
) -> ApiResult<Json<Value>> {
    let id = meter_id(raw)?;
    let request: IdleRequest = json_body(headers, body, BODY_LIMIT, "idle periods").await?;
    let periods = periods("idle_periods", &request.idle_periods)?;
    let change = if add {
        Change::AddIdle(periods)
    } else {
        Change::RemoveIdle(periods)
    };
    lifecycle::change_each(state, caller.partner, &[id], change).await?;
    one_meters_idle(state, caller, id).await
}

/// `POST /v1.1/enrollment/meters/{meter_id}/idle_periods`: adds the periods, each
/// overriding the idle or disenrolled time it overlaps; one invalid period refuses all.
pub async fn add_idle_periods(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    change_idle(&state, caller, &raw, &headers, body, true).await
}

/// `DELETE /v1.1/enrollment/meters/{meter_id}/idle_periods`: removes periods given by
/// their exact dates; one that the meter does not have is a 404 and removes nothing.
pub async fn remove_idle_periods(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    change_idle(&state, caller, &raw, &headers, body, false).await
}

/// `GET /v1.1/enrollment/meters/idle_periods?meter_ids=a,b`: the idle periods of up to
/// 100 meters, each of which must be the partner's.
pub async fn idle_periods_bulk(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let mut raw: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key != "meter_ids" {
            return Err(LifecycleError::invalid(
                key.as_ref(),
                "is not a parameter of this listing; use meter_ids",
            )
            .into());
        }
        raw.extend(
            value
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
        );
    }
    let ids = meter_ids_up_to("meter_ids", &raw, MAX_READ)?;
    let idle = lifecycle::idle_periods_of(&state, caller.partner, &ids).await?;
    Ok(Json(
        json!({"enrollment": idle.iter().map(idle_body).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkIdleRequest {
    enrollment: Vec<MeterIdle>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeterIdle {
    meter_id: String,
    idle_periods: Vec<PeriodBody>,
}

fn bulk_edits(request: &BulkIdleRequest, add: bool) -> Result<Vec<MeterEdit>, LifecycleError> {
    let raw: Vec<String> = request
        .enrollment
        .iter()
        .map(|m| m.meter_id.clone())
        .collect();
    let ids = meter_ids("enrollment", &raw)?;
    if ids.len() != raw.len() {
        return Err(LifecycleError::invalid(
            "enrollment",
            "lists a meter more than once; a meter may occur only once",
        ));
    }
    request
        .enrollment
        .iter()
        .zip(ids)
        .enumerate()
        .map(|(i, (m, meter))| {
            let periods = periods(&format!("enrollment.{i}.idle_periods"), &m.idle_periods)?;
            Ok(MeterEdit {
                meter,
                change: if add {
                    Change::AddIdle(periods)
                } else {
                    Change::RemoveIdle(periods)
                },
            })
        })
        .collect()
}

/// `POST /v1.1/enrollment/meters/idle_periods`: Leap's rule, applied if at least one
/// meter can be found; an invalid period refuses all.
pub async fn add_idle_periods_bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let request: BulkIdleRequest = json_body(&headers, body, BODY_LIMIT, "idle periods").await?;
    let edits = bulk_edits(&request, true)?;
    let applied = lifecycle::change(&state, caller.partner, edits, Unknown::Skip).await?;
    Ok(Json(summary(&applied)))
}

/// `DELETE /v1.1/enrollment/meters/idle_periods`: all or nothing; a period not found is a
/// 404 naming it.
pub async fn remove_idle_periods_bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let request: BulkIdleRequest = json_body(&headers, body, BODY_LIMIT, "idle periods").await?;
    let edits = bulk_edits(&request, false)?;
    let applied = lifecycle::change(&state, caller.partner, edits, Unknown::Refuse).await?;
    Ok(Json(summary(&applied)))
}

/// A dated change of Leap's, for one meter or (with `meter_ids`) many: a disenrollment
/// or taking part again.
trait DatedRequest: DeserializeOwned {
    /// What the body is called in its errors.
    const NAME: &'static str;
    /// The operation for many meters, which takes `meter_ids`.
    const BULK: &'static str;
    fn change(&self) -> Result<Change, LifecycleError>;
    fn meter_ids(&self) -> Option<&[String]>;
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisenrollRequest {
    disenrollment_date: String,
    reason: Option<String>,
    meter_ids: Option<Vec<String>>,
}

impl DatedRequest for DisenrollRequest {
    const NAME: &'static str = "disenrollment request";
    const BULK: &'static str = "POST /v1.1/enrollment/meters/disenrollment_requests";

    fn change(&self) -> Result<Change, LifecycleError> {
        let date = parse_local_date("disenrollment_date", &self.disenrollment_date)
            .map_err(|e| period_error("disenrollment_date", e))?;
        let reason = parse_reason(self.reason.as_deref())
            .map_err(|e| period_error("reason", e))?
            .ok_or_else(|| {
                LifecycleError::invalid("reason", "is required: say why the meter leaves")
            })?;
        Ok(Change::Disenroll {
            date,
            reason: Some(reason),
        })
    }

    fn meter_ids(&self) -> Option<&[String]> {
        self.meter_ids.as_deref()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipateRequest {
    start_date: String,
    meter_ids: Option<Vec<String>>,
}

impl DatedRequest for ParticipateRequest {
    const NAME: &'static str = "participate request";
    const BULK: &'static str = "POST /v1.1/enrollment/meters/participate";

    fn change(&self) -> Result<Change, LifecycleError> {
        let start = parse_local_date("start_date", &self.start_date)
            .map_err(|e| period_error("start_date", e))?;
        Ok(Change::Participate { start })
    }

    fn meter_ids(&self) -> Option<&[String]> {
        self.meter_ids.as_deref()
    }
}

/// A dated change of the meter in the path; answers its enrollments.
async fn dated_change_of_one<R: DatedRequest>(
    state: &AppState,
    caller: Caller,
    raw: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let id = meter_id(raw)?;
    let request: R = json_body(headers, body, BODY_LIMIT, R::NAME).await?;
    if request.meter_ids().is_some() {
        let form = format!("belongs to the form for many meters, {}", R::BULK);
        return Err(LifecycleError::invalid("meter_ids", form).into());
    }
    lifecycle::change_each(state, caller.partner, &[id], request.change()?).await?;
    Ok(Json(enrollment_body(state, caller.partner, id).await?))
}

/// A dated change of the meters of `meter_ids`, all or none; answers what changed.
async fn dated_change_of_many<R: DatedRequest>(
    state: &AppState,
    caller: Caller,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let request: R = json_body(headers, body, BODY_LIMIT, R::NAME).await?;
    let change = request.change()?;
    let ids = meter_ids("meter_ids", request.meter_ids().unwrap_or_default())?;
    let applied = lifecycle::change_each(state, caller.partner, &ids, change).await?;
    Ok(Json(summary(&applied)))
}

/// `POST /v1.1/enrollment/meters/{meter_id}/disenrollment_requests`: the meter is
/// disenrolled from a local date after today; answers its enrollments.
pub async fn disenroll(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    dated_change_of_one::<DisenrollRequest>(&state, caller, &raw, &headers, body).await
}

/// `POST /v1.1/enrollment/meters/disenrollment_requests`: the same for up to 1,000
/// meters, all or none.
pub async fn disenroll_bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    dated_change_of_many::<DisenrollRequest>(&state, caller, &headers, body).await
}

/// `POST /v1.1/enrollment/meters/{meter_id}/participate`: the meter takes part from a
/// local date on, idle and disenrolled time after it lifted; answers its enrollments.
pub async fn participate(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    dated_change_of_one::<ParticipateRequest>(&state, caller, &raw, &headers, body).await
}

/// `POST /v1.1/enrollment/meters/participate`: the same for up to 1,000 meters, all or
/// none.
pub async fn participate_bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    dated_change_of_many::<ParticipateRequest>(&state, caller, &headers, body).await
}

/// `POST /v1.1/enrollment/meters/{meter_id}/market_registration_refresh`: a CAISO
/// utility meter evaluated again against its programs; answers its enrollments.
pub async fn refresh_registration(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = meter_id(&raw)?;
    lifecycle::change_each(&state, caller.partner, &[id], Change::RefreshRegistration).await?;
    Ok(Json(enrollment_body(&state, caller.partner, id).await?))
}
