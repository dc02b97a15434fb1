//! The `CreateMeter` model as data: every object, field, enum, pattern, length and range of
//! the contract in one table. Validation, the CSV layout and the OpenAPI document are all
//! derived from it, so they cannot drift apart.

use std::sync::LazyLock;

use regex::Regex;
use strum::VariantNames;

use crate::enums::{
    CblMethod, CompanyType, CustomerClassification, DeviceType, DispatchOption, FuelType, LoadType,
    MeterType, NemType, TransmissionRegion, Utility, VoltageLevel,
};

/// One property of an object in the model.
#[derive(Debug)]
pub struct Field {
    /// The JSON property name (the leaf of the dotted path).
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// The CSV column name when it differs from `name` (leaves that repeat in the model).
    pub csv_name: Option<&'static str>,
    pub description: &'static str,
}

/// What values a field takes.
#[derive(Debug)]
pub enum Kind {
    Text(Text),
    Enum(&'static [&'static str]),
    /// A non-empty list of distinct enum values.
    EnumList(&'static [&'static str]),
    /// A list of at most `max` distinct strings, each following `item` (tags).
    TextList {
        item: Text,
        max: usize,
    },
    Bool,
    Number {
        min: f64,
        max: f64,
    },
    Integer {
        min: i64,
        max: i64,
    },
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    Object(&'static [Field]),
    ObjectList(&'static [Field]),
}

/// Constraints on a string, lengths counted in characters.
#[derive(Debug)]
pub struct Text {
    pub min: usize,
    pub max: usize,
    pub check: Check,
}

/// A further rule on a string beyond its length.
#[derive(Debug)]
pub enum Check {
    None,
    /// The whole value must match (the regex is anchored).
    Pattern(&'static Pattern),
    /// A plausible e-mail address: one `@` with text on both sides and a dot in the domain.
    Email,
    /// No replacement characters, non-breaking spaces or `?` (signs of a broken encoding).
    NoMojibake,
}

/// A named, lazily compiled, anchored pattern with a human description for messages.
pub struct Pattern {
    pub source: &'static str,
    pub explain: &'static str,
    regex: LazyLock<Regex>,
}

impl Pattern {
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.source)
    }
}

macro_rules! pattern {
    ($name:ident, $source:literal, $explain:literal) => {
        pub static $name: Pattern = Pattern {
            source: $source,
            explain: $explain,
            regex: LazyLock::new(|| Regex::new($source).expect("valid pattern")),
        };
    };
}

pattern!(
    STREET,
    r#"^[’'+#"@()/&.,;\sA-Za-z\x{C0}-\x{24F}\x{1E00}-\x{1EFF}0-9\-|\\]+$"#,
    "made of letters, digits, spaces and ’ ' + # \" @ ( ) / & . , ; - | \\"
);
pattern!(
    PLACE,
    r#"^[’'+#"@()/&.,;\sA-Za-z\x{C0}-\x{24F}\x{1E00}-\x{1EFF}0-9\-]+$"#,
    "made of letters, digits, spaces and ’ ' + # \" @ ( ) / & . , ; -"
);
pattern!(
    POSTAL_CODE,
    r#"^[0-9]{5}(?:-[0-9]{4})?$"#,
    "a 5-digit ZIP code, optionally followed by -1234"
);
pattern!(
    REFERENCE,
    r#"^[^/\\?\]\[{}!#$%^&*()<>|]+$"#,
    "free of the characters / \\ ? [ ] { } ! # $ % ^ & * ( ) < > |"
);
pattern!(
    CUSTOMER_GROUP,
    r#"^[’'+#"@()/&.,;A-Za-z\x{C0}-\x{24F}\x{1E00}-\x{1EFF}0-9\s_\-]*$"#,
    "made of letters, digits, spaces and ’ ' + # \" @ ( ) / & . , ; _ -"
);
// Leap's tag pattern without `,` `;` and `|`, which separate the tags of a CSV cell, and
// with spaces only between other characters, which a cell's values lose at their ends:
// every tag reads back from the upload layout as it was.
pattern!(
    TAG,
    r#"^[’'+#"@()/&.A-Za-z\x{C0}-\x{24F}\x{1E00}-\x{1EFF}0-9\-\\](?:[’'+#"@()/&. A-Za-z\x{C0}-\x{24F}\x{1E00}-\x{1EFF}0-9\-\\]*[’'+#"@()/&.A-Za-z\x{C0}-\x{24F}\x{1E00}-\x{1EFF}0-9\-\\])?$"#,
    "made of letters, digits, spaces between them and ’ ' + # \" @ ( ) / & . - \\ (not , ; or |, which separate tags)"
);
pattern!(TWO_LETTERS, r"^[A-Za-z]{2}$", "two letters");
// As the contract writes it, the dot before the extension matches any character.
pattern!(
    FILE_NAME,
    r"^[a-zA-Z0-9._\s-]+.[a-zA-Z0-9]+$",
    "a name made of letters, digits, spaces, dots, underscores and hyphens, with an extension"
);

