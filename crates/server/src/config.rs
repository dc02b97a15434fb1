//! Settings of the HTTP API and the workers, with their defaults.

use std::time::Duration;

use gridroll_domain::program::{DEFAULT_CATALOG, Program, parse_catalog};
use gridroll_domain::webhook::RetrySchedule;

use crate::auth;
use crate::body::BodyPace;
use crate::rate_limit::RateLimit;
use crate::slots::UploadSlots;
use crate::worker::WorkerConfig;

/// Settings of the HTTP API and the workers.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body accepted for a bulk upload (413 beyond).
    pub max_body_bytes: u64,
    /// Job workers in this process.
    pub workers: usize,
    /// Assets per processing transaction.
    pub chunk_size: usize,
    /// Assets per write batch while an upload is received.
    pub upload_batch: usize,
    /// How long a worker's claim on a job lasts without renewal.
    pub lease: Duration,
    /// Programs added to the catalog at start when it does not have them yet.
    pub programs: Vec<Program>,
    /// SHA-256 of the operator token; none: the operator API is closed.
    pub operator_token_hash: Option<[u8; 32]>,
    /// Bulk uploads received at once; more are answered 429.
    pub max_concurrent_uploads: usize,
    /// Bulk uploads one partner may send at once (its share of the above).
    pub max_uploads_per_partner: usize,
    /// How slow a request body may arrive before the request is refused.
    pub body_pace: BodyPace,
    /// Marks portal cookies `Secure` (serve the portal over HTTPS, directly or behind a
    /// proxy), and makes invitation links `https://`.
    pub secure_cookies: bool,
    /// Requests come through a reverse proxy that appends the client's address to
    /// `X-Forwarded-For`; the sign-in throttle then counts by that address.
    pub behind_proxy: bool,
    /// How webhooks are delivered and events kept.
    pub webhooks: WebhookConfig,
    /// Requests each API key may make per window, in this process.
    pub rate_limit: RateLimit,
}

/// How webhooks are delivered, and how long events are kept.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Receivers on private, loopback and other reserved addresses, and plain `http`,
    /// are allowed (local development and tests).
    pub allow_private: bool,
    /// The delays before each attempt of a delivery.
    pub retry: RetrySchedule,
    /// How long one attempt may take, answer included.
    pub timeout: Duration,
    /// A subscription whose deliveries have all failed this long is disabled.
    pub disable_after: Duration,
    /// How long a replaced secret keeps signing beside the new one.
    pub secret_overlap: Duration,
    /// How long events (and delivery attempts) are kept.
    pub event_retention: Duration,
    /// Attempts in flight at once to one subscription.
    pub concurrency: usize,
    /// Subscriptions served at once by this process.
    pub subscriptions: usize,
    /// How often an idle dispatcher looks for something to send.
    pub idle_poll: Duration,
    /// The share of its time (percent, 1-100) the dispatcher sends while this process's
    /// workers write a job's chunks; it rests the remainder, so an import keeps the
    /// machine and the deliveries catch up after it.
    pub import_share: u8,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry: RetrySchedule::default(),
            timeout: Duration::from_secs(10),
            disable_after: Duration::from_secs(5 * 86_400),
            secret_overlap: Duration::from_secs(86_400),
            event_retention: Duration::from_secs(30 * 86_400),
            concurrency: 8,
            subscriptions: 16,
            idle_poll: Duration::from_secs(1),
            import_share: 25,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024 * 1024,
            workers: 2,
            chunk_size: 3000,
            upload_batch: 5000,
            lease: Duration::from_secs(30),
            programs: parse_catalog(DEFAULT_CATALOG).expect("the shipped catalog is valid"),
            operator_token_hash: None,
            max_concurrent_uploads: 8,
            max_uploads_per_partner: UploadSlots::default_share(8),
            body_pace: BodyPace::default(),
            secure_cookies: false,
            behind_proxy: false,
            webhooks: WebhookConfig::default(),
            rate_limit: RateLimit::default(),
        }
    }
}

impl Config {
    /// Opens the operator API to requests that carry this token.
    pub fn with_operator_token(mut self, token: &str) -> Self {
        self.operator_token_hash = Some(auth::sha256(token));
        self
    }
}

impl Config {
    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            chunk_size: self.chunk_size,
            lease: self.lease,
            idle_poll: Duration::from_secs(1),
        }
    }
}
