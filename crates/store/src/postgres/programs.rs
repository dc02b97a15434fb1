//! The program catalog and the changes to enrollments that do not come from uploads, on
//! PostgreSQL. The rules are those of the SQLite store (see `crate::evaluate`); meters are
//! locked (`FOR UPDATE`) while their enrollments change.

use deadpool_postgres::GenericClient;
use deadpool_postgres::Object;
use gridroll_domain::enrollment::{self, PreferenceChange};
use gridroll_domain::program::Program;
use gridroll_domain::timestamp::{from_millis, now_millis};
use gridroll_domain::{MeterId, PartnerId};
use uuid::Uuid;

use super::jobs::partner_catalog;
use crate::evaluate::{self, Columns};
use crate::model::CatalogEntry;
use crate::{Result, StoreError};

fn definition(program: &Program) -> String {
    serde_json::to_string(program).expect("programs serialize")
}

pub async fn seed(client: &mut Object, programs: &[Program]) -> Result<usize> {
    let now = now_millis();
    let tx = client.transaction().await?;
    let mut added = 0;
    for program in programs {
        added += tx
            .execute(
                "INSERT INTO programs (identifier, definition, retired, created_at, updated_at)
                 VALUES ($1, $2, false, $3, $3) ON CONFLICT (identifier) DO NOTHING",
                &[&program.identifier, &definition(program), &now],
            )
            .await?;
    }
    tx.commit().await?;
    Ok(added as usize)
}

pub async fn list(client: &Object) -> Result<Vec<CatalogEntry>> {
    client
        .query(
            "SELECT definition, retired, updated_at FROM programs ORDER BY identifier",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(CatalogEntry {
                program: serde_json::from_str(row.get(0))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                retired: row.get(1),
                updated_at: row.get(2),
            })
        })
        .collect()
}

pub async fn put(client: &Object, program: &Program) -> Result<()> {
    client
        .execute(
            "INSERT INTO programs (identifier, definition, retired, created_at, updated_at)
             VALUES ($1, $2, false, $3, $3)
             ON CONFLICT (identifier) DO UPDATE
                 SET definition = excluded.definition, retired = false,
                     updated_at = excluded.updated_at",
            &[&program.identifier, &definition(program), &now_millis()],
        )
        .await?;
    Ok(())
}

pub async fn retire(client: &Object, identifier: &str) -> Result<bool> {
    let changed = client
        .execute(
            "UPDATE programs SET retired = true, updated_at = $2 WHERE identifier = $1",
            &[&identifier, &now_millis()],
        )
        .await?;
    Ok(changed == 1)
}

