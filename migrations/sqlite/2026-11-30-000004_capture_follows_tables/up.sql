-- The identity of the watched table (PostgreSQL's oid; always NULL on SQLite, which has
-- none), the columns that identify its rows when they are not its primary key (a JSON
-- array, set with `--key`), and when httphooks last found the table's triggers intact
-- (so that a warning can say since when capture may have been missing).
ALTER TABLE httphooks_hooks ADD COLUMN table_oid BIGINT;
ALTER TABLE httphooks_hooks ADD COLUMN key_columns TEXT;
ALTER TABLE httphooks_hooks ADD COLUMN capture_verified_at TIMESTAMP;
