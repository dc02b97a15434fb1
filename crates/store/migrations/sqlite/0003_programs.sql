-- Programs and enrollments.

-- The catalog: each program's definition as JSON. Retired programs stay for the record.
CREATE TABLE programs (
    identifier  TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,
    retired     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- The programs a partner may use; a partner with no rows here may use every program.
CREATE TABLE partner_programs (
    partner_id  BLOB NOT NULL REFERENCES partners (id),
    identifier  TEXT NOT NULL,
    PRIMARY KEY (partner_id, identifier)
);

-- A meter's enrollments (its standing with each program, JSON) and its periods of not
-- taking part (JSON), written with the meter itself. pending_programs (comma-separated)
-- finds the meters an operator can activate.
ALTER TABLE meters ADD COLUMN enrollments TEXT NOT NULL DEFAULT '[]';
ALTER TABLE meters ADD COLUMN participation TEXT NOT NULL DEFAULT '[]';
ALTER TABLE meters ADD COLUMN pending_programs TEXT NOT NULL DEFAULT '';
