-- Where each job's processing has got to: the first asset not yet processed. Chunks are
-- processed in upload order, so each one starts here instead of scanning the done ones.
ALTER TABLE jobs ADD COLUMN next_seq bigint NOT NULL DEFAULT 0;

-- Jobs already under way continue from their first asset still processing.
UPDATE jobs SET next_seq = coalesce(
    (SELECT min(seq) FROM provisional_assets pa
     WHERE pa.job_id = jobs.id AND pa.status = 'PROCESSING'),
    assets_count)
WHERE status = 'PROCESSING';
