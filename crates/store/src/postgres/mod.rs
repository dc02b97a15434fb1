//! The PostgreSQL backend, for several Gridroll processes sharing one database. Jobs are
//! claimed with `FOR UPDATE SKIP LOCKED` under a lease; uploads are written with binary
//! `COPY`; a chunk is processed with a handful of set-based statements, and concurrent
//! creates of one reference are settled by the unique index.

mod db;
mod jobs;
mod meter_reads;
mod migrate;

pub use jobs::REFERENCE_LOOKUP;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use gridroll_domain::{JobId, MeterId, PartnerId};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use self::db::PgDb;
use crate::ahead::{Ahead, Found, PreparedChunk};
use crate::db::Dialect;
use crate::engine::{Engine, Work};
use crate::events::EventTypes;
use crate::jobs::chunk::Task;
use crate::jobs::{JobStore, LARGE_UPLOAD, chunk};
use crate::model::{ChunkReport, StoredMeter};
use crate::{Result, StoreError, StoreOptions};

/// The PostgreSQL backend.
pub struct PostgresStore {
    pool: Pool,
    /// Reads of one meter, coalesced under load.
    meter_reads: meter_reads::MeterReads,
    /// Chunks being read and evaluated ahead of the one being written.
    ahead: Ahead,
    event_feed: EventTypes,
    /// Meters this process's chunks wrote since it last refreshed their statistics.
    written_since_statistics: AtomicU64,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&SqlState::DISK_FULL) {
            return Self::StorageFull(PgError(e).to_string());
        }
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            return Self::Conflict;
        }
        Self::Database(Box::new(PgError(e)))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Self::Database(Box::new(other)),
        }
    }
}

/// A PostgreSQL error that says what the server said: its code, message, detail and
/// hint (the driver's own text is only "db error"), or the connection's failure.
#[derive(Debug)]
pub struct PgError(pub tokio_postgres::Error);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => {
                write!(
                    f,
                    "{} {}: {}",
                    db.severity(),
                    db.code().code(),
                    db.message()
                )?;
                if let Some(detail) = db.detail() {
                    write!(f, " ({detail})")?;
                }
                if let Some(hint) = db.hint() {
                    write!(f, "; hint: {hint}")?;
                }
                Ok(())
            }
            None => {
                write!(f, "{}", self.0)?;
                let mut source = std::error::Error::source(&self.0);
                while let Some(e) = source {
                    write!(f, ": {e}")?;
                    source = e.source();
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PgError {}

impl PgError {
    /// The SQLSTATE of a store error that came from PostgreSQL.
    pub fn code(error: &StoreError) -> Option<&SqlState> {
        let StoreError::Database(inner) = error else {
            return None;
        };
        inner.downcast_ref::<PgError>()?.0.code()
    }
}

impl PostgresStore {
    /// Connects to the database a `postgres://` URL names.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        config.options(format!(
            "-c statement_timeout={}",
            options.statement_timeout.as_millis()
        ));
        if config.get_application_name().is_none() {
            config.application_name("gridroll");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(2))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let store = Self {
            meter_reads: meter_reads::MeterReads::start(pool.clone()),
            pool,
            ahead: Ahead::default(),
            event_feed: options.event_feed,
            written_since_statistics: AtomicU64::new(0),
        };
        // Fail at start, with the reason, when the database cannot be reached.
        drop(store.client().await?);
        Ok(store)
    }

    async fn client(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }
}

#[async_trait]
impl Engine for PostgresStore {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn event_feed(&self) -> EventTypes {
        self.event_feed
    }

    async fn write<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let done = work(&mut PgDb::new(&tx)).await;
        match done {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(e) => {
                // Dropping the transaction rolls it back too; saying so returns the
                // connection to the pool at once.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn read<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let client = self.client().await?;
        work(&mut PgDb::new(&client)).await
    }

    async fn refresh_statistics(&self, table: &str) {
        let analyzed = match self.client().await {
            Ok(client) => client
                .batch_execute(&format!("ANALYZE {table}"))
                .await
                .map_err(StoreError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = analyzed {
            tracing::warn!(table, error = %e, "could not refresh a table's statistics");
        }
    }

    async fn migrate(&self) -> Result<()> {
        migrate::run(&mut self.client().await?).await
    }

    fn connections(&self) -> crate::Connections {
        let status = self.pool.status();
        crate::Connections {
            open: status.size,
            idle: status.available,
            max: status.max_size,
        }
    }

    async fn schema_is_current(&self) -> Result<bool> {
        migrate::is_current(&self.client().await?).await
    }

    async fn recover(&self, now: i64) -> Result<()> {
        // Other processes may be alive: only uploads whose receiving lease has lapsed are
        // orphans, and job leases expire by themselves.
        self.remove_abandoned_uploads(now).await.map(drop)
    }

    fn ahead(&self) -> &Ahead {
        &self.ahead
    }

    // Starts reading a job's chunk from `from_seq` on, on a connection of its own, then
    // looks its references up there while a blocking thread evaluates it.
    fn prepare_ahead(&self, job: JobId, from_seq: u64, limit: usize, now: i64) {
        let pool = self.pool.clone();
        let ledger = self.ahead.ledger().clone();
        let task = tokio::spawn(async move {
            let client = pool.get().await?;
            let (partner, input) = {
                let db = &mut PgDb::new(&client);
                let partner = chunk::job_partner(db, job).await?;
                let input = chunk::read_chunk(db, job, partner, from_seq, limit, now).await?;
                (partner, input)
            };
            let references = input.references();
            let evaluated = tokio::task::spawn_blocking(move || input.evaluate());
            let as_of = ledger.count();
            let found = jobs::existing_meters(&**client, partner, &references).await?;
            let mut prepared = evaluated.await.map_err(|_| StoreError::Task)??;
            let taken = found.into_keys().collect();
            prepared.found = Some(Found { taken, as_of });
            Ok(prepared)
        });
        self.ahead.start(job, task);
    }

    async fn write_chunk(
        &self,
        job: JobId,
        worker: &str,
        limit: usize,
        lease: Duration,
        durable: bool,
        prepared: Option<PreparedChunk>,
        now: i64,
    ) -> Result<(ChunkReport, u64)> {
        let mut client = self.client().await?;
        let task = Task {
            job,
            worker,
            limit,
            lease,
            feed: self.event_feed,
            now,
        };
        let ledger = self.ahead.ledger();
        let chunk = jobs::process_chunk(&mut client, task, durable, prepared, ledger).await?;
        // The chunk's connection goes back to the pool before a refresh takes one.
        drop(client);
        let written = self
            .written_since_statistics
            .fetch_add(chunk.report.processed as u64, Ordering::Relaxed)
            + chunk.report.processed as u64;
        // Fresh statistics keep the rest of a large import on the reference index, and
        // searches on their indexes right after it. A smaller job refreshes them after
        // its first chunk once this process has written as many meters as a large job
        // since they were last taken: a partner whose meters come a few thousand at a
        // time is otherwise weighed by statistics taken before it had any.
        if chunk.began_a_large_job()
            || chunk.ended_a_large_job()
            || (chunk.began_a_job() && written >= LARGE_UPLOAD)
        {
            self.written_since_statistics.store(0, Ordering::Relaxed);
            self.refresh_statistics("meters").await;
        }
        Ok((chunk.report, chunk.next_seq))
    }

    async fn get_stored_meter(
        &self,
        partner: PartnerId,
        meter: MeterId,
    ) -> Result<Option<StoredMeter>> {
        self.meter_reads.get(partner, meter).await
    }
}
