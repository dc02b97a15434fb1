//! `Idempotency-Key`: a repeat gets the first answer and changes nothing more; another
//! request with the key, or one while the first still runs, is refused.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use bytes::Bytes;
use gridroll_testkit::Backend;
use serde_json::json;

use crate::common::{Answer, TestApp, TestClock, csv_file, csv_row};

impl TestApp {
    async fn with_key(
        &self,
        method: Method,
        uri: &str,
        key: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Answer {
        let api_key = self.key.clone();
        self.send_with(
            method,
            uri,
            Some(&api_key),
            content_type,
            &[("idempotency-key", key)],
            body,
        )
        .await
    }

    async fn upload_with_key(&self, key: &str, csv: String) -> Answer {
        self.with_key(
            Method::POST,
            "/v1.1/jobs/meters",
            key,
            Some("text/csv"),
            csv,
        )
        .await
    }
}

fn rows(references: &[&str]) -> String {
    csv_file(references.iter().map(|r| csv_row(r)))
}

async fn a_retried_upload_gets_the_first_job_and_makes_no_second(backend: Backend) {
    let app = TestApp::new(backend).await;
    let first = app
        .upload_with_key("upload-1", rows(&["ik-1", "ik-2"]))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = app
        .upload_with_key("upload-1", rows(&["ik-1", "ik-2"]))
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body, "the same job");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 1);

    app.drain().await;
    let job = app.job(first.body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    assert_eq!(app.count("SELECT count(*) FROM meters").await, 2);
}

async fn the_key_of_another_request_is_refused_naming_it_and_stores_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let first = app.upload_with_key("reused", rows(&["ik-1"])).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other_body = app.upload_with_key("reused", rows(&["ik-2"])).await;
    let other_query = app
        .with_key(
            Method::POST,
            "/v1.1/jobs/meters?update_existing=true",
            "reused",
            Some("text/csv"),
            rows(&["ik-1"]),
        )
        .await;
    for refused in [&other_body, &other_query] {
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        assert_eq!(refused.body["details"]["idempotency_key"], "reused");
    }
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 1);
}

async fn keys_are_each_partners_own(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mine = app.upload_with_key("shared-key", rows(&["ik-1"])).await;
    let (_, other_key) = app.other_partner().await;
    let theirs = app
        .send_with(
            Method::POST,
            "/v1.1/jobs/meters",
            Some(&other_key),
            Some("text/csv"),
            &[("idempotency-key", "shared-key")],
            rows(&["ik-1"]),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(theirs.body["job_id"], mine.body["job_id"]);
}

/// The first request's body is held open, so that it is still running when the second
/// comes, on PostgreSQL to another process.
async fn a_repeat_while_the_first_is_running_is_a_conflict(backend: Backend) {
    let app = TestApp::new(backend).await;
    let other = match backend {
        Backend::Sqlite => app.router.clone(),
        Backend::Postgres => {
            let stores =
                gridroll_store::open(app.db.url(), &gridroll_store::StoreOptions::default())
                    .await
                    .unwrap();
            let config = app.state.config.as_ref().clone();
            gridroll_server::router(gridroll_server::AppState::new(stores, config))
        }
    };
    let upload_to_other = |csv: String| {
        let (other, key) = (other.clone(), app.key.clone());
        async move {
            let request = axum::http::Request::post("/v1.1/jobs/meters")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "text/csv")
                .header("idempotency-key", "slow")
                .body(Body::from(csv))
                .unwrap();
            crate::common::checked(
                &Method::POST,
                "/v1.1/jobs/meters",
                tower::ServiceExt::oneshot(other, request).await.unwrap(),
            )
            .await
        }
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(chunk), receiver))
    });
    let csv = rows(&["ik-1"]);
    let (head, tail) = csv.split_at(20);
    sender.send(Bytes::from(head.to_owned())).await.unwrap();
    let first = {
        let router = app.router.clone();
        let key = app.key.clone();
        tokio::spawn(async move {
            let request = axum::http::Request::post("/v1.1/jobs/meters")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "text/csv")
                .header("idempotency-key", "slow")
                .body(Body::from_stream(body))
                .unwrap();
            let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
            crate::common::checked(&Method::POST, "/v1.1/jobs/meters", response).await
        })
    };
    let held = "SELECT count(*) FROM idempotency_keys WHERE status IS NULL";
    for _ in 0..500 {
        if app.count(held).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.count(held).await, 1, "the first request holds the key");

    let second = upload_to_other(csv.clone()).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert_eq!(second.body["details"]["idempotency_key"], "slow");

    sender.send(Bytes::from(tail.to_owned())).await.unwrap();
    drop(sender);
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let third = upload_to_other(csv).await;
    assert_eq!(third.body, first.body);
    assert_eq!(third.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 1);
}

