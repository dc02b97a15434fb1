-- Idempotency keys: a partner's request made with an Idempotency-Key, and once it is
-- answered, the answer to replay. While the first request is in flight, `owner` holds
-- it until `locked_until` (renewed as it runs); once answered, `fingerprint` (SHA-256 of
-- the method, path, query and body) tells a repeat of the request from another one.
CREATE TABLE idempotency_keys (
    partner_id       uuid NOT NULL,
    idempotency_key  text NOT NULL,
    owner            uuid,
    locked_until     bigint,
    fingerprint      bytea,
    status           bigint,
    headers          text,
    body             bytea,
    created_at       bigint NOT NULL,
    PRIMARY KEY (partner_id, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
