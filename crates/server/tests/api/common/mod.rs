//! A test harness: the real router over a fresh database of the backend under test, one
//! partner with a key, and a worker the test drives by hand.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gridroll_domain::PartnerId;
use gridroll_domain::scope::Scopes;
use gridroll_domain::timestamp::now_millis;
use gridroll_server::auth::issue_api_key;
use gridroll_server::worker::Worker;
use gridroll_server::{AppState, Config, router};
use gridroll_store::{AccountStore, JobStore, MeterStore, StoreOptions, Stores};
use gridroll_testkit::{Backend, TestDatabase};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub mod conformance;
pub mod portal;
pub mod receiver;

pub const CSV_HEADER: &str = "partner_reference,transmission_region,customer_classification,load_types,meter_type,street_1,postal_code,city,state_or_province_code,country_code";

pub struct TestApp {
    pub accounts: Arc<dyn AccountStore>,
    pub jobs: Arc<dyn JobStore>,
    pub meters: Arc<dyn MeterStore>,
    pub router: Router,
    /// The state the router serves.
    pub state: AppState,
    pub config: Config,
    pub partner: PartnerId,
    pub key: String,
    /// Last, so that it is dropped after the store's connections.
    pub db: TestDatabase,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The answer, once it is known to be a `200 OK` (otherwise the test fails, showing
    /// the body).
    #[track_caller]
    pub fn assert_ok(self) -> Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self
    }

