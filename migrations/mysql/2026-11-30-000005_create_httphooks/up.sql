-- MySQL 8 / MariaDB 10.6+: the schema the other backends reach after their five
-- migrations, in one (this backend started there). Later migrations get the next
-- versions, as on the other backends.
--
-- Timestamps are DATETIME(6) holding UTC (httphooks' sessions run with time_zone
-- '+00:00'; triggers write UTC_TIMESTAMP(6)). Text is utf8mb4 with a binary collation,
-- so names, statuses and keys compare byte for byte, as on the other backends. Text
-- that may be long (rows, bodies) is LONGTEXT; indexed text is VARCHAR.

CREATE TABLE httphooks_hooks (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    table_name VARCHAR(255),
    -- ',insert,update,' so that membership is a substring search.
    events TEXT NOT NULL,
    target_url TEXT NOT NULL,
    http_method VARCHAR(16) NOT NULL DEFAULT 'POST',
    headers TEXT NOT NULL DEFAULT ('{}'),
    content_type VARCHAR(255) NOT NULL DEFAULT 'application/json',
    payload_template LONGTEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    ordered BOOLEAN NOT NULL DEFAULT FALSE,
    when_changed TEXT,
    timeout_ms INT NOT NULL DEFAULT 10000,
    max_attempts INT NOT NULL DEFAULT 8,
    auth TEXT,
    signing_secret_env TEXT,
    ca_file TEXT,
    created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    updated_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    version_id BIGINT,
    -- PostgreSQL only (a table's oid); MySQL tables have no identity but their name.
    table_oid BIGINT,
    key_columns TEXT,
    capture_verified_at DATETIME(6),
    KEY httphooks_hooks_table_name (table_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE httphooks_hook_versions (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    hook_id BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    table_name VARCHAR(255),
    target_url TEXT NOT NULL,
    http_method VARCHAR(16) NOT NULL,
    headers TEXT NOT NULL,
    content_type VARCHAR(255) NOT NULL,
    payload_template LONGTEXT,
    timeout_ms INT NOT NULL,
    max_attempts INT NOT NULL,
    auth TEXT,
    signing_secret_env TEXT,
    ca_file TEXT,
    created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    ordered BOOLEAN NOT NULL DEFAULT FALSE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE httphooks_callbacks (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- No foreign keys: their per-row checks would tax every admission.
    hook_id BIGINT NOT NULL,
    version_id BIGINT NOT NULL,
    event_type VARCHAR(255) NOT NULL,
    object_id TEXT,
    ordered BOOLEAN NOT NULL DEFAULT FALSE,
    payload LONGTEXT,
    event_data LONGTEXT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'waiting',
    status_details TEXT NOT NULL DEFAULT (''),
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(6),
    created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    updated_at DATETIME(6),
    claimed_until DATETIME(6),
    claim_token VARCHAR(255),
    claim_started BOOLEAN NOT NULL DEFAULT FALSE,
    webhook_id VARCHAR(64),
    attempts_before_retry INT NOT NULL DEFAULT 0,
    -- The claim order (a new callback is due since 1970). MySQL has no expression or
    -- partial indexes, so the due index is on this generated column, after status.
    due_at DATETIME(6) AS (COALESCE(next_attempt_at, TIMESTAMP '1970-01-01 00:00:00')) STORED,
    -- It also covers the recent errors per hook that `status` counts (a scan of the
    -- errors, as `monitor_callbacks --status error` makes): without partial indexes an
    -- errors index would hold every row, and every recorded outcome and every deleted
    -- callback would pay for it (delete_old_callbacks 143k -> 195k rows/s without it).
    KEY httphooks_callbacks_due (status, due_at, id, hook_id, updated_at)
    -- The index ordered hooks' claims need, httphooks_callbacks_ordered, is made when
    -- the first hook becomes ordered (`Backend::index_for_ordered_hooks`): it too would
    -- hold every row, and deleting callbacks went 270k -> 170k rows/s with it.
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A callback's content (event data, template, content type) is the hook version's it
-- was made with; its delivery settings are the hook's current ones.
CREATE VIEW httphooks_callback_details AS
SELECT c.id, c.hook_id, c.version_id, coalesce(h.name, v.name) AS hook_name, c.event_type,
       v.table_name, c.object_id,
       CASE WHEN h.id IS NULL THEN v.target_url ELSE h.target_url END AS url,
       CASE WHEN h.id IS NULL THEN v.http_method ELSE h.http_method END AS http_method,
       CASE WHEN h.id IS NULL THEN v.headers ELSE h.headers END AS headers,
       v.content_type, v.payload_template, c.payload, c.event_data, c.status,
       c.status_details, c.attempts,
       CASE WHEN h.id IS NULL THEN v.max_attempts ELSE h.max_attempts END AS max_attempts,
       CASE WHEN h.id IS NULL THEN v.timeout_ms ELSE h.timeout_ms END AS timeout_ms,
       c.next_attempt_at, c.created_at, c.updated_at, c.claimed_until, c.claim_token,
       CASE WHEN h.id IS NULL THEN v.auth ELSE h.auth END AS auth,
       CASE WHEN h.id IS NULL THEN v.signing_secret_env ELSE h.signing_secret_env END AS signing_secret_env,
       CASE WHEN h.id IS NULL THEN v.ca_file ELSE h.ca_file END AS ca_file,
       coalesce(h.version_id, v.id) AS settings_version_id,
       h.enabled AS hook_enabled, c.claim_started, c.webhook_id,
       c.attempts_before_retry
FROM httphooks_callbacks c
JOIN httphooks_hook_versions v ON v.id = c.version_id
LEFT JOIN httphooks_hooks h ON h.id = c.hook_id;

CREATE TABLE httphooks_oauth_tokens (
    cache_key VARCHAR(700) NOT NULL PRIMARY KEY,
    access_token TEXT NOT NULL,
    expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE httphooks_attempts (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    callback_id BIGINT NOT NULL,
    attempt INT NOT NULL,
    started_at DATETIME(6) NOT NULL,
    elapsed_ms BIGINT NOT NULL,
    request_method VARCHAR(16) NOT NULL,
    request_url TEXT NOT NULL,
    request_headers LONGTEXT NOT NULL,
    request_body LONGTEXT NOT NULL,
    response_status_code INT,
    response_reason TEXT,
    response_headers LONGTEXT,
    response_body LONGTEXT,
    error_kind VARCHAR(64),
    error_message TEXT,
    KEY httphooks_attempts_callback (callback_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Where triggers and httphooks_enqueue write: as cheap to insert into as a bare
-- outbox (no secondary index, nothing read). As on SQLite, a table's triggers record
-- what its enabled hooks listen to, and the change is matched to hooks when httphooks
-- admits it into httphooks_callbacks (httphooks_new_callback_matches); every change to
-- hooks first admits what is pending.
CREATE TABLE httphooks_new_callbacks (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- A row change: its table. NULL for enqueue.
    table_name VARCHAR(255),
    -- A custom event: the hook version enqueue found. NULL for a row change.
    version_id BIGINT,
    event_type VARCHAR(255) NOT NULL,
    object_id TEXT,
    -- The row as JSON (the deleted row for delete), or the data of a custom event.
    row_data LONGTEXT NOT NULL,
    old_row_data LONGTEXT,
    created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The callbacks admitting the new callbacks makes, in id order (seq, then hook).
CREATE VIEW httphooks_new_callback_matches AS
SELECT n.id AS seq, v.hook_id, v.id AS version_id, v.ordered, n.event_type, n.object_id,
       n.row_data, n.old_row_data, n.created_at
FROM httphooks_new_callbacks n JOIN httphooks_hook_versions v ON v.id = n.version_id
WHERE n.version_id IS NOT NULL
UNION ALL
SELECT n.id, h.id, v.id, v.ordered, n.event_type, n.object_id,
       n.row_data, n.old_row_data, n.created_at
FROM httphooks_new_callbacks n
JOIN httphooks_hooks h ON h.table_name = n.table_name AND h.enabled
     AND LOCATE(CONCAT(',', n.event_type, ','), h.events) > 0
     AND (n.event_type <> 'update' OR h.when_changed IS NULL OR EXISTS (
         SELECT 1 FROM JSON_TABLE(h.when_changed, '$[*]' COLUMNS (col VARCHAR(255) PATH '$')) w
         WHERE NOT (JSON_EXTRACT(n.row_data, CONCAT('$.', JSON_QUOTE(w.col)))
                    <=> JSON_EXTRACT(n.old_row_data, CONCAT('$.', JSON_QUOTE(w.col))))))
JOIN httphooks_hook_versions v ON v.id = h.version_id
WHERE n.version_id IS NULL;

-- Rows locked to keep apart what must not run twice at once (admission: callback ids
-- follow the order changes were made in).
CREATE TABLE httphooks_locks (
    name VARCHAR(64) NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO httphooks_locks (name) VALUES ('admit');

CREATE TABLE httphooks_runs (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    token VARCHAR(255) NOT NULL,
    host VARCHAR(255) NOT NULL,
    pid INT NOT NULL,
    process TEXT NOT NULL,
    started_at DATETIME(6) NOT NULL,
    ended_at DATETIME(6),
    claimed INT NOT NULL DEFAULT 0,
    sent INT NOT NULL DEFAULT 0,
    retried INT NOT NULL DEFAULT 0,
    failed INT NOT NULL DEFAULT 0,
    held INT NOT NULL DEFAULT 0,
    released INT NOT NULL DEFAULT 0,
    exit_code INT,
    stop_reason VARCHAR(32),
    KEY httphooks_runs_unfinished (host, ended_at),
    KEY httphooks_runs_started (started_at),
    KEY httphooks_runs_ended (ended_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE httphooks_run_hooks (
    run_id BIGINT NOT NULL,
    hook_id BIGINT NOT NULL,
    sent INT NOT NULL DEFAULT 0,
    retried INT NOT NULL DEFAULT 0,
    failed INT NOT NULL DEFAULT 0,
    last_success_at DATETIME(6),
    PRIMARY KEY (run_id, hook_id),
    KEY httphooks_run_hooks_hook (hook_id, last_success_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE httphooks_run_endpoints (
    run_id BIGINT NOT NULL,
    endpoint VARCHAR(700) NOT NULL,
    requests INT NOT NULL DEFAULT 0,
    failures INT NOT NULL DEFAULT 0,
    concurrency_limit INT NOT NULL,
    latency_counts TEXT NOT NULL,
    latency_sum_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, endpoint)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The insert helper for applications in any language: enqueues in the caller's
-- transaction; its result set is the number of callbacks made (one per enabled hook of
-- that name listening to the event). Runs with its definer's rights, so an
-- application may be granted EXECUTE on it and nothing of httphooks' tables.
CREATE PROCEDURE httphooks_enqueue(IN hook VARCHAR(255), IN event_type VARCHAR(255), IN data LONGTEXT)
    MODIFIES SQL DATA SQL SECURITY DEFINER
BEGIN
    DECLARE message VARCHAR(512);
    IF event_type IN ('insert', 'update', 'delete') THEN
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
