//! Gridroll's storage, by area: accounts, jobs, meters and the catalog, each a trait
//! written once over a small database abstraction ([`db::Db`]), and two backends
//! ([`Engine`]s): SQLite for one process, PostgreSQL for many. The backend is chosen at
//! start from the database URL. Every call that reads or changes a partner's data takes
//! that partner's id, so one partner can never reach another's objects; every call that
//! depends on the time takes it from the caller.

mod accounts;
pub mod ahead;
mod catalog;
pub mod db;
mod engine;
mod error;
mod evaluate;
mod events;
mod idempotency;
mod jobs;
mod lease;
mod meters;
mod model;
pub mod postgres;
mod query;
mod reads;
mod rows;
pub mod sqlite;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use accounts::{
    AccountStore, AddUserError, ApiKey, Credentials, Invitation, KEY_PREFIX_LEN, KeyGrant,
    NewInvitation, NewSession, PartnerSummary, PasswordSet, PendingInvitation, Role, Session,
    SignInAttempt, TokenHash, User, UserChange,
};
pub use catalog::{CatalogStore, PartnerProgramsError};
pub use engine::{Engine, Work};
pub use error::{Result, StoreError};
pub use evaluate::Catalog;
pub use events::{EventStore, EventTypes, FEED_SCAN, FeedPage, StoredEvent};
pub use idempotency::{Claim, Hold, IdempotencyStore, KeptAnswer};
pub use jobs::JobStore;
pub use jobs::segments::AssetBatch;
pub use meters::{Applied, EditError, MeterEdit, MeterOverview, MeterStore, Taken, Unknown};
pub use model::{
    ApiKeyHash, AssetField, AssetFilter, AssetState, CatalogEntry, ChunkReport, Facet,
    IndexColumns, Job, JobField, JobFilter, JobPage, Meter, MeterFilter, NewJob, Partner,
    ProvisionalAsset, Received, Search, StoredMeter,
};
pub use webhooks::{
    AttemptResult, Claimed, DispatchRules, Due, DueBatch, LoggedAttempt, Redelivery, Webhook,
    WebhookStore,
};

/// Keeping the database itself: its schema, and what stopped processes left behind.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Brings the schema up to date. Safe to call on every start.
    async fn migrate(&self) -> Result<()>;
    /// Whether the schema is the one this release writes (no migration left to apply).
    async fn schema_is_current(&self) -> Result<bool>;
    /// Undoes what a stopped process left half-done: uploads that never returned `201`
    /// are removed, and on SQLite (served by one process) every job lease is released.
    async fn recover(&self, now: i64) -> Result<()>;
    /// The jobs waiting for a worker or being processed, and the oldest one's age.
    async fn job_queue(&self, now: i64) -> Result<JobQueue>;
    /// How the process uses its database connections now.
    fn connections(&self) -> Connections;
}

/// The jobs with work left, for the operator's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobQueue {
    /// Received and waiting for a worker (none holds its lease).
    pub waiting: u64,
    /// Held by a worker now.
    pub running: u64,
    /// How long the oldest job with work left has been waiting since it was received.
    pub oldest_age_ms: Option<i64>,
}

/// A process's database connections (on SQLite: its readers; the one writer is apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// Open now, in use or idle.
    pub open: usize,
    /// Open and waiting for work.
    pub idle: usize,
    /// The most the process opens.
    pub max: usize,
}

#[async_trait]
impl<E: Engine> Maintenance for E {
    async fn migrate(&self) -> Result<()> {
        Engine::migrate(self).await
    }

    async fn schema_is_current(&self) -> Result<bool> {
        Engine::schema_is_current(self).await
    }

    async fn recover(&self, now: i64) -> Result<()> {
        Engine::recover(self, now).await
    }

    async fn job_queue(&self, now: i64) -> Result<JobQueue> {
        self.read(crate::work!(db => async move { jobs::queries::queue(db, now).await }))
            .await
    }

    fn connections(&self) -> Connections {
        Engine::connections(self)
    }
}

/// Every area of one store, each a handle to the same backend, for the callers that
/// pick the ones they use.
#[derive(Clone)]
pub struct Stores {
    pub accounts: Arc<dyn AccountStore>,
    pub jobs: Arc<dyn JobStore>,
    pub meters: Arc<dyn MeterStore>,
    pub catalog: Arc<dyn CatalogStore>,
    pub events: Arc<dyn EventStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub maintenance: Arc<dyn Maintenance>,
}

impl Stores {
    /// The areas of one backend.
    pub fn of<E: Engine>(engine: E) -> Self {
        let engine = Arc::new(engine);
        Self {
            accounts: engine.clone(),
            jobs: engine.clone(),
            meters: engine.clone(),
            catalog: engine.clone(),
            events: engine.clone(),
            webhooks: engine.clone(),
            idempotency: engine.clone(),
            maintenance: engine,
        }
    }
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
    /// The event types every change records for the feed (beyond those the partner's
    /// subscriptions want).
    pub event_feed: EventTypes,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            statement_timeout: Duration::from_secs(60),
            migrate: true,
            max_size: None,
            event_feed: EventTypes::emitted(),
        }
    }
}

/// Opens the store a database URL names: `sqlite://PATH` (or `sqlite:PATH`, or a plain
/// path), or `postgres://...`. The schema is migrated before the store is returned
/// (unless `options` say not to; then it must be current).
pub async fn open(url: &str, options: &StoreOptions) -> Result<Stores> {
    let stores = if let Some(path) = sqlite_path(url) {
        Stores::of(sqlite::SqliteStore::open(path, options).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Stores::of(postgres::PostgresStore::open(url, options).await?)
    } else {
        // The URL itself is not repeated: it may hold a password.
        return Err(StoreError::Config(
            "unsupported database URL: use sqlite://PATH or postgres://USER@HOST/DB".to_owned(),
        ));
    };
    let store = &stores.maintenance;
    if options.migrate {
        store.migrate().await?;
    } else if !store.schema_is_current().await? {
        return Err(StoreError::Config(
            "the database's schema is not the one this release writes, and another process \
             is serving it: stop that process, then run gridroll migrate"
                .to_owned(),
        ));
    }
    Ok(stores)
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
