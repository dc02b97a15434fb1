//! Webhook subscriptions of the partner: make one (its signing secret shown once), change,
//! test, rotate, enable or delete it, and read its delivery log with a button to send an
//! event again. Only admins manage webhooks, as they do keys. Every action is the API's own
//! use case in [`crate::webhooks::service`]; its [`WebhookError`] is rendered here as a page.

mod views;

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gridroll_domain::webhook::{EventType, SubscriptionProblem, SubscriptionRequest};
use gridroll_domain::{EventId, MeterId, PartnerId, WebhookId};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::layout::{self, Section, when};
use super::session::{CsrfForm, PortalForm, SignedIn};
use super::{PortalError, PortalResult};
use crate::AppState;
use crate::webhooks::service::{self, WebhookError};
use views::{
    Done, Notice, actions, event_list, list_page, log_table, notice_box, problems_alert, status,
    subscription_fields, words,
};

/// Header rows of an empty form: most receivers want one key, a few two or three.
const HEADER_ROWS: usize = 3;
/// Attempts the delivery log shows.
const LOG_LIMIT: usize = 50;
/// Characters of a receiver's answer shown in the log.
const ANSWER_CHARS: usize = 80;

impl From<WebhookError> for PortalError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::NotFound(_) => not_found(),
            WebhookError::NoSuchEvent(_) => no_such_event(),
            WebhookError::Invalid(problems) => PortalError::bad_request(
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field(), p.message()))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            WebhookError::InvalidTest(error) => PortalError::bad_request(error),
            WebhookError::Store(error) => error.into(),
        }
    }
}

fn not_found() -> PortalError {
    PortalError::not_found("There is no such webhook subscription.")
}

fn no_such_event() -> PortalError {
    PortalError::not_found(
        "The subscription never had this event to deliver, or it is past retention.",
    )
}

/// A webhook id from the path; a malformed one is as unknown as a foreign one.
fn webhook_id(raw: &str) -> PortalResult<WebhookId> {
    raw.parse().map_err(|_| not_found())
}

/// The subscription form as sent: its token and the request it spells out. Fields repeat
/// (`event_type`) and are numbered (`header_name_0`), which a struct cannot take.
struct SubscriptionForm {
    csrf: String,
    request: SubscriptionRequest,
}

impl From<Vec<(String, String)>> for SubscriptionForm {
    fn from(pairs: Vec<(String, String)>) -> Self {
        let mut csrf = String::new();
        let mut request = SubscriptionRequest::default();
        let mut headers: BTreeMap<usize, (String, String)> = BTreeMap::new();
        for (name, value) in pairs {
            let header = |prefix: &str| name.strip_prefix(prefix)?.parse::<usize>().ok();
            if let Some(row) = header("header_name_") {
                headers.entry(row).or_default().0 = value.trim().to_owned();
            } else if let Some(row) = header("header_value_") {
                headers.entry(row).or_default().1 = value.trim().to_owned();
            } else {
                match name.as_str() {
                    "csrf" => csrf = value,
                    "receiver_url" => request.receiver_url = value.trim().to_owned(),
                    "event_type" => request.event_types.push(value),
                    _ => {}
                }
            }
        }
        // Rows left blank are not headers; the rest keep their order, so a problem's
        // `headers[i]` is the i-th row of the form shown again.
        request.headers = headers
            .into_values()
            .filter(|(name, value)| !name.is_empty() || !value.is_empty())
            .collect();
        Self { csrf, request }
    }
}

/// `GET /portal/webhooks`
pub async fn list(State(state): State<AppState>, who: SignedIn) -> PortalResult<Markup> {
    who.require_admin()?;
    let webhooks = state.webhooks.list_webhooks(who.user.partner).await?;
    Ok(list_page(
        &who,
        &webhooks,
        None,
        &SubscriptionRequest::default(),
        &[],
    ))
}

