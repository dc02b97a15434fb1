-- A user's email is unique within its partner, not across the platform: an invitation
-- to an address that has an account elsewhere makes a user of this partner too, so that
-- accepting one tells no admin whether an address is registered anywhere.
--
-- Failed sign-ins are counted per source as well (sign_in_failures): a source that
-- fails is locked out of the account, not the account itself. `source` is the SHA-256
-- of a browser the user signed in from before (sign_in_devices), or of the client's
-- address. failed_sign_ins stays the account's count in a row, which slows every
-- further failure of the account; locked_until is no longer used.
ALTER TABLE users DROP CONSTRAINT users_email_key;
CREATE UNIQUE INDEX users_by_email ON users (email, partner_id);

CREATE TABLE sign_in_failures (
    user_id       uuid NOT NULL REFERENCES users (id),
    source        bytea NOT NULL,
    failures      integer NOT NULL,
    locked_until  bigint,
    PRIMARY KEY (user_id, source)
);

CREATE TABLE sign_in_devices (
    user_id     uuid NOT NULL REFERENCES users (id),
    device      bytea NOT NULL,
    created_at  bigint NOT NULL,
    PRIMARY KEY (user_id, device)
);
