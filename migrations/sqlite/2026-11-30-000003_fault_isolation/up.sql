-- Whether the run holding a claim may have started sending the callback. A run marks
-- callbacks as started, in batches, just before its workers may send them; when a run
-- dies, the next one records an attempt of unknown outcome only for those.
ALTER TABLE httphooks_callbacks ADD COLUMN claim_started BOOLEAN NOT NULL DEFAULT 0;

-- The webhook-id receivers see: unique across every database and every re-created
-- database (a time-ordered random id made when the callback is admitted), the same
-- across retries. Callbacks made before keep the id they were already sent with.
ALTER TABLE httphooks_callbacks ADD COLUMN webhook_id TEXT;
UPDATE httphooks_callbacks SET webhook_id = 'msg_' || CAST(id AS TEXT);

-- One row per send_callbacks run, written when it starts and completed when it ends.
-- A run that finds an unfinished run of its own host whose process is gone takes that
-- run's claims back at once instead of waiting for their leases.
CREATE TABLE httphooks_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    -- The claim token of the run (host:pid:random).
    token TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    -- Boot id, PID namespace and start time of the process, to tell it from a later
    -- process with the same pid.
    process TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP,
    claimed INTEGER NOT NULL DEFAULT 0,
    sent INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    held INTEGER NOT NULL DEFAULT 0,
    released INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    -- done, limit, deadline, signal, error, or died (found dead by a later run).
    stop_reason TEXT
);
CREATE INDEX httphooks_runs_unfinished ON httphooks_runs (host) WHERE ended_at IS NULL;
CREATE INDEX httphooks_runs_started ON httphooks_runs (started_at);

-- A callback's content (event data, template, content type) is the hook version's it
-- was made with; its delivery settings (URL, method, headers, timeout, attempts, auth,
-- signing, CA file) are the hook's current ones, so fixing a hook fixes its backlog.
DROP VIEW httphooks_callback_details;
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
       h.enabled AS hook_enabled, c.claim_started, c.webhook_id
FROM httphooks_callbacks c
JOIN httphooks_hook_versions v ON v.id = c.version_id
LEFT JOIN httphooks_hooks h ON h.id = c.hook_id;
