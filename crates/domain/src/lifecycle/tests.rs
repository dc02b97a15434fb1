use proptest::prelude::*;
use serde_json::json;
use time::macros::{date, datetime};

use super::*;
use crate::timestamp::to_millis;

fn state(state_code: &str, region: &str, meter_type: &str) -> MeterState {
    let data = MeterData::parse(json!({
        "partner_reference": "life-1",
        "transmission_region": region,
        "customer_classification": "RESIDENTIAL",
        "load_types": ["HVAC"],
        "meter_type": meter_type,
        "customer": {"street_1": "1 Main St", "postal_code": "94105", "city": "Somewhere",
                     "state_or_province_code": state_code, "country_code": "US"}
    }))
    .unwrap();
    MeterState {
        data,
        archived: false,
        abstentions: Vec::new(),
    }
}

fn california() -> MeterState {
    state("CA", "CAISO", "DEVICE")
}

const NOW: i64 = 1_803_859_200_000; // 2027-03-01T00:00:00Z

fn tags(names: &[&str]) -> Vec<Tag> {
    names.iter().map(|t| Tag::parse(t).unwrap()).collect()
}

fn period(start: &str, end: &str) -> LocalPeriod {
    LocalPeriod::parse(start, end, Some("Renovation")).unwrap()
}

#[test]
fn tags_are_added_once_and_removed_and_an_unchanged_list_is_no_change() {
    let mut meter = california();
    let added = apply(&Change::AddTags(tags(&["north", "fleet"])), &mut meter, NOW).unwrap();
    assert!(added.data);
    assert_eq!(tags_of(&meter.data), ["north", "fleet"]);
    let again = apply(&Change::AddTags(tags(&["fleet"])), &mut meter, NOW).unwrap();
    assert!(!again.changed());
    apply(
        &Change::RemoveTags(tags(&["north", "absent"])),
        &mut meter,
        NOW,
    )
    .unwrap();
    assert_eq!(tags_of(&meter.data), ["fleet"]);
    apply(&Change::RemoveTags(tags(&["fleet"])), &mut meter, NOW).unwrap();
    assert!(
        meter.data.as_map().get("tags").is_none(),
        "no tags: the field is left out"
    );
}

#[test]
fn a_meter_takes_at_most_fifty_tags_and_a_refusal_changes_nothing() {
    let mut meter = california();
    let many: Vec<Tag> = (0..MAX_TAGS)
        .map(|i| Tag::parse(&format!("t{i}")).unwrap())
        .collect();
    apply(&Change::AddTags(many), &mut meter, NOW).unwrap();
    let before = meter.clone();
    assert_eq!(
        apply(&Change::AddTags(tags(&["one more"])), &mut meter, NOW),
        Err(Refusal::TooManyTags {
            count: MAX_TAGS + 1
        })
    );
    assert_eq!(meter, before);
}

#[test]
fn a_meter_keeps_at_most_its_share_of_periods_and_a_refusal_changes_nothing() {
    let mut meter = california();
    let first = date!(2027 - 01 - 01);
    // Days apart, so that none merges with or overrides another.
    let days: Vec<LocalPeriod> = (0..MAX_PERIODS as i64)
        .map(|i| {
            let day = first + time::Duration::days(2 * i);
            LocalPeriod {
                start: day,
                end: day,
                reason: None,
            }
        })
        .collect();
    for hundred in days.chunks(100) {
        apply(&Change::AddIdle(hundred.to_vec()), &mut meter, NOW).unwrap();
    }
    assert_eq!(meter.abstentions.len(), MAX_PERIODS);
    let before = meter.clone();
    let one_more = period("2029-12-01", "2029-12-01");
    assert_eq!(
        apply(&Change::AddIdle(vec![one_more]), &mut meter, NOW),
        Err(Refusal::TooManyPeriods {
            count: MAX_PERIODS + 1
        })
    );
    assert_eq!(meter, before);
    // A change that does not add to them is taken: one over the last of them replaces it.
    let last = days.last().unwrap().clone();
    apply(
        &Change::AddIdle(vec![LocalPeriod {
            reason: Some("longer".into()),
            ..last
        }]),
        &mut meter,
        NOW,
    )
    .unwrap();
    assert_eq!(meter.abstentions.len(), MAX_PERIODS);
}

#[test]
fn tags_and_references_follow_the_models_rules() {
    assert!(Tag::parse("north fleet").is_ok());
    assert!(Tag::parse("").is_err());
    assert!(Tag::parse("a,b").is_err());
    assert!(Tag::parse(&"x".repeat(129)).is_err());
    assert!(PartnerReference::parse("ref-001").is_ok());
    assert!(PartnerReference::parse("ab").is_err());
    assert!(PartnerReference::parse("a/b").is_err());
}

