//! `gridroll upload` and `gridroll validate`: a file streamed to the server as it is read
//! (never whole in memory), with a bar of the bytes sent; then, when asked, the job
//! followed to its end with a bar of the assets processed.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::TryStreamExt;
use indicatif::ProgressBar;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::api::{Activity, ApiFailure, into_anyhow};
use super::jobs;
use super::{Client, Outcome, Remote, progress};
use crate::output::{Listing, Output, cell, print_line, what_it_lacks, write_table};

/// Upload files of meters, each as a job.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    gridroll upload meters.csv --wait\n  \
    gridroll upload meters.csv --update-existing --wait --failed-rows failed.csv\n  \
    JOB_ID=$(gridroll upload meters.csv --output json | jq -r .job_id)\n\n\
    Exit status: 0 every job COMPLETED (without --wait: every file was accepted), \
    3 a job COMPLETED_WITH_ERRORS, 4 a job FAILED or a file was refused (its problems are \
    listed), 1 any other error, 2 a usage error; 130 when interrupted.")]
pub struct UploadArgs {
    /// CSV or JSON files (told apart by extension, else by content); each becomes a job.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Replace all the data of the meter whose partner_reference a row has (a field left
    /// empty is removed from it); without this such a row is a DUPLICATE.
    #[arg(long)]
    update_existing: bool,
    /// The job's name, shown in job lists (default: the file's name); one file only.
    #[arg(long)]
    name: Option<String>,
    /// Follow each job until it ends, and exit with its outcome.
    #[arg(long)]
    wait: bool,
    /// With --wait: write the rows that did not become meters to this CSV file, in the
    /// upload layout, to fix and upload again.
    #[arg(long, value_name = "CSV", requires = "wait")]
    failed_rows: Option<PathBuf>,
    /// How to print the result.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    remote: Remote,
}

impl UploadArgs {
    /// `--name` names one job: with several files it is a usage error.
    pub fn name_conflict(&self) -> bool {
        self.name.is_some() && self.files.len() > 1
    }
}

/// Dry run: what an upload of a file would be refused for, and the programs each asset
/// could join.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  gridroll validate meters.csv\n\n\
    Exit status: 0 the file would be accepted, 4 it would be refused (its problems are \
    listed), 1 any other error.")]
pub struct ValidateArgs {
    /// A CSV or JSON file (at most 32 MiB; told apart by extension, else by content).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// How to print the result.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    remote: Remote,
}

/// CSV or JSON, as the server is told in `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Csv,
    Json,
}

impl Kind {
    fn content_type(self) -> &'static str {
        match self {
            Kind::Csv => "text/csv",
            Kind::Json => "application/json",
        }
    }
}

/// The kind of a file: by its extension, else by how it starts.
pub async fn kind_of(path: &Path) -> anyhow::Result<Kind> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => return Ok(Kind::Csv),
        Some("json") => return Ok(Kind::Json),
        _ => {}
    }
    let mut start = vec![0u8; 4096];
    let mut file = open(path).await?;
    let read = file
        .read(&mut start)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    start.truncate(read);
    sniff(&start).with_context(|| {
        format!(
            "cannot tell whether {} is CSV or JSON: name it .csv or .json",
            path.display()
        )
    })
}

/// JSON starts with `{`; CSV with a header row of column names separated by commas.
fn sniff(start: &[u8]) -> Option<Kind> {
    let text = String::from_utf8_lossy(start);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('{') {
        return Some(Kind::Json);
    }
    let header = text.lines().next()?;
    let names = header.split(',').map(|c| c.trim().trim_matches('"'));
    let looks_like_columns = header.contains(',')
        && names.clone().all(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ' '))
        });
    looks_like_columns.then_some(Kind::Csv)
}

async fn open(path: &Path) -> anyhow::Result<tokio::fs::File> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    if file.metadata().await.is_ok_and(|m| m.is_dir()) {
        bail!("{} is a directory, not a file", path.display());
    }
    Ok(file)
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// What became of one file.
struct Uploaded {
    file: String,
    result: Result<Value, Value>,
}

pub async fn upload(args: UploadArgs) -> anyhow::Result<Outcome> {
    let client = args.remote.connect()?;
    // Every file is checked before the first is sent.
    let mut kinds = Vec::new();
    for path in &args.files {
        kinds.push(kind_of(path).await?);
    }
    let mut results = Vec::new();
    let mut jobs_sent = Vec::new();
    if let Err(e) = send_all(&client, &args, kinds, &mut results, &mut jobs_sent).await {
        // The files sent before the error are still reported as a script reads them:
        // the jobs accepted go on.
        if !results.is_empty() {
            print_results(&results, args.output)?;
        }
        return Err(e);
    }
    if let Some(out) = &args.failed_rows
        && !jobs_sent.is_empty()
    {
        let rows = jobs::download_failed_rows(&client, &jobs_sent, out).await?;
        eprintln!("{rows} failed rows written to {}", out.display());
    }
    print_results(&results, args.output)?;
    Ok(results
        .iter()
        .map(|u| match &u.result {
            Ok(job) if args.wait => Outcome::of_status(job["status"].as_str().unwrap_or_default()),
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failed,
        })
        .max()
        .unwrap_or(Outcome::Success))
}

