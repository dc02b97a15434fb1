//! Enrollments: where a meter stands with each program, what the partner and the operator
//! still have to do, and the meter's participation preferences.
//!
//! What is stored per meter and program is the outcome of eligibility (INELIGIBLE,
//! ELIGIBLE, PENDING or ACTIVE, with missing fields or the criteria the meter fails). The
//! delivery period, deadlines, NOT_PARTICIPATING and the sentences that explain an
//! ineligibility are derived when read, from the catalog, the meter, the participation
//! preferences and the clock.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::eligibility::{Reason, Verdict, describe_missing, evaluate};
use crate::enums::{ActionType, EnrollmentStatus, ParticipationPreference};
use crate::meter::MeterData;
use crate::program::{Deadline, Period, Program};
use crate::timestamp::to_millis;

/// A meter's standing with one program, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub program: String,
    /// INELIGIBLE, ELIGIBLE, PENDING or ACTIVE.
    pub status: EnrollmentStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    /// When the operator (or the activation date) made it ACTIVE, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<i64>,
}

/// Evaluates a meter against the programs its partner may use, keeping what still holds
/// of its previous enrollments: an ACTIVE enrollment stays ACTIVE while the meter remains
/// complete, and a program the meter left (its region changed) stays listed as INELIGIBLE.
pub fn reevaluate(
    programs: &[Program],
    meter: &MeterData,
    previous: &[Enrollment],
) -> Vec<Enrollment> {
    let region = meter.transmission_region();
    let before: HashMap<&str, &Enrollment> =
        previous.iter().map(|e| (e.program.as_str(), e)).collect();
    let mut enrollments = Vec::new();
    for program in programs {
        let in_region = program.transmission_regions.contains(&region);
        let was_enrolled = before.contains_key(program.identifier.as_str());
        if !in_region && !was_enrolled {
            continue;
        }
        let earlier = before.get(program.identifier.as_str());
        enrollments.push(match evaluate(program, meter) {
            Verdict::Ineligible(reasons) => Enrollment {
                program: program.identifier.clone(),
                status: EnrollmentStatus::Ineligible,
                missing: vec![],
                reasons,
                activated_at: None,
            },
            Verdict::Eligible(missing) if !missing.is_empty() => Enrollment {
                program: program.identifier.clone(),
                status: EnrollmentStatus::Eligible,
                missing,
                reasons: vec![],
                activated_at: None,
            },
            Verdict::Eligible(_) => match earlier {
                Some(e) if e.status == EnrollmentStatus::Active => (*e).clone(),
                _ => Enrollment {
                    program: program.identifier.clone(),
                    status: EnrollmentStatus::Pending,
                    missing: vec![],
                    reasons: vec![],
                    activated_at: None,
                },
            },
        });
    }
    enrollments
}

/// The enrollments of an archived meter: every program it was evaluated against, each
/// INELIGIBLE because the meter is archived (an ACTIVE one is left: the meter is brought
/// back PENDING, for the operator to confirm again).
pub fn withdrawn(
    programs: &[Program],
    meter: &MeterData,
    previous: &[Enrollment],
) -> Vec<Enrollment> {
    reevaluate(programs, meter, previous)
        .into_iter()
        .map(|e| Enrollment {
            program: e.program,
            status: EnrollmentStatus::Ineligible,
            missing: vec![],
            reasons: vec![Reason::Archived],
            activated_at: None,
        })
        .collect()
}

/// Makes a PENDING enrollment ACTIVE. Returns whether anything changed.
pub fn activate(enrollments: &mut [Enrollment], program: &str, now: OffsetDateTime) -> bool {
    match enrollments.iter_mut().find(|e| e.program == program) {
        Some(e) if e.status == EnrollmentStatus::Pending => {
            e.status = EnrollmentStatus::Active;
            e.activated_at = Some(to_millis(now));
            true
        }
        _ => false,
    }
}