/// `POST /portal/webhooks`
pub async fn create(
    State(state): State<AppState>,
    who: SignedIn,
    PortalForm(pairs): PortalForm<Vec<(String, String)>>,
) -> PortalResult<Response> {
    let form = SubscriptionForm::from(pairs);
    who.check_csrf(&form.csrf)?;
    who.require_admin()?;
    let partner = who.user.partner;
    match service::create(&state, partner, &form.request).await {
        Ok(created) => {
            tracing::info!(user = %who.user.id, webhook = %created.id, "a webhook was created in the portal");
            let webhooks = state.webhooks.list_webhooks(partner).await?;
            let empty = SubscriptionRequest::default();
            let page = list_page(&who, &webhooks, Some(&created), &empty, &[]);
            Ok(secret_response(page))
        }
        Err(WebhookError::Invalid(problems)) => {
            let webhooks = state.webhooks.list_webhooks(partner).await?;
            let page = list_page(&who, &webhooks, None, &form.request, &problems);
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(other) => Err(other.into()),
    }
}

/// A page that shows a secret: it must not linger in caches or history.
fn secret_response(page: Markup) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        page,
    )
        .into_response()
}

/// The page of a subscription, back from `action`.
fn back_to(id: WebhookId, done: Done) -> Response {
    Redirect::to(&format!("/portal/webhooks/{id}?done={}", done.as_str())).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    done: String,
}

/// `GET /portal/webhooks/{webhook_id}`
pub async fn show(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    Query(params): Query<ShowQuery>,
) -> PortalResult<Markup> {
    who.require_admin()?;
    let id = webhook_id(&raw)?;
    let notice = Done::parse(&params.done).map_or(Notice::None, Notice::Done);
    subscription_page(&state, &who, id, &notice, None).await
}

/// The subscription's page; `typed` is a refused change, to show again with its problems.
async fn subscription_page(
    state: &AppState,
    who: &SignedIn,
    id: WebhookId,
    notice: &Notice,
    typed: Option<(&SubscriptionRequest, &[SubscriptionProblem])>,
) -> PortalResult<Markup> {
    let partner = who.user.partner;
    let webhook = service::get(state, partner, id).await?;
    let log = state
        .webhooks
        .delivery_log(partner, id, None, LOG_LIMIT)
        .await?
        .ok_or(WebhookError::NotFound(id))?;
    let saved = SubscriptionRequest {
        receiver_url: webhook.receiver_url.clone(),
        event_types: webhook
            .event_types
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect(),
        headers: webhook.headers.clone(),
    };
    let (shown, problems) = typed.unwrap_or((&saved, &[]));
    let overlap = words(state.config.webhooks.secret_overlap);
    let base = format!("/portal/webhooks/{id}");
    Ok(layout::page(
        "Webhook subscription",
        who,
        Section::Webhooks,
        html! {
            p.crumbs { a href="/portal/webhooks" { "Webhooks" } " / " }
            h1 { "Webhook subscription" }
            (notice_box(notice, &overlap))
            dl.facts {
                dt { "Receiver" } dd { code { (webhook.receiver_url) } }
                dt { "Status" } dd { (status(&webhook)) }
                dt { "Events" } dd { (event_list(&webhook.event_types)) }
                dt { "Created" } dd { (when(webhook.created_at)) }
                dt { "Changed" } dd { (when(webhook.updated_at)) }
                dt { "Subscription id" } dd { code { (webhook.id) } }
            }
            (actions(who, &webhook, &base, &overlap))
            section aria-labelledby="settings" {
                h2 id="settings" { "Settings" }
                (problems_alert(problems))
                // Folded away unless a change was refused: the log below is what is read most.
                details open[!problems.is_empty()] {
                    summary { "Change the receiver, events or headers" }
                    form.stack method="post" action=(base) {
                        (who.csrf_field())
                        (subscription_fields(shown))
                        p.hint { "Saving replaces every setting and enables the subscription again." }
                        button type="submit" { "Save and enable" }
                    }
                }
            }
            section aria-labelledby="log" {
                h2 id="log" { "Delivery log" }
                (log_table(who, &base, &log))
            }
        },
    ))
}

