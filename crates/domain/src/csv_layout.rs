//! The CSV layout of meters: which column holds which field, and how a row becomes a
//! `CreateMeter` document.
//!
//! A column is named by the field's CSV name (its leaf, or `billing_*` / `device_type` for
//! the leaves that repeat) or by its dotted path; `site.site_devices.N.<leaf>` addresses the
//! list of site devices. Names match case-insensitively, surrounding spaces ignored.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde_json::{Map, Number, Value};

use crate::meter::MeterData;
use crate::schema::{Field, Kind, LEAVES, SITE_DEVICE};

/// Site devices addressable from CSV: `site.site_devices.0` to `site.site_devices.98`.
pub const MAX_SITE_DEVICES: usize = 99;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Leaf(usize),
    SiteDevice {
        index: usize,
        field: usize,
    },
    /// A status column of an export, read past on upload.
    Status(usize),
}

/// The columns an export adds after the data: where each asset stands. An upload reads
/// past them, so an exported file can be fixed and uploaded again as it is.
pub const STATUS_COLUMNS: &[&str] = &[
    "job_id",
    "status",
    "status_detail.name",
    "status_detail.description",
    "meter_id",
    "created_at",
];

/// Every accepted column name, lower-cased, except the site-device ones.
static NAMES: LazyLock<HashMap<String, Target>> = LazyLock::new(|| {
    let mut names = HashMap::new();
    for (i, leaf) in LEAVES.iter().enumerate() {
        names.insert(leaf.field.column_name().to_owned(), Target::Leaf(i));
        names.insert(leaf.path.to_owned(), Target::Leaf(i));
    }
    for (i, name) in STATUS_COLUMNS.iter().enumerate() {
        names.insert((*name).to_owned(), Target::Status(i));
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
                    column: crate::suggest::clip(name),
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
                Target::Status(_) => {}
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

/// The header of an export: every data column (site devices up to `site_devices`), then
/// the [`STATUS_COLUMNS`].
pub fn export_header(site_devices: usize) -> Vec<String> {
    let mut header: Vec<String> = LEAVES
        .iter()
        .map(|leaf| leaf.field.column_name().to_owned())
        .collect();
    for index in 0..site_devices.min(MAX_SITE_DEVICES) {
        header.extend(
            SITE_DEVICE
                .iter()
                .map(|f| format!("site.site_devices.{index}.{}", f.name)),
        );
    }
    header.extend(STATUS_COLUMNS.iter().map(|c| (*c).to_owned()));
    header
}

/// The data cells of one meter in the order of [`export_header`] (without the status
/// cells): what an upload of the same row reads back as the same data.
pub fn export_cells(data: &MeterData, site_devices: usize) -> Vec<String> {
    let mut cells: Vec<String> = LEAVES
        .iter()
        .map(|leaf| data.get(leaf.path).map(cell).unwrap_or_default())
        .collect();
    for index in 0..site_devices.min(MAX_SITE_DEVICES) {
        for field in SITE_DEVICE {
            let path = format!("site.site_devices.{index}.{}", field.name);
            cells.push(data.get(&path).map(cell).unwrap_or_default());
        }
    }
    cells
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn unknown_column_message(name: &str) -> String {
    if name.is_empty() {
        return "a column has no name".to_owned();
    }
    let mut message = format!("unknown column {}", crate::suggest::clip(name));
    let known = LEAVES.iter().map(|l| l.field.column_name());
    if let Some(near) = crate::suggest::closest(name, known) {
        message.push_str(&format!(" (did you mean {near}?)"));
    }
    message
}

fn insert_at(root: &mut Map<String, Value>, path: &str, value: Value) {
    let (parents, last) = path.rsplit_once('.').unwrap_or(("", path));
    let mut current = root;
    // Most cells land in an object an earlier cell made: look it up before making a key.
    for segment in parents.split('.').filter(|s| !s.is_empty()) {
        if !current.contains_key(segment) {
            current.insert(segment.to_owned(), Value::Object(Map::new()));
        }
        current = match current.get_mut(segment) {
            Some(Value::Object(map)) => map,
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
    fn an_exported_row_reads_back_as_the_same_data() {
        let original = serde_json::json!({
            "partner_reference": "ref-9",
            "transmission_region": "ISONE",
            "customer_classification": "COMMERCIAL",
            "load_types": ["HVAC", "LIGHTING"],
            "meter_type": "SUBMETER",
            "customer": {
                "street_1": "1 Elm St, Suite 4", "postal_code": "02110", "city": "Boston",
                "state_or_province_code": "MA", "country_code": "US",
                "is_in_wholesale_capacity_market": false,
                "billing": {"street_1": "PO Box 7", "postal_code": "02111", "city": "Boston",
                            "state_or_province_code": "MA", "country_code": "US"}
            },
            "device": {"battery_energy_capacity_kwh": 13.5, "battery_duration_hours": 4,
                       "install_date": "2024-05-01"},
            "site": {"site_devices": [{"device_type": "BATTERY"}, {"device_type": "EV", "pv_connected": true}]}
        });
        let data = MeterData::parse(original.clone()).unwrap();
        let header = export_header(2);
        let mut cells = export_cells(&data, 2);
        cells.extend(STATUS_COLUMNS.iter().map(|_| "ignored".to_owned()));
        assert_eq!(header.len(), cells.len());
        let layout = CsvLayout::from_header(header.iter().map(String::as_str)).unwrap();
        let read_back = layout.row_to_value(cells.iter().map(String::as_str));
        assert_eq!(MeterData::parse(read_back).unwrap(), data);
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
