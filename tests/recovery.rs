//! After an outage, through the binary on every backend: retry, cancel and replay by
//! filter (with a run sending at the same time), and the failures counted per hook and
//! reason before retrying.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::server::{Reply, Server};
use common::{json, TestDb};

/// How many times each webhook-id arrived at `path`.
fn deliveries(server: &Server, path: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in server.received().iter().filter(|r| r.path == path) {
        *counts
            .entry(request.header("webhook-id").unwrap().to_owned())
            .or_insert(0) += 1;
    }
    counts
}

fn count(db: &TestDb, hook: &str, status: &str) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE status = '{status}' \
         AND hook_id = (SELECT id FROM httphooks_hooks WHERE name = '{hook}')"
    ))
}

/// Tables `a` and `b`, each with a hook of its name to `server` (`/a`, `/b`).
fn two_hooks(db: &TestDb, server: &Server) {
    for name in ["a", "b"] {
        db.sql(&format!(
            "CREATE TABLE {name} ({}, v INTEGER)",
            db.id_column()
        ));
        db.add_hook(
            name,
            name,
            "insert",
            &server.url(&format!("/{name}")),
            &["--max-attempts", "1"],
        );
    }
}

fn rows(db: &TestDb, table: &str, n: usize) {
    let values: Vec<String> = (0..n).map(|v| format!("({v})")).collect();
    db.sql(&format!(
        "INSERT INTO {table} (v) VALUES {}",
        values.join(",")
    ));
}

on_every_backend!(
    retry_and_cancel_by_filter_while_a_run_sends_lose_and_double_nothing,
    |db| {
        let db = db.migrated();
        // /a is down (500) until the outage ends; /b answers slowly, so a run is still
        // sending when the operator acts.
        let outage = Arc::new(AtomicBool::new(true));
        let down = Arc::clone(&outage);
        let server = Server::start(move |request| match request.path.as_str() {
            "/a" if down.load(Ordering::SeqCst) => Reply::Status(500),
            "/b" => Reply::Slow(Duration::from_millis(10)),
            _ => Reply::Status(200),
        });
        two_hooks(&db, &server);
        rows(&db, "a", 300);
        db.ok(&["send_callbacks"]);
        assert_eq!(count(&db, "a", "error"), 300);
        let grouped = json(&db.ok(&[
            "callbacks",
            "list",
            "--status",
            "error",
            "--group-by",
            "hook,reason",
            "--format",
            "json",
        ]));
        assert_eq!(
            grouped,
            serde_json::json!([{"hook": "a", "reason": "500 Internal Server Error", "count": 300}])
        );
        outage.store(false, Ordering::SeqCst);
        rows(&db, "b", 400);
        let run = db.spawn(&["send_callbacks", "--concurrency", "2"]);
        std::thread::sleep(Duration::from_millis(500));
        let retried = db.ok(&[
            "callbacks",
            "retry",
            "--hook",
            "a",
            "--status",
            "error",
            "--since",
            "1h",
        ]);
        assert!(
            retried.starts_with("300 callback(s) waiting again, due now"),
            "{retried}"
        );
        let cancelled = db.ok(&["callbacks", "cancel", "--hook", "b"]);
        assert!(cancelled.starts_with("cancelled "), "{cancelled}");
        let output = run.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        db.ok(&["send_callbacks"]);
        // Every failed callback went out once more, with its history kept.
        let a = deliveries(&server, "/a");
        assert_eq!(a.len(), 300);
        assert!(
            a.values().all(|&n| n == 2),
            "each once failed, once retried"
        );
        assert_eq!(count(&db, "a", "sent"), 300);
        let one = db.count("SELECT MIN(id) AS n FROM httphooks_callbacks");
        let shown = json(&db.ok(&["callbacks", "show", &one.to_string(), "--format", "json"]));
        assert_eq!(
            shown["attempts_log"].as_array().unwrap().len(),
            2,
            "{shown}"
        );
        // Each of b's callbacks was either sent once or cancelled and never sent.
        let b = deliveries(&server, "/b");
        assert!(b.values().all(|&n| n == 1), "none twice");
        assert_eq!(count(&db, "b", "sent"), b.len() as i64);
        assert_eq!(count(&db, "b", "sent") + count(&db, "b", "error"), 400);
        assert!(count(&db, "b", "error") > 0, "the cancel took some");
        assert_eq!(count(&db, "b", "waiting"), 0);
    }
);