/// A period in which a meter does not take part in events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abstention {
    /// IDLE or DISENROLL.
    pub preference: ParticipationPreference,
    pub start: i64,
    /// Exclusive; none: open-ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A partner's change of participation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferenceChange {
    pub preference: ParticipationPreference,
    pub start: i64,
    pub end: Option<i64>,
    pub reason: Option<String>,
}

/// Why a participation change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreferenceError {
    #[error("IDLE needs an end_time: a meter idles for a period")]
    IdleWithoutEnd,
    #[error("end_time must be after start_time")]
    EndBeforeStart,
}

/// Applies a change to a meter's abstentions: the new preference holds from `start` to
/// `end` (or for good), replacing whatever held there before.
pub fn apply_preference(
    abstentions: &mut Vec<Abstention>,
    change: PreferenceChange,
) -> Result<(), PreferenceError> {
    if change.end.is_some_and(|end| end <= change.start) {
        return Err(PreferenceError::EndBeforeStart);
    }
    if change.preference == ParticipationPreference::Idle && change.end.is_none() {
        return Err(PreferenceError::IdleWithoutEnd);
    }
    let (start, end) = (change.start, change.end);
    let mut kept = Vec::new();
    for a in abstentions.drain(..) {
        let a_end = a.end.unwrap_or(i64::MAX);
        let c_end = end.unwrap_or(i64::MAX);
        if a_end <= start || a.start >= c_end {
            kept.push(a);
            continue;
        }
        // Keep the parts outside the new period.
        if a.start < start {
            kept.push(Abstention {
                end: Some(start),
                ..a.clone()
            });
        }
        if a_end > c_end {
            kept.push(Abstention { start: c_end, ..a });
        }
    }
    if change.preference != ParticipationPreference::Participate {
        kept.push(Abstention {
            preference: change.preference,
            start,
            end,
            reason: change.reason,
        });
    }
    kept.sort_by_key(|a| a.start);
    *abstentions = kept;
    Ok(())
}

/// One entry of the participation timeline shown to partners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub preference: ParticipationPreference,
    pub start: i64,
    pub end: Option<i64>,
    pub reason: Option<String>,
}

/// The whole timeline from `since`: PARTICIPATE wherever no abstention holds.
pub fn timeline(abstentions: &[Abstention], since: i64) -> Vec<TimelineEntry> {
    let mut entries = Vec::new();
    let mut cursor = since;
    for a in abstentions {
        if a.start > cursor {
            entries.push(TimelineEntry {
                preference: ParticipationPreference::Participate,
                start: cursor,
                end: Some(a.start),
                reason: None,
            });
        }
        entries.push(TimelineEntry {
            preference: a.preference,
            start: a.start,
            end: a.end,
            reason: a.reason.clone(),
        });
        match a.end {
            Some(end) => cursor = cursor.max(end),
            None => return entries,
        }
    }
    entries.push(TimelineEntry {
        preference: ParticipationPreference::Participate,
        start: cursor,
        end: None,
        reason: None,
    });
    entries
}

/// A required action, on the partner or on the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub program: String,
    pub delivery_period: String,
    pub deadline: Option<OffsetDateTime>,
    pub action_type: ActionType,
    pub description: String,
    pub code: &'static str,
}

/// A meter's enrollment in one program, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramView {
    pub program: String,
    pub period: Option<Period>,
    pub status: EnrollmentStatus,
    pub reasons: Vec<Reason>,
    pub missing: Vec<String>,
    /// The meter's idle and disenrolled periods that fall in the delivery period.
    pub abstentions: Vec<Abstention>,
    /// The one that makes the enrollment NOT_PARTICIPATING, when one does.
    pub not_participating: Option<Abstention>,
}

