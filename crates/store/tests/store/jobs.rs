//! Receiving uploads, the queue, and processing jobs.

use gridroll_domain::enums::CreatedBy;
use gridroll_domain::job::{AssetStatus, JobStatus, StatusName};
use gridroll_domain::lifecycle::{Change, PartnerReference};
use gridroll_domain::{JobId, MeterData, MeterId};
use gridroll_store::{
    AssetBatch, AssetFilter, JobField, JobFilter, JobPage, MeterEdit, MeterFilter, Search,
    StoreError, Unknown,
};
use gridroll_testkit::Backend;

use crate::{Fixture, LEASE, NOW, assets_of, committed, meter, new_job, process};

async fn an_upload_is_invisible_until_committed_and_leaves_nothing_when_discarded(
    backend: Backend,
) {
    let f = Fixture::new(backend).await;
    let jobs = &f.stores.jobs;
    let id = JobId::new();
    jobs.begin_job(f.partner, &new_job(id), NOW).await.unwrap();
    jobs.append_assets(id, AssetBatch::of_meters(0, [&meter("r-1")]), NOW)
        .await
        .unwrap();
    assert!(jobs.get_job(f.partner, id).await.unwrap().is_none());
    jobs.discard_job(id).await.unwrap();
    let append = jobs
        .append_assets(id, AssetBatch::of_meters(1, [&meter("r-2")]), NOW)
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
        .append_assets(id, AssetBatch::of_meters(0, [&meter("ref")]), NOW)
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

/// A committed job of `n` meters named `{prefix}-{i}`, every tenth repeating the one before
/// it, uploaded in batches of `batch` as an upload writes them, and processed.
async fn processed_job(f: &Fixture, prefix: &str, n: usize, batch: usize) -> JobId {
    let jobs = &f.stores.jobs;
    let id = JobId::new();
    jobs.begin_job(f.partner, &new_job(id), NOW).await.unwrap();
    let references: Vec<String> = (0..n)
        .map(|i| match i % 10 {
            9 => format!("{prefix}-{}", i - 1),
            _ => format!("{prefix}-{i}"),
        })
        .collect();
    let meters: Vec<_> = references.iter().map(|r| meter(r)).collect();
    for (k, part) in meters.chunks(batch).enumerate() {
        let batch = AssetBatch::of_meters((k * batch) as u64, part);
        jobs.append_assets(id, batch, NOW).await.unwrap();
    }
    let received = gridroll_store::Received {
        assets_count: n as u64,
        transmission_regions: vec!["CAISO".to_owned()],
        ..Default::default()
    };
    jobs.commit_job(id, &received, NOW).await.unwrap();
    crate::process(f, id, 700).await;
    id
}

async fn every_asset_of_several_jobs_is_listed_once_in_order_across_their_segments(
    backend: Backend,
) {
    let f = Fixture::new(backend).await;
    let jobs = &f.stores.jobs;
    // Batches of 1,300 cut segments at the thousands and in between.
    let older = processed_job(&f, "old", 2_100, 1_300).await;
    let newer = processed_job(&f, "new", 1_250, 1_300).await;
    let everything = AssetFilter::default();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = jobs
            .list_provisional_assets(f.partner, &everything, after, 333)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.job_id, last.state.seq));
        seen.extend(page.iter().map(|a| (a.job_id, a.state.seq)));
    }
    let expected: Vec<_> = (0..1_250)
        .map(|seq| (newer, seq))
        .chain((0..2_100).map(|seq| (older, seq)))
        .collect();
    assert_eq!(
        seen, expected,
        "newest job first, each in upload order, once"
    );

    // One asset and a window of a job read back what was uploaded, with its outcome.
    let one = jobs
        .provisional_asset(f.partner, older, 1_999)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.state.partner_reference, "old-1998");
    assert_eq!(one.data.partner_reference(), "old-1998");
    assert_eq!(one.state.status, AssetStatus::Duplicate);
    assert!(
        jobs.provisional_asset(f.partner, older, 2_100)
            .await
            .unwrap()
            .is_none()
    );
    let states = jobs.job_assets(f.partner, older, 995, 10).await.unwrap();
    let seqs: Vec<u64> = states.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, (995..1_005).collect::<Vec<_>>());
    assert!(
        states
            .iter()
            .all(|s| s.meter_id.is_some() || s.status == AssetStatus::Duplicate)
    );
}