on_every_backend!(a_replay_needs_force_and_keeps_the_webhook_id, |db| {
    let db = db.migrated();
    let server = Server::answering(200);
    two_hooks(&db, &server);
    rows(&db, "a", 3);
    rows(&db, "b", 2);
    db.ok(&["send_callbacks"]);
    let (code, _, err) = db.run(&["callbacks", "retry", "--hook", "a", "--status", "sent"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("needs --force") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(count(&db, "a", "sent"), 3);
    let out = db.ok(&[
        "callbacks",
        "retry",
        "--hook",
        "a",
        "--status",
        "sent",
        "--force",
    ]);
    assert!(out.starts_with("3 callback(s) waiting again"), "{out}");
    db.ok(&["send_callbacks"]);
    let a = deliveries(&server, "/a");
    assert_eq!(a.len(), 3);
    assert!(a.values().all(|&n| n == 2), "the same webhook-id each time");
    assert!(
        deliveries(&server, "/b").values().all(|&n| n == 1),
        "other hooks untouched"
    );
});

on_every_backend!(
    retry_and_cancel_without_a_filter_are_refused_and_change_nothing,
    |db| {
        let db = db.migrated();
        let server = Server::answering(500);
        two_hooks(&db, &server);
        rows(&db, "a", 5);
        db.ok(&["send_callbacks"]);
        for command in ["retry", "cancel"] {
            let (code, out, err) = db.run(&["callbacks", command]);
            assert_eq!(code, 2, "{out}{err}");
            assert!(
                err.contains("say which callbacks") && err.contains("nothing was changed"),
                "{err}"
            );
            let (code, _, err) = db.run(&["callbacks", command, "1", "--since", "1h"]);
            assert_eq!(code, 2, "{err}");
            let (code, _, err) = db.run(&["callbacks", command, "--hook", "nosuch"]);
            assert_eq!(code, 2, "{err}");
            assert!(err.contains("no hook named \"nosuch\""), "{err}");
        }
        let out = db.ok(&["callbacks", "retry", "--hook", "b", "--status", "error"]);
        assert_eq!(
            out.trim(),
            "no callback matches (hook b, status error); nothing was changed"
        );
        let out = db.ok(&[
            "callbacks",
            "retry",
            "--status",
            "error",
            "--until",
            "2000-01-01",
        ]);
        assert!(out.starts_with("no callback matches"), "{out}");
        let out = db.ok(&["callbacks", "retry", "--hook", "a", "--dry-run"]);
        assert!(out.starts_with("would put 5 callback(s) back"), "{out}");
        let (code, _, err) = db.run(&["callbacks", "retry", "--since", "yesterday"]);
        assert_eq!(code, 2);
        assert!(err.contains("neither a span ago"), "{err}");
        assert_eq!(count(&db, "a", "error"), 5, "nothing was changed");
    }
);

/// A table `rows_t` with `n` rows (id 1..=n, v = 0) and an ordered hook `rows` on it.
fn table_with_rows(db: &TestDb, server: &Server, n: usize) {
    db.sql(&format!(
        "CREATE TABLE rows_t ({}, v INTEGER NOT NULL)",
        db.id_column()
    ));
    for chunk in (1..=n).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk.iter().map(|i| format!("({i}, 0)")).collect();
        db.sql(&format!(
            "INSERT INTO rows_t (id, v) VALUES {}",
            values.join(",")
        ));
    }
    db.add_hook(
        "rows",
        "rows_t",
        "insert,update",
        &server.url("/rows"),
        &["--ordered"],
    );
}

/// Per row, the `v` of each request in arrival order, and the backfills among them.
fn states(server: &Server) -> (HashMap<i64, Vec<i64>>, HashMap<i64, usize>) {
    let mut states: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut backfills: HashMap<i64, usize> = HashMap::new();
    for request in server.received() {
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        let row = &body["object_serialization"];
        let id = row["id"].as_i64().unwrap();
        states
            .entry(id)
            .or_default()
            .push(row["v"].as_i64().unwrap());
        if body["event_type"] == "backfill" {
            *backfills.entry(id).or_default() += 1;
        }
    }
    (states, backfills)
}

on_every_backend!(
    a_backfill_sends_every_row_once_beside_live_writes_and_keeps_an_ordered_hooks_row_order,
    |db| {
        let db = db.migrated();
        let server = Server::start(|_| Reply::Status(200));
        let n = 10_000;
        table_with_rows(&db, &server, n);
        // An application updates rows all through the backfill.
        let writing = Arc::new(AtomicBool::new(true));
        let writer = {
            let (writing, mut app) = (Arc::clone(&writing), db.connect());
            std::thread::spawn(move || {
                let mut k = 0;
                while writing.load(Ordering::SeqCst) {
                    app.sql(&format!(
                        "UPDATE rows_t SET v = v + 1 WHERE id = {}",
                        k % n + 1
                    ));
                    k += 37;
                    // An application between requests; SQLite has one writer at a time.
                    std::thread::sleep(Duration::from_millis(1));
                }
                k
            })
        };
        let out = db.ok(&["hooks", "backfill", "rows", "--chunk-size", "100"]);
        writing.store(false, Ordering::SeqCst);
        let updates = writer.join().unwrap();
        assert!(out.starts_with(&format!("backfilled {n} row(s)")), "{out}");
        assert!(updates > 0);
        db.ok(&["send_callbacks"]);
        let (states, backfills) = states(&server);
        assert_eq!(backfills.len(), n, "every row was backfilled");
        assert!(backfills.values().all(|&k| k == 1), "once each");
        let mut app = db.connect();
        let integer = if db.is_mysql() { "SIGNED" } else { "BIGINT" };
        for (id, seen) in &states {
            assert!(
                seen.windows(2).all(|w| w[0] <= w[1]),
                "row {id}: its states arrived in order: {seen:?}"
            );
            let last = app.count(&format!(
                "SELECT CAST(v AS {integer}) AS n FROM rows_t WHERE id = {id}"
            ));
            assert_eq!(
                *seen.last().unwrap(),
                last,
                "row {id} ends at its last state"
            );
        }
    }
);

on_every_backend!(a_stopped_backfill_goes_on_after_its_last_key, |db| {
    let db = db.migrated();
    let server = Server::start(|_| Reply::Status(200));
    // Enough rows that a batch at a time takes seconds (SQLite writes one in ~0.3 ms).
    let n = if db.is_sqlite() { 200_000 } else { 20_000 };
    if db.is_sqlite() {
        db.sql("CREATE TABLE rows_t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
        db.sql(&format!(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n}) \
             INSERT INTO rows_t (id, v) SELECT i, 0 FROM k"
        ));
        db.add_hook("rows", "rows_t", "insert,update", &server.url("/rows"), &[]);
    } else {
        table_with_rows(&db, &server, n);
    }
    let run = db.spawn(&[
        "hooks",
        "backfill",
        "rows",
        "--chunk-size",
        "1",
        "--where",
        "v >= 0",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(unsafe { libc::kill(run.id() as i32, libc::SIGINT) }, 0);
    let output = run.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(3), "{err}{out}");
    let key = err
        .split("--after '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("the command that goes on: {err}"));
    assert!(err.contains("--where 'v >= 0'"), "{err}");
    let out = db.ok(&[
        "hooks",
        "backfill",
        "rows",
        "--where",
        "v >= 0",
        "--after",
        key,
        "--chunk-size",
        "5000",
    ]);
    assert!(out.starts_with("backfilled "), "{out}");
    let backfilled = "FROM httphooks_callbacks WHERE event_type = 'backfill'";
    assert_eq!(
        db.count(&format!("SELECT COUNT(*) AS n {backfilled}")),
        n as i64
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(DISTINCT object_id) AS n {backfilled}"
        )),
        n as i64,
        "every row once, across the two runs"
    );
});

