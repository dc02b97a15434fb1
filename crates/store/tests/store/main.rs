//! The store's areas through their traits, on every backend, without HTTP: what each
//! method promises its callers.

mod accounts;
mod catalog;
mod events;
mod idempotency;
mod jobs;
mod meters;
mod webhooks;

use std::time::Duration;

use gridroll_domain::enrollment::PreferenceChange;
use gridroll_domain::job::JobStatus;
use gridroll_domain::lifecycle::Change;
use gridroll_domain::program::{DEFAULT_CATALOG, parse_catalog};
use gridroll_domain::{JobId, MeterData, MeterId, PartnerId};
use gridroll_store::{
    Applied, AssetBatch, AssetState, EditError, MeterEdit, NewJob, Received, StoreOptions, Stores,
    Unknown,
};
use gridroll_testkit::{Backend, TestDatabase};
use serde_json::{Value, json};

/// A fresh database of `backend`, opened and migrated, with one partner.
pub struct Fixture {
    pub stores: Stores,
    pub partner: PartnerId,
    /// Last, so that it is dropped after the store's connections.
    pub db: TestDatabase,
}

/// The instant the fixtures act at (2026-06-01T00:00:00Z): every call is given the time.
pub const NOW: i64 = 1_780_272_000_000;

impl Fixture {
    pub async fn new(backend: Backend) -> Self {
        Self::with(backend, StoreOptions::default()).await
    }

    pub async fn with(backend: Backend, options: StoreOptions) -> Self {
        let db = TestDatabase::new(backend)
            .await
            .expect("the backend is available");
        let stores = gridroll_store::open(db.url(), &options)
            .await
            .expect("open the store");
        let catalog = parse_catalog(DEFAULT_CATALOG).expect("the shipped catalog is valid");
        stores.catalog.seed_programs(&catalog, NOW).await.unwrap();
        let partner = stores
            .accounts
            .create_partner("Fixture Partner", NOW)
            .await
            .unwrap()
            .id;
        Self {
            stores,
            partner,
            db,
        }
    }
}

/// A valid meter with only the global required fields.
pub fn meter(reference: &str) -> MeterData {
    MeterData::parse(asset(reference)).expect("a valid meter")
}

pub fn asset(reference: &str) -> Value {
    json!({
        "partner_reference": reference,
        "transmission_region": "CAISO",
        "customer_classification": "RESIDENTIAL",
        "load_types": ["HVAC"],
        "meter_type": "DEVICE",
        "customer": {"street_1": "1 Main St", "postal_code": "94105", "city": "San Francisco",
                     "state_or_province_code": "CA", "country_code": "US"}
    })
}

/// How long a worker's lease on a job lasts.
pub const LEASE: Duration = Duration::from_secs(30);

pub fn new_job(id: JobId) -> NewJob {
    NewJob {
        id,
        file_name: Some("f.csv".to_owned()),
        update_existing: false,
        processed_by: None,
    }
}

/// A committed job of `references`, ready for the workers.
pub async fn committed(f: &Fixture, references: &[&str], update_existing: bool) -> JobId {
    let assets = references.iter().map(|r| meter(r)).collect();
    committed_meters(f, assets, update_existing).await
}

/// A committed job of `meters`, ready for the workers.
pub async fn committed_meters(f: &Fixture, meters: Vec<MeterData>, update_existing: bool) -> JobId {
    let jobs = &f.stores.jobs;
    let id = JobId::new();
    let job = NewJob {
        update_existing,
        ..new_job(id)
    };
    jobs.begin_job(f.partner, &job, NOW).await.unwrap();
    let received = Received {
        assets_count: meters.len() as u64,
        transmission_regions: vec!["CAISO".to_owned()],
        ..Received::default()
    };
    jobs.append_assets(id, AssetBatch::of_meters(0, &meters), NOW)
        .await
        .unwrap();
    jobs.commit_job(id, &received, NOW).await.unwrap();
    id
}

/// Where the first ten assets of a job stand.
pub async fn assets_of(f: &Fixture, job: JobId) -> Vec<AssetState> {
    f.stores
        .jobs
        .job_assets(f.partner, job, 0, 10)
        .await
        .unwrap()
}

/// Claims the job and processes it to the end, `chunk` assets at a time.
pub async fn process(f: &Fixture, job: JobId, chunk: usize) -> JobStatus {
    let jobs = &f.stores.jobs;
    assert_eq!(jobs.claim_job("w", LEASE, NOW).await.unwrap(), Some(job));
    loop {
        let report = jobs
            .process_chunk(job, "w", chunk, LEASE, false, NOW)
            .await
            .unwrap();
        if report.status != JobStatus::Processing {
            return report.status;
        }
    }
}

/// A participation change for each of `meters`, all or none, as the API makes it.
pub async fn set_participation(
    f: &Fixture,
    meters: &[MeterId],
    change: &PreferenceChange,
) -> Result<Applied, EditError> {
    let edits: Vec<MeterEdit> = meters
        .iter()
        .map(|&meter| MeterEdit {
            meter,
            change: Change::Preference(change.clone()),
        })
        .collect();
    f.stores
        .meters
        .change_meters(f.partner, &edits, Unknown::Refuse, NOW)
        .await
}
