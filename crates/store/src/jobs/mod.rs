//! Jobs: receiving an upload, reading jobs and their assets, and the queue that turns
//! assets into meters. Processing a chunk is each backend's own (see `Engine`); its
//! decisions are the domain's and `chunk`'s, and everything else here is written once.

mod assets;
pub(crate) mod chunk;
mod failures;
pub(crate) mod queries;
pub mod segments;

pub(crate) use queries::renew_receiving;

use std::time::Duration;

use async_trait::async_trait;
use gridroll_domain::job::JobStatus;
use gridroll_domain::{JobId, PartnerId};

use self::segments::AssetBatch;
use crate::engine::Engine;
use crate::model::{
    AssetFilter, AssetState, ChunkReport, Facet, Job, JobFilter, JobPage, NewJob, ProvisionalAsset,
    Received,
};
use crate::{Result, reads, rows, work};

/// The filter keys of provisional assets kept on their jobs, and the job columns behind
/// them (a job's values, a comma list each); the statuses come from the outcomes.
const ASSET_FACETS: &[(&str, &str)] = &[
    ("transmission_region", "transmission_regions"),
    ("customer_classification", "customer_classifications"),
    ("meter_type", "meter_types"),
];

/// The filter keys of jobs and the columns behind them.
const JOB_FACETS: &[(&str, &str)] = &[
    ("status", "status"),
    ("transmission_region", "transmission_regions"),
];

/// Uploads from this size on refresh the planner's statistics: of the job input when
/// accepted, of the meters when processed.
pub(crate) const LARGE_UPLOAD: u64 = 10_000;

/// Collects facet values, splitting comma lists (a job's regions) into their members.
fn facet(key: &'static str, raw: Vec<String>) -> Facet {
    let mut values: Vec<String> = raw
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    values.sort();
    values.dedup();
    Facet { key, values }
}

/// Uploads, jobs, their assets, and processing them.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Starts receiving an upload. The job stays invisible until [`JobStore::commit_job`].
    async fn begin_job(&self, partner: PartnerId, job: &NewJob, now: i64) -> Result<()>;
    /// Stores a batch of validated assets of a job that is being received.
    async fn append_assets(&self, job: JobId, batch: AssetBatch, now: i64) -> Result<()>;
    /// Makes a received job durable and visible, ready for the workers.
    async fn commit_job(&self, job: JobId, received: &Received, now: i64) -> Result<()>;
    /// Drops a job that was being received, with its assets.
    async fn discard_job(&self, job: JobId) -> Result<()>;
    /// Removes the uploads whose receiving lease lapsed before `now` (their process died
    /// before the `201`, or stopped writing them), with their assets; answers how many.
    async fn remove_abandoned_uploads(&self, now: i64) -> Result<u64>;

    async fn get_job(&self, partner: PartnerId, job: JobId) -> Result<Option<Job>>;
    /// The state of up to `limit` assets of a job from `from_seq` on, in upload order.
    async fn job_assets(
        &self,
        partner: PartnerId,
        job: JobId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AssetState>>;
    /// One provisional asset with its data.
    async fn provisional_asset(
        &self,
        partner: PartnerId,
        job: JobId,
        seq: u64,
    ) -> Result<Option<ProvisionalAsset>>;
    /// A page of a partner's jobs, newest first.
    async fn list_jobs(
        &self,
        partner: PartnerId,
        filter: &JobFilter,
        page: &JobPage,
    ) -> Result<Vec<Job>>;
    /// The values that occur in a partner's jobs, per filter key.
    async fn job_facets(&self, partner: PartnerId) -> Result<Vec<Facet>>;
    /// A page of a partner's provisional assets: newest job first, each job's assets in
    /// upload order, after the position `after` (job, seq).
    async fn list_provisional_assets(
        &self,
        partner: PartnerId,
        filter: &AssetFilter,
        after: Option<(JobId, u64)>,
        limit: usize,
    ) -> Result<Vec<ProvisionalAsset>>;
    /// The most site devices any matching provisional asset has.
    async fn max_site_devices(&self, partner: PartnerId, filter: &AssetFilter) -> Result<usize>;
    /// The values that occur in a partner's provisional assets, per filter key.
    async fn asset_facets(&self, partner: PartnerId) -> Result<Vec<Facet>>;

    /// Takes the lease on the oldest job with work left whose lease is free or expired at
    /// `now`.
    async fn claim_job(&self, worker: &str, lease: Duration, now: i64) -> Result<Option<JobId>>;
    /// Processes up to `limit` assets of a job in one transaction and renews the lease.
    /// Fails with [`crate::StoreError::LeaseLost`] if another worker holds the job.
    /// `durable` waits for the disk before returning; without it a power cut may undo the
    /// chunk, which is then simply processed again.
    async fn process_chunk(
        &self,
        job: JobId,
        worker: &str,
        limit: usize,
        lease: Duration,
        durable: bool,
        now: i64,
    ) -> Result<ChunkReport>;
    /// Gives up the lease on a job (on shutdown), so another worker can take it at once.
    async fn release_job(&self, job: JobId, worker: &str) -> Result<()>;
    /// Notes that processing a chunk of a job this worker holds failed with `error`, and
    /// holds the job back (its lease lasts until `now` plus the job's
    /// [`retry_delay`](gridroll_domain::job::retry_delay)) so that no worker tries it again
    /// at once. Answers how many times in a row the job's chunks have failed; a chunk
    /// that succeeds starts the count again.
    async fn note_chunk_failure(
        &self,
        job: JobId,
        worker: &str,
        error: &str,
        now: i64,
    ) -> Result<u32>;
    /// Gives up a job this worker holds: every asset still `PROCESSING` becomes `FAILED`
    /// with `PROCESSING_ERROR` and `description`, and the job takes its final status,
    /// which is answered.
    async fn give_up_job(
        &self,
        job: JobId,
        worker: &str,
        description: &str,
        now: i64,
    ) -> Result<JobStatus>;
}

