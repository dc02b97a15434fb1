-- Meters are keyed by (partner, id) instead of id alone. Every read of a meter is scoped
-- to its partner, and a partner's meters are paged in id order: the key now serves both,
-- and the index that paged them (meters_by_partner) goes. One index fewer to write for
-- every meter created.
ALTER TABLE meters DROP CONSTRAINT meters_pkey;
ALTER TABLE meters ADD PRIMARY KEY (partner_id, id);
DROP INDEX meters_by_partner;
