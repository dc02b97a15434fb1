//! A catalog compiled for evaluating the many meters of a job: the verdicts of
//! [`crate::enrollment::reevaluate`] (and so of [`crate::eligibility::evaluate`]), worked
//! out with a fraction of the work per meter.
//!
//! Compiling groups the programs by region, so a meter is held against its region's
//! programs only (and those it was enrolled in before); turns each program's criteria
//! into sets of enum values; and resolves every field the programs name, from its dotted
//! path to its position in the compact form, once. Evaluating a meter then reads its
//! compact form in one pass that keeps only those fields ([`picks`]), and records each
//! program's outcome without copying a string; the enrollments are written out from the
//! outcomes as they are needed ([`Evaluation::enrollments`]).
//!
//! The interpreted rules stay the reference, and what reads and views use: the tests
//! hold the two to the same enrollments, in the same order, with the same missing fields
//! and reasons in the same order, and to the same summary.

mod picks;
mod views;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use strum::VariantNames;
use time::Date;

use crate::compact::DecodeError;
use crate::enrollment::{Enrollment, global_status, summary_action_types};
use crate::enums::{
    ActionType, CustomerClassification, EnrollmentStatus, LoadType, MeterType, TransmissionRegion,
    Utility,
};
use crate::meter::parse_date;
use crate::program::{Condition, Program, Rule};

use picks::Picks;
pub use views::{EnrollmentRef, Missing, Reasons};

/// A partner's programs compiled for evaluating meters in their compact form.
#[derive(Debug)]
pub struct CompiledCatalog {
    /// In the catalog's order, which is the order of a meter's enrollments.
    programs: Vec<CompiledProgram>,
    /// The programs of each transmission region (by its place in the enum), in order.
    by_region: Vec<Vec<usize>>,
    picks: Picks,
    /// The slots of the fields every evaluation reads.
    slots: Slots,
}

#[derive(Debug)]
struct Slots {
    region: usize,
    class: usize,
    meter_type: usize,
    load_types: usize,
    utility: usize,
}

/// One program: each criterion as a set of enum values (bit `i`: the enum's `i`th
/// variant; an empty set takes any value), and the fields it asks for as slots.
#[derive(Debug)]
struct CompiledProgram {
    identifier: String,
    regions: u64,
    classes: u64,
    meter_types: u64,
    load_types: u64,
    utilities: u64,
    /// The paths the program may name as missing, each once; a meter's missing fields
    /// are indexes into them.
    paths: Vec<String>,
    /// The path of the utility's name, when the program is limited to some utilities.
    utility_path: Option<u32>,
    /// Each required field: its slot and its path.
    required: Vec<(usize, u32)>,
    rules: Vec<CompiledRule>,
}

/// A conditional requirement: one of the slots `any_of` must be present when `when`
/// holds; `ask` is the path named missing when none is.
#[derive(Debug)]
struct CompiledRule {
    when: Option<CompiledCondition>,
    any_of: Vec<usize>,
    ask: u32,
}

/// A condition on the field in `slot`, its dates parsed once.
#[derive(Debug)]
struct CompiledCondition {
    slot: usize,
    equals: Option<String>,
    after: Option<Date>,
    before: Option<Date>,
}

/// How many picked values an evaluation keeps on the stack; a catalog whose programs
/// name more fields than that (the default catalog names about 25) has them allocated
/// per meter.
const PICKED_ON_STACK: usize = 64;

/// Bit `i` of a set of enum values.
const fn bit(i: usize) -> u64 {
    1 << i
}

/// The place of a wire name among an enum's variants.
fn variant(variants: &[&str], name: &str) -> Option<usize> {
    variants.iter().position(|v| *v == name)
}

/// The set of the given enum values.
fn set_of<T: AsRef<str>>(values: &[T], variants: &[&str]) -> u64 {
    values
        .iter()
        .filter_map(|v| variant(variants, v.as_ref()))
        .fold(0, |set, i| set | bit(i))
}

