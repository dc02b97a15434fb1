//! The PostgreSQL store, for several Gridroll processes sharing one database. Jobs are
//! claimed with `FOR UPDATE SKIP LOCKED` under a lease; uploads are written with binary
//! `COPY`; a chunk is processed with a handful of set-based statements, and concurrent
//! creates of one reference are settled by the unique index.

mod accounts;
mod jobs;
mod meter_reads;
mod migrate;
mod programs;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use gridroll_domain::enrollment::PreferenceChange;
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::job::JobStatus;
use gridroll_domain::program::Program;
use gridroll_domain::timestamp::now_millis;
use gridroll_domain::{ApiKeyId, JobId, MeterData, MeterId, PartnerId, UserId};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

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

/// Deletes the assets of the jobs a statement deletes (its `gone` CTE), in that statement:
/// no foreign key cascades them here (migration 10).
const DELETE_GONE_ASSETS: &str =
    "assets AS (DELETE FROM provisional_assets WHERE job_id IN (SELECT id FROM gone))";

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: Pool,
    /// Reads of one meter, coalesced under load.
    meter_reads: meter_reads::MeterReads,
    /// Chunks being read and evaluated ahead of the one being written.
    ahead: Ahead,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&SqlState::DISK_FULL) {
            return Self::StorageFull(PgError(e).to_string());
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
        };
        // Fail at start, with the reason, when the database cannot be reached.
        drop(store.client().await?);
        Ok(store)
    }

    async fn client(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }

    /// Starts reading and evaluating a job's chunk from `from_seq` on, on a connection of
    /// its own; the evaluation runs on a blocking thread.
    fn prepare_ahead(&self, job: JobId, from_seq: u64, limit: usize) {
        let pool = self.pool.clone();
        let task = tokio::spawn(async move {
            let input = {
                let client = pool.get().await?;
                let partner = jobs::job_partner(&client, job)
                    .await?
                    .ok_or(StoreError::LeaseLost)?;
                jobs::read_chunk(&client, job, partner, from_seq, limit, now_millis()).await?
            };
            tokio::task::spawn_blocking(move || input.evaluate())
                .await
                .map_err(|_| StoreError::Task)?
        });
        self.ahead.start(job, task);
    }
}

/// Runs a built query.
async fn all(client: &Object, query: &Query) -> Result<Vec<Row>> {
    let params: Vec<Box<dyn ToSql + Sync + Send>> = query
        .params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Uuid(u) => Box::new(*u),
                Param::Text(t) => Box::new(t.clone()),
                Param::Int(i) => Box::new(*i),
            }
        })
        .collect();
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    // Not cached: the text varies with the number of filter values, and a cached
    // statement per variant would pile up on every pooled connection.
    Ok(client.query(query.sql.as_str(), &refs).await?)
}

