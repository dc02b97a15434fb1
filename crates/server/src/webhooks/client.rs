//! The HTTP client that delivers webhooks to partners' receivers.
//!
//! A partner chooses the URL, so every request is treated as a possible attempt to reach
//! our own network (SSRF): unless private receivers are allowed (local development and
//! tests), only https URLs are accepted, IP-literal hosts are judged before sending, and
//! names are resolved by [`GuardedResolver`], which drops non-public addresses before a
//! connection is made. Redirects are never followed, as they would lead around the check.

use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gridroll_domain::webhook::is_public;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url, redirect};
use tokio::time::Instant;

/// How much of an answer an [`Attempt`] keeps, in bytes.
pub const EXCERPT_LIMIT: usize = 1024;
/// A Retry-After value is a date or a number of seconds; anything longer is junk.
const RETRY_AFTER_LIMIT: usize = 256;
/// Deliveries to one receiver come in bursts of up to a subscription's attempts in flight
/// (8 by default), several subscriptions may share a receiver: every connection of a
/// burst is kept warm for the next, rather than closed and opened again (a TCP and TLS
/// handshake for half of the deliveries when only four were kept). A kept connection was
/// checked when it was opened; a new one is resolved and checked again.
const POOL_IDLE_PER_HOST: usize = 32;
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How a [`WebhookClient`] behaves.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Lets requests reach private, loopback and reserved addresses and plain-http URLs.
    /// Only for local development and tests.
    pub allow_private: bool,
    /// The longest a whole request may take: resolving, connecting, sending and reading
    /// the answer's excerpt.
    pub timeout: Duration,
    /// The `User-Agent` sent with every request.
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(10),
            user_agent: concat!("Gridroll-Webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The HTTP client could not be built from its options.
#[derive(Debug, thiserror::Error)]
#[error("could not build the webhook HTTP client")]
pub struct ClientError(#[from] reqwest::Error);

/// One webhook request to send.
pub struct Delivery<'a> {
    /// The receiver's URL, as the partner gave it.
    pub url: &'a str,
    /// Headers to send besides the content type, signatures included.
    pub headers: &'a [(String, String)],
    /// The JSON payload.
    pub body: Bytes,
}

impl std::fmt::Debug for Delivery<'_> {
    // Header values may hold the partner's secrets, so only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Delivery")
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What came of sending one [`Delivery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The answer's status, when the receiver answered.
    pub status: Option<u16>,
    /// How long the attempt took, up to reading the excerpt.
    pub latency_ms: u64,
    /// The first [`EXCERPT_LIMIT`] bytes of the answer, as lossy UTF-8.
    pub response_excerpt: String,
    /// Why the attempt failed, short and safe to show the partner; `None` when the
    /// receiver answered in full (whatever the status).
    pub error: Option<String>,
    /// The raw `Retry-After` value of a 429 or 503 answer.
    pub retry_after: Option<String>,
}

impl Attempt {
    /// Whether the receiver took the delivery: a 2xx answer read without error.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
            && self
                .status
                .is_some_and(|status| (200..300).contains(&status))
    }

    fn failed(error: String) -> Self {
        Self {
            status: None,
            latency_ms: 0,
            response_excerpt: String::new(),
            error: Some(error),
            retry_after: None,
        }
    }
}

/// Sends webhook deliveries; cheap to clone, and clones share their connection pool.
#[derive(Clone, Debug)]
pub struct WebhookClient {
    http: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl WebhookClient {
    /// Builds the client: rustls, HTTP/1.1, no redirects, no proxy from the environment.
    pub fn new(options: ClientOptions) -> Result<Self, ClientError> {
        let resolver = GuardedResolver {
            allow_private: options.allow_private,
        };
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .http1_only()
            .redirect(redirect::Policy::none())
            .no_proxy()
            .timeout(options.timeout)
            .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(options.user_agent)
            .dns_resolver(Arc::new(resolver))
            .build()?;
        Ok(Self {
            http,
            allow_private: options.allow_private,
            timeout: options.timeout,
        })
    }

    /// POSTs the delivery as JSON and reports what happened; failures are in the
    /// [`Attempt`], never an `Err`.
    pub async fn send(&self, delivery: Delivery<'_>) -> Attempt {
        let started = Instant::now();
        let mut attempt = match self.prepare(delivery) {
            Ok(request) => self.execute(request).await,
            Err(error) => Attempt::failed(error),
        };
        attempt.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        attempt
    }

    fn prepare(&self, delivery: Delivery<'_>) -> Result<reqwest::Request, String> {
        let url = self.check_url(delivery.url)?;
        let headers = header_map(delivery.headers)?;
        self.http
            .post(url)
            .headers(headers)
            .body(delivery.body)
            .build()
            .map_err(|_| "invalid request".to_owned())
    }

    /// Refuses what the resolver never sees: the scheme and IP-literal hosts.
    fn check_url(&self, raw: &str) -> Result<Url, String> {
        let url = Url::parse(raw).map_err(|error| format!("invalid URL: {error}"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            "http" => return Err("refused: only https URLs are allowed".to_owned()),
            _ => return Err("invalid URL: the scheme must be https".to_owned()),
        }
        let host = url
            .host_str()
            .ok_or_else(|| "invalid URL: it has no host".to_owned())?;
        // The URL parser has already normalised IPv4 spellings such as `2130706433`.
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if !self.allow_private
            && let Ok(ip) = literal.parse::<IpAddr>()
            && !is_public(ip)
        {
            return Err(format!("refused: {host} is a private or reserved address"));
        }
        Ok(url)
    }

    async fn execute(&self, request: reqwest::Request) -> Attempt {
        let mut response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(error) => return Attempt::failed(self.describe(&error)),
        };
        let status = response.status();
        let retry_after = retry_after(status, response.headers());
        let (response_excerpt, error) = read_excerpt(&mut response).await;
        Attempt {
            status: Some(status.as_u16()),
            latency_ms: 0,
            response_excerpt,
            error: error.map(|error| self.describe(&error)),
            retry_after,
        }
    }

    /// A short account of a failure, from its cause; never reqwest's own message, which
    /// carries the URL.
    fn describe(&self, error: &reqwest::Error) -> String {
        if let Some(refusal) = find_cause::<ResolveError>(error) {
            return match refusal {
                ResolveError::OnlyPrivate(_) => format!("refused: {refusal}"),
                ResolveError::Unresolved(_) => refusal.to_string(),
            };
        }
        if error.is_timeout() {
            return format!("timed out after {} ms", self.timeout.as_millis());
        }
        if let Some(io) = find_cause::<io::Error>(error).map(innermost_io) {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
                io::ErrorKind::ConnectionReset => return "connection reset".to_owned(),
                // rustls reports handshake and certificate failures as invalid data.
                io::ErrorKind::InvalidData if error.is_connect() => {
                    return match io.get_ref() {
                        Some(tls) => format!("TLS handshake failed: {tls}"),
                        None => "TLS handshake failed".to_owned(),
                    };
                }
                _ => {}
            }
        }
        let what = if error.is_connect() {
            "could not connect"
        } else if error.is_body() {
            "could not read the answer"
        } else {
            "request failed"
        };
        match root_cause(error) {
            Some(cause) => format!("{what}: {cause}"),
            None => what.to_owned(),
        }
    }
}

fn header_map(pairs: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::with_capacity(pairs.len() + 1);
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| "invalid request: a header name is invalid".to_owned())?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| format!("invalid request: the value of header {name} is invalid"))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    // The body is always JSON, whatever the caller passed.
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(headers)
}

fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<String> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let raw = headers.get(RETRY_AFTER)?.as_bytes();
    let mut value = String::from_utf8_lossy(raw).into_owned();
    truncate_at_char(&mut value, RETRY_AFTER_LIMIT);
    Some(value)
}

/// Reads the answer chunk by chunk and stops at [`EXCERPT_LIMIT`], so a large answer is
/// never held whole. A read error comes back with whatever was read before it.
async fn read_excerpt(response: &mut reqwest::Response) -> (String, Option<reqwest::Error>) {
    let mut excerpt = Vec::with_capacity(EXCERPT_LIMIT);
    let mut error = None;
    while excerpt.len() < EXCERPT_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = EXCERPT_LIMIT - excerpt.len();
                excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(failure) => {
                error = Some(failure);
                break;
            }
        }
    }
    let mut text = String::from_utf8_lossy(without_split_char(&excerpt)).into_owned();
    // Replacement characters are wider than the bytes they stand for.
    truncate_at_char(&mut text, EXCERPT_LIMIT);
    (text, error)
}

/// Drops a last character that the excerpt's cut left incomplete.
fn without_split_char(bytes: &[u8]) -> &[u8] {
    for back in 1..=bytes.len().min(4) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xc0 == 0x80 {
            continue;
        }
        let width = match byte {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        return if width > back {
            &bytes[..bytes.len() - back]
        } else {
            bytes
        };
    }
    bytes
}

fn truncate_at_char(text: &mut String, limit: usize) {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

fn find_cause<E: StdError + 'static>(error: &reqwest::Error) -> Option<&E> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<E>() {
            return Some(found);
        }
        source = cause.source();
    }
    None
}

/// The innermost of nested `io::Error`s (a TLS failure comes wrapped twice); their
/// `source()` skips the wrapped error, so `get_ref()` is followed instead.
fn innermost_io(mut io: &io::Error) -> &io::Error {
    while let Some(inner) = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<io::Error>())
    {
        io = inner;
    }
    io
}

/// The innermost cause (hyper's or the OS's wording, which holds neither URL nor headers).
fn root_cause(error: &reqwest::Error) -> Option<String> {
    let mut cause = error.source()?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let mut text = cause.to_string();
    truncate_at_char(&mut text, 200);
    Some(text)
}

/// Why a name gave no address to connect to.
#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("{0} resolves only to private or reserved addresses")]
    OnlyPrivate(String),
    #[error("could not resolve {0}")]
    Unresolved(String),
}

/// Resolves with the system resolver and, unless private receivers are allowed, keeps
/// only public addresses, so the connection goes to an address that was checked.
#[derive(Debug)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addresses) => addresses.collect(),
                Err(_) => Vec::new(),
            };
            if found.is_empty() {
                return Err(ResolveError::Unresolved(host).into());
            }
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if kept.is_empty() {
                return Err(ResolveError::OnlyPrivate(host).into());
            }
            let addresses: Addrs = Box::new(kept.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::middleware::{self, Next};
    use axum::response::IntoResponse;
    use axum::routing::{any, post};
    use tokio::sync::mpsc;

    use super::*;

    /// A local receiver that counts every request it gets.
    struct Receiver {
        addr: SocketAddr,
        hits: Arc<AtomicUsize>,
    }

    impl Receiver {
        async fn start(routes: Router) -> Self {
            let hits = Arc::new(AtomicUsize::new(0));
            let counter = hits.clone();
            let app = routes.layer(middleware::from_fn(move |request: Request, next: Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(request)
            }));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            Self { addr, hits }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    fn client(allow_private: bool, timeout: Duration) -> WebhookClient {
        WebhookClient::new(ClientOptions {
            allow_private,
            timeout,
            ..ClientOptions::default()
        })
        .unwrap()
    }

    fn local_client() -> WebhookClient {
        client(true, Duration::from_secs(5))
    }

    fn delivery(url: &str) -> Delivery<'_> {
        Delivery {
            url,
            headers: &[],
            body: Bytes::from_static(b"{}"),
        }
    }

    #[tokio::test]
    async fn a_2xx_answer_is_a_success_with_its_status_latency_and_first_kilobyte() {
        let routes = Router::new().route(
            "/",
            post(|| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                (StatusCode::ACCEPTED, "x".repeat(5 * 1024))
            }),
        );
        let receiver = Receiver::start(routes).await;

        let attempt = local_client().send(delivery(&receiver.url("/"))).await;

        assert!(attempt.is_success(), "{attempt:?}");
        assert_eq!(attempt.status, Some(202));
        assert!(attempt.latency_ms >= 50, "{}", attempt.latency_ms);
        assert_eq!(attempt.response_excerpt, "x".repeat(1024));
        assert_eq!(attempt.error, None);
        assert_eq!(attempt.retry_after, None);
    }

    #[tokio::test]
    async fn the_receiver_gets_the_body_the_content_type_and_the_custom_headers() {
        let (seen, mut received) = mpsc::unbounded_channel();
        let routes = Router::new().route(
            "/hook",
            post(
                move |headers: axum::http::HeaderMap, body: Bytes| async move {
                    seen.send((headers, body)).unwrap();
                    StatusCode::NO_CONTENT
                },
            ),
        );
        let receiver = Receiver::start(routes).await;
        let url = receiver.url("/hook");
        let headers = [
            ("webhook-id".to_owned(), "msg_1".to_owned()),
            ("webhook-signature".to_owned(), "v1,c2lnbmF0dXJl".to_owned()),
        ];

        let attempt = local_client()
            .send(Delivery {
                url: &url,
                headers: &headers,
                body: Bytes::from_static(br#"{"type":"meter.created"}"#),
            })
            .await;

        assert!(attempt.is_success(), "{attempt:?}");
        let (headers, body) = received.recv().await.unwrap();
        assert_eq!(body, &br#"{"type":"meter.created"}"#[..]);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["webhook-id"], "msg_1");
        assert_eq!(headers["webhook-signature"], "v1,c2lnbmF0dXJl");
        assert!(
            headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("Gridroll")
        );
    }

    #[tokio::test]
    async fn a_500_is_a_failure_with_its_status() {
        let routes = Router::new().route(
            "/",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        );
        let receiver = Receiver::start(routes).await;

        let attempt = local_client().send(delivery(&receiver.url("/"))).await;

        assert!(!attempt.is_success());
        assert_eq!(attempt.status, Some(500));
        assert_eq!(attempt.response_excerpt, "boom");
        assert_eq!(attempt.retry_after, None);
    }

    #[tokio::test]
    async fn a_503_with_retry_after_carries_it() {
        let routes = Router::new().route(
            "/",
            post(|| async { (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "120")]) }),
        );
        let receiver = Receiver::start(routes).await;

        let attempt = local_client().send(delivery(&receiver.url("/"))).await;

        assert!(!attempt.is_success());
        assert_eq!(attempt.status, Some(503));
        assert_eq!(attempt.retry_after.as_deref(), Some("120"));
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let routes = Router::new()
            .route(
                "/old",
                post(|| async { (StatusCode::FOUND, [("location", "/new")]).into_response() }),
            )
            .route("/new", any(|| async { StatusCode::OK }));
        let receiver = Receiver::start(routes).await;

        let attempt = local_client().send(delivery(&receiver.url("/old"))).await;

        assert!(!attempt.is_success());
        assert_eq!(attempt.status, Some(302));
        assert_eq!(receiver.hits(), 1, "only /old is hit");
    }

    #[tokio::test]
    async fn a_receiver_slower_than_the_timeout_is_a_failure_with_a_timeout_error() {
        let routes = Router::new().route(
            "/",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::OK
            }),
        );
        let receiver = Receiver::start(routes).await;

        let attempt = client(true, Duration::from_millis(200))
            .send(delivery(&receiver.url("/")))
            .await;

        assert!(!attempt.is_success());
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.error.as_deref(), Some("timed out after 200 ms"));
        assert!((200..5000).contains(&attempt.latency_ms), "{attempt:?}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_failure_with_an_error_and_no_status() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);

        let attempt = local_client().send(delivery(&url)).await;

        assert!(!attempt.is_success());
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.error.as_deref(), Some("connection refused"));
    }

    #[tokio::test]
    async fn an_https_url_to_a_plain_http_receiver_is_a_tls_failure() {
        let receiver = Receiver::start(Router::new().route("/", any(|| async { "" }))).await;
        let url = format!("https://{}/", receiver.addr);

        let attempt = local_client().send(delivery(&url)).await;

        assert_eq!(attempt.status, None);
        let error = attempt.error.unwrap();
        assert!(error.starts_with("TLS handshake failed"), "{error}");
    }

    #[tokio::test]
    async fn private_and_reserved_receivers_are_refused_before_anything_is_sent() {
        let receiver = Receiver::start(Router::new().route("/", any(|| async { "" }))).await;
        let port = receiver.addr.port();
        let guarded = client(false, Duration::from_secs(5));
        let cases = [
            (
                format!("https://127.0.0.1:{port}/"),
                "refused: 127.0.0.1 is a private or reserved address",
            ),
            (
                format!("http://127.0.0.1:{port}/"),
                "refused: only https URLs are allowed",
            ),
            (
                format!("https://[::1]:{port}/"),
                "refused: [::1] is a private or reserved address",
            ),
            (
                format!("https://[::ffff:127.0.0.1]:{port}/"),
                "refused: [::ffff:7f00:1] is a private or reserved address",
            ),
            (
                format!("https://2130706433:{port}/"),
                "refused: 127.0.0.1 is a private or reserved address",
            ),
            (
                "https://10.0.0.1/".to_owned(),
                "refused: 10.0.0.1 is a private or reserved address",
            ),
            (
                format!("https://localhost:{port}/"),
                "refused: localhost resolves only to private or reserved addresses",
            ),
        ];

        for (url, refusal) in cases {
            let attempt = guarded.send(delivery(&url)).await;
            assert_eq!(attempt.status, None, "{url}");
            assert_eq!(attempt.error.as_deref(), Some(refusal), "{url}");
        }
        assert_eq!(receiver.hits(), 0);
    }

    #[tokio::test]
    async fn an_invalid_url_is_a_failure_without_a_request() {
        let guarded = client(false, Duration::from_secs(5));

        for url in ["not a url", "ftp://example.com/", "https:///"] {
            let attempt = guarded.send(delivery(url)).await;
            assert_eq!(attempt.status, None, "{url}");
            let error = attempt.error.unwrap();
            assert!(error.starts_with("invalid URL"), "{url}: {error}");
        }
    }

    #[test]
    fn an_excerpt_cut_inside_a_character_drops_that_character() {
        let text = "é".as_bytes();
        assert_eq!(without_split_char(&[b'a', text[0]]), b"a");
        assert_eq!(without_split_char("aé".as_bytes()), "aé".as_bytes());
        assert_eq!(without_split_char(b"abc"), b"abc");
    }
}
