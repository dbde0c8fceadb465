-- A hook's settings live in its versions only: `httphooks_hooks.version_id` names the
-- current one, whose row holds every setting (URL, method, headers, timeout, attempts,
-- auth, signing, CA file, size limit) and what callbacks are made of (template, content
-- type, order). The hook row keeps what triggers and admission read (table, events,
-- enabled, when_changed, key) and its identity. So a new setting is one column, here.
-- Every hook's current version already holds its current settings (each `hooks add|
-- edit` makes one).
ALTER TABLE httphooks_hooks
    DROP COLUMN target_url, DROP COLUMN http_method, DROP COLUMN headers,
    DROP COLUMN content_type, DROP COLUMN payload_template, DROP COLUMN ordered,
    DROP COLUMN timeout_ms, DROP COLUMN max_attempts, DROP COLUMN auth,
    DROP COLUMN signing_secret_env, DROP COLUMN ca_file, DROP COLUMN max_payload_size;
