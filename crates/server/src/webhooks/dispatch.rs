//! The dispatcher: inside every `gridroll serve`, it claims subscriptions with something
//! to send (a lease in the store keeps two processes off the same one), sends each due
//! event signed, a few at a time per subscription, and records every attempt with when
//! to try again. A slow receiver holds only its own subscription's place. Tests drive it
//! with [`Dispatcher::drain`] and a test clock: no real waiting for backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use gridroll_domain::timestamp::{Clock, to_millis};
use gridroll_domain::webhook::{
    self, Secret, jittered, next_delay, parse_retry_after, signature_header,
};
use gridroll_store::{
    AttemptResult, Claimed, DispatchRules, Due, EventStore, IdempotencyStore, StoreError,
    WebhookStore,
};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::client::{Delivery, WebhookClient};
use crate::AppState;
use crate::config::WebhookConfig;
use crate::worker::Activity;

/// Events read and sent per round of one subscription.
const BATCH: usize = 64;
/// Rounds one claim of a subscription serves before it is given back, so that a
/// subscription with a long backlog shares the dispatcher with the others.
const ROUNDS: usize = 16;
/// The longest rest between two rounds while an import runs: a round that waited long
/// on its receiver used little of the machine, and its subscription should not wait
/// much longer still.
const MAX_REST: Duration = Duration::from_secs(1);

/// Sends webhook deliveries.
#[derive(Clone)]
pub struct Dispatcher {
    webhooks: Arc<dyn WebhookStore>,
    client: Arc<WebhookClient>,
    clock: Arc<dyn Clock>,
    config: WebhookConfig,
    name: String,
    /// Chunks this process's workers are writing: while any is, the dispatcher rests
    /// between rounds.
    activity: Arc<Activity>,
    /// Milliseconds rested so far, for tests and `/metrics`.
    rested_ms: Arc<AtomicU64>,
}

impl Dispatcher {
    pub fn new(state: &AppState) -> Self {
        Self {
            webhooks: state.webhooks.clone(),
            client: state.webhook_client.clone(),
            clock: state.clock.clone(),
            config: state.config.webhooks.clone(),
            name: format!(
                "dispatcher-{}-{}",
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            ),
            activity: state.activity.clone(),
            rested_ms: Arc::default(),
        }
    }

    /// How long this dispatcher has rested, giving way to imports.
    pub fn rested(&self) -> Duration {
        Duration::from_millis(self.rested_ms.load(Ordering::Relaxed))
    }

    /// After a round that took `round`, rests while this process writes a job's chunks,
    /// so that sending takes at most its configured share of the time and an import
    /// keeps the machine; the deliveries catch up when it ends.
    async fn give_way(&self, round: Duration) {
        if !self.activity.busy() {
            return;
        }
        let rest = rest_after(round, self.config.import_share);
        if rest.is_zero() {
            return;
        }
        tokio::time::sleep(rest).await;
        let ms = u64::try_from(rest.as_millis()).unwrap_or(u64::MAX);
        self.rested_ms.fetch_add(ms, Ordering::Relaxed);
        crate::telemetry::dispatcher_rested(rest);
    }

    fn now(&self) -> i64 {
        to_millis(self.clock.now())
    }

    fn rules(&self) -> DispatchRules {
        // Longer than a round can take (its attempts in waves of `concurrency`, each up
        // to the timeout), so a live dispatcher never loses a lease it renews each round.
        let waves = BATCH.div_ceil(self.config.concurrency.max(1)) as u32 + 1;
        let lease = self.config.timeout * waves + Duration::from_secs(60);
        DispatchRules {
            lease: millis(lease),
            disable_after: millis(self.config.disable_after),
        }
    }

    /// Claims the subscriptions with something to send and serves each: answers how many
    /// attempts were made.
    pub async fn step(&self) -> Result<usize, StoreError> {
        let claimed = self
            .webhooks
            .claim_webhooks(
                &self.name,
                self.rules(),
                self.config.subscriptions,
                self.now(),
            )
            .await?;
        let mut sent = 0;
        for subscription in claimed {
            sent += self.serve(subscription).await?;
        }
        Ok(sent)
    }