    /// A header of the answer, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    pub async fn new(backend: Backend) -> Self {
        Self::with_config(backend, Config::default()).await
    }

    pub async fn with_config(backend: Backend, config: Config) -> Self {
        Self::with_options(backend, config, StoreOptions::default()).await
    }

    /// The harness with its store opened with `options`.
    pub async fn with_options(backend: Backend, config: Config, options: StoreOptions) -> Self {
        let db = TestDatabase::new(backend)
            .await
            .expect("the backend is available");
        let stores = gridroll_store::open(db.url(), &options)
            .await
            .expect("open the store");
        gridroll_server::prepare(&AppState::new(stores.clone(), config.clone()))
            .await
            .unwrap();
        let partner = stores
            .accounts
            .create_partner("Test Partner", now_millis())
            .await
            .unwrap();
        Self::assemble(db, stores, config, partner.id).await
    }

    /// The harness over a database that already holds `partner`, as a server starting on
    /// it finds it (migrating it first).
    pub async fn for_partner(db: TestDatabase, partner: PartnerId) -> Self {
        let config = Config::default();
        let stores = open(&db).await;
        gridroll_server::prepare(&AppState::new(stores.clone(), config.clone()))
            .await
            .unwrap();
        Self::assemble(db, stores, config, partner).await
    }

    async fn assemble(
        db: TestDatabase,
        stores: Stores,
        config: Config,
        partner: PartnerId,
    ) -> Self {
        let key = issue_api_key(
            stores.accounts.as_ref(),
            partner,
            "test",
            Scopes::ALL,
            now_millis(),
        )
        .await
        .unwrap()
        .1;
        Self::serving(db, stores, config, partner, key)
    }

    /// The harness of a server on `stores`.
    fn serving(
        db: TestDatabase,
        stores: Stores,
        config: Config,
        partner: PartnerId,
        key: String,
    ) -> Self {
        let state = AppState::new(stores.clone(), config.clone());
        let router = router(state.clone());
        Self {
            accounts: stores.accounts,
            jobs: stores.jobs,
            meters: stores.meters,
            router,
            state,
            config,
            partner,
            key,
            db,
        }
    }

    /// The harness with every time (the API's, the workers', the dispatcher's) read
    /// from `clock`.
    pub fn with_clock(mut self, clock: Arc<TestClock>) -> Self {
        self.state = self.state.with_clock(clock);
        self.router = router(self.state.clone());
        self
    }

    /// The same database opened by a new process: the old store is dropped first.
    pub async fn restart(self) -> Self {
        let Self {
            router,
            state,
            config,
            partner,
            key,
            db,
            ..
        } = self;
        drop((router, state));
        let stores = open(&db).await;
        stores.maintenance.recover(now_millis()).await.unwrap();
        Self::serving(db, stores, config, partner, key)
    }

    /// What a process that died mid-upload leaves: a job being received, with the assets
    /// of `references` stored.
    pub async fn receiving(&self, references: &[&str]) -> gridroll_domain::JobId {
        let id = gridroll_domain::JobId::new();
        let job = gridroll_store::NewJob {
            id,
            file_name: Some("cut.csv".to_owned()),
            update_existing: false,
            processed_by: None,
        };
        self.jobs
            .begin_job(self.partner, &job, now_millis())
            .await
            .unwrap();
        if !references.is_empty() {
            let meters: Vec<gridroll_domain::MeterData> = references
                .iter()
                .map(|r| gridroll_domain::MeterData::parse(asset(r)).unwrap())
                .collect();
            let assets = gridroll_store::AssetBatch::of_meters(0, &meters);
            self.jobs
                .append_assets(id, assets, now_millis())
                .await
                .unwrap();
        }
        id
    }

    /// Imports meters of these assets as the operator does (they may share references).
    pub async fn import(&self, assets: Vec<Value>) -> Vec<gridroll_domain::MeterId> {
        let meters = assets
            .into_iter()
            .map(|a| gridroll_domain::MeterData::parse(a).unwrap())
            .collect();
        self.meters
            .import_meters(
                self.partner,
                gridroll_domain::enums::CreatedBy::Utility,
                meters,
                self.state.now_millis(),
            )
            .await
            .unwrap()
    }

    /// A second partner and its key.
    pub async fn other_partner(&self) -> (PartnerId, String) {
        let partner = self
            .accounts
            .create_partner("Other Partner", now_millis())
            .await
            .unwrap();
        let key = issue_api_key(
            self.accounts.as_ref(),
            partner.id,
            "test",
            Scopes::ALL,
            now_millis(),
        )
        .await
        .unwrap()
        .1;
        (partner.id, key)
    }

    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Answer {
        self.send_with(method, uri, key, content_type, &[], body)
            .await
    }

    /// [`TestApp::send`] with more headers.
    pub async fn send_with(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Answer {
        let mut request = Request::builder().method(method.clone()).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let answer = answer(response).await;
        conformance::check(&method, uri, answer.status, &answer.headers, &answer.body);
        answer
    }

    pub async fn get(&self, uri: &str) -> Answer {
        self.send(Method::GET, uri, Some(&self.key), None, Body::empty())
            .await
    }

    pub async fn post_json(&self, uri: &str, body: &Value) -> Answer {
        self.send(
            Method::POST,
            uri,
            Some(&self.key),
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    pub async fn post_csv(&self, uri: &str, body: impl Into<Body>) -> Answer {
        self.send(Method::POST, uri, Some(&self.key), Some("text/csv"), body)
            .await
    }

    /// Submits a JSON job and returns its id.
    pub async fn submit(&self, uri: &str, assets: Vec<Value>) -> String {
        let answer = self.post_json(uri, &json!({ "assets": assets })).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["job_id"].as_str().unwrap().to_owned()
    }

    /// A worker like the server's, for the test to drive.
    pub fn worker(&self, name: &str) -> Worker {
        Worker::new(self.jobs.clone(), name, self.config.worker_config())
            .with_clock(self.state.clock.clone())
            .with_activity(self.state.activity.clone())
    }

    /// Processes every job to the end.
    pub async fn drain(&self) {
        self.worker("test-worker").drain().await.unwrap();
    }

    /// Sends a JSON body with the partner's key.
    pub async fn send_json(&self, method: Method, uri: &str, body: &Value) -> Answer {
        self.send(
            method,
            uri,
            Some(&self.key),
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    /// Creates meters from assets, processed to the end; answers their ids by reference.
    /// Archives `meter_ids` (a JSON list) through the API.
    pub async fn archive(&self, meter_ids: Value) -> Answer {
        let body = json!({ "meter_ids": meter_ids });
        self.send_json(Method::POST, "/v1.1/meters/archive", &body)
            .await
    }

    /// Brings `meter_ids` (a JSON list) back from the archive through the API.
    pub async fn unarchive(&self, meter_ids: Value) -> Answer {
        let body = json!({ "meter_ids": meter_ids });
        self.send_json(Method::POST, "/v1.1/meters/unarchive", &body)
            .await
    }

    pub async fn create_meters(&self, assets: Vec<Value>) -> BTreeMap<String, String> {
        let job_id = self.submit("/v1.1/jobs/meters", assets).await;
        self.drain().await;
        let job = self.job(&job_id).await;
        job["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["partner_reference"].as_str().unwrap().to_owned(),
                    a["meter_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The payloads of the partner's events of `types` (comma-separated), oldest first.
    pub async fn event_payloads(&self, types: &str) -> Vec<Value> {
        let feed = self.get(&format!("/v1.1/events?event_types={types}")).await;
        assert_eq!(feed.status, StatusCode::OK, "{}", feed.body);
        feed.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["payload"].clone())
            .collect()
    }

    pub async fn job(&self, job_id: &str) -> Value {
        let answer = self.get(&format!("/v1.1/jobs/meters/{job_id}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body
    }

    pub async fn meter(&self, meter_id: &str) -> Value {
        let answer = self.get(&format!("/v2/meters/{meter_id}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body
    }

    /// Counts rows straight from the database, behind the API's back.
    pub async fn count(&self, sql: &str) -> i64 {
        self.db.count(sql).await
    }

    /// Drives workers until the job is final. Where a dead worker's lease must lapse
    /// first (PostgreSQL keeps leases across restarts), this waits for it, up to a limit.
    pub async fn finish(&self, job_id: &str) -> Value {
        let started = std::time::Instant::now();
        let mut worker = self.worker("finisher");
        loop {
            worker.drain().await.unwrap();
            let job = self.job(job_id).await;
            if job["status"] != "PROCESSING" {
                return job;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "job {job_id} never finished: {job}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// A clock the test moves by hand, starting at the real time.
pub struct TestClock(std::sync::Mutex<time::OffsetDateTime>);

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(time::OffsetDateTime::now_utc())))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl gridroll_domain::timestamp::Clock for TestClock {
    fn now(&self) -> time::OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// [`answer`], checked against the OpenAPI document as every answer of
/// [`TestApp::send_with`] is: for requests a test sends to a router itself.
pub async fn checked(method: &Method, uri: &str, response: axum::response::Response) -> Answer {
    let answer = answer(response).await;
    conformance::check(method, uri, answer.status, &answer.headers, &answer.body);
    answer
}

/// A response's status and JSON body (`null` when empty).
pub async fn answer(response: axum::response::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let csv = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/csv"));
    let body = if bytes.is_empty() {
        Value::Null
    } else if csv {
        // A CSV answer (a template, an export) is kept as its text.
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{status}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Answer {
        status,
        headers,
        body,
    }
}

async fn open(db: &TestDatabase) -> Stores {
    gridroll_store::open(db.url(), &StoreOptions::default())
        .await
        .expect("open the store")
}

/// The meter ids a job's assets were given, in upload order.
pub fn meter_ids(job: &Value) -> Vec<String> {
    job["assets"]
        .as_array()
        .expect("the job's assets")
        .iter()
        .map(|a| a["meter_id"].as_str().expect("a meter id").to_owned())
        .collect()
}

/// A valid asset with only the global required fields.
pub fn asset(reference: &str) -> Value {
    json!({
        "partner_reference": reference,
        "transmission_region": "CAISO",
        "customer_classification": "RESIDENTIAL",
        "load_types": ["HVAC"],
        "meter_type": "DEVICE",
        "customer": {
            "street_1": "1 Main St",
            "postal_code": "94105",
            "city": "San Francisco",
            "state_or_province_code": "CA",
            "country_code": "US"
        }
    })
}

/// An asset of every object and most fields of the model, valid.
pub fn full_asset(reference: &str) -> Value {
    json!({
        "partner_reference": reference,
        "transmission_region": "CAISO",
        "customer_classification": "COMMERCIAL",
        "load_types": ["BATTERY_STORAGE", "HVAC"],
        "meter_type": "UTILITY_METER",
        "customer": {
            "street_1": "132 My Street",
            "street_2": "Apartment 32",
            "postal_code": "10001",
            "city": "New York",
            "state_or_province_code": "NY",
            "country_code": "US",
            "end_customer_name": "Customer Name",
            "end_customer_email": "email@address.com",
            "partner_offering_date": "2000-01-23",
            "is_in_wholesale_capacity_market": true,
            "dispatch_option": "DAILY",
            "billing": {
                "street_1": "132 My Billing Street",
                "postal_code": "90210",
                "city": "Los Angeles",
                "state_or_province_code": "CA",
                "country_code": "US"
            }
        },
        "device": {
            "device_type": "BATTERY",
            "device_serial_number": "device-serial-number",
            "install_date": "2023-07-01",
            "battery_power_capacity_kw": 1.233,
            "battery_energy_capacity_kwh": 9.876,
            "battery_duration_hours": 4
        },
        "site": {
            "number_of_devices": 2,
            "site_devices": [
                {"device_type": "BATTERY", "energy_capacity_kwh": 39.504, "voltage_level": "EVSE_LEVEL_1", "pv_connected": true},
                {"device_type": "EV_CHARGER", "model_year": 2020}
            ]
        },
        "caiso": {"is_receiving_sgip_funding": true, "nem_type": "NEM2"},
        "isone": {"in_connected_solutions": true},
        "nyiso": {"cbl_method": "AVERAGE_DAY", "company_type": "CORPORATION"},
        "utility": {
            "utility_name": "PGE",
            "load_serving_entity": "PGE",
            "electric_service_account_number": "12243243-121",
            "voltage": ">= 600 V"
        },
        "customer_group": "customer_group"
    })
}

/// [`asset`] in another region, class and load types, with `extra` objects set.
pub fn asset_of(reference: &str, region: &str, class: &str, loads: &[&str], extra: Value) -> Value {
    let mut a = asset(reference);
    a["transmission_region"] = json!(region);
    a["customer_classification"] = json!(class);
    a["load_types"] = json!(loads);
    for (key, value) in extra.as_object().expect("extra is an object") {
        a[key] = value.clone();
    }
    a
}

/// A CSV file of these rows under [`CSV_HEADER`], lines ending in LF.
pub fn csv_file(rows: impl IntoIterator<Item = String>) -> String {
    let mut csv = CSV_HEADER.to_owned();
    for row in rows {
        csv.push('\n');
        csv.push_str(&row);
    }
    csv
}

/// The same as a spreadsheet saves it: lines ending in CRLF, the last one too.
pub fn csv_file_crlf(rows: &[String]) -> String {
    let mut file = format!("{CSV_HEADER}\r\n");
    for row in rows {
        file.push_str(row);
        file.push_str("\r\n");
    }
    file
}

/// A CSV row matching [`CSV_HEADER`].
pub fn csv_row(reference: &str) -> String {
    format!("{reference},CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main St,94105,San Francisco,CA,US")
}

/// An id as a literal of the backend's SQL.
pub fn uuid_literal(backend: Backend, id: &uuid::Uuid) -> String {
    match backend {
        Backend::Sqlite => format!("X'{}'", id.simple()),
        Backend::Postgres => format!("'{id}'::uuid"),
    }
}

/// A text as a literal of SQL.
pub fn text_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
