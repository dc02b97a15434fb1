//! Reading a CSV body: the header row resolves the columns, then each row is validated
//! and handed on. No line may grow past [`MAX_LINE_BYTES`] while it is read, so a file
//! of one endless line costs no more memory than a file of short ones.

use std::io::Read;
use std::ops::ControlFlow;

use super::bounded::{Bounded, Piece, too_long};
use super::{IntakeError, Problem, Run};
use crate::csv_layout::CsvLayout;

/// The longest row, or header row, a CSV body may have, in bytes.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The longest cell, in bytes. No field takes more than 256 characters (1,024 bytes of
/// UTF-8) and no list cell comes near it; the rest leaves room for padding.
pub const MAX_CELL_BYTES: usize = 4 * 1024;

/// The CSV reader's own buffer, which it may fill ahead of the row it is parsing.
const BUFFER: usize = 64 * 1024;

pub(super) fn read_csv<R: Read>(body: R, run: &mut Run<'_>) -> Result<(), IntakeError> {
    let line = Piece::new(MAX_LINE_BYTES, BUFFER);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(BUFFER)
        .from_reader(Bounded::new(body, line.clone()));
    let mut record = csv::StringRecord::new();
    let layout = match reader.read_record(&mut record) {
        Ok(false) => {
            run.problems.push(Problem::general(
                "the body is empty: a CSV file with a header row is required",
            ));
            return Ok(());
        }
        Ok(true) => {
            line.start_at(reader.position().byte(), MAX_LINE_BYTES);
            if let Some(problems) =
                long_cells(&record, 1, |column| crate::suggest::clip(&record[column]))
            {
                problems.into_iter().for_each(|p| run.problems.push(p));
                return Ok(());
            }
            let header = record.iter().enumerate().map(|(i, name)| {
                // Spreadsheets save a UTF-8 byte order mark before the first name.
                if i == 0 {
                    name.trim_start_matches('\u{feff}')
                } else {
                    name
                }
            });
            match CsvLayout::from_header(header) {
                Ok(layout) => layout,
                Err(found) => {
                    for p in found {
                        run.problems.push(Problem {
                            message: p.message,
                            json_index: None,
                            csv_row: Some(1),
                            problem_field: Some(p.column),
                            suggestion: None,
                        });
                    }
                    return Ok(());
                }
            }
        }
        Err(e) => return csv_failure(e, 1, run).map(drop),
    };

    let mut row = 1;
    loop {
        row += 1;
        let read = reader.read_record(&mut record);
        line.start_at(reader.position().byte(), MAX_LINE_BYTES);
        match read {
            Ok(false) => return Ok(()),
            Ok(true) if record.iter().all(|cell| cell.trim().is_empty()) => {}
            Ok(true) if record.len() != layout.len() => run.problems.push(Problem {
                message: format!(
                    "the row has {} cells but the header has {} columns",
                    record.len(),
                    layout.len()
                ),
                json_index: None,
                csv_row: Some(row),
                problem_field: None,
                suggestion: None,
            }),
            Ok(true) => {
                if let Some(problems) =
                    long_cells(&record, row, |column| layout.column_name(column))
                {
                    problems.into_iter().for_each(|p| run.problems.push(p));
                    continue;
                }
                // Most rows are valid: write those straight into the compact form, and
                // build the document only to say what is wrong with the others.
                if !run.take_compact_row(&layout, &record) {
                    let value = layout.row_to_value(record.iter());
                    run.take(row, value, Vec::new(), |path, message| Problem {
                        message,
                        json_index: None,
                        csv_row: Some(row),
                        problem_field: Some(layout.column_for(&path)),
                        suggestion: None,
                    });
                }
            }
            Err(e) => {
                if csv_failure(e, row, run)?.is_break() {
                    return Ok(());
                }
            }
        }
        if run.stopped {
            return Ok(());
        }
    }
}

/// One problem per cell of a row that is longer than any field takes, if there are any.
fn long_cells(
    record: &csv::StringRecord,
    row: usize,
    column: impl Fn(usize) -> String,
) -> Option<Vec<Problem>> {
    let problems: Vec<Problem> = record
        .iter()
        .enumerate()
        .filter(|(_, cell)| cell.len() > MAX_CELL_BYTES)
        .map(|(i, cell)| Problem {
            message: format!(
                "the cell is {} bytes long; a cell takes at most {MAX_CELL_BYTES} bytes",
                cell.len()
            ),
            json_index: None,
            csv_row: Some(row),
            problem_field: Some(column(i)),
            suggestion: None,
        })
        .collect();
    (!problems.is_empty()).then_some(problems)
}

/// Records what went wrong reading a row. `Break` when the rest of the body cannot be
/// read: a row past the length limit ends the reading (its end is not known).
fn csv_failure(
    error: csv::Error,
    row: usize,
    run: &mut Run<'_>,
) -> Result<ControlFlow<()>, IntakeError> {
    match error.into_kind() {
        csv::ErrorKind::Io(e) => match too_long(&e) {
            Some(limit) => {
                let what = if row == 1 {
                    "the header row"
                } else {
                    "the row"
                };
                run.problems.push(Problem {
                    message: format!(
                        "{what} is longer than {limit} bytes, the most a row may take; the rest of the file was not checked"
                    ),
                    json_index: None,
                    csv_row: Some(row),
                    problem_field: None,
                    suggestion: None,
                });
                Ok(ControlFlow::Break(()))
            }
            None => Err(IntakeError::Read(e)),
        },
        csv::ErrorKind::Utf8 { .. } => {
            run.problems.push(Problem {
                message: "the row is not valid UTF-8: save the file as CSV UTF-8".to_owned(),
                json_index: None,
                csv_row: Some(row),
                problem_field: None,
                suggestion: None,
            });
            Ok(ControlFlow::Continue(()))
        }
        other => {
            run.problems.push(Problem {
                message: format!("the CSV cannot be read: {other:?}"),
                json_index: None,
                csv_row: Some(row),
                problem_field: None,
                suggestion: None,
            });
            Ok(ControlFlow::Continue(()))
        }
    }
}