/// A file's own name made to fit [`FILE_NAME`]: the characters it does not allow left
/// out, spaces run together, at most 255 characters; `None` when nothing usable is left.
/// A browser names a second download `meters (1).csv`, which is kept as `meters 1.csv`.
pub fn fit_file_name(name: &str) -> Option<String> {
    let kept: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ' '))
        .collect();
    let mut fitted = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    if fitted.chars().count() > 255 {
        let (stem, extension) = fitted.rsplit_once('.').unwrap_or((&fitted, ""));
        let room = 255usize.saturating_sub(extension.len() + 1);
        fitted = format!(
            "{}.{extension}",
            stem.chars().take(room).collect::<String>()
        );
    }
    FILE_NAME.is_match(&fitted).then_some(fitted)
}

const fn field(name: &'static str, kind: Kind, description: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        csv_name: None,
        description,
    }
}

const fn text(min: usize, max: usize, check: Check) -> Kind {
    Kind::Text(Text { min, max, check })
}

impl Field {
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    const fn csv(mut self, name: &'static str) -> Self {
        self.csv_name = Some(name);
        self
    }

    /// The CSV column name of this field when it is not inside a list.
    pub fn column_name(&self) -> &'static str {
        self.csv_name.unwrap_or(self.name)
    }
}

const NUMBER: Kind = Kind::Number {
    min: 0.0,
    max: 999_999.0,
};
const YEAR: Kind = Kind::Integer {
    min: 1900,
    max: 2100,
};
const fn pattern(p: &'static Pattern) -> Check {
    Check::Pattern(p)
}

pub static BILLING: &[Field] = &[
    field(
        "street_1",
        text(1, 128, pattern(&STREET)),
        "Street of the billing address.",
    )
    .required()
    .csv("billing_street_1"),
    field(
        "street_2",
        text(1, 128, pattern(&STREET)),
        "Apartment or unit of the billing address.",
    )
    .csv("billing_street_2"),
    field(
        "postal_code",
        text(1, 10, pattern(&POSTAL_CODE)),
        "Billing postal code.",
    )
    .required()
    .csv("billing_postal_code"),
    field("city", text(1, 128, pattern(&PLACE)), "Billing city.")
        .required()
        .csv("billing_city"),
    field(
        "state_or_province_code",
        text(2, 2, pattern(&TWO_LETTERS)),
        "Billing state or province code.",
    )
    .required()
    .csv("billing_state_or_province_code"),
    field(
        "country_code",
        text(2, 2, pattern(&TWO_LETTERS)),
        "ISO 3166-1 alpha-2 country of the billing address.",
    )
    .required()
    .csv("billing_country_code"),
];

