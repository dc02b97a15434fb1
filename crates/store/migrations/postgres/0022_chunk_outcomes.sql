-- What became of a chunk's assets that became meters, one row per chunk rather than one
-- per asset: each asset's kind a character (`C` created, `U` updated, `-` any other
-- outcome, which stays a row of its own in asset_outcomes) and its meter's id, sixteen
-- bytes each (zeros for the others). See jobs/chunk.rs::write_outcomes. Outcomes recorded
-- before stay as they are, and both are read.
CREATE TABLE chunk_outcomes (
    job_id     uuid NOT NULL,
    first_seq  bigint NOT NULL,
    assets     bigint NOT NULL,
    kinds      text NOT NULL,
    meter_ids  bytea NOT NULL,
    PRIMARY KEY (job_id, first_seq)
);