impl ProgramView {
    /// Why the enrollment is NOT_PARTICIPATING, as a sentence naming the preference that
    /// makes it so (times as the wire shows them, UTC).
    pub fn not_participating_reason(&self) -> Option<String> {
        let a = self.not_participating.as_ref()?;
        let period = self.period.as_ref().map_or("", |p| p.name.as_str());
        let when = match a.end {
            Some(end) => format!(
                "from {} to {}",
                crate::timestamp::format_millis(a.start),
                crate::timestamp::format_millis(end)
            ),
            None => format!("from {} on", crate::timestamp::format_millis(a.start)),
        };
        let what = match a.preference {
            ParticipationPreference::Idle => "idle",
            _ => "disenrolled",
        };
        let why = a
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        Some(format!(
            "The meter is {what} {when}{why}, which keeps it out of {period}"
        ))
    }

    /// Why the meter cannot join, as sentences about the program.
    pub fn described_reasons(
        &self,
        catalog: &HashMap<String, Program>,
        meter: &MeterData,
    ) -> Vec<String> {
        catalog.get(&self.program).map_or_else(Vec::new, |program| {
            self.reasons
                .iter()
                .map(|r| r.describe(program, meter))
                .collect()
        })
    }
}

/// Everything the enrollment endpoints show of a meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterEnrollments {
    pub global_status: EnrollmentStatus,
    pub programs: Vec<ProgramView>,
    pub partner_actions: Vec<Action>,
    pub operator_actions: Vec<Action>,
}

impl MeterEnrollments {
    /// The action types the partner has to act on, for search.
    pub fn partner_action_types(&self) -> Vec<ActionType> {
        let mut types: Vec<ActionType> =
            self.partner_actions.iter().map(|a| a.action_type).collect();
        types.sort();
        types.dedup();
        types
    }
}

/// What search filters on, kept on the meter and refreshed whenever its enrollments or
/// preferences change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub global_status: EnrollmentStatus,
    pub partner_action_required: bool,
    pub action_types: Vec<ActionType>,
    /// Programs the meter is PENDING in, awaiting the operator.
    pub pending_programs: Vec<String>,
}

pub fn summarize(
    enrollments: &[Enrollment],
    catalog: &HashMap<String, Program>,
    abstentions: &[Abstention],
    schedule: &Schedule,
) -> Summary {
    // What `view` derives, without writing out the actions: this runs for every meter
    // written, and only the statuses count here.
    let statuses: Vec<EnrollmentStatus> = enrollments
        .iter()
        .filter_map(|e| {
            let program = catalog.get(&e.program)?;
            Some(standing(e, program, abstentions, schedule).1)
        })
        .collect();
    let partner_action_required = statuses.contains(&EnrollmentStatus::Eligible);
    Summary {
        global_status: global_status(statuses),
        partner_action_required,
        action_types: summary_action_types(partner_action_required).to_vec(),
        pending_programs: enrollments
            .iter()
            .filter(|e| e.status == EnrollmentStatus::Pending)
            .map(|e| e.program.clone())
            .collect(),
    }
}

/// The partner's action types a summary lists: an ELIGIBLE enrollment is the one partner
/// action there is (see [`view`]).
pub fn summary_action_types(partner_action_required: bool) -> &'static [ActionType] {
    if partner_action_required {
        &[ActionType::NoMissingFields]
    } else {
        &[]
    }
}

/// The enrollment statuses from the best to the worst: the order in which a meter moves
/// through enrollment, and in which lists and charts show them.
pub const STATUS_ORDER: [EnrollmentStatus; 5] = [
    EnrollmentStatus::Active,
    EnrollmentStatus::Pending,
    EnrollmentStatus::Eligible,
    EnrollmentStatus::NotParticipating,
    EnrollmentStatus::Ineligible,
];

/// Where the meter stands overall: the best of its programs' statuses.
pub fn global_status(statuses: impl IntoIterator<Item = EnrollmentStatus>) -> EnrollmentStatus {
    let rank = |s: &EnrollmentStatus| STATUS_ORDER.iter().position(|o| o == s);
    statuses
        .into_iter()
        .min_by_key(rank)
        .unwrap_or(EnrollmentStatus::Ineligible)
}

