DROP TABLE httphooks_attempts;
DROP TABLE httphooks_oauth_tokens;
DROP VIEW httphooks_callback_details;
DROP TABLE httphooks_callbacks;
DROP TABLE httphooks_hook_versions;
DROP TABLE httphooks_hooks;
