//! The HTTP routes. Handlers are thin: extract, call one service function, answer.

pub mod assets;
pub mod enrollments;
pub mod events;
pub mod jobs;
pub mod lifecycle;
pub mod meters;
pub mod operator;
pub mod participation;
pub mod programs;
pub mod webhooks;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use gridroll_store::Maintenance;
use serde_json::{Value, json};

use crate::error::ApiError;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: whether this process can serve, which its liveness (`/healthz`) does
/// not say: the database answers, and its schema is the one this release writes.
pub async fn readyz(
    State(maintenance): State<Arc<dyn Maintenance>>,
) -> Result<Json<Value>, ApiError> {
    let not_ready = |error: &str| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready",
            json!({"error": error}),
        )
    };
    match maintenance.schema_is_current().await {
        Ok(true) => Ok(Json(json!({"status": "ready"}))),
        Ok(false) => Err(not_ready(
            "the database schema is not this release's; run gridroll migrate",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            Err(not_ready("the database does not answer"))
        }
    }
}

/// `GET /metrics`: the process's metrics in Prometheus's text format, with the job queue
/// and the database pool read at the time of asking.
pub async fn metrics(State(state): State<crate::AppState>) -> Response {
    crate::telemetry::observe_store(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        crate::telemetry::metrics().render(),
    )
        .into_response()
}

pub async fn openapi() -> Json<&'static Value> {
    Json(&crate::openapi::DOCUMENT)
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found("No such endpoint", json!({"path": uri.path()}))
}

pub async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        json!({"path": uri.path()}),
    )
}
