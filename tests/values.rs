//! Values an application's database may hold, however odd, never stop delivery: they
//! are captured faithfully (docs/capture.md, "Values that are not plain JSON"), and a callback
//! that really cannot be rendered fails alone while every command keeps working.

mod common;

use common::server::Server;
use common::{json, TestDb};
use serde_json::{json, Value};

/// Bodies received, parsed, by path.
fn bodies(server: &Server, path: &str) -> Vec<Value> {
    server
        .received()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| json(&r.body))
        .collect()
}

fn summary_of(db: &TestDb) -> String {
    let (code, out, err) = db.run(&["send_callbacks"]);
    assert_eq!(code, 0, "{out}{err}");
    out
}

#[test]
fn sqlite_values_of_every_storage_class_are_captured_and_delivered() {
    let db = TestDb::sqlite().migrated();
    let server = Server::answering(200);
    db.sql(
        "CREATE TABLE u (id INTEGER PRIMARY KEY, t TEXT, r REAL, b BLOB, n NUMERIC, j JSON);
         CREATE TABLE k (k BLOB PRIMARY KEY, v TEXT);
         CREATE TABLE c (a TEXT, b BLOB, v INTEGER, PRIMARY KEY (a, b));
         CREATE TABLE fine (id INTEGER PRIMARY KEY, v TEXT);",
    );
    db.add_hook(
        "u",
        "u",
        "insert,update",
        &server.url("/u"),
        &["--when-changed", "r"],
    );
    db.add_hook(
        "u_template",
        "u",
        "insert",
        &server.url("/u_template"),
        &[
            "--template",
            r#"{"t": "{{ instance.t }}", "r": {{ instance.r }}, "b": "{{ instance.b }}"}"#,
        ],
    );
    // Valid against the sample row (a JSON column takes any key), but not every row has it.
    db.add_hook(
        "u_nested",
        "u",
        "insert",
        &server.url("/u_nested"),
        &["--template", r#"{"x": {{ instance.j.x }}}"#],
    );
    db.add_hook("k", "k", "insert", &server.url("/k"), &[]);
    db.add_hook("c", "c", "insert", &server.url("/c"), &[]);
    db.add_hook("fine", "fine", "insert", &server.url("/fine"), &[]);
    // Each of these is one application write that must succeed, and must not stop
    // any other callback.
    db.sql(
        "INSERT INTO u (id, t) VALUES (1, CAST(x'41ff42' AS TEXT));
         INSERT INTO u (id, r) VALUES (2, 9e999);
         INSERT INTO u (id, r) VALUES (3, -9e999);
         INSERT INTO u (id, b) VALUES (4, x'00ff');
         INSERT INTO u (id, n) VALUES (5, 123456789012345678901234567890);
         INSERT INTO u (id, j) VALUES (6, '{\"x\": 7}');
         INSERT INTO u (id, j) VALUES (7, 'not json');
         INSERT INTO u (id, t) VALUES (8, x'ff00');
         UPDATE u SET r = 1.5 WHERE id = 2;
         INSERT INTO k VALUES (x'00ff', 'blob key');
         INSERT INTO c VALUES ('x', x'01', 1);
         INSERT INTO fine (v) VALUES ('fine');",
    );
    let out = summary_of(&db);
    // u: 9 (8 inserts + 1 update), u_template: 8, u_nested: 8, k, c, fine.
    assert!(out.contains("claimed 28"), "{out}");
    // Only u_nested's rows without j.x fail, each on its own.
    assert!(
        out.contains("sent 21,") && out.contains("failed 7"),
        "{out}"
    );

    let u = bodies(&server, "/u");
    let row = |id: i64| {
        u.iter()
            .find(|b| b["object_serialization"]["id"] == id && b["event_type"] == "insert")
            .unwrap_or_else(|| panic!("row {id}: {u:?}"))["object_serialization"]
            .clone()
    };
    assert_eq!(row(1)["t"], "A\\xffB", "invalid UTF-8 as escaped bytes");
    assert_eq!(row(2)["r"], "Infinity");
    assert_eq!(row(3)["r"], "-Infinity");
    assert_eq!(row(4)["b"], "00FF", "BLOBs as hex");
    // SQLite's JSON functions write a REAL with 15 significant digits.
    assert_eq!(row(5)["n"].as_f64(), Some(1.23456789012346e29));
    assert_eq!(row(6)["j"], json!({"x": 7}));
    assert_eq!(row(7)["j"], "not json");
    assert_eq!(row(8)["t"], "FF00", "a BLOB in a TEXT column is hex too");
    let update = u.iter().find(|b| b["event_type"] == "update").unwrap();
    assert_eq!(update["old_object_serialization"]["r"], "Infinity");
    assert_eq!(update["object_serialization"]["r"], 1.5);

    let templated = bodies(&server, "/u_template");
    // (A NULL printed inside quotes is the text null, as infi's templates had it.)
    assert!(
        templated.contains(&json!({"t": "A\\xffB", "r": null, "b": "null"})),
        "{templated:?}"
    );
    assert!(templated.contains(&json!({"t": "null", "r": "Infinity", "b": "null"})));
    assert!(templated.contains(&json!({"t": "null", "r": null, "b": "00FF"})));

    let k = bodies(&server, "/k");
    assert_eq!(
        k[0]["object_id"], "00FF",
        "a BLOB key is hex, like other BLOBs"
    );
    let c = bodies(&server, "/c");
    assert_eq!(c[0]["object_id"], r#"["x","01"]"#);
    assert_eq!(bodies(&server, "/fine").len(), 1);
    assert_eq!(bodies(&server, "/u_nested"), vec![json!({"x": 7})]);

    // The failures name the hook and the table, and every command still works.
    let failed = json(&db.ok(&["callbacks", "list", "--status", "error", "--format", "json"]));
    let details = failed[0]["status_details"].as_str().unwrap();
    assert!(
        details.starts_with("hook u_nested (table u, row "),
        "{details}"
    );
    db.ok(&["callbacks", "list"]);
    db.ok(&["callbacks", "show", "1"]);
    let shown = json(&db.ok(&["callbacks", "list", "--hook", "k", "--format", "json"]));
    assert_eq!(shown[0]["object_id"], "00FF");
}

#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_type_families_are_captured_and_delivered() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    let server = Server::answering(200);
    db.sql(
        "CREATE TABLE v (id SERIAL PRIMARY KEY, b BYTEA, n NUMERIC, f FLOAT8, a INT[], t TEXT[],
                         j JSONB, ts TIMESTAMPTZ, u UUID, iv INTERVAL);
         CREATE TABLE fine (id SERIAL PRIMARY KEY, v TEXT);",
    );
    db.add_hook("v", "v", "insert", &server.url("/v"), &[]);
    db.add_hook(
        "v_template",
        "v",
        "insert",
        &server.url("/v_template"),
        &[
            "--template",
            r#"{"n": {{ instance.n }}, "f": {{ instance.f }}, "a": {{ instance.a }}}"#,
        ],
    );
    db.add_hook("fine", "fine", "insert", &server.url("/fine"), &[]);
    db.sql(
        "INSERT INTO v (b, n, f, a, t, j, ts, u, iv) VALUES
           ('\\xdeadbeef', 1e400, 'Infinity', '{1,2,3}', '{\"x y\",NULL}', '{\"k\": [1, null]}',
            '2026-01-02 03:04:05+00', '7d444840-9dc0-11d1-b245-5ffdce74fad2', '1 day');
         INSERT INTO v (n, f) VALUES ('NaN', '-Infinity');
         INSERT INTO v (n, f) VALUES (123456789012345678901234567890.123456789, 'NaN');
         INSERT INTO v (n) VALUES (1.50);
         INSERT INTO fine (v) VALUES ('fine');",
    );
    let out = summary_of(&db);
    assert!(out.contains("sent 9, retried 0, failed 0"), "{out}");
    let rows: Vec<Value> = bodies(&server, "/v")
        .into_iter()
        .map(|b| b["object_serialization"].clone())
        .collect();
    let row = |id: i64| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(row(1)["b"], "\\xdeadbeef");
    assert_eq!(
        row(1)["n"].to_string(),
        format!("1{}", "0".repeat(400)),
        "exact"
    );
    assert_eq!(row(1)["f"], "Infinity");
    assert_eq!(row(1)["a"], json!([1, 2, 3]));
    assert_eq!(row(1)["t"], json!(["x y", null]));
    assert_eq!(row(1)["j"], json!({"k": [1, null]}));
    assert_eq!(row(2)["n"], "NaN");
    assert_eq!(row(2)["f"], "-Infinity");
    assert_eq!(
        row(3)["n"].to_string(),
        "123456789012345678901234567890.123456789",
        "numerics beyond f64 keep every digit"
    );
    assert_eq!(row(4)["n"].to_string(), "1.50");
    let templated: Vec<String> = server
        .received()
        .iter()
        .filter(|r| r.path == "/v_template")
        .map(|r| r.body.clone())
        .collect();
    assert!(
        templated.iter().any(|b| b.starts_with(
            r#"{"n": 123456789012345678901234567890.123456789, "f": "NaN""#
        )),
        "{templated:?}"
    );
    assert!(
        templated
            .iter()
            .any(|b| b.contains(r#""f": "Infinity", "a": [1,2,3]"#)),
        "{templated:?}"
    );
    assert_eq!(bodies(&server, "/fine").len(), 1);
}

/// A PostgreSQL database created with SQL_ASCII stores any byte in text: a value that
/// is not UTF-8 becomes escaped bytes, and nothing else is affected.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_sql_ascii_text_that_is_not_utf8_is_delivered_as_escaped_bytes() {
    let Some(db) = TestDb::postgres_database(
        "hh_ascii",
        "ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
    ) else {
        return;
    };
    {
        let db = &db;
        db.ok(&["migrate"]);
        let server = Server::answering(200);
        db.sql("CREATE TABLE u (id SERIAL PRIMARY KEY, v TEXT); CREATE TABLE fine (id SERIAL PRIMARY KEY, v TEXT)");
        db.add_hook("u", "u", "insert", &server.url("/u"), &[]);
        db.add_hook("fine", "fine", "insert", &server.url("/fine"), &[]);
        db.sql(
            "INSERT INTO u (v) VALUES (convert_from('\\x41ff42'::bytea, 'SQL_ASCII'));
             INSERT INTO fine (v) VALUES ('fine')",
        );
        let out = summary_of(db);
        assert!(out.contains("sent 2, retried 0, failed 0"), "{out}");
        assert_eq!(
            bodies(&server, "/u")[0]["object_serialization"]["v"],
            "A\\xffB"
        );
        db.ok(&["callbacks", "list"]);
    }
}

/// The last line of defence: a change whose recorded row SQLite itself cannot read
/// (here written by hand, as a trigger of some other SQLite version might) becomes a
/// failed callback that says why; the changes around it are delivered.
#[test]
fn sqlite_a_change_that_cannot_be_read_fails_alone() {
    let db = TestDb::sqlite().migrated();
    let server = Server::answering(200);
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)");
    db.add_hook(
        "t",
        "t",
        "insert,update",
        &server.url("/t"),
        &["--when-changed", "v"],
    );
    db.sql("INSERT INTO t (v) VALUES (1); UPDATE t SET v = 2");
    db.sql(
        "INSERT INTO httphooks_new_callbacks (table_name, event_type, object_id, row_data, old_row_data, created_at)
         VALUES ('t', 'update', 1, '{\"id\": 1, \"v\": 3', '{\"id\": 1, \"v\": 2}', julianday('now'))",
    );
    db.sql("UPDATE t SET v = 4");
    // A probe only reads, and must not fail on it either.
    let probe = db.ok(&[
        "monitor_callbacks",
        "--status",
        "waiting",
        "--callbacks_limit",
        "10",
    ]);
    assert!(probe.contains("OK: 4 callbacks"), "{probe}");
    let out = summary_of(&db);
    assert!(out.contains("sent 3, retried 0, failed 0"), "{out}");
    assert_eq!(server.received().len(), 3);
    let failed = json(&db.ok(&["callbacks", "list", "--status", "error", "--format", "json"]));
    assert_eq!(failed.as_array().unwrap().len(), 1);
    let details = failed[0]["status_details"].as_str().unwrap();
    assert!(
        details.contains("could not be read") && details.contains("malformed JSON"),
        "{details}"
    );
    db.ok(&[
        "monitor_callbacks",
        "--status",
        "waiting",
        "--callbacks_limit",
        "0",
    ]);
}

