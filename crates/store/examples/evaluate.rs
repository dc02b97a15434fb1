//! Evaluates every asset of an import as a chunk does, for measuring the CPU that
//! evaluation costs with an instruction counter rather than a clock:
//!
//! ```sh
//! cargo build --release -p gridroll-store --example evaluate
//! valgrind --tool=callgrind --toggle-collect='*evaluate_chunks*' \
//!     target/release/examples/evaluate --rows 20000
//! ```
//!
//! The rows are the benchmark's (its generator, shared by path), read as an upload reads
//! them into their compact form; then each chunk of `--chunk` assets is evaluated
//! against the default catalog as new meters, in `evaluate_chunks`, the only function
//! whose instructions `--toggle-collect` counts. `--csv FILE` reads a file instead.

use std::fs::File;
use std::io::BufReader;
use std::ops::ControlFlow;
use std::path::PathBuf;

use gridroll_domain::intake::{Format, read_compact_assets};
use gridroll_domain::job::Pending;
use gridroll_domain::program::{DEFAULT_CATALOG, parse_catalog};
use gridroll_store::ahead::{PreparedChunk, StoredAsset};
use gridroll_store::{Catalog, IndexColumns};
use time::macros::datetime;

#[allow(dead_code)]
#[path = "../../bench/src/generate.rs"]
mod generate;

struct Options {
    rows: usize,
    chunk: usize,
    csv: Option<PathBuf>,
}

fn options() -> Options {
    let mut options = Options {
        rows: 20_000,
        chunk: 3_000,
        csv: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&arg));
        match arg.as_str() {
            "--rows" => options.rows = value().parse().unwrap_or_else(|_| usage("--rows")),
            "--chunk" => options.chunk = value().parse().unwrap_or_else(|_| usage("--chunk")),
            "--csv" => options.csv = Some(PathBuf::from(value())),
            other => usage(other),
        }
    }
    options
}

fn usage(at: &str) -> ! {
    eprintln!("evaluate: bad argument {at}; usage: evaluate [--rows N] [--chunk N] [--csv FILE]");
    std::process::exit(2)
}

/// The file's assets as a job stores them.
fn read_assets(options: &Options) -> Vec<StoredAsset> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = options.csv.clone().unwrap_or_else(|| {
        let path = dir.path().join("meters.csv");
        generate::write_csv(&path, options.rows).expect("the generated file");
        path
    });
    let file = BufReader::new(File::open(&path).expect("the CSV file"));
    let mut assets = Vec::new();
    read_compact_assets(Format::Csv, file, &mut |asset| {
        assets.push(StoredAsset {
            pending: Pending {
                seq: assets.len() as u64,
                partner_reference: asset.partner_reference,
            },
            index: IndexColumns {
                transmission_region: asset.transmission_region.as_ref().to_owned(),
                customer_classification: asset.customer_classification.as_ref().to_owned(),
                meter_type: asset.meter_type.as_ref().to_owned(),
                load_types: asset.load_types,
                customer_group: asset.customer_group,
            },
            input: asset.data,
        });
        ControlFlow::Continue(())
    })
    .expect("a valid file");
    assets
}

/// Evaluates the assets chunk by chunk, each against the catalog as a chunk reads it;
/// answers the bytes of enrollments written, so that nothing is optimized away.
#[inline(never)]
fn evaluate_chunks(assets: Vec<StoredAsset>, chunk: usize) -> usize {
    let programs = parse_catalog(DEFAULT_CATALOG).expect("the default catalog");
    let mut assets = assets.into_iter();
    let mut written = 0;
    let mut from_seq = 0;
    loop {
        let rows: Vec<StoredAsset> = assets.by_ref().take(chunk).collect();
        if rows.is_empty() {
            return written;
        }
        let catalog = Catalog::new(programs.clone(), datetime!(2027-03-01 00:00 UTC));
        let prepared = PreparedChunk::evaluate(from_seq, chunk, rows, catalog)
            .expect("assets in their compact form");
        from_seq += chunk as u64;
        written += prepared
            .assets
            .iter()
            .map(|a| a.as_new.enrollments.len())
            .sum::<usize>();
    }
}

fn main() {
    let options = options();
    let assets = read_assets(&options);
    let count = assets.len();
    let written = evaluate_chunks(assets, options.chunk);
    println!(
        "{count} assets evaluated, {:.1} bytes of enrollments each",
        written as f64 / count as f64
    );
}
