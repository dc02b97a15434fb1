-- Meters store their data in the compact form of job inputs (see gridroll_domain::compact):
-- a JSON array of the values in the order of the meter model's fields. Meters written
-- before keep their JSON object until they are next written; both forms are read
-- (`evaluate::parse_data`). Nothing is rewritten here: the version marks that releases
-- before this one cannot read such a database, and stops them from opening it.
SELECT 1;
