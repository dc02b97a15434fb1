//! Schema migrations, applied in order and recorded in `PRAGMA user_version`.

use rusqlite::Connection;

use crate::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_create_meters.sql"),
    include_str!("../../migrations/sqlite/0002_inventory.sql"),
    include_str!("../../migrations/sqlite/0003_programs.sql"),
    include_str!("../../migrations/sqlite/0004_job_progress.sql"),
    include_str!("../../migrations/sqlite/0005_portal.sql"),
    include_str!("../../migrations/sqlite/0006_asset_outcomes.sql"),
    include_str!("../../migrations/sqlite/0007_region_index_class.sql"),
];

pub fn run(conn: &mut Connection) -> Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Config(format!(
            "the database is at schema version {current}, newer than this build knows ({}); \
             run a newer gridroll",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied database migration");
    }
    Ok(())
}
