-- A run that follows (`send_callbacks --follow`) waits for changes until its deadline:
-- `status` shows it as following, with what it sent so far.
ALTER TABLE httphooks_runs ADD COLUMN following BOOLEAN NOT NULL DEFAULT FALSE;

-- The event trigger that re-attaches capture after a rebuild finds a watched table as
-- hooks name it (`My Table`, `Orders`, `sales.orders`: the whole name as one
-- identifier, else schema.table, as `hooks add` looks it up), and a table it cannot
-- re-attach no longer stops the others: it is named in a warning.
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
        BEGIN
            rel := coalesce(to_regclass(quote_ident(watched.table_name)),
                            CASE WHEN position('.' IN watched.table_name) > 1 THEN
                              to_regclass(quote_ident(split_part(watched.table_name, '.', 1)) || '.' ||
                                quote_ident(substr(watched.table_name, position('.' IN watched.table_name) + 1)))
                            END);
            CONTINUE WHEN rel IS NULL OR EXISTS (
                SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = 'httphooks_capture');
            -- A new table of the watched name takes over only when the hooks' own table
            -- is gone (a rebuild); one renamed away keeps its hooks, which follow it.
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
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'httphooks: could not re-attach capture of table %% after this change (%%); run `httphooks hooks sync`',
                watched.table_name, SQLERRM;
        END;
    END LOOP;
-- Whatever else fails (httphooks' own tables in the middle of a change) must not fail
-- the application's DDL.
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'httphooks: could not re-attach capture after this change (%%); run `httphooks hooks sync`', SQLERRM;
END;
$$ $create$, home);
END;
$migration$;
