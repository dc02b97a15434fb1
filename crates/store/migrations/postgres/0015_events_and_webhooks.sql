-- Events and webhook subscriptions.
--
-- events is the outbox and the feed: every change that commits writes its events in the
-- same transaction. Each partner's events are numbered from partners.last_event_seq,
-- which a transaction raises for the events it writes; the row it updates keeps a
-- partner's writers of events one at a time until they commit, so a partner's events
-- commit in the order of their numbers and a reader that has seen number n has seen
-- every event before it.
ALTER TABLE partners ADD COLUMN last_event_seq bigint NOT NULL DEFAULT 0;

CREATE TABLE events (
    partner_id  uuid NOT NULL,
    seq         bigint NOT NULL,
    id          uuid NOT NULL,
    event_type  text NOT NULL,
    payload     text NOT NULL,
    created_at  bigint NOT NULL,
    PRIMARY KEY (partner_id, seq)
);

-- A subscription's `position` is the last of its partner's events handed to the
-- dispatcher; the dispatcher that holds its lease delivers what follows.
CREATE TABLE webhooks (
    id                     uuid PRIMARY KEY,
    partner_id             uuid NOT NULL REFERENCES partners (id),
    receiver_url           text NOT NULL,
    event_types            text NOT NULL,
    headers                text NOT NULL,
    secret                 text NOT NULL,
    previous_secret        text,
    previous_secret_until  bigint,
    position               bigint NOT NULL,
    failing_since          bigint,
    disabled_at            bigint,
    lease_owner            text,
    lease_expires_at       bigint,
    created_at             bigint NOT NULL,
    updated_at             bigint NOT NULL
);
CREATE INDEX webhooks_by_partner ON webhooks (partner_id, created_at);

-- An event a subscription still has to deliver after its first attempt failed, or was
-- asked to deliver again; and how it ended.
CREATE TABLE webhook_deliveries (
    webhook_id       uuid NOT NULL,
    event_seq        bigint NOT NULL,
    event_id         uuid NOT NULL,
    status           text NOT NULL,
    attempts         bigint NOT NULL,
    next_attempt_at  bigint,
    updated_at       bigint NOT NULL,
    PRIMARY KEY (webhook_id, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE status = 'PENDING';

-- Every attempt, for the delivery log.
CREATE TABLE webhook_attempts (
    webhook_id    uuid NOT NULL,
    id            uuid NOT NULL,
    event_seq     bigint NOT NULL,
    event_id      uuid NOT NULL,
    event_type    text NOT NULL,
    attempt       bigint NOT NULL,
    attempted_at  bigint NOT NULL,
    status_code   bigint,
    latency_ms    bigint NOT NULL,
    response      text NOT NULL,
    error         text,
    succeeded     boolean NOT NULL,
    PRIMARY KEY (webhook_id, id)
);
CREATE INDEX webhook_attempts_by_event ON webhook_attempts (webhook_id, event_id);
