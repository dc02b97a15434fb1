//! How commands print what they found: a table for people, JSON for scripts (one object
//! per line for lists, so that a script reads them as they come), or CSV. Results go to
//! standard output; messages and progress go to standard error.

use std::io::Write;

use clap::ValueEnum;
use serde_json::Value;

/// The form of a command's result on standard output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns, for reading.
    #[default]
    Table,
    /// JSON: one object, or one object per line for a list; stable for scripts.
    Json,
    /// CSV with a header row.
    Csv,
}

/// Rows of text under a header, printed in the chosen form. `records` are the JSON
/// objects the rows were made from, printed as they are for `--output json`.
pub struct Listing {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub records: Vec<Value>,
}

impl Listing {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
            records: Vec::new(),
        }
    }

    /// Adds one row and the JSON record it shows.
    pub fn push(&mut self, row: Vec<String>, record: Value) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
        self.records.push(record);
    }

    pub fn print(&self, output: Output) -> anyhow::Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match output {
            Output::Json => {
                for record in &self.records {
                    writeln!(out, "{record}")?;
                }
            }
            Output::Csv => {
                let mut writer = csv::Writer::from_writer(out);
                writer.write_record(&self.header)?;
                for row in &self.rows {
                    writer.write_record(row)?;
                }
                writer.flush()?;
            }
            Output::Table => write_table(&mut out, &self.header, &self.rows)?,
        }
        Ok(())
    }
}

/// Columns padded to their widest cell, two spaces apart.
pub fn write_table(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                text.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &mut header.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// Prints one JSON value on a line of its own.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    print_line(&value.to_string())
}

/// Prints a line on standard output; a reader that went away (`| head`) is an error to
/// stop at, not a panic.
pub fn print_line(text: &str) -> anyhow::Result<()> {
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// Whether an error is standard output's reader having gone away.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The strings of a JSON array, joined by `separator`; empty when it is no array.
pub fn joined(value: &Value, separator: &str) -> String {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(separator)
        })
        .unwrap_or_default()
}

/// A JSON string as a table's cell; empty when it is no string.
pub fn cell(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// What keeps a meter out of a program, as one cell: the fields it lacks, then why it is
/// ineligible.
pub fn what_it_lacks(program: &Value) -> String {
    [
        joined(&program["missing_fields"], "; "),
        joined(&program["ineligibility_reasons"], "; "),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join("; ")
}

/// A stored instant as the tables show it: `2026-11-27 14:05 UTC`.
pub fn when(millis: i64) -> String {
    use time::macros::format_description;
    gridroll_domain::timestamp::from_millis(millis)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

/// An optional instant, `never` when absent.
pub fn when_or(millis: Option<i64>, absent: &str) -> String {
    millis.map_or_else(|| absent.to_owned(), when)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_every_column_but_the_last() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a".to_owned(), "long cell".to_owned(), "x".to_owned()],
            vec!["bbbb".to_owned(), "c".to_owned(), "".to_owned()],
        ];
        write_table(&mut out, &["H1", "H2", "H3"], &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "H1    H2         H3\na     long cell  x\nbbbb  c\n"
        );
    }
}
