//! The program catalog and the changes to enrollments that do not come from uploads:
//! participation preferences, operator activation, re-evaluation.

use gridroll_domain::enrollment::{self, PreferenceChange};
use gridroll_domain::program::Program;
use gridroll_domain::timestamp::{from_millis, now_millis};
use gridroll_domain::{MeterId, PartnerId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::jobs::partner_catalog;
use crate::Result;
use crate::evaluate::{self, Columns};
use crate::model::CatalogEntry;

fn definition(program: &Program) -> String {
    serde_json::to_string(program).expect("programs serialize")
}

pub fn seed(conn: &mut Connection, programs: &[Program]) -> Result<usize> {
    let now = now_millis();
    let tx = conn.transaction()?;
    let mut added = 0;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO programs (identifier, definition, retired, created_at, updated_at)
             VALUES (?1, ?2, 0, ?3, ?3) ON CONFLICT (identifier) DO NOTHING",
        )?;
        for program in programs {
            added += insert.execute(params![program.identifier, definition(program), now])?;
        }
    }
    tx.commit()?;
    Ok(added)
}

pub fn list(conn: &Connection) -> Result<Vec<CatalogEntry>> {
    let rows = conn
        .prepare_cached("SELECT definition, retired, updated_at FROM programs ORDER BY identifier")?
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, bool>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(definition, retired, updated_at)| {
            Ok(CatalogEntry {
                program: serde_json::from_str(&definition)
                    .map_err(|e| crate::StoreError::Corrupt(e.to_string()))?,
                retired,
                updated_at,
            })
        })
        .collect()
}

pub fn put(conn: &Connection, program: &Program) -> Result<()> {
    conn.execute(
        "INSERT INTO programs (identifier, definition, retired, created_at, updated_at)
         VALUES (?1, ?2, 0, ?3, ?3)
         ON CONFLICT (identifier) DO UPDATE
             SET definition = excluded.definition, retired = 0, updated_at = excluded.updated_at",
        params![program.identifier, definition(program), now_millis()],
    )?;
    Ok(())
}

pub fn retire(conn: &Connection, identifier: &str) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE programs SET retired = 1, updated_at = ?2 WHERE identifier = ?1",
        params![identifier, now_millis()],
    )?;
    Ok(changed == 1)
}

pub fn set_partner_programs(
    conn: &mut Connection,
    partner: PartnerId,
    programs: Option<&[String]>,
) -> Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM partner_programs WHERE partner_id = ?1",
        [partner.as_uuid()],
    )?;
    for identifier in programs.unwrap_or_default() {
        tx.execute(
            "INSERT INTO partner_programs (partner_id, identifier) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            params![partner.as_uuid(), identifier],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn write_columns(
    conn: &Connection,
    partner: PartnerId,
    id: &uuid::Uuid,
    participation: Option<&str>,
    c: &Columns,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE meters SET enrollments = ?2, global_enrollment_status = ?3,
             partner_action_required = ?4, partner_action_types = ?5, pending_programs = ?6,
             participation = coalesce(?7, participation), updated_at = ?8
         WHERE partner_id = ?9 AND id = ?1",
    )?
    .execute(params![
        id,
        c.enrollments,
        c.global_status,
        c.action_required,
        c.action_types,
        c.pending_programs,
        participation,
        now,
        partner.as_uuid()
    ])?;
    Ok(())
}

pub fn set_participation(
    conn: &mut Connection,
    partner: PartnerId,
    meters: &[MeterId],
    change: &PreferenceChange,
) -> Result<Vec<MeterId>> {
    let now = now_millis();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let catalog = partner_catalog(&tx, partner.as_uuid(), from_millis(now))?;
    let mut missing = Vec::new();
    let mut found = Vec::new();
    {
        let mut select = tx.prepare_cached(
            "SELECT enrollments, participation FROM meters WHERE id = ?1 AND partner_id = ?2",
        )?;
        for id in meters {
            let row: Option<(String, String)> = select
                .query_row([id.as_uuid(), partner.as_uuid()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            match row {
                Some(row) => found.push((*id, row)),
                None => missing.push(*id),
            }
        }
    }
    if !missing.is_empty() {
        return Ok(missing);
    }
    for (id, (enrollments, participation)) in found {
        let enrollments = evaluate::parse_enrollments(&enrollments)?;
        let mut abstentions = evaluate::parse_abstentions(&participation)?;
        enrollment::apply_preference(&mut abstentions, change.clone())
            .map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        let columns = evaluate::summarize(&catalog, &enrollments, &abstentions);
        let participation = serde_json::to_string(&abstentions).expect("abstentions serialize");
        write_columns(
            &tx,
            partner,
            id.as_uuid(),
            Some(&participation),
            &columns,
            now,
        )?;
    }
    tx.commit()?;
    Ok(Vec::new())
}

pub fn activate(
    conn: &mut Connection,
    partner: PartnerId,
    program: &str,
    meter: Option<MeterId>,
) -> Result<u64> {
    let now = now_millis();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let catalog = partner_catalog(&tx, partner.as_uuid(), from_millis(now))?;
    let pattern = format!("%,{program},%");
    let rows: Vec<(uuid::Uuid, String, String)> = tx
        .prepare_cached(
            "SELECT id, enrollments, participation FROM meters
             WHERE partner_id = ?1 AND (',' || pending_programs || ',') LIKE ?2
               AND (?3 IS NULL OR id = ?3)",
        )?
        .query_map(
            params![partner.as_uuid(), pattern, meter.map(|m| *m.as_uuid())],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut changed = 0;
    for (id, enrollments, participation) in rows {
        let mut enrollments = evaluate::parse_enrollments(&enrollments)?;
        if enrollment::activate(&mut enrollments, program, from_millis(now)) {
            let abstentions = evaluate::parse_abstentions(&participation)?;
            let columns = evaluate::summarize(&catalog, &enrollments, &abstentions);
            write_columns(&tx, partner, &id, None, &columns, now)?;
            changed += 1;
        }
    }
    tx.commit()?;
    Ok(changed)
}

/// Meters re-evaluated per transaction.
const REFRESH_BATCH: i64 = 1000;

pub fn refresh(conn: &mut Connection, partner: PartnerId) -> Result<u64> {
    let mut after: Option<uuid::Uuid> = None;
    let mut total = 0;
    loop {
        let now = now_millis();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let catalog = partner_catalog(&tx, partner.as_uuid(), from_millis(now))?;
        type Row = (uuid::Uuid, String, String, String, String);
        let rows: Vec<Row> = tx
            .prepare_cached(
                "SELECT id, data, enrollments, participation, global_enrollment_status
                 FROM meters
                 WHERE partner_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
            )?
            .query_map(params![partner.as_uuid(), after, REFRESH_BATCH], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = rows.last().map(|r| r.0) else {
            return Ok(total);
        };
        for (id, data, enrollments, participation, status) in &rows {
            let before = evaluate::parse_enrollments(enrollments)?;
            let columns = evaluate::evaluate(
                &catalog,
                &evaluate::parse_data(data)?,
                &before,
                &evaluate::parse_abstentions(participation)?,
            );
            // Only meters whose enrollments changed are written (and show up in a sync),
            // compared as read: a form of storing them that changed is not a change.
            if columns.list != before || columns.global_status != *status {
                write_columns(&tx, partner, id, None, &columns, now)?;
                total += 1;
            }
        }
        tx.commit()?;
        after = Some(last);
    }
}