pub static CUSTOMER: &[Field] = &[
    field(
        "street_1",
        text(1, 128, pattern(&STREET)),
        "Street where the asset is located.",
    )
    .required(),
    field(
        "street_2",
        text(1, 128, pattern(&STREET)),
        "Apartment or unit number.",
    ),
    field(
        "postal_code",
        text(1, 10, pattern(&POSTAL_CODE)),
        "Postal code where the asset is located.",
    )
    .required(),
    field(
        "city",
        text(1, 128, pattern(&PLACE)),
        "City where the asset is located.",
    )
    .required(),
    field(
        "state_or_province_code",
        text(2, 2, pattern(&TWO_LETTERS)),
        "State or province code.",
    )
    .required(),
    field(
        "country_code",
        text(2, 2, pattern(&TWO_LETTERS)),
        "ISO 3166-1 alpha-2 country code.",
    )
    .required(),
    field(
        "end_customer_name",
        text(1, 128, Check::NoMojibake),
        "End customer or contact name.",
    ),
    field(
        "end_customer_title",
        text(1, 15, pattern(&PLACE)),
        "Title of the end customer's primary contact (C&I).",
    ),
    field(
        "end_customer_email",
        text(3, 128, Check::Email),
        "End customer e-mail address.",
    ),
    field(
        "end_customer_phone_number",
        text(3, 32, Check::None),
        "End customer phone number, without a leading 1.",
    ),
    field(
        "end_customer_company_name",
        text(1, 128, pattern(&PLACE)),
        "Legal company name of the end customer (C&I).",
    ),
    field(
        "partner_offering_name",
        text(1, 128, Check::None),
        "Partner's program or offering the customer joined.",
    ),
    field(
        "partner_offering_date",
        Kind::Date,
        "Date the customer joined the partner's offering.",
    ),
    field(
        "is_in_wholesale_capacity_market",
        Kind::Bool,
        "In ISO-NE's Forward Capacity Market.",
    ),
    field(
        "dispatch_option",
        Kind::Enum(DispatchOption::VARIANTS),
        "ConnectedSolutions dispatch strategy.",
    ),
    field(
        "billing",
        Kind::Object(BILLING),
        "Billing address of the customer.",
    ),
    field(
        "partner_customer_reference",
        text(3, 256, pattern(&REFERENCE)),
        "Partner identifier for the customer or site.",
    ),
];

pub static DEVICE: &[Field] = &[
    field(
        "device_type",
        Kind::Enum(DeviceType::VARIANTS),
        "Type of the device.",
    ),
    field(
        "device_serial_number",
        text(1, 256, Check::None),
        "Serial number of the device.",
    ),
    field(
        "device_model",
        text(1, 128, Check::None),
        "Model of the device.",
    ),
    field(
        "device_manufacturer",
        text(1, 128, Check::None),
        "Manufacturer of the device.",
    ),
    field(
        "install_date",
        Kind::Date,
        "Install (or activation) date of the device.",
    ),
    field(
        "battery_power_capacity_kw",
        NUMBER,
        "Battery power capacity in kW.",
    ),
    field(
        "battery_energy_capacity_kwh",
        NUMBER,
        "Battery energy capacity in kWh.",
    ),
    field(
        "battery_duration_hours",
        Kind::Integer { min: 0, max: 100 },
        "Battery duration in hours.",
    ),
    field(
        "permission_to_operate_date",
        Kind::Date,
        "Date of the utility's permission to operate.",
    ),
];

