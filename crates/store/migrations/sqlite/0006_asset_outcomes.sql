-- What became of each asset moves out of the job input into a narrow table of its own.
-- The job input is written once, when an upload is accepted, and never rewritten:
-- processing a chunk adds one small row per asset instead of rewriting each asset's row,
-- data and all.
--
-- An asset without an outcome is still being processed. Outcomes are written only by
-- processing, which starts after the upload is accepted, and jobs are deleted only while
-- they are being received: an outcome never outlives its job.
CREATE TABLE asset_outcomes (
    job_id              BLOB NOT NULL,
    seq                 INTEGER NOT NULL,
    status              TEXT NOT NULL,
    status_name         TEXT,
    status_description  TEXT,
    meter_id            BLOB,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

INSERT INTO asset_outcomes (job_id, seq, status, status_name, status_description, meter_id)
SELECT job_id, seq, status, status_name, status_description, meter_id
FROM provisional_assets
WHERE status <> 'PROCESSING';

-- The job input without the outcome columns, copied once (dropping the five columns one
-- by one would rewrite the table five times).
CREATE TABLE provisional_assets_input (
    job_id                   BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq                      INTEGER NOT NULL,
    partner_id               BLOB NOT NULL,
    partner_reference        TEXT NOT NULL,
    transmission_region      TEXT NOT NULL,
    customer_classification  TEXT NOT NULL,
    meter_type               TEXT NOT NULL,
    load_types               TEXT NOT NULL,
    customer_group           TEXT,
    data                     TEXT NOT NULL,
    created_at               INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
);
INSERT INTO provisional_assets_input
SELECT job_id, seq, partner_id, partner_reference, transmission_region,
       customer_classification, meter_type, load_types, customer_group, data, created_at
FROM provisional_assets
ORDER BY job_id, seq;
DROP TABLE provisional_assets;
ALTER TABLE provisional_assets_input RENAME TO provisional_assets;
CREATE INDEX provisional_assets_by_partner ON provisional_assets (partner_id, job_id DESC, seq);

-- Each asset as uploaded, with its outcome: what the API and the portal read.
CREATE VIEW asset_states AS
SELECT pa.job_id, pa.seq, pa.partner_id, pa.partner_reference, pa.transmission_region,
       pa.customer_classification, pa.meter_type, pa.load_types, pa.customer_group,
       pa.data, pa.created_at,
       coalesce(o.status, 'PROCESSING') AS status, o.status_name, o.status_description,
       o.meter_id
FROM provisional_assets pa
LEFT JOIN asset_outcomes o ON o.job_id = pa.job_id AND o.seq = pa.seq;
