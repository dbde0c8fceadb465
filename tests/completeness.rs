//! Every change is captured or loudly not, and nothing one row, one route or one outage
//! does harms the rest (docs/behaviour.md §2, §5): rows larger than a hook allows or
//! than MySQL can turn into JSON, partitioned PostgreSQL tables, TRUNCATE, MySQL's
//! foreign-key cascades, a column renamed under a template, a database that stays away
//! past a run's deadline, one route of a server hanging beside a healthy one.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::server::{Reply, Server};
use common::{json, TestDb};

fn status_count(db: &TestDb, status: &str) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE status = '{status}'"
    ))
}

/// The callbacks `callbacks list --status error` shows, as JSON.
fn errors(db: &TestDb) -> Vec<serde_json::Value> {
    json(&db.ok(&["callbacks", "list", "--status", "error", "--format", "json"]))
        .as_array()
        .unwrap()
        .clone()
}

fn deliveries(server: &Server) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in server.received() {
        *counts
            .entry(request.header("webhook-id").unwrap().to_owned())
            .or_insert(0) += 1;
    }
    counts
}

// A change larger than its hook allows fails alone, when it is admitted, naming hook,
// table, row and size; every other change goes out; monitoring counts the error.
on_every_backend!(
    a_change_larger_than_its_hook_allows_fails_alone_and_says_why,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        db.sql(&format!("CREATE TABLE t ({}, body TEXT)", db.id_column()));
        db.add_hook(
            "small",
            "t",
            "insert,update",
            &server.url("/t"),
            &["--max-payload-size", "2KB"],
        );
        assert_eq!(
            json(&db.ok(&["hooks", "show", "small", "--format", "json"]))["max_payload_size"],
            "2.0 KB"
        );
        db.sql(&format!(
            "INSERT INTO t (body) VALUES ('{}')",
            "x".repeat(5000)
        ));
        db.sql("INSERT INTO t (body) VALUES ('small')");
        let out = db.ok(&["send_callbacks"]);
        assert!(out.contains("sent 1"), "{out}");
        let failed = errors(&db);
        assert_eq!(failed.len(), 1, "{failed:?}");
        let details = failed[0]["status_details"].as_str().unwrap();
        assert!(
            details.starts_with("hook small (table t, row 1): the change's data is 4.9 KB")
                && details.contains("--max-payload-size of 2.0 KB (2048 bytes)")
                && details.contains("httphooks hooks edit small --max-payload-size"),
            "{details}"
        );
        assert_eq!(server.received().len(), 1);
        assert!(server.received()[0].body.contains("small"));
        let (code, out, _) = db.run(&[
            "monitor_callbacks",
            "--status",
            "error",
            "--callbacks_limit",
            "0",
        ]);
        assert_eq!(code, 1, "monitoring counts it: {out}");

        // Raised, the next such change goes out.
        db.ok(&["hooks", "edit", "small", "--max-payload-size", "1MB"]);
        db.sql(&format!(
            "UPDATE t SET body = '{}' WHERE id = 2",
            "y".repeat(5000)
        ));
        assert!(db.ok(&["send_callbacks"]).contains("sent 1"));

        // A delete's data counts the deleted row once, as an insert's does (a small
        // template keeps the body under the limit; the data is what is checked).
        db.ok(&[
            "hooks",
            "edit",
            "small",
            "--max-payload-size",
            "2KB",
            "--events",
            "insert,delete",
            "--template",
            r#"{"id": {{ instance.id }}, "event": "{{ event_type }}"}"#,
        ]);
        db.sql(&format!(
            "INSERT INTO t (body) VALUES ('{}')",
            "d".repeat(1500)
        ));
        db.sql("DELETE FROM t WHERE id = 3");
        let out = db.ok(&["send_callbacks"]);
        assert!(out.contains("sent 2"), "{out} {:?}", errors(&db));

        // A custom event larger than its hook allows is refused when it is enqueued.
        db.ok(&[
            "hooks",
            "add",
            "events",
            "--events",
            "e",
            "--url",
            &server.url("/e"),
            "--max-payload-size",
            "1KB",
        ]);
        let waiting = db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks");
        let data = format!("{{\"x\": \"{}\"}}", "e".repeat(2000));
        let (code, _, err) = db.run(&[
            "enqueue", "--hook", "events", "--event", "e", "--data", &data,
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("--max-payload-size of 1.0 KB (1024 bytes)"),
            "{err}"
        );
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"),
            waiting
        );

        // Enqueued in SQL, where nothing checks its size first, it fails when it is
        // admitted, named by its hook and event (it has no table or row).
        let data = format!("{{\"x\": \"{}\"}}", "e".repeat(1500));
        db.sql(&if db.is_postgres() {
            format!("SELECT httphooks_enqueue('events', 'e', '{data}'::jsonb)")
        } else if db.is_mysql() {
            format!("CALL httphooks_enqueue('events', 'e', '{data}')")
        } else {
            // SQLite has no SQL helper: the row the `enqueue` command writes.
            format!(
                "INSERT INTO httphooks_new_callbacks (version_id, event_type, row_data, created_at) \
                 SELECT version_id, 'e', json('{data}'), julianday('now') FROM httphooks_hooks \
                 WHERE name = 'events'"
            )
        });
        let out = db.ok(&["send_callbacks"]);
        assert!(out.contains("sent 0"), "{out}");
        let refused: Vec<String> = errors(&db)
            .iter()
            .map(|c| c["status_details"].as_str().unwrap().to_owned())
            .filter(|d| d.starts_with("hook events"))
            .collect();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].starts_with("hook events (event e): the change's data is 1.5 KB"),
            "{refused:?}"
        );

        // Sizes that are not sizes, or out of range: refused, nothing written.
        let hooks_before = db.count("SELECT COUNT(*) AS n FROM httphooks_hooks");
        for bad in ["10 parsecs", "100", "2GB"] {
            let (code, _, err) = db.run(&[
                "hooks",
                "add",
                "bad",
                "--table",
                "t",
                "--events",
                "insert",
                "--url",
                &server.url("/t"),
                "--max-payload-size",
                bad,
            ]);
            assert_eq!(code, 2, "{bad}: {err}");
            assert!(err.contains("--max-payload-size"), "{err}");
            assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
        }
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM httphooks_hooks"),
            hooks_before
        );
    }
);

