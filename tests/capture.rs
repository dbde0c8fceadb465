//! Capture never stops silently (docs/behaviour.md §2): tables rebuilt, altered or renamed behind
//! httphooks' back, least-privilege application roles on PostgreSQL, and row keys.

mod common;

use common::server::Server;
use common::{json, TestDb};
use diesel::connection::SimpleConnection;
use diesel::Connection;

const URL: &str = "http://127.0.0.1:9/hook";

fn callbacks(db: &TestDb) -> i64 {
    db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks")
}

fn hooks(db: &TestDb) -> i64 {
    db.count("SELECT COUNT(*) AS n FROM httphooks_hooks")
}

/// The data of the newest callback.
fn last_event(db: &TestDb) -> serde_json::Value {
    json(
        &db.text("SELECT event_data AS v FROM httphooks_callbacks ORDER BY id DESC LIMIT 1")
            .unwrap(),
    )
}

/// Runs SQL that may fail, returning the error.
fn try_sql(db: &TestDb, sql: &str) -> Result<(), String> {
    db.connect().try_sql(sql)
}

/// What Django's and Alembic's SQLite migrations do to change a table: build a new one,
/// copy, drop the old one (and with it its triggers), rename.
fn rebuild(db: &TestDb, prefix: &str) {
    db.connect().sql(&format!(
        "BEGIN; {prefix} \
         CREATE TABLE new__t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c INTEGER); \
         INSERT INTO new__t (id, a, b) SELECT id, a, b FROM t; \
         DROP TABLE t; \
         ALTER TABLE new__t RENAME TO t; COMMIT;"
    ));
}

/// Drops the PostgreSQL event trigger `migrate` installs when it runs as a superuser,
/// as if httphooks had been migrated by a role without that right.
fn without_event_trigger(db: &TestDb) {
    if let common::Kind::Postgres { schema, .. } = &db.kind {
        db.connect()
            .sql(&format!("DROP EVENT TRIGGER httphooks_reattach_{schema}"));
    }
}

/// PostgreSQL, migrated by a superuser: a rebuild in one transaction (create, copy,
/// drop, rename) gets capture back within that transaction: no write is lost and
/// monitoring stays green. A DDL statement on an unrelated table is unaffected.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_a_rebuild_gets_capture_back_in_its_own_transaction() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT)");
    db.add_hook("h", "t", "insert", URL, &[]);
    rebuild(&db, "");
    db.sql("INSERT INTO t (id, a) VALUES (2, 'kept')");
    assert_eq!(callbacks(&db), 1, "captured right after the rebuild");
    let (code, out, err) = db.run(&["monitor_callbacks", "--status", "error"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, _, err) = db.run(&["send_callbacks", "--max-runtime", "5s"]);
    assert!(!err.contains("broken"), "{err}");
    db.sql("CREATE TABLE other (id INTEGER PRIMARY KEY); ALTER TABLE other ADD COLUMN v TEXT");
    db.sql("INSERT INTO other (id) VALUES (1)");
    assert_eq!(callbacks(&db), 1, "an unwatched table stays unwatched");
}

