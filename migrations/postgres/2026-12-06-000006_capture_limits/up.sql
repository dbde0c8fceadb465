-- The most a callback may hold (`hooks add|edit --max-payload-size`, default 10 MB): a
-- change whose data is larger becomes a failed callback when it is admitted, and a body
-- rendered larger fails before it is sent, so no row can take the sender's memory with
-- it. A content setting, like the template: the version keeps the one it was made with.
ALTER TABLE httphooks_hooks ADD COLUMN max_payload_size BIGINT NOT NULL DEFAULT 10485760;
ALTER TABLE httphooks_hook_versions ADD COLUMN max_payload_size BIGINT NOT NULL DEFAULT 10485760;

-- Why a change could not be captured as it should (a table truncated under a hook that
-- listens to deletes): admission makes it a failed callback that says so.
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

-- The trigger's first argument is the watched table's oid, then its key columns. A row
-- trigger on a partitioned table is cloned onto every partition (present and future,
-- attached ones too) and fires there with the partition as TG_RELID; the argument is
-- the parent's, so the parent's hooks get its partitions' changes. A statement trigger
-- (`httphooks_truncate`) sees TRUNCATE, which fires no row trigger: hooks that listen
-- to truncate get the event, and hooks that listen to delete but not to truncate get a
-- failed callback saying that rows went without a delete event.
DO $migration$
DECLARE
    home text := (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE p.oid = 'httphooks_capture()'::regprocedure);
BEGIN
    EXECUTE format($create$
CREATE OR REPLACE FUNCTION %1$I.httphooks_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event text := lower(TG_OP);
    watched bigint := TG_ARGV[0]::bigint;
    new_row jsonb;
    old_row jsonb;
    instance jsonb;
    object_id text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO %1$I.httphooks_new_callbacks (version_id, event_type, row_data, problem)
        SELECT h.version_id, 'truncate', 'null'::jsonb,
               CASE WHEN position(',truncate,' IN h.events) = 0 THEN
                 'the table was truncated at ' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                 || ' UTC, which removes rows without delete events, and the hook does not listen to truncate, '
                 || 'so the rows it removed made no callbacks; add truncate to its --events to be sent one'
               END
        FROM %1$I.httphooks_capture_hooks h
        WHERE h.table_oid = watched
          AND (position(',truncate,' IN h.events) > 0 OR position(',delete,' IN h.events) > 0);
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
    instance := coalesce(new_row, old_row);
    IF TG_NARGS = 2 THEN
        object_id := instance ->> TG_ARGV[1];
    ELSIF TG_NARGS > 2 THEN
        SELECT array_to_json(array_agg(instance -> c ORDER BY n))::text INTO object_id
        FROM unnest(TG_ARGV[1:TG_NARGS - 1]) WITH ORDINALITY AS k(c, n);
    END IF;
    INSERT INTO %1$I.httphooks_new_callbacks (version_id, event_type, object_id, row_data, old_row_data)
    SELECT h.version_id, event, object_id, instance, CASE WHEN TG_OP = 'UPDATE' THEN old_row END
    FROM %1$I.httphooks_capture_hooks h
    WHERE h.table_oid = watched
      AND position(',' || event || ',' IN h.events) > 0
      AND (TG_OP <> 'UPDATE' OR h.when_changed IS NULL OR EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(h.when_changed::jsonb) AS col
          WHERE new_row -> col IS DISTINCT FROM old_row -> col));
    RETURN NULL;
END;
$$ $create$, home);

    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
    -- The event trigger's re-attachment makes the same two triggers.
    EXECUTE format($create$
CREATE OR REPLACE FUNCTION %1$I.httphooks_reattach() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = %1$I, pg_temp AS $$
DECLARE
    watched record;
    rel regclass;
    keys text;
BEGIN
    FOR watched IN SELECT table_name, min(key_columns) AS key_columns, min(table_oid) AS table_oid
                   FROM httphooks_hooks
                   WHERE table_name IS NOT NULL AND enabled GROUP BY table_name LOOP
        rel := to_regclass(watched.table_name);
        CONTINUE WHEN rel IS NULL OR EXISTS (
            SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = 'httphooks_capture');
        -- A new table of the watched name takes over only when the hooks' own table is
        -- gone (a rebuild); one renamed away keeps its hooks, which follow it.
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_class
                              WHERE oid = watched.table_oid::oid AND oid <> rel::oid);
        IF watched.key_columns IS NOT NULL THEN
            SELECT string_agg(quote_literal(k), ', ' ORDER BY n) INTO keys
            FROM jsonb_array_elements_text(watched.key_columns::jsonb) WITH ORDINALITY AS j(k, n);
        ELSE
            SELECT string_agg(quote_literal(a.attname), ', ' ORDER BY k.n) INTO keys
            FROM pg_index i CROSS JOIN unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = rel AND i.indisprimary;
        END IF;
        CONTINUE WHEN keys IS NULL;
        EXECUTE format('DROP TRIGGER IF EXISTS httphooks_truncate ON %%s', rel);
        EXECUTE format('CREATE TRIGGER httphooks_capture AFTER INSERT OR UPDATE OR DELETE ON %%s '
                       'FOR EACH ROW EXECUTE FUNCTION %1$I.httphooks_capture(%%L, %%s)',
                       rel, rel::oid::bigint, keys);
        EXECUTE format('CREATE TRIGGER httphooks_truncate AFTER TRUNCATE ON %%s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %1$I.httphooks_capture(%%L)',
                       rel, rel::oid::bigint);
        UPDATE httphooks_hooks SET table_oid = rel::oid::bigint WHERE table_name = watched.table_name;
    END LOOP;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'httphooks: could not re-attach capture after this change (%%); run `httphooks hooks sync`', SQLERRM;
END;
$$ $create$, home);
END;
$migration$;

-- TRUNCATE writes changes too (the truncate event, or the failure that says it was not
-- captured): a role that may truncate a watched table may record that.
DROP POLICY httphooks_changes_of_writable_tables ON httphooks_new_callbacks;
CREATE POLICY httphooks_changes_of_writable_tables ON httphooks_new_callbacks FOR INSERT TO PUBLIC
    WITH CHECK (EXISTS (SELECT 1 FROM httphooks_capture_hooks h
                        WHERE h.version_id = httphooks_new_callbacks.version_id
                          AND has_table_privilege(h.table_oid::oid, 'INSERT, UPDATE, DELETE, TRUNCATE')));

-- Truncate is an event of tables now, like insert, update and delete. (Replacing a
-- function resets its attributes: they are set again as the fourth migration set them.)
CREATE OR REPLACE FUNCTION httphooks_enqueue(hook text, event_type text, data jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    made integer;
BEGIN
    IF event_type IN ('insert', 'update', 'delete', 'truncate') THEN
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
DO $migration$
DECLARE
    home text := (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE p.oid = 'httphooks_capture()'::regprocedure);
BEGIN
    EXECUTE format('ALTER FUNCTION %I.httphooks_enqueue(text, text, jsonb) SECURITY DEFINER SET search_path = %I, pg_temp',
                   home, home);
END;
$migration$;
