//! The CSV layout of meters: which column holds which field, and how a row becomes a
//! `CreateMeter` document.
//!
//! A column is named by the field's CSV name (its leaf, or `billing_*` / `device_type` for
//! the leaves that repeat) or by its dotted path; `site.site_devices.N.<leaf>` addresses the
//! list of site devices. Names match case-insensitively, surrounding spaces ignored.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde_json::{Map, Number, Value};

use crate::compact::CompactAsset;
use crate::meter::{self, MeterData};
use crate::schema::{CREATE_METER, Field, Kind, LEAVES, SITE_DEVICE};

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
    /// The column of each leaf of the model, in [`LEAVES`] order.
    leaf_columns: Vec<Option<usize>>,
    /// The columns of each site device the file addresses, in the order of their
    /// indexes, each in [`SITE_DEVICE`] order.
    device_columns: Vec<Vec<Option<usize>>>,
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
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut leaf_columns = vec![None; LEAVES.len()];
        let mut devices: BTreeMap<usize, Vec<Option<usize>>> = BTreeMap::new();
        for (column, (_, target)) in columns.iter().enumerate() {
            match *target {
                Target::Leaf(i) => leaf_columns[i] = Some(column),
                Target::SiteDevice { index, field } => {
                    devices
                        .entry(index)
                        .or_insert_with(|| vec![None; SITE_DEVICE.len()])[field] = Some(column);
                }
                Target::Status(_) => {}
            }
        }
        Ok(Self {
            columns,
            leaf_columns,
            device_columns: devices.into_values().collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// The name of the column at `index`, as the header gives it.
    pub fn column_name(&self, index: usize) -> String {
        self.columns
            .get(index)
            .map_or_else(|| format!("column {}", index + 1), |(name, _)| name.clone())
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

    /// A valid row in its compact form, written straight from its cells: what validating
    /// [`Self::row_to_value`] and encoding the meter would give, without building the
    /// document. `None` when a cell is not valid or a required field is missing; the
    /// document then says what is wrong. `record` has a cell for every column.
    pub fn row_to_compact(&self, record: &csv::StringRecord) -> Option<CompactAsset> {
        let mut writer = CompactWriter {
            record,
            devices: &self.device_columns,
            out: Vec::with_capacity(record.as_slice().len() + 96),
        };
        let mut leaves = self.leaf_columns.iter();
        if !writer.object(CREATE_METER, &mut leaves)? {
            return None;
        }
        let cell = |i: usize| cell_of(record, self.leaf_columns[i]);
        let mut load_types = Vec::with_capacity(48);
        write_list(cell(*LOAD_TYPES)?, &mut load_types);
        Some(CompactAsset {
            partner_reference: cell(*PARTNER_REFERENCE)?.to_owned(),
            transmission_region: cell(*TRANSMISSION_REGION)?.parse().ok()?,
            customer_classification: cell(*CUSTOMER_CLASSIFICATION)?.parse().ok()?,
            meter_type: cell(*METER_TYPE)?.parse().ok()?,
            load_types: String::from_utf8(load_types).ok()?,
            customer_group: cell(*CUSTOMER_GROUP).map(str::to_owned),
            data: String::from_utf8(writer.out).ok()?,
        })
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

fn leaf_index(path: &str) -> usize {
    LEAVES
        .iter()
        .position(|leaf| leaf.path == path)
        .expect("a top-level field of the model")
}

static PARTNER_REFERENCE: LazyLock<usize> = LazyLock::new(|| leaf_index("partner_reference"));
static TRANSMISSION_REGION: LazyLock<usize> = LazyLock::new(|| leaf_index("transmission_region"));
static CUSTOMER_CLASSIFICATION: LazyLock<usize> =
    LazyLock::new(|| leaf_index("customer_classification"));
static METER_TYPE: LazyLock<usize> = LazyLock::new(|| leaf_index("meter_type"));
static LOAD_TYPES: LazyLock<usize> = LazyLock::new(|| leaf_index("load_types"));
static CUSTOMER_GROUP: LazyLock<usize> = LazyLock::new(|| leaf_index("customer_group"));

/// Writes one row in the compact form (see [`crate::compact`]), validating each cell as
/// [`MeterData::parse`] would validate the value [`convert`] makes of it. Any failure
/// gives up on the row (`None`), leaving the messages to the document's validation.
struct CompactWriter<'r> {
    record: &'r csv::StringRecord,
    devices: &'r [Vec<Option<usize>>],
    out: Vec<u8>,
}

/// The trimmed cell of a column, if it is not empty.
fn cell_of(record: &csv::StringRecord, column: Option<usize>) -> Option<&str> {
    let cell = record.get(column?)?.trim();
    (!cell.is_empty()).then_some(cell)
}

impl CompactWriter<'_> {
    /// Writes an object of the model from the columns of its leaves, taken in order
    /// from `leaves`; whether it is present (has any field), `None` if it is invalid.
    fn object(
        &mut self,
        fields: &'static [Field],
        leaves: &mut std::slice::Iter<'_, Option<usize>>,
    ) -> Option<bool> {
        let open = self.out.len();
        self.out.push(b'[');
        let mut written = 0;
        let mut missing_required = false;
        for (i, field) in fields.iter().enumerate() {
            let mark = self.out.len();
            // The absent positions before this one, and its separator.
            for p in written..i {
                if p > 0 {
                    self.out.push(b',');
                }
                self.out.extend_from_slice(b"null");
            }
            if i > 0 {
                self.out.push(b',');
            }
            let present = match field.kind {
                Kind::Object(children) => self.object(children, leaves)?,
                // The one list of objects a file can address.
                Kind::ObjectList(children) if std::ptr::eq(children, SITE_DEVICE) => {
                    self.devices(children)?
                }
                Kind::ObjectList(_) => false,
                _ => match cell_of(self.record, *leaves.next()?) {
                    Some(cell) => {
                        write_leaf(field, cell, &mut self.out)?;
                        true
                    }
                    None => false,
                },
            };
            if present {
                written = i + 1;
            } else {
                self.out.truncate(mark);
                missing_required |= field.required;
            }
        }
        if written == 0 {
            self.out.truncate(open);
            return Some(false);
        }
        if missing_required {
            return None;
        }
        self.out.push(b']');
        Some(true)
    }

    /// Writes the site devices the row has; whether there are any.
    fn devices(&mut self, fields: &'static [Field]) -> Option<bool> {
        let open = self.out.len();
        self.out.push(b'[');
        let mut count = 0;
        for columns in self.devices {
            let mark = self.out.len();
            if count > 0 {
                self.out.push(b',');
            }
            if self.object(fields, &mut columns.iter())? {
                count += 1;
            } else {
                self.out.truncate(mark);
            }
        }
        if count == 0 {
            self.out.truncate(open);
            return Some(false);
        }
        self.out.push(b']');
        Some(true)
    }
}

/// Writes the JSON value of a valid cell; `None` if the cell is not valid for the field.
fn write_leaf(field: &Field, cell: &str, out: &mut Vec<u8>) -> Option<()> {
    match &field.kind {
        Kind::Text(rule) => meter::check_text(rule, cell).ok()?,
        Kind::Enum(allowed) => allowed.contains(&cell).then_some(())?,
        Kind::Date => meter::parse_date(cell).map(drop)?,
        Kind::EnumList(allowed) => {
            let mut count = 0;
            for (i, item) in split_list(cell).enumerate() {
                let repeated = split_list(cell).take(i).any(|seen| seen == item);
                if repeated || !allowed.contains(&item) {
                    return None;
                }
                count += 1;
            }
            (count > 0).then_some(())?;
            write_list(cell, out);
            return Some(());
        }
        Kind::TextList { item, max } => {
            // Counted first: each value is compared with those before it, which stays
            // cheap only for a list as short as the rule allows, not for a cell of
            // thousands of values.
            (split_list(cell).count() <= *max).then_some(())?;
            for (i, value) in split_list(cell).enumerate() {
                let repeated = split_list(cell).take(i).any(|seen| seen == value);
                if repeated || meter::check_text(item, value).is_err() {
                    return None;
                }
            }
            write_list(cell, out);
            return Some(());
        }
        Kind::Bool => {
            out.extend_from_slice(if parse_bool(cell)? { b"true" } else { b"false" });
            return Some(());
        }
        Kind::Integer { min, max } => {
            let n: i64 = cell.parse().ok()?;
            (min..=max).contains(&&n).then_some(())?;
            out.extend_from_slice(n.to_string().as_bytes());
            return Some(());
        }
        Kind::Number { min, max } => {
            let number = cell.parse::<f64>().ok().and_then(Number::from_f64)?;
            (min..=max).contains(&&number.as_f64()?).then_some(())?;
            serde_json::to_writer(out, &number).ok()?;
            return Some(());
        }
        Kind::Object(_) | Kind::ObjectList(_) => return None,
    }
    serde_json::to_writer(out, cell).ok()
}

/// Writes a list cell as the JSON array of its values.
fn write_list(cell: &str, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, item) in split_list(cell).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, item).expect("a string serializes");
    }
    out.push(b']');
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
        Kind::EnumList(_) | Kind::TextList { .. } => Value::Array(
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
    let is = |spellings: [&str; 3]| spellings.iter().any(|s| cell.eq_ignore_ascii_case(s));
    if is(["true", "yes", "1"]) {
        Some(true)
    } else if is(["false", "no", "0"]) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::schema::{
        CUSTOMER_GROUP, Check, PLACE, POSTAL_CODE, Pattern, REFERENCE, STREET, TWO_LETTERS,
    };

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

    /// A meter with fields in every kind of cell: lists, quoted commas, booleans, numbers,
    /// dates, a nested object and two site devices.
    fn full_meter() -> Value {
        json!({
            "partner_reference": "ref-9",
            "transmission_region": "ISONE",
            "customer_classification": "COMMERCIAL",
            "load_types": ["HVAC", "LIGHTING"],
            "meter_type": "SUBMETER",
            "customer": {
                "street_1": "1 \"Elm\" St, Suite 4", "postal_code": "02110", "city": "Boston",
                "state_or_province_code": "MA", "country_code": "US",
                "is_in_wholesale_capacity_market": false,
                "billing": {"street_1": "PO Box 7", "postal_code": "02111", "city": "Boston",
                            "state_or_province_code": "MA", "country_code": "US"}
            },
            "device": {"battery_energy_capacity_kwh": 13.5, "battery_duration_hours": 4,
                       "install_date": "2024-05-01"},
            "site": {"site_devices": [{"device_type": "BATTERY"}, {"device_type": "EV", "pv_connected": true}]},
            "customer_group": "East"
        })
    }

    #[test]
    fn an_exported_row_reads_back_as_the_same_data() {
        let data = MeterData::parse(full_meter()).unwrap();
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

    #[test]
    fn a_full_valid_row_is_written_straight_to_the_compact_form() {
        let data = MeterData::parse(full_meter()).unwrap();
        let header = export_header(2);
        let layout = CsvLayout::from_header(header.iter().map(String::as_str)).unwrap();
        let mut cells = export_cells(&data, 2);
        cells.extend(STATUS_COLUMNS.iter().map(|_| String::new()));
        let asset = layout
            .row_to_compact(&csv::StringRecord::from(cells))
            .expect("a valid row");
        assert_eq!(asset, CompactAsset::of(&data));
        assert_eq!(asset.load_types, r#"["HVAC","LIGHTING"]"#);
        assert_eq!(asset.customer_group.as_deref(), Some("East"));
    }

    #[test]
    fn a_row_with_a_bad_cell_or_a_missing_required_field_is_left_to_validation() {
        let layout = CsvLayout::from_header([
            "partner_reference",
            "transmission_region",
            "customer_classification",
            "load_types",
            "meter_type",
            "street_1",
            "postal_code",
            "city",
            "state_or_province_code",
            "country_code",
            "battery_duration_hours",
        ])
        .unwrap();
        let row = |cells: [&str; 11]| layout.row_to_compact(&csv::StringRecord::from(&cells[..]));
        let valid = [
            "m-1",
            "ERCOT",
            "RESIDENTIAL",
            "HVAC",
            "DEVICE",
            "1 Main St",
            "78701",
            "Austin",
            "TX",
            "US",
            "4",
        ];
        assert!(row(valid).is_some());
        for (column, bad) in [
            (1, "ERCOTT"),
            (3, "HVAC;HVAC"),
            (6, "7870"),
            (10, "4.5"),
            (7, ""),
        ] {
            let mut cells = valid;
            cells[column] = bad;
            assert_eq!(row(cells), None, "{bad:?} in column {column}");
        }
    }

    /// Cells a field accepts.
    fn valid_cell(field: &'static Field) -> BoxedStrategy<String> {
        let texts = |samples: &[&'static str]| {
            proptest::sample::select(samples.to_vec())
                .prop_map(str::to_owned)
                .boxed()
        };
        let is = |p: &Pattern, q: &Pattern| std::ptr::eq(p, q);
        match &field.kind {
            Kind::Text(rule) => match &rule.check {
                Check::Pattern(p) if is(p, &STREET) => {
                    texts(&["1 Main St", "12 O'Brien Ave, Apt #4", "5 \"Elm\" Rd"])
                }
                Check::Pattern(p) if is(p, &PLACE) => texts(&["Boston", "Winston-Salem", "Zoë"]),
                Check::Pattern(p) if is(p, &POSTAL_CODE) => texts(&["94105", "02110-1234"]),
                Check::Pattern(p) if is(p, &REFERENCE) => texts(&["ref-001", "m_12.3 x", "ré-7"]),
                Check::Pattern(p) if is(p, &CUSTOMER_GROUP) => texts(&["group A", "Ünïon_1"]),
                Check::Pattern(p) if is(p, &TWO_LETTERS) => texts(&["CA", "us"]),
                Check::Email => texts(&["a@b.co", "jane.doe+x@example.org"]),
                Check::NoMojibake => texts(&["Jane Doe", "Zoë \"Z\" Smith"]),
                _ => texts(&["anything", "Model S, v2", "back\\slash", "Zoë’s “x”"]),
            },
            Kind::Enum(allowed) => proptest::sample::select(allowed.to_vec())
                .prop_map(str::to_owned)
                .boxed(),
            Kind::EnumList(allowed) => (
                proptest::sample::subsequence(allowed.to_vec(), 1..=3.min(allowed.len())),
                proptest::sample::select(vec![",", ";", "|", " , "]),
            )
                .prop_map(|(items, separator)| items.join(separator))
                .boxed(),
            Kind::TextList { .. } => texts(&["north", "fleet A;Zoë’s", "x | y (2)"]),
            Kind::Bool => texts(&["true", "Yes", "0", "FALSE", "no"]),
            Kind::Integer { min, max } => (*min..=*max).prop_map(|n| n.to_string()).boxed(),
            Kind::Number { min, max } => {
                // Hundredths, and spellings of numbers at the ends of the range.
                let (min, max) = (*min, *max);
                let hundredths = (min * 100.0) as u64..=(max * 100.0) as u64;
                prop_oneof![
                    hundredths.prop_map(|n| (n as f64 / 100.0).to_string()),
                    Just(format!("{min}")),
                    Just(format!("{max}.0")),
                    Just(format!("{:e}", max)),
                    texts(&["-0", ".5", "5.", "013.50"]),
                ]
                .prop_filter("in range", move |cell| {
                    cell.parse::<f64>().is_ok_and(|n| (min..=max).contains(&n))
                })
                .boxed()
            }
            Kind::Date => texts(&["2024-05-01", "1999-12-31"]),
            Kind::Object(_) | Kind::ObjectList(_) => Just(String::new()).boxed(),
        }
    }

    /// Cells a field refuses, mostly near what it accepts.
    fn invalid_cell(field: &'static Field) -> BoxedStrategy<String> {
        let texts = |samples: Vec<String>| proptest::sample::select(samples).boxed();
        let near = match &field.kind {
            Kind::Text(rule) => texts(vec![
                "x".repeat(rule.max + 1),
                "a".repeat(rule.min.saturating_sub(1).max(1)),
                "a/b?".to_owned(),
                "Jos\u{FFFD}".to_owned(),
                "a@b".to_owned(),
                "tab\tin".to_owned(),
                "ctl\u{1}x".to_owned(),
                "nul\u{0}".to_owned(),
            ]),
            Kind::Enum(allowed) => texts(vec!["NOPE".to_owned(), allowed[0].to_lowercase()]),
            Kind::EnumList(allowed) => texts(vec![
                format!("{0},{0}", allowed[0]),
                format!("{};NOPE", allowed[0]),
                ",;|".to_owned(),
            ]),
            Kind::TextList { item, max } => texts(vec![
                "a,a".to_owned(),
                (0..=*max)
                    .map(|i| format!("t{i}"))
                    .collect::<Vec<_>>()
                    .join(","),
                "x".repeat(item.max + 1),
                "under_score".to_owned(),
                "tab\tin".to_owned(),
            ]),
            Kind::Bool => texts(vec!["maybe".to_owned(), "y".to_owned()]),
            Kind::Integer { min, max } => texts(vec![
                (min - 1).to_string(),
                (max + 1).to_string(),
                "4.5".to_owned(),
                "four".to_owned(),
            ]),
            Kind::Number { min, max } => texts(vec![
                (min - 1.0).to_string(),
                (max + 0.5).to_string(),
                "1e400".to_owned(),
                "NaN".to_owned(),
                "inf".to_owned(),
                "13,5".to_owned(),
            ]),
            Kind::Date => texts(vec!["2024-02-30".to_owned(), "2024-5-1".to_owned()]),
            Kind::Object(_) | Kind::ObjectList(_) => Just(String::new()).boxed(),
        };
        let anything = texts(
            ["ab", "?", "+5", "-1", "2024-5-1", "HVAC"]
                .map(str::to_owned)
                .to_vec(),
        );
        prop_oneof![4 => near, 1 => anything].boxed()
    }

    /// A valid or blank cell for a field, sometimes padded, and a flawed one.
    fn cells(field: Option<&'static Field>) -> BoxedStrategy<(String, String)> {
        let Some(field) = field else {
            return Just(("ignored".to_owned(), "ignored".to_owned())).boxed();
        };
        let blank = proptest::sample::select(vec!["", "  "]).prop_map(str::to_owned);
        // Required fields are seldom blank, so that many rows are valid.
        let blanks = if field.required { 1 } else { 20 };
        let clean = prop_oneof![80 => valid_cell(field), blanks => blank];
        (clean, invalid_cell(field), any::<bool>())
            .prop_map(|(clean, flawed, pad)| {
                let pad = |cell: String| if pad { format!(" {cell}\t") } else { cell };
                (pad(clean), pad(flawed))
            })
            .boxed()
    }

    /// A header of some of the columns in any order, and one row for it: rows whose
    /// cells are all valid or blank, rows with one flawed cell, and rows with many.
    fn header_and_row() -> impl Strategy<Value = Vec<(String, String)>> {
        let mut columns: Vec<(String, Option<&'static Field>)> = LEAVES
            .iter()
            .map(|leaf| (leaf.field.column_name().to_owned(), Some(leaf.field)))
            .collect();
        for index in [0, 1, 4] {
            for field in SITE_DEVICE {
                columns.push((
                    format!("site.site_devices.{index}.{}", field.name),
                    Some(field),
                ));
            }
        }
        columns.push(("status".to_owned(), None));
        let picks: Vec<_> = columns
            .into_iter()
            .map(|(name, field)| {
                let keep = if field.is_some_and(|f| f.required) {
                    0.99
                } else {
                    0.5
                };
                (
                    proptest::bool::weighted(keep),
                    Just(name),
                    cells(field),
                    proptest::bool::weighted(0.2),
                )
            })
            .collect();
        (picks, 0..3u8, any::<proptest::sample::Index>())
            .prop_map(|(picks, flaws, one)| {
                let kept: Vec<_> = picks.into_iter().filter(|(keep, ..)| *keep).collect();
                let flawed = one.index(kept.len().max(1));
                kept.into_iter()
                    .enumerate()
                    .map(|(i, (_, name, (clean, flaw), many))| {
                        let cell = match flaws {
                            1 if i == flawed => flaw,
                            2 if many => flaw,
                            _ => clean,
                        };
                        (name, cell)
                    })
                    .collect::<Vec<_>>()
            })
            .prop_shuffle()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_row_written_straight_to_the_compact_form_is_its_validated_document_encoded(
            columns in header_and_row()
        ) {
            let layout = CsvLayout::from_header(columns.iter().map(|(name, _)| name.as_str()))
                .unwrap();
            let cells: Vec<&str> = columns.iter().map(|(_, cell)| cell.as_str()).collect();
            let straight = layout.row_to_compact(&csv::StringRecord::from(cells.clone()));
            let validated = MeterData::parse(layout.row_to_value(cells))
                .ok()
                .map(|data| CompactAsset::of(&data));
            prop_assert_eq!(straight, validated);
        }
    }
}