fn partner(row: &Row) -> Partner {
    Partner {
        id: PartnerId::from_uuid(row.get(0)),
        name: row.get(1),
        created_at: row.get(2),
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        migrate::run(&mut client).await
    }

    async fn schema_is_current(&self) -> Result<bool> {
        migrate::is_current(&self.client().await?).await
    }

    async fn recover(&self) -> Result<()> {
        // Other processes may be alive: only uploads whose receiving lease has lapsed are
        // orphans, and job leases expire by themselves.
        self.remove_abandoned_uploads(now_millis()).await.map(drop)
    }

    async fn create_partner(&self, name: &str) -> Result<Partner> {
        let partner = Partner {
            id: PartnerId::new(),
            name: name.to_owned(),
            created_at: now_millis(),
        };
        self.client()
            .await?
            .execute(
                "INSERT INTO partners (id, name, created_at) VALUES ($1, $2, $3)",
                &[partner.id.as_uuid(), &partner.name, &partner.created_at],
            )
            .await?;
        Ok(partner)
    }

    async fn get_partner(&self, id: PartnerId) -> Result<Option<Partner>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT id, name, created_at FROM partners WHERE id = $1",
                &[id.as_uuid()],
            )
            .await?;
        Ok(row.as_ref().map(partner))
    }

    async fn find_partner_by_name(&self, name: &str) -> Result<Option<Partner>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT id, name, created_at FROM partners WHERE name = $1 ORDER BY id LIMIT 1",
                &[&name],
            )
            .await?;
        Ok(row.as_ref().map(partner))
    }

    async fn add_api_key(
        &self,
        partner: PartnerId,
        name: &str,
        permission: Permission,
        hash: &ApiKeyHash,
    ) -> Result<ApiKeyId> {
        let client = self.client().await?;
        accounts::add_api_key(&client, partner, name, permission, hash, now_millis()).await
    }

    async fn use_api_key(&self, hash: &ApiKeyHash, now: i64) -> Result<Option<KeyGrant>> {
        accounts::use_api_key(&self.client().await?, hash, now).await
    }

    async fn list_api_keys(&self, partner: PartnerId) -> Result<Vec<ApiKey>> {
        accounts::list_api_keys(&self.client().await?, partner).await
    }

    async fn revoke_api_key(&self, partner: PartnerId, key: ApiKeyId, now: i64) -> Result<bool> {
        accounts::revoke_api_key(&self.client().await?, partner, key, now).await
    }

    async fn add_user(
        &self,
        partner: PartnerId,
        email: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<User, AddUserError> {
        let client = self.client().await?;
        accounts::add_user(&client, partner, email, role, password_hash, now_millis()).await
    }

    async fn set_password(
        &self,
        email: &str,
        partner: Option<PartnerId>,
        password_hash: &str,
    ) -> Result<PasswordSet> {
        accounts::set_password(&mut self.client().await?, email, partner, password_hash).await
    }

    async fn list_users(&self, partner: PartnerId) -> Result<Vec<User>> {
        accounts::list_users(&self.client().await?, partner).await
    }

    async fn user_credentials(&self, email: &str) -> Result<Vec<Credentials>> {
        accounts::user_credentials(&self.client().await?, email).await
    }

    async fn sign_in_attempt(
        &self,
        user: UserId,
        source: &TokenHash,
        now: i64,
        lock_after: u32,
        lock_until: i64,
    ) -> Result<SignInAttempt> {
        let mut client = self.client().await?;
        accounts::sign_in_attempt(&mut client, user, source, now, lock_after, lock_until).await
    }

    async fn is_known_device(&self, user: UserId, device: &TokenHash) -> Result<bool> {
        accounts::is_known_device(&self.client().await?, user, device).await
    }

    async fn start_session(&self, session: &NewSession) -> Result<()> {
        accounts::start_session(&mut self.client().await?, session).await
    }

    async fn session(&self, token: &TokenHash, now: i64) -> Result<Option<Session>> {
        accounts::session(&self.client().await?, token, now).await
    }

    async fn end_session(&self, token: &TokenHash) -> Result<()> {
        accounts::end_session(&self.client().await?, token).await
    }

    async fn add_invitation(&self, invitation: &NewInvitation) -> Result<()> {
        accounts::add_invitation(&self.client().await?, invitation).await
    }

    async fn invitation(&self, token: &TokenHash, now: i64) -> Result<Option<Invitation>> {
        accounts::invitation(&self.client().await?, token, now).await
    }

    async fn accept_invitation(
        &self,
        token: &TokenHash,
        now: i64,
        password_hash: &str,
    ) -> Result<Option<User>, AddUserError> {
        let mut client = self.client().await?;
        accounts::accept_invitation(&mut client, token, now, password_hash).await
    }

    async fn begin_job(&self, partner: PartnerId, job: &NewJob) -> Result<()> {
        jobs::begin(&self.client().await?, partner, job).await
    }

    async fn append_assets(&self, job: JobId, assets: Vec<NewAsset>) -> Result<()> {
        jobs::append(&mut self.client().await?, job, &assets).await
    }

    async fn commit_job(&self, job: JobId, assets_count: u64, regions: &[String]) -> Result<()> {
        jobs::commit(&self.client().await?, job, assets_count, &regions.join(",")).await
    }

    async fn discard_job(&self, job: JobId) -> Result<()> {
        self.client()
            .await?
            .execute(
                &format!(
                    "WITH gone AS (DELETE FROM jobs WHERE id = $1 AND status = 'RECEIVING'
                                   RETURNING id),
                          {DELETE_GONE_ASSETS}
                     SELECT 1"
                ),
                &[job.as_uuid()],
            )
            .await?;
        Ok(())
    }

    async fn remove_abandoned_uploads(&self, now: i64) -> Result<u64> {
        let dropped = self
            .client()
            .await?
            .query_one(
                &format!(
                    "WITH gone AS (DELETE FROM jobs
                                   WHERE status = 'RECEIVING' AND lease_expires_at < $1
                                   RETURNING id),
                          {DELETE_GONE_ASSETS}
                     SELECT count(*) FROM gone"
                ),
                &[&now],
            )
            .await?
            .get::<_, i64>(0);
        if dropped > 0 {
            tracing::info!(dropped, "removed uploads that never completed");
        }
        Ok(dropped.max(0) as u64)
    }

    async fn get_job(&self, partner: PartnerId, job: JobId) -> Result<Option<Job>> {
        jobs::get(&self.client().await?, partner, job).await
    }

    async fn job_assets(
        &self,
        partner: PartnerId,
        job: JobId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AssetState>> {
        jobs::assets(&self.client().await?, partner, job, from_seq, limit).await
    }

    async fn provisional_asset(
        &self,
        partner: PartnerId,
        job: JobId,
        seq: u64,
    ) -> Result<Option<ProvisionalAsset>> {
        jobs::provisional_asset(&self.client().await?, partner, job, seq).await
    }

    async fn list_jobs(
        &self,
        partner: PartnerId,
        filter: &JobFilter,
        page: &JobPage,
    ) -> Result<Vec<Job>> {
        let query = reads::list_jobs(Dialect::Postgres, partner, filter, page.before, page.limit);
        let rows = all(&self.client().await?, &query).await?;
        rows.iter().map(jobs::job).collect()
    }

    async fn job_facets(&self, partner: PartnerId) -> Result<Vec<Facet>> {
        let client = self.client().await?;
        let mut facets = Vec::new();
        for (key, column) in JOB_FACETS {
            let rows = all(
                &client,
                &reads::job_facet(Dialect::Postgres, partner, column),
            )
            .await?;
            facets.push(facet(key, rows.iter().map(|r| r.get(0)).collect()));
        }
        Ok(facets)
    }

    async fn list_provisional_assets(
        &self,
        partner: PartnerId,
        filter: &AssetFilter,
        after: Option<(JobId, u64)>,
        limit: usize,
    ) -> Result<Vec<ProvisionalAsset>> {
        let query = reads::list_assets(Dialect::Postgres, partner, filter, after, limit);
        let rows = all(&self.client().await?, &query).await?;
        rows.iter().map(jobs::listed_asset).collect()
    }

    async fn max_site_devices(&self, partner: PartnerId, filter: &AssetFilter) -> Result<usize> {
        let query = reads::max_site_devices(Dialect::Postgres, partner, filter);
        let rows = all(&self.client().await?, &query).await?;
        let most: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(most.max(0) as usize)
    }

    async fn asset_facets(&self, partner: PartnerId) -> Result<Vec<Facet>> {
        let client = self.client().await?;
        let mut facets = Vec::new();
        for (key, column) in ASSET_FACETS {
            let rows = all(
                &client,
                &reads::asset_facet(Dialect::Postgres, partner, column),
            )
            .await?;
            facets.push(facet(key, rows.iter().map(|r| r.get(0)).collect()));
        }
        Ok(facets)
    }

    async fn search_meters(
        &self,
        partner: PartnerId,
        filter: &MeterFilter,
        after: Option<MeterId>,
        limit: usize,
    ) -> Result<Vec<Meter>> {
        let query = reads::search_meters(Dialect::Postgres, partner, filter, after, limit);
        let rows = all(&self.client().await?, &query).await?;
        rows.iter().map(jobs::meter).collect()
    }

    async fn claim_job(&self, worker: &str, lease: Duration, now: i64) -> Result<Option<JobId>> {
        jobs::claim(&self.client().await?, worker, lease, now).await
    }

    async fn note_chunk_failure(
        &self,
        job: JobId,
        worker: &str,
        error: &str,
        now: i64,
    ) -> Result<u32> {
        jobs::note_failure(&mut self.client().await?, job, worker, error, now).await
    }

    async fn give_up_job(
        &self,
        job: JobId,
        worker: &str,
        description: &str,
        now: i64,
    ) -> Result<JobStatus> {
        self.ahead.forget(job);
        jobs::give_up(&mut self.client().await?, job, worker, description, now).await
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
        let result = match self.client().await {
            Ok(mut client) => {
                jobs::process_chunk(&mut client, job, worker, limit, lease, durable, prepared).await
            }
            Err(e) => Err(e),
        };
        self.ahead.after_chunk(job, result, |next_seq| {
            self.prepare_ahead(job, next_seq, limit)
        })
    }

    async fn release_job(&self, job: JobId, worker: &str) -> Result<()> {
        self.ahead.forget(job);
        self.client()
            .await?
            .execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $1 AND lease_owner = $2",
                &[job.as_uuid(), &worker],
            )
            .await?;
        Ok(())
    }

    async fn seed_programs(&self, list: &[Program]) -> Result<usize> {
        programs::seed(&mut self.client().await?, list).await
    }

    async fn list_programs(&self) -> Result<Vec<CatalogEntry>> {
        programs::list(&self.client().await?).await
    }

    async fn put_program(&self, program: &Program) -> Result<()> {
        programs::put(&self.client().await?, program).await
    }

    async fn retire_program(&self, identifier: &str) -> Result<bool> {
        programs::retire(&self.client().await?, identifier).await
    }

    async fn set_partner_programs(
        &self,
        partner: PartnerId,
        list: Option<&[String]>,
    ) -> Result<()> {
        programs::set_partner_programs(&mut self.client().await?, partner, list).await
    }

    async fn partner_programs(&self, partner: PartnerId) -> Result<Vec<Program>> {
        let client = self.client().await?;
        Ok(
            jobs::partner_catalog(&client, partner.as_uuid(), time::OffsetDateTime::now_utc())
                .await?
                .programs,
        )
    }

    async fn set_participation(
        &self,
        partner: PartnerId,
        meters: &[MeterId],
        change: &PreferenceChange,
    ) -> Result<Vec<MeterId>> {
        programs::set_participation(&mut self.client().await?, partner, meters, change).await
    }

    async fn activate_enrollments(
        &self,
        partner: PartnerId,
        program: &str,
        meter: Option<MeterId>,
    ) -> Result<u64> {
        programs::activate(&mut self.client().await?, partner, program, meter).await
    }

    async fn refresh_enrollments(&self, partner: PartnerId) -> Result<u64> {
        programs::refresh(&mut self.client().await?, partner).await
    }

    async fn get_stored_meter(
        &self,
        partner: PartnerId,
        meter: MeterId,
    ) -> Result<Option<StoredMeter>> {
        self.meter_reads.get(partner, meter).await
    }

    async fn meter_overview(&self, partner: PartnerId) -> Result<MeterOverview> {
        accounts::meter_overview(&self.client().await?, partner).await
    }

    async fn get_meter(&self, partner: PartnerId, meter: MeterId) -> Result<Option<Meter>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {} FROM meters WHERE id = $1 AND partner_id = $2",
                reads::METER_COLUMNS
            ))
            .await?;
        let row = client
            .query_opt(&statement, &[meter.as_uuid(), partner.as_uuid()])
            .await?;
        row.map(|row| jobs::meter(&row)).transpose()
    }

    async fn import_meters(
        &self,
        partner: PartnerId,
        created_by: CreatedBy,
        meters: Vec<MeterData>,
    ) -> Result<Vec<MeterId>> {
        jobs::import_meters(&mut self.client().await?, partner, created_by, &meters).await
    }
}
