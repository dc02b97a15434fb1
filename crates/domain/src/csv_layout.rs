//! The CSV layout of meters: which column holds which field, and how a row becomes a
//! `CreateMeter` document.
//!
//! A column is named by the field's CSV name (its leaf, or `billing_*` / `device_type` for
//! the leaves that repeat) or by its dotted path; `site.site_devices.N.<leaf>` addresses the
//! list of site devices. Names match case-insensitively, surrounding spaces ignored.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde_json::{Map, Number, Value};

use crate::schema::{Field, Kind, LEAVES, SITE_DEVICE};

/// Site devices addressable from CSV: `site.site_devices.0` to `site.site_devices.98`.
pub const MAX_SITE_DEVICES: usize = 99;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Leaf(usize),
    SiteDevice { index: usize, field: usize },
}

/// Every accepted column name, lower-cased, except the site-device ones.
static NAMES: LazyLock<HashMap<String, Target>> = LazyLock::new(|| {
    let mut names = HashMap::new();
    for (i, leaf) in LEAVES.iter().enumerate() {
        names.insert(leaf.field.column_name().to_owned(), Target::Leaf(i));
        names.insert(leaf.path.to_owned(), Target::Leaf(i));
    }
    names
});

fn parse_site_device(name: &str) -> Option<Target> {
    let rest = name.strip_prefix("site.site_devices.")?;
    let (index, leaf) = rest.split_once('.')?;
    let index: usize = index.parse().ok()?;
    let field = SITE_DEVICE.iter().position(|f| f.name == leaf)?;
    (index < MAX_SITE_DEVICES).then_some(Target::SiteDevice { index, field })
}

/// A problem with the header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderProblem {
    pub column: String,
    pub message: String,
}

/// The columns of one CSV file, resolved against the schema.
#[derive(Debug, Clone)]
pub struct CsvLayout {
    columns: Vec<(String, Target)>,
}

impl CsvLayout {
    /// Resolves a header row; unknown, empty and repeated columns are problems.
    pub fn from_header<'a>(
        header: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, Vec<HeaderProblem>> {
        let mut columns = Vec::new();
        let mut problems = Vec::new();
        let mut seen: HashMap<Target, String> = HashMap::new();
        for raw in header {
            let name = raw.trim();
            let key = name.to_lowercase();
            let target = NAMES.get(&key).copied().or_else(|| parse_site_device(&key));
            let Some(target) = target else {
                problems.push(HeaderProblem {
                    column: name.to_owned(),
                    message: unknown_column_message(name),
                });
                continue;
            };
            if let Some(first) = seen.insert(target, name.to_owned()) {
                problems.push(HeaderProblem {
                    column: name.to_owned(),
                    message: format!("names the same field as column {first}"),
                });
                continue;
            }
            columns.push((name.to_owned(), target));
        }
        if problems.is_empty() {
            Ok(Self { columns })
        } else {
            Err(problems)
        }
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Builds the `CreateMeter` document of one row. Empty cells are absent fields. Cells
    /// that do not convert to the field's type are kept as text, so that validation
    /// reports them with the field's own message.
    pub fn row_to_value<'a>(&self, cells: impl IntoIterator<Item = &'a str>) -> Value {
        let mut root = Map::new();
        let mut site_devices: BTreeMap<usize, Map<String, Value>> = BTreeMap::new();
        for ((_, target), cell) in self.columns.iter().zip(cells) {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            match *target {
                Target::Leaf(i) => {
                    let leaf = &LEAVES[i];
                    insert_at(&mut root, leaf.path, convert(leaf.field, cell));
                }
                Target::SiteDevice { index, field } => {
                    let field = &SITE_DEVICE[field];
                    site_devices
                        .entry(index)
                        .or_default()
                        .insert(field.name.to_owned(), convert(field, cell));
                }
            }
        }
        if !site_devices.is_empty() {
            let list = site_devices.into_values().map(Value::Object).collect();
            insert_at(&mut root, "site.site_devices", Value::Array(list));
        }
        Value::Object(root)
    }

    /// The column a problem at a dotted path belongs to: the file's own spelling when the
    /// column is present, otherwise the field's CSV name.
    pub fn column_for(&self, path: &str) -> String {
        let target = NAMES.get(path).copied().or_else(|| parse_site_device(path));
        if let Some(target) = target
            && let Some((name, _)) = self.columns.iter().find(|(_, t)| *t == target)
        {
            return name.clone();
        }
        match NAMES.get(path) {
            Some(Target::Leaf(i)) => LEAVES[*i].field.column_name().to_owned(),
            _ => path.to_owned(),
        }
    }
}

