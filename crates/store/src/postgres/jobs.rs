//! Jobs, their assets, and turning assets into meters, on PostgreSQL.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use deadpool_postgres::GenericClient;
use deadpool_postgres::Object;
use gridroll_domain::compact::CompactAsset;
use gridroll_domain::enrollment::{Abstention, Enrollment};
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::job::{JobCounts, JobStatus, Pending, Write, plan_chunk, retry_delay};
use gridroll_domain::timestamp::{from_millis, now_millis};
use gridroll_domain::{JobId, MeterData, MeterId, PartnerId};
use tokio_postgres::Row;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::ahead::{PreparedAsset, PreparedChunk, StoredAsset};
use crate::evaluate::{self, Catalog, Columns, PARTNER_PROGRAMS_SQL};
use crate::failures;
use crate::lease::{OWN_LEASE, RECEIVE_LEASE, millis};
use crate::model::{
    AssetState, ChunkReport, IndexColumns, Job, Meter, NewAsset, NewJob, ProvisionalAsset,
    StoredMeter,
};
use crate::reads::JOB_COLUMNS;
use crate::{Result, StoreError};

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn parse<T: std::str::FromStr>(text: &str) -> Result<T> {
    text.parse()
        .map_err(|_| corrupt(format!("unexpected value {text:?}")))
}

fn count(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| corrupt(format!("negative count {n}")))
}

/// Columns: those of `reads::STORED_METER_COLUMNS`.
pub fn stored_meter(row: &Row) -> Result<StoredMeter> {
    Ok(StoredMeter {
        id: MeterId::from_uuid(row.get(0)),
        created_by: parse(row.get(1))?,
        data_json: evaluate::object_json(row.get(2))?,
        created_at: row.get(3),
        updated_at: row.get(4),
        global_status: parse(row.get(5))?,
    })
}

/// Columns: those of `reads::METER_COLUMNS`.
pub fn meter(row: &Row) -> Result<Meter> {
    Ok(Meter {
        id: MeterId::from_uuid(row.get(0)),
        partner_id: PartnerId::from_uuid(row.get(1)),
        created_by: parse(row.get(2))?,
        data: evaluate::parse_data(row.get(3))?,
        created_at: row.get(4),
        updated_at: row.get(5),
        enrollments: evaluate::parse_enrollments(row.get(6))?,
        abstentions: evaluate::parse_abstentions(row.get(7))?,
        global_status: parse(row.get(8))?,
    })
}

pub async fn begin(client: &Object, partner: PartnerId, job: &NewJob) -> Result<()> {
    let now = now_millis();
    client
        .execute(
            "INSERT INTO jobs (id, partner_id, status, file_name, update_existing, lease_owner,
                 lease_expires_at, created_at, updated_at)
             VALUES ($1, $2, 'RECEIVING', $3, $4, $5, $6, $7, $7)",
            &[
                job.id.as_uuid(),
                partner.as_uuid(),
                &job.file_name,
                &job.update_existing,
                &job.processed_by,
                &(now + millis(RECEIVE_LEASE)),
                &now,
            ],
        )
        .await?;
    Ok(())
}

/// Writes a batch with one binary `COPY`.
pub async fn append(client: &mut Object, job: JobId, assets: &[NewAsset]) -> Result<()> {
    let now = now_millis();
    let tx = client.transaction().await?;
    let partner: Uuid = tx
        .query_opt(
            "UPDATE jobs SET lease_expires_at = $2 WHERE id = $1 AND status = 'RECEIVING'
             RETURNING partner_id",
            &[job.as_uuid(), &(now + millis(RECEIVE_LEASE))],
        )
        .await?
        .ok_or_else(|| corrupt(format!("job {job} is not being received")))?
        .get(0);
    let sink = tx
        .copy_in(
            "COPY provisional_assets (job_id, seq, partner_id, partner_reference,
                 transmission_region, customer_classification, meter_type, load_types,
                 customer_group, data, created_at)
             FROM STDIN BINARY",
        )
        .await?;
    let types = [
        Type::UUID,
        Type::INT8,
        Type::UUID,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    for a in assets {
        writer
            .as_mut()
            .write(&[
                job.as_uuid(),
                &seq_param(a.seq)?,
                &partner,
                &a.partner_reference,
                &a.transmission_region,
                &a.customer_classification,
                &a.meter_type,
                &a.load_types,
                &a.customer_group,
                &a.data,
                &now,
            ])
            .await?;
    }
    writer.finish().await?;
    tx.commit().await?;
    Ok(())
}

