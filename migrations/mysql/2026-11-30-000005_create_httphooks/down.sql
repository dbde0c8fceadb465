DROP PROCEDURE IF EXISTS httphooks_enqueue;
DROP VIEW IF EXISTS httphooks_new_callback_matches;
DROP VIEW IF EXISTS httphooks_callback_details;
DROP TABLE IF EXISTS httphooks_run_endpoints, httphooks_run_hooks, httphooks_runs, httphooks_locks,
    httphooks_new_callbacks, httphooks_attempts, httphooks_oauth_tokens, httphooks_callbacks,
    httphooks_hook_versions, httphooks_hooks;
