//! Reading a request body of meters, JSON or CSV, as a stream: each asset is validated as
//! it is read and handed on, so memory stays flat in the size of the body. Any problem
//! rejects the whole request, and every problem is listed (up to a cap).

mod bounded;
mod csv_body;
#[cfg(test)]
mod fuzz;
mod json_body;
mod strict;

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::ops::ControlFlow;

use serde::Serialize;
use serde_json::Value;

pub use self::strict::{DUPLICATE_KEY, DocumentError, parse_document};
pub use csv_body::{MAX_CELL_BYTES, MAX_LINE_BYTES};
pub use json_body::MAX_ASSET_BYTES;

use crate::compact::CompactAsset;
use crate::csv_layout::CsvLayout;
use crate::enums::{CustomerClassification, MeterType, TransmissionRegion};
use crate::meter::{FieldProblem, MeterData};

/// How many problems a rejection lists; the total is always counted.
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// Body formats of a meter upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// One problem with a request, located by JSON index or CSV row where possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub message: String,
    /// 0-based index in the `assets` array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_index: Option<usize>,
    /// 1-based row of the file, the header being row 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv_row: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem_field: Option<String>,
    /// What was probably meant: the field or value nearest to the one given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl Problem {
    /// A problem with the body as a whole.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            json_index: None,
            csv_row: None,
            problem_field: None,
            suggestion: None,
        }
    }
}

/// The problems of a rejected request: the first [`MAX_LISTED_PROBLEMS`] and the total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    pub listed: Vec<Problem>,
    pub total: usize,
}

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED_PROBLEMS {
            self.listed.push(problem);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn single(problem: Problem) -> Self {
        let mut problems = Self::default();
        problems.push(problem);
        problems
    }
}

/// What an accepted body held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    pub assets_count: usize,
    pub transmission_regions: BTreeSet<TransmissionRegion>,
    pub customer_classifications: BTreeSet<CustomerClassification>,
    pub meter_types: BTreeSet<MeterType>,
}

impl Accepted {
    fn count(&mut self, region: TransmissionRegion, class: CustomerClassification, t: MeterType) {
        self.assets_count += 1;
        self.transmission_regions.insert(region);
        self.customer_classifications.insert(class);
        self.meter_types.insert(t);
    }
}

/// Why a body was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the request is invalid")]
    Rejected(Problems),
    /// Reading the body failed (the client went away, or the body is too large).
    #[error("reading the request body failed: {0}")]
    Read(#[source] io::Error),
    /// The sink asked to stop.
    #[error("the upload was stopped")]
    Stopped,
}

/// Reads every asset of a body, validating each. Valid assets reach `sink` in order until
/// the first problem; after that the rest is still read and checked, so that every problem
/// can be listed, but nothing more is handed on.
pub fn read_assets<R: Read>(
    format: Format,
    body: R,
    sink: &mut dyn FnMut(MeterData) -> ControlFlow<()>,
) -> Result<Accepted, IntakeError> {
    let mut located = |_: usize, data: MeterData| sink(data);
    read(format, body, Sink::Data(&mut located), true)
}

/// Like [`read_assets`], with each asset in the compact form a job stores: what a bulk
/// upload keeps. Valid CSV rows are written straight into that form.
pub fn read_compact_assets<R: Read>(
    format: Format,
    body: R,
    sink: &mut dyn FnMut(CompactAsset) -> ControlFlow<()>,
) -> Result<Accepted, IntakeError> {
    read(format, body, Sink::Compact(sink), true)
}

/// Like [`read_assets`], but every valid asset reaches `sink`, problems or not, with its
/// position (the JSON index, or the CSV row): for dry runs that report on each asset.
pub fn read_all_assets<R: Read>(
    format: Format,
    body: R,
    sink: &mut dyn FnMut(usize, MeterData) -> ControlFlow<()>,
) -> Result<Accepted, IntakeError> {
    read(format, body, Sink::Data(sink), false)
}

