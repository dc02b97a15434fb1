-- A job whose chunks keep failing is retried later each time and then given up, rather
-- than retried for ever: failed_attempts counts the failures in a row (a chunk that
-- succeeds resets it) and last_error keeps what the last one said, for the operator.
ALTER TABLE jobs ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN last_error text;