fn seq_param(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| corrupt(format!("sequence {seq} out of range")))
}

pub async fn commit(client: &Object, job: JobId, assets_count: u64, regions: &str) -> Result<()> {
    let now = now_millis();
    let changed = client
        .execute(
            "UPDATE jobs SET status = 'PROCESSING', assets_count = $2, transmission_regions = $3,
                 updated_at = $4,
                 lease_expires_at = CASE WHEN lease_owner IS NULL THEN NULL ELSE $5::bigint END
             WHERE id = $1 AND status = 'RECEIVING'",
            &[
                job.as_uuid(),
                &seq_param(assets_count)?,
                &regions,
                &now,
                &(now + millis(OWN_LEASE)),
            ],
        )
        .await?;
    if changed != 1 {
        return Err(corrupt(format!("job {job} is not being received")));
    }
    // A large upload changes the job input table faster than autovacuum notices; fresh
    // statistics keep the chunk statements on their indexes.
    if assets_count >= LARGE_UPLOAD
        && let Err(e) = client.batch_execute("ANALYZE provisional_assets").await
    {
        // The job is committed: a failed refresh of statistics must not fail the upload.
        tracing::warn!(%job, error = %e, "could not refresh the statistics of the job input");
    }
    Ok(())
}

/// Uploads from this size on refresh the planner's statistics: of the job input when
/// accepted, of the meters when processed.
const LARGE_UPLOAD: u64 = 10_000;

pub fn job(row: &Row) -> Result<Job> {
    let regions: &str = row.get(9);
    Ok(Job {
        id: JobId::from_uuid(row.get(0)),
        partner_id: PartnerId::from_uuid(row.get(1)),
        status: parse(row.get(2))?,
        file_name: row.get(3),
        update_existing: row.get(4),
        assets_count: count(row.get(5))?,
        created_count: count(row.get(6))?,
        updated_count: count(row.get(7))?,
        failed_count: count(row.get(8))?,
        transmission_regions: regions
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: row.get(10),
        updated_at: row.get(11),
    })
}

pub async fn get(client: &Object, partner: PartnerId, id: JobId) -> Result<Option<Job>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE id = $1 AND partner_id = $2 AND status <> 'RECEIVING'"
            ),
            &[id.as_uuid(), partner.as_uuid()],
        )
        .await?;
    row.as_ref().map(job).transpose()
}

const ASSET_STATE_COLUMNS: &str =
    "seq, partner_reference, status, status_name, status_description, meter_id, created_at";

fn asset_state(row: &Row) -> Result<AssetState> {
    Ok(AssetState {
        seq: count(row.get(0))?,
        partner_reference: row.get(1),
        status: parse(row.get(2))?,
        status_name: row.get::<_, Option<&str>>(3).map(parse).transpose()?,
        status_description: row.get(4),
        meter_id: row.get::<_, Option<Uuid>>(5).map(MeterId::from_uuid),
        created_at: row.get(6),
    })
}

