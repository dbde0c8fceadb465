//! `hooks add|edit --batch-size N`: many callbacks per request, end to end on every
//! backend, against a real receiver on 127.0.0.1.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::server::{Received, Reply, Server};
use common::{json, TestDb};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn items(db: &TestDb, rows: usize) {
    db.sql(&format!(
        "CREATE TABLE items ({}, qty INTEGER)",
        db.id_column()
    ));
    insert_items(db, rows);
}

/// An empty `items` table with a hook `bulk` sending its inserts to `/bulk` with `args`.
fn bulk_items(db: &TestDb, server: &Server, args: &[&str]) {
    items(db, 0);
    db.add_hook("bulk", "items", "insert", &server.url("/bulk"), args);
}

/// Inserts `rows` rows into `items` in one statement.
fn insert_items(db: &TestDb, rows: usize) {
    if rows > 0 {
        let values: Vec<&str> = vec!["(1)"; rows];
        db.sql(&format!(
            "INSERT INTO items (qty) VALUES {}",
            values.join(",")
        ));
    }
}

fn send(db: &TestDb, args: &[&str]) -> String {
    let output = db
        .cmd()
        .arg("send_callbacks")
        .args(args)
        .env("HH_SIGNING", SECRET)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{out}{err}");
    out
}

/// The payloads a request carried: a batch's array.
fn payloads(request: &Received) -> Vec<Value> {
    match json(&request.body) {
        Value::Array(payloads) => payloads,
        other => panic!("a batch hook sends JSON arrays, not {other}"),
    }
}

fn callback_id(payload: &Value) -> i64 {
    payload["event_metadata"]["callback_id"].as_i64().unwrap()
}

fn verifies(request: &Received) -> bool {
    let id = request.header("webhook-id").unwrap();
    let timestamp = request.header("webhook-timestamp").unwrap();
    let key = STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{}", request.body).as_bytes());
    request.header("webhook-signature")
        == Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())).as_str())
}

on_every_backend!(
    a_batch_hook_sends_every_payload_once_in_as_few_requests_as_fit_beside_a_single_hook,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        bulk_items(
            &db,
            &server,
            &["--batch-size", "10", "--signing-secret-env", "HH_SIGNING"],
        );
        db.add_hook("single", "items", "insert", &server.url("/single"), &[]);
        insert_items(&db, 95);
        let out = send(&db, &["--concurrency", "4"]);
        assert!(out.contains("claimed 190, sent 190"), "{out}");

        let received = server.received();
        let (bulk, single): (Vec<&Received>, Vec<&Received>) =
            received.iter().partition(|r| r.path == "/bulk");
        assert_eq!(
            single.len(),
            95,
            "one request per callback without --batch-size"
        );
        assert!(single.iter().all(|r| json(&r.body).is_object()));
        assert_eq!(
            bulk.len(),
            10,
            "95 callbacks in batches of 10: ⌈95/10⌉ requests"
        );
        let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
        for request in &bulk {
            assert_eq!(request.header("content-type"), Some("application/json"));
            assert!(verifies(request), "signed over the whole body");
            let ids: Vec<i64> = payloads(request).iter().map(callback_id).collect();
            assert!(!ids.is_empty() && ids.len() <= 10, "{ids:?}");
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "callback order: {ids:?}"
            );
            // Made of its first and last callbacks' webhook-ids.
            let own_id = |id: i64| {
                let shown =
                    json(&db.ok(&["callbacks", "show", &id.to_string(), "--format", "json"]));
                shown["webhook_id"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("msg_")
                    .to_owned()
            };
            let webhook_id = request.header("webhook-id").unwrap();
            let named = format!("batch_{}_{}_", own_id(ids[0]), own_id(ids[ids.len() - 1]));
            assert!(webhook_id.starts_with(&named), "{webhook_id}");
            let digest = &webhook_id[named.len()..];
            assert!(
                digest.len() == 16 && digest.chars().all(|c| c.is_ascii_hexdigit()),
                "and a digest of its callbacks: {webhook_id}"
            );
            for id in ids {
                *seen.entry(id).or_default() += 1;
            }
        }
        assert_eq!(seen.len(), 95, "every payload");
        assert!(seen.values().all(|&n| n == 1), "exactly once: {seen:?}");

        // `callbacks show` names the batch, and keeps the callback's own payload.
        let (&member, _) = seen.iter().nth(4).unwrap();
        let shown = json(&db.ok(&["callbacks", "show", &member.to_string(), "--format", "json"]));
        assert_eq!(shown["status"], "sent");
        let attempt = &shown["attempts_log"][0];
        let batch = attempt["batch"].as_str().unwrap();
        assert!(
            batch.starts_with("batch_") && batch.contains(" of "),
            "{batch}"
        );
        let own = json(attempt["request"]["body"].as_str().unwrap());
        assert_eq!(callback_id(&own), member);
        let text = db.ok(&["callbacks", "show", &member.to_string()]);
        assert!(text.contains(&format!("in {batch}")), "{text}");
        let single_id = callback_id(&json(&single[0].body));
        let shown = json(&db.ok(&[
            "callbacks",
            "show",
            &single_id.to_string(),
            "--format",
            "json",
        ]));
        assert!(shown["attempts_log"][0].get("batch").is_none(), "{shown}");
        assert_eq!(
            json(&db.ok(&["hooks", "show", "bulk", "--format", "json"]))["batch_size"],
            10
        );
    }
);

