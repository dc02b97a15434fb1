//! The statements of receiving uploads, reading jobs and their assets, and the queue,
//! once for both backends.

use std::time::Duration;

use gridroll_domain::event;
use gridroll_domain::job::{JobCounts, JobStatus, retry_delay};
use gridroll_domain::webhook::EventType;
use gridroll_domain::{JobId, PartnerId};

use super::failures;
use crate::db::Db;
use crate::events::{EventTypes, Outbox};
use crate::lease::{OWN_LEASE, RECEIVE_LEASE, millis};
use crate::model::{Job, NewJob, Received};
use crate::rows::{self, JOB_COLUMNS};
use crate::{Result, StoreError, values};

pub async fn begin(db: &mut dyn Db, partner: PartnerId, job: &NewJob, now: i64) -> Result<()> {
    db.execute(
        "INSERT INTO jobs (id, partner_id, status, file_name, update_existing, lease_owner,
             lease_expires_at, created_at, updated_at)
         VALUES ($1, $2, 'RECEIVING', $3, $4, $5, $6, $7, $7)",
        values![
            job.id,
            partner,
            &job.file_name,
            job.update_existing,
            &job.processed_by,
            now + millis(RECEIVE_LEASE),
            now
        ],
    )
    .await?;
    Ok(())
}

/// Renews the receiving lease of an upload that writes a batch, answering its partner:
/// an upload whose lease lapses is taken for abandoned.
pub async fn renew_receiving(db: &mut dyn Db, job: JobId, now: i64) -> Result<PartnerId> {
    db.query_opt(
        "UPDATE jobs SET lease_expires_at = $2 WHERE id = $1 AND status = 'RECEIVING'
         RETURNING partner_id",
        values![job, now + millis(RECEIVE_LEASE)],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("job {job} is not being received")))?
    .get(0)
}

pub async fn commit(db: &mut dyn Db, job: JobId, received: &Received, now: i64) -> Result<()> {
    let changed = db
        .execute(
            "UPDATE jobs SET status = 'PROCESSING', assets_count = $2, transmission_regions = $3,
                 customer_classifications = $6, meter_types = $7, updated_at = $4,
                 lease_expires_at = CASE WHEN lease_owner IS NULL THEN NULL
                                         ELSE CAST($5 AS BIGINT) END
             WHERE id = $1 AND status = 'RECEIVING'",
            values![
                job,
                received.assets_count,
                received.transmission_regions.join(","),
                now,
                now + millis(OWN_LEASE),
                received.customer_classifications.join(","),
                received.meter_types.join(",")
            ],
        )
        .await?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "job {job} is not being received"
        )))
    }
}

/// Removes the jobs being received that `condition` picks (over `jobs`), with their
/// assets; answers how many. Deleting the job first takes its row, so an upload that
/// commits at the same moment finds it gone rather than its assets.
async fn remove_receiving(
    db: &mut dyn Db,
    condition: &str,
    params: &[crate::db::Value],
) -> Result<u64> {
    let sql = format!("DELETE FROM jobs WHERE status = 'RECEIVING' AND {condition} RETURNING id");
    let gone: Vec<crate::db::Value> = db
        .query(&sql, params)
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect::<Result<_>>()?;
    if gone.is_empty() {
        return Ok(0);
    }
    super::segments::remove(db, &gone).await?;
    Ok(gone.len() as u64)
}

pub async fn discard(db: &mut dyn Db, job: JobId) -> Result<()> {
    remove_receiving(db, "id = $1", values![job])
        .await
        .map(drop)
}

/// Removes every upload being received: at the start of the one process that serves a
/// SQLite file, they are all orphans.
pub async fn remove_every_receiving(db: &mut dyn Db) -> Result<u64> {
    remove_receiving(db, "1 = 1", &[]).await
}

pub async fn remove_abandoned(db: &mut dyn Db, now: i64) -> Result<u64> {
    remove_receiving(db, "lease_expires_at < $1", values![now]).await
}

