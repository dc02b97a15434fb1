//! Job workers: background tasks inside the server that claim jobs and process them a
//! chunk at a time. A worker holds a lease on its job, renewed with every chunk; a job
//! whose worker died is taken over when the lease expires (at once on SQLite, where a
//! restart releases every lease).

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use gridroll_domain::JobId;
use gridroll_domain::job::JobStatus;
use gridroll_store::{Store, StoreError};
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

/// One worker. Tests drive it with [`Worker::step`] or [`Worker::drain`]; the server runs
/// it in a loop.
pub struct Worker {
    store: Arc<dyn Store>,
    name: String,
    config: WorkerConfig,
    current: Option<JobId>,
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, name: impl Into<String>, config: WorkerConfig) -> Self {
        Self {
            store,
            name: name.into(),
            config,
            current: None,
        }
    }

    /// Processes one chunk of the job in hand, claiming a job first if there is none.
    /// Returns whether there was anything to do.
    pub async fn step(&mut self) -> Result<bool, StoreError> {
        let job = match self.current {
            Some(job) => job,
            None => match self.store.claim_job(&self.name, self.config.lease).await? {
                Some(job) => {
                    tracing::debug!(worker = %self.name, %job, "claimed job");
                    self.current = Some(job);
                    job
                }
                None => return Ok(false),
            },
        };
        let result = self
            .store
            .process_chunk(
                job,
                &self.name,
                self.config.chunk_size,
                self.config.lease,
                false,
            )
            .await;
        match result {
            Ok(report) if report.status == JobStatus::Processing => {}
            Ok(report) => {
                tracing::info!(%job, status = %report.status, "job finished");
                self.current = None;
            }
            Err(StoreError::LeaseLost) => {
                tracing::warn!(worker = %self.name, %job, "lost the lease on a job; another worker has it");
                self.current = None;
            }
            Err(e) => {
                self.current = None;
                return Err(e);
            }
        }
        Ok(true)
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
                    tracing::error!(worker = %self.name, error = %e, "job processing failed; retrying");
                }
                Err(_) => {
                    tracing::error!(worker = %self.name, job = ?self.current, "job processing panicked; retrying");
                    self.current = None;
                }
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(self.config.idle_poll) => {}
                _ = stop.changed() => {}
            }
        }
        if let Some(job) = self.current.take()
            && let Err(e) = self.store.release_job(job, &self.name).await
        {
            tracing::warn!(%job, error = %e, "could not release a job lease; it expires by itself");
        }
    }
}

/// The running workers of a server.
pub struct Workers {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn start(
        store: Arc<dyn Store>,
        count: usize,
        config: WorkerConfig,
        ready: Arc<Notify>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let process = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        let handles = (0..count)
            .map(|n| {
                let worker = Worker::new(store.clone(), format!("{process}-{n}"), config.clone());
                tokio::spawn(worker.run(ready.clone(), stopped.clone()))
            })
            .collect();
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
