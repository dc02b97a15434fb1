//! A CSV template per program: the columns every meter needs and the columns the program
//! needs, with one example row the program accepts, so a partner can start a file from it.

use crate::csv_layout::CsvLayout;
use crate::eligibility::{Verdict, evaluate};
use crate::meter::MeterData;
use crate::program::Program;
use crate::schema::{Check, Field, Kind, LEAVES, Text, field_at};

/// A header row and one example row of the same length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub header: Vec<String>,
    pub example: Vec<String>,
}

impl Template {
    /// The header and the example row as a CSV file (CRLF line ends, as spreadsheets
    /// write them).
    pub fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        writer.write_record(&self.header)?;
        writer.write_record(&self.example)?;
        writer.into_inner().map_err(|e| e.into_error().into())
    }
}

/// The template of a program: the globally required columns, the program's required
/// columns, and the first choice of each of its unconditional "any of" requirements, in
/// the order of the upload layout.
pub fn csv_template(program: &Program) -> Template {
    let mut wanted: Vec<String> = program
        .required_fields
        .iter()
        .cloned()
        .chain(
            program
                .conditional_fields
                .iter()
                .filter(|rule| rule.when.is_none())
                .filter_map(|rule| rule.any_of.first().cloned()),
        )
        .collect();
    // Conditional requirements that hold for the example itself (a utility meter's
    // account number, say) are found by evaluating it; a few rounds settle it.
    let mut template = build(program, &wanted);
    for _ in 0..3 {
        let missing = match example_meter(&template).map(|meter| evaluate(program, &meter)) {
            Some(Verdict::Eligible(missing)) if !missing.is_empty() => missing,
            _ => break,
        };
        wanted.extend(missing);
        template = build(program, &wanted);
    }
    template
}

fn build(program: &Program, wanted: &[String]) -> Template {
    let leaves = LEAVES
        .iter()
        .filter(|leaf| globally_required(leaf.path) || wanted.iter().any(|w| w == leaf.path));
    let mut template = Template {
        header: Vec::new(),
        example: Vec::new(),
    };
    for leaf in leaves {
        template.header.push(leaf.field.column_name().to_owned());
        template
            .example
            .push(example_value(program, leaf.path, leaf.field));
    }
    template
}

/// The meter the example row describes, if it is valid.
fn example_meter(template: &Template) -> Option<MeterData> {
    let layout = CsvLayout::from_header(template.header.iter().map(String::as_str)).ok()?;
    MeterData::parse(layout.row_to_value(template.example.iter().map(String::as_str))).ok()
}

/// Whether a meter must have this field whatever program it joins: the field and every
/// object around it are required.
pub fn globally_required(path: &str) -> bool {
    let mut prefix = String::new();
    for segment in path.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(segment);
        if !field_at(&prefix).is_some_and(|f| f.required) {
            return false;
        }
    }
    true
}

/// A value of the field that the program accepts.
fn example_value(program: &Program, path: &str, field: &Field) -> String {
    let constrained = match path {
        "partner_reference" => Some("meter-0001".to_owned()),
        "transmission_region" => program.transmission_regions.first().map(|r| r.to_string()),
        "customer_classification" => program
            .customer_classifications
            .first()
            .map(|c| c.to_string()),
        "meter_type" => program.meter_types.first().map(|t| t.to_string()),
        "load_types" => program.load_types.first().map(|t| t.to_string()),
        "utility.utility_name" => program.utilities.first().map(|u| u.to_string()),
        _ => None,
    };
    constrained.unwrap_or_else(|| by_kind(field))
}

fn by_kind(field: &Field) -> String {
    match &field.kind {
        Kind::Enum(values) | Kind::EnumList(values) => values.first().copied().unwrap_or("").into(),
        Kind::Bool => "true".to_owned(),
        Kind::Number { min, max } => 10f64.clamp(*min, *max).to_string(),
        Kind::Integer { min, max } => 2020i64.clamp(*min, *max).to_string(),
        Kind::Date => "2025-06-01".to_owned(),
        Kind::Text(text) => by_name(field.name, text),
        Kind::Object(_) | Kind::ObjectList(_) | Kind::TextList { .. } => String::new(),
    }
}

fn by_name(name: &str, text: &Text) -> String {
    let value = match name {
        "street_1" => "1 Main St",
        "postal_code" => "94105",
        "city" => "San Francisco",
        "state_or_province_code" => "CA",
        "country_code" => "US",
        _ if matches!(text.check, Check::Email) => "operations@example.com",
        _ => "EXAMPLE-12345",
    };
    value.chars().take(text.max).collect()
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use super::*;
    use crate::intake::{Format, read_all_assets};
    use crate::program::{DEFAULT_CATALOG, parse_catalog};

    fn csv_line(cells: &[String]) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(cells).unwrap();
        String::from_utf8(writer.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn every_shipped_program_accepts_the_example_row_of_its_template() {
        for program in parse_catalog(DEFAULT_CATALOG).unwrap() {
            let template = csv_template(&program);
            assert_eq!(template.header.len(), template.example.len());
            let file = csv_line(&template.header) + &csv_line(&template.example);
            let mut meters = Vec::new();
            read_all_assets(Format::Csv, file.as_bytes(), &mut |_, meter| {
                meters.push(meter);
                ControlFlow::Continue(())
            })
            .unwrap_or_else(|e| panic!("{}: the template is rejected: {e:?}", program.identifier));
            assert_eq!(meters.len(), 1);
            let verdict = evaluate(&program, &meters[0]);
            assert!(
                verdict.is_ready(),
                "{}: the example is not ready to enroll: {verdict:?}",
                program.identifier
            );
        }
    }

    #[test]
    fn a_template_lists_the_global_columns_and_the_programs_own() {
        let programs = parse_catalog(DEFAULT_CATALOG).unwrap();
        let program = programs
            .iter()
            .find(|p| !p.required_fields.is_empty())
            .unwrap();
        let header = csv_template(program).header;
        for column in ["partner_reference", "transmission_region", "street_1"] {
            assert!(header.iter().any(|c| c == column), "{column} missing");
        }
        for path in &program.required_fields {
            let column = field_at(path).unwrap().column_name();
            assert!(header.iter().any(|c| c == column), "{column} missing");
        }
    }

    #[test]
    fn optional_objects_do_not_make_their_required_fields_global() {
        assert!(globally_required("customer.street_1"));
        assert!(!globally_required("customer.billing.street_1"));
        assert!(!globally_required("utility.utility_name"));
    }
}
