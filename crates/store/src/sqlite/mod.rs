//! The embedded store: one SQLite file in WAL mode. One writer connection serialises
//! every write (SQLite allows one writer at a time anyway); a bounded pool of read-only
//! connections serves reads alongside it. All database work runs on blocking threads,
//! except reads by key, which cost less than the hand-over.

mod checkpoint;
mod db;
mod jobs;
mod migrate;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use gridroll_domain::{JobId, MeterId, PartnerId};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

pub use self::db::SqliteDb;
use crate::ahead::{Ahead, PreparedChunk};
use crate::db::{Db, Dialect, run_now};
use crate::engine::{Engine, Work};
use crate::events::EventTypes;
use crate::jobs::chunk;
use crate::jobs::chunk::Task;
use crate::model::{ChunkReport, StoredMeter};
use crate::{Result, StoreError, StoreOptions, meters, values, work};

/// The SQLite backend.
pub struct SqliteStore {
    writer: Arc<Mutex<SqliteDb>>,
    checkpointer: Arc<checkpoint::Checkpointer>,
    readers: Arc<Readers>,
    /// Chunks being read and evaluated ahead of the writer.
    ahead: Ahead,
    event_feed: EventTypes,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: impl AsRef<Path>, options: &StoreOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let writer = {
            let path = path.clone();
            let max_size = options.max_size;
            blocking(move || open_writer(&path, max_size)).await?
        };
        Ok(Self {
            writer: Arc::new(Mutex::new(SqliteDb::new(writer))),
            checkpointer: Arc::new(checkpoint::Checkpointer::start(&path)?),
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(options.max_connections.max(1))),
                max: options.max_connections.max(1),
            }),
            ahead: Ahead::default(),
            event_feed: options.event_feed,
        })
    }

    /// Runs `f` with the writer, on a blocking thread; what it committed is checkpointed
    /// off the writer's thread, and a full disk says which file.
    async fn with_writer<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteDb) -> Result<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        let checkpointer = self.checkpointer.clone();
        let readers = self.readers.clone();
        blocking(move || {
            let mut db = lock(&writer);
            let result = f(&mut db);
            checkpointer.committed(db.conn());
            result.map_err(|e| e.at(&readers.path))
        })
        .await
    }
}

async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StoreError::Task)?
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the connection usable: every write is a
    // transaction, rolled back when it failed.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_writer(path: &Path, max_size: Option<u64>) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Config(format!(
                "cannot create the directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let conn = Connection::open(path)?;
    // A new database gets 16 KiB pages: a meter row is about a kilobyte, and larger
    // pages make fewer B-tree pages to split, log and copy back per row (jobs process
    // about 12% faster; random reads copy more per page). It has to come before the log
    // is switched to WAL; on an existing database it changes nothing (`VACUUM` would
    // rewrite it, see the README).
    conn.execute_batch(
        "PRAGMA page_size = 16384;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -16000;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA temp_store = MEMORY;",
    )?;
    if let Some(bytes) = max_size {
        let page: u64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        conn.pragma_update(None, "max_page_count", (bytes / page.max(1)).max(1))?;
    }
    Ok(conn)
}

/// Read-only connections, opened on demand up to the semaphore's bound and reused.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// The permits there are: the most readers at work at once.
    max: usize,
}

impl Readers {
    /// Runs `f` on a reader connection of the pool.
    fn with<T>(&self, f: impl FnOnce(&mut SqliteDb) -> Result<T>) -> Result<T> {
        let mut db = SqliteDb::new(self.take()?);
        let result = f(&mut db);
        self.give(db.into_inner());
        result
    }

    fn take(&self) -> Result<Connection> {
        if let Some(conn) = lock(&self.idle).pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -4000;")?;
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        lock(&self.idle).push(conn);
    }
}

#[async_trait]
impl Engine for SqliteStore {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn event_feed(&self) -> EventTypes {
        self.event_feed
    }