impl CompiledCatalog {
    /// Compiles a partner's programs, in the catalog's order. `None` when a program's
    /// definition is one [`Program::check`] refuses (which only a definition written
    /// around the API and the command can be): the interpreted rules alone say what it
    /// means.
    pub fn compile(programs: &[Program]) -> Option<Self> {
        let mut picks = Picks::default();
        let slots = Slots {
            region: picks.add("transmission_region")?,
            class: picks.add("customer_classification")?,
            meter_type: picks.add("meter_type")?,
            load_types: picks.add("load_types")?,
            utility: picks.add("utility.utility_name")?,
        };
        let programs = programs
            .iter()
            .map(|program| CompiledProgram::compile(program, &mut picks))
            .collect::<Option<Vec<_>>>()?;
        let mut by_region = vec![Vec::new(); TransmissionRegion::VARIANTS.len()];
        for (i, program) in programs.iter().enumerate() {
            for (region, list) in by_region.iter_mut().enumerate() {
                if program.regions & bit(region) != 0 {
                    list.push(i);
                }
            }
        }
        Some(Self {
            programs,
            by_region,
            picks,
            slots,
        })
    }

    /// Evaluates a meter, given in its compact form, keeping what still holds of its
    /// `previous` enrollments, as [`crate::enrollment::reevaluate`] does. A text that is
    /// not a compact meter, or lacks a valid region, classification or meter type, is
    /// refused.
    pub fn evaluate<'c, 'p>(
        &'c self,
        compact: &str,
        previous: &'p [Enrollment],
    ) -> Result<Evaluation<'c, 'p>, DecodeError> {
        // The values picked, on the stack for any catalog of a reasonable size: the
        // allocation and freeing of a vector per meter was 5% of this function.
        let (mut stack, mut heap) = ([None; PICKED_ON_STACK], Vec::new());
        let values = if self.picks.len() <= PICKED_ON_STACK {
            &mut stack[..self.picks.len()]
        } else {
            heap.resize(self.picks.len(), None);
            &mut heap[..]
        };
        self.picks.read(compact, values)?;
        let meter = Meter::read(&self.slots, values)?;
        let mut evaluation = Evaluation {
            catalog: self,
            entries: Vec::new(),
            missing: Vec::new(),
        };
        if previous.is_empty() {
            evaluation
                .entries
                .reserve(self.by_region[meter.region].len());
            for &program in &self.by_region[meter.region] {
                evaluation.judge(program, &meter, None)?;
            }
            return Ok(evaluation);
        }
        // Also the programs the meter was enrolled in, wherever they run; as in
        // `reevaluate`, a program listed twice before counts by its last entry.
        let before: HashMap<&str, &'p Enrollment> =
            previous.iter().map(|e| (e.program.as_str(), e)).collect();
        for (index, program) in self.programs.iter().enumerate() {
            let earlier = before.get(program.identifier.as_str()).copied();
            if program.regions & bit(meter.region) != 0 || earlier.is_some() {
                evaluation.judge(index, &meter, earlier)?;
            }
        }
        Ok(evaluation)
    }
}

