-- Partners, their API keys, meters, and the meter batch jobs that create them.
-- The same tables as the SQLite schema: ids are UUIDv7, timestamps milliseconds since the
-- epoch (UTC), and records are kept as JSON text (JSONB costs three times as much to write
-- and nothing here queries inside it).

CREATE TABLE partners (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  bigint NOT NULL
);

-- Only the SHA-256 of a key is kept; the key itself is shown once, when it is made.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    partner_id  uuid NOT NULL REFERENCES partners (id),
    name        text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,
    created_at  bigint NOT NULL,
    revoked_at  bigint
);

-- `reference_slot` makes partner-created meters unique per partner_reference while
-- meters from other channels may share one: it is empty for partner-created meters and
-- the meter's own id otherwise. The one unique index below enforces that, arbitrates
-- concurrent creates (ON CONFLICT), and serves every lookup by (partner, reference).
CREATE TABLE meters (
    id                       uuid PRIMARY KEY,
    partner_id               uuid NOT NULL REFERENCES partners (id),
    partner_reference        text NOT NULL,
    reference_slot           bytea NOT NULL,
    created_by               text NOT NULL,
    transmission_region      text NOT NULL,
    customer_classification  text NOT NULL,
    meter_type               text NOT NULL,
    load_types               text NOT NULL,
    customer_group           text,
    data                     text NOT NULL,
    created_at               bigint NOT NULL,
    updated_at               bigint NOT NULL
);
CREATE UNIQUE INDEX meters_by_reference ON meters (partner_id, partner_reference, reference_slot);

-- status: RECEIVING while an upload streams in (invisible; removed when its lease lapses),
-- then PROCESSING until every asset is final, then the final status. A worker holds
-- lease_owner until lease_expires_at, renewed with every chunk.
CREATE TABLE jobs (
    id                    uuid PRIMARY KEY,
    partner_id            uuid NOT NULL REFERENCES partners (id),
    status                text NOT NULL,
    file_name             text,
    update_existing       boolean NOT NULL,
    assets_count          bigint NOT NULL DEFAULT 0,
    created_count         bigint NOT NULL DEFAULT 0,
    updated_count         bigint NOT NULL DEFAULT 0,
    failed_count          bigint NOT NULL DEFAULT 0,
    transmission_regions  text NOT NULL DEFAULT '',
    lease_owner           text,
    lease_expires_at      bigint,
    created_at            bigint NOT NULL,
    updated_at            bigint NOT NULL
);
CREATE INDEX jobs_by_partner ON jobs (partner_id, id);
CREATE INDEX jobs_with_work ON jobs (id) WHERE status = 'PROCESSING';
CREATE INDEX jobs_receiving ON jobs (lease_expires_at) WHERE status = 'RECEIVING';

-- One row per uploaded asset: the durable job input and, once processed, its outcome.
CREATE TABLE provisional_assets (
    job_id                   uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq                      bigint NOT NULL,
    partner_id               uuid NOT NULL,
    partner_reference        text NOT NULL,
    transmission_region      text NOT NULL,
    customer_classification  text NOT NULL,
    meter_type               text NOT NULL,
    load_types               text NOT NULL,
    customer_group           text,
    status                   text NOT NULL,
    status_name              text,
    status_description       text,
    meter_id                 uuid,
    data                     text NOT NULL,
    created_at               bigint NOT NULL,
    updated_at               bigint NOT NULL,
    PRIMARY KEY (job_id, seq)
);
