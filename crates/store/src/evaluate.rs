//! Running the enrollment rules inside a store transaction, so a meter's enrollments are
//! always written together with the meter: the same code for both backends.

use std::collections::HashMap;
use std::sync::OnceLock;

use gridroll_domain::compiled::{CompiledCatalog, EnrollmentRef, Evaluation};
use gridroll_domain::eligibility::Reason;
use gridroll_domain::enrollment::{self, Abstention, Enrollment, Schedule, Summary};
use gridroll_domain::enums::EnrollmentStatus;
use gridroll_domain::program::Program;
use gridroll_domain::{MeterData, compact};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use time::OffsetDateTime;

use crate::{Result, StoreError};

/// The programs one partner may use, and their delivery periods at one instant.
pub struct Catalog {
    pub programs: Vec<Program>,
    pub by_id: HashMap<String, Program>,
    pub schedule: Schedule,
    /// The programs compiled for a job's assets, the first time one is evaluated.
    compiled: OnceLock<Option<CompiledCatalog>>,
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
            compiled: OnceLock::new(),
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
#[derive(Debug, Clone, PartialEq)]
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
        Self::summarized(stored_enrollments(&list), list, summary)
    }

    fn summarized(enrollments: String, list: Vec<Enrollment>, summary: Summary) -> Self {
        Self {
            enrollments,
            list,
            global_status: summary.global_status.as_ref().to_owned(),
            action_required: summary.partner_action_required,
            action_types: joined(&summary.action_types),
            pending_programs: joined(&summary.pending_programs),
        }
    }

    /// The columns of a compiled evaluation, with the list of enrollments when `list`.
    fn compiled(
        evaluation: &Evaluation,
        catalog: &Catalog,
        abstentions: &[Abstention],
        list: bool,
    ) -> Self {
        let enrollments = stored(evaluation.enrollments());
        if !abstentions.is_empty() {
            // Idle and disenrolled periods may keep the meter out of delivery periods:
            // the summary's own rules decide.
            let all = evaluation.to_enrollments();
            let summary =
                enrollment::summarize(&all, &catalog.by_id, abstentions, &catalog.schedule);
            let list = if list { all } else { Vec::new() };
            return Self::summarized(enrollments, list, summary);
        }
        Self {
            enrollments,
            list: if list {
                evaluation.to_enrollments()
            } else {
                Vec::new()
            },
            global_status: evaluation.global_status().as_ref().to_owned(),
            action_required: evaluation.partner_action_required(),
            action_types: joined(evaluation.action_types()),
            pending_programs: joined(evaluation.pending_programs()),
        }
    }
}

/// Values separated by commas, as the summary's columns hold them.
fn joined<T: AsRef<str>>(values: impl IntoIterator<Item = T>) -> String {
    let mut out = String::new();
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(value.as_ref());
    }
    out
}

impl Catalog {
    /// The programs compiled for evaluating a job's assets, once per catalog; `None` when
    /// a program's definition is one its checks refuse (stored around the API and the
    /// command), which the interpreted rules then evaluate.
    fn compiled(&self) -> Option<&CompiledCatalog> {
        self.compiled
            .get_or_init(|| {
                let compiled = CompiledCatalog::compile(&self.programs);
                if compiled.is_none() {
                    tracing::warn!(
                        "a program's stored definition does not pass its checks: assets are evaluated by the interpreted rules"
                    );
                }
                compiled
            })
            .as_ref()
    }

    /// Evaluates an asset of a job (its data in the compact form) as a new meter. Only
    /// the stored form of its enrollments is kept, not their list: that is all a created
    /// meter writes, and a chunk prepared ahead stays small while it waits.
    pub fn evaluate_new(&self, input: &str) -> Result<Columns> {
        let Some(compiled) = self.compiled() else {
            let mut columns = evaluate(self, &parse_input(input)?, &[], &[]);
            columns.list = Vec::new();
            return Ok(columns);
        };
        let evaluation = compiled.evaluate(input, &[]).map_err(corrupt)?;
        Ok(Columns::compiled(&evaluation, self, &[], false))
    }

