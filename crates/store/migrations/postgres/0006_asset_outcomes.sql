-- What became of each asset moves out of the job input into a narrow table of its own.
-- The job input is written once, when an upload is accepted, and never rewritten:
-- processing a chunk adds one small row per asset instead of rewriting each asset's row,
-- data and all.
--
-- An asset without an outcome is still being processed. Outcomes are written only by
-- processing, which starts after the upload is accepted, and jobs are deleted only while
-- they are being received: an outcome never outlives its job.
CREATE TABLE asset_outcomes (
    job_id              uuid NOT NULL,
    seq                 bigint NOT NULL,
    status              text NOT NULL,
    status_name         text,
    status_description  text,
    meter_id            uuid,
    PRIMARY KEY (job_id, seq)
);

INSERT INTO asset_outcomes (job_id, seq, status, status_name, status_description, meter_id)
SELECT job_id, seq, status, status_name, status_description, meter_id
FROM provisional_assets
WHERE status <> 'PROCESSING';

ALTER TABLE provisional_assets
    DROP COLUMN status,
    DROP COLUMN status_name,
    DROP COLUMN status_description,
    DROP COLUMN meter_id,
    DROP COLUMN updated_at;

-- Each asset as uploaded, with its outcome: what the API and the portal read.
CREATE VIEW asset_states AS
SELECT pa.job_id, pa.seq, pa.partner_id, pa.partner_reference, pa.transmission_region,
       pa.customer_classification, pa.meter_type, pa.load_types, pa.customer_group,
       pa.data, pa.created_at,
       coalesce(o.status, 'PROCESSING') AS status, o.status_name, o.status_description,
       o.meter_id
FROM provisional_assets pa
LEFT JOIN asset_outcomes o ON o.job_id = pa.job_id AND o.seq = pa.seq;
