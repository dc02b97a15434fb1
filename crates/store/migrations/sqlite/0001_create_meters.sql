-- Partners, their API keys, meters, and the meter batch jobs that create them.
-- Ids are UUIDv7 stored as 16-byte blobs; timestamps are milliseconds since the epoch, UTC.

CREATE TABLE partners (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Only the SHA-256 of a key is kept; the key itself is shown once, when it is made.
CREATE TABLE api_keys (
    id            BLOB PRIMARY KEY,
    partner_id    BLOB NOT NULL REFERENCES partners (id),
    name          TEXT NOT NULL,
    key_hash      BLOB NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);

-- `reference_slot` makes partner-created meters unique per partner_reference while
-- meters from other channels (utility authorizations, operator imports) may share one:
-- it is empty for partner-created meters and the meter's own id otherwise. The one index
-- below enforces that and serves every lookup by (partner, reference).
CREATE TABLE meters (
    id                       BLOB PRIMARY KEY,
    partner_id               BLOB NOT NULL REFERENCES partners (id),
    partner_reference        TEXT NOT NULL,
    reference_slot           BLOB NOT NULL,
    created_by               TEXT NOT NULL,
    transmission_region      TEXT NOT NULL,
    customer_classification  TEXT NOT NULL,
    meter_type               TEXT NOT NULL,
    load_types               TEXT NOT NULL,
    customer_group           TEXT,
    data                     TEXT NOT NULL,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
);
CREATE UNIQUE INDEX meters_by_reference ON meters (partner_id, partner_reference, reference_slot);

-- status: RECEIVING while an upload streams in (invisible, removed if it never
-- completes), then PROCESSING until every asset is final, then the final status.
CREATE TABLE jobs (
    id                    BLOB PRIMARY KEY,
    partner_id            BLOB NOT NULL REFERENCES partners (id),
    status                TEXT NOT NULL,
    file_name             TEXT,
    update_existing       INTEGER NOT NULL,
    assets_count          INTEGER NOT NULL DEFAULT 0,
    created_count         INTEGER NOT NULL DEFAULT 0,
    updated_count         INTEGER NOT NULL DEFAULT 0,
    failed_count          INTEGER NOT NULL DEFAULT 0,
    transmission_regions  TEXT NOT NULL DEFAULT '',
    lease_owner           TEXT,
    lease_expires_at      INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX jobs_by_partner ON jobs (partner_id, id);
CREATE INDEX jobs_with_work ON jobs (id) WHERE status = 'PROCESSING';

-- One row per uploaded asset: the durable job input (the validated asset, compact) and,
-- once processed, its outcome.
CREATE TABLE provisional_assets (
    job_id                   BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq                      INTEGER NOT NULL,
    partner_id               BLOB NOT NULL,
    partner_reference        TEXT NOT NULL,
    transmission_region      TEXT NOT NULL,
    customer_classification  TEXT NOT NULL,
    meter_type               TEXT NOT NULL,
    load_types               TEXT NOT NULL,
    customer_group           TEXT,
    status                   TEXT NOT NULL,
    status_name              TEXT,
    status_description       TEXT,
    meter_id                 BLOB,
    data                     TEXT NOT NULL,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
);
