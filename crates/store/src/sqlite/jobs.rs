//! Jobs, their assets, and turning assets into meters.

use std::collections::HashMap;
use std::time::Duration;

use gridroll_domain::compact::CompactAsset;
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::job::{
    JobCounts, JobStatus, Pending, Planned, Write, plan_chunk, retry_delay,
};
use gridroll_domain::timestamp::{from_millis, now_millis};
use gridroll_domain::{JobId, MeterData, MeterId, PartnerId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::rows::{self, parsed, parsed_opt};
use crate::ahead::{PreparedAsset, PreparedChunk, StoredAsset};
use crate::evaluate::{self, Catalog, PARTNER_PROGRAMS_SQL};
use crate::failures;
use crate::lease::{OWN_LEASE, RECEIVE_LEASE, millis};
use crate::model::{
    AssetState, ChunkReport, IndexColumns, Job, NewAsset, NewJob, ProvisionalAsset,
};
use crate::query::Dialect;
use crate::reads::JOB_COLUMNS;
use crate::{Result, StoreError};

pub fn begin(conn: &mut Connection, partner: PartnerId, job: &NewJob) -> Result<()> {
    let now = now_millis();
    conn.execute(
        "INSERT INTO jobs (id, partner_id, status, file_name, update_existing, lease_owner,
             lease_expires_at, created_at, updated_at)
         VALUES (?1, ?2, 'RECEIVING', ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            job.id.as_uuid(),
            partner.as_uuid(),
            job.file_name,
            job.update_existing,
            job.processed_by,
            now + millis(RECEIVE_LEASE),
            now
        ],
    )?;
    Ok(())
}

pub fn append(conn: &mut Connection, job: JobId, assets: &[NewAsset]) -> Result<()> {
    let now = now_millis();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Each batch renews the upload's receiving lease: one that lapses is abandoned.
    let partner: Option<uuid::Uuid> = tx
        .query_row(
            "UPDATE jobs SET lease_expires_at = ?2 WHERE id = ?1 AND status = 'RECEIVING'
             RETURNING partner_id",
            params![job.as_uuid(), now + millis(RECEIVE_LEASE)],
            |row| row.get(0),
        )
        .optional()?;
    let Some(partner) = partner else {
        return Err(StoreError::Corrupt(format!(
            "job {job} is not being received"
        )));
    };
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO provisional_assets (job_id, seq, partner_id, partner_reference,
                 transmission_region, customer_classification, meter_type, load_types,
                 customer_group, data, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for a in assets {
            insert.execute(params![
                job.as_uuid(),
                a.seq,
                partner,
                a.partner_reference,
                a.transmission_region,
                a.customer_classification,
                a.meter_type,
                a.load_types,
                a.customer_group,
                a.data,
                now
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub fn commit(conn: &mut Connection, job: JobId, assets_count: u64, regions: &str) -> Result<()> {
    let now = now_millis();
    let changed = conn.execute(
        "UPDATE jobs SET status = 'PROCESSING', assets_count = ?2, transmission_regions = ?3,
             updated_at = ?4,
             lease_expires_at = CASE WHEN lease_owner IS NULL THEN NULL ELSE ?5 END
         WHERE id = ?1 AND status = 'RECEIVING'",
        params![
            job.as_uuid(),
            assets_count,
            regions,
            now,
            now + millis(OWN_LEASE)
        ],
    )?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "job {job} is not being received"
        )))
    }
}

pub fn get(conn: &Connection, partner: PartnerId, job: JobId) -> Result<Option<Job>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE id = ?1 AND partner_id = ?2 AND status <> 'RECEIVING'"
            ),
            [job.as_uuid(), partner.as_uuid()],
            rows::job,
        )
        .optional()?)
}

const ASSET_STATE_COLUMNS: &str =
    "seq, partner_reference, status, status_name, status_description, meter_id, created_at";