pub static SITE_DEVICE: &[Field] = &[
    field(
        "device_type",
        Kind::Enum(DeviceType::VARIANTS),
        "Type of the device.",
    )
    .required(),
    field("model", text(1, 128, Check::None), "Model of the device."),
    field(
        "manufacturer",
        text(1, 128, Check::None),
        "Manufacturer of the device.",
    ),
    field(
        "serial_number",
        text(1, 256, Check::None),
        "Serial number of the device.",
    ),
    field("energy_capacity_kwh", NUMBER, "Energy capacity in kWh."),
    field("power_capacity_kw", NUMBER, "Power capacity in kW."),
    field(
        "energy_capacity_duration_hours",
        Kind::Integer { min: 0, max: 100 },
        "Duration in hours.",
    ),
    field(
        "voltage_level",
        Kind::Enum(VoltageLevel::VARIANTS),
        "EVSE voltage level.",
    ),
    field("model_year", YEAR, "Year the device was manufactured."),
    field(
        "fuel_type",
        Kind::Enum(FuelType::VARIANTS),
        "Fuel of a generator.",
    ),
    field(
        "max_energy_production_rate_kw",
        NUMBER,
        "Configured maximum production rate in kW.",
    ),
    field(
        "max_energy_consumption_rate_kw",
        NUMBER,
        "Configured maximum consumption rate in kW.",
    ),
    field(
        "battery_max_state_of_charge_percentage",
        Kind::Number {
            min: 2.0,
            max: 100.0,
        },
        "Configured maximum state of charge, percent.",
    ),
    field(
        "battery_min_state_of_charge_percentage",
        Kind::Number {
            min: 0.0,
            max: 100.0,
        },
        "Configured minimum state of charge, percent.",
    ),
    field(
        "installer",
        text(1, 256, Check::None),
        "Company or person that installed the device.",
    ),
    field(
        "pv_connected",
        Kind::Bool,
        "Solar panels are connected to the device.",
    ),
];

pub static SITE: &[Field] = &[
    field(
        "load_zone",
        text(1, 128, Check::None),
        "Sub-region of the transmission region.",
    ),
    field(
        "number_of_devices",
        Kind::Integer { min: 0, max: 99 },
        "Devices available for dispatch behind the meter.",
    ),
    field(
        "on_site_fossil_generator",
        Kind::Bool,
        "A fossil-fuel generator is on site.",
    ),
    field(
        "renewable_generator",
        Kind::Bool,
        "A behind-the-meter renewable generator is on site.",
    ),
    field(
        "generator_capacity_kw",
        NUMBER,
        "Deprecated: use site_devices.power_capacity_kw.",
    ),
    field(
        "generator_model_year",
        YEAR,
        "Deprecated: use site_devices.model_year.",
    ),
    field(
        "generator_manufacturer",
        text(1, 128, Check::None),
        "Deprecated: use site_devices.manufacturer.",
    ),
    field(
        "generator_fuel_type",
        Kind::Enum(FuelType::VARIANTS),
        "Deprecated: use site_devices.fuel_type.",
    ),
    field(
        "generator_serial_number",
        text(1, 256, Check::None),
        "Deprecated: use site_devices.serial_number.",
    ),
    field(
        "site_devices",
        Kind::ObjectList(SITE_DEVICE),
        "Further devices on the premises.",
    ),
];

pub static CAISO: &[Field] = &[
    field(
        "is_receiving_sgip_funding",
        Kind::Bool,
        "Receives SGIP funding (batteries installed after 2023-06-30).",
    ),
    field("nem_type", Kind::Enum(NemType::VARIANTS), "NEM2 or NEM3."),
];

pub static ISONE: &[Field] = &[field(
    "in_connected_solutions",
    Kind::Bool,
    "Also participates in ConnectedSolutions.",
)];

pub static NYISO: &[Field] = &[
    field(
        "cbl_method",
        Kind::Enum(CblMethod::VARIANTS),
        "Customer baseline load methodology.",
    ),
    field(
        "company_type",
        Kind::Enum(CompanyType::VARIANTS),
        "Legal form of the customer (PSEG LI).",
    ),
    field(
        "existing_nyiso_resource_id",
        text(1, 256, Check::None),
        "Resource id NYISO assigned in an earlier SCR enrollment.",
    ),
    field(
        "partner_nyiso_resource_name",
        text(1, 256, Check::None),
        "Resource name the partner assigned in an earlier SCR enrollment.",
    ),
];

