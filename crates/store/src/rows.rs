//! Turning rows into the store's types, once for both backends. Each decoder names the
//! columns it reads, in order, as the constant its statements select.

use gridroll_domain::job::JobCounts;

use crate::db::Row;
use crate::evaluate;
use crate::model::{Job, Meter, Partner, StoredMeter};
use crate::{Result, StoreError};

pub const PARTNER_COLUMNS: &str = "id, name, created_at";

pub fn partner(row: &Row) -> Result<Partner> {
    Ok(Partner {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at: row.get(2)?,
    })
}

pub const JOB_COLUMNS: &str = "id, partner_id, status, file_name, update_existing, assets_count, \
     created_count, updated_count, failed_count, transmission_regions, created_at, updated_at";

pub fn job(row: &Row) -> Result<Job> {
    let regions: String = row.get(9)?;
    Ok(Job {
        id: row.get(0)?,
        partner_id: row.get(1)?,
        status: row.parse(2)?,
        file_name: row.get(3)?,
        update_existing: row.get(4)?,
        assets_count: row.get(5)?,
        created_count: row.get(6)?,
        updated_count: row.get(7)?,
        failed_count: row.get(8)?,
        transmission_regions: regions
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
    })
}

/// Columns: assets_count, created_count, updated_count, failed_count.
pub fn counts(row: &Row) -> Result<JobCounts> {
    Ok(JobCounts {
        assets: row.get(0)?,
        created: row.get(1)?,
        updated: row.get(2)?,
        failed: row.get(3)?,
    })
}

/// Columns: those of `reads::METER_COLUMNS`.
pub fn meter(row: &Row) -> Result<Meter> {
    Ok(Meter {
        id: row.get(0)?,
        partner_id: row.get(1)?,
        created_by: row.parse(2)?,
        data: evaluate::parse_data(&row.get::<String>(3)?)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        enrollments: evaluate::parse_enrollments(&row.get::<String>(6)?)?,
        abstentions: evaluate::parse_abstentions(&row.get::<String>(7)?)?,
        global_status: row.parse(8)?,
        archived: row.get(9)?,
    })
}

/// Columns: those of `reads::STORED_METER_COLUMNS`.
pub fn stored_meter(row: &Row) -> Result<StoredMeter> {
    Ok(StoredMeter {
        id: row.get(0)?,
        created_by: row.parse(1)?,
        data_json: evaluate::object_json(row.get::<String>(2)?)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        global_status: row.parse(5)?,
        archived: row.get(6)?,
    })
}

/// A count a statement answers as its only column.
pub fn count(row: &Row) -> Result<u64> {
    row.get::<i64>(0).and_then(|n| {
        u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
    })
}
