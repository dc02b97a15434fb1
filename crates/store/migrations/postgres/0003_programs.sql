-- Programs and enrollments.

-- The catalog: each program's definition as JSON. Retired programs stay for the record.
CREATE TABLE programs (
    identifier  text PRIMARY KEY,
    definition  text NOT NULL,
    retired     boolean NOT NULL DEFAULT false,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
);

-- The programs a partner may use; a partner with no rows here may use every program.
CREATE TABLE partner_programs (
    partner_id  uuid NOT NULL REFERENCES partners (id),
    identifier  text NOT NULL,
    PRIMARY KEY (partner_id, identifier)
);

-- A meter's enrollments (its standing with each program, JSON) and its periods of not
-- taking part (JSON), written with the meter itself. pending_programs (comma-separated)
-- finds the meters an operator can activate.
ALTER TABLE meters ADD COLUMN enrollments text NOT NULL DEFAULT '[]';
ALTER TABLE meters ADD COLUMN participation text NOT NULL DEFAULT '[]';
ALTER TABLE meters ADD COLUMN pending_programs text NOT NULL DEFAULT '';
