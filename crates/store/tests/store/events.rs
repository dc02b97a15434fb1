//! The outbox and the feed: which changes record which events, once, in order.

use gridroll_domain::enrollment::PreferenceChange;
use gridroll_domain::enums::{CreatedBy, ParticipationPreference};
use gridroll_domain::job::JobStatus;
use gridroll_domain::webhook::{EventType, SubscriptionRequest};
use gridroll_domain::{MeterData, MeterId};
use gridroll_store::{EditError, EventTypes, FeedPage, StoreOptions, StoredEvent};
use gridroll_testkit::Backend;
use serde_json::{Value, json};

use crate::{
    Fixture, NOW, asset, assets_of, committed, committed_meters, process, set_participation,
};

/// The partner's whole feed, oldest first.
pub async fn feed(f: &Fixture) -> Vec<StoredEvent> {
    let page = f
        .stores
        .events
        .feed(f.partner, 0, EventTypes::NONE, 10_000)
        .await
        .unwrap();
    assert!(!page.more);
    page.events
}

/// The partner's `job.completed` events after `after`, up to ten.
async fn jobs_completed_after(f: &Fixture, after: u64) -> FeedPage {
    let completed = EventTypes::NONE.with(EventType::JobCompleted);
    f.stores
        .events
        .feed(f.partner, after, completed, 10)
        .await
        .unwrap()
}