#[async_trait]
impl<E: Engine> JobStore for E {
    async fn begin_job(&self, partner: PartnerId, job: &NewJob, now: i64) -> Result<()> {
        let job = job.clone();
        self.write(work!(db => async move { queries::begin(db, partner, &job, now).await }))
            .await
    }

    async fn append_assets(&self, job: JobId, batch: AssetBatch, now: i64) -> Result<()> {
        self.write(work!(db => async move {
            renew_receiving(db, job, now).await?;
            segments::write(db, job, &batch, now).await
        }))
        .await
    }

    async fn commit_job(&self, job: JobId, received: &Received, now: i64) -> Result<()> {
        let received = received.clone();
        // A job is durable before its 201.
        self.write_durable(work!(db => async move {
            queries::commit(db, job, &received, now).await
        }))
        .await
    }

    async fn discard_job(&self, job: JobId) -> Result<()> {
        self.write(work!(db => queries::discard(db, job))).await
    }

    async fn remove_abandoned_uploads(&self, now: i64) -> Result<u64> {
        let dropped = self
            .write(work!(db => queries::remove_abandoned(db, now)))
            .await?;
        if dropped > 0 {
            tracing::info!(dropped, "removed uploads that never completed");
        }
        Ok(dropped)
    }

    async fn get_job(&self, partner: PartnerId, job: JobId) -> Result<Option<Job>> {
        self.read_point(work!(db => queries::get(db, partner, job)))
            .await
    }

