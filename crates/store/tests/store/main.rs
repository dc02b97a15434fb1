//! The store's areas through their traits, on every backend, without HTTP: what each
//! method promises its callers.

mod accounts;
mod catalog;
mod jobs;
mod meters;

use gridroll_domain::program::{DEFAULT_CATALOG, parse_catalog};
use gridroll_domain::{MeterData, PartnerId};
use gridroll_store::{StoreOptions, Stores};
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
        let db = TestDatabase::new(backend)
            .await
            .expect("the backend is available");
        let stores = gridroll_store::open(db.url(), &StoreOptions::default())
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
