//! Webhook subscriptions of the partner: make one (its signing secret shown once), change,
//! test, rotate, enable or delete it, and read its delivery log with a button to send an
//! event again. Only admins manage webhooks, as they do keys. Every action is the API's own
//! use case in [`crate::webhooks::service`]; its [`WebhookError`] is rendered here as a page.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gridroll_domain::webhook::{EventType, Secret, SubscriptionProblem, SubscriptionRequest};
use gridroll_domain::{EventId, MeterId, PartnerId, WebhookId};
use gridroll_store::{LoggedAttempt, Webhook};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::layout::{self, Section, badge, when};
use super::session::{CsrfForm, PortalForm, SignedIn};
use super::{PortalError, PortalResult};
use crate::AppState;
use crate::webhooks::client::Attempt;
use crate::webhooks::service::{self, WebhookError};

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

fn list_page(
    who: &SignedIn,
    webhooks: &[Webhook],
    created: Option<&service::Created>,
    typed: &SubscriptionRequest,
    problems: &[SubscriptionProblem],
) -> Markup {
    layout::page(
        "Webhooks",
        who,
        Section::Webhooks,
        html! {
            h1 { "Webhooks" }
            p {
                "Gridroll sends events (a meter created, an enrollment changed, a job finished) "
                "to your receiver as signed HTTPS requests, in the Standard Webhooks form. "
                "Your receiver checks each signature with the subscription's secret."
            }
            @if let Some(created) = created {
                section.created role="status" aria-labelledby="new-secret" {
                    h2 id="new-secret" { "The signing secret of your new subscription" }
                    p { strong { "Copy it now: it is shown only once." } " You can rotate it later on the subscription's page." }
                    p { code.secret data-secret { (created.secret.expose_secret()) } }
                    p { a href={ "/portal/webhooks/" (created.id) } { "Open the subscription" } }
                }
            }
            section aria-labelledby="existing" {
                h2 id="existing" { "Subscriptions" }
                (subscriptions_table(webhooks))
            }
            section aria-labelledby="create" {
                h2 id="create" { "Subscribe a receiver" }
                (problems_alert(problems))
                form.stack method="post" action="/portal/webhooks" {
                    (who.csrf_field())
                    (subscription_fields(typed))
                    button type="submit" { "Create subscription" }
                }
            }
        },
    )
}

