//! Settings of the HTTP API and the workers, with their defaults.

use std::time::Duration;

use gridroll_domain::program::{DEFAULT_CATALOG, Program, parse_catalog};

use crate::auth;
use crate::body::BodyPace;
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
