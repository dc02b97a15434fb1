//! The statements of a partner's subscriptions: saving, reading, enabling, rotating the
//! secret, and the delivery log.

use gridroll_domain::webhook::Subscription;
use gridroll_domain::{PartnerId, WebhookId};
use uuid::Uuid;

use super::{LoggedAttempt, Webhook};
use crate::db::{Db, Row};
use crate::events::EventTypes;
use crate::{Result, StoreError, values};

/// A subscription's settings as stored.
pub struct Settings {
    receiver_url: String,
    /// Wire names, comma-separated.
    event_types: String,
    /// JSON: `[[name, value], ...]`.
    headers: String,
}

impl Settings {
    pub fn of(s: &Subscription) -> Self {
        let headers: Vec<[&str; 2]> = s.headers().iter().map(|h| [h.name(), h.value()]).collect();
        Self {
            receiver_url: s.receiver_url().as_str().to_owned(),
            event_types: s
                .event_types()
                .iter()
                .map(|t| t.as_ref())
                .collect::<Vec<_>>()
                .join(","),
            headers: serde_json::to_string(&headers).unwrap_or_else(|_| "[]".to_owned()),
        }
    }
}

const COLUMNS: &str = "id, receiver_url, event_types, headers, failing_since, disabled_at, \
     created_at, updated_at";

