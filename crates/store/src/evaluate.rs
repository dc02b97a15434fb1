//! Running the enrollment rules inside a store transaction, so a meter's enrollments are
//! always written together with the meter: the same code for both backends.

use std::collections::HashMap;

use gridroll_domain::enrollment::{self, Abstention, Enrollment, Schedule, Summary};
use gridroll_domain::program::Program;
use gridroll_domain::{MeterData, compact};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Result, StoreError};

/// The programs one partner may use, and their delivery periods at one instant.
pub struct Catalog {
    pub programs: Vec<Program>,
    pub by_id: HashMap<String, Program>,
    pub schedule: Schedule,
}

impl Catalog {
    pub fn new(programs: Vec<Program>, now: OffsetDateTime) -> Self {
        let by_id = programs
            .iter()
            .map(|p| (p.identifier.clone(), p.clone()))
            .collect();
        let schedule = Schedule::new(&programs, now);
        Self {
            programs,
            by_id,
            schedule,
        }
    }

    /// Parses the stored definitions.
    pub fn from_definitions(
        definitions: impl IntoIterator<Item = String>,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let programs = definitions
            .into_iter()
            .map(|d| serde_json::from_str(&d).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<Vec<Program>>>()?;
        Ok(Self::new(programs, now))
    }
}

/// The enrollment columns of a meter, ready to write.
#[derive(Clone)]
pub struct Columns {
    /// The enrollments, as evaluated.
    pub list: Vec<Enrollment>,
    /// The same, as stored.
    pub enrollments: String,
    pub global_status: String,
    pub action_required: bool,
    pub action_types: String,
    pub pending_programs: String,
}

impl Columns {
    fn new(list: Vec<Enrollment>, summary: Summary) -> Self {
        Self {
            enrollments: stored_enrollments(&list),
            list,
            global_status: summary.global_status.to_string(),
            action_required: summary.partner_action_required,
            action_types: summary
                .action_types
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            pending_programs: summary.pending_programs.join(","),
        }
    }
}

/// Evaluates a meter's data against the catalog, keeping what holds of `previous`.
pub fn evaluate(
    catalog: &Catalog,
    data: &MeterData,
    previous: &[Enrollment],
    abstentions: &[Abstention],
) -> Columns {
    let enrollments = enrollment::reevaluate(&catalog.programs, data, previous);
    let summary =
        enrollment::summarize(&enrollments, &catalog.by_id, abstentions, &catalog.schedule);
    Columns::new(enrollments, summary)
}

/// The columns of enrollments that changed without the meter's data changing.
pub fn summarize(
    catalog: &Catalog,
    enrollments: &[Enrollment],
    abstentions: &[Abstention],
) -> Columns {
    let summary =
        enrollment::summarize(enrollments, &catalog.by_id, abstentions, &catalog.schedule);
    Columns::new(enrollments.to_vec(), summary)
}

/// A meter's enrollments as stored: one array per program, `[program, status, missing,
/// reasons, activated_at]`, each cut after its last element that is not empty. Named
/// fields would repeat in every entry of every meter; without them the column is about
/// half the size, and every byte of it is logged and copied back on each write.
pub fn stored_enrollments(list: &[Enrollment]) -> String {
    let rows: Vec<StoredEnrollment<'_>> = list.iter().map(StoredEnrollment).collect();
    serde_json::to_string(&rows).expect("enrollments serialize")
}

/// Reads a meter's stored enrollments: their stored form, or the objects with named fields
/// that earlier releases wrote (a meter keeps them until it is next
/// written).
pub fn parse_enrollments(text: &str) -> Result<Vec<Enrollment>> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("enrollments: {e}"));
    let objects = text
        .trim_start()
        .strip_prefix('[')
        .is_some_and(|rest| rest.trim_start().starts_with('{'));
    if objects {
        return serde_json::from_str(text).map_err(corrupt);
    }
    let rows: Vec<EnrollmentRow> = serde_json::from_str(text).map_err(corrupt)?;
    Ok(rows.into_iter().map(|row| row.0).collect())
}

struct StoredEnrollment<'a>(&'a Enrollment);

impl Serialize for StoredEnrollment<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let e = self.0;
        let len = if e.activated_at.is_some() {
            5
        } else if !e.reasons.is_empty() {
            4
        } else if !e.missing.is_empty() {
            3
        } else {
            2
        };
        let mut row = serializer.serialize_seq(Some(len))?;
        row.serialize_element(&e.program)?;
        row.serialize_element(&e.status)?;
        if len > 2 {
            row.serialize_element(&e.missing)?;
        }
        if len > 3 {
            row.serialize_element(&e.reasons)?;
        }
        if len > 4 {
            row.serialize_element(&e.activated_at)?;
        }
        row.end()
    }
}

struct EnrollmentRow(Enrollment);

impl<'de> Deserialize<'de> for EnrollmentRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Row;
        impl<'de> Visitor<'de> for Row {
            type Value = EnrollmentRow;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an enrollment: [program, status, missing, reasons, activated_at]")
            }

            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<EnrollmentRow, A::Error> {
                let program = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let status = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                Ok(EnrollmentRow(Enrollment {
                    program,
                    status,
                    missing: seq.next_element()?.unwrap_or_default(),
                    reasons: seq.next_element()?.unwrap_or_default(),
                    activated_at: seq.next_element()?.flatten(),
                }))
            }
        }
        deserializer.deserialize_seq(Row)
    }
}

pub fn parse_abstentions(text: &str) -> Result<Vec<Abstention>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("participation: {e}")))
}