/// Sends each file in turn (and waits for its job with `--wait`), recording what became
/// of each in `results` and the jobs accepted in `jobs_sent`, until one fails.
async fn send_all(
    client: &Client,
    args: &UploadArgs,
    kinds: Vec<Kind>,
    results: &mut Vec<Uploaded>,
    jobs_sent: &mut Vec<String>,
) -> anyhow::Result<()> {
    for (path, kind) in args.files.iter().zip(kinds) {
        let name = args.name.clone().unwrap_or_else(|| display_name(path));
        let file = path.display().to_string();
        match send_file(client, path, kind, &name, args.update_existing).await? {
            Ok(job_id) => {
                eprintln!("{file}: accepted as job {job_id}");
                jobs_sent.push(job_id.clone());
                let accepted = json!({"job_id": job_id, "status": "PROCESSING"});
                let waited = if args.wait {
                    jobs::wait(client, &job_id, &name).await
                } else {
                    Ok(accepted.clone())
                };
                let job = waited.inspect_err(|_| {
                    results.push(Uploaded {
                        file: file.clone(),
                        result: Ok(accepted),
                    });
                })?;
                results.push(Uploaded {
                    file,
                    result: Ok(job),
                });
            }
            Err(refusal) => {
                eprintln!(
                    "{file}: refused; nothing was stored. {}",
                    refusal["title"].as_str().unwrap_or_default()
                );
                results.push(Uploaded {
                    file,
                    result: Err(refusal),
                });
            }
        }
    }
    Ok(())
}

/// A file as a request's body, read as it is sent: each piece moves the bar and marks
/// the transfer as moving.
fn file_body(path: &Path, bar: &ProgressBar, activity: &Activity) -> anyhow::Result<reqwest::Body> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let (bar, activity) = (bar.clone(), activity.clone());
    let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file), 64 * 1024)
        .inspect_ok(move |chunk| {
            bar.inc(chunk.len() as u64);
            activity.touch();
        });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// Posts a file as the body of a request to `endpoint`, with `query`, a bar showing the
/// bytes sent; the file is opened afresh for each try (the server may ask to come back).
async fn post_file(
    client: &Client,
    path: &Path,
    kind: Kind,
    endpoint: &str,
    query: &[(&str, String)],
) -> anyhow::Result<Result<reqwest::Response, ApiFailure>> {
    let size = open(path).await?.metadata().await?.len();
    let bar = progress::bytes(size, &display_name(path));
    let activity = Activity::default();
    let sent = client
        .send_transfer(
            || {
                bar.set_position(0);
                Ok(client
                    .transfer(Method::POST, endpoint)
                    .query(query)
                    .header(CONTENT_TYPE, kind.content_type())
                    .header(CONTENT_LENGTH, size)
                    .body(file_body(path, &bar, &activity)?))
            },
            &activity,
        )
        .await;
    bar.finish_and_clear();
    Ok(sent)
}

/// Streams one file; the job id, or the server's refusal (400) with its problems.
async fn send_file(
    client: &Client,
    path: &Path,
    kind: Kind,
    name: &str,
    update_existing: bool,
) -> anyhow::Result<Result<String, Value>> {
    let query = [
        ("file_name", name.to_owned()),
        ("update_existing", update_existing.to_string()),
    ];
    let sent = post_file(client, path, kind, "v1.1/jobs/meters", &query).await?;
    match sent {
        Ok(response) => {
            let created = client.json(response).await?;
            let job_id = created["job_id"]
                .as_str()
                .context("the server's answer has no job_id")?;
            Ok(Ok(job_id.to_owned()))
        }
        Err(ApiFailure::Refused { body, .. }) if body["details"].is_array() => Ok(Err(body)),
        Err(failure) => Err(into_anyhow(failure)),
    }
}

fn print_results(results: &[Uploaded], output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => {
            for uploaded in results {
                let mut record = match &uploaded.result {
                    Ok(job) => job.clone(),
                    Err(refusal) => json!({
                        "refused": true,
                        "title": refusal["title"],
                        "problems": refusal["details"],
                    }),
                };
                record["file"] = json!(uploaded.file);
                print_line(&record.to_string())?;
            }
            Ok(())
        }
        Output::Table | Output::Csv => {
            let mut listing = Listing::new(&[
                "FILE", "JOB", "STATUS", "ASSETS", "CREATED", "UPDATED", "FAILED",
            ]);
            for uploaded in results {
                let row = match &uploaded.result {
                    Ok(job) => job_row(&uploaded.file, job),
                    Err(_) => vec![uploaded.file.clone(), "-".into(), "REFUSED".into()],
                };
                listing.push(pad(row, listing.header.len()), Value::Null);
            }
            listing.print(output)?;
            // The problems follow the table; beside CSV, which holds one row per file,
            // they go to standard error.
            let mut stdout = std::io::stdout().lock();
            let mut stderr = std::io::stderr().lock();
            let out: &mut dyn std::io::Write = match output {
                Output::Csv => &mut stderr,
                _ => &mut stdout,
            };
            for uploaded in results {
                if let Err(refusal) = &uploaded.result {
                    writeln!(
                        out,
                        "\n{}: {}",
                        uploaded.file,
                        refusal["title"].as_str().unwrap_or_default()
                    )?;
                    print_problems(out, &refusal["details"])?;
                }
            }
            Ok(())
        }
    }
}

