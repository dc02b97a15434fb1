//! The embedded store: one SQLite file in WAL mode. One writer connection serialises
//! every write (SQLite allows one writer at a time anyway); a bounded pool of read-only
//! connections serves reads alongside it. All database work runs on blocking threads.

mod accounts;
mod checkpoint;
mod jobs;
mod migrate;
mod programs;
mod rows;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use gridroll_domain::enrollment::PreferenceChange;
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::job::JobStatus;
use gridroll_domain::program::Program;
use gridroll_domain::timestamp::now_millis;
use gridroll_domain::{ApiKeyId, JobId, MeterData, MeterId, PartnerId, UserId};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::Semaphore;

use crate::accounts::{
    AddUserError, ApiKey, Credentials, Invitation, KeyGrant, MeterOverview, NewInvitation,
    NewSession, PasswordSet, Permission, Role, Session, SignInAttempt, TokenHash, User,
};
use crate::ahead::Ahead;
use crate::model::{
    ApiKeyHash, AssetFilter, AssetState, CatalogEntry, ChunkReport, Facet, Job, JobFilter, JobPage,
    Meter, MeterFilter, NewAsset, NewJob, Partner, ProvisionalAsset, StoredMeter,
};
use crate::query::{Dialect, Param};
use crate::reads::{self, Query};
use crate::{ASSET_FACETS, JOB_FACETS, Result, Store, StoreError, StoreOptions, facet};

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    checkpointer: Arc<checkpoint::Checkpointer>,
    readers: Arc<Readers>,
    /// Chunks being read and evaluated ahead of the writer.
    ahead: Ahead,
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
            writer: Arc::new(Mutex::new(writer)),
            checkpointer: Arc::new(checkpoint::Checkpointer::start(&path)?),
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(options.max_connections.max(1))),
            }),
            ahead: Ahead::default(),
        })
    }

    /// Starts reading and evaluating a job's chunk from `from_seq` on, on a reader
    /// connection, unless every reader is busy (the writer then does it itself).
    fn prepare_ahead(&self, job: JobId, from_seq: u64, limit: usize) {
        let Ok(permit) = self.readers.permits.clone().try_acquire_owned() else {
            return;
        };
        let readers = self.readers.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let prepared = jobs::job_partner(&conn, job).and_then(|partner| {
                let partner = partner.ok_or(StoreError::LeaseLost)?;
                jobs::prepare(&conn, job, partner, from_seq, limit, now_millis())
            });
            readers.give(conn);
            drop(permit);
            prepared
        });
        self.ahead.start(job, handle);
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        let checkpointer = self.checkpointer.clone();
        let readers = self.readers.clone();
        blocking(move || {
            let mut conn = lock(&writer);
            let result = f(&mut conn);
            checkpointer.committed(&conn);
            result.map_err(|e| e.at(&readers.path))
        })
        .await
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .readers
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Task)?;
        let readers = self.readers.clone();
        blocking(move || {
            let conn = readers.take()?;
            let result = f(&conn);
            readers.give(conn);
            drop(permit);
            result
        })
        .await
    }
}

/// Runs a built query and maps every row.
fn all<T>(
    conn: &Connection,
    query: &Query,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let params: Vec<Value> = query
        .params
        .iter()
        .map(|p| match p {
            Param::Uuid(u) => Value::Blob(u.as_bytes().to_vec()),
            Param::Text(t) => Value::Text(t.clone()),
            Param::Int(i) => Value::Integer(*i),
        })
        .collect();
    let mut stmt = conn.prepare_cached(&query.sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), map)?
        .collect::<rusqlite::Result<Vec<T>>>()?;
    Ok(rows)
}

impl SqliteStore {
    /// Runs a point read (a lookup by key, microseconds long) on the calling thread:
    /// handing it to a blocking thread would cost more than the read itself.
    async fn read_point<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Task)?;
        let conn = self.readers.take()?;
        let result = f(&conn);
        self.readers.give(conn);
        result
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
    // transaction, rolled back when its guard was dropped.
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
}