fn subscriptions_table(webhooks: &[Webhook]) -> Markup {
    html! {
        @if webhooks.is_empty() {
            p { "No subscriptions yet." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Receiver" }
                        th scope="col" { "Events" }
                        th scope="col" { "Status" }
                        th scope="col" { "Created" }
                    } }
                    tbody {
                        @for webhook in webhooks {
                            tr {
                                td { a href={ "/portal/webhooks/" (webhook.id) } { (webhook.receiver_url) } }
                                td { (event_list(&webhook.event_types)) }
                                td { (status(webhook)) }
                                td { (when(webhook.created_at)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn event_list(types: &[EventType]) -> Markup {
    html! {
        @for (i, event) in types.iter().enumerate() {
            @if i > 0 { ", " }
            code { (event.as_str()) }
        }
    }
}

/// ENABLED or DISABLED, and since when deliveries fail, if they do.
fn status(webhook: &Webhook) -> Markup {
    html! {
        @if let Some(disabled) = webhook.disabled_at {
            (badge("DISABLED")) " since " (when(disabled))
        } @else {
            (badge("ENABLED"))
        }
        @if let Some(since) = webhook.failing_since {
            br;
            span.hint { "failing since " (when(since)) }
        }
    }
}

/// Each refused field with what is wrong with it.
fn problems_alert(problems: &[SubscriptionProblem]) -> Markup {
    html! {
        @if !problems.is_empty() {
            div.alert role="alert" {
                p { strong { "The subscription was not saved:" } }
                ul {
                    @for problem in problems {
                        li { code { (problem.field()) } ": " (problem.message()) }
                    }
                }
            }
        }
    }
}

/// The fields of a subscription, filled with `typed`: for a new one, or to change one.
fn subscription_fields(typed: &SubscriptionRequest) -> Markup {
    // Every type Gridroll sends, then whatever else the subscription names (Leap's types,
    // accepted but never sent), so that saving the form does not drop them unseen.
    let mut offered: Vec<String> = EventType::ALL
        .into_iter()
        .filter(|event| event.is_emitted())
        .map(|event| event.as_str().to_owned())
        .collect();
    for name in &typed.event_types {
        if !offered.contains(name) {
            offered.push(name.clone());
        }
    }
    let rows = typed.headers.len().max(HEADER_ROWS);
    html! {
        label for="receiver_url" { "Receiver URL" }
        input id="receiver_url" name="receiver_url" type="text" inputmode="url" autocomplete="off"
            required placeholder="https://example.com/gridroll-events" value=(typed.receiver_url);
        fieldset {
            legend { "Events to send" }
            @for (i, name) in offered.iter().enumerate() {
                div.check {
                    input type="checkbox" id={ "event-" (i) } name="event_type" value=(name)
                        checked[typed.event_types.contains(name)];
                    label for={ "event-" (i) } {
                        code { (name) }
                        @if name.parse::<EventType>().is_ok_and(|e| !e.is_emitted()) {
                            " (never sent by Gridroll)"
                        }
                    }
                }
            }
        }
        fieldset {
            legend { "Headers (optional)" }
            p.hint { "Sent with every delivery, for example a key your receiver expects." }
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } } }
                tbody {
                    @for row in 0..rows {
                        @let (name, value) = typed.headers.get(row).cloned().unwrap_or_default();
                        tr {
                            td { input type="text" name={ "header_name_" (row) } value=(name) autocomplete="off" aria-label={ "Header " (row + 1) " name" }; }
                            td { input type="text" name={ "header_value_" (row) } value=(value) autocomplete="off" aria-label={ "Header " (row + 1) " value" }; }
                        }
                    }
                }
            }
        }
    }
}

/// What a subscription's page says above its settings, after an action.
enum Notice {
    None,
    Done(Done),
    Secret(Secret),
    Test(Attempt),
}

/// An action that redirected back to the subscription's page, named in its query.
#[derive(Clone, Copy)]
enum Done {
    Saved,
    Enabled,
    Redelivered,
}

impl Done {
    fn as_str(self) -> &'static str {
        match self {
            Self::Saved => "saved",
            Self::Enabled => "enabled",
            Self::Redelivered => "redelivered",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [Self::Saved, Self::Enabled, Self::Redelivered]
            .into_iter()
            .find(|done| done.as_str() == raw)
    }

    fn message(self) -> &'static str {
        match self {
            Self::Saved => "Saved. The subscription is enabled, so deliveries go out again.",
            Self::Enabled => "Enabled. Deliveries go out again, starting with those held back.",
            Self::Redelivered => {
                "The event will be sent again shortly; the attempt appears in the log once made."
            }
        }
    }
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

/// A duration in the largest whole unit: `24 hours`, `90 minutes`.
fn words(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (n, unit) = if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

fn notice_box(notice: &Notice, overlap: &str) -> Markup {
    html! {
        @match notice {
            Notice::None => {}
            Notice::Done(done) => p.created role="status" { (done.message()) }
            Notice::Secret(secret) => section.created role="status" aria-labelledby="new-secret" {
                h2 id="new-secret" { "The new signing secret" }
                p { strong { "Copy it now: it is shown only once." } " The old secret keeps signing beside it for " (overlap) ", while your receiver changes over." }
                p { code.secret data-secret { (secret.expose_secret()) } }
            },
            Notice::Test(attempt) => (test_result(attempt)),
        }
    }
}

fn test_result(attempt: &Attempt) -> Markup {
    let took = attempt.is_success();
    html! {
        section class=(if took { "created" } else { "alert" }) role="status" aria-labelledby="test-result" data-test-result=(if took { "succeeded" } else { "failed" }) {
            h2 id="test-result" {
                @if took { "The test event succeeded" } @else { "The test event failed" }
            }
            p {
                @if let Some(code) = attempt.status {
                    "The receiver answered " strong { (code) } " in " (attempt.latency_ms) " ms."
                } @else {
                    "The receiver did not answer."
                }
            }
            @if let Some(error) = &attempt.error { p { "Error: " (error) } }
        }
    }
}

fn actions(who: &SignedIn, webhook: &Webhook, base: &str, overlap: &str) -> Markup {
    html! {
        section aria-labelledby="actions" {
            h2 id="actions" { "Actions" }
            ul.actions {
                li {
                    form method="post" action={ (base) "/test" } {
                        (who.csrf_field())
                        button type="submit" { "Send test event" }
                        " " span.hint { "A signed " code { "meter.created" } " event with a made-up meter; nothing is recorded." }
                    }
                }
                li {
                    form method="post" action={ (base) "/rotate-secret" } {
                        (who.csrf_field())
                        button type="submit" { "Rotate secret" }
                        " " span.hint { "The old secret keeps signing for " (overlap) "." }
                    }
                }
                @if webhook.disabled_at.is_some() {
                    li {
                        form method="post" action={ (base) "/enable" } {
                            (who.csrf_field())
                            button type="submit" { "Enable" }
                            " " span.hint { "Deliveries stopped because they kept failing." }
                        }
                    }
                }
                li {
                    form method="post" action={ (base) "/delete" } data-confirm={ "Delete the subscription to " (webhook.receiver_url) "? No more events are sent to it." } {
                        (who.csrf_field())
                        button.danger type="submit" { "Delete" }
                    }
                }
            }
        }
    }
}

fn log_table(who: &SignedIn, base: &str, log: &[LoggedAttempt]) -> Markup {
    // Newest first: an event's first row is its latest attempt, the only one that can
    // still be waiting for a retry.
    let mut seen = HashSet::new();
    html! {
        @if log.is_empty() {
            p { "No deliveries yet." }
        } @else {
            p.hint { "The last " (LOG_LIMIT) " attempts, newest first." }
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Time" }
                        th scope="col" { "Event" }
                        th scope="col" class="num" { "Attempt" }
                        th scope="col" { "Status" }
                        th scope="col" class="num" { "Code" }
                        th scope="col" class="num" { "Time taken" }
                        th scope="col" { "Error or answer" }
                        th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for attempt in log {
                            @let latest = seen.insert(attempt.event_id);
                            tr {
                                td { (when(attempt.attempted_at)) }
                                td { code { (attempt.event_type) } }
                                td.num { (attempt.attempt) }
                                td { (attempt_status(attempt, latest)) }
                                td.num { (attempt.status_code.map_or_else(|| "—".to_owned(), |c| c.to_string())) }
                                td.num { (attempt.latency_ms) " ms" }
                                td { (answer(attempt)) }
                                td {
                                    form method="post" action={ (base) "/events/" (attempt.event_id) "/redeliver" } {
                                        (who.csrf_field())
                                        button type="submit" aria-label={ "Redeliver the " (attempt.event_type) " event of " (when(attempt.attempted_at)) } { "Redeliver" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn attempt_status(attempt: &LoggedAttempt, latest: bool) -> Markup {
    let retry = match &attempt.delivery {
        Some((status, next)) if latest && status == "PENDING" => Some(*next),
        _ => None,
    };
    html! {
        @if attempt.succeeded {
            (badge("SUCCEEDED"))
        } @else if let Some(next) = retry {
            (badge("RETRYING"))
            @if let Some(next) = next { " at " (when(next)) }
        } @else {
            (badge("FAILED"))
        }
    }
}

/// The error, or else the start of what the receiver answered.
fn answer(attempt: &LoggedAttempt) -> String {
    if let Some(error) = &attempt.error {
        return error.clone();
    }
    let mut start: String = attempt.response.chars().take(ANSWER_CHARS).collect();
    if start.len() < attempt.response.len() {
        start.push('…');
    }
    start
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
