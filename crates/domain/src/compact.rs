//! The compact form in which a job stores each asset it received, and a meter its data:
//! the meter data as a JSON array in the order of the fields of [`CREATE_METER`], each
//! object nested as an array of its own fields, absent fields `null` and trailing absent
//! fields left out.
//!
//! `{"partner_reference":"m-1","transmission_region":"ERCOT",...,"utility":{"tariff":"A-1"}}`
//! is stored as `["m-1","ERCOT",...,[null,null,null,"A-1"]]`: the values without their
//! names, about half the bytes. Positions are part of the stored format, so the model only
//! ever gains fields at the end of an object; the tests hold a job input as this format
//! was first written, which later builds must keep reading the same.
//!
//! SQL reaches a field through [`position`]: `device.device_serial_number` is `$[6][1]`.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::enums::{CustomerClassification, MeterType, TransmissionRegion};
use crate::meter::MeterData;
use crate::schema::{CREATE_METER, Field, Kind};

/// Stored data that is not a compact meter: the database holds something this build did
/// not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "compact meter data: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    pub(crate) fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }
}

/// A valid asset as a job stores it: its data in the compact form, with the values of the
/// fields that searches filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactAsset {
    pub partner_reference: String,
    pub transmission_region: TransmissionRegion,
    pub customer_classification: CustomerClassification,
    pub meter_type: MeterType,
    /// The load types as a JSON array.
    pub load_types: String,
    pub customer_group: Option<String>,
    pub data: String,
}

impl CompactAsset {
    pub fn of(data: &MeterData) -> Self {
        Self {
            partner_reference: data.partner_reference().to_owned(),
            transmission_region: data.transmission_region(),
            customer_classification: data.customer_classification(),
            meter_type: data.meter_type(),
            load_types: data.as_map().get("load_types").map_or_else(
                || "[]".to_owned(),
                |v| serde_json::to_string(v).expect("a JSON value serializes"),
            ),
            customer_group: data.customer_group().map(str::to_owned),
            data: encode(data),
        }
    }
}

/// Writes meter data in its compact form.
pub fn encode(data: &MeterData) -> String {
    let mut out = Vec::with_capacity(384);
    write_object(CREATE_METER, data.as_map(), &mut out);
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// The most fields an object of the model has; the tests check it.
const MAX_FIELDS: usize = 32;

fn write_object(fields: &[Field], map: &Map<String, Value>, out: &mut Vec<u8>) {
    // Each present value in its field's slot: one pass over what the object holds,
    // rather than a lookup for every field the model has.
    let mut slots: [Option<&Value>; MAX_FIELDS] = [None; MAX_FIELDS];
    let mut present = 0;
    for (name, value) in map {
        if let Some(i) = fields.iter().position(|f| f.name == name) {
            slots[i] = Some(value);
            present = present.max(i + 1);
        }
    }
    out.push(b'[');
    for (i, (field, slot)) in fields.iter().zip(&slots[..present]).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match (slot, &field.kind) {
            (None, _) => out.extend_from_slice(b"null"),
            (Some(Value::Object(object)), Kind::Object(children)) => {
                write_object(children, object, out);
            }
            (Some(Value::Array(items)), Kind::ObjectList(children)) => {
                out.push(b'[');
                for (j, item) in items.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    match item {
                        Value::Object(object) => write_object(children, object, out),
                        other => write_value(other, out),
                    }
                }
                out.push(b']');
            }
            (Some(value), _) => write_value(value, out),
        }
    }
    out.push(b']');
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("a JSON value serializes");
}

/// Reads meter data from its compact form, straight into the meter's objects: the
/// model says what each position holds, so no intermediate tree is built.
pub fn decode(text: &str) -> Result<MeterData, DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let map = ObjectSeed(CREATE_METER)
        .deserialize(&mut deserializer)
        .and_then(|map| deserializer.end().map(|()| map))
        .map_err(|e| DecodeError(e.to_string()))?;
    Ok(MeterData::from_stored(map))
}

/// Writes meter data from its compact form as the JSON object it stands for, its fields
/// in the model's order: the hot read of a meter copies each value's text and builds no
/// tree. The object is the one [`decode`] gives, its keys in the model's order rather
/// than the map's.
pub fn write_object_json(text: &str, out: &mut String) -> Result<(), DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    ObjectWriter {
        fields: CREATE_METER,
        out,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end())
    .map_err(|e| DecodeError(e.to_string()))
}