/// PostgreSQL: the re-attachment finds tables by the names hooks store, which need
/// quoting (`My Table`, `Orders`): a rebuild of each, and of a plain table beside them,
/// loses no write.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_a_rebuild_of_a_table_whose_name_needs_quoting_gets_capture_back() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    db.sql(r#"CREATE TABLE "My Table" (id INTEGER PRIMARY KEY, a TEXT)"#);
    db.sql(r#"CREATE TABLE "Orders" (id INTEGER PRIMARY KEY, a TEXT)"#);
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT)");
    db.add_hook("spaced", "My Table", "insert", URL, &[]);
    db.add_hook("orders", "Orders", "insert", URL, &[]);
    db.add_hook("h", "t", "insert", URL, &[]);
    rebuild(&db, "");
    db.sql("INSERT INTO t (id, a) VALUES (2, 'kept')");
    assert_eq!(callbacks(&db), 1, "the plain table's rebuild kept capture");
    db.connect().sql(
        r#"BEGIN; CREATE TABLE "new Orders" (id INTEGER PRIMARY KEY, a TEXT);
           DROP TABLE "Orders"; ALTER TABLE "new Orders" RENAME TO "Orders"; COMMIT;"#,
    );
    db.sql(r#"INSERT INTO "Orders" (id, a) VALUES (1, 'kept')"#);
    db.connect().sql(
        r#"BEGIN; CREATE TABLE "new My Table" (id INTEGER PRIMARY KEY, a TEXT);
           DROP TABLE "My Table"; ALTER TABLE "new My Table" RENAME TO "My Table"; COMMIT;"#,
    );
    db.sql(r#"INSERT INTO "My Table" (id, a) VALUES (1, 'kept')"#);
    assert_eq!(callbacks(&db), 3, "every rebuilt table kept capture");
    let (code, out, err) = db.run(&["monitor_callbacks", "--status", "error"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// The README's flow for changing a watched SQLite table: the SQL of `hooks triggers T
/// --drop` at the start of the migration's transaction, `hooks sync T` right after.
#[test]
fn sqlite_rebuild_and_drop_column_with_the_documented_steps_lose_no_write() {
    let db = TestDb::sqlite().migrated();
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT)");
    db.add_hook("h", "t", "insert,update,delete", URL, &[]);
    db.sql("INSERT INTO t (id, a, b) VALUES (1, 'x', 'y')");
    assert_eq!(callbacks(&db), 1);

    // Without the steps SQLite refuses the application's DROP COLUMN (the README says so).
    let refused = try_sql(&db, "ALTER TABLE t DROP COLUMN b").unwrap_err();
    assert!(refused.contains("no such column"), "{refused}");

    // A rebuild that adds column c.
    let drop_sql = db.ok(&["hooks", "triggers", "t", "--drop"]);
    assert!(drop_sql.contains("DROP TRIGGER IF EXISTS"), "{drop_sql}");
    rebuild(&db, &drop_sql);
    let out = db.ok(&["hooks", "sync", "t"]);
    assert!(out.contains("synced the triggers of table t"), "{out}");
    db.sql("INSERT INTO t (id, a, b, c) VALUES (2, 'x', 'y', 3)");
    db.sql("UPDATE t SET c = 4 WHERE id = 1");
    assert_eq!(callbacks(&db), 3, "no write after sync is lost");
    assert_eq!(last_event(&db)["instance"]["c"], 4);

    // DROP COLUMN with the steps.
    let drop_sql = db.ok(&["hooks", "triggers", "t", "--drop"]);
    db.connect().sql(&format!(
        "BEGIN; {drop_sql} ALTER TABLE t DROP COLUMN b; COMMIT;"
    ));
    db.ok(&["hooks", "sync", "t"]);
    db.sql("INSERT INTO t (id, a, c) VALUES (3, 'z', 5)");
    db.sql("DELETE FROM t WHERE id = 2");
    assert_eq!(callbacks(&db), 5, "no write after sync is lost");
    let event = last_event(&db);
    assert_eq!(event["instance"]["id"], 2);
    assert!(event["instance"].get("b").is_none(), "{event}");
    let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
    assert_eq!(code, 0, "{out}");

    // The SQL that creates the triggers is what sync installed, for the current columns.
    let create_sql = db.ok(&["hooks", "triggers", "t"]);
    assert!(create_sql.contains("CREATE TRIGGER"), "{create_sql}");
    assert!(!create_sql.contains("'b'"), "{create_sql}");
}

on_every_backend!(
    a_rebuilt_table_fails_monitor_until_send_callbacks_restores_its_triggers,
    |db| {
        let db = db.migrated();
        db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT)");
        db.add_hook("h", "t", "insert", URL, &[]);
        db.sql("INSERT INTO t (id, a) VALUES (1, 'x')");
        assert_eq!(callbacks(&db), 1);
        let (code, _, _) = db.run(&["monitor_callbacks", "--status", "error"]);
        assert_eq!(code, 0);
        // As installed by a role that may not create event triggers (see the next test).
        without_event_trigger(&db);

        rebuild(&db, "");
        db.sql("INSERT INTO t (id, a) VALUES (2, 'lost')");
        assert_eq!(callbacks(&db), 1, "the rebuild took the triggers");

        // Monitoring turns red, naming hook, table and the fix, and changes nothing.
        for _ in 0..2 {
            let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
            assert_eq!(code, 1, "{out}");
            assert!(
                out.contains("ALERT: capture of table t is broken for hook(s) h")
                    && out.contains("hooks sync t"),
                "{out}"
            );
        }
        // Other commands warn.
        let (code, _, err) = db.run(&["callbacks", "list"]);
        assert_eq!(code, 0);
        assert!(err.contains("capture of table t is broken"), "{err}");

        // send_callbacks restores the triggers and says since when changes may be lost.
        let (code, _, err) = db.run(&["send_callbacks", "--max-runtime", "5s"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("capture of table t was broken for hook(s) h")
                && err.contains("restored")
                && err.contains("may have made no callbacks"),
            "{err}"
        );
        let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
        assert_eq!(code, 0, "{out}");
        let (_, _, err) = db.run(&["send_callbacks", "--max-runtime", "5s"]);
        assert!(!err.contains("broken"), "intact now: {err}");
        db.sql("INSERT INTO t (id, a) VALUES (3, 'kept')");
        assert_eq!(callbacks(&db), 2);
        assert_eq!(last_event(&db)["instance"]["a"], "kept");
    }
);

on_every_backend!(
    a_table_that_is_gone_is_reported_and_the_others_go_on,
    |db| {
        let db = db.migrated();
        db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)");
        db.sql("CREATE TABLE u (id INTEGER PRIMARY KEY, a TEXT)");
        db.add_hook("h", "t", "insert", URL, &[]);
        db.add_hook("g", "u", "insert", URL, &[]);
        db.sql("DROP TABLE u");

        // sync goes on past the missing table, reports per hook, exits 3.
        let (code, out, err) = db.run(&["hooks", "sync"]);
        assert_eq!(code, 3, "{out}{err}");
        assert!(out.contains("synced the triggers of table t"), "{out}");
        assert!(
            err.contains("hook g: table u no longer exists") && err.contains("hooks remove g"),
            "{err}"
        );
        let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
        assert_eq!(code, 1);
        assert!(
            out.contains("table u of hook(s) g no longer exists"),
            "{out}"
        );

        // send_callbacks reports it and goes on.
        db.sql("INSERT INTO t (id, a) VALUES (1, 'x')");
        let server = Server::answering(200);
        db.ok(&["hooks", "edit", "h", "--url", &server.url("/t")]);
        let (code, out, err) = db.run(&["send_callbacks"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("sent 1"), "{out}");
        assert!(
            err.contains("table u of hook(s) g no longer exists"),
            "{err}"
        );
        assert_eq!(server.received().len(), 1);

        // Once its hook is removed, all is well again.
        db.ok(&["hooks", "remove", "g"]);
        let (code, _, _) = db.run(&["hooks", "sync"]);
        assert_eq!(code, 0);
        let (code, _, _) = db.run(&["monitor_callbacks", "--status", "error"]);
        assert_eq!(code, 0);
    }
);

on_every_backend!(
    a_table_without_primary_key_needs_key_and_object_ids_agree,
    |db| {
        let db = db.migrated();
        db.sql("CREATE TABLE k (a INTEGER, b TEXT, v TEXT)");
        let (code, _, err) = db.run(&[
            "hooks", "add", "h", "--table", "k", "--events", "insert", "--url", URL,
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("no primary key") && err.contains("--key COL"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        let (code, _, err) = db.run(&[
            "hooks", "add", "h", "--table", "k", "--events", "insert", "--url", URL, "--key",
            "a,nope",
        ]);
        assert_eq!(code, 2);
        assert!(err.contains("\"nope\", which is not a column"), "{err}");
        let (code, _, err) = db.run(&[
            "hooks", "add", "e", "--events", "a.b", "--url", URL, "--key", "a",
        ]);
        assert_eq!(code, 2);
        assert!(err.contains("give --table too"), "{err}");
        assert_eq!(hooks(&db), 0, "nothing was written");
        db.sql("INSERT INTO k (a, b, v) VALUES (0, 'w', 'no trigger')");
        assert_eq!(callbacks(&db), 0, "no trigger was installed");

        // One key column: its value as text.
        db.add_hook("h", "k", "insert,delete", URL, &["--key", "a"]);
        db.sql("INSERT INTO k (a, b, v) VALUES (1, 'x', 'v')");
        assert_eq!(
            db.text("SELECT object_id AS v FROM httphooks_callbacks ORDER BY id DESC LIMIT 1")
                .as_deref(),
            Some("1")
        );
        let shown = json(&db.ok(&["hooks", "show", "h", "--format", "json"]));
        assert_eq!(shown["key"], serde_json::json!(["a"]));

        // Every hook of the table uses the same key.
        let (code, _, err) = db.run(&[
            "hooks", "add", "g", "--table", "k", "--events", "insert", "--url", URL, "--key", "a,b",
        ]);
        assert_eq!(code, 2);
        assert!(
            err.contains("hook h identifies rows of table k by (a)") && err.contains("--key a"),
            "{err}"
        );
        let (code, _, _) = db.run(&["hooks", "edit", "h", "--key", "b"]);
        assert_eq!(code, 0, "a lone hook may change its key");
        db.sql("DELETE FROM k WHERE a = 1");
        assert_eq!(
            db.text("SELECT object_id AS v FROM httphooks_callbacks ORDER BY id DESC LIMIT 1")
                .as_deref(),
            Some("x")
        );
        assert_eq!(hooks(&db), 1);

        // Several key columns: a compact JSON array, the same text on both backends,
        // whether named with --key or the table's composite primary key.
        db.add_hook("g", "k", "insert", URL, &["--key", "b"]);
        // (VARCHAR: MySQL keys no TEXT column without a prefix length.)
        db.sql("CREATE TABLE c (a INTEGER, b VARCHAR(20), PRIMARY KEY (a, b))");
        db.add_hook("composite", "c", "insert", URL, &[]);
        db.sql("CREATE TABLE n (a INTEGER, b TEXT)");
        db.add_hook("named", "n", "insert", URL, &["--key", "b,a"]);
        db.sql("INSERT INTO c (a, b) VALUES (1, 'x\"y')");
        db.sql("INSERT INTO n (a, b) VALUES (2, 'z')");
        assert_eq!(
            db.text(
                "SELECT object_id AS v FROM httphooks_callback_details WHERE hook_name = 'composite'"
            )
            .as_deref(),
            Some("[1,\"x\\\"y\"]")
        );
        assert_eq!(
            db.text(
                "SELECT object_id AS v FROM httphooks_callback_details WHERE hook_name = 'named'"
            )
            .as_deref(),
            Some("[\"z\",2]")
        );
    }
);

/// ALTER TABLE … RENAME keeps the table's identity: capture goes on, and the next
/// command gives the hooks the new name and says so.
fn capture_follows_a_renamed_table(db: &TestDb) {
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)");
    db.add_hook("h", "t", "insert", URL, &[]);
    db.connect().sql("ALTER TABLE t RENAME TO t2");
    db.connect().sql("INSERT INTO t2 (id, a) VALUES (1, 'x')");
    let (code, out, err) = db.run(&["monitor_callbacks", "--status", "waiting"]);
    assert_eq!(code, 0, "a rename loses nothing: {out}{err}");
    let (code, _, err) = db.run(&["hooks", "list"]);
    assert_eq!(code, 0);
    assert!(
        err.contains("table t was renamed to t2; its hooks (h) now watch t2"),
        "{err}"
    );
    let shown = json(&db.ok(&["hooks", "show", "h", "--format", "json"]));
    assert_eq!(shown["table_name"], "t2");
    db.connect().sql("INSERT INTO t2 (id, a) VALUES (2, 'y')");
    assert_eq!(callbacks(db), 2, "no write was lost");
    assert_eq!(
        db.text("SELECT table_name AS v FROM httphooks_callback_details ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some("t2")
    );
    let (code, out, err) = db.run(&["monitor_callbacks", "--status", "waiting"]);
    assert_eq!(code, 0, "capture is intact under the new name: {out}{err}");
    assert!(!err.contains("renamed"), "said once: {err}");
}

#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_capture_follows_a_renamed_table() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    capture_follows_a_renamed_table(&db.migrated());
}

/// PostgreSQL follows the table's identity: a new table that takes a renamed table's
/// name gets none of its hooks (the event trigger re-attaches capture only when the
/// hooks' own table is gone, as in a rebuild).
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_a_new_table_of_a_renamed_tables_name_gets_none_of_its_hooks() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)");
    db.add_hook("h", "t", "insert", URL, &[]);
    db.connect().sql("ALTER TABLE t RENAME TO t2");
    db.connect()
        .sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)");
    db.connect()
        .sql("INSERT INTO t2 (id, a) VALUES (1, 'watched')");
    db.connect()
        .sql("INSERT INTO t (id, a) VALUES (2, 'not watched')");
    let (code, _, err) = db.run(&["send_callbacks", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    db.ok(&["hooks", "list"]);
    db.connect()
        .sql("INSERT INTO t2 (id, a) VALUES (3, 'watched')");
    db.connect()
        .sql("INSERT INTO t (id, a) VALUES (4, 'not watched')");
    let shown = json(&db.ok(&["hooks", "show", "h", "--format", "json"]));
    assert_eq!(shown["table_name"], "t2");
    assert_eq!(
        db.text("SELECT string_agg(object_id, ',' ORDER BY id) AS v FROM httphooks_callbacks")
            .as_deref(),
        Some("1,3")
    );
}

/// MySQL moves a table's triggers with it: they are found there, and remade under
/// the new name (none is left under the old one, which a new table `t` would get).
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn mysql_capture_follows_a_renamed_table() {
    let Some(db) = TestDb::mysql() else {
        return;
    };
    let db = db.migrated();
    capture_follows_a_renamed_table(&db);
    let triggers = |name: &str| {
        db.count(&format!(
            "SELECT COUNT(*) AS n FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = 'httphooks_{name}_insert'"
        ))
    };
    assert_eq!((triggers("t"), triggers("t2")), (0, 1));
}

/// Two watched MySQL tables that swap names (RENAME TABLE a TO tmp, b TO a, tmp TO b):
/// trigger names are unique in a schema and follow table names, so the hooks go with
/// the names. Until capture is restored each table's old triggers capture for its old
/// hooks (and monitoring says capture is broken); restored by name, nothing is lost,
/// whichever table a command restores first.
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn mysql_tables_that_swap_names_lose_nothing() {
    let Some(db) = TestDb::mysql() else {
        return;
    };
    let db = db.migrated();
    db.sql("CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (id INTEGER PRIMARY KEY)");
    db.add_hook("ha", "a", "insert", URL, &[]);
    db.add_hook("hb", "b", "insert", URL, &[]);
    db.sql("RENAME TABLE a TO tmp, b TO a, tmp TO b");
    db.sql("INSERT INTO b (id) VALUES (1); INSERT INTO a (id) VALUES (2)");
    let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
    assert_eq!(code, 1, "capture by name is broken until restored: {out}");
    // A command that remakes one table's triggers takes them from the other table,
    // whose own are then remade too: neither is left without.
    db.ok(&["hooks", "edit", "ha", "--url", &format!("{URL}/2")]);
    db.sql("INSERT INTO b (id) VALUES (3); INSERT INTO a (id) VALUES (4)");
    let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
    assert_eq!(code, 0, "{out}");
    let hooks_of = |object: &str| {
        db.text(&format!(
            "SELECT GROUP_CONCAT(hook_name ORDER BY hook_name) AS v \
             FROM httphooks_callback_details WHERE object_id = '{object}'"
        ))
    };
    // Before the restore each table's old triggers captured for its old hooks.
    assert_eq!(hooks_of("1").as_deref(), Some("ha"));
    assert_eq!(hooks_of("2").as_deref(), Some("hb"));
    // After it, the hooks watch the tables by name, once each.
    assert_eq!(hooks_of("3").as_deref(), Some("hb"));
    assert_eq!(hooks_of("4").as_deref(), Some("ha"));
    let misplaced = db.count(
        "SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() \
         AND TRIGGER_NAME LIKE 'httphooks%' \
         AND TRIGGER_NAME <> CONCAT('httphooks_', EVENT_OBJECT_TABLE, '_insert')",
    );
    assert_eq!(
        misplaced, 0,
        "each table carries its own name's trigger only"
    );
}

/// Drops the role (and what it was granted) when the test ends, even on failure.
struct Role {
    base_url: String,
    name: String,
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Ok(mut conn) = diesel::PgConnection::establish(&self.base_url) {
            let _ = conn.batch_execute(&format!(
                "DROP OWNED BY {0}; DROP ROLE IF EXISTS {0}",
                self.name
            ));
        }
    }
}

/// An application role with rights on its own table only (and USAGE on the schema):
/// its writes make callbacks that are delivered, in the httphooks schema and in
/// another one named schema-qualified; with the README's grant it can enqueue.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_a_least_privilege_role_makes_callbacks() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    let common::Kind::Postgres { base_url, schema } = &db.kind else {
        unreachable!()
    };
    let sales = format!("{schema}_sales");
    let role = Role {
        base_url: base_url.clone(),
        name: format!("{schema}_app"),
    };
    struct DropSchema(String, String);
    impl Drop for DropSchema {
        fn drop(&mut self) {
            if let Ok(mut conn) = diesel::PgConnection::establish(&self.0) {
                let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.1));
            }
        }
    }
    let _sales = DropSchema(base_url.clone(), sales.clone());
    let app = &role.name;
    db.connect().sql(&format!(
        "CREATE ROLE {app} LOGIN; \
         CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER); \
         CREATE SCHEMA {sales}; \
         CREATE TABLE {sales}.orders (id INTEGER PRIMARY KEY, total INTEGER); \
         GRANT USAGE ON SCHEMA {schema}, {sales} TO {app}; \
         GRANT INSERT, UPDATE, DELETE ON orders, {sales}.orders TO {app}"
    ));

    // Another schema's table is named schema-qualified; a wrong name says how.
    let (code, _, err) = db.run(&[
        "hooks", "add", "x", "--table", "other.t", "--events", "insert", "--url", URL,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("schema.table"), "{err}");
    let server = Server::answering(200);
    db.add_hook(
        "local",
        "orders",
        "insert,update,delete",
        &server.url("/local"),
        &[],
    );
    let qualified = format!("{sales}.orders");
    db.add_hook("sales", &qualified, "insert", &server.url("/sales"), &[]);
    let shown = json(&db.ok(&["hooks", "show", "sales", "--format", "json"]));
    assert_eq!(shown["table_name"], qualified.as_str());
    db.ok(&[
        "hooks",
        "add",
        "grades",
        "--events",
        "attempt.submitted",
        "--url",
        &server.url("/grades"),
    ]);

    let app_url = db.url.replacen("postgres@", &format!("{app}@"), 1);
    assert_ne!(app_url, db.url);
    let mut as_app = diesel::PgConnection::establish(&app_url).unwrap();
    as_app
        .batch_execute(&format!(
            "INSERT INTO orders (id, total) VALUES (1, 10); \
             UPDATE orders SET total = 11; \
             DELETE FROM orders; \
             INSERT INTO {sales}.orders (id, total) VALUES (7, 70)"
        ))
        .unwrap();
    let denied = as_app
        .batch_execute(
            "SELECT httphooks_enqueue('grades', 'attempt.submitted', '{\"score\": 9}'::jsonb)",
        )
        .unwrap_err()
        .to_string();
    assert!(denied.contains("permission denied"), "{denied}");
    // The README's grant.
    db.connect().sql(&format!(
        "GRANT EXECUTE ON FUNCTION httphooks_enqueue(text, text, jsonb) TO {app}"
    ));
    as_app
        .batch_execute(
            "SELECT httphooks_enqueue('grades', 'attempt.submitted', '{\"score\": 9}'::jsonb)",
        )
        .unwrap();
    // Nothing the role may do redirects the functions: the one that runs with
    // httphooks' rights pins its search_path, and the trigger function, which runs
    // with the writer's, names httphooks' schema in what it reads and writes.
    let count = |sql: &str| {
        db.count(&format!(
            "SELECT COUNT(*) AS n FROM pg_proc WHERE pronamespace = \
         (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND {sql}"
        ))
    };
    // httphooks_enqueue, and httphooks_reattach (the event trigger of a superuser's
    // installation, which only reads the catalog and creates triggers).
    let definers = count("prosecdef");
    assert_eq!(definers, 2);
    assert_eq!(
        count("prosecdef AND proconfig::text LIKE '%search_path%pg_temp%'"),
        definers
    );
    assert_eq!(count("prosecdef AND proname = 'httphooks_capture'"), 0);
    assert_eq!(
        count(&format!(
            "proname = 'httphooks_capture' AND prosrc LIKE '%{schema}.httphooks_new_callbacks%'"
        )),
        1
    );

    let (code, out, err) = db.run(&["send_callbacks"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sent 5"), "{out}{err}");
    let mut paths: Vec<String> = server.received().iter().map(|r| r.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["/grades", "/local", "/local", "/local", "/sales"]);
    let sales_body = server
        .received()
        .into_iter()
        .find(|r| r.path == "/sales")
        .unwrap()
        .body;
    let sales_body = json(&sales_body);
    assert_eq!(sales_body["object_id"], "7");
    assert_eq!(sales_body["object_type"], qualified.as_str());
}

/// A database migrated by the previous httphooks, whose trigger matched hooks by table
/// name: `migrate` fills the tables' identities and capture goes on.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_migrate_fills_table_identities_of_an_older_schema() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)");
    db.add_hook("h", "t", "insert", URL, &[]);
    let previous = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/postgres/2026-11-23-000002_new_callbacks/up.sql"
    ))
    .unwrap();
    let start = previous
        .find("CREATE OR REPLACE FUNCTION httphooks_capture()")
        .unwrap();
    let end = start + previous[start..].find("$$;").unwrap() + 3;
    db.connect().sql(&format!(
        "DROP INDEX httphooks_hooks_table_oid; \
         DROP POLICY httphooks_changes_of_writable_tables ON httphooks_new_callbacks; \
         ALTER TABLE httphooks_new_callbacks DISABLE ROW LEVEL SECURITY; \
         DROP VIEW httphooks_capture_hooks; \
         ALTER TABLE httphooks_hooks DROP COLUMN table_oid, DROP COLUMN key_columns, \
           DROP COLUMN capture_verified_at; \
         DELETE FROM httphooks_schema_migrations WHERE version = '20261130000004'; \
         {}",
        &previous[start..end]
    ));
    let (code, _, err) = db.run(&["callbacks", "list"]);
    assert_eq!(code, 3, "{err}");
    assert!(db.ok(&["migrate"]).contains("applied 1 migration"));
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_hooks WHERE table_oid = 't'::regclass::oid::bigint AND capture_verified_at IS NOT NULL"),
        1
    );
    db.sql("INSERT INTO t (id, a) VALUES (1, 'x')");
    assert_eq!(callbacks(&db), 1);
    let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
    assert_eq!(code, 0, "{out}");
}