pub async fn set_partner_programs(
    client: &mut Object,
    partner: PartnerId,
    programs: Option<&[String]>,
) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute(
        "DELETE FROM partner_programs WHERE partner_id = $1",
        &[partner.as_uuid()],
    )
    .await?;
    for identifier in programs.unwrap_or_default() {
        tx.execute(
            "INSERT INTO partner_programs (partner_id, identifier) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[partner.as_uuid(), identifier],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn write_columns(
    client: &impl GenericClient,
    partner: PartnerId,
    id: &Uuid,
    participation: Option<&str>,
    c: &Columns,
    now: i64,
) -> Result<()> {
    client
        .execute(
            "UPDATE meters SET enrollments = $2, global_enrollment_status = $3,
                 partner_action_required = $4, partner_action_types = $5, pending_programs = $6,
                 participation = coalesce($7, participation), updated_at = $8
             WHERE partner_id = $9 AND id = $1",
            &[
                id,
                &c.enrollments,
                &c.global_status,
                &c.action_required,
                &c.action_types,
                &c.pending_programs,
                &participation,
                &now,
                partner.as_uuid(),
            ],
        )
        .await?;
    Ok(())
}

pub async fn set_participation(
    client: &mut Object,
    partner: PartnerId,
    meters: &[MeterId],
    change: &PreferenceChange,
) -> Result<Vec<MeterId>> {
    let now = now_millis();
    let tx = client.transaction().await?;
    let catalog = partner_catalog(&tx, partner.as_uuid(), from_millis(now)).await?;
    let ids: Vec<Uuid> = meters.iter().map(|m| *m.as_uuid()).collect();
    let rows = tx
        .query(
            "SELECT id, enrollments, participation FROM meters
             WHERE id = ANY($1) AND partner_id = $2 ORDER BY id FOR UPDATE",
            &[&ids, partner.as_uuid()],
        )
        .await?;
    let found: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let missing: Vec<MeterId> = meters
        .iter()
        .filter(|m| !found.contains(m.as_uuid()))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Ok(missing);
    }
    for row in &rows {
        let enrollments = evaluate::parse_enrollments(row.get(1))?;
        let mut abstentions = evaluate::parse_abstentions(row.get(2))?;
        enrollment::apply_preference(&mut abstentions, change.clone())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let columns = evaluate::summarize(&catalog, &enrollments, &abstentions);
        let participation = serde_json::to_string(&abstentions).expect("abstentions serialize");
        write_columns(
            &tx,
            partner,
            &row.get(0),
            Some(&participation),
            &columns,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Vec::new())
}

pub async fn activate(
    client: &mut Object,
    partner: PartnerId,
    program: &str,
    meter: Option<MeterId>,
) -> Result<u64> {
    let now = now_millis();
    let tx = client.transaction().await?;
    let catalog = partner_catalog(&tx, partner.as_uuid(), from_millis(now)).await?;
    let pattern = format!("%,{program},%");
    let rows = tx
        .query(
            "SELECT id, enrollments, participation FROM meters
             WHERE partner_id = $1 AND (',' || pending_programs || ',') LIKE $2
               AND ($3::uuid IS NULL OR id = $3)
             ORDER BY id FOR UPDATE",
            &[partner.as_uuid(), &pattern, &meter.map(|m| *m.as_uuid())],
        )
        .await?;
    let mut changed = 0;
    for row in &rows {
        let mut enrollments = evaluate::parse_enrollments(row.get(1))?;
        if enrollment::activate(&mut enrollments, program, from_millis(now)) {
            let abstentions = evaluate::parse_abstentions(row.get(2))?;
            let columns = evaluate::summarize(&catalog, &enrollments, &abstentions);
            write_columns(&tx, partner, &row.get(0), None, &columns, now).await?;
            changed += 1;
        }
    }
    tx.commit().await?;
    Ok(changed)
}

/// Meters re-evaluated per transaction.
const REFRESH_BATCH: i64 = 1000;

pub async fn refresh(client: &mut Object, partner: PartnerId) -> Result<u64> {
    let mut after: Option<Uuid> = None;
    let mut total = 0;
    loop {
        let now = now_millis();
        let tx = client.transaction().await?;
        let catalog = partner_catalog(&tx, partner.as_uuid(), from_millis(now)).await?;
        let rows = tx
            .query(
                "SELECT id, data, enrollments, participation, global_enrollment_status
                 FROM meters
                 WHERE partner_id = $1 AND ($2::uuid IS NULL OR id > $2)
                 ORDER BY id LIMIT $3 FOR UPDATE",
                &[partner.as_uuid(), &after, &REFRESH_BATCH],
            )
            .await?;
        let Some(last) = rows.last().map(|r| r.get::<_, Uuid>(0)) else {
            return Ok(total);
        };
        for row in &rows {
            let before = evaluate::parse_enrollments(row.get(2))?;
            let status: &str = row.get(4);
            let columns = evaluate::evaluate(
                &catalog,
                &evaluate::parse_data(row.get(1))?,
                &before,
                &evaluate::parse_abstentions(row.get(3))?,
            );
            // Only meters whose enrollments changed are written (and show up in a sync),
            // compared as read: a form of storing them that changed is not a change.
            if columns.list != before || columns.global_status != status {
                write_columns(&tx, partner, &row.get(0), None, &columns, now).await?;
                total += 1;
            }
        }
        tx.commit().await?;
        after = Some(last);
    }
}
