//! Receiving meters: a bulk upload streams from the socket through validation (on one
//! blocking thread) into the store (batched writes on another), so memory stays flat in
//! the size of the file and validation overlaps writing. The job becomes visible, and
//! the `201` is sent, only once every asset is valid and durably stored; anything less
//! and the half-received job is removed. The same use case serves the API, the portal
//! and the single-meter endpoint; its [`UploadError`] is answered as JSON by the API and
//! as a page by the portal.

use std::io;
use std::ops::ControlFlow;
use std::sync::Arc;

use axum::body::Body;
use futures_util::TryStreamExt;
use gridroll_domain::compact::CompactAsset;
use gridroll_domain::intake::{self, Accepted, Format, IntakeError, Problem, Problems};
use gridroll_domain::timestamp::to_millis;
use gridroll_domain::{JobId, PartnerId};
use gridroll_store::{AssetBatch, JobStore, NewJob, ProvisionalAsset, Received, StoreError};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::AppState;
use crate::body::{self, Failure};
use crate::error::ApiError;
use crate::slots::{Slot, SlotRefused};

/// A bulk upload as the request describes it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub format: Format,
    pub file_name: Option<String>,
    pub update_existing: bool,
}

/// Why an upload was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The body holds problems: nothing was stored.
    #[error("the upload has {} problems", .0.total)]
    Rejected(Problems),
    /// The body is larger than the limit, in bytes.
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    /// The body stopped arriving, or arrived too slowly.
    #[error("the body did not arrive in time: {0}")]
    Stalled(String),
    /// The body broke off, or is not what its encoding says.
    #[error("the body could not be read: {0}")]
    Unreadable(String),
    /// Every place for an upload is taken.
    #[error(transparent)]
    Busy(#[from] SlotRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault of the server's own.
    #[error("{0}")]
    Internal(String),
}

impl UploadError {
    /// What the intake's failure to read a body means; `limit` is the size limit in force.
    pub fn of_intake(error: IntakeError, limit: u64) -> Self {
        match error {
            IntakeError::Rejected(problems) => Self::Rejected(problems),
            IntakeError::Read(e) => match body::failure(&e) {
                Failure::TooLarge => Self::TooLarge(limit),
                Failure::Stalled => Self::Stalled(body::describe(&e)),
                Failure::Broken => Self::Unreadable(body::describe(&e)),
            },
            IntakeError::Stopped => Self::Internal(IntakeError::Stopped.to_string()),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::Rejected(problems) => ApiError::invalid_assets(problems),
            UploadError::TooLarge(limit) => ApiError::payload_too_large(limit),
            UploadError::Stalled(why) => body::stalled(&why),
            UploadError::Unreadable(why) => body::unreadable(&why),
            UploadError::Busy(refused) => refused.into(),
            UploadError::Store(e) => e.into(),
            UploadError::Internal(why) => ApiError::internal(&UploadError::Internal(why)),
        }
    }
}

/// The marker of a body that went past the size limit while streaming.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than {0} bytes")]
pub(crate) struct TooLarge(u64);

/// A place among the bulk uploads received at once, for `partner` (see
/// [`crate::slots::UploadSlots`]).
pub fn permit(state: &AppState, partner: PartnerId) -> Result<Slot, UploadError> {
    Ok(state.uploads.take(partner)?)
}

