-- Timestamps are UTC text in the form diesel writes ("YYYY-MM-DD HH:MM:SS.fff"),
-- so they compare correctly as strings.
CREATE TABLE httphooks_hooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    table_name TEXT,
    -- ",insert,update," so that triggers can test membership with a substring search.
    events TEXT NOT NULL,
    target_url TEXT NOT NULL,
    http_method TEXT NOT NULL DEFAULT 'POST',
    headers TEXT NOT NULL DEFAULT '{}',
    content_type TEXT NOT NULL DEFAULT 'application/json',
    payload_template TEXT,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    -- Deliver callbacks of the same row (or, for custom events, of the hook) in the
    -- order they were made, one at a time.
    ordered BOOLEAN NOT NULL DEFAULT 0,
    when_changed TEXT,
    timeout_ms INTEGER NOT NULL DEFAULT 10000,
    max_attempts INTEGER NOT NULL DEFAULT 8,
    auth TEXT,
    signing_secret_env TEXT,
    -- An extra CA certificate file (PEM) trusted for this hook's target.
    ca_file TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    -- The current row of httphooks_hook_versions: what new callbacks are made with.
    version_id BIGINT
);
CREATE INDEX httphooks_hooks_table_name ON httphooks_hooks (table_name);

-- Immutable snapshots of a hook's delivery settings. A callback points at the version
-- that was current when it was made, so editing a hook never changes callbacks already
-- made, and each callback row stays narrow (cheap for the triggers to write).
CREATE TABLE httphooks_hook_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    hook_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    table_name TEXT,
    target_url TEXT NOT NULL,
    http_method TEXT NOT NULL,
    headers TEXT NOT NULL,
    content_type TEXT NOT NULL,
    payload_template TEXT,
    timeout_ms INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    auth TEXT,
    signing_secret_env TEXT,
    -- An extra CA certificate file (PEM) trusted for this hook's target.
    ca_file TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

-- AUTOINCREMENT: ids are never reused, so webhook-id stays unique per database.
CREATE TABLE httphooks_callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    -- No foreign keys: their per-row checks would tax every trigger insert. Removing
    -- a hook cancels its waiting callbacks; all keep their hook version.
    hook_id BIGINT NOT NULL,
    version_id BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    object_id TEXT,
    -- Copied from the hook: this callback waits for earlier ones of its row.
    ordered BOOLEAN NOT NULL DEFAULT 0,
    -- The body, rendered before the first attempt; every retry sends these bytes.
    payload TEXT,
    event_data TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'waiting',
    status_details TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Empty until the first attempt fails: a new callback is due from created_at.
    next_attempt_at TIMESTAMP,
    -- The one timestamp computed per trigger insert (each costs microseconds).
    created_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    -- Empty until the callback first changes: then it is its last change.
    updated_at TIMESTAMP,
    claimed_until TIMESTAMP,
    claim_token TEXT
);
-- Every secondary index taxes every trigger insert, so these are all partial:
-- due callbacks in claim order (new ones, with no next_attempt_at, count as due since
-- 1970: one range in index order, which claims read only as far as they take), errors
-- by their last change (monitor_callbacks), and callbacks of ordered hooks.
CREATE INDEX httphooks_callbacks_due ON httphooks_callbacks ((coalesce(next_attempt_at, '1970-01-01 00:00:00')), id) WHERE status = 'waiting';
CREATE INDEX httphooks_callbacks_errors ON httphooks_callbacks (updated_at) WHERE status = 'error';
-- Only callbacks of ordered hooks enter this one, so other hooks pay nothing for it.
CREATE INDEX httphooks_callbacks_ordered ON httphooks_callbacks (hook_id, object_id, id)
    WHERE status = 'waiting' AND ordered;

-- A callback with the settings of its hook version, under the names SPEC §4 uses.
CREATE VIEW httphooks_callback_details AS
SELECT c.id, c.hook_id, c.version_id, v.name AS hook_name, c.event_type, v.table_name, c.object_id,
       v.target_url AS url, v.http_method, v.headers, v.content_type, v.payload_template,
       c.payload, c.event_data, c.status, c.status_details, c.attempts, v.max_attempts,
       v.timeout_ms, c.next_attempt_at, c.created_at, c.updated_at, c.claimed_until,
       c.claim_token, v.auth, v.signing_secret_env, v.ca_file
FROM httphooks_callbacks c JOIN httphooks_hook_versions v ON v.id = c.version_id;

-- OAuth2 client-credentials access tokens, shared by concurrent requests and by
-- consecutive runs until shortly before they expire. Client secrets are never stored.
CREATE TABLE httphooks_oauth_tokens (
    cache_key TEXT PRIMARY KEY NOT NULL,
    access_token TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE TABLE httphooks_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    -- No foreign key: delete_old_callbacks deletes attempts with their callbacks, and a
    -- per-row check would slow it down.
    callback_id BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at TIMESTAMP NOT NULL,
    elapsed_ms BIGINT NOT NULL,
    request_method TEXT NOT NULL,
    request_url TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    request_body TEXT NOT NULL,
    response_status_code INTEGER,
    response_reason TEXT,
    response_headers TEXT,
    response_body TEXT,
    error_kind TEXT,
    error_message TEXT
);
CREATE INDEX httphooks_attempts_callback ON httphooks_attempts (callback_id);
