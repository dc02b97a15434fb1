-- Where each job's processing has got to: the first asset not yet processed. Chunks are
-- processed in upload order, so each one starts here instead of scanning the done ones.
ALTER TABLE jobs ADD COLUMN next_seq INTEGER NOT NULL DEFAULT 0;
