-- Account housekeeping. An API key keeps the first characters of the key itself
-- (`grk_` and eight more), shown beside its name so that two keys of one name can be
-- told apart; they are a sliver of a long random key, so the rest stays secret. Keys made
-- before have none (NULL). Admins list a partner's pending invitations, found by partner.
ALTER TABLE api_keys ADD COLUMN prefix text;
CREATE INDEX invitations_by_partner ON invitations (partner_id, email);
