//! Running the enrollment rules inside a store transaction, so a meter's enrollments are
//! always written together with the meter: the same code for both backends.

use std::collections::HashMap;

use gridroll_domain::enrollment::{self, Abstention, Enrollment, Schedule, Summary};
use gridroll_domain::program::Program;
use gridroll_domain::{MeterData, compact};
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
            enrollments: serde_json::to_string(&list).expect("enrollments serialize"),
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

pub fn parse_enrollments(text: &str) -> Result<Vec<Enrollment>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("enrollments: {e}")))
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

/// The SQL that selects the programs a partner may use (`?1`/`$1` is the partner).
pub const PARTNER_PROGRAMS_SQL: &str = "SELECT definition FROM programs p
     WHERE NOT p.retired
       AND (NOT EXISTS (SELECT 1 FROM partner_programs pp WHERE pp.partner_id = {partner})
            OR EXISTS (SELECT 1 FROM partner_programs pp
                       WHERE pp.partner_id = {partner} AND pp.identifier = p.identifier))
     ORDER BY p.identifier";
