//! send_callbacks end to end: a real HTTP server on 127.0.0.1 as the receiver, on both
//! backends.

mod common;

use std::time::{Duration, Instant};

use common::server::{Reply, Server};
use common::{json, TestDb};

fn items(db: &TestDb) {
    db.sql(&format!(
        "CREATE TABLE items ({}, name TEXT, qty INTEGER, meta {})",
        db.id_column(),
        db.json_type()
    ));
}

fn callback(db: &TestDb, id: i64) -> serde_json::Value {
    json(&db.ok(&["callbacks", "show", &id.to_string(), "--format", "json"]))
}

on_every_backend!(a_delivered_callback_records_what_went_on_the_wire, |db| {
    let db = db.migrated();
    items(&db);
    let server = Server::answering(200);
    db.add_hook("items", "items", "insert", &server.url("/in"), &["--header", "X-Token: Bearer ${HTTPHOOKS_TEST_TOKEN}", "--header", "X-Plain: visible",
        "--template", "{\"id\": {{ instance.id }}, \"name\": \"{{ instance.name }}\", \"event\": \"{{ event_type }}\"}"]);
    db.sql("INSERT INTO items (name, qty) VALUES ('say \"hi\"\nnow ✓', 2)");
    let out = db
        .cmd()
        .args(["send_callbacks"])
        .env("HTTPHOOKS_TEST_TOKEN", "s3cr3t-value")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("claimed 1, sent 1, retried 0, failed 0"),
        "{summary}"
    );

    let got = server.received();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/in");
    assert_eq!(
        request.header("x-token"),
        Some("Bearer s3cr3t-value"),
        "resolved at send time"
    );
    let webhook_id = request.header("webhook-id").unwrap().to_owned();
    assert!(
        webhook_id.len() == 36
            && webhook_id.starts_with("msg_")
            && webhook_id[4..].chars().all(|c| c.is_ascii_hexdigit()),
        "a time-ordered random id, not a counter: {webhook_id}"
    );
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("httphooks/"),
        "{:?}",
        request.header("user-agent")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = json(&request.body);
    assert_eq!(
        body,
        serde_json::json!({"id": 1, "name": "say \"hi\"\nnow ✓", "event": "insert"})
    );

    let shown = callback(&db, 1);
    assert_eq!(shown["webhook_id"], webhook_id.as_str());
    assert_eq!(shown["status"], "sent");
    assert_eq!(shown["status_details"], "200 OK");
    assert_eq!(shown["attempts"], 1);
    assert_eq!(
        shown["payload"],
        request.body.as_str(),
        "the body is stored"
    );
    let attempt = &shown["attempts_log"][0];
    assert_eq!(attempt["attempt"], 1);
    assert_eq!(attempt["request"]["method"], "POST");
    assert_eq!(attempt["request"]["body"], request.body.as_str());
    assert_eq!(attempt["response"]["status_code"], 200);
    assert_eq!(attempt["response"]["body"], "ok");
    let headers = attempt["request"]["headers"].to_string();
    assert!(
        headers.contains("[redacted]")
            && headers.contains("visible")
            && headers.contains(&webhook_id),
        "{headers}"
    );

    // The secret is nowhere: not in the database, not in any output.
    let stored = db.count(
        "SELECT COUNT(*) AS n FROM httphooks_attempts WHERE request_headers LIKE '%s3cr3t%' OR request_body LIKE '%s3cr3t%'",
    ) + db.count("SELECT COUNT(*) AS n FROM httphooks_hook_versions WHERE headers LIKE '%s3cr3t%'");
    assert_eq!(stored, 0);
    assert!(!shown.to_string().contains("s3cr3t"));
    if db.is_sqlite() {
        let file = std::fs::read(db.url.trim_start_matches("sqlite://")).unwrap();
        let wal = std::fs::read(format!("{}-wal", db.url.trim_start_matches("sqlite://")))
            .unwrap_or_default();
        for bytes in [file, wal] {
            assert!(
                !bytes.windows(6).any(|w| w == b"s3cr3t"),
                "the secret reached the SQLite file"
            );
        }
    }
});