    async fn write<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        self.with_writer(move |db| db.in_transaction(|db| run_now(work(db))))
            .await
    }

    async fn write_durable<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        // This one commit waits for the disk. Other commits may be lost to a power cut,
        // and are then simply redone (WAL keeps them atomic).
        self.with_writer(move |db| {
            db.conn().pragma_update(None, "synchronous", "FULL")?;
            let written = db.in_transaction(|db| run_now(work(db)));
            db.conn().pragma_update(None, "synchronous", "NORMAL")?;
            written
        })
        .await
    }

    async fn read<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let permit = self
            .readers
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Task)?;
        let readers = self.readers.clone();
        blocking(move || {
            let result = readers.with(|db| run_now(work(db)));
            drop(permit);
            result
        })
        .await
    }

    async fn read_point<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Task)?;
        self.readers.with(|db| run_now(work(db)))
    }

    async fn refresh_statistics(&self, _table: &str) {
        // SQLite plans without statistics unless ANALYZE is run, which Gridroll does not:
        // its statements name the indexes where a plan could go wrong.
    }

    async fn migrate(&self) -> Result<()> {
        self.with_writer(|db| migrate::run(db.conn_mut())).await
    }

    fn connections(&self) -> crate::Connections {
        let busy = self
            .readers
            .max
            .saturating_sub(self.readers.permits.available_permits());
        let idle = lock(&self.readers.idle).len();
        crate::Connections {
            open: idle + busy,
            idle,
            max: self.readers.max,
        }
    }

    async fn schema_is_current(&self) -> Result<bool> {
        let readers = self.readers.clone();
        blocking(move || {
            let db = SqliteDb::new(readers.take()?);
            let current = migrate::is_current(db.conn());
            readers.give(db.into_inner());
            current
        })
        .await
    }

    async fn recover(&self, _now: i64) -> Result<()> {
        // One process serves the file (it holds the lock beside it): whatever was being
        // received is an orphan, and no job lease or idempotency key is held by a live
        // request.
        let dropped = self
            .write(work!(db => async move {
                let dropped = crate::jobs::queries::remove_every_receiving(db).await?;
                db.execute(
                    "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL
                     WHERE lease_owner IS NOT NULL",
                    values![],
                )
                .await?;
                db.execute(
                    "DELETE FROM idempotency_keys WHERE status IS NULL",
                    values![],
                )
                .await?;
                Ok(dropped)
            }))
            .await?;
        if dropped > 0 {
            tracing::info!(dropped, "removed uploads that never completed");
        }
        Ok(())
    }

    fn ahead(&self) -> &Ahead {
        &self.ahead
    }

    // Starts reading and evaluating a job's chunk from `from_seq` on, on a reader
    // connection, unless every reader is busy (the writer then does it itself).
    fn prepare_ahead(&self, job: JobId, from_seq: u64, limit: usize, now: i64) {
        let Ok(permit) = self.readers.permits.clone().try_acquire_owned() else {
            return;
        };
        let readers = self.readers.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let mut db = SqliteDb::new(readers.take()?);
            let input = run_now(async {
                let db: &mut dyn Db = &mut db;
                let partner = chunk::job_partner(db, job).await?;
                chunk::read_chunk(db, job, partner, from_seq, limit, now).await
            });
            readers.give(db.into_inner());
            drop(permit);
            input?.evaluate()
        });
        self.ahead.start(job, handle);
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
        let (worker, feed) = (worker.to_owned(), self.event_feed);
        self.with_writer(move |db| {
            if durable {
                db.conn().pragma_update(None, "synchronous", "FULL")?;
            }
            let task = Task {
                job,
                worker: &worker,
                limit,
                lease,
                feed,
                now,
            };
            let written = db.in_transaction(|db| jobs::process_chunk(db, task, prepared));
            if durable {
                db.conn().pragma_update(None, "synchronous", "NORMAL")?;
            }
            written
        })
        .await
    }

    async fn get_stored_meter(
        &self,
        partner: PartnerId,
        meter: MeterId,
    ) -> Result<Option<StoredMeter>> {
        self.read_point(work!(db => meters::stored_meter(db, partner, meter)))
            .await
    }
}