/// Receives a bulk upload and returns the id of its job, ready for the workers.
pub async fn receive(
    state: &AppState,
    partner: PartnerId,
    upload: Upload,
    body: Body,
) -> Result<JobId, UploadError> {
    let id = JobId::new();
    let extension = match upload.format {
        Format::Json => "json",
        Format::Csv => "csv",
    };
    let job = NewJob {
        id,
        file_name: Some(
            upload
                .file_name
                .unwrap_or_else(|| format!("{id}.{extension}")),
        ),
        update_existing: upload.update_existing,
        processed_by: None,
    };
    state
        .jobs
        .begin_job(partner, &job, state.now_millis())
        .await?;
    // Removes the job if this future is dropped mid-upload (the client went away).
    let guard = DiscardOnDrop::new(state.jobs.clone(), id);
    let accepted = match stream_assets(state, id, upload.format, body).await {
        Ok(accepted) => accepted,
        Err(error) => {
            guard.disarm();
            if let Err(e) = state.jobs.discard_job(id).await {
                tracing::warn!(job = %id, error = %e, "could not remove a rejected upload; it is removed at the next start");
            }
            return Err(error);
        }
    };
    commit(state, id, &accepted).await?;
    guard.disarm();
    state.jobs_ready.notify_waiters();
    tracing::info!(job = %id, assets = accepted.assets_count, "job accepted");
    Ok(id)
}

/// A body as a blocking reader that fails with [`TooLarge`] past `limit` bytes: for
/// reading on a blocking thread.
pub fn blocking_reader(body: Body, limit: u64) -> impl io::Read + Send + 'static {
    let mut received = 0u64;
    let stream = body
        .into_data_stream()
        .map_err(io::Error::other)
        .and_then(move |chunk| {
            received += chunk.len() as u64;
            let result = if received > limit {
                Err(io::Error::other(TooLarge(limit)))
            } else {
                Ok(chunk)
            };
            std::future::ready(result)
        });
    SyncIoBridge::new(StreamReader::new(stream))
}

/// Reads what is left of a refused body and drops it, so that the client, still sending,
/// reads the answer rather than a reset connection. Bounded by the body's size limit and
/// its pace.
pub fn drain(reader: &mut impl io::Read) {
    let _ = io::copy(reader, &mut io::sink());
}

