//! Fuzzing the intake: arbitrary bytes and mutated valid bodies, CSV and JSON, through
//! both readers. Whatever a body holds, reading it ends without a panic, refuses it with
//! located problems or hands on only valid assets, and the compact reader (what uploads
//! use) decides exactly as the document reader does. `PROPTEST_CASES` sets how many
//! bodies each property tries (256 by default; the README says how to run it longer).

use std::ops::ControlFlow;

use proptest::prelude::*;

use super::*;

const HEADER: &str = "partner_reference,transmission_region,customer_classification,load_types,meter_type,street_1,postal_code,city,state_or_province_code,country_code,device_serial_number,battery_energy_capacity_kwh,is_receiving_sgip_funding,site.site_devices.0.device_type";

fn csv_body(rows: usize) -> String {
    let mut body = format!("\u{feff}{HEADER}\r\n");
    for n in 0..rows {
        body.push_str(&format!(
            "ref-{n},CAISO,RESIDENTIAL,\"HVAC,EV_CHARGING\",DEVICE,\"1 Main St, Apt {n}\",94105,San José,CA,US,SN-{n},13.5,true,BATTERY\r\n"
        ));
    }
    body
}

fn json_body(assets: usize) -> String {
    let asset = |n: usize| {
        format!(
            r#"{{"partner_reference":"ref-{n}","transmission_region":"CAISO","customer_classification":"RESIDENTIAL","load_types":["HVAC"],"meter_type":"DEVICE","customer":{{"street_1":"1 Main St","postal_code":"94105","city":"San Francisco","state_or_province_code":"CA","country_code":"US"}},"device":{{"device_serial_number":"SN-{n}","battery_energy_capacity_kwh":13.5}},"site":{{"site_devices":[{{"device_type":"BATTERY"}}]}}}}"#
        )
    };
    let assets: Vec<String> = (0..assets).map(asset).collect();
    format!(r#"{{"assets": [{}]}}"#, assets.join(", "))
}

/// Bytes that mean something to a CSV or JSON parser, or to validation.
const SPECIAL: &[u8] = &[
    0x00, 0x01, b'\t', b'\n', b'\r', b'"', b',', b';', b'|', b'\\', b'{', b'}', b'[', b']', b':',
    b' ', 0x7f, 0xc3, 0xa9, 0xff, 0xef, 0xbb, 0xbf, b'e', b'-', b'.', b'0',
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, u8),
    Delete(usize, usize),
    Repeat(usize, usize),
    Flip(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![3 => proptest::sample::select(SPECIAL.to_vec()), 1 => any::<u8>()];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1..40usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), 1..200usize).prop_map(|(at, n)| Mutation::Repeat(at, n)),
        (any::<usize>(), byte).prop_map(|(at, b)| Mutation::Flip(at, b)),
    ]
}

fn mutate(mut body: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = body.len().max(1);
        match *m {
            Mutation::Insert(at, b) => body.insert(at % (body.len() + 1), b),
            Mutation::Delete(at, n) if !body.is_empty() => {
                let at = at % len;
                body.drain(at..(at + n).min(body.len()));
            }
            Mutation::Repeat(at, n) if !body.is_empty() => {
                let at = at % len;
                let piece = body[at..(at + n).min(body.len())].to_vec();
                body.splice(at..at, piece);
            }
            Mutation::Flip(at, b) if !body.is_empty() => body[at % len] = b,
            _ => {}
        }
    }
    body
}

/// What one reader made of a body: the assets it handed on, or the problems.
#[derive(Debug, PartialEq)]
enum Outcome {
    Accepted(Vec<CompactAsset>),
    Refused(Problems),
}

fn by_documents(format: Format, body: &[u8]) -> Outcome {
    let mut seen = Vec::new();
    match read_assets(format, body, &mut |data| {
        seen.push(CompactAsset::of(&data));
        ControlFlow::Continue(())
    }) {
        Ok(accepted) => {
            assert_eq!(accepted.assets_count, seen.len());
            Outcome::Accepted(seen)
        }
        Err(IntakeError::Rejected(problems)) => Outcome::Refused(problems),
        Err(other) => panic!("a body in memory cannot fail to be read: {other}"),
    }
}

fn by_compact_form(format: Format, body: &[u8]) -> Outcome {
    let mut seen = Vec::new();
    match read_compact_assets(format, body, &mut |asset| {
        seen.push(asset);
        ControlFlow::Continue(())
    }) {
        Ok(_) => Outcome::Accepted(seen),
        Err(IntakeError::Rejected(problems)) => Outcome::Refused(problems),
        Err(other) => panic!("a body in memory cannot fail to be read: {other}"),
    }
}

fn has_control_character(value: &Value) -> bool {
    match value {
        Value::String(s) => crate::text::control_character(s).is_some(),
        Value::Array(items) => items.iter().any(has_control_character),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| crate::text::control_character(k).is_some() || has_control_character(v)),
        _ => false,
    }
}

/// The invariants of any outcome.
fn check(format: Format, body: &[u8]) -> Result<(), TestCaseError> {
    let outcome = by_compact_form(format, body);
    prop_assert_eq!(&outcome, &by_documents(format, body));
    match outcome {
        Outcome::Accepted(assets) => {
            prop_assert!(!assets.is_empty());
            for asset in assets {
                // What is stored reads back as a valid meter, free of control characters.
                let decoded = crate::compact::decode(&asset.data);
                prop_assert!(decoded.is_ok(), "{}", asset.data);
                let value = Value::Object(decoded.unwrap().into_map());
                prop_assert!(MeterData::parse(value.clone()).is_ok());
                prop_assert!(!has_control_character(&value), "{}", value);
            }
        }
        Outcome::Refused(problems) => {
            prop_assert!(problems.total >= problems.listed.len());
            prop_assert!(!problems.listed.is_empty());
            prop_assert!(problems.listed.len() <= MAX_LISTED_PROBLEMS);
            // A line ends at LF, CR or both.
            let records = body.iter().filter(|b| matches!(b, b'\n' | b'\r')).count() + 2;
            for p in &problems.listed {
                prop_assert!(
                    p.csv_row.is_none_or(|row| (1..=records).contains(&row)),
                    "{:?}",
                    p
                );
                prop_assert!(!p.message.is_empty());
                // An echoed value is clipped: no message grows with the body.
                prop_assert!(p.message.len() < 1200, "{}", p.message.len());
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_bytes_are_accepted_or_refused_alike_by_both_readers(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        json in any::<bool>(),
    ) {
        check(if json { Format::Json } else { Format::Csv }, &body)?;
    }

    #[test]
    fn a_mutated_csv_file_is_accepted_or_refused_alike_by_both_readers(
        rows in 1..8usize,
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        check(Format::Csv, &mutate(csv_body(rows).into_bytes(), &mutations))?;
    }

    #[test]
    fn a_mutated_json_body_is_accepted_or_refused_alike_by_both_readers(
        assets in 1..5usize,
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        check(Format::Json, &mutate(json_body(assets).into_bytes(), &mutations))?;
    }
}

#[test]
fn the_bodies_mutated_by_the_fuzzer_are_valid_before_mutation() {
    assert!(
        matches!(by_compact_form(Format::Csv, csv_body(3).as_bytes()), Outcome::Accepted(a) if a.len() == 3)
    );
    assert!(
        matches!(by_compact_form(Format::Json, json_body(3).as_bytes()), Outcome::Accepted(a) if a.len() == 3)
    );
}
