//! The markup of the webhook pages: what they show, without fetching or changing anything.

use std::collections::HashSet;
use std::time::Duration;

use gridroll_domain::webhook::{EventType, Secret, SubscriptionProblem, SubscriptionRequest};
use gridroll_store::{LoggedAttempt, Webhook};
use maud::{Markup, html};

use super::{ANSWER_CHARS, HEADER_ROWS, LOG_LIMIT};
use crate::portal::layout::{self, Section, badge, when};
use crate::portal::session::SignedIn;
use crate::webhooks::client::Attempt;
use crate::webhooks::service;

pub(super) fn list_page(
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

pub(super) fn event_list(types: &[EventType]) -> Markup {
    html! {
        @for (i, event) in types.iter().enumerate() {
            @if i > 0 { ", " }
            code { (event.as_str()) }
        }
    }
}

/// ENABLED or DISABLED, and since when deliveries fail, if they do.
pub(super) fn status(webhook: &Webhook) -> Markup {
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
pub(super) fn problems_alert(problems: &[SubscriptionProblem]) -> Markup {
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
pub(super) fn subscription_fields(typed: &SubscriptionRequest) -> Markup {
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
pub(super) enum Notice {
    None,
    Done(Done),
    Secret(Secret),
    Test(Attempt),
}

/// An action that redirected back to the subscription's page, named in its query.
#[derive(Clone, Copy)]
pub(super) enum Done {
    Saved,
    Enabled,
    Redelivered,
}

impl Done {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Saved => "saved",
            Self::Enabled => "enabled",
            Self::Redelivered => "redelivered",
        }
    }

    pub(super) fn parse(raw: &str) -> Option<Self> {
        [Self::Saved, Self::Enabled, Self::Redelivered]
            .into_iter()
            .find(|done| done.as_str() == raw)
    }

    pub(super) fn message(self) -> &'static str {
        match self {
            Self::Saved => "Saved. The subscription is enabled, so deliveries go out again.",
            Self::Enabled => "Enabled. Deliveries go out again, starting with those held back.",
            Self::Redelivered => {
                "The event will be sent again shortly; the attempt appears in the log once made."
            }
        }
    }
}

/// A duration in the largest whole unit: `24 hours`, `90 minutes`.
pub(super) fn words(duration: Duration) -> String {
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

pub(super) fn notice_box(notice: &Notice, overlap: &str) -> Markup {
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

pub(super) fn actions(who: &SignedIn, webhook: &Webhook, base: &str, overlap: &str) -> Markup {
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

pub(super) fn log_table(who: &SignedIn, base: &str, log: &[LoggedAttempt]) -> Markup {
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
