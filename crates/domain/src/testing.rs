//! Generators for property tests, here and in the crates that store what the domain
//! decides (the `testing` feature): valid meters that exercise what programs look at,
//! catalogs of programs with every kind of criterion and conditional rule, and the
//! enrollments and idle periods a meter may have from before.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use serde_json::{Map, Value, json};
use strum::VariantNames;

use crate::eligibility::Reason;
use crate::enrollment::{Abstention, Enrollment};
use crate::enums::{
    CblMethod, CompanyType, CustomerClassification, DeviceType, DispatchOption, EnrollmentStatus,
    LoadType, MeterType, NemType, ParticipationPreference, TransmissionRegion, Utility,
};
use crate::job::Pending;
use crate::meter::MeterData;
use crate::program::{
    Activation, Condition, DEFAULT_CATALOG, Delivery, Every, Program, Rule, parse_catalog,
};

/// Dates on both sides of the default catalog's 2023-06-30.
const DATES: &[&str] = &[
    "2021-01-01",
    "2023-06-29",
    "2023-06-30",
    "2023-07-01",
    "2025-12-31",
];

/// Free text, some of it with characters JSON escapes.
const TEXTS: &[&str] = &["Acme", "M\"1", "B\\2", "Zoë", "A-1", "x/y"];

/// The values conditions compare with, some of which meters hold.
const EQUALS: &[&str] = &[
    "UTILITY_METER",
    "DEVICE",
    "Acme",
    "M\"1",
    "true",
    "false",
    "5",
    "2.5",
    "NEM3",
    "PGE",
    "2023-07-01",
    "[\"HVAC\"]",
];

/// The leaf fields programs may name, a few of them twice over (two spellings of one
/// position, an item of a list).
const PATHS: &[&str] = &[
    "device.device_type",
    "device.device_serial_number",
    "device.device_manufacturer",
    "device.device_model",
    "device.install_date",
    "device.battery_power_capacity_kw",
    "device.battery_energy_capacity_kwh",
    "device.battery_duration_hours",
    "device.permission_to_operate_date",
    "site.number_of_devices",
    "site.on_site_fossil_generator",
    "site.site_devices.0.model",
    "site.site_devices.1.model",
    "site.site_devices.01.model",
    "site.site_devices.2.serial_number",
    "caiso.is_receiving_sgip_funding",
    "caiso.nem_type",
    "isone.in_connected_solutions",
    "nyiso.cbl_method",
    "nyiso.company_type",
    "utility.utility_name",
    "utility.electric_service_account_number",
    "utility.utility_meter_serial_number",
    "utility.tariff",
    "utility.load_serving_entity",
    "customer.street_2",
    "customer.end_customer_company_name",
    "customer.dispatch_option",
    "customer.partner_offering_date",
    "customer.billing.city",
    "customer_group",
    "tags",
    "load_types",
    "meter_type",
    "customer_classification",
];

/// The date fields `after` and `before` apply to.
const DATE_PATHS: &[&str] = &[
    "device.install_date",
    "device.permission_to_operate_date",
    "customer.partner_offering_date",
];

/// Utilities of the market regions and a few others.
const UTILITIES: &[&str] = &[
    "PGE",
    "SCE",
    "SDGE",
    "CECONY",
    "NATGRID",
    "EVERSOURCE",
    "ONCOR",
    "COMED",
    "TVA",
    "SRP",
    "PSE",
    "OTHER",
];

fn one_of(values: &'static [&'static str]) -> BoxedStrategy<Value> {
    select(values).prop_map(|v| json!(v)).boxed()
}

/// Numbers as partners send them: whole, or in hundredths.
fn number(max: u32) -> BoxedStrategy<Value> {
    prop_oneof![
        (0..=max).prop_map(|n| json!(n)),
        (0..=max * 100).prop_map(|n| json!(f64::from(n) / 100.0)),
    ]
    .boxed()
}