// A body rendered larger than the hook allows fails at once, before any request, and
// is not retried: no retry can make it smaller.
on_every_backend!(
    a_body_larger_than_its_hook_allows_fails_without_a_request,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        db.sql(&format!("CREATE TABLE t ({}, name TEXT)", db.id_column()));
        db.add_hook(
        "repeats",
        "t",
        "insert",
        &server.url("/t"),
        &[
            "--max-payload-size",
            "3KB",
            "--template",
            r#"{"a": "{{ instance.name }}", "b": "{{ instance.name }}", "c": "{{ instance.name }}", "d": "{{ instance.name }}"}"#,
        ],
    );
        db.sql(&format!(
            "INSERT INTO t (name) VALUES ('{}')",
            "n".repeat(1000)
        ));
        db.sql("INSERT INTO t (name) VALUES ('short')");
        let out = db.ok(&["send_callbacks"]);
        assert!(out.contains("sent 1") && out.contains("failed 1"), "{out}");
        let failed = errors(&db);
        let details = failed[0]["status_details"].as_str().unwrap();
        assert!(
            details.starts_with("hook repeats (table t, row 1): the body is 3.9 KB (")
                && details
                    .contains("more than the hook's --max-payload-size of 3.0 KB (3072 bytes)")
                && details.ends_with("nothing was sent"),
            "{details}"
        );
        assert_eq!(failed[0]["attempts"], 0);
        assert_eq!(server.received().len(), 1, "only the other row went out");
    }
);