    /// Steps until nothing is due at the clock's time.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            match self.step().await? {
                0 => return Ok(total),
                sent => total += sent,
            }
        }
    }

    /// Serves subscriptions until stopped, each in a task of its own.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut serving: JoinSet<()> = JoinSet::new();
        loop {
            if *stop.borrow() {
                break;
            }
            let room = self.config.subscriptions.saturating_sub(serving.len());
            if room > 0 {
                match self
                    .webhooks
                    .claim_webhooks(&self.name, self.rules(), room, self.now())
                    .await
                {
                    Ok(claimed) => {
                        for subscription in claimed {
                            let this = self.clone();
                            serving.spawn(async move {
                                let id = subscription.webhook.id;
                                if let Err(e) = this.serve(subscription).await {
                                    tracing::warn!(webhook = %id, error = %e, "delivering webhooks failed; trying again later");
                                }
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim webhook subscriptions");
                    }
                }
            }
            tokio::select! {
                Some(_) = serving.join_next(), if !serving.is_empty() => {}
                () = tokio::time::sleep(self.config.idle_poll) => {}
                _ = stop.changed() => {}
            }
        }
        // Attempts in flight are given up: their subscriptions' leases lapse, and the
        // events are sent again (receivers tell them apart by `webhook-id`).
        serving.shutdown().await;
    }

    /// Sends what is due to one claimed subscription, round after round, then gives it
    /// back. Answers how many attempts were made.
    async fn serve(&self, claimed: Claimed) -> Result<usize, StoreError> {
        let id = claimed.webhook.id;
        let (mut sent, mut position) = (0, None);
        let secrets: Vec<Secret> = claimed
            .secrets
            .iter()
            .filter_map(|s| Secret::parse(s).ok())
            .collect();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let now = self.now();
            let batch = self
                .webhooks
                .due_deliveries(claimed.partner, id, BATCH, now)
                .await?;
            // Nothing due, and no event read past: the subscription is up to date.
            if batch.due.is_empty() && position == Some(batch.position) {
                break;
            }
            position = Some(batch.position);
            // Made before they are streamed: a closure inside the stream would keep the
            // future from being `Send` for every lifetime a spawned task needs.
            let attempts: Vec<_> = batch
                .due
                .iter()
                .map(|due| self.attempt(&claimed, &secrets, due))
                .collect();
            let results: Vec<AttemptResult> = futures_util::stream::iter(attempts)
                .buffer_unordered(self.config.concurrency.max(1))
                .collect()
                .await;
            sent += results.len();
            let enabled = self
                .webhooks
                .record_attempts(id, &self.name, batch.position, results, self.rules(), now)
                .await?;
            if !enabled {
                tracing::warn!(webhook = %id, "disabled a webhook subscription whose deliveries kept failing");
                return Ok(sent);
            }
            self.give_way(started.elapsed()).await;
        }
        self.webhooks.release_webhook(id, &self.name).await?;
        Ok(sent)
    }

    /// One attempt at one event.
    async fn attempt(&self, claimed: &Claimed, secrets: &[Secret], due: &Due) -> AttemptResult {
        let now = self.now();
        let event = &due.event;
        let request = signed(
            secrets,
            &event.id.to_string(),
            &event.payload,
            &claimed.webhook.headers,
            now,
        );
        let answer = self
            .client
            .send(Delivery {
                url: &claimed.webhook.receiver_url,
                headers: &request.headers,
                body: request.body,
            })
            .await;
        let succeeded = answer.is_success();
        crate::telemetry::delivery_attempted(succeeded, answer.latency_ms);
        let retry_at = if succeeded {
            None
        } else {
            self.retry_at(due.attempt, answer.retry_after.as_deref(), now)
        };
        AttemptResult {
            event_seq: event.seq,
            event_id: event.id,
            event_type: event.event_type.clone(),
            attempt: due.attempt,
            attempted_at: now,
            status_code: answer.status,
            latency_ms: answer.latency_ms,
            response: answer.response_excerpt,
            error: answer.error,
            succeeded,
            retry_at,
        }
    }

    /// When to try again after the failed attempt `attempt`, on the schedule with some
    /// jitter, later if the receiver asked (`Retry-After`, up to the schedule's longest
    /// delay); `None` when the schedule has no attempt left.
    fn retry_at(&self, attempt: u32, retry_after: Option<&str>, now: i64) -> Option<i64> {
        let schedule = &self.config.retry;
        let delay = schedule.delay_before(attempt + 1)?;
        let delay = jittered(delay, rand::random::<f64>());
        let cap = schedule.delays().iter().max().copied().unwrap_or_default();
        let asked = retry_after.and_then(|v| parse_retry_after(v, now.div_euclid(1000)));
        Some(now + millis(next_delay(delay, asked, cap)))
    }
}

