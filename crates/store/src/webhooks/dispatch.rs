//! The dispatcher's statements: claiming subscriptions with something to send, reading
//! what is due, and recording attempts. A subscription is claimed with a lease (and,
//! on PostgreSQL, passing over rows another process is claiming), so two dispatchers
//! never send the same attempt; recording checks the lease is still held.

use gridroll_domain::webhook::EventType;
use gridroll_domain::{EventId, PartnerId, WebhookId};
use uuid::Uuid;

use super::queries::{self, secrets_of};
use super::{AttemptResult, Claimed, DispatchRules, Due, DueBatch, Redelivery};
use crate::db::{Db, Value};
use crate::events::EventTypes;
use crate::events::runs;
use crate::{Result, StoreError, values};

/// The most events after a subscription's position one read goes through, wanted or not.
const SCAN: usize = 1000;

pub async fn claim(
    db: &mut dyn Db,
    worker: &str,
    rules: DispatchRules,
    limit: usize,
    now: i64,
) -> Result<Vec<Claimed>> {
    let sql = format!(
        "UPDATE webhooks SET lease_owner = $1, lease_expires_at = $2
         WHERE id IN (
             SELECT w.id FROM webhooks w
             WHERE w.disabled_at IS NULL
               AND (w.lease_expires_at IS NULL OR w.lease_expires_at < $3)
               AND (w.position < (SELECT last_event_seq FROM partners p WHERE p.id = w.partner_id)
                    OR EXISTS (SELECT 1 FROM webhook_deliveries d
                               WHERE d.webhook_id = w.id AND d.status = 'PENDING'
                                 AND d.next_attempt_at <= $3))
             ORDER BY w.id LIMIT $4{})
         RETURNING partner_id, secret, previous_secret, previous_secret_until, {}",
        db.dialect().skip_locked(),
        "id, receiver_url, event_types, headers, failing_since, disabled_at, created_at, \
         updated_at"
    );
    let rows = db
        .query(&sql, values![worker, now + rules.lease, now, limit])
        .await?;
    rows.iter()
        .map(|row| {
            let shifted = crate::db::Row(row.0[4..].to_vec());
            Ok(Claimed {
                partner: row.get(0)?,
                secrets: secrets_of(row, 1, now)?,
                webhook: queries::webhook(&shifted)?,
            })
        })
        .collect()
}

pub async fn due(
    db: &mut dyn Db,
    partner: PartnerId,
    webhook: WebhookId,
    limit: usize,
    now: i64,
) -> Result<DueBatch> {
    let row = db
        .query_opt(
            "SELECT position, event_types FROM webhooks WHERE partner_id = $1 AND id = $2",
            values![partner, webhook],
        )
        .await?
        .ok_or(StoreError::LeaseLost)?;
    let (position, wanted): (u64, String) = (row.get(0)?, row.get(1)?);
    let wanted = EventTypes::parse_stored(&wanted);
    let mut due = retries(db, partner, webhook, limit, now).await?;
    let mut reached = position;
    // The events after the position, in windows that start at what the round still needs
    // and double while few are wanted: a subscription to the common types reads one
    // window of `limit` events, one to a rare type at most `SCAN` events in a few
    // statements. A partner's events are numbered without a gap, so a window is the runs
    // that overlap its numbers.
    let sql = format!(
        "SELECT {} FROM events WHERE partner_id = $1 AND {} ORDER BY seq",
        runs::RUN_COLUMNS,
        runs::overlapping("$2", "$3")
    );
    let (mut scanned, mut window) = (0, limit.saturating_sub(due.len()));
    while due.len() < limit && scanned < SCAN {
        let upto = reached + window as u64;
        let mut read = 0;
        let after = reached;
        'rows: for row in db.query(&sql, values![partner, after, upto]).await? {
            for event in runs::events(&row, |seq| seq > after && seq <= upto)? {
                reached = event.seq;
                scanned += 1;
                read += 1;
                let is_wanted = event
                    .event_type
                    .parse::<EventType>()
                    .is_ok_and(|t| wanted.contains(t));
                if is_wanted {
                    due.push(Due { event, attempt: 1 });
                    if due.len() == limit {
                        break 'rows;
                    }
                }
            }
        }
        if read < window {
            break;
        }
        window = (window * 2).min(SCAN - scanned);
    }
    Ok(DueBatch {
        due,
        position: reached,
    })
}

