-- Idempotency keys: a partner's request made with an Idempotency-Key, and once it is
-- answered, the answer to replay. While the first request is in flight, `owner` holds
-- it until `locked_until` (renewed as it runs); once answered, `fingerprint` (SHA-256 of
-- the method, path, query and body) tells a repeat of the request from another one.
CREATE TABLE idempotency_keys (
    partner_id       BLOB NOT NULL,
    idempotency_key  TEXT NOT NULL,
    owner            BLOB,
    locked_until     INTEGER,
    fingerprint      BLOB,
    status           INTEGER,
    headers          TEXT,
    body             BLOB,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (partner_id, idempotency_key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
