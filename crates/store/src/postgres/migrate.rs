//! Schema migrations, recorded in `schema_migrations`. An advisory lock lets several
//! processes start at once: one migrates, the others wait and find nothing to do.

use deadpool_postgres::{Object, Transaction};
use gridroll_domain::compact;
use uuid::Uuid;

use crate::{Result, StoreError, evaluate};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_create_meters.sql"),
    include_str!("../../migrations/postgres/0002_inventory.sql"),
    include_str!("../../migrations/postgres/0003_programs.sql"),
    include_str!("../../migrations/postgres/0004_job_progress.sql"),
    include_str!("../../migrations/postgres/0005_portal.sql"),
    include_str!("../../migrations/postgres/0006_asset_outcomes.sql"),
    include_str!("../../migrations/postgres/0007_region_index_class.sql"),
    include_str!("../../migrations/postgres/0008_compact_job_input.sql"),
    include_str!("../../migrations/postgres/0009_compact_meter_data.sql"),
    include_str!("../../migrations/postgres/0010_drop_per_row_foreign_keys.sql"),
    include_str!("../../migrations/postgres/0011_meters_keyed_by_partner.sql"),
    include_str!("../../migrations/postgres/0012_compact_enrollments.sql"),
    include_str!("../../migrations/postgres/0013_job_failures.sql"),
    include_str!("../../migrations/postgres/0014_users_per_partner.sql"),
    include_str!("../../migrations/postgres/0015_events_and_webhooks.sql"),
    include_str!("../../migrations/postgres/0016_key_scopes.sql"),
    include_str!("../../migrations/postgres/0017_idempotency_keys.sql"),
    include_str!("../../migrations/postgres/0018_account_housekeeping.sql"),
    include_str!("../../migrations/postgres/0019_compact_meter_events.sql"),
    include_str!("../../migrations/postgres/0020_job_segments.sql"),
    include_str!("../../migrations/postgres/0021_enrollments_as_entries.sql"),
    include_str!("../../migrations/postgres/0022_chunk_outcomes.sql"),
    include_str!("../../migrations/postgres/0023_event_runs.sql"),
];

/// Code that completes a migration where the stored data itself changes form, run after
/// the SQL in the same transaction.
#[derive(Clone, Copy)]
enum DataStep {
    CompactJobInputs,
}

fn data_step(version: i32) -> Option<DataStep> {
    match version {
        8 => Some(DataStep::CompactJobInputs),
        _ => None,
    }
}

/// How many rows a data step rewrites per statement.
const BATCH: i64 = 10_000;

/// An arbitrary key shared by every Gridroll process for the migration lock.
const LOCK_KEY: i64 = 0x6772_6964_726f_6c6c;

pub async fn run(client: &mut Object) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await?;
    result
}

/// Whether the database is at the schema version this release writes.
pub async fn is_current(client: &Object) -> Result<bool> {
    let current: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await
        .map(|row| row.get(0))
        .or_else(|e| match e.code() {
            Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
            _ => Err(e),
        })?;
    Ok(current == Some(MIGRATIONS.len() as i32))
}

async fn apply(client: &mut Object) -> Result<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version     integer PRIMARY KEY,
                 applied_at  bigint NOT NULL
             )",
        )
        .await?;
    let current: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if current > known {
        return Err(StoreError::Config(format!(
            "the database is at schema version {current}, newer than this build knows ({known}); \
             run a newer gridroll"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i32 + 1;
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        match data_step(version) {
            Some(DataStep::CompactJobInputs) => compact_job_inputs(&tx).await?,
            None => {}
        }
        // When it was applied is the database's own record, on its clock.
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at)
             VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
            &[&version],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

/// Rewrites the data of every stored job input, a JSON object until now, in its compact
/// form.
async fn compact_job_inputs(tx: &Transaction<'_>) -> Result<()> {
    let select = tx
        .prepare(
            "SELECT job_id, seq, data FROM provisional_assets
             WHERE (job_id, seq) > ($1, $2) ORDER BY job_id, seq LIMIT $3",
        )
        .await?;
    let update = tx
        .prepare(
            "UPDATE provisional_assets p SET data = u.data
             FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS u (job_id, seq, data)
             WHERE p.job_id = u.job_id AND p.seq = u.seq",
        )
        .await?;
    let mut after = (Uuid::nil(), -1i64);
    let mut rewritten = 0u64;
    loop {
        let rows = tx.query(&select, &[&after.0, &after.1, &BATCH]).await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = (last.get(0), last.get(1));
        let mut jobs = Vec::with_capacity(rows.len());
        let mut seqs = Vec::with_capacity(rows.len());
        let mut inputs = Vec::with_capacity(rows.len());
        for row in &rows {
            jobs.push(row.get::<_, Uuid>(0));
            seqs.push(row.get::<_, i64>(1));
            inputs.push(compact::encode(&evaluate::parse_data(row.get(2))?));
        }
        tx.execute(&update, &[&jobs, &seqs, &inputs]).await?;
        rewritten += rows.len() as u64;
    }
    if rewritten > 0 {
        tracing::info!(assets = rewritten, "stored the job inputs compactly");
    }
    Ok(())
}
