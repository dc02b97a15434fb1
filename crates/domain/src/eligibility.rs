//! The eligibility engine: for a meter and a program, INELIGIBLE with the reasons, or
//! ELIGIBLE with the fields still missing (none: ready to enroll). Pure and table-driven:
//! everything it knows about a program comes from the program's definition.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::meter::{MeterData, parse_date};
use crate::program::{Condition, Program, Rule};

/// What a program makes of a meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The meter cannot join, for these reasons.
    Ineligible(Vec<Reason>),
    /// The meter can join once these fields (dotted paths) are supplied; none: it can now.
    Eligible(Vec<String>),
}

impl Verdict {
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Eligible(missing) if missing.is_empty())
    }
}

/// What rules a meter out of a program: the criterion it fails. An enrollment stores the
/// criterion; the sentence a partner reads is written from the program and the meter when
/// it is shown ([`Reason::describe`]), so it never goes stale and costs no space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The program does not run in the meter's transmission region.
    Region,
    /// The program is not open to the meter's customer classification.
    Class,
    /// The program does not take the meter's type.
    MeterType,
    /// The program needs a load type the meter does not have.
    LoadTypes,
    /// The meter's utility is outside the program's territories.
    Utility,
    /// The partner archived the meter: it takes part in no program.
    Archived,
}

impl Reason {
    /// The reason as a sentence about `program`, whose subject is the program: "runs in
    /// CAISO; the meter is in PJM".
    pub fn describe(self, program: &Program, meter: &MeterData) -> String {
        match self {
            Self::Region => format!(
                "runs in {}; the meter is in {}",
                listed(&program.transmission_regions),
                meter.transmission_region()
            ),
            Self::Class => format!(
                "is open to {} customers; the meter is {}",
                listed(&program.customer_classifications),
                meter.customer_classification()
            ),
            Self::MeterType => format!(
                "takes meters of type {}; the meter is a {}",
                listed(&program.meter_types),
                meter.meter_type()
            ),
            Self::LoadTypes => format!(
                "needs one of the load types {}; the meter has {}",
                listed(&program.load_types),
                listed(&meter.load_types())
            ),
            Self::Utility => format!(
                "is offered in the territories of {}; the meter's utility is {}",
                listed(&program.utilities),
                utility_of(meter).unwrap_or("not given")
            ),
            Self::Archived => {
                "takes no archived meter; unarchive the meter to have it evaluated again".to_owned()
            }
        }
    }

    /// A stored reason: its name, or the sentence that enrollments evaluated by earlier
    /// builds hold in its place.
    fn from_stored(text: &str) -> Option<Self> {
        const SENTENCES: &[(&str, Reason)] = &[
            ("runs in ", Reason::Region),
            ("is open to ", Reason::Class),
            ("takes meters of type ", Reason::MeterType),
            ("needs one of the load types ", Reason::LoadTypes),
            ("is offered in the territories of ", Reason::Utility),
        ];
        match text {
            "region" => Some(Self::Region),
            "class" => Some(Self::Class),
            "meter_type" => Some(Self::MeterType),
            "load_types" => Some(Self::LoadTypes),
            "utility" => Some(Self::Utility),
            "archived" => Some(Self::Archived),
            _ => SENTENCES
                .iter()
                .find(|(start, _)| text.starts_with(start))
                .map(|(_, reason)| *reason),
        }
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_stored(&text)
            .ok_or_else(|| de::Error::custom(format!("unknown ineligibility reason {text:?}")))
    }
}

fn utility_of(meter: &MeterData) -> Option<&str> {
    meter.get("utility.utility_name").and_then(Value::as_str)
}

