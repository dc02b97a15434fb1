//! What the server tells its operators about each request: a request id (the client's
//! `x-request-id` when it is sane, a new one otherwise) in the answer's header, in every
//! error body and in the span of every log line the request causes; an access log line
//! at `info`; and the request metrics `/metrics` serves.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use gridroll_domain::PartnerId;
use gridroll_domain::job::{JobCounts, JobStatus};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use crate::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client.
const MAX_REQUEST_ID: usize = 128;

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being answered, when called while answering one.
pub fn request_id() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// A client's request id is kept when it is 1 to 128 visible ASCII characters; anything
/// else (spaces, control characters or other bytes that could forge log lines) is
/// replaced.
fn sane(value: &HeaderValue) -> Option<&str> {
    let id = value.to_str().ok()?;
    let fits = !id.is_empty() && id.len() <= MAX_REQUEST_ID;
    (fits && id.bytes().all(|b| b.is_ascii_graphic())).then_some(id)
}

/// The route template a request matched, left on its answer for [`track`] (which runs
/// before routing, so it cannot see the template on the request).
#[derive(Clone)]
struct Route(String);

/// Installed as a route layer: copies the matched route onto the answer.
pub async fn remember_route(route: MatchedPath, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .extensions_mut()
        .insert(Route(route.as_str().to_owned()));
    response
}

/// The outermost layer: gives the request its id, runs it in a span carrying the id,
/// then logs and counts the answer.
pub async fn track(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(sane)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let header = HeaderValue::from_str(&id).expect("a sane id or a UUID is a header value");
    request.headers_mut().insert(REQUEST_ID, header.clone());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        path = %request.uri().path(),
    );
    let started = Instant::now();
    let mut response = CURRENT
        .scope(id, next.run(request).instrument(span.clone()))
        .await;
    let elapsed = started.elapsed();
    response.headers_mut().insert(REQUEST_ID, header);

    let route = response
        .extensions()
        .get::<Route>()
        .map_or("unmatched", |r| r.0.as_str())
        .to_owned();
    let status = response.status().as_u16();
    let partner = response.extensions().get::<PartnerId>().copied();
    span.in_scope(|| {
        tracing::info!(
            target: "gridroll::access",
            %route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            partner = partner.map(tracing::field::display),
            "answered"
        );
    });
    // Any token is a method to HTTP: only the standard ones get labels of their own.
    let standard = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    let method_label = if standard.contains(&method) {
        method.as_str()
    } else {
        "OTHER"
    };
    let labels = [
        ("method", method_label.to_owned()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("gridroll_http_requests_total", &labels).increment(1);
    metrics::histogram!("gridroll_http_request_duration_seconds", &labels[..2])
        .record(elapsed.as_secs_f64());
    response
}

/// Counts a job this process finished, and its assets by outcome.
pub fn job_finished(status: JobStatus, totals: JobCounts) {
    metrics::counter!("gridroll_jobs_finished_total", "status" => status.to_string()).increment(1);
    for (outcome, count) in [
        ("created", totals.created),
        ("updated", totals.updated),
        ("failed", totals.failed),
    ] {
        metrics::counter!("gridroll_assets_processed_total", "outcome" => outcome).increment(count);
    }
}

/// Counts one webhook delivery attempt by outcome, with its latency.
pub fn delivery_attempted(succeeded: bool, latency_ms: u64) {
    let outcome = if succeeded { "succeeded" } else { "failed" };
    metrics::counter!("gridroll_webhook_attempts_total", "outcome" => outcome).increment(1);
    metrics::histogram!("gridroll_webhook_attempt_duration_seconds")
        .record(latency_ms as f64 / 1000.0);
}

/// Counts a rest the webhook dispatcher took to give way to an import.
pub fn dispatcher_rested(rest: std::time::Duration) {
    metrics::counter!("gridroll_webhook_dispatcher_rest_milliseconds_total")
        .increment(u64::try_from(rest.as_millis()).unwrap_or(u64::MAX));
    metrics::counter!("gridroll_webhook_dispatcher_rests_total").increment(1);
}

/// Reads what `/metrics` shows of the store at the time of asking: the job queue and the
/// database connections. A store that does not answer leaves the last values.
pub async fn observe_store(state: &AppState) {
    match state.maintenance.job_queue(state.now_millis()).await {
        Ok(queue) => {
            metrics::gauge!("gridroll_jobs_waiting").set(queue.waiting as f64);
            metrics::gauge!("gridroll_jobs_running").set(queue.running as f64);
            let age = queue.oldest_age_ms.unwrap_or(0) as f64 / 1000.0;
            metrics::gauge!("gridroll_jobs_oldest_age_seconds").set(age);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not read the job queue"),
    }
    let connections = state.maintenance.connections();
    let busy = connections.open.saturating_sub(connections.idle);
    metrics::gauge!("gridroll_db_connections", "state" => "busy").set(busy as f64);
    metrics::gauge!("gridroll_db_connections", "state" => "idle").set(connections.idle as f64);
    metrics::gauge!("gridroll_db_connections_max").set(connections.max as f64);
}

/// The process's metrics recorder, installed on first use.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was installed already; /metrics shows only this one's"
            );
        }
        handle
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_request_id_is_kept_only_when_it_is_short_visible_ascii() {
        let kept = HeaderValue::from_static("req-42_abc.DEF");
        assert_eq!(sane(&kept), Some("req-42_abc.DEF"));
        for refused in ["", "has space", "tab\there", &"x".repeat(129)] {
            let value = HeaderValue::from_str(refused).unwrap();
            assert_eq!(sane(&value), None, "{refused:?}");
        }
        let binary = HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
        assert_eq!(sane(&binary), None);
    }
}
