//! Building a JSON value that notes every key an object gives twice, which
//! `serde_json::Value` would silently resolve to the last one.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Where a value sits in the document, as a chain of parents: a dotted path is built only
/// for a key that is given twice.
#[derive(Clone, Copy)]
pub enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Index(Path::Root, index) => write!(f, "{index}"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}.{index}"),
        }
    }
}

/// Deserializes a value, adding to `duplicates` the path of every key given twice in one
/// object (the first value is kept).
pub struct Strict<'p, 'd> {
    pub path: Path<'p>,
    pub duplicates: &'d mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict {
            path: Path::Index(&self.path, items.len()),
            duplicates: &mut *self.duplicates,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict {
                path: Path::Key(&self.path, &key),
                duplicates: &mut *self.duplicates,
            })?;
            if object.contains_key(&key) {
                self.duplicates
                    .push(Path::Key(&self.path, &key).to_string());
            } else {
                object.insert(key, value);
            }
        }
        Ok(Value::Object(object))
    }
}

/// Parses a whole JSON document, refusing it if any object gives a key twice: the error
/// names each such key by its dotted path.
pub fn parse_document(bytes: &[u8]) -> Result<Value, DocumentError> {
    let mut duplicates = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict {
        path: Path::Root,
        duplicates: &mut duplicates,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value))
    .map_err(DocumentError::Syntax)?;
    if duplicates.is_empty() {
        Ok(value)
    } else {
        Err(DocumentError::Duplicates(duplicates))
    }
}

/// Why a JSON document was refused.
#[derive(Debug)]
pub enum DocumentError {
    Syntax(serde_json::Error),
    /// The paths of the keys given twice.
    Duplicates(Vec<String>),
}

/// The message of a key given twice.
pub const DUPLICATE_KEY: &str = "is given more than once; each field may appear only once";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_named_by_its_path_at_any_depth() {
        let body = br#"{"a": 1, "b": {"c": [{"d": 1, "d": 2}], "c2": 3, "c2": 4}, "a": 5}"#;
        match parse_document(body) {
            Err(DocumentError::Duplicates(paths)) => {
                assert_eq!(paths, vec!["b.c.0.d", "b.c2", "a"]);
            }
            other => panic!("expected duplicates, got {other:?}"),
        }
    }

    #[test]
    fn a_document_without_repeated_keys_is_the_value_serde_json_reads() {
        let body = br#"{"a": [1, -2, 3.5, "x", null, true], "b": {"c": {}}}"#;
        let strict = parse_document(body).unwrap();
        let plain: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(strict, plain);
    }
}
