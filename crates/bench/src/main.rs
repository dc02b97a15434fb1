//! `gridroll-bench`: measures Gridroll side by side with the database engine's own bulk
//! load, in one run, and prints every figure next to its target. See BENCHMARKS.md.

mod generate;
mod http;
mod receiver;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

use crate::http::{Connection, hammer, percentile};

/// Benchmarks Gridroll's bulk import, meter reads and search.
#[derive(Debug, Parser)]
#[command(name = "gridroll-bench")]
struct Args {
    /// Rows of the large import.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Rows of the small import (also the reference for memory growth).
    #[arg(long, default_value_t = 100_000)]
    small_rows: usize,
    /// Seconds of each read load.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections of each read load.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Run against PostgreSQL (an admin URL; the benchmark makes and drops its database).
    #[arg(long)]
    database_url: Option<String>,
    /// Where to put the generated files (a temporary directory by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Parts of the run to leave out, separated by commas: baseline, small, reads,
    /// webhooks (the large import always runs).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<Part>,
    /// An argument added to every `gridroll serve` the benchmark starts (repeat it for
    /// several), to compare settings of one build: `--serve-arg=--workers=4`.
    #[arg(long, allow_hyphen_values = true)]
    serve_arg: Vec<String>,
}

/// A part of the run that can be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Baseline,
    Small,
    Reads,
    Webhooks,
}

impl Args {
    fn runs(&self, part: Part) -> bool {
        !self.skip.contains(&part)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(args))
}

struct Report {
    lines: Vec<String>,
}

impl Report {
    fn figure(&mut self, name: &str, value: String, target: &str, holds: Option<bool>) {
        let verdict = match holds {
            Some(true) => "ok",
            Some(false) => "MISSED",
            None => "",
        };
        let line = format!("{name:<44} {value:>22}   target {target:<28} {verdict}");
        println!("{line}");
        self.lines.push(line);
    }
}