on_every_backend!(
    a_batchs_answer_is_recorded_once_and_shown_with_each_of_its_callbacks,
    |db| {
        let db = db.migrated();
        // Two answers of 20 KiB: a 500, then a 200, each naming its request.
        let requests = Arc::new(AtomicU16::new(0));
        let counter = Arc::clone(&requests);
        let server = Server::start(move |_| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let status = if n == 0 { 500 } else { 200 };
            Reply::WithHeaders(
                status,
                Vec::new(),
                format!("answer {n} {}", "y".repeat(20_000)),
            )
        });
        bulk_items(&db, &server, &["--batch-size", "10"]);
        insert_items(&db, 10);
        let out = send(&db, &[]);
        assert!(out.contains("retried 10"), "{out}");
        db.ok(&[
            "callbacks",
            "retry",
            "--hook",
            "bulk",
            "--status",
            "waiting",
        ]);
        let out = send(&db, &[]);
        assert!(out.contains("sent 10"), "{out}");
        assert_eq!(server.received().len(), 2);

        // 20 attempts, two answers stored: with the batch's first callback.
        let stored = |filter: &str| {
            db.count(&format!(
                "SELECT COUNT(*) AS n FROM httphooks_attempts WHERE {filter}"
            ))
        };
        assert_eq!(stored("1 = 1"), 20);
        assert_eq!(stored("response_body IS NOT NULL"), 2);
        let first = db.count("SELECT MIN(id) AS n FROM httphooks_callbacks");
        let last = db.count("SELECT MAX(id) AS n FROM httphooks_callbacks");
        assert_eq!(
            stored(&format!(
                "response_body IS NOT NULL AND callback_id = {first}"
            )),
            2
        );

        // Every callback shows each attempt's own answer.
        for id in [first, last] {
            let shown = json(&db.ok(&["callbacks", "show", &id.to_string(), "--format", "json"]));
            let log = shown["attempts_log"].as_array().unwrap();
            assert_eq!(log.len(), 2);
            for (n, attempt) in log.iter().enumerate() {
                let response = &attempt["response"];
                assert_eq!(response["status_code"], if n == 0 { 500 } else { 200 });
                let body = response["body"].as_str().unwrap();
                assert!(
                    body.starts_with(&format!("answer {n} yyy")),
                    "{id}: {body:.40}"
                );
                assert_eq!(body.len(), 20_009);
            }
        }
        let text = db.ok(&["callbacks", "show", &last.to_string()]);
        assert!(
            text.contains("< answer 0 yyy") && text.contains("< answer 1 yyy"),
            "{text}"
        );

        // Deleted by hand, the first callback takes the answer with it; the others say so.
        db.sql(&format!(
            "DELETE FROM httphooks_attempts WHERE callback_id = {first}"
        ));
        db.sql(&format!(
            "DELETE FROM httphooks_callbacks WHERE id = {first}"
        ));
        let shown = json(&db.ok(&["callbacks", "show", &last.to_string(), "--format", "json"]));
        let response = &shown["attempts_log"][1]["response"];
        assert_eq!(response["body"], Value::Null);
        assert_eq!(response["body_recorded_with_callback"], first);
        let text = db.ok(&["callbacks", "show", &last.to_string()]);
        assert!(
            text.contains(&format!(
                "< (the batch's answer was stored with callback {first}, which no longer has it)"
            )),
            "{text}"
        );
    }
);

