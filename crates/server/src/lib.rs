#![recursion_limit = "256"]
//! Gridroll's server: the partner HTTP API, authentication, and the background workers
//! that turn uploaded assets into meters.

pub mod auth;
pub mod body;
pub mod error;
pub mod extract;
pub mod listing;
pub mod openapi;
pub mod portal;
pub mod routes;
pub mod slots;
pub mod upload;
pub mod wire;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use gridroll_domain::program::{DEFAULT_CATALOG, Program, parse_catalog};
use gridroll_domain::timestamp::{Clock, SystemClock};
use gridroll_store::Store;
use serde_json::json;
use tokio::sync::Notify;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::worker::{WorkerConfig, Workers};

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
    pub body_pace: body::BodyPace,
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
            max_uploads_per_partner: slots::UploadSlots::default_share(8),
            body_pace: body::BodyPace::default(),
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

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    /// Woken when a job is ready for the workers.
    pub jobs_ready: Arc<Notify>,
    pub clock: Arc<dyn Clock>,
    /// Recently used API keys.
    pub keys: Arc<auth::KeyCache>,
    /// Places for bulk uploads in progress.
    pub uploads: Arc<slots::UploadSlots>,
    /// Failed portal sign-ins per client address.
    pub sign_ins: Arc<portal::throttle::SignInThrottle>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        Self {
            store,
            uploads: Arc::new(slots::UploadSlots::new(
                config.max_concurrent_uploads,
                config.max_uploads_per_partner,
            )),
            config: Arc::new(config),
            jobs_ready: Arc::new(Notify::new()),
            clock: Arc::new(SystemClock),
            keys: Arc::new(auth::KeyCache::default()),
            sign_ins: Arc::new(portal::throttle::SignInThrottle::default()),
        }
    }

    /// The clock's instant as stored: milliseconds since the epoch.
    pub fn now_millis(&self) -> i64 {
        gridroll_domain::timestamp::to_millis(self.clock.now())
    }

    /// Starts this state's job workers.
    pub fn start_workers(&self) -> Workers {
        Workers::start(
            self.store.clone(),
            self.config.workers,
            self.config.worker_config(),
            self.clock.clone(),
            self.jobs_ready.clone(),
        )
    }
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let portal = portal::router(&state);
    let pace = state.config.body_pace;
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal") }))
        .route("/portal/", get(|| async { Redirect::permanent("/portal") }))
        .nest("/portal", portal)
        .route("/healthz", get(routes::healthz))
        .route("/openapi.json", get(routes::openapi))
        .route(
            "/v1.1/jobs/meters",
            get(routes::jobs::list).post(routes::jobs::create),
        )
        .route("/v1.1/jobs/meters/{job_id}", get(routes::jobs::get))
        .route("/v1.1/jobs/meter-job-filters", get(routes::jobs::filters))
        .route("/v1.1/provisional-assets", get(routes::assets::list))
        .route(
            "/v1.1/provisional-assets-filters",
            get(routes::assets::filters),
        )
        .route(
            "/v2/meters/search",
            axum::routing::post(routes::meters::search),
        )
        .route("/v1.1/meters", post(routes::meters::create))
        .route("/v2/meters/{meter_id}", get(routes::meters::get))
        .route(
            "/v2/meters/{meter_id}/enrollments",
            get(routes::enrollments::get),
        )
        .route(
            "/v2/meters/enrollments/search",
            post(routes::enrollments::search),
        )
        .route(
            "/v2/meters/{meter_id}/participation",
            post(routes::enrollments::participation),
        )
        .route(
            "/v2/meters/participation",
            post(routes::enrollments::participation_bulk),
        )
        .route("/v1.1/programs", get(routes::programs::list))
        .route(
            "/v1.1/programs/{program_identifier}",
            get(routes::programs::get),
        )
        .route("/v1.1/meters/validate", post(routes::programs::validate))
        .route("/operator/v1/programs", get(routes::operator::programs))
        .route(
            "/operator/v1/programs/{program_identifier}",
            axum::routing::put(routes::operator::put_program)
                .delete(routes::operator::retire_program),
        )
        .route(
            "/operator/v1/partners/{partner_id}/programs",
            axum::routing::put(routes::operator::set_partner_programs),
        )
        .route(
            "/operator/v1/partners/{partner_id}/enrollments/activate",
            post(routes::operator::activate),
        )
        .route(
            "/operator/v1/partners/{partner_id}/enrollments/refresh",
            post(routes::operator::refresh),
        )
        .route(
            "/operator/v1/partners/{partner_id}/meters/import",
            post(routes::operator::import),
        )
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(pace, body::guard))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let reference = uuid::Uuid::now_v7();
    tracing::error!(%reference, "a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An error happened whilst processing your request",
        json!({"reference": reference}),
    )
    .into_response()
}

/// Readies the store for serving: cleans up after stopped processes and adds the
/// configured programs the catalog lacks.
pub async fn prepare(state: &AppState) -> Result<(), gridroll_store::StoreError> {
    state.store.recover().await?;
    let added = state.store.seed_programs(&state.config.programs).await?;
    if added > 0 {
        tracing::info!(added, "added programs to the catalog");
    }
    Ok(())
}

/// Serves the API on `listener` until `shutdown` completes, then stops the workers after
/// the chunk each has in hand.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    prepare(&state).await.map_err(std::io::Error::other)?;
    let workers = state.start_workers();
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    workers.shutdown().await;
    result
}
