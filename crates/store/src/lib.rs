//! Gridroll's storage. Callers see only the [`Store`] trait; the implementation is chosen
//! at start from the database URL. Every call that reads or changes a partner's data takes
//! that partner's id, so one partner can never reach another's objects.

mod accounts;
mod ahead;
pub mod cursor;
mod error;
mod evaluate;
mod failures;
mod lease;
mod model;
pub mod postgres;
mod query;
mod reads;
mod sign_in;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gridroll_domain::enrollment::PreferenceChange;
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::program::Program;
use gridroll_domain::{ApiKeyId, JobId, MeterData, MeterId, PartnerId, UserId};

pub use accounts::{
    AddUserError, ApiKey, Credentials, Invitation, KeyGrant, MeterOverview, NewInvitation,
    NewSession, PasswordSet, Permission, Role, Session, SignInAttempt, TokenHash, User,
};
pub use error::{Result, StoreError};
pub use model::{
    ApiKeyHash, AssetField, AssetFilter, AssetState, CatalogEntry, ChunkReport, Facet, Job,
    JobField, JobFilter, JobPage, Meter, MeterFilter, NewAsset, NewJob, Partner, ProvisionalAsset,
    Search, StoredMeter,
};

/// Everything Gridroll keeps. Implementations must be safe to share between tasks.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Brings the schema up to date. Safe to call on every start.
    async fn migrate(&self) -> Result<()>;
    /// Whether the schema is the one this release writes (no migration left to apply).
    async fn schema_is_current(&self) -> Result<bool>;

    /// Undoes what a stopped process left half-done: uploads that never returned `201`
    /// are removed, and the job leases of this store's processes are released.
    async fn recover(&self) -> Result<()>;

    async fn create_partner(&self, name: &str) -> Result<Partner>;
    async fn get_partner(&self, partner: PartnerId) -> Result<Option<Partner>>;
    async fn find_partner_by_name(&self, name: &str) -> Result<Option<Partner>>;

    /// Stores the hash of a new API key for a partner.
    async fn add_api_key(
        &self,
        partner: PartnerId,
        name: &str,
        permission: Permission,
        hash: &ApiKeyHash,
    ) -> Result<ApiKeyId>;
    /// What a live (not revoked) key grants; notes that it was used at `now` (at most
    /// once a minute: unknown keys and busy ones cost no write).
    async fn use_api_key(&self, hash: &ApiKeyHash, now: i64) -> Result<Option<KeyGrant>>;
    /// A partner's keys, newest first, revoked ones included.
    async fn list_api_keys(&self, partner: PartnerId) -> Result<Vec<ApiKey>>;
    /// Revokes a partner's key. False if the partner has no such live key.
    async fn revoke_api_key(&self, partner: PartnerId, key: ApiKeyId, now: i64) -> Result<bool>;

    /// Adds a portal user to a partner. `email` must be lower-cased.
    async fn add_user(
        &self,
        partner: PartnerId,
        email: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<User, AddUserError>;
    /// Replaces the password hash of the user with this (lower-cased) email, of
    /// `partner` if given, and ends the user's sessions and lockouts.
    async fn set_password(
        &self,
        email: &str,
        partner: Option<PartnerId>,
        password_hash: &str,
    ) -> Result<PasswordSet>;
    /// A partner's users, in the order they were added.
    async fn list_users(&self, partner: PartnerId) -> Result<Vec<User>>;
    /// Every user with this (lower-cased) email, one per partner, the most recently signed
    /// in first, with what signing in checks.
    async fn user_credentials(&self, email: &str) -> Result<Vec<Credentials>>;
    /// Counts a sign-in attempt of `source` on `user` before its password is checked, so
    /// that attempts made at once cannot outrun the count. The `lock_after`-th attempt in a
    /// row from the source without success locks that source (only) out of the user until
    /// `lock_until`; while it is, nothing is counted. The count starts again once a lock
    /// has lapsed, and a success ([`Store::start_session`]) resets it.
    async fn sign_in_attempt(
        &self,
        user: UserId,
        source: &TokenHash,
        now: i64,
        lock_after: u32,
        lock_until: i64,
    ) -> Result<SignInAttempt>;
    /// Whether `device` is a browser `user` signed in from before.
    async fn is_known_device(&self, user: UserId, device: &TokenHash) -> Result<bool>;
    /// Starts a session after a successful sign-in: the failure counts of the account and
    /// of the session's source start again, its device is remembered, and the user's
    /// expired sessions are removed.
    async fn start_session(&self, session: &NewSession) -> Result<()>;
    /// The live session a token opens.
    async fn session(&self, token: &TokenHash, now: i64) -> Result<Option<Session>>;
    async fn end_session(&self, token: &TokenHash) -> Result<()>;
    async fn add_invitation(&self, invitation: &NewInvitation) -> Result<()>;
    /// The invitation a token opens, if it has not expired or been used.
    async fn invitation(&self, token: &TokenHash, now: i64) -> Result<Option<Invitation>>;
    /// Turns an invitation into a user, once.
    async fn accept_invitation(
        &self,
        token: &TokenHash,
        now: i64,
        password_hash: &str,
    ) -> Result<Option<User>, AddUserError>;

    /// Starts receiving an upload. The job stays invisible until [`Store::commit_job`].
    async fn begin_job(&self, partner: PartnerId, job: &NewJob) -> Result<()>;
    /// Stores a batch of validated assets of a job that is being received.
    async fn append_assets(&self, job: JobId, assets: Vec<NewAsset>) -> Result<()>;
    /// Makes a received job durable and visible, ready for the workers.
    async fn commit_job(&self, job: JobId, assets_count: u64, regions: &[String]) -> Result<()>;
    /// Drops a job that was being received, with its assets.
    async fn discard_job(&self, job: JobId) -> Result<()>;
    /// Removes the uploads whose receiving lease lapsed before `now` (their process died
    /// before the `201`, or stopped writing them), with their assets; answers how many.
    async fn remove_abandoned_uploads(&self, now: i64) -> Result<u64>;

    async fn get_job(&self, partner: PartnerId, job: JobId) -> Result<Option<Job>>;
    /// The state of up to `limit` assets of a job from `from_seq` on, in upload order.
    async fn job_assets(
        &self,
        partner: PartnerId,
        job: JobId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AssetState>>;
    /// One provisional asset with its data.
    async fn provisional_asset(
        &self,
        partner: PartnerId,
        job: JobId,
        seq: u64,
    ) -> Result<Option<ProvisionalAsset>>;
    /// A page of a partner's jobs, newest first.
    async fn list_jobs(
        &self,
        partner: PartnerId,
        filter: &JobFilter,
        page: &JobPage,
    ) -> Result<Vec<Job>>;
    /// The values that occur in a partner's jobs, per filter key.
    async fn job_facets(&self, partner: PartnerId) -> Result<Vec<Facet>>;

    /// A page of a partner's provisional assets: newest job first, each job's assets in
    /// upload order, after the position `after` (job, seq).
    async fn list_provisional_assets(
        &self,
        partner: PartnerId,
        filter: &AssetFilter,
        after: Option<(JobId, u64)>,
        limit: usize,
    ) -> Result<Vec<ProvisionalAsset>>;
    /// The most site devices any matching provisional asset has.
    async fn max_site_devices(&self, partner: PartnerId, filter: &AssetFilter) -> Result<usize>;
    /// The values that occur in a partner's provisional assets, per filter key.
    async fn asset_facets(&self, partner: PartnerId) -> Result<Vec<Facet>>;

    /// Takes the lease on the oldest job with work left whose lease is free or expired at
    /// `now`.
    async fn claim_job(&self, worker: &str, lease: Duration, now: i64) -> Result<Option<JobId>>;
    /// Processes up to `limit` assets of a job in one transaction and renews the lease.
    /// Fails with [`StoreError::LeaseLost`] if another worker holds the job. `durable`
    /// waits for the disk before returning; without it a power cut may undo the chunk,
    /// which is then simply processed again.
    async fn process_chunk(
        &self,
        job: JobId,
        worker: &str,
        limit: usize,
        lease: Duration,
        durable: bool,
    ) -> Result<ChunkReport>;
    /// Gives up the lease on a job (on shutdown), so another worker can take it at once.
    async fn release_job(&self, job: JobId, worker: &str) -> Result<()>;
    /// Notes that processing a chunk of a job this worker holds failed with `error`, and
    /// holds the job back (its lease lasts until `now` plus the job's
    /// [`retry_delay`](gridroll_domain::job::retry_delay)) so that no worker tries it again
    /// at once. Answers how many times in a row the job's chunks have failed; a chunk
    /// that succeeds starts the count again.
    async fn note_chunk_failure(
        &self,
        job: JobId,
        worker: &str,
        error: &str,
        now: i64,
    ) -> Result<u32>;
    /// Gives up a job this worker holds: every asset still `PROCESSING` becomes `FAILED`
    /// with `PROCESSING_ERROR` and `description`, and the job takes its final status,
    /// which is answered.
    async fn give_up_job(
        &self,
        job: JobId,
        worker: &str,
        description: &str,
        now: i64,
    ) -> Result<gridroll_domain::job::JobStatus>;

    /// Adds the programs the catalog does not have yet; returns how many were added.
    async fn seed_programs(&self, programs: &[Program]) -> Result<usize>;
    /// Every program, retired ones included.
    async fn list_programs(&self) -> Result<Vec<CatalogEntry>>;
    /// Adds a program or replaces its definition (and brings it back if retired).
    async fn put_program(&self, program: &Program) -> Result<()>;
    /// Retires a program: no meter is evaluated against it any more. False if unknown.
    async fn retire_program(&self, identifier: &str) -> Result<bool>;
    /// Limits the programs a partner may use; `None` allows every program.
    async fn set_partner_programs(
        &self,
        partner: PartnerId,
        programs: Option<&[String]>,
    ) -> Result<()>;
    /// The programs a partner may use.
    async fn partner_programs(&self, partner: PartnerId) -> Result<Vec<Program>>;

    /// Applies a participation change to meters of a partner, all or none: the answer
    /// lists the ids that are not the partner's (nothing changed then).
    async fn set_participation(
        &self,
        partner: PartnerId,
        meters: &[MeterId],
        change: &PreferenceChange,
    ) -> Result<Vec<MeterId>>;
    /// Makes PENDING enrollments in a program ACTIVE: one meter's, or every meter's of
    /// the partner. Returns how many changed.
    async fn activate_enrollments(
        &self,
        partner: PartnerId,
        program: &str,
        meter: Option<MeterId>,
    ) -> Result<u64>;
    /// Evaluates every meter of a partner again (after the catalog changed).
    async fn refresh_enrollments(&self, partner: PartnerId) -> Result<u64>;

    /// How many meters a partner has, by enrollment status and by region.
    async fn meter_overview(&self, partner: PartnerId) -> Result<MeterOverview>;

    async fn get_meter(&self, partner: PartnerId, meter: MeterId) -> Result<Option<Meter>>;
    /// A meter with its data as stored (JSON text), for the hot read of its details.
    async fn get_stored_meter(
        &self,
        partner: PartnerId,
        meter: MeterId,
    ) -> Result<Option<StoredMeter>>;
    /// A page of a partner's meters in creation order, after `after`.
    async fn search_meters(
        &self,
        partner: PartnerId,
        filter: &MeterFilter,
        after: Option<MeterId>,
        limit: usize,
    ) -> Result<Vec<Meter>>;
    /// Stores meters that reach the platform by another channel than the partner's own
    /// uploads; they may share a `partner_reference` with each other and with the
    /// partner's meters.
    async fn import_meters(
        &self,
        partner: PartnerId,
        created_by: CreatedBy,
        meters: Vec<MeterData>,
    ) -> Result<Vec<MeterId>>;
}

/// The filter keys of provisional assets and the columns behind them.
const ASSET_FACETS: &[(&str, &str)] = &[
    ("status", "status"),
    ("transmission_region", "transmission_region"),
    ("customer_classification", "customer_classification"),
    ("meter_type", "meter_type"),
];

/// The filter keys of jobs and the columns behind them.
const JOB_FACETS: &[(&str, &str)] = &[
    ("status", "status"),
    ("transmission_region", "transmission_regions"),
];

/// Collects facet values, splitting comma lists (a job's regions) into their members.
fn facet(key: &'static str, raw: Vec<String>) -> Facet {
    let mut values: Vec<String> = raw
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    values.sort();
    values.dedup();
    Facet { key, values }
}

/// Options common to every backend.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections open at once (on SQLite: read connections beside the writer).
    pub max_connections: usize,
    /// Longest a single statement may run (PostgreSQL).
    pub statement_timeout: Duration,
    /// Whether opening the store applies the migrations it lacks. Without, a schema that
    /// is not this release's is refused: for a process beside another that serves it.
    pub migrate: bool,
    /// The most bytes the database file may take (SQLite); past it, writes fail as on a
    /// full disk.
    pub max_size: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            statement_timeout: Duration::from_secs(60),
            migrate: true,
            max_size: None,
        }
    }
}

