-- Events and webhook subscriptions.
--
-- events is the outbox and the feed: every change that commits writes its events in the
-- same transaction. Each partner's events are numbered from partners.last_event_seq,
-- which a transaction raises for the events it writes; the row it updates keeps a
-- partner's writers of events one at a time until they commit, so a partner's events
-- commit in the order of their numbers and a reader that has seen number n has seen
-- every event before it.
ALTER TABLE partners ADD COLUMN last_event_seq integer NOT NULL DEFAULT 0;

CREATE TABLE events (
    partner_id  BLOB NOT NULL,
    seq         INTEGER NOT NULL,
    id          BLOB NOT NULL,
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (partner_id, seq)
) WITHOUT ROWID;

-- A subscription's `position` is the last of its partner's events handed to the
-- dispatcher; the dispatcher that holds its lease delivers what follows.
CREATE TABLE webhooks (
    id                     BLOB PRIMARY KEY,
    partner_id             BLOB NOT NULL REFERENCES partners (id),
    receiver_url           TEXT NOT NULL,
    event_types            TEXT NOT NULL,
    headers                TEXT NOT NULL,
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  INTEGER,
    position               INTEGER NOT NULL,
    failing_since          INTEGER,
    disabled_at            INTEGER,
    lease_owner            TEXT,
    lease_expires_at       INTEGER,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX webhooks_by_partner ON webhooks (partner_id, created_at);

-- An event a subscription still has to deliver after its first attempt failed, or was
-- asked to deliver again; and how it ended.
CREATE TABLE webhook_deliveries (
    webhook_id       BLOB NOT NULL,
    event_seq        INTEGER NOT NULL,
    event_id         BLOB NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE status = 'PENDING';

-- Every attempt, for the delivery log.
CREATE TABLE webhook_attempts (
    webhook_id    BLOB NOT NULL,
    id            BLOB NOT NULL,
    event_seq     INTEGER NOT NULL,
    event_id      BLOB NOT NULL,
    event_type    TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    attempted_at  INTEGER NOT NULL,
    status_code   INTEGER,
    latency_ms    INTEGER NOT NULL,
    response      TEXT NOT NULL,
    error         TEXT,
    succeeded     INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, id)
) WITHOUT ROWID;
CREATE INDEX webhook_attempts_by_event ON webhook_attempts (webhook_id, event_id);
