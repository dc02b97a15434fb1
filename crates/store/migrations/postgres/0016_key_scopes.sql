-- API keys carry scopes instead of a permission: a read-write key had every scope, a
-- read-only key every read.
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
UPDATE api_keys SET scopes = CASE permission
    WHEN 'read_only' THEN 'meters:read events:read webhooks:read'
    ELSE 'meters:read meters:write enrollments:write events:read webhooks:read webhooks:manage'
END;
ALTER TABLE api_keys DROP COLUMN permission;