/// Opens the store a database URL names: `sqlite://PATH` (or `sqlite:PATH`, or a plain
/// path), or `postgres://...`. The schema is migrated before the store is returned.
pub async fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if let Some(path) = sqlite_path(url) {
        Arc::new(sqlite::SqliteStore::open(path, options).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(postgres::PostgresStore::open(url, options).await?)
    } else {
        // The URL itself is not repeated: it may hold a password.
        return Err(StoreError::Config(
            "unsupported database URL: use sqlite://PATH or postgres://USER@HOST/DB".to_owned(),
        ));
    };
    if options.migrate {
        store.migrate().await?;
    } else if !store.schema_is_current().await? {
        return Err(StoreError::Config(
            "the database's schema is not the one this release writes, and another process \
             is serving it: stop that process, then run gridroll migrate"
                .to_owned(),
        ));
    }
    Ok(store)
}

/// The file a SQLite database URL names (`sqlite://PATH`, `sqlite:PATH` or a plain path);
/// `None` for any other URL.
pub fn sqlite_path(url: &str) -> Option<&str> {
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        return Some(rest);
    }
    // A plain path; a libpq "key=value" string is not one.
    (!url.contains("://") && !url.contains('=')).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn sqlite_urls_and_plain_paths_name_a_file() {
        assert_eq!(sqlite_path("sqlite://gridroll.db"), Some("gridroll.db"));
        assert_eq!(sqlite_path("sqlite:///var/lib/g.db"), Some("/var/lib/g.db"));
        assert_eq!(sqlite_path("sqlite:g.db"), Some("g.db"));
        assert_eq!(sqlite_path("./g.db"), Some("./g.db"));
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
