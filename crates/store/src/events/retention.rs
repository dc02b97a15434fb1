//! Removing events, deliveries and delivery attempts past their retention, in small
//! batches, each its own short transaction, so that writers never wait long behind it.
//! Each batch reads the oldest rows by key and stops at the first one still kept:
//! numbers (and attempt ids, which are time-ordered) rise with time, so no batch scans
//! what it keeps.

use gridroll_domain::{PartnerId, WebhookId};

use crate::db::Db;
use crate::{Result, values};

/// Rows one batch removes from one table, at most.
const BATCH: usize = 1000;

/// Removes up to a batch of expired rows per table: the events of one partner that has
/// some (with the deliveries of those events), then the attempts of one subscription.
/// Answers how many events and attempts went.
pub async fn remove_batch(db: &mut dyn Db, before: i64) -> Result<u64> {
    let mut removed = 0;
    for row in db
        .query("SELECT id FROM partners ORDER BY id", values![])
        .await?
    {
        let partner: PartnerId = row.get(0)?;
        removed += remove_events(db, partner, before).await?;
        if removed > 0 {
            break;
        }
    }
    for row in db
        .query("SELECT id FROM webhooks ORDER BY id", values![])
        .await?
    {
        let webhook: WebhookId = row.get(0)?;
        let attempts = remove_attempts(db, webhook, before).await?;
        removed += attempts;
        if attempts > 0 {
            break;
        }
    }
    Ok(removed)
}

async fn remove_events(db: &mut dyn Db, partner: PartnerId, before: i64) -> Result<u64> {
    // Rows of runs of events (see runs.rs): the count is of the events they held.
    let oldest = db
        .query(
            "SELECT seq, span, created_at FROM events WHERE partner_id = $1
             ORDER BY seq LIMIT $2",
            values![partner, BATCH],
        )
        .await?;
    let (mut last, mut removed) = (None, 0);
    for row in &oldest {
        if row.get::<i64>(2)? >= before {
            break;
        }
        last = Some(row.get::<u64>(0)?);
        removed += row.get::<u64>(1)?;
    }
    let Some(last) = last else { return Ok(0) };
    db.execute(
        "DELETE FROM events WHERE partner_id = $1 AND seq <= $2",
        values![partner, last],
    )
    .await?;
    // An event that is gone cannot be delivered again.
    db.execute(
        "DELETE FROM webhook_deliveries WHERE event_seq <= $2
           AND webhook_id IN (SELECT id FROM webhooks WHERE partner_id = $1)",
        values![partner, last],
    )
    .await?;
    Ok(removed)
}

async fn remove_attempts(db: &mut dyn Db, webhook: WebhookId, before: i64) -> Result<u64> {
    let oldest = db
        .query(
            "SELECT id, attempted_at FROM webhook_attempts WHERE webhook_id = $1
             ORDER BY id LIMIT $2",
            values![webhook, BATCH],
        )
        .await?;
    let mut last = None;
    for row in &oldest {
        if row.get::<i64>(1)? >= before {
            break;
        }
        last = Some(row.get::<uuid::Uuid>(0)?);
    }
    let Some(last) = last else { return Ok(0) };
    db.execute(
        "DELETE FROM webhook_attempts WHERE webhook_id = $1 AND id <= $2",
        values![webhook, last],
    )
    .await
}
