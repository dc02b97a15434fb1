//! Lease lengths shared by every backend.

use std::time::Duration;

/// How long an upload may go without writing a batch before its job counts as abandoned.
pub const RECEIVE_LEASE: Duration = Duration::from_secs(10 * 60);

/// How long the worker named when a job is begun has to process it before others may.
pub const OWN_LEASE: Duration = Duration::from_secs(60);

/// A duration as stored: milliseconds.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}
