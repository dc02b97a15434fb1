//! Meter data: a `CreateMeter` document that has passed validation against the schema.

use std::collections::BTreeSet;
use std::str::FromStr;

use serde_json::{Map, Value};
use time::Date;
use time::macros::format_description;

use crate::enums::{CustomerClassification, LoadType, MeterType, TransmissionRegion};
use crate::schema::{CREATE_METER, Check, Field, Kind, Text};

/// One thing wrong with one field of one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted path of the field, e.g. `customer.postal_code` or `site.site_devices.0.model`.
    pub path: String,
    pub message: String,
    /// What was probably meant: the field name or value nearest to the one given.
    pub suggestion: Option<String>,
}

/// The data of one meter, valid against the `CreateMeter` schema. Absent and `null`
/// fields are left out; everything present has the type and form the contract asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterData(Map<String, Value>);

impl MeterData {
    /// Validates a JSON document, listing every problem rather than the first.
    pub fn parse(value: Value) -> Result<Self, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let Value::Object(mut object) = value else {
            problems.push(FieldProblem {
                path: String::new(),
                message: format!("must be an object, not {}", type_name(&value)),
                suggestion: None,
            });
            return Err(problems);
        };
        check_object(CREATE_METER, &mut object, "", &mut problems);
        if problems.is_empty() {
            Ok(Self(object))
        } else {
            Err(problems)
        }
    }

    /// Rebuilds meter data that was validated before it was stored.
    pub fn from_stored(object: Map<String, Value>) -> Self {
        Self(object)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// The value at a dotted path (`utility.utility_name`, `site.site_devices.0.model`).
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut segments = path.split('.');
        let mut current = self.0.get(segments.next()?)?;
        for segment in segments {
            current = match current {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }

    fn str_at(&self, key: &str) -> &str {
        self.0.get(key).and_then(Value::as_str).unwrap_or_default()
    }

    pub fn partner_reference(&self) -> &str {
        self.str_at("partner_reference")
    }

    pub fn transmission_region(&self) -> TransmissionRegion {
        self.enum_at("transmission_region")
    }

    pub fn customer_classification(&self) -> CustomerClassification {
        self.enum_at("customer_classification")
    }

    pub fn meter_type(&self) -> MeterType {
        self.enum_at("meter_type")
    }

    pub fn load_types(&self) -> Vec<LoadType> {
        self.0
            .get("load_types")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn customer_group(&self) -> Option<&str> {
        self.0.get("customer_group").and_then(Value::as_str)
    }

    fn enum_at<T: FromStr>(&self, key: &str) -> T {
        self.str_at(key)
            .parse()
            .ok()
            .expect("validated meter data holds every required enum")
    }
}

/// Validates an object in place: unknown and `null` fields are dropped (unknown ones
/// reported), and every problem is listed. Paths are only spelled out for problems, so a
/// valid object costs no allocation beyond its own.
fn check_object(
    fields: &'static [Field],
    object: &mut Map<String, Value>,
    prefix: &str,
    problems: &mut Vec<FieldProblem>,
) {
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };
    object.retain(|key, value| {
        let Some(field) = fields.iter().find(|f| f.name == key) else {
            let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
            let near = crate::suggest::closest(key, known.iter().copied());
            let mut message = "unknown field".to_owned();
            if let Some(near) = near {
                message.push_str(&format!(" (did you mean {near}?)"));
            }
            problems.push(FieldProblem {
                path: join(&crate::suggest::clip(key)),
                message,
                suggestion: near.map(join),
            });
            return false;
        };
        !value.is_null() && check_value(field, value, &|| join(key), problems)
    });
    for field in fields.iter().filter(|f| f.required) {
        if !object.contains_key(field.name) && !object_had_problem(problems, &join(field.name)) {
            problems.push(FieldProblem {
                path: join(field.name),
                message: "is required".to_owned(),
                suggestion: None,
            });
        }
    }
}

/// Whether a problem was already reported at or under `path`, so that a malformed
/// required field is not reported a second time as missing.
fn object_had_problem(problems: &[FieldProblem], path: &str) -> bool {
    problems.iter().rev().any(|p| {
        p.path == path
            || (p.path.starts_with(path) && p.path.as_bytes().get(path.len()) == Some(&b'.'))
    })
}

/// Validates one value in place; false (with a problem listed) if it is not valid.
fn check_value(
    field: &'static Field,
    value: &mut Value,
    path: &dyn Fn() -> String,
    problems: &mut Vec<FieldProblem>,
) -> bool {
    let mut fail = |message: String, suggestion: Option<String>| {
        problems.push(FieldProblem {
            path: path(),
            message,
            suggestion,
        });
        false
    };
    match &field.kind {
        Kind::Text(rule) => match &*value {
            Value::String(s) => match check_text(rule, s) {
                Ok(()) => true,
                Err(message) => fail(message, None),
            },
            other => fail(format!("must be a string, not {}", type_name(other)), None),
        },
        Kind::Enum(allowed) => match &*value {
            Value::String(s) if allowed.contains(&s.as_str()) => true,
            Value::String(s) => fail(not_one_of(s, allowed), suggestion(s, allowed)),
            other => fail(format!("must be a string, not {}", type_name(other)), None),
        },
        Kind::EnumList(allowed) => {
            let Value::Array(items) = &*value else {
                return fail(format!("must be a list, not {}", type_name(value)), None);
            };
            if items.is_empty() {
                return fail("must list at least one value".to_owned(), None);
            }
            let mut seen = BTreeSet::new();
            for item in items {
                match item {
                    Value::String(s) if !allowed.contains(&s.as_str()) => {
                        return fail(not_one_of(s, allowed), suggestion(s, allowed));
                    }
                    Value::String(s) if !seen.insert(s.as_str()) => {
                        return fail(format!("lists {s} more than once"), None);
                    }
                    Value::String(_) => {}
                    other => {
                        return fail(format!("must list strings, not {}", type_name(other)), None);
                    }
                }
            }
            true
        }
        Kind::TextList { item, max } => {
            let Value::Array(items) = &*value else {
                return fail(format!("must be a list, not {}", type_name(value)), None);
            };
            if items.len() > *max {
                return fail(
                    format!("must list at most {max} values, not {}", items.len()),
                    None,
                );
            }
            let mut seen = BTreeSet::new();
            for item_value in items {
                let Value::String(s) = item_value else {
                    return fail(
                        format!("must list strings, not {}", type_name(item_value)),
                        None,
                    );
                };
                if let Err(message) = check_text(item, s) {
                    return fail(format!("{}: {message}", quoted(s)), None);
                }
                if !seen.insert(s.as_str()) {
                    return fail(format!("lists {} more than once", quoted(s)), None);
                }
            }
            true
        }
        Kind::Bool => match &*value {
            Value::Bool(_) => true,
            other => fail(format!("must be true or false, not {}", shown(other)), None),
        },
        Kind::Number { min, max } => match value.as_f64() {
            Some(n) if value.is_number() && (*min..=*max).contains(&n) => true,
            Some(_) if value.is_number() => fail(
                format!("must be between {min} and {max}, not {value}"),
                None,
            ),
            _ => fail(format!("must be a number, not {}", shown(value)), None),
        },
        Kind::Integer { min, max } => match value.as_i64() {
            Some(n) if (*min..=*max).contains(&n) => true,
            Some(n) => fail(format!("must be between {min} and {max}, not {n}"), None),
            None => fail(
                format!("must be a whole number, not {}", shown(value)),
                None,
            ),
        },
        Kind::Date => match &*value {
            Value::String(s) if parse_date(s).is_some() => true,
            other => fail(
                format!("must be a date as YYYY-MM-DD, not {}", shown(other)),
                None,
            ),
        },
        Kind::Object(children) => match value {
            Value::Object(object) => {
                check_object(children, object, &path(), problems);
                true
            }
            other => fail(format!("must be an object, not {}", type_name(other)), None),
        },
        Kind::ObjectList(children) => match value {
            Value::Array(items) => {
                let path = path();
                for (i, item) in items.iter_mut().enumerate() {
                    let item_path = format!("{path}.{i}");
                    match item {
                        Value::Object(object) => {
                            check_object(children, object, &item_path, problems);
                        }
                        other => problems.push(FieldProblem {
                            path: item_path,
                            message: format!("must be an object, not {}", type_name(other)),
                            suggestion: None,
                        }),
                    }
                }
                true
            }
            other => fail(format!("must be a list, not {}", type_name(other)), None),
        },
    }
}

pub(crate) fn check_text(rule: &Text, s: &str) -> Result<(), String> {
    let len = s.chars().count();
    if len < rule.min || len > rule.max {
        return Err(if rule.min == rule.max {
            format!(
                "must be exactly {} characters long, not {}",
                rule.min,
                quoted(s)
            )
        } else if len < rule.min {
            format!("must be at least {} characters long", rule.min)
        } else {
            format!("must be at most {} characters long, not {len}", rule.max)
        });
    }
    if let Some(c) = crate::text::control_character(s) {
        return Err(crate::text::control_character_message(c));
    }
    match &rule.check {
        Check::None => Ok(()),
        Check::Pattern(p) if p.is_match(s) => Ok(()),
        Check::Pattern(p) => Err(format!("must be {}, not {}", p.explain, quoted(s))),
        Check::Email if is_email(s) => Ok(()),
        Check::Email => Err(format!("is not an e-mail address: {}", quoted(s))),
        Check::NoMojibake if !s.contains(['\u{FFFD}', '\u{A0}', '?']) => Ok(()),
        Check::NoMojibake => Err(
            "must not contain '?', non-breaking spaces or replacement characters (check the file's encoding)"
                .to_owned(),
        ),
    }
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain
            .split_once('.')
            .is_some_and(|(host, tld)| !host.is_empty() && !tld.is_empty() && !tld.ends_with('.'))
}

/// Parses a contract date, `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
}

