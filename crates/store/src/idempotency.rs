//! Idempotency keys: the first request a partner makes with a key holds it while it
//! runs, then leaves its answer for repeats to replay. Keys are the partner's own (two
//! partners may use the same), kept for a time to live, and removed in bounded batches
//! once past it.

use async_trait::async_trait;
use gridroll_domain::PartnerId;
use uuid::Uuid;

use crate::db::Db;
use crate::engine::Engine;
use crate::{Result, values, work};

/// An answer kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    /// SHA-256 of the request it answered (method, path, query and body).
    pub fingerprint: [u8; 32],
    pub status: u16,
    /// The headers worth replaying, as name and value.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a request with a key finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's until it is answered (or its hold lapses).
    Held,
    /// Another request with the key is running.
    InFlight,
    /// A request with the key was answered; repeats get the answer.
    Answered(KeptAnswer),
}

/// How a request holds its key.
#[derive(Debug, Clone, Copy)]
pub struct Hold {
    /// The request holding it (a new id for each).
    pub owner: Uuid,
    /// Until when, renewed while it runs: a request whose process died lets go then.
    pub until: i64,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Holds `key` for a new request, unless a request holds it or answered it. A key
    /// first used before `expired_before` is treated as unused.
    async fn claim_key(
        &self,
        partner: PartnerId,
        key: &str,
        hold: Hold,
        now: i64,
        expired_before: i64,
    ) -> Result<Claim>;
    /// Holds the key longer. False when the request no longer holds it.
    async fn renew_key(&self, partner: PartnerId, key: &str, hold: Hold) -> Result<bool>;
    /// Keeps the answer of the request holding the key. False when it no longer holds it.
    async fn answer_key(
        &self,
        partner: PartnerId,
        key: &str,
        owner: Uuid,
        answer: &KeptAnswer,
    ) -> Result<bool>;
    /// Lets go of a key whose request keeps no answer (a server fault, an unread body):
    /// the next request with it runs afresh.
    async fn release_key(&self, partner: PartnerId, key: &str, owner: Uuid) -> Result<()>;
    /// Removes up to `limit` keys first used before `before`; answers how many.
    async fn remove_expired_keys(&self, before: i64, limit: usize) -> Result<u64>;
}

#[async_trait]
impl<E: Engine> IdempotencyStore for E {
    async fn claim_key(
        &self,
        partner: PartnerId,
        key: &str,
        hold: Hold,
        now: i64,
        expired_before: i64,
    ) -> Result<Claim> {
        let key = key.to_owned();
        self.write(work!(db => async move {
            claim(db, partner, &key, hold, now, expired_before).await
        }))
        .await
    }

    async fn renew_key(&self, partner: PartnerId, key: &str, hold: Hold) -> Result<bool> {
        let key = key.to_owned();
        self.write(work!(db => async move {
            let renewed = db
                .execute(
                    "UPDATE idempotency_keys SET locked_until = $4
                     WHERE partner_id = $1 AND idempotency_key = $2 AND owner = $3 AND status IS NULL",
                    values![partner, key, hold.owner, hold.until],
                )
                .await?;
            Ok(renewed == 1)
        }))
        .await
    }

    async fn answer_key(
        &self,
        partner: PartnerId,
        key: &str,
        owner: Uuid,
        answer: &KeptAnswer,
    ) -> Result<bool> {
        let (key, answer) = (key.to_owned(), answer.clone());
        self.write(work!(db => async move {
            let headers = serde_json::to_string(&answer.headers)
                .map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
            let kept = db
                .execute(
                    "UPDATE idempotency_keys SET owner = NULL, locked_until = NULL,
                         fingerprint = $4, status = $5, headers = $6, body = $7
                     WHERE partner_id = $1 AND idempotency_key = $2 AND owner = $3 AND status IS NULL",
                    values![
                        partner,
                        key,
                        owner,
                        &answer.fingerprint[..],
                        u32::from(answer.status),
                        headers,
                        &answer.body[..]
                    ],
                )
                .await?;
            Ok(kept == 1)
        }))
        .await
    }

    async fn release_key(&self, partner: PartnerId, key: &str, owner: Uuid) -> Result<()> {
        let key = key.to_owned();
        self.write(work!(db => async move {
            db.execute(
                "DELETE FROM idempotency_keys
                 WHERE partner_id = $1 AND idempotency_key = $2 AND owner = $3 AND status IS NULL",
                values![partner, key, owner],
            )
            .await?;
            Ok(())
        }))
        .await
    }

    async fn remove_expired_keys(&self, before: i64, limit: usize) -> Result<u64> {
        self.write(work!(db => async move {
            db.execute(
                "DELETE FROM idempotency_keys WHERE (partner_id, idempotency_key) IN (
                     SELECT partner_id, idempotency_key FROM idempotency_keys
                     WHERE created_at < $1 AND (status IS NOT NULL OR locked_until < $1)
                     ORDER BY created_at LIMIT $2)",
                values![before, limit],
            )
            .await
        }))
        .await
    }
}

async fn claim(
    db: &mut dyn Db,
    partner: PartnerId,
    key: &str,
    hold: Hold,
    now: i64,
    expired_before: i64,
) -> Result<Claim> {
    let sql = format!(
        "SELECT locked_until, fingerprint, status, headers, body, created_at
         FROM idempotency_keys WHERE partner_id = $1 AND idempotency_key = $2{}",
        db.dialect().for_update()
    );
    // A row removed between the insert and the read (released, or swept) is tried again.
    let mut found = None;
    for _ in 0..2 {
        let inserted = db
            .execute(
                "INSERT INTO idempotency_keys
                     (partner_id, idempotency_key, owner, locked_until, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (partner_id, idempotency_key) DO NOTHING",
                values![partner, key, hold.owner, hold.until, now],
            )
            .await?;
        if inserted == 1 {
            return Ok(Claim::Held);
        }
        found = db.query_opt(&sql, values![partner, key]).await?;
        if found.is_some() {
            break;
        }
    }
    let row = found.ok_or(crate::StoreError::LeaseLost)?;
    let (locked_until, status, created_at): (Option<i64>, Option<u32>, i64) =
        (row.get(0)?, row.get(2)?, row.get(5)?);
    let expired = created_at < expired_before;
    let lapsed = status.is_none() && locked_until.is_none_or(|until| until < now);
    if expired || lapsed {
        // A key past its time is new again; a hold whose process died is taken over, and
        // its day starts now.
        db.execute(
            "UPDATE idempotency_keys SET owner = $3, locked_until = $4, fingerprint = NULL,
                 status = NULL, headers = NULL, body = NULL, created_at = $5
             WHERE partner_id = $1 AND idempotency_key = $2",
            values![partner, key, hold.owner, hold.until, now],
        )
        .await?;
        return Ok(Claim::Held);
    }
    let Some(status) = status else {
        return Ok(Claim::InFlight);
    };
    let fingerprint: Vec<u8> = row.get(1)?;
    let headers: String = row.get(3)?;
    let corrupt = |what: &str| crate::StoreError::Corrupt(format!("idempotency key {key}: {what}"));
    Ok(Claim::Answered(KeptAnswer {
        fingerprint: fingerprint
            .try_into()
            .map_err(|_| corrupt("a fingerprint of the wrong length"))?,
        status: u16::try_from(status).map_err(|_| corrupt("a status out of range"))?,
        headers: serde_json::from_str(&headers).map_err(|_| corrupt("unreadable headers"))?,
        body: row.get(4)?,
    }))
}
