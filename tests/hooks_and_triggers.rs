//! Hooks and the triggers they install, end to end through the binary, on both backends.

mod common;

use common::{json, TestDb};

const URL: &str = "http://127.0.0.1:9/hook";

fn orders(db: &TestDb) {
    db.sql(&format!(
        "CREATE TABLE \"order\" ({}, \"customer name\" TEXT, total INTEGER, profile {}, paid BOOLEAN)",
        db.id_column(),
        db.json_type()
    ));
}

fn callbacks(db: &TestDb) -> i64 {
    db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks")
}

/// Changes recorded by the triggers and not admitted yet (read without admitting).
fn new_callbacks(db: &TestDb) -> i64 {
    db.connect()
        .count("SELECT COUNT(*) AS n FROM httphooks_new_callbacks")
}

/// The hook of each callback, oldest first.
fn hooks_of_callbacks(db: &TestDb) -> Vec<String> {
    let n = callbacks(db);
    (0..n)
        .map(|offset| {
            db.text(&format!(
                "SELECT hook_name AS v FROM httphooks_callback_details ORDER BY id LIMIT 1 OFFSET {offset}"
            ))
            .unwrap()
        })
        .collect()
}

on_every_backend!(
    row_changes_by_any_client_make_one_callback_per_enabled_hook,
    |db| {
        let db = db.migrated();
        orders(&db);
        db.ok(&[
            "hooks",
            "add",
            "all",
            "--table",
            "order",
            "--events",
            "insert,update,delete",
            "--url",
            URL,
        ]);
        db.add_hook("inserts", "order", "insert", URL, &[]);
        db.add_hook("off", "order", "insert", URL, &["--disabled"]);

        // A multi-row insert, a multi-row update and a delete, as raw SQL from another client.
        db.sql("INSERT INTO \"order\" (\"customer name\", total, paid) VALUES ('Ann', 10, false), ('Bob', 20, false)");
        assert_eq!(callbacks(&db), 4, "2 rows × 2 enabled insert hooks");
        db.sql("UPDATE \"order\" SET total = total + 1");
        assert_eq!(callbacks(&db), 6, "2 rows × 1 update hook");
        db.sql("DELETE FROM \"order\" WHERE \"customer name\" = 'Bob'");
        assert_eq!(callbacks(&db), 7);
        let events = db.text(
        "SELECT event_type || ':' || object_id || ':' || hook_name AS v FROM httphooks_callback_details ORDER BY id DESC LIMIT 1",
    );
        assert_eq!(events.as_deref(), Some("delete:2:all"));

        // A rolled-back change leaves nothing.
        db.sql(
            "BEGIN; INSERT INTO \"order\" (\"customer name\", total) VALUES ('Cy', 1); ROLLBACK;",
        );
        assert_eq!(callbacks(&db), 7);

        // Enabling and disabling take effect at once, with no reload.
        db.ok(&["hooks", "enable", "off"]);
        db.ok(&["hooks", "disable", "all"]);
        db.sql("INSERT INTO \"order\" (\"customer name\", total) VALUES ('Di', 1)");
        let hooks: Vec<String> = (0..2)
        .map(|offset| {
            db.text(&format!("SELECT hook_name AS v FROM httphooks_callback_details ORDER BY id DESC LIMIT 1 OFFSET {offset}"))
                .unwrap()
        })
        .collect();
        assert_eq!(callbacks(&db), 9);
        assert!(
            hooks.contains(&"off".to_owned()) && hooks.contains(&"inserts".to_owned()),
            "{hooks:?}"
        );
    }
);

on_every_backend!(the_row_is_captured_with_old_values_and_json_columns, |db| {
    let db = db.migrated();
    orders(&db);
    db.add_hook("h", "order", "update", URL, &[]);
    db.sql("INSERT INTO \"order\" (\"customer name\", total, profile, paid) VALUES ('Ann', 10, '{\"city\": \"Zürich\"}', true)");
    db.sql("UPDATE \"order\" SET total = 11");
    let data = json(
        &db.text("SELECT event_data AS v FROM httphooks_callbacks")
            .unwrap(),
    );
    assert_eq!(data["instance"]["total"], 11);
    assert_eq!(data["old"]["total"], 10);
    assert_eq!(data["instance"]["customer name"], "Ann");
    assert_eq!(data["instance"]["profile"]["city"], "Zürich");
    assert_eq!(data["instance"]["paid"], true);
});

