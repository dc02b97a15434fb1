//! Webhook subscriptions and their deliveries. A subscription reads its partner's events
//! in order from its `position`; the dispatcher that holds its lease sends what follows,
//! and records each attempt. An event whose first attempt fails gets a delivery row that
//! schedules the next attempt, until one succeeds or none is left.

mod dispatch;
mod queries;

use async_trait::async_trait;
use gridroll_domain::webhook::{EventType, Subscription};
use gridroll_domain::{EventId, PartnerId, WebhookId};
use uuid::Uuid;

use crate::engine::Engine;
use crate::events::StoredEvent;
use crate::{Result, work};

/// A subscription as the partner set it, and how it is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    pub receiver_url: String,
    pub event_types: Vec<EventType>,
    pub headers: Vec<(String, String)>,
    /// Since when every delivery has failed, if the last one did.
    pub failing_since: Option<i64>,
    /// When deliveries stopped because they kept failing.
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A subscription whose lease a dispatcher holds, with the secrets that sign its
/// deliveries now (the newest first; the one before it while the rotation overlaps).
#[derive(Clone)]
pub struct Claimed {
    pub partner: PartnerId,
    pub webhook: Webhook,
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for Claimed {
    /// Never the secrets, nor the headers (which carry the receiver's credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed")
            .field("partner", &self.partner)
            .field("webhook", &self.webhook.id)
            .finish_non_exhaustive()
    }
}

/// An event due to be sent, and which attempt this is (1: the first).
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub event: StoredEvent,
    pub attempt: u32,
}

/// What a subscription has to send next, and how far its reading of the events got.
#[derive(Debug, Clone, PartialEq)]
pub struct DueBatch {
    pub due: Vec<Due>,
    pub position: u64,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    pub event_seq: u64,
    pub event_id: EventId,
    pub event_type: String,
    pub attempt: u32,
    pub attempted_at: i64,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// The start of the receiver's answer.
    pub response: String,
    pub error: Option<String>,
    pub succeeded: bool,
    /// After a failure, when to try again; `None` when no attempt is left.
    pub retry_at: Option<i64>,
}

/// An attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedAttempt {
    pub id: Uuid,
    pub event_id: EventId,
    pub event_type: String,
    pub attempt: u32,
    pub attempted_at: i64,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub response: String,
    pub error: Option<String>,
    pub succeeded: bool,
    /// Where the event's delivery stands: `None` when its first attempt succeeded,
    /// else PENDING (with the next attempt's time), SUCCEEDED or FAILED.
    pub delivery: Option<(String, Option<i64>)>,
}

/// What asking for an event again found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// The event will be sent again at once.
    Queued,
    NoSuchWebhook,
    /// The subscription never had that event to deliver (or it is past retention).
    NoSuchEvent,
}

/// Limits a dispatcher's bookkeeping follows.
#[derive(Debug, Clone, Copy)]
pub struct DispatchRules {
    /// How long a claimed subscription stays the dispatcher's without renewal, ms.
    pub lease: i64,
    /// A subscription whose deliveries have all failed this long is disabled, ms.
    pub disable_after: i64,
}