on_every_backend!(
    delete_old_callbacks_keeps_a_batchs_answer_for_the_callbacks_it_keeps,
    |db| {
        let db = db.migrated();
        // A 400 that says why, to the batch; then a 500 to one callback retried alone.
        let requests = Arc::new(AtomicU16::new(0));
        let counter = Arc::clone(&requests);
        let server = Server::start(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::WithHeaders(400, Vec::new(), "BAD-FIELD qty".to_owned()),
            _ => Reply::WithHeaders(500, Vec::new(), "RETRY-FAIL".to_owned()),
        });
        bulk_items(&db, &server, &["--batch-size", "5"]);
        insert_items(&db, 4);
        let out = send(&db, &[]);
        assert!(out.contains("failed 4"), "{out}");
        let first = db.count("SELECT MIN(id) AS n FROM httphooks_callbacks");
        let kept = first + 1;
        db.ok(&["callbacks", "retry", &kept.to_string()]);
        let out = send(&db, &[]);
        assert!(out.contains("retried 1"), "{out}");

        // The three that failed for good go, the answer's holder with them.
        let out = db.ok(&["delete_old_callbacks", "0"]);
        assert!(out.contains('3'), "{out}");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"), 1);
        let shown = json(&db.ok(&["callbacks", "show", &kept.to_string(), "--format", "json"]));
        let log = shown["attempts_log"].as_array().unwrap();
        assert_eq!(log[0]["response"]["body"], "BAD-FIELD qty", "{shown}");
        assert_eq!(log[1]["response"]["body"], "RETRY-FAIL", "{shown}");
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM httphooks_attempts WHERE response_body_callback_id IS NOT NULL"),
            0
        );
    }
);

on_every_backend!(
    delete_old_callbacks_keeps_the_answer_of_a_first_callback_deleted_in_flight,
    |db| {
        let db = db.migrated();
        let server = Server::start(|_| Reply::WithHeaders(503, Vec::new(), "BUSY-1".to_owned()));
        bulk_items(&db, &server, &["--batch-size", "5"]);
        insert_items(&db, 5);
        let out = send(&db, &[]);
        assert!(out.contains("retried 5"), "{out}");
        // As when `delete_old_callbacks --include-waiting` deletes a callback a run is
        // sending: its attempts are recorded after it is gone.
        let first = db.count("SELECT MIN(id) AS n FROM httphooks_callbacks");
        db.sql(&format!(
            "DELETE FROM httphooks_callbacks WHERE id = {first}"
        ));
        let out = db.ok(&["delete_old_callbacks", "1"]);
        assert!(out.contains("deleted 0"), "{out}");
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) AS n FROM httphooks_attempts WHERE callback_id = {first}"
            )),
            0,
            "the gone callback's attempts are deleted"
        );
        let shown = json(&db.ok(&[
            "callbacks",
            "show",
            &(first + 1).to_string(),
            "--format",
            "json",
        ]));
        assert_eq!(
            shown["attempts_log"][0]["response"]["body"], "BUSY-1",
            "{shown}"
        );
    }
);

on_every_backend!(
    an_ordered_batch_hook_keeps_each_rows_changes_in_order,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        items(&db, 0);
        db.add_hook(
            "ordered",
            "items",
            "insert,update",
            &server.url("/o"),
            &["--batch-size", "4", "--ordered"],
        );
        db.sql("INSERT INTO items (qty) VALUES (0),(0),(0),(0),(0),(0),(0),(0),(0),(0)");
        for qty in 1..=3 {
            db.sql(&format!("UPDATE items SET qty = {qty}"));
        }
        let out = send(&db, &["--concurrency", "4"]);
        assert!(out.contains("sent 40"), "{out}");
        let mut received = server.received();
        received.sort_by_key(|r| r.at);
        let mut last_qty: BTreeMap<i64, i64> = BTreeMap::new();
        let mut count = 0;
        for request in &received {
            let batch = payloads(request);
            assert!(batch.len() <= 4);
            for payload in batch {
                let row = payload["object_id"].to_string();
                let row: i64 = row.trim_matches('"').parse().unwrap();
                let qty = payload["object_serialization"]["qty"].as_i64().unwrap();
                if let Some(before) = last_qty.insert(row, qty) {
                    assert_eq!(qty, before + 1, "row {row}: its changes in order");
                }
                count += 1;
            }
        }
        assert_eq!(count, 40);
    }
);

