//! Demand-response programs as data: who may join, which fields each needs, and when each
//! delivers. Delivery periods are stated as a recurrence and derived from the clock, so a
//! catalog never goes stale.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, Time};

use crate::enums::{CustomerClassification, LoadType, MeterType, TransmissionRegion, Utility};
use crate::meter::parse_date;
use crate::schema::{Kind, field_at};

/// One program of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// The identifier partners see, e.g. `CEC-DSGS`.
    pub identifier: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub transmission_regions: Vec<TransmissionRegion>,
    /// Empty: every classification.
    #[serde(default)]
    pub customer_classifications: Vec<CustomerClassification>,
    /// Empty: every meter type.
    #[serde(default)]
    pub meter_types: Vec<MeterType>,
    /// A meter needs one of these; empty: any load type.
    #[serde(default)]
    pub load_types: Vec<LoadType>,
    /// Empty: any utility.
    #[serde(default)]
    pub utilities: Vec<Utility>,
    /// Dotted `CreateMeter` paths a meter needs beyond the global required fields.
    #[serde(default)]
    pub required_fields: Vec<String>,
    /// Fields needed only under a condition, or any one of several.
    #[serde(default)]
    pub conditional_fields: Vec<Rule>,
    pub delivery: Delivery,
}

/// A requirement: one of `any_of` must be present, when `when` holds (always without it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub any_of: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
}

/// A condition on one field of a meter; false when the field is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    /// The date field is after this date (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The date field is before this date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The field equals this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "when {}", self.field)?;
        if let Some(after) = &self.after {
            write!(f, " is after {after}")?;
        }
        if let Some(before) = &self.before {
            write!(f, " is before {before}")?;
        }
        if let Some(equals) = &self.equals {
            write!(f, " is {equals}")?;
        }
        Ok(())
    }
}

/// When a program delivers: a recurrence, explicit periods, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Every>,
    /// First day of a yearly season, `MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Last day of a yearly season, `MM-DD`; before `start` when the season spans new year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// How long before each activation date the meter must be complete.
    pub deadline_days_before: u32,
    #[serde(default)]
    pub activation: Activation,
    /// One-off periods besides (or instead of) the recurrence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub periods: Vec<ExplicitPeriod>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Every {
    /// A season each year, from `start` to `end`.
    Year,
    /// Each calendar month.
    Month,
}

/// When meters that met a deadline start delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Only at the start of the period.
    #[default]
    Start,
    /// At the start and on the first of every month of the period.
    Monthly,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplicitPeriod {
    pub name: String,
    /// First day, `YYYY-MM-DD`.
    pub start: String,
    /// Last day, `YYYY-MM-DD`.
    pub end: String,
}

/// One delivery period, with its deadlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// E.g. `CEC-DSGS_2027_MAY_OCT`.
    pub name: String,
    pub start: OffsetDateTime,
    /// Exclusive.
    pub end: OffsetDateTime,
    pub deadlines: Vec<Deadline>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub deadline: OffsetDateTime,
    pub activation: OffsetDateTime,
}

impl Period {
    /// The first deadline still open at `now`.
    pub fn next_deadline(&self, now: OffsetDateTime) -> Option<Deadline> {
        self.deadlines.iter().copied().find(|d| d.deadline > now)
    }

    pub fn overlaps(&self, start: OffsetDateTime, end: Option<OffsetDateTime>) -> bool {
        start < self.end && end.is_none_or(|end| end > self.start)
    }
}

fn midnight(date: Date) -> OffsetDateTime {
    date.with_time(Time::MIDNIGHT).assume_utc()
}

fn month_day(text: &str) -> Option<(Month, u8)> {
    let (m, d) = text.split_once('-')?;
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let day: u8 = d.parse().ok()?;
    // Every season date must exist in every year.
    Date::from_calendar_date(2023, month, day).ok()?;
    Some((month, day))
}

fn abbreviation(month: Month) -> String {
    month.to_string()[..3].to_uppercase()
}