pub async fn assets(
    client: &Object,
    partner: PartnerId,
    job: JobId,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<AssetState>> {
    let rows = client
        .query(
            &format!(
                "SELECT {ASSET_STATE_COLUMNS} FROM asset_states
                 WHERE job_id = $1 AND partner_id = $2 AND seq >= $3 ORDER BY seq LIMIT $4"
            ),
            &[
                job.as_uuid(),
                partner.as_uuid(),
                &seq_param(from_seq)?,
                &seq_param(limit as u64)?,
            ],
        )
        .await?;
    rows.iter().map(asset_state).collect()
}

pub async fn provisional_asset(
    client: &Object,
    partner: PartnerId,
    job: JobId,
    seq: u64,
) -> Result<Option<ProvisionalAsset>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {ASSET_STATE_COLUMNS}, data FROM asset_states
                 WHERE job_id = $1 AND seq = $2 AND partner_id = $3"
            ),
            &[job.as_uuid(), &seq_param(seq)?, partner.as_uuid()],
        )
        .await?;
    row.map(|row| {
        Ok(ProvisionalAsset {
            job_id: job,
            state: asset_state(&row)?,
            data: evaluate::parse_input(row.get(7))?,
        })
    })
    .transpose()
}

pub async fn claim(
    client: &Object,
    worker: &str,
    lease: Duration,
    now: i64,
) -> Result<Option<JobId>> {
    let row = client
        .query_opt(
            "UPDATE jobs SET lease_owner = $1, lease_expires_at = $2
             WHERE id = (SELECT id FROM jobs
                         WHERE status = 'PROCESSING'
                           AND (lease_expires_at IS NULL OR lease_expires_at < $3)
                         ORDER BY id LIMIT 1
                         FOR UPDATE SKIP LOCKED)
             RETURNING id",
            &[&worker, &(now + millis(lease)), &now],
        )
        .await?;
    Ok(row.map(|r| JobId::from_uuid(r.get(0))))
}

/// One meter a chunk writes, with everything its row needs.
struct MeterWrite<'d> {
    reference: &'d str,
    id: Uuid,
    index: &'d IndexColumns,
    data: &'d str,
    /// Borrowed from the prepared chunk for a create, evaluated afresh for a replace.
    columns: Cow<'d, Columns>,
}

/// The meters a chunk writes, column by column, as `unnest` takes them.
struct Columnar<'r> {
    ids: Vec<Uuid>,
    text: [Vec<Option<&'r str>>; 10],
    flags: Vec<bool>,
    pendings: Vec<&'r str>,
}

impl<'r> Columnar<'r> {
    fn of(rows: impl Iterator<Item = &'r MeterWrite<'r>> + Clone) -> Self {
        let pick = |f: fn(&'r MeterWrite<'r>) -> Option<&'r str>| rows.clone().map(f).collect();
        Self {
            ids: rows.clone().map(|r| r.id).collect(),
            text: [
                pick(|r| Some(r.reference)),
                pick(|r| Some(r.index.transmission_region.as_str())),
                pick(|r| Some(r.index.customer_classification.as_str())),
                pick(|r| Some(r.index.meter_type.as_str())),
                pick(|r| Some(r.index.load_types.as_str())),
                pick(|r| r.index.customer_group.as_deref()),
                pick(|r| Some(r.data)),
                pick(|r| Some(r.columns.enrollments.as_str())),
                pick(|r| Some(r.columns.global_status.as_str())),
                pick(|r| Some(r.columns.action_types.as_str())),
            ],
            flags: rows.clone().map(|r| r.columns.action_required).collect(),
            pendings: rows.map(|r| r.columns.pending_programs.as_str()).collect(),
        }
    }

    /// $1 partner, $2 now, then id, reference, region, class, type, loads, group, data,
    /// enrollments, status, action_required, action_types, pending.
    fn params<'a>(&'a self, partner: &'a Uuid, now: &'a i64) -> Vec<&'a (dyn ToSql + Sync)> {
        let [
            refs,
            regions,
            classes,
            types,
            loads,
            groups,
            datas,
            enrollments,
            statuses,
            actions,
        ] = &self.text;
        vec![
            partner,
            now,
            &self.ids,
            refs,
            regions,
            classes,
            types,
            loads,
            groups,
            datas,
            enrollments,
            statuses,
            &self.flags,
            actions,
            &self.pendings,
        ]
    }
}

/// How often a chunk is tried again after colliding with a concurrent transaction.
const ATTEMPTS: usize = 32;

