//! Receiving uploads, the queue, and processing jobs.

use gridroll_domain::JobId;
use gridroll_domain::job::{AssetStatus, JobStatus};
use gridroll_store::{MeterFilter, NewAsset, StoreError};
use gridroll_testkit::Backend;

use crate::{Fixture, LEASE, NOW, committed, meter, new_job};

async fn an_upload_is_invisible_until_committed_and_leaves_nothing_when_discarded(
    backend: Backend,
) {
    let f = Fixture::new(backend).await;
    let jobs = &f.stores.jobs;
    let id = JobId::new();
    jobs.begin_job(f.partner, &new_job(id), NOW).await.unwrap();
    jobs.append_assets(id, vec![NewAsset::new(0, &meter("r-1"))], NOW)
        .await
        .unwrap();
    assert!(jobs.get_job(f.partner, id).await.unwrap().is_none());
    jobs.discard_job(id).await.unwrap();
    let append = jobs
        .append_assets(id, vec![NewAsset::new(1, &meter("r-2"))], NOW)
        .await;
    assert!(matches!(append, Err(StoreError::Corrupt(_))));
    assert!(
        jobs.provisional_asset(f.partner, id, 0)
            .await
            .unwrap()
            .is_none()
    );

    let id = committed(&f, &["r-1", "r-2"], false).await;
    let job = jobs.get_job(f.partner, id).await.unwrap().unwrap();
    assert_eq!((job.status, job.assets_count), (JobStatus::Processing, 2));
    let assets = jobs.job_assets(f.partner, id, 0, 10).await.unwrap();
    assert!(assets.iter().all(|a| a.status == AssetStatus::Processing));
}

async fn a_claimed_job_is_processed_in_chunks_at_the_callers_time(backend: Backend) {
    let f = Fixture::new(backend).await;
    let jobs = &f.stores.jobs;
    let id = committed(&f, &["ref-a", "ref-b", "ref-c", "ref-d", "ref-e"], false).await;
    assert_eq!(jobs.claim_job("w", LEASE, NOW).await.unwrap(), Some(id));
    assert_eq!(
        jobs.claim_job("x", LEASE, NOW).await.unwrap(),
        None,
        "the lease holds"
    );
    let stolen = jobs.process_chunk(id, "x", 2, LEASE, false, NOW).await;
    assert!(matches!(stolen, Err(StoreError::LeaseLost)));
    let at = NOW + 5_000;
    let mut statuses = Vec::new();
    loop {
        let report = jobs
            .process_chunk(id, "w", 2, LEASE, false, at)
            .await
            .unwrap();
        statuses.push((report.processed, report.status));
        if report.status != JobStatus::Processing {
            break;
        }
    }
    assert_eq!(
        statuses,
        [
            (2, JobStatus::Processing),
            (2, JobStatus::Processing),
            (1, JobStatus::Completed)
        ]
    );
    let meters = f
        .stores
        .meters
        .search_meters(f.partner, &MeterFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(meters.len(), 5);
    assert!(
        meters.iter().all(|m| m.created_at == at),
        "the time is the caller's"
    );
    // A lapsed lease of a finished job is nobody's work.
    assert_eq!(jobs.claim_job("x", LEASE, at + 60_000).await.unwrap(), None);
}

async fn abandoned_uploads_are_removed_once_their_receiving_lease_lapses(backend: Backend) {
    let f = Fixture::new(backend).await;
    let jobs = &f.stores.jobs;
    let id = JobId::new();
    jobs.begin_job(f.partner, &new_job(id), NOW).await.unwrap();
    assert_eq!(
        jobs.remove_abandoned_uploads(NOW + 60_000).await.unwrap(),
        0
    );
    assert_eq!(
        jobs.remove_abandoned_uploads(NOW + 11 * 60_000)
            .await
            .unwrap(),
        1
    );
    let append = jobs
        .append_assets(id, vec![NewAsset::new(0, &meter("ref"))], NOW)
        .await;
    assert!(append.is_err());
}

async fn a_failing_job_is_held_back_then_given_up_with_its_rest_failed(backend: Backend) {
    let f = Fixture::new(backend).await;
    let jobs = &f.stores.jobs;
    let id = committed(&f, &["ref-a", "ref-b", "ref-c"], false).await;
    jobs.claim_job("w", LEASE, NOW).await.unwrap();
    jobs.process_chunk(id, "w", 1, LEASE, false, NOW)
        .await
        .unwrap();
    assert_eq!(
        jobs.note_chunk_failure(id, "w", "boom", NOW).await.unwrap(),
        1
    );
    // Held for the first retry delay (a second), then free.
    assert_eq!(jobs.claim_job("x", LEASE, NOW + 999).await.unwrap(), None);
    assert_eq!(
        jobs.claim_job("x", LEASE, NOW + 1_001).await.unwrap(),
        Some(id)
    );
    let status = jobs.give_up_job(id, "x", "given up", NOW).await.unwrap();
    assert_eq!(status, JobStatus::CompletedWithErrors);
    let assets = jobs.job_assets(f.partner, id, 0, 10).await.unwrap();
    let failed: Vec<_> = assets
        .iter()
        .filter(|a| a.status == AssetStatus::Failed)
        .map(|a| a.status_description.as_deref())
        .collect();
    assert_eq!(failed, [Some("given up"), Some("given up")]);
    let lost = jobs.note_chunk_failure(id, "x", "late", NOW).await;
    assert!(matches!(lost, Err(StoreError::LeaseLost)));
}

gridroll_testkit::backend_tests!(
    an_upload_is_invisible_until_committed_and_leaves_nothing_when_discarded,
    a_claimed_job_is_processed_in_chunks_at_the_callers_time,
    abandoned_uploads_are_removed_once_their_receiving_lease_lapses,
    a_failing_job_is_held_back_then_given_up_with_its_rest_failed,
);