fn asset_state(row: &rusqlite::Row<'_>) -> rusqlite::Result<AssetState> {
    Ok(AssetState {
        seq: row.get(0)?,
        partner_reference: row.get(1)?,
        status: parsed(row, 2)?,
        status_name: parsed_opt(row, 3)?,
        status_description: row.get(4)?,
        meter_id: row.get::<_, Option<uuid::Uuid>>(5)?.map(MeterId::from_uuid),
        created_at: row.get(6)?,
    })
}

pub fn assets(
    conn: &Connection,
    partner: PartnerId,
    job: JobId,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<AssetState>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ASSET_STATE_COLUMNS} FROM asset_states
         WHERE job_id = ?1 AND partner_id = ?2 AND seq >= ?3 ORDER BY seq LIMIT ?4"
    ))?;
    let assets = stmt
        .query_map(
            params![job.as_uuid(), partner.as_uuid(), from_seq, limit],
            asset_state,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(assets)
}

pub fn provisional_asset(
    conn: &Connection,
    partner: PartnerId,
    job: JobId,
    seq: u64,
) -> Result<Option<ProvisionalAsset>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {ASSET_STATE_COLUMNS}, data FROM asset_states
                 WHERE job_id = ?1 AND seq = ?2 AND partner_id = ?3"
            ),
            params![job.as_uuid(), seq, partner.as_uuid()],
            |row| {
                Ok(ProvisionalAsset {
                    job_id: job,
                    state: asset_state(row)?,
                    data: rows::job_input(row, 7)?,
                })
            },
        )
        .optional()?)
}

pub fn claim(
    conn: &mut Connection,
    worker: &str,
    lease: Duration,
    now: i64,
) -> Result<Option<JobId>> {
    Ok(conn
        .query_row(
            "UPDATE jobs SET lease_owner = ?1, lease_expires_at = ?2
             WHERE id = (SELECT id FROM jobs
                         WHERE status = 'PROCESSING'
                           AND (lease_expires_at IS NULL OR lease_expires_at < ?3)
                         ORDER BY id LIMIT 1)
             RETURNING id",
            params![worker, now + millis(lease), now],
            |row| Ok(JobId::from_uuid(row.get(0)?)),
        )
        .optional()?)
}

