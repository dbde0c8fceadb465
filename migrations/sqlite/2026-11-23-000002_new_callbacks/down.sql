DROP TABLE httphooks_new_callbacks;
DROP INDEX httphooks_hooks_table_name;
CREATE INDEX httphooks_hooks_table_name ON httphooks_hooks (table_name);
