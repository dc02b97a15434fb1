//! Jobs whose chunks keep failing: each failure is noted and holds the job back for a
//! while (`gridroll_domain::job::retry_delay`), and a job that fails too often is given
//! up, its remaining assets failed with `PROCESSING_ERROR`. The statements are the same
//! on both backends.

/// Counts a failure of a job's chunk and keeps its message; answers the count.
/// $1 job, $2 worker, $3 message.
pub const NOTE_FAILURE: &str =
    "UPDATE jobs SET failed_attempts = failed_attempts + 1, last_error = $3
     WHERE id = $1 AND lease_owner = $2 AND status = 'PROCESSING'
     RETURNING failed_attempts";

/// Holds the job until a worker may try it again. $1 job, $2 worker, $3 until.
pub const HOLD: &str = "UPDATE jobs SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2";

/// The counts of a job its worker gives up. $1 job, $2 worker.
pub const GIVE_UP_HEAD: &str =
    "SELECT assets_count, created_count, updated_count, failed_count, next_seq, partner_id
     FROM jobs
     WHERE id = $1 AND lease_owner = $2 AND status = 'PROCESSING'";

/// Fails every asset of a job from its next sequence on. $1 job, $2 next sequence,
/// $3 description, $4 the job's assets.
pub const FAIL_REST: &str = "WITH RECURSIVE rest (seq) AS (
         SELECT CAST($2 AS BIGINT) UNION ALL SELECT seq + 1 FROM rest WHERE seq + 1 < $4)
     INSERT INTO asset_outcomes (job_id, seq, status, status_name, status_description, meter_id)
     SELECT $1, seq, 'FAILED', 'PROCESSING_ERROR', $3, NULL FROM rest WHERE seq < $4
     ON CONFLICT DO NOTHING";

/// Ends a given-up job. $1 job, $2 failed assets added, $3 status, $4 now.
pub const END: &str = "UPDATE jobs SET failed_count = failed_count + $2, next_seq = assets_count,
         status = $3, updated_at = $4, lease_owner = NULL, lease_expires_at = NULL
     WHERE id = $1";
