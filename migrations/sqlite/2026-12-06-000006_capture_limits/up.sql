-- The most a callback may hold (`hooks add|edit --max-payload-size`, default 10 MB): a
-- change whose data is larger becomes a failed callback when it is admitted, and a body
-- rendered larger fails before it is sent, so no row can take the sender's memory with
-- it. A content setting, like the template: the version keeps the one it was made with.
ALTER TABLE httphooks_hooks ADD COLUMN max_payload_size BIGINT NOT NULL DEFAULT 10485760;
ALTER TABLE httphooks_hook_versions ADD COLUMN max_payload_size BIGINT NOT NULL DEFAULT 10485760;
UPDATE httphooks_hook_versions SET max_payload_size = coalesce(
    (SELECT h.max_payload_size FROM httphooks_hooks h WHERE h.id = httphooks_hook_versions.hook_id),
    max_payload_size);

-- Why a change could not be captured as it should (a row too large to read back, a
-- table truncated under a hook that listens to deletes): admission makes it a failed
-- callback that says so instead of a waiting one. SQLite's triggers never set it.
ALTER TABLE httphooks_new_callbacks ADD COLUMN problem TEXT;

-- A callback with the content of the hook version it was made with. Its delivery
-- settings (URL, method, headers, timeout, attempts, auth, signing, CA file, size limit)
-- are its hook's current ones: the hook version `settings_version_id` (a version is an
-- immutable snapshot of every setting), so a new setting needs no new view.
DROP VIEW httphooks_callback_details;
CREATE VIEW httphooks_callback_details AS
SELECT c.id, c.hook_id, c.version_id, coalesce(h.name, v.name) AS hook_name, c.event_type,
       v.table_name, c.object_id, v.content_type, v.payload_template, c.payload, c.event_data,
       c.status, c.status_details, c.attempts, c.next_attempt_at, c.created_at, c.updated_at,
       c.claimed_until, c.claim_token, coalesce(h.version_id, v.id) AS settings_version_id,
       h.enabled AS hook_enabled, c.claim_started, c.webhook_id, c.attempts_before_retry
FROM httphooks_callbacks c
JOIN httphooks_hook_versions v ON v.id = c.version_id
LEFT JOIN httphooks_hooks h ON h.id = c.hook_id;

-- The matches carry what admission needs to fail a change that is too large or could
-- not be captured, naming its hook and table.
DROP VIEW httphooks_new_callback_matches;
CREATE VIEW httphooks_new_callback_matches AS
SELECT n.id AS seq, v.hook_id, v.id AS version_id, v.ordered, n.event_type, n.object_id,
       n.row_data, n.old_row_data, n.created_at, n.problem, v.max_payload_size,
       v.name AS hook_name, v.table_name
FROM httphooks_new_callbacks n JOIN httphooks_hook_versions v ON v.id = n.version_id
WHERE n.version_id IS NOT NULL
UNION ALL
SELECT n.id, h.id, v.id, v.ordered, n.event_type, n.object_id,
       n.row_data, n.old_row_data, n.created_at, n.problem, v.max_payload_size,
       v.name, v.table_name
FROM httphooks_new_callbacks n
JOIN httphooks_hooks h ON h.table_name = n.table_name AND h.enabled
     AND instr(h.events, ',' || n.event_type || ',') > 0
     AND (n.event_type <> 'update' OR h.when_changed IS NULL OR EXISTS (
         SELECT 1 FROM json_each(h.when_changed) w
         WHERE (SELECT a.value FROM json_each(n.row_data) a WHERE a.key = w.value)
               IS NOT (SELECT b.value FROM json_each(n.old_row_data) b WHERE b.key = w.value)))
JOIN httphooks_hook_versions v ON v.id = h.version_id
WHERE n.version_id IS NULL;