async fn the_assets_that_made_no_meter_are_found_from_their_outcomes(backend: Backend) {
    let f = Fixture::new(backend).await;
    let jobs = &f.stores.jobs;
    // More failures than one read of outcomes takes.
    let older = processed_job(&f, "a", 11_000, 5_000).await;
    let newer = processed_job(&f, "b", 40, 5_000).await;
    let duplicates = AssetFilter {
        statuses: Some(vec![AssetStatus::Duplicate, AssetStatus::Failed]),
        ..AssetFilter::default()
    };
    let found = jobs
        .list_provisional_assets(f.partner, &duplicates, None, 2_000)
        .await
        .unwrap();
    let expected: Vec<_> = (0..4)
        .map(|k| (newer, 9 + 10 * k))
        .chain((0..1_100).map(|k| (older, 9 + 10 * k)))
        .collect();
    let got: Vec<_> = found.iter().map(|a| (a.job_id, a.state.seq)).collect();
    assert_eq!(got, expected);
    assert!(
        found
            .iter()
            .all(|a| a.state.status == AssetStatus::Duplicate)
    );
    // Paged, and with another filter on top.
    let page = jobs
        .list_provisional_assets(f.partner, &duplicates, Some((older, 1_009)), 2)
        .await
        .unwrap();
    let got: Vec<u64> = page.iter().map(|a| a.state.seq).collect();
    assert_eq!(got, [1_019, 1_029]);
    let one = AssetFilter {
        partner_references: Some(vec!["a-1018".to_owned()]),
        ..duplicates
    };
    let found = jobs
        .list_provisional_assets(f.partner, &one, None, 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].state.seq, 1_019);

    let facets = jobs.asset_facets(f.partner).await.unwrap();
    let statuses = &facets.iter().find(|f| f.key == "status").unwrap().values;
    assert_eq!(statuses, &["COMPLETED", "DUPLICATE"]);
}

async fn a_search_of_jobs_by_reference_finds_the_jobs_holding_it(backend: Backend) {
    let f = Fixture::new(backend).await;
    let jobs = &f.stores.jobs;
    let first = processed_job(&f, "north", 1_200, 5_000).await;
    let second = processed_job(&f, "south", 30, 5_000).await;
    let search = |term: &str| JobFilter {
        search: Some(Search {
            terms: vec![term.to_owned()],
            fields: vec![JobField::PartnerReference],
        }),
        ..JobFilter::default()
    };
    let page = JobPage {
        before: None,
        limit: 10,
    };
    let ids =
        |found: Vec<gridroll_store::Job>| -> Vec<JobId> { found.iter().map(|j| j.id).collect() };
    let found = jobs
        .list_jobs(f.partner, &search("NORTH-1150"), &page)
        .await
        .unwrap();
    assert_eq!(ids(found), [first]);
    let found = jobs
        .list_jobs(f.partner, &search("h-2"), &page)
        .await
        .unwrap();
    assert_eq!(ids(found), [second, first]);
    // A term never spans two references.
    let found = jobs
        .list_jobs(f.partner, &search("0\nnorth"), &page)
        .await
        .unwrap();
    assert!(found.is_empty());
}

