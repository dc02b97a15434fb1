-- A meter stores its enrollments as entries of text, `PROGRAM STATUS[ mMISSING][ rREASONS]
-- [ @ACTIVATED_AT]` separated by `;`, the missing fields by their positions in the compact
-- form (see evaluate::stored_enrollments in src/evaluate.rs): a third of the bytes of the
-- arrays of values written since schema version 12. Meters written before keep their
-- arrays (or objects) until they are next written; every form is read. Nothing is
-- rewritten here: the version marks that releases before this one cannot read such a
-- database, and stops them from opening it.
SELECT 1;