/// A change whose time another program wrote out of range (a word, a negative number,
/// a BLOB, infinity) is taken as made when it is admitted: it stops nothing.
#[test]
fn sqlite_a_change_with_a_time_out_of_range_is_delivered() {
    let db = TestDb::sqlite().migrated();
    let server = Server::answering(200);
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)");
    db.add_hook("t", "t", "insert", &server.url("/t"), &[]);
    for (id, time) in [(1, "'yesterday'"), (2, "-1"), (3, "1e308"), (4, "x'00'")] {
        db.sql(&format!(
            "INSERT INTO httphooks_new_callbacks (table_name, event_type, object_id, row_data, created_at)
             VALUES ('t', 'insert', {id}, '{{\"id\": {id}}}', {time})"
        ));
    }
    db.sql("INSERT INTO t (v) VALUES (5)");
    let out = summary_of(&db);
    assert!(out.contains("sent 5"), "{out}");
    assert_eq!(server.received().len(), 5);
    let ids: std::collections::HashSet<String> = server
        .received()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5, "each has its own webhook-id");
}

#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_a_change_with_a_time_out_of_range_is_delivered() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    let server = Server::answering(200);
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)");
    db.add_hook("t", "t", "insert", &server.url("/t"), &[]);
    for (id, time) in [(1, "infinity"), (2, "-infinity"), (3, "294276-12-31")] {
        db.sql(&format!(
            "INSERT INTO httphooks_new_callbacks (version_id, event_type, object_id, row_data, created_at)
             SELECT version_id, 'insert', '{id}', '{{\"id\": {id}}}', '{time}' FROM httphooks_hooks"
        ));
    }
    db.sql("INSERT INTO t (id, v) VALUES (4, 5)");
    let out = summary_of(&db);
    assert!(out.contains("sent 4"), "{out}");
    assert_eq!(db.ok(&["callbacks", "list"]).lines().count(), 5);
}
