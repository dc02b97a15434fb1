//! Webhooks and the event feed through the API, with a real receiver on 127.0.0.1:
//! subscriptions as Leap defines them, deliveries signed and retried on the schedule,
//! the delivery log, redelivery, and the feed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use gridroll_server::Config;
use gridroll_server::config::WebhookConfig;
use gridroll_server::webhooks::dispatch::Dispatcher;
use gridroll_testkit::Backend;
use serde_json::{Value, json};

use crate::common::receiver::{Received, Receiver, Reply};
use crate::common::{Answer, TestApp, TestClock, asset};

/// A harness whose webhooks may go to 127.0.0.1, timed by a test clock.
async fn app(backend: Backend) -> (TestApp, Arc<TestClock>) {
    app_with(backend, WebhookConfig::default()).await
}

async fn app_with(backend: Backend, webhooks: WebhookConfig) -> (TestApp, Arc<TestClock>) {
    let config = Config {
        webhooks: WebhookConfig {
            allow_private: true,
            ..webhooks
        },
        ..Config::default()
    };
    let clock = TestClock::new();
    let app = TestApp::with_config(backend, config)
        .await
        .with_clock(clock.clone());
    (app, clock)
}

async fn send(app: &TestApp, method: Method, uri: &str, body: Option<&Value>) -> Answer {
    let content_type = body.map(|_| "application/json");
    let body = body.map(Value::to_string).unwrap_or_default();
    app.send(method, uri, Some(&app.key), content_type, body)
        .await
}