/// The delivery periods of a catalog's programs at one instant, worked out once and used
/// for every meter evaluated at that instant.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub now: OffsetDateTime,
    periods: HashMap<String, (Option<Period>, Option<Period>)>,
}

impl Schedule {
    pub fn new<'a>(programs: impl IntoIterator<Item = &'a Program>, now: OffsetDateTime) -> Self {
        let periods = programs
            .into_iter()
            .map(|program| {
                let current = program
                    .periods_around(now)
                    .into_iter()
                    .find(|p| p.start <= now && now < p.end);
                (
                    program.identifier.clone(),
                    (program.target_period(now), current),
                )
            })
            .collect();
        Self { now, periods }
    }

    /// The period a meter joining `program` now would deliver in.
    pub fn target(&self, program: &str) -> Option<&Period> {
        self.periods
            .get(program)
            .and_then(|(target, _)| target.as_ref())
    }

    /// The period under way, if any.
    pub fn current(&self, program: &str) -> Option<&Period> {
        self.periods
            .get(program)
            .and_then(|(_, current)| current.as_ref())
    }
}

/// Where an enrollment stands at the schedule's instant: the delivery period it is in,
/// its status, and the period of not taking part that keeps it out of that delivery
/// period, if one does.
///
/// One idle day does not cost a season. A program is NOT_PARTICIPATING for its delivery
/// period when the meter's idle or disenrolled periods leave it no time to deliver in what
/// remains of the period (from its start, or from now once it is under way), or while one
/// of them is in effect during the period; otherwise the enrollment keeps its status and
/// the periods are listed beside it (see [`ProgramView::abstentions`]).
fn standing<'s>(
    enrollment: &Enrollment,
    program: &Program,
    abstentions: &[Abstention],
    schedule: &'s Schedule,
) -> (Option<&'s Period>, EnrollmentStatus, Option<Abstention>) {
    let period = match enrollment.status {
        // An active enrollment delivers in the period under way, if one is.
        EnrollmentStatus::Active => schedule
            .current(&program.identifier)
            .or_else(|| schedule.target(&program.identifier)),
        _ => schedule.target(&program.identifier),
    };
    let keeping_out = period.and_then(|p| keeping_out(p, abstentions, schedule.now));
    let status = match enrollment.status {
        EnrollmentStatus::Ineligible => EnrollmentStatus::Ineligible,
        _ if keeping_out.is_some() => EnrollmentStatus::NotParticipating,
        other => other,
    };
    (period, status, keeping_out)
}

/// The abstention that keeps a meter out of a delivery period: the one in effect now,
/// during the period; else the first of those that together cover what remains of it.
fn keeping_out(
    period: &Period,
    abstentions: &[Abstention],
    now: OffsetDateTime,
) -> Option<Abstention> {
    let (start, end, now) = (
        to_millis(period.start),
        to_millis(period.end),
        to_millis(now),
    );
    let ends = |a: &Abstention| a.end.unwrap_or(i64::MAX);
    if (start..end).contains(&now)
        && let Some(a) = abstentions.iter().find(|a| a.start <= now && now < ends(a))
    {
        return Some(a.clone());
    }
    let mut cursor = start.max(now);
    let mut first = None;
    let mut overlapping: Vec<&Abstention> = abstentions
        .iter()
        .filter(|a| a.start < end && ends(a) > cursor)
        .collect();
    overlapping.sort_by_key(|a| a.start);
    for a in overlapping {
        if a.start > cursor {
            return None;
        }
        first.get_or_insert(a);
        cursor = cursor.max(ends(a));
        if cursor >= end {
            return first.cloned();
        }
    }
    None
}