on_every_backend!(
    a_backfill_that_cannot_run_says_why_and_writes_nothing,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        table_with_rows(&db, &server, 10);
        db.ok(&[
            "hooks",
            "add",
            "custom",
            "--events",
            "order.paid",
            "--url",
            &server.url("/c"),
        ]);
        let cases: [(&[&str], &str); 4] = [
            (&["hooks", "backfill", "custom"], "watches no table"),
            (
                &["hooks", "backfill", "rows", "--where", "nosuch > 1"],
                "the --where condition does not work",
            ),
            (
                &["hooks", "backfill", "rows", "--after", "7"],
                "--after takes the key",
            ),
            (&["hooks", "backfill", "nosuch"], "no hook named"),
        ];
        for (args, says) in cases {
            let (code, out, err) = db.run(args);
            assert_eq!(code, 2, "{args:?}: {out}{err}");
            assert!(err.contains(says), "{args:?}: {err}");
        }
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"), 0);
    }
);

/// Table `c` with rows 1..=n (v = 0), changed `updates` times each (v = 1, 2, …), and a
/// hook `c` on it with `flags`.
fn changed_rows(db: &TestDb, server: &Server, n: usize, updates: usize, flags: &[&str]) {
    db.sql(&format!(
        "CREATE TABLE c ({}, v INTEGER NOT NULL)",
        db.id_column()
    ));
    db.add_hook("c", "c", "insert,update,delete", &server.url("/c"), flags);
    let values: Vec<String> = (1..=n).map(|i| format!("({i}, 0)")).collect();
    db.sql(&format!(
        "INSERT INTO c (id, v) VALUES {}",
        values.join(",")
    ));
    for _ in 0..updates {
        db.sql("UPDATE c SET v = v + 1");
    }
}

