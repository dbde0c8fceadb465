DROP TABLE httphooks_attempts;
DROP TABLE httphooks_callbacks;
DROP TABLE httphooks_hooks;
