-- Where triggers and httphooks_enqueue() write new callbacks. An application pays for
-- each hook on every write it makes, so this table is nearly as cheap to insert into as
-- a bare outbox: no secondary index, a narrow row, the row kept as jsonb.
-- httphooks moves the rows into httphooks_callbacks ("admits" them, oldest first, in
-- bounded batches, one admitter at a time) before it claims, lists or changes
-- callbacks, so every command sees them as ordinary waiting callbacks.
CREATE TABLE httphooks_new_callbacks (
    id BIGSERIAL PRIMARY KEY,
    -- The hook version current when the event happened (the hook's id comes with it).
    version_id BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    object_id TEXT,
    -- The row (the deleted row for delete), or the data of a custom event.
    row_data JSONB NOT NULL,
    -- The row before an update.
    old_row_data JSONB,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

-- Row changes: one generic trigger function for every watched table. It reads hook
-- configuration at fire time, so enabling, disabling or editing a hook needs no reload.
-- Its arguments are the table's primary-key columns.
CREATE OR REPLACE FUNCTION httphooks_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event text := lower(TG_OP);
    new_row jsonb;
    old_row jsonb;
    instance jsonb;
    object_id text;
BEGIN
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
    instance := coalesce(new_row, old_row);
    IF TG_NARGS = 1 THEN
        object_id := instance ->> TG_ARGV[0];
    ELSIF TG_NARGS > 1 THEN
        SELECT jsonb_agg(instance -> c)::text INTO object_id FROM unnest(TG_ARGV) AS c;
    END IF;
    INSERT INTO httphooks_new_callbacks (version_id, event_type, object_id, row_data, old_row_data)
    SELECT h.version_id, event, object_id, instance, CASE WHEN TG_OP = 'UPDATE' THEN old_row END
    FROM httphooks_hooks h
    WHERE h.table_name = TG_TABLE_NAME AND h.enabled
      AND position(',' || event || ',' IN h.events) > 0
      AND (TG_OP <> 'UPDATE' OR h.when_changed IS NULL OR EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(h.when_changed::jsonb) AS col
          WHERE new_row -> col IS DISTINCT FROM old_row -> col));
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION httphooks_enqueue(hook text, event_type text, data jsonb) RETURNS integer
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
    INSERT INTO httphooks_new_callbacks (version_id, event_type, row_data)
    SELECT h.version_id, event_type, data
    FROM httphooks_hooks h
    WHERE h.name = hook AND h.enabled;
    GET DIAGNOSTICS made = ROW_COUNT;
    RETURN made;
END;
$$;

-- Whether callbacks wait for earlier ones of their row is part of the snapshot a
-- callback is made with, like the URL: it now comes from the hook version on admission.
ALTER TABLE httphooks_hook_versions ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE httphooks_hook_versions SET ordered = coalesce(
    (SELECT h.ordered FROM httphooks_hooks h WHERE h.version_id = httphooks_hook_versions.id), ordered);
