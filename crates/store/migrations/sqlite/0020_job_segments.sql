-- The job input is written once, compactly: an upload's assets in segments of up to a
-- thousand consecutive assets, one row each, holding the assets' compact forms a line
-- each (`body`) and their references a line each (`refs`, what a search of jobs by
-- reference looks in), instead of a row per asset with its searched columns, indexed
-- twice. An asset's outcome stays a row of its own in asset_outcomes. See
-- src/jobs/segments.rs.
CREATE TABLE job_segments (
    job_id      BLOB NOT NULL,
    first_seq   INTEGER NOT NULL,
    assets      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    refs        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (job_id, first_seq)
);

-- The jobs already stored, in progress or not, move over as they are: every asset of a
-- job is stored, so the groups of a thousand sequences are runs without gaps.
INSERT INTO job_segments (job_id, first_seq, assets, body, refs, created_at)
SELECT job_id, (seq / 1000) * 1000, count(*),
       string_agg(data, char(10) ORDER BY seq),
       string_agg(partner_reference, char(10) ORDER BY seq),
       min(created_at)
FROM provisional_assets
GROUP BY job_id, seq / 1000;

-- The values of a job's assets that its listing offers as filters, kept on the job as
-- its regions are.
ALTER TABLE jobs ADD COLUMN customer_classifications TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN meter_types TEXT NOT NULL DEFAULT '';
UPDATE jobs SET
    customer_classifications = coalesce((
        SELECT string_agg(v, ',') FROM (
            SELECT DISTINCT customer_classification AS v FROM provisional_assets pa
            WHERE pa.job_id = jobs.id) d), ''),
    meter_types = coalesce((
        SELECT string_agg(v, ',') FROM (
            SELECT DISTINCT meter_type AS v FROM provisional_assets pa
            WHERE pa.job_id = jobs.id) d), '');

DROP VIEW asset_states;
DROP TABLE provisional_assets;

-- The assets that did not become meters, found without reading the others: the failed
-- rows of a job, and the statuses a partner's assets have.
CREATE INDEX asset_outcomes_unmade ON asset_outcomes (job_id, seq) WHERE status <> 'COMPLETED';