fn unknown_column_message(name: &str) -> String {
    if name.is_empty() {
        return "a column has no name".to_owned();
    }
    let mut message = format!("unknown column {name}");
    let known = LEAVES.iter().map(|l| l.field.column_name());
    if let Some(near) = crate::suggest::closest(name, known) {
        message.push_str(&format!(" (did you mean {near}?)"));
    }
    message
}

fn insert_at(root: &mut Map<String, Value>, path: &str, value: Value) {
    let mut segments: Vec<&str> = path.split('.').collect();
    let last = segments.pop().expect("paths are not empty");
    let mut current = root;
    for segment in segments {
        let entry = current
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        current = match entry {
            Value::Object(map) => map,
            _ => unreachable!("schema paths never pass through a leaf"),
        };
    }
    current.insert(last.to_owned(), value);
}

fn convert(field: &Field, cell: &str) -> Value {
    let text = || Value::String(cell.to_owned());
    match field.kind {
        Kind::Bool => parse_bool(cell).map_or_else(text, Value::Bool),
        Kind::Integer { .. } => cell.parse::<i64>().map_or_else(|_| text(), Value::from),
        Kind::Number { .. } => cell
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(text, Value::Number),
        Kind::EnumList(_) => Value::Array(
            split_list(cell)
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        ),
        _ => text(),
    }
}

/// The values of a list cell, separated by `,`, `;` or `|`.
pub fn split_list(cell: &str) -> impl Iterator<Item = &str> {
    cell.split([',', ';', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `true/false/yes/no/1/0`, any case.
pub fn parse_bool(cell: &str) -> Option<bool> {
    match cell.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaf_names_prefixed_names_and_dotted_paths_all_resolve() {
        let layout = CsvLayout::from_header([
            " Partner_Reference ",
            "billing_city",
            "customer.city",
            "device_type",
            "site.site_devices.1.model",
            "site.site_devices.0.device_type",
        ])
        .unwrap();
        let value = layout.row_to_value(["ref-1", "Boston", "Salem", "BATTERY", "M1", "EV"]);
        assert_eq!(
            value,
            json!({
                "partner_reference": "ref-1",
                "customer": {"city": "Salem", "billing": {"city": "Boston"}},
                "device": {"device_type": "BATTERY"},
                "site": {"site_devices": [{"device_type": "EV"}, {"model": "M1"}]}
            })
        );
    }

    #[test]
    fn cells_convert_to_the_field_type_and_empty_cells_are_absent() {
        let layout = CsvLayout::from_header([
            "load_types",
            "is_receiving_sgip_funding",
            "battery_duration_hours",
            "battery_energy_capacity_kwh",
            "street_2",
            "number_of_devices",
        ])
        .unwrap();
        let value =
            layout.row_to_value(["HVAC; EV_CHARGING|OTHER", "Yes", "4", "13.5", "  ", "two"]);
        assert_eq!(
            value,
            json!({
                "load_types": ["HVAC", "EV_CHARGING", "OTHER"],
                "caiso": {"is_receiving_sgip_funding": true},
                "device": {"battery_duration_hours": 4, "battery_energy_capacity_kwh": 13.5},
                "site": {"number_of_devices": "two"}
            })
        );
    }

    #[test]
    fn unknown_empty_and_repeated_columns_are_refused() {
        let problems =
            CsvLayout::from_header(["partner_refrence", "", "city", "customer.CITY"]).unwrap_err();
        assert_eq!(problems.len(), 3);
        assert!(
            problems[0]
                .message
                .contains("did you mean partner_reference")
        );
        assert_eq!(problems[1].message, "a column has no name");
        assert_eq!(problems[2].column, "customer.CITY");
        assert!(problems[2].message.contains("city"));
    }

    #[test]
    fn site_devices_beyond_the_limit_are_unknown_columns() {
        assert!(CsvLayout::from_header(["site.site_devices.98.model"]).is_ok());
        assert!(CsvLayout::from_header(["site.site_devices.99.model"]).is_err());
        assert!(CsvLayout::from_header(["site.site_devices.0.colour"]).is_err());
    }

    #[test]
    fn problems_point_at_the_files_own_column_name() {
        let layout = CsvLayout::from_header(["Customer.Postal_Code"]).unwrap();
        assert_eq!(
            layout.column_for("customer.postal_code"),
            "Customer.Postal_Code"
        );
        assert_eq!(layout.column_for("customer.billing.city"), "billing_city");
        assert_eq!(layout.column_for("partner_reference"), "partner_reference");
    }

    #[test]
    fn booleans_accept_the_documented_spellings() {
        for (cell, want) in [
            ("TRUE", true),
            ("no", false),
            ("1", true),
            ("0", false),
            ("Yes", true),
        ] {
            assert_eq!(parse_bool(cell), Some(want));
        }
        assert_eq!(parse_bool("maybe"), None);
    }
}
