-- A user's email is unique within its partner, not across the platform: an invitation
-- to an address that has an account elsewhere makes a user of this partner too, so that
-- accepting one tells no admin whether an address is registered anywhere. The table is
-- rebuilt (SQLite cannot drop a column's UNIQUE), with foreign keys checked afterwards.
--
-- Failed sign-ins are counted per source as well (sign_in_failures): a source that
-- fails is locked out of the account, not the account itself. `source` is the SHA-256
-- of a browser the user signed in from before (sign_in_devices), or of the client's
-- address. failed_sign_ins stays the account's count in a row, which slows every
-- further failure of the account; locked_until is no longer used.
CREATE TABLE users_per_partner (
    id               BLOB PRIMARY KEY,
    partner_id       BLOB NOT NULL REFERENCES partners (id),
    email            TEXT NOT NULL,
    role             TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    failed_sign_ins  INTEGER NOT NULL DEFAULT 0,
    locked_until     INTEGER,
    last_sign_in_at  INTEGER,
    created_at       INTEGER NOT NULL
);
INSERT INTO users_per_partner SELECT id, partner_id, email, role, password_hash,
    failed_sign_ins, locked_until, last_sign_in_at, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_per_partner RENAME TO users;
CREATE INDEX users_by_partner ON users (partner_id, id);
CREATE UNIQUE INDEX users_by_email ON users (email, partner_id);

CREATE TABLE sign_in_failures (
    user_id       BLOB NOT NULL REFERENCES users (id),
    source        BLOB NOT NULL,
    failures      INTEGER NOT NULL,
    locked_until  INTEGER,
    PRIMARY KEY (user_id, source)
);

CREATE TABLE sign_in_devices (
    user_id     BLOB NOT NULL REFERENCES users (id),
    device      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, device)
);