impl CompiledProgram {
    fn compile(program: &Program, picks: &mut Picks) -> Option<Self> {
        program.check().ok()?;
        let mut paths: Vec<String> = Vec::new();
        let mut path = |p: &str| -> u32 {
            let index = paths.iter().position(|q| q == p).unwrap_or_else(|| {
                paths.push(p.to_owned());
                paths.len() - 1
            });
            u32::try_from(index).expect("a program names fewer than 2^32 fields")
        };
        let utility_path = (!program.utilities.is_empty()).then(|| path("utility.utility_name"));
        let required = program
            .required_fields
            .iter()
            .map(|p| Some((picks.add(p)?, path(p))))
            .collect::<Option<Vec<_>>>()?;
        let rules = program
            .conditional_fields
            .iter()
            .map(|rule| CompiledRule::compile(rule, picks, &mut path))
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            identifier: program.identifier.clone(),
            regions: set_of(&program.transmission_regions, TransmissionRegion::VARIANTS),
            classes: set_of(
                &program.customer_classifications,
                CustomerClassification::VARIANTS,
            ),
            meter_types: set_of(&program.meter_types, MeterType::VARIANTS),
            load_types: set_of(&program.load_types, LoadType::VARIANTS),
            utilities: set_of(&program.utilities, Utility::VARIANTS),
            paths,
            utility_path,
            required,
            rules,
        })
    }

    /// The criteria the meter fails, as a [`Reasons`] set.
    fn failed(&self, meter: &Meter) -> u8 {
        let mut failed = 0;
        if self.regions & bit(meter.region) == 0 {
            failed |= Reasons::REGION;
        }
        if self.classes != 0 && self.classes & bit(meter.class) == 0 {
            failed |= Reasons::CLASS;
        }
        if self.meter_types != 0 && self.meter_types & bit(meter.meter_type) == 0 {
            failed |= Reasons::METER_TYPE;
        }
        if self.load_types != 0 && self.load_types & meter.load_types == 0 {
            failed |= Reasons::LOAD_TYPES;
        }
        // A utility not named by the program, or named by no variant at all.
        if let Some(utility) = meter.utility
            && self.utilities != 0
            && utility.is_none_or(|u| self.utilities & bit(u) == 0)
        {
            failed |= Reasons::UTILITY;
        }
        failed
    }

    /// Adds the paths of the fields the meter still lacks to `missing`, each once, in the
    /// order `eligibility::evaluate` names them.
    fn lacking(&self, meter: &Meter, missing: &mut Vec<u32>) -> Result<(), DecodeError> {
        let start = missing.len();
        let mut need = |path: u32| {
            if !missing[start..].contains(&path) {
                missing.push(path);
            }
        };
        // A program limited to some utilities must know the meter's to decide.
        if let Some(path) = self.utility_path
            && meter.utility.is_none()
        {
            need(path);
        }
        for &(slot, path) in &self.required {
            if meter.values[slot].is_none() {
                need(path);
            }
        }
        for rule in &self.rules {
            let applies = match &rule.when {
                Some(when) => when.holds(meter)?,
                None => true,
            };
            if applies && !rule.any_of.iter().any(|&slot| meter.values[slot].is_some()) {
                need(rule.ask);
            }
        }
        Ok(())
    }
}

impl CompiledRule {
    fn compile(rule: &Rule, picks: &mut Picks, path: &mut impl FnMut(&str) -> u32) -> Option<Self> {
        // Ask for the first; the description says any of them will do.
        let ask = path(rule.any_of.first()?);
        let any_of = rule
            .any_of
            .iter()
            .map(|p| picks.add(p))
            .collect::<Option<Vec<_>>>()?;
        let when = match &rule.when {
            Some(condition) => Some(CompiledCondition::compile(condition, picks)?),
            None => None,
        };
        Some(Self { when, any_of, ask })
    }
}

impl CompiledCondition {
    fn compile(condition: &Condition, picks: &mut Picks) -> Option<Self> {
        Some(Self {
            slot: picks.add(&condition.field)?,
            equals: condition.equals.clone(),
            // A date that does not parse sets no bound, as in `eligibility`.
            after: condition.after.as_deref().and_then(parse_date),
            before: condition.before.as_deref().and_then(parse_date),
        })
    }