    async fn job_assets(
        &self,
        partner: PartnerId,
        job: JobId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AssetState>> {
        self.read(work!(db => assets::of_job(db, partner, job, from_seq, limit)))
            .await
    }

    async fn provisional_asset(
        &self,
        partner: PartnerId,
        job: JobId,
        seq: u64,
    ) -> Result<Option<ProvisionalAsset>> {
        self.read_point(work!(db => assets::one(db, partner, job, seq)))
            .await
    }

    async fn list_jobs(
        &self,
        partner: PartnerId,
        filter: &JobFilter,
        page: &JobPage,
    ) -> Result<Vec<Job>> {
        let query = reads::list_jobs(self.dialect(), partner, filter, page.before, page.limit);
        self.read(work!(db => async move {
            db.query_built(&query.sql, &query.params)
                .await?
                .iter()
                .map(rows::job)
                .collect()
        }))
        .await
    }

    async fn job_facets(&self, partner: PartnerId) -> Result<Vec<Facet>> {
        let queries: Vec<_> = JOB_FACETS
            .iter()
            .map(|(key, column)| (*key, reads::job_facet(self.dialect(), partner, column)))
            .collect();
        self.read(work!(db => facets(db, queries))).await
    }

    async fn list_provisional_assets(
        &self,
        partner: PartnerId,
        filter: &AssetFilter,
        after: Option<(JobId, u64)>,
        limit: usize,
    ) -> Result<Vec<ProvisionalAsset>> {
        let filter = filter.clone();
        self.read(work!(db => async move {
            assets::list(db, partner, &filter, after, limit).await
        }))
        .await
    }

    async fn max_site_devices(&self, partner: PartnerId, filter: &AssetFilter) -> Result<usize> {
        let filter = filter.clone();
        self.read(work!(db => async move {
            assets::max_site_devices(db, partner, &filter).await
        }))
        .await
    }

    async fn asset_facets(&self, partner: PartnerId) -> Result<Vec<Facet>> {
        let queries: Vec<_> = ASSET_FACETS
            .iter()
            .map(|(key, column)| (*key, reads::job_facet(self.dialect(), partner, column)))
            .collect();
        self.read(work!(db => async move {
            let mut found = vec![facet("status", assets::statuses(db, partner).await?)];
            found.extend(facets(db, queries).await?);
            Ok(found)
        }))
        .await
    }

    async fn claim_job(&self, worker: &str, lease: Duration, now: i64) -> Result<Option<JobId>> {
        let worker = worker.to_owned();
        self.write(work!(db => async move { queries::claim(db, &worker, lease, now).await }))
            .await
    }

    async fn process_chunk(
        &self,
        job: JobId,
        worker: &str,
        limit: usize,
        lease: Duration,
        durable: bool,
        now: i64,
    ) -> Result<ChunkReport> {
        let prepared = self.ahead().take(job).await;
        // The chunk after this one is read and evaluated while this one is written.
        if let Some(prepared) = &prepared {
            self.prepare_ahead(job, prepared.from_seq + limit as u64, limit, now);
        }
        let written = self
            .write_chunk(job, worker, limit, lease, durable, prepared, now)
            .await;
        self.ahead().after_chunk(job, written, |next_seq| {
            self.prepare_ahead(job, next_seq, limit, now)
        })
    }

    async fn release_job(&self, job: JobId, worker: &str) -> Result<()> {
        self.ahead().forget(job);
        let worker = worker.to_owned();
        self.write(work!(db => async move { queries::release(db, job, &worker).await }))
            .await
    }

    async fn note_chunk_failure(
        &self,
        job: JobId,
        worker: &str,
        error: &str,
        now: i64,
    ) -> Result<u32> {
        let (worker, error) = (worker.to_owned(), error.to_owned());
        self.write(work!(db => async move {
            queries::note_failure(db, job, &worker, &error, now).await
        }))
        .await
    }

    async fn give_up_job(
        &self,
        job: JobId,
        worker: &str,
        description: &str,
        now: i64,
    ) -> Result<JobStatus> {
        self.ahead().forget(job);
        let (worker, description) = (worker.to_owned(), description.to_owned());
        let feed = self.event_feed();
        self.write(work!(db => async move {
            queries::give_up(db, job, &worker, &description, feed, now).await
        }))
        .await
    }
}

/// The values of each facet query.
async fn facets(
    db: &mut dyn crate::db::Db,
    queries: Vec<(&'static str, reads::Query)>,
) -> Result<Vec<Facet>> {
    let mut facets = Vec::new();
    for (key, query) in queries {
        let rows = db.query_built(&query.sql, &query.params).await?;
        let values = rows
            .iter()
            .map(|row| row.get::<Option<String>>(0).map(Option::unwrap_or_default))
            .collect::<Result<Vec<_>>>()?;
        facets.push(facet(key, values));
    }
    Ok(facets)
}