/// Processes the next `limit` assets of a job in one transaction, and says where the job
/// has got to. A chunk that collides with another process creating the same reference
/// (or deadlocks with it) is rolled back and planned again, now seeing the other
/// process's meter. `prepared` is used when it is the chunk due.
pub async fn process_chunk(
    client: &mut Object,
    job: JobId,
    worker: &str,
    limit: usize,
    lease: Duration,
    durable: bool,
    prepared: Option<PreparedChunk>,
) -> Result<(ChunkReport, u64)> {
    let mut prepared = prepared;
    for attempt in 1.. {
        match try_chunk(client, job, worker, limit, lease, durable, &mut prepared).await {
            Ok(Some(report)) => return Ok(report),
            Ok(None) if attempt < ATTEMPTS => {
                tracing::debug!(%job, attempt, "a concurrent job created the same reference; planning the chunk again");
            }
            Err(e) if is_transient(&e) && attempt < ATTEMPTS => {
                tracing::debug!(%job, attempt, error = %e, "chunk rolled back; trying again");
            }
            Ok(None) => {
                return Err(StoreError::Database(
                    "the chunk kept colliding with concurrent jobs".into(),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

fn is_transient(error: &StoreError) -> bool {
    super::PgError::code(error).is_some_and(|code| {
        *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// One attempt at a chunk; `None` when a create collided and the chunk was rolled back.
/// The chunk's preparation is kept in `prepared` for the next attempt.
async fn try_chunk(
    client: &mut Object,
    job: JobId,
    worker: &str,
    limit: usize,
    lease: Duration,
    durable: bool,
    prepared: &mut Option<PreparedChunk>,
) -> Result<Option<(ChunkReport, u64)>> {
    let now = now_millis();
    let tx = client.transaction().await?;
    if !durable {
        // A chunk lost to a crash of the database server is processed again.
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .await?;
    }
    // The row lock keeps a worker that takes over an expired lease off this chunk.
    let Some(head) = tx
        .query_opt(
            "SELECT partner_id, update_existing, status, lease_owner, next_seq FROM jobs
             WHERE id = $1 FOR UPDATE",
            &[job.as_uuid()],
        )
        .await?
    else {
        return Err(StoreError::LeaseLost);
    };
    let partner: Uuid = head.get(0);
    let update_existing: bool = head.get(1);
    let status: JobStatus = parse(head.get(2))?;
    let next_seq = count(head.get(4))?;
    if status != JobStatus::Processing {
        let report = ChunkReport {
            processed: 0,
            status,
        };
        return Ok(Some((report, next_seq)));
    }
    if head.get::<_, Option<&str>>(3) != Some(worker) {
        return Err(StoreError::LeaseLost);
    }

    let input = match prepared.take() {
        Some(p) if p.is_due(next_seq, limit) => p,
        _ => read_chunk(
            &tx,
            job,
            PartnerId::from_uuid(partner),
            next_seq,
            limit,
            now,
        )
        .await?
        .evaluate()?,
    };
    let input = &*prepared.insert(input);
    let pending: Vec<Pending> = input.assets.iter().map(|a| a.pending.clone()).collect();
    let by_seq: HashMap<u64, &PreparedAsset> =
        input.assets.iter().map(|a| (a.pending.seq, a)).collect();
    let references: Vec<&str> = pending
        .iter()
        .map(|p| p.partner_reference.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut existing: HashMap<String, Vec<MeterId>> = HashMap::new();
    // With its partner as a constant, the planner reads the partner's row count from the
    // statistics; taken before this partner's meters arrived, they say it has none, and
    // a probe of the key (partner, id) looks as cheap as one of the reference index, but
    // filters every meter of the partner. A generic plan weighs the partner by the
    // average instead, and the reference index always wins.
    tx.batch_execute("SET LOCAL plan_cache_mode = force_generic_plan")
        .await?;
    for row in tx
        .query(
            // One probe of the reference index per reference. Planned as a join (or with
            // `= ANY`), statistics taken while `meters` was small make the planner scan
            // every meter of the partner instead, and a large import quadratic; `OFFSET 0`
            // keeps the subquery a probe of its own.
            "SELECT m.partner_reference, m.id FROM unnest($2::text[]) AS r(reference)
             CROSS JOIN LATERAL (
                 SELECT partner_reference, id, created_at FROM meters
                 WHERE partner_id = $1 AND partner_reference = r.reference
                 OFFSET 0
             ) AS m
             ORDER BY m.created_at, m.id",
            &[&partner, &references],
        )
        .await?
    {
        existing
            .entry(row.get(0))
            .or_default()
            .push(MeterId::from_uuid(row.get(1)));
    }
    tx.batch_execute("SET LOCAL plan_cache_mode = auto").await?;
    let plan = plan_chunk(&pending, existing, update_existing);
    let catalog = &input.catalog;

    // Enrollments as they stand, per meter, for the meters this chunk replaces.
    let replaced: Vec<Uuid> = plan
        .iter()
        .filter_map(|p| match p.write {
            Write::Replace(id) => Some(*id.as_uuid()),
            _ => None,
        })
        .collect();
    let mut state: HashMap<Uuid, (Vec<Enrollment>, Vec<Abstention>)> = HashMap::new();
    if !replaced.is_empty() {
        for row in tx
            .query(
                // Locked, so that an activation or participation change committed meanwhile
                // is not overwritten with what was read before it.
                "SELECT id, enrollments, participation FROM meters
                 WHERE partner_id = $2 AND id = ANY($1)
                 ORDER BY id FOR UPDATE",
                &[&replaced, &partner],
            )
            .await?
        {
            state.insert(
                row.get(0),
                (
                    evaluate::parse_enrollments(row.get(1))?,
                    evaluate::parse_abstentions(row.get(2))?,
                ),
            );
        }
    }

    // Evaluate in file order, so a meter written twice in the chunk is evaluated on top of
    // its first write; only the last write of each meter is applied. A create was
    // evaluated when the chunk was prepared.
    let mut creates: Vec<MeterWrite> = Vec::new();
    let mut replaces: HashMap<Uuid, MeterWrite> = HashMap::new();
    // The enrollments of the meters this chunk creates, as stored, in case the same chunk
    // replaces one of them.
    let mut created_here: HashMap<Uuid, &str> = HashMap::new();
    for planned in &plan {
        let asset = by_seq[&planned.seq];
        let (id, columns) = match planned.write {
            Write::Create(id) => {
                created_here.insert(*id.as_uuid(), &asset.as_new.enrollments);
                (*id.as_uuid(), Cow::Borrowed(&asset.as_new))
            }
            Write::Replace(id) => {
                let id = *id.as_uuid();
                let (previous, abstentions) = match state.remove(&id) {
                    Some(current) => current,
                    None => match created_here.get(&id) {
                        Some(stored) => (evaluate::parse_enrollments(stored)?, Vec::new()),
                        None => Default::default(),
                    },
                };
                let data = evaluate::parse_data(&asset.data)?;
                let columns = evaluate::evaluate(catalog, &data, &previous, &abstentions);
                state.insert(id, (columns.list.clone(), abstentions));
                (id, Cow::Owned(columns))
            }
            Write::Nothing => continue,
        };
        let created = matches!(planned.write, Write::Create(_));
        let row = MeterWrite {
            reference: &asset.pending.partner_reference,
            id,
            index: &asset.index,
            data: &asset.data,
            columns,
        };
        if created {
            creates.push(row);
        } else {
            replaces.insert(id, row);
        }
    }
    // A meter created and then replaced in the same chunk is inserted with its final state.
    for create in &mut creates {
        if let Some(last) = replaces.remove(&create.id) {
            *create = last;
        }
    }
    // Creates in reference order, so concurrent chunks take index locks in one order.
    creates.sort_unstable_by(|a, b| (&a.reference, a.id).cmp(&(&b.reference, b.id)));

    // The data goes in as parameters, column by column: no statement reads the job input
    // back. Both statements take the same parameters ($1 partner, $2 now, $3.. columns).
    const COLUMNS: &str = "unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
             $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bool[],
             $14::text[], $15::text[])";
    const NAMES: &str = "(id, reference, region, class, type, loads, grp, data, enrollments,
             status, action_required, action_types, pending";
    if !creates.is_empty() {
        let columns = Columnar::of(creates.iter());
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO meters (id, partner_id, partner_reference, reference_slot,
                         created_by, transmission_region, customer_classification, meter_type,
                         load_types, customer_group, data, enrollments, global_enrollment_status,
                         partner_action_required, partner_action_types, pending_programs,
                         created_at, updated_at)
                     SELECT c.id, $1, c.reference, ''::bytea, 'PARTNER', c.region, c.class,
                         c.type, c.loads, c.grp, c.data, c.enrollments, c.status,
                         c.action_required, c.action_types, c.pending, $2, $2
                     FROM {COLUMNS} WITH ORDINALITY AS c{NAMES}, ord)
                     ORDER BY c.ord"
                ),
                &columns.params(&partner, &now),
            )
            .await;
        // Another process created one of these references since they were looked up. A
        // plain insert checks the reference index as it goes; `ON CONFLICT` would cost
        // every row a second probe for a race that almost never happens.
        if let Err(e) = &inserted
            && e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        {
            tx.rollback().await?;
            return Ok(None);
        }
        inserted?;
    }
    if !replaces.is_empty() {
        let mut rows: Vec<&MeterWrite> = replaces.values().collect();
        rows.sort_unstable_by_key(|r| r.id);
        let columns = Columnar::of(rows.into_iter());
        // Replaces every field: the meter's data becomes exactly the asset's.
        tx.execute(
            &format!(
                "UPDATE meters m SET transmission_region = r.region,
                     customer_classification = r.class, meter_type = r.type,
                     load_types = r.loads, customer_group = r.grp, data = r.data,
                     updated_at = $2, enrollments = r.enrollments,
                     global_enrollment_status = r.status,
                     partner_action_required = r.action_required,
                     partner_action_types = r.action_types, pending_programs = r.pending
                 FROM {COLUMNS} AS r{NAMES})
                 WHERE m.id = r.id AND m.partner_id = $1"
            ),
            &columns.params(&partner, &now),
        )
        .await?;
    }

    let mut chunk = JobCounts::default();
    let mut seqs = Vec::with_capacity(plan.len());
    let mut statuses = Vec::with_capacity(plan.len());
    let mut names = Vec::with_capacity(plan.len());
    let mut descriptions = Vec::with_capacity(plan.len());
    let mut meter_ids: Vec<Option<Uuid>> = Vec::with_capacity(plan.len());
    for planned in &plan {
        chunk.record(&planned.outcome);
        seqs.push(seq_param(planned.seq)?);
        statuses.push(planned.outcome.status.as_ref());
        names.push(planned.outcome.name.as_ref());
        descriptions.push(planned.outcome.description.as_str());
        meter_ids.push(planned.outcome.meter_id.map(|m| *m.as_uuid()));
    }
    if !plan.is_empty() {
        tx.execute(
            "INSERT INTO asset_outcomes (job_id, seq, status, status_name, status_description,
                 meter_id)
             SELECT $1, u.* FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[],
                 $6::uuid[]) AS u",
            &[
                job.as_uuid(),
                &seqs,
                &statuses,
                &names,
                &descriptions,
                &meter_ids,
            ],
        )
        .await?;
    }

    let next_seq = pending.last().map_or(next_seq, |p| p.seq + 1);
    let totals = tx
        .query_one(
            "UPDATE jobs SET created_count = created_count + $1,
                 updated_count = updated_count + $2, failed_count = failed_count + $3,
                 updated_at = $4, lease_expires_at = $5, next_seq = $7, failed_attempts = 0
             WHERE id = $6
             RETURNING assets_count, created_count, updated_count, failed_count",
            &[
                &seq_param(chunk.created)?,
                &seq_param(chunk.updated)?,
                &seq_param(chunk.failed)?,
                &now,
                &(now + millis(lease)),
                job.as_uuid(),
                &seq_param(next_seq)?,
            ],
        )
        .await?;
    let totals = JobCounts {
        assets: count(totals.get(0))?,
        created: count(totals.get(1))?,
        updated: count(totals.get(2))?,
        failed: count(totals.get(3))?,
    };
    let status = totals.status();
    if status != JobStatus::Processing {
        tx.execute(
            "UPDATE jobs SET status = $1, lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $2",
            &[&status.as_ref(), job.as_uuid()],
        )
        .await?;
    } else if pending.is_empty() {
        return Err(corrupt(format!(
            "job {job} has no assets left to process but its counts are incomplete"
        )));
    }
    tx.commit().await?;
    // A large import changes `meters` faster than autovacuum notices; fresh statistics
    // keep searches on their indexes right after it.
    if status != JobStatus::Processing
        && totals.assets >= LARGE_UPLOAD
        && let Err(e) = client.batch_execute("ANALYZE meters").await
    {
        // The job is done: a failed refresh of statistics must not fail its last chunk.
        tracing::warn!(%job, error = %e, "could not refresh the statistics of the meters");
    }
    let report = ChunkReport {
        processed: pending.len(),
        status,
    };
    Ok(Some((report, next_seq)))
}

/// A chunk's assets and the partner's programs, read but not yet evaluated.
pub struct ChunkInput {
    from_seq: u64,
    limit: usize,
    rows: Vec<StoredAsset>,
    catalog: Catalog,
}

/// Reads the `limit` assets of a job from `from_seq` on, with the programs they are
/// evaluated against.
pub async fn read_chunk(
    client: &impl GenericClient,
    job: JobId,
    partner: PartnerId,
    from_seq: u64,
    limit: usize,
    now: i64,
) -> Result<ChunkInput> {
    let catalog = partner_catalog(client, partner.as_uuid(), from_millis(now)).await?;
    let rows = client
        .query(
            // The chunk is exactly the `limit` assets from from_seq on; bounding the range
            // keeps the plan cheap even before the table has statistics.
            "SELECT seq, partner_reference, transmission_region, customer_classification,
                 meter_type, load_types, customer_group, data
             FROM provisional_assets
             WHERE job_id = $1 AND seq >= $3 AND seq < $3 + $2
             ORDER BY seq",
            &[
                job.as_uuid(),
                &seq_param(limit as u64)?,
                &seq_param(from_seq)?,
            ],
        )
        .await?
        .into_iter()
        .map(|row| {
            Ok(StoredAsset {
                pending: Pending {
                    seq: count(row.get(0))?,
                    partner_reference: row.get(1),
                },
                index: IndexColumns {
                    transmission_region: row.get(2),
                    customer_classification: row.get(3),
                    meter_type: row.get(4),
                    load_types: row.get(5),
                    customer_group: row.get(6),
                },
                input: row.get(7),
            })
        })
        .collect::<Result<_>>()?;
    Ok(ChunkInput {
        from_seq,
        limit,
        rows,
        catalog,
    })
}

impl ChunkInput {
    /// Parses and evaluates the chunk's assets.
    pub fn evaluate(self) -> Result<PreparedChunk> {
        PreparedChunk::evaluate(self.from_seq, self.limit, self.rows, self.catalog)
    }
}

/// The partner of a job, for preparing its chunks.
pub async fn job_partner(client: &impl GenericClient, job: JobId) -> Result<Option<PartnerId>> {
    let row = client
        .query_opt(
            "SELECT partner_id FROM jobs WHERE id = $1",
            &[job.as_uuid()],
        )
        .await?;
    Ok(row.map(|r| PartnerId::from_uuid(r.get(0))))
}

pub async fn import_meters(
    client: &mut Object,
    partner: PartnerId,
    created_by: CreatedBy,
    meters: &[MeterData],
) -> Result<Vec<MeterId>> {
    let now = now_millis();
    let tx = client.transaction().await?;
    let catalog = partner_catalog(&tx, partner.as_uuid(), from_millis(now)).await?;
    let insert = tx
        .prepare(
            "INSERT INTO meters (id, partner_id, partner_reference, reference_slot, created_by,
                 transmission_region, customer_classification, meter_type, load_types,
                 customer_group, data, enrollments, global_enrollment_status,
                 partner_action_required, partner_action_types, pending_programs,
                 created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $17)",
        )
        .await?;
    let mut ids = Vec::with_capacity(meters.len());
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
        tx.execute(
            &insert,
            &[
                id.as_uuid(),
                partner.as_uuid(),
                &row.partner_reference,
                &slot,
                &created_by.as_ref(),
                &row.transmission_region.as_ref(),
                &row.customer_classification.as_ref(),
                &row.meter_type.as_ref(),
                &row.load_types,
                &row.customer_group,
                &row.data,
                &c.enrollments,
                &c.global_status,
                &c.action_required,
                &c.action_types,
                &c.pending_programs,
                &now,
            ],
        )
        .await?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

/// Columns: job_id, seq, partner_reference, status, status_name, status_description,
/// meter_id, created_at, data.
pub fn listed_asset(row: &Row) -> Result<ProvisionalAsset> {
    Ok(ProvisionalAsset {
        job_id: JobId::from_uuid(row.get(0)),
        state: AssetState {
            seq: count(row.get(1))?,
            partner_reference: row.get(2),
            status: parse(row.get(3))?,
            status_name: row.get::<_, Option<&str>>(4).map(parse).transpose()?,
            status_description: row.get(5),
            meter_id: row.get::<_, Option<Uuid>>(6).map(MeterId::from_uuid),
            created_at: row.get(7),
        },
        data: evaluate::parse_input(row.get(8))?,
    })
}

/// The programs a partner may use, read with the given client or transaction.
pub async fn partner_catalog(
    client: &impl GenericClient,
    partner: &Uuid,
    now: time::OffsetDateTime,
) -> Result<Catalog> {
    let sql = PARTNER_PROGRAMS_SQL.replace("{partner}", "$1");
    let rows = client.query(&sql, &[partner]).await?;
    Catalog::from_definitions(rows.iter().map(|r| r.get::<_, String>(0)), now)
}

/// See [`crate::Store::note_chunk_failure`].
pub async fn note_failure(
    client: &mut Object,
    job: JobId,
    worker: &str,
    error: &str,
    now: i64,
) -> Result<u32> {
    let tx = client.transaction().await?;
    let failures: i32 = tx
        .query_opt(failures::NOTE_FAILURE, &[job.as_uuid(), &worker, &error])
        .await?
        .ok_or(StoreError::LeaseLost)?
        .get(0);
    let failures = u32::try_from(failures).map_err(|_| corrupt(format!("{failures} failures")))?;
    if let Some(delay) = retry_delay(failures) {
        tx.execute(
            failures::HOLD,
            &[job.as_uuid(), &worker, &(now + millis(delay))],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(failures)
}

/// See [`crate::Store::give_up_job`].
pub async fn give_up(
    client: &mut Object,
    job: JobId,
    worker: &str,
    description: &str,
    now: i64,
) -> Result<JobStatus> {
    let tx = client.transaction().await?;
    let head = tx
        .query_opt(
            &format!("{} FOR UPDATE", failures::GIVE_UP_HEAD),
            &[job.as_uuid(), &worker],
        )
        .await?
        .ok_or(StoreError::LeaseLost)?;
    let mut counts = JobCounts {
        assets: count(head.get(0))?,
        created: count(head.get(1))?,
        updated: count(head.get(2))?,
        failed: count(head.get(3))?,
    };
    let next_seq: i64 = head.get(4);
    tx.execute(
        failures::FAIL_REST,
        &[job.as_uuid(), &next_seq, &description],
    )
    .await?;
    // Every asset without an outcome is failed now.
    let added = counts.assets.saturating_sub(counts.finished());
    counts.failed += added;
    let status = counts.status();
    tx.execute(
        failures::END,
        &[job.as_uuid(), &seq_param(added)?, &status.as_ref(), &now],
    )
    .await?;
    tx.commit().await?;
    Ok(status)
}
