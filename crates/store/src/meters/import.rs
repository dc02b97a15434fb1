//! The operator's import of meters that reach the platform by another channel than the
//! partner's uploads (utility-authorized meters). They may share a `partner_reference`:
//! each takes its own id as its reference slot, where partner-created meters take none,
//! so the unique index lets them be.

use gridroll_domain::compact::CompactAsset;
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::timestamp::from_millis;
use gridroll_domain::{MeterData, MeterId, PartnerId};

use gridroll_domain::event::{self, MeterRef};
use gridroll_domain::webhook::EventType;

use crate::catalog::partner_catalog;
use crate::db::Db;
use crate::events::{EventTypes, Outbox};
use crate::{Result, evaluate, values};

pub async fn import_meters(
    db: &mut dyn Db,
    partner: PartnerId,
    created_by: CreatedBy,
    meters: &[MeterData],
    feed: EventTypes,
    now: i64,
) -> Result<Vec<MeterId>> {
    let catalog = partner_catalog(db, partner, from_millis(now)).await?;
    let mut outbox = Outbox::open(db, partner, feed).await?;
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
        db.execute(
            "INSERT INTO meters (id, partner_id, partner_reference, reference_slot, created_by,
                 transmission_region, customer_classification, meter_type, load_types,
                 customer_group, data, enrollments, global_enrollment_status,
                 partner_action_required, partner_action_types, pending_programs,
                 created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $17)",
            values![
                id,
                partner,
                &row.partner_reference,
                slot,
                created_by.as_ref(),
                row.transmission_region.as_ref(),
                row.customer_classification.as_ref(),
                row.meter_type.as_ref(),
                row.load_types,
                row.customer_group,
                row.data,
                &c.enrollments,
                &c.global_status,
                c.action_required,
                &c.action_types,
                &c.pending_programs,
                now
            ],
        )
        .await?;
        outbox.add(EventType::MeterCreated, || {
            event::meter_created(MeterRef {
                id,
                partner_reference: &row.partner_reference,
                transmission_region: row.transmission_region.as_ref(),
                meter_type: row.meter_type.as_ref(),
            })
        });
        ids.push(id);
    }
    outbox.record(db, now).await?;
    Ok(ids)
}