pub static UTILITY: &[Field] = &[
    field(
        "utility_name",
        Kind::Enum(Utility::VARIANTS),
        "Utility whose territory the customer is in.",
    ),
    field(
        "load_serving_entity",
        text(1, 128, Check::None),
        "Utility or CCA the customer buys electricity from.",
    ),
    field(
        "electric_service_account_number",
        text(1, 128, Check::None),
        "Service agreement / account number (ESIID in ERCOT).",
    ),
    field(
        "tariff",
        text(1, 128, Check::None),
        "Tariff or rate code from the bill.",
    ),
    field(
        "voltage",
        text(1, 128, Check::None),
        "Service voltage level or range.",
    ),
    field(
        "utility_meter_serial_number",
        text(1, 256, Check::None),
        "Serial number of the electricity meter.",
    ),
];

/// The top level of `CreateMeter`.
///
/// Job inputs are stored by the position of each field in these tables
/// ([`crate::compact`]): a new field goes at the end of its object, and no field is
/// removed or moved.
pub static CREATE_METER: &[Field] = &[
    field(
        "partner_reference",
        text(3, 256, pattern(&REFERENCE)),
        "Partner's own reference for the meter.",
    )
    .required(),
    field(
        "transmission_region",
        Kind::Enum(TransmissionRegion::VARIANTS),
        "Transmission region of the meter.",
    )
    .required(),
    field(
        "customer_classification",
        Kind::Enum(CustomerClassification::VARIANTS),
        "Residential or commercial.",
    )
    .required(),
    field(
        "load_types",
        Kind::EnumList(LoadType::VARIANTS),
        "Curtailable loads behind the meter (at least one).",
    )
    .required(),
    field(
        "meter_type",
        Kind::Enum(MeterType::VARIANTS),
        "Type of asset.",
    )
    .required(),
    field(
        "customer",
        Kind::Object(CUSTOMER),
        "Where the asset is and who the customer is.",
    )
    .required(),
    field("device", Kind::Object(DEVICE), "The partner's device."),
    field(
        "site",
        Kind::Object(SITE),
        "The site and its further devices.",
    ),
    field("caiso", Kind::Object(CAISO), "CAISO-specific data."),
    field("isone", Kind::Object(ISONE), "ISO-NE-specific data."),
    field("nyiso", Kind::Object(NYISO), "NYISO-specific data."),
    field("utility", Kind::Object(UTILITY), "Utility account data."),
    field(
        "customer_group",
        text(0, 128, pattern(&CUSTOMER_GROUP)),
        "Customer group of the meter.",
    ),
    // Gridroll's own, last: stored positions only ever grow at the end.
    field(
        "tags",
        Kind::TextList {
            item: TAG_TEXT,
            max: MAX_TAGS,
        },
        "Gridroll's extension: the partner's tags, to group and find meters (at most 50, each 1 to 128 characters). Part of the meter's data: an update with update_existing replaces them too.",
    ),
];

/// The most tags a meter has.
pub const MAX_TAGS: usize = 50;

/// What one tag must be.
pub const TAG_TEXT: Text = Text {
    min: 1,
    max: 128,
    check: Check::Pattern(&TAG),
};

/// A leaf field with its dotted path, in table order.
#[derive(Debug, Clone, Copy)]
pub struct Leaf {
    pub path: &'static str,
    pub field: &'static Field,
}

/// Every leaf outside `site.site_devices`, in table order: the CSV columns.
pub static LEAVES: LazyLock<Vec<Leaf>> = LazyLock::new(|| {
    let mut out = Vec::new();
    collect_leaves(CREATE_METER, "", &mut out);
    out
});

fn collect_leaves(fields: &'static [Field], prefix: &str, out: &mut Vec<Leaf>) {
    for field in fields {
        let path = if prefix.is_empty() {
            field.name.to_owned()
        } else {
            format!("{prefix}.{}", field.name)
        };
        match field.kind {
            Kind::Object(children) => collect_leaves(children, &path, out),
            Kind::ObjectList(_) => {}
            _ => out.push(Leaf {
                path: Box::leak(path.into_boxed_str()),
                field,
            }),
        }
    }
}