impl Readers {
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
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        self.write(migrate::run).await
    }

    async fn schema_is_current(&self) -> Result<bool> {
        self.read(migrate::is_current).await
    }

    async fn recover(&self) -> Result<()> {
        self.write(|conn| {
            let tx = conn.transaction()?;
            let dropped = tx.execute("DELETE FROM jobs WHERE status = 'RECEIVING'", [])?;
            tx.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL
                 WHERE lease_owner IS NOT NULL",
                [],
            )?;
            tx.commit()?;
            if dropped > 0 {
                tracing::info!(dropped, "removed uploads that never completed");
            }
            Ok(())
        })
        .await
    }

    async fn create_partner(&self, name: &str) -> Result<Partner> {
        let partner = Partner {
            id: PartnerId::new(),
            name: name.to_owned(),
            created_at: now_millis(),
        };
        let row = partner.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO partners (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![row.id.as_uuid(), row.name, row.created_at],
            )?;
            Ok(())
        })
        .await?;
        Ok(partner)
    }

    async fn get_partner(&self, partner: PartnerId) -> Result<Option<Partner>> {
        self.read_point(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT id, name, created_at FROM partners WHERE id = ?1",
                    [partner.as_uuid()],
                    rows::partner,
                )
                .optional()?)
        })
        .await
    }

    async fn find_partner_by_name(&self, name: &str) -> Result<Option<Partner>> {
        let name = name.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT id, name, created_at FROM partners WHERE name = ?1
                     ORDER BY id LIMIT 1",
                    [name],
                    rows::partner,
                )
                .optional()?)
        })
        .await
    }

    async fn add_api_key(
        &self,
        partner: PartnerId,
        name: &str,
        permission: Permission,
        hash: &ApiKeyHash,
    ) -> Result<ApiKeyId> {
        let (name, hash) = (name.to_owned(), *hash);
        self.write(move |conn| {
            accounts::add_api_key(conn, partner, &name, permission, &hash, now_millis())
        })
        .await
    }

    async fn use_api_key(&self, hash: &ApiKeyHash, now: i64) -> Result<Option<KeyGrant>> {
        let hash = *hash;
        let found = self
            .read_point(move |conn| accounts::find_api_key(conn, &hash))
            .await?;
        let Some((grant, last_used)) = found else {
            return Ok(None);
        };
        if crate::accounts::stale_use(last_used, now) {
            self.write(move |conn| accounts::note_api_key_use(conn, &hash, now))
                .await?;
        }
        Ok(Some(grant))
    }

    async fn list_api_keys(&self, partner: PartnerId) -> Result<Vec<ApiKey>> {
        self.read(move |conn| accounts::list_api_keys(conn, partner))
            .await
    }

    async fn revoke_api_key(&self, partner: PartnerId, key: ApiKeyId, now: i64) -> Result<bool> {
        self.write(move |conn| accounts::revoke_api_key(conn, partner, key, now))
            .await
    }

    async fn add_user(
        &self,
        partner: PartnerId,
        email: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<User, AddUserError> {
        let (email, hash) = (email.to_owned(), password_hash.to_owned());
        self.write(move |conn| {
            Ok(accounts::add_user(
                conn,
                partner,
                &email,
                role,
                &hash,
                now_millis(),
            ))
        })
        .await?
    }

    async fn set_password(
        &self,
        email: &str,
        partner: Option<PartnerId>,
        password_hash: &str,
    ) -> Result<PasswordSet> {
        let (email, hash) = (email.to_owned(), password_hash.to_owned());
        self.write(move |conn| accounts::set_password(conn, &email, partner, &hash))
            .await
    }

    async fn list_users(&self, partner: PartnerId) -> Result<Vec<User>> {
        self.read(move |conn| accounts::list_users(conn, partner))
            .await
    }

    async fn user_credentials(&self, email: &str) -> Result<Vec<Credentials>> {
        let email = email.to_owned();
        self.read(move |conn| accounts::user_credentials(conn, &email))
            .await
    }

    async fn sign_in_attempt(
        &self,
        user: UserId,
        source: &TokenHash,
        now: i64,
        lock_after: u32,
        lock_until: i64,
    ) -> Result<SignInAttempt> {
        let source = *source;
        self.write(move |conn| {
            accounts::sign_in_attempt(conn, user, &source, now, lock_after, lock_until)
        })
        .await
    }

    async fn is_known_device(&self, user: UserId, device: &TokenHash) -> Result<bool> {
        let device = *device;
        self.read(move |conn| accounts::is_known_device(conn, user, &device))
            .await
    }

    async fn start_session(&self, session: &NewSession) -> Result<()> {
        let session = session.clone();
        self.write(move |conn| accounts::start_session(conn, &session))
            .await
    }

    async fn session(&self, token: &TokenHash, now: i64) -> Result<Option<Session>> {
        let token = *token;
        self.read_point(move |conn| accounts::session(conn, &token, now))
            .await
    }

    async fn end_session(&self, token: &TokenHash) -> Result<()> {
        let token = *token;
        self.write(move |conn| accounts::end_session(conn, &token))
            .await
    }

    async fn add_invitation(&self, invitation: &NewInvitation) -> Result<()> {
        let invitation = invitation.clone();
        self.write(move |conn| accounts::add_invitation(conn, &invitation))
            .await
    }

    async fn invitation(&self, token: &TokenHash, now: i64) -> Result<Option<Invitation>> {
        let token = *token;
        self.read(move |conn| accounts::invitation(conn, &token, now))
            .await
    }

    async fn accept_invitation(
        &self,
        token: &TokenHash,
        now: i64,
        password_hash: &str,
    ) -> Result<Option<User>, AddUserError> {
        let (token, hash) = (*token, password_hash.to_owned());
        self.write(move |conn| Ok(accounts::accept_invitation(conn, &token, now, &hash)))
            .await?
    }

    async fn begin_job(&self, partner: PartnerId, job: &NewJob) -> Result<()> {
        let job = job.clone();
        self.write(move |conn| jobs::begin(conn, partner, &job))
            .await
    }

    async fn append_assets(&self, job: JobId, assets: Vec<NewAsset>) -> Result<()> {
        self.write(move |conn| jobs::append(conn, job, &assets))
            .await
    }

    async fn commit_job(&self, job: JobId, assets_count: u64, regions: &[String]) -> Result<()> {
        let regions = regions.join(",");
        // A job is durable before its 201: this one commit waits for the disk. Other commits
        // may be lost to a power cut, and are then simply redone (WAL keeps them atomic).
        self.write(move |conn| {
            conn.pragma_update(None, "synchronous", "FULL")?;
            let committed = jobs::commit(conn, job, assets_count, &regions);
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            committed
        })
        .await
    }

    async fn discard_job(&self, job: JobId) -> Result<()> {
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM jobs WHERE id = ?1 AND status = 'RECEIVING'",
                [job.as_uuid()],
            )?;
            Ok(())
        })
        .await
    }

    async fn remove_abandoned_uploads(&self, now: i64) -> Result<u64> {
        let dropped = self
            .write(move |conn| {
                Ok(conn.execute(
                    "DELETE FROM jobs WHERE status = 'RECEIVING' AND lease_expires_at < ?1",
                    [now],
                )?)
            })
            .await?;
        if dropped > 0 {
            tracing::info!(dropped, "removed uploads that never completed");
        }
        Ok(dropped as u64)
    }

    async fn get_job(&self, partner: PartnerId, job: JobId) -> Result<Option<Job>> {
        self.read_point(move |conn| jobs::get(conn, partner, job))
            .await
    }

    async fn job_assets(
        &self,
        partner: PartnerId,
        job: JobId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AssetState>> {
        self.read(move |conn| jobs::assets(conn, partner, job, from_seq, limit))
            .await
    }

    async fn provisional_asset(
        &self,
        partner: PartnerId,
        job: JobId,
        seq: u64,
    ) -> Result<Option<ProvisionalAsset>> {
        self.read_point(move |conn| jobs::provisional_asset(conn, partner, job, seq))
            .await
    }

    async fn list_jobs(
        &self,
        partner: PartnerId,
        filter: &JobFilter,
        page: &JobPage,
    ) -> Result<Vec<Job>> {
        let query = reads::list_jobs(Dialect::Sqlite, partner, filter, page.before, page.limit);
        self.read(move |conn| all(conn, &query, rows::job)).await
    }

    async fn job_facets(&self, partner: PartnerId) -> Result<Vec<Facet>> {
        self.read(move |conn| {
            JOB_FACETS
                .iter()
                .map(|(key, column)| {
                    let query = reads::job_facet(Dialect::Sqlite, partner, column);
                    Ok(facet(key, all(conn, &query, |row| row.get(0))?))
                })
                .collect()
        })
        .await
    }

    async fn list_provisional_assets(
        &self,
        partner: PartnerId,
        filter: &AssetFilter,
        after: Option<(JobId, u64)>,
        limit: usize,
    ) -> Result<Vec<ProvisionalAsset>> {
        let query = reads::list_assets(Dialect::Sqlite, partner, filter, after, limit);
        self.read(move |conn| all(conn, &query, rows::provisional_asset))
            .await
    }

    async fn max_site_devices(&self, partner: PartnerId, filter: &AssetFilter) -> Result<usize> {
        let query = reads::max_site_devices(Dialect::Sqlite, partner, filter);
        let most: Vec<i64> = self
            .read(move |conn| all(conn, &query, |row| row.get(0)))
            .await?;
        Ok(most.first().copied().unwrap_or(0).max(0) as usize)
    }

    async fn asset_facets(&self, partner: PartnerId) -> Result<Vec<Facet>> {
        self.read(move |conn| {
            ASSET_FACETS
                .iter()
                .map(|(key, column)| {
                    let query = reads::asset_facet(Dialect::Sqlite, partner, column);
                    Ok(facet(key, all(conn, &query, |row| row.get(0))?))
                })
                .collect()
        })
        .await
    }

    async fn search_meters(
        &self,
        partner: PartnerId,
        filter: &MeterFilter,
        after: Option<MeterId>,
        limit: usize,
    ) -> Result<Vec<Meter>> {
        let query = reads::search_meters(Dialect::Sqlite, partner, filter, after, limit);
        self.read(move |conn| all(conn, &query, rows::meter)).await
    }

    async fn claim_job(&self, worker: &str, lease: Duration, now: i64) -> Result<Option<JobId>> {
        let worker = worker.to_owned();
        self.write(move |conn| jobs::claim(conn, &worker, lease, now))
            .await
    }

    async fn note_chunk_failure(
        &self,
        job: JobId,
        worker: &str,
        error: &str,
        now: i64,
    ) -> Result<u32> {
        let (worker, error) = (worker.to_owned(), error.to_owned());
        self.write(move |conn| jobs::note_failure(conn, job, &worker, &error, now))
            .await
    }

    async fn give_up_job(
        &self,
        job: JobId,
        worker: &str,
        description: &str,
        now: i64,
    ) -> Result<JobStatus> {
        self.ahead.forget(job);
        let (worker, description) = (worker.to_owned(), description.to_owned());
        self.write(move |conn| jobs::give_up(conn, job, &worker, &description, now))
            .await
    }

    async fn process_chunk(
        &self,
        job: JobId,
        worker: &str,
        limit: usize,
        lease: Duration,
        durable: bool,
    ) -> Result<ChunkReport> {
        let prepared = self.ahead.take(job).await;
        // The chunk after this one is read and evaluated while this one is written.
        if let Some(prepared) = &prepared {
            self.prepare_ahead(job, prepared.from_seq + limit as u64, limit);
        }
        let worker = worker.to_owned();
        let result = self
            .write(move |conn| {
                if durable {
                    conn.pragma_update(None, "synchronous", "FULL")?;
                }
                let report = jobs::process_chunk(conn, job, &worker, limit, lease, prepared);
                if durable {
                    conn.pragma_update(None, "synchronous", "NORMAL")?;
                }
                report
            })
            .await;
        self.ahead.after_chunk(job, result, |next_seq| {
            self.prepare_ahead(job, next_seq, limit)
        })
    }

    async fn release_job(&self, job: JobId, worker: &str) -> Result<()> {
        self.ahead.forget(job);
        let worker = worker.to_owned();
        self.write(move |conn| {
            conn.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = ?1 AND lease_owner = ?2",
                params![job.as_uuid(), worker],
            )?;
            Ok(())
        })
        .await
    }

    async fn seed_programs(&self, list: &[Program]) -> Result<usize> {
        let list = list.to_vec();
        self.write(move |conn| programs::seed(conn, &list)).await
    }

    async fn list_programs(&self) -> Result<Vec<CatalogEntry>> {
        self.read(programs::list).await
    }

    async fn put_program(&self, program: &Program) -> Result<()> {
        let program = program.clone();
        self.write(move |conn| programs::put(conn, &program)).await
    }

    async fn retire_program(&self, identifier: &str) -> Result<bool> {
        let identifier = identifier.to_owned();
        self.write(move |conn| programs::retire(conn, &identifier))
            .await
    }

    async fn set_partner_programs(
        &self,
        partner: PartnerId,
        list: Option<&[String]>,
    ) -> Result<()> {
        let list = list.map(<[String]>::to_vec);
        self.write(move |conn| programs::set_partner_programs(conn, partner, list.as_deref()))
            .await
    }

    async fn partner_programs(&self, partner: PartnerId) -> Result<Vec<Program>> {
        self.read(move |conn| {
            Ok(
                jobs::partner_catalog(conn, partner.as_uuid(), time::OffsetDateTime::now_utc())?
                    .programs,
            )
        })
        .await
    }

    async fn set_participation(
        &self,
        partner: PartnerId,
        meters: &[MeterId],
        change: &PreferenceChange,
    ) -> Result<Vec<MeterId>> {
        let (meters, change) = (meters.to_vec(), change.clone());
        self.write(move |conn| programs::set_participation(conn, partner, &meters, &change))
            .await
    }

    async fn activate_enrollments(
        &self,
        partner: PartnerId,
        program: &str,
        meter: Option<MeterId>,
    ) -> Result<u64> {
        let program = program.to_owned();
        self.write(move |conn| programs::activate(conn, partner, &program, meter))
            .await
    }

    async fn refresh_enrollments(&self, partner: PartnerId) -> Result<u64> {
        self.write(move |conn| programs::refresh(conn, partner))
            .await
    }

    async fn get_stored_meter(
        &self,
        partner: PartnerId,
        meter: MeterId,
    ) -> Result<Option<StoredMeter>> {
        self.read_point(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {} FROM meters WHERE id = ?1 AND partner_id = ?2",
                    reads::STORED_METER_COLUMNS
                ))?
                .query_row([meter.as_uuid(), partner.as_uuid()], |row| {
                    Ok(StoredMeter {
                        id: MeterId::from_uuid(row.get(0)?),
                        created_by: rows::parsed(row, 1)?,
                        data_json: rows::meter_object_json(row, 2)?,
                        created_at: row.get(3)?,
                        updated_at: row.get(4)?,
                        global_status: rows::parsed(row, 5)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn meter_overview(&self, partner: PartnerId) -> Result<MeterOverview> {
        self.read(move |conn| accounts::meter_overview(conn, partner))
            .await
    }

    async fn get_meter(&self, partner: PartnerId, meter: MeterId) -> Result<Option<Meter>> {
        self.read_point(move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {} FROM meters WHERE id = ?1 AND partner_id = ?2",
                        reads::METER_COLUMNS
                    ),
                    [meter.as_uuid(), partner.as_uuid()],
                    rows::meter,
                )
                .optional()?)
        })
        .await
    }

    async fn import_meters(
        &self,
        partner: PartnerId,
        created_by: CreatedBy,
        meters: Vec<MeterData>,
    ) -> Result<Vec<MeterId>> {
        self.write(move |conn| jobs::import_meters(conn, partner, created_by, &meters))
            .await
    }
}