/// MySQL/MariaDB: a row whose JSON could exceed max_allowed_packet makes MySQL fail the
/// application's write in the trigger (and MariaDB then failed every later write to the
/// table). Here the write goes through, the change becomes a failed callback saying
/// why, and every other change of the table goes out; a change whose data fits the
/// trigger but not a packet with its body fails at admission instead of stopping every
/// command.
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn mysql_a_row_too_large_for_a_packet_stops_nothing_but_its_own_callback() {
    let Some(db) = TestDb::mysql() else {
        return;
    };
    let db = db.migrated();
    let server = Server::start_lean(|_| Reply::Status(200));
    let packet = db.count("SELECT CAST(@@max_allowed_packet AS SIGNED) AS n");
    db.sql("CREATE TABLE t (id INT PRIMARY KEY, a LONGTEXT, b LONGTEXT)");
    db.sql("CREATE TABLE bin (id INT PRIMARY KEY, data LONGBLOB)");
    for (name, table) in [("text", "t"), ("binary", "bin")] {
        db.add_hook(
            name,
            table,
            "insert,update,delete",
            &server.url(&format!("/{table}")),
            &["--max-payload-size", "1GB"],
        );
    }
    let mut app = db.connect();
    app.sql("INSERT INTO t VALUES (1, 'one', '')");
    // More text than a sixth of a packet: the trigger records that it cannot capture it.
    app.sql(&format!(
        "INSERT INTO t VALUES (2, REPEAT('a', {}), '')",
        packet / 6 + 100_000
    ));
    app.sql("INSERT INTO t VALUES (3, 'three', '')");
    app.sql("UPDATE t SET b = 'changed' WHERE id = 1");
    // Binary data that the trigger turns into JSON, but whose update (the row and the
    // old row) cannot be read back in one packet with its body.
    app.sql(&format!(
        "INSERT INTO bin VALUES (1, UNHEX(REPEAT('ab', {n}))); UPDATE bin SET data = UNHEX(REPEAT('cd', {n})) WHERE id = 1",
        n = packet / 5
    ));
    app.sql("DELETE FROM t WHERE id = 3");
    // Spatial values are binary: captured as hex; the write goes through.
    db.sql("CREATE TABLE shops (id INT PRIMARY KEY, loc POINT)");
    let shops = Server::answering(200);
    db.add_hook("shops", "shops", "insert", &shops.url("/shops"), &[]);
    app.sql("INSERT INTO shops VALUES (1, POINT(1.5, 2.5))");
    // An ENUM whose values spell a number type is text, counted as such: a row of
    // control characters just under the packet once escaped does not get past the
    // guard and fail the write (or, in MariaDB, every later write to the table).
    let value = format!("print_{}", "a".repeat(240));
    db.sql(&format!(
        "CREATE TABLE g (id INT PRIMARY KEY, s ENUM('small', '{value}'), body LONGTEXT)"
    ));
    db.add_hook(
        "g",
        "g",
        "insert",
        &server.url("/g"),
        &["--max-payload-size", "1GB"],
    );
    app.sql(&format!(
        "INSERT INTO g VALUES (1, '{value}', REPEAT(CHAR(1), {}))",
        packet / 6 - 500
    ));
    app.sql("INSERT INTO g VALUES (2, 'small', 'ok')");
    for command in [
        vec!["callbacks", "list"],
        vec!["status"],
        vec!["hooks", "list"],
    ] {
        db.ok(&command);
    }
    let out = db.ok(&["send_callbacks"]);
    assert!(out.contains("failed 0"), "{out}");
    let failed = errors(&db);
    assert_eq!(failed.len(), 3, "{failed:?}");
    let details: Vec<&str> = failed
        .iter()
        .map(|c| c["status_details"].as_str().unwrap())
        .collect();
    assert!(
        details.iter().any(
            |d| d.starts_with("hook text (table t, row 2): the change holds")
                && d.contains("max_allowed_packet")
        ),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d
            .starts_with("hook binary (table bin, row 1): the change's data is")
            && d.contains("max_allowed_packet")),
        "{details:?}"
    );
    // (Refused when it is queued rather than by the trigger: either way the write
    // went through and only this callback failed.)
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("hook g (table g, row 1): the change"))
            && details
                .iter()
                .all(|d| !d.contains("hook g (table g, row 2)")),
        "{details:?}"
    );
    // Everything else went out: t's inserts of 1 and 3, the update of 1, the delete of
    // 3, bin's insert, the shop, g's second row.
    assert_eq!(status_count(&db, "sent"), 7);
    assert_eq!(server.received().len() + shops.received().len(), 7);
    assert_eq!(
        json(&shops.received()[0].body)["object_serialization"]["loc"],
        "000000000101000000000000000000F83F0000000000000440"
    );
    // The table takes writes as before, and they are captured.
    app.sql("INSERT INTO t VALUES (4, 'four', '')");
    assert!(db.ok(&["send_callbacks"]).contains("sent 1"));
    for command in [
        vec!["hooks", "disable", "text"],
        vec!["hooks", "enable", "text"],
        vec!["delete_old_callbacks", "0"],
    ] {
        db.ok(&command);
    }
}