on_every_backend!(when_changed_filters_updates, |db| {
    let db = db.migrated();
    orders(&db);
    db.add_hook("h", "order", "update", URL, &["--when-changed", "total"]);
    db.sql("INSERT INTO \"order\" (\"customer name\", total) VALUES ('Ann', 10)");
    db.sql("UPDATE \"order\" SET \"customer name\" = 'Anne'");
    assert_eq!(callbacks(&db), 0, "total did not change");
    db.sql("UPDATE \"order\" SET total = 12");
    assert_eq!(callbacks(&db), 1);
    db.sql("UPDATE \"order\" SET total = NULL");
    assert_eq!(callbacks(&db), 2, "a change to NULL is a change");
    db.ok(&["hooks", "edit", "h", "--no-when-changed"]);
    db.sql("UPDATE \"order\" SET \"customer name\" = 'Ann'");
    assert_eq!(callbacks(&db), 3);
});

on_every_backend!(
    each_hook_of_a_table_sees_only_its_own_when_changed_columns,
    |db| {
        let db = db.migrated();
        orders(&db);
        db.add_hook(
            "totals",
            "order",
            "update",
            URL,
            &["--when-changed", "total"],
        );
        db.add_hook(
            "names",
            "order",
            "update",
            URL,
            &["--when-changed", "customer name"],
        );
        db.sql("INSERT INTO \"order\" (\"customer name\", total) VALUES ('Ann', 10)");
        db.sql("UPDATE \"order\" SET paid = true");
        // Nothing any hook watches changed: the application's write left nothing behind.
        assert_eq!(new_callbacks(&db), 0);
        db.sql("UPDATE \"order\" SET \"customer name\" = 'Anne'");
        db.sql("UPDATE \"order\" SET total = 11, \"customer name\" = 'Ann'");
        assert_eq!(hooks_of_callbacks(&db), ["names", "totals", "names"]);
    }
);

