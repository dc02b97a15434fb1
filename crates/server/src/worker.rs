//! Job workers: background tasks inside the server that claim jobs and process them a
//! chunk at a time. A worker holds a lease on its job, renewed with every chunk; a job
//! whose worker died is taken over when the lease expires (at once on SQLite, where a
//! restart releases every lease).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use gridroll_domain::JobId;
use gridroll_domain::job::{JobStatus, given_up_description, retry_delay};
use gridroll_domain::timestamp::{Clock, SystemClock, to_millis};
use gridroll_store::{JobStore, StoreError};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How a worker processes jobs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Assets per transaction.
    pub chunk_size: usize,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// How often an idle worker looks for work it was not told about.
    pub idle_poll: Duration,
}

/// How many chunks this process's workers are writing at the moment. Background work
/// that can wait (the webhook dispatcher) gives way while any is.
#[derive(Debug, Default)]
pub struct Activity {
    chunks: AtomicUsize,
}

impl Activity {
    /// Whether a worker of this process is writing a chunk.
    pub fn busy(&self) -> bool {
        self.chunks.load(Ordering::Relaxed) > 0
    }

    /// Counts a chunk being written until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> ActivityGuard {
        self.chunks.fetch_add(1, Ordering::Relaxed);
        ActivityGuard(self.clone())
    }
}

/// A chunk being written; see [`Activity::enter`].
pub struct ActivityGuard(Arc<Activity>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.0.chunks.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One worker. Tests drive it with [`Worker::step`] or [`Worker::drain`]; the server runs
/// it in a loop.
pub struct Worker {
    jobs: Arc<dyn JobStore>,
    name: String,
    config: WorkerConfig,
    clock: Arc<dyn Clock>,
    activity: Arc<Activity>,
    current: Option<JobId>,
}

impl Worker {
    pub fn new(jobs: Arc<dyn JobStore>, name: impl Into<String>, config: WorkerConfig) -> Self {
        Self {
            jobs,
            name: name.into(),
            config,
            clock: Arc::new(SystemClock),
            activity: Arc::default(),
            current: None,
        }
    }

    /// The worker counted in `activity` while it writes a chunk.
    pub fn with_activity(mut self, activity: Arc<Activity>) -> Self {
        self.activity = activity;
        self
    }

    /// The worker with its leases and retries timed by `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> i64 {
        to_millis(self.clock.now())
    }

    /// Processes one chunk of the job in hand, claiming a job first if there is none.
    /// Returns whether there was anything to do.
    pub async fn step(&mut self) -> Result<bool, StoreError> {
        let job = match self.current {
            Some(job) => job,
            None => match self
                .jobs
                .claim_job(&self.name, self.config.lease, self.now())
                .await?
            {
                Some(job) => {
                    tracing::debug!(worker = %self.name, %job, "claimed job");
                    self.current = Some(job);
                    job
                }
                None => return Ok(false),
            },
        };
        let writing = self.activity.enter();
        let result = self
            .jobs
            .process_chunk(
                job,
                &self.name,
                self.config.chunk_size,
                self.config.lease,
                false,
                self.now(),
            )
            .await;
        drop(writing);
        match result {
            Ok(report) if report.status == JobStatus::Processing => {}
            Ok(report) => {
                tracing::info!(%job, status = %report.status, "job finished");
                if report.processed > 0 {
                    crate::telemetry::job_finished(report.status, report.totals);
                }
                self.current = None;
            }
            Err(StoreError::LeaseLost) => {
                tracing::warn!(worker = %self.name, %job, "lost the lease on a job; another worker has it");
                self.current = None;
            }
            Err(e @ StoreError::StorageFull(_)) => {
                // Not the job's fault: it is tried again when its lease lapses, and
                // finishes once there is room, however long that takes.
                tracing::error!(worker = %self.name, %job, error = %e, "no storage left to process a job");
                self.current = None;
                return Err(e);
            }
            Err(e) => {
                self.current = None;
                self.failed(job, &e.to_string()).await;
                return Err(e);
            }
        }
        Ok(true)
    }

    /// Notes that a chunk of `job` failed: the job waits a while before it is tried again,
    /// and once it has failed too often in a row it is given up, its remaining assets
    /// failed. The job is this worker's no longer either way.
    async fn failed(&self, job: JobId, error: &str) {
        tracing::warn!(worker = %self.name, %job, error, "processing a chunk failed");
        let failures = match self
            .jobs
            .note_chunk_failure(job, &self.name, error, self.now())
            .await
        {
            Ok(failures) => failures,
            Err(e) => {
                // The job's lease lapses by itself, and it is tried again then.
                tracing::warn!(%job, error = %e, "could not note the failure of a chunk");
                return;
            }
        };
        match retry_delay(failures) {
            Some(delay) => {
                tracing::warn!(%job, failures, retry_in = ?delay, "the job is tried again later");
            }
            None => {
                let reference = uuid::Uuid::now_v7();
                let description = given_up_description(failures, &reference.to_string());
                match self
                    .jobs
                    .give_up_job(job, &self.name, &description, self.now())
                    .await
                {
                    Ok(status) => tracing::error!(
                        %job, %reference, failures, last_error = error, %status,
                        "gave up a job whose chunks kept failing; its remaining assets are FAILED with PROCESSING_ERROR"
                    ),
                    Err(e) => tracing::error!(%job, error = %e, "could not give up a failing job"),
                }
            }
        }
    }

    /// Steps until there is no work left.
    pub async fn drain(&mut self) -> Result<(), StoreError> {
        while self.step().await? {}
        Ok(())
    }

    async fn run(mut self, ready: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                break;
            }
            // Registered before looking for work, so a job committed meanwhile is not missed.
            let notified = ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // A panic in one step must not end the worker: it gives up the job in hand
            // (it is claimed again when its lease lapses) and carries on.
            let step = std::panic::AssertUnwindSafe(self.step())
                .catch_unwind()
                .await;
            match step {
                Ok(Ok(true)) => continue,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::error!(worker = %self.name, error = %e, "job processing failed");
                }
                Err(_) => {
                    tracing::error!(worker = %self.name, job = ?self.current, "job processing panicked");
                    if let Some(job) = self.current.take() {
                        self.failed(job, "processing a chunk panicked").await;
                    }
                }
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(self.config.idle_poll) => {}
                _ = stop.changed() => {}
            }
        }
        if let Some(job) = self.current.take()
            && let Err(e) = self.jobs.release_job(job, &self.name).await
        {
            tracing::warn!(%job, error = %e, "could not release a job lease; it expires by itself");
        }
    }
}