/// The hostile case of `SECURITY DEFINER`: a role that owns a watched table gives it a
/// column of its own type with its own cast to json, which to_jsonb calls. The cast
/// must run with that role's rights, not httphooks' (a superuser here); and no role
/// may insert changes of a table it cannot write.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_capture_never_runs_the_applications_code_with_httphooks_rights() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    let common::Kind::Postgres { base_url, schema } = &db.kind else {
        unreachable!()
    };
    let owner = Role {
        base_url: base_url.clone(),
        name: format!("{schema}_own"),
    };
    let stranger = Role {
        base_url: base_url.clone(),
        name: format!("{schema}_stranger"),
    };
    let (own, other) = (&owner.name, &stranger.name);
    let own_schema = format!("{schema}_owned");
    db.connect().sql(&format!(
        "CREATE ROLE {own} LOGIN; CREATE ROLE {other} LOGIN; \
         CREATE SCHEMA {own_schema} AUTHORIZATION {own}; \
         GRANT USAGE ON SCHEMA {schema} TO {own}, {other}"
    ));
    let as_role = |role: &str| {
        let url = db.url.replacen("postgres@", &format!("{role}@"), 1);
        diesel::PgConnection::establish(&url).unwrap()
    };
    let mut as_owner = as_role(own);
    as_owner
        .batch_execute(&format!(
            "CREATE TABLE {own_schema}.t (id INTEGER PRIMARY KEY, v TEXT); \
             CREATE TABLE {own_schema}.proof (who TEXT)"
        ))
        .unwrap();
    let server = Server::answering(200);
    let table = format!("{own_schema}.t");
    db.add_hook("owned", &table, "insert", &server.url("/owned"), &[]);
    as_owner
        .batch_execute(&format!(
            "CREATE TYPE {own_schema}.e AS ENUM ('a', 'b'); \
             CREATE FUNCTION {own_schema}.to_json_as_who(value {own_schema}.e) RETURNS json LANGUAGE sql AS \
               $$ INSERT INTO {own_schema}.proof VALUES (current_user) RETURNING to_json(value::text) $$; \
             CREATE CAST ({own_schema}.e AS json) WITH FUNCTION {own_schema}.to_json_as_who({own_schema}.e); \
             ALTER TABLE {own_schema}.t ADD COLUMN x {own_schema}.e; \
             INSERT INTO {own_schema}.t VALUES (1, 'v', 'a')"
        ))
        .unwrap();
    let who = db.text(&format!(
        "SELECT string_agg(DISTINCT who, ',') AS v FROM {own_schema}.proof"
    ));
    assert_eq!(
        who.as_deref(),
        Some(own.as_str()),
        "the cast ran as the table's owner only"
    );
    db.ok(&["send_callbacks"]);
    assert_eq!(server.received().len(), 1, "the change was captured");

    // A role without rights on the table cannot make (forge) a change of it.
    let version = db.count("SELECT version_id AS n FROM httphooks_hooks WHERE name = 'owned'");
    let forged = as_role(other)
        .batch_execute(&format!(
            "INSERT INTO {schema}.httphooks_new_callbacks (version_id, event_type, row_data) \
             VALUES ({version}, 'insert', '{{\"id\": 666}}')"
        ))
        .unwrap_err()
        .to_string();
    assert!(forged.contains("row-level security"), "{forged}");
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_new_callbacks"),
        0
    );
    db.connect()
        .sql(&format!("DROP SCHEMA {own_schema} CASCADE"));
}

