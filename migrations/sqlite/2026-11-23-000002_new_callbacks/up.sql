-- Where SQLite triggers (and enqueue) write new callbacks. An application pays for this
-- on every write it makes, so a trigger does as little as a bare outbox would: one row
-- with the change (table, event, key, row as JSON, time) into a table with no secondary
-- index, no AUTOINCREMENT and no formatted timestamp. It reads nothing: a table's
-- triggers exist for the events its enabled hooks listen to (and, for updates, the
-- columns they watch), and httphooks re-creates them with every change to a hook.
--
-- httphooks moves these rows into httphooks_callbacks ("admits" them, oldest first, in
-- bounded batches) before it claims, lists or changes callbacks, making one callback
-- per hook that the change matches (httphooks_new_callback_matches). Every change to
-- hooks first admits what is pending, so a change is matched against the hooks as they
-- were when it was made. Callback ids are given on admission, in creation order.
CREATE TABLE httphooks_new_callbacks (
    id INTEGER PRIMARY KEY NOT NULL,
    -- A row change: its table, matched to hooks on admission. NULL for enqueue.
    table_name TEXT,
    -- A custom event: the hook version enqueue found. NULL for a row change.
    version_id BIGINT,
    event_type TEXT NOT NULL,
    -- The row's key as the row holds it; text once admitted. NULL for custom events.
    object_id,
    -- The row as JSON (the deleted row for delete), or the data of a custom event.
    row_data TEXT NOT NULL,
    -- The row before an update.
    old_row_data TEXT,
    -- julianday('now'): the cheapest clock every SQLite version has (the application's
    -- own SQLite runs these triggers, and it may be older than httphooks' one).
    created_at REAL NOT NULL
);

-- Whether callbacks wait for earlier ones of their row is part of the snapshot a
-- callback is made with, like the URL: admission takes it from the hook version.
ALTER TABLE httphooks_hook_versions ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT 0;
UPDATE httphooks_hook_versions SET ordered = coalesce(
    (SELECT h.ordered FROM httphooks_hooks h WHERE h.version_id = httphooks_hook_versions.id), ordered);

-- The callbacks that admitting the new callbacks makes, in the order they get their ids
-- (seq, then hook): custom events for the hook version enqueue found; row changes for
-- every enabled hook of their table that listens to the event and, for an update with
-- when_changed, saw one of those columns change. (No `->` here: the application's
-- SQLite parses this schema too, and may be older than 3.38.)
CREATE VIEW httphooks_new_callback_matches AS
SELECT n.id AS seq, v.hook_id, v.id AS version_id, v.ordered, n.event_type, n.object_id,
       n.row_data, n.old_row_data, n.created_at
FROM httphooks_new_callbacks n JOIN httphooks_hook_versions v ON v.id = n.version_id
WHERE n.version_id IS NOT NULL
UNION ALL
SELECT n.id, h.id, v.id, v.ordered, n.event_type, n.object_id,
       n.row_data, n.old_row_data, n.created_at
FROM httphooks_new_callbacks n
JOIN httphooks_hooks h ON h.table_name = n.table_name AND h.enabled
     AND instr(h.events, ',' || n.event_type || ',') > 0
     AND (n.event_type <> 'update' OR h.when_changed IS NULL OR EXISTS (
         SELECT 1 FROM json_each(h.when_changed) w
         WHERE (SELECT a.value FROM json_each(n.row_data) a WHERE a.key = w.value)
               IS NOT (SELECT b.value FROM json_each(n.old_row_data) b WHERE b.key = w.value)))
JOIN httphooks_hook_versions v ON v.id = h.version_id
WHERE n.version_id IS NULL;
