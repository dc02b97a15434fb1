//! `gridroll meters get|search|export`, `gridroll enrollments show` and the partner's view
//! of `gridroll programs`: reads of the partner API.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use gridroll_domain::MeterData;
use gridroll_domain::csv_layout::{MAX_SITE_DEVICES, export_cells, export_header};
use serde_json::{Map, Value, json};

use super::{Client, Remote};
use crate::output::{Listing, Output, cell, joined, print_json, print_line, what_it_lacks};

/// The partner API's largest page of a meter search.
const SEARCH_PAGE: usize = 500;

/// The filters of a meter search (those of `POST /v2/meters/search`).
#[derive(Debug, Clone, Default, Args)]
pub struct MeterFilters {
    /// Only meters of this transmission region (e.g. CAISO).
    #[arg(long)]
    region: Option<String>,
    /// Only meters with these partner references (comma-separated).
    #[arg(long, value_delimiter = ',')]
    reference: Vec<String>,
    /// Only meters of these types: DEVICE, UTILITY_METER (comma-separated).
    #[arg(long, value_delimiter = ',')]
    meter_type: Vec<String>,
    /// Only meters with any of these load types (comma-separated).
    #[arg(long, value_delimiter = ',')]
    load_type: Vec<String>,
    /// Only meters whose global enrollment status is one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    status: Vec<String>,
    /// Only meters that need something from the partner.
    #[arg(long)]
    action_required: bool,
    /// Only meters changed at or after this instant (RFC 3339, e.g.
    /// 2026-11-01T00:00:00Z): what changed since the last sync.
    #[arg(long, value_name = "INSTANT")]
    modified_since: Option<String>,
}

impl MeterFilters {
    fn body(&self) -> Value {
        let mut body = Map::new();
        let mut list = |key: &str, values: &[String]| {
            if !values.is_empty() {
                body.insert(key.to_owned(), json!(values));
            }
        };
        list("partner_references", &self.reference);
        list("meter_types", &self.meter_type);
        list("load_types", &self.load_type);
        list("global_enrollment_statuses", &self.status);
        if let Some(region) = &self.region {
            body.insert("transmission_region".into(), json!(region));
        }
        if self.action_required {
            body.insert("partner_action_required".into(), json!(true));
        }
        if let Some(since) = &self.modified_since {
            body.insert("last_modified_date_time".into(), json!(since));
        }
        Value::Object(body)
    }
}

#[derive(Debug, Subcommand)]
pub enum MetersClientCommand {
    /// One meter's details, as JSON.
    #[command(after_help = "Example:\n  gridroll meters get $METER_ID")]
    Get {
        /// The meter's id.
        meter: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Meters matching filters, in creation order.
    #[command(
        after_help = "Examples:\n  gridroll meters search --region CAISO --load-type BATTERY_STORAGE\n  \
        gridroll meters search --action-required --output json | jq -r .meter_id"
    )]
    Search {
        #[command(flatten)]
        filters: MeterFilters,
        /// The most meters to list.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// How to print the meters (json: each meter's details, one per line).
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        remote: Remote,
    },
    /// Every meter matching filters as CSV in the upload layout, to edit and upload again
    /// with --update-existing.
    #[command(after_help = "Example:\n  gridroll meters export --csv --region NYISO -o nyiso.csv")]
    Export {
        /// Write CSV (the only form of an export; kept for clarity in scripts).
        #[arg(long, required = true)]
        csv: bool,
        #[command(flatten)]
        filters: MeterFilters,
        /// The file to write (default: standard output).
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
}

pub async fn run(command: MetersClientCommand) -> anyhow::Result<()> {
    match command {
        MetersClientCommand::Get { meter, remote } => {
            let client = remote.connect()?;
            let path = format!("v2/meters/{}", segment(&meter));
            let details = client.get_json(&path, &[]).await?;
            print_line(&serde_json::to_string_pretty(&details)?)
        }
        MetersClientCommand::Search {
            filters,
            limit,
            output,
            remote,
        } => search(&remote.connect()?, &filters, limit, output).await,
        MetersClientCommand::Export {
            csv: _,
            filters,
            out,
            remote,
        } => export(&remote.connect()?, &filters, out).await,
    }
}

/// Pages through a search, handing each page's meters to `each`; stops after `limit`.
async fn each_meter(
    client: &Client,
    filters: &MeterFilters,
    limit: u64,
    mut each: impl FnMut(&Value) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut seen = 0u64;
    let mut token: Option<String> = None;
    loop {
        let mut body = filters.body();
        let wanted = (limit - seen).min(SEARCH_PAGE as u64);
        body["page_size"] = json!(wanted);
        if let Some(token) = &token {
            body["page_token"] = json!(token);
        }
        let page = client.post_json("v2/meters/search", &body).await?;
        for meter in page["meters"].as_array().into_iter().flatten() {
            each(meter)?;
            seen += 1;
        }
        token = page["next_page_token"].as_str().map(str::to_owned);
        if token.is_none() || seen >= limit {
            return Ok(seen);
        }
    }
}