pub fn webhook(row: &Row) -> Result<Webhook> {
    let headers: Vec<(String, String)> = serde_json::from_str(&row.get::<String>(3)?)
        .map_err(|e| StoreError::Corrupt(format!("webhook headers: {e}")))?;
    Ok(Webhook {
        id: row.get(0)?,
        receiver_url: row.get(1)?,
        event_types: EventTypes::parse_stored(&row.get::<String>(2)?)
            .iter()
            .collect(),
        headers,
        failing_since: row.get(4)?,
        disabled_at: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

/// The partner's last event: where a new (or enabled again) subscription starts.
async fn last_event(db: &mut dyn Db, partner: PartnerId) -> Result<u64> {
    db.query_opt(
        "SELECT last_event_seq FROM partners WHERE id = $1",
        values![partner],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("partner {partner} is gone")))?
    .get(0)
}

pub async fn create(
    db: &mut dyn Db,
    partner: PartnerId,
    settings: &Settings,
    secret: &str,
    now: i64,
) -> Result<WebhookId> {
    let id = WebhookId::new();
    let position = last_event(db, partner).await?;
    db.execute(
        "INSERT INTO webhooks (id, partner_id, receiver_url, event_types, headers, secret,
             position, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        values![
            id,
            partner,
            &settings.receiver_url,
            &settings.event_types,
            &settings.headers,
            secret,
            position,
            now
        ],
    )
    .await?;
    Ok(id)
}

pub async fn list(db: &mut dyn Db, partner: PartnerId) -> Result<Vec<Webhook>> {
    let sql =
        format!("SELECT {COLUMNS} FROM webhooks WHERE partner_id = $1 ORDER BY created_at, id");
    db.query(&sql, values![partner])
        .await?
        .iter()
        .map(webhook)
        .collect()
}

pub async fn get(db: &mut dyn Db, partner: PartnerId, id: WebhookId) -> Result<Option<Webhook>> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE partner_id = $1 AND id = $2");
    db.query_opt(&sql, values![partner, id])
        .await?
        .as_ref()
        .map(webhook)
        .transpose()
}

pub async fn replace(
    db: &mut dyn Db,
    partner: PartnerId,
    id: WebhookId,
    settings: &Settings,
    now: i64,
) -> Result<bool> {
    let changed = db
        .execute(
            "UPDATE webhooks SET receiver_url = $3, event_types = $4, headers = $5,
                 updated_at = $6
             WHERE partner_id = $1 AND id = $2",
            values![
                partner,
                id,
                &settings.receiver_url,
                &settings.event_types,
                &settings.headers,
                now
            ],
        )
        .await?;
    // Replacing the settings is the partner fixing what made deliveries fail.
    Ok(changed > 0 && enable(db, partner, id, now).await?)
}

/// Enables a subscription. One that was disabled takes up the events from now on: those
/// it missed meanwhile are in the feed, and `recover` sends its failed ones again.
pub async fn enable(db: &mut dyn Db, partner: PartnerId, id: WebhookId, now: i64) -> Result<bool> {
    let position = last_event(db, partner).await?;
    let changed = db
        .execute(
            "UPDATE webhooks SET position = CASE WHEN disabled_at IS NULL THEN position
                     ELSE $3 END,
                 disabled_at = NULL, failing_since = NULL, updated_at = $4
             WHERE partner_id = $1 AND id = $2",
            values![partner, id, position, now],
        )
        .await?;
    Ok(changed > 0)
}

pub async fn delete(db: &mut dyn Db, partner: PartnerId, id: WebhookId) -> Result<bool> {
    let deleted = db
        .execute(
            "DELETE FROM webhooks WHERE partner_id = $1 AND id = $2",
            values![partner, id],
        )
        .await?;
    if deleted == 0 {
        return Ok(false);
    }
    for table in ["webhook_deliveries", "webhook_attempts"] {
        db.execute(
            &format!("DELETE FROM {table} WHERE webhook_id = $1"),
            values![id],
        )
        .await?;
    }
    Ok(true)
}

pub async fn rotate_secret(
    db: &mut dyn Db,
    partner: PartnerId,
    id: WebhookId,
    secret: &str,
    overlap_until: i64,
    now: i64,
) -> Result<bool> {
    let changed = db
        .execute(
            "UPDATE webhooks SET previous_secret = secret, previous_secret_until = $4,
                 secret = $3, updated_at = $5
             WHERE partner_id = $1 AND id = $2",
            values![partner, id, secret, overlap_until, now],
        )
        .await?;
    Ok(changed > 0)
}

/// The secrets that sign a delivery at `now`, from the stored columns `secret`,
/// `previous_secret` and `previous_secret_until` at `at`.
pub fn secrets_of(row: &Row, at: usize, now: i64) -> Result<Vec<String>> {
    let mut secrets = vec![row.get::<String>(at)?];
    let previous: Option<String> = row.get(at + 1)?;
    let until: Option<i64> = row.get(at + 2)?;
    if let (Some(previous), Some(until)) = (previous, until)
        && now < until
    {
        secrets.push(previous);
    }
    Ok(secrets)
}

pub async fn signing_secrets(
    db: &mut dyn Db,
    partner: PartnerId,
    id: WebhookId,
    now: i64,
) -> Result<Option<Vec<String>>> {
    db.query_opt(
        "SELECT secret, previous_secret, previous_secret_until FROM webhooks
         WHERE partner_id = $1 AND id = $2",
        values![partner, id],
    )
    .await?
    .map(|row| secrets_of(&row, 0, now))
    .transpose()
}

/// Whether the partner has the subscription.
pub async fn exists(db: &mut dyn Db, partner: PartnerId, id: WebhookId) -> Result<bool> {
    Ok(db
        .query_opt(
            "SELECT 1 FROM webhooks WHERE partner_id = $1 AND id = $2",
            values![partner, id],
        )
        .await?
        .is_some())
}

pub async fn delivery_log(
    db: &mut dyn Db,
    partner: PartnerId,
    id: WebhookId,
    before: Option<Uuid>,
    limit: usize,
) -> Result<Option<Vec<LoggedAttempt>>> {
    if !exists(db, partner, id).await? {
        return Ok(None);
    }
    let rows = db
        .query(
            "SELECT a.id, a.event_id, a.event_type, a.attempt, a.attempted_at, a.status_code,
                 a.latency_ms, a.response, a.error, a.succeeded, d.status, d.next_attempt_at
             FROM webhook_attempts a
             LEFT JOIN webhook_deliveries d
                 ON d.webhook_id = a.webhook_id AND d.event_seq = a.event_seq
             WHERE a.webhook_id = $1 AND (a.id < $2 OR $2 IS NULL)
             ORDER BY a.id DESC LIMIT $3",
            values![id, before, limit],
        )
        .await?;
    rows.iter()
        .map(logged_attempt)
        .collect::<Result<_>>()
        .map(Some)
}

fn logged_attempt(row: &Row) -> Result<LoggedAttempt> {
    let status: Option<String> = row.get(10)?;
    Ok(LoggedAttempt {
        id: row.get(0)?,
        event_id: row.get(1)?,
        event_type: row.get(2)?,
        attempt: row.get(3)?,
        attempted_at: row.get(4)?,
        status_code: row
            .get::<Option<u32>>(5)?
            .map(|c| u16::try_from(c).unwrap_or(0)),
        latency_ms: row.get(6)?,
        response: row.get(7)?,
        error: row.get(8)?,
        succeeded: row.get(9)?,
        delivery: status
            .map(|s| Ok::<_, StoreError>((s, row.get(11)?)))
            .transpose()?,
    })
}
