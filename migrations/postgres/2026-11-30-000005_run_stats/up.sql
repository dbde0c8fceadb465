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