on_every_backend!(
    a_failed_batch_is_retried_whole_and_a_410_fails_every_callback,
    |db| {
        let db = db.migrated();
        let status = Arc::new(AtomicU16::new(500));
        let answer = Arc::clone(&status);
        let server = Server::start(move |request| {
            if request.path == "/gone" {
                Reply::Status(410)
            } else {
                Reply::Status(answer.load(Ordering::SeqCst))
            }
        });
        items(&db, 0);
        db.add_hook(
            "flaky",
            "items",
            "insert",
            &server.url("/flaky"),
            &["--batch-size", "5"],
        );
        db.add_hook(
            "gone",
            "items",
            "insert",
            &server.url("/gone"),
            &["--batch-size", "5"],
        );
        db.sql("INSERT INTO items (qty) VALUES (1),(2),(3),(4),(5)");
        let out = send(&db, &[]);
        assert!(out.contains("retried 5, failed 5"), "{out}");
        assert_eq!(server.received().len(), 2, "one request per hook");

        let list = |hook: &str, status: &str| -> Vec<Value> {
            json(&db.ok(&[
                "callbacks",
                "list",
                "--hook",
                hook,
                "--status",
                status,
                "--format",
                "json",
            ]))
            .as_array()
            .unwrap()
            .clone()
        };
        assert_eq!(
            list("gone", "error").len(),
            5,
            "a 410 to a batch fails each callback"
        );
        let waiting = list("flaky", "waiting");
        assert_eq!(waiting.len(), 5);
        let due: Vec<&Value> = waiting.iter().map(|c| &c["next_attempt_at"]).collect();
        assert!(
            due.iter().all(|d| *d == due[0]),
            "the batch comes due together: {due:?}"
        );

        status.store(200, Ordering::SeqCst);
        db.ok(&[
            "callbacks",
            "retry",
            "--hook",
            "flaky",
            "--status",
            "waiting",
        ]);
        let out = send(&db, &[]);
        assert!(out.contains("sent 5"), "{out}");
        let flaky: Vec<Received> = server
            .received()
            .into_iter()
            .filter(|r| r.path == "/flaky")
            .collect();
        assert_eq!(flaky.len(), 2, "the whole batch again, in one request");
        assert_eq!(flaky[0].body, flaky[1].body, "the same bytes");
        assert_eq!(flaky[0].header("webhook-id"), flaky[1].header("webhook-id"));
        let shown = json(&db.ok(&["callbacks", "show", "3", "--format", "json"]));
        assert_eq!(shown["attempts_log"].as_array().unwrap().len(), 2);
    }
);

