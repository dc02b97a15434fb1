//! Response bodies, shaped as the contract shows them. Built from the store's types here,
//! so storage rows never leak onto the wire.

use gridroll_domain::job::{AssetStatus, JobStatus, StatusName};
use gridroll_domain::timestamp::format_millis;
use gridroll_domain::{JobId, MeterId};
use gridroll_store::{AssetState, Facet, Job, Meter, ProvisionalAsset};
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
pub struct JobWithAssets {
    #[serde(flatten)]
    pub job: JobBody,
    pub assets: Vec<AssetBody>,
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

/// Meter details: the meter's data with its id, identifiers and audit information.
pub fn meter_details(meter: Meter) -> Value {
    let mut body: Map<String, Value> = meter.data.into_map();
    body.insert("meter_id".to_owned(), json!(meter.id));
    body.insert("is_archived".to_owned(), json!(false));
    body.insert("connection_references".to_owned(), json!([]));
    body.insert("tags".to_owned(), json!([]));
    body.insert(
        "audit".to_owned(),
        json!({
            "created_by": meter.created_by,
            "created_at": format_millis(meter.created_at),
            "updated_at": format_millis(meter.updated_at),
        }),
    );
    Value::Object(body)
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
