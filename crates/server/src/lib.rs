#![recursion_limit = "256"]
//! Gridroll's server: the partner HTTP API, authentication, and the background workers
//! that turn uploaded assets into meters.

pub mod accounts;
pub mod auth;
pub mod body;
pub mod config;
pub mod cursor;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod lifecycle;
pub mod listing;
pub mod openapi;
pub mod portal;
pub mod rate_limit;
pub mod routes;
pub mod slots;
pub mod state;
pub mod telemetry;
pub mod upload;
pub mod webhooks;
pub mod wire;
pub mod worker;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, patch, post};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;

pub use crate::config::Config;
use crate::error::ApiError;
pub use crate::state::AppState;

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    // Installed before the first request, so that none goes uncounted.
    telemetry::metrics();
    let portal = portal::router(&state);
    let pace = state.config.body_pace;
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal") }))
        .route("/portal/", get(|| async { Redirect::permanent("/portal") }))
        .nest("/portal", portal)
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(routes::openapi))
        .route("/docs", get(openapi::docs::page))
        .merge(partner_api(&state))
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
            "/operator/v1/partners/{partner_id}/keys",
            post(routes::operator::create_key),
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
        .route_layer(axum::middleware::from_fn(telemetry::remember_route))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(pace, body::guard))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(telemetry::track))
}

/// The partner API: every operation behind the key and scope guard (see
/// [`auth::OPERATIONS`]).
fn partner_api(state: &AppState) -> Router<AppState> {
    Router::new()
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
        .route(
            "/v1.1/meters/tags",
            post(routes::lifecycle::add_tags).delete(routes::lifecycle::remove_tags),
        )
        .route(
            "/v1.1/meters/{meter_id}/partner_meter_ref",
            patch(routes::lifecycle::change_reference),
        )
        .route(
            "/v1.1/meters/partner_meter_ref",
            patch(routes::lifecycle::change_references),
        )
        .route("/v1.1/meters/archive", post(routes::lifecycle::archive))
        .route("/v1.1/meters/unarchive", post(routes::lifecycle::unarchive))
        .route(
            "/v1.1/enrollment/meters/{meter_id}/idle_periods",
            get(routes::participation::idle_periods)
                .post(routes::participation::add_idle_periods)
                .delete(routes::participation::remove_idle_periods),
        )
        .route(
            "/v1.1/enrollment/meters/idle_periods",
            get(routes::participation::idle_periods_bulk)
                .post(routes::participation::add_idle_periods_bulk)
                .delete(routes::participation::remove_idle_periods_bulk),
        )
        .route(
            "/v1.1/enrollment/meters/{meter_id}/disenrollment_requests",
            post(routes::participation::disenroll),
        )
        .route(
            "/v1.1/enrollment/meters/disenrollment_requests",
            post(routes::participation::disenroll_bulk),
        )
        .route(
            "/v1.1/enrollment/meters/{meter_id}/participate",
            post(routes::participation::participate),
        )
        .route(
            "/v1.1/enrollment/meters/participate",
            post(routes::participation::participate_bulk),
        )
        .route(
            "/v1.1/enrollment/meters/{meter_id}/market_registration_refresh",
            post(routes::participation::refresh_registration),
        )
        .route("/v1.1/programs", get(routes::programs::list))
        .route(
            "/v1.1/programs/{program_identifier}",
            get(routes::programs::get),
        )
        .route(
            "/v1.1/programs/{program_identifier}/template",
            get(routes::programs::template),
        )
        .route("/v1.1/meters/validate", post(routes::programs::validate))
        .route(
            "/v1.1/webhooks",
            get(routes::webhooks::list).post(routes::webhooks::create),
        )
        .route(
            "/v1.1/webhooks/{webhook_id}",
            get(routes::webhooks::get)
                .put(routes::webhooks::replace)
                .delete(routes::webhooks::delete),
        )
        .route(
            "/v1.1/webhooks/{webhook_id}/test",
            post(routes::webhooks::test),
        )
        .route(
            "/v1.1/webhooks/{webhook_id}/rotate-secret",
            post(routes::webhooks::rotate_secret),
        )
        .route(
            "/v1.1/webhooks/{webhook_id}/enable",
            post(routes::webhooks::enable),
        )
        .route(
            "/v1.1/webhooks/{webhook_id}/deliveries",
            get(routes::webhooks::deliveries),
        )
        .route(
            "/v1.1/webhooks/{webhook_id}/events/{webhook_event_id}/redeliver",
            post(routes::webhooks::redeliver),
        )
        .route(
            "/v1.1/webhooks/{webhook_id}/recover",
            post(routes::webhooks::recover),
        )
        .route("/v1.1/events", get(routes::events::feed))
        // Layers run from the last added: the key guard, then idempotency.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::guard,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
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
    let now = state.now_millis();
    state.maintenance.recover(now).await?;
    let added = state
        .catalog
        .seed_programs(&state.config.programs, now)
        .await?;
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
