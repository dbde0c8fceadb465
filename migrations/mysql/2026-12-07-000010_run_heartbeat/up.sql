-- A following run (`send_callbacks --follow`) writes what it has done so far and the
-- time every few seconds: `status`, `callbacks explain` and `monitor_callbacks
-- --no-run-since` tell a run that is following from one that died without a word.
ALTER TABLE httphooks_runs ADD COLUMN alive_at DATETIME(6);