    /// Evaluates an asset of a job as the new data of a meter that had the `previous`
    /// enrollments and these idle and disenrolled periods, as [`evaluate`] does.
    pub fn evaluate_input(
        &self,
        input: &str,
        previous: &[Enrollment],
        abstentions: &[Abstention],
    ) -> Result<Columns> {
        match self.compiled() {
            Some(compiled) if is_compact(input) => {
                let evaluation = compiled.evaluate(input, previous).map_err(corrupt)?;
                Ok(Columns::compiled(&evaluation, self, abstentions, true))
            }
            _ => Ok(evaluate(self, &parse_data(input)?, previous, abstentions)),
        }
    }
}

fn corrupt(e: compact::DecodeError) -> StoreError {
    StoreError::Corrupt(e.to_string())
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

/// A meter's enrollments as stored: one entry per program, separated by `;`, each
/// `PROGRAM STATUS[ mMISSING][ rREASONS][ @ACTIVATED_AT]` — the status one letter
/// (`A`ctive, `E`ligible, `I`neligible, `N`ot participating, `P`ending), the missing
/// fields by their positions in the compact form (`utility.electric_service_account_number`
/// is `11.2`), the reasons a letter each (see [`reason_letter`]). A meter with no
/// enrollment stores nothing. The column is written for every meter a job writes and
/// read back with every meter shown: this is a third of the bytes of the arrays of values
/// that releases before schema version 21 wrote (and a sixth of the objects before 12),
/// both still read. Names that this form cannot hold as they are (none the catalog's
/// checks let through) are stored as those arrays.
pub fn stored_enrollments(list: &[Enrollment]) -> String {
    stored(list.iter().map(EnrollmentRef::from))
}

fn stored<'e>(enrollments: impl ExactSizeIterator<Item = EnrollmentRef<'e>>) -> String {
    let enrollments: Vec<EnrollmentRef> = enrollments.collect();
    if !enrollments.iter().all(is_plain) {
        return stored_as_arrays(&enrollments);
    }
    // About what a program's entry takes, so that the text is seldom copied as it grows.
    let mut out = String::with_capacity(24 * enrollments.len());
    for (i, e) in enrollments.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(e.program);
        out.push(' ');
        out.push(status_letter(e.status));
        if !e.missing.is_empty() {
            out.push_str(" m");
            for (i, path) in e.missing.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_position(&mut out, path);
            }
        }
        if !e.reasons.is_empty() {
            out.push_str(" r");
            out.extend(e.reasons.iter().map(reason_letter));
        }
        if let Some(at) = e.activated_at {
            out.push_str(" @");
            out.push_str(&at.to_string());
        }
    }
    out
}

/// Whether an enrollment's names fit the stored form as they are: a program identifier
/// and field paths of letters, digits, `-`, `_` and `.`, a path starting with a letter
/// (one starting with a digit is a position).
fn is_plain(e: &EnrollmentRef) -> bool {
    fn plain(s: &str) -> bool {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }
    plain(e.program)
        && e.missing
            .iter()
            .all(|path| plain(path) && path.as_bytes()[0].is_ascii_alphabetic())
}

fn status_letter(status: EnrollmentStatus) -> char {
    match status {
        EnrollmentStatus::Active => 'A',
        EnrollmentStatus::Eligible => 'E',
        EnrollmentStatus::Ineligible => 'I',
        EnrollmentStatus::NotParticipating => 'N',
        EnrollmentStatus::Pending => 'P',
    }
}

/// The letter a reason is stored as.
fn reason_letter(reason: Reason) -> char {
    match reason {
        Reason::Region => 'g',
        Reason::Class => 'c',
        Reason::MeterType => 't',
        Reason::LoadTypes => 'l',
        Reason::Utility => 'u',
        Reason::Archived => 'a',
    }
}

thread_local! {
    /// The positions of the paths met so far: a catalog names a few dozen.
    static POSITIONS: std::cell::RefCell<HashMap<String, String>> =
        std::cell::RefCell::new(HashMap::new());
}

/// A missing field as stored: its position in the compact form, or the path itself where
/// the model has none.
fn push_position(out: &mut String, path: &str) {
    POSITIONS.with_borrow_mut(|known| {
        if let Some(at) = known.get(path) {
            out.push_str(at);
            return;
        }
        let at = compact::position(path).map_or_else(
            || path.to_owned(),
            |at| {
                at.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(".")
            },
        );
        out.push_str(&at);
        if known.len() < 4096 {
            known.insert(path.to_owned(), at);
        }
    });
}