/// Writes an object of the model (these are its fields) from its array of positions.
struct ObjectWriter<'o> {
    fields: &'static [Field],
    out: &'o mut String,
}

impl<'de> DeserializeSeed<'de> for ObjectWriter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ObjectWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of the meter model as an array of its fields")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push('{');
        let mut first = true;
        for field in self.fields {
            // Where this field's name and value would go, if it turns out present.
            let mark = out.len();
            if !first {
                out.push(',');
            }
            // Names are identifiers of the model: nothing in them needs escaping.
            out.push('"');
            out.push_str(field.name);
            out.push_str("\":");
            let present = match field.kind {
                Kind::Object(children) => seq.next_element_seed(Optional(ObjectWriter {
                    fields: children,
                    out: &mut *out,
                }))?,
                Kind::ObjectList(children) => seq.next_element_seed(Optional(ListWriter {
                    fields: children,
                    out: &mut *out,
                }))?,
                _ => seq.next_element::<&RawValue>()?.map(|raw| {
                    let raw = raw.get();
                    (raw != "null").then(|| out.push_str(raw))
                }),
            };
            match present {
                // The array ended: the remaining fields are absent.
                None => {
                    out.truncate(mark);
                    out.push('}');
                    return Ok(());
                }
                Some(None) => out.truncate(mark),
                Some(Some(())) => first = false,
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!(
                "an object with more positions than its {} fields",
                self.fields.len()
            )));
        }
        out.push('}');
        Ok(())
    }
}

/// Writes a list of objects of the model (these are their fields).
struct ListWriter<'o> {
    fields: &'static [Field],
    out: &'o mut String,
}

impl<'de> DeserializeSeed<'de> for ListWriter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of objects of the meter model")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push('[');
        let mut first = true;
        loop {
            let mark = out.len();
            if !first {
                out.push(',');
            }
            let item = ObjectWriter {
                fields: self.fields,
                out: &mut *out,
            };
            if seq.next_element_seed(item)?.is_none() {
                out.truncate(mark);
                out.push(']');
                return Ok(());
            }
            first = false;
        }
    }
}

/// An object of the model (these are its fields), read from its array of positions.
/// Errors locate themselves by line and column of the stored text.
struct ObjectSeed(&'static [Field]);

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of the meter model as an array of its fields")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        for field in self.0 {
            let value = match field.kind {
                Kind::Object(children) => seq
                    .next_element_seed(Optional(ObjectSeed(children)))?
                    .map(|object| object.map(Value::Object)),
                Kind::ObjectList(children) => seq
                    .next_element_seed(Optional(ListSeed(children)))?
                    .map(|list| list.map(Value::Array)),
                _ => seq
                    .next_element::<Value>()?
                    .map(|v| (!v.is_null()).then_some(v)),
            };
            match value {
                // The array ended: the remaining fields are absent.
                None => return Ok(map),
                Some(None) => {}
                Some(Some(value)) => {
                    map.insert(field.name.to_owned(), value);
                }
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!(
                "an object with more positions than its {} fields",
                self.0.len()
            )));
        }
        Ok(map)
    }
}

/// A list of objects of the model (these are their fields).
struct ListSeed(&'static [Field]);

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of objects of the meter model")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(object) = seq.next_element_seed(ObjectSeed(self.0))? {
            items.push(Value::Object(object));
        }
        Ok(items)
    }
}

/// A value that may be `null` (an absent field in the middle of an object).
pub(crate) struct Optional<S>(pub(crate) S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Optional<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Optional<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(deserializer).map(Some)
    }
}

/// The positions of a dotted path (`customer.city`, `site.site_devices.0.model`) in the
/// compact form, or `None` when the model has no such field.
pub fn position(path: &str) -> Option<Vec<usize>> {
    let mut fields = CREATE_METER;
    let mut positions = Vec::new();
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let i = fields.iter().position(|f| f.name == segment)?;
        positions.push(i);
        match fields[i].kind {
            Kind::Object(children) => fields = children,
            Kind::ObjectList(children) => {
                if segments.peek().is_some() {
                    positions.push(segments.next()?.parse().ok()?);
                }
                fields = children;
            }
            _ if segments.peek().is_some() => return None,
            _ => {}
        }
    }
    Some(positions)
}

