-- Timestamps are "timestamp without time zone" holding UTC, the type diesel shares
-- with SQLite, so one schema module serves both backends.
CREATE TABLE httphooks_hooks (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    table_name TEXT,
    -- ',insert,update,' so that triggers can test membership with a substring search.
    events TEXT NOT NULL,
    target_url TEXT NOT NULL,
    http_method TEXT NOT NULL DEFAULT 'POST',
    headers TEXT NOT NULL DEFAULT '{}',
    content_type TEXT NOT NULL DEFAULT 'application/json',
    payload_template TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    -- Deliver callbacks of the same row (or, for custom events, of the hook) in the
    -- order they were made, one at a time.
    ordered BOOLEAN NOT NULL DEFAULT FALSE,
    when_changed TEXT,
    timeout_ms INTEGER NOT NULL DEFAULT 10000,
    max_attempts INTEGER NOT NULL DEFAULT 8,
    auth TEXT,
    signing_secret_env TEXT,
    -- An extra CA certificate file (PEM) trusted for this hook's target.
    ca_file TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    -- The current row of httphooks_hook_versions: what new callbacks are made with.
    version_id BIGINT
);
CREATE INDEX httphooks_hooks_table_name ON httphooks_hooks (table_name);

-- Immutable snapshots of a hook's delivery settings. A callback points at the version
-- that was current when it was made, so editing a hook never changes callbacks already
-- made, and each callback row stays narrow (cheap for the triggers to write).
CREATE TABLE httphooks_hook_versions (
    id BIGSERIAL PRIMARY KEY,
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
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE TABLE httphooks_callbacks (
    id BIGSERIAL PRIMARY KEY,
    -- No foreign keys: their per-row checks would tax every trigger insert. Removing
    -- a hook cancels its waiting callbacks; all keep their hook version.
    hook_id BIGINT NOT NULL,
    version_id BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    object_id TEXT,
    -- Copied from the hook: this callback waits for earlier ones of its row.
    ordered BOOLEAN NOT NULL DEFAULT FALSE,
    -- The body, rendered before the first attempt; every retry sends these bytes.
    payload TEXT,
    event_data TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'waiting',
    status_details TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Empty until the first attempt fails: a new callback is due from created_at.
    next_attempt_at TIMESTAMP,
    -- The one timestamp computed per trigger insert (each costs microseconds).
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    -- Empty until the callback first changes: then it is its last change.
    updated_at TIMESTAMP,
    claimed_until TIMESTAMP,
    claim_token TEXT
);
-- Every secondary index taxes every trigger insert, so these are all partial:
-- due callbacks in claim order (new ones, with no next_attempt_at, count as due since
-- 1970: one range in index order, which claims read only as far as they take), errors
-- by their last change (monitor_callbacks), and callbacks of ordered hooks.
CREATE INDEX httphooks_callbacks_due ON httphooks_callbacks ((COALESCE(next_attempt_at, TIMESTAMP '1970-01-01')), id) WHERE status = 'waiting';
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
    id BIGSERIAL PRIMARY KEY,
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

-- Row changes: one generic trigger function for every watched table. It reads hook
-- configuration at fire time, so enabling, disabling or editing a hook needs no reload.
-- TG_ARGV[0] is a JSON array of the table's primary-key columns.
CREATE FUNCTION httphooks_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event text := lower(TG_OP);
    new_row jsonb;
    old_row jsonb;
    instance jsonb;
    pk_columns jsonb := TG_ARGV[0]::jsonb;
    object_id text;
BEGIN
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
    instance := coalesce(new_row, old_row);
    IF jsonb_array_length(pk_columns) = 1 THEN
        object_id := instance ->> (pk_columns ->> 0);
    ELSIF jsonb_array_length(pk_columns) > 1 THEN
        SELECT jsonb_agg(instance -> c)::text INTO object_id
        FROM jsonb_array_elements_text(pk_columns) AS c;
    END IF;
    INSERT INTO httphooks_callbacks (hook_id, version_id, event_type, object_id, ordered, event_data)
    SELECT h.id, h.version_id, event, object_id, h.ordered,
        jsonb_build_object('instance', instance, 'old', old_row)::text
    FROM httphooks_hooks h
    WHERE h.table_name = TG_TABLE_NAME AND h.enabled
      AND position(',' || event || ',' IN h.events) > 0
      AND (TG_OP <> 'UPDATE' OR h.when_changed IS NULL OR EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(h.when_changed::jsonb) AS col
          WHERE new_row -> col IS DISTINCT FROM old_row -> col));
    RETURN NULL;
END;
$$;

-- The insert helper for applications in any language: enqueues in the caller's transaction
-- and returns how many callbacks it made (one per enabled hook listening to the event).
CREATE FUNCTION httphooks_enqueue(hook text, event_type text, data jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    made integer;
BEGIN
    IF event_type IN ('insert', 'update', 'delete') THEN
        RAISE EXCEPTION 'httphooks: % events come from the table''s triggers; enqueue takes custom events', event_type;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM httphooks_hooks h WHERE h.name = hook) THEN
        RAISE EXCEPTION 'httphooks: there is no hook named %; list them with `httphooks hooks list`', hook;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM httphooks_hooks h
                   WHERE h.name = hook AND position(',' || event_type || ',' IN h.events) > 0) THEN
        RAISE EXCEPTION 'httphooks: hook % does not listen to event %; add it with `httphooks hooks edit`', hook, event_type;
    END IF;
    INSERT INTO httphooks_callbacks (hook_id, version_id, event_type, object_id, ordered, event_data)
    SELECT h.id, h.version_id, event_type, NULL, h.ordered, jsonb_build_object('data', data)::text
    FROM httphooks_hooks h
    WHERE h.name = hook AND h.enabled;
    GET DIAGNOSTICS made = ROW_COUNT;
    RETURN made;
END;
$$;