fn read<R: Read>(
    format: Format,
    body: R,
    sink: Sink<'_>,
    stop_handing_on_problem: bool,
) -> Result<Accepted, IntakeError> {
    let mut run = Run {
        sink,
        problems: Problems::default(),
        accepted: Accepted::default(),
        stopped: false,
        stop_handing_on_problem,
    };
    match format {
        Format::Json => json_body::read_json(body, &mut run)?,
        Format::Csv => csv_body::read_csv(body, &mut run)?,
    }
    if run.stopped {
        return Err(IntakeError::Stopped);
    }
    if run.problems.is_empty() && run.accepted.assets_count == 0 {
        run.problems.push(Problem::general(match format {
            Format::Json => "assets must hold at least one meter",
            Format::Csv => "the file has a header but no rows of meters",
        }));
    }
    if run.problems.is_empty() {
        Ok(run.accepted)
    } else {
        Err(IntakeError::Rejected(run.problems))
    }
}

/// Validates one asset outside of a batch (the single-meter endpoint).
pub fn parse_one(value: Value) -> Result<MeterData, Problems> {
    MeterData::parse(value).map_err(|found| {
        let mut problems = Problems::default();
        for p in found {
            problems.push(Problem {
                message: p.message,
                json_index: None,
                csv_row: None,
                problem_field: Some(p.path),
                suggestion: p.suggestion,
            });
        }
        problems
    })
}

/// Where valid assets go, and in which form.
enum Sink<'s> {
    Data(&'s mut dyn FnMut(usize, MeterData) -> ControlFlow<()>),
    Compact(&'s mut dyn FnMut(CompactAsset) -> ControlFlow<()>),
}

struct Run<'s> {
    sink: Sink<'s>,
    problems: Problems,
    accepted: Accepted,
    stopped: bool,
    stop_handing_on_problem: bool,
}