on_every_backend!(
    a_batch_holds_its_callbacks_in_creation_order_and_older_content_types_go_alone_as_made,
    |db| {
        let db = db.migrated();
        let status = Arc::new(AtomicU16::new(500));
        let answer = Arc::clone(&status);
        let server = Server::start(move |_| Reply::Status(answer.load(Ordering::SeqCst)));
        items(&db, 0);
        let form = "application/x-www-form-urlencoded";
        db.add_hook(
            "h",
            "items",
            "insert",
            &server.url("/h"),
            &["--content-type", form],
        );
        db.sql("INSERT INTO items (qty) VALUES (1),(2)");
        db.ok(&[
            "hooks",
            "edit",
            "h",
            "--content-type",
            "application/json",
            "--batch-size",
            "10",
        ]);
        db.sql("INSERT INTO items (qty) VALUES (3),(4),(5)");
        let listed = json(&db.ok(&["callbacks", "list", "--format", "json"]));
        let mut made: Vec<(i64, String)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_i64().unwrap(),
                    c["content_type"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        made.sort();
        let json_ids: Vec<i64> = made
            .iter()
            .filter(|(_, type_)| type_ == "application/json")
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(json_ids.len(), 3, "{made:?}");
        // The middle one fails alone, so it comes due after the others.
        let middle = json_ids[1].to_string();
        let out = send(&db, &["--callback", &middle]);
        assert!(out.contains("retried 1"), "{out}");
        db.ok(&["callbacks", "retry", &middle]);
        status.store(200, Ordering::SeqCst);
        let metrics = tempfile::tempdir().unwrap();
        let file = metrics.path().join("m.prom");
        let out = send(&db, &["--metrics-file", file.to_str().unwrap()]);
        assert!(out.contains("sent 5"), "{out}");

        let received = server.received();
        assert_eq!(
            received.len(),
            4,
            "the failed one, two form bodies alone, one batch: {:?}",
            received
                .iter()
                .map(|r| (r.header("content-type").map(str::to_owned), r.body.clone()))
                .collect::<Vec<_>>()
        );
        for request in &received[1..] {
            match request.header("content-type") {
                Some(type_) if type_ == form => {
                    assert!(
                        request.body.starts_with("event_type=insert"),
                        "{}",
                        request.body
                    )
                }
                Some("application/json") => {
                    let ids: Vec<i64> = payloads(request).iter().map(callback_id).collect();
                    assert_eq!(ids, json_ids, "in the order they were made");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            received[1..]
                .iter()
                .filter(|r| r.header("content-type") == Some(form))
                .count(),
            2,
            "callbacks keep the content type they were made with"
        );
        // The run made three requests, not five.
        let metrics = std::fs::read_to_string(&file).unwrap();
        let requests: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("httphooks_request_duration_seconds_count"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert_eq!(requests, 3.0, "{metrics}");
    }
);

/// The batches requests carried, in the order they arrived: their callbacks' ids.
fn batches_received(server: &Server) -> Vec<Vec<i64>> {
    let mut received = server.received();
    received.sort_by_key(|r| r.at);
    received
        .iter()
        .map(|r| payloads(r).iter().map(callback_id).collect())
        .collect()
}

on_every_backend!(
    a_runs_first_batches_are_full_ones_at_any_concurrency_and_under_a_limit,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        bulk_items(&db, &server, &["--batch-size", "100"]);
        insert_items(&db, 250);
        // Before it has claimed one of them, a run does not know the hook sends 100 per
        // request: its first claim is sized for single requests.
        let out = send(&db, &["--limit", "100", "--concurrency", "1"]);
        assert!(out.contains("claimed 100, sent 100"), "{out}");
        let sizes = |batches: &[Vec<i64>]| batches.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(
            sizes(&batches_received(&server)),
            [100],
            "--limit 100: one batch"
        );
        let out = send(&db, &["--concurrency", "2"]);
        assert!(out.contains("claimed 150, sent 150"), "{out}");
        let batches = batches_received(&server);
        assert_eq!(sizes(&batches), [100, 100, 50], "⌈250/100⌉ requests");
        let mut ids: Vec<i64> = batches.concat();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 250, "every payload once");
    }
);

on_every_backend!(a_batch_stays_within_the_hooks_max_payload_size, |db| {
    let db = db.migrated();
    let server = Server::answering(200);
    db.sql(&format!(
        "CREATE TABLE items ({}, note VARCHAR(2000))",
        db.id_column()
    ));
    db.add_hook(
        "bulk",
        "items",
        "insert",
        &server.url("/bulk"),
        &["--batch-size", "100", "--max-payload-size", "2KB"],
    );
    // Small rows, and now and then one that takes most of the limit alone.
    let big = "x".repeat(1500);
    let rows: Vec<String> = (0..30)
        .map(|n| match n % 10 {
            4 => format!("('{big}')"),
            _ => "('small')".to_owned(),
        })
        .collect();
    db.sql(&format!(
        "INSERT INTO items (note) VALUES {}",
        rows.join(",")
    ));
    let out = send(&db, &[]);
    assert!(
        out.contains("claimed 30, sent 30, retried 0, failed 0"),
        "{out}"
    );
    let received = server.received();
    for request in &received {
        assert!(
            request.body.len() <= 2048,
            "a request of {} bytes, over the hook's 2 KB",
            request.body.len()
        );
    }
    let batches = batches_received(&server);
    assert!(
        batches.iter().any(|b| b.len() > 1),
        "small ones still go together: {batches:?}"
    );
    let mut ids: Vec<i64> = batches.concat();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "every payload once");
});

on_every_backend!(
    a_batch_hooks_callback_fits_its_limit_with_the_arrays_brackets_or_fails_alone,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        db.sql(&format!(
            "CREATE TABLE notes ({}, note VARCHAR(4000))",
            db.id_column()
        ));
        // The template pads the body, so that the change's data stays under the limit
        // where the body does not.
        let pad = "p".repeat(200);
        let body = |note: &str| format!(r#"{{"n": "{note}", "p": "{pad}"}}"#);
        let template = body("{{ instance.note }}");
        db.add_hook(
            "bulk",
            "notes",
            "insert",
            &server.url("/bulk"),
            &[
                "--batch-size",
                "10",
                "--max-payload-size",
                "2KB",
                "--template",
                &template,
            ],
        );
        let room = 2048 - 2 - body("").len();
        let fits = "f".repeat(room);
        let over = "o".repeat(room + 1);
        assert_eq!(body(&over).len() + 2, 2049);
        db.sql(&format!(
            "INSERT INTO notes (note) VALUES ('{fits}'), ('{over}'), ('small')"
        ));
        let out = send(&db, &[]);
        assert!(out.contains("sent 2, retried 0, failed 1"), "{out}");
        let received = server.received();
        let largest = received.iter().map(|r| r.body.len()).max().unwrap();
        assert_eq!(
            largest, 2048,
            "a batch of one that just fits, brackets and all"
        );
        let failed = json(&db.ok(&["callbacks", "list", "--status", "error", "--format", "json"]));
        let details = failed[0]["status_details"].as_str().unwrap();
        assert!(
            details.contains("the body in its batch's brackets is 2.0 KB (2049 bytes)"),
            "{details}"
        );
        assert!(
            received.iter().all(|r| !r.body.contains("ooo")),
            "never sent"
        );
    }
);

#[test]
fn batch_sizes_that_cannot_work_are_refused_and_nothing_is_written() {
    let db = TestDb::sqlite().migrated();
    items(&db, 0);
    for (args, says) in [
        (
            vec!["--batch-size", "0"],
            "--batch-size must be between 1 and 1000",
        ),
        (
            vec!["--batch-size", "1001"],
            "--batch-size must be between 1 and 1000",
        ),
        (
            vec!["--batch-size", "-1"],
            "--batch-size must be between 1 and 1000",
        ),
        (
            vec![
                "--batch-size",
                "5",
                "--content-type",
                "application/x-www-form-urlencoded",
            ],
            "needs --content-type application/json",
        ),
        (
            vec!["--batch-size", "5", "--method", "GET"],
            "GET does not carry",
        ),
    ] {
        let mut full = vec![
            "hooks", "add", "b", "--table", "items", "--events", "insert",
        ];
        full.extend(["--url", "http://127.0.0.1:9/b"]);
        full.extend(args.iter().copied());
        let (code, out, err) = db.run(&full);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    }
    assert_eq!(db.count("SELECT count(*) AS n FROM httphooks_hooks"), 0);
    db.add_hook(
        "b",
        "items",
        "insert",
        "http://127.0.0.1:9/b",
        &["--batch-size", "5"],
    );
    let (code, _, err) = db.run(&[
        "hooks",
        "edit",
        "b",
        "--content-type",
        "application/xml",
        "--template",
        "<a/>",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("needs --content-type application/json"),
        "{err}"
    );
    let shown = json(&db.ok(&["hooks", "show", "b", "--format", "json"]));
    assert_eq!(shown["content_type"], "application/json", "unchanged");
    assert_eq!(shown["batch_size"], 5);
}

/// The requests `send_callbacks --dry-run` printed: each one's heading lines and body.
fn dry_run_requests(printed: &str) -> Vec<(String, String)> {
    let mut requests = Vec::new();
    let mut heading = String::new();
    let mut lines = printed.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            heading.clear();
        } else if line.starts_with('#') {
            heading.push_str(line);
            heading.push('\n');
        } else if line.starts_with("POST ") {
            heading.push_str(line);
            heading.push('\n');
            // Headers up to a blank line, then the body's one line.
            for header in lines.by_ref() {
                if header.is_empty() {
                    break;
                }
                heading.push_str(header);
                heading.push('\n');
            }
            let body = lines.next().unwrap_or_default().to_owned();
            requests.push((std::mem::take(&mut heading), body));
        }
    }
    requests
}

