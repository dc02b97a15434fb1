//! A test harness: the real router over a fresh SQLite file, one partner with a key, and
//! a worker the test drives by hand, so that no test sleeps.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gridroll_domain::PartnerId;
use gridroll_server::auth::issue_api_key;
use gridroll_server::worker::Worker;
use gridroll_server::{AppState, Config, router};
use gridroll_store::{Store, StoreOptions};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

pub const CSV_HEADER: &str = "partner_reference,transmission_region,customer_classification,load_types,meter_type,street_1,postal_code,city,state_or_province_code,country_code";

pub struct TestApp {
    pub dir: TempDir,
    pub store: Arc<dyn Store>,
    pub router: Router,
    pub config: Config,
    pub partner: PartnerId,
    pub key: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = open(&dir).await;
        let partner = store.create_partner("Test Partner").await.unwrap();
        let key = issue_api_key(store.as_ref(), partner.id, "test")
            .await
            .unwrap();
        let router = router(AppState::new(store.clone(), config.clone()));
        Self {
            dir,
            store,
            router,
            config,
            partner: partner.id,
            key,
        }
    }

    /// The same database opened by a new process: the old store is dropped first.
    pub async fn restart(self) -> Self {
        let Self {
            dir,
            store,
            router,
            config,
            partner,
            key,
        } = self;
        drop(router);
        drop(store);
        let store = open(&dir).await;
        store.recover().await.unwrap();
        let router = router_for(store.clone(), config.clone());
        Self {
            dir,
            store,
            router,
            config,
            partner,
            key,
        }
    }

    /// A second partner and its key.
    pub async fn other_partner(&self) -> (PartnerId, String) {
        let partner = self.store.create_partner("Other Partner").await.unwrap();
        let key = issue_api_key(self.store.as_ref(), partner.id, "test")
            .await
            .unwrap();
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
        let mut request = Request::builder().method(method).uri(uri);
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
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{status}: body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Answer { status, body }
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
        Worker::new(self.store.clone(), name, self.config.worker_config())
    }

    /// Processes every job to the end.
    pub async fn drain(&self) {
        self.worker("test-worker").drain().await.unwrap();
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

    /// Counts rows straight from the database file, behind the API's back.
    pub fn count_rows(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.dir.path().join("gridroll.db")).unwrap();
        conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }
}

async fn open(dir: &TempDir) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.path().join("gridroll.db").display());
    gridroll_store::open(&url, &StoreOptions::default())
        .await
        .expect("open the store")
}

fn router_for(store: Arc<dyn Store>, config: Config) -> Router {
    router(AppState::new(store, config))
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

/// A CSV row matching [`CSV_HEADER`].
pub fn csv_row(reference: &str) -> String {
    format!("{reference},CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main St,94105,San Francisco,CA,US")
}
