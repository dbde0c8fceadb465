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

-- Row changes: hooks are matched by the table's identity, not its name. The key is the
-- trigger's arguments; several key columns make a compact JSON array (`[1,"a"]`), the
-- same text SQLite's json_array() makes.
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
    SELECT h.version_id, event, object_id, instance, CASE WHEN TG_OP = 'UPDATE' THEN old_row END
    FROM httphooks_hooks h
    WHERE h.table_oid = TG_RELID::bigint AND h.enabled
      AND position(',' || event || ',' IN h.events) > 0
      AND (TG_OP <> 'UPDATE' OR h.when_changed IS NULL OR EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(h.when_changed::jsonb) AS col
          WHERE new_row -> col IS DISTINCT FROM old_row -> col));
    RETURN NULL;
END;
$$;

-- Least privilege: an application role that may write a watched table, and nothing of
-- httphooks', must still make callbacks. Both functions run with their owner's rights,
-- with search_path pinned to the schema httphooks lives in (then pg_temp, last, so no
-- caller's temporary table can stand in for ours). The schema is found, not written
-- here, because httphooks may be migrated into any schema.
DO $$
DECLARE
    home text := (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE p.oid = 'httphooks_capture()'::regprocedure);
BEGIN
    EXECUTE format('ALTER FUNCTION %I.httphooks_capture() SECURITY DEFINER SET search_path = %I, pg_temp',
                   home, home);
    EXECUTE format('ALTER FUNCTION %I.httphooks_enqueue(text, text, jsonb) SECURITY DEFINER SET search_path = %I, pg_temp',
                   home, home);
    -- A trigger function is checked for EXECUTE only when a trigger is created;
    -- httphooks_enqueue is called by applications, which the README says how to grant.
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %I.httphooks_capture() FROM PUBLIC', home);
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %I.httphooks_enqueue(text, text, jsonb) FROM PUBLIC', home);
END;
$$;