    /// Whether the condition holds of the meter; false when the field is absent.
    fn holds(&self, meter: &Meter) -> Result<bool, DecodeError> {
        let Some(raw) = meter.values[self.slot] else {
            return Ok(false);
        };
        let text = text(raw)?;
        if let Some(expected) = &self.equals {
            let equal = match &text {
                Some(text) => text == expected,
                // Any other value compares as its JSON text, as the interpreter's.
                None => {
                    let value: Value = serde_json::from_str(raw).map_err(DecodeError::new)?;
                    let actual = value.to_string();
                    actual == *expected
                }
            };
            if !equal {
                return Ok(false);
            }
        }
        let date = text.as_deref().and_then(parse_date);
        if let Some(after) = self.after
            && date.is_none_or(|d| d <= after)
        {
            return Ok(false);
        }
        if let Some(before) = self.before
            && date.is_none_or(|d| d >= before)
        {
            return Ok(false);
        }
        Ok(true)
    }
}

/// What an evaluation knows of a meter: the values it picked, and the enums read once.
struct Meter<'v, 't> {
    values: &'v [Option<&'t str>],
    region: usize,
    class: usize,
    meter_type: usize,
    load_types: u64,
    /// The utility's name when it is a string: its variant, if it names one.
    utility: Option<Option<usize>>,
}

impl<'v, 't> Meter<'v, 't> {
    fn read(slots: &Slots, values: &'v [Option<&'t str>]) -> Result<Self, DecodeError> {
        let enum_at = |slot: usize, variants: &[&str], name: &str| {
            let text = values[slot].map(text).transpose()?.flatten();
            text.and_then(|t| variant(variants, &t))
                .ok_or_else(|| DecodeError::new(format!("the meter has no valid {name}")))
        };
        Ok(Self {
            values,
            region: enum_at(
                slots.region,
                TransmissionRegion::VARIANTS,
                "transmission_region",
            )?,
            class: enum_at(
                slots.class,
                CustomerClassification::VARIANTS,
                "customer_classification",
            )?,
            meter_type: enum_at(slots.meter_type, MeterType::VARIANTS, "meter_type")?,
            load_types: load_types(values[slots.load_types])?,
            utility: values[slots.utility]
                .map(text)
                .transpose()?
                .flatten()
                .map(|name| variant(Utility::VARIANTS, &name)),
        })
    }
}

/// A value's text when it is a JSON string; `None` for any other value.
fn text(raw: &str) -> Result<Option<Cow<'_, str>>, DecodeError> {
    if !raw.starts_with('"') {
        return Ok(None);
    }
    if !raw.contains('\\') {
        return Ok(Some(Cow::Borrowed(&raw[1..raw.len() - 1])));
    }
    serde_json::from_str(raw)
        .map(|s: String| Some(Cow::Owned(s)))
        .map_err(DecodeError::new)
}

/// The set of the load types a meter lists, leaving out what names none (as
/// `MeterData::load_types` does); empty when the value is not a list.
fn load_types(raw: Option<&str>) -> Result<u64, DecodeError> {
    struct LoadTypes;

    impl<'de> Visitor<'de> for LoadTypes {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of load types")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
            let mut set = 0;
            while let Some(item) = seq.next_element::<&RawValue>()? {
                let name = text(item.get()).map_err(de::Error::custom)?;
                if let Some(i) = name.and_then(|n| variant(LoadType::VARIANTS, &n)) {
                    set |= bit(i);
                }
            }
            Ok(set)
        }
    }

    match raw {
        Some(raw) if raw.starts_with('[') => serde_json::Deserializer::from_str(raw)
            .deserialize_seq(LoadTypes)
            .map_err(DecodeError::new),
        _ => Ok(0),
    }
}

