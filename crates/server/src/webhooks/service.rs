//! What a partner does with its subscriptions, written once below the API and the
//! portal: each use case answers its own [`WebhookError`], which the API renders as JSON
//! and the portal as a page.

use gridroll_domain::webhook::{
    EventType, ReceiverUrl, Secret, Subscription, SubscriptionProblem, SubscriptionRequest,
    is_public,
};
use gridroll_domain::{EventId, PartnerId, WebhookId};
use gridroll_store::{Redelivery, StoreError, Webhook};
use serde_json::Value;

use super::client::{Attempt, Delivery};
use super::dispatch::signed;
use crate::AppState;

/// Why a use case of a subscription did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the partner has no webhook {0}")]
    NotFound(WebhookId),
    #[error("the webhook subscription is not valid")]
    Invalid(Vec<SubscriptionProblem>),
    #[error("the test event is not valid: {0}")]
    InvalidTest(String),
    #[error("the subscription never had event {0} to deliver, or it is past retention")]
    NoSuchEvent(EventId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A subscription just made, with the secret shown this once.
pub struct Created {
    pub id: WebhookId,
    pub secret: Secret,
}

/// A new signing secret: 32 random bytes.
pub fn new_secret() -> Secret {
    Secret::from_key_bytes(&rand::random::<[u8; 32]>())
}

/// The request as a subscription, its receiver resolved to a public address (unless the
/// operator allows private ones). Each delivery checks the address again.
async fn parse(
    state: &AppState,
    request: &SubscriptionRequest,
) -> Result<Subscription, WebhookError> {
    let allow_private = state.config.webhooks.allow_private;
    let subscription = request
        .to_subscription(allow_private)
        .map_err(WebhookError::Invalid)?;
    if !allow_private && let Some(problem) = unreachable(subscription.receiver_url()).await {
        return Err(WebhookError::Invalid(vec![problem]));
    }
    Ok(subscription)
}

/// How long resolving a receiver's name may take when a subscription is saved.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a receiver cannot be delivered to: its name does not resolve, or only to private
/// or reserved addresses.
async fn unreachable(url: &ReceiverUrl) -> Option<SubscriptionProblem> {
    if url.ip_literal().is_some() {
        // Checked by the parse already.
        return None;
    }
    let host = url.host().to_owned();
    let problem =
        |message: String| Some(SubscriptionProblem::new("receiver_url".to_owned(), message));
    let lookup = tokio::net::lookup_host((host.as_str(), url.port_or_default()));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addresses)) => {
            let addresses: Vec<_> = addresses.collect();
            if addresses.iter().any(|a| is_public(a.ip())) {
                None
            } else {
                problem(format!(
                    "{host} resolves only to private or reserved addresses"
                ))
            }
        }
        Ok(Err(_)) | Err(_) => problem(format!("{host} does not resolve to an address")),
    }
}

pub async fn create(
    state: &AppState,
    partner: PartnerId,
    request: &SubscriptionRequest,
) -> Result<Created, WebhookError> {
    let subscription = parse(state, request).await?;
    let secret = new_secret();
    let id = state
        .webhooks
        .create_webhook(
            partner,
            &subscription,
            secret.expose_secret(),
            state.now_millis(),
        )
        .await?;
    Ok(Created { id, secret })
}

pub async fn get(
    state: &AppState,
    partner: PartnerId,
    id: WebhookId,
) -> Result<Webhook, WebhookError> {
    state
        .webhooks
        .get_webhook(partner, id)
        .await?
        .ok_or(WebhookError::NotFound(id))
}

/// Overwrites every setting of a subscription, and enables it again.
pub async fn replace(
    state: &AppState,
    partner: PartnerId,
    id: WebhookId,
    request: &SubscriptionRequest,
) -> Result<(), WebhookError> {
    let subscription = parse(state, request).await?;
    let now = state.now_millis();
    found(
        id,
        state
            .webhooks
            .replace_webhook(partner, id, &subscription, now)
            .await?,
    )
}

