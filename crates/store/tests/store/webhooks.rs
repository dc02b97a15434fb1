//! Subscriptions and their deliveries, as partners and dispatchers use them.

use gridroll_domain::webhook::{Subscription, SubscriptionRequest};
use gridroll_domain::{EventId, WebhookId};
use gridroll_store::{AttemptResult, DispatchRules, Due, Redelivery, StoreError};
use gridroll_testkit::Backend;

use crate::{Fixture, NOW, committed, process};

const RULES: DispatchRules = DispatchRules {
    lease: 60_000,
    disable_after: 5 * 86_400_000,
};

fn subscription(url: &str, types: &[&str]) -> Subscription {
    let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
    let headers = [("x-api-key".to_owned(), "k".to_owned())];
    SubscriptionRequest::parse(url, &types, &headers, false).unwrap()
}

async fn subscribed(f: &Fixture, types: &[&str]) -> WebhookId {
    f.stores
        .webhooks
        .create_webhook(
            f.partner,
            &subscription("https://receiver.example/hook", types),
            "whsec_one",
            NOW,
        )
        .await
        .unwrap()
}

/// A subscription to `meter.created`, the meters of `references` created, and the
/// subscription claimed by dispatcher "a".
async fn claimed_after(f: &Fixture, references: &[&str]) -> WebhookId {
    let id = subscribed(f, &["meter.created"]).await;
    let job = committed(f, references, false).await;
    process(f, job, 10).await;
    let claimed = f
        .stores
        .webhooks
        .claim_webhooks("a", RULES, 10, NOW)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    id
}

/// How an attempt at `due` went: `retry_at` after a failure, success without.
fn attempted(due: &Due, succeeded: bool, retry_at: Option<i64>, at: i64) -> AttemptResult {
    AttemptResult {
        event_seq: due.event.seq,
        event_id: due.event.id,
        event_type: due.event.event_type.clone(),
        attempt: due.attempt,
        attempted_at: at,
        status_code: Some(if succeeded { 200 } else { 500 }),
        latency_ms: 3,
        response: "ok".to_owned(),
        error: None,
        succeeded,
        retry_at,
    }
}

async fn subscriptions_are_the_partners_own_and_a_replace_overwrites_them(backend: Backend) {
    let f = Fixture::new(backend).await;
    let hooks = &f.stores.webhooks;
    let id = subscribed(&f, &["meter.created"]).await;
    let listed = hooks.list_webhooks(f.partner).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].receiver_url, "https://receiver.example/hook");
    assert_eq!(
        listed[0].headers,
        [("x-api-key".to_owned(), "k".to_owned())]
    );

    let other = f
        .stores
        .accounts
        .create_partner("Other", NOW)
        .await
        .unwrap()
        .id;
    let theirs = subscription("https://other.example/", &["job.completed"]);
    assert_eq!(hooks.get_webhook(other, id).await.unwrap(), None);
    assert!(
        !hooks
            .replace_webhook(other, id, &theirs, NOW)
            .await
            .unwrap()
    );
    assert!(!hooks.delete_webhook(other, id).await.unwrap());
    assert!(
        hooks
            .signing_secrets(other, id, NOW)
            .await
            .unwrap()
            .is_none()
    );

    let replaced = subscription("https://new.example/in", &["job.completed"]);
    assert!(
        hooks
            .replace_webhook(f.partner, id, &replaced, NOW + 1)
            .await
            .unwrap()
    );
    let now = hooks.get_webhook(f.partner, id).await.unwrap().unwrap();
    assert_eq!(now.receiver_url, "https://new.example/in");
    assert_eq!(now.event_types.len(), 1);
    assert_eq!(now.updated_at, NOW + 1);
    assert!(hooks.delete_webhook(f.partner, id).await.unwrap());
    assert!(hooks.list_webhooks(f.partner).await.unwrap().is_empty());
}