/// A fault of the server keeps nothing: the retry runs again, and succeeds.
async fn a_server_fault_is_not_replayed(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.db
        .execute(match backend {
            Backend::Sqlite => {
                "CREATE TRIGGER fault BEFORE INSERT ON job_segments
                 BEGIN SELECT RAISE(ABORT, 'a fault of the server'); END;"
            }
            Backend::Postgres => {
                "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'a fault of the server'; END $$;
                 CREATE TRIGGER fault BEFORE INSERT ON job_segments
                     FOR EACH ROW EXECUTE FUNCTION fault();"
            }
        })
        .await;
    let failed = app.upload_with_key("retry-me", rows(&["ik-1"])).await;
    assert_eq!(
        failed.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        failed.body
    );
    app.db
        .execute(match backend {
            Backend::Sqlite => "DROP TRIGGER fault",
            Backend::Postgres => "DROP TRIGGER fault ON job_segments",
        })
        .await;
    let retried = app.upload_with_key("retry-me", rows(&["ik-1"])).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.body);
    assert_eq!(retried.header("idempotent-replayed"), None);
}

/// A body that broke off keeps nothing under the key, so the retry with the whole body is
/// made, not refused as another request.
async fn an_upload_whose_body_broke_off_is_made_when_retried(backend: Backend) {
    let app = TestApp::new(backend).await;
    let csv = rows(&["ik-1", "ik-2"]);
    let (head, _) = csv.split_at(csv.len() / 2);
    let broken = futures_util::stream::iter([
        Ok(Bytes::from(head.to_owned())),
        Err(std::io::Error::other("the connection was reset")),
    ]);
    let request = axum::http::Request::post("/v1.1/jobs/meters")
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "text/csv")
        .header("idempotency-key", "broken")
        .body(Body::from_stream(broken))
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request)
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::CREATED);
    let retried = app.upload_with_key("broken", csv).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.body);
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 1);
}

/// Webhook changes are replayed too: a repeated creation answers the same subscription
/// and secret, a repeated deletion what the first answered.
async fn webhook_changes_are_replayed_with_the_first_answer(backend: Backend) {
    let app = TestApp::with_config(
        backend,
        gridroll_server::Config {
            webhooks: gridroll_server::config::WebhookConfig {
                allow_private: true,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let subscription =
        json!({"receiver_url": "http://127.0.0.1:9/hook", "event_types": ["meter.created"]})
            .to_string();
    let create = |key: &'static str| {
        let (app, body) = (&app, subscription.clone());
        async move {
            app.with_key(
                Method::POST,
                "/v1.1/webhooks",
                key,
                Some("application/json"),
                body,
            )
            .await
        }
    };
    let first = create("hook-1").await.assert_ok();
    let again = create("hook-1").await;
    assert_eq!(again.body, first.body, "the same id and secret");
    assert_eq!(
        app.get("/v1.1/webhooks").await.body["webhooks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let path = format!(
        "/v1.1/webhooks/{}",
        first.body["webhook_id"].as_str().unwrap()
    );
    app.with_key(Method::DELETE, &path, "delete-1", None, Body::empty())
        .await
        .assert_ok();
    let repeated = app
        .with_key(Method::DELETE, &path, "delete-1", None, Body::empty())
        .await;
    assert_eq!(
        repeated.status,
        StatusCode::OK,
        "the first answer, not a 404"
    );
    assert_eq!(repeated.header("idempotent-replayed"), Some("true"));
}

async fn a_malformed_key_is_refused_and_reads_ignore_keys(backend: Backend) {
    let app = TestApp::new(backend).await;
    let long = "k".repeat(256);
    for malformed in ["", "two words", long.as_str()] {
        let refused = app.upload_with_key(malformed, rows(&["ik-1"])).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{malformed:?}");
        assert!(refused.body["details"].get("Idempotency-Key").is_some());
    }
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 0);

    // A search changes nothing, so the same key may go with any search.
    for body in [json!({}), json!({"partner_references": ["x-1"]})] {
        let searched = app
            .with_key(
                Method::POST,
                "/v2/meters/search",
                "search-key",
                Some("application/json"),
                body.to_string(),
            )
            .await
            .assert_ok();
        assert_eq!(searched.header("idempotent-replayed"), None);
    }
}

/// A day later the key is free again, and the sweep removes what was kept.
async fn a_key_is_kept_a_day_then_removed(backend: Backend) {
    let clock = TestClock::new();
    let app = TestApp::new(backend).await.with_clock(clock.clone());
    let first = app.upload_with_key("daily", rows(&["ik-1"])).await;
    clock.advance(Duration::from_secs(23 * 3600));
    let replayed = app.upload_with_key("daily", rows(&["ik-1"])).await;
    assert_eq!(replayed.body, first.body);
    clock.advance(Duration::from_secs(2 * 3600));
    let sweep = gridroll_server::webhooks::dispatch::Retention::new(&app.state);
    sweep.sweep().await.unwrap();
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0);
    let fresh = app.upload_with_key("daily", rows(&["ik-2"])).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);
    assert_ne!(fresh.body["job_id"], first.body["job_id"]);
}

gridroll_testkit::backend_tests!(
    a_retried_upload_gets_the_first_job_and_makes_no_second,
    the_key_of_another_request_is_refused_naming_it_and_stores_nothing,
    keys_are_each_partners_own,
    a_repeat_while_the_first_is_running_is_a_conflict,
    a_server_fault_is_not_replayed,
    an_upload_whose_body_broke_off_is_made_when_retried,
    webhook_changes_are_replayed_with_the_first_answer,
    a_malformed_key_is_refused_and_reads_ignore_keys,
    a_key_is_kept_a_day_then_removed,
);