#[test]
fn archiving_twice_or_unarchiving_an_active_meter_is_refused() {
    let mut meter = california();
    assert_eq!(
        apply(&Change::Unarchive, &mut meter, NOW),
        Err(Refusal::NotArchived)
    );
    assert!(apply(&Change::Archive, &mut meter, NOW).unwrap().archived);
    assert_eq!(
        apply(&Change::Archive, &mut meter, NOW),
        Err(Refusal::AlreadyArchived)
    );
    assert!(apply(&Change::Unarchive, &mut meter, NOW).unwrap().archived);
}

#[test]
fn an_idle_period_runs_from_local_midnight_to_local_midnight_across_daylight_saving() {
    let mut meter = california();
    // March 14, 2027 is the day California moves to daylight time.
    let effect = apply(
        &Change::AddIdle(vec![period("2027-03-10", "2027-03-20")]),
        &mut meter,
        NOW,
    )
    .unwrap();
    assert_eq!(effect.participation.len(), 1);
    let idle = &meter.abstentions[0];
    assert_eq!(idle.start, to_millis(datetime!(2027-03-10 08:00 UTC)));
    assert_eq!(idle.end, Some(to_millis(datetime!(2027-03-21 07:00 UTC))));
    let zone = MeterZone::of(&meter.data);
    assert_eq!(
        idle_periods(&meter.abstentions, &zone),
        [period("2027-03-10", "2027-03-20")]
    );
}

#[test]
fn the_same_dates_are_other_instants_in_another_zone() {
    let mut new_york = state("NY", "NYISO", "DEVICE");
    apply(
        &Change::AddIdle(vec![period("2027-03-10", "2027-03-20")]),
        &mut new_york,
        NOW,
    )
    .unwrap();
    assert_eq!(
        new_york.abstentions[0].start,
        to_millis(datetime!(2027-03-10 05:00 UTC))
    );
}

#[test]
fn an_idle_period_is_removed_only_by_its_exact_dates() {
    let mut meter = california();
    apply(
        &Change::AddIdle(vec![period("2027-06-01", "2027-06-30")]),
        &mut meter,
        NOW,
    )
    .unwrap();
    let before = meter.clone();
    let wrong = period("2027-06-01", "2027-06-29");
    assert_eq!(
        apply(&Change::RemoveIdle(vec![wrong.clone()]), &mut meter, NOW),
        Err(Refusal::NoSuchIdlePeriod(wrong))
    );
    assert_eq!(meter, before);
    apply(
        &Change::RemoveIdle(vec![period("2027-06-01", "2027-06-30")]),
        &mut meter,
        NOW,
    )
    .unwrap();
    assert!(meter.abstentions.is_empty());
}

#[test]
fn a_new_idle_period_overrides_the_overlapping_part_of_a_disenrollment() {
    let mut meter = california();
    apply(
        &Change::Disenroll {
            date: date!(2027 - 06 - 01),
            reason: Some("moved".into()),
        },
        &mut meter,
        NOW,
    )
    .unwrap();
    apply(
        &Change::AddIdle(vec![period("2027-05-20", "2027-06-10")]),
        &mut meter,
        NOW,
    )
    .unwrap();
    let kinds: Vec<_> = meter.abstentions.iter().map(|a| a.preference).collect();
    assert_eq!(
        kinds,
        [
            ParticipationPreference::Idle,
            ParticipationPreference::Disenroll
        ]
    );
    let zone = MeterZone::of(&meter.data);
    assert_eq!(
        meter.abstentions[1].start,
        zone.start_of(date!(2027 - 06 - 11))
    );
}

#[test]
fn disenrollment_must_be_after_the_meters_today_and_participate_lifts_it() {
    let mut meter = california();
    // At 2027-03-01T00:00Z it is still February 28 in California.
    let today = date!(2027 - 02 - 28);
    assert_eq!(
        apply(
            &Change::Disenroll {
                date: today,
                reason: None
            },
            &mut meter,
            NOW
        ),
        Err(Refusal::DisenrollNotInFuture { date: today, today })
    );
    apply(
        &Change::Disenroll {
            date: date!(2027 - 03 - 01),
            reason: None,
        },
        &mut meter,
        NOW,
    )
    .unwrap();
    let lifted = apply(
        &Change::Participate {
            start: date!(2027 - 05 - 01),
        },
        &mut meter,
        NOW,
    )
    .unwrap();
    assert_eq!(lifted.participation.len(), 1);
    assert_eq!(meter.abstentions.len(), 1);
    assert_eq!(
        meter.abstentions[0].end,
        Some(MeterZone::of(&meter.data).start_of(date!(2027 - 05 - 01)))
    );
}