/// The attempts of earlier failures (and redeliveries) due now, soonest first. Their
/// events are read a run at a time: many deliveries of one run read it once.
async fn retries(
    db: &mut dyn Db,
    partner: PartnerId,
    webhook: WebhookId,
    limit: usize,
    now: i64,
) -> Result<Vec<Due>> {
    let deliveries: Vec<(u64, u32)> = db
        .query(
            "SELECT event_seq, attempts FROM webhook_deliveries
             WHERE webhook_id = $1 AND status = 'PENDING' AND next_attempt_at <= $2
             ORDER BY next_attempt_at, event_seq LIMIT $3",
            values![webhook, now, limit],
        )
        .await?
        .iter()
        .map(|row| Ok((row.get(0)?, row.get(1)?)))
        .collect::<Result<_>>()?;
    let mut wanted: Vec<u64> = deliveries.iter().map(|(seq, _)| *seq).collect();
    wanted.sort_unstable();
    let mut events = std::collections::HashMap::new();
    let mut i = 0;
    while let Some(&seq) = wanted.get(i) {
        let Some(run) = runs::holding(db, partner, seq).await? else {
            i += 1;
            continue;
        };
        let last: u64 = run.get(0)?;
        let upto = wanted.partition_point(|s| *s <= last);
        let those = &wanted[i..upto];
        for event in runs::events(&run, |seq| those.binary_search(&seq).is_ok())? {
            events.insert(event.seq, event);
        }
        i = upto;
    }
    Ok(deliveries
        .into_iter()
        .filter_map(|(seq, attempts)| {
            let event = events.get(&seq)?.clone();
            Some(Due {
                event,
                attempt: attempts + 1,
            })
        })
        .collect())
}

/// Attempts (and deliveries) written per statement.
const BATCH: usize = 200;

/// Records a round of attempts in a few statements whatever its size: the lease renewed
/// with the position reached (and the failing streak ended by a success), the attempts
/// for the log, then where each delivery stands. Answers whether the subscription is
/// still enabled.
pub async fn record(
    db: &mut dyn Db,
    webhook: WebhookId,
    worker: &str,
    position: u64,
    results: &[AttemptResult],
    rules: DispatchRules,
    now: i64,
) -> Result<bool> {
    let any_succeeded = results.iter().any(|r| r.succeeded);
    let held = db
        .execute(
            "UPDATE webhooks SET lease_expires_at = $3,
                 position = CASE WHEN position < $4 THEN $4 ELSE position END,
                 failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END
             WHERE id = $1 AND lease_owner = $2",
            values![webhook, worker, now + rules.lease, position, any_succeeded],
        )
        .await?;
    if held == 0 {
        return Err(StoreError::LeaseLost);
    }
    for batch in results.chunks(BATCH) {
        write_attempts(db, webhook, batch).await?;
    }
    let settled = to_settle(results);
    for batch in settled.chunks(BATCH) {
        settle(db, webhook, batch, now).await?;
    }
    if any_succeeded || results.is_empty() {
        return Ok(true);
    }
    note_failing(db, webhook, rules, now).await
}

async fn write_attempts(
    db: &mut dyn Db,
    webhook: WebhookId,
    batch: &[AttemptResult],
) -> Result<()> {
    let mut params: Vec<Value> = vec![webhook.into()];
    let mut rows = Vec::with_capacity(batch.len());
    for r in batch {
        let n = params.len();
        let slots: Vec<String> = (1..=11).map(|i| format!("${}", n + i)).collect();
        rows.push(format!("($1, {})", slots.join(", ")));
        params.extend([
            Value::Uuid(Uuid::now_v7()),
            r.event_seq.into(),
            r.event_id.into(),
            r.event_type.as_str().into(),
            r.attempt.into(),
            r.attempted_at.into(),
            r.status_code.map(u32::from).into(),
            r.latency_ms.into(),
            r.response.as_str().into(),
            r.error.clone().into(),
            r.succeeded.into(),
        ]);
    }
    let sql = format!(
        "INSERT INTO webhook_attempts (webhook_id, id, event_seq, event_id, event_type, attempt,
             attempted_at, status_code, latency_ms, response, error, succeeded)
         VALUES {}",
        rows.join(", ")
    );
    db.execute_built(&sql, &params).await?;
    Ok(())
}

/// The attempts whose delivery needs a row: all but first attempts that succeeded (the
/// attempt in the log says it all; an event is first attempted only once, so no row
/// exists for it), one per event (a statement may not touch a row twice).
fn to_settle(results: &[AttemptResult]) -> Vec<&AttemptResult> {
    let mut settled: Vec<&AttemptResult> = results
        .iter()
        .filter(|r| !(r.succeeded && r.attempt == 1))
        .collect();
    settled.sort_by_key(|r| (r.event_seq, std::cmp::Reverse(r.attempt)));
    settled.dedup_by_key(|r| r.event_seq);
    settled
}

/// Where each event's delivery stands after its attempt: succeeded, to be tried again
/// (`PENDING` with its time) or failed for good.
async fn settle(
    db: &mut dyn Db,
    webhook: WebhookId,
    batch: &[&AttemptResult],
    now: i64,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut params: Vec<Value> = vec![webhook.into(), now.into()];
    let mut rows = Vec::with_capacity(batch.len());
    for r in batch {
        let n = params.len();
        rows.push(format!(
            "($1, ${}, ${}, ${}, ${}, ${}, $2)",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5
        ));
        let status = match (r.succeeded, r.retry_at) {
            (true, _) => "SUCCEEDED",
            (false, Some(_)) => "PENDING",
            (false, None) => "FAILED",
        };
        params.extend([
            r.event_seq.into(),
            r.event_id.into(),
            status.into(),
            r.attempt.into(),
            r.retry_at.into(),
        ]);
    }
    let sql = format!(
        "INSERT INTO webhook_deliveries (webhook_id, event_seq, event_id, status, attempts,
             next_attempt_at, updated_at)
         VALUES {}
         ON CONFLICT (webhook_id, event_seq) DO UPDATE SET status = excluded.status,
             attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at,
             updated_at = excluded.updated_at",
        rows.join(", ")
    );
    db.execute_built(&sql, &params).await?;
    Ok(())
}

