//! Extractors whose rejections are the contract's JSON errors.

use axum::extract::{FromRequestParts, Query as AxumQuery};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::ApiError;

/// Query parameters; a malformed query is a 400 naming the problem.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        AxumQuery::<T>::from_request_parts(parts, state)
            .await
            .map(|AxumQuery(value)| Self(value))
            .map_err(|e| {
                let text = e.body_text();
                let error = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                ApiError::bad_request("Invalid query parameters", json!({"error": error}))
            })
    }
}

/// Parses an id from a path segment: `"Job id is not a UUID"` with the value otherwise.
pub fn path_id<T: std::str::FromStr>(raw: &str, name: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} id is not a UUID"), json!({name: raw})))
}

/// Whether the request says its body is JSON.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// A JSON body of at most `limit` bytes, as `T`: 415 when it is not JSON, 413 past the
/// limit, 400 `Invalid {what}` when it does not parse as `T`.
pub async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
    what: &str,
) -> Result<T, ApiError> {
    if !is_json(headers) {
        return Err(unsupported_media_type());
    }
    let bytes = crate::body::read_small(body, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("Invalid {what}"), json!({"error": e.to_string()}))
    })
}

/// 415: the body is not JSON, the only type this endpoint takes.
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported Content-Type",
        json!({"supported": ["application/json"]}),
    )
}
