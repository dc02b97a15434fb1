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

/// Whether the request's `Accept` prefers CSV to JSON. Each type's quality is that of the
/// most specific range naming it (`text/csv`, then `text/*`, then `*/*`; `q` defaults to
/// 1, and `q=0` refuses the type); CSV wins only when it is strictly preferred, so a
/// request without `Accept`, or one that weighs both alike, gets JSON.
pub fn prefers_csv(headers: &HeaderMap) -> bool {
    let ranges: Vec<(String, f32)> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(media_range)
        .collect();
    let quality = |kind: &str, subtype: &str| {
        let full = format!("{kind}/{subtype}");
        let any_subtype = format!("{kind}/*");
        [full.as_str(), any_subtype.as_str(), "*/*"]
            .iter()
            .find_map(|wanted| ranges.iter().find(|(range, _)| range == wanted))
            .map(|(_, q)| *q)
    };
    let csv = quality("text", "csv").unwrap_or(0.0);
    let json = if ranges.is_empty() {
        1.0
    } else {
        quality("application", "json").unwrap_or(0.0)
    };
    csv > 0.0 && csv > json
}

/// One range of an `Accept` header, lower-cased, with its quality.
fn media_range(text: &str) -> Option<(String, f32)> {
    let mut parts = text.split(';');
    let range = parts.next()?.trim().to_ascii_lowercase();
    if !range.contains('/') {
        return None;
    }
    let mut q = 1.0;
    for parameter in parts {
        if let Some((name, value)) = parameter.split_once('=')
            && name.trim().eq_ignore_ascii_case("q")
        {
            q = value
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))?;
        }
    }
    Some((range, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn csv_is_answered_only_when_it_is_preferred() {
        for csv in [
            &["text/csv"][..],
            &["text/csv, application/json;q=0.5"],
            &["application/json;q=0.2", "text/csv;q=0.9"],
            &["text/*"],
            &["TEXT/CSV; charset=utf-8"],
        ] {
            assert!(prefers_csv(&accept(csv)), "{csv:?}");
        }
        for json in [
            &[][..],
            &["application/json"],
            &["text/csv;q=0"],
            &["text/csv;q=0, */*"],
            &["text/*;q=0.5, text/csv;q=0"],
            &["*/*"],
            &["text/csv, application/json"],
            &["text/csv;q=2"],
            &["image/png"],
        ] {
            assert!(!prefers_csv(&accept(json)), "{json:?}");
        }
    }
}