fn pad(mut row: Vec<String>, width: usize) -> Vec<String> {
    row.resize(width, String::new());
    row
}

fn job_row(file: &str, job: &Value) -> Vec<String> {
    let count = |key: &str| job[key].as_u64().map(|n| n.to_string()).unwrap_or_default();
    vec![
        file.to_owned(),
        cell(&job["job_id"]),
        cell(&job["status"]),
        count("assets_count"),
        count("assets_created_count"),
        count("assets_updated_count"),
        count("assets_failed_count"),
    ]
}

/// A refusal's problems as a table by row (or JSON index) and column.
pub fn print_problems(out: &mut dyn std::io::Write, problems: &Value) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = problems
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let place = match (p["csv_row"].as_u64(), p["json_index"].as_u64()) {
                (Some(row), _) => format!("row {row}"),
                (_, Some(index)) => format!("asset {index}"),
                _ => "-".to_owned(),
            };
            let mut message = p["message"].as_str().unwrap_or_default().to_owned();
            if let Some(suggestion) = p["suggestion"].as_str() {
                message.push_str(&format!(" (did you mean {suggestion}?)"));
            }
            vec![
                place,
                p["problem_field"].as_str().unwrap_or("-").to_owned(),
                message,
            ]
        })
        .collect();
    write_table(out, &["WHERE", "COLUMN", "PROBLEM"], &rows)?;
    Ok(())
}

pub async fn validate(args: ValidateArgs) -> anyhow::Result<Outcome> {
    let client = args.remote.connect()?;
    let kind = kind_of(&args.file).await?;
    let path = args.file.as_path();
    let sent = post_file(&client, path, kind, "v1.1/meters/validate", &[]).await?;
    let verdict = client.json(sent.map_err(into_anyhow)?).await?;
    let valid = verdict["valid"].as_bool().unwrap_or(false);
    match args.output {
        Output::Json => print_line(&verdict.to_string())?,
        Output::Table | Output::Csv => print_verdict(&verdict, args.output)?,
    }
    if valid {
        eprintln!("{}: would be accepted", path.display());
        Ok(Outcome::Success)
    } else {
        eprintln!(
            "{}: would be refused, with {} problems",
            path.display(),
            verdict["problems_count"]
        );
        Ok(Outcome::Failed)
    }
}

/// The verdict's problems and the programs each asset could join: a table, or the
/// programs as CSV with the problems on standard error.
fn print_verdict(verdict: &Value, output: Output) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let notes: &mut dyn std::io::Write = match output {
        Output::Csv => &mut stderr,
        _ => &mut stdout,
    };
    if verdict["valid"].as_bool() != Some(true) {
        writeln!(notes, "Problems ({}):", verdict["problems_count"])?;
        print_problems(notes, &verdict["problems"])?;
        writeln!(notes)?;
    }
    let mut listing = Listing::new(&[
        "WHERE",
        "REFERENCE",
        "PROGRAM",
        "VERDICT",
        "MISSING OR WHY NOT",
    ]);
    for asset in verdict["assets"].as_array().into_iter().flatten() {
        let place = match (asset["csv_row"].as_u64(), asset["json_index"].as_u64()) {
            (Some(row), _) => format!("row {row}"),
            (_, Some(index)) => format!("asset {index}"),
            _ => "-".to_owned(),
        };
        for program in asset["programs"].as_array().into_iter().flatten() {
            listing.push(program_row(&place, asset, program), program.clone());
        }
    }
    listing.print(output)?;
    if verdict["assets_not_listed"].as_u64().unwrap_or(0) > 0 {
        writeln!(
            notes,
            "({} more assets not listed)",
            verdict["assets_not_listed"]
        )?;
    }
    Ok(())
}

/// One asset's verdict for one program: where, its reference, the program, whether it
/// could join, and what it lacks.
fn program_row(place: &str, asset: &Value, program: &Value) -> Vec<String> {
    let verdict = if program["ready"].as_bool() == Some(true) {
        "ready"
    } else if program["eligible"].as_bool() == Some(true) {
        "needs fields"
    } else {
        "ineligible"
    };
    vec![
        place.to_owned(),
        cell(&asset["partner_reference"]),
        cell(&program["program_identifier"]),
        verdict.to_owned(),
        what_it_lacks(program),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_csv_are_told_apart_by_how_they_start() {
        assert_eq!(sniff(b"  {\"assets\": []}"), Some(Kind::Json));
        assert_eq!(
            sniff("\u{feff}partner_reference,transmission_region\nx,CAISO\n".as_bytes()),
            Some(Kind::Csv)
        );
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(sniff(b"hello world"), None);
        assert_eq!(sniff(b""), None);
    }
}
