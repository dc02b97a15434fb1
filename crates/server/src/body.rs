//! Request bodies as every handler receives them: a body that stops arriving, or
//! arrives slower than a floor, fails instead of holding its request open, and a
//! `Content-Encoding: gzip` body is decoded (other encodings are refused with `415`).
//! Limits on size are the handlers' own and apply to the decoded bytes.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use async_compression::tokio::bufread::GzipDecoder;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::io::{ReaderStream, StreamReader};

use crate::error::{ApiError, ApiResult};

/// How slow a body may arrive.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    /// Longest wait for the next bytes of a body.
    pub idle_timeout: Duration,
    /// Fewest bytes per second a body must bring, over each [`RATE_WINDOW`] of waiting.
    pub min_rate: u64,
}

impl Default for BodyPace {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            min_rate: 1024,
        }
    }
}

/// The stretch of waiting over which a body's rate is measured.
pub const RATE_WINDOW: Duration = Duration::from_secs(30);

/// Why a body failed to arrive in time.
#[derive(Debug, thiserror::Error)]
pub enum Stalled {
    #[error("no part of the request body arrived for {0} s")]
    Idle(u64),
    #[error(
        "the request body arrived at {rate} bytes per second, below the {floor} the server requires"
    )]
    TooSlow { rate: u64, floor: u64 },
}

/// Middleware: paces and decodes the request body.
pub async fn guard(State(pace): State<BodyPace>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let body = paced(body, pace);
    let body = match encoding(&parts.headers) {
        Ok(Encoding::Identity) => body,
        Ok(Encoding::Gzip) => {
            // What the client declared is the compressed length, not what the handler reads.
            parts.headers.remove(header::CONTENT_ENCODING);
            parts.headers.remove(header::CONTENT_LENGTH);
            gunzip(body)
        }
        Err(refusal) => return refusal.into_response(),
    };
    next.run(Request::from_parts(parts, body)).await
}

enum Encoding {
    Identity,
    Gzip,
}

fn encoding(headers: &HeaderMap) -> ApiResult<Encoding> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Encoding",
            json!({
                "content_encoding": gridroll_domain::suggest::clip(&String::from_utf8_lossy(value.as_bytes())),
                "supported": ["gzip", "identity"],
            }),
        )),
    }
}

/// The body, failing with [`Stalled`] when it waits too long for the client. Only the
/// time spent waiting for the client counts: a handler that reads slowly does not make
/// its client look slow.
fn paced(body: Body, pace: BodyPace) -> Body {
    struct State {
        body: Body,
        pace: BodyPace,
        waited: Duration,
        bytes: u64,
        done: bool,
    }
    let state = State {
        body,
        pace,
        waited: Duration::ZERO,
        bytes: 0,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            let started = Instant::now();
            let frame = tokio::time::timeout(s.pace.idle_timeout, s.body.frame()).await;
            s.waited += started.elapsed();
            let frame = match frame {
                Err(_) => {
                    s.done = true;
                    let stalled = Stalled::Idle(s.pace.idle_timeout.as_secs());
                    return Some((Err(axum::Error::new(stalled)), s));
                }
                Ok(None) => return None,
                Ok(Some(Err(e))) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                // Trailers carry nothing a handler reads.
                continue;
            };
            s.bytes += data.len() as u64;
            if s.waited >= RATE_WINDOW {
                let rate = (s.bytes as f64 / s.waited.as_secs_f64()) as u64;
                if rate < s.pace.min_rate {
                    s.done = true;
                    let stalled = Stalled::TooSlow {
                        rate,
                        floor: s.pace.min_rate,
                    };
                    return Some((Err(axum::Error::new(stalled)), s));
                }
                s.waited = Duration::ZERO;
                s.bytes = 0;
            }
            return Some((Ok::<Bytes, axum::Error>(data), s));
        }
    });
    Body::from_stream(stream)
}

fn gunzip(body: Body) -> Body {
    let compressed = StreamReader::new(TryStreamExt::map_err(
        body.into_data_stream(),
        io::Error::other,
    ));
    let mut decoder = GzipDecoder::new(compressed);
    decoder.multiple_members(true);
    Body::from_stream(ReaderStream::new(decoder))
}

/// What went wrong reading a body, found anywhere in an error's chain of sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    TooLarge,
    Stalled,
    /// Not valid gzip, or the connection broke.
    Broken,
}

pub fn failure(error: &(dyn StdError + 'static)) -> Failure {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<http_body_util::LengthLimitError>() || e.is::<crate::upload::TooLarge>() {
            return Failure::TooLarge;
        }
        if e.is::<Stalled>() {
            return Failure::Stalled;
        }
        // An I/O error's `source` skips the error it wraps.
        next = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    Failure::Broken
}

/// The answer to a body that could not be read; `limit` is the size limit in force.
pub fn read_error(error: &(dyn StdError + 'static), limit: u64) -> ApiError {
    match failure(error) {
        Failure::TooLarge => ApiError::payload_too_large(limit),
        Failure::Stalled => stalled(&describe(error)),
        Failure::Broken => unreadable(&describe(error)),
    }
}

/// 408: the body did not arrive in time, for the reason given.
pub fn stalled(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "The request body did not arrive in time",
        json!({"error": why}),
    )
}

/// 400: the body could not be read, for the reason given.
pub fn unreadable(why: &str) -> ApiError {
    ApiError::bad_request("The request body could not be read", json!({"error": why}))
}

/// The innermost message of an error's chain.
pub fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut last = error;
    loop {
        let next = match last
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => last.source(),
        };
        match next {
            Some(next) => last = next,
            None => return last.to_string(),
        }
    }
}

/// Reads a whole small body, of at most `limit` bytes.
pub async fn read_small(body: Body, limit: usize) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| read_error(&e, limit as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow_body(gaps: Vec<(Duration, usize)>) -> Body {
        let stream = futures_util::stream::iter(gaps).then(|(gap, len)| async move {
            tokio::time::sleep(gap).await;
            Ok::<_, io::Error>(Bytes::from(vec![b'x'; len]))
        });
        Body::from_stream(stream)
    }

    use futures_util::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_fails_after_the_idle_timeout() {
        let pace = BodyPace::default();
        let body = paced(
            slow_body(vec![(Duration::ZERO, 10), (Duration::from_secs(31), 10)]),
            pace,
        );
        let error = axum::body::to_bytes(body, 1000).await.unwrap_err();
        assert_eq!(failure(&error), Failure::Stalled);
        assert!(describe(&error).contains("for 30 s"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_dribbling_under_the_rate_floor_fails_once_a_window_has_passed() {
        let pace = BodyPace::default();
        let gaps = (0..40).map(|_| (Duration::from_secs(1), 100)).collect();
        let error = axum::body::to_bytes(paced(slow_body(gaps), pace), 1 << 20)
            .await
            .unwrap_err();
        assert_eq!(failure(&error), Failure::Stalled);
        assert!(describe(&error).contains("100 bytes per second"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_body_arrives_whole() {
        let pace = BodyPace::default();
        let gaps = (0..90).map(|_| (Duration::from_secs(1), 2048)).collect();
        let bytes = axum::body::to_bytes(paced(slow_body(gaps), pace), 1 << 20)
            .await
            .unwrap();
        assert_eq!(bytes.len(), 90 * 2048);
    }
}
