use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::compact::{decode, encode};
use crate::eligibility::Reason;
use crate::enrollment::{Schedule, reevaluate, summarize};
use crate::meter::MeterData;
use crate::program::{DEFAULT_CATALOG, parse_catalog};
use crate::schema::LEAVES;
use crate::testing;

const NOW: OffsetDateTime = datetime!(2027-03-01 00:00 UTC);

fn default_catalog() -> Vec<Program> {
    parse_catalog(DEFAULT_CATALOG).unwrap()
}

fn meter(region: &str, changes: Value) -> MeterData {
    let mut value = json!({
        "partner_reference": "ref-1",
        "transmission_region": region,
        "customer_classification": "RESIDENTIAL",
        "load_types": ["BATTERY_STORAGE"],
        "meter_type": "DEVICE",
        "customer": {"street_1": "1 Main St", "postal_code": "94105", "city": "Springfield",
                     "state_or_province_code": "CA", "country_code": "US"}
    });
    for (key, v) in changes.as_object().unwrap() {
        value[key] = v.clone();
    }
    MeterData::parse(value).unwrap()
}

#[test]
fn a_meter_is_held_against_the_programs_of_its_region_only() {
    let compiled = CompiledCatalog::compile(&default_catalog()).unwrap();
    let count = |region: TransmissionRegion| {
        let i = variant(TransmissionRegion::VARIANTS, region.as_ref()).unwrap();
        compiled.by_region[i].len()
    };
    assert_eq!(count(TransmissionRegion::Caiso), 5);
    assert_eq!(count(TransmissionRegion::Nyiso), 4);
    assert_eq!(count(TransmissionRegion::Serc), 1);

    let text = encode(&meter("SERC", json!({})));
    let evaluation = compiled.evaluate(&text, &[]).unwrap();
    let programs: Vec<&str> = evaluation.enrollments().map(|e| e.program).collect();
    assert_eq!(programs, ["TVA-RPO"]);
}

