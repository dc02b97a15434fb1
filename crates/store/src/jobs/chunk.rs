//! The steps of processing a chunk that both backends share: reading the job's head and
//! its next assets, deciding which meters the chunk writes and with what, and advancing
//! the job. Each backend runs them in its own transaction, around the steps that are its
//! own (looking references up, writing the meters and the outcomes in batches).

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use gridroll_domain::enrollment::{Abstention, Enrollment};
use gridroll_domain::event::{self, MeterRef};
use gridroll_domain::job::{JobCounts, JobStatus, Outcome, Pending, Planned, StatusName, Write};
use gridroll_domain::timestamp::from_millis;
use gridroll_domain::webhook::EventType;
use gridroll_domain::{JobId, MeterId, PartnerId};
use uuid::Uuid;

use super::segments;
use crate::ahead::{self, PreparedAsset, PreparedChunk, StoredAsset};
use crate::catalog::partner_catalog;
use crate::db::{Db, Row, Value};
use crate::evaluate::{self, Catalog, Columns};
use crate::events::{EventTypes, Outbox};
use crate::lease::millis;
use crate::model::{ChunkReport, IndexColumns};
use crate::{Result, StoreError, columns, rows, values};

/// What a worker asks of a chunk: the next `limit` assets of `job`, holding its lease
/// for `lease` more, recording the events the feed keeps (`feed`) and those the
/// partner's subscriptions want.
#[derive(Debug, Clone, Copy)]
pub struct Task<'a> {
    pub job: JobId,
    pub worker: &'a str,
    pub limit: usize,
    pub lease: Duration,
    pub feed: EventTypes,
    pub now: i64,
}

/// Where a job stands when its worker starts a chunk.
pub enum Head {
    /// The job has work left for this worker.
    Due {
        partner: PartnerId,
        update_existing: bool,
        next_seq: u64,
    },
    /// The job is final already: nothing to do.
    Finished { report: ChunkReport, next_seq: u64 },
}

/// Reads the job's head, locked on PostgreSQL so that a worker taking over a lapsed
/// lease stays off this chunk; a job another worker holds is [`StoreError::LeaseLost`].
pub async fn head(db: &mut dyn Db, job: JobId, worker: &str) -> Result<Head> {
    let sql = format!(
        "SELECT partner_id, update_existing, status, lease_owner, next_seq FROM jobs
         WHERE id = $1{}",
        db.dialect().for_update()
    );
    let row = db
        .query_opt(&sql, values![job])
        .await?
        .ok_or(StoreError::LeaseLost)?;
    decide_head(&row, worker)
}

fn decide_head(row: &Row, worker: &str) -> Result<Head> {
    let status: JobStatus = row.parse(2)?;
    let next_seq: u64 = row.get(4)?;
    if status != JobStatus::Processing {
        let report = ChunkReport {
            processed: 0,
            status,
            totals: JobCounts::default(),
        };
        return Ok(Head::Finished { report, next_seq });
    }
    if row.get::<Option<String>>(3)?.as_deref() != Some(worker) {
        return Err(StoreError::LeaseLost);
    }
    Ok(Head::Due {
        partner: row.get(0)?,
        update_existing: row.get(1)?,
        next_seq,
    })
}

/// A chunk's assets and the partner's programs, read but not yet evaluated.
pub struct ChunkInput {
    from_seq: u64,
    limit: usize,
    rows: Vec<StoredAsset>,
    catalog: Catalog,
}

impl ChunkInput {
    /// The chunk's references, each once.
    pub fn references(&self) -> Vec<String> {
        let references = self
            .rows
            .iter()
            .map(|r| r.pending.partner_reference.as_str());
        ahead::distinct(references).map(str::to_owned).collect()
    }

    /// Parses and evaluates the chunk's assets: the CPU work of a chunk, which needs no
    /// lock and is done beside the writer when it can be.
    pub fn evaluate(self) -> Result<PreparedChunk> {
        PreparedChunk::evaluate(self.from_seq, self.limit, self.rows, self.catalog)
    }
}