fn types(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

fn payload(event: &StoredEvent) -> Value {
    serde_json::from_str(&event.payload).unwrap()
}

/// A New York office with what the Con Edison programs ask for: PENDING in them.
fn office(reference: &str) -> MeterData {
    let mut a = asset(reference);
    a["transmission_region"] = json!("NYISO");
    a["customer_classification"] = json!("COMMERCIAL");
    a["utility"] = json!({"utility_name": "CECONY", "electric_service_account_number": "CE-1"});
    a["nyiso"] = json!({"cbl_method": "AVERAGE_DAY"});
    MeterData::parse(a).unwrap()
}

async fn a_processed_job_records_each_created_meter_and_then_its_end_in_order(backend: Backend) {
    let f = Fixture::new(backend).await;
    let job = committed(&f, &["ref-a", "ref-b", "ref-a", "ref-c"], false).await;
    assert_eq!(process(&f, job, 2).await, JobStatus::CompletedWithErrors);
    let events = feed(&f).await;
    assert_eq!(
        types(&events),
        [
            "meter.created",
            "meter.created",
            "meter.created",
            "job.completed"
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "numbered in commit order");
    let meters = assets_of(&f, job).await;
    let created: Vec<Value> = events[..3].iter().map(payload).collect();
    for (event, asset) in created.iter().zip([&meters[0], &meters[1], &meters[3]]) {
        assert_eq!(event["webhook_event_type"], "meter.created");
        assert_eq!(event["meter_id"], json!(asset.meter_id.unwrap()));
        assert_eq!(event["transmission_region"], "CAISO");
        assert_eq!(event["meter_type"], "DEVICE");
    }
    let end = payload(&events[3]);
    assert_eq!(end["job_id"], json!(job));
    assert_eq!(end["status"], "COMPLETED_WITH_ERRORS");
    assert_eq!(
        (end["created_count"].clone(), end["failed_count"].clone()),
        (json!(3), json!(1))
    );
}

async fn events_nobody_wants_are_not_recorded(backend: Backend) {
    let options = StoreOptions {
        event_feed: EventTypes::NONE,
        ..StoreOptions::default()
    };
    let f = Fixture::with(backend, options).await;
    let job = committed(&f, &["ref-a"], false).await;
    process(&f, job, 10).await;
    assert!(feed(&f).await.is_empty(), "no subscription, no feed");

    let wants = SubscriptionRequest::parse(
        "https://receiver.example/hook",
        &["job.completed".to_owned()],
        &[],
        false,
    )
    .unwrap();
    f.stores
        .webhooks
        .create_webhook(f.partner, &wants, "whsec_test", NOW)
        .await
        .unwrap();
    let job = committed(&f, &["ref-b"], false).await;
    process(&f, job, 10).await;
    assert_eq!(types(&feed(&f).await), ["job.completed"]);
}

async fn a_replace_with_other_data_is_an_update_and_the_same_data_is_no_event(backend: Backend) {
    let f = Fixture::new(backend).await;
    let job = committed(&f, &["ref-a"], false).await;
    process(&f, job, 10).await;
    let before = feed(&f).await.len();

    let same = committed(&f, &["ref-a"], true).await;
    process(&f, same, 10).await;
    assert_eq!(
        types(&feed(&f).await[before..]),
        ["job.completed"],
        "the same data changes nothing"
    );

    let mut moved = asset("ref-a");
    moved["customer"]["city"] = json!("Oakland");
    let job = committed_meters(&f, vec![MeterData::parse(moved).unwrap()], true).await;
    process(&f, job, 10).await;
    let events = feed(&f).await;
    assert_eq!(
        types(&events[before + 1..]),
        ["meter.updated", "job.completed"]
    );
}

async fn activation_and_participation_record_the_changes_they_make_and_no_others(backend: Backend) {
    let f = Fixture::new(backend).await;
    let ids = f
        .stores
        .meters
        .import_meters(f.partner, CreatedBy::Partner, vec![office("office-1")], NOW)
        .await
        .unwrap();
    assert_eq!(types(&feed(&f).await), ["meter.created"]);
    let catalog = &f.stores.catalog;
    let activated = catalog
        .activate_enrollments(f.partner, "CONED-CSRP", None, NOW)
        .await
        .unwrap();
    assert_eq!(activated, 1);
    let events = feed(&f).await;
    assert_eq!(
        types(&events[1..]),
        ["meter.enrollment.global-status.updated"]
    );
    assert_eq!(payload(&events[1])["global_enrollment_status"], "ACTIVE");
    assert_eq!(payload(&events[1])["meter_id"], json!(ids[0]));

    // Activating again changes nothing, and records nothing.
    catalog
        .activate_enrollments(f.partner, "CONED-CSRP", None, NOW)
        .await
        .unwrap();
    assert_eq!(feed(&f).await.len(), 2);

    let change = PreferenceChange {
        preference: ParticipationPreference::Disenroll,
        start: NOW - 1,
        end: None,
        reason: None,
    };
    set_participation(&f, &ids, &change).await.unwrap();
    let events = feed(&f).await;
    assert_eq!(
        types(&events[2..]),
        [
            "meter.enrollment.participation-status.updated",
            "meter.enrollment.global-status.updated",
            "meter.enrollment.required-actions.updated"
        ]
    );
    assert_eq!(payload(&events[2])["participation_preference"], "DISENROLL");
    assert_eq!(
        payload(&events[3])["global_enrollment_status"],
        "NOT_PARTICIPATING"
    );
    // A meter out of every program has nothing left to do for any.
    assert_eq!(
        payload(&events[4])["required_actions"]["partner"],
        json!([])
    );
    // A refused change (a meter that is not the partner's) records nothing.
    let refused = set_participation(&f, &[ids[0], MeterId::new()], &change).await;
    assert!(matches!(refused, Err(EditError::NotFound(_))));
    assert_eq!(feed(&f).await.len(), 5);
}

async fn the_feed_pages_in_order_and_filters_by_type(backend: Backend) {
    let f = Fixture::new(backend).await;
    for references in [&["a-1", "a-2"][..], &["b-1"], &["c-1", "c-2", "c-3"]] {
        let job = committed(&f, references, false).await;
        process(&f, job, 10).await;
    }
    let events = &f.stores.events;
    let all = feed(&f).await;
    assert_eq!(all.len(), 9);
    let mut after = 0;
    let mut paged = Vec::new();
    loop {
        let page = events
            .feed(f.partner, after, EventTypes::NONE, 4)
            .await
            .unwrap();
        paged.extend(page.events);
        after = page.position;
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, all, "every event once, in order");
    let ends = jobs_completed_after(&f, 0).await;
    assert_eq!(types(&ends.events), ["job.completed"; 3]);
    assert_eq!(ends.position, 9);
    let other = f
        .stores
        .accounts
        .create_partner("Other", NOW)
        .await
        .unwrap();
    let theirs = events
        .feed(other.id, 0, EventTypes::NONE, 10)
        .await
        .unwrap();
    assert!(theirs.events.is_empty(), "a partner reads only its own");
}

async fn a_chunks_events_are_one_row_and_read_back_one_by_one_with_ids_of_their_own(
    backend: Backend,
) {
    let f = Fixture::new(backend).await;
    let references = ["r-1", "r-2", "r-3", "r-4", "r-5"];
    let job = committed(&f, &references, false).await;
    process(&f, job, 10).await;
    assert_eq!(
        f.db.count("SELECT count(*) FROM events").await,
        2,
        "the five meters' events are one run, the job's end another"
    );
    let all = feed(&f).await;
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let mut ids: Vec<_> = all.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "each event has an id of its own");
    assert_eq!(feed(&f).await, all, "and the same each time it is read");
    let meters = assets_of(&f, job).await;
    for (event, asset) in all.iter().zip(&meters) {
        assert_eq!(payload(event)["meter_id"], json!(asset.meter_id.unwrap()));
    }

    let events = &f.stores.events;
    let inside = events
        .feed(f.partner, 2, EventTypes::NONE, 2)
        .await
        .unwrap();
    assert_eq!(
        inside.events,
        all[2..4],
        "a page starts and ends inside the run"
    );
    assert_eq!((inside.position, inside.more), (4, true));
    let end = jobs_completed_after(&f, 2).await;
    assert_eq!(end.events, all[5..]);
}

async fn events_past_retention_are_removed_in_batches_and_numbers_go_on(backend: Backend) {
    let f = Fixture::new(backend).await;
    let job = committed(&f, &["a-1", "a-2"], false).await;
    process(&f, job, 10).await;
    let events = &f.stores.events;
    assert_eq!(
        events.remove_expired(NOW).await.unwrap(),
        0,
        "none is older"
    );
    assert_eq!(events.remove_expired(NOW + 1).await.unwrap(), 3);
    assert_eq!(events.remove_expired(NOW + 1).await.unwrap(), 0);
    let job = committed(&f, &["b-1"], false).await;
    process(&f, job, 10).await;
    let left = feed(&f).await;
    let seqs: Vec<u64> = left.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [4, 5], "a number is never given twice");
}

gridroll_testkit::backend_tests!(
    a_processed_job_records_each_created_meter_and_then_its_end_in_order,
    events_nobody_wants_are_not_recorded,
    a_replace_with_other_data_is_an_update_and_the_same_data_is_no_event,
    activation_and_participation_record_the_changes_they_make_and_no_others,
    the_feed_pages_in_order_and_filters_by_type,
    a_chunks_events_are_one_row_and_read_back_one_by_one_with_ids_of_their_own,
    events_past_retention_are_removed_in_batches_and_numbers_go_on,
);