/// Per row of `c`, the (event, v) of each request in arrival order.
fn requests_per_row(server: &Server) -> HashMap<i64, Vec<(String, i64)>> {
    let mut rows: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
    for request in server.received() {
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        let row = &body["object_serialization"];
        rows.entry(row["id"].as_i64().unwrap()).or_default().push((
            body["event_type"].as_str().unwrap().to_owned(),
            row["v"].as_i64().unwrap(),
        ));
    }
    rows
}

on_every_backend!(
    coalescing_sends_a_rows_newest_change_and_never_folds_a_delete_or_an_attempt,
    |db| {
        let db = db.migrated();
        let server = Server::start(|_| Reply::Status(200));
        changed_rows(&db, &server, 20, 5, &["--coalesce"]);
        db.sql("DELETE FROM c WHERE id = 1");
        // Row 2's first callback was attempted before (a retry would send it again).
        db.sql(
            "UPDATE httphooks_callbacks SET attempts = 1 WHERE id = \
             (SELECT MIN(id) FROM httphooks_callbacks WHERE object_id = '2')",
        );
        let metrics = db.dir.path().join("m.prom");
        let out = db.ok(&[
            "send_callbacks",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ]);
        assert!(
            out.contains("sent 22, retried 0, failed 0, superseded 99"),
            "{out}"
        );
        let rows = requests_per_row(&server);
        for id in 3..=20 {
            assert_eq!(
                rows[&id],
                [("update".to_owned(), 5)],
                "row {id}: its newest only"
            );
        }
        // The hook is not --ordered, so a row's two requests may arrive in either order.
        let sorted = |id: i64| {
            let mut requests = rows[&id].clone();
            requests.sort();
            requests
        };
        assert_eq!(
            sorted(1),
            [("delete".to_owned(), 5), ("update".to_owned(), 5)],
            "a delete is always sent"
        );
        assert_eq!(
            sorted(2),
            [("insert".to_owned(), 0), ("update".to_owned(), 5)],
            "an attempted callback is not folded"
        );
        // Each superseded callback points at the newest of its row, which was sent.
        let pointing_elsewhere = db.count(
            "SELECT COUNT(*) AS n FROM httphooks_callbacks s JOIN httphooks_callbacks n \
             ON n.id = s.superseded_by WHERE s.status = 'superseded' \
             AND (n.object_id <> s.object_id OR n.status <> 'sent')",
        );
        assert_eq!(pointing_elsewhere, 0);
        let folded =
            db.count("SELECT MIN(id) AS n FROM httphooks_callbacks WHERE status = 'superseded'");
        let explained = db.ok(&["callbacks", "explain", &folded.to_string()]);
        assert!(explained.contains("coalesces (--coalesce)"), "{explained}");
        let shown = json(&db.ok(&["callbacks", "show", &folded.to_string(), "--format", "json"]));
        assert_eq!(shown["status"], "superseded");
        assert!(shown["superseded_by"].as_i64().is_some(), "{shown}");
        let status = json(&db.ok(&["status", "--format", "json"]));
        assert_eq!(status["hooks"][0]["superseded_last_day"], 99, "{status}");
        let metrics = std::fs::read_to_string(&metrics).unwrap();
        assert!(metrics.contains("outcome=\"superseded\""), "{metrics}");
    }
);

