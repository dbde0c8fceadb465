-- A run that follows (`send_callbacks --follow`) waits for changes until its deadline:
-- `status` shows it as following, with what it sent so far.
ALTER TABLE httphooks_runs ADD COLUMN following BOOLEAN NOT NULL DEFAULT FALSE;