async fn a_claimed_subscription_sends_each_new_event_once_and_retries_a_failure(backend: Backend) {
    let f = Fixture::new(backend).await;
    let hooks = &f.stores.webhooks;
    let id = subscribed(&f, &["meter.created"]).await;
    let job = committed(&f, &["ref-a", "ref-b"], false).await;
    process(&f, job, 10).await;

    let claimed = hooks.claim_webhooks("a", RULES, 10, NOW).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].secrets, ["whsec_one"]);
    assert!(
        hooks
            .claim_webhooks("b", RULES, 10, NOW)
            .await
            .unwrap()
            .is_empty(),
        "another dispatcher passes over a claimed subscription"
    );
    let batch = hooks.due_deliveries(f.partner, id, 10, NOW).await.unwrap();
    assert_eq!(batch.due.len(), 2, "the job's end is not subscribed to");
    assert_eq!(batch.position, 3);
    let results = vec![
        attempted(&batch.due[0], true, None, NOW),
        attempted(&batch.due[1], false, Some(NOW + 60_000), NOW),
    ];
    assert!(
        hooks
            .record_attempts(id, "a", batch.position, results, RULES, NOW)
            .await
            .unwrap()
    );
    assert!(
        hooks
            .due_deliveries(f.partner, id, 10, NOW)
            .await
            .unwrap()
            .due
            .is_empty()
    );

    let later = NOW + 60_000;
    let retry = hooks
        .due_deliveries(f.partner, id, 10, later)
        .await
        .unwrap();
    assert_eq!(retry.due.len(), 1);
    assert_eq!((retry.due[0].event.seq, retry.due[0].attempt), (2, 2));
    let results = vec![attempted(&retry.due[0], true, None, later)];
    hooks
        .record_attempts(id, "a", retry.position, results, RULES, later)
        .await
        .unwrap();
    hooks.release_webhook(id, "a").await.unwrap();
    assert!(
        hooks
            .claim_webhooks("b", RULES, 10, later)
            .await
            .unwrap()
            .is_empty(),
        "nothing is left to send"
    );

    let log = hooks
        .delivery_log(f.partner, id, None, 10)
        .await
        .unwrap()
        .unwrap();
    let attempts: Vec<(u64, u32, bool)> = log
        .iter()
        .map(|a| (a.attempted_at as u64, a.attempt, a.succeeded))
        .collect();
    assert_eq!(
        attempts,
        [
            (later as u64, 2, true),
            (NOW as u64, 1, false),
            (NOW as u64, 1, true)
        ]
    );
    assert_eq!(
        log[0].delivery.as_ref().map(|d| d.0.as_str()),
        Some("SUCCEEDED")
    );
    let page = hooks
        .delivery_log(f.partner, id, Some(log[0].id), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.len(), 2, "a page starts after the token");
}