/// The optional fields of a meter, each with the values it takes.
fn optional_fields() -> Vec<(&'static str, BoxedStrategy<Value>)> {
    vec![
        ("device.device_type", one_of(DeviceType::VARIANTS)),
        ("device.device_serial_number", one_of(TEXTS)),
        ("device.device_manufacturer", one_of(TEXTS)),
        ("device.device_model", one_of(TEXTS)),
        ("device.install_date", one_of(DATES)),
        ("device.battery_power_capacity_kw", number(100)),
        ("device.battery_energy_capacity_kwh", number(100)),
        (
            "device.battery_duration_hours",
            (0..=10u8).prop_map(|n| json!(n)).boxed(),
        ),
        ("device.permission_to_operate_date", one_of(DATES)),
        (
            "site.number_of_devices",
            (0..10u8).prop_map(|n| json!(n)).boxed(),
        ),
        (
            "site.on_site_fossil_generator",
            any::<bool>().prop_map(Value::Bool).boxed(),
        ),
        ("site.load_zone", one_of(TEXTS)),
        ("site.site_devices", site_devices()),
        (
            "caiso.is_receiving_sgip_funding",
            any::<bool>().prop_map(Value::Bool).boxed(),
        ),
        ("caiso.nem_type", one_of(NemType::VARIANTS)),
        (
            "isone.in_connected_solutions",
            any::<bool>().prop_map(Value::Bool).boxed(),
        ),
        ("nyiso.cbl_method", one_of(CblMethod::VARIANTS)),
        ("nyiso.company_type", one_of(CompanyType::VARIANTS)),
        (
            "utility.utility_name",
            prop_oneof![3 => one_of(UTILITIES), 1 => one_of(Utility::VARIANTS)].boxed(),
        ),
        ("utility.electric_service_account_number", one_of(TEXTS)),
        ("utility.utility_meter_serial_number", one_of(TEXTS)),
        ("utility.tariff", one_of(TEXTS)),
        ("utility.load_serving_entity", one_of(TEXTS)),
        ("utility.voltage", one_of(TEXTS)),
        ("customer.street_2", one_of(&["Unit 5", "Apt. 2"])),
        ("customer.end_customer_name", one_of(TEXTS)),
        (
            "customer.end_customer_company_name",
            one_of(&["Acme Inc", "Zoë & Co"]),
        ),
        ("customer.dispatch_option", one_of(DispatchOption::VARIANTS)),
        ("customer.partner_offering_date", one_of(DATES)),
        (
            "customer.billing",
            Just(
                json!({"street_1": "2 High St", "postal_code": "10001", "city": "Albany",
                        "state_or_province_code": "NY", "country_code": "US"}),
            )
            .boxed(),
        ),
        ("customer_group", one_of(&["north", "south (2)"])),
        (
            "tags",
            one_of(&["a", "b c"]).prop_map(|t| json!([t])).boxed(),
        ),
    ]
}

fn site_devices() -> BoxedStrategy<Value> {
    let device = (
        one_of(DeviceType::VARIANTS),
        option::of(one_of(TEXTS)),
        option::of(one_of(TEXTS)),
    )
        .prop_map(|(device_type, model, serial)| {
            let mut item = Map::new();
            item.insert("device_type".into(), device_type);
            if let Some(model) = model {
                item.insert("model".into(), model);
            }
            if let Some(serial) = serial {
                item.insert("serial_number".into(), serial);
            }
            Value::Object(item)
        });
    vec(device, 1..4).prop_map(Value::Array).boxed()
}

/// Sets the value at a dotted path, making the objects on the way.
fn put(object: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            object.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let inner = object
                .entry(head.to_owned())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("an object on the way");
            put(inner, rest, value);
        }
    }
}

/// A valid meter in any region, of any class and type, with few, some or most of the
/// fields programs ask for.
pub fn meter() -> impl Strategy<Value = MeterData> {
    prop_oneof![meter_with(0.2), meter_with(0.6), meter_with(0.95)]
}

/// A meter with each optional field present with the probability `filled`.
fn meter_with(filled: f64) -> impl Strategy<Value = MeterData> {
    let optional: Vec<BoxedStrategy<Option<(&'static str, Value)>>> = optional_fields()
        .into_iter()
        .map(|(path, values)| option::weighted(filled, values.prop_map(move |v| (path, v))).boxed())
        .collect();
    (
        select(TransmissionRegion::VARIANTS),
        select(CustomerClassification::VARIANTS),
        select(MeterType::VARIANTS),
        subsequence(LoadType::VARIANTS, 1..4),
        optional,
    )
        .prop_map(|(region, class, meter_type, loads, optional)| {
            let mut object = json!({
                "partner_reference": "meter-1",
                "transmission_region": region,
                "customer_classification": class,
                "load_types": loads,
                "meter_type": meter_type,
                "customer": {"street_1": "1 Main St", "postal_code": "94105",
                             "city": "Springfield", "state_or_province_code": "CA",
                             "country_code": "US"},
            });
            let map = object.as_object_mut().expect("an object");
            for (path, value) in optional.into_iter().flatten() {
                put(map, path, value);
            }
            MeterData::parse(object).expect("the generator makes valid meters")
        })
}

/// A condition of each kind a program can state.
fn condition() -> impl Strategy<Value = Condition> {
    let on = |field: &'static str| Condition {
        field: field.to_owned(),
        after: None,
        before: None,
        equals: None,
    };
    prop_oneof![
        (select(PATHS), select(EQUALS)).prop_map(move |(field, equals)| Condition {
            equals: Some(equals.to_owned()),
            ..on(field)
        }),
        (select(DATE_PATHS), select(DATES), any::<bool>()).prop_map(move |(field, date, after)| {
            let date = Some(date.to_owned());
            if after {
                Condition {
                    after: date,
                    ..on(field)
                }
            } else {
                Condition {
                    before: date,
                    ..on(field)
                }
            }
        }),
        (
            select(DATE_PATHS),
            select(DATES),
            select(DATES),
            option::of(select(DATES))
        )
            .prop_map(move |(field, after, before, equals)| Condition {
                after: Some(after.to_owned()),
                before: Some(before.to_owned()),
                equals: equals.map(str::to_owned),
                ..on(field)
            }),
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    (vec(select(PATHS), 1..4), option::of(condition())).prop_map(|(any_of, when)| Rule {
        any_of: any_of.into_iter().map(str::to_owned).collect(),
        when,
    })
}

fn program() -> impl Strategy<Value = Program> {
    (
        subsequence(TransmissionRegion::VARIANTS, 1..4),
        some_of(CustomerClassification::VARIANTS, 1),
        some_of(MeterType::VARIANTS, 2),
        some_of(LoadType::VARIANTS, 6),
        some_of(UTILITIES, 6),
        vec(select(PATHS), 0..4),
        vec(rule(), 0..3),
    )
        .prop_map(
            |(regions, classes, types, loads, utilities, required, rules)| Program {
                identifier: String::new(),
                name: "A program".to_owned(),
                description: String::new(),
                transmission_regions: parsed(&regions),
                customer_classifications: parsed(&classes),
                meter_types: parsed(&types),
                load_types: parsed(&loads),
                utilities: parsed(&utilities),
                required_fields: required.into_iter().map(str::to_owned).collect(),
                conditional_fields: rules,
                delivery: Delivery {
                    every: Some(Every::Month),
                    start: None,
                    end: None,
                    deadline_days_before: 15,
                    activation: Activation::Start,
                    periods: Vec::new(),
                },
            },
        )
}

/// Any of the values (an empty list, for a criterion: any value) half the time, else
/// up to `most` of them.
fn some_of(values: &'static [&'static str], most: usize) -> BoxedStrategy<Vec<&'static str>> {
    prop_oneof![Just(Vec::new()), subsequence(values, 1..=most)].boxed()
}

