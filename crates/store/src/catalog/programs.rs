//! The program catalog and the programs each partner may use.

use gridroll_domain::PartnerId;
use gridroll_domain::program::Program;
use time::OffsetDateTime;

use super::PartnerProgramsError;
use crate::db::Db;
use crate::evaluate::Catalog;
use crate::model::CatalogEntry;
use crate::{Result, StoreError, values};

fn definition(program: &Program) -> String {
    serde_json::to_string(program).expect("programs serialize")
}

pub async fn seed(db: &mut dyn Db, programs: &[Program], now: i64) -> Result<usize> {
    let mut added = 0;
    for program in programs {
        added += db
            .execute(
                "INSERT INTO programs (identifier, definition, retired, created_at, updated_at)
                 VALUES ($1, $2, false, $3, $3) ON CONFLICT (identifier) DO NOTHING",
                values![&program.identifier, definition(program), now],
            )
            .await?;
    }
    Ok(added as usize)
}

pub async fn list(db: &mut dyn Db) -> Result<Vec<CatalogEntry>> {
    db.query(
        "SELECT definition, retired, updated_at FROM programs ORDER BY identifier",
        &[],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(CatalogEntry {
            program: serde_json::from_str(&row.get::<String>(0)?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            retired: row.get(1)?,
            updated_at: row.get(2)?,
        })
    })
    .collect()
}

pub async fn put(db: &mut dyn Db, program: &Program, now: i64) -> Result<()> {
    db.execute(
        "INSERT INTO programs (identifier, definition, retired, created_at, updated_at)
         VALUES ($1, $2, false, $3, $3)
         ON CONFLICT (identifier) DO UPDATE
             SET definition = excluded.definition, retired = false,
                 updated_at = excluded.updated_at",
        values![&program.identifier, definition(program), now],
    )
    .await?;
    Ok(())
}

pub async fn retire(db: &mut dyn Db, identifier: &str, now: i64) -> Result<bool> {
    let changed = db
        .execute(
            "UPDATE programs SET retired = true, updated_at = $2 WHERE identifier = $1",
            values![identifier, now],
        )
        .await?;
    Ok(changed == 1)
}

/// Limits the programs a partner may use, once the partner and every program are known
/// and at least one is named; `None` allows every program.
pub async fn set_partner_programs(
    db: &mut dyn Db,
    partner: PartnerId,
    programs: Option<&[String]>,
) -> Result<(), PartnerProgramsError> {
    if programs.is_some_and(<[String]>::is_empty) {
        return Err(PartnerProgramsError::NoProgram);
    }
    let known = db
        .query_opt("SELECT 1 FROM partners WHERE id = $1", values![partner])
        .await?;
    if known.is_none() {
        return Err(PartnerProgramsError::NoSuchPartner);
    }
    if let Some(wanted) = programs {
        let catalog: Vec<String> = list(db)
            .await?
            .into_iter()
            .map(|entry| entry.program.identifier)
            .collect();
        let unknown: Vec<String> = wanted
            .iter()
            .filter(|p| !catalog.contains(p))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(PartnerProgramsError::UnknownPrograms(unknown));
        }
    }
    db.execute(
        "DELETE FROM partner_programs WHERE partner_id = $1",
        values![partner],
    )
    .await?;
    for identifier in programs.unwrap_or_default() {
        db.execute(
            "INSERT INTO partner_programs (partner_id, identifier) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            values![partner, identifier],
        )
        .await?;
    }
    Ok(())
}

/// The programs a partner may use, with their delivery periods at `now`.
pub async fn partner_catalog(
    db: &mut dyn Db,
    partner: PartnerId,
    now: OffsetDateTime,
) -> Result<Catalog> {
    let rows = db
        .query(
            "SELECT definition FROM programs p
             WHERE NOT p.retired
               AND (NOT EXISTS (SELECT 1 FROM partner_programs pp WHERE pp.partner_id = $1)
                    OR EXISTS (SELECT 1 FROM partner_programs pp
                               WHERE pp.partner_id = $1 AND pp.identifier = p.identifier))
             ORDER BY p.identifier",
            values![partner],
        )
        .await?;
    let definitions = rows
        .iter()
        .map(|row| row.get::<String>(0))
        .collect::<Result<Vec<_>>>()?;
    Catalog::from_definitions(definitions, now)
}
