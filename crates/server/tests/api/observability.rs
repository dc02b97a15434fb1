//! What operators see: request ids, metrics, readiness and the access log.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gridroll_testkit::Backend;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::common::TestApp;

const NO_METER: &str = "/v2/meters/01900000-0000-7000-8000-000000000000";

async fn every_answer_carries_a_request_id_and_errors_repeat_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = app.key.clone();
    let kept = app
        .send_with(
            Method::GET,
            NO_METER,
            Some(&key),
            None,
            &[("x-request-id", "trace-42.a_b")],
            Body::empty(),
        )
        .await;
    assert_eq!(kept.status, StatusCode::NOT_FOUND);
    assert_eq!(kept.header("x-request-id"), Some("trace-42.a_b"));
    assert_eq!(kept.body["request_id"], "trace-42.a_b");

    let long = "x".repeat(129);
    for insane in ["two words", long.as_str()] {
        let replaced = app
            .send_with(
                Method::GET,
                NO_METER,
                Some(&key),
                None,
                &[("x-request-id", insane)],
                Body::empty(),
            )
            .await;
        let id = replaced.header("x-request-id").unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{insane:?} became {id}");
        assert_eq!(replaced.body["request_id"], id);
    }

    let fine = app.get("/v1.1/programs").await.assert_ok();
    assert!(fine.header("x-request-id").is_some_and(|id| !id.is_empty()));
    let unauthorized = app
        .send(Method::GET, "/v1.1/programs", None, None, Body::empty())
        .await;
    assert_eq!(
        unauthorized.body["request_id"].as_str(),
        unauthorized.header("x-request-id")
    );
}

type Exposition = openmetrics_parser::MetricsExposition<
    openmetrics_parser::PrometheusType,
    openmetrics_parser::PrometheusValue,
>;

async fn scrape(app: &TestApp) -> Exposition {
    let request = Request::get("/metrics").body(Body::empty()).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    openmetrics_parser::prometheus::parse_prometheus(&text)
        .unwrap_or_else(|e| panic!("the metrics do not parse as Prometheus text: {e:?}\n{text}"))
}

/// The sum of a family's samples whose labels include `labels`: counters and gauges by
/// value, histograms by their count of observations.
fn sample(metrics: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    use openmetrics_parser::PrometheusValue;
    let Some(family) = metrics.families.get(name) else {
        return 0.0;
    };
    family
        .iter_samples()
        .filter(|s| {
            let set = s.get_labelset().unwrap();
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|s| match &s.value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(_) => 0.0,
        })
        .sum()
}

/// The metrics are the process's (every test of this binary adds to them), so the test
/// looks at how much they moved, never at their values.
async fn metrics_parse_as_prometheus_text_and_move_with_requests(backend: Backend) {
    let app = TestApp::new(backend).await;
    let labels = [
        ("method", "GET"),
        ("route", "/v2/meters/{meter_id}"),
        ("status", "404"),
    ];
    let before = sample(&scrape(&app).await, "gridroll_http_requests_total", &labels);
    for _ in 0..3 {
        assert_eq!(app.get(NO_METER).await.status, StatusCode::NOT_FOUND);
    }
    let job = app
        .submit("/v1.1/jobs/meters", vec![crate::common::asset("m-1")])
        .await;
    app.drain().await;
    assert_eq!(app.job(&job).await["status"], "COMPLETED");

    let after = scrape(&app).await;
    let moved = sample(&after, "gridroll_http_requests_total", &labels) - before;
    assert!(moved >= 3.0, "the counter moved by {moved}");
    let durations = sample(
        &after,
        "gridroll_http_request_duration_seconds",
        &labels[..2],
    );
    assert!(durations >= 3.0, "{durations} latencies recorded");
    assert!(
        sample(
            &after,
            "gridroll_jobs_finished_total",
            &[("status", "COMPLETED")]
        ) >= 1.0
    );
    assert!(
        sample(
            &after,
            "gridroll_assets_processed_total",
            &[("outcome", "created")]
        ) >= 1.0
    );
    for gauge in [
        "gridroll_jobs_waiting",
        "gridroll_jobs_running",
        "gridroll_jobs_oldest_age_seconds",
        "gridroll_db_connections_max",
    ] {
        assert!(after.families.contains_key(gauge), "{gauge} is missing");
    }
    assert!(sample(&after, "gridroll_db_connections_max", &[]) >= 1.0);
}

async fn readiness_needs_the_database_at_this_releases_schema(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ready = app
        .send(Method::GET, "/readyz", None, None, Body::empty())
        .await
        .assert_ok();
    assert_eq!(ready.body["status"], "ready");

    // A newer release migrated the database behind this process's back.
    app.db
        .execute(match backend {
            Backend::Sqlite => "PRAGMA user_version = 999",
            Backend::Postgres => "INSERT INTO schema_migrations VALUES (999, 0)",
        })
        .await;
    let stale = app
        .send(Method::GET, "/readyz", None, None, Body::empty())
        .await;
    assert_eq!(stale.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        stale.body["details"]["error"]
            .as_str()
            .unwrap()
            .contains("schema"),
        "{}",
        stale.body
    );
    let alive = app
        .send(Method::GET, "/healthz", None, None, Body::empty())
        .await;
    assert_eq!(
        alive.status,
        StatusCode::OK,
        "liveness does not depend on it"
    );
}

/// PostgreSQL is a server of its own, which can go away under a running Gridroll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_postgres_is_unreachable() {
    if !gridroll_testkit::available(Backend::Postgres).await {
        return;
    }
    let app = TestApp::new(Backend::Postgres).await;
    app.send(Method::GET, "/readyz", None, None, Body::empty())
        .await
        .assert_ok();
    app.db.cut_off().await;
    let down = app
        .send(Method::GET, "/readyz", None, None, Body::empty())
        .await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.body
    );
    assert_eq!(
        down.body["details"]["error"],
        "the database does not answer"
    );
}

/// Log lines of the whole test binary, to read back: a subscriber set for one thread
/// can miss events whose interest other threads settled, so one is set for all.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test sets the global subscriber");
        captured
    })
}

async fn each_request_writes_one_access_line_with_its_route_status_and_partner_but_no_key(
    backend: Backend,
) {
    let logs = captured_logs();
    let app = TestApp::new(backend).await;
    let key = app.key.clone();
    let id = format!("access-log-{}", uuid::Uuid::now_v7().simple());
    let answer = app
        .send_with(
            Method::GET,
            NO_METER,
            Some(&key),
            None,
            &[("x-request-id", &id)],
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);

    let log = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&id) && l.contains("answered"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    for expected in [
        "route=/v2/meters/{meter_id}",
        "status=404",
        &format!("request_id={id}"),
        "method=GET",
        "latency_ms=",
        &format!("partner={}", app.partner),
    ] {
        assert!(line.contains(expected), "{expected} is not in {line}");
    }
    assert!(!log.contains(&key), "the key is never logged");
}

gridroll_testkit::backend_tests!(
    every_answer_carries_a_request_id_and_errors_repeat_it,
    metrics_parse_as_prometheus_text_and_move_with_requests,
    readiness_needs_the_database_at_this_releases_schema,
    each_request_writes_one_access_line_with_its_route_status_and_partner_but_no_key,
);
