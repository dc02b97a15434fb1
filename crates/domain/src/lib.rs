//! Gridroll's domain: the meter model and its validation, the CSV layout, reading upload
//! bodies, the rules of batch jobs, programs, eligibility and enrollments. Pure: no I/O beyond reading a body it is given,
//! no async, no database.

pub mod compact;
pub mod compiled;
pub mod csv_layout;
pub mod eligibility;
pub mod enrollment;
pub mod enums;
pub mod event;
pub mod ids;
pub mod intake;
pub mod job;
pub mod lifecycle;
pub mod meter;
pub mod program;
pub mod schema;
pub mod scope;
pub mod suggest;
pub mod template;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod timestamp;
pub mod webhook;
pub mod zone;

pub use ids::{ApiKeyId, EventId, JobId, MeterId, PartnerId, UserId, WebhookId};
pub use meter::{FieldProblem, MeterData};