/// Processes the next `limit` assets of a job in file order, in one transaction: each
/// asset's meter is written together with the asset's outcome and the job's counts, so a
/// crash at any point leaves every asset either untouched or fully done.
pub fn process_chunk(
    conn: &mut Connection,
    job: JobId,
    worker: &str,
    limit: usize,
    lease: Duration,
    prepared: Option<PreparedChunk>,
) -> Result<(ChunkReport, u64)> {
    let now = now_millis();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    type Head = (uuid::Uuid, bool, JobStatus, Option<String>, u64);
    let head: Option<Head> = tx
        .query_row(
            "SELECT partner_id, update_existing, status, lease_owner, next_seq FROM jobs
             WHERE id = ?1",
            [job.as_uuid()],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    parsed(row, 2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )
        .optional()?;
    let Some((partner, update_existing, status, owner, next_seq)) = head else {
        return Err(StoreError::LeaseLost);
    };
    if status != JobStatus::Processing {
        let report = ChunkReport {
            processed: 0,
            status,
        };
        return Ok((report, next_seq));
    }
    if owner.as_deref() != Some(worker) {
        return Err(StoreError::LeaseLost);
    }

    let prepared = match prepared.filter(|p| p.is_due(next_seq, limit)) {
        Some(prepared) => prepared,
        None => prepare(
            &tx,
            job,
            PartnerId::from_uuid(partner),
            next_seq,
            limit,
            now,
        )?,
    };
    let pending: Vec<Pending> = prepared.assets.iter().map(|a| a.pending.clone()).collect();
    let by_seq: HashMap<u64, &PreparedAsset> =
        prepared.assets.iter().map(|a| (a.pending.seq, a)).collect();

    let existing = existing_meters(&tx, &partner, &pending)?;
    let plan = plan_chunk(&pending, existing, update_existing);
    let catalog = &prepared.catalog;

    let mut chunk = JobCounts::default();
    {
        // The asset's data is in hand: written as is, never read back.
        let mut create = tx.prepare_cached(
            "INSERT INTO meters (id, partner_id, partner_reference, reference_slot, created_by,
                 transmission_region, customer_classification, meter_type, load_types,
                 customer_group, data, enrollments, global_enrollment_status,
                 partner_action_required, partner_action_types, pending_programs,
                 created_at, updated_at)
             VALUES (?1, ?2, ?3, X'', 'PARTNER', ?4, ?5, ?6, ?7, ?8, ?9,
                 ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
        )?;
        let mut previous = tx.prepare_cached(
            "SELECT enrollments, participation FROM meters WHERE partner_id = ?1 AND id = ?2",
        )?;
        // Replaces every field: the meter's data becomes exactly the asset's. It takes the
        // parameters of `create`; the partner and reference only confirm the meter's.
        let mut replace = tx.prepare_cached(
            "UPDATE meters SET transmission_region = ?4, customer_classification = ?5,
                 meter_type = ?6, load_types = ?7, customer_group = ?8, data = ?9,
                 enrollments = ?10, global_enrollment_status = ?11,
                 partner_action_required = ?12, partner_action_types = ?13,
                 pending_programs = ?14, updated_at = ?15
             WHERE id = ?1 AND partner_id = ?2 AND partner_reference = ?3",
        )?;
        let mut record = tx.prepare_cached(
            "INSERT INTO asset_outcomes (job_id, seq, status, status_name, status_description,
                 meter_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for Planned {
            seq,
            outcome,
            write,
        } in &plan
        {
            if let Write::Create(id) | Write::Replace(id) = write {
                let asset = by_seq[seq];
                let index = &asset.index;
                let replaced;
                let (statement, c) = if let Write::Replace(_) = write {
                    let (enrollments, abstentions): (String, String) = previous
                        .query_row(params![partner, id.as_uuid()], |row| {
                            Ok((row.get(0)?, row.get(1)?))
                        })?;
                    replaced = evaluate::evaluate(
                        catalog,
                        &evaluate::parse_data(&asset.data)?,
                        &evaluate::parse_enrollments(&enrollments)?,
                        &evaluate::parse_abstentions(&abstentions)?,
                    );
                    (&mut replace, &replaced)
                } else {
                    (&mut create, &asset.as_new)
                };
                statement.execute(params![
                    id.as_uuid(),
                    partner,
                    asset.pending.partner_reference,
                    index.transmission_region,
                    index.customer_classification,
                    index.meter_type,
                    index.load_types,
                    index.customer_group,
                    asset.data,
                    c.enrollments,
                    c.global_status,
                    c.action_required,
                    c.action_types,
                    c.pending_programs,
                    now
                ])?;
            }
            record.execute(params![
                job.as_uuid(),
                seq,
                outcome.status.as_ref(),
                outcome.name.as_ref(),
                outcome.description,
                outcome.meter_id.map(|m| *m.as_uuid()),
            ])?;
            chunk.record(outcome);
        }
    }

    let next_seq = pending.last().map_or(next_seq, |p| p.seq + 1);
    let totals = tx.query_row(
        "UPDATE jobs SET created_count = created_count + ?1, updated_count = updated_count + ?2,
             failed_count = failed_count + ?3, updated_at = ?4, lease_expires_at = ?5,
             next_seq = ?7, failed_attempts = 0
         WHERE id = ?6
         RETURNING assets_count, created_count, updated_count, failed_count",
        params![
            chunk.created,
            chunk.updated,
            chunk.failed,
            now,
            now + millis(lease),
            job.as_uuid(),
            next_seq
        ],
        |row| {
            Ok(JobCounts {
                assets: row.get(0)?,
                created: row.get(1)?,
                updated: row.get(2)?,
                failed: row.get(3)?,
            })
        },
    )?;
    let status = totals.status();
    if status != JobStatus::Processing {
        tx.execute(
            "UPDATE jobs SET status = ?1, lease_owner = NULL, lease_expires_at = NULL
             WHERE id = ?2",
            params![status.as_ref(), job.as_uuid()],
        )?;
    } else if pending.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "job {job} has no assets left to process but its counts are incomplete"
        )));
    }
    tx.commit()?;
    let report = ChunkReport {
        processed: pending.len(),
        status,
    };
    Ok((report, next_seq))
}

