//! Chunks of a job prepared ahead of the writer: while one chunk is written, the next is
//! read and evaluated on another connection. Both stores keep them here, one per job.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use gridroll_domain::JobId;
use gridroll_domain::job::{JobStatus, Pending};
use tokio::task::JoinHandle;

use crate::Result;
use crate::evaluate::{Catalog, Columns};
use crate::model::{ChunkReport, IndexColumns};

/// A chunk's assets read and evaluated ahead of writing them: the work that needs no
/// lock, done beside the writer while it writes the chunk before.
pub struct PreparedChunk {
    /// The chunk is the `limit` assets from `from_seq` on.
    pub from_seq: u64,
    pub limit: usize,
    pub assets: Vec<PreparedAsset>,
    /// The partner's programs the assets were evaluated against.
    pub catalog: Catalog,
}

pub struct PreparedAsset {
    pub pending: Pending,
    /// The asset's data as a meter stores it: its compact form, as the job input has it.
    pub data: String,
    pub index: IndexColumns,
    /// The meter's enrollment columns if it is created, in their stored form only (an
    /// update evaluates against the meter's previous enrollments, when it is written).
    pub as_new: Columns,
}

/// An asset as its job input row holds it.
pub struct StoredAsset {
    pub pending: Pending,
    /// The searched columns, taken from the asset's data when it was received.
    pub index: IndexColumns,
    /// The asset's data in its compact form.
    pub input: String,
}

impl PreparedChunk {
    /// Reads each asset of a chunk and evaluates it as a new meter: the CPU work of a
    /// chunk.
    pub fn evaluate(
        from_seq: u64,
        limit: usize,
        rows: Vec<StoredAsset>,
        catalog: Catalog,
    ) -> Result<Self> {
        let mut assets = Vec::with_capacity(rows.len());
        for stored in rows {
            assets.push(PreparedAsset {
                as_new: catalog.evaluate_new(&stored.input)?,
                index: stored.index,
                pending: stored.pending,
                data: stored.input,
            });
        }
        Ok(Self {
            from_seq,
            limit,
            assets,
            catalog,
        })
    }

    /// Whether this is the chunk due when the job has got to `next_seq`.
    pub fn is_due(&self, next_seq: u64, limit: usize) -> bool {
        self.from_seq == next_seq && self.limit == limit
    }
}

/// The chunk being prepared for each job.
#[derive(Default)]
pub struct Ahead {
    tasks: Mutex<HashMap<JobId, JoinHandle<Result<PreparedChunk>>>>,
}

impl Ahead {
    /// Records the task preparing a job's next chunk, abandoning any earlier one.
    pub fn start(&self, job: JobId, task: JoinHandle<Result<PreparedChunk>>) {
        if let Some(earlier) = self.lock().insert(job, task) {
            earlier.abort();
        }
    }

    pub fn is_preparing(&self, job: JobId) -> bool {
        self.lock().contains_key(&job)
    }

    /// The chunk prepared for a job, once ready, if one was and preparing it succeeded.
    /// A failure is only logged: the writer then prepares the chunk itself.
    pub async fn take(&self, job: JobId) -> Option<PreparedChunk> {
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

    /// Settles what is prepared for a job once one of its chunks was written (with where
    /// the job has got to): nothing more for a finished or failed job, otherwise the chunk
    /// at `next_seq` unless it is already being prepared.
    pub fn after_chunk(
        &self,
        job: JobId,
        written: Result<(ChunkReport, u64)>,
        prepare: impl FnOnce(u64),
    ) -> Result<ChunkReport> {
        match written {
            Ok((report, next_seq)) => {
                if report.status != JobStatus::Processing {
                    self.forget(job);
                } else if !self.is_preparing(job) {
                    prepare(next_seq);
                }
                Ok(report)
            }
            Err(e) => {
                self.forget(job);
                Err(e)
            }
        }
    }

    /// Abandons what is being prepared for a job.
    pub fn forget(&self, job: JobId) {
        if let Some(task) = self.lock().remove(&job) {
            task.abort();
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, JoinHandle<Result<PreparedChunk>>>> {
        // The map stays consistent whatever panicked while it was held.
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