/// The abstentions that fall in a delivery period, in order.
fn in_period(period: Option<&Period>, abstentions: &[Abstention]) -> Vec<Abstention> {
    period.map_or_else(Vec::new, |p| {
        abstentions
            .iter()
            .filter(|a| {
                p.overlaps(
                    crate::timestamp::from_millis(a.start),
                    a.end.map(crate::timestamp::from_millis),
                )
            })
            .cloned()
            .collect()
    })
}

/// Derives what a partner sees: each program's delivery period and deadlines, NOT_PARTICIPATING
/// where an abstention overlaps the period, and the required actions.
pub fn view(
    enrollments: &[Enrollment],
    catalog: &HashMap<String, Program>,
    abstentions: &[Abstention],
    schedule: &Schedule,
) -> MeterEnrollments {
    let now = schedule.now;
    let mut programs = Vec::new();
    let mut partner_actions = Vec::new();
    let mut operator_actions = Vec::new();
    for enrollment in enrollments {
        let Some(program) = catalog.get(&enrollment.program) else {
            continue;
        };
        let (period, status, not_participating) =
            standing(enrollment, program, abstentions, schedule);
        let in_period = in_period(period, abstentions);
        let period = period.cloned();
        let period_name = period.as_ref().map(|p| p.name.clone()).unwrap_or_default();
        let deadline = period
            .as_ref()
            .and_then(|p| p.next_deadline(now))
            .map(|d: Deadline| d.deadline);
        match status {
            EnrollmentStatus::Eligible => partner_actions.push(Action {
                program: program.identifier.clone(),
                delivery_period: period_name.clone(),
                deadline,
                action_type: ActionType::NoMissingFields,
                description: format!(
                    "There are missing fields: {}",
                    enrollment
                        .missing
                        .iter()
                        .map(|m| describe_missing(program, m))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                code: "FIELDS_0001",
            }),
            EnrollmentStatus::Pending => operator_actions.push(Action {
                program: program.identifier.clone(),
                delivery_period: period_name.clone(),
                deadline,
                action_type: ActionType::IsAssignedToAResource,
                description:
                    "The meter is complete and awaits the operator's confirmation of its enrollment"
                        .to_owned(),
                code: "LEAP_0001",
            }),
            _ => {}
        }
        programs.push(ProgramView {
            program: program.identifier.clone(),
            period,
            status,
            reasons: enrollment.reasons.clone(),
            missing: enrollment.missing.clone(),
            abstentions: in_period,
            not_participating,
        });
    }
    MeterEnrollments {
        global_status: global_status(programs.iter().map(|p| p.status)),
        programs,
        partner_actions,
        operator_actions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::{DEFAULT_CATALOG, parse_catalog};
    use crate::timestamp::to_millis;
    use serde_json::json;
    use time::macros::datetime;

    fn catalog() -> HashMap<String, Program> {
        parse_catalog(DEFAULT_CATALOG)
            .unwrap()
            .into_iter()
            .map(|p| (p.identifier.clone(), p))
            .collect()
    }

    fn programs() -> Vec<Program> {
        parse_catalog(DEFAULT_CATALOG).unwrap()
    }

    fn meter(region: &str, utility: Option<(&str, &str)>) -> MeterData {
        let mut value = json!({
            "partner_reference": "ref-1",
            "transmission_region": region,
            "customer_classification": "RESIDENTIAL",
            "load_types": ["HVAC"],
            "meter_type": "DEVICE",
            "customer": {"street_1": "1 Main St", "postal_code": "94105", "city": "Springfield",
                         "state_or_province_code": "CA", "country_code": "US"}
        });
        if let Some((name, account)) = utility {
            value["utility"] =
                json!({"utility_name": name, "electric_service_account_number": account});
        }
        MeterData::parse(value).unwrap()
    }

    const NOW: OffsetDateTime = datetime!(2027-03-01 00:00 UTC);

    fn schedule() -> Schedule {
        Schedule::new(&programs(), NOW)
    }

    #[test]
    fn a_meter_is_evaluated_against_the_programs_of_its_region() {
        let enrollments = reevaluate(&programs(), &meter("SERC", None), &[]);
        assert_eq!(enrollments.len(), 1);
        assert_eq!(enrollments[0].program, "TVA-RPO");
        assert_eq!(enrollments[0].status, EnrollmentStatus::Eligible);
        assert_eq!(enrollments[0].missing, ["utility.utility_name"]);

        let complete = reevaluate(
            &programs(),
            &meter("SERC", Some(("TVA", "A-1"))),
            &enrollments,
        );
        assert_eq!(complete[0].status, EnrollmentStatus::Pending);
    }

    #[test]
    fn active_survives_an_update_that_keeps_the_meter_complete_and_a_region_change_leaves_ineligible()
     {
        let mut enrollments = reevaluate(&programs(), &meter("SERC", Some(("TVA", "A-1"))), &[]);
        assert!(activate(&mut enrollments, "TVA-RPO", NOW));
        assert!(
            !activate(&mut enrollments, "TVA-RPO", NOW),
            "only PENDING becomes ACTIVE"
        );
        let again = reevaluate(
            &programs(),
            &meter("SERC", Some(("TVA", "A-2"))),
            &enrollments,
        );
        assert_eq!(again[0].status, EnrollmentStatus::Active);
        assert_eq!(again[0].activated_at, Some(to_millis(NOW)));

        let moved = reevaluate(&programs(), &meter("WECC_SW", Some(("SRP", "A-3"))), &again);
        let tva = moved.iter().find(|e| e.program == "TVA-RPO").unwrap();
        assert_eq!(tva.status, EnrollmentStatus::Ineligible);
        assert_eq!(tva.reasons, [Reason::Region, Reason::Utility]);
        let srp = moved.iter().find(|e| e.program == "SRP-RPO").unwrap();
        assert_eq!(srp.status, EnrollmentStatus::Pending);
    }

    #[test]
    fn the_view_derives_periods_actions_and_the_global_status() {
        let enrollments = reevaluate(&programs(), &meter("CAISO", Some(("PGE", "A-1"))), &[]);
        let shown = view(&enrollments, &catalog(), &[], &schedule());
        let by_program: HashMap<&str, &ProgramView> = shown
            .programs
            .iter()
            .map(|p| (p.program.as_str(), p))
            .collect();
        assert_eq!(by_program["CEC-DSGS"].status, EnrollmentStatus::Ineligible);
        assert_eq!(
            by_program["CEC-DSGS-OPTION2"].status,
            EnrollmentStatus::Pending
        );
        assert_eq!(by_program["ELRP"].status, EnrollmentStatus::Eligible);
        assert_eq!(
            by_program["ELRP"].period.as_ref().unwrap().name,
            "ELRP_2027_MAY_OCT"
        );
        assert_eq!(shown.global_status, EnrollmentStatus::Pending);
        let missing: Vec<&str> = shown
            .partner_actions
            .iter()
            .map(|a| a.description.as_str())
            .collect();
        assert!(
            missing.contains(&"There are missing fields: utility.utility_meter_serial_number"),
            "{missing:?}"
        );
        assert!(
            shown
                .operator_actions
                .iter()
                .any(|a| a.program == "CEC-DSGS-OPTION2")
        );
        assert_eq!(shown.partner_action_types(), [ActionType::NoMissingFields]);
    }

    fn idle(start: OffsetDateTime, end: Option<OffsetDateTime>) -> Abstention {
        Abstention {
            preference: ParticipationPreference::Idle,
            start: to_millis(start),
            end: end.map(to_millis),
            reason: Some("renovation".into()),
        }
    }

    #[test]
    fn one_idle_day_does_not_cost_a_season_but_idling_all_of_it_does() {
        let enrollments = reevaluate(&programs(), &meter("SERC", Some(("TVA", "A-1"))), &[]);
        let schedule = schedule();
        let period = schedule.target("TVA-RPO").unwrap().clone();
        let one_day = idle(
            period.start + time::Duration::days(10),
            Some(period.start + time::Duration::days(11)),
        );
        let shown = view(
            &enrollments,
            &catalog(),
            std::slice::from_ref(&one_day),
            &schedule,
        );
        assert_eq!(shown.programs[0].status, EnrollmentStatus::Pending);
        assert_eq!(
            shown.programs[0].abstentions,
            std::slice::from_ref(&one_day)
        );
        assert_eq!(shown.programs[0].not_participating_reason(), None);

        // Idle over the whole period, in two pieces: nothing is left to deliver in.
        let all = [
            idle(
                period.start - time::Duration::days(3),
                Some(period.start + time::Duration::days(30)),
            ),
            idle(period.start + time::Duration::days(30), Some(period.end)),
        ];
        let shown = view(&enrollments, &catalog(), &all, &schedule);
        assert_eq!(shown.programs[0].status, EnrollmentStatus::NotParticipating);
        assert_eq!(shown.global_status, EnrollmentStatus::NotParticipating);
        let reason = shown.programs[0].not_participating_reason().unwrap();
        assert!(reason.starts_with("The meter is idle from "), "{reason}");
        assert!(
            reason.contains("(renovation)") && reason.contains(&period.name),
            "{reason}"
        );
    }

    #[test]
    fn an_idle_period_in_effect_during_the_delivery_period_keeps_the_meter_out_meanwhile() {
        let enrollments = reevaluate(&programs(), &meter("SERC", Some(("TVA", "A-1"))), &[]);
        let period = schedule().target("TVA-RPO").unwrap().clone();
        let june = idle(
            period.start + time::Duration::days(30),
            Some(period.start + time::Duration::days(60)),
        );
        let during = Schedule::new(&programs(), period.start + time::Duration::days(40));
        let after = Schedule::new(&programs(), period.start + time::Duration::days(61));
        let status = |s: &Schedule| {
            view(&enrollments, &catalog(), std::slice::from_ref(&june), s).programs[0].status
        };
        assert_eq!(status(&during), EnrollmentStatus::NotParticipating);
        assert_eq!(status(&after), EnrollmentStatus::Pending);
        // A disenrollment from a date in the period keeps the meter out from then on.
        let gone = Abstention {
            preference: ParticipationPreference::Disenroll,
            start: to_millis(period.start + time::Duration::days(100)),
            end: None,
            reason: None,
        };
        let before = view(
            &enrollments,
            &catalog(),
            std::slice::from_ref(&gone),
            &schedule(),
        );
        assert_eq!(before.programs[0].status, EnrollmentStatus::Pending);
        let since = Schedule::new(&programs(), period.start + time::Duration::days(110));
        let later = view(
            &enrollments,
            &catalog(),
            std::slice::from_ref(&gone),
            &since,
        );
        assert_eq!(later.programs[0].status, EnrollmentStatus::NotParticipating);
        let reason = later.programs[0].not_participating_reason().unwrap();
        assert!(
            reason.contains("disenrolled")
                && reason.ends_with(" on, which keeps it out of TVA-RPO_2027_JAN_DEC"),
            "{reason}"
        );
    }

    #[test]
    fn an_archived_meter_is_ineligible_everywhere_it_was_evaluated() {
        let data = meter("SERC", Some(("TVA", "A-1")));
        let mut enrollments = reevaluate(&programs(), &data, &[]);
        activate(&mut enrollments, "TVA-RPO", NOW);
        let archived = withdrawn(&programs(), &data, &enrollments);
        assert_eq!(archived.len(), enrollments.len());
        assert!(
            archived.iter().all(
                |e| e.status == EnrollmentStatus::Ineligible && e.reasons == [Reason::Archived]
            )
        );
        let shown = view(&archived, &catalog(), &[], &schedule());
        assert!(shown.partner_actions.is_empty() && shown.operator_actions.is_empty());
        assert_eq!(
            shown.programs[0].described_reasons(&catalog(), &data),
            ["takes no archived meter; unarchive the meter to have it evaluated again"]
        );
    }

    #[test]
    fn preferences_replace_what_held_before_in_their_period() {
        let mut a = Vec::new();
        let change = |preference, start, end: Option<i64>| PreferenceChange {
            preference,
            start,
            end,
            reason: None,
        };
        apply_preference(&mut a, change(ParticipationPreference::Idle, 10, Some(20))).unwrap();
        apply_preference(&mut a, change(ParticipationPreference::Disenroll, 15, None)).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].start, a[0].end), (10, Some(15)));
        assert_eq!(
            (a[1].preference, a[1].start, a[1].end),
            (ParticipationPreference::Disenroll, 15, None)
        );
        apply_preference(
            &mut a,
            change(ParticipationPreference::Participate, 12, Some(30)),
        )
        .unwrap();
        assert_eq!(
            a.iter().map(|x| (x.start, x.end)).collect::<Vec<_>>(),
            [(10, Some(12)), (30, None)]
        );

        let shown = timeline(&a, 0);
        let kinds: Vec<_> = shown
            .iter()
            .map(|e| (e.preference, e.start, e.end))
            .collect();
        assert_eq!(
            kinds,
            [
                (ParticipationPreference::Participate, 0, Some(10)),
                (ParticipationPreference::Idle, 10, Some(12)),
                (ParticipationPreference::Participate, 12, Some(30)),
                (ParticipationPreference::Disenroll, 30, None),
            ]
        );

        assert_eq!(
            apply_preference(&mut a, change(ParticipationPreference::Idle, 5, None)),
            Err(PreferenceError::IdleWithoutEnd)
        );
        assert_eq!(
            apply_preference(&mut a, change(ParticipationPreference::Idle, 5, Some(5))),
            Err(PreferenceError::EndBeforeStart)
        );
    }

    #[test]
    fn the_summary_agrees_with_the_view_whatever_the_enrollments_and_abstentions() {
        let catalog = catalog();
        let meters = [
            meter("CAISO", Some(("PGE", "A-1"))),
            meter("CAISO", None),
            meter("SERC", Some(("TVA", "A-2"))),
            meter("WECC_SW", Some(("SRP", "A-3"))),
            meter("PJM", None),
        ];
        let abstentions = [
            vec![],
            vec![Abstention {
                preference: ParticipationPreference::Idle,
                start: to_millis(NOW),
                end: None,
                reason: None,
            }],
        ];
        let mut checked = 0;
        for data in &meters {
            let mut enrollments = reevaluate(&programs(), data, &[]);
            for activated in [false, true] {
                if activated {
                    for e in enrollments.clone() {
                        activate(&mut enrollments, &e.program, NOW);
                    }
                }
                for abstaining in &abstentions {
                    let shown = view(&enrollments, &catalog, abstaining, &schedule());
                    let summary = summarize(&enrollments, &catalog, abstaining, &schedule());
                    assert_eq!(summary.global_status, shown.global_status);
                    assert_eq!(
                        summary.partner_action_required,
                        !shown.partner_actions.is_empty()
                    );
                    assert_eq!(summary.action_types, shown.partner_action_types());
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 20);
    }

    #[test]
    fn the_global_status_ranks_active_over_pending_over_eligible() {
        use EnrollmentStatus::*;
        assert_eq!(
            global_status([Ineligible, Eligible, NotParticipating]),
            Eligible
        );
        assert_eq!(global_status([Pending, Active]), Active);
        assert_eq!(
            global_status([Ineligible, NotParticipating]),
            NotParticipating
        );
        assert_eq!(global_status([]), Ineligible);
    }
}
