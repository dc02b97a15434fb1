//! What the store hands out and takes in. These are the store's own types, not wire types.

use gridroll_domain::compact::CompactAsset;
use gridroll_domain::enrollment::{Abstention, Enrollment};
use gridroll_domain::enums::{
    ActionType, CreatedBy, CustomerClassification, EnrollmentStatus, LoadType, MeterType,
    TransmissionRegion,
};
use gridroll_domain::job::{AssetStatus, JobCounts, JobStatus, StatusName};
use gridroll_domain::program::Program;
use gridroll_domain::{JobId, MeterData, MeterId, PartnerId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: PartnerId,
    pub name: String,
    pub created_at: i64,
}

/// SHA-256 of an API key: keys are random and long, so a fast hash is safe and lets a
/// key be found by its hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(pub [u8; 32]);

impl std::fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyHash(..)")
    }
}

/// A job about to be received.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: JobId,
    pub file_name: Option<String>,
    pub update_existing: bool,
    /// A worker that processes the job itself as soon as it is committed (the
    /// synchronous single-meter endpoint); the lease keeps other workers off it.
    pub processed_by: Option<String>,
}

/// What an upload held, recorded on its job when it is committed: its size and the
/// values its assets' listing offers as filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    pub assets_count: u64,
    pub transmission_regions: Vec<String>,
    pub customer_classifications: Vec<String>,
    pub meter_types: Vec<String>,
}

impl Received {
    /// What the upload's reader accepted.
    pub fn of(accepted: &gridroll_domain::intake::Accepted) -> Self {
        fn names<T: AsRef<str>>(values: &std::collections::BTreeSet<T>) -> Vec<String> {
            values.iter().map(|v| v.as_ref().to_owned()).collect()
        }
        Self {
            assets_count: accepted.assets_count as u64,
            transmission_regions: names(&accepted.transmission_regions),
            customer_classifications: names(&accepted.customer_classifications),
            meter_types: names(&accepted.meter_types),
        }
    }
}

/// The columns of a meter that searches filter on, as its job input holds them.
#[derive(Debug, Clone)]
pub struct IndexColumns {
    pub transmission_region: String,
    pub customer_classification: String,
    pub meter_type: String,
    /// The load types as a JSON array.
    pub load_types: String,
    pub customer_group: Option<String>,
}

impl IndexColumns {
    pub fn of(asset: &CompactAsset) -> Self {
        Self {
            transmission_region: asset.transmission_region.as_ref().to_owned(),
            customer_classification: asset.customer_classification.as_ref().to_owned(),
            meter_type: asset.meter_type.as_ref().to_owned(),
            load_types: asset.load_types.clone(),
            customer_group: asset.customer_group.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub partner_id: PartnerId,
    pub status: JobStatus,
    pub file_name: Option<String>,
    pub update_existing: bool,
    pub assets_count: u64,
    pub created_count: u64,
    pub updated_count: u64,
    pub failed_count: u64,
    pub transmission_regions: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Keyset paging of jobs, newest first.
#[derive(Debug, Clone)]
pub struct JobPage {
    /// Only jobs older than this one.
    pub before: Option<JobId>,
    pub limit: usize,
}

/// Where one asset of a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetState {
    pub seq: u64,
    pub partner_reference: String,
    pub status: AssetStatus,
    pub status_name: Option<StatusName>,
    pub status_description: Option<String>,
    pub meter_id: Option<MeterId>,
    pub created_at: i64,
}

/// An asset with its job and data.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionalAsset {
    pub job_id: JobId,
    pub state: AssetState,
    pub data: MeterData,
}

/// What one call of `process_chunk` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkReport {
    pub processed: usize,
    /// The job's status after the chunk; final once every asset is.
    pub status: JobStatus,
    /// The job's counts after the chunk (all zero when the call found the job finished
    /// already and processed nothing).
    pub totals: JobCounts,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Meter {
    pub id: MeterId,
    pub partner_id: PartnerId,
    pub created_by: CreatedBy,
    pub data: MeterData,
    pub created_at: i64,
    pub updated_at: i64,
    pub enrollments: Vec<Enrollment>,
    pub abstentions: Vec<Abstention>,
    /// As of the meter's last change.
    pub global_status: EnrollmentStatus,
    /// Archived by its partner: in no program, matched by no upload.
    pub archived: bool,
}

/// A meter as stored, for answering its details without building its data's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMeter {
    pub id: MeterId,
    pub created_by: CreatedBy,
    /// The meter's data as the JSON object it stands for, as validated when it was
    /// written (`evaluate::object_json`).
    pub data_json: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub global_status: EnrollmentStatus,
    pub archived: bool,
}

/// A program of the catalog and whether it is retired.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub program: Program,
    pub retired: bool,
    pub updated_at: i64,
}