impl Program {
    /// The delivery periods near `now`: the recurrence's previous, current and next
    /// periods, and every explicit period, in order of start.
    pub fn periods_around(&self, now: OffsetDateTime) -> Vec<Period> {
        let d = &self.delivery;
        let mut periods = Vec::new();
        match d.every {
            Some(Every::Year) => {
                let (Some((sm, sd)), Some((em, ed))) = (
                    d.start.as_deref().and_then(month_day),
                    d.end.as_deref().and_then(month_day),
                ) else {
                    return periods;
                };
                for year in now.year() - 1..=now.year() + 1 {
                    let Ok(start) = Date::from_calendar_date(year, sm, sd) else {
                        continue;
                    };
                    let end_year = if (em, ed) < (sm, sd) { year + 1 } else { year };
                    let Ok(last) = Date::from_calendar_date(end_year, em, ed) else {
                        continue;
                    };
                    let name = format!(
                        "{}_{year}_{}_{}",
                        self.identifier,
                        abbreviation(sm),
                        abbreviation(em)
                    );
                    periods.push(self.period(name, start, last));
                }
            }
            Some(Every::Month) => {
                let mut start = if now.month() == Month::January {
                    Date::from_calendar_date(now.year() - 1, Month::December, 1)
                } else {
                    Date::from_calendar_date(now.year(), now.month().previous(), 1)
                }
                .expect("the 1st exists");
                for _ in 0..4 {
                    let next = next_month(start);
                    let name = format!(
                        "{}_{}_{}",
                        self.identifier,
                        start.year(),
                        abbreviation(start.month())
                    );
                    let last = next.previous_day().expect("a representable date");
                    periods.push(self.period(name, start, last));
                    start = next;
                }
            }
            None => {}
        }
        for explicit in &d.periods {
            if let (Some(start), Some(last)) =
                (parse_date(&explicit.start), parse_date(&explicit.end))
            {
                periods.push(self.period(explicit.name.clone(), start, last));
            }
        }
        periods.sort_by_key(|p| p.start);
        periods
    }

    fn period(&self, name: String, start: Date, last: Date) -> Period {
        let end = last.next_day().expect("a representable date");
        let mut activations = vec![start];
        if self.delivery.activation == Activation::Monthly {
            let mut month = next_month(
                Date::from_calendar_date(start.year(), start.month(), 1).expect("the 1st exists"),
            );
            while month < end {
                activations.push(month);
                month = next_month(month);
            }
        }
        let lead = Duration::days(i64::from(self.delivery.deadline_days_before));
        Period {
            name,
            start: midnight(start),
            end: midnight(end),
            deadlines: activations
                .into_iter()
                .map(|a| Deadline {
                    deadline: midnight(a) - lead,
                    activation: midnight(a),
                })
                .collect(),
        }
    }

    /// The period a meter completed now would join: the first with a deadline still open.
    pub fn target_period(&self, now: OffsetDateTime) -> Option<Period> {
        self.periods_around(now)
            .into_iter()
            .find(|p| p.next_deadline(now).is_some())
    }

    /// Every field path the program may ask for, for listing and templates.
    pub fn fields(&self) -> BTreeSet<&str> {
        self.required_fields
            .iter()
            .map(String::as_str)
            .chain(
                self.conditional_fields
                    .iter()
                    .flat_map(|r| r.any_of.iter().map(String::as_str)),
            )
            .collect()
    }

    /// Checks that the definition is usable: known paths, valid dates, a delivery.
    pub fn check(&self) -> Result<(), String> {
        let id = &self.identifier;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "program identifier {id:?} must be letters, digits, - and _"
            ));
        }
        if self.transmission_regions.is_empty() {
            return Err(format!(
                "{id}: transmission_regions must name at least one region"
            ));
        }
        for path in &self.required_fields {
            check_path(id, path)?;
        }
        for rule in &self.conditional_fields {
            if rule.any_of.is_empty() {
                return Err(format!(
                    "{id}: a conditional field rule has an empty any_of"
                ));
            }
            for path in &rule.any_of {
                check_path(id, path)?;
            }
            if let Some(when) = &rule.when {
                check_condition(id, when)?;
            }
        }
        let d = &self.delivery;
        match d.every {
            Some(Every::Year) => {
                for (name, value) in [("start", &d.start), ("end", &d.end)] {
                    if value.as_deref().and_then(month_day).is_none() {
                        return Err(format!(
                            "{id}: a yearly delivery needs {name} as MM-DD, a day that exists every year"
                        ));
                    }
                }
            }
            Some(Every::Month) | None => {}
        }
        if d.deadline_days_before > 366 {
            return Err(format!("{id}: deadline_days_before must be at most 366"));
        }
        if d.every.is_none() && d.periods.is_empty() {
            return Err(format!(
                "{id}: the delivery needs `every` or explicit periods"
            ));
        }
        for p in &d.periods {
            match (parse_date(&p.start), parse_date(&p.end)) {
                (Some(start), Some(end))
                    if start <= end && start.year() >= 1900 && end.year() <= 9000 => {}
                _ => {
                    return Err(format!(
                        "{id}: period {} needs start <= end as YYYY-MM-DD",
                        p.name
                    ));
                }
            }
        }
        Ok(())
    }
}

