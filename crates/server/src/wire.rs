//! Response bodies, shaped as the contract shows them. Built from the store's types here,
//! so storage rows never leak onto the wire.

use std::collections::HashMap;
use std::fmt::Write;

use gridroll_domain::enrollment::{Action, MeterEnrollments, ProgramView, timeline};
use gridroll_domain::enums::ParticipationPreference;
use gridroll_domain::job::{AssetStatus, JobStatus, StatusName};
use gridroll_domain::program::Program;
use gridroll_domain::timestamp::{format, format_millis};
use gridroll_domain::{JobId, MeterId};
use gridroll_store::{AssetState, Facet, Job, Meter, ProvisionalAsset, StoredMeter};
use serde::Serialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Serialize)]
pub struct CreatedJob {
    pub job_id: JobId,
}

#[derive(Debug, Serialize)]
pub struct JobBody {
    pub job_id: JobId,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    pub assets_count: u64,
    pub assets_created_count: u64,
    pub assets_updated_count: u64,
    pub assets_failed_count: u64,
    pub transmission_regions: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Job> for JobBody {
    fn from(job: Job) -> Self {
        Self {
            job_id: job.id,
            status: job.status,
            file_name: job.file_name,
            assets_count: job.assets_count,
            assets_created_count: job.created_count,
            assets_updated_count: job.updated_count,
            assets_failed_count: job.failed_count,
            transmission_regions: job.transmission_regions,
            created_at: format_millis(job.created_at),
            updated_at: format_millis(job.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct JobList {
    pub jobs: Vec<JobBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `status_detail`: empty while the asset is processing.
#[derive(Debug, Serialize, Default)]
pub struct StatusDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<StatusName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AssetBody {
    pub partner_reference: String,
    pub status: AssetStatus,
    pub status_detail: StatusDetail,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meter_id: Option<MeterId>,
}

impl From<AssetState> for AssetBody {
    fn from(asset: AssetState) -> Self {
        Self {
            partner_reference: asset.partner_reference,
            status: asset.status,
            status_detail: StatusDetail {
                name: asset.status_name,
                description: asset.status_description,
            },
            created_at: format_millis(asset.created_at),
            meter_id: asset.meter_id,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ProvisionalAssetBody {
    pub job_id: JobId,
    #[serde(flatten)]
    pub asset: AssetBody,
    pub data: Value,
}

impl From<ProvisionalAsset> for ProvisionalAssetBody {
    fn from(asset: ProvisionalAsset) -> Self {
        Self {
            job_id: asset.job_id,
            asset: asset.state.into(),
            data: Value::Object(asset.data.into_map()),
        }
    }
}

/// Meter details as JSON text, the meter's data object spliced in as the store wrote it
/// out: the hot read of a meter builds no tree. Everything added is an id, an enum name
/// or a timestamp, none of which needs escaping.
pub fn meter_details_json(meter: &StoredMeter) -> String {
    let mut out = String::with_capacity(meter.data_json.len() + DETAILS_ADDED);
    write_meter_details_json(&mut out, meter);
    out
}

/// About the most a meter's details add to its data: ids, names and timestamps.
const DETAILS_ADDED: usize = 300;

/// A `MeterList` page as JSON text: each meter's details as [`meter_details_json`] writes
/// them, and the token of the next page when there is one.
pub fn meter_page_json(meters: &[StoredMeter], next_page_token: Option<&str>) -> String {
    let size: usize = meters
        .iter()
        .map(|m| m.data_json.len() + DETAILS_ADDED + 1)
        .sum();
    let mut out = String::with_capacity(size + 100);
    out.push_str(r#"{"meters":["#);
    for (i, meter) in meters.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_meter_details_json(&mut out, meter);
    }
    out.push(']');
    if let Some(token) = next_page_token {
        out.push_str(r#","next_page_token":"#);
        out.push_str(&Value::from(token).to_string());
    }
    out.push('}');
    out
}

/// Writes a meter's details as [`meter_details_json`] does, at the end of `out`.
fn write_meter_details_json(out: &mut String, meter: &StoredMeter) {
    let data = meter.data_json.trim_end();
    let inner = data.strip_suffix('}').unwrap_or(data);
    out.push_str(inner);
    if inner.trim_end() != "{" {
        out.push(',');
    }
    // Tags are the data's own when the meter has any. `"tags":` cannot occur in the text
    // of a value, whose quotes are escaped, nor as another key of the model.
    if !data.contains(r#""tags":"#) {
        out.push_str(r#""tags":[],"#);
    }
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        concat!(
            r#""meter_id":"{}","is_archived":{},"connection_references":[],"#,
            r#""audit":{{"created_by":"{}","created_at":"{}","updated_at":"{}"}},"#,
            r#""global_enrollment_status":"{}"}}"#
        ),
        meter.id,
        meter.archived,
        meter.created_by,
        format_millis(meter.created_at),
        format_millis(meter.updated_at),
        meter.global_status,
    );
}

/// The values each filter key can take, as they occur in the partner's data.
#[derive(Debug, Serialize)]
pub struct FilterOptions {
    pub filter_options: Vec<KeyValues>,
}

#[derive(Debug, Serialize)]
pub struct KeyValues {
    pub key: &'static str,
    pub values: Vec<String>,
}

impl From<Vec<Facet>> for FilterOptions {
    fn from(facets: Vec<Facet>) -> Self {
        Self {
            filter_options: facets
                .into_iter()
                .map(|f| KeyValues {
                    key: f.key,
                    values: f.values,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ProvisionalAssetList {
    pub provisional_assets: Vec<ProvisionalAssetBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MeterList {
    pub meters: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `MeterEnrollmentResponse`: a meter's identifiers, its enrollment in each program,
/// its participation and the actions required of the partner and of the operator.
pub fn meter_enrollments(
    meter: &Meter,
    shown: &MeterEnrollments,
    catalog: &HashMap<String, Program>,
) -> Value {
    let data = meter.data.as_map();
    let mut body = Map::new();
    body.insert("meter_id".to_owned(), json!(meter.id));
    for key in [
        "partner_reference",
        "transmission_region",
        "customer_classification",
        "load_types",
        "meter_type",
        "customer_group",
    ] {
        if let Some(value) = data.get(key) {
            body.insert(key.to_owned(), value.clone());
        }
    }
    body.insert("connection_references".to_owned(), json!([]));
    body.insert(
        "tags".to_owned(),
        data.get("tags").cloned().unwrap_or_else(|| json!([])),
    );
    body.insert("is_archived".to_owned(), json!(meter.archived));
    body.insert("audit".to_owned(), audit(meter));
    body.insert(
        "global_enrollment_status".to_owned(),
        json!(shown.global_status),
    );
    body.insert(
        "participation_preferences".to_owned(),
        Value::Array(
            timeline(&meter.abstentions, meter.created_at)
                .into_iter()
                .map(|e| preference(e.preference, e.start, e.end, e.reason.as_deref()))
                .collect(),
        ),
    );
    body.insert(
        "program_enrollment".to_owned(),
        Value::Array(
            shown
                .programs
                .iter()
                .map(|view| program_enrollment(view, view.described_reasons(catalog, &meter.data)))
                .collect(),
        ),
    );
    body.insert(
        "required_actions".to_owned(),
        json!({
            "partner": shown.partner_actions.iter().map(action).collect::<Vec<_>>(),
            "leap": shown.operator_actions.iter().map(action).collect::<Vec<_>>(),
        }),
    );
    Value::Object(body)
}

/// How an open-ended participation period is shown, as Leap does.
const OPEN_END: &str = "9000-01-01T00:00:00.000Z";

/// A participation preference over a period, as Leap's `ParticipationPreferenceResponse`.
fn preference(
    preference: ParticipationPreference,
    start: i64,
    end: Option<i64>,
    reason: Option<&str>,
) -> Value {
    let mut p = json!({
        "participation_preference": preference,
        "start_time": format_millis(start),
        "end_time": end.map_or_else(|| OPEN_END.to_owned(), format_millis),
    });
    if let Some(reason) = reason {
        p["reason"] = json!(reason);
    }
    p
}

fn audit(meter: &Meter) -> Value {
    json!({
        "created_by": meter.created_by,
        "created_at": format_millis(meter.created_at),
        "updated_at": format_millis(meter.updated_at),
    })
}

fn program_enrollment(view: &ProgramView, reasons: Vec<String>) -> Value {
    let mut e = json!({
        "program_identifier": view.program,
        "enrollment_status": view.status,
    });
    if let Some(period) = &view.period {
        e["delivery_period"] = json!(period.name);
        e["delivery_period_start_date_time"] = json!(format(period.start));
        e["delivery_period_end_date_time"] = json!(format(period.end));
        e["enrollment_deadlines"] = Value::Array(
            period
                .deadlines
                .iter()
                .map(|d| {
                    json!({
                        "enrollment_deadline_date_time": format(d.deadline),
                        "activation_date_time": format(d.activation),
                    })
                })
                .collect(),
        );
    } else {
        e["enrollment_deadlines"] = json!([]);
    }
    // Extensions: why a meter is out, what keeps it from delivering, and what it lacks.
    if let Some(reason) = view.not_participating_reason() {
        e["not_participating_reason"] = json!(reason);
    }
    if !view.abstentions.is_empty() {
        e["participation_in_period"] = Value::Array(
            view.abstentions
                .iter()
                .map(|a| preference(a.preference, a.start, a.end, a.reason.as_deref()))
                .collect(),
        );
    }
    if !reasons.is_empty() {
        e["ineligibility_reasons"] = json!(reasons);
    }
    if !view.missing.is_empty() {
        e["missing_fields"] = json!(view.missing);
    }
    e
}

fn action(action: &Action) -> Value {
    let mut a = json!({
        "program_identifier": action.program,
        "delivery_period": action.delivery_period,
        "action_type": action.action_type,
        "action_description": action.description,
        "action_code": action.code,
    });
    if let Some(deadline) = action.deadline {
        a["enrollment_deadline_date_time"] = json!(format(deadline));
    }
    a
}

/// A program as partners see it: who may join and what it needs.
pub fn program(program: &Program, now: time::OffsetDateTime) -> Value {
    let period = program.target_period(now);
    json!({
        "program_identifier": program.identifier,
        "name": program.name,
        "description": program.description,
        "transmission_regions": program.transmission_regions,
        "customer_classifications": program.customer_classifications,
        "meter_types": program.meter_types,
        "load_types": program.load_types,
        "utilities": program.utilities,
        "required_fields": program.required_fields,
        "conditional_fields": program.conditional_fields.iter().map(|r| {
            json!({"any_of": r.any_of, "when": r.when.as_ref().map(ToString::to_string)})
        }).collect::<Vec<_>>(),
        "next_delivery_period": period.as_ref().map(|p| json!({
            "delivery_period": p.name,
            "delivery_period_start_date_time": format(p.start),
            "delivery_period_end_date_time": format(p.end),
            "enrollment_deadlines": p.deadlines.iter().map(|d| json!({
                "enrollment_deadline_date_time": format(d.deadline),
                "activation_date_time": format(d.activation),
            })).collect::<Vec<_>>(),
        })),
    })
}