async fn search(
    client: &Client,
    filters: &MeterFilters,
    limit: u64,
    output: Output,
) -> anyhow::Result<()> {
    let mut listing = Listing::new(&[
        "METER ID",
        "REFERENCE",
        "REGION",
        "TYPE",
        "STATUS",
        "CREATED AT",
    ]);
    each_meter(client, filters, limit, |meter| {
        listing.push(
            vec![
                cell(&meter["meter_id"]),
                cell(&meter["partner_reference"]),
                cell(&meter["transmission_region"]),
                cell(&meter["meter_type"]),
                cell(&meter["global_enrollment_status"]),
                cell(&meter["audit"]["created_at"]),
            ],
            meter.clone(),
        );
        Ok(())
    })
    .await?;
    listing.print(output)
}

/// The export: the site-device columns a file needs are known only once every meter is
/// read, so the rows go to a temporary file first (memory stays flat), then the header
/// and the rows, padded to it, to the output.
async fn export(
    client: &Client,
    filters: &MeterFilters,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let spool = tempfile::tempfile().context("cannot make a temporary file")?;
    let mut rows = csv::Writer::from_writer(std::io::BufWriter::new(spool));
    let mut devices = 0usize;
    let count = each_meter(client, filters, u64::MAX, |meter| {
        let Value::Object(map) = meter else {
            bail!("the server answered a meter that is not an object");
        };
        let data = MeterData::from_stored(map.clone());
        let count = data
            .get("site.site_devices")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
            .min(MAX_SITE_DEVICES);
        devices = devices.max(count);
        rows.write_record(export_cells(&data, count))?;
        Ok(())
    })
    .await?;
    let spool = rows
        .into_inner()
        .map_err(|e| e.into_error())?
        .into_inner()
        .map_err(|e| e.into_error())?;
    let target: Box<dyn Write> = match &out {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    write_export(spool, target, devices)?;
    if let Some(path) = &out {
        eprintln!("{count} meters written to {}", path.display());
    }
    Ok(())
}

/// The header (data columns only: an export holds no job's status) and the spooled rows,
/// each padded with empty site-device cells to the widest.
fn write_export(
    mut spool: std::fs::File,
    target: Box<dyn Write>,
    devices: usize,
) -> anyhow::Result<()> {
    use std::io::Seek;
    spool.rewind()?;
    let header = export_header(devices);
    let width = header.len() - gridroll_domain::csv_layout::STATUS_COLUMNS.len();
    let mut writer = csv::Writer::from_writer(target);
    writer.write_record(&header[..width])?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(spool));
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let padding = width.saturating_sub(record.len());
        writer.write_record(record.iter().chain(std::iter::repeat_n("", padding)))?;
    }
    writer.flush()?;
    Ok(())
}

/// `gridroll enrollments show METER`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  gridroll enrollments show $METER_ID --output json")]
pub struct ShowEnrollments {
    /// The meter's id.
    pub meter: String,
    /// How to print the enrollments (json: the API's answer as it is).
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub remote: Remote,
}

pub async fn enrollments(args: ShowEnrollments) -> anyhow::Result<()> {
    let client = args.remote.connect()?;
    let path = format!("v2/meters/{}/enrollments", segment(&args.meter));
    let answer = client.get_json(&path, &[]).await?;
    if args.output == Output::Json {
        return print_json(&answer);
    }
    let mut listing = Listing::new(&["PROGRAM", "STATUS", "DELIVERY PERIOD", "NEEDS OR WHY NOT"]);
    for enrollment in answer["program_enrollment"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let text = |key: &str| cell(&enrollment[key]);
        listing.push(
            vec![
                text("program_identifier"),
                text("enrollment_status"),
                text("delivery_period"),
                what_it_lacks(enrollment),
            ],
            enrollment.clone(),
        );
    }
    let global = format!(
        "Global enrollment status: {}",
        answer["global_enrollment_status"].as_str().unwrap_or("-")
    );
    // CSV holds the rows alone; the meter's own status is a note beside it.
    match args.output {
        Output::Csv => eprintln!("{global}"),
        _ => print_line(&global)?,
    }
    listing.print(args.output)
}

/// The partner's view of `gridroll programs`: the programs its meters can join.
#[derive(Debug, Clone, Args)]
pub struct PartnerPrograms {
    /// Print this program's CSV template instead: the columns it needs and one example
    /// row it accepts, to start a file from.
    #[arg(long, value_name = "PROGRAM")]
    pub template: Option<String>,
    /// How to print the programs (json: the API's program objects, one per line).
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub remote: Remote,
}

pub async fn programs(args: PartnerPrograms) -> anyhow::Result<()> {
    let client = args.remote.connect()?;
    if let Some(program) = &args.template {
        let path = format!("v1.1/programs/{}/template", segment(program));
        let response = client
            .send(|| Ok(client.request(reqwest::Method::GET, &path)))
            .await
            .map_err(super::api::into_anyhow)?;
        let bytes = client.body(response).await?;
        std::io::stdout().lock().write_all(&bytes)?;
        return Ok(());
    }
    let answer = client.get_json("v1.1/programs", &[]).await?;
    let mut listing = Listing::new(&[
        "PROGRAM",
        "NAME",
        "REGIONS",
        "REQUIRED FIELDS",
        "NEXT PERIOD",
    ]);
    for program in answer["programs"].as_array().into_iter().flatten() {
        listing.push(
            vec![
                cell(&program["program_identifier"]),
                cell(&program["name"]),
                joined(&program["transmission_regions"], ","),
                joined(&program["required_fields"], ","),
                cell(&program["next_delivery_period"]["delivery_period"]),
            ],
            program.clone(),
        );
    }
    listing.print(args.output)
}

/// An id as one path segment.
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
