-- A row of events may hold a run of consecutive events of one type: `span` of them, the
-- last numbered `seq`, their stored payloads one a line and their ids drawn from the
-- row's (see events/runs.rs). A chunk's thousands of `meter.created` events are then one
-- row rather than one each. Events recorded before are runs of one.
ALTER TABLE events ADD COLUMN span INTEGER NOT NULL DEFAULT 1;