/// The dotted path at `positions` of the compact form: the inverse of [`position`].
pub fn path_at(positions: &[usize]) -> Option<String> {
    let mut fields = CREATE_METER;
    let mut path = String::new();
    let mut at = positions.iter();
    while let Some(&i) = at.next() {
        let field = fields.get(i)?;
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(field.name);
        match field.kind {
            Kind::Object(children) => fields = children,
            Kind::ObjectList(children) => {
                if let Some(item) = at.next() {
                    path.push('.');
                    path.push_str(&item.to_string());
                }
                fields = children;
            }
            _ if at.len() > 0 => return None,
            _ => {}
        }
    }
    (!path.is_empty()).then_some(path)
}

/// The asset a job stores, read back from its compact form: the searched values taken
/// from their positions, the rest of the data left as it is.
pub fn read_asset(data: String) -> Result<CompactAsset, DecodeError> {
    fn text(raw: Option<&&RawValue>) -> Result<Option<String>, DecodeError> {
        match raw.map(|r| r.get()) {
            None | Some("null") => Ok(None),
            Some(raw) => serde_json::from_str(raw)
                .map(Some)
                .map_err(|e| DecodeError(e.to_string())),
        }
    }
    fn required<T: std::str::FromStr>(
        raw: Option<&&RawValue>,
        name: &str,
    ) -> Result<T, DecodeError> {
        text(raw)?
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| DecodeError(format!("no valid {name}")))
    }
    let top: Vec<&RawValue> =
        serde_json::from_str(&data).map_err(|e| DecodeError(e.to_string()))?;
    let at = |name: &str| top.get(TOP[name]);
    let asset = CompactAsset {
        partner_reference: text(at("partner_reference"))?
            .ok_or_else(|| DecodeError("no partner_reference".to_owned()))?,
        transmission_region: required(at("transmission_region"), "transmission_region")?,
        customer_classification: required(
            at("customer_classification"),
            "customer_classification",
        )?,
        meter_type: required(at("meter_type"), "meter_type")?,
        load_types: match at("load_types").map(|r| r.get()) {
            None | Some("null") => "[]".to_owned(),
            Some(raw) => raw.to_owned(),
        },
        customer_group: text(at("customer_group"))?,
        data: String::new(),
    };
    Ok(CompactAsset { data, ..asset })
}

