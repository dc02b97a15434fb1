-- A meter stores its enrollments as arrays of their values, `[program, status, missing,
-- reasons, activated_at]` cut after the last one set, instead of objects with every field
-- name (see `evaluate::stored_enrollments`). Meters written before keep their objects
-- until they are next written; both forms are read (`evaluate::parse_enrollments`).
-- Nothing is rewritten here: the version marks that releases before this one cannot read
-- such a database, and stops them from opening it.
SELECT 1;