/// How often a server looks for uploads abandoned by a process that died mid-upload.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Removes abandoned uploads every [`SWEEP_INTERVAL`] until stopped: without it, an
/// upload cut off by a dying process would linger until a process starts (PostgreSQL,
/// where other processes keep running).
async fn sweep(jobs: Arc<dyn JobStore>, clock: Arc<dyn Clock>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = jobs.remove_abandoned_uploads(to_millis(clock.now())).await {
            tracing::warn!(error = %e, "could not remove abandoned uploads; trying again later");
        }
    }
}

/// The running workers of a server.
pub struct Workers {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Runs more background work beside the job workers, stopped with them: `task` is
    /// given the signal to stop on.
    pub fn spawn<F>(&mut self, task: impl FnOnce(watch::Receiver<bool>) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let stopped = self.stop.subscribe();
        self.handles.push(tokio::spawn(task(stopped)));
    }
}

impl Workers {
    pub fn start(
        jobs: Arc<dyn JobStore>,
        count: usize,
        config: WorkerConfig,
        clock: Arc<dyn Clock>,
        ready: Arc<Notify>,
        activity: Arc<Activity>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let process = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        let mut handles: Vec<JoinHandle<()>> = (0..count)
            .map(|n| {
                let worker = Worker::new(jobs.clone(), format!("{process}-{n}"), config.clone())
                    .with_clock(clock.clone())
                    .with_activity(activity.clone());
                tokio::spawn(worker.run(ready.clone(), stopped.clone()))
            })
            .collect();
        handles.push(tokio::spawn(sweep(jobs, clock, stopped)));
        Self { stop, handles }
    }

    /// Asks every worker to stop after its current chunk, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}
