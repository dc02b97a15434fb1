//! What a backend provides, and all it provides: running work on its connections, and
//! the few operations that are genuinely its own (its migrations, writing a batch of
//! assets, claiming a job, processing a chunk, reading one meter). Every other rule and
//! statement of the store is written once, in the area modules, over [`Db`], and runs on
//! either backend through [`Engine::write`] and [`Engine::read`].

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use gridroll_domain::{JobId, MeterId, PartnerId};

use crate::Result;
use crate::ahead::{Ahead, PreparedChunk};
use crate::db::{Db, Dialect};
use crate::events::EventTypes;
use crate::model::{ChunkReport, StoredMeter};

/// Work on a connection: a closure that borrows the backend's [`Db`] for as long as the
/// future it makes runs.
pub type Work<T> = Box<dyn for<'a> FnOnce(&'a mut dyn Db) -> BoxFuture<'a, Result<T>> + Send>;

/// Makes [`Work`] from an async block that uses `$db`: `work!(db => async move { ... })`.
#[macro_export]
macro_rules! work {
    ($db:ident => $body:expr) => {
        Box::new(move |$db: &mut dyn $crate::db::Db| Box::pin($body))
    };
}

/// A backend of the store.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    fn dialect(&self) -> Dialect;

    /// The event types the feed keeps: every change records these, and those the
    /// partner's subscriptions want.
    fn event_feed(&self) -> EventTypes;

    /// Runs `work` in a write transaction, committed if the work succeeds and rolled back
    /// otherwise. On PostgreSQL, rows the work locks (`FOR UPDATE`, rendered by the
    /// dialect) stay locked until then; on SQLite the one writer serialises all writes.
    async fn write<T: Send + 'static>(&self, work: Work<T>) -> Result<T>;

    /// Like [`Engine::write`], but the commit waits for the disk: for what must survive a
    /// power cut once answered (a job before its `201`). PostgreSQL's every commit does.
    async fn write_durable<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        self.write(work).await
    }

    /// Runs `work` on a connection for reading.
    async fn read<T: Send + 'static>(&self, work: Work<T>) -> Result<T>;

    /// Runs a read by key (microseconds long) where handing it to another thread would
    /// cost more than the read itself.
    async fn read_point<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        self.read(work).await
    }

    /// Refreshes the planner's statistics of a table after a large change, where the
    /// backend keeps them; a failure is logged, never the caller's.
    async fn refresh_statistics(&self, table: &str);

    /// Brings the schema up to date.
    async fn migrate(&self) -> Result<()>;

    /// Whether the schema is the one this release writes.
    async fn schema_is_current(&self) -> Result<bool>;

    /// How the process uses its database connections now.
    fn connections(&self) -> crate::Connections;

    /// Undoes what stopped processes left half-done (see `Maintenance::recover`).
    async fn recover(&self, now: i64) -> Result<()>;

    /// The chunks this backend prepares ahead of the writer, one per job.
    fn ahead(&self) -> &Ahead;

    /// Starts reading and evaluating a job's chunk from `from_seq` on, beside the writer.
    fn prepare_ahead(&self, job: JobId, from_seq: u64, limit: usize, now: i64);

    /// Processes up to `limit` assets of a job in one transaction, with `prepared` when it
    /// is the chunk due (see `JobStore::process_chunk`); answers the report and where the
    /// job has got to.
    #[allow(clippy::too_many_arguments)]
    async fn write_chunk(
        &self,
        job: JobId,
        worker: &str,
        limit: usize,
        lease: Duration,
        durable: bool,
        prepared: Option<PreparedChunk>,
        now: i64,
    ) -> Result<(ChunkReport, u64)>;

    /// A meter with its data as stored, for the hot read of its details.
    async fn get_stored_meter(
        &self,
        partner: PartnerId,
        meter: MeterId,
    ) -> Result<Option<StoredMeter>>;
}
