//! Requests to the partner API: the key on every request, an answer's error turned into
//! one line, and a request the server asks to retry later (429) sent again after the
//! wait it names.
//!
//! Nothing waits for ever. A call's answer must come whole within the timeout; an upload
//! or a download may take as long as it takes, but its bytes must move at least once per
//! timeout, and its answer come within one once the last byte is sent (a total limit
//! would cut off a large file on a slow line).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use url::Url;

/// How often a request answered 429 is sent again, and the longest wait honoured.
const RETRIES: u32 = 5;
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// The longest wait for a connection, when the timeout is longer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one server with one key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
    timeout: Duration,
}

/// When the bytes of a transfer last moved: a slow upload goes on, a stalled one ends.
#[derive(Debug, Clone)]
pub struct Activity {
    start: Instant,
    last: Arc<AtomicU64>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Activity {
    /// Bytes moved now.
    pub fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// Ends once nothing has moved for `limit`.
    async fn stalled(&self, limit: Duration) {
        loop {
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            let idle = self.start.elapsed().saturating_sub(last);
            if idle >= limit {
                return;
            }
            tokio::time::sleep(limit - idle).await;
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// What a request can end with besides an answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    /// The server refused the request's content with 400, with its JSON problem.
    #[error("{title}")]
    Refused { title: String, body: Value },
    /// Any other unsuccessful answer, said in one line, with its JSON (null when it had
    /// none).
    #[error("{message}")]
    Answered {
        status: StatusCode,
        message: String,
        body: Value,
    },
    /// No answer: the server is unreachable, or the request could not be made.
    #[error("{0}")]
    Other(anyhow::Error),
}

impl Client {
    /// A client of the server at `url` sending `key`, waiting at most `timeout` for an
    /// answer (for a transfer, for its bytes to move).
    pub fn new(url: &str, key: &str, timeout: Duration) -> anyhow::Result<Self> {
        let base = parse_url(url)?;
        let key = key.trim();
        if key.is_empty() {
            bail!("the API key is empty");
        }
        let mut auth = HeaderValue::try_from(format!("Bearer {key}"))
            .map_err(|_| anyhow!("the API key holds characters a key never has"))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("gridroll/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self {
            http,
            base,
            auth,
            timeout,
        })
    }

    /// The server's address, ending with a slash.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// A call to a path of the API, answered whole within the timeout.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.transfer(method, path).timeout(self.timeout)
    }

    /// A transfer (an upload, a download) to or from a path of the API, without a total
    /// limit: send it with [`Client::send_transfer`], which ends it when it stalls.
    pub fn transfer(&self, method: Method, path: &str) -> RequestBuilder {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base.clone());
        self.http
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone())
    }

    /// Sends a call made by `make` (again after a 429, as the server asks), and answers a
    /// success, or the refusal or failure as an error.
    pub async fn send(
        &self,
        make: impl Fn() -> anyhow::Result<RequestBuilder>,
    ) -> Result<Response, ApiFailure> {
        self.send_watched(make, None).await
    }

    /// Sends a transfer made by `make`, whose body touches `activity` as its bytes go:
    /// it ends with an error once nothing has moved for the timeout, the wait for the
    /// answer after the last byte included.
    pub async fn send_transfer(
        &self,
        make: impl Fn() -> anyhow::Result<RequestBuilder>,
        activity: &Activity,
    ) -> Result<Response, ApiFailure> {
        self.send_watched(make, Some(activity)).await
    }

    async fn send_watched(
        &self,
        make: impl Fn() -> anyhow::Result<RequestBuilder>,
        activity: Option<&Activity>,
    ) -> Result<Response, ApiFailure> {
        let mut tries = 0;
        loop {
            let sending = make().map_err(ApiFailure::Other)?.send();
            let sent = match activity {
                None => sending.await,
                Some(activity) => {
                    activity.touch();
                    tokio::select! {
                        sent = sending => sent,
                        () = activity.stalled(self.timeout) => {
                            return Err(ApiFailure::Other(self.stalled()));
                        }
                    }
                }
            };
            let response = sent.map_err(|e| ApiFailure::Other(self.unreachable(e)))?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS && tries < RETRIES {
                tries += 1;
                let wait = retry_after(&response);
                eprintln!("the server is busy; trying again in {} s", wait.as_secs());
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_success() {
                return Ok(response);
            }
            return Err(self.failure(response).await);
        }
    }

    /// The body of an answer, read within the timeout.
    pub async fn body(&self, response: Response) -> anyhow::Result<bytes::Bytes> {
        match tokio::time::timeout(self.timeout, response.bytes()).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) if !e.is_timeout() => Err(anyhow!(
                "the answer of the server at {} was cut off",
                self.base
            )),
            _ => Err(self.stalled()),
        }
    }

    /// The JSON of a successful answer; anything else (a proxy's page, nothing) is one
    /// line naming what came.
    pub async fn json(&self, response: Response) -> anyhow::Result<Value> {
        let status = response.status();
        let kind = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let bytes = self.body(response).await?;
        serde_json::from_slice(&bytes).map_err(|_| {
            let what = match (bytes.is_empty(), kind) {
                (true, _) => "an empty answer".to_owned(),
                (false, Some(kind)) => format!("{kind} that is not JSON"),
                (false, None) => "an answer that is not JSON".to_owned(),
            };
            anyhow!(
                "the server at {} answered {} with {what}: is it a Gridroll server?",
                self.base,
                status.as_u16()
            )
        })
    }

    /// GET a path, answered with JSON.
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let response = self
            .send(|| Ok(self.request(Method::GET, path).query(query)))
            .await
            .map_err(into_anyhow)?;
        self.json(response).await
    }

    /// POST a JSON body to a path, answered with JSON.
    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let bytes = serde_json::to_vec(body)?;
        let response = self
            .send(|| {
                Ok(self
                    .request(Method::POST, path)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone()))
            })
            .await
            .map_err(into_anyhow)?;
        self.json(response).await
    }

    /// The error of a transfer whose bytes stopped moving, or of an answer that did not
    /// come.
    pub fn stalled(&self) -> anyhow::Error {
        anyhow!(
            "the server at {} did not answer within {} s (give it longer with --timeout or \
             GRIDROLL_TIMEOUT)",
            self.base,
            self.timeout.as_secs()
        )
    }

    /// The timeout: of a call's answer, and of a transfer's bytes between two moves.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn unreachable(&self, error: reqwest::Error) -> anyhow::Error {
        let mut cause = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            cause = inner.to_string();
            source = inner.source();
        }
        if error.is_connect() {
            anyhow!("cannot reach the server at {}: {cause}", self.base)
        } else if error.is_timeout() {
            self.stalled()
        } else {
            anyhow!("the request to {} failed: {cause}", self.base)
        }
    }
}

