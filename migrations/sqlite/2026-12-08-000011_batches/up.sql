-- `hooks add|edit --batch-size N`: a run sends up to N waiting callbacks of the hook in
-- one request (a JSON array). A hook setting: every hook version holds it (1: one
-- callback per request, as before).
ALTER TABLE httphooks_hook_versions ADD COLUMN batch_size INTEGER NOT NULL DEFAULT 1;
-- The request an attempt was part of, when it carried a batch: its webhook-id, how
-- many callbacks it held and this one's place (`callbacks show` names it).
ALTER TABLE httphooks_attempts ADD COLUMN batch TEXT;
