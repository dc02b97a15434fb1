//! What every handler can reach: the store's areas, the settings, the clock, and the
//! process's shared limits. Handlers that need one area take just it (`FromRef`).

use std::sync::Arc;

use axum::extract::FromRef;
use gridroll_domain::timestamp::{Clock, SystemClock};
use gridroll_store::{
    AccountStore, CatalogStore, EventStore, IdempotencyStore, JobStore, Maintenance, MeterStore,
    Stores, WebhookStore,
};
use tokio::sync::Notify;

use crate::config::Config;
use crate::webhooks::client::WebhookClient;
use crate::worker::{Activity, Workers};
use crate::{auth, portal, rate_limit, slots, webhooks};

/// What every handler can reach: one pointer, cloned for every request (axum hands each
/// handler and layer its own copy), to what the process shares.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The store's areas, the settings, the clock, and the process's shared limits.
#[derive(Clone)]
pub struct Shared {
    pub accounts: Arc<dyn AccountStore>,
    pub jobs: Arc<dyn JobStore>,
    pub meters: Arc<dyn MeterStore>,
    pub catalog: Arc<dyn CatalogStore>,
    pub events: Arc<dyn EventStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub maintenance: Arc<dyn Maintenance>,
    pub config: Arc<Config>,
    /// Woken when a job is ready for the workers.
    pub jobs_ready: Arc<Notify>,
    /// The chunks this process's workers are writing.
    pub activity: Arc<Activity>,
    pub clock: Arc<dyn Clock>,
    /// Recently used API keys.
    pub keys: Arc<auth::KeyCache>,
    /// Places for bulk uploads in progress.
    pub uploads: Arc<slots::UploadSlots>,
    /// Requests per API key in the current window.
    pub rate_limits: Arc<rate_limit::RateLimiter>,
    /// Failed portal sign-ins per client address.
    pub sign_ins: Arc<portal::throttle::SignInThrottle>,
    /// Sends webhook deliveries (and tests of a subscription).
    pub webhook_client: Arc<WebhookClient>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(stores: Stores, config: Config) -> Self {
        Self(Arc::new(Shared {
            accounts: stores.accounts,
            jobs: stores.jobs,
            meters: stores.meters,
            catalog: stores.catalog,
            events: stores.events,
            webhooks: stores.webhooks,
            idempotency: stores.idempotency,
            maintenance: stores.maintenance,
            webhook_client: Arc::new(webhooks::client_for(&config.webhooks)),
            uploads: Arc::new(slots::UploadSlots::new(
                config.max_concurrent_uploads,
                config.max_uploads_per_partner,
            )),
            rate_limits: Arc::new(rate_limit::RateLimiter::new(config.rate_limit)),
            config: Arc::new(config),
            jobs_ready: Arc::new(Notify::new()),
            activity: Arc::default(),
            clock: Arc::new(SystemClock),
            keys: Arc::new(auth::KeyCache::default()),
            sign_ins: Arc::new(portal::throttle::SignInThrottle::default()),
        }))
    }

    /// The same state with every time read from `clock` (tests drive deadlines so).
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Self {
        let mut shared = Shared::clone(&self.0);
        shared.clock = clock;
        Self(Arc::new(shared))
    }

    /// The clock's instant as stored: milliseconds since the epoch.
    pub fn now_millis(&self) -> i64 {
        gridroll_domain::timestamp::to_millis(self.clock.now())
    }

    /// Starts this state's background work: the job workers, the webhook dispatcher and
    /// the removal of events past their retention.
    pub fn start_workers(&self) -> Workers {
        let mut workers = Workers::start(
            self.jobs.clone(),
            self.config.workers,
            self.config.worker_config(),
            self.clock.clone(),
            self.jobs_ready.clone(),
            self.activity.clone(),
        );
        let dispatcher = webhooks::dispatch::Dispatcher::new(self);
        workers.spawn(|stop| dispatcher.run(stop));
        let retention = webhooks::dispatch::Retention::new(self);
        workers.spawn(|stop| retention.run(stop));
        workers
    }
}

macro_rules! areas {
    ($($area:ident: $trait:ident),+) => {$(
        impl FromRef<AppState> for Arc<dyn $trait> {
            fn from_ref(state: &AppState) -> Self {
                state.$area.clone()
            }
        }
    )+};
}

areas!(
    accounts: AccountStore,
    jobs: JobStore,
    meters: MeterStore,
    catalog: CatalogStore,
    events: EventStore,
    webhooks: WebhookStore,
    idempotency: IdempotencyStore,
    maintenance: Maintenance
);

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(state: &AppState) -> Self {
        state.config.clone()
    }
}
