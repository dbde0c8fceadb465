-- The identity of the watched table: its oid survives `ALTER TABLE … RENAME`, so the
-- trigger matches hooks by TG_RELID and a renamed table keeps its callbacks (httphooks
-- then updates table_name and says so). Filled here for tables it finds by name; `migrate`
-- fills the rest when it re-creates the triggers.
ALTER TABLE httphooks_hooks ADD COLUMN table_oid BIGINT;
-- The columns that identify a row when they are not the primary key (a JSON array,
-- set with `--key`); NULL means the primary key.
ALTER TABLE httphooks_hooks ADD COLUMN key_columns TEXT;
-- When httphooks last found the table's trigger intact, so that a warning can say since
-- when capture may have been missing.
ALTER TABLE httphooks_hooks ADD COLUMN capture_verified_at TIMESTAMP;
UPDATE httphooks_hooks SET table_oid = to_regclass(quote_ident(table_name))::oid::bigint
WHERE table_name IS NOT NULL;
CREATE INDEX httphooks_hooks_table_oid ON httphooks_hooks (table_oid);

-- Row changes. The trigger function runs with the rights of the role that writes the
-- table: to_jsonb may call the application's own casts and functions, which must never
-- run with httphooks' rights. What it needs of httphooks it gets through two narrow
-- functions that run with the owner's rights and only compare ids and jsonb, and a
-- row-level security policy lets a role insert a change only for a table it may write,
-- so that nobody can forge changes of a table they cannot change.
-- Hooks are matched by the table's identity, not its name. The key is the trigger's
-- arguments; several key columns make a compact JSON array (`[1,"a"]`), the same text
-- SQLite's json_array() makes.
CREATE OR REPLACE FUNCTION httphooks_matching_versions(relid bigint, event text, new_row jsonb, old_row jsonb)
RETURNS SETOF bigint LANGUAGE sql STABLE AS $$
    SELECT h.version_id FROM httphooks_hooks h
    WHERE h.table_oid = relid AND h.enabled
      AND position(',' || event || ',' IN h.events) > 0
      AND (event <> 'update' OR h.when_changed IS NULL OR EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(h.when_changed::jsonb) AS col
          WHERE new_row -> col IS DISTINCT FROM old_row -> col))
$$;

-- The table whose changes a hook version captures (NULL for custom events, which only
-- httphooks_enqueue makes).
CREATE OR REPLACE FUNCTION httphooks_version_table(version bigint) RETURNS oid
LANGUAGE sql STABLE AS $$
    SELECT h.table_oid::oid FROM httphooks_hook_versions v
    JOIN httphooks_hooks h ON h.id = v.hook_id WHERE v.id = version
$$;

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
        SELECT array_to_json(array_agg(instance -> c ORDER BY n))::text INTO object_id
        FROM unnest(TG_ARGV) WITH ORDINALITY AS k(c, n);
    END IF;
    INSERT INTO httphooks_new_callbacks (version_id, event_type, object_id, row_data, old_row_data)
    SELECT v, event, object_id, instance, CASE WHEN TG_OP = 'UPDATE' THEN old_row END
    FROM httphooks_matching_versions(TG_RELID::bigint, event, new_row, old_row) AS v;
    RETURN NULL;
END;
$$;

-- Least privilege: an application role that may write a watched table, and nothing of
-- httphooks', must still make callbacks. search_path is pinned to the schema httphooks
-- lives in (then pg_temp, last, so no caller's temporary table can stand in for ours);
-- the schema is found, not written here, because httphooks may be migrated into any.
-- Roles that write watched tables need USAGE on that schema, INSERT on the new
-- changes (limited by the policy) and EXECUTE on the trigger's helpers (functions are
-- executable by PUBLIC by default); httphooks_enqueue is granted as the README says.
DO $$
DECLARE
    home text := (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE p.oid = 'httphooks_capture()'::regprocedure);
BEGIN
    EXECUTE format('ALTER FUNCTION %I.httphooks_capture() SECURITY INVOKER SET search_path = %I, pg_temp',
                   home, home);
    EXECUTE format('ALTER FUNCTION %I.httphooks_matching_versions(bigint, text, jsonb, jsonb) SECURITY DEFINER SET search_path = %I, pg_temp',
                   home, home);
    EXECUTE format('ALTER FUNCTION %I.httphooks_version_table(bigint) SECURITY DEFINER SET search_path = %I, pg_temp',
                   home, home);
    EXECUTE format('ALTER FUNCTION %I.httphooks_enqueue(text, text, jsonb) SECURITY DEFINER SET search_path = %I, pg_temp',
                   home, home);
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %I.httphooks_enqueue(text, text, jsonb) FROM PUBLIC', home);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO PUBLIC', home);
END;
$$;
GRANT INSERT ON httphooks_new_callbacks TO PUBLIC;
GRANT USAGE ON SEQUENCE httphooks_new_callbacks_id_seq TO PUBLIC;
-- The owner (httphooks itself, httphooks_enqueue) is not bound by the policy.
ALTER TABLE httphooks_new_callbacks ENABLE ROW LEVEL SECURITY;
CREATE POLICY httphooks_changes_of_writable_tables ON httphooks_new_callbacks FOR INSERT TO PUBLIC
    WITH CHECK (has_table_privilege(httphooks_version_table(version_id), 'INSERT, UPDATE, DELETE'));