#[test]
fn the_market_registration_refresh_is_for_caiso_utility_meters_only() {
    let mut device = california();
    assert!(matches!(
        apply(&Change::RefreshRegistration, &mut device, NOW),
        Err(Refusal::RegistrationNotApplicable { .. })
    ));
    let mut utility = state("CA", "CAISO", "UTILITY_METER");
    assert!(
        apply(&Change::RefreshRegistration, &mut utility, NOW)
            .unwrap()
            .reevaluate
    );
    utility.archived = true;
    assert_eq!(
        apply(&Change::RefreshRegistration, &mut utility, NOW),
        Err(Refusal::Archived)
    );
}

#[test]
fn the_periods_of_a_request_must_not_overlap_or_be_inverted() {
    assert!(matches!(
        LocalPeriod::parse("2027-06-30", "2027-06-01", None),
        Err(PeriodError::Inverted { .. })
    ));
    assert!(matches!(
        LocalPeriod::parse("2027-6-1", "2027-06-01", None),
        Err(PeriodError::NotADate { .. })
    ));
    let one_day = LocalPeriod::parse("2027-06-01", "2027-06-01", None).unwrap();
    assert!(LocalPeriod::check_all(std::slice::from_ref(&one_day)).is_ok());
    let touching = [
        period("2027-06-01", "2027-06-10"),
        period("2027-06-10", "2027-06-20"),
    ];
    assert!(matches!(
        LocalPeriod::check_all(&touching),
        Err(PeriodError::Overlapping { .. })
    ));
    let apart = [
        period("2027-06-11", "2027-06-20"),
        period("2027-06-01", "2027-06-10"),
    ];
    assert!(LocalPeriod::check_all(&apart).is_ok());
    assert_eq!(LocalPeriod::check_all(&[]), Err(PeriodError::None));
    assert!(parse_reason(Some(&"r".repeat(MAX_REASON + 1))).is_err());
    assert_eq!(parse_reason(Some("  ")), Ok(None));
}

#[test]
fn a_date_is_four_digit_year_month_day_within_the_years_every_zone_can_place() {
    for text in ["+2027-01-01", "-0001-01-01", "27-01-01", "2027-1-01"] {
        assert!(
            matches!(
                parse_local_date("start_date", text),
                Err(PeriodError::NotADate { .. })
            ),
            "{text}"
        );
    }
    for text in ["0000-01-01", "1969-12-31", "9999-12-31", "9999-01-01"] {
        assert!(
            matches!(
                parse_local_date("end_date", text),
                Err(PeriodError::OutOfRange { .. })
            ),
            "{text}"
        );
    }
    assert_eq!(parse_local_date("start_date", "1970-01-01"), Ok(FIRST_DATE));
    assert_eq!(parse_local_date("end_date", "9998-12-31"), Ok(LAST_DATE));
    // The first and last days of the range are whole local days in every zone, so a
    // period over them reads back as it was given.
    for (code, region) in [("HI", "CAISO"), ("GU", "CAISO"), ("NL", "ISONE")] {
        let mut meter = state(code, region, "DEVICE");
        let edges = vec![
            LocalPeriod::parse("1970-01-01", "1970-01-01", None).unwrap(),
            LocalPeriod::parse("9998-12-31", "9998-12-31", None).unwrap(),
        ];
        apply(&Change::AddIdle(edges.clone()), &mut meter, NOW).unwrap();
        let zone = MeterZone::of(&meter.data);
        assert_eq!(idle_periods(&meter.abstentions, &zone), edges, "{code}");
        assert!(
            meter
                .abstentions
                .iter()
                .all(|a| a.end.is_some_and(|end| end > a.start))
        );
    }
}

proptest! {
    #[test]
    fn a_tag_that_parses_reads_back_from_a_csv_cell_as_it_was(text in "\\PC{0,140}") {
        if let Ok(tag) = Tag::parse(&text) {
            let cell: Vec<&str> = crate::csv_layout::split_list(tag.as_str()).collect();
            prop_assert_eq!(cell, vec![tag.as_str()]);
        }
    }

    #[test]
    fn any_local_period_reads_back_as_the_same_dates(
        start in 0i64..3650, length in 0i64..400, state_index in 0usize..4
    ) {
        let states = [("CA", "CAISO"), ("NY", "NYISO"), ("AZ", "WECC_SW"), ("TX", "ERCOT")];
        let (code, region) = states[state_index];
        let mut meter = state(code, region, "DEVICE");
        let first = date!(2026 - 01 - 01) + time::Duration::days(start);
        let last = first + time::Duration::days(length);
        let given = LocalPeriod { start: first, end: last, reason: None };
        apply(&Change::AddIdle(vec![given.clone()]), &mut meter, NOW).unwrap();
        let zone = MeterZone::of(&meter.data);
        prop_assert_eq!(idle_periods(&meter.abstentions, &zone), vec![given]);
    }
}