/// A delivery's body and headers, signed.
pub struct Signed {
    pub body: Bytes,
    pub headers: Vec<(String, String)>,
}

/// The request of one delivery: Leap's envelope (`webhook_event_id` and `payload`), the
/// Standard Webhooks headers signed with every secret in use, then the subscription's
/// own headers.
pub fn signed(
    secrets: &[Secret],
    event_id: &str,
    payload: &str,
    custom: &[(String, String)],
    now: i64,
) -> Signed {
    // The payload is stored as JSON text and goes out as it is.
    let body = format!(r#"{{"webhook_event_id":"{event_id}","payload":{payload}}}"#);
    let timestamp = now.div_euclid(1000);
    let refs: Vec<&Secret> = secrets.iter().collect();
    let signature = signature_header(&refs, event_id, timestamp, body.as_bytes());
    let mut headers = vec![
        (webhook::HEADER_ID.to_owned(), event_id.to_owned()),
        (webhook::HEADER_TIMESTAMP.to_owned(), timestamp.to_string()),
        (webhook::HEADER_SIGNATURE.to_owned(), signature),
    ];
    headers.extend(custom.iter().cloned());
    Signed {
        body: Bytes::from(body),
        headers,
    }
}

/// The rest after a round that took `round`, so that rounds take `share_percent` of the
/// time: a quarter leaves three times the round; never more than [`MAX_REST`].
fn rest_after(round: Duration, share_percent: u8) -> Duration {
    let share = u32::from(share_percent.clamp(1, 100));
    (round * (100 - share) / share).min(MAX_REST)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Idempotency keys removed per statement.
const KEY_BATCH: usize = 1000;

/// How often events past their retention are looked for.
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// Removes events, attempts and deliveries past their retention, and idempotency keys
/// past theirs, a small batch at a time, every minute.
pub struct Retention {
    events: Arc<dyn EventStore>,
    idempotency: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
    retention: Duration,
}

impl Retention {
    pub fn new(state: &AppState) -> Self {
        Self {
            events: state.events.clone(),
            idempotency: state.idempotency.clone(),
            clock: state.clock.clone(),
            retention: state.config.webhooks.event_retention,
        }
    }

    /// Removes everything past retention at the clock's time; answers how many rows.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let now = to_millis(self.clock.now());
        let before = now - millis(self.retention);
        let mut total = 0;
        loop {
            match self.events.remove_expired(before).await? {
                0 => break,
                removed => total += removed,
            }
            // Writers get the database between batches.
            tokio::task::yield_now().await;
        }
        let keys_before = now - millis(crate::idempotency::TTL);
        loop {
            match self
                .idempotency
                .remove_expired_keys(keys_before, KEY_BATCH)
                .await?
            {
                0 => return Ok(total),
                removed => total += removed,
            }
            tokio::task::yield_now().await;
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(RETENTION_INTERVAL) => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "could not remove expired events; trying again later");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_share_rests_three_times_the_round() {
        assert_eq!(
            rest_after(Duration::from_millis(20), 25),
            Duration::from_millis(60)
        );
        assert_eq!(
            rest_after(Duration::from_millis(20), 50),
            Duration::from_millis(20)
        );
    }

    #[test]
    fn the_whole_share_never_rests() {
        assert_eq!(rest_after(Duration::from_secs(3), 100), Duration::ZERO);
    }

    #[test]
    fn a_long_round_rests_at_most_a_second() {
        assert_eq!(rest_after(Duration::from_secs(16), 25), MAX_REST);
        assert_eq!(rest_after(Duration::from_millis(400), 1), MAX_REST);
    }
}
