//! Requests to the partner API: the key on every request, an answer's error turned into
//! one line, and a request the server asks to retry later (429) sent again after the
//! wait it names.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use url::Url;

/// How often a request answered 429 is sent again, and the longest wait honoured.
const RETRIES: u32 = 5;
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// A client of one server with one key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
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
    /// Any other unsuccessful answer, said in one line.
    #[error("{message}")]
    Answered { status: StatusCode, message: String },
    /// No answer: the server is unreachable, or the request could not be made.
    #[error("{0}")]
    Other(anyhow::Error),
}

impl Client {
    /// A client of the server at `url` sending `key`.
    pub fn new(url: &str, key: &str) -> anyhow::Result<Self> {
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
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self { http, base, auth })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// A request to a path of the API.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base.clone());
        self.http
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone())
    }

    /// Sends a request made by `make` (again after a 429, as the server asks), and
    /// answers a success, or the refusal or failure as an error.
    pub async fn send(
        &self,
        make: impl Fn() -> anyhow::Result<RequestBuilder>,
    ) -> Result<Response, ApiFailure> {
        let mut tries = 0;
        loop {
            let response = make()
                .map_err(ApiFailure::Other)?
                .send()
                .await
                .map_err(|e| ApiFailure::Other(self.unreachable(e)))?;
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
            return Err(failure(response).await);
        }
    }

    /// GET a path, answered with JSON.
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let response = self
            .send(|| Ok(self.request(Method::GET, path).query(query)))
            .await
            .map_err(into_anyhow)?;
        json_of(response).await
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
        json_of(response).await
    }

    fn unreachable(&self, error: reqwest::Error) -> anyhow::Error {
        let mut cause = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            cause = inner.to_string();
            source = inner.source();
        }
        if error.is_connect() || error.is_timeout() {
            anyhow!("cannot reach the server at {}: {cause}", self.base)
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

/// The JSON of a successful answer.
pub async fn json_of(response: Response) -> anyhow::Result<Value> {
    let bytes = response
        .bytes()
        .await
        .context("the server's answer was cut off")?;
    serde_json::from_slice(&bytes).context("the server's answer is not JSON")
}

fn parse_url(url: &str) -> anyhow::Result<Url> {
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

/// The failure an unsuccessful answer stands for.
async fn failure(response: Response) -> ApiFailure {
    let status = response.status();
    let body: Value = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let title = body["title"].as_str().unwrap_or_default().to_owned();
    if status == StatusCode::BAD_REQUEST {
        return ApiFailure::Refused { title, body };
    }
    ApiFailure::Answered {
        status,
        message: describe(status, &title, &body),
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