#[test]
fn sgip_funding_is_asked_for_batteries_installed_after_june_2023() {
    let compiled = CompiledCatalog::compile(&default_catalog()).unwrap();
    let missing_of = |install_date: &str| {
        let data = meter(
            "CAISO",
            json!({"device": {"install_date": install_date}, "utility": {"utility_name": "PGE"}}),
        );
        let text = encode(&data);
        let evaluation = compiled.evaluate(&text, &[]).unwrap();
        let dsgs = evaluation
            .enrollments()
            .find(|e| e.program == "CEC-DSGS")
            .unwrap();
        dsgs.missing.iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let sgip = "caiso.is_receiving_sgip_funding".to_owned();
    assert!(missing_of("2023-07-01").contains(&sgip));
    assert!(!missing_of("2023-06-30").contains(&sgip));
}

#[test]
fn reasons_are_listed_in_the_order_the_criteria_are_checked() {
    let compiled = CompiledCatalog::compile(&default_catalog()).unwrap();
    // A residential meter with HVAC and a Texan utility, in CAISO: PGE-CBP (commercial,
    // PGE only) rules it out for its class and utility.
    let data = meter(
        "CAISO",
        json!({"load_types": ["HVAC"], "utility": {"utility_name": "ONCOR"}}),
    );
    let text = encode(&data);
    let evaluation = compiled.evaluate(&text, &[]).unwrap();
    let cbp = evaluation
        .enrollments()
        .find(|e| e.program == "PGE-CBP")
        .unwrap();
    assert_eq!(cbp.status, EnrollmentStatus::Ineligible);
    assert_eq!(
        cbp.reasons.iter().collect::<Vec<_>>(),
        [Reason::Class, Reason::Utility]
    );
}

#[test]
fn a_catalog_with_a_definition_the_checks_refuse_is_left_to_the_interpreted_rules() {
    let mut programs = default_catalog();
    programs[0].required_fields.push("device.colour".to_owned());
    assert!(CompiledCatalog::compile(&programs).is_none());

    let mut programs = default_catalog();
    programs[1].conditional_fields[0].any_of.clear();
    assert!(CompiledCatalog::compile(&programs).is_none());

    assert!(CompiledCatalog::compile(&[]).is_some());
}

#[test]
fn a_meter_without_a_valid_region_class_or_type_is_refused() {
    let compiled = CompiledCatalog::compile(&default_catalog()).unwrap();
    let customer = r#"["1 Main St",null,"94105","Springfield","CA","US"]"#;
    for text in [
        format!(r#"["m-1","MARS","RESIDENTIAL",["HVAC"],"DEVICE",{customer}]"#),
        format!(r#"["m-1","CAISO",null,["HVAC"],"DEVICE",{customer}]"#),
        format!(r#"["m-1","CAISO","RESIDENTIAL",["HVAC"],7,{customer}]"#),
        r#"["m-1"]"#.to_owned(),
    ] {
        assert!(compiled.evaluate(&text, &[]).is_err(), "{text}");
    }
    let valid = format!(r#"["m-1","CAISO","RESIDENTIAL",["HVAC"],"DEVICE",{customer}]"#);
    assert!(compiled.evaluate(&valid, &[]).is_ok());
}

/// Every leaf of the model, and items of the list of site devices.
fn every_path() -> Vec<String> {
    let mut paths: Vec<String> = LEAVES.iter().map(|l| l.path.to_owned()).collect();
    for i in 0..3 {
        for field in ["device_type", "model", "serial_number"] {
            paths.push(format!("site.site_devices.{i}.{field}"));
        }
    }
    paths
}

/// A change to a compact text: its JSON's syntax broken at one place, or its shape.
#[derive(Debug, Clone)]
enum Damage {
    /// Cut at, put in or put over the character at a place.
    Cut(usize),
    Insert(usize, char),
    Replace(usize, char),
    /// A value (the nth in document order) made another, or a list given more items.
    Value(usize, Value),
    Longer(usize, Value),
}

fn damage() -> impl Strategy<Value = Damage> {
    let at = any::<prop::sample::Index>().prop_map(|i| i.index(1 << 16));
    let c = prop::sample::select(vec!['[', ']', ',', '"', 'n', '1', '{', '\\', ' ']);
    let value = prop::sample::select(vec![
        Value::Null,
        json!(1),
        json!("x"),
        json!([]),
        json!([1]),
        json!([[]]),
        json!([null, "x"]),
        json!({}),
    ]);
    prop_oneof![
        at.clone().prop_map(Damage::Cut),
        (at.clone(), c.clone()).prop_map(|(at, c)| Damage::Insert(at, c)),
        (at.clone(), c).prop_map(|(at, c)| Damage::Replace(at, c)),
        (at.clone(), value.clone()).prop_map(|(at, v)| Damage::Value(at, v)),
        (at, value).prop_map(|(at, v)| Damage::Longer(at, v)),
    ]
}

/// The nth value of a JSON tree, in document order, counting from `n`.
fn nth<'v>(value: &'v mut Value, n: &mut usize) -> Option<&'v mut Value> {
    if *n == 0 {
        return Some(value);
    }
    *n -= 1;
    match value {
        Value::Array(items) => items.iter_mut().find_map(|item| nth(item, n)),
        _ => None,
    }
}

fn count(value: &Value) -> usize {
    1 + value
        .as_array()
        .map_or(0, |items| items.iter().map(count).sum())
}

fn damaged(text: &str, damage: &Damage) -> String {
    let boundary = |at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let mut out = text.to_owned();
    match damage {
        Damage::Cut(at) => out.truncate(boundary(*at)),
        Damage::Insert(at, c) => out.insert(boundary(*at), *c),
        Damage::Replace(at, c) => {
            let at = boundary(*at);
            let len = text[at..].chars().next().map_or(0, char::len_utf8);
            out.replace_range(at..at + len, &c.to_string());
        }
        Damage::Value(at, replacement) | Damage::Longer(at, replacement) => {
            let mut tree: Value = serde_json::from_str(text).unwrap();
            let mut n = at % count(&tree);
            let Some(node) = nth(&mut tree, &mut n) else {
                return out;
            };
            match (damage, node) {
                (Damage::Longer(..), Value::Array(items)) => {
                    // More items than any object of the model has fields.
                    items.extend(std::iter::repeat_n(replacement.clone(), 33));
                }
                (Damage::Longer(..), _) => return out,
                (_, node) => *node = replacement.clone(),
            }
            out = tree.to_string();
        }
    }
    out
}

proptest! {
    // Cheap cases, and the rarer outcomes (an ACTIVE enrollment kept) need many.
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn every_meter_is_given_the_enrollments_and_summary_the_interpreted_rules_give_it(
        (programs, data, previous) in testing::catalog().prop_flat_map(|programs| {
            let previous = testing::previous(&programs);
            (Just(programs), testing::meter(), previous)
        })
    ) {
        let compiled = CompiledCatalog::compile(&programs).expect("valid programs compile");
        let text = encode(&data);
        let evaluation = compiled.evaluate(&text, &previous).unwrap();
        let expected = reevaluate(&programs, &decode(&text).unwrap(), &previous);
        prop_assert_eq!(evaluation.to_enrollments(), expected.clone());

        let by_id: HashMap<String, Program> =
            programs.iter().map(|p| (p.identifier.clone(), p.clone())).collect();
        let summary = summarize(&expected, &by_id, &[], &Schedule::new(&programs, NOW));
        prop_assert_eq!(evaluation.global_status(), summary.global_status);
        prop_assert_eq!(
            evaluation.partner_action_required(),
            summary.partner_action_required
        );
        prop_assert_eq!(evaluation.action_types(), &summary.action_types[..]);
        prop_assert_eq!(
            evaluation.pending_programs().collect::<Vec<_>>(),
            summary.pending_programs.iter().map(String::as_str).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_catalog_naming_more_fields_than_are_kept_on_the_stack_is_evaluated_the_same(
        data in testing::meter()
    ) {
        // One program in every region that asks for every field of the model.
        let mut programs = default_catalog();
        programs[0].transmission_regions = TransmissionRegion::VARIANTS
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        programs[0].required_fields = every_path();
        let compiled = CompiledCatalog::compile(&programs).expect("valid programs compile");
        prop_assert!(compiled.picks.len() > PICKED_ON_STACK);
        let text = encode(&data);
        let evaluation = compiled.evaluate(&text, &[]).unwrap();
        let expected = reevaluate(&programs, &decode(&text).unwrap(), &[]);
        prop_assert_eq!(evaluation.to_enrollments(), expected);
    }

    #[test]
    fn a_picked_field_is_the_value_the_meter_holds_at_its_path(data in testing::meter()) {
        let mut picks = Picks::default();
        let paths = every_path();
        let slots: Vec<usize> = paths.iter().map(|p| picks.add(p).unwrap()).collect();
        let text = encode(&data);
        let mut values = vec![None; picks.len()];
        picks.read(&text, &mut values).unwrap();
        for (path, slot) in paths.iter().zip(slots) {
            let picked = values[slot].map(|raw| serde_json::from_str::<Value>(raw).unwrap());
            prop_assert_eq!(picked.as_ref(), data.get(path), "{}", path);
        }
    }

    #[test]
    fn a_damaged_text_is_refused_exactly_when_the_decoder_refuses_it(
        data in testing::meter(),
        how in damage(),
    ) {
        let mut picks = Picks::default();
        for path in ["utility.utility_name", "site.site_devices.1.model", "load_types"] {
            picks.add(path).unwrap();
        }
        let text = damaged(&encode(&data), &how);
        let mut values = vec![None; picks.len()];
        prop_assert_eq!(
            picks.read(&text, &mut values).is_err(),
            decode(&text).is_err(),
            "{}",
            text
        );
    }
}

#[test]
fn a_path_names_a_slot_only_when_it_reaches_a_leaf_of_the_model() {
    let mut picks = Picks::default();
    let city = picks.add("customer.city").unwrap();
    assert_eq!(picks.add("customer.city"), Some(city));
    let model = picks.add("site.site_devices.1.model").unwrap();
    assert_eq!(picks.add("site.site_devices.01.model"), Some(model));
    assert_ne!(picks.add("site.site_devices.0.model"), Some(model));
    for not_a_leaf in [
        "customer",
        "customer.nope",
        "partner_reference.x",
        "site.site_devices",
        "site.site_devices.x.model",
        "site.site_devices.0",
        "",
    ] {
        assert_eq!(picks.add(not_a_leaf), None, "{not_a_leaf}");
    }
}