on_every_backend!(failures_retry_with_backoff_then_give_up, |db| {
    let db = db.migrated();
    items(&db);
    let server = Server::answering(500);
    db.add_hook(
        "h",
        "items",
        "insert",
        &server.url("/"),
        &["--max-attempts", "2"],
    );
    db.sql("INSERT INTO items (name) VALUES ('a')");
    let summary = db.ok(&["send_callbacks"]);
    assert!(summary.contains("retried 1"), "{summary}");
    let first = callback(&db, 1);
    assert_eq!(first["status"], "waiting");
    assert_eq!(first["attempts"], 1);
    let details = first["status_details"].as_str().unwrap();
    assert!(
        details.starts_with("500 Internal Server Error (attempt 1/2, next in "),
        "{details}"
    );
    let next =
        chrono::DateTime::parse_from_rfc3339(first["next_attempt_at"].as_str().unwrap()).unwrap();
    let wait = (next.to_utc() - chrono::Utc::now()).num_seconds();
    assert!((5..=13).contains(&wait), "about 10 s ± 20 %: {wait}");

    // Not due yet: a second run sends nothing.
    assert!(db.ok(&["send_callbacks"]).contains("claimed 0"));
    // Naming the callback sends it now; the same bytes go out again.
    db.ok(&["send_callbacks", "--callback", "1"]);
    let last = callback(&db, 1);
    assert_eq!(last["status"], "error");
    assert_eq!(
        last["status_details"],
        "500 Internal Server Error (attempt 2/2, giving up)"
    );
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(last["attempts_log"].as_array().unwrap().len(), 2);

    // An operator puts it back.
    db.ok(&["callbacks", "retry", "1"]);
    assert_eq!(callback(&db, 1)["status"], "waiting");
    assert!(db.ok(&["send_callbacks"]).contains("claimed 1"));
});

