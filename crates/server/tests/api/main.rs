//! Gridroll's server through its real router, on every backend: one test binary, a module
//! per area, the builders they share in `common`.

mod accounts;
mod auth_and_isolation;
mod bad_input;
mod browser;
mod common;
mod create_meters;
mod enrollments;
mod idempotency;
mod inventory;
mod lifecycle;
mod observability;
mod openapi;
mod participation;
mod portal;
mod portal_meters;
mod rate_limits;
mod restart;
mod webhooks;