/// Reads the `limit` assets of a job from `from_seq` on, with the programs they are
/// evaluated against.
pub async fn read_chunk(
    db: &mut dyn Db,
    job: JobId,
    partner: PartnerId,
    from_seq: u64,
    limit: usize,
    now: i64,
) -> Result<ChunkInput> {
    let catalog = partner_catalog(db, partner, from_millis(now)).await?;
    let to_seq = from_seq + limit as u64;
    let mut rows = Vec::with_capacity(limit);
    for segment in segments::covering(db, job, from_seq, to_seq).await? {
        for (seq, asset) in segment.assets(from_seq, to_seq)? {
            rows.push(StoredAsset {
                pending: Pending {
                    seq,
                    partner_reference: asset.partner_reference.clone(),
                },
                index: IndexColumns::of(&asset),
                input: asset.data,
            });
        }
    }
    Ok(ChunkInput {
        from_seq,
        limit,
        rows,
        catalog,
    })
}

/// The partner of a job, for preparing its chunks ahead.
pub async fn job_partner(db: &mut dyn Db, job: JobId) -> Result<PartnerId> {
    db.query_opt("SELECT partner_id FROM jobs WHERE id = $1", values![job])
        .await?
        .ok_or(StoreError::LeaseLost)?
        .get(0)
}

/// The prepared chunk if it is the one due, else the chunk read and evaluated now.
pub async fn due_chunk(
    db: &mut dyn Db,
    prepared: Option<PreparedChunk>,
    job: JobId,
    partner: PartnerId,
    next_seq: u64,
    limit: usize,
    now: i64,
) -> Result<PreparedChunk> {
    match prepared {
        Some(p) if p.is_due(next_seq, limit) => Ok(p),
        _ => read_chunk(db, job, partner, next_seq, limit, now)
            .await?
            .evaluate(),
    }
}

/// One meter a chunk writes, with everything its row needs.
pub struct MeterWrite<'d> {
    /// The asset's place in the file (of the meter's first write in the chunk).
    pub seq: u64,
    pub reference: &'d str,
    pub id: Uuid,
    pub index: &'d IndexColumns,
    pub data: &'d str,
    /// Borrowed from the prepared chunk for a create, evaluated afresh for a replace.
    pub columns: Cow<'d, Columns>,
}

/// The meters a chunk creates and replaces, each with its final state.
pub struct Writes<'d> {
    /// In reference order, so that concurrent chunks take index locks in one order.
    pub creates: Vec<MeterWrite<'d>>,
    /// In id order.
    pub replaces: Vec<MeterWrite<'d>>,
}

impl Writes<'_> {
    /// The references the chunk gives a meter to: those of the meters it creates (a
    /// replaced meter keeps its reference).
    pub fn created_references(&self) -> Vec<String> {
        self.creates
            .iter()
            .map(|w| w.reference.to_owned())
            .collect()
    }
}

/// The meters the plan replaces: their enrollments and participation must be read (and
/// locked) before the chunk decides their new state.
pub fn replaced_meters(plan: &[Planned]) -> Vec<MeterId> {
    plan.iter()
        .filter_map(|p| match p.write {
            Write::Replace(id) => Some(id),
            _ => None,
        })
        .collect()
}

/// A meter the chunk replaces, as it was before the chunk.
pub struct Stored {
    pub enrollments: Vec<Enrollment>,
    pub abstentions: Vec<Abstention>,
    /// Its data, in the stored form.
    pub data: String,
}

/// The enrollments and participation of a meter as the chunk goes.
type MeterState = (Vec<Enrollment>, Vec<Abstention>);

