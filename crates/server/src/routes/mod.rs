//! The HTTP routes. Handlers are thin: extract, call one service function, answer.

pub mod assets;
pub mod enrollments;
pub mod events;
pub mod jobs;
pub mod meters;
pub mod operator;
pub mod programs;
pub mod webhooks;

use axum::Json;
use axum::http::{StatusCode, Uri};
use serde_json::{Value, json};

use crate::error::ApiError;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
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
