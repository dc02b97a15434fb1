-- The portal: users of a partner, their sessions and invitations. API keys gain a
-- permission and the time they were last used.

-- email is lower-cased and unique across the platform: it is what a user signs in with.
-- password_hash is a PHC string (Argon2id).
CREATE TABLE users (
    id               uuid PRIMARY KEY,
    partner_id       uuid NOT NULL REFERENCES partners (id),
    email            text NOT NULL UNIQUE,
    role             text NOT NULL,
    password_hash    text NOT NULL,
    failed_sign_ins  integer NOT NULL DEFAULT 0,
    locked_until     bigint,
    last_sign_in_at  bigint,
    created_at       bigint NOT NULL
);
CREATE INDEX users_by_partner ON users (partner_id, id);

-- Only the SHA-256 of a session token is kept, as for API keys.
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    csrf_token  text NOT NULL,
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE invitations (
    token_hash  bytea PRIMARY KEY,
    partner_id  uuid NOT NULL REFERENCES partners (id),
    email       text NOT NULL,
    role        text NOT NULL,
    invited_by  uuid NOT NULL REFERENCES users (id),
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL
);

ALTER TABLE api_keys ADD COLUMN permission text NOT NULL DEFAULT 'read_write';
ALTER TABLE api_keys ADD COLUMN last_used_at bigint;
CREATE INDEX api_keys_by_partner ON api_keys (partner_id, id);

-- The dashboard counts a partner's meters by region, enrollment status and whether they
-- need an action in one scan of this index alone. The columns ride along on the index
-- that pages a region in id order, rather than costing an index of their own on every
-- meter written.
DROP INDEX meters_by_region;
CREATE INDEX meters_by_region
    ON meters (partner_id, transmission_region, id, global_enrollment_status,
               partner_action_required);