on_every_backend!(coalescing_keeps_an_ordered_hooks_row_order, |db| {
    let db = db.migrated();
    let server = Server::start(|_| Reply::Status(200));
    changed_rows(&db, &server, 10, 5, &["--coalesce", "--ordered"]);
    db.ok(&["send_callbacks"]);
    let rows = requests_per_row(&server);
    assert_eq!(rows.len(), 10);
    for (id, seen) in rows {
        assert!(
            seen.windows(2).all(|w| w[0].1 <= w[1].1),
            "row {id} in order: {seen:?}"
        );
        assert_eq!(
            seen.last().unwrap().1,
            5,
            "row {id} ends at its newest state"
        );
    }
});

// Backing-off callbacks (not failed yet) are put back by filter too, each due now; a
// span that ends before it starts is refused.
on_every_backend!(backing_off_callbacks_are_retried_by_filter, |db| {
    let db = db.migrated();
    let server = Server::answering(503);
    db.sql(&format!("CREATE TABLE a ({}, v INTEGER)", db.id_column()));
    db.add_hook("a", "a", "insert", &server.url("/a"), &[]);
    rows(&db, "a", 4);
    db.ok(&["send_callbacks"]);
    assert_eq!(count(&db, "a", "waiting"), 4, "backing off");
    let (code, _, err) = db.run(&[
        "callbacks",
        "retry",
        "--hook",
        "a",
        "--since",
        "1h",
        "--until",
        "2h",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not after --since"), "{err}");
    let out = db.ok(&[
        "callbacks",
        "retry",
        "--hook",
        "a",
        "--status",
        "waiting",
        "--since",
        "1h",
    ]);
    assert!(
        out.starts_with("4 callback(s) waiting again, due now"),
        "{out}"
    );
    let due = db.count(&format!(
        "SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE next_attempt_at <= {} AND attempts = 0",
        db.now_sql()
    ));
    assert_eq!(due, 4);
    db.ok(&["send_callbacks"]);
    assert!(
        deliveries(&server, "/a").values().all(|&n| n == 2),
        "each tried again at once"
    );
});

// A key column without a value, a binary key or a key of the wrong shape: refused
// alike whatever the chunk size, nothing written.
on_every_backend!(a_backfill_refuses_rows_it_cannot_page_through, |db| {
    let db = db.migrated();
    let server = Server::answering(200);
    db.sql("CREATE TABLE nk (a INTEGER NOT NULL, b VARCHAR(20), v INTEGER)");
    db.sql("INSERT INTO nk (a, b, v) VALUES (1, 'x', 0), (1, NULL, 0), (2, 'y', 0)");
    db.add_hook(
        "nk",
        "nk",
        "insert,update",
        &server.url("/nk"),
        &["--key", "a,b"],
    );
    for chunk in ["1", "2", "1000"] {
        let (code, _, err) = db.run(&["hooks", "backfill", "nk", "--chunk-size", chunk]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("1 row(s) of table nk have no value in key column(s) a, b"),
            "{err}"
        );
        assert!(
            err.contains("--where 'a IS NOT NULL AND b IS NOT NULL'"),
            "{err}"
        );
    }
    let out = db.ok(&[
        "hooks",
        "backfill",
        "nk",
        "--where",
        "a IS NOT NULL AND b IS NOT NULL",
    ]);
    assert!(out.starts_with("backfilled 2 row(s)"), "{out}");
    let (code, _, err) = db.run(&[
        "hooks",
        "backfill",
        "nk",
        "--where",
        "b IS NOT NULL",
        "--after",
        "[1]",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("2 key value(s)"), "{err}");
    // A backfilled row's object_id is its changes' (so --ordered and --coalesce see one row).
    db.sql("UPDATE nk SET v = 1 WHERE a = 1 AND b = 'x'");
    let ids = db.count(
        "SELECT COUNT(DISTINCT object_id) AS n FROM httphooks_callbacks WHERE object_id LIKE '[1,%'",
    );
    assert_eq!(ids, 1, "one text for the row [1,\"x\"]");
});
