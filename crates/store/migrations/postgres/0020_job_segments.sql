-- The job input is written once, compactly: an upload's assets in segments of up to a
-- thousand consecutive assets, one row each, holding the assets' compact forms a line
-- each (`body`) and their references a line each (`refs`, what a search of jobs by
-- reference looks in), instead of a row per asset with its searched columns, indexed
-- twice. An asset's outcome stays a row of its own in asset_outcomes. See
-- src/jobs/segments.rs.
CREATE TABLE job_segments (
    job_id      uuid NOT NULL,
    first_seq   bigint NOT NULL,
    assets      bigint NOT NULL,
    body        text NOT NULL,
    refs        text NOT NULL,
    created_at  bigint NOT NULL,
    PRIMARY KEY (job_id, first_seq)
);
-- A segment's text is compressed with lz4 where the server has it: as fast as the disk
-- takes it, and less than half its size (pglz, the default, took half of an upload's
-- time).
-- A server built without lz4 keeps its default.
DO $$ BEGIN
    ALTER TABLE job_segments
        ALTER COLUMN body SET COMPRESSION lz4, ALTER COLUMN refs SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN NULL;
END $$;

-- The jobs already stored, in progress or not, move over as they are: every asset of a
-- job is stored, so the groups of a thousand sequences are runs without gaps.
INSERT INTO job_segments (job_id, first_seq, assets, body, refs, created_at)
SELECT job_id, (seq / 1000) * 1000, count(*),
       string_agg(data, chr(10) ORDER BY seq),
       string_agg(partner_reference, chr(10) ORDER BY seq),
       min(created_at)
FROM provisional_assets
GROUP BY job_id, seq / 1000;

-- The values of a job's assets that its listing offers as filters, kept on the job as
-- its regions are.
ALTER TABLE jobs ADD COLUMN customer_classifications text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN meter_types text NOT NULL DEFAULT '';
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