async fn a_dispatcher_that_lost_its_lease_records_nothing(backend: Backend) {
    let f = Fixture::new(backend).await;
    let hooks = &f.stores.webhooks;
    let id = claimed_after(&f, &["ref-a"]).await;
    let batch = hooks.due_deliveries(f.partner, id, 10, NOW).await.unwrap();
    let late = NOW + RULES.lease + 1;
    assert_eq!(
        hooks
            .claim_webhooks("b", RULES, 10, late)
            .await
            .unwrap()
            .len(),
        1
    );
    let results = vec![attempted(&batch.due[0], true, None, late)];
    let lost = hooks
        .record_attempts(id, "a", batch.position, results, RULES, late)
        .await;
    assert!(matches!(lost, Err(StoreError::LeaseLost)));
    let log = hooks
        .delivery_log(f.partner, id, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(log.is_empty());
}

async fn a_subscription_failing_too_long_is_disabled_and_enabling_it_takes_up_new_events(
    backend: Backend,
) {
    let f = Fixture::new(backend).await;
    let hooks = &f.stores.webhooks;
    let id = claimed_after(&f, &["ref-a", "ref-b"]).await;
    let batch = hooks.due_deliveries(f.partner, id, 1, NOW).await.unwrap();
    let failed = vec![attempted(&batch.due[0], false, Some(NOW + 1), NOW)];
    assert!(
        hooks
            .record_attempts(id, "a", batch.position, failed, RULES, NOW)
            .await
            .unwrap()
    );
    let failing = hooks.get_webhook(f.partner, id).await.unwrap().unwrap();
    assert_eq!(failing.failing_since, Some(NOW));

    let much_later = NOW + RULES.disable_after;
    let batch = hooks
        .due_deliveries(f.partner, id, 1, much_later)
        .await
        .unwrap();
    let failed = vec![attempted(
        &batch.due[0],
        false,
        Some(much_later + 1),
        much_later,
    )];
    let enabled = hooks
        .record_attempts(id, "a", batch.position, failed, RULES, much_later)
        .await
        .unwrap();
    assert!(!enabled);
    let disabled = hooks.get_webhook(f.partner, id).await.unwrap().unwrap();
    assert_eq!(disabled.disabled_at, Some(much_later));
    assert!(
        hooks
            .claim_webhooks("b", RULES, 10, much_later + 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(
        hooks
            .enable_webhook(f.partner, id, much_later)
            .await
            .unwrap()
    );
    let job = committed(&f, &["ref-c"], false).await;
    process(&f, job, 10).await;
    assert_eq!(
        hooks
            .claim_webhooks("b", RULES, 10, much_later + 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let batch = hooks
        .due_deliveries(f.partner, id, 10, much_later + 10)
        .await
        .unwrap();
    let seqs: Vec<(u64, u32)> = batch.due.iter().map(|d| (d.event.seq, d.attempt)).collect();
    // The scheduled retry, then the event after enabling: those made while it was
    // disabled (ref-b's) are in the feed.
    assert_eq!(seqs, [(1, 3), (4, 1)]);
}

async fn a_delivered_event_is_sent_again_on_request_and_failed_ones_are_recovered(
    backend: Backend,
) {
    let f = Fixture::new(backend).await;
    let hooks = &f.stores.webhooks;
    let id = claimed_after(&f, &["ref-a", "ref-b"]).await;
    let batch = hooks.due_deliveries(f.partner, id, 10, NOW).await.unwrap();
    let results = vec![
        attempted(&batch.due[0], true, None, NOW),
        attempted(&batch.due[1], false, None, NOW),
    ];
    hooks
        .record_attempts(id, "a", batch.position, results, RULES, NOW)
        .await
        .unwrap();
    let (first, second) = (batch.due[0].event.id, batch.due[1].event.id);
    assert_eq!(
        hooks
            .redeliver(f.partner, id, EventId::new(), NOW)
            .await
            .unwrap(),
        Redelivery::NoSuchEvent
    );
    assert_eq!(
        hooks
            .redeliver(f.partner, WebhookId::new(), first, NOW)
            .await
            .unwrap(),
        Redelivery::NoSuchWebhook
    );
    assert_eq!(
        hooks.redeliver(f.partner, id, first, NOW).await.unwrap(),
        Redelivery::Queued
    );
    assert_eq!(
        hooks
            .recover(f.partner, id, NOW + 1, 100, NOW)
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        hooks.recover(f.partner, id, NOW, 100, NOW).await.unwrap(),
        Some(1)
    );
    let due = hooks.due_deliveries(f.partner, id, 10, NOW).await.unwrap();
    let again: Vec<(gridroll_domain::EventId, u32)> =
        due.due.iter().map(|d| (d.event.id, d.attempt)).collect();
    assert_eq!(again, [(first, 2), (second, 2)]);
}

async fn a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(backend: Backend) {
    let f = Fixture::new(backend).await;
    let hooks = &f.stores.webhooks;
    let id = subscribed(&f, &["meter.created"]).await;
    assert!(
        hooks
            .rotate_secret(f.partner, id, "whsec_two", NOW + 1000, NOW)
            .await
            .unwrap()
    );
    let during = hooks
        .signing_secrets(f.partner, id, NOW + 999)
        .await
        .unwrap();
    assert_eq!(during.unwrap(), ["whsec_two", "whsec_one"]);
    let after = hooks
        .signing_secrets(f.partner, id, NOW + 1000)
        .await
        .unwrap();
    assert_eq!(after.unwrap(), ["whsec_two"]);
}

async fn a_subscription_to_a_rare_type_reads_past_the_others_a_window_at_a_time(backend: Backend) {
    let f = Fixture::new(backend).await;
    let hooks = &f.stores.webhooks;
    let id = subscribed(&f, &["job.completed"]).await;
    let common = subscribed(&f, &["meter.created"]).await;
    // 1,200 meter.created, then the job's end: more than one read scans.
    let references: Vec<String> = (0..1200).map(|n| format!("ref-{n}")).collect();
    let references: Vec<&str> = references.iter().map(String::as_str).collect();
    let job = committed(&f, &references, false).await;
    process(&f, job, 3000).await;
    hooks.claim_webhooks("a", RULES, 10, NOW).await.unwrap();

    let first = hooks.due_deliveries(f.partner, id, 64, NOW).await.unwrap();
    assert!(first.due.is_empty(), "nothing wanted in the first 1,000");
    assert_eq!(first.position, 1000, "it read 1,000 events, no more");
    hooks
        .record_attempts(id, "a", first.position, Vec::new(), RULES, NOW)
        .await
        .unwrap();
    let second = hooks.due_deliveries(f.partner, id, 64, NOW).await.unwrap();
    assert_eq!(second.due.len(), 1);
    assert_eq!(second.due[0].event.event_type, "job.completed");
    assert_eq!(second.position, 1201, "the job's end, after its meters");

    // A subscription to the common type reads just what a round takes.
    let batch = hooks
        .due_deliveries(f.partner, common, 64, NOW)
        .await
        .unwrap();
    assert_eq!(batch.due.len(), 64);
    assert_eq!(batch.position, 64);
}

gridroll_testkit::backend_tests!(
    a_subscription_to_a_rare_type_reads_past_the_others_a_window_at_a_time,
    subscriptions_are_the_partners_own_and_a_replace_overwrites_them,
    a_claimed_subscription_sends_each_new_event_once_and_retries_a_failure,
    a_dispatcher_that_lost_its_lease_records_nothing,
    a_subscription_failing_too_long_is_disabled_and_enabling_it_takes_up_new_events,
    a_delivered_event_is_sent_again_on_request_and_failed_ones_are_recovered,
    a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends,
);
