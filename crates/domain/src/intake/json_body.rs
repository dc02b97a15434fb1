//! Reading a JSON body, `{"assets": [...]}`, one asset at a time. No asset may take more
//! than [`MAX_ASSET_BYTES`] of the body while it is read, and a key given twice in an
//! asset is a problem rather than silently the last one.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufReader, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::bounded::{Bounded, Piece, too_long};
use super::strict::{DUPLICATE_KEY, Path, Strict};
use super::{IntakeError, Problem, Problems, Run};

/// The most bytes one asset of a JSON body may take (and the body around the assets).
pub const MAX_ASSET_BYTES: usize = 1024 * 1024;

/// The buffer between the body and the parser, which it may fill ahead of the asset it
/// is parsing.
const BUFFER: usize = 64 * 1024;

pub(super) fn read_json<R: Read>(body: R, run: &mut Run<'_>) -> Result<(), IntakeError> {
    let piece = Piece::new(MAX_ASSET_BYTES, BUFFER);
    let reader = BufReader::with_capacity(BUFFER, Bounded::new(body, piece.clone()));
    let mut de = serde_json::Deserializer::from_reader(reader);
    // The asset being read, for saying which one was too long.
    let at = Cell::new(None);
    let result = de
        .deserialize_map(Body {
            run,
            piece: &piece,
            at: &at,
        })
        .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is_io() => {
            let e = io::Error::from(e);
            match too_long(&e) {
                Some(limit) => {
                    run.problems.push(Problem {
                        message: match at.get() {
                            Some(_) => format!(
                                "the asset is longer than {limit} bytes, the most an asset may take; the rest of the body was not checked"
                            ),
                            None => format!(
                                "the body holds more than {limit} bytes outside its assets; the rest of the body was not checked"
                            ),
                        },
                        json_index: at.get(),
                        csv_row: None,
                        problem_field: None,
                        suggestion: None,
                    });
                    Ok(())
                }
                None => Err(IntakeError::Read(e)),
            }
        }
        Err(e) if e.is_eof() && e.line() == 1 && e.column() == 0 => {
            Err(IntakeError::Rejected(Problems::single(Problem::general(
                "the body is empty: a JSON object with an assets array is required",
            ))))
        }
        Err(e) => {
            run.problems.push(Problem::general(format!(
                "the body is not valid JSON of the form {{\"assets\": [...]}}: {e}"
            )));
            Ok(())
        }
    }
}

/// The top-level `{"assets": [...]}` object.
struct Body<'r, 's> {
    run: &'r mut Run<'s>,
    piece: &'r Piece,
    at: &'r Cell<Option<usize>>,
}

impl<'de> Visitor<'de> for Body<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with an assets array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen_assets = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "assets" && !seen_assets {
                seen_assets = true;
                map.next_value_seed(Assets {
                    run: &mut *self.run,
                    piece: self.piece,
                    at: self.at,
                })?;
                // What follows the assets is bounded afresh.
                self.at.set(None);
                self.piece.start_here(MAX_ASSET_BYTES);
            } else {
                self.run.problems.push(Problem {
                    message: if key == "assets" {
                        "assets is given twice".to_owned()
                    } else {
                        "unknown field: the body holds only assets".to_owned()
                    },
                    json_index: None,
                    csv_row: None,
                    problem_field: Some(key),
                    suggestion: None,
                });
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !seen_assets {
            self.run.problems.push(Problem {
                message: "is required".to_owned(),
                json_index: None,
                csv_row: None,
                problem_field: Some("assets".to_owned()),
                suggestion: None,
            });
        }
        Ok(())
    }
}

struct Assets<'r, 's> {
    run: &'r mut Run<'s>,
    piece: &'r Piece,
    at: &'r Cell<Option<usize>>,
}

impl<'de> DeserializeSeed<'de> for Assets<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Assets<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of meters")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            self.at.set(Some(index));
            self.piece.start_here(MAX_ASSET_BYTES);
            let mut duplicates = Vec::new();
            let Some(value) = seq.next_element_seed(Strict {
                path: Path::Root,
                duplicates: &mut duplicates,
            })?
            else {
                break;
            };
            let locate = |path, message| Problem {
                message,
                json_index: Some(index),
                csv_row: None,
                problem_field: Some(path),
                suggestion: None,
            };
            let duplicates = duplicates
                .into_iter()
                .map(|path| (path, DUPLICATE_KEY.to_owned()))
                .collect();
            self.run.take(index, value, duplicates, locate);
            index += 1;
            if self.run.stopped {
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(
            "assets must be an array of meters, not an object",
        ))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(de::Error::custom(
            "assets must be an array of meters, not a string",
        ))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(de::Error::custom(
            "assets must be an array of meters, not a number",
        ))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(de::Error::custom(
            "assets must be an array of meters, not a number",
        ))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(de::Error::custom(
            "assets must be an array of meters, not a number",
        ))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(de::Error::custom(
            "assets must be an array of meters, not a boolean",
        ))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(de::Error::custom(
            "assets must be an array of meters, not null",
        ))
    }
}