/// Subscriptions as partners manage them, and their deliveries as dispatchers make them.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Adds a subscription, signing with `secret`; it receives the events that follow.
    async fn create_webhook(
        &self,
        partner: PartnerId,
        subscription: &Subscription,
        secret: &str,
        now: i64,
    ) -> Result<WebhookId>;
    /// The partner's subscriptions, oldest first.
    async fn list_webhooks(&self, partner: PartnerId) -> Result<Vec<Webhook>>;
    async fn get_webhook(&self, partner: PartnerId, webhook: WebhookId) -> Result<Option<Webhook>>;
    /// Replaces a subscription's settings and enables it again. False if the partner has
    /// no such subscription.
    async fn replace_webhook(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        subscription: &Subscription,
        now: i64,
    ) -> Result<bool>;
    /// Enables a disabled subscription: it receives the events that follow, and the
    /// attempts it had scheduled. False if the partner has no such subscription.
    async fn enable_webhook(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        now: i64,
    ) -> Result<bool>;
    /// Removes a subscription, its deliveries and its log. False if there was none.
    async fn delete_webhook(&self, partner: PartnerId, webhook: WebhookId) -> Result<bool>;
    /// Signs with `secret` from now on, and with the secret it replaces until
    /// `overlap_until`. False if the partner has no such subscription.
    async fn rotate_secret(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        secret: &str,
        overlap_until: i64,
        now: i64,
    ) -> Result<bool>;
    /// The secrets a delivery of the subscription is signed with now.
    async fn signing_secrets(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        now: i64,
    ) -> Result<Option<Vec<String>>>;
    /// A subscription's attempts, newest first, before the attempt `before` (a page
    /// token), at most `limit`. `None` if the partner has no such subscription.
    async fn delivery_log(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Option<Vec<LoggedAttempt>>>;
    /// Sends an event the subscription had again, at once.
    async fn redeliver(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        event: EventId,
        now: i64,
    ) -> Result<Redelivery>;
    /// Sends again, at once, up to `limit` of the subscription's deliveries that ended
    /// failed at or after `since`. Answers how many; `None` if there is no such
    /// subscription.
    async fn recover(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        since: i64,
        limit: usize,
        now: i64,
    ) -> Result<Option<u64>>;

    /// Claims up to `limit` enabled subscriptions with something to send that no other
    /// dispatcher holds.
    async fn claim_webhooks(
        &self,
        worker: &str,
        rules: DispatchRules,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Claimed>>;
    /// What a claimed subscription sends next: the attempts due now, then the events
    /// after its position, at most `limit` in all.
    async fn due_deliveries(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        limit: usize,
        now: i64,
    ) -> Result<DueBatch>;
    /// Records a batch of attempts and moves the subscription's position on, renewing
    /// the lease; disables the subscription when it has failed for too long. Answers
    /// whether it is still enabled. `StoreError::LeaseLost` if another dispatcher took
    /// the subscription over (nothing is recorded then).
    async fn record_attempts(
        &self,
        webhook: WebhookId,
        worker: &str,
        position: u64,
        results: Vec<AttemptResult>,
        rules: DispatchRules,
        now: i64,
    ) -> Result<bool>;
    /// Gives a claimed subscription back.
    async fn release_webhook(&self, webhook: WebhookId, worker: &str) -> Result<()>;
}

#[async_trait]
impl<E: Engine> WebhookStore for E {
    async fn create_webhook(
        &self,
        partner: PartnerId,
        subscription: &Subscription,
        secret: &str,
        now: i64,
    ) -> Result<WebhookId> {
        let (settings, secret) = (queries::Settings::of(subscription), secret.to_owned());
        self.write(work!(db => async move {
            queries::create(db, partner, &settings, &secret, now).await
        }))
        .await
    }

    async fn list_webhooks(&self, partner: PartnerId) -> Result<Vec<Webhook>> {
        self.read(work!(db => queries::list(db, partner))).await
    }

    async fn get_webhook(&self, partner: PartnerId, webhook: WebhookId) -> Result<Option<Webhook>> {
        self.read(work!(db => queries::get(db, partner, webhook)))
            .await
    }

    async fn replace_webhook(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        subscription: &Subscription,
        now: i64,
    ) -> Result<bool> {
        let settings = queries::Settings::of(subscription);
        self.write(work!(db => async move {
            queries::replace(db, partner, webhook, &settings, now).await
        }))
        .await
    }

    async fn enable_webhook(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        now: i64,
    ) -> Result<bool> {
        self.write(work!(db => queries::enable(db, partner, webhook, now)))
            .await
    }

    async fn delete_webhook(&self, partner: PartnerId, webhook: WebhookId) -> Result<bool> {
        self.write(work!(db => queries::delete(db, partner, webhook)))
            .await
    }

    async fn rotate_secret(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        secret: &str,
        overlap_until: i64,
        now: i64,
    ) -> Result<bool> {
        let secret = secret.to_owned();
        self.write(work!(db => async move {
            queries::rotate_secret(db, partner, webhook, &secret, overlap_until, now).await
        }))
        .await
    }

    async fn signing_secrets(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        now: i64,
    ) -> Result<Option<Vec<String>>> {
        self.read(work!(db => queries::signing_secrets(db, partner, webhook, now)))
            .await
    }

    async fn delivery_log(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Option<Vec<LoggedAttempt>>> {
        self.read(work!(db => queries::delivery_log(db, partner, webhook, before, limit)))
            .await
    }

    async fn redeliver(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        event: EventId,
        now: i64,
    ) -> Result<Redelivery> {
        self.write(work!(db => dispatch::redeliver(db, partner, webhook, event, now)))
            .await
    }

    async fn recover(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        since: i64,
        limit: usize,
        now: i64,
    ) -> Result<Option<u64>> {
        self.write(work!(db => dispatch::recover(db, partner, webhook, since, limit, now)))
            .await
    }

    async fn claim_webhooks(
        &self,
        worker: &str,
        rules: DispatchRules,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Claimed>> {
        let worker = worker.to_owned();
        self.write(work!(db => async move {
            dispatch::claim(db, &worker, rules, limit, now).await
        }))
        .await
    }

    async fn due_deliveries(
        &self,
        partner: PartnerId,
        webhook: WebhookId,
        limit: usize,
        now: i64,
    ) -> Result<DueBatch> {
        self.read(work!(db => dispatch::due(db, partner, webhook, limit, now)))
            .await
    }

    async fn record_attempts(
        &self,
        webhook: WebhookId,
        worker: &str,
        position: u64,
        results: Vec<AttemptResult>,
        rules: DispatchRules,
        now: i64,
    ) -> Result<bool> {
        let worker = worker.to_owned();
        self.write(work!(db => async move {
            dispatch::record(db, webhook, &worker, position, &results, rules, now).await
        }))
        .await
    }

    async fn release_webhook(&self, webhook: WebhookId, worker: &str) -> Result<()> {
        let worker = worker.to_owned();
        self.write(work!(db => async move { dispatch::release(db, webhook, &worker).await }))
            .await
    }
}
