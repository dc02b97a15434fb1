//! Chunks of a job prepared ahead of the writer: while one chunk is written, the next is
//! read and evaluated on another connection, and on PostgreSQL its references looked up
//! there too. Both stores keep them here, one per job; the [`Ledger`] of chunks written
//! tells the writer which of a lookup's findings may have changed since.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// What the chunk's references found when it was prepared, if they were looked up
    /// then (on PostgreSQL).
    pub found: Option<Found>,
}

/// What a chunk's references found, looked up ahead of the writer, and when.
#[derive(Debug, Default)]
pub struct Found {
    /// The references that found a meter (archived ones are not found).
    pub taken: HashSet<String>,
    /// The [`Ledger`]'s count of writes before they were looked up.
    pub as_of: u64,
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
            found: None,
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
    ledger: Arc<Ledger>,
}

impl Ahead {
    /// The store's writes, as far as the lookups made ahead need them.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

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

/// The chunks this process has written, counted, so that a lookup of references made
/// ahead of the writer can tell which of its findings a chunk written since may have
/// changed: a chunk gives a meter only to the references of the meters it creates.
///
/// Only the PostgreSQL store looks references up ahead; its lookups cost the writer a
/// fifth of a chunk's time, and they are then looked up beside it, on a connection of
/// its own. (SQLite probes its reference index in the writer for much less, and gained
/// nothing measurable; see BENCHMARKS.) A process cannot see another's writes, and needs
/// not: what the lookup found is looked up again by the writer, and a meter given one of
/// the chunk's references meanwhile by the partner (created, renamed or restored) is
/// found by the unique index on references when the chunk writes, which rolls it back to
/// be planned again with a lookup of its own. A meter that reached the platform by an
/// operator's import meanwhile claims no reference: the chunk creates the partner's
/// meter beside it, as if it had been written a moment earlier.
#[derive(Debug, Default)]
pub struct Ledger {
    state: Mutex<LedgerState>,
}

#[derive(Debug, Default)]
struct LedgerState {
    /// The chunks counted so far.
    count: u64,
    /// The references each of the last chunks created, oldest first, the newest being
    /// chunk number `count`.
    recent: VecDeque<Vec<String>>,
}

/// How many of the last chunks the ledger remembers; a lookup older than them is made
/// again in full.
const REMEMBERED: usize = 8;

impl Ledger {
    /// The chunks counted so far: taken before a lookup, it dates the lookup.
    pub fn count(&self) -> u64 {
        self.lock().count
    }

    /// Counts a chunk, once committed, which gave a meter to each of `references`.
    pub fn wrote_chunk(&self, references: Vec<String>) {
        let mut state = self.lock();
        state.count += 1;
        state.recent.push_back(references);
        if state.recent.len() > REMEMBERED {
            state.recent.pop_front();
        }
    }

    /// The references a chunk written since `as_of` gave a meter: `None` when one of
    /// those chunks is forgotten.
    pub fn changed_since(&self, as_of: u64) -> Option<HashSet<String>> {
        let state = self.lock();
        let since = usize::try_from(state.count.checked_sub(as_of)?).ok()?;
        if since > state.recent.len() {
            return None;
        }
        let skipped = state.recent.len() - since;
        Some(
            state
                .recent
                .iter()
                .skip(skipped)
                .flatten()
                .cloned()
                .collect(),
        )
    }

    fn lock(&self) -> MutexGuard<'_, LedgerState> {
        // The state stays consistent whatever panicked while it was held.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Each of `references` once, in the order given.
pub fn distinct<'r>(references: impl Iterator<Item = &'r str>) -> impl Iterator<Item = &'r str> {
    let mut seen = HashSet::new();
    references.filter(move |r| seen.insert(*r))
}

/// The references of a chunk that the writer looks up itself: every one when none was
/// looked up ahead, or a chunk written since is forgotten; otherwise those that found a
/// meter ahead (which may have been archived or renamed since) and those a chunk written
/// since gave one. The others had no meter when looked up, and none of this process's
/// chunks gave them one.
pub fn to_look_up(pending: &[Pending], found: Option<Found>, ledger: &Ledger) -> Vec<String> {
    let references = distinct(pending.iter().map(|p| p.partner_reference.as_str()));
    let Some((taken, changed)) =
        found.and_then(|f| Some((f.taken, ledger.changed_since(f.as_of)?)))
    else {
        return references.map(str::to_owned).collect();
    };
    references
        .filter(|r| taken.contains(*r) || changed.contains(*r))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use gridroll_domain::testing::pending;

    use super::{Found, Ledger, REMEMBERED, to_look_up};

    fn strings(references: &[&str]) -> Vec<String> {
        references.iter().map(|r| (*r).to_owned()).collect()
    }

    fn found(taken: &[&str], as_of: u64) -> Option<Found> {
        Some(Found {
            taken: strings(taken).into_iter().collect(),
            as_of,
        })
    }

    #[test]
    fn with_no_chunk_since_the_lookup_only_the_references_that_found_a_meter_are_looked_up_again() {
        let ledger = Ledger::default();
        ledger.wrote_chunk(strings(&["a"]));
        let chunk = pending(&["a", "b", "a", "c"]);
        assert_eq!(
            to_look_up(&chunk, found(&["a"], ledger.count()), &ledger),
            strings(&["a"])
        );
        assert!(to_look_up(&chunk, found(&[], ledger.count()), &ledger).is_empty());
    }

    #[test]
    fn the_references_the_chunks_since_the_lookup_created_are_looked_up_again() {
        let ledger = Ledger::default();
        ledger.wrote_chunk(strings(&["a"]));
        let as_of = ledger.count();
        ledger.wrote_chunk(strings(&["b", "c"]));
        ledger.wrote_chunk(strings(&["d"]));
        let chunk = pending(&["a", "b", "d", "b", "e"]);
        assert_eq!(
            to_look_up(&chunk, found(&[], as_of), &ledger),
            strings(&["b", "d"])
        );
        assert_eq!(
            ledger.changed_since(as_of),
            Some(strings(&["b", "c", "d"]).into_iter().collect())
        );
    }

    #[test]
    fn a_lookup_older_than_the_chunks_remembered_is_made_again_in_full() {
        let ledger = Ledger::default();
        let as_of = ledger.count();
        for _ in 0..REMEMBERED {
            ledger.wrote_chunk(Vec::new());
        }
        assert_eq!(ledger.changed_since(as_of), Some(Default::default()));
        ledger.wrote_chunk(Vec::new());
        assert_eq!(ledger.changed_since(as_of), None);
        let chunk = pending(&["a", "b", "a"]);
        assert_eq!(
            to_look_up(&chunk, found(&[], as_of), &ledger),
            strings(&["a", "b"])
        );
    }

    #[test]
    fn a_chunk_not_looked_up_ahead_is_looked_up_in_full() {
        let chunk = pending(&["a", "b", "a"]);
        assert_eq!(
            to_look_up(&chunk, None, &Ledger::default()),
            strings(&["a", "b"])
        );
    }
}