/// Keeps when the subscription started failing, and disables it once it has failed for
/// `rules.disable_after`. Answers whether it is still enabled.
async fn note_failing(
    db: &mut dyn Db,
    webhook: WebhookId,
    rules: DispatchRules,
    now: i64,
) -> Result<bool> {
    let row = db
        .query_one(
            "UPDATE webhooks SET failing_since = coalesce(failing_since, $2) WHERE id = $1
             RETURNING failing_since",
            values![webhook, now],
        )
        .await?;
    let since: i64 = row.get(0)?;
    if now - since < rules.disable_after {
        return Ok(true);
    }
    db.execute(
        "UPDATE webhooks SET disabled_at = $2, lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1",
        values![webhook, now],
    )
    .await?;
    Ok(false)
}

pub async fn release(db: &mut dyn Db, webhook: WebhookId, worker: &str) -> Result<()> {
    db.execute(
        "UPDATE webhooks SET lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND lease_owner = $2",
        values![webhook, worker],
    )
    .await?;
    Ok(())
}

pub async fn redeliver(
    db: &mut dyn Db,
    partner: PartnerId,
    webhook: WebhookId,
    event: EventId,
    now: i64,
) -> Result<Redelivery> {
    if !queries::exists(db, partner, webhook).await? {
        return Ok(Redelivery::NoSuchWebhook);
    }
    // The subscription had the event if it attempted it; it must still be kept.
    let found = db
        .query_opt(
            "SELECT event_seq, attempt FROM webhook_attempts
             WHERE webhook_id = $1 AND event_id = $2
             ORDER BY attempt DESC LIMIT 1",
            values![webhook, event],
        )
        .await?;
    let Some(row) = found else {
        return Ok(Redelivery::NoSuchEvent);
    };
    let (seq, attempts): (u64, u32) = (row.get(0)?, row.get(1)?);
    if runs::holding(db, partner, seq).await?.is_none() {
        return Ok(Redelivery::NoSuchEvent);
    }
    db.execute(
        "INSERT INTO webhook_deliveries (webhook_id, event_seq, event_id, status, attempts,
             next_attempt_at, updated_at)
         VALUES ($1, $2, $3, 'PENDING', $4, $5, $5)
         ON CONFLICT (webhook_id, event_seq) DO UPDATE SET status = 'PENDING',
             next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
        values![webhook, seq, event, attempts, now],
    )
    .await?;
    Ok(Redelivery::Queued)
}

pub async fn recover(
    db: &mut dyn Db,
    partner: PartnerId,
    webhook: WebhookId,
    since: i64,
    limit: usize,
    now: i64,
) -> Result<Option<u64>> {
    if !queries::exists(db, partner, webhook).await? {
        return Ok(None);
    }
    let queued = db
        .execute(
            "UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_at = $3,
                 updated_at = $3
             WHERE webhook_id = $1 AND event_seq IN (
                 SELECT event_seq FROM webhook_deliveries
                 WHERE webhook_id = $1 AND status = 'FAILED' AND updated_at >= $2
                 ORDER BY event_seq LIMIT $4)",
            values![webhook, since, now, limit],
        )
        .await?;
    Ok(Some(queued))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(event_seq: u64, attempt: u32, succeeded: bool) -> AttemptResult {
        AttemptResult {
            event_seq,
            event_id: EventId::new(),
            event_type: "meter.created".to_owned(),
            attempt,
            attempted_at: 0,
            status_code: Some(if succeeded { 200 } else { 500 }),
            latency_ms: 1,
            response: String::new(),
            error: None,
            succeeded,
            retry_at: (!succeeded).then_some(60_000),
        }
    }

    #[test]
    fn first_attempts_that_succeeded_need_no_delivery_row() {
        let results = [result(1, 1, true), result(2, 1, false), result(3, 4, true)];
        let settled: Vec<(u64, u32)> = to_settle(&results)
            .iter()
            .map(|r| (r.event_seq, r.attempt))
            .collect();
        assert_eq!(settled, [(2, 1), (3, 4)]);
    }

    #[test]
    fn an_event_attempted_twice_in_a_round_keeps_its_latest_attempt() {
        let results = [result(5, 2, false), result(5, 3, true), result(4, 2, false)];
        let settled: Vec<(u64, u32, bool)> = to_settle(&results)
            .iter()
            .map(|r| (r.event_seq, r.attempt, r.succeeded))
            .collect();
        assert_eq!(settled, [(4, 2, false), (5, 3, true)]);
    }
}
