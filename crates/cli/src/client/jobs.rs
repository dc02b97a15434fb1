//! `gridroll jobs`: the partner's jobs, one job followed to its end, and the rows of jobs
//! that did not become meters, downloaded as CSV in the upload layout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header::ACCEPT;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::api::{Activity, into_anyhow};
use super::{Client, Outcome, Remote, progress};
use crate::output::{Listing, Output};

/// A job's statuses once it has ended.
pub const FINAL_STATUSES: &[&str] = &["COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED"];

/// The asset statuses of rows that did not become meters.
const FAILED_ASSETS: &str = "DUPLICATE,FAILED,MULTIPLE_PARTNER_REFERENCE";

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// The partner's jobs, newest first.
    #[command(
        after_help = "Example:\n  gridroll jobs list --status COMPLETED_WITH_ERRORS --limit 10"
    )]
    List {
        /// Only jobs with this status (PROCESSING, COMPLETED, COMPLETED_WITH_ERRORS,
        /// FAILED).
        #[arg(long)]
        status: Option<String>,
        /// Only jobs whose file name or rows' references contain this text.
        #[arg(long)]
        search: Option<String>,
        /// The most jobs to list.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// How to print the list.
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        remote: Remote,
    },
    /// One job's status and counts; with --wait, followed until it ends.
    #[command(after_help = "Examples:\n  gridroll jobs show $JOB_ID\n  \
        gridroll jobs show $JOB_ID --wait --failed-rows failed.csv\n\n\
        Exit status with --wait: 0 COMPLETED, 3 COMPLETED_WITH_ERRORS, 4 FAILED, 1 any other \
        error.")]
    Show {
        /// The job's id, as the upload answered it.
        job: String,
        /// Follow the job until it ends, and exit with its outcome.
        #[arg(long)]
        wait: bool,
        /// Write the job's rows that did not become meters to this CSV file, in the
        /// upload layout, to fix and upload again.
        #[arg(long, value_name = "CSV")]
        failed_rows: Option<PathBuf>,
        /// How to print the job.
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        remote: Remote,
    },
}

pub async fn run(command: JobsCommand) -> anyhow::Result<Outcome> {
    match command {
        JobsCommand::List {
            status,
            search,
            limit,
            output,
            remote,
        } => {
            list(&remote.connect()?, status, search, limit as usize, output).await?;
            Ok(Outcome::Success)
        }
        JobsCommand::Show {
            job,
            wait: follow,
            failed_rows,
            output,
            remote,
        } => {
            let client = remote.connect()?;
            let found = if follow {
                wait(&client, &job, &job).await?
            } else {
                status(&client, &job).await?
            };
            if let Some(out) = &failed_rows {
                let rows = download_failed_rows(&client, std::slice::from_ref(&job), out).await?;
                eprintln!("{rows} failed rows written to {}", out.display());
            }
            let mut listing = job_listing();
            push_job(&mut listing, &found);
            listing.print(output)?;
            Ok(if follow {
                Outcome::of_status(found["status"].as_str().unwrap_or_default())
            } else {
                Outcome::Success
            })
        }
    }
}

fn job_listing() -> Listing {
    Listing::new(&[
        "JOB",
        "STATUS",
        "FILE",
        "ASSETS",
        "CREATED",
        "UPDATED",
        "FAILED",
        "CREATED AT",
    ])
}

fn push_job(listing: &mut Listing, job: &Value) {
    let text = |key: &str| match &job[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    listing.push(
        vec![
            text("job_id"),
            text("status"),
            text("file_name"),
            text("assets_count"),
            text("assets_created_count"),
            text("assets_updated_count"),
            text("assets_failed_count"),
            text("created_at"),
        ],
        job.clone(),
    );
}

async fn list(
    client: &Client,
    status: Option<String>,
    search: Option<String>,
    limit: usize,
    output: Output,
) -> anyhow::Result<()> {
    let mut listing = job_listing();
    let mut token: Option<String> = None;
    while listing.records.len() < limit {
        let mut query = vec![(
            "page_size",
            (limit - listing.records.len()).min(500).to_string(),
        )];
        if let Some(status) = &status {
            query.push(("filter", format!("status:{status}")));
        }
        if let Some(search) = &search {
            query.push(("search_query", search.clone()));
        }
        if let Some(token) = &token {
            query.push(("page_token", token.clone()));
        }
        let page = client.get_json("v1.1/jobs/meters", &query).await?;
        for job in page["jobs"].as_array().into_iter().flatten() {
            push_job(&mut listing, job);
        }
        token = page["next_page_token"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    listing.print(output)
}

/// A job's status and counts, without its assets.
pub async fn status(client: &Client, job: &str) -> anyhow::Result<Value> {
    let path = format!("v1.1/jobs/meters/{}", encode(job));
    client
        .get_json(&path, &[("include_assets", "false".to_owned())])
        .await
}

/// Follows a job until it ends, with a bar of its assets processed; answers the job.
pub async fn wait(client: &Client, job: &str, label: &str) -> anyhow::Result<Value> {
    let mut found = status(client, job).await?;
    let total = found["assets_count"].as_u64().unwrap_or(0);
    let bar = progress::assets(total, label);
    let mut pause = Duration::from_millis(200);
    loop {
        let processed = [
            "assets_created_count",
            "assets_updated_count",
            "assets_failed_count",
        ]
        .iter()
        .map(|key| found[*key].as_u64().unwrap_or(0))
        .sum::<u64>();
        bar.set_position(processed);
        let current = found["status"].as_str().unwrap_or_default();
        if FINAL_STATUSES.contains(&current) {
            break;
        }
        tokio::time::sleep(pause).await;
        // Quick at first for a small job, then once every two seconds.
        pause = (pause * 2).min(Duration::from_secs(2));
        found = status(client, job).await?;
    }
    bar.finish_and_clear();
    eprintln!(
        "job {job} {}: {} assets, {} created, {} updated, {} failed",
        found["status"].as_str().unwrap_or_default(),
        found["assets_count"],
        found["assets_created_count"],
        found["assets_updated_count"],
        found["assets_failed_count"],
    );
    Ok(found)
}

/// Writes the rows of `jobs` that did not become meters to `out` as CSV in the upload
/// layout (streamed to the file as it arrives); answers how many rows it holds.
pub async fn download_failed_rows(
    client: &Client,
    jobs: &[String],
    out: &Path,
) -> anyhow::Result<u64> {
    let query = [
        ("filter", format!("job_id:{}", jobs.join(","))),
        ("filter", format!("status:{FAILED_ASSETS}")),
    ];
    // A download: as long as it takes, while its bytes keep coming.
    let activity = Activity::default();
    let response = client
        .send_transfer(
            || {
                Ok(client
                    .transfer(Method::GET, "v1.1/provisional-assets")
                    .query(&query)
                    .header(ACCEPT, "text/csv"))
            },
            &activity,
        )
        .await
        .map_err(into_anyhow)?;
    let mut file = tokio::fs::File::create(out)
        .await
        .with_context(|| format!("cannot write {}", out.display()))?;
    let mut body = response.bytes_stream();
    let mut line_ends = 0u64;
    loop {
        let next = tokio::time::timeout(client.timeout(), body.next())
            .await
            .map_err(|_| client.stalled())?;
        let Some(chunk) = next else { break };
        let chunk = chunk.context("the failed rows were cut off")?;
        line_ends += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    // The header's line end is not a row; a cell holding a line break would count one
    // row too many, which only the message shows.
    Ok(line_ends.saturating_sub(1))
}

/// A job id as a path segment: ids are UUIDs, anything else is escaped and refused by
/// the server.
fn encode(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
