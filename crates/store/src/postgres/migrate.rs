//! Schema migrations, recorded in `schema_migrations`. An advisory lock lets several
//! processes start at once: one migrates, the others wait and find nothing to do.

use deadpool_postgres::Object;
use gridroll_domain::timestamp::now_millis;

use crate::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_create_meters.sql"),
    include_str!("../../migrations/postgres/0002_inventory.sql"),
    include_str!("../../migrations/postgres/0003_programs.sql"),
    include_str!("../../migrations/postgres/0004_job_progress.sql"),
    include_str!("../../migrations/postgres/0005_portal.sql"),
    include_str!("../../migrations/postgres/0006_asset_outcomes.sql"),
    include_str!("../../migrations/postgres/0007_region_index_class.sql"),
];

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
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&version, &now_millis()],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}