/// The field at a dotted path such as `customer.billing.city` or
/// `site.site_devices.0.model`.
pub fn field_at(path: &str) -> Option<&'static Field> {
    let mut fields = CREATE_METER;
    let mut found = None;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let field = fields.iter().find(|f| f.name == segment)?;
        found = Some(field);
        match field.kind {
            Kind::Object(children) => fields = children,
            Kind::ObjectList(children) => {
                if segments.peek().is_some() {
                    segments.next().filter(|i| i.parse::<usize>().is_ok())?;
                }
                fields = children;
            }
            _ if segments.peek().is_some() => return None,
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn csv_column_names_are_unique() {
        let mut seen = HashSet::new();
        for leaf in LEAVES.iter() {
            assert!(
                seen.insert(leaf.field.column_name()),
                "{} is used twice",
                leaf.field.column_name()
            );
        }
    }

    #[test]
    fn a_browsers_file_name_is_kept_with_what_the_rules_allow() {
        assert_eq!(
            fit_file_name("meters (1).csv").as_deref(),
            Some("meters 1.csv")
        );
        assert_eq!(fit_file_name("meters.csv").as_deref(), Some("meters.csv"));
        assert_eq!(
            fit_file_name("Zählerstände März.csv").as_deref(),
            Some("Zhlerstnde Mrz.csv")
        );
        assert_eq!(fit_file_name("(((.)))"), None);
        let long = format!("{}.csv", "a".repeat(300));
        let fitted = fit_file_name(&long).unwrap();
        assert_eq!(fitted.chars().count(), 255);
        assert!(fitted.ends_with(".csv"));
    }

    #[test]
    fn field_at_follows_objects_and_lists() {
        assert_eq!(field_at("customer.billing.city").unwrap().name, "city");
        assert_eq!(field_at("site.site_devices.3.model").unwrap().name, "model");
        assert_eq!(
            field_at("utility.utility_name").unwrap().name,
            "utility_name"
        );
        assert!(field_at("customer.nope").is_none());
        assert!(field_at("partner_reference.x").is_none());
        assert!(field_at("site.site_devices.x.model").is_none());
    }

    #[test]
    fn patterns_accept_the_contract_examples_and_reject_forbidden_characters() {
        assert!(STREET.is_match("132 My Street"));
        assert!(STREET.is_match("Straße 5, Zürich | \"B\""));
        assert!(!STREET.is_match("132 <My> Street"));
        assert!(PLACE.is_match("São Paulo"));
        assert!(!PLACE.is_match("Los|Angeles"));
        assert!(POSTAL_CODE.is_match("10001"));
        assert!(POSTAL_CODE.is_match("10001-1234"));
        assert!(!POSTAL_CODE.is_match("1000"));
        assert!(!POSTAL_CODE.is_match("10001-12"));
        assert!(REFERENCE.is_match("unique-reference-id-12345"));
        assert!(!REFERENCE.is_match("a/b"));
        assert!(!REFERENCE.is_match("ref#1"));
        assert!(CUSTOMER_GROUP.is_match(""));
        assert!(CUSTOMER_GROUP.is_match("Group_1 (north)"));
        assert!(!CUSTOMER_GROUP.is_match("a|b"));
        assert!(TAG.is_match("north fleet"));
        assert!(TAG.is_match("Zoë’s #2 (A/B) \\ x"));
        assert!(TAG.is_match("a"));
        for separator in [",", ";", "|"] {
            assert!(!TAG.is_match(&format!("a{separator}b")), "{separator}");
        }
        assert!(!TAG.is_match(" padded"));
        assert!(!TAG.is_match("padded "));
        assert!(!TAG.is_match("under_score"));
    }
}
