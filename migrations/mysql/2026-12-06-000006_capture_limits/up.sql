-- The most a callback may hold (`hooks add|edit --max-payload-size`, default 10 MB): a
-- change whose data is larger becomes a failed callback when it is admitted, and a body
-- rendered larger fails before it is sent, so no row can take the sender's memory with
-- it. A content setting, like the template: the version keeps the one it was made with.
ALTER TABLE httphooks_hooks ADD COLUMN max_payload_size BIGINT NOT NULL DEFAULT 10485760;
ALTER TABLE httphooks_hook_versions ADD COLUMN max_payload_size BIGINT NOT NULL DEFAULT 10485760;

-- Why a change could not be captured as it should: a row too large for MySQL to turn
-- into JSON in its trigger (more than max_allowed_packet allows). Admission makes it a
-- failed callback that says so.
ALTER TABLE httphooks_new_callbacks ADD COLUMN problem TEXT;

-- A callback with the content of the hook version it was made with. Its delivery
-- settings (URL, method, headers, timeout, attempts, auth, signing, CA file, size limit)
-- are its hook's current ones: the hook version `settings_version_id` (a version is an
-- immutable snapshot of every setting), so a new setting needs no new view.
CREATE OR REPLACE VIEW httphooks_callback_details AS
SELECT c.id, c.hook_id, c.version_id, coalesce(h.name, v.name) AS hook_name, c.event_type,
       v.table_name, c.object_id, v.content_type, v.payload_template, c.payload, c.event_data,
       c.status, c.status_details, c.attempts, c.next_attempt_at, c.created_at, c.updated_at,
       c.claimed_until, c.claim_token, coalesce(h.version_id, v.id) AS settings_version_id,
       h.enabled AS hook_enabled, c.claim_started, c.webhook_id, c.attempts_before_retry
FROM httphooks_callbacks c
JOIN httphooks_hook_versions v ON v.id = c.version_id
LEFT JOIN httphooks_hooks h ON h.id = c.hook_id;

CREATE OR REPLACE VIEW httphooks_new_callback_matches AS
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
     AND LOCATE(CONCAT(',', n.event_type, ','), h.events) > 0
     AND (n.event_type <> 'update' OR h.when_changed IS NULL OR n.problem IS NOT NULL OR EXISTS (
         SELECT 1 FROM JSON_TABLE(h.when_changed, '$[*]' COLUMNS (col VARCHAR(255) PATH '$')) w
         WHERE NOT (JSON_EXTRACT(n.row_data, CONCAT('$.', JSON_QUOTE(w.col)))
                    <=> JSON_EXTRACT(n.old_row_data, CONCAT('$.', JSON_QUOTE(w.col))))))
JOIN httphooks_hook_versions v ON v.id = h.version_id
WHERE n.version_id IS NULL;

-- Truncate is an event of tables (PostgreSQL's triggers see it), so not a custom one.
DROP PROCEDURE httphooks_enqueue;
CREATE PROCEDURE httphooks_enqueue(IN hook VARCHAR(255), IN event_type VARCHAR(255), IN data LONGTEXT)
    MODIFIES SQL DATA SQL SECURITY DEFINER
BEGIN
    DECLARE message VARCHAR(512);
    IF event_type IN ('insert', 'update', 'delete', 'truncate') THEN
        SET message = CONCAT('httphooks: ', event_type, ' events come from the table''s triggers; enqueue takes custom events');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = message;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM httphooks_hooks h WHERE h.name = hook) THEN
        SET message = CONCAT('httphooks: there is no hook named ', hook, '; list them with `httphooks hooks list`');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = message;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM httphooks_hooks h
                   WHERE h.name = hook AND LOCATE(CONCAT(',', event_type, ','), h.events) > 0) THEN
        SET message = CONCAT('httphooks: hook ', hook, ' does not listen to event ', event_type, '; add it with `httphooks hooks edit`');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = message;
    END IF;
    IF data IS NULL OR NOT JSON_VALID(data) THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'httphooks: the data must be a JSON document';
    END IF;
    INSERT INTO httphooks_new_callbacks (version_id, event_type, row_data, created_at)
    SELECT h.version_id, event_type, data, UTC_TIMESTAMP(6)
    FROM httphooks_hooks h
    WHERE h.name = hook AND h.enabled;
END;