on_every_backend!(
    a_change_goes_to_the_hooks_as_they_were_when_it_was_made,
    |db| {
        let db = db.migrated();
        orders(&db);
        db.add_hook("a", "order", "insert,update", URL, &[]);
        db.add_hook("b", "order", "insert", URL, &["--disabled"]);
        db.sql("INSERT INTO \"order\" (total) VALUES (1)");
        // Made while a was enabled and b was not; not yet sent, listed or admitted.
        db.ok(&["hooks", "disable", "a"]);
        db.ok(&["hooks", "enable", "b"]);
        db.sql("INSERT INTO \"order\" (total) VALUES (2)");
        db.add_hook("c", "order", "insert", URL, &[]);
        db.sql("INSERT INTO \"order\" (total) VALUES (3)");
        // No enabled hook takes updates any more: the application's update leaves nothing.
        let pending = new_callbacks(&db);
        db.sql("UPDATE \"order\" SET total = total + 10");
        assert_eq!(new_callbacks(&db), pending);
        let listed: serde_json::Value =
            serde_json::from_str(&db.ok(&["callbacks", "list", "--format", "json"])).unwrap();
        let mut made: Vec<(String, String)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["hook_name"].as_str().unwrap().to_owned(),
                    c["object_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        made.reverse();
        let expected = [("a", "1"), ("b", "2"), ("b", "3"), ("c", "3")];
        assert_eq!(
            made,
            expected.map(|(h, o)| (h.to_owned(), o.to_owned())).to_vec()
        );
    }
);

on_every_backend!(
    removing_the_last_hook_drops_the_triggers_and_sync_follows_new_columns,
    |db| {
        let db = db.migrated();
        db.sql(&format!(
            "CREATE TABLE \"My Table\" ({}, name TEXT)",
            db.id_column()
        ));
        db.add_hook("a", "My Table", "insert", URL, &[]);
        db.add_hook("b", "My Table", "insert", URL, &[]);
        db.sql("INSERT INTO \"My Table\" (name) VALUES ('x')");
        assert_eq!(callbacks(&db), 2);

        db.sql("ALTER TABLE \"My Table\" ADD COLUMN added TEXT");
        db.ok(&["hooks", "sync"]);
        db.sql("INSERT INTO \"My Table\" (name, added) VALUES ('y', 'new')");
        let data = json(
            &db.text("SELECT event_data AS v FROM httphooks_callbacks ORDER BY id DESC LIMIT 1")
                .unwrap(),
        );
        assert_eq!(data["instance"]["added"], "new");

        // Waiting callbacks protect a hook from removal unless forced.
        let (code, _, err) = db.run(&["hooks", "remove", "a"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--force"), "{err}");
        db.ok(&["hooks", "remove", "a", "--force"]);
        db.sql("INSERT INTO \"My Table\" (name) VALUES ('z')");
        assert_eq!(callbacks(&db), 5, "b still fires");
        db.ok(&["hooks", "remove", "b", "--force"]);
        db.sql("INSERT INTO \"My Table\" (name) VALUES ('w')");
        assert_eq!(callbacks(&db), 5, "no hook left: no trigger");
        let cancelled =
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE status = 'error'");
        assert_eq!(
            cancelled, 5,
            "forced removal cancels waiting callbacks and keeps their history"
        );
    }
);

on_every_backend!(invalid_definitions_exit_2_and_write_nothing, |db| {
    let db = db.migrated();
    orders(&db);
    let base = ["hooks", "add", "bad", "--table", "order"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--url", "not a url"], "not a valid URL"),
        (vec!["--url", "ftp://example.com/x"], "http(s)"),
        (vec!["--method", "BREW"], "not a supported method"),
        (vec!["--header", "Bad Name: x"], "not a valid header name"),
        (
            vec!["--header", "{\"X\": \"a\\r\\nInjected: 1\"}"],
            "line break",
        ),
        (
            vec!["--content-type", "image/png"],
            "not a supported content type",
        ),
        (
            vec!["--template", "{\"total\": {{ instance.totl }}}"],
            "instance.totl: the row has no column totl (the row of table order holds: id,",
        ),
        (
            vec![
                "--template",
                "{\"name\": {{ instance[\"customer name\"] }}}",
            ],
            "not valid JSON",
        ),
        (vec!["--template", "{{ instance.id "], "syntax error"),
        (
            vec![
                "--content-type",
                "application/xml",
                "--template",
                "<a>{{ instance.id }}</b>",
            ],
            "not well-formed XML",
        ),
        (
            vec!["--events", "update", "--when-changed", "nope"],
            "not a column",
        ),
        (
            vec!["--events", "insert,frobnicate"],
            "a table hook takes only",
        ),
        (vec!["--timeout", "10m"], "--timeout"),
        (vec!["--max-attempts", "0"], "--max-attempts"),
    ];
    for (extra, expected) in cases {
        let mut args = base.to_vec();
        args.extend(extra.iter());
        for (flag, default) in [("--url", URL), ("--events", "insert")] {
            if !extra.contains(&flag) {
                args.extend([flag, default]);
            }
        }
        let (code, out, err) = db.run(&args);
        assert_eq!(code, 2, "{extra:?}: {out}{err}");
        assert!(
            err.contains(expected),
            "{extra:?}: expected {expected:?} in {err}"
        );
        assert_eq!(err.lines().count(), 1, "one sentence: {err}");
    }
    let (code, _, err) = db.run(&[
        "hooks", "add", "bad", "--table", "nope", "--events", "insert", "--url", URL,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no table \"nope\""), "{err}");
    let (code, _, _) = db.run(&["hooks", "add", "bad", "--events", "insert", "--url", URL]);
    assert_eq!(code, 2, "row events need a table");

    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_hooks"),
        0,
        "nothing was written"
    );
    db.sql("INSERT INTO \"order\" (total) VALUES (1)");
    assert_eq!(callbacks(&db), 0, "no trigger was installed");
});

on_every_backend!(hooks_list_show_and_edit_round_trip, |db| {
    let db = db.migrated();
    orders(&db);
    db.ok(&[
        "hooks",
        "add",
        "full",
        "--table",
        "order",
        "--events",
        "insert,update",
        "--url",
        URL,
        "--method",
        "put",
        "--header",
        "X-Api-Key: ${ORDERS_KEY}",
        "--header",
        "X-Plain: yes",
        "--content-type",
        "application/x-www-form-urlencoded",
        "--template",
        "{\"total\": {{ instance.total }}}",
        "--when-changed",
        "total",
        "--timeout",
        "2s",
        "--max-attempts",
        "3",
    ]);
    let shown = json(&db.ok(&["hooks", "show", "full", "--format", "json"]));
    assert_eq!(shown["name"], "full");
    assert_eq!(shown["table_name"], "order");
    assert_eq!(shown["events"], serde_json::json!(["insert", "update"]));
    assert_eq!(shown["http_method"], "PUT");
    assert_eq!(
        shown["headers"]["X-Api-Key"], "${ORDERS_KEY}",
        "the reference is stored, never a secret"
    );
    assert_eq!(shown["when_changed"], serde_json::json!(["total"]));
    assert_eq!(shown["timeout"], "2s");
    assert_eq!(shown["max_attempts"], 3);
    assert_eq!(shown["enabled"], true);

    db.ok(&[
        "hooks",
        "edit",
        "full",
        "--url",
        "http://127.0.0.1:9/other",
        "--rename",
        "renamed",
        "--no-template",
    ]);
    let listed = json(&db.ok(&["hooks", "list", "--format", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "renamed");
    assert_eq!(listed[0]["target_url"], "http://127.0.0.1:9/other");
    assert_eq!(listed[0]["payload_template"], serde_json::Value::Null);
    let table = db.ok(&["hooks", "list"]);
    assert!(
        table.contains("renamed") && table.contains("ENABLED"),
        "{table}"
    );

    // A failed edit changes nothing.
    let (code, _, _) = db.run(&["hooks", "edit", "renamed", "--url", "nope"]);
    assert_eq!(code, 2);
    assert_eq!(
        json(&db.ok(&["hooks", "show", "renamed", "--format", "json"]))["target_url"],
        "http://127.0.0.1:9/other"
    );
    let (code, _, err) = db.run(&["hooks", "show", "missing"]);
    assert_eq!(code, 2);
    assert!(err.contains("hooks list"), "{err}");
});

on_every_backend!(nothing_in_a_hook_definition_reaches_sql, |db| {
    let db = db.migrated();
    orders(&db);
    let name = "it's'; DROP TABLE \"order\"; --";
    db.add_hook(
        name,
        "order",
        "insert",
        "http://127.0.0.1:9/x?q=1'--",
        &[
            "--template",
            "{\"q\": \"'); DROP TABLE httphooks_hooks; --{{ instance.id }}\"}",
        ],
    );
    db.sql("INSERT INTO \"order\" (total) VALUES (1)");
    assert_eq!(
        db.text("SELECT hook_name AS v FROM httphooks_callback_details")
            .as_deref(),
        Some(name)
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM \"order\""), 1);
    let (code, _, _) = db.run(&[
        "hooks",
        "add",
        "x",
        "--table",
        "order\"; DROP TABLE \"order",
        "--events",
        "insert",
        "--url",
        URL,
    ]);
    assert_eq!(code, 2);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM \"order\""), 1);
});

/// SQLite lets any column of a table that is not STRICT hold a blob, which JSON cannot;
/// the trigger must never make the application's INSERT fail over one.
#[test]
fn sqlite_blobs_in_any_column_never_break_the_applications_write() {
    let db = TestDb::sqlite().migrated();
    db.sql("CREATE TABLE files (id INTEGER PRIMARY KEY, name TEXT, size INTEGER, ok BOOLEAN, meta JSON, content BLOB)");
    db.add_hook("h", "files", "insert", URL, &[]);
    db.sql(
        "INSERT INTO files (name, size, ok, meta, content) VALUES \
         ('a', 1, 1, '{\"k\": [1]}', x'00ff'), \
         (x'0102', x'03', x'04', x'05', NULL), \
         ('', 0, 0, 'not json', 'text in a blob column')",
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM files"), 3);
    let rows: Vec<serde_json::Value> = (1..=3)
        .map(|id| {
            json(
                &db.text(&format!(
                    "SELECT event_data AS v FROM httphooks_callbacks WHERE object_id = '{id}'"
                ))
                .unwrap(),
            )["instance"]
                .clone()
        })
        .collect();
    assert_eq!(
        rows[0],
        serde_json::json!({"id": 1, "name": "a", "size": 1, "ok": true, "meta": {"k": [1]}, "content": "00FF"})
    );
    assert_eq!(
        rows[1],
        serde_json::json!({"id": 2, "name": "0102", "size": "03", "ok": "04", "meta": "05", "content": null})
    );
    assert_eq!(
        rows[2],
        serde_json::json!({"id": 3, "name": "", "size": 0, "ok": false, "meta": "not json", "content": "text in a blob column"})
    );
}

/// A database migrated by an older httphooks has triggers of the old shape; `migrate`
/// re-creates them for the new schema.
#[test]
fn sqlite_migrate_recreates_the_triggers_of_an_older_schema() {
    let db = TestDb::sqlite().migrated();
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)");
    db.add_hook("h", "t", "insert", URL, &[]);
    // Back to the first schema, with a trigger of its shape.
    let first = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/sqlite/2026-11-23-000001_create_httphooks/up.sql"
    ))
    .unwrap();
    let first_view = &first[first
        .find("CREATE VIEW httphooks_callback_details")
        .unwrap()..];
    let first_view = &first_view[..=first_view.find(';').unwrap()];
    db.connect().sql(&format!(
        "DROP TRIGGER httphooks_t_insert; \
         DROP VIEW httphooks_new_callback_matches; \
         DROP TABLE httphooks_new_callbacks; \
         DROP TABLE httphooks_runs; \
         DROP TABLE httphooks_run_hooks; \
         DROP TABLE httphooks_run_endpoints; \
         DROP VIEW httphooks_callback_details; \
         ALTER TABLE httphooks_callbacks DROP COLUMN claim_started; \
         ALTER TABLE httphooks_callbacks DROP COLUMN webhook_id; \
         ALTER TABLE httphooks_callbacks DROP COLUMN attempts_before_retry; \
         {first_view} \
         DELETE FROM httphooks_schema_migrations WHERE version > '20261123000001'; \
         ALTER TABLE httphooks_hook_versions DROP COLUMN ordered; \
         ALTER TABLE httphooks_hooks DROP COLUMN table_oid; \
         ALTER TABLE httphooks_hooks DROP COLUMN key_columns; \
         ALTER TABLE httphooks_hooks DROP COLUMN capture_verified_at; \
         ALTER TABLE httphooks_hook_versions DROP COLUMN max_payload_size; \
         ALTER TABLE httphooks_hook_versions DROP COLUMN coalesced; \
         ALTER TABLE httphooks_hook_versions DROP COLUMN batch_size; \
         ALTER TABLE httphooks_attempts DROP COLUMN batch; \
         DROP INDEX httphooks_attempts_answer; \
         ALTER TABLE httphooks_attempts DROP COLUMN response_body_callback_id; \
         DROP INDEX httphooks_callbacks_superseded; \
         ALTER TABLE httphooks_callbacks DROP COLUMN superseded_by; \
         ALTER TABLE httphooks_hooks ADD COLUMN target_url TEXT NOT NULL DEFAULT ''; \
         ALTER TABLE httphooks_hooks ADD COLUMN http_method TEXT NOT NULL DEFAULT 'POST'; \
         ALTER TABLE httphooks_hooks ADD COLUMN headers TEXT NOT NULL DEFAULT '{{}}'; \
         ALTER TABLE httphooks_hooks ADD COLUMN content_type TEXT NOT NULL DEFAULT 'application/json'; \
         ALTER TABLE httphooks_hooks ADD COLUMN payload_template TEXT; \
         ALTER TABLE httphooks_hooks ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT 0; \
         ALTER TABLE httphooks_hooks ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 10000; \
         ALTER TABLE httphooks_hooks ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 8; \
         ALTER TABLE httphooks_hooks ADD COLUMN auth TEXT; \
         ALTER TABLE httphooks_hooks ADD COLUMN signing_secret_env TEXT; \
         ALTER TABLE httphooks_hooks ADD COLUMN ca_file TEXT; \
         CREATE TRIGGER httphooks_t_insert AFTER INSERT ON t BEGIN \
           INSERT INTO httphooks_callbacks (hook_id, version_id, event_type, event_data) \
           VALUES (1, 1, 'insert', '{{}}'); END;"
    ));
    let (code, _, err) = db.run(&["callbacks", "list"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("httphooks migrate"), "{err}");
    assert!(db.ok(&["migrate"]).contains("applied 11 migration"));
    db.sql("INSERT INTO t (v) VALUES (7)");
    let data = json(
        &db.text("SELECT event_data AS v FROM httphooks_callbacks")
            .unwrap(),
    );
    assert_eq!(data["instance"]["v"], 7);
}
