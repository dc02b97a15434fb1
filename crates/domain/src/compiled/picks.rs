//! Picking a few fields out of a meter's compact form (see [`crate::compact`]) without
//! decoding the rest. The wanted fields are laid out once as a tree of their positions
//! over the model's objects; one pass over a meter's text then keeps the JSON text of
//! each wanted value and skips every other value without building it.
//!
//! What is skipped is still checked for its shape as [`crate::compact::decode`] checks
//! it (an array or `null` for each object, an array of arrays for a list of objects, no
//! more positions than the object has fields, nothing after the meter), so a text the
//! decoder refuses is refused here too. The one check left out is the content of the
//! escapes in strings that are skipped, which only this build writes.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::compact::{DecodeError, Optional};
use crate::schema::{CREATE_METER, Field, Kind};

/// The fields an evaluation reads, each with its slot in the values [`Picks::read`] fills.
#[derive(Debug, Default)]
pub struct Picks {
    root: ObjectPicks,
    len: usize,
}

/// What is wanted of an object's positions, by position; positions past the end are
/// skipped.
#[derive(Debug, Default)]
struct ObjectPicks {
    at: Vec<Pick>,
}

#[derive(Debug)]
enum Pick {
    Skip,
    /// A leaf value, kept in this slot.
    Leaf(usize),
    Object(ObjectPicks),
    /// Items of a list of objects, by index, in order.
    List(Vec<(usize, ObjectPicks)>),
}

impl Picks {
    /// The slot of the leaf field at a dotted path (`utility.utility_name`,
    /// `site.site_devices.0.model`), added unless a path to the same position was; `None`
    /// when the path names no leaf of the model.
    pub fn add(&mut self, path: &str) -> Option<usize> {
        let Self { root, len } = self;
        let mut fields = CREATE_METER;
        let mut node = root;
        let mut segments = path.split('.');
        loop {
            let segment = segments.next()?;
            let i = fields.iter().position(|f| f.name == segment)?;
            if node.at.len() <= i {
                node.at.resize_with(i + 1, || Pick::Skip);
            }
            let pick = &mut node.at[i];
            match fields[i].kind {
                Kind::Object(children) => {
                    if !matches!(pick, Pick::Object(_)) {
                        *pick = Pick::Object(ObjectPicks::default());
                    }
                    let Pick::Object(inner) = pick else {
                        unreachable!("made an object just above")
                    };
                    node = inner;
                    fields = children;
                }
                Kind::ObjectList(children) => {
                    let index: usize = segments.next()?.parse().ok()?;
                    if !matches!(pick, Pick::List(_)) {
                        *pick = Pick::List(Vec::new());
                    }
                    let Pick::List(items) = pick else {
                        unreachable!("made a list just above")
                    };
                    let k = match items.binary_search_by_key(&index, |(n, _)| *n) {
                        Ok(k) => k,
                        Err(k) => {
                            items.insert(k, (index, ObjectPicks::default()));
                            k
                        }
                    };
                    node = &mut items[k].1;
                    fields = children;
                }
                _ => {
                    if segments.next().is_some() {
                        return None;
                    }
                    return Some(match pick {
                        Pick::Leaf(slot) => *slot,
                        _ => {
                            *pick = Pick::Leaf(*len);
                            *len += 1;
                            *len - 1
                        }
                    });
                }
            }
        }
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Reads a meter's compact form, keeping in `values[slot]` the JSON text of each
    /// wanted field that is present (not `null`); absent ones are left as they were.
    pub fn read<'t>(
        &self,
        text: &'t str,
        values: &mut [Option<&'t str>],
    ) -> Result<(), DecodeError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        Walk {
            fields: CREATE_METER,
            picks: Some(&self.root),
            values,
        }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
        .map_err(DecodeError::new)
    }
}

/// An object of the model (these are its fields) read from its array of positions,
/// keeping what `picks` asks for (nothing, when `None`).
struct Walk<'p, 'v, 't> {
    fields: &'static [Field],
    picks: Option<&'p ObjectPicks>,
    values: &'v mut [Option<&'t str>],
}

impl<'t> DeserializeSeed<'t> for Walk<'_, '_, 't> {
    type Value = ();

    fn deserialize<D: Deserializer<'t>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'t> Visitor<'t> for Walk<'_, '_, 't> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of the meter model as an array of its fields")
    }

    fn visit_seq<A: SeqAccess<'t>>(self, mut seq: A) -> Result<(), A::Error> {
        let values = self.values;
        for (i, field) in self.fields.iter().enumerate() {
            let pick = self.picks.and_then(|p| p.at.get(i));
            let present = match (pick, &field.kind) {
                (Some(Pick::Leaf(slot)), _) => seq.next_element::<&RawValue>()?.map(|raw| {
                    let raw = raw.get();
                    if raw != "null" {
                        values[*slot] = Some(raw);
                    }
                }),
                (_, Kind::Object(children)) => seq
                    .next_element_seed(Optional(Walk {
                        fields: children,
                        picks: match pick {
                            Some(Pick::Object(inner)) => Some(inner),
                            _ => None,
                        },
                        values: &mut *values,
                    }))?
                    .map(drop),
                (_, Kind::ObjectList(children)) => seq
                    .next_element_seed(Optional(WalkList {
                        fields: children,
                        items: match pick {
                            Some(Pick::List(items)) => items,
                            _ => &[],
                        },
                        values: &mut *values,
                    }))?
                    .map(drop),
                _ => seq.next_element::<IgnoredAny>()?.map(drop),
            };
            if present.is_none() {
                // The array ended: the remaining fields are absent.
                return Ok(());
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!(
                "an object with more positions than its {} fields",
                self.fields.len()
            )));
        }
        Ok(())
    }
}

/// A list of objects of the model (these are their fields), keeping what is asked of
/// some of its items.
struct WalkList<'p, 'v, 't> {
    fields: &'static [Field],
    items: &'p [(usize, ObjectPicks)],
    values: &'v mut [Option<&'t str>],
}

impl<'t> DeserializeSeed<'t> for WalkList<'_, '_, 't> {
    type Value = ();

    fn deserialize<D: Deserializer<'t>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'t> Visitor<'t> for WalkList<'_, '_, 't> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of objects of the meter model")
    }

    fn visit_seq<A: SeqAccess<'t>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut wanted = self.items.iter().peekable();
        for index in 0.. {
            let picks = wanted.next_if(|(n, _)| *n == index).map(|(_, picks)| picks);
            let item = Walk {
                fields: self.fields,
                picks,
                values: &mut *self.values,
            };
            if seq.next_element_seed(item)?.is_none() {
                break;
            }
        }
        Ok(())
    }
}