fn next_month(first: Date) -> Date {
    let (year, month) = if first.month() == Month::December {
        (first.year() + 1, Month::January)
    } else {
        (first.year(), first.month().next())
    };
    Date::from_calendar_date(year, month, 1).expect("the 1st exists")
}

fn check_path(program: &str, path: &str) -> Result<(), String> {
    match field_at(path) {
        Some(field) if !matches!(field.kind, Kind::Object(_) | Kind::ObjectList(_)) => Ok(()),
        _ => Err(format!("{program}: {path} is not a field of CreateMeter")),
    }
}

fn check_condition(program: &str, when: &Condition) -> Result<(), String> {
    check_path(program, &when.field)?;
    let field = field_at(&when.field).expect("checked");
    let set = [
        when.after.is_some(),
        when.before.is_some(),
        when.equals.is_some(),
    ];
    if !set.contains(&true) {
        return Err(format!(
            "{program}: the condition on {} needs after, before or equals",
            when.field
        ));
    }
    for date in [&when.after, &when.before].into_iter().flatten() {
        if !matches!(field.kind, Kind::Date) || parse_date(date).is_none() {
            return Err(format!(
                "{program}: after/before need a date field and a YYYY-MM-DD date"
            ));
        }
    }
    Ok(())
}

/// The catalog file: programs, and rules every program shares.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    rule: Vec<Rule>,
    #[serde(default)]
    program: Vec<Program>,
}

/// Parses a `programs.toml`. Catalog-wide `[[rule]]`s are added to every program, so each
/// program's definition is complete on its own.
pub fn parse_catalog(text: &str) -> Result<Vec<Program>, String> {
    let file: CatalogFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut seen = BTreeSet::new();
    let mut programs = Vec::with_capacity(file.program.len());
    for mut program in file.program {
        program.conditional_fields.extend(file.rule.iter().cloned());
        program.check()?;
        if !seen.insert(program.identifier.clone()) {
            return Err(format!("program {} is defined twice", program.identifier));
        }
        programs.push(program);
    }
    Ok(programs)
}

