//! When a delivery is tried, and tried again after a failure.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::PrimitiveDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// The longest single delay; a receiver down for longer than a week is not coming back for
/// this delivery.
const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const MAX_ATTEMPTS: usize = 30;

/// Leap's schedule, in seconds: the first attempt at once, then 1m, 2m, 4m, 8m, 16m, 29m,
/// 1h, 2h and 4h after each failure.
const LEAP_SCHEDULE_SECS: [u64; 10] = [0, 60, 120, 240, 480, 960, 1740, 3600, 7200, 14400];

/// RFC 9110's IMF-fixdate, the one HTTP-date form a sender may generate.
const IMF_FIXDATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// How long to wait before each attempt of a delivery: the first delay before the first
/// attempt (usually 0s), the next before the second, and so on. Between 1 and 30 delays,
/// each at most 7 days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

/// A retry schedule that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid retry schedule: {0}")]
pub struct RetryScheduleError(String);

impl RetrySchedule {
    /// Reads a comma-separated list of delays, each a whole number and a unit `s`, `m` or
    /// `h`: `0s,1m,2m,4m,8m,16m,29m,1h,2h,4h`. Spaces around a delay are ignored.
    pub fn parse(text: &str) -> Result<RetrySchedule, RetryScheduleError> {
        let delays = text
            .split(',')
            .enumerate()
            .map(|(i, item)| {
                parse_delay(item.trim())
                    .map_err(|e| RetryScheduleError(format!("delay {}: {e}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays.len() > MAX_ATTEMPTS {
            return Err(RetryScheduleError(format!(
                "at most {MAX_ATTEMPTS} delays, not {}",
                delays.len()
            )));
        }
        Ok(RetrySchedule { delays })
    }

    /// How many attempts a delivery gets in all: one per delay.
    pub fn attempts(&self) -> usize {
        self.delays.len()
    }

    /// The delay before attempt `attempt`, counted from 1; `None` for 0 and past the last
    /// attempt, when the delivery has failed for good.
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.delays.get(index).copied()
    }

    /// The delays, in order.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }
}

impl Default for RetrySchedule {
    /// Leap's schedule: `0s,1m,2m,4m,8m,16m,29m,1h,2h,4h`.
    fn default() -> Self {
        Self {
            delays: LEAP_SCHEDULE_SECS.map(Duration::from_secs).to_vec(),
        }
    }
}

impl FromStr for RetrySchedule {
    type Err = RetryScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The text [`RetrySchedule::parse`] reads, each delay in the largest unit that divides it.
impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, delay) in self.delays.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let secs = delay.as_secs();
            match secs {
                s if s > 0 && s % 3600 == 0 => write!(f, "{}h", s / 3600)?,
                s if s > 0 && s % 60 == 0 => write!(f, "{}m", s / 60)?,
                s => write!(f, "{s}s")?,
            }
        }
        Ok(())
    }
}

/// One delay such as `29m`.
fn parse_delay(item: &str) -> Result<Duration, String> {
    if item.is_empty() {
        return Err("is empty; write a number and a unit (s, m or h), such as 30s".to_owned());
    }
    let units = [('s', 1), ('m', 60), ('h', 3600)];
    let Some((number, seconds_per_unit)) = units
        .iter()
        .find_map(|&(unit, seconds)| item.strip_suffix(unit).map(|n| (n, seconds)))
    else {
        return Err(format!("`{item}` must end in a unit: s, m or h"));
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{item}` must be a whole number followed by s, m or h"
        ));
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per_unit))
        .map(Duration::from_secs)
        .filter(|d| *d <= MAX_DELAY)
        .ok_or_else(|| format!("`{item}` is longer than 7 days, the longest delay allowed"))
}

/// `delay` moved by up to 10% either way, so that deliveries that failed together do not
/// all come back at the same instant. `unit` is a random number in [0, 1) from the caller:
/// 0 gives 90% of the delay, 0.5 the delay itself, and values near 1 nearly 110%. A `unit`
/// outside [0, 1] is clamped, and a NaN counts as 0.5.
pub fn jittered(delay: Duration, unit: f64) -> Duration {
    let unit = if unit.is_nan() {
        0.5
    } else {
        unit.clamp(0.0, 1.0)
    };
    let spread = delay / 10;
    let (low, high) = (delay - spread, delay.saturating_add(spread));
    let moved = Duration::try_from_secs_f64(delay.as_secs_f64() * (0.9 + 0.2 * unit));
    // Rounding in floating point may land a nanosecond outside the band; clamp it back.
    moved.unwrap_or(delay).clamp(low, high)
}

/// Reads a `Retry-After` header: either a number of seconds or an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), which is taken relative to `now_unix_secs`. A date in
/// the past asks for no wait at all; anything else that is not one of the two forms
/// (including RFC 9110's obsolete date forms) answers `None`.
pub fn parse_retry_after(value: &str, now_unix_secs: i64) -> Option<Duration> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to count still means "a very long time"; the caller caps it.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = PrimitiveDateTime::parse(value, IMF_FIXDATE).ok()?;
    // The parser ignores the weekday and accepts other spellings; the date must read back
    // exactly, so a wrong weekday or a lower-case month is refused.
    if date.format(IMF_FIXDATE).ok()? != value {
        return None;
    }
    let wait = date
        .assume_utc()
        .unix_timestamp()
        .saturating_sub(now_unix_secs);
    Some(Duration::from_secs(u64::try_from(wait).unwrap_or(0)))
}

/// The delay before the next attempt: the schedule's, unless the receiver asked for a longer
/// one with `Retry-After`, which is honoured up to `cap` so a receiver cannot park a
/// delivery forever.
pub fn next_delay(scheduled: Duration, retry_after: Option<Duration>, cap: Duration) -> Duration {
    match retry_after {
        Some(asked) => scheduled.max(asked.min(cap)),
        None => scheduled,
    }
}

#[cfg(test)]
mod tests;