/// Reads one stored enrollment (see [`stored_enrollments`]).
fn parse_entry(entry: &str) -> Option<Enrollment> {
    let mut tokens = entry.split(' ');
    let program = tokens.next().filter(|p| !p.is_empty())?.to_owned();
    let status = match tokens.next()? {
        "A" => EnrollmentStatus::Active,
        "E" => EnrollmentStatus::Eligible,
        "I" => EnrollmentStatus::Ineligible,
        "N" => EnrollmentStatus::NotParticipating,
        "P" => EnrollmentStatus::Pending,
        _ => return None,
    };
    let mut e = Enrollment {
        program,
        status,
        missing: Vec::new(),
        reasons: Vec::new(),
        activated_at: None,
    };
    for token in tokens {
        if let Some(missing) = token.strip_prefix('m') {
            for item in missing.split(',') {
                e.missing.push(path_of(item)?);
            }
        } else if let Some(reasons) = token.strip_prefix('r') {
            for letter in reasons.chars() {
                e.reasons.push(match letter {
                    'g' => Reason::Region,
                    'c' => Reason::Class,
                    't' => Reason::MeterType,
                    'l' => Reason::LoadTypes,
                    'u' => Reason::Utility,
                    'a' => Reason::Archived,
                    _ => return None,
                });
            }
        } else if let Some(at) = token.strip_prefix('@') {
            e.activated_at = Some(at.parse().ok()?);
        } else {
            return None;
        }
    }
    Some(e)
}

/// A stored missing field: a position of the compact form, or a path.
fn path_of(item: &str) -> Option<String> {
    match item.as_bytes().first()? {
        b'0'..=b'9' => {
            let at: Vec<usize> = item
                .split('.')
                .map(str::parse)
                .collect::<std::result::Result<_, _>>()
                .ok()?;
            compact::path_at(&at)
        }
        _ => Some(item.to_owned()),
    }
}

/// The arrays of values that releases before schema version 21 stored, `[program,
/// status, missing, reasons, activated_at]` each cut after its last element that is not
/// empty: still written for names the compact form cannot hold.
fn stored_as_arrays(enrollments: &[EnrollmentRef]) -> String {
    let mut out = Vec::with_capacity(2 + 64 * enrollments.len());
    out.push(b'[');
    for (i, e) in enrollments.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_stored(&mut out, e);
    }
    out.push(b']');
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// Writes one enrollment as an array of its values.
fn write_stored(out: &mut Vec<u8>, e: &EnrollmentRef) {
    out.push(b'[');
    write_string(out, e.program);
    out.extend_from_slice(b",\"");
    // Status names are identifiers: nothing in them needs escaping.
    out.extend_from_slice(e.status.as_ref().as_bytes());
    out.push(b'"');
    let reasons = !e.reasons.is_empty() || e.activated_at.is_some();
    if !e.missing.is_empty() || reasons {
        out.push(b',');
        out.push(b'[');
        for (i, path) in e.missing.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(out, path);
        }
        out.push(b']');
    }
    if reasons {
        out.push(b',');
        serde_json::to_writer(&mut *out, &e.reasons).expect("reasons serialize");
    }
    if let Some(at) = e.activated_at {
        out.push(b',');
        serde_json::to_writer(&mut *out, &at).expect("a number serializes");
    }
    out.push(b']');
}