on_every_backend!(each_kind_of_failure_is_recorded_as_it_happened, |db| {
    let db = db.migrated();
    items(&db);
    let server = Server::start(|request| match request.path.as_str() {
        "/gone" => Reply::Status(410),
        "/missing" => Reply::Status(404),
        "/moved" => Reply::WithHeaders(
            302,
            vec![("Location".into(), "http://127.0.0.1:1/elsewhere".into())],
            String::new(),
        ),
        "/busy" => Reply::WithHeaders(
            429,
            vec![("Retry-After".into(), "120".into())],
            String::new(),
        ),
        "/reset" => Reply::Reset,
        "/slow" => Reply::Slow(Duration::from_secs(3)),
        _ => Reply::Status(200),
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let targets = [
        ("gone", server.url("/gone")),
        ("missing", server.url("/missing")),
        ("moved", server.url("/moved")),
        ("busy", server.url("/busy")),
        ("reset", server.url("/reset")),
        ("slow", server.url("/slow")),
        ("refused", format!("http://127.0.0.1:{closed}/")),
    ];
    for (name, url) in &targets {
        db.add_hook(name, "items", "insert", url, &["--timeout", "500ms"]);
    }
    db.sql("INSERT INTO items (name) VALUES ('x')");
    let started = Instant::now();
    db.ok(&["send_callbacks"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no run hangs past its timeouts: {:?}",
        started.elapsed()
    );

    let all = json(&db.ok(&["callbacks", "list", "--format", "json"]));
    let by_hook = |name: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|c| c["hook_name"] == name)
            .unwrap()
            .clone()
    };
    let expect = |name: &str, status: &str, details: &str| {
        let c = by_hook(name);
        assert_eq!(c["status"], status, "{name}: {c}");
        assert!(
            c["status_details"].as_str().unwrap().contains(details),
            "{name}: {}",
            c["status_details"]
        );
    };
    expect("gone", "error", "410 Gone (attempt 1/8, not retried)");
    expect(
        "missing",
        "error",
        "404 Not Found (attempt 1/8, not retried)",
    );
    expect(
        "moved",
        "waiting",
        "302 Found, redirect to http://127.0.0.1:1/elsewhere not followed",
    );
    expect(
        "busy",
        "waiting",
        "429 Too Many Requests (attempt 1/8, next in 2m)",
    );
    expect("reset", "waiting", "(attempt 1/8, next in");
    expect("slow", "waiting", "no answer within the hook's timeout of ");
    expect("refused", "waiting", "connection refused");
    assert_eq!(
        server
            .received()
            .iter()
            .filter(|r| r.path == "/moved")
            .count(),
        1,
        "the redirect was not followed"
    );
    let slow = callback(&db, by_hook("slow")["id"].as_i64().unwrap());
    assert_eq!(slow["attempts_log"][0]["error"]["kind"], "timeout");
    let moved = callback(&db, by_hook("moved")["id"].as_i64().unwrap());
    assert!(moved["attempts_log"][0]["response"]["headers"]
        .to_string()
        .contains("elsewhere"));
});

on_every_backend!(
    a_missing_environment_variable_holds_the_hook_and_exits_3,
    |db| {
        let db = db.migrated();
        items(&db);
        let server = Server::answering(200);
        db.add_hook(
            "secret",
            "items",
            "insert",
            &server.url("/s"),
            &[
                "--header",
                "Authorization: Bearer ${HTTPHOOKS_TEST_UNSET_VARIABLE}",
            ],
        );
        db.add_hook("plain", "items", "insert", &server.url("/p"), &[]);
        db.sql("INSERT INTO items (name) VALUES ('x')");
        let (code, out, err) = db.run(&["send_callbacks"]);
        assert_eq!(code, 3, "{out}{err}");
        assert!(err.contains("HTTPHOOKS_TEST_UNSET_VARIABLE"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let got = server.received();
        assert_eq!(got.len(), 1, "the other hook was sent");
        assert_eq!(got[0].path, "/p");
        let held = callback(&db, 1);
        assert_eq!(held["status"], "waiting");
        assert_eq!(held["attempts"], 0);
        assert!(held["status_details"]
            .as_str()
            .unwrap()
            .contains("HTTPHOOKS_TEST_UNSET_VARIABLE"));
        // With the variable set, the next run sends it.
        let out = db
            .cmd()
            .arg("send_callbacks")
            .env("HTTPHOOKS_TEST_UNSET_VARIABLE", "t")
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(callback(&db, 1)["status"], "sent");
    }
);

on_every_backend!(dry_run_prints_the_requests_and_changes_nothing, |db| {
    let db = db.migrated();
    items(&db);
    let server = Server::answering(200);
    db.add_hook(
        "h",
        "items",
        "insert",
        &server.url("/d"),
        &["--header", "X-Key: ${HTTPHOOKS_TEST_DRY_KEY}"],
    );
    db.sql("INSERT INTO items (name) VALUES ('dry')");
    let out = db
        .cmd()
        .args(["send_callbacks", "--dry-run"])
        .env("HTTPHOOKS_TEST_DRY_KEY", "dry-secret")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("POST {}", server.url("/d"))),
        "{printed}"
    );
    assert!(
        printed.contains("X-Key: [redacted]") && !printed.contains("dry-secret"),
        "{printed}"
    );
    assert!(printed.contains("\"object_serialization\""), "{printed}");
    assert!(server.received().is_empty());
    let c = callback(&db, 1);
    assert_eq!(c["status"], "waiting");
    assert_eq!(c["payload"], serde_json::Value::Null);
    assert_eq!(c["attempts"], 0);
});

on_every_backend!(filters_choose_which_callbacks_a_run_sends, |db| {
    let db = db.migrated();
    items(&db);
    let server = Server::answering(200);
    db.add_hook("one", "items", "insert", &server.url("/1"), &[]);
    db.add_hook("two", "items", "insert", &server.url("/2"), &[]);
    db.sql("INSERT INTO items (name) VALUES ('a'), ('b'), ('c')");
    assert!(db
        .ok(&["send_callbacks", "--hook_id", "2", "--limit", "2"])
        .contains("sent 2"));
    assert!(server.received().iter().all(|r| r.path == "/2"));
    assert!(db
        .ok(&["send-callbacks", "--hook-id", "2"])
        .contains("sent 1"));
    assert!(db
        .ok(&["send_callbacks", "--callback", "1", "3"])
        .contains("sent 2"));
    assert!(db.ok(&["send_callbacks"]).contains("sent 1"));
    assert_eq!(server.received().len(), 6);
    let (code, _, err) = db.run(&["send_callbacks", "--hook_id", "99"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = db.run(&["send_callbacks", "--callback", "999"]);
    assert_eq!(code, 2, "{err}");
});

on_every_backend!(payloads_follow_the_content_type, |db| {
    let db = db.migrated();
    items(&db);
    let server = Server::answering(200);
    db.ok(&[
        "hooks",
        "add",
        "default",
        "--table",
        "items",
        "--events",
        "insert,update",
        "--url",
        &server.url("/default"),
    ]);
    db.add_hook(
        "form",
        "items",
        "insert",
        &server.url("/form"),
        &["--content-type", "application/x-www-form-urlencoded"],
    );
    db.add_hook("xml", "items", "insert", &server.url("/xml"), &["--content-type", "application/xml", "--template", "<item id=\"{{ instance.id }}\"><name>{{ instance.name }}</name><city>{{ instance.meta.city }}</city></item>"]);
    db.add_hook(
        "text",
        "items",
        "insert",
        &server.url("/text"),
        &[
            "--content-type",
            "text/plain",
            "--method",
            "PUT",
            "--template",
            "{{ hook }}: {{ instance.name }} at {{ occurred_at }}",
        ],
    );
    db.sql("INSERT INTO items (name, qty, meta) VALUES ('<A & \"B\">', 3, '{\"city\": \"Köln\", \"tags\": [\"x\"]}')");
    db.sql("UPDATE items SET qty = 4");
    db.ok(&["send_callbacks"]);
    let got = server.received();
    let body = |path: &str, nth: usize| {
        got.iter()
            .filter(|r| r.path == path)
            .nth(nth)
            .unwrap()
            .body
            .clone()
    };

    // Requests go out concurrently: tell them apart by event.
    let defaults: Vec<serde_json::Value> = (0..2).map(|n| json(&body("/default", n))).collect();
    let by_event = |event: &str| {
        defaults
            .iter()
            .find(|d| d["event_type"] == event)
            .unwrap()
            .clone()
    };
    let insert = by_event("insert");
    assert_eq!(insert["event_type"], "insert");
    assert_eq!(insert["object_type"], "items");
    assert_eq!(insert["object_id"], "1");
    assert_eq!(insert["object_serialization"]["name"], "<A & \"B\">");
    assert_eq!(insert["object_serialization"]["meta"]["city"], "Köln");
    assert_eq!(insert["event_metadata"]["hook"], "default");
    assert_eq!(insert["event_metadata"]["event_type"], "insert");
    assert!(insert["event_metadata"]["time"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(insert.get("old_object_serialization").is_none());
    let update = by_event("update");
    assert_eq!(update["old_object_serialization"]["qty"], 3);
    assert_eq!(update["object_serialization"]["qty"], 4);

    let form: Vec<(String, String)> = url::form_urlencoded::parse(body("/form", 0).as_bytes())
        .into_owned()
        .collect();
    let field = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    assert_eq!(
        field("object_serialization_name").as_deref(),
        Some("<A & \"B\">")
    );
    assert_eq!(
        field("object_serialization_meta_tags_0").as_deref(),
        Some("x")
    );
    assert!(field("event_metadata_time").is_some());
    assert_eq!(
        got.iter()
            .find(|r| r.path == "/form")
            .unwrap()
            .header("content-type"),
        Some("application/x-www-form-urlencoded")
    );

    assert_eq!(
        body("/xml", 0),
        "<item id=\"1\"><name>&lt;A &amp; &quot;B&quot;&gt;</name><city>Köln</city></item>"
    );
    let text = got.iter().find(|r| r.path == "/text").unwrap();
    assert_eq!(text.method, "PUT");
    assert!(
        text.body.starts_with("text: <A & \"B\"> at 20"),
        "{}",
        text.body
    );
});

on_every_backend!(
    a_template_that_fails_on_a_real_row_fails_only_that_callback,
    |db| {
        let db = db.migrated();
        items(&db);
        let server = Server::answering(200);
        db.add_hook(
            "nested",
            "items",
            "insert",
            &server.url("/n"),
            &["--template", "{\"city\": \"{{ instance.meta.city }}\"}"],
        );
        db.sql("INSERT INTO items (name, meta) VALUES ('no city', '{\"country\": \"DE\"}')");
        db.sql("INSERT INTO items (name, meta) VALUES ('city', '{\"city\": \"Bonn\"}')");
        let summary = db.ok(&["send_callbacks"]);
        assert!(
            summary.contains("sent 1") && summary.contains("failed 1"),
            "{summary}"
        );
        let failed = callback(&db, 1);
        assert_eq!(failed["status"], "error");
        let details = failed["status_details"].as_str().unwrap();
        assert!(
            details.starts_with("hook nested (table items, row 1):")
                && details
                    .contains("instance.meta.city: instance.meta has no key city (keys: country)"),
            "{details}"
        );
        assert_eq!(json(&server.received()[0].body)["city"], "Bonn");
    }
);

/// On MySQL, whether the index for ordered hooks' claims is there: the first ordered
/// hook makes it (the migrations of the other backends make a partial one).
fn check_ordered_index(db: &TestDb, expected: bool) {
    if db.is_mysql() {
        let found = db.count(
            "SELECT COUNT(DISTINCT INDEX_NAME) AS n FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'httphooks_callbacks' \
               AND INDEX_NAME = 'httphooks_callbacks_ordered'",
        );
        assert_eq!(found == 1, expected);
    }
}

on_every_backend!(ordered_hooks_deliver_each_rows_callbacks_in_order, |db| {
    let db = db.migrated();
    items(&db);
    // The first request for row 1 fails once; everything else succeeds after a delay
    // that would reorder concurrent requests.
    let failed_once = std::sync::atomic::AtomicBool::new(false);
    let server = Server::start(move |request| {
        let body = json(&request.body);
        if body["id"] == 1
            && body["qty"] == 0
            && !failed_once.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Reply::Status(503);
        }
        Reply::Slow(Duration::from_millis(fastrand_ms(
            body["qty"].as_i64().unwrap(),
        )))
    });
    check_ordered_index(&db, false);
    db.ok(&[
        "hooks",
        "add",
        "seq",
        "--table",
        "items",
        "--events",
        "insert,update",
        "--url",
        &server.url("/seq"),
        "--ordered",
        "--template",
        "{\"id\": {{ instance.id }}, \"qty\": {{ instance.qty }}}",
    ]);
    assert_eq!(
        json(&db.ok(&["hooks", "show", "seq", "--format", "json"]))["ordered"],
        true
    );
    check_ordered_index(&db, true);
    for id in 1..=5 {
        db.sql(&format!(
            "INSERT INTO items (id, name, qty) VALUES ({id}, 'x', 0)"
        ));
    }
    for qty in 1..=3 {
        db.sql(&format!("UPDATE items SET qty = {qty}"));
    }
    db.ok(&["send_callbacks", "--concurrency", "8"]);
    let sequence = |id: i64| -> Vec<i64> {
        server
            .received()
            .iter()
            .map(|r| json(&r.body))
            .filter(|b| b["id"] == id)
            .map(|b| b["qty"].as_i64().unwrap())
            .collect()
    };
    for id in 2..=5 {
        assert_eq!(sequence(id), vec![0, 1, 2, 3], "row {id} in order");
    }
    assert_eq!(
        sequence(1),
        vec![0],
        "row 1 waits behind its failed first callback"
    );
    db.ok(&["send_callbacks", "--callback", "1"]);
    db.ok(&["send_callbacks", "--concurrency", "8"]);
    assert_eq!(sequence(1), vec![0, 0, 1, 2, 3]);
});

/// A per-request delay that reverses the natural order: later values answer sooner.
fn fastrand_ms(qty: i64) -> u64 {
    (3 - qty).max(0) as u64 * 15
}

on_every_backend!(
    a_callback_keeps_its_content_and_goes_out_with_its_hooks_current_settings,
    |db| {
        let db = db.migrated();
        items(&db);
        let server = Server::answering(200);
        db.add_hook(
            "snap",
            "items",
            "insert",
            &server.url("/old"),
            &[
                "--template",
                "{\"v\": \"old {{ instance.id }}\"}",
                "--header",
                "X-Version: 1",
            ],
        );
        db.sql("INSERT INTO items (name) VALUES ('before')");
        let out = db.ok(&[
            "hooks",
            "edit",
            "snap",
            "--url",
            &server.url("/new"),
            "--template",
            "{\"v\": \"new {{ instance.id }}\"}",
            "--clear-headers",
            "--header",
            "X-Version: 2",
            "--method",
            "PUT",
            "--ordered",
        ]);
        assert!(out.contains("new settings"), "{out}");
        check_ordered_index(&db, true);
        db.sql("INSERT INTO items (name) VALUES ('after')");
        // Ordering is part of the content snapshot: only the second callback waits its turn.
        assert_eq!(
            db.count(
                "SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE ordered AND object_id = '2'"
            ),
            1
        );
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE ordered"),
            1
        );
        db.ok(&["send_callbacks"]);
        let got = server.received();
        assert_eq!(got.len(), 2);
        assert!(
            got.iter().all(|r| r.path == "/new"),
            "fixing a hook fixes its backlog: {:?}",
            got.iter().map(|r| &r.path).collect::<Vec<_>>()
        );
        let bodies: Vec<(&str, &str, Option<&str>)> = got
            .iter()
            .map(|r| (r.method.as_str(), r.body.as_str(), r.header("x-version")))
            .collect();
        assert!(
            bodies.contains(&("PUT", "{\"v\": \"old 1\"}", Some("2"))),
            "the first callback kept its body: {bodies:?}"
        );
        assert!(bodies.contains(&("PUT", "{\"v\": \"new 2\"}", Some("2"))));
        // Each attempt records what it used; pruning keeps versions callbacks still use.
        db.ok(&["delete_old_callbacks", "30"]);
        let shown = json(&db.ok(&["callbacks", "show", "1", "--format", "json"]));
        assert_eq!(shown["url"], server.url("/new"));
        assert_eq!(
            shown["attempts_log"][0]["request"]["url"],
            server.url("/new")
        );
        assert_eq!(shown["attempts_log"][0]["request"]["method"], "PUT");
    }
);

/// MySQL: runs `args` while another connection holds `table` in an open transaction
/// (which blocks DDL on it); the command must give up within 15 s with exit 3. Returns
/// its stderr and the connection, whose transaction is still open.
#[cfg(feature = "mysql")]
fn refused_behind_a_long_transaction(
    db: &TestDb,
    table: &str,
    args: &[&str],
) -> (String, common::Client) {
    let mut long = db.connect();
    long.sql(&format!("BEGIN; SELECT COUNT(*) FROM {table}"));
    let started = Instant::now();
    let (code, out, err) = db.run(args);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    (err, long)
}

// MySQL: the first ordered hook adds an index to httphooks_callbacks. Behind a long
// transaction on that table it waits 5 s at most (meanwhile every statement on the
// table would queue behind it), says what to do, and writes nothing.
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn the_ordered_index_waits_briefly_behind_a_long_transaction() {
    let Some(db) = TestDb::mysql() else { return };
    let db = db.migrated();
    items(&db);
    let add = [
        "hooks",
        "add",
        "seq",
        "--table",
        "items",
        "--events",
        "update",
        "--url",
        "http://127.0.0.1:9/",
        "--ordered",
    ];
    let (err, mut long) = refused_behind_a_long_transaction(&db, "httphooks_callbacks", &add);
    assert!(
        err.contains("a long transaction holds httphooks_callbacks"),
        "{err}"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_hooks"),
        0,
        "nothing written"
    );
    long.sql("COMMIT");
    db.ok(&add);
    check_ordered_index(&db, true);
}

// MySQL: a table's triggers are DDL, which waits for every open transaction on the
// table while the application's writes queue behind it: 5 s at most, then one sentence.
// MySQL commits before DDL, so the hook may be saved without its triggers: the sentence
// says so and names `hooks sync`, which makes them once the transaction has ended.
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
fn a_hook_waits_briefly_for_its_table_behind_a_long_transaction() {
    let Some(db) = TestDb::mysql() else { return };
    let db = db.migrated();
    items(&db);
    let add = [
        "hooks",
        "add",
        "u",
        "--table",
        "items",
        "--events",
        "update",
        "--url",
        "http://127.0.0.1:9/",
    ];
    let (err, mut long) = refused_behind_a_long_transaction(&db, "items", &add);
    assert!(
        err.contains("end the transaction that holds it") && err.contains("hooks sync"),
        "{err}"
    );
    long.sql("COMMIT");
    db.ok(&["hooks", "sync"]);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_hooks"), 1);
    db.sql("INSERT INTO items (name, qty) VALUES ('a', 1)");
    db.sql("UPDATE items SET qty = qty + 1");
    assert!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks") > 0,
        "the synced triggers capture"
    );
}

on_every_backend!(
    a_run_waiting_on_a_slow_receiver_does_not_spin,
    |db: TestDb| {
        // One worker and a receiver that takes 100 ms: the run waits most of the time,
        // and waiting must cost nothing (the dispatcher once woke itself in a loop to
        // mark callbacks it had no room for, burning a core for the whole run).
        let db = db.migrated();
        items(&db);
        let server = Server::start(|_| Reply::Slow(Duration::from_millis(100)));
        db.add_hook("slow", "items", "insert", &server.url("/slow"), &[]);
        for i in 0..15 {
            db.sql(&format!("INSERT INTO items (name, qty) VALUES ('x{i}', 1)"));
        }
        let mut child = std::process::Command::new(common::binary())
            .args(["send_callbacks", "--concurrency", "1"])
            .env("DATABASE_URL", &db.url)
            .env("STATE_DIRECTORY", db.path(""))
            .env("RUST_LOG", "httphooks=debug")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
        let (status, cpu) = wait_with_cpu(child);
        let log = log.join().unwrap();
        assert_eq!(status, 0, "{log}");
        assert_eq!(server.received().len(), 15);
        assert!(
            cpu < Duration::from_millis(600),
            "the run used {cpu:?} of CPU to wait about 1.5 s"
        );
        // Nor the database's: a claim when a worker frees up, or every 50 ms at most.
        let claims = log.lines().filter(|l| l.contains("claimed")).count();
        assert!(claims < 80, "{claims} claims in about 1.5 s");
    }
);

/// A port on 127.0.0.1 whose connections never complete: a listener with a backlog of
/// none, its queue filled, so that the kernel drops new connection requests.
struct Unreachable {
    fd: i32,
    port: u16,
    _queued: Vec<std::net::TcpStream>,
}

impl Unreachable {
    fn new() -> Unreachable {
        use std::mem::size_of;
        // SAFETY: plain socket calls on a socket this function owns, with an address
        // struct of the size given.
        let (fd, port) = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            let mut address: libc::sockaddr_in = std::mem::zeroed();
            address.sin_family = libc::AF_INET as libc::sa_family_t;
            address.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
            let mut length = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let raw = &mut address as *mut libc::sockaddr_in as *mut libc::sockaddr;
            assert_eq!(libc::bind(fd, raw, length), 0);
            assert_eq!(libc::listen(fd, 0), 0);
            assert_eq!(libc::getsockname(fd, raw, &mut length), 0);
            (fd, u16::from_be(address.sin_port))
        };
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut queued = Vec::new();
        for _ in 0..10 {
            match std::net::TcpStream::connect_timeout(&target, Duration::from_millis(200)) {
                Ok(stream) => queued.push(stream),
                Err(_) => break,
            }
        }
        Unreachable {
            fd,
            port,
            _queued: queued,
        }
    }
}

impl Drop for Unreachable {
    fn drop(&mut self) {
        // SAFETY: closes the socket made in `new`, once.
        unsafe { libc::close(self.fd) };
    }
}

on_every_backend!(
    a_target_that_cannot_be_reached_in_time_is_named_as_such,
    |db| {
        let db = db.migrated();
        items(&db);
        let unreachable = Unreachable::new();
        let url = format!("http://127.0.0.1:{}/in", unreachable.port);
        db.add_hook("items", "items", "insert", &url, &["--timeout", "500ms"]);
        db.sql("INSERT INTO items (name, qty) VALUES ('a', 1)");
        let started = Instant::now();
        db.ok(&["send_callbacks"]);
        let took = started.elapsed();
        let message = db.text("SELECT error_message AS v FROM httphooks_attempts");
        assert_eq!(message.as_deref(), Some("could not connect within 500ms"));
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
);

/// Waits for a child process; returns its exit code and the CPU time it used (user and
/// system), which only `wait4` reports for one child.
fn wait_with_cpu(child: std::process::Child) -> (i32, Duration) {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, time(usage.ru_utime) + time(usage.ru_stime))
}

on_every_backend!(a_binary_answer_is_recorded_and_stops_nothing, |db| {
    // A receiver answering bytes PostgreSQL's text cannot hold (NUL) beside a plain
    // one: both callbacks are recorded as sent once, and a second run sends nothing.
    let db = db.migrated();
    items(&db);
    let server = Server::start(|request| {
        if request.path == "/binary" {
            Reply::WithHeaders(200, Vec::new(), "a\0b\u{1}c".to_owned())
        } else {
            Reply::Status(200)
        }
    });
    db.add_hook("binary", "items", "insert", &server.url("/binary"), &[]);
    db.add_hook("plain", "items", "insert", &server.url("/plain"), &[]);
    db.sql("INSERT INTO items (name, qty) VALUES ('a', 1)");
    let first = db.ok(&["send_callbacks"]);
    assert!(
        first.contains("claimed 2, sent 2, retried 0, failed 0"),
        "{first}"
    );
    let again = db.ok(&["send_callbacks"]);
    assert!(again.contains("claimed 0"), "{again}");
    assert_eq!(server.received().len(), 2, "each callback sent once");
    let ids = db.ok(&["callbacks", "list", "--hook", "binary", "--format", "json"]);
    let id = json(&ids)[0]["id"].as_i64().unwrap();
    let shown = callback(&db, id);
    assert_eq!(shown["status"], "sent", "{shown}");
    assert_eq!(
        shown["attempts_log"][0]["response"]["body"], "a\u{FFFD}b\u{1}c",
        "NUL recorded as U+FFFD, the rest as it came: {shown}"
    );
});