/// The meters that already have each reference of the chunk, oldest first: one
/// statement for the chunk, probing the reference index once per distinct reference.
fn existing_meters(
    tx: &Connection,
    partner: &uuid::Uuid,
    pending: &[Pending],
) -> Result<HashMap<String, Vec<MeterId>>> {
    let mut existing: HashMap<String, Vec<MeterId>> = pending
        .iter()
        .map(|p| (p.partner_reference.clone(), Vec::new()))
        .collect();
    let references: Vec<&str> = existing.keys().map(String::as_str).collect();
    let references = serde_json::to_string(&references)
        .map_err(|e| StoreError::Corrupt(format!("references: {e}")))?;
    let mut found: Vec<(String, i64, uuid::Uuid)> = Vec::new();
    {
        // CROSS JOIN keeps the references the outer loop: each is one probe of the index,
        // named so that no statistics (an operator may run ANALYZE) can choose another.
        // Ordered here rather than by the statement: almost every probe finds nothing.
        let mut find = tx.prepare_cached(
            "SELECT m.partner_reference, m.created_at, m.id
             FROM json_each(?2) AS r CROSS JOIN meters AS m INDEXED BY meters_by_reference
             WHERE m.partner_id = ?1 AND m.partner_reference = r.value",
        )?;
        let mut rows = find.query(params![partner, references])?;
        while let Some(row) = rows.next()? {
            found.push((row.get(0)?, row.get(1)?, row.get(2)?));
        }
    }
    found.sort_unstable();
    for (reference, _, id) in found {
        if let Some(ids) = existing.get_mut(&reference) {
            ids.push(MeterId::from_uuid(id));
        }
    }
    Ok(existing)
}