/// A refusal or other failure as the one error a command reports.
pub fn into_anyhow(failure: ApiFailure) -> anyhow::Error {
    match failure {
        ApiFailure::Refused { title, body } => {
            anyhow!("{}", describe(StatusCode::BAD_REQUEST, &title, &body))
        }
        ApiFailure::Answered { message, .. } => anyhow!("{message}"),
        ApiFailure::Other(e) => e,
    }
}

pub(crate) fn parse_url(url: &str) -> anyhow::Result<Url> {
    let mut base = Url::parse(url.trim()).map_err(|e| {
        anyhow!("{url:?} is not a server address such as http://127.0.0.1:8080 ({e})")
    })?;
    if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
        bail!("{url:?} is not a server address such as http://127.0.0.1:8080");
    }
    // Paths are joined onto the base: it must end with a slash to keep its own path.
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    Ok(base)
}

fn retry_after(response: &Response) -> Duration {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(5), Duration::from_secs)
        .clamp(Duration::from_secs(1), LONGEST_WAIT)
}

impl Client {
    /// The failure an unsuccessful answer stands for.
    async fn failure(&self, response: Response) -> ApiFailure {
        let status = response.status();
        let body: Value = match tokio::time::timeout(self.timeout, response.bytes()).await {
            Ok(Ok(bytes)) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let title = body["title"].as_str().unwrap_or_default().to_owned();
        if status == StatusCode::BAD_REQUEST {
            return ApiFailure::Refused { title, body };
        }
        ApiFailure::Answered {
            status,
            message: describe(status, &title, &body),
            body,
        }
    }
}

/// One line saying what the server answered.
fn describe(status: StatusCode, title: &str, body: &Value) -> String {
    match status {
        StatusCode::UNAUTHORIZED => "the server refused the API key (401): check --key, \
             GRIDROLL_KEY or the profile saved by `gridroll login`"
            .to_owned(),
        StatusCode::FORBIDDEN => match body["details"]["scope"].as_str() {
            Some(scope) => format!("the API key lacks the scope {scope} (403)"),
            None => format!("the server refused the request (403): {title}"),
        },
        _ => {
            let details = match &body["details"] {
                Value::Null => String::new(),
                Value::String(s) => format!(": {s}"),
                other => format!(": {other}"),
            };
            let title = if title.is_empty() {
                status.canonical_reason().unwrap_or("no answer").to_owned()
            } else {
                title.to_owned()
            };
            format!("the server answered {}: {title}{details}", status.as_u16())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_keep_their_path_and_refuse_other_schemes() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080")
                .unwrap()
                .join("v1.1/programs")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/v1.1/programs"
        );
        assert_eq!(
            parse_url("https://api.example/gridroll")
                .unwrap()
                .join("v1.1/programs")
                .unwrap()
                .as_str(),
            "https://api.example/gridroll/v1.1/programs"
        );
        assert!(parse_url("ftp://example").is_err());
        assert!(parse_url("127.0.0.1:8080").is_err());
    }

    #[test]
    fn a_missing_scope_is_named() {
        let body = serde_json::json!({"title": "Forbidden", "details": {"scope": "meters:write"}});
        assert_eq!(
            describe(StatusCode::FORBIDDEN, "Forbidden", &body),
            "the API key lacks the scope meters:write (403)"
        );
    }
}