fn parsed<T: std::str::FromStr>(names: &[&str]) -> Vec<T> {
    names
        .iter()
        .map(|n| n.parse().ok().expect("a variant's name"))
        .collect()
}

/// The default catalog, or programs of any criteria and rules (each one a definition
/// `Program::check` accepts), in the order a partner's catalog is read.
pub fn catalog() -> impl Strategy<Value = Vec<Program>> {
    let generated = vec(program(), 1..7).prop_map(|programs| {
        programs
            .into_iter()
            .enumerate()
            .map(|(i, program)| Program {
                identifier: format!("P-{i}"),
                ..program
            })
            .inspect(|p| p.check().expect("the generator makes valid programs"))
            .collect::<Vec<_>>()
    });
    prop_oneof![
        1 => Just(parse_catalog(DEFAULT_CATALOG).expect("the default catalog")),
        2 => generated,
    ]
}

/// Enrollments a meter may hold from before: in the catalog's programs and in programs
/// it no longer has, of every status, a program sometimes listed twice.
pub fn previous(programs: &[Program]) -> impl Strategy<Value = Vec<Enrollment>> + use<> {
    let mut ids: Vec<String> = programs.iter().map(|p| p.identifier.clone()).collect();
    ids.push("RETIRED-PROGRAM".to_owned());
    let enrollment = (
        select(ids),
        select(vec![
            EnrollmentStatus::Active,
            EnrollmentStatus::Active,
            EnrollmentStatus::Active,
            EnrollmentStatus::Pending,
            EnrollmentStatus::Eligible,
            EnrollmentStatus::Ineligible,
            EnrollmentStatus::NotParticipating,
        ]),
        vec(select(PATHS), 0..2),
        subsequence(
            vec![Reason::Region, Reason::Utility, Reason::Archived],
            0..2,
        ),
        option::of(1_700_000_000_000i64..1_800_000_000_000),
    )
        .prop_map(
            |(program, status, missing, reasons, activated_at)| Enrollment {
                program,
                status,
                missing: missing.into_iter().map(str::to_owned).collect(),
                reasons,
                activated_at,
            },
        );
    prop_oneof![Just(Vec::new()), vec(enrollment, 1..8)]
}

/// Idle and disenrolled periods around `now` (ms), or none.
pub fn abstentions(now: i64) -> impl Strategy<Value = Vec<Abstention>> {
    const DAY: i64 = 86_400_000;
    let abstention = (any::<bool>(), -400i64..400, option::of(1i64..400)).prop_map(
        move |(idle, start, length)| Abstention {
            preference: if idle {
                ParticipationPreference::Idle
            } else {
                ParticipationPreference::Disenroll
            },
            start: now + start * DAY,
            end: length.map(|l| now + (start + l) * DAY),
            reason: None,
        },
    );
    prop_oneof![Just(Vec::new()), vec(abstention, 1..3)]
}

/// The assets of a chunk with these references, numbered from 0 in file order.
pub fn pending(references: &[&str]) -> Vec<Pending> {
    references
        .iter()
        .enumerate()
        .map(|(seq, r)| Pending {
            seq: seq as u64,
            partner_reference: (*r).to_owned(),
        })
        .collect()
}
