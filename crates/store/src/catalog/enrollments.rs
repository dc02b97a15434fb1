//! The changes to a meter's enrollments that do not come from an upload: participation
//! preferences, the operator's activation, and evaluating meters again after the catalog
//! changed. Each loads the meters it changes (locked on PostgreSQL until the
//! transaction ends), decides with the enrollment rules, and writes the meters' columns.

use gridroll_domain::enrollment::{self, PreferenceChange};
use gridroll_domain::timestamp::from_millis;
use gridroll_domain::{MeterId, PartnerId};

use super::programs::partner_catalog;
use crate::db::{Db, Value};
use crate::evaluate::{self, Columns};
use crate::query::Conditions;
use crate::{Result, StoreError, values};

/// Writes a meter's enrollment columns (and its participation, when it changed).
async fn write_columns(
    db: &mut dyn Db,
    partner: PartnerId,
    id: MeterId,
    participation: Option<String>,
    c: &Columns,
    now: i64,
) -> Result<()> {
    db.execute(
        "UPDATE meters SET enrollments = $2, global_enrollment_status = $3,
             partner_action_required = $4, partner_action_types = $5, pending_programs = $6,
             participation = coalesce($7, participation), updated_at = $8
         WHERE partner_id = $9 AND id = $1",
        values![
            id,
            &c.enrollments,
            &c.global_status,
            c.action_required,
            &c.action_types,
            &c.pending_programs,
            participation,
            now,
            partner
        ],
    )
    .await?;
    Ok(())
}

/// Applies a participation change to meters of a partner, all or none: the answer lists
/// the ids that are not the partner's (nothing changed then).
pub async fn set_participation(
    db: &mut dyn Db,
    partner: PartnerId,
    meters: &[MeterId],
    change: &PreferenceChange,
    now: i64,
) -> Result<Vec<MeterId>> {
    let catalog = partner_catalog(db, partner, from_millis(now)).await?;
    let mut c = Conditions::new(db.dialect());
    c.eq("partner_id", partner.into());
    c.one_of("id", meters.iter().map(|&m| Value::from(m)));
    let sql = format!(
        "SELECT id, enrollments, participation FROM meters WHERE {} ORDER BY id{}",
        c.sql(),
        db.dialect().for_update()
    );
    let rows = db.query_built(&sql, &c.params).await?;
    let found: Vec<MeterId> = rows.iter().map(|r| r.get(0)).collect::<Result<_>>()?;
    let missing: Vec<MeterId> = meters
        .iter()
        .filter(|m| !found.contains(m))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Ok(missing);
    }
    for row in &rows {
        let enrollments = evaluate::parse_enrollments(&row.get::<String>(1)?)?;
        let mut abstentions = evaluate::parse_abstentions(&row.get::<String>(2)?)?;
        enrollment::apply_preference(&mut abstentions, change.clone())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let columns = evaluate::summarize(&catalog, &enrollments, &abstentions);
        let participation = serde_json::to_string(&abstentions).expect("abstentions serialize");
        write_columns(db, partner, row.get(0)?, Some(participation), &columns, now).await?;
    }
    Ok(Vec::new())
}

/// Makes PENDING enrollments in a program ACTIVE: one meter's, or every meter's of the
/// partner. Answers how many changed.
pub async fn activate(
    db: &mut dyn Db,
    partner: PartnerId,
    program: &str,
    meter: Option<MeterId>,
    now: i64,
) -> Result<u64> {
    let catalog = partner_catalog(db, partner, from_millis(now)).await?;
    let sql = format!(
        "SELECT id, enrollments, participation FROM meters
         WHERE partner_id = $1 AND (',' || pending_programs || ',') LIKE $2
           AND (id = $3 OR $3 IS NULL)
         ORDER BY id{}",
        db.dialect().for_update()
    );
    let rows = db
        .query(&sql, values![partner, format!("%,{program},%"), meter])
        .await?;
    let mut changed = 0;
    for row in &rows {
        let mut enrollments = evaluate::parse_enrollments(&row.get::<String>(1)?)?;
        if enrollment::activate(&mut enrollments, program, from_millis(now)) {
            let abstentions = evaluate::parse_abstentions(&row.get::<String>(2)?)?;
            let columns = evaluate::summarize(&catalog, &enrollments, &abstentions);
            write_columns(db, partner, row.get(0)?, None, &columns, now).await?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Meters evaluated again per transaction.
pub const REFRESH_BATCH: u64 = 1000;

/// Evaluates up to [`REFRESH_BATCH`] of a partner's meters after `after` again, writing
/// those whose enrollments changed. Answers how many changed and the last meter read
/// (`None` when there was none left).
pub async fn refresh_batch(
    db: &mut dyn Db,
    partner: PartnerId,
    after: Option<MeterId>,
    now: i64,
) -> Result<(u64, Option<MeterId>)> {
    let catalog = partner_catalog(db, partner, from_millis(now)).await?;
    let sql = format!(
        "SELECT id, data, enrollments, participation, global_enrollment_status FROM meters
         WHERE partner_id = $1 AND (id > $2 OR $2 IS NULL) ORDER BY id LIMIT $3{}",
        db.dialect().for_update()
    );
    let rows = db
        .query(&sql, values![partner, after, REFRESH_BATCH])
        .await?;
    let mut changed = 0;
    for row in &rows {
        let before = evaluate::parse_enrollments(&row.get::<String>(2)?)?;
        let status: String = row.get(4)?;
        let columns = evaluate::evaluate(
            &catalog,
            &evaluate::parse_data(&row.get::<String>(1)?)?,
            &before,
            &evaluate::parse_abstentions(&row.get::<String>(3)?)?,
        );
        // Only meters whose enrollments changed are written (and show up in a sync),
        // compared as read: a form of storing them that changed is not a change.
        if columns.list != before || columns.global_status != status {
            write_columns(db, partner, row.get(0)?, None, &columns, now).await?;
            changed += 1;
        }
    }
    let last = rows.last().map(|row| row.get(0)).transpose()?;
    Ok((changed, last))
}
