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
-- run with httphooks' rights. What it reads of the hooks is a narrow view every role
-- may read (which tables and events are watched, nothing about where they go), and a
-- row-level security policy lets a role insert a change only for a table it may
-- write, so that nobody can forge changes of a table they cannot change.
-- Hooks are matched by the table's identity, not its name. The key is the trigger's
-- arguments; several key columns make a compact JSON array (`[1,"a"]`), the same text
-- SQLite's json_array() makes.
CREATE VIEW httphooks_capture_hooks AS
SELECT table_oid, version_id, events, when_changed FROM httphooks_hooks WHERE enabled;

-- Created with the schema written into it (found, not written here, because httphooks
-- may be migrated into any schema), so that it works whatever the writer's search_path
-- and needs no per-call setting, which would double what a trigger costs.
DO $migration$
DECLARE
    home text := (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE p.oid = 'httphooks_capture()'::regprocedure);
BEGIN
    EXECUTE format($create$
CREATE OR REPLACE FUNCTION %1$I.httphooks_capture() RETURNS trigger LANGUAGE plpgsql AS $$
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
    INSERT INTO %1$I.httphooks_new_callbacks (version_id, event_type, object_id, row_data, old_row_data)
    SELECT h.version_id, event, object_id, instance, CASE WHEN TG_OP = 'UPDATE' THEN old_row END
    FROM %1$I.httphooks_capture_hooks h
    WHERE h.table_oid = TG_RELID::bigint
      AND position(',' || event || ',' IN h.events) > 0
      AND (TG_OP <> 'UPDATE' OR h.when_changed IS NULL OR EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(h.when_changed::jsonb) AS col
          WHERE new_row -> col IS DISTINCT FROM old_row -> col));
    RETURN NULL;
END;
$$ $create$, home);
    -- httphooks_enqueue runs with its owner's rights (it reads the hooks), with
    -- search_path pinned to httphooks' schema (then pg_temp, last, so no caller's
    -- temporary table can stand in for ours); it is granted as the README says.
    EXECUTE format('ALTER FUNCTION %I.httphooks_enqueue(text, text, jsonb) SECURITY DEFINER SET search_path = %I, pg_temp',
                   home, home);
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %I.httphooks_enqueue(text, text, jsonb) FROM PUBLIC', home);
    -- Roles that write watched tables need to reach httphooks' schema.
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO PUBLIC', home);
END;
$migration$;
GRANT SELECT ON httphooks_capture_hooks TO PUBLIC;
GRANT INSERT ON httphooks_new_callbacks TO PUBLIC;
GRANT USAGE ON SEQUENCE httphooks_new_callbacks_id_seq TO PUBLIC;
-- The owner (httphooks itself, httphooks_enqueue) is not bound by the policy.
ALTER TABLE httphooks_new_callbacks ENABLE ROW LEVEL SECURITY;
CREATE POLICY httphooks_changes_of_writable_tables ON httphooks_new_callbacks FOR INSERT TO PUBLIC
    WITH CHECK (EXISTS (SELECT 1 FROM httphooks_capture_hooks h
                        WHERE h.version_id = httphooks_new_callbacks.version_id
                          AND has_table_privilege(h.table_oid::oid, 'INSERT, UPDATE, DELETE')));

-- Where the role migrating httphooks may (event triggers need a superuser), capture is
-- re-attached in the same transaction as the DDL that re-created or renamed a watched
-- table (a rebuild: create, copy, drop, rename), so not one change goes uncaptured.
-- Without the right, the checks every command makes find and report it instead. The
-- function only reads the catalog and creates triggers; it never runs the
-- application's code, and a failure only warns: the application's DDL goes through.
DO $migration$
DECLARE
    home text := (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE p.oid = 'httphooks_capture()'::regprocedure);
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
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
        EXECUTE format('CREATE TRIGGER httphooks_capture AFTER INSERT OR UPDATE OR DELETE ON %%s '
                       'FOR EACH ROW EXECUTE FUNCTION %1$I.httphooks_capture(%%s)', rel, keys);
        UPDATE httphooks_hooks SET table_oid = rel::oid::bigint WHERE table_name = watched.table_name;
    END LOOP;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'httphooks: could not re-attach capture after this change (%%); run `httphooks hooks sync`', SQLERRM;
END;
$$ $create$, home);
    EXECUTE format('DROP EVENT TRIGGER IF EXISTS %I', left('httphooks_reattach_' || home, 63));
    EXECUTE format('CREATE EVENT TRIGGER %I ON ddl_command_end '
                   'WHEN TAG IN (''CREATE TABLE'', ''ALTER TABLE'', ''CREATE TABLE AS'', ''SELECT INTO'') '
                   'EXECUTE FUNCTION %I.httphooks_reattach()',
                   left('httphooks_reattach_' || home, 63), home);
END;
$migration$;