gridroll_testkit::backend_tests!(
    every_asset_of_several_jobs_is_listed_once_in_order_across_their_segments,
    the_assets_that_made_no_meter_are_found_from_their_outcomes,
    a_search_of_jobs_by_reference_finds_the_jobs_holding_it,
    an_upload_is_invisible_until_committed_and_leaves_nothing_when_discarded,
    a_claimed_job_is_processed_in_chunks_at_the_callers_time,
    abandoned_uploads_are_removed_once_their_receiving_lease_lapses,
    a_failing_job_is_held_back_then_given_up_with_its_rest_failed,
);

/// On PostgreSQL a chunk looks its references up without a lock, then locks the meters it
/// replaces: one that another process archives or renames between the two steps must not
/// be replaced. A lock held on the chunk's first meter stops the chunk between them; the
/// second meter is changed meanwhile, then the lock is let go. (SQLite's one writer makes
/// the lookup and the write one step: nothing can come between them.)
async fn a_meter_changed_between_a_chunks_lookup_and_its_lock_is_left_alone(change: Change) {
    let f = Fixture::new(Backend::Postgres).await;
    let first = committed(&f, &["race-1", "race-2"], false).await;
    process(&f, first, 100).await;
    let meters = f
        .stores
        .meters
        .search_meters(f.partner, &MeterFilter::default(), None, 10)
        .await
        .unwrap();
    // The chunk locks its meters in id order: it waits at the lower id, having locked
    // nothing yet, while the higher one is changed.
    let (held, changed) = (
        meters[0].id.min(meters[1].id),
        meters[0].id.max(meters[1].id),
    );
    let reference_of = |id: MeterId| {
        let m = meters.iter().find(|m| m.id == id).unwrap();
        m.data.partner_reference().to_owned()
    };
    let elsewhere = |reference: &str| {
        let mut asset = crate::asset(reference);
        asset["customer"]["city"] = "Oakland".into();
        MeterData::parse(asset).unwrap()
    };
    let update = [
        elsewhere(&reference_of(held)),
        elsewhere(&reference_of(changed)),
    ];
    let job = crate::committed_meters(&f, update.to_vec(), true).await;

    let lock =
        f.db.lock_rows(&format!(
            "SELECT 1 FROM meters WHERE id = '{held}' FOR UPDATE"
        ))
        .await;
    let jobs = f.stores.jobs.clone();
    let chunk = tokio::spawn(async move {
        assert_eq!(jobs.claim_job("w", LEASE, NOW).await.unwrap(), Some(job));
        jobs.process_chunk(job, "w", 100, LEASE, false, NOW).await
    });
    f.db.until_a_session_waits_for_a_lock().await;
    f.stores
        .meters
        .change_meters(
            f.partner,
            &[MeterEdit {
                meter: changed,
                change,
            }],
            Unknown::Refuse,
            NOW,
        )
        .await
        .unwrap();
    lock.release().await;
    let report = chunk.await.unwrap().unwrap();
    assert_eq!(report.status, JobStatus::Completed);

    let assets = assets_of(&f, job).await;
    assert_eq!(assets[0].meter_id, Some(held));
    assert_eq!(assets[0].status_name, Some(StatusName::MeterUpdated));
    // The changed meter holds no claim on the reference any more: the row made a meter
    // of its own, and the changed one kept its data.
    assert_eq!(assets[1].status_name, Some(StatusName::MeterCreated));
    assert_ne!(assets[1].meter_id, Some(changed));
    let kept = f
        .stores
        .meters
        .get_meter(f.partner, changed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kept.data.get("customer.city").and_then(|v| v.as_str()),
        Some("San Francisco")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_leaves_alone_a_meter_archived_after_its_lookup_on_postgres() {
    if gridroll_testkit::available(Backend::Postgres).await {
        a_meter_changed_between_a_chunks_lookup_and_its_lock_is_left_alone(Change::Archive).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_leaves_alone_a_meter_renamed_after_its_lookup_on_postgres() {
    if gridroll_testkit::available(Backend::Postgres).await {
        let renamed = Change::Reference(PartnerReference::parse("race-renamed").unwrap());
        a_meter_changed_between_a_chunks_lookup_and_its_lock_is_left_alone(renamed).await;
    }
}

/// Statistics taken while every partner had a meter or two say that a partner's meters
/// are few. Once a new partner's large import has written its first chunk, its references
/// must still be looked up through the reference index, not by reading all the partner's
/// meters through another index that leads with the partner (for every reference of
/// every chunk after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_imports_references_are_looked_up_by_the_reference_index_after_its_first_chunk() {
    if !gridroll_testkit::available(Backend::Postgres).await {
        return;
    }
    let f = Fixture::new(Backend::Postgres).await;
    for n in 0..300 {
        another_partner_with_meters(&f, &format!("small-{n}"), 1).await;
    }
    f.db.execute("ANALYZE meters").await;
    let job = committed_numbered(&f, "large", 10_000).await;
    let jobs = &f.stores.jobs;
    assert_eq!(jobs.claim_job("w", LEASE, NOW).await.unwrap(), Some(job));
    let first = jobs
        .process_chunk(job, "w", 3_000, LEASE, false, NOW)
        .await
        .unwrap();
    assert_eq!(first.status, JobStatus::Processing);

    the_lookup_probes_the_reference_index(&f, "ARRAY['large-7', 'large-9999', 'unknown']").await;
}

/// Statistics taken while another partner had all the meters say that a new partner has
/// none. Once the new partner's smaller jobs have written as many meters as a large one,
/// its references must be looked up through the reference index again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partners_references_are_looked_up_by_the_reference_index_once_its_smaller_jobs_add_up() {
    if !gridroll_testkit::available(Backend::Postgres).await {
        return;
    }
    let f = Fixture::new(Backend::Postgres).await;
    another_partner_with_meters(&f, "first", 2_000).await;
    f.db.execute("ANALYZE meters").await;
    for batch in 0..3 {
        let job = committed_numbered(&f, &format!("new-{batch}"), 4_000).await;
        assert_eq!(process(&f, job, 3_000).await, JobStatus::Completed);
    }

    the_lookup_probes_the_reference_index(&f, "ARRAY['new-0-7', 'new-2-3999', 'unknown']").await;
}

/// Another partner, with `count` meters imported for it, referenced `{name}-0` on.
async fn another_partner_with_meters(f: &Fixture, name: &str, count: usize) {
    let partner = f
        .stores
        .accounts
        .create_partner(name, NOW)
        .await
        .unwrap()
        .id;
    let meters = (0..count).map(|n| meter(&format!("{name}-{n}"))).collect();
    f.stores
        .meters
        .import_meters(partner, CreatedBy::Partner, meters, NOW)
        .await
        .unwrap();
}

/// A committed job of the fixture's partner with `count` new meters, referenced
/// `{prefix}-0` on.
async fn committed_numbered(f: &Fixture, prefix: &str, count: usize) -> JobId {
    let references: Vec<String> = (0..count).map(|n| format!("{prefix}-{n}")).collect();
    let references: Vec<&str> = references.iter().map(String::as_str).collect();
    committed(f, &references, false).await
}

/// Asserts that a chunk of the fixture's partner would look `references` (an SQL array)
/// up with the partner and the reference both conditions of the reference index, not the
/// reference a filter over the partner's meters.
async fn the_lookup_probes_the_reference_index(f: &Fixture, references: &str) {
    let lookup = gridroll_store::postgres::REFERENCE_LOOKUP
        .replace("$1", &format!("'{}'::uuid", f.partner))
        .replace("$2", references);
    let plan = f.db.plan(&lookup).await;
    let probed = plan.lines().any(|step| {
        step.contains("Index Cond: ((partner_id = ")
            && step.contains("(partner_reference = r.reference)")
    });
    assert!(probed && plan.contains("meters_by_reference"), "{plan}");
}
