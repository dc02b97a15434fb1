//! The eligibility engine: for a meter and a program, INELIGIBLE with the reasons, or
//! ELIGIBLE with the fields still missing (none: ready to enroll). Pure and table-driven:
//! everything it knows about a program comes from the program's definition.

use serde_json::Value;

use crate::meter::{MeterData, parse_date};
use crate::program::{Condition, Program, Rule};

/// What a program makes of a meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The meter cannot join, for these reasons.
    Ineligible(Vec<String>),
    /// The meter can join once these fields (dotted paths) are supplied; none: it can now.
    Eligible(Vec<String>),
}

impl Verdict {
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Eligible(missing) if missing.is_empty())
    }
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
    let region = meter.transmission_region();
    if !program.transmission_regions.contains(&region) {
        reasons.push(format!(
            "runs in {}; the meter is in {region}",
            listed(&program.transmission_regions)
        ));
    }
    let class = meter.customer_classification();
    if !program.customer_classifications.is_empty()
        && !program.customer_classifications.contains(&class)
    {
        reasons.push(format!(
            "is open to {} customers; the meter is {class}",
            listed(&program.customer_classifications)
        ));
    }
    let meter_type = meter.meter_type();
    if !program.meter_types.is_empty() && !program.meter_types.contains(&meter_type) {
        reasons.push(format!(
            "takes meters of type {}; the meter is a {meter_type}",
            listed(&program.meter_types)
        ));
    }
    let loads = meter.load_types();
    if !program.load_types.is_empty() && !loads.iter().any(|l| program.load_types.contains(l)) {
        reasons.push(format!(
            "needs one of the load types {}; the meter has {}",
            listed(&program.load_types),
            listed(&loads)
        ));
    }
    let utility = meter.get("utility.utility_name").and_then(Value::as_str);
    if let Some(utility) = utility
        && !program.utilities.is_empty()
        && !program.utilities.iter().any(|u| u.as_ref() == utility)
    {
        reasons.push(format!(
            "is offered in the territories of {}; the meter's utility is {utility}",
            listed(&program.utilities)
        ));
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
            assert!(
                matches!(evaluate(&program, &elsewhere), Verdict::Ineligible(r) if r[0].contains(other_region)),
                "{id}: wrong region"
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
    fn classification_load_type_and_utility_can_each_rule_a_meter_out() {
        let programs = catalog();
        let cbp = programs.iter().find(|p| p.identifier == "PGE-CBP").unwrap();
        let residential = meter("CAISO", "RESIDENTIAL", &["HVAC"], &complete(cbp));
        assert!(
            matches!(evaluate(cbp, &residential), Verdict::Ineligible(r) if r[0].contains("COMMERCIAL"))
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
        assert!(
            matches!(evaluate(dsgs, &hvac), Verdict::Ineligible(r) if r[0].contains("BATTERY_STORAGE"))
        );

        let mut changes = complete(dsgs);
        changes.push(("utility.utility_name", json!("CECONY")));
        let wrong_utility = meter("CAISO", "RESIDENTIAL", &["BATTERY_STORAGE"], &changes);
        assert!(
            matches!(evaluate(dsgs, &wrong_utility), Verdict::Ineligible(r) if r[0].contains("CECONY"))
        );

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