/// Decides what the chunk writes. Assets are evaluated in file order, so a meter written
/// twice in the chunk is evaluated on top of its first write; only each meter's last
/// write is kept, and a meter created and then replaced in the chunk is created with
/// its final state. `before` holds the meters the plan replaces that existed before it.
pub fn plan_writes<'d>(
    plan: &[Planned],
    chunk: &'d PreparedChunk,
    before: &HashMap<Uuid, Stored>,
) -> Result<Writes<'d>> {
    let mut state: HashMap<Uuid, MeterState> = HashMap::new();
    let by_seq: HashMap<u64, &PreparedAsset> =
        chunk.assets.iter().map(|a| (a.pending.seq, a)).collect();
    let mut creates: Vec<MeterWrite> = Vec::new();
    let mut replaces: HashMap<Uuid, MeterWrite> = HashMap::new();
    // The enrollments of the meters this chunk creates, as stored, in case the same chunk
    // replaces one of them.
    let mut created_here: HashMap<Uuid, &str> = HashMap::new();
    for planned in plan {
        let asset = by_seq[&planned.seq];
        let (id, columns) = match planned.write {
            Write::Create(id) => {
                created_here.insert(*id.as_uuid(), &asset.as_new.enrollments);
                (*id.as_uuid(), Cow::Borrowed(&asset.as_new))
            }
            Write::Replace(id) => {
                let id = *id.as_uuid();
                let (previous, abstentions) = match (state.remove(&id), before.get(&id)) {
                    (Some(current), _) => current,
                    (None, Some(b)) => (b.enrollments.clone(), b.abstentions.clone()),
                    (None, None) => match created_here.get(&id) {
                        Some(stored) => (evaluate::parse_enrollments(stored)?, Vec::new()),
                        None => Default::default(),
                    },
                };
                let columns = chunk
                    .catalog
                    .evaluate_input(&asset.data, &previous, &abstentions)?;
                state.insert(id, (columns.list.clone(), abstentions));
                (id, Cow::Owned(columns))
            }
            Write::Nothing => continue,
        };
        let write = MeterWrite {
            seq: planned.seq,
            reference: &asset.pending.partner_reference,
            id,
            index: &asset.index,
            data: &asset.data,
            columns,
        };
        if matches!(planned.write, Write::Create(_)) {
            creates.push(write);
        } else {
            replaces.insert(id, write);
        }
    }
    for create in &mut creates {
        if let Some(last) = replaces.remove(&create.id) {
            *create = MeterWrite {
                seq: create.seq,
                ..last
            };
        }
    }
    creates.sort_unstable_by(|a, b| (a.reference, a.id).cmp(&(b.reference, b.id)));
    let mut replaces: Vec<MeterWrite> = replaces.into_values().collect();
    replaces.sort_unstable_by_key(|r| r.id);
    Ok(Writes { creates, replaces })
}

/// Records what became of the chunk's assets: those that became meters in one row for
/// the chunk (each one's kind a character, its meter's id sixteen bytes), the others a
/// row each, with their own description, where a listing of failed rows finds them.
pub async fn write_outcomes(db: &mut dyn Db, job: JobId, plan: &[Planned]) -> Result<()> {
    let row = ChunkOutcomes::of(plan);
    let in_row = row.is_some();
    if let Some(row) = row {
        db.execute(
            "INSERT INTO chunk_outcomes (job_id, first_seq, assets, kinds, meter_ids)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                job.into(),
                Value::from(row.first_seq),
                Value::from(plan.len()),
                Value::Text(row.kinds),
                Value::Bytes(row.meter_ids),
            ],
        )
        .await?;
    }
    let others: Vec<Vec<Value>> = plan
        .iter()
        .filter(|p| !in_row || kept_in_chunk(&p.outcome).is_none())
        .map(|Planned { seq, outcome, .. }| {
            vec![
                job.into(),
                Value::from(*seq),
                Value::from(outcome.status.as_ref()),
                Value::from(outcome.name.as_ref()),
                outcome.kept_description().into(),
                outcome.meter_id.into(),
            ]
        })
        .collect();
    db.insert_rows(
        "asset_outcomes",
        columns![job_id: Uuid, seq: Int, status: Text, status_name: Text,
                 status_description: Text, meter_id: Uuid],
        &others,
    )
    .await
}

/// The kind (`C` created, `U` updated) and meter of an outcome its chunk's row can hold:
/// an asset that became a meter, whose description is its name's.
fn kept_in_chunk(outcome: &Outcome) -> Option<(char, MeterId)> {
    let kind = match outcome.name {
        StatusName::MeterCreated => 'C',
        StatusName::MeterUpdated => 'U',
        _ => return None,
    };
    match (outcome.meter_id, outcome.kept_description()) {
        (Some(id), None) => Some((kind, id)),
        _ => None,
    }
}

