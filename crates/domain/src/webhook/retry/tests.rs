use super::*;
use proptest::prelude::*;

const LEAP: &str = "0s,1m,2m,4m,8m,16m,29m,1h,2h,4h";
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
const NOV_6_1994: i64 = 784_111_777;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn the_default_schedule_is_leaps() {
    let schedule = RetrySchedule::default();
    assert_eq!(RetrySchedule::parse(LEAP), Ok(schedule.clone()));
    assert_eq!(schedule.to_string(), LEAP);
    assert_eq!(schedule.attempts(), 10);
    assert_eq!(schedule.delay_before(1), Some(secs(0)));
    assert_eq!(schedule.delay_before(2), Some(secs(60)));
    assert_eq!(schedule.delay_before(7), Some(secs(29 * 60)));
    assert_eq!(schedule.delay_before(10), Some(secs(4 * 3600)));
    assert_eq!(schedule.delay_before(11), None);
    assert_eq!(schedule.delay_before(0), None);
    assert_eq!(schedule.delay_before(u32::MAX), None);
}

#[test]
fn schedules_within_the_limits_are_read() {
    let cases: &[(&str, &[u64])] = &[
        ("0s", &[0]),
        ("90s", &[90]),
        (" 5s , 10m ,1h ", &[5, 600, 3600]),
        ("168h", &[7 * 24 * 3600]),
        ("10080m", &[7 * 24 * 3600]),
        ("604800s", &[604_800]),
        ("007s", &[7]),
    ];
    for (text, expected) in cases {
        let schedule = RetrySchedule::parse(text).expect(text);
        let expected: Vec<Duration> = expected.iter().copied().map(secs).collect();
        assert_eq!(schedule.delays(), expected, "{text}");
        assert_eq!(text.parse::<RetrySchedule>(), Ok(schedule));
    }
    let thirty = vec!["1s"; 30].join(",");
    assert_eq!(RetrySchedule::parse(&thirty).map(|s| s.attempts()), Ok(30));
}

#[test]
fn schedules_that_break_a_rule_are_refused_with_a_reason() {
    let thirty_one = vec!["1s"; 31].join(",");
    let cases: &[(&str, &str)] = &[
        ("", "delay 1: is empty"),
        ("1m,,2m", "delay 2: is empty"),
        ("1m,", "delay 2: is empty"),
        ("5", "must end in a unit"),
        ("5d", "must end in a unit"),
        ("5 s", "whole number"),
        ("-5s", "whole number"),
        ("+5s", "whole number"),
        ("1.5m", "whole number"),
        ("s", "whole number"),
        ("١s", "whole number"),
        ("169h", "longer than 7 days"),
        ("604801s", "longer than 7 days"),
        ("99999999999999999999s", "longer than 7 days"),
        ("9999999999999999h", "longer than 7 days"),
        (&thirty_one, "at most 30 delays"),
    ];
    for (text, expected) in cases {
        let error = RetrySchedule::parse(text).expect_err(text).to_string();
        assert!(error.starts_with("invalid retry schedule: "), "{error}");
        assert!(error.contains(expected), "{text:?}: {error}");
    }
}

#[test]
fn a_jittered_delay_stays_within_ten_percent() {
    let minute = secs(60);
    assert_eq!(jittered(minute, 0.0), secs(54));
    assert_eq!(jittered(minute, 0.5), minute);
    assert!(jittered(minute, 0.999_999) <= secs(66));
    assert_eq!(jittered(Duration::ZERO, 0.7), Duration::ZERO);
    assert_eq!(jittered(minute, -3.0), secs(54));
    assert_eq!(jittered(minute, 7.0), secs(66));
    assert_eq!(jittered(minute, f64::NAN), minute);
    assert_eq!(jittered(minute, f64::INFINITY), secs(66));
    assert!(jittered(Duration::MAX, 0.99) <= Duration::MAX);
}

#[test]
fn retry_after_is_read_as_seconds_or_an_http_date() {
    let now = NOV_6_1994 - 120;
    let cases: &[(&str, Option<u64>)] = &[
        ("0", Some(0)),
        ("120", Some(120)),
        (" 30 ", Some(30)),
        ("99999999999999999999999", Some(u64::MAX)),
        ("Sun, 06 Nov 1994 08:49:37 GMT", Some(120)),
        ("Sun, 06 Nov 1994 08:47:37 GMT", Some(0)),
        ("Sat, 05 Nov 1994 08:49:37 GMT", Some(0)),
        ("Mon, 06 Nov 1995 08:49:37 GMT", Some(120 + 365 * 86_400)),
        ("", None),
        ("-5", None),
        ("+5", None),
        ("1.5", None),
        ("soon", None),
        ("Mon, 06 Nov 1994 08:49:37 GMT", None),
        ("Sun, 06 nov 1994 08:49:37 GMT", None),
        ("Sun, 6 Nov 1994 08:49:37 GMT", None),
        ("Sun, 06 Nov 1994 08:49:37 UTC", None),
        ("Sun, 06 Nov 1994 08:49:37 +0000", None),
        ("Sunday, 06-Nov-94 08:49:37 GMT", None),
        ("Sun Nov  6 08:49:37 1994", None),
        ("Sun, 31 Nov 1994 08:49:37 GMT", None),
        ("1994-11-06T08:49:37Z", None),
    ];
    for (value, expected) in cases {
        assert_eq!(
            parse_retry_after(value, now),
            expected.map(secs),
            "{value:?}"
        );
    }
}

#[test]
fn the_next_delay_honours_retry_after_up_to_the_cap() {
    let cap = secs(3600);
    assert_eq!(next_delay(secs(60), None, cap), secs(60));
    assert_eq!(next_delay(secs(60), Some(secs(10)), cap), secs(60));
    assert_eq!(next_delay(secs(60), Some(secs(600)), cap), secs(600));
    assert_eq!(next_delay(secs(60), Some(secs(86_400)), cap), cap);
    assert_eq!(next_delay(secs(7200), Some(secs(86_400)), cap), secs(7200));
}

proptest! {
    #[test]
    fn a_jittered_delay_is_never_off_by_more_than_a_tenth(
        nanos in any::<u64>(),
        unit in any::<f64>(),
    ) {
        let delay = Duration::from_nanos(nanos);
        let moved = jittered(delay, unit);
        prop_assert!(moved >= delay - delay / 10);
        prop_assert!(moved <= delay + delay / 10);
    }

    #[test]
    fn a_schedule_survives_display_and_parse(
        delays in proptest::collection::vec(0u64..=604_800, 1..=30),
    ) {
        let text = delays.iter().map(|d| format!("{d}s")).collect::<Vec<_>>().join(",");
        let schedule = RetrySchedule::parse(&text).expect("within the limits");
        prop_assert_eq!(RetrySchedule::parse(&schedule.to_string()), Ok(schedule.clone()));
        prop_assert_eq!(schedule.attempts(), delays.len());
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in ".{0,64}", now in any::<i64>()) {
        let _ = RetrySchedule::parse(&text);
        let _ = parse_retry_after(&text, now);
    }

    #[test]
    fn an_http_date_reads_as_the_seconds_until_it(
        at in 0i64..4_102_444_800,
        ahead in 0i64..1_000_000,
    ) {
        let date = time::OffsetDateTime::from_unix_timestamp(at).expect("in range");
        let text = date.format(IMF_FIXDATE).expect("formats");
        prop_assert_eq!(
            parse_retry_after(&text, at - ahead),
            Some(Duration::from_secs(ahead.unsigned_abs()))
        );
    }
}
