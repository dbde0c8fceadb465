//! migrate, monitor_callbacks, delete_old_callbacks, callbacks, enqueue: end to end on
//! both backends.

mod common;

use common::server::Server;
use common::{json, Client, TestDb};
use diesel::Connection as _;

const URL: &str = "http://127.0.0.1:9/hook";

fn with_rows(db: &TestDb, rows: usize) {
    db.sql(&format!("CREATE TABLE t ({}, v INTEGER)", db.id_column()));
    db.add_hook("h", "t", "insert", URL, &[]);
    for v in 0..rows {
        db.sql(&format!("INSERT INTO t (v) VALUES ({v})"));
    }
}

on_every_backend!(migrate_is_idempotent_and_required, |db| {
    // An application database without httphooks' tables is refused.
    db.sql("CREATE TABLE app (id INTEGER)");
    let (code, _, err) = db.run(&["hooks", "list"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("httphooks migrate"), "{err}");
    assert_eq!(err.lines().count(), 1);
    // MySQL started at the other backends' fifth migration, in one; the later ones are theirs.
    let migrations = if db.is_mysql() { 8 } else { 12 };
    assert!(db
        .ok(&["migrate"])
        .contains(&format!("applied {migrations} migration")));
    assert!(db.ok(&["migrate"]).contains("up to date"));
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_schema_migrations"),
        migrations
    );
    db.ok(&["hooks", "list"]);
});