/// The outcomes a chunk's row holds, read back: each asset that became a meter, by its
/// sequence; the others (`-`) are rows of their own.
pub fn chunk_outcomes(
    first_seq: u64,
    kinds: &str,
    meter_ids: &[u8],
) -> Result<Vec<(u64, Outcome)>> {
    if meter_ids.len() != 16 * kinds.len() {
        return Err(StoreError::Corrupt(format!(
            "the outcomes of the chunk from {first_seq}: {} kinds, {} bytes of meter ids",
            kinds.len(),
            meter_ids.len()
        )));
    }
    let mut found = Vec::with_capacity(kinds.len());
    for (i, (kind, id)) in kinds.bytes().zip(meter_ids.chunks_exact(16)).enumerate() {
        let outcome = match kind {
            b'C' => Outcome::created,
            b'U' => Outcome::updated,
            _ => continue,
        };
        let id = Uuid::from_slice(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        found.push((first_seq + i as u64, outcome(MeterId::from_uuid(id))));
    }
    Ok(found)
}

/// A chunk's row of outcomes, the form `jobs/assets.rs` reads back: a character per
/// asset from `first_seq` on (`-` for an asset whose outcome is a row of its own) and its
/// meter's id, sixteen bytes (zeros for the others).
#[derive(Debug, PartialEq, Eq)]
struct ChunkOutcomes {
    first_seq: u64,
    kinds: String,
    meter_ids: Vec<u8>,
}

impl ChunkOutcomes {
    /// The row of a chunk whose assets are consecutive, as a chunk read from the job's
    /// segments is, and of which one at least became a meter; otherwise none, and every
    /// outcome is a row of its own.
    fn of(plan: &[Planned]) -> Option<Self> {
        let first_seq = plan.first()?.seq;
        let consecutive = plan
            .iter()
            .enumerate()
            .all(|(i, p)| p.seq == first_seq + i as u64);
        if !consecutive || plan.iter().all(|p| kept_in_chunk(&p.outcome).is_none()) {
            return None;
        }
        let mut kinds = String::with_capacity(plan.len());
        let mut meter_ids = Vec::with_capacity(16 * plan.len());
        for p in plan {
            let (kind, id) = kept_in_chunk(&p.outcome).map_or(('-', [0; 16]), |(kind, id)| {
                (kind, *id.as_uuid().as_bytes())
            });
            kinds.push(kind);
            meter_ids.extend_from_slice(&id);
        }
        Some(Self {
            first_seq,
            kinds,
            meter_ids,
        })
    }
}

/// The counts a chunk adds to its job.
pub fn counts(plan: &[Planned]) -> JobCounts {
    let mut counts = JobCounts::default();
    for planned in plan {
        counts.record(&planned.outcome);
    }
    counts
}

/// What the chunk did, for its last steps.
pub struct Done<'a> {
    pub partner: PartnerId,
    pub plan: &'a [Planned],
    pub writes: &'a Writes<'a>,
    pub before: &'a HashMap<Uuid, Stored>,
    pub catalog: &'a Catalog,
    /// The sequence after the chunk's last asset.
    pub next_seq: u64,
}

/// The chunk's last steps: advances the job, then records the events of what the chunk
/// did (and of the job's end) in the same transaction. Answers the job's counts.
pub async fn finish(db: &mut dyn Db, task: Task<'_>, done: Done<'_>) -> Result<JobCounts> {
    let Task {
        job, lease, now, ..
    } = task;
    let mut outbox = Outbox::open(db, done.partner, task.feed).await?;
    note_events(&mut outbox, done.writes, done.before, done.catalog);
    let totals = advance(
        db,
        job,
        &counts(done.plan),
        done.next_seq,
        lease,
        now,
        done.plan.len(),
    )
    .await?;
    let status = totals.status();
    if status != JobStatus::Processing {
        outbox.add(EventType::JobCompleted, || {
            event::job_completed(job, status, &totals)
        });
    }
    outbox.record(db, now).await?;
    Ok(totals)
}

/// The events of the chunk's meters, in file order: `meter.created` for each it created;
/// for each it replaced, `meter.updated` when the data changed and the enrollment events
/// when the enrollments did.
fn note_events(
    outbox: &mut Outbox,
    writes: &Writes,
    before: &HashMap<Uuid, Stored>,
    catalog: &Catalog,
) {
    fn meter<'w>(w: &'w MeterWrite<'_>) -> MeterRef<'w> {
        MeterRef {
            id: MeterId::from_uuid(w.id),
            partner_reference: w.reference,
            transmission_region: &w.index.transmission_region,
            meter_type: &w.index.meter_type,
        }
    }
    let creates = writes.creates.iter().map(|w| (w, true));
    let replaces = writes.replaces.iter().map(|w| (w, false));
    let mut in_file_order: Vec<(&MeterWrite, bool)> = creates.chain(replaces).collect();
    in_file_order.sort_unstable_by_key(|(w, _)| w.seq);
    for (w, created) in in_file_order {
        if created {
            outbox.add(EventType::MeterCreated, || event::meter_created(meter(w)));
            continue;
        }
        let Some(was) = before.get(&w.id) else {
            continue;
        };
        if was.data != w.data {
            outbox.add(EventType::MeterUpdated, || event::meter_updated(meter(w)));
        }
        outbox.enrollments_changed(
            catalog,
            meter(w),
            (&was.enrollments, &was.abstentions),
            (&w.columns.list, &was.abstentions),
        );
    }
}

