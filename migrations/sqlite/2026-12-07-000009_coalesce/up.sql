-- `hooks add|edit --coalesce`: of the waiting changes of a row, a run sends the newest
-- and marks the older ones superseded (status `superseded`, `superseded_by` the
-- callback they were folded into). A hook setting: every hook version holds it.
ALTER TABLE httphooks_hook_versions ADD COLUMN coalesced BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE httphooks_callbacks ADD COLUMN superseded_by BIGINT;

DROP VIEW httphooks_callback_details;
CREATE VIEW httphooks_callback_details AS
SELECT c.id, c.hook_id, c.version_id, coalesce(h.name, v.name) AS hook_name, c.event_type,
       v.table_name, c.object_id, v.content_type, v.payload_template, c.payload, c.event_data,
       c.status, c.status_details, c.attempts, c.next_attempt_at, c.created_at, c.updated_at,
       c.claimed_until, c.claim_token, coalesce(h.version_id, v.id) AS settings_version_id,
       h.enabled AS hook_enabled, c.claim_started, c.webhook_id, c.attempts_before_retry,
       c.superseded_by
FROM httphooks_callbacks c
JOIN httphooks_hook_versions v ON v.id = c.version_id
LEFT JOIN httphooks_hooks h ON h.id = c.hook_id;

-- `status` counts each hook's superseded callbacks of the last day, as it counts errors.
CREATE INDEX httphooks_callbacks_superseded ON httphooks_callbacks (updated_at, hook_id)
    WHERE status = 'superseded';
