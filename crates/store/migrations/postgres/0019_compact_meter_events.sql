-- A meter.created or meter.updated event keeps its payload as the values of its four
-- fields, `["<meter_id>","<reference>","<region>","<type>"]`, instead of the JSON object
-- with their names (see gridroll_domain::event); the object is written out when the event
-- is delivered or read from the feed. Events written before keep their objects, and both
-- forms are read. Nothing is rewritten here: the version marks that releases before this
-- one cannot read such a database, and stops them from opening it.
SELECT 1;
