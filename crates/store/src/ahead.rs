//! Chunks of a job prepared ahead of the writer: while one chunk is written, the next is
//! read and evaluated on another connection. Both stores keep them here, one per job.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use gridroll_domain::JobId;
use tokio::task::JoinHandle;

use crate::Result;

/// The chunk being prepared for each job.
pub struct Ahead<T> {
    tasks: Mutex<HashMap<JobId, JoinHandle<Result<T>>>>,
}

impl<T> Default for Ahead<T> {
    fn default() -> Self {
        Self {
            tasks: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Ahead<T> {
    /// Records the task preparing a job's next chunk, abandoning any earlier one.
    pub fn start(&self, job: JobId, task: JoinHandle<Result<T>>) {
        if let Some(earlier) = self.lock().insert(job, task) {
            earlier.abort();
        }
    }

    pub fn is_preparing(&self, job: JobId) -> bool {
        self.lock().contains_key(&job)
    }

    /// The chunk prepared for a job, once ready, if one was and preparing it succeeded.
    /// A failure is only logged: the writer then prepares the chunk itself.
    pub async fn take(&self, job: JobId) -> Option<T> {
        let task = self.lock().remove(&job)?;
        match task.await {
            Ok(Ok(prepared)) => Some(prepared),
            Ok(Err(e)) => {
                tracing::debug!(%job, error = %e, "a chunk prepared ahead failed; preparing it again");
                None
            }
            Err(_) => None,
        }
    }

    /// Abandons what is being prepared for a job.
    pub fn forget(&self, job: JobId) {
        if let Some(task) = self.lock().remove(&job) {
            task.abort();
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, JoinHandle<Result<T>>>> {
        // The map stays consistent whatever panicked while it was held.
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
