//! Reads of one meter by its key, coalesced under load. Each read is a round trip to the
//! database, and on a busy server the database's work per statement, not per row, bounds
//! how many reads a second it serves. So a read that finds a statement slot free goes at
//! once, alone; reads that arrive while every slot is taken wait for the next free one
//! and go together, as one statement.

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::Pool;
use gridroll_domain::{MeterId, PartnerId};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_postgres::Row;

use super::db;
use crate::model::StoredMeter;
use crate::reads::STORED_METER_COLUMNS;
use crate::{Result, StoreError, rows};

/// Statements in flight at once. Measured on two cores with 64 clients reading at
/// random: one or two slots serve about 65k reads a second (batches of 12 to 27), four
/// 61k, eight 39k (batches of 3, each statement costing the database nearly what a
/// single read does). Batches grow with the load, so few slots do not cap it.
const SLOTS: usize = 2;

/// Most reads answered by one statement.
const MOST_PER_STATEMENT: usize = 64;

/// Reads waiting for a slot, past which a new read waits to be queued.
const MOST_QUEUED: usize = 4096;

type Key = (PartnerId, MeterId);

struct Wanted {
    key: Key,
    reply: oneshot::Sender<Result<Option<StoredMeter>>>,
}

/// The readers' side: a queue served by a task of its own, which stops when this is
/// dropped.
pub struct MeterReads {
    queue: mpsc::Sender<Wanted>,
}

impl MeterReads {
    /// Starts serving reads on `pool`, on a task of the current Tokio runtime.
    pub fn start(pool: Pool) -> Self {
        let (queue, waiting) = mpsc::channel(MOST_QUEUED);
        tokio::spawn(serve(pool, waiting, Arc::new(Semaphore::new(SLOTS))));
        Self { queue }
    }

    /// The partner's meter with this id, if it has one.
    pub async fn get(&self, partner: PartnerId, meter: MeterId) -> Result<Option<StoredMeter>> {
        let (reply, answer) = oneshot::channel();
        let wanted = Wanted {
            key: (partner, meter),
            reply,
        };
        self.queue
            .send(wanted)
            .await
            .map_err(|_| StoreError::Task)?;
        answer.await.map_err(|_| StoreError::Task)?
    }
}

async fn serve(pool: Pool, mut waiting: mpsc::Receiver<Wanted>, slots: Arc<Semaphore>) {
    while let Some(first) = waiting.recv().await {
        // While every slot is busy, reads gather in the queue for the next statement.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MOST_PER_STATEMENT
            && let Ok(next) = waiting.try_recv()
        {
            batch.push(next);
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            answer(&pool, batch).await;
            drop(slot);
        });
    }
}

async fn answer(pool: &Pool, batch: Vec<Wanted>) {
    match fetch(pool, &batch).await {
        Ok(found) => {
            for wanted in batch {
                // Each read decodes its own row: a row that cannot be read fails only the
                // reads of that meter.
                let meter = found
                    .get(&wanted.key)
                    .map(|row| db::row(row).and_then(|row| rows::stored_meter(&row)))
                    .transpose();
                // A reader that gave up (its request was cancelled) is no one's loss.
                let _ = wanted.reply.send(meter);
            }
        }
        Err(e) => {
            let reason = e.to_string();
            for wanted in batch {
                let _ = wanted
                    .reply
                    .send(Err(StoreError::Database(reason.clone().into())));
            }
        }
    }
}

/// The rows of a batch of reads, by their keys. The statement asks for every pairing of
/// the partners and ids in the batch; a row is answered only to a read by its own
/// partner, so a partner never receives another's meter.
async fn fetch(pool: &Pool, batch: &[Wanted]) -> Result<HashMap<Key, Row>> {
    let mut partners: Vec<uuid::Uuid> = batch.iter().map(|w| *w.key.0.as_uuid()).collect();
    let mut ids: Vec<uuid::Uuid> = batch.iter().map(|w| *w.key.1.as_uuid()).collect();
    partners.sort_unstable();
    partners.dedup();
    ids.sort_unstable();
    ids.dedup();
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(&format!(
            "SELECT {STORED_METER_COLUMNS}, partner_id FROM meters
             WHERE partner_id = ANY($1) AND id = ANY($2)"
        ))
        .await?;
    let rows = client.query(&statement, &[&partners, &ids]).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let key = (
                PartnerId::from_uuid(row.get(7)),
                MeterId::from_uuid(row.get(0)),
            );
            (key, row)
        })
        .collect())
}