on_every_backend!(
    a_dry_run_shows_the_requests_a_run_sends_batches_and_failures_included,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        bulk_items(&db, &server, &["--batch-size", "3"]);
        db.add_hook("single", "items", "insert", &server.url("/single"), &[]);
        // Its body (1.1 KB) is more than it allows: a run fails it unsent.
        let padded = format!(
            r#"{{"id": {{{{ instance.id }}}}, "p": "{}"}}"#,
            "p".repeat(1100)
        );
        db.add_hook(
            "tiny",
            "items",
            "insert",
            &server.url("/tiny"),
            &["--max-payload-size", "1KB", "--template", &padded],
        );
        insert_items(&db, 4);
        let out = db.ok(&["send_callbacks", "--dry-run"]);
        assert!(
            out.contains("dry run: 12 callback(s) due, 6 request(s); nothing was sent or changed"),
            "{out}"
        );
        assert_eq!(
            out.matches("# would fail: hook tiny (table items, row ")
                .count(),
            4,
            "{out}"
        );
        assert!(out.contains("the body is "), "{out}");
        let shown = dry_run_requests(&out);
        let batches: Vec<&(String, String)> = shown
            .iter()
            .filter(|(heading, _)| heading.contains(&format!("POST {}\n", server.url("/bulk"))))
            .collect();
        assert_eq!(batches.len(), 2, "4 callbacks in batches of 3: {out}");
        assert!(
            batches[0].0.contains(
                "# a request of 3 callback(s) of hook bulk (--batch-size 3), a JSON array in this order:"
            ),
            "{out}"
        );
        assert!(
            batches[1].0.contains("# a request of 1 callback(s)"),
            "{out}"
        );
        assert!(server.received().is_empty(), "nothing sent");

        // A run then sends exactly those requests: the same ids, the same bodies.
        let sent = send(&db, &[]);
        assert!(sent.contains("sent 8, retried 0, failed 4"), "{sent}");
        let mut received: Vec<Received> = server
            .received()
            .into_iter()
            .filter(|r| r.path == "/bulk")
            .collect();
        received.sort_by_key(|r| r.at);
        assert_eq!(received.len(), 2);
        for (request, (heading, body)) in received.iter().zip(&batches) {
            let id = request.header("webhook-id").unwrap();
            assert!(
                heading.contains(&format!("webhook-id: {id}\n")),
                "{heading}"
            );
            assert_eq!(&request.body, body);
        }

        // Under --limit, too: the oldest N, in the same requests, beside other hooks.
        let since = std::time::Instant::now();
        insert_items(&db, 10);
        let out = db.ok(&["send_callbacks", "--dry-run", "--limit", "16"]);
        assert!(
            out.contains("dry run: the first 16 due callback(s) (--limit), "),
            "{out}"
        );
        let webhook_ids = |mut ids: Vec<String>| {
            ids.sort();
            ids
        };
        let shown = webhook_ids(
            dry_run_requests(&out)
                .iter()
                .map(|(heading, _)| {
                    let at = heading.find("webhook-id: ").unwrap() + "webhook-id: ".len();
                    heading[at..].lines().next().unwrap().to_owned()
                })
                .collect(),
        );
        let sent = send(&db, &["--limit", "16"]);
        assert!(sent.contains("claimed 16"), "{sent}");
        let received = webhook_ids(
            server
                .received()
                .iter()
                .filter(|r| r.at >= since)
                .map(|r| r.header("webhook-id").unwrap().to_owned())
                .collect(),
        );
        assert_eq!(received, shown, "{out}");
    }
);