/// PostgreSQL: a hook on a partitioned table gets the changes of every partition, those
/// created or attached later too, named after the partitioned table; a detached
/// partition is no longer watched; a second hook inside the same tree is refused.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_a_partitioned_table_captures_every_partition() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    let server = Server::answering(200);
    db.sql(
        "CREATE TABLE pt (id INT, region TEXT, v TEXT, PRIMARY KEY (id, region)) PARTITION BY LIST (region); \
         CREATE TABLE pt_eu PARTITION OF pt FOR VALUES IN ('eu'); \
         CREATE TABLE pt_us PARTITION OF pt FOR VALUES IN ('us')",
    );
    db.add_hook(
        "parts",
        "pt",
        "insert,update,delete",
        &server.url("/pt"),
        &[],
    );
    let mut app = db.connect();
    app.sql("INSERT INTO pt VALUES (1, 'eu', 'a'), (2, 'us', 'b')");
    app.sql("UPDATE pt SET v = 'c' WHERE id = 2");
    app.sql("INSERT INTO pt_eu VALUES (3, 'eu', 'written to the partition')");
    // Partitions made and attached later.
    app.sql("CREATE TABLE pt_asia PARTITION OF pt FOR VALUES IN ('asia')");
    app.sql("INSERT INTO pt VALUES (4, 'asia', 'd')");
    app.sql("CREATE TABLE pt_x (id INT, region TEXT, v TEXT, PRIMARY KEY (id, region))");
    app.sql("ALTER TABLE pt ATTACH PARTITION pt_x FOR VALUES IN ('x')");
    app.sql("INSERT INTO pt VALUES (5, 'x', 'e')");
    app.sql("DELETE FROM pt WHERE id = 1");
    // Detached, pt_us is a table of its own, not watched.
    app.sql("ALTER TABLE pt DETACH PARTITION pt_us");
    app.sql("INSERT INTO pt_us VALUES (6, 'us', 'not pt any more')");
    let out = db.ok(&["send_callbacks"]);
    assert!(out.contains("sent 7"), "{out}");
    let bodies: Vec<serde_json::Value> = server.received().iter().map(|r| json(&r.body)).collect();
    assert!(
        bodies.iter().all(|b| b["object_type"] == "pt"),
        "{bodies:?}"
    );
    // In any order: the hook is not --ordered, and requests go out concurrently.
    let mut events: Vec<String> = bodies
        .iter()
        .map(|b| {
            format!(
                "{}:{}",
                b["event_type"].as_str().unwrap(),
                b["object_id"].as_str().unwrap()
            )
        })
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            "delete:[1,\"eu\"]",
            "insert:[1,\"eu\"]",
            "insert:[2,\"us\"]",
            "insert:[3,\"eu\"]",
            "insert:[4,\"asia\"]",
            "insert:[5,\"x\"]",
            "update:[2,\"us\"]"
        ]
    );
    let status = json(&db.ok(&["status", "--format", "json"])).to_string();
    assert!(!status.contains("broken"), "capture is intact: {status}");
    db.ok(&["monitor_callbacks", "--status", "error"]);
    // The trigger disabled on one partition loses its changes: reported, and restored.
    app.sql("ALTER TABLE pt_eu DISABLE TRIGGER httphooks_capture");
    let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
    assert_eq!(code, 1, "{out}");
    db.ok(&["hooks", "sync", "pt"]);
    db.ok(&["monitor_callbacks", "--status", "error"]);
    app.sql("INSERT INTO pt VALUES (7, 'eu', 'f')");
    assert!(db.ok(&["send_callbacks"]).contains("sent 1"));
    // One hook per partition tree.
    let (code, _, err) = db.run(&[
        "hooks",
        "add",
        "one",
        "--table",
        "pt_eu",
        "--events",
        "insert",
        "--url",
        &server.url("/eu"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("partition tree") && err.contains("pt"),
        "{err}"
    );
}

/// PostgreSQL: TRUNCATE fires no row trigger. Hooks that listen to truncate get the
/// event; hooks that listen to deletes but not to truncate get a failed callback saying
/// that rows went without delete events (monitoring counts it); others get nothing.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_truncate_is_an_event_or_a_loud_failure() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    let server = Server::answering(200);
    db.sql("CREATE TABLE t (id SERIAL PRIMARY KEY, v TEXT)");
    db.add_hook(
        "told",
        "t",
        "insert,delete,truncate",
        &server.url("/told"),
        &[],
    );
    db.add_hook(
        "deletes",
        "t",
        "insert,delete",
        &server.url("/deletes"),
        &[],
    );
    db.add_hook("inserts", "t", "insert", &server.url("/inserts"), &[]);
    db.add_hook(
        "guarded",
        "t",
        "truncate",
        &server.url("/guarded"),
        &["--template", r#"{"table": "{{ table }}", "row": {% if instance %}{{ instance.id }}{% else %}null{% endif %}}"#],
    );
    db.sql("INSERT INTO t (v) VALUES ('a'), ('b')");
    db.sql("TRUNCATE t");
    let out = db.ok(&["send_callbacks"]);
    assert!(out.contains("sent 8"), "{out}");
    let truncates: Vec<serde_json::Value> = server
        .received()
        .iter()
        .map(|r| json(&r.body))
        .filter(|b| b["event_type"] == "truncate" || b["table"] == "t")
        .collect();
    assert_eq!(truncates.len(), 2, "{truncates:?}");
    let default = truncates
        .iter()
        .find(|b| b["event_type"] == "truncate")
        .unwrap();
    assert_eq!(default["object_type"], "t");
    assert!(default["object_id"].is_null() && default.get("object_serialization").is_none());
    let failed = errors(&db);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["hook_name"], "deletes");
    let details = failed[0]["status_details"].as_str().unwrap();
    assert!(
        details.contains("truncated") && details.contains("add truncate to its --events"),
        "{details}"
    );
    let (code, out, _) = db.run(&[
        "monitor_callbacks",
        "--status",
        "error",
        "--callbacks_limit",
        "0",
    ]);
    assert_eq!(code, 1, "{out}");
    // A template that reaches for the row of a truncate is refused when it is saved.
    let (code, _, err) = db.run(&[
        "hooks",
        "add",
        "careless",
        "--table",
        "t",
        "--events",
        "truncate",
        "--url",
        &server.url("/c"),
        "--template",
        r#"{"id": {{ instance.id }}}"#,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("truncate event has no row"), "{err}");
}

/// SQLite and MySQL fire no trigger on TRUNCATE: a hook cannot listen to it there, and
/// says so; nothing is written.
#[test]
fn sqlite_refuses_truncate_events() {
    let db = TestDb::sqlite().migrated();
    refuses_truncate_events(&db);
}

#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn mysql_refuses_truncate_events() {
    let Some(db) = TestDb::mysql() else {
        return;
    };
    refuses_truncate_events(&db.migrated());
}

fn refuses_truncate_events(db: &TestDb) {
    db.sql(&format!("CREATE TABLE t ({}, v TEXT)", db.id_column()));
    let (code, _, err) = db.run(&[
        "hooks",
        "add",
        "t",
        "--table",
        "t",
        "--events",
        "insert,truncate",
        "--url",
        "http://127.0.0.1:9/",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("fires no trigger on TRUNCATE"), "{err}");
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_hooks"), 0);
    // Nor is truncate a custom event.
    let (code, _, err) = db.run(&[
        "hooks",
        "add",
        "custom",
        "--events",
        "truncate",
        "--url",
        "http://127.0.0.1:9/",
    ]);
    assert_eq!(code, 2, "{err}");
}

/// MySQL/MariaDB: InnoDB fires no trigger for the rows a foreign key's cascade changes.
/// `hooks add` warns, and `status` shows it, naming the foreign key and what escapes.
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn mysql_warns_of_changes_that_cascades_make() {
    let Some(db) = TestDb::mysql() else {
        return;
    };
    let db = db.migrated();
    db.sql(
        "CREATE TABLE orders (id INT PRIMARY KEY); \
         CREATE TABLE order_lines (id INT PRIMARY KEY, order_id INT, \
           CONSTRAINT lines_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE)",
    );
    let (code, out, err) = db.run(&[
        "hooks",
        "add",
        "lines",
        "--table",
        "order_lines",
        "--events",
        "insert,delete",
        "--url",
        "http://127.0.0.1:9/",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning") && err.contains("lines_order") && err.contains("ON DELETE CASCADE"),
        "{err}"
    );
    let status = db.ok(&["status"]);
    assert!(status.contains("lines_order"), "{status}");
    // Only what the hooks listen to: inserts alone escape nothing.
    let (_, _, err) = db.run(&[
        "hooks",
        "add",
        "inserts",
        "--table",
        "order_lines",
        "--events",
        "insert",
        "--url",
        "http://127.0.0.1:9/",
    ]);
    assert!(!err.contains("lines_order"), "{err}");
}

// A template naming a column that was renamed: the capture checks flag the hook before
// any callback fails (monitoring alerts); a callback that failed on it is rendered
// again by `callbacks retry` with the hook as it is after `hooks edit`, since nothing
// was ever sent for it.
on_every_backend!(
    a_column_renamed_under_a_template_is_flagged_and_its_callbacks_recovered,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        db.sql(&format!(
            "CREATE TABLE orders ({}, customer TEXT)",
            db.id_column()
        ));
        db.add_hook(
            "orders",
            "orders",
            "insert",
            &server.url("/o"),
            &["--template", r#"{"who": "{{ instance.customer }}"}"#],
        );
        db.ok(&["monitor_callbacks", "--status", "error"]);
        db.sql("ALTER TABLE orders RENAME COLUMN customer TO client");
        let (code, out, _) = db.run(&["monitor_callbacks", "--status", "error"]);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("hook orders")
                && out.contains("customer")
                && out.contains("hooks edit orders"),
            "{out}"
        );
        let (code, _, err) = db.run(&["hooks", "sync"]);
        assert_eq!(
            code, 1,
            "the triggers are synced, the template is for the user: {err}"
        );
        assert!(err.contains("customer"), "{err}");
        // Writes go on and are captured; their callbacks fail on the template.
        db.sql("INSERT INTO orders (client) VALUES ('Ann')");
        let (_, out, err) = db.run(&["send_callbacks"]);
        assert!(out.contains("failed 1"), "{out}{err}");
        assert!(
            err.contains("customer"),
            "send_callbacks says why too: {err}"
        );
        let failed = errors(&db);
        let id = failed[0]["id"].as_i64().unwrap().to_string();
        db.ok(&[
            "hooks",
            "edit",
            "orders",
            "--template",
            r#"{"who": "{{ instance.client }}"}"#,
        ]);
        db.ok(&["monitor_callbacks", "--status", "waiting"]);
        db.ok(&["callbacks", "retry", &id]);
        assert!(db.ok(&["send_callbacks"]).contains("sent 1"));
        assert_eq!(json(&server.received()[0].body)["who"], "Ann");
    }
);

/// The database stays away past the run's deadline (`down` until `up`). Nothing starts
/// once outcomes cannot be written; what was sent and not recorded is saved on this
/// host and recorded by the next run, so nothing is sent twice beyond what was in
/// flight; the run prints its summary and says the database went away.
fn an_outage_past_the_deadline(db: &TestDb, rows: &str, down: &dyn Fn(), up: &dyn Fn()) {
    db.ok(&["migrate"]);
    // Slow until the outage, so that requests are surely in flight when it begins (at
    // 2 ms a busy host could catch the run between claims with all it sent recorded,
    // and nothing to save); fast afterwards, for the 20,000 to go out in time.
    let delay_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(40));
    let delay = std::sync::Arc::clone(&delay_ms);
    let server = Server::start_lean(move |_| {
        Reply::Slow(Duration::from_millis(
            delay.load(std::sync::atomic::Ordering::SeqCst),
        ))
    });
    db.sql(&format!("CREATE TABLE t ({})", db.id_column()));
    db.add_hook("t", "t", "insert", &server.url("/t"), &[]);
    db.sql(rows);
    db.admit();
    let total = db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks") as usize;
    let concurrency = 8;
    let run = db.spawn(&[
        "send_callbacks",
        "--concurrency",
        &concurrency.to_string(),
        "--max-runtime",
        "4s",
    ]);
    while server.received().len() < 100 {
        std::thread::sleep(Duration::from_millis(20));
    }
    down();
    let down_at = Instant::now();
    let output = run.wait_with_output().unwrap();
    let took = down_at.elapsed();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    let sent_while_down = server.received().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.received().len(),
        sent_while_down,
        "nothing is sent once the run has ended"
    );
    up();
    delay_ms.store(2, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(output.status.code(), Some(3), "{out}{err}");
    assert!(
        took < Duration::from_secs(12),
        "it kept its deadline: {took:?}"
    );
    assert!(
        out.contains("send_callbacks: claimed"),
        "the summary line: {out}"
    );
    let last = err.trim().lines().last().unwrap();
    assert!(
        last.starts_with("httphooks: the database went away during the run")
            && !last.contains("check DATABASE_URL"),
        "{last}"
    );
    assert!(last.contains("saved to"), "{last}");
    // Two runs start together once it is back: neither sends what the other records.
    let runs = [
        db.spawn(&["send_callbacks", "--concurrency", "8"]),
        db.spawn(&["send_callbacks", "--concurrency", "8"]),
    ];
    for run in runs {
        let output = run.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let counts = deliveries(&server);
    assert_eq!(counts.len(), total, "nothing was lost");
    let twice = counts.values().filter(|&&n| n > 1).count();
    eprintln!("{sent_while_down} sent before the run ended, {twice} of them twice");
    assert!(
        twice <= concurrency,
        "{twice} sent twice; at most the {concurrency} in flight may be"
    );
    assert_eq!(status_count(db, "sent"), total as i64);
}

/// PostgreSQL: the test's database stops taking connections and loses the ones it had.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_an_outage_past_the_deadline_sends_nothing_twice_beyond_what_was_in_flight() {
    let Some(db) = TestDb::postgres_database("hh_outage", "") else {
        return;
    };
    an_outage_past_the_deadline(
        &db,
        "INSERT INTO t SELECT FROM generate_series(1, 20000)",
        &|| db.postgres_down(true),
        &|| db.postgres_down(false),
    );
}

/// MariaDB/MySQL: the run's user is locked out and its connections killed.
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn mysql_an_outage_past_the_deadline_sends_nothing_twice_beyond_what_was_in_flight() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    let Some(mut db) = TestDb::mysql() else {
        return;
    };
    let common::Kind::Mysql {
        server_url,
        database,
    } = &db.kind
    else {
        unreachable!()
    };
    let (server_url, database) = (server_url.clone(), database.clone());
    let user = format!("hh_{}", std::process::id());
    let admin_sql = |sql: String| {
        diesel::MysqlConnection::establish(&server_url)
            .unwrap()
            .batch_execute(&sql)
            .unwrap();
    };
    admin_sql(format!(
        "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%'; \
         GRANT ALL ON `{database}`.* TO '{user}'@'%'"
    ));
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&user).unwrap();
    url.set_password(None).unwrap();
    db.url = url.to_string();
    let result = std::panic::catch_unwind(|| {
        an_outage_past_the_deadline(
            &db,
            "INSERT INTO t (id) SELECT seq FROM seq_1_to_20000",
            &|| {
                admin_sql(format!("ALTER USER '{user}'@'%' ACCOUNT LOCK"));
                let mut admin = diesel::MysqlConnection::establish(&server_url).unwrap();
                #[derive(QueryableByName)]
                struct Id {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    id: i64,
                }
                let ids: Vec<Id> = diesel::sql_query(format!(
                    "SELECT CAST(ID AS SIGNED) AS id FROM information_schema.PROCESSLIST WHERE USER = '{user}'"
                ))
                .load(&mut admin)
                .unwrap();
                for id in ids {
                    let _ = admin.batch_execute(&format!("KILL {}", id.id));
                }
            },
            &|| admin_sql(format!("ALTER USER '{user}'@'%' ACCOUNT UNLOCK")),
        )
    });
    admin_sql(format!("DROP USER IF EXISTS '{user}'@'%'"));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