pub async fn enable(
    state: &AppState,
    partner: PartnerId,
    id: WebhookId,
) -> Result<(), WebhookError> {
    let now = state.now_millis();
    found(id, state.webhooks.enable_webhook(partner, id, now).await?)
}

pub async fn delete(
    state: &AppState,
    partner: PartnerId,
    id: WebhookId,
) -> Result<(), WebhookError> {
    found(id, state.webhooks.delete_webhook(partner, id).await?)
}

/// A new secret; the one it replaces keeps signing beside it for the configured overlap.
pub async fn rotate(
    state: &AppState,
    partner: PartnerId,
    id: WebhookId,
) -> Result<Secret, WebhookError> {
    let secret = new_secret();
    let now = state.now_millis();
    let overlap =
        i64::try_from(state.config.webhooks.secret_overlap.as_millis()).unwrap_or(i64::MAX);
    let rotated = state
        .webhooks
        .rotate_secret(
            partner,
            id,
            secret.expose_secret(),
            now.saturating_add(overlap),
            now,
        )
        .await?;
    found(id, rotated).map(|()| secret)
}

/// Sends a test event to the subscription's receiver, signed as a delivery is, and
/// answers how the receiver took it. Nothing is recorded.
pub async fn test(
    state: &AppState,
    partner: PartnerId,
    id: WebhookId,
    payload: &Value,
) -> Result<Attempt, WebhookError> {
    let named = payload
        .get("webhook_event_type")
        .and_then(Value::as_str)
        .ok_or_else(|| WebhookError::InvalidTest("webhook_event_type is required".to_owned()))?;
    named.parse::<EventType>().map_err(|_| {
        WebhookError::InvalidTest(format!(
            "webhook_event_type: {named:?} is not an event type"
        ))
    })?;
    let webhook = get(state, partner, id).await?;
    let now = state.now_millis();
    let secrets = state
        .webhooks
        .signing_secrets(partner, id, now)
        .await?
        .ok_or(WebhookError::NotFound(id))?;
    let secrets: Vec<Secret> = secrets
        .iter()
        .filter_map(|s| Secret::parse(s).ok())
        .collect();
    let request = signed(
        &secrets,
        &EventId::new().to_string(),
        &payload.to_string(),
        &webhook.headers,
        now,
    );
    Ok(state
        .webhook_client
        .send(Delivery {
            url: &webhook.receiver_url,
            headers: &request.headers,
            body: request.body,
        })
        .await)
}

/// Sends an event the subscription had again, at once.
pub async fn redeliver(
    state: &AppState,
    partner: PartnerId,
    id: WebhookId,
    event: EventId,
) -> Result<(), WebhookError> {
    match state
        .webhooks
        .redeliver(partner, id, event, state.now_millis())
        .await?
    {
        Redelivery::Queued => Ok(()),
        Redelivery::NoSuchWebhook => Err(WebhookError::NotFound(id)),
        Redelivery::NoSuchEvent => Err(WebhookError::NoSuchEvent(event)),
    }
}

/// The most failed deliveries one request sends again.
pub const RECOVER_LIMIT: usize = 10_000;

/// Sends again every delivery that ended failed at or after `since`, up to
/// [`RECOVER_LIMIT`]: answers how many, and whether more may be left.
pub async fn recover(
    state: &AppState,
    partner: PartnerId,
    id: WebhookId,
    since: i64,
) -> Result<(u64, bool), WebhookError> {
    let queued = state
        .webhooks
        .recover(partner, id, since, RECOVER_LIMIT, state.now_millis())
        .await?
        .ok_or(WebhookError::NotFound(id))?;
    Ok((queued, queued >= RECOVER_LIMIT as u64))
}

fn found(id: WebhookId, found: bool) -> Result<(), WebhookError> {
    if found {
        Ok(())
    } else {
        Err(WebhookError::NotFound(id))
    }
}
