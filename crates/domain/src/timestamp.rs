//! Timestamps on the wire: UTC, RFC 3339, milliseconds (`2024-03-21T09:43:51.186Z`).

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

const WIRE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Where "now" comes from, so that tests and sandboxes can set the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Milliseconds since the Unix epoch, the stored form of every timestamp.
pub fn now_millis() -> i64 {
    to_millis(OffsetDateTime::now_utc())
}

pub fn to_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Stored milliseconds as a UTC date-time.
pub fn from_millis(millis: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Formats stored milliseconds for the wire.
pub fn format_millis(millis: i64) -> String {
    format(from_millis(millis))
}

/// Formats a date-time for the wire.
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(WIRE)
        .expect("a UTC timestamp always formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        assert_eq!(format_millis(1_711_014_231_186), "2024-03-21T09:43:51.186Z");
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
    }
}