pub async fn get(db: &mut dyn Db, partner: PartnerId, job: JobId) -> Result<Option<Job>> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND partner_id = $2 AND status <> 'RECEIVING'"
    );
    db.query_opt(&sql, values![job, partner])
        .await?
        .as_ref()
        .map(rows::job)
        .transpose()
}

/// Takes the lease on the oldest job with work left whose lease is free or lapsed; on
/// PostgreSQL, a job another process is claiming at the same moment is passed over.
/// The jobs with work left: waiting (no live lease) and running, and the oldest's age.
pub async fn queue(db: &mut dyn Db, now: i64) -> Result<crate::JobQueue> {
    let row = db
        .query_one(
            "SELECT count(*),
                 coalesce(sum(CASE WHEN lease_expires_at >= $1 THEN 1 ELSE 0 END), 0),
                 min(created_at)
             FROM jobs WHERE status = 'PROCESSING'",
            values![now],
        )
        .await?;
    let (all, running): (u64, u64) = (row.get(0)?, row.get(1)?);
    let oldest: Option<i64> = row.get(2)?;
    Ok(crate::JobQueue {
        waiting: all - running.min(all),
        running,
        oldest_age_ms: oldest.map(|at| (now - at).max(0)),
    })
}

pub async fn claim(
    db: &mut dyn Db,
    worker: &str,
    lease: Duration,
    now: i64,
) -> Result<Option<JobId>> {
    let sql = format!(
        "UPDATE jobs SET lease_owner = $1, lease_expires_at = $2
         WHERE id = (SELECT id FROM jobs
                     WHERE status = 'PROCESSING'
                       AND (lease_expires_at IS NULL OR lease_expires_at < $3)
                     ORDER BY id LIMIT 1{})
         RETURNING id",
        db.dialect().skip_locked()
    );
    db.query_opt(&sql, values![worker, now + millis(lease), now])
        .await?
        .map(|row| row.get(0))
        .transpose()
}

pub async fn release(db: &mut dyn Db, job: JobId, worker: &str) -> Result<()> {
    db.execute(
        "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND lease_owner = $2",
        values![job, worker],
    )
    .await?;
    Ok(())
}

/// See [`crate::JobStore::note_chunk_failure`].
pub async fn note_failure(
    db: &mut dyn Db,
    job: JobId,
    worker: &str,
    error: &str,
    now: i64,
) -> Result<u32> {
    let failures: u32 = db
        .query_opt(failures::NOTE_FAILURE, values![job, worker, error])
        .await?
        .ok_or(StoreError::LeaseLost)?
        .get(0)?;
    if let Some(delay) = retry_delay(failures) {
        db.execute(failures::HOLD, values![job, worker, now + millis(delay)])
            .await?;
    }
    Ok(failures)
}

/// See [`crate::JobStore::give_up_job`].
pub async fn give_up(
    db: &mut dyn Db,
    job: JobId,
    worker: &str,
    description: &str,
    feed: EventTypes,
    now: i64,
) -> Result<JobStatus> {
    let sql = format!("{}{}", failures::GIVE_UP_HEAD, db.dialect().for_update());
    let head = db
        .query_opt(&sql, values![job, worker])
        .await?
        .ok_or(StoreError::LeaseLost)?;
    let mut counts: JobCounts = rows::counts(&head)?;
    let next_seq: u64 = head.get(4)?;
    db.execute(
        failures::FAIL_REST,
        values![job, next_seq, description, counts.assets],
    )
    .await?;
    // Every asset without an outcome is failed now.
    let added = counts.assets.saturating_sub(counts.finished());
    counts.failed += added;
    let status = counts.status();
    db.execute(failures::END, values![job, added, status.as_ref(), now])
        .await?;
    let mut outbox = Outbox::open(db, head.get(5)?, feed).await?;
    outbox.add(EventType::JobCompleted, || {
        event::job_completed(job, status, &counts)
    });
    outbox.record(db, now).await?;
    Ok(status)
}