// Two hooks on one receiver (same scheme, host and port), one route hanging, the other
// healthy: the hanging route gets one request at a time, and the healthy one is
// delivered in full, early in the run.
on_every_backend!(
    a_hanging_route_does_not_starve_the_other_routes_of_its_server,
    |db| {
        let db = db.migrated();
        let server = Server::start_lean(|request| {
            if request.path.starts_with("/hang") {
                Reply::Hang
            } else {
                Reply::Status(200)
            }
        });
        db.sql(&format!("CREATE TABLE t ({}, v INTEGER)", db.id_column()));
        db.add_hook(
            "hangs",
            "t",
            "insert",
            &server.url("/hang"),
            &["--timeout", "3s"],
        );
        db.add_hook("healthy", "t", "insert", &server.url("/ok"), &[]);
        let mut app = db.connect();
        for _ in 0..5 {
            let values: Vec<String> = (0..100).map(|i| format!("({i})")).collect();
            app.sql(&format!("INSERT INTO t (v) VALUES {}", values.join(", ")));
        }
        let started = Instant::now();
        let (code, out, err) = db.run(&[
            "send_callbacks",
            "--concurrency",
            "8",
            "--max-runtime",
            "7s",
        ]);
        assert_eq!(code, 0, "{out}{err}");
        let received = server.received();
        let healthy: Vec<_> = received.iter().filter(|r| r.path == "/ok").collect();
        let hanging = received.len() - healthy.len();
        assert_eq!(healthy.len(), 500, "{out}");
        let last_healthy = healthy.iter().map(|r| r.at).max().unwrap();
        assert!(
            last_healthy.duration_since(started) < Duration::from_secs(3),
            "the healthy route was done within {:?}",
            last_healthy.duration_since(started)
        );
        assert!(hanging <= 4, "{hanging} requests went to the hanging route");
    }
);