/// `POST /portal/webhooks/{webhook_id}`: replaces every setting, and enables it again.
pub async fn replace(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    PortalForm(pairs): PortalForm<Vec<(String, String)>>,
) -> PortalResult<Response> {
    let form = SubscriptionForm::from(pairs);
    who.check_csrf(&form.csrf)?;
    who.require_admin()?;
    let id = webhook_id(&raw)?;
    match service::replace(&state, who.user.partner, id, &form.request).await {
        Ok(()) => {
            tracing::info!(user = %who.user.id, webhook = %id, "a webhook was changed in the portal");
            Ok(back_to(id, Done::Saved))
        }
        Err(WebhookError::Invalid(problems)) => {
            let typed = Some((&form.request, problems.as_slice()));
            let page = subscription_page(&state, &who, id, &Notice::None, typed).await?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(other) => Err(other.into()),
    }
}

/// Checks an action's form and answers the partner and the subscription it acts on.
fn acting(who: &SignedIn, form: &CsrfForm, raw: &str) -> PortalResult<(PartnerId, WebhookId)> {
    who.check_csrf(&form.csrf)?;
    who.require_admin()?;
    Ok((who.user.partner, webhook_id(raw)?))
}

/// `POST /portal/webhooks/{webhook_id}/test`
pub async fn test(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    PortalForm(form): PortalForm<CsrfForm>,
) -> PortalResult<Markup> {
    let (partner, id) = acting(&who, &form, &raw)?;
    let payload = json!({
        "webhook_event_type": EventType::MeterCreated.as_str(),
        "meter_id": MeterId::new().to_string(),
        "partner_reference": "portal-test",
    });
    let attempt = service::test(&state, partner, id, &payload).await?;
    subscription_page(&state, &who, id, &Notice::Test(attempt), None).await
}

/// `POST /portal/webhooks/{webhook_id}/rotate-secret`
pub async fn rotate_secret(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    PortalForm(form): PortalForm<CsrfForm>,
) -> PortalResult<Response> {
    let (partner, id) = acting(&who, &form, &raw)?;
    let secret = service::rotate(&state, partner, id).await?;
    tracing::info!(user = %who.user.id, webhook = %id, "a webhook secret was rotated in the portal");
    let page = subscription_page(&state, &who, id, &Notice::Secret(secret), None).await?;
    Ok(secret_response(page))
}

/// `POST /portal/webhooks/{webhook_id}/enable`
pub async fn enable(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    PortalForm(form): PortalForm<CsrfForm>,
) -> PortalResult<Response> {
    let (partner, id) = acting(&who, &form, &raw)?;
    service::enable(&state, partner, id).await?;
    Ok(back_to(id, Done::Enabled))
}

/// `POST /portal/webhooks/{webhook_id}/delete`
pub async fn delete(
    State(state): State<AppState>,
    who: SignedIn,
    Path(raw): Path<String>,
    PortalForm(form): PortalForm<CsrfForm>,
) -> PortalResult<Response> {
    let (partner, id) = acting(&who, &form, &raw)?;
    service::delete(&state, partner, id).await?;
    tracing::info!(user = %who.user.id, webhook = %id, "a webhook was deleted in the portal");
    Ok(Redirect::to("/portal/webhooks").into_response())
}

/// `POST /portal/webhooks/{webhook_id}/events/{event_id}/redeliver`
pub async fn redeliver(
    State(state): State<AppState>,
    who: SignedIn,
    Path((raw, raw_event)): Path<(String, String)>,
    PortalForm(form): PortalForm<CsrfForm>,
) -> PortalResult<Response> {
    let (partner, id) = acting(&who, &form, &raw)?;
    let event: EventId = raw_event.parse().map_err(|_| no_such_event())?;
    service::redeliver(&state, partner, id, event).await?;
    Ok(back_to(id, Done::Redelivered))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_form_keeps_repeated_event_types_and_drops_blank_header_rows() {
        let form = SubscriptionForm::from(pairs(&[
            ("csrf", "token"),
            ("receiver_url", " https://r.example/in "),
            ("event_type", "meter.created"),
            ("event_type", "job.completed"),
            ("header_name_0", ""),
            ("header_value_0", ""),
            ("header_name_1", "x-api-key"),
            ("header_value_1", "k"),
            ("header_name_2", ""),
            ("header_value_2", "orphan"),
        ]));
        assert_eq!(form.csrf, "token");
        assert_eq!(form.request.receiver_url, "https://r.example/in");
        assert_eq!(form.request.event_types, ["meter.created", "job.completed"]);
        assert_eq!(
            form.request.headers,
            [
                ("x-api-key".to_owned(), "k".to_owned()),
                (String::new(), "orphan".to_owned())
            ]
        );
    }

    #[test]
    fn durations_read_in_their_largest_whole_unit() {
        assert_eq!(words(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(words(Duration::from_secs(3600)), "1 hour");
        assert_eq!(words(Duration::from_secs(5400)), "90 minutes");
        assert_eq!(words(Duration::from_secs(45)), "45 seconds");
    }
}