/// MySQL: httphooks' triggers sit beside the application's own, a column added later
/// makes them stale (monitoring says so), and `hooks sync` captures it.
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn mysql_an_added_column_is_noticed_and_captured_once_synced() {
    let Some(db) = TestDb::mysql() else {
        return;
    };
    let db = db.migrated();
    db.sql(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, flag BOOLEAN, raw VARBINARY(8)); \
         CREATE TABLE audit (n INTEGER); \
         CREATE TRIGGER app_audit AFTER INSERT ON t FOR EACH ROW INSERT INTO audit VALUES (NEW.id)",
    );
    db.add_hook("h", "t", "insert,update", URL, &["--when-changed", "a"]);
    db.sql("INSERT INTO t (id, a, flag, raw) VALUES (1, 'x', TRUE, X'00ff')");
    assert_eq!(
        last_event(&db)["instance"],
        serde_json::json!({"id": 1, "a": "x", "flag": true, "raw": "00FF"})
    );
    db.sql("UPDATE t SET flag = FALSE WHERE id = 1");
    assert_eq!(callbacks(&db), 1, "a is the watched column");
    db.sql("UPDATE t SET a = 'y' WHERE id = 1");
    assert_eq!(callbacks(&db), 2);
    assert_eq!(last_event(&db)["old"]["a"], "x");

    db.sql("ALTER TABLE t ADD COLUMN c INTEGER");
    let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("capture of table t is broken"), "{out}");
    db.ok(&["hooks", "sync", "t"]);
    db.sql("INSERT INTO t (id, a, c) VALUES (2, 'z', 7)");
    assert_eq!(last_event(&db)["instance"]["c"], 7);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM audit"), 2);
    let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
    assert_eq!(code, 0, "{out}");
}

