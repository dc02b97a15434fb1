//! Requests per API key and window, counted by this process. Each key may make `limit`
//! requests in a fixed window (a minute by default) that starts with its first request;
//! past that it is answered `429` until the window ends. Every answer to a key says where
//! it stands in the IETF draft's headers (`RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset`). An upload is one request, however many rows it holds.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::ApiError;

pub const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// How many requests one key may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: NonZeroU32,
    pub window: Duration,
}

impl Default for RateLimit {
    /// Generous: 6,000 requests a minute (100 a second) per key.
    fn default() -> Self {
        Self {
            requests: NonZeroU32::new(6000).expect("not zero"),
            window: Duration::from_secs(60),
        }
    }
}

/// Where a key stands after a request was counted (or refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the window ends (at least 1 while it runs).
    pub reset_secs: u64,
}

impl Standing {
    /// The three headers every answer to the key carries.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LIMIT, HeaderValue::from(self.limit));
        headers.insert(REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RESET, HeaderValue::from(self.reset_secs));
        headers
    }

    /// The `429` of a refused request, with `Retry-After` and the headers.
    pub fn refusal(&self) -> ApiError {
        let mut error = ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            serde_json::json!({
                "error": format!(
                    "this API key may make {} requests in each window; try again in {} seconds",
                    self.limit, self.reset_secs
                ),
                "retry_after_seconds": self.reset_secs,
            }),
        )
        .with_header(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(self.reset_secs),
        );
        error.headers.extend(
            self.headers()
                .into_iter()
                .filter_map(|(name, value)| Some((name?, value))),
        );
        error
    }
}

/// The windows of the keys seen lately.
pub struct RateLimiter {
    limit: RateLimit,
    windows: Mutex<HashMap<[u8; 32], Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started_at: i64,
    used: u32,
}

/// Keys remembered before the ended windows are forgotten.
const PRUNE_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `key` at `now` (milliseconds), unless its window is used up.
    pub fn check(&self, key: &[u8; 32], now: i64) -> Standing {
        let window_ms = i64::try_from(self.limit.window.as_millis()).unwrap_or(i64::MAX);
        let limit = self.limit.requests.get();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= PRUNE_AT {
            windows.retain(|_, w| now - w.started_at < window_ms);
        }
        let window = windows.entry(*key).or_insert(Window {
            started_at: now,
            used: 0,
        });
        if now - window.started_at >= window_ms || now < window.started_at {
            *window = Window {
                started_at: now,
                used: 0,
            };
        }
        let allowed = window.used < limit;
        if allowed {
            window.used += 1;
        }
        let left_ms = (window.started_at + window_ms - now).max(0);
        Standing {
            allowed,
            limit,
            remaining: limit - window.used,
            reset_secs: u64::try_from((left_ms + 999) / 1000).unwrap_or(0).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(requests: u32, window_secs: u64) -> RateLimiter {
        RateLimiter::new(RateLimit {
            requests: NonZeroU32::new(requests).unwrap(),
            window: Duration::from_secs(window_secs),
        })
    }

    #[test]
    fn a_key_gets_its_limit_per_window_then_is_refused_until_the_window_ends() {
        let limiter = limiter(2, 60);
        let key = [1; 32];
        let first = limiter.check(&key, 0);
        assert_eq!(
            (first.allowed, first.remaining, first.reset_secs),
            (true, 1, 60)
        );
        assert!(limiter.check(&key, 10_000).allowed);
        let refused = limiter.check(&key, 30_500);
        assert_eq!(
            (refused.allowed, refused.remaining, refused.reset_secs),
            (false, 0, 30)
        );
        let again = limiter.check(&key, 60_000);
        assert_eq!((again.allowed, again.remaining), (true, 1));
    }

    #[test]
    fn keys_are_counted_apart() {
        let limiter = limiter(1, 60);
        assert!(limiter.check(&[1; 32], 0).allowed);
        assert!(!limiter.check(&[1; 32], 1).allowed);
        assert!(limiter.check(&[2; 32], 1).allowed);
    }

    #[test]
    fn a_refusal_says_when_to_come_back() {
        let limiter = limiter(1, 60);
        limiter.check(&[1; 32], 0);
        let error = limiter.check(&[1; 32], 59_001).refusal();
        assert_eq!(error.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        let header = |name: &str| {
            error
                .headers
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        assert_eq!(header("retry-after").as_deref(), Some("1"));
        assert_eq!(header("ratelimit-remaining").as_deref(), Some("0"));
        assert_eq!(header("ratelimit-limit").as_deref(), Some("1"));
    }
}