fn listed<T: AsRef<str>>(values: &[T]) -> String {
    values
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn evaluate(program: &Program, meter: &MeterData) -> Verdict {
    let mut reasons = Vec::new();
    if !program
        .transmission_regions
        .contains(&meter.transmission_region())
    {
        reasons.push(Reason::Region);
    }
    if !program.customer_classifications.is_empty()
        && !program
            .customer_classifications
            .contains(&meter.customer_classification())
    {
        reasons.push(Reason::Class);
    }
    if !program.meter_types.is_empty() && !program.meter_types.contains(&meter.meter_type()) {
        reasons.push(Reason::MeterType);
    }
    let loads = meter.load_types();
    if !program.load_types.is_empty() && !loads.iter().any(|l| program.load_types.contains(l)) {
        reasons.push(Reason::LoadTypes);
    }
    let utility = utility_of(meter);
    if let Some(utility) = utility
        && !program.utilities.is_empty()
        && !program.utilities.iter().any(|u| u.as_ref() == utility)
    {
        reasons.push(Reason::Utility);
    }
    if !reasons.is_empty() {
        return Verdict::Ineligible(reasons);
    }

    let mut missing: Vec<String> = Vec::new();
    let mut need = |path: &str| {
        if !missing.iter().any(|m| m == path) {
            missing.push(path.to_owned());
        }
    };
    // A program limited to some utilities must know the meter's to decide.
    if !program.utilities.is_empty() && utility.is_none() {
        need("utility.utility_name");
    }
    for path in &program.required_fields {
        if meter.get(path).is_none() {
            need(path);
        }
    }
    for rule in &program.conditional_fields {
        if applies(rule, meter) && !rule.any_of.iter().any(|p| meter.get(p).is_some()) {
            // Ask for the first; the description says any of them will do.
            need(&rule.any_of[0]);
        }
    }
    Verdict::Eligible(missing)
}

fn applies(rule: &Rule, meter: &MeterData) -> bool {
    rule.when.as_ref().is_none_or(|when| holds(when, meter))
}

fn holds(condition: &Condition, meter: &MeterData) -> bool {
    let Some(value) = meter.get(&condition.field) else {
        return false;
    };
    if let Some(expected) = &condition.equals {
        let actual = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if &actual != expected {
            return false;
        }
    }
    let date = value.as_str().and_then(parse_date);
    if let Some(after) = condition.after.as_deref().and_then(parse_date)
        && date.is_none_or(|d| d <= after)
    {
        return false;
    }
    if let Some(before) = condition.before.as_deref().and_then(parse_date)
        && date.is_none_or(|d| d >= before)
    {
        return false;
    }
    true
}

/// The alternatives of a missing field, for messages: "a or b" when a rule accepts either.
pub fn describe_missing(program: &Program, path: &str) -> String {
    if program.required_fields.iter().any(|r| r == path) {
        return path.to_owned();
    }
    program
        .conditional_fields
        .iter()
        .find(|r| r.any_of.len() > 1 && r.any_of[0] == path)
        .map(|r| r.any_of.join(" or "))
        .unwrap_or_else(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::{DEFAULT_CATALOG, parse_catalog};
    use serde_json::json;

    fn catalog() -> Vec<Program> {
        parse_catalog(DEFAULT_CATALOG).unwrap()
    }

    /// Why `program` rules the meter out, as the partner reads it.
    fn why(program: &Program, meter: &MeterData) -> Vec<String> {
        match evaluate(program, meter) {
            Verdict::Ineligible(reasons) => {
                reasons.iter().map(|r| r.describe(program, meter)).collect()
            }
            Verdict::Eligible(_) => Vec::new(),
        }
    }

    /// A meter with the global fields, adjusted by `changes` (dotted path → value; null
    /// removes).
    fn meter(region: &str, class: &str, loads: &[&str], changes: &[(&str, Value)]) -> MeterData {
        let mut value = json!({
            "partner_reference": "ref-1",
            "transmission_region": region,
            "customer_classification": class,
            "load_types": loads,
            "meter_type": "DEVICE",
            "customer": {"street_1": "1 Main St", "postal_code": "94105", "city": "Springfield",
                         "state_or_province_code": "CA", "country_code": "US"}
        });
        for (path, v) in changes {
            let mut node = &mut value;
            let segments: Vec<&str> = path.split('.').collect();
            for segment in &segments[..segments.len() - 1] {
                node = node
                    .as_object_mut()
                    .unwrap()
                    .entry(segment.to_string())
                    .or_insert_with(|| json!({}));
            }
            let last = segments[segments.len() - 1];
            if v.is_null() {
                node.as_object_mut().unwrap().remove(last);
            } else {
                node[last] = v.clone();
            }
        }
        MeterData::parse(value).unwrap()
    }

    /// Supplies every field a program requires, with a valid value for each.
    fn complete(program: &Program) -> Vec<(&'static str, Value)> {
        let mut fields: Vec<(&'static str, Value)> = vec![
            ("device.device_serial_number", json!("SN-1")),
            ("device.device_manufacturer", json!("Acme")),
            ("device.device_model", json!("B1")),
            ("device.battery_power_capacity_kw", json!(5.0)),
            ("device.battery_energy_capacity_kwh", json!(13.5)),
            ("device.permission_to_operate_date", json!("2023-01-15")),
            ("site.number_of_devices", json!(1)),
            ("caiso.nem_type", json!("NEM3")),
            ("utility.electric_service_account_number", json!("ACCT-1")),
            ("utility.utility_meter_serial_number", json!("UM-1")),
            ("utility.tariff", json!("B-19")),
            ("utility.load_serving_entity", json!("PGE")),
            ("utility.voltage", json!(">= 600 V")),
            ("nyiso.cbl_method", json!("AVERAGE_DAY")),
            ("nyiso.company_type", json!("CORPORATION")),
            ("customer.end_customer_company_name", json!("Acme Inc")),
            ("customer.dispatch_option", json!("DAILY")),
            ("isone.in_connected_solutions", json!(true)),
        ];
        fields.push((
            "utility.utility_name",
            json!(program.utilities.first().map_or("OTHER", |u| u.as_ref())),
        ));
        fields
    }

    #[test]
    fn every_default_program_has_an_eligible_an_ineligible_and_a_missing_field_case() {
        for program in catalog() {
            let region = program.transmission_regions[0].as_ref();
            let class = program
                .customer_classifications
                .first()
                .map_or("RESIDENTIAL", |c| c.as_ref());
            let load = program.load_types.first().map_or("HVAC", |l| l.as_ref());
            let id = &program.identifier;

            let ready = meter(region, class, &[load], &complete(&program));
            assert_eq!(
                evaluate(&program, &ready),
                Verdict::Eligible(vec![]),
                "{id}: complete meter"
            );

            let other_region = if region == "CAISO" { "PJM" } else { "CAISO" };
            let elsewhere = meter(other_region, class, &[load], &complete(&program));
            assert_eq!(
                evaluate(&program, &elsewhere),
                Verdict::Ineligible(vec![Reason::Region]),
                "{id}: wrong region"
            );
            assert!(
                why(&program, &elsewhere)[0].ends_with(&format!("the meter is in {other_region}")),
                "{id}: wrong region, described"
            );

            let missing_path = program.required_fields.last().unwrap();
            let mut changes = complete(&program);
            changes.retain(|(p, _)| p != missing_path);
            let incomplete = meter(region, class, &[load], &changes);
            assert_eq!(
                evaluate(&program, &incomplete),
                Verdict::Eligible(vec![missing_path.clone()]),
                "{id}: missing field"
            );
        }
    }

    #[test]
    fn a_reason_is_stored_by_name_and_read_from_the_sentences_stored_before() {
        let all = [
            Reason::Region,
            Reason::Class,
            Reason::MeterType,
            Reason::LoadTypes,
            Reason::Utility,
        ];
        let stored = serde_json::to_string(&all).unwrap();
        assert_eq!(
            stored,
            r#"["region","class","meter_type","load_types","utility"]"#
        );
        assert_eq!(serde_json::from_str::<Vec<Reason>>(&stored).unwrap(), all);

        let earlier: Vec<Reason> = serde_json::from_value(json!([
            "runs in ERCOT; the meter is in CAISO",
            "is open to COMMERCIAL customers; the meter is RESIDENTIAL",
            "takes meters of type UTILITY_METER; the meter is a DEVICE",
            "needs one of the load types BATTERY_STORAGE; the meter has HVAC",
            "is offered in the territories of PGE; the meter's utility is SCE",
        ]))
        .unwrap();
        assert_eq!(earlier, all);
        assert!(serde_json::from_value::<Reason>(json!("is purple")).is_err());
    }

    #[test]
    fn classification_load_type_and_utility_can_each_rule_a_meter_out() {
        let programs = catalog();
        let cbp = programs.iter().find(|p| p.identifier == "PGE-CBP").unwrap();
        let residential = meter("CAISO", "RESIDENTIAL", &["HVAC"], &complete(cbp));
        assert_eq!(
            why(cbp, &residential),
            ["is open to COMMERCIAL customers; the meter is RESIDENTIAL"]
        );

        let dsgs = programs
            .iter()
            .find(|p| p.identifier == "CEC-DSGS")
            .unwrap();
        let hvac = meter(
            "CAISO",
            "RESIDENTIAL",
            &["HVAC", "LIGHTING"],
            &complete(dsgs),
        );
        assert_eq!(
            evaluate(dsgs, &hvac),
            Verdict::Ineligible(vec![Reason::LoadTypes])
        );
        assert!(why(dsgs, &hvac)[0].contains("BATTERY_STORAGE"));
        assert!(why(dsgs, &hvac)[0].ends_with("the meter has HVAC, LIGHTING"));

        let mut changes = complete(dsgs);
        changes.push(("utility.utility_name", json!("CECONY")));
        let wrong_utility = meter("CAISO", "RESIDENTIAL", &["BATTERY_STORAGE"], &changes);
        assert_eq!(
            evaluate(dsgs, &wrong_utility),
            Verdict::Ineligible(vec![Reason::Utility])
        );
        assert!(why(dsgs, &wrong_utility)[0].ends_with("the meter's utility is CECONY"));

        let unknown_utility = meter(
            "CAISO",
            "RESIDENTIAL",
            &["BATTERY_STORAGE"],
            &[("utility.utility_name", Value::Null)],
        );
        let Verdict::Eligible(missing) = evaluate(dsgs, &unknown_utility) else {
            panic!()
        };
        assert_eq!(missing[0], "utility.utility_name");
    }

    #[test]
    fn sgip_funding_is_required_only_for_batteries_installed_after_june_2023() {
        let dsgs = catalog()
            .into_iter()
            .find(|p| p.identifier == "CEC-DSGS")
            .unwrap();
        let mut changes = complete(&dsgs);
        changes.push(("device.install_date", json!("2023-06-30")));
        let older = meter("CAISO", "RESIDENTIAL", &["BATTERY_STORAGE"], &changes);
        assert!(evaluate(&dsgs, &older).is_ready());

        changes.push(("device.install_date", json!("2023-07-01")));
        let newer = meter("CAISO", "RESIDENTIAL", &["BATTERY_STORAGE"], &changes);
        assert_eq!(
            evaluate(&dsgs, &newer),
            Verdict::Eligible(vec!["caiso.is_receiving_sgip_funding".to_owned()])
        );

        changes.push(("caiso.is_receiving_sgip_funding", json!(false)));
        let answered = meter("CAISO", "RESIDENTIAL", &["BATTERY_STORAGE"], &changes);
        assert!(evaluate(&dsgs, &answered).is_ready());
    }

    #[test]
    fn utility_meters_need_a_meter_serial_or_an_account_number_in_every_program() {
        let elrp = catalog()
            .into_iter()
            .find(|p| p.identifier == "TVA-RPO")
            .unwrap();
        let base = complete(&elrp)
            .into_iter()
            .filter(|(p, _)| !p.starts_with("utility.") || *p == "utility.utility_name")
            .collect::<Vec<_>>();
        let mut as_utility_meter = base.clone();
        as_utility_meter.push(("meter_type", json!("UTILITY_METER")));
        let bare = meter("SERC", "RESIDENTIAL", &["HVAC"], &as_utility_meter);
        let Verdict::Eligible(missing) = evaluate(&elrp, &bare) else {
            panic!()
        };
        assert_eq!(missing, ["utility.utility_meter_serial_number"]);
        assert_eq!(
            describe_missing(&elrp, &missing[0]),
            "utility.utility_meter_serial_number or utility.electric_service_account_number"
        );
        as_utility_meter.push(("utility.electric_service_account_number", json!("A-1")));
        assert!(
            evaluate(
                &elrp,
                &meter("SERC", "RESIDENTIAL", &["HVAC"], &as_utility_meter)
            )
            .is_ready()
        );
        // A device is not a utility meter: the rule does not apply.
        assert!(evaluate(&elrp, &meter("SERC", "RESIDENTIAL", &["HVAC"], &base)).is_ready());
    }
}