/// SQLite with a rollback journal: an application holding an exclusive transaction
/// when the run starts is waited for within the run's deadline; held past it, the run
/// says the database is locked by another connection.
#[test]
fn sqlite_an_exclusive_lock_in_rollback_journal_mode_is_waited_for_within_the_deadline() {
    let db = TestDb::sqlite().migrated();
    let server = Server::answering(200);
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    db.add_hook("t", "t", "insert", &server.url("/t"), &[]);
    let mut app = db.connect();
    app.sql("PRAGMA journal_mode = DELETE");
    app.sql("INSERT INTO t (v) VALUES ('a'), ('b')");
    app.sql("BEGIN EXCLUSIVE; INSERT INTO t (v) VALUES ('c')");
    let run = db.spawn(&["send_callbacks", "--max-runtime", "20s"]);
    std::thread::sleep(Duration::from_secs(3));
    app.sql("COMMIT");
    let output = run.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.contains("sent 3"), "{out}");

    app.sql("PRAGMA journal_mode = DELETE");
    app.sql("BEGIN EXCLUSIVE; INSERT INTO t (v) VALUES ('d')");
    let started = Instant::now();
    let (code, out, err) = db.run(&["send_callbacks", "--max-runtime", "2s"]);
    let took = started.elapsed();
    app.sql("COMMIT");
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("locked by another connection"), "{err}");
    assert!(!err.contains("DATABASE_URL"), "{err}");
    assert!(
        took < Duration::from_secs(6),
        "it kept its deadline: {took:?}"
    );
    assert!(db.ok(&["send_callbacks"]).contains("sent 1"));
}