/// Reads and evaluates the `limit` assets of a job from `from_seq` on.
pub fn prepare(
    conn: &Connection,
    job: JobId,
    partner: PartnerId,
    from_seq: u64,
    limit: usize,
    now: i64,
) -> Result<PreparedChunk> {
    let catalog = partner_catalog(conn, partner.as_uuid(), from_millis(now))?;
    let rows: Vec<StoredAsset> = conn
        .prepare_cached(
            // The chunk is exactly the `limit` assets from from_seq on.
            "SELECT seq, partner_reference, transmission_region, customer_classification,
                 meter_type, load_types, customer_group, data
             FROM provisional_assets
             WHERE job_id = ?1 AND seq >= ?3 AND seq < ?3 + ?2
             ORDER BY seq",
        )?
        .query_map(params![job.as_uuid(), limit, from_seq], |row| {
            Ok(StoredAsset {
                pending: Pending {
                    seq: row.get(0)?,
                    partner_reference: row.get(1)?,
                },
                index: IndexColumns {
                    transmission_region: row.get(2)?,
                    customer_classification: row.get(3)?,
                    meter_type: row.get(4)?,
                    load_types: row.get(5)?,
                    customer_group: row.get(6)?,
                },
                input: row.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    PreparedChunk::evaluate(from_seq, limit, rows, catalog)
}

/// The partner of a job, for preparing its chunks.
pub fn job_partner(conn: &Connection, job: JobId) -> Result<Option<PartnerId>> {
    Ok(conn
        .query_row(
            "SELECT partner_id FROM jobs WHERE id = ?1",
            [job.as_uuid()],
            |row| Ok(PartnerId::from_uuid(row.get(0)?)),
        )
        .optional()?)
}

pub fn import_meters(
    conn: &mut Connection,
    partner: PartnerId,
    created_by: CreatedBy,
    meters: &[MeterData],
) -> Result<Vec<MeterId>> {
    let now = now_millis();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let catalog = partner_catalog(&tx, partner.as_uuid(), from_millis(now))?;
    let mut ids = Vec::with_capacity(meters.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO meters (id, partner_id, partner_reference, reference_slot, created_by,
                 transmission_region, customer_classification, meter_type, load_types,
                 customer_group, data, enrollments, global_enrollment_status,
                 partner_action_required, partner_action_types, pending_programs,
                 created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?17)",
        )?;
        for data in meters {
            let id = MeterId::new();
            let slot: &[u8] = if created_by == CreatedBy::Partner {
                &[]
            } else {
                id.as_uuid().as_bytes()
            };
            // The meter's searched columns and stored data, as an upload keeps them.
            let row = CompactAsset::of(data);
            let c = evaluate::evaluate(&catalog, data, &[], &[]);
            insert.execute(params![
                id.as_uuid(),
                partner.as_uuid(),
                row.partner_reference,
                slot,
                created_by.as_ref(),
                row.transmission_region.as_ref(),
                row.customer_classification.as_ref(),
                row.meter_type.as_ref(),
                row.load_types,
                row.customer_group,
                row.data,
                c.enrollments,
                c.global_status,
                c.action_required,
                c.action_types,
                c.pending_programs,
                now
            ])?;
            ids.push(id);
        }
    }
    tx.commit()?;
    Ok(ids)
}

/// The programs a partner may use, read in the current transaction.
pub fn partner_catalog(
    conn: &Connection,
    partner: &uuid::Uuid,
    now: time::OffsetDateTime,
) -> Result<Catalog> {
    let sql = PARTNER_PROGRAMS_SQL.replace("{partner}", "?1");
    let definitions = conn
        .prepare_cached(&sql)?
        .query_map([partner], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Catalog::from_definitions(definitions, now)
}

/// See [`crate::Store::note_chunk_failure`].
pub fn note_failure(
    conn: &mut Connection,
    job: JobId,
    worker: &str,
    error: &str,
    now: i64,
) -> Result<u32> {
    let sql = |text| Dialect::Sqlite.render(text).into_owned();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let failures: Option<u32> = tx
        .query_row(
            &sql(failures::NOTE_FAILURE),
            params![job.as_uuid(), worker, error],
            |row| row.get(0),
        )
        .optional()?;
    let failures = failures.ok_or(StoreError::LeaseLost)?;
    if let Some(delay) = retry_delay(failures) {
        tx.execute(
            &sql(failures::HOLD),
            params![job.as_uuid(), worker, now + millis(delay)],
        )?;
    }
    tx.commit()?;
    Ok(failures)
}

/// See [`crate::Store::give_up_job`].
pub fn give_up(
    conn: &mut Connection,
    job: JobId,
    worker: &str,
    description: &str,
    now: i64,
) -> Result<JobStatus> {
    let sql = |text| Dialect::Sqlite.render(text).into_owned();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let head: Option<(JobCounts, u64)> = tx
        .query_row(
            &sql(failures::GIVE_UP_HEAD),
            params![job.as_uuid(), worker],
            |row| {
                let counts = JobCounts {
                    assets: row.get(0)?,
                    created: row.get(1)?,
                    updated: row.get(2)?,
                    failed: row.get(3)?,
                };
                Ok((counts, row.get(4)?))
            },
        )
        .optional()?;
    let (mut counts, next_seq) = head.ok_or(StoreError::LeaseLost)?;
    tx.execute(
        &sql(failures::FAIL_REST),
        params![job.as_uuid(), next_seq, description],
    )?;
    // Every asset without an outcome is failed now.
    let added = counts.assets.saturating_sub(counts.finished());
    counts.failed += added;
    let status = counts.status();
    tx.execute(
        &sql(failures::END),
        params![job.as_uuid(), added, status.as_ref(), now],
    )?;
    tx.commit()?;
    Ok(status)
}