impl Run<'_> {
    /// Whether a valid asset read now is handed on.
    fn handing(&self) -> bool {
        !self.stopped && (!self.stop_handing_on_problem || self.problems.is_empty())
    }

    /// Takes a CSV row straight into the compact form, when that is what the sink wants
    /// and the row is valid; false if the row needs its document built.
    fn take_compact_row(&mut self, layout: &CsvLayout, record: &csv::StringRecord) -> bool {
        let handing = self.handing();
        let Sink::Compact(sink) = &mut self.sink else {
            return false;
        };
        let Some(asset) = layout.row_to_compact(record) else {
            return false;
        };
        self.accepted.count(
            asset.transmission_region,
            asset.customer_classification,
            asset.meter_type,
        );
        if handing && sink(asset).is_break() {
            self.stopped = true;
        }
        true
    }

    /// Validates an asset and hands it on if it is valid and nothing `earlier` (problems
    /// found while reading it, as path and message) refuses it.
    fn take(
        &mut self,
        position: usize,
        value: Value,
        earlier: Vec<(String, String)>,
        locate: impl Fn(String, String) -> Problem,
    ) {
        let parsed = MeterData::parse(value);
        if !earlier.is_empty() {
            self.accepted.assets_count += 1;
            let later = parsed.err().unwrap_or_default();
            let earlier = earlier.into_iter().map(|(path, message)| FieldProblem {
                path,
                message,
                suggestion: None,
            });
            for found in earlier.chain(later) {
                self.push_located(found, &locate);
            }
            return;
        }
        match parsed {
            Ok(data) => {
                self.accepted.count(
                    data.transmission_region(),
                    data.customer_classification(),
                    data.meter_type(),
                );
                let handing = self.handing();
                let flow = match &mut self.sink {
                    _ if !handing => ControlFlow::Continue(()),
                    Sink::Data(sink) => sink(position, data),
                    Sink::Compact(sink) => sink(CompactAsset::of(&data)),
                };
                if flow.is_break() {
                    self.stopped = true;
                }
            }
            Err(found) => {
                self.accepted.assets_count += 1;
                for found in found {
                    self.push_located(found, &locate);
                }
            }
        }
    }

    /// A field's problem, located in the request, with what was probably meant.
    fn push_located(&mut self, found: FieldProblem, locate: &impl Fn(String, String) -> Problem) {
        let mut problem = locate(found.path, found.message);
        problem.suggestion = found.suggestion;
        self.problems.push(problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "partner_reference,transmission_region,customer_classification,load_types,meter_type,street_1,postal_code,city,state_or_province_code,country_code";

    fn collect(format: Format, body: &[u8]) -> Result<(Accepted, Vec<MeterData>), Problems> {
        let mut seen = Vec::new();
        let result = read_assets(format, body, &mut |data| {
            seen.push(data);
            ControlFlow::Continue(())
        });
        match result {
            Ok(accepted) => Ok((accepted, seen)),
            Err(IntakeError::Rejected(problems)) => Err(problems),
            Err(other) => panic!("unexpected {other}"),
        }
    }

    fn json_asset(reference: &str) -> String {
        format!(
            r#"{{"partner_reference":"{reference}","transmission_region":"CAISO","customer_classification":"RESIDENTIAL","load_types":["HVAC"],"meter_type":"DEVICE","customer":{{"street_1":"1 Main St","postal_code":"94105","city":"San Francisco","state_or_province_code":"CA","country_code":"US"}}}}"#
        )
    }

    #[test]
    fn a_csv_with_bom_crlf_quoted_commas_and_accents_is_read() {
        let body = format!(
            "\u{feff}{HEADER}\r\nref-1,CAISO,RESIDENTIAL,\"HVAC,EV_CHARGING\",DEVICE,\"12 Rue de l'Église, Apt 3\",94105,San José,CA,US\r\n"
        );
        let (accepted, meters) = collect(Format::Csv, body.as_bytes()).unwrap();
        assert_eq!(accepted.assets_count, 1);
        assert_eq!(
            meters[0].get("customer.street_1").unwrap(),
            "12 Rue de l'Église, Apt 3"
        );
        assert_eq!(meters[0].get("customer.city").unwrap(), "San José");
        assert_eq!(meters[0].load_types().len(), 2);
    }

    #[test]
    fn csv_problems_carry_the_row_and_the_column() {
        let body = format!(
            "{HEADER}\nref-1,CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main,94105,SF,CA,US\nref-2,MARS,RESIDENTIAL,HVAC,DEVICE,1 Main,9410,SF,CA,US\nref-3,CAISO\n"
        );
        let problems = collect(Format::Csv, body.as_bytes()).unwrap_err();
        let found: Vec<(Option<usize>, Option<&str>)> = problems
            .listed
            .iter()
            .map(|p| (p.csv_row, p.problem_field.as_deref()))
            .collect();
        assert_eq!(
            found,
            vec![
                (Some(3), Some("postal_code")),
                (Some(3), Some("transmission_region")),
                (Some(4), None),
            ]
        );
    }

    #[test]
    fn rows_after_a_problem_are_checked_but_not_handed_on() {
        let body = format!(
            "{HEADER}\nab,CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main,94105,SF,CA,US\nref-2,CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main,94105,SF,CA,US\n"
        );
        let mut handed = 0;
        let result = read_assets(Format::Csv, body.as_bytes(), &mut |_| {
            handed += 1;
            ControlFlow::Continue(())
        });
        assert!(matches!(result, Err(IntakeError::Rejected(p)) if p.total == 1));
        assert_eq!(handed, 0);
    }

    /// What the compact reader hands on or refuses, next to what the document reader
    /// does with the same body.
    fn both_readers(format: Format, body: &[u8]) -> [Result<Vec<CompactAsset>, Problems>; 2] {
        let compact = {
            let mut seen = Vec::new();
            match read_compact_assets(format, body, &mut |asset| {
                seen.push(asset);
                ControlFlow::Continue(())
            }) {
                Ok(_) => Ok(seen),
                Err(IntakeError::Rejected(problems)) => Err(problems),
                Err(other) => panic!("unexpected {other}"),
            }
        };
        let documents =
            collect(format, body).map(|(_, meters)| meters.iter().map(CompactAsset::of).collect());
        [compact, documents]
    }

    #[test]
    fn the_compact_reader_hands_on_and_refuses_what_the_document_reader_does() {
        let valid = format!(
            "{HEADER},site.site_devices.2.device_type,battery_duration_hours\n\
             ref-1,CAISO,RESIDENTIAL,\"HVAC, EV_CHARGING\",DEVICE,\"1 Main St, Apt 2\",94105,SF,CA,US,EV,4\n\
             ref-2 ,ERCOT,COMMERCIAL,OTHER,SUBMETER, 2 Elm ,78701-1234,Austin,tx,US,,\n"
        );
        let [compact, documents] = both_readers(Format::Csv, valid.as_bytes());
        assert_eq!(compact.as_ref().map(Vec::len), Ok(2));
        assert_eq!(compact, documents);

        let refused = format!(
            "{HEADER},site.site_devices.2.device_type\n\
             ref-1,CAISO,RESIDENTIAL,HVAC;HVAC,DEVICE,1 Main,94105,SF,CA,US,\n\
             ref-2,CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main,94105,SF,CA,US,TOASTER\n\
             ref-3,CAISO,RESIDENTIAL,HVAC,DEVICE,,94105,SF,CA,US,EV\n"
        );
        let [compact, documents] = both_readers(Format::Csv, refused.as_bytes());
        assert_eq!(compact.as_ref().map_err(|p| p.total), Err(3));
        assert_eq!(compact, documents);

        let json = format!(
            r#"{{"assets":[{},{}]}}"#,
            json_asset("j-1"),
            json_asset("j-2")
        );
        let [compact, documents] = both_readers(Format::Json, json.as_bytes());
        assert_eq!(compact.as_ref().map(Vec::len), Ok(2));
        assert_eq!(compact, documents);
    }

    #[test]
    fn structural_csv_problems_are_rejections() {
        for (body, expected) in [
            ("", "the body is empty"),
            (HEADER, "no rows"),
            ("ref-1,CAISO\n", "unknown column ref-1"),
            (
                "partner_reference,PARTNER_REFERENCE\nx,y\n",
                "names the same field",
            ),
        ] {
            let problems = collect(Format::Csv, body.as_bytes()).unwrap_err();
            assert!(
                problems.listed[0].message.contains(expected),
                "{body:?}: {:?}",
                problems.listed
            );
        }
        let mut not_utf8 = format!("{HEADER}\n").into_bytes();
        not_utf8
            .extend_from_slice(b"ref-1,CAISO,RESIDENTIAL,HVAC,DEVICE,\xff\xfe,94105,SF,CA,US\n");
        let problems = collect(Format::Csv, &not_utf8).unwrap_err();
        assert!(problems.listed[0].message.contains("UTF-8"));
        assert_eq!(problems.listed[0].csv_row, Some(2));
    }

    #[test]
    fn blank_rows_are_skipped() {
        let body = format!(
            "{HEADER}\n,,,,,,,,,\nref-1,CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main,94105,SF,CA,US\n"
        );
        let (accepted, _) = collect(Format::Csv, body.as_bytes()).unwrap();
        assert_eq!(accepted.assets_count, 1);
    }

    /// A body of `head` followed by `fill` repeated up to 64 MiB (far past every limit),
    /// which counts what was read from it.
    struct Endless {
        head: Vec<u8>,
        fill: u8,
        read: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let at = self.read.get();
            let n = buf.len().min((64 << 20) - at);
            for (i, byte) in buf[..n].iter_mut().enumerate() {
                *byte = self.head.get(at + i).copied().unwrap_or(self.fill);
            }
            self.read.set(at + n);
            Ok(n)
        }
    }

    /// Reads an endless body; the problems and how many bytes were read before the
    /// reading stopped.
    fn read_endless(format: Format, head: &str, fill: u8) -> (Problems, usize) {
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let body = Endless {
            head: head.as_bytes().to_vec(),
            fill,
            read: read.clone(),
        };
        match read_assets(format, body, &mut |_| ControlFlow::Continue(())) {
            Err(IntakeError::Rejected(problems)) => (problems, read.get()),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn an_endless_csv_row_is_refused_after_reading_little_more_than_the_line_limit() {
        let (problems, read) = read_endless(Format::Csv, &format!("{HEADER}\nref-1,"), b'a');
        assert_eq!(problems.total, 1);
        assert_eq!(problems.listed[0].csv_row, Some(2));
        assert!(
            problems.listed[0]
                .message
                .contains("longer than 1048576 bytes")
        );
        assert!(read < MAX_LINE_BYTES + 256 * 1024, "read {read} bytes");
    }

    #[test]
    fn an_endless_csv_header_is_refused_after_reading_little_more_than_the_line_limit() {
        let (problems, read) = read_endless(Format::Csv, "partner_reference,", b'b');
        assert_eq!(problems.listed[0].csv_row, Some(1));
        assert!(
            problems.listed[0]
                .message
                .starts_with("the header row is longer")
        );
        assert!(read < MAX_LINE_BYTES + 256 * 1024, "read {read} bytes");
    }

    #[test]
    fn an_endless_json_string_is_refused_after_reading_little_more_than_the_asset_limit() {
        let head = format!(
            r#"{{"assets": [{}, {{"partner_reference": ""#,
            json_asset("ref-1")
        );
        let (problems, read) = read_endless(Format::Json, &head, b'c');
        assert_eq!(problems.total, 1);
        assert_eq!(problems.listed[0].json_index, Some(1));
        assert!(
            problems.listed[0]
                .message
                .contains("longer than 1048576 bytes")
        );
        assert!(read < MAX_ASSET_BYTES + 256 * 1024, "read {read} bytes");
    }

    #[test]
    fn an_endless_json_key_outside_the_assets_is_refused_as_early() {
        let (problems, read) = read_endless(Format::Json, r#"{"assets": [], ""#, b'd');
        assert_eq!(problems.listed[0].json_index, None);
        assert!(problems.listed[0].message.contains("outside its assets"));
        assert!(read < MAX_ASSET_BYTES + 256 * 1024, "read {read} bytes");
    }

    #[test]
    fn a_body_of_many_assets_each_under_the_limit_is_read_whole() {
        // Together far past one asset's limit: the limit is per asset, not per body.
        let assets: Vec<String> = (0..12_000)
            .map(|n| json_asset(&format!("ref-{n}")))
            .collect();
        let body = format!(r#"{{"assets": [{}]}}"#, assets.join(","));
        assert!(body.len() > 2 * MAX_ASSET_BYTES);
        let (accepted, _) = collect(Format::Json, body.as_bytes()).unwrap();
        assert_eq!(accepted.assets_count, 12_000);
        let mut csv = HEADER.to_owned();
        for n in 0..40_000 {
            csv.push_str(&format!(
                "\nref-{n},CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main,94105,SF,CA,US"
            ));
        }
        assert!(csv.len() > 2 * MAX_LINE_BYTES);
        let (accepted, _) = collect(Format::Csv, csv.as_bytes()).unwrap();
        assert_eq!(accepted.assets_count, 40_000);
    }

    #[test]
    fn a_cell_longer_than_any_field_takes_is_named_and_the_other_rows_are_still_checked() {
        let long = "x".repeat(MAX_CELL_BYTES + 1);
        let body = format!(
            "{HEADER}\nref-1,CAISO,RESIDENTIAL,HVAC,DEVICE,{long},94105,SF,CA,US\nref-2,MARS,RESIDENTIAL,HVAC,DEVICE,1 Main,94105,SF,CA,US\n"
        );
        let problems = collect(Format::Csv, body.as_bytes()).unwrap_err();
        let found: Vec<(Option<usize>, Option<&str>)> = problems
            .listed
            .iter()
            .map(|p| (p.csv_row, p.problem_field.as_deref()))
            .collect();
        assert_eq!(
            found,
            vec![
                (Some(2), Some("street_1")),
                (Some(3), Some("transmission_region"))
            ]
        );
        assert!(problems.listed[0].message.contains("at most 4096 bytes"));
    }

    #[test]
    fn a_key_given_twice_in_a_json_asset_is_a_problem_naming_it() {
        let asset = json_asset("ref-1").replacen(
            r#""city":"San Francisco""#,
            r#""city":"San Francisco","city":"Oakland""#,
            1,
        );
        let body = format!(r#"{{"assets": [{}, {asset}]}}"#, json_asset("ref-0"));
        let problems = collect(Format::Json, body.as_bytes()).unwrap_err();
        assert_eq!(problems.total, 1, "{:?}", problems.listed);
        assert_eq!(problems.listed[0].json_index, Some(1));
        assert_eq!(
            problems.listed[0].problem_field.as_deref(),
            Some("customer.city")
        );
        assert_eq!(problems.listed[0].message, DUPLICATE_KEY);
    }

    #[test]
    fn control_characters_in_text_are_refused_in_csv_cells_and_nested_json_fields() {
        let body = format!(
            "{HEADER}\nref\u{0}1,CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main,94105,S\u{1}F,CA,US\n"
        );
        let problems = collect(Format::Csv, body.as_bytes()).unwrap_err();
        let fields: Vec<_> = problems
            .listed
            .iter()
            .map(|p| p.problem_field.as_deref())
            .collect();
        assert_eq!(fields, vec![Some("city"), Some("partner_reference")]);
        assert!(problems.listed[1].message.contains("U+0000"));

        let mut asset: Value = serde_json::from_str(&json_asset("ref-1")).unwrap();
        asset["nyiso"] = serde_json::json!({"partner_nyiso_resource_name": "x\u{0}y"});
        let body = serde_json::json!({"assets": [asset]}).to_string();
        let problems = collect(Format::Json, body.as_bytes()).unwrap_err();
        assert_eq!(
            problems.listed[0].problem_field.as_deref(),
            Some("nyiso.partner_nyiso_resource_name")
        );
    }

    #[test]
    fn json_assets_are_read_in_order_with_their_regions() {
        let body = format!(
            r#"{{"assets": [{}, {}]}}"#,
            json_asset("ref-1"),
            json_asset("ref-2")
        );
        let (accepted, meters) = collect(Format::Json, body.as_bytes()).unwrap();
        assert_eq!(accepted.assets_count, 2);
        assert_eq!(
            accepted
                .transmission_regions
                .into_iter()
                .collect::<Vec<_>>(),
            vec![TransmissionRegion::Caiso]
        );
        assert_eq!(meters[1].partner_reference(), "ref-2");
    }

    #[test]
    fn json_problems_carry_the_index_and_the_path() {
        let body = format!(
            r#"{{"assets": [{}, {{"customer": 3}}]}}"#,
            json_asset("ref-1")
        );
        let problems = collect(Format::Json, body.as_bytes()).unwrap_err();
        assert!(problems.listed.iter().all(|p| p.json_index == Some(1)));
        assert!(
            problems
                .listed
                .iter()
                .any(|p| p.problem_field.as_deref() == Some("customer"))
        );
    }

    #[test]
    fn structural_json_problems_are_rejections() {
        for (body, expected) in [
            ("", "the body is empty"),
            ("{}", "is required"),
            (r#"{"assets": {}}"#, "must be an array"),
            (r#"{"assets": "x"}"#, "must be an array"),
            (r#"{"assets": []}"#, "at least one meter"),
            (r#"{"assets": [], "extra": 1}"#, "unknown field"),
            (r#"[1, 2]"#, "not valid JSON"),
            (r#"{"assets": [}"#, "not valid JSON"),
            (r#"{"assets": []} trailing"#, "not valid JSON"),
        ] {
            let problems = collect(Format::Json, body.as_bytes()).unwrap_err();
            assert!(
                problems.listed[0].message.contains(expected),
                "{body}: {:?}",
                problems.listed
            );
        }
    }

    #[test]
    fn a_sink_that_stops_is_handed_nothing_more() {
        let mut body = HEADER.to_owned();
        for n in 0..1000 {
            body.push_str(&format!(
                "\nref-{n},CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main,94105,SF,CA,US"
            ));
        }
        let mut handed = 0;
        let result = read_assets(Format::Csv, body.as_bytes(), &mut |_| {
            handed += 1;
            if handed == 300 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(matches!(result, Err(IntakeError::Stopped)), "{result:?}");
        assert_eq!(handed, 300);
    }

    #[test]
    fn the_listed_problems_are_capped_but_all_are_counted() {
        let mut body = HEADER.to_owned();
        for _ in 0..1500 {
            body.push_str("\nab,CAISO,RESIDENTIAL,HVAC,DEVICE,1 Main,94105,SF,CA,US");
        }
        let problems = collect(Format::Csv, body.as_bytes()).unwrap_err();
        assert_eq!(problems.total, 1500);
        assert_eq!(problems.listed.len(), MAX_LISTED_PROBLEMS);
    }
}
