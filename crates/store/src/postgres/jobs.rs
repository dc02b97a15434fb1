//! What PostgreSQL does its own way in a job's life: a chunk's lookups and replaces as a
//! handful of set-based statements over arrays, its new meters copied in with one binary
//! `COPY`, the unique index settling a race with another process.

use std::collections::HashMap;

use deadpool_postgres::{GenericClient, Object, Transaction};
use gridroll_domain::job::{Pending, plan_chunk};
use gridroll_domain::{MeterId, PartnerId};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::PgError;
use super::db::{CopyIn, PgDb};
use crate::ahead::{self, Ledger, PreparedChunk};
use crate::jobs::LARGE_UPLOAD;
use crate::jobs::chunk::{self, Done, Head, MeterWrite, Stored, Task, Writes};
use crate::model::ChunkReport;
use crate::{Result, StoreError, evaluate};

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

/// What a chunk did, and where its job has got to.
pub struct Chunk {
    pub report: ChunkReport,
    pub next_seq: u64,
    /// The job's assets (statistics follow the first and the last chunk of a large job).
    pub assets: u64,
    /// Whether the chunk was its job's first.
    first: bool,
    /// The references the chunk gave a meter to.
    created: Vec<String>,
}

impl Chunk {
    /// Whether the chunk ended a job large enough that the meters' statistics should be
    /// refreshed: a large import changes `meters` faster than autovacuum notices.
    pub fn ended_a_large_job(&self) -> bool {
        self.report.status != gridroll_domain::job::JobStatus::Processing
            && self.assets >= LARGE_UPLOAD
    }

    /// Whether the chunk began a large job that goes on. Statistics taken before the
    /// job's partner had meters weigh it as a partner with none (or, where partners have
    /// a meter or two, as one of them), and a reference lookup planned on them reads all
    /// the partner's meters through another index that leads with the partner, once a
    /// reference. Refreshed once the first chunk is in, they count the partner's meters,
    /// and the rest of the import is planned knowing them.
    pub fn began_a_large_job(&self) -> bool {
        self.began_a_job()
            && self.report.status == gridroll_domain::job::JobStatus::Processing
            && self.assets >= LARGE_UPLOAD
    }

    /// Whether the chunk was its job's first: where statistics made stale by the
    /// meters written since they were taken are refreshed, before the job's other chunks
    /// (and its partner's later jobs) are planned on them.
    pub fn began_a_job(&self) -> bool {
        self.first
    }
}

/// How often a chunk is tried again after colliding with a concurrent transaction.
const ATTEMPTS: usize = 32;

