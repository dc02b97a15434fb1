-- The read side: what meter search filters on, and indexes that keep it fast.

-- A meter's enrollment summary, kept on the meter so search can filter on it: the derived
-- global status, whether the partner has something to do, and which action types are
-- open (comma-separated). Until programs are evaluated every meter is INELIGIBLE.
ALTER TABLE meters ADD COLUMN global_enrollment_status TEXT NOT NULL DEFAULT 'INELIGIBLE';
ALTER TABLE meters ADD COLUMN partner_action_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meters ADD COLUMN partner_action_types TEXT NOT NULL DEFAULT '';
ALTER TABLE meters ADD COLUMN is_archived INTEGER NOT NULL DEFAULT 0;

-- Paging in id order (UUIDv7: creation order) within a partner, alone or by region.
CREATE INDEX meters_by_partner ON meters (partner_id, id);
CREATE INDEX meters_by_region ON meters (partner_id, transmission_region, id);
-- Delta sync: what changed since an instant.
CREATE INDEX meters_by_update ON meters (partner_id, updated_at);

-- Listing a partner's provisional assets, newest job first.
CREATE INDEX provisional_assets_by_partner ON provisional_assets (partner_id, job_id DESC, seq);
