-- What each send_callbacks run did per hook and per endpoint, written when it ends.
-- `status`, `monitor_callbacks` and the metrics file read these small tables instead
-- of scanning callbacks and attempts; `delete_old_callbacks` prunes them with the runs.
CREATE TABLE httphooks_run_hooks (
    run_id BIGINT NOT NULL,
    hook_id BIGINT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    -- When the run last got a 2xx for this hook.
    last_success_at TIMESTAMP,
    PRIMARY KEY (run_id, hook_id)
);
CREATE INDEX httphooks_run_hooks_hook ON httphooks_run_hooks (hook_id, last_success_at);

CREATE TABLE httphooks_run_endpoints (
    run_id BIGINT NOT NULL,
    -- scheme://host:port
    endpoint TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    -- The endpoint's concurrency limit when the run ended.
    concurrency_limit INTEGER NOT NULL,
    -- Request durations: a JSON array of counts per bucket (see src/storage/runs.rs,
    -- LATENCY_BUCKETS_MS; the last counts the rest) and their sum in milliseconds.
    latency_counts TEXT NOT NULL,
    latency_sum_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, endpoint)
);
CREATE INDEX httphooks_runs_ended ON httphooks_runs (ended_at);

-- Attempts made before the last `callbacks retry`, which grants a fresh budget
-- (`attempts` counts from 0 again): attempt numbers in the history keep counting.
ALTER TABLE httphooks_callbacks ADD COLUMN attempts_before_retry INTEGER NOT NULL DEFAULT 0;
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
       h.enabled AS hook_enabled, c.claim_started, c.webhook_id,
       c.attempts_before_retry
FROM httphooks_callbacks c
JOIN httphooks_hook_versions v ON v.id = c.version_id
LEFT JOIN httphooks_hooks h ON h.id = c.hook_id;

-- Recent errors per hook (`status`, the metrics file) from the errors index alone.
DROP INDEX httphooks_callbacks_errors;
CREATE INDEX httphooks_callbacks_errors ON httphooks_callbacks (updated_at, hook_id) WHERE status = 'error';