/// Writes a JSON string: as it is when nothing in it needs escaping, as program
/// identifiers and field paths never do.
fn write_string(out: &mut Vec<u8>, s: &str) {
    // Every byte looked at, without stopping at the first to escape: a loop the
    // compiler turns into a few vector instructions.
    let plain = !s.bytes().fold(false, |escape, b| {
        escape | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("a string serializes");
    }
}

/// Reads a meter's stored enrollments: their stored form, or the arrays or objects
/// with named fields that earlier releases wrote (a meter keeps them until it is next
/// written).
pub fn parse_enrollments(text: &str) -> Result<Vec<Enrollment>> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('[') {
        if trimmed.is_empty() {
            return Ok(Vec::new());
        }
        return text
            .split(';')
            .map(|entry| {
                parse_entry(entry)
                    .ok_or_else(|| StoreError::Corrupt(format!("enrollments: {entry:?}")))
            })
            .collect();
    }
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("enrollments: {e}"));
    let objects = trimmed[1..].trim_start().starts_with('{');
    if objects {
        return serde_json::from_str(text).map_err(corrupt);
    }
    let rows: Vec<EnrollmentRow> = serde_json::from_str(text).map_err(corrupt)?;
    Ok(rows.into_iter().map(|row| row.0).collect())
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
    use gridroll_domain::program::{DEFAULT_CATALOG, parse_catalog};
    use gridroll_domain::testing;
    use gridroll_domain::timestamp::to_millis;
    use proptest::prelude::*;
    use serde_json::json;

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

    fn four() -> [Enrollment; 4] {
        let ineligible = Enrollment {
            reasons: vec![Reason::Class, Reason::Utility],
            ..enrollment("ERCOT-ERS", EnrollmentStatus::Ineligible)
        };
        let eligible = Enrollment {
            missing: vec![
                "utility.utility_name".to_owned(),
                "site.site_devices.0.model".to_owned(),
            ],
            ..enrollment("PJM-ELRP", EnrollmentStatus::Eligible)
        };
        let active = Enrollment {
            activated_at: Some(1_700_000_000_000),
            ..enrollment("CAISO-DSGS", EnrollmentStatus::Active)
        };
        let pending = enrollment("TVA-RPO", EnrollmentStatus::Pending);
        [ineligible, eligible, active, pending]
    }

    #[test]
    fn enrollments_are_stored_an_entry_each_with_letters_and_positions() {
        let utility_name = compact::position("utility.utility_name").unwrap();
        let model = compact::position("site.site_devices.0.model").unwrap();
        let join = |at: Vec<usize>| {
            at.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(".")
        };
        assert_eq!(
            stored_enrollments(&four()),
            format!(
                "ERCOT-ERS I rcu;PJM-ELRP E m{},{};CAISO-DSGS A @1700000000000;TVA-RPO P",
                join(utility_name),
                join(model)
            )
        );
        assert_eq!(stored_enrollments(&[]), "");
        assert_eq!(parse_enrollments("").unwrap(), []);
    }

    #[test]
    fn enrollments_stored_as_arrays_by_earlier_releases_are_still_read() {
        let arrays = r#"[["ERCOT-ERS","INELIGIBLE",[],["class","utility"]],["PJM-ELRP","ELIGIBLE",["utility.utility_name","site.site_devices.0.model"]],["CAISO-DSGS","ACTIVE",[],[],1700000000000],["TVA-RPO","PENDING"]]"#;
        assert_eq!(parse_enrollments(arrays).unwrap(), four());
        assert!(parse_enrollments("[]").unwrap().is_empty());
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
            "{}",
            "TVA-RPO",
            "TVA-RPO X",
            "TVA-RPO A m99",
            "TVA-RPO A m",
            "TVA-RPO A rz",
            "TVA-RPO A @soon",
            "TVA-RPO A q",
            "TVA-RPO A;",
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

    /// The stored form as serde writes it, one array per enrollment cut after its last
    /// element that is not empty: the reference the writer is held to.
    fn serialized(list: &[Enrollment]) -> String {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|e| {
                let mut row = vec![json!(e.program), json!(e.status)];
                if e.activated_at.is_some() || !e.reasons.is_empty() || !e.missing.is_empty() {
                    row.push(json!(e.missing));
                }
                if e.activated_at.is_some() || !e.reasons.is_empty() {
                    row.push(json!(e.reasons));
                }
                if let Some(at) = e.activated_at {
                    row.push(json!(at));
                }
                serde_json::Value::Array(row)
            })
            .collect();
        serde_json::to_string(&rows).unwrap()
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
                Reason::Archived,
            ],
            0..=6,
        );
        (
            // Identifiers, any text, and the characters JSON escapes.
            "[A-Z][A-Z0-9-]{0,12}|\\PC{0,8}|[\\x00-\\x1f\"\\\\a]{1,4}",
            statuses,
            // Paths of the model, other paths, any text.
            prop::collection::vec(
                "utility\\.utility_name|site\\.site_devices\\.[0-3]\\.model|[a-z_.]{1,30}|\\PC{0,6}|[\\x00-\\x1f\"\\\\a]{1,4}",
                0..3,
            ),
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

    const NOW: OffsetDateTime = time::macros::datetime!(2027-03-01 00:00 UTC);

    /// A partner's programs, an asset of a job in its compact form, and what the meter
    /// it replaces held.
    fn replacing() -> impl Strategy<Value = (Vec<Program>, String, Vec<Enrollment>, Vec<Abstention>)>
    {
        testing::catalog().prop_flat_map(|programs| {
            let previous = testing::previous(&programs);
            (
                Just(programs),
                testing::meter().prop_map(|data| compact::encode(&data)),
                previous,
                testing::abstentions(to_millis(NOW)),
            )
        })
    }

    #[test]
    fn a_catalog_its_checks_refuse_is_evaluated_by_the_interpreted_rules() {
        let mut programs = parse_catalog(DEFAULT_CATALOG).unwrap();
        programs[0].required_fields.push("device.colour".to_owned());
        let catalog = Catalog::new(programs, NOW);
        assert!(catalog.compiled().is_none());
        let data = MeterData::parse(serde_json::json!({
            "partner_reference": "m-1", "transmission_region": "CAISO",
            "customer_classification": "RESIDENTIAL", "load_types": ["BATTERY_STORAGE"],
            "meter_type": "DEVICE",
            "customer": {"street_1": "1 Main St", "postal_code": "94105", "city": "Springfield",
                         "state_or_province_code": "CA", "country_code": "US"},
        }))
        .unwrap();
        let input = compact::encode(&data);
        let columns = catalog.evaluate_new(&input).unwrap();
        assert!(
            columns.enrollments.contains("device.colour"),
            "{}",
            columns.enrollments
        );
        let mut expected = evaluate(&catalog, &data, &[], &[]);
        expected.list = Vec::new();
        assert_eq!(columns, expected);
    }

    #[test]
    fn an_asset_that_is_not_a_compact_meter_is_reported_corrupt() {
        let catalog = Catalog::new(parse_catalog(DEFAULT_CATALOG).unwrap(), NOW);
        for input in [
            "",
            "[1,2",
            r#"["m-1","NOWHERE","RESIDENTIAL",["HVAC"],"DEVICE"]"#,
        ] {
            let error = catalog.evaluate_new(input).unwrap_err();
            assert!(matches!(error, StoreError::Corrupt(_)), "{input}: {error}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn an_asset_evaluated_as_a_new_meter_has_the_columns_the_interpreted_rules_give_it(
            (programs, input, _, _) in replacing()
        ) {
            let catalog = Catalog::new(programs, NOW);
            let columns = catalog.evaluate_new(&input).unwrap();
            prop_assert!(catalog.compiled().is_some());
            let mut expected = evaluate(&catalog, &parse_input(&input).unwrap(), &[], &[]);
            expected.list = Vec::new();
            prop_assert_eq!(columns, expected);
        }

        #[test]
        fn an_asset_replacing_a_meter_has_the_columns_the_interpreted_rules_give_it(
            (programs, input, previous, abstentions) in replacing()
        ) {
            let catalog = Catalog::new(programs, NOW);
            let columns = catalog.evaluate_input(&input, &previous, &abstentions).unwrap();
            prop_assert!(catalog.compiled().is_some());
            let data = parse_data(&input).unwrap();
            prop_assert_eq!(columns, evaluate(&catalog, &data, &previous, &abstentions));
        }
    }

    proptest! {
        #[test]
        fn every_list_of_enrollments_reads_back_as_it_was_stored(
            list in prop::collection::vec(any_enrollment(), 0..6)
        ) {
            prop_assert_eq!(parse_enrollments(&stored_enrollments(&list)).unwrap(), list);
        }

        #[test]
        fn a_list_the_compact_form_cannot_hold_is_stored_as_serde_writes_its_arrays(
            list in prop::collection::vec(any_enrollment(), 1..6)
        ) {
            let plain = list.iter().all(|e| is_plain(&EnrollmentRef::from(e)));
            let stored = stored_enrollments(&list);
            prop_assert_eq!(!stored.starts_with('['), plain);
            if !plain {
                prop_assert_eq!(stored, serialized(&list));
            }
        }
    }
}