/// The allowed value nearest to `value`, when one is near.
fn suggestion(value: &str, allowed: &[&str]) -> Option<String> {
    crate::suggest::closest(value, allowed.iter().copied()).map(str::to_owned)
}

fn not_one_of(value: &str, allowed: &[&str]) -> String {
    let mut message = format!("{} is not one of {}", quoted(value), allowed.join(", "));
    if let Some(near) = crate::suggest::closest(value, allowed.iter().copied()) {
        message.push_str(&format!(" (did you mean {near}?)"));
    }
    message
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of an offending value for a message.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => quoted(s),
        Value::Array(_) | Value::Object(_) => type_name(value).to_owned(),
        other => other.to_string(),
    }
}

fn quoted(s: &str) -> String {
    const LIMIT: usize = 64;
    if s.chars().count() > LIMIT {
        let cut: String = s.chars().take(LIMIT).collect();
        format!("\"{cut}…\"")
    } else {
        format!("\"{s}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn minimal() -> Value {
        json!({
            "partner_reference": "ref-001",
            "transmission_region": "CAISO",
            "customer_classification": "RESIDENTIAL",
            "load_types": ["HVAC"],
            "meter_type": "DEVICE",
            "customer": {
                "street_1": "1 Main St",
                "postal_code": "94105",
                "city": "San Francisco",
                "state_or_province_code": "CA",
                "country_code": "US"
            }
        })
    }

    fn problems(value: Value) -> Vec<(String, String)> {
        MeterData::parse(value)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect()
    }

    #[test]
    fn a_minimal_meter_is_valid_and_exposes_its_identifiers() {
        let data = MeterData::parse(minimal()).unwrap();
        assert_eq!(data.partner_reference(), "ref-001");
        assert_eq!(data.transmission_region(), TransmissionRegion::Caiso);
        assert_eq!(data.load_types(), vec![LoadType::Hvac]);
        assert_eq!(data.get("customer.city"), Some(&json!("San Francisco")));
    }

    #[test]
    fn every_missing_global_field_is_reported() {
        let found = problems(json!({"customer": {}}));
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        for required in [
            "partner_reference",
            "transmission_region",
            "customer_classification",
            "load_types",
            "meter_type",
            "customer.street_1",
            "customer.postal_code",
            "customer.city",
            "customer.state_or_province_code",
            "customer.country_code",
        ] {
            assert!(
                paths.contains(&required),
                "{required} not reported in {paths:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_named_with_a_suggestion() {
        let mut value = minimal();
        value["customer"]["postalcode"] = json!("94105");
        value["colour"] = json!("red");
        let found = problems(value);
        assert!(found.contains(&("colour".into(), "unknown field".into())));
        assert!(
            found
                .iter()
                .any(|(p, m)| p == "customer.postalcode" && m.contains("did you mean postal_code"))
        );
    }

    #[test]
    fn a_misspelt_field_or_value_carries_the_nearest_one_as_its_suggestion() {
        let mut value = minimal();
        value["customer"]["postalcode"] = json!("94105");
        value["transmission_region"] = json!("CAISOO");
        value["colour"] = json!("red");
        let found = MeterData::parse(value).unwrap_err();
        let suggestion = |path: &str| {
            found
                .iter()
                .find(|p| p.path == path)
                .map(|p| p.suggestion.clone())
        };
        assert_eq!(
            suggestion("customer.postalcode"),
            Some(Some("customer.postal_code".to_owned()))
        );
        assert_eq!(
            suggestion("transmission_region"),
            Some(Some("CAISO".to_owned()))
        );
        assert_eq!(suggestion("colour"), Some(None), "nothing is near");
    }

    #[test]
    fn nulls_count_as_absent() {
        let mut value = minimal();
        value["device"] = Value::Null;
        value["customer"]["street_2"] = Value::Null;
        let data = MeterData::parse(value).unwrap();
        assert!(data.get("device").is_none());
        assert!(data.get("customer.street_2").is_none());
    }

    #[test]
    fn malformed_values_are_reported_once_each() {
        let mut value = minimal();
        value["transmission_region"] = json!("CAISOX");
        value["load_types"] = json!([]);
        value["customer"]["postal_code"] = json!(94105);
        value["device"] = json!({"install_date": "2024-02-30", "battery_duration_hours": 101});
        value["site"] = json!({"site_devices": [{"model": "x"}], "number_of_devices": 1.5});
        let found = problems(value);
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "customer.postal_code",
                "device.battery_duration_hours",
                "device.install_date",
                "load_types",
                "site.number_of_devices",
                "site.site_devices.0.device_type",
                "transmission_region",
            ]
        );
        assert!(found[6].1.contains("did you mean CAISO"));
    }

    #[test]
    fn lengths_patterns_and_ranges_follow_the_contract() {
        let cases = [
            ("partner_reference", json!("ab")),
            ("partner_reference", json!("a/b/c")),
            ("customer_group", json!("x".repeat(129))),
            ("load_types", json!(["HVAC", "HVAC"])),
        ];
        for (key, bad) in cases {
            let mut value = minimal();
            value[key] = bad.clone();
            let found = problems(value);
            assert_eq!(found.len(), 1, "{key}={bad}: {found:?}");
            assert_eq!(found[0].0, key);
        }
        let mut value = minimal();
        value["customer"]["end_customer_email"] = json!("not-an-email");
        value["customer"]["end_customer_name"] = json!("Jos\u{FFFD}");
        value["customer"]["state_or_province_code"] = json!("CAL");
        value["site"] = json!({"site_devices": [{"device_type": "BATTERY", "battery_max_state_of_charge_percentage": 1}]});
        let found = problems(value);
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn email_check_accepts_ordinary_addresses() {
        assert!(is_email("audrey@dummyemail.com"));
        assert!(is_email("a.b+c@sub.example.org"));
        assert!(!is_email("a@b"));
        assert!(!is_email("@b.com"));
        assert!(!is_email("a b@c.com"));
        assert!(!is_email("a@b@c.com"));
    }
}