/// Subscribes the harness's partner: answers the webhook id and its secret.
async fn subscribe(app: &TestApp, url: &str, types: &[&str]) -> (String, String) {
    let answer = app
        .post_json(
            "/v1.1/webhooks",
            &json!({"receiver_url": url, "event_types": types,
                    "headers": [{"name": "x-api-key", "value": "receiver-key"}]}),
        )
        .await
        .assert_ok();
    (
        answer.body["webhook_id"].as_str().unwrap().to_owned(),
        answer.body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn dispatch(app: &TestApp) -> usize {
    Dispatcher::new(&app.state).drain().await.unwrap()
}

/// Verifies a delivery with the Standard Webhooks library, as a receiver would.
fn verify(secret: &str, delivery: &Received) -> Result<(), String> {
    let verifier = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
    verifier
        .verify(&delivery.body, &delivery.headers)
        .map_err(|e| e.to_string())
}

/// Verifies a delivery's signature with Gridroll's own verifier, which (unlike a
/// receiver) does not compare its timestamp with the real time: for deliveries made at a
/// test clock's time.
fn signed_by(secret: &str, delivery: &Received) -> bool {
    let secret = gridroll_domain::webhook::Secret::parse(secret).unwrap();
    let timestamp: i64 = delivery.header("webhook-timestamp").parse().unwrap();
    gridroll_domain::webhook::verify(
        &secret,
        delivery.header("webhook-id"),
        timestamp,
        &delivery.body,
        delivery.header("webhook-signature"),
    )
}

/// The event types delivered, sorted: deliveries go out several at a time.
fn types(deliveries: &[Received]) -> Vec<String> {
    let mut types: Vec<String> = deliveries
        .iter()
        .map(|d| {
            d.json()["payload"]["webhook_event_type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.sort();
    types
}

async fn subscriptions_answer_the_references_shapes_and_are_the_partners_own(backend: Backend) {
    let (app, _) = app(backend).await;
    let (id, secret) = subscribe(&app, "https://receiver.example/in", &["meter.created"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = app.get("/v1.1/webhooks").await.assert_ok();
    let webhook = &listed.body["webhooks"][0];
    for field in ["webhook_id", "event_types", "headers", "receiver_url"] {
        assert!(
            webhook.get(field).is_some(),
            "{field} missing from {webhook}"
        );
    }
    assert_eq!(webhook["webhook_id"], id);
    assert_eq!(
        webhook["headers"],
        json!([{"name": "x-api-key", "value": "receiver-key"}])
    );
    assert_eq!(webhook["status"], "ENABLED");
    assert!(webhook.get("secret").is_none(), "the secret is shown once");

    let path = format!("/v1.1/webhooks/{id}");
    let replaced = send(
        &app,
        Method::PUT,
        &path,
        Some(&json!({"receiver_url": "https://receiver.example/v2",
                     "event_types": ["job.completed", "meter.enrollment.global-status.updated"]})),
    )
    .await
    .assert_ok();
    assert_eq!(replaced.body, json!({"webhook_id": id}));
    let now = app.get(&path).await.body;
    assert_eq!(now["receiver_url"], "https://receiver.example/v2");
    assert_eq!(now["headers"], json!([]), "a PUT replaces every setting");
    assert_eq!(now["event_types"].as_array().unwrap().len(), 2);

    let (_, other_key) = app.other_partner().await;
    for (method, uri) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/rotate-secret")),
        (Method::GET, format!("{path}/deliveries")),
    ] {
        let foreign = app
            .send(method.clone(), &uri, Some(&other_key), None, "")
            .await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{method} {uri}");
    }
    let not_an_id = app.get("/v1.1/webhooks/not-a-uuid").await;
    assert_eq!(not_an_id.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_an_id.body["details"]["webhook_id"], "not-a-uuid");

    let deleted = send(&app, Method::DELETE, &path, None).await;
    assert_eq!(deleted.body["message"], "Operation completed successfully");
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
}

async fn a_bad_subscription_is_refused_naming_the_field_and_nothing_is_stored(backend: Backend) {
    // Without --webhook-allow-private.
    let app = TestApp::new(backend).await;
    let cases = [
        (
            json!({"receiver_url": "http://receiver.example/in", "event_types": ["meter.created"]}),
            "receiver_url",
        ),
        (
            json!({"receiver_url": "https://10.1.2.3/in", "event_types": ["meter.created"]}),
            "receiver_url",
        ),
        (
            json!({"receiver_url": "https://localhost/in", "event_types": ["meter.created"]}),
            "receiver_url",
        ),
        (
            json!({"receiver_url": "not a url", "event_types": ["meter.created"]}),
            "receiver_url",
        ),
        (
            json!({"receiver_url": "https://no-such-host.invalid/in", "event_types": ["meter.created"]}),
            "receiver_url",
        ),
        (
            json!({"receiver_url": "https://receiver.example/in", "event_types": ["meter.deleted"]}),
            "event_types[0]",
        ),
        (
            json!({"receiver_url": "https://receiver.example/in", "event_types": []}),
            "event_types",
        ),
        (
            json!({"receiver_url": "https://receiver.example/in", "event_types": ["meter.created"],
                "headers": [{"name": "X-Key", "value": "a"}, {"name": "x-key", "value": "b"}]}),
            "headers[1].name",
        ),
        (
            json!({"receiver_url": "https://receiver.example/in", "event_types": ["meter.created"],
                "headers": [{"name": "webhook-signature", "value": "v1,forged"}]}),
            "headers[0].name",
        ),
    ];
    for (body, field) in cases {
        let answer = app.post_json("/v1.1/webhooks", &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        let problems = answer.body["details"]["problems"].as_array().unwrap();
        assert!(
            problems.iter().any(|p| p["field"] == field),
            "{body}: {}",
            answer.body
        );
    }
    for body in [
        "{not json",
        r#"{"receiver_url": "https://receiver.example/in"}"#,
        r#"{"receiver_url": "https://receiver.example/in", "event_types": ["meter.created"], "extra": 1}"#,
    ] {
        let answer = app
            .send(
                Method::POST,
                "/v1.1/webhooks",
                Some(&app.key),
                Some("application/json"),
                body,
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer.body["title"].is_string());
    }
    let listed = app.get("/v1.1/webhooks").await;
    assert_eq!(listed.body["webhooks"], json!([]));
}

async fn each_event_arrives_once_signed_so_that_an_independent_verifier_accepts_it(
    backend: Backend,
) {
    let (app, _) = app(backend).await;
    let receiver = Receiver::start().await;
    let (_, secret) = subscribe(&app, &receiver.url, &["meter.created", "job.completed"]).await;
    let job = app
        .submit("/v1.1/jobs/meters", vec![asset("ref-a"), asset("ref-b")])
        .await;
    app.drain().await;
    assert_eq!(dispatch(&app).await, 3);
    assert_eq!(dispatch(&app).await, 0, "nothing is sent twice");
    let got = receiver.received();
    assert_eq!(
        types(&got),
        ["job.completed", "meter.created", "meter.created"]
    );
    for delivery in &got {
        verify(&secret, delivery).unwrap();
        let body = delivery.json();
        assert_eq!(delivery.header("webhook-id"), body["webhook_event_id"]);
        assert_eq!(delivery.header("x-api-key"), "receiver-key");
        assert_eq!(delivery.header("content-type"), "application/json");
        let mut tampered = delivery.clone();
        tampered.body = delivery.body.slice(..delivery.body.len() - 1);
        assert!(verify(&secret, &tampered).is_err());
    }
    let ids: HashSet<&str> = got.iter().map(|d| d.header("webhook-id")).collect();
    assert_eq!(ids.len(), 3);
    let payloads: Vec<Value> = got.iter().map(|d| d.json()["payload"].clone()).collect();
    let status = app.job(&job).await;
    let created = payloads
        .iter()
        .find(|p| p["partner_reference"] == "ref-a")
        .unwrap();
    assert_eq!(created["meter_id"], status["assets"][0]["meter_id"]);
    assert_eq!(created["transmission_region"], "CAISO");
    let end = payloads
        .iter()
        .find(|p| p["webhook_event_type"] == "job.completed")
        .unwrap();
    assert_eq!(
        (end["job_id"].as_str(), end["status"].as_str()),
        (Some(job.as_str()), Some("COMPLETED"))
    );
}

async fn a_receiver_that_fails_three_times_gets_the_event_on_the_fourth_attempt(backend: Backend) {
    let (app, clock) = app(backend).await;
    let receiver = Receiver::start().await;
    receiver.then(&[Reply::Status(500), Reply::Status(503), Reply::Status(429)]);
    let (id, _) = subscribe(&app, &receiver.url, &["meter.created"]).await;
    app.submit("/v1.1/jobs/meters", vec![asset("ref-a")]).await;
    app.drain().await;
    assert_eq!(dispatch(&app).await, 1, "the first attempt at once");
    // Then after 1m, 2m and 4m (each with up to a tenth of jitter): nothing earlier.
    for delay in [60, 120, 240] {
        clock.advance(Duration::from_secs(delay * 85 / 100));
        assert_eq!(
            dispatch(&app).await,
            0,
            "too early for the retry after {delay}s"
        );
        clock.advance(Duration::from_secs(delay * 30 / 100));
        assert_eq!(dispatch(&app).await, 1, "the retry after {delay}s");
    }
    assert_eq!(receiver.received().len(), 4);
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(dispatch(&app).await, 0, "delivered: no more attempts");

    let log = app
        .get(&format!("/v1.1/webhooks/{id}/deliveries"))
        .await
        .assert_ok();
    let attempts = log.body["deliveries"].as_array().unwrap();
    let seen: Vec<(u64, bool, u64)> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["is_successful"].as_bool().unwrap(),
                a["status_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (4, true, 200),
            (3, false, 429),
            (2, false, 503),
            (1, false, 500)
        ]
    );
    assert!(attempts.iter().all(|a| a["delivery_status"] == "SUCCEEDED"));
}

async fn a_receiver_that_never_answers_ends_failed_after_the_last_attempt(backend: Backend) {
    let webhooks = WebhookConfig {
        timeout: Duration::from_millis(200),
        ..WebhookConfig::default()
    };
    let (app, clock) = app_with(backend, webhooks).await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::Stall(Duration::from_secs(5)));
    let (id, _) = subscribe(&app, &receiver.url, &["meter.created"]).await;
    app.submit("/v1.1/jobs/meters", vec![asset("ref-a")]).await;
    app.drain().await;
    let mut attempts = 0;
    for _ in 0..12 {
        attempts += dispatch(&app).await;
        clock.advance(Duration::from_secs(5 * 3600));
    }
    assert_eq!(attempts, 10, "the schedule's ten attempts, and no more");
    let log = app
        .get(&format!("/v1.1/webhooks/{id}/deliveries"))
        .await
        .body;
    let last = &log["deliveries"][0];
    assert_eq!(last["attempt"], 10);
    assert_eq!(last["delivery_status"], "FAILED");
    assert!(
        last["error"].as_str().unwrap().contains("timed out"),
        "{last}"
    );
    assert_eq!(last["status_code"], Value::Null);
}

async fn a_change_that_is_refused_or_rolled_back_emits_nothing(backend: Backend) {
    let (app, _) = app(backend).await;
    let receiver = Receiver::start().await;
    subscribe(
        &app,
        &receiver.url,
        &[
            "meter.created",
            "meter.enrollment.participation-status.updated",
        ],
    )
    .await;
    let refused = app
        .post_json(
            "/v1.1/jobs/meters",
            &json!({"assets": [asset("ok-1"), {"partner_reference": "x"}]}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let ids = app.import(vec![asset("ok-1")]).await;
    let stranger = gridroll_domain::MeterId::new();
    let bulk = app
        .post_json(
            "/v2/meters/participation",
            &json!({"participation_preference": "DISENROLL", "start_time": "2030-01-01T00:00:00Z",
                    "meter_ids": [ids[0], stranger]}),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::NOT_FOUND);
    dispatch(&app).await;
    assert_eq!(types(&receiver.received()), ["meter.created"]);
    let feed = app.get("/v1.1/events").await.body;
    assert_eq!(feed["events"].as_array().unwrap().len(), 1);
}

async fn a_chunk_that_failed_and_ran_again_emits_each_meters_event_once(backend: Backend) {
    let (app, clock) = app(backend).await;
    let sql = match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER refuse BEFORE INSERT ON meters WHEN NEW.partner_reference = 'ref-4'
             BEGIN SELECT RAISE(ABORT, 'refused'); END;"
        }
        Backend::Postgres => {
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'refused'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON meters FOR EACH ROW
                 WHEN (NEW.partner_reference = 'ref-4') EXECUTE FUNCTION refuse();"
        }
    };
    app.db.execute(sql).await;
    let assets: Vec<Value> = (0..6).map(|n| asset(&format!("ref-{n}"))).collect();
    let job = app.submit("/v1.1/jobs/meters", assets).await;
    let mut worker = app.worker("w");
    assert!(worker.step().await.is_err(), "the chunk with ref-4 fails");
    assert_eq!(
        app.count("SELECT count(*) FROM events").await,
        0,
        "and left nothing"
    );
    let drop = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse",
        Backend::Postgres => "DROP TRIGGER refuse ON meters",
    };
    app.db.execute(drop).await;
    clock.advance(Duration::from_secs(2));
    worker.drain().await.unwrap();
    assert_eq!(app.job(&job).await["status"], "COMPLETED");
    let feed = app.get("/v1.1/events?event_types=meter.created").await.body;
    let created: Vec<&str> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["partner_reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        created,
        ["ref-0", "ref-1", "ref-2", "ref-3", "ref-4", "ref-5"]
    );
}

async fn the_feed_returns_every_committed_event_once_in_order_while_jobs_run(backend: Backend) {
    let config = Config {
        chunk_size: 7,
        ..Config::default()
    };
    let app = TestApp::with_config(backend, config).await;
    let mut jobs = Vec::new();
    for batch in 0..3 {
        let assets: Vec<Value> = (0..40).map(|n| asset(&format!("b{batch}-{n}"))).collect();
        jobs.push(app.submit("/v1.1/jobs/meters", assets).await);
    }
    let workers: Vec<_> = (0..2)
        .map(|n| {
            let mut worker = app.worker(&format!("w{n}"));
            tokio::spawn(async move { worker.drain().await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut quiet_after_finish = false;
    loop {
        let finished = workers.iter().all(|w| w.is_finished());
        let uri = match &cursor {
            Some(c) => format!("/v1.1/events?page_size=10&after={c}"),
            None => "/v1.1/events?page_size=10".to_owned(),
        };
        let page = app.get(&uri).await.assert_ok();
        let events = page.body["events"].as_array().unwrap().clone();
        cursor = Some(page.body["next_cursor"].as_str().unwrap().to_owned());
        let empty = events.is_empty();
        seen.extend(events);
        if finished && empty {
            if quiet_after_finish {
                break;
            }
            quiet_after_finish = true;
        }
        tokio::task::yield_now().await;
    }
    let ids: HashSet<&str> = seen
        .iter()
        .map(|e| e["webhook_event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), seen.len(), "no event twice");
    let created = seen
        .iter()
        .filter(|e| e["payload"]["webhook_event_type"] == "meter.created")
        .count();
    let ends = seen
        .iter()
        .filter(|e| e["payload"]["webhook_event_type"] == "job.completed")
        .count();
    assert_eq!((created, ends), (120, 3), "every event");
    let mut by_job: Vec<Vec<&str>> = vec![Vec::new(); 3];
    for e in &seen {
        if let Some(reference) = e["payload"]["partner_reference"].as_str() {
            let batch: usize = reference[1..2].parse().unwrap();
            by_job[batch].push(reference);
        }
    }
    for (batch, references) in by_job.iter().enumerate() {
        let expected: Vec<String> = (0..40).map(|n| format!("b{batch}-{n}")).collect();
        assert_eq!(references, &expected, "each job's meters in commit order");
    }
}

async fn a_delivery_is_sent_again_on_request_and_failed_ones_are_recovered(backend: Backend) {
    let (app, clock) = app(backend).await;
    let receiver = Receiver::start().await;
    let (id, _) = subscribe(&app, &receiver.url, &["meter.created"]).await;
    app.import(vec![asset("ref-a")]).await;
    dispatch(&app).await;
    let event = receiver.received()[0].header("webhook-id").to_owned();
    let path = format!("/v1.1/webhooks/{id}/events/{event}/redeliver");
    let again = send(&app, Method::POST, &path, None).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_eq!(dispatch(&app).await, 1);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1].header("webhook-id"),
        event,
        "the same event, told apart by its id"
    );
    let unknown = format!(
        "/v1.1/webhooks/{id}/events/{}/redeliver",
        uuid::Uuid::now_v7()
    );
    assert_eq!(
        send(&app, Method::POST, &unknown, None).await.status,
        StatusCode::NOT_FOUND
    );

    // Every attempt fails while the receiver is down; recovery sends them again.
    receiver.always(Reply::Status(502));
    app.import(vec![asset("ref-b"), asset("ref-c")]).await;
    for _ in 0..11 {
        dispatch(&app).await;
        clock.advance(Duration::from_secs(5 * 3600));
    }
    receiver.always(Reply::Status(200));
    let recover = send(
        &app,
        Method::POST,
        &format!("/v1.1/webhooks/{id}/recover"),
        Some(&json!({"since": "2000-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(recover.status, StatusCode::ACCEPTED, "{}", recover.body);
    assert_eq!(recover.body, json!({"queued": 2, "more": false}));
    assert_eq!(dispatch(&app).await, 2);
    let bad = send(
        &app,
        Method::POST,
        &format!("/v1.1/webhooks/{id}/recover"),
        Some(&json!({"since": "yesterday"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

async fn a_rotated_secret_signs_beside_the_old_one_during_the_overlap(backend: Backend) {
    let (app, clock) = app(backend).await;
    let receiver = Receiver::start().await;
    let (id, old) = subscribe(&app, &receiver.url, &["meter.created"]).await;
    let rotated = send(
        &app,
        Method::POST,
        &format!("/v1.1/webhooks/{id}/rotate-secret"),
        None,
    )
    .await
    .assert_ok();
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    app.import(vec![asset("ref-a")]).await;
    dispatch(&app).await;
    let during = &receiver.received()[0];
    verify(&new, during).unwrap();
    verify(&old, during).unwrap();
    clock.advance(Duration::from_secs(86_400 + 1));
    app.import(vec![asset("ref-b")]).await;
    dispatch(&app).await;
    let after = &receiver.received()[1];
    assert!(signed_by(&new, after));
    assert!(
        !signed_by(&old, after),
        "the old secret has stopped signing"
    );
}

async fn the_test_endpoint_says_how_the_receiver_answered(backend: Backend) {
    let (app, _) = app(backend).await;
    let receiver = Receiver::start().await;
    let (id, secret) = subscribe(&app, &receiver.url, &["meter.created"]).await;
    let path = format!("/v1.1/webhooks/{id}/test");
    let event = json!({"webhook_event_type": "meter.created", "meter_id": uuid::Uuid::now_v7(),
                       "partner_reference": "sample-ref-123"});
    let ok = send(&app, Method::POST, &path, Some(&event))
        .await
        .assert_ok();
    assert_eq!(ok.body["is_successful"], true);
    assert_eq!(ok.body["status_code"], 200);
    assert!(ok.body["response_time_ms"].is_u64());
    let got = receiver.received();
    verify(&secret, &got[0]).unwrap();
    assert_eq!(got[0].json()["payload"], event);
    receiver.then(&[Reply::Status(500)]);
    let failed = send(&app, Method::POST, &path, Some(&event)).await;
    assert_eq!(
        (
            failed.body["is_successful"].clone(),
            failed.body["status_code"].clone()
        ),
        (json!(false), json!(500))
    );
    let invalid = send(
        &app,
        Method::POST,
        &path,
        Some(&json!({"webhook_event_type": "nope"})),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/v1.1/events").await.body["events"],
        json!([]),
        "a test is no event"
    );
}

async fn a_subscription_that_fails_for_days_is_disabled_and_enabling_it_resumes(backend: Backend) {
    let webhooks = WebhookConfig {
        disable_after: Duration::from_secs(3600),
        ..WebhookConfig::default()
    };
    let (app, clock) = app_with(backend, webhooks).await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::Status(500));
    let (id, _) = subscribe(&app, &receiver.url, &["meter.created"]).await;
    app.import(vec![asset("ref-a")]).await;
    for _ in 0..4 {
        dispatch(&app).await;
        clock.advance(Duration::from_secs(30 * 60));
    }
    let path = format!("/v1.1/webhooks/{id}");
    let shown = app.get(&path).await.body;
    assert_eq!(shown["status"], "DISABLED", "{shown}");
    assert!(shown["disabled_at"].is_string());
    let sent = receiver.received().len();
    app.import(vec![asset("ref-b")]).await;
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        dispatch(&app).await,
        0,
        "a disabled subscription is sent nothing"
    );

    receiver.always(Reply::Status(200));
    let enabled = send(&app, Method::POST, &format!("{path}/enable"), None).await;
    assert_eq!(enabled.body["status"], "ENABLED", "{}", enabled.body);
    app.import(vec![asset("ref-c")]).await;
    dispatch(&app).await;
    let references: Vec<String> = receiver.received()[sent..]
        .iter()
        .map(|d| {
            d.json()["payload"]["partner_reference"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(references.contains(&"ref-c".to_owned()), "{references:?}");
    assert!(
        !references.contains(&"ref-b".to_owned()),
        "made while disabled: in the feed"
    );
}

async fn the_feed_refuses_a_bad_cursor_and_unknown_types(backend: Backend) {
    let app = TestApp::new(backend).await;
    for uri in [
        "/v1.1/events?after=garbage",
        "/v1.1/events?event_types=meter.deleted",
        "/v1.1/events?page_size=0",
        "/v1.1/events?since=yesterday",
    ] {
        let answer = app.get(uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(answer.body["title"].is_string());
    }
    let first = app.get("/v1.1/events").await.body;
    let (_, other_key) = app.other_partner().await;
    let foreign = app
        .send(
            Method::GET,
            &format!(
                "/v1.1/events?after={}",
                first["next_cursor"].as_str().unwrap()
            ),
            Some(&other_key),
            None,
            "",
        )
        .await;
    assert_eq!(
        foreign.status,
        StatusCode::BAD_REQUEST,
        "a cursor is its partner's"
    );
}

async fn two_dispatchers_on_one_database_send_each_attempt_once(backend: Backend) {
    let (app, _) = app(backend).await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &["meter.created"]).await;
    // A second store on the same database, as another process has (on SQLite, served by
    // one process, a second dispatcher in it).
    let other = match backend {
        Backend::Sqlite => app.state.clone(),
        Backend::Postgres => {
            let stores =
                gridroll_store::open(app.db.url(), &gridroll_store::StoreOptions::default())
                    .await
                    .unwrap();
            gridroll_server::AppState::new(stores, app.state.config.as_ref().clone())
        }
    };
    for round in 0..3 {
        let assets: Vec<Value> = (0..30).map(|n| asset(&format!("r-{round}-{n}"))).collect();
        app.import(assets).await;
    }
    let first = Dispatcher::new(&app.state);
    let second = Dispatcher::new(&other);
    let (a, b) = tokio::join!(first.drain(), second.drain());
    assert_eq!(a.unwrap() + b.unwrap(), 90);
    let got = receiver.received();
    let ids: HashSet<&str> = got.iter().map(|d| d.header("webhook-id")).collect();
    assert_eq!((got.len(), ids.len()), (90, 90), "each event sent once");
}

async fn a_receiver_that_asks_to_wait_with_retry_after_is_not_tried_before(backend: Backend) {
    let (app, clock) = app(backend).await;
    let receiver = Receiver::start().await;
    receiver.then(&[Reply::RetryAfter(503, 3600)]);
    subscribe(&app, &receiver.url, &["meter.created"]).await;
    app.import(vec![asset("ref-a")]).await;
    assert_eq!(dispatch(&app).await, 1);
    // The schedule says a minute; the receiver asked for an hour.
    clock.advance(Duration::from_secs(3590));
    assert_eq!(dispatch(&app).await, 0, "not before Retry-After");
    clock.advance(Duration::from_secs(20));
    assert_eq!(dispatch(&app).await, 1);
}

async fn a_slow_receiver_does_not_hold_up_another_subscriptions_deliveries(backend: Backend) {
    let (app, _) = app(backend).await;
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.always(Reply::Stall(Duration::from_secs(8)));
    subscribe(&app, &slow.url, &["meter.created"]).await;
    subscribe(&app, &fast.url, &["meter.created"]).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(Dispatcher::new(&app.state).run(stopped));
    app.import(vec![asset("ref-a")]).await;
    let started = std::time::Instant::now();
    while fast.received().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the fast receiver waited behind the slow one"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The slow receiver takes 8 s over each delivery: the fast one was not behind it.
    stop.send(true).unwrap();
    running.await.unwrap();
}

async fn the_dispatcher_gives_way_while_a_chunk_is_written_and_delivers_everything(
    backend: Backend,
) {
    let (app, _) = app(backend).await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &["meter.created"]).await;
    // Three rounds' worth of events each time (a round reads 64).
    let import = |first: usize| {
        let assets = (first..first + 150)
            .map(|n| asset(&format!("ref-{n}")))
            .collect();
        app.submit("/v1.1/jobs/meters", assets)
    };

    // Nothing being written: no rest.
    import(0).await;
    app.drain().await;
    let idle = Dispatcher::new(&app.state);
    assert_eq!(idle.drain().await.unwrap(), 150);
    assert_eq!(idle.rested(), Duration::ZERO);

    // A chunk being written (counted as a worker counts it): the dispatcher rests
    // between rounds, and still sends every event once.
    import(150).await;
    app.drain().await;
    assert!(
        !app.state.activity.busy(),
        "the worker counts itself out again"
    );
    let writing = app.state.activity.enter();
    let polite = Dispatcher::new(&app.state);
    assert_eq!(polite.drain().await.unwrap(), 150);
    assert!(polite.rested() > Duration::ZERO, "it rested between rounds");
    drop(writing);
    assert_eq!(receiver.received().len(), 300);
}

gridroll_testkit::backend_tests!(
    the_dispatcher_gives_way_while_a_chunk_is_written_and_delivers_everything,
    a_receiver_that_asks_to_wait_with_retry_after_is_not_tried_before,
    a_slow_receiver_does_not_hold_up_another_subscriptions_deliveries,
    two_dispatchers_on_one_database_send_each_attempt_once,
    subscriptions_answer_the_references_shapes_and_are_the_partners_own,
    a_bad_subscription_is_refused_naming_the_field_and_nothing_is_stored,
    each_event_arrives_once_signed_so_that_an_independent_verifier_accepts_it,
    a_receiver_that_fails_three_times_gets_the_event_on_the_fourth_attempt,
    a_receiver_that_never_answers_ends_failed_after_the_last_attempt,
    a_change_that_is_refused_or_rolled_back_emits_nothing,
    a_chunk_that_failed_and_ran_again_emits_each_meters_event_once,
    the_feed_returns_every_committed_event_once_in_order_while_jobs_run,
    a_delivery_is_sent_again_on_request_and_failed_ones_are_recovered,
    a_rotated_secret_signs_beside_the_old_one_during_the_overlap,
    the_test_endpoint_says_how_the_receiver_answered,
    a_subscription_that_fails_for_days_is_disabled_and_enabling_it_resumes,
    the_feed_refuses_a_bad_cursor_and_unknown_types,
);