#[test]
fn the_default_database_is_a_sqlite_file_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        common::httphooks()
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .args(args)
            .output()
            .unwrap()
    };
    // First use creates and migrates the file.
    let first = run(&["send_callbacks"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("claimed 0"));
    assert!(dir.path().join("httphooks.sqlite3").exists());
    assert!(String::from_utf8_lossy(&run(&["migrate"]).stdout).contains("up to date"));
    assert!(run(&["monitor_callbacks", "--status", "error"])
        .status
        .success());
    // An explicit path that does not exist is a mistake, not a new database.
    let missing = run(&["--database-url", "sqlite://typo.sqlite3", "hooks", "list"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("httphooks migrate"));
    assert!(!dir.path().join("typo.sqlite3").exists());
}

#[test]
fn an_unreachable_database_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let output = common::httphooks()
        .current_dir(dir.path())
        .args([
            "--database-url",
            "postgres://nobody:pw@127.0.0.1:1/none",
            "callbacks",
            "list",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("cannot open the PostgreSQL database") && err.contains("DATABASE_URL"),
        "{err}"
    );
    assert!(!err.contains(":pw@"), "the password is not shown: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // MySQL: a build without the feature says how to get one; with it, a server that
    // is not there is an environment failure like PostgreSQL's.
    let output = common::httphooks()
        .args([
            "--database-url",
            "mysql://root:pw@127.0.0.1:1/test",
            "migrate",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains(":pw@"), "the password is not shown: {err}");
    if cfg!(feature = "mysql") {
        assert_eq!(output.status.code(), Some(3));
        assert!(err.contains("cannot open the MySQL database"), "{err}");
    } else {
        assert_eq!(output.status.code(), Some(2));
        assert!(err.contains("--features mysql"), "{err}");
    }
    // A MySQL URL without a database would connect and then fail on every statement.
    for url in [
        "mysql://root:pw@127.0.0.1:3306",
        "mysql://root:pw@127.0.0.1:3306/",
        "mysql://root:pw@127.0.0.1:3306//",
        "mysql://root:pw@127.0.0.1:3306/test/",
    ] {
        let output = common::httphooks()
            .args(["--database-url", url, "migrate"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{err}");
        assert!(err.contains("names no database"), "{err}");
        assert!(!err.contains(":pw@"), "the password is not shown: {err}");
    }
}

on_every_backend!(
    monitor_exits_1_only_when_the_count_exceeds_the_limit,
    |db| {
        let db = db.migrated();
        with_rows(&db, 3);
        db.sql("UPDATE httphooks_callbacks SET status = 'error', updated_at = created_at");
        let (code, out, _) = db.run(&[
            "monitor_callbacks",
            "--status",
            "error",
            "--callbacks_limit",
            "3",
        ]);
        assert_eq!(code, 0, "3 is not more than 3: {out}");
        assert!(out.contains("3 callbacks with status error"), "{out}");
        let (code, out, _) = db.run(&[
            "monitor_callbacks",
            "--status",
            "error",
            "--callbacks-limit",
            "2",
        ]);
        assert_eq!(code, 1, "{out}");
        assert!(out.starts_with("ALERT"), "{out}");
        assert_eq!(
            db.run(&[
                "monitor_callbacks",
                "--status",
                "waiting",
                "--callbacks_limit",
                "0"
            ])
            .0,
            0
        );

        // Only recent changes count with --minutes_ago.
        db.sql(&format!(
            "UPDATE httphooks_callbacks SET updated_at = {} WHERE id < 3",
            db.shifted("updated_at", -60)
        ));
        let (code, out, _) = db.run(&[
            "monitor_callbacks",
            "--status",
            "error",
            "--callbacks_limit",
            "0",
            "--minutes_ago",
            "10",
        ]);
        assert_eq!(code, 1);
        assert!(
            out.contains("1 callbacks with status error in the last 10 minutes"),
            "{out}"
        );
        assert_eq!(
            db.run(&[
                "monitor-callbacks",
                "--status",
                "error",
                "--callbacks_limit",
                "1",
                "--minutes-ago",
                "10"
            ])
            .0,
            0
        );

        let (code, _, err) = db.run(&["monitor_callbacks", "--status", "sent"]);
        assert_eq!(code, 2, "{err}");
        // No check at all is one sentence naming them; each check stands alone.
        let (code, _, err) = db.run(&["monitor_callbacks"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.starts_with("httphooks: say what to check: --status"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        let (code, out, err) = db.run(&["monitor_callbacks", "--lag", "10"]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = db.run(&["monitor_callbacks", "--no-run-since", "10"]);
        assert_eq!(code, 1, "no run has finished yet: {out}{err}");
    }
);

on_every_backend!(
    new_callbacks_count_as_waiting_before_any_command_sees_them,
    |db| {
        let db = db.migrated();
        db.sql(&format!("CREATE TABLE t ({}, v INTEGER)", db.id_column()));
        db.add_hook("h", "t", "insert", "http://127.0.0.1:9/", &[]);
        db.sql("INSERT INTO t (v) VALUES (1), (2), (3)");
        // A monitoring probe only reads: on SQLite these are still where the trigger put
        // them, and they count.
        for extra in [&[][..], &["--minutes_ago", "10"][..]] {
            let mut args = vec![
                "monitor_callbacks",
                "--status",
                "waiting",
                "--callbacks_limit",
                "2",
            ];
            args.extend(extra);
            let (code, out, _) = db.run(&args);
            assert_eq!(code, 1, "{out}");
            assert!(out.contains(": 3 callbacks with status waiting"), "{out}");
        }
        if !db.is_postgres() {
            assert_eq!(
                db.connect()
                    .count("SELECT COUNT(*) AS n FROM httphooks_new_callbacks"),
                3
            );
        }
        // Operator commands see them, with ids in the order they were made.
        let listed: serde_json::Value =
            serde_json::from_str(&db.ok(&["callbacks", "list", "--format", "json"])).unwrap();
        let objects: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["object_id"].as_str().unwrap())
            .collect();
        assert_eq!(objects, ["3", "2", "1"]);
        if !db.is_postgres() {
            assert_eq!(
                db.connect()
                    .count("SELECT COUNT(*) AS n FROM httphooks_new_callbacks"),
                0
            );
        }
        let (code, out, _) = db.run(&[
            "monitor_callbacks",
            "--status",
            "waiting",
            "--callbacks_limit",
            "2",
            "--minutes_ago",
            "10",
        ]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(": 3 callbacks"), "{out}");
    }
);

on_every_backend!(delete_old_callbacks_keeps_waiting_ones_unless_asked, |db| {
    let db = db.migrated();
    let server = Server::answering(200);
    let failing = Server::answering(500);
    db.sql(&format!("CREATE TABLE t ({}, v INTEGER)", db.id_column()));
    db.sql(&format!("CREATE TABLE u ({}, v INTEGER)", db.id_column()));
    db.add_hook("h", "t", "insert", &server.url("/"), &[]);
    db.add_hook("f", "u", "insert", &failing.url("/"), &[]);
    db.sql("INSERT INTO u (v) VALUES (1)");
    db.sql("INSERT INTO t (v) VALUES (1), (2), (3)");
    // The waiting ones sit before and between finished ones: batches of one step over
    // them. The first has failed once and waits for its retry: its attempt stays.
    db.run(&["send_callbacks", "--callback", "1"]);
    db.ok(&["send_callbacks", "--callback", "2", "4"]);
    assert_eq!(failing.received().len(), 1);
    let age = db.shifted("created_at", -40 * 24 * 60);
    db.sql(&format!(
        "UPDATE httphooks_callbacks SET created_at = {age}"
    ));
    db.sql("INSERT INTO t (v) VALUES (4)");
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_attempts"), 3);

    let out = db.ok(&["delete_old_callbacks", "30", "--batch-size", "1"]);
    assert!(
        out.contains("deleted 2 callbacks") && out.contains("waiting ones kept"),
        "{out}"
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"), 3);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_attempts WHERE callback_id = 1"),
        1,
        "a kept callback keeps its attempts"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_attempts"),
        1,
        "attempts go with their callbacks"
    );
    // An attempt whose callback is gone, past every callback (a run recorded it after
    // `--include-waiting` deleted the callback it was sending): it goes too.
    db.sql(
        "INSERT INTO httphooks_attempts (callback_id, attempt, started_at, elapsed_ms, \
           request_method, request_url, request_headers, request_body) \
         SELECT 1000000, attempt, started_at, elapsed_ms, request_method, request_url, \
           request_headers, request_body FROM httphooks_attempts WHERE callback_id = 1",
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_attempts"), 2);
    assert!(db
        .ok(&["delete-old-callbacks", "30", "--include-waiting"])
        .contains("deleted 2 callbacks"));
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"),
        1,
        "the new one stays"
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_attempts"), 0);
    assert_eq!(db.run(&["delete_old_callbacks", "-1"]).0, 2);
    assert_eq!(db.run(&["delete_old_callbacks", "many"]).0, 2);
});

on_every_backend!(callbacks_list_show_cancel_and_retry, |db| {
    let db = db.migrated();
    with_rows(&db, 3);
    let listed = json(&db.ok(&["callbacks", "list", "--format", "json", "--limit", "2"]));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], 3, "newest first");
    for field in [
        "id",
        "hook_id",
        "hook_name",
        "event_type",
        "table_name",
        "object_id",
        "url",
        "http_method",
        "content_type",
        "payload",
        "status",
        "status_details",
        "attempts",
        "next_attempt_at",
        "created_at",
        "updated_at",
    ] {
        assert!(listed[0].get(field).is_some(), "missing {field}");
    }
    let out = db.ok(&["callbacks", "cancel", "1", "2"]);
    assert!(out.contains("cancelled 2"), "{out}");
    assert_eq!(
        json(&db.ok(&["callbacks", "list", "--status", "error", "--format", "json"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        json(&db.ok(&[
            "callbacks",
            "list",
            "--hook",
            "h",
            "--status",
            "waiting",
            "--format",
            "json"
        ]))
        .as_array()
        .unwrap()
        .len(),
        1
    );

    // Unknown ids: exit 2, and nothing changes even for the known ones.
    let (code, _, err) = db.run(&["callbacks", "retry", "1", "77"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("77") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(
        json(&db.ok(&["callbacks", "show", "1", "--format", "json"]))["status"],
        "error"
    );
    db.ok(&["callbacks", "retry", "1"]);
    let shown = json(&db.ok(&["callbacks", "show", "1", "--format", "json"]));
    assert_eq!(shown["status"], "waiting");
    assert_eq!(shown["attempts_log"], serde_json::json!([]));
    assert_eq!(db.run(&["callbacks", "show", "77"]).0, 2);
    let table = db.ok(&["callbacks", "show", "1"]);
    assert!(table.contains("status: waiting"), "{table}");
});

on_every_backend!(custom_events_enqueue_from_the_command_line, |db| {
    let db = db.migrated();
    let server = Server::answering(200);
    let (code, _, err) = db.run(&[
        "hooks",
        "add",
        "grades",
        "--events",
        "attempt.submitted",
        "--url",
        &server.url("/g"),
        "--template",
        "{\"score\": {{ data.score }}, \"who\": \"{{ data.user.name }}\"}",
        "--sample-data",
        "{\"score\": 1}",
    ]);
    assert_eq!(code, 2, "the sample has no user: {err}");
    db.ok(&["hooks", "add", "grades", "--events", "attempt.submitted", "--url", &server.url("/g"),
        "--template", "{\"score\": {{ data.score }}, \"who\": \"{{ data.user.name }}\", \"event\": \"{{ event_type }}\"}",
        "--sample-data", "{\"score\": 1, \"user\": {\"name\": \"x\"}}"]);
    assert!(db
        .ok(&[
            "enqueue",
            "--hook",
            "grades",
            "--event",
            "attempt.submitted",
            "--data",
            "{\"score\": 9.5, \"user\": {\"name\": \"Zoë \\\"Z\\\"\"}}"
        ])
        .contains("enqueued 1"));
    for (args, what) in [
        (
            vec![
                "--hook",
                "grades",
                "--event",
                "attempt.submitted",
                "--data",
                "{nope",
            ],
            "not valid JSON",
        ),
        (
            vec!["--hook", "nope", "--event", "attempt.submitted"],
            "no hook named",
        ),
        (
            vec!["--hook", "grades", "--event", "attempt.started"],
            "does not listen",
        ),
        (
            vec!["--hook", "grades", "--event", "insert"],
            "come from the table's triggers",
        ),
    ] {
        let mut full = vec!["enqueue"];
        full.extend(args);
        let (code, _, err) = db.run(&full);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(what), "{err}");
    }
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"),
        1,
        "bad input wrote nothing"
    );
    db.ok(&["send_callbacks"]);
    let body = json(&server.received()[0].body);
    assert_eq!(
        body,
        serde_json::json!({"score": 9.5, "who": "Zoë \"Z\"", "event": "attempt.submitted"})
    );
    db.ok(&["hooks", "disable", "grades"]);
    assert!(db
        .ok(&[
            "enqueue",
            "--hook",
            "grades",
            "--event",
            "attempt.submitted"
        ])
        .contains("disabled"));
});

on_every_backend!(the_library_enqueues_inside_the_callers_transaction, |db| {
    let db = db.migrated();
    db.ok(&[
        "hooks",
        "add",
        "lib",
        "--events",
        "order.paid",
        "--url",
        URL,
    ]);
    let data = serde_json::json!({"order": 7});
    let mut client = db.connect();
    macro_rules! in_transaction {
        ($conn:expr) => {{
            $conn
                .transaction::<_, diesel::result::Error, _>(|conn| {
                    assert_eq!(
                        httphooks::enqueue(conn, "lib", "order.paid", &data).unwrap(),
                        1
                    );
                    Ok(())
                })
                .unwrap();
            let rolled_back = $conn.transaction::<(), diesel::result::Error, _>(|conn| {
                httphooks::enqueue(conn, "lib", "order.paid", &data).unwrap();
                Err(diesel::result::Error::RollbackTransaction)
            });
            assert!(rolled_back.is_err());
            let error = httphooks::enqueue($conn, "lib", "order.shipped", &data).unwrap_err();
            assert_eq!(error.exit_code(), 2);
        }};
    }
    match &mut client {
        Client::Sqlite(conn) => in_transaction!(conn),
        Client::Postgres(conn) => in_transaction!(conn),
        #[cfg(feature = "mysql")]
        Client::Mysql(conn) => in_transaction!(conn),
    }
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"),
        1,
        "the rolled-back one is gone"
    );
    if db.is_postgres() {
        // The SQL insert helper, callable from any language.
        db.sql("SELECT httphooks_enqueue('lib', 'order.paid', '{\"order\": 8}'::jsonb)");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"), 2);
        let data = db
            .text("SELECT event_data AS v FROM httphooks_callbacks ORDER BY id DESC LIMIT 1")
            .unwrap();
        assert_eq!(json(&data)["data"]["order"], 8);
    }
    if db.is_mysql() {
        // The stored procedure, callable from any language.
        db.sql("CALL httphooks_enqueue('lib', 'order.paid', '{\"order\": 9}')");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"), 2);
        let data = db
            .text("SELECT event_data AS v FROM httphooks_callbacks ORDER BY id DESC LIMIT 1")
            .unwrap();
        assert_eq!(json(&data)["data"]["order"], 9);
        let refused = db
            .connect()
            .try_sql("CALL httphooks_enqueue('lib', 'insert', '{}')")
            .unwrap_err();
        assert!(
            refused.contains("come from the table's triggers"),
            "{refused}"
        );
    }
});

on_every_backend!(
    enqueue_to_a_table_hook_says_to_add_a_custom_event_hook,
    |db| {
        let db = db.migrated();
        with_rows(&db, 0);
        let (code, _, err) = db.run(&[
            "enqueue",
            "--hook",
            "h",
            "--event",
            "attempt.submitted",
            "--data",
            "{}",
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("watches a table's rows") && err.contains("without --table"),
            "{err}"
        );
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM httphooks_new_callbacks"),
            0,
            "nothing was enqueued"
        );
    }
);

// `httphooks … | head`: a reader that goes away ends the command quietly, in every build
// (the MySQL client library ignores SIGPIPE for the whole process when it starts).
on_every_backend!(a_closed_pipe_ends_a_command_quietly, |db| {
    use std::io::Read;
    let db = db.migrated();
    db.sql(&format!("CREATE TABLE t ({}, v INTEGER)", db.id_column()));
    db.add_hook("h", "t", "insert", "http://127.0.0.1:9/x", &[]);
    let values: Vec<String> = (0..3000).map(|v| format!("({v})")).collect();
    db.sql(&format!("INSERT INTO t (v) VALUES {}", values.join(",")));
    for args in [
        &["callbacks", "list", "--limit", "3000"][..],
        &["callbacks", "list", "--limit", "3000", "--format", "json"][..],
    ] {
        let mut child = db.spawn(args);
        // Read a little, as `head -1` would, and go away while it still writes.
        let mut first = [0u8; 64];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        let output = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.is_empty(), "{args:?}: {err}");
        assert_ne!(output.status.code(), Some(101), "{args:?}: a panic");
    }
});

/// A command pointed at an application's SQLite file without httphooks' tables refuses
/// and changes nothing: not even the journal mode (only `migrate` sets WAL).
#[test]
fn sqlite_a_refused_command_leaves_the_application_file_as_it_was() {
    let db = TestDb::sqlite();
    db.connect()
        .sql("PRAGMA journal_mode = DELETE; CREATE TABLE app (id INTEGER PRIMARY KEY)");
    for args in [
        &["hooks", "list"][..],
        &["status"][..],
        &["callbacks", "list"][..],
        &["send_callbacks"][..],
        &["monitor_callbacks", "--lag", "5"][..],
    ] {
        let (code, _, err) = db.run(args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(err.contains("httphooks migrate"), "{args:?}: {err}");
    }
    let mode = db
        .connect()
        .text("SELECT journal_mode AS v FROM pragma_journal_mode()")
        .unwrap();
    assert_eq!(mode, "delete");
    db.ok(&["migrate"]);
    assert_eq!(
        db.connect()
            .text("SELECT journal_mode AS v FROM pragma_journal_mode()")
            .unwrap(),
        "wal"
    );
}

// A run refused for a hook that does not exist changes nothing, not even the time
// capture was last found intact.
on_every_backend!(send_callbacks_for_an_unknown_hook_changes_nothing, |db| {
    let db = db.migrated();
    with_rows(&db, 1);
    let verified = "SELECT capture_verified_at AS v FROM httphooks_hooks";
    let before = db.text(&format!(
        "SELECT {} AS v FROM httphooks_hooks",
        db.as_text("capture_verified_at")
    ));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (code, _, err) = db.run(&["send_callbacks", "--hook_id", "nosuch"]);
    assert_eq!(code, 2, "{err}");
    let after = db.text(&format!(
        "SELECT {} AS v FROM httphooks_hooks",
        db.as_text("capture_verified_at")
    ));
    assert_eq!(before, after, "{verified}");
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_runs"), 0);
});

// `callbacks explain` says a backing-off callback's retry time once.
on_every_backend!(explain_says_the_retry_time_once, |db| {
    let db = db.migrated();
    let server = Server::answering(500);
    db.sql(&format!("CREATE TABLE t ({}, v INTEGER)", db.id_column()));
    db.add_hook(
        "h",
        "t",
        "insert",
        &server.url("/h"),
        &["--max-attempts", "3"],
    );
    db.sql("INSERT INTO t (v) VALUES (1)");
    db.ok(&["send_callbacks"]);
    let id = db.count("SELECT MIN(id) AS n FROM httphooks_callbacks");
    let out = db.ok(&["callbacks", "explain", &id.to_string()]);
    assert!(
        out.contains("after attempt 1/3 (500 Internal Server Error)"),
        "{out}"
    );
    assert_eq!(
        out.matches("next in").count() + out.matches("(in ").count(),
        1,
        "{out}"
    );
});