/// Adds the chunk's counts to its job, moves it on to `next_seq`, renews its worker's
/// lease (a chunk that succeeds also starts the job's count of failures again), and
/// ends the job once every asset is final. Answers the job's counts after the chunk.
async fn advance(
    db: &mut dyn Db,
    job: JobId,
    chunk: &JobCounts,
    next_seq: u64,
    lease: Duration,
    now: i64,
    processed: usize,
) -> Result<JobCounts> {
    let row = db
        .query_one(
            "UPDATE jobs SET created_count = created_count + $1,
                 updated_count = updated_count + $2, failed_count = failed_count + $3,
                 updated_at = $4, lease_expires_at = $5, next_seq = $7, failed_attempts = 0
             WHERE id = $6
             RETURNING assets_count, created_count, updated_count, failed_count",
            values![
                chunk.created,
                chunk.updated,
                chunk.failed,
                now,
                now + millis(lease),
                job,
                next_seq
            ],
        )
        .await?;
    let totals = rows::counts(&row)?;
    let status = totals.status();
    if status != JobStatus::Processing {
        db.execute(
            "UPDATE jobs SET status = $1, lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $2",
            values![status.as_ref(), job],
        )
        .await?;
    } else if processed == 0 {
        return Err(StoreError::Corrupt(format!(
            "job {job} has no assets left to process but its counts are incomplete"
        )));
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use gridroll_domain::MeterId;
    use gridroll_domain::job::{Outcome, Planned, Write};

    use super::{ChunkOutcomes, chunk_outcomes};

    fn planned(seq: u64, outcome: Outcome) -> Planned {
        Planned {
            seq,
            outcome,
            write: Write::Nothing,
        }
    }

    #[test]
    fn a_chunks_row_holds_its_meters_by_position_and_leaves_the_others_out() {
        let (a, b) = (MeterId::new(), MeterId::new());
        let plan = [
            planned(3000, Outcome::created(a)),
            planned(3001, Outcome::duplicate(&[a])),
            planned(3002, Outcome::updated(b)),
        ];
        let row = ChunkOutcomes::of(&plan).expect("two assets became meters");
        assert_eq!(row.first_seq, 3000);
        assert_eq!(row.kinds, "C-U");
        assert_eq!(&row.meter_ids[..16], a.as_uuid().as_bytes());
        assert_eq!(&row.meter_ids[16..32], &[0; 16]);
        assert_eq!(&row.meter_ids[32..], b.as_uuid().as_bytes());
    }

    #[test]
    fn a_chunks_row_reads_back_as_the_outcomes_of_its_meters() {
        let (a, b) = (MeterId::new(), MeterId::new());
        let plan = [
            planned(7, Outcome::duplicate(&[a])),
            planned(8, Outcome::created(a)),
            planned(9, Outcome::ambiguous(&[a, b])),
            planned(10, Outcome::updated(b)),
        ];
        let row = ChunkOutcomes::of(&plan).expect("two assets became meters");
        let read = chunk_outcomes(row.first_seq, &row.kinds, &row.meter_ids).unwrap();
        assert_eq!(
            read,
            vec![(8, Outcome::created(a)), (10, Outcome::updated(b))]
        );
        assert!(chunk_outcomes(7, "CC", &row.meter_ids[..16]).is_err());
    }

    #[test]
    fn a_chunk_without_a_meter_or_with_a_gap_has_no_row() {
        let a = MeterId::new();
        let failed = [planned(0, Outcome::duplicate(&[a]))];
        assert_eq!(ChunkOutcomes::of(&failed), None);
        let gap = [
            planned(0, Outcome::created(a)),
            planned(2, Outcome::created(MeterId::new())),
        ];
        assert_eq!(ChunkOutcomes::of(&gap), None);
        assert_eq!(ChunkOutcomes::of(&[]), None);
    }
}