/// The catalog shipped with Gridroll.
pub const DEFAULT_CATALOG: &str = include_str!("../../../programs.toml");

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn program(delivery: &str) -> Program {
        let text = format!(
            "[[program]]\nidentifier = \"P\"\nname = \"P\"\ntransmission_regions = [\"CAISO\"]\n{delivery}"
        );
        parse_catalog(&text).unwrap().remove(0)
    }

    #[test]
    fn the_default_catalog_loads_and_every_program_has_a_future_period() {
        let programs = parse_catalog(DEFAULT_CATALOG).unwrap();
        assert!(programs.len() >= 18);
        for p in &programs {
            for now in [
                datetime!(2026-01-15 00:00 UTC),
                datetime!(2027-07-04 12:00 UTC),
                datetime!(2028-12-31 23:00 UTC),
            ] {
                let target = p
                    .target_period(now)
                    .unwrap_or_else(|| panic!("{} has no period after {now}", p.identifier));
                assert!(target.next_deadline(now).unwrap().deadline > now);
                assert!(target.name.starts_with(&p.identifier));
            }
        }
    }

    #[test]
    fn a_yearly_season_with_monthly_activation_has_a_deadline_per_month() {
        let p = program(
            "[program.delivery]\nevery = \"year\"\nstart = \"05-01\"\nend = \"10-31\"\ndeadline_days_before = 30\nactivation = \"monthly\"",
        );
        let target = p.target_period(datetime!(2027-03-10 00:00 UTC)).unwrap();
        assert_eq!(target.name, "P_2027_MAY_OCT");
        assert_eq!(target.start, datetime!(2027-05-01 00:00 UTC));
        assert_eq!(target.end, datetime!(2027-11-01 00:00 UTC));
        assert_eq!(target.deadlines.len(), 6);
        assert_eq!(
            target.deadlines[0].deadline,
            datetime!(2027-04-01 00:00 UTC)
        );
        assert_eq!(
            target.deadlines[5].activation,
            datetime!(2027-10-01 00:00 UTC)
        );
        // Mid-season, the next monthly activation is still open.
        let mid = p.target_period(datetime!(2027-06-15 00:00 UTC)).unwrap();
        assert_eq!(mid.name, "P_2027_MAY_OCT");
        assert_eq!(
            mid.next_deadline(datetime!(2027-06-15 00:00 UTC))
                .unwrap()
                .activation,
            datetime!(2027-08-01 00:00 UTC)
        );
        // After the last deadline, the next season.
        assert_eq!(
            p.target_period(datetime!(2027-09-02 00:00 UTC))
                .unwrap()
                .name,
            "P_2028_MAY_OCT"
        );
    }

    #[test]
    fn a_season_across_new_year_ends_the_next_year() {
        let p = program(
            "[program.delivery]\nevery = \"year\"\nstart = \"06-01\"\nend = \"05-31\"\ndeadline_days_before = 10",
        );
        let target = p.target_period(datetime!(2027-02-01 00:00 UTC)).unwrap();
        assert_eq!(target.name, "P_2027_JUN_MAY");
        assert_eq!(target.end, datetime!(2028-06-01 00:00 UTC));
    }

    #[test]
    fn monthly_periods_roll_over_the_year() {
        let p = program("[program.delivery]\nevery = \"month\"\ndeadline_days_before = 15");
        let target = p.target_period(datetime!(2027-12-10 00:00 UTC)).unwrap();
        assert_eq!(target.name, "P_2028_JAN");
        // Once January's deadline has passed, February is next.
        let later = p.target_period(datetime!(2027-12-20 00:00 UTC)).unwrap();
        assert_eq!(later.name, "P_2028_FEB");
        assert_eq!(
            target.deadlines[0].deadline,
            datetime!(2027-12-17 00:00 UTC)
        );
    }

    #[test]
    fn explicit_periods_are_used_as_given() {
        let p = program(
            "[program.delivery]\ndeadline_days_before = 7\n[[program.delivery.periods]]\nname = \"P_PILOT\"\nstart = \"2027-08-01\"\nend = \"2027-08-31\"",
        );
        assert_eq!(
            p.target_period(datetime!(2027-07-01 00:00 UTC))
                .unwrap()
                .name,
            "P_PILOT"
        );
        assert!(p.target_period(datetime!(2027-07-30 00:00 UTC)).is_none());
    }

    #[test]
    fn bad_definitions_are_refused_with_the_reason() {
        for (body, expected) in [
            (
                "required_fields = [\"device.colour\"]\n[program.delivery]\nevery = \"month\"\ndeadline_days_before = 1",
                "not a field",
            ),
            (
                "[program.delivery]\nevery = \"year\"\nstart = \"02-30\"\nend = \"03-01\"\ndeadline_days_before = 1",
                "MM-DD",
            ),
            ("[program.delivery]\ndeadline_days_before = 1", "every"),
            (
                "[[program.conditional_fields]]\nany_of = [\"caiso.nem_type\"]\nwhen = { field = \"device.install_date\", after = \"soon\" }\n[program.delivery]\nevery = \"month\"\ndeadline_days_before = 1",
                "YYYY-MM-DD",
            ),
            (
                "colour = \"red\"\n[program.delivery]\nevery = \"month\"\ndeadline_days_before = 1",
                "unknown field",
            ),
        ] {
            let text = format!(
                "[[program]]\nidentifier = \"P\"\nname = \"P\"\ntransmission_regions = [\"CAISO\"]\n{body}"
            );
            let error = parse_catalog(&text).unwrap_err();
            assert!(error.contains(expected), "{body}: {error}");
        }
    }
}