/// Which meters a search returns. `None` means no condition; lists match any of their
/// values.
#[derive(Debug, Clone, Default)]
pub struct MeterFilter {
    pub meter_ids: Option<Vec<MeterId>>,
    pub partner_references: Option<Vec<String>>,
    pub transmission_region: Option<TransmissionRegion>,
    pub customer_classification: Option<CustomerClassification>,
    pub meter_types: Option<Vec<MeterType>>,
    /// Meters with any of these load types.
    pub load_types: Option<Vec<LoadType>>,
    pub customer_groups: Option<Vec<String>>,
    /// Meters with any of these tags.
    pub tags: Option<Vec<String>>,
    pub connection_reference_ids: Option<Vec<String>>,
    /// Changed at or after this instant (ms).
    pub modified_since: Option<i64>,
    /// Created at or after this instant (ms).
    pub created_after: Option<i64>,
    /// Created before this instant (ms).
    pub created_before: Option<i64>,
    pub exclude_archived: bool,
    pub global_enrollment_statuses: Option<Vec<EnrollmentStatus>>,
    /// Only meters that need something from the partner.
    pub partner_action_required: bool,
    /// Meters with an open partner action of any of these types.
    pub action_types: Option<Vec<ActionType>>,
    /// Meters whose partner_reference contains this text, ignoring case.
    pub reference_contains: Option<String>,
}

/// Free-text search: any of `terms` found (ignoring case) in any of `fields`.
#[derive(Debug, Clone)]
pub struct Search<F> {
    pub terms: Vec<String>,
    pub fields: Vec<F>,
}

/// Fields of a provisional asset that free-text search looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetField {
    PartnerReference,
    DeviceSerialNumber,
    UtilityMeterSerialNumber,
    ElectricServiceAccountNumber,
    Street1,
    City,
    PostalCode,
    EndCustomerName,
    CustomerGroup,
}

impl AssetField {
    /// Each field with the name clients use for it.
    pub const ALL: &[(&'static str, AssetField)] = &[
        ("partner_reference", Self::PartnerReference),
        ("device_serial_number", Self::DeviceSerialNumber),
        (
            "utility_meter_serial_number",
            Self::UtilityMeterSerialNumber,
        ),
        (
            "electric_service_account_number",
            Self::ElectricServiceAccountNumber,
        ),
        ("street_1", Self::Street1),
        ("city", Self::City),
        ("postal_code", Self::PostalCode),
        ("end_customer_name", Self::EndCustomerName),
        ("customer_group", Self::CustomerGroup),
    ];

    /// The dotted path of a field of the asset's data; `None` for the reference and the
    /// group, which an asset's searched values hold.
    pub fn path(self) -> Option<&'static str> {
        match self {
            Self::PartnerReference | Self::CustomerGroup => None,
            Self::DeviceSerialNumber => Some("device.device_serial_number"),
            Self::UtilityMeterSerialNumber => Some("utility.utility_meter_serial_number"),
            Self::ElectricServiceAccountNumber => Some("utility.electric_service_account_number"),
            Self::Street1 => Some("customer.street_1"),
            Self::City => Some("customer.city"),
            Self::PostalCode => Some("customer.postal_code"),
            Self::EndCustomerName => Some("customer.end_customer_name"),
        }
    }
}

/// Which provisional assets a listing returns.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    pub job_ids: Option<Vec<JobId>>,
    pub statuses: Option<Vec<AssetStatus>>,
    pub transmission_regions: Option<Vec<TransmissionRegion>>,
    pub customer_classifications: Option<Vec<CustomerClassification>>,
    pub meter_types: Option<Vec<MeterType>>,
    pub partner_references: Option<Vec<String>>,
    pub search: Option<Search<AssetField>>,
}

/// Fields of a job that free-text search looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobField {
    FileName,
    /// Any asset of the job.
    PartnerReference,
}

impl Job {
    /// The job's counts, as the job rules reckon with them.
    pub fn counts(&self) -> gridroll_domain::job::JobCounts {
        gridroll_domain::job::JobCounts {
            assets: self.assets_count,
            created: self.created_count,
            updated: self.updated_count,
            failed: self.failed_count,
        }
    }
}

impl JobField {
    pub const ALL: &[(&'static str, JobField)] = &[
        ("file_name", Self::FileName),
        ("partner_reference", Self::PartnerReference),
    ];
}

/// Which jobs a listing returns.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub statuses: Option<Vec<JobStatus>>,
    /// Jobs with assets in any of these regions.
    pub transmission_regions: Option<Vec<TransmissionRegion>>,
    pub file_names: Option<Vec<String>>,
    pub search: Option<Search<JobField>>,
}

/// The values that occur for one filter key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facet {
    pub key: &'static str,
    pub values: Vec<String>,
}