on_every_backend!(
    batch_hooks_sharing_a_backlog_with_other_hooks_send_full_batches_at_any_concurrency,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        bulk_items(&db, &server, &["--batch-size", "100"]);
        db.add_hook(
            "few",
            "items",
            "insert",
            &server.url("/few"),
            &["--batch-size", "7"],
        );
        db.add_hook("single", "items", "insert", &server.url("/single"), &[]);
        for concurrency in ["1", "4"] {
            let since = std::time::Instant::now();
            let requests = |path: &str| {
                server
                    .received()
                    .iter()
                    .filter(|r| r.path == path && r.at >= since)
                    .count()
            };
            // Each row's three callbacks one after the other in the queue.
            insert_items(&db, 1037);
            let out = send(&db, &["--concurrency", concurrency]);
            assert!(out.contains("claimed 3111, sent 3111"), "{out}");
            assert_eq!(requests("/single"), 1037);
            assert_eq!(
                (requests("/bulk"), requests("/few")),
                (11, 149),
                "⌈1037/100⌉ and ⌈1037/7⌉ requests at --concurrency {concurrency}"
            );
        }
    }
);

on_every_backend!(
    a_short_batch_is_not_held_back_by_another_hooks_backlog,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        bulk_items(&db, &server, &["--batch-size", "100"]);
        db.sql(&format!(
            "CREATE TABLE others ({}, qty INTEGER)",
            db.id_column()
        ));
        db.add_hook("other", "others", "insert", &server.url("/other"), &[]);
        // Five for the batch hook at the head of the queue, then the other's backlog.
        insert_items(&db, 5);
        let values: Vec<&str> = vec!["(1)"; 1000];
        for _ in 0..20 {
            db.sql(&format!(
                "INSERT INTO others (qty) VALUES {}",
                values.join(",")
            ));
        }
        let started = std::time::Instant::now();
        let out = send(&db, &["--concurrency", "16"]);
        let run = started.elapsed();
        assert!(out.contains("claimed 20005, sent 20005"), "{out}");
        let batch = server
            .received()
            .into_iter()
            .find(|r| r.path == "/bulk")
            .expect("the batch was sent");
        assert_eq!(payloads(&batch).len(), 5);
        let waited = batch.at.duration_since(started);
        assert!(
            waited < run / 2,
            "the batch went {waited:?} into a run of {run:?}, not soon"
        );
    }
);