/// The positions of the top-level fields of the model, by name.
static TOP: std::sync::LazyLock<std::collections::HashMap<&'static str, usize>> =
    std::sync::LazyLock::new(|| {
        CREATE_METER
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name, i))
            .collect()
    });

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;
    use strum::VariantNames;

    use super::*;

    fn meter(value: Value) -> MeterData {
        MeterData::parse(value).expect("a valid meter")
    }

    #[test]
    fn values_are_stored_by_position_without_their_names() {
        let data = meter(json!({
            "partner_reference": "m-1",
            "transmission_region": "ERCOT",
            "customer_classification": "RESIDENTIAL",
            "load_types": ["HVAC"],
            "meter_type": "DEVICE",
            "customer": {"street_1": "1 Main St", "postal_code": "77001", "city": "Houston",
                         "state_or_province_code": "TX", "country_code": "US"},
        }));
        let stored = encode(&data);
        assert!(stored.starts_with(r#"["m-1","ERCOT","RESIDENTIAL",["HVAC"],"DEVICE",["#));
        assert!(!stored.contains("partner_reference"));
        assert!(
            !stored.contains("null]"),
            "trailing absent fields are left out: {stored}"
        );
        assert_eq!(decode(&stored).unwrap(), data);
    }

    /// Written by the first build that stored job inputs compactly. It must keep reading
    /// the same: a field added anywhere but at the end of its object moves the positions
    /// of the fields after it and fails this test.
    const WRITTEN_EARLIER: &str = concat!(
        r#"["meter-42","CAISO","COMMERCIAL",["HVAC","EV_CHARGING"],"UTILITY_METER","#,
        r#"["1 Market St",null,"94105","San Francisco","CA","US","#,
        r#"null,null,null,null,null,null,null,null,null,null,"C-7"],"#,
        r#"["BATTERY","SN-1"],"#,
        r#"[null,null,null,null,null,null,null,null,null,[[null,"Model S"]]],"#,
        r#"null,null,null,["PG&E",null,null,null,null,"UM-9"],"north"]"#
    );

    #[test]
    fn a_job_input_written_by_an_earlier_build_reads_the_same() {
        let data = decode(WRITTEN_EARLIER).expect("readable");
        assert_eq!(data.partner_reference(), "meter-42");
        assert_eq!(data.customer_group(), Some("north"));
        let at = |path: &str| data.get(path).cloned();
        assert_eq!(at("customer.street_1"), Some(json!("1 Market St")));
        assert_eq!(at("customer.city"), Some(json!("San Francisco")));
        assert_eq!(at("customer.country_code"), Some(json!("US")));
        assert_eq!(
            at("customer.partner_customer_reference"),
            Some(json!("C-7"))
        );
        assert_eq!(at("device.device_serial_number"), Some(json!("SN-1")));
        assert_eq!(at("utility.utility_name"), Some(json!("PG&E")));
        assert_eq!(
            at("utility.utility_meter_serial_number"),
            Some(json!("UM-9"))
        );
        assert_eq!(at("site.site_devices.0.model"), Some(json!("Model S")));
        assert_eq!(encode(&data), WRITTEN_EARLIER);
    }

    #[test]
    fn no_object_of_the_model_has_more_fields_than_the_encoder_has_slots() {
        fn check(fields: &'static [Field]) {
            assert!(fields.len() <= MAX_FIELDS);
            for field in fields {
                if let Kind::Object(children) | Kind::ObjectList(children) = field.kind {
                    check(children);
                }
            }
        }
        check(CREATE_METER);
    }

    #[test]
    fn positions_address_nested_fields_and_list_items() {
        assert_eq!(position("partner_reference"), Some(vec![0]));
        assert_eq!(position("customer.city"), Some(vec![5, 3]));
        assert_eq!(position("device.device_serial_number"), Some(vec![6, 1]));
        assert_eq!(position("site.site_devices"), Some(vec![7, 9]));
        assert_eq!(
            position("site.site_devices.2.model"),
            Some(vec![7, 9, 2, 1])
        );
        assert_eq!(position("customer.nope"), None);
        assert_eq!(position("partner_reference.x"), None);
        assert_eq!(position("site.site_devices.x.model"), None);
    }

    #[test]
    fn a_position_reads_the_field_it_names() {
        let data = decode(WRITTEN_EARLIER).unwrap();
        let stored: Value = serde_json::from_str(WRITTEN_EARLIER).unwrap();
        for path in [
            "customer.city",
            "utility.utility_meter_serial_number",
            "site.site_devices.0.model",
        ] {
            let found = position(path)
                .unwrap()
                .iter()
                .try_fold(&stored, |v, &i| v.get(i));
            assert_eq!(found, data.get(path), "{path}");
        }
    }

    #[test]
    fn what_was_not_written_compactly_is_refused() {
        for text in [
            r#"{"partner_reference":"m-1"}"#,
            "[1,2",
            r#"["m-1","ERCOT","RESIDENTIAL",["HVAC"],"DEVICE","not an object"]"#,
            &format!("[{}]", vec!["null"; 20].join(",")),
        ] {
            assert!(decode(text).is_err(), "{text}");
            assert!(
                write_object_json(text, &mut String::new()).is_err(),
                "{text}"
            );
        }
    }

    /// The object written from the compact form, parsed.
    fn object_json(text: &str) -> Value {
        let mut out = String::new();
        write_object_json(text, &mut out).expect("compact");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    #[test]
    fn the_object_written_from_the_compact_form_is_the_meters_data() {
        let data = decode(WRITTEN_EARLIER).unwrap();
        let object = object_json(WRITTEN_EARLIER);
        assert_eq!(object, Value::Object(data.as_map().clone()));
        assert_eq!(object["customer"]["city"], "San Francisco");
        assert_eq!(
            object["site"]["site_devices"][0],
            json!({"model": "Model S"})
        );
        assert!(
            object["customer"].get("street_2").is_none(),
            "absent, not null"
        );
    }

    #[test]
    fn the_object_lists_the_fields_in_the_models_order() {
        let mut out = String::new();
        write_object_json(r#"["m-1","ERCOT",null,null,"DEVICE"]"#, &mut out).unwrap();
        assert_eq!(
            out,
            r#"{"partner_reference":"m-1","transmission_region":"ERCOT","meter_type":"DEVICE"}"#
        );
    }

    /// Any object shaped by the model's fields, whatever its values: the compact form
    /// depends on the shape only.
    fn object(fields: &'static [Field]) -> BoxedStrategy<Map<String, Value>> {
        let entries: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
            .iter()
            .map(|f| proptest::option::of(value(f).prop_map(|v| (f.name.to_owned(), v))).boxed())
            .collect();
        entries
            .prop_map(|entries| entries.into_iter().flatten().collect())
            .boxed()
    }

    fn value(field: &'static Field) -> BoxedStrategy<Value> {
        match field.kind {
            Kind::Object(children) => object(children).prop_map(Value::Object).boxed(),
            Kind::ObjectList(children) => proptest::collection::vec(object(children), 0..3)
                .prop_map(|items| Value::Array(items.into_iter().map(Value::Object).collect()))
                .boxed(),
            Kind::EnumList(_) | Kind::TextList { .. } => {
                proptest::collection::vec("[A-Z_]{1,8}", 1..3)
                    .prop_map(|v| json!(v))
                    .boxed()
            }
            Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
            // Hundredths, as partners send them: the reading of longer decimals is up to
            // the JSON parser and the same whatever form the data is stored in.
            Kind::Number { .. } => (0u32..100_000_000)
                .prop_map(|n| json!(f64::from(n) / 100.0))
                .boxed(),
            Kind::Integer { .. } => any::<i32>().prop_map(|n| json!(n)).boxed(),
            _ => "\\PC{0,12}".prop_map(Value::String).boxed(),
        }
    }

    proptest! {
        #[test]
        fn any_meter_reads_back_as_it_was_written(map in object(CREATE_METER)) {
            let data = MeterData::from_stored(map);
            prop_assert_eq!(decode(&encode(&data)).unwrap(), data);
        }

        #[test]
        fn any_meter_is_written_back_as_the_object_it_was(map in object(CREATE_METER)) {
            let stored = encode(&MeterData::from_stored(map.clone()));
            prop_assert_eq!(object_json(&stored), Value::Object(map));
        }
    }

    proptest! {
        #[test]
        fn a_stored_asset_reads_back_with_the_values_it_was_stored_with(
            mut map in object(CREATE_METER),
            reference in "\\PC{1,20}",
            region in proptest::sample::select(TransmissionRegion::VARIANTS),
            class in proptest::sample::select(CustomerClassification::VARIANTS),
            meter_type in proptest::sample::select(MeterType::VARIANTS),
        ) {
            for (key, value) in [
                ("partner_reference", reference.as_str()),
                ("transmission_region", region),
                ("customer_classification", class),
                ("meter_type", meter_type),
            ] {
                map.insert(key.to_owned(), json!(value));
            }
            let asset = CompactAsset::of(&MeterData::from_stored(map));
            prop_assert_eq!(read_asset(asset.data.clone()).unwrap(), asset);
        }
    }

    #[test]
    fn a_stored_asset_without_its_required_values_is_an_error() {
        for damaged in [
            "",
            "[]",
            "[\"m-1\"]",
            "[\"m-1\",\"NOWHERE\",\"RESIDENTIAL\",[],\"DEVICE\"]",
            "{}",
        ] {
            assert!(read_asset(damaged.to_owned()).is_err(), "{damaged}");
        }
    }

    proptest! {
        #[test]
        fn every_path_of_the_model_has_a_position_that_leads_back_to_it(
            path in proptest::sample::select(all_paths())
        ) {
            let at = position(&path).unwrap();
            prop_assert_eq!(path_at(&at), Some(path));
        }
    }

    /// Every dotted path of the model's leaves (a list's first item standing for all).
    fn all_paths() -> Vec<String> {
        fn walk(fields: &'static [Field], prefix: &str, out: &mut Vec<String>) {
            for f in fields {
                let path = if prefix.is_empty() {
                    f.name.to_owned()
                } else {
                    format!("{prefix}.{}", f.name)
                };
                match f.kind {
                    Kind::Object(children) => walk(children, &path, out),
                    Kind::ObjectList(children) => walk(children, &format!("{path}.0"), out),
                    _ => out.push(path),
                }
            }
        }
        let mut out = Vec::new();
        walk(CREATE_METER, "", &mut out);
        out
    }

    #[test]
    fn a_position_the_model_does_not_have_leads_nowhere() {
        assert_eq!(path_at(&[]), None);
        assert_eq!(path_at(&[99]), None);
        assert_eq!(path_at(&[0, 1]), None, "a leaf has no fields");
    }
}