/// Processes the next `limit` assets of a job in one transaction, and says where the job
/// has got to. A chunk that collides with another process creating the same reference
/// (or deadlocks with it) is rolled back and planned again, now seeing the other
/// process's meter. `prepared` is used when it is the chunk due, with the references it
/// found unless `ledger` tells that one of this process's chunks may have changed them;
/// the ledger is told which references the chunk gave meters to.
pub async fn process_chunk(
    client: &mut Object,
    task: Task<'_>,
    durable: bool,
    prepared: Option<PreparedChunk>,
    ledger: &Ledger,
) -> Result<Chunk> {
    let (mut prepared, job) = (prepared, task.job);
    for attempt in 1.. {
        let tx = client.transaction().await?;
        match try_chunk(&tx, task, durable, &mut prepared, ledger).await {
            Ok(Some(mut done)) => {
                tx.commit().await?;
                ledger.wrote_chunk(std::mem::take(&mut done.created));
                return Ok(done);
            }
            Ok(None) if attempt < ATTEMPTS => {
                tracing::debug!(%job, attempt, "a concurrent change created, archived or renamed a reference; planning the chunk again");
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
        // The attempt is undone (dropping the transaction rolls it back too).
        tx.rollback().await?;
    }
    unreachable!("the loop returns")
}

fn is_transient(error: &StoreError) -> bool {
    PgError::code(error).is_some_and(|code| {
        *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// One attempt at a chunk, in `tx`: `None` when a create collided with another
/// process's, or a meter found was archived or renamed since, and the chunk must be
/// planned again. The chunk's preparation is kept in
/// `prepared` for the next attempt.
async fn try_chunk(
    tx: &Transaction<'_>,
    task: Task<'_>,
    durable: bool,
    prepared: &mut Option<PreparedChunk>,
    ledger: &Ledger,
) -> Result<Option<Chunk>> {
    let Task {
        job,
        worker,
        limit,
        now,
        ..
    } = task;
    let db = &mut PgDb::new(tx);
    // A chunk lost to a crash of the database server is processed again. The setting is
    // sent with the chunk's first statement, in the same round trip.
    let commit_mode = async {
        if !durable {
            tx.batch_execute("SET LOCAL synchronous_commit = off")
                .await?;
        }
        Ok::<_, StoreError>(())
    };
    let (_, head) = tokio::try_join!(commit_mode, chunk::head(db, job, worker))?;
    let (partner, update_existing, next_seq) = match head {
        Head::Finished { report, next_seq } => {
            return Ok(Some(Chunk {
                report,
                next_seq,
                assets: 0,
                first: false,
                created: Vec::new(),
            }));
        }
        Head::Due {
            partner,
            update_existing,
            next_seq,
        } => (partner, update_existing, next_seq),
    };
    let input = chunk::due_chunk(db, prepared.take(), job, partner, next_seq, limit, now).await?;
    let input = prepared.insert(input);
    let pending: Vec<Pending> = input.assets.iter().map(|a| a.pending.clone()).collect();
    // What was found ahead serves the first attempt only: one planned again looks every
    // reference up in its own transaction.
    let references = ahead::to_look_up(&pending, input.found.take(), ledger);
    let existing = existing_meters(&**tx, partner, &references).await?;
    let input = &*input;
    let found = references_found(&existing);
    let plan = plan_chunk(&pending, existing, update_existing);
    let Some(before) = replaced_state(tx, partner, &chunk::replaced_meters(&plan), &found).await?
    else {
        return Ok(None);
    };
    let writes = chunk::plan_writes(&plan, input, &before)?;
    if !write_meters(tx, partner, &writes, now).await? {
        return Ok(None);
    }
    chunk::write_outcomes(db, job, &plan).await?;
    let next = pending.last().map_or(next_seq, |p| p.seq + 1);
    let done = Done {
        partner,
        plan: &plan,
        writes: &writes,
        before: &before,
        catalog: &input.catalog,
        next_seq: next,
    };
    let totals = chunk::finish(db, task, done).await?;
    let report = ChunkReport {
        processed: pending.len(),
        status: totals.status(),
        totals,
    };
    Ok(Some(Chunk {
        report,
        next_seq: next,
        assets: totals.assets,
        first: next_seq == 0,
        created: writes.created_references(),
    }))
}

/// How a chunk looks its references up: one probe of the reference index per reference
/// (`$1` the partner, `$2` the references). Planned as a join (or with `= ANY`),
/// statistics taken while `meters` was small make the planner scan every meter of the
/// partner instead, and a large import quadratic; `OFFSET 0` keeps the subquery a probe of
/// its own. It is planned for its partner, on statistics refreshed after a large job's
/// first chunk (see [`Chunk::began_a_large_job`]); a generic plan would weigh the partner
/// by the average one, which where partners have a meter or two also leads it off the
/// reference index.
pub const REFERENCE_LOOKUP: &str =
    "SELECT m.partner_reference, m.id FROM unnest($2::text[]) AS r(reference)
     CROSS JOIN LATERAL (
         SELECT partner_reference, id, created_at FROM meters
         WHERE partner_id = $1 AND partner_reference = r.reference AND NOT is_archived
         OFFSET 0
     ) AS m
     ORDER BY m.created_at, m.id";

/// The partner's meters that carry each of `references`, oldest first; a reference no
/// meter carries is left out. Archived meters are left out too: no upload finds them.
pub async fn existing_meters(
    client: &impl tokio_postgres::GenericClient,
    partner: PartnerId,
    references: &[String],
) -> Result<HashMap<String, Vec<MeterId>>> {
    let mut existing: HashMap<String, Vec<MeterId>> = HashMap::new();
    if references.is_empty() {
        return Ok(existing);
    }
    // The statement is planned anew each time, for its partner, never kept: a plan kept
    // from the start of a large import would go on using the statistics of then. It is
    // parsed, bound and run in one exchange, its parameters typed here.
    let params: [(&(dyn ToSql + Sync), Type); 2] = [
        (partner.as_uuid(), Type::UUID),
        (&references, Type::TEXT_ARRAY),
    ];
    let rows = client.query_typed(REFERENCE_LOOKUP, &params).await?;
    for row in rows {
        existing
            .entry(row.get(0))
            .or_default()
            .push(MeterId::from_uuid(row.get(1)));
    }
    Ok(existing)
}

/// The reference each meter the lookup found was found by.
fn references_found(existing: &HashMap<String, Vec<MeterId>>) -> HashMap<Uuid, String> {
    existing
        .iter()
        .flat_map(|(reference, ids)| ids.iter().map(move |id| (*id.as_uuid(), reference.clone())))
        .collect()
}

/// The meters the chunk replaces, locked, so that an activation or participation change
/// committed meanwhile is not overwritten with what was read before it. `None` when one
/// of them was archived or given another reference after the lookup found it (the
/// lookup takes no lock): the chunk is then planned again.
async fn replaced_state(
    tx: &Transaction<'_>,
    partner: PartnerId,
    meters: &[MeterId],
    found: &HashMap<Uuid, String>,
) -> Result<Option<HashMap<Uuid, Stored>>> {
    let mut state = HashMap::new();
    if meters.is_empty() {
        return Ok(Some(state));
    }
    let ids: Vec<Uuid> = meters.iter().map(|m| *m.as_uuid()).collect();
    for row in tx
        .query(
            "SELECT id, enrollments, participation, data, partner_reference, is_archived
             FROM meters WHERE partner_id = $2 AND id = ANY($1)
             ORDER BY id FOR UPDATE",
            &[&ids, partner.as_uuid()],
        )
        .await?
    {
        let id: Uuid = row.get(0);
        let moved = found
            .get(&id)
            .is_some_and(|r| row.get::<_, bool>(5) || row.get::<_, &str>(4) != r);
        if moved {
            return Ok(None);
        }
        state.insert(
            row.get(0),
            Stored {
                enrollments: evaluate::parse_enrollments(row.get(1))?,
                abstentions: evaluate::parse_abstentions(row.get(2))?,
                data: row.get(3),
            },
        );
    }
    Ok(Some(state))
}

/// The data goes in as parameters, column by column: no statement reads the job input
/// back. Both statements take the same parameters ($1 partner, $2 now, $3.. columns).
const COLUMNS: &str = "unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bool[],
         $14::text[], $15::text[])";
const NAMES: &str = "(id, reference, region, class, type, loads, grp, data, enrollments,
         status, action_required, action_types, pending";

/// Writes the chunk's meters; false when another process created one of these
/// references since they were looked up (the attempt is then rolled back).
async fn write_meters(
    tx: &Transaction<'_>,
    partner: PartnerId,
    writes: &Writes<'_>,
    now: i64,
) -> Result<bool> {
    if !writes.creates.is_empty() {
        // A plain insert checks the reference index as it goes; `ON CONFLICT` would cost
        // every row a second probe for a race that almost never happens.
        match create_meters(tx, partner, &writes.creates, now).await {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => return Ok(false),
            created => created?,
        }
    }
    if !writes.replaces.is_empty() {
        let columns = Columnar::of(writes.replaces.iter());
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
            &columns.params(partner.as_uuid(), &now),
        )
        .await?;
    }
    Ok(true)
}

/// The columns a new meter is copied in with, and their types.
const CREATE_COLUMNS: &str = "id, partner_id, partner_reference, reference_slot, created_by,
    transmission_region, customer_classification, meter_type, load_types, customer_group,
    data, enrollments, global_enrollment_status, partner_action_required,
    partner_action_types, pending_programs, created_at, updated_at";
const CREATE_TYPES: [Type; 18] = [
    Type::UUID,
    Type::UUID,
    Type::TEXT,
    Type::BYTEA,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
];

/// Writes the chunk's new meters with one binary `COPY`, in the order given (by
/// reference, so that concurrent chunks take the index's locks in one order): the rows
/// go to the table as they are, without a statement to plan or arrays to take apart.
async fn create_meters(
    tx: &Transaction<'_>,
    partner: PartnerId,
    creates: &[MeterWrite<'_>],
    now: i64,
) -> std::result::Result<(), tokio_postgres::Error> {
    let sink = tx
        .copy_in_sink(&format!("COPY meters ({CREATE_COLUMNS}) FROM STDIN BINARY"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &CREATE_TYPES);
    futures_util::pin_mut!(writer);
    let no_slot: &[u8] = &[];
    for w in creates {
        let c = &w.columns;
        writer
            .as_mut()
            .write(&[
                &w.id,
                partner.as_uuid(),
                &w.reference,
                &no_slot,
                &"PARTNER",
                &w.index.transmission_region,
                &w.index.customer_classification,
                &w.index.meter_type,
                &w.index.load_types,
                &w.index.customer_group,
                &w.data,
                &c.enrollments,
                &c.global_status,
                &c.action_required,
                &c.action_types,
                &c.pending_programs,
                &now,
                &now,
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}