on_every_backend!(a_dry_run_says_when_it_shows_only_the_first_thousand, |db| {
    let db = db.migrated();
    let server = Server::answering(200);
    bulk_items(&db, &server, &["--batch-size", "100"]);
    insert_items(&db, 1001);
    let out = db.ok(&["send_callbacks", "--dry-run"]);
    assert!(
        out.contains(
            "dry run: the first 1000 due callback(s), and more are due (--limit N shows more;"
        ),
        "{}",
        out.lines().last().unwrap_or_default()
    );
    assert!(out
        .trim_end()
        .ends_with("10 request(s); nothing was sent or changed"));
    let out = db.ok(&["send_callbacks", "--dry-run", "--limit", "2000"]);
    assert!(
        out.contains("dry run: 1001 callback(s) due, 11 request(s);"),
        "{}",
        out.lines().last().unwrap_or_default()
    );
    assert!(server.received().is_empty());
});

on_every_backend!(
    a_hanging_batch_receiver_and_a_429_hold_back_only_their_own_batches,
    |db| {
        let db = db.migrated();
        let server = Server::start(|request| match request.path.as_str() {
            "/hang" => Reply::Hang,
            "/busy" => Reply::WithHeaders(
                429,
                vec![("Retry-After".to_owned(), "120".to_owned())],
                String::new(),
            ),
            _ => Reply::Status(200),
        });
        items(&db, 0);
        for (name, path) in [("hang", "/hang"), ("busy", "/busy"), ("ok", "/ok")] {
            db.add_hook(
                name,
                "items",
                "insert",
                &server.url(path),
                &["--batch-size", "5", "--timeout", "1s"],
            );
        }
        insert_items(&db, 10);
        let started = std::time::Instant::now();
        let out = send(&db, &["--max-runtime", "30s"]);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "a hanging receiver holds the run only for its timeout: {out}"
        );
        assert!(out.contains("sent 10, retried 20, failed 0"), "{out}");
        let received = server.received();
        let requests = |path: &str| received.iter().filter(|r| r.path == path).count();
        assert_eq!(
            (requests("/ok"), requests("/busy"), requests("/hang")),
            (2, 2, 2),
            "one request per batch of 5"
        );
        let waiting = |hook: &str| -> Vec<Value> {
            json(&db.ok(&[
                "callbacks",
                "list",
                "--hook",
                hook,
                "--status",
                "waiting",
                "--format",
                "json",
            ]))
            .as_array()
            .unwrap()
            .clone()
        };
        // The 429's Retry-After holds every callback of its batches for two minutes.
        let now = chrono::Utc::now();
        let busy = waiting("busy");
        assert_eq!(busy.len(), 10);
        for callback in busy {
            let due =
                chrono::DateTime::parse_from_rfc3339(callback["next_attempt_at"].as_str().unwrap())
                    .unwrap();
            assert!(due > now + chrono::Duration::seconds(100), "{callback}");
        }
        let hung = waiting("hang");
        assert_eq!(hung.len(), 10);
        let id = hung[0]["id"].as_i64().unwrap().to_string();
        let shown = json(&db.ok(&["callbacks", "show", &id, "--format", "json"]));
        let attempt = &shown["attempts_log"][0];
        assert_eq!(attempt["error"]["kind"], "timeout", "{attempt}");
        assert!(attempt["batch"].as_str().unwrap().starts_with("batch_"));
    }
);