/// MySQL cannot replace a trigger in one statement, so triggers that are already
/// right are left alone: a new URL or timeout touches none (no moment without capture).
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn mysql_an_edit_that_captures_the_same_leaves_the_triggers_alone() {
    let Some(db) = TestDb::mysql() else {
        return;
    };
    let db = db.migrated();
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)");
    db.add_hook("h", "t", "insert,update", URL, &[]);
    let created = || {
        db.text(
            "SELECT GROUP_CONCAT(CONCAT(TRIGGER_NAME, '@', CREATED) ORDER BY TRIGGER_NAME) AS v \
             FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
        )
    };
    let before = created();
    std::thread::sleep(std::time::Duration::from_millis(50));
    db.ok(&[
        "hooks",
        "edit",
        "h",
        "--url",
        &format!("{URL}/2"),
        "--timeout",
        "3s",
    ]);
    db.ok(&["hooks", "sync"]);
    assert_eq!(created(), before, "the same triggers, not remade");
    db.ok(&["hooks", "edit", "h", "--events", "insert"]);
    assert_ne!(created(), before, "what they capture changed");
}

on_every_backend!(
    a_hook_naming_a_column_the_table_lost_is_reported_not_half_restored,
    |db| {
        let db = db.migrated();
        db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT)");
        db.add_hook("h", "t", "insert,update", URL, &["--when-changed", "b"]);
        db.add_hook("other", "t", "insert", URL, &[]);
        db.connect().sql("DROP TABLE t");
        db.connect()
            .sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)");
        let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("capture of table t is broken")
                && out.contains("hooks edit h --when-changed")
                && !out.contains("hooks sync"),
            "the alert names the fix that works: {out}"
        );
        // Another hook's change would need the table's triggers: it says it was not made.
        let (code, _, err) = db.run(&["hooks", "edit", "other", "--url", &format!("{URL}/2")]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("hook other was not changed: hook h names column \"b\""),
            "{err}"
        );
        let (code, _, err) = db.run(&["hooks", "sync", "t"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("hook h names column \"b\" (--when-changed), which table t does not have")
                && err.contains("hooks edit h --when-changed"),
            "{err}"
        );
        // send_callbacks goes on and says the same.
        let (code, _, err) = db.run(&["send_callbacks"]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("hook h names column \"b\""), "{err}");
        db.ok(&["hooks", "edit", "h", "--when-changed", "a"]);
        let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
        assert_eq!(code, 0, "{out}");
        db.connect().sql("INSERT INTO t (id, a) VALUES (1, 'x')");
        db.connect().sql("UPDATE t SET a = 'y' WHERE id = 1");
        assert_eq!(callbacks(&db), 3, "h: insert and update; other: insert");
    }
);

/// MariaDB replaces a trigger in one statement (writes wait for it): changing what a
/// busy table's hooks capture loses none of the writes made meanwhile.
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn mariadb_remaking_a_busy_tables_triggers_loses_no_write() {
    let Some(db) = TestDb::mysql() else {
        return;
    };
    let db = db.migrated();
    if db
        .text("SELECT VERSION() AS v")
        .is_none_or(|v| !v.contains("MariaDB"))
    {
        eprintln!("SKIPPED: not MariaDB (MySQL has no CREATE OR REPLACE TRIGGER)");
        return;
    }
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)");
    db.add_hook("h", "t", "insert", URL, &[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writer_conn = db.connect();
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut id = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && id < 5_000 {
                id += 1;
                writer_conn.sql(&format!("INSERT INTO t (id, a) VALUES ({id}, 'x')"));
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            id
        })
    };
    for round in 0..8 {
        let events = if round % 2 == 0 {
            "insert,update"
        } else {
            "insert"
        };
        db.ok(&["hooks", "edit", "h", "--events", events]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(
        written > 50,
        "the writer ran during the edits ({written} rows)"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE event_type = 'insert'"),
        written,
        "every write made a callback"
    );
}