/// The longest an upload goes without writing what it has received (well inside the
/// store's receiving lease of ten minutes).
const BATCH_AT_LEAST_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Streams the body through validation into the store, in batches.
async fn stream_assets(
    state: &AppState,
    id: JobId,
    format: Format,
    body: Body,
) -> Result<Accepted, UploadError> {
    let mut reader = blocking_reader(body, state.config.max_body_bytes);
    let batch_size = state.config.upload_batch.max(1);
    let (tx, mut rx) = mpsc::channel::<AssetBatch>(1);
    let parse = tokio::task::spawn_blocking(move || {
        let mut batch = AssetBatch::new(0);
        let mut seq = 0u64;
        let send = |batch: AssetBatch| tx.blocking_send(batch).is_ok();
        // A slow upload still writes a batch every so often, which renews its receiving
        // lease: an upload that writes nothing for its lease is taken for abandoned.
        let mut batch_started = std::time::Instant::now();
        let mut result = intake::read_compact_assets(format, &mut reader, &mut |asset| {
            batch.push(asset);
            seq += 1;
            let due = batch.len() >= batch_size
                || (seq.is_multiple_of(256) && batch_started.elapsed() >= BATCH_AT_LEAST_EVERY);
            if due {
                batch_started = std::time::Instant::now();
                if !send(std::mem::replace(&mut batch, AssetBatch::new(seq))) {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        if result.is_ok() && !batch.is_empty() && !send(batch) {
            result = Err(IntakeError::Stopped);
        }
        if matches!(result, Err(IntakeError::Rejected(_))) {
            drain(&mut reader);
        }
        result
    });
    let (jobs, clock) = (state.jobs.clone(), state.clock.clone());
    let write = async move {
        while let Some(batch) = rx.recv().await {
            jobs.append_assets(id, batch, to_millis(clock.now()))
                .await?;
        }
        Ok::<_, StoreError>(())
    };
    let (parsed, written) = tokio::join!(parse, write);
    // A write failure stops the reader, so report it before what the reader saw.
    written?;
    match parsed {
        Ok(Ok(accepted)) => Ok(accepted),
        Ok(Err(error)) => Err(UploadError::of_intake(error, state.config.max_body_bytes)),
        Err(join) => Err(UploadError::Internal(join.to_string())),
    }
}

async fn commit(state: &AppState, id: JobId, accepted: &Accepted) -> Result<(), StoreError> {
    state
        .jobs
        .commit_job(id, &Received::of(accepted), state.now_millis())
        .await
}

/// Removes a job that is being received unless the upload completes.
struct DiscardOnDrop {
    jobs: Arc<dyn JobStore>,
    job: JobId,
    armed: bool,
}

impl DiscardOnDrop {
    fn new(jobs: Arc<dyn JobStore>, job: JobId) -> Self {
        Self {
            jobs,
            job,
            armed: true,
        }
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for DiscardOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let jobs = self.jobs.clone();
            let job = self.job;
            tokio::spawn(async move {
                if let Err(e) = jobs.discard_job(job).await {
                    tracing::warn!(%job, error = %e, "could not remove a rejected upload; it is removed at the next start");
                }
            });
        }
    }
}

/// Creates or updates one meter synchronously: the asset goes through a job of one, which
/// this request processes itself, and the answer is the provisional asset.
pub async fn create_single(
    state: &AppState,
    partner: PartnerId,
    body: Value,
    update_existing: bool,
) -> Result<ProvisionalAsset, UploadError> {
    let asset = single_asset(body)?;
    let data = intake::parse_one(asset).map_err(UploadError::Rejected)?;

    let id = JobId::new();
    let worker = format!("request-{id}");
    let job = NewJob {
        id,
        file_name: None,
        update_existing,
        processed_by: Some(worker.clone()),
    };
    let jobs = state.jobs.as_ref();
    jobs.begin_job(partner, &job, state.now_millis()).await?;
    let guard = DiscardOnDrop::new(state.jobs.clone(), id);
    let received = Received {
        assets_count: 1,
        transmission_regions: vec![data.transmission_region().to_string()],
        customer_classifications: vec![data.customer_classification().to_string()],
        meter_types: vec![data.meter_type().to_string()],
    };
    let mut batch = AssetBatch::new(0);
    batch.push(CompactAsset::of(&data));
    jobs.append_assets(id, batch, state.now_millis()).await?;
    jobs.commit_job(id, &received, state.now_millis()).await?;
    guard.disarm();
    jobs.process_chunk(id, &worker, 1, state.config.lease, true, state.now_millis())
        .await?;
    jobs.provisional_asset(partner, id, 0)
        .await?
        .ok_or_else(|| UploadError::Internal(format!("job {id} lost its asset")))
}

/// Takes `provisional_asset` out of `{"provisional_asset": {...}, "onboarding_token": "..."}`.
fn single_asset(body: Value) -> Result<Value, UploadError> {
    let Value::Object(mut object) = body else {
        return Err(UploadError::Rejected(Problems::single(Problem::general(
            "the body must be an object with a provisional_asset",
        ))));
    };
    let mut problems = Problems::default();
    for key in object.keys() {
        if key != "provisional_asset" && key != "onboarding_token" {
            problems.push(Problem {
                message: "unknown field".to_owned(),
                json_index: None,
                csv_row: None,
                problem_field: Some(key.clone()),
                suggestion: None,
            });
        }
    }
    if object
        .get("onboarding_token")
        .is_some_and(|t| !t.is_string() && !t.is_null())
    {
        problems.push(Problem {
            message: "must be a string".to_owned(),
            json_index: None,
            csv_row: None,
            problem_field: Some("onboarding_token".to_owned()),
            suggestion: None,
        });
    }
    let asset = object.remove("provisional_asset").filter(|v| !v.is_null());
    if asset.is_none() {
        problems.push(Problem {
            message: "is required".to_owned(),
            json_index: None,
            csv_row: None,
            problem_field: Some("provisional_asset".to_owned()),
            suggestion: None,
        });
    }
    match asset {
        Some(asset) if problems.is_empty() => Ok(asset),
        _ => Err(UploadError::Rejected(problems)),
    }
}
