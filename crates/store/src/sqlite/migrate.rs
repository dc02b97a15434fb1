//! Schema migrations, applied in order and recorded in `PRAGMA user_version`. Where the
//! stored data itself changes form, code runs after the SQL, in the same transaction.

use gridroll_domain::compact;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{Result, StoreError, evaluate};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_create_meters.sql"),
    include_str!("../../migrations/sqlite/0002_inventory.sql"),
    include_str!("../../migrations/sqlite/0003_programs.sql"),
    include_str!("../../migrations/sqlite/0004_job_progress.sql"),
    include_str!("../../migrations/sqlite/0005_portal.sql"),
    include_str!("../../migrations/sqlite/0006_asset_outcomes.sql"),
    include_str!("../../migrations/sqlite/0007_region_index_class.sql"),
    include_str!("../../migrations/sqlite/0008_compact_job_input.sql"),
    include_str!("../../migrations/sqlite/0009_compact_meter_data.sql"),
    include_str!("../../migrations/sqlite/0010_drop_per_row_foreign_keys.sql"),
    include_str!("../../migrations/sqlite/0011_meters_keyed_by_partner.sql"),
    include_str!("../../migrations/sqlite/0012_compact_enrollments.sql"),
    include_str!("../../migrations/sqlite/0013_job_failures.sql"),
    include_str!("../../migrations/sqlite/0014_users_per_partner.sql"),
    include_str!("../../migrations/sqlite/0015_events_and_webhooks.sql"),
    include_str!("../../migrations/sqlite/0016_key_scopes.sql"),
    include_str!("../../migrations/sqlite/0017_idempotency_keys.sql"),
    include_str!("../../migrations/sqlite/0018_account_housekeeping.sql"),
    include_str!("../../migrations/sqlite/0019_compact_meter_events.sql"),
    include_str!("../../migrations/sqlite/0020_job_segments.sql"),
    include_str!("../../migrations/sqlite/0021_enrollments_as_entries.sql"),
    include_str!("../../migrations/sqlite/0022_chunk_outcomes.sql"),
    include_str!("../../migrations/sqlite/0023_event_runs.sql"),
];

/// The code that completes a migration, by its version.
fn data_step(version: usize) -> Option<fn(&Transaction) -> Result<()>> {
    match version {
        8 => Some(compact_job_inputs),
        _ => None,
    }
}

/// How many rows a data step rewrites per statement batch.
const BATCH: i64 = 10_000;

/// Whether the database is at the schema version this release writes.
pub fn is_current(conn: &Connection) -> Result<bool> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok(current == MIGRATIONS.len())
}

pub fn run(conn: &mut Connection) -> Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Config(format!(
            "the database is at schema version {current}, newer than this build knows ({}); \
             run a newer gridroll",
            MIGRATIONS.len()
        )));
    }
    if current == MIGRATIONS.len() {
        return Ok(());
    }
    // A migration may rebuild a table others refer to, which SQLite allows only with
    // foreign keys off (it cannot switch them inside a transaction); they are checked
    // once every migration has run.
    conn.pragma_update(None, "foreign_keys", false)?;
    let applied = apply(conn, current);
    conn.pragma_update(None, "foreign_keys", true)?;
    applied
}

fn apply(conn: &mut Connection, current: usize) -> Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if let Some(step) = data_step(i + 1) {
            step(&tx)?;
        }
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
            .optional()?;
        if let Some(table) = broken {
            return Err(StoreError::Corrupt(format!(
                "migration {} left rows of {table} whose references are missing",
                i + 1
            )));
        }
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied database migration");
    }
    Ok(())
}

/// Rewrites the data of every stored job input, a JSON object until now, in its compact
/// form.
fn compact_job_inputs(tx: &Transaction) -> Result<()> {
    let mut select = tx.prepare(
        "SELECT rowid, data FROM provisional_assets WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
    )?;
    let mut update = tx.prepare("UPDATE provisional_assets SET data = ?2 WHERE rowid = ?1")?;
    let mut after = 0i64;
    let mut rewritten = 0u64;
    loop {
        let batch = select
            .query_map(params![after, BATCH], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        for (rowid, data) in &batch {
            update.execute(params![
                rowid,
                compact::encode(&evaluate::parse_data(data)?)
            ])?;
        }
        rewritten += batch.len() as u64;
        after = last;
    }
    if rewritten > 0 {
        tracing::info!(assets = rewritten, "stored the job inputs compactly");
    }
    Ok(())
}
