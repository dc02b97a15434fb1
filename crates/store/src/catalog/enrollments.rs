//! The changes to a meter's enrollments that come from the operator: activation, and
//! evaluating meters again after the catalog changed (a partner's participation changes
//! are the meters' own, in `meters::changes`). Each loads the meters it changes (locked on PostgreSQL until the
//! transaction ends), decides with the enrollment rules, and writes the meters' columns.

use gridroll_domain::enrollment::{self, Abstention, Enrollment};
use gridroll_domain::event::MeterRef;
use gridroll_domain::timestamp::from_millis;
use gridroll_domain::{MeterId, PartnerId};

use super::programs::partner_catalog;
use crate::db::{Db, Row};
use crate::evaluate::{self, Catalog, Columns};
use crate::events::{EventTypes, Outbox};
use crate::{Result, values};

/// What every statement below reads of a meter before changing it, from column 0.
const METER: &str = "id, partner_reference, transmission_region, meter_type, enrollments, \
     participation";

/// A meter as read before a change of its enrollments.
struct Before {
    id: MeterId,
    reference: String,
    region: String,
    meter_type: String,
    enrollments: Vec<Enrollment>,
    abstentions: Vec<Abstention>,
}

impl Before {
    fn read(row: &Row) -> Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            reference: row.get(1)?,
            region: row.get(2)?,
            meter_type: row.get(3)?,
            enrollments: evaluate::parse_enrollments(&row.get::<String>(4)?)?,
            abstentions: evaluate::parse_abstentions(&row.get::<String>(5)?)?,
        })
    }

    fn meter(&self) -> MeterRef<'_> {
        MeterRef {
            id: self.id,
            partner_reference: &self.reference,
            transmission_region: &self.region,
            meter_type: &self.meter_type,
        }
    }

    /// Notes the enrollment events of the meter's change to `after`.
    fn changed(&self, outbox: &mut Outbox, catalog: &Catalog, after: (&Columns, &[Abstention])) {
        outbox.enrollments_changed(
            catalog,
            self.meter(),
            (&self.enrollments, &self.abstentions),
            (&after.0.list, after.1),
        );
    }
}

/// Writes a meter's enrollment columns.
async fn write_columns(
    db: &mut dyn Db,
    partner: PartnerId,
    id: MeterId,
    c: &Columns,
    now: i64,
) -> Result<()> {
    db.execute(
        "UPDATE meters SET enrollments = $2, global_enrollment_status = $3,
             partner_action_required = $4, partner_action_types = $5, pending_programs = $6,
             updated_at = $7
         WHERE partner_id = $8 AND id = $1",
        values![
            id,
            &c.enrollments,
            &c.global_status,
            c.action_required,
            &c.action_types,
            &c.pending_programs,
            now,
            partner
        ],
    )
    .await?;
    Ok(())
}

/// Makes PENDING enrollments in a program ACTIVE: one meter's, or every meter's of the
/// partner. Answers how many changed.
pub async fn activate(
    db: &mut dyn Db,
    partner: PartnerId,
    program: &str,
    meter: Option<MeterId>,
    feed: EventTypes,
    now: i64,
) -> Result<u64> {
    let catalog = partner_catalog(db, partner, from_millis(now)).await?;
    let sql = format!(
        "SELECT {METER} FROM meters
         WHERE partner_id = $1 AND (',' || pending_programs || ',') LIKE $2
           AND (id = $3 OR $3 IS NULL)
         ORDER BY id{}",
        db.dialect().for_update()
    );
    let rows = db
        .query(&sql, values![partner, format!("%,{program},%"), meter])
        .await?;
    let mut changed = 0;
    let mut outbox = Outbox::open(db, partner, feed).await?;
    for row in &rows {
        let before = Before::read(row)?;
        let mut enrollments = before.enrollments.clone();
        if enrollment::activate(&mut enrollments, program, from_millis(now)) {
            let columns = evaluate::summarize(&catalog, &enrollments, &before.abstentions);
            write_columns(db, partner, before.id, &columns, now).await?;
            before.changed(&mut outbox, &catalog, (&columns, &before.abstentions));
            changed += 1;
        }
    }
    outbox.record(db, now).await?;
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
    feed: EventTypes,
    now: i64,
) -> Result<(u64, Option<MeterId>)> {
    let catalog = partner_catalog(db, partner, from_millis(now)).await?;
    let sql = format!(
        "SELECT {METER}, data, global_enrollment_status, is_archived FROM meters
         WHERE partner_id = $1 AND (id > $2 OR $2 IS NULL) ORDER BY id LIMIT $3{}",
        db.dialect().for_update()
    );
    let rows = db
        .query(&sql, values![partner, after, REFRESH_BATCH])
        .await?;
    let mut changed = 0;
    let mut outbox = Outbox::open(db, partner, feed).await?;
    for row in &rows {
        let before = Before::read(row)?;
        let status: String = row.get(7)?;
        let data = evaluate::parse_data(&row.get::<String>(6)?)?;
        let columns = if row.get(8)? {
            let list = enrollment::withdrawn(&catalog.programs, &data, &before.enrollments);
            evaluate::summarize(&catalog, &list, &before.abstentions)
        } else {
            evaluate::evaluate(&catalog, &data, &before.enrollments, &before.abstentions)
        };
        // Only meters whose enrollments changed are written (and show up in a sync),
        // compared as read: a form of storing them that changed is not a change.
        if columns.list != before.enrollments || columns.global_status != status {
            write_columns(db, partner, before.id, &columns, now).await?;
            before.changed(&mut outbox, &catalog, (&columns, &before.abstentions));
            changed += 1;
        }
    }
    outbox.record(db, now).await?;
    let last = rows.last().map(|row| row.get(0)).transpose()?;
    Ok((changed, last))
}