/// A meter's enrollments as a compiled catalog evaluated them: each program's outcome,
/// from which the enrollments and their summary are written out.
#[derive(Debug)]
pub struct Evaluation<'c, 'p> {
    catalog: &'c CompiledCatalog,
    entries: Vec<Entry<'p>>,
    /// The missing fields of every ELIGIBLE entry, as paths of its program.
    missing: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
enum Entry<'p> {
    Ineligible {
        program: usize,
        reasons: u8,
    },
    /// Its missing fields are `missing[from..to]`.
    Eligible {
        program: usize,
        from: usize,
        to: usize,
    },
    Pending {
        program: usize,
    },
    /// An ACTIVE enrollment the meter keeps, as it was.
    Kept(&'p Enrollment),
}

impl<'p> Evaluation<'_, 'p> {
    /// Records what a program makes of the meter.
    fn judge(
        &mut self,
        index: usize,
        meter: &Meter,
        earlier: Option<&'p Enrollment>,
    ) -> Result<(), DecodeError> {
        let program = &self.catalog.programs[index];
        let reasons = program.failed(meter);
        if reasons != 0 {
            self.entries.push(Entry::Ineligible {
                program: index,
                reasons,
            });
            return Ok(());
        }
        let from = self.missing.len();
        self.missing.reserve(program.paths.len());
        program.lacking(meter, &mut self.missing)?;
        let to = self.missing.len();
        self.entries.push(match earlier {
            _ if to > from => Entry::Eligible {
                program: index,
                from,
                to,
            },
            Some(e) if e.status == EnrollmentStatus::Active => Entry::Kept(e),
            _ => Entry::Pending { program: index },
        });
        Ok(())
    }

    /// The enrollments, in the catalog's order.
    pub fn enrollments(&self) -> impl ExactSizeIterator<Item = EnrollmentRef<'_>> {
        self.entries.iter().map(|entry| self.view(*entry))
    }

    fn view(&self, entry: Entry<'p>) -> EnrollmentRef<'_> {
        let programs = &self.catalog.programs;
        let fresh = |program: usize, status, missing, reasons| EnrollmentRef {
            program: &programs[program].identifier,
            status,
            missing,
            reasons,
            activated_at: None,
        };
        match entry {
            Entry::Ineligible { program, reasons } => fresh(
                program,
                EnrollmentStatus::Ineligible,
                Missing::NONE,
                Reasons::set(reasons),
            ),
            Entry::Eligible { program, from, to } => fresh(
                program,
                EnrollmentStatus::Eligible,
                Missing::of(&self.missing[from..to], &programs[program].paths),
                Reasons::NONE,
            ),
            Entry::Pending { program } => fresh(
                program,
                EnrollmentStatus::Pending,
                Missing::NONE,
                Reasons::NONE,
            ),
            Entry::Kept(enrollment) => EnrollmentRef::from(enrollment),
        }
    }

    /// The enrollments as the interpreted rules give them.
    pub fn to_enrollments(&self) -> Vec<Enrollment> {
        self.enrollments().map(|e| e.to_enrollment()).collect()
    }

    fn statuses(&self) -> impl Iterator<Item = EnrollmentStatus> + '_ {
        self.entries.iter().map(|entry| match entry {
            Entry::Ineligible { .. } => EnrollmentStatus::Ineligible,
            Entry::Eligible { .. } => EnrollmentStatus::Eligible,
            Entry::Pending { .. } => EnrollmentStatus::Pending,
            Entry::Kept(e) => e.status,
        })
    }

    /// The summary's global status for a meter with no idle or disenrolled period (with
    /// one, [`crate::enrollment::summarize`] decides).
    pub fn global_status(&self) -> EnrollmentStatus {
        global_status(self.statuses())
    }

    /// Whether the partner has something to do, for a meter with no idle or disenrolled
    /// period.
    pub fn partner_action_required(&self) -> bool {
        self.statuses().any(|s| s == EnrollmentStatus::Eligible)
    }

    /// The partner's action types, for a meter with no idle or disenrolled period.
    pub fn action_types(&self) -> &'static [ActionType] {
        summary_action_types(self.partner_action_required())
    }

    /// The programs the meter is PENDING in.
    pub fn pending_programs(&self) -> impl Iterator<Item = &str> {
        self.enrollments()
            .filter(|e| e.status == EnrollmentStatus::Pending)
            .map(|e| e.program)
    }
}