/// Reads a job input (an asset in its compact form).
pub fn parse_input(text: &str) -> Result<MeterData> {
    compact::decode(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Reads a meter's stored data: its compact form, or the JSON object that releases before
/// schema version 9 wrote (a meter keeps it until it is next written).
pub fn parse_data(text: &str) -> Result<MeterData> {
    if is_compact(text) {
        return parse_input(text);
    }
    serde_json::from_str(text)
        .map(MeterData::from_stored)
        .map_err(|e| StoreError::Corrupt(format!("meter data: {e}")))
}

/// A meter's stored data as the JSON object it stands for, for answering it as it is.
pub fn object_json(stored: String) -> Result<String> {
    if !is_compact(&stored) {
        // The object form of an earlier release, answered as it is once known to be one.
        let object = stored.trim_start().starts_with('{')
            && serde_json::from_str::<serde::de::IgnoredAny>(&stored).is_ok();
        if !object {
            return Err(StoreError::Corrupt(
                "meter data is neither compact nor a JSON object".to_owned(),
            ));
        }
        return Ok(stored);
    }
    let mut out = String::with_capacity(stored.len() * 2);
    compact::write_object_json(&stored, &mut out)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(out)
}

fn is_compact(stored: &str) -> bool {
    stored.trim_start().starts_with('[')
}

#[cfg(test)]
mod tests {
    use gridroll_domain::eligibility::Reason;
    use gridroll_domain::enums::EnrollmentStatus;
    use proptest::prelude::*;

    use super::*;

    fn enrollment(program: &str, status: EnrollmentStatus) -> Enrollment {
        Enrollment {
            program: program.to_owned(),
            status,
            missing: vec![],
            reasons: vec![],
            activated_at: None,
        }
    }

    #[test]
    fn enrollments_are_stored_as_arrays_cut_after_their_last_filled_element() {
        let ineligible = Enrollment {
            reasons: vec![Reason::Class],
            ..enrollment("ERCOT-ERS", EnrollmentStatus::Ineligible)
        };
        let eligible = Enrollment {
            missing: vec!["utility.utility_name".to_owned()],
            ..enrollment("PJM-ELRP", EnrollmentStatus::Eligible)
        };
        let active = Enrollment {
            activated_at: Some(1_700_000_000_000),
            ..enrollment("CAISO-DSGS", EnrollmentStatus::Active)
        };
        let pending = enrollment("TVA-RPO", EnrollmentStatus::Pending);
        assert_eq!(
            stored_enrollments(&[ineligible, eligible, active, pending]),
            r#"[["ERCOT-ERS","INELIGIBLE",[],["class"]],["PJM-ELRP","ELIGIBLE",["utility.utility_name"]],["CAISO-DSGS","ACTIVE",[],[],1700000000000],["TVA-RPO","PENDING"]]"#
        );
        assert_eq!(stored_enrollments(&[]), "[]");
    }

    #[test]
    fn enrollments_stored_as_objects_by_earlier_releases_are_still_read() {
        let stored = r#"[{"program":"ERCOT-ERS","status":"INELIGIBLE","reasons":["class"]},
            {"program":"CAISO-DSGS","status":"ACTIVE","activated_at":1700000000000},
            {"program":"PJM-ELRP","status":"ELIGIBLE","missing":["utility.utility_name"]}]"#;
        let read = parse_enrollments(stored).unwrap();
        assert_eq!(read[0].reasons, vec![Reason::Class]);
        assert_eq!(read[1].status, EnrollmentStatus::Active);
        assert_eq!(read[1].activated_at, Some(1_700_000_000_000));
        assert_eq!(read[2].missing, vec!["utility.utility_name".to_owned()]);
        // Written again, they take the stored form and read back the same.
        assert_eq!(parse_enrollments(&stored_enrollments(&read)).unwrap(), read);
        assert!(parse_enrollments(" [ ] ").unwrap().is_empty());
    }

    #[test]
    fn damaged_enrollments_are_reported_rather_than_guessed() {
        for damaged in [
            "",
            "{}",
            r#"[["TVA-RPO"]]"#,
            r#"[["TVA-RPO","SOMETIMES"]]"#,
            r#"[["TVA-RPO","ACTIVE",[],[],1,"more"]]"#,
            r#"[{"program":"TVA-RPO"}]"#,
            r#"[["TVA-RPO","PENDING"]"#,
        ] {
            let error = parse_enrollments(damaged).unwrap_err();
            assert!(
                matches!(error, StoreError::Corrupt(_)),
                "{damaged:?}: {error}"
            );
        }
    }

    fn any_enrollment() -> impl Strategy<Value = Enrollment> {
        let statuses = prop::sample::select(vec![
            EnrollmentStatus::Active,
            EnrollmentStatus::Eligible,
            EnrollmentStatus::Ineligible,
            EnrollmentStatus::NotParticipating,
            EnrollmentStatus::Pending,
        ]);
        let reasons = prop::sample::subsequence(
            vec![
                Reason::Region,
                Reason::Class,
                Reason::MeterType,
                Reason::LoadTypes,
                Reason::Utility,
            ],
            0..=5,
        );
        (
            "[A-Z][A-Z0-9-]{0,12}|\\PC{0,8}",
            statuses,
            prop::collection::vec("[a-z_.]{1,30}|\\PC{0,6}", 0..3),
            reasons,
            prop::option::of(any::<i64>()),
        )
            .prop_map(
                |(program, status, missing, reasons, activated_at)| Enrollment {
                    program,
                    status,
                    missing,
                    reasons,
                    activated_at,
                },
            )
    }

    proptest! {
        #[test]
        fn every_list_of_enrollments_reads_back_as_it_was_stored(
            list in prop::collection::vec(any_enrollment(), 0..6)
        ) {
            prop_assert_eq!(parse_enrollments(&stored_enrollments(&list)).unwrap(), list);
        }
    }
}
