//! What SQLite does its own way in a job's life: writing a batch of an upload, and the
//! chunk's lookups and writes, each a statement prepared once and stepped per row (on
//! SQLite a statement costs no round trip, so batching into one buys nothing).

use std::collections::HashMap;

use gridroll_domain::MeterId;
use gridroll_domain::PartnerId;
use gridroll_domain::job::{Pending, plan_chunk};
use rusqlite::{Connection, params};

use super::db::SqliteDb;
use crate::ahead::PreparedChunk;
use crate::db::run_now;
use crate::jobs::chunk::{self, Done, Head, Stored, Task, Writes};
use crate::model::ChunkReport;
use crate::{Result, StoreError, evaluate};

/// Processes the next `limit` assets of a job in file order, in the transaction open on
/// `db`: each asset's meter is written together with the asset's outcome and the job's
/// counts, so a crash at any point leaves every asset either untouched or fully done.
/// Answers the report and where the job has got to.
pub fn process_chunk(
    db: &mut SqliteDb,
    task: Task<'_>,
    prepared: Option<PreparedChunk>,
) -> Result<(ChunkReport, u64)> {
    let Task {
        job,
        worker,
        limit,
        now,
        ..
    } = task;
    let (partner, update_existing, next_seq) = match run_now(chunk::head(db, job, worker))? {
        Head::Finished { report, next_seq } => return Ok((report, next_seq)),
        Head::Due {
            partner,
            update_existing,
            next_seq,
        } => (partner, update_existing, next_seq),
    };
    let input = run_now(chunk::due_chunk(
        db, prepared, job, partner, next_seq, limit, now,
    ))?;
    let pending: Vec<Pending> = input.assets.iter().map(|a| a.pending.clone()).collect();
    let existing = existing_meters(db.conn(), partner, &pending)?;
    let plan = plan_chunk(&pending, existing, update_existing);
    let before = replaced_state(db.conn(), partner, &chunk::replaced_meters(&plan))?;
    let writes = chunk::plan_writes(&plan, &input, &before)?;
    write_meters(db.conn(), partner, &writes, now)?;
    run_now(chunk::write_outcomes(db, job, &plan))?;
    let next = pending.last().map_or(next_seq, |p| p.seq + 1);
    let done = Done {
        partner,
        plan: &plan,
        writes: &writes,
        before: &before,
        catalog: &input.catalog,
        next_seq: next,
    };
    let totals = run_now(chunk::finish(db, task, done))?;
    let report = ChunkReport {
        processed: pending.len(),
        status: totals.status(),
        totals,
    };
    Ok((report, next))
}

/// The meters that already have each reference of the chunk, oldest first: one
/// statement for the chunk, probing the reference index once per distinct reference.
/// Archived meters are left out: no upload finds them.
fn existing_meters(
    conn: &Connection,
    partner: PartnerId,
    pending: &[Pending],
) -> Result<HashMap<String, Vec<MeterId>>> {
    let mut existing: HashMap<String, Vec<MeterId>> = pending
        .iter()
        .map(|p| (p.partner_reference.clone(), Vec::new()))
        .collect();
    let references: Vec<&str> = existing.keys().map(String::as_str).collect();
    let references = serde_json::to_string(&references)
        .map_err(|e| StoreError::Corrupt(format!("references: {e}")))?;
    // CROSS JOIN keeps the references the outer loop: each is one probe of the index,
    // named so that no statistics (an operator may run ANALYZE) can choose another.
    // Ordered here rather than by the statement: almost every probe finds nothing.
    let mut find = conn.prepare_cached(
        "SELECT m.partner_reference, m.created_at, m.id
         FROM json_each(?2) AS r CROSS JOIN meters AS m INDEXED BY meters_by_reference
         WHERE m.partner_id = ?1 AND m.partner_reference = r.value AND NOT m.is_archived",
    )?;
    let mut found: Vec<(String, i64, uuid::Uuid)> = find
        .query_map(params![partner.as_uuid(), references], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    found.sort_unstable();
    for (reference, _, id) in found {
        if let Some(ids) = existing.get_mut(&reference) {
            ids.push(MeterId::from_uuid(id));
        }
    }
    Ok(existing)
}

/// The meters the chunk replaces, as they stand.
fn replaced_state(
    conn: &Connection,
    partner: PartnerId,
    meters: &[MeterId],
) -> Result<HashMap<uuid::Uuid, Stored>> {
    let mut select = conn.prepare_cached(
        "SELECT enrollments, participation, data FROM meters WHERE partner_id = ?1 AND id = ?2",
    )?;
    let mut state = HashMap::new();
    for id in meters {
        let mut rows = select.query(params![partner.as_uuid(), id.as_uuid()])?;
        if let Some(row) = rows.next()? {
            let enrollments: String = row.get(0)?;
            let participation: String = row.get(1)?;
            state.insert(
                *id.as_uuid(),
                Stored {
                    enrollments: evaluate::parse_enrollments(&enrollments)?,
                    abstentions: evaluate::parse_abstentions(&participation)?,
                    data: row.get(2)?,
                },
            );
        }
    }
    Ok(state)
}

/// Writes the chunk's meters: the asset's data is in hand, written as is, never read
/// back. A replace gives the meter exactly the asset's data.
fn write_meters(conn: &Connection, partner: PartnerId, writes: &Writes, now: i64) -> Result<()> {
    let mut create = conn.prepare_cached(
        "INSERT INTO meters (id, partner_id, partner_reference, reference_slot, created_by,
             transmission_region, customer_classification, meter_type, load_types,
             customer_group, data, enrollments, global_enrollment_status,
             partner_action_required, partner_action_types, pending_programs,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, X'', 'PARTNER', ?4, ?5, ?6, ?7, ?8, ?9,
             ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
    )?;
    // It takes the parameters of `create`; the partner and reference only confirm the
    // meter's.
    let mut replace = conn.prepare_cached(
        "UPDATE meters SET transmission_region = ?4, customer_classification = ?5,
             meter_type = ?6, load_types = ?7, customer_group = ?8, data = ?9,
             enrollments = ?10, global_enrollment_status = ?11,
             partner_action_required = ?12, partner_action_types = ?13,
             pending_programs = ?14, updated_at = ?15
         WHERE id = ?1 AND partner_id = ?2 AND partner_reference = ?3",
    )?;
    let statements = [
        (&mut create, &writes.creates),
        (&mut replace, &writes.replaces),
    ];
    for (statement, rows) in statements {
        for w in rows {
            let (index, c) = (w.index, &w.columns);
            statement.execute(params![
                w.id,
                partner.as_uuid(),
                w.reference,
                index.transmission_region,
                index.customer_classification,
                index.meter_type,
                index.load_types,
                index.customer_group,
                w.data,
                c.enrollments,
                c.global_status,
                c.action_required,
                c.action_types,
                c.pending_programs,
                now
            ])?;
        }
    }
    Ok(())
}
