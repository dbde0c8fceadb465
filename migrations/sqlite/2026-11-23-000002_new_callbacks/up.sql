-- Where SQLite triggers (and enqueue) write new callbacks. An application pays for each
-- hook on every write it makes, so this table is as cheap to insert into as a bare
-- outbox: a row id, no secondary index, no AUTOINCREMENT, no formatted timestamp.
-- httphooks moves the rows into httphooks_callbacks ("admits" them, oldest first, in
-- bounded batches) before it claims, lists, counts or changes callbacks, so every
-- command sees them as ordinary waiting callbacks; their ids are assigned then.
CREATE TABLE httphooks_new_callbacks (
    id INTEGER PRIMARY KEY NOT NULL,
    -- The hook version current when the event happened (the hook's id comes with it).
    version_id BIGINT NOT NULL,
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

-- The lookup every trigger makes: the enabled hooks of its table, from the index alone.
DROP INDEX httphooks_hooks_table_name;
CREATE INDEX httphooks_hooks_table_name ON httphooks_hooks (table_name, enabled, events, version_id, when_changed);

-- Whether callbacks wait for earlier ones of their row is part of the snapshot a
-- callback is made with, like the URL: it now comes from the hook version on admission.
ALTER TABLE httphooks_hook_versions ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT 0;
UPDATE httphooks_hook_versions SET ordered = coalesce(
    (SELECT h.ordered FROM httphooks_hooks h WHERE h.version_id = httphooks_hook_versions.id), ordered);