/// What every import of one run shares.
struct Bench {
    args: Args,
    gridroll: PathBuf,
    dir: PathBuf,
    report: Report,
    /// The receiver of every import's `meter.created` subscription.
    receiver: receiver::Receiver,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let gridroll = std::env::current_exe()?.with_file_name("gridroll");
    if !gridroll.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p gridroll -p gridroll-bench`",
            gridroll.display()
        );
    }
    println!(
        "machine: {} cores; backend: {}",
        std::thread::available_parallelism()?,
        if args.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "every import's partner has a meter.created webhook to a local receiver, but the last's"
    );
    let mut bench = Bench {
        args,
        gridroll,
        dir,
        report: Report { lines: Vec::new() },
        receiver: receiver::Receiver::start().await?,
    };

    let small = bench.dir.join("small.csv");
    let large = bench.dir.join("large.csv");
    let started = Instant::now();
    let small_bytes = generate::write_csv(&small, bench.args.small_rows)?;
    let large_bytes = generate::write_csv(&large, bench.args.rows)?;
    println!(
        "generated {} rows ({:.1} MB) and {} rows ({:.1} MB) in {:.1} s",
        bench.args.small_rows,
        small_bytes as f64 / 1e6,
        bench.args.rows,
        large_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let baseline = if bench.args.runs(Part::Baseline) {
        Some(bench.baseline(&large)?)
    } else {
        None
    };
    let small_run = if bench.args.runs(Part::Small) {
        Some(bench.small_import(&small).await?)
    } else {
        None
    };
    let delivered_before = bench.receiver.received();
    let mut large_run = bench.import("large", &large, Subscribed::Yes).await?;
    bench.large_import_figures(&large_run, baseline, small_run.as_ref());
    if bench.args.runs(Part::Reads) {
        // The reads measure a server whose subscription is idle.
        bench.deliveries(&large_run, delivered_before).await;
        bench.reads(&large_run).await?;
    }
    large_run.server.stop();
    if bench.args.runs(Part::Webhooks) {
        bench.webhooks(&large, &large_run).await?;
    }
    Ok(())
}

impl Bench {
    fn postgres(&self) -> bool {
        self.args.database_url.is_some()
    }

    /// The engine's own bulk load of the large file.
    fn baseline(&mut self, large: &Path) -> anyhow::Result<Duration> {
        let (baseline, engine) = match &self.args.database_url {
            None => (sqlite_import(&self.dir, large)?, "sqlite3 .import"),
            Some(url) => (postgres_copy(url, large)?, "PostgreSQL COPY"),
        };
        self.report.figure(
            &format!("baseline: {engine} of {} rows", self.args.rows),
            format!("{:.2} s", baseline.as_secs_f64()),
            "-",
            None,
        );
        Ok(baseline)
    }

    /// The small import, on a server of its own.
    async fn small_import(&mut self, small: &Path) -> anyhow::Result<Imported> {
        let mut run = self.import("small", small, Subscribed::Yes).await?;
        let (limit, target) = if self.postgres() {
            (1.5, "<= 1.5 s")
        } else {
            (1.0, "<= 1.0 s")
        };
        self.report.figure(
            &format!("import {} rows, upload to COMPLETED", self.args.small_rows),
            format!("{:.2} s", run.seconds),
            target,
            Some(run.seconds <= limit),
        );
        run.server.stop();
        Ok(run)
    }

    fn large_import_figures(
        &mut self,
        large: &Imported,
        baseline: Option<Duration>,
        small: Option<&Imported>,
    ) {
        let rows = self.args.rows;
        self.report.figure(
            &format!("import {rows} rows, upload to COMPLETED"),
            format!(
                "{:.2} s ({:.0} rows/s)",
                large.seconds,
                rows as f64 / large.seconds
            ),
            "-",
            None,
        );
        self.report.figure(
            "  of which upload accepted / processing",
            format!(
                "{:.2} / {:.2} s",
                large.accepted_seconds,
                large.seconds - large.accepted_seconds
            ),
            "-",
            None,
        );
        if let Some(baseline) = baseline {
            let ratio = large.seconds / baseline.as_secs_f64();
            let (limit, target) = if self.postgres() {
                (4.0, "<= 4x COPY")
            } else {
                (2.0, "<= 2x sqlite3 .import")
            };
            self.report.figure(
                "  ratio to the baseline",
                format!("{ratio:.2}x"),
                target,
                Some(ratio <= limit),
            );
        }
        self.report.figure(
            &format!("  job: created / failed of {rows}"),
            format!(
                "{} / {}",
                large.job["assets_created_count"], large.job["assets_failed_count"]
            ),
            "-",
            None,
        );
        let peak_mb = large.peak_rss_kb as f64 / 1024.0;
        self.report.figure(
            "server peak RSS during the large import",
            format!("{peak_mb:.0} MB"),
            "<= 64 MB",
            Some(peak_mb <= 64.0),
        );
        if let Some(small) = small {
            let growth = peak_mb / (small.peak_rss_kb as f64 / 1024.0);
            self.report.figure(
                "  peak RSS, large / small import",
                format!("{growth:.2}"),
                "<= 1.20",
                Some(growth <= 1.2),
            );
        }
    }

    /// Reads on the large inventory: one meter at a time against the bare endpoint, and
    /// the search paged to its end.
    async fn reads(&mut self, large: &Imported) -> anyhow::Result<()> {
        let connections = self.args.connections;
        let seconds = Duration::from_secs(self.args.seconds);
        let created = large.job["assets_created_count"].as_u64().unwrap_or(0);
        let ids = meter_ids(&large.addr, &large.key, created, 10_000).await?;
        let bare = hammer(
            &large.addr,
            &large.key,
            &["/healthz".to_owned()],
            connections,
            seconds,
        )
        .await?;
        let paths: Vec<String> = ids.iter().map(|id| format!("/v2/meters/{id}")).collect();
        let meters = hammer(&large.addr, &large.key, &paths, connections, seconds).await?;
        let report = &mut self.report;
        report.figure(
            &format!("bare JSON endpoint, {connections} connections"),
            format!("{:.0} req/s", bare.per_second()),
            "-",
            None,
        );
        report.figure(
            "GET /v2/meters/{id}",
            format!(
                "{:.0} req/s ({} errors)",
                meters.per_second(),
                meters.errors
            ),
            "-",
            None,
        );
        let share = meters.per_second() / bare.per_second();
        report.figure(
            "  share of the bare endpoint",
            format!("{:.0}%", share * 100.0),
            ">= 50%",
            Some(share >= 0.5),
        );
        report.figure(
            "  p50",
            format!("{:.2} ms", meters.percentile_ms(50.0)),
            "-",
            None,
        );
        report.figure(
            "  p99",
            format!("{:.2} ms", meters.percentile_ms(99.0)),
            "<= 5 ms",
            Some(meters.percentile_ms(99.0) <= 5.0),
        );

        let pages = search_all_pages(&large.addr, &large.key).await?;
        let all: Vec<u32> = pages.iter().map(|d| d.as_micros() as u32).collect();
        let p50 = percentile(&all, 50.0) as f64 / 1000.0;
        let p99 = percentile(&all, 99.0) as f64 / 1000.0;
        report.figure(
            &format!(
                "POST /v2/meters/search, 3 filters, {} pages of 500",
                pages.len()
            ),
            format!("p50 {p50:.1} ms"),
            "p50 <= 5 ms",
            Some(p50 <= 5.0),
        );
        report.figure(
            "  p99",
            format!("{p99:.1} ms"),
            "<= 10 ms",
            Some(p99 <= 10.0),
        );
        let head: Vec<u32> = all.iter().take(5).copied().collect();
        let tail: Vec<u32> = all.iter().rev().take(5).copied().collect();
        report.figure(
            "  first 5 pages / last 5 pages (median)",
            format!(
                "{:.1} / {:.1} ms",
                percentile(&head, 50.0) as f64 / 1000.0,
                percentile(&tail, 50.0) as f64 / 1000.0
            ),
            "last as fast as first",
            None,
        );
        Ok(())
    }

    /// Waits for every meter of the large import to be delivered to the receiver, so that
    /// the reads measure a server whose subscription is idle, and says how long the
    /// deliveries trailed the job.
    async fn deliveries(&mut self, large: &Imported, before: u64) {
        let delivered_by_end = large.delivered_by_end - before;
        let created: u64 = large.job["assets_created_count"].as_u64().unwrap_or(0);
        let started = Instant::now();
        while self.receiver.received() - before < created
            && started.elapsed() < Duration::from_secs(1800)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.report.figure(
            "  delivered by the job's end / all delivered after",
            format!(
                "{delivered_by_end} / {:.1} s more",
                started.elapsed().as_secs_f64()
            ),
            "-",
            None,
        );
    }

    /// The large import again, without a subscription: what the subscription costs.
    async fn webhooks(&mut self, large: &Path, with: &Imported) -> anyhow::Result<()> {
        let mut without = self.import("unsubscribed", large, Subscribed::No).await?;
        let ratio = with.seconds / without.seconds;
        self.report.figure(
            &format!("import {} rows without a webhook", self.args.rows),
            format!("{:.2} s", without.seconds),
            "-",
            None,
        );
        self.report.figure(
            "  the import with one, to this",
            format!("{ratio:.2}x"),
            "<= 1.3x",
            Some(ratio <= 1.3),
        );
        without.server.stop();
        Ok(())
    }
}

/// Whether an import's partner has a webhook subscription to `meter.created`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscribed {
    Yes,
    No,
}

/// `sqlite3 .import` into a plain table: the floor of writing the same rows.
fn sqlite_import(dir: &Path, csv: &Path) -> anyhow::Result<Duration> {
    let sqlite3 = which("sqlite3").context(
        "the baseline needs the sqlite3 command; install it (Debian: apt-get install -y sqlite3)",
    )?;
    let db = dir.join("baseline.db");
    let _ = std::fs::remove_file(&db);
    let started = Instant::now();
    let status = Command::new(sqlite3)
        .arg(&db)
        .arg(".mode csv")
        .arg(format!(".import {} meters", csv.display()))
        .status()?;
    if !status.success() {
        bail!("sqlite3 .import failed");
    }
    Ok(started.elapsed())
}

/// `COPY` into a table with a unique index on the reference: PostgreSQL's floor.
fn postgres_copy(url: &str, csv: &Path) -> anyhow::Result<Duration> {
    let psql = which("psql")
        .context("the baseline needs psql (Debian: apt-get install -y postgresql-client)")?;
    let columns = generate::HEADER
        .split(',')
        .map(|c| format!("{c} text"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy ({columns}); CREATE INDEX ON bench_copy (partner_reference);"
    );
    let ok = run_psql(&psql, url, &sql)?;
    if !ok.success() {
        bail!("psql could not prepare the baseline table");
    }
    let started = Instant::now();
    let copy = format!(
        "\\copy bench_copy FROM '{}' WITH (FORMAT csv, HEADER true)",
        csv.display()
    );
    let ok = run_psql(&psql, url, &copy)?;
    let elapsed = started.elapsed();
    let _ = run_psql(&psql, url, "DROP TABLE bench_copy");
    if !ok.success() {
        bail!("COPY failed");
    }
    Ok(elapsed)
}

/// Runs one command through `psql`, quietly: notices such as "does not exist, skipping"
/// would interleave with the report.
fn run_psql(psql: &Path, url: &str, command: &str) -> std::io::Result<std::process::ExitStatus> {
    Command::new(psql)
        .args([url, "-q", "-c", command])
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .status()
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// A `gridroll serve` process.
struct Server {
    child: Child,
}

impl Server {
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn peak_rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Imported {
    /// From the start of the upload to the job's final status.
    seconds: f64,
    /// From the start of the upload to its answer: receiving, validating and storing the
    /// job input. The rest is processing.
    accepted_seconds: f64,
    peak_rss_kb: u64,
    /// What the receiver had received (from every import so far) when the job ended.
    delivered_by_end: u64,
    job: Value,
    addr: String,
    key: String,
    server: Server,
}

impl Bench {
    /// Starts a server on a fresh database, uploads a file and waits for the job to finish.
    async fn import(
        &self,
        name: &str,
        csv: &Path,
        subscribed: Subscribed,
    ) -> anyhow::Result<Imported> {
        let (gridroll, dir) = (&self.gridroll, &self.dir);
        let url = match self.args.database_url.as_deref() {
            None => {
                let path = dir.join(format!("{name}.db"));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                format!("sqlite://{}", path.display())
            }
            Some(admin) => fresh_postgres(admin, name)?,
        };
        let created = Command::new(gridroll)
            .args(["partners", "create", "--name", "Benchmark"])
            .env("DATABASE_URL", &url)
            .env("GRIDROLL_LOG", "warn")
            .output()?;
        if !created.status.success() {
            bail!(
                "partners create: {}",
                String::from_utf8_lossy(&created.stderr)
            );
        }
        let key = serde_json::from_slice::<Value>(&created.stdout)?["api_key"]
            .as_str()
            .context("no api_key")?
            .to_owned();
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        // The read loads are one key's thousands of requests a second: no limit is measured.
        let mut serve = vec!["serve", "--addr", &addr, "--rate-limit", "4000000000"];
        if subscribed == Subscribed::Yes {
            serve.push("--webhook-allow-private");
        }
        serve.extend(self.args.serve_arg.iter().map(String::as_str));
        let child = Command::new(gridroll)
            .args(&serve)
            .env("DATABASE_URL", &url)
            .env("GRIDROLL_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        let server = Server { child };
        let mut client = loop {
            if let Ok(mut c) = Connection::open(&addr, &key).await
                && c.get("/healthz").await.is_ok()
            {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if subscribed == Subscribed::Yes {
            let subscription =
                json!({"receiver_url": self.receiver.url, "event_types": ["meter.created"]});
            let (status, body) = client.post_json("/v1.1/webhooks", &subscription).await?;
            if status != 200 {
                bail!(
                    "subscribing failed: {status} {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }

        let started = Instant::now();
        let created = client
            .upload_csv("/v1.1/jobs/meters?file_name=bench.csv", csv)
            .await?;
        let accepted_seconds = started.elapsed().as_secs_f64();
        let job_id = created["job_id"].as_str().context("no job_id")?.to_owned();
        let job = loop {
            let page = client.get_json("/v1.1/jobs/meters?page_size=1").await?;
            let job = page["jobs"][0].clone();
            if job["job_id"] == job_id.as_str() && job["status"] != "PROCESSING" {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let seconds = started.elapsed().as_secs_f64();
        Ok(Imported {
            seconds,
            accepted_seconds,
            delivered_by_end: self.receiver.received(),
            peak_rss_kb: server.peak_rss_kb(),
            job,
            addr,
            key,
            server,
        })
    }
}

fn fresh_postgres(admin: &str, name: &str) -> anyhow::Result<String> {
    let psql = which("psql").context("psql is needed to make the benchmark's database")?;
    let database = format!("gridroll_bench_{name}");
    for sql in [
        format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        format!("CREATE DATABASE {database}"),
    ] {
        let ok = run_psql(&psql, admin, &sql)?;
        if !ok.success() {
            bail!("psql: {sql} failed");
        }
    }
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    Ok(format!("{base}/{database}"))
}

/// About `n` meter ids spread evenly over the partner's `inventory` meters, paged from
/// the search, in a deterministic random order: reads of one meter go to any of them, as a
/// partner's do, most of them to pages no reader has cached.
async fn meter_ids(addr: &str, key: &str, inventory: u64, n: usize) -> anyhow::Result<Vec<String>> {
    let mut client = Connection::open(addr, key).await?;
    let step = usize::try_from(inventory / n.max(1) as u64)?.max(1);
    let mut ids = Vec::with_capacity(n);
    let mut seen = 0usize;
    let mut body = json!({"page_size": 500});
    loop {
        let (_, bytes) = client.post_json("/v2/meters/search", &body).await?;
        let page: Value = serde_json::from_slice(&bytes)?;
        for meter in page["meters"].as_array().into_iter().flatten() {
            if seen.is_multiple_of(step)
                && let Some(id) = meter["meter_id"].as_str()
            {
                ids.push(id.to_owned());
            }
            seen += 1;
        }
        match page.get("next_page_token") {
            Some(token) => body["page_token"] = token.clone(),
            None => break,
        }
    }
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..ids.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ids.swap(i, (state % (i as u64 + 1)) as usize);
    }
    Ok(ids)
}

/// Pages through every CAISO residential HVAC meter, 500 at a time, timing each page.
async fn search_all_pages(addr: &str, key: &str) -> anyhow::Result<Vec<Duration>> {
    let mut client = Connection::open(addr, key).await?;
    let mut timings = Vec::new();
    let mut body = json!({
        "transmission_region": "CAISO",
        "customer_classification": "RESIDENTIAL",
        "load_types": ["HVAC"],
        "page_size": 500
    });
    loop {
        let started = Instant::now();
        let (status, bytes) = client.post_json("/v2/meters/search", &body).await?;
        timings.push(started.elapsed());
        if status != 200 {
            bail!("search: {status}");
        }
        let page: Value = serde_json::from_slice(&bytes)?;
        match page.get("next_page_token") {
            Some(token) => body["page_token"] = token.clone(),
            None => return Ok(timings),
        }
    }
}
