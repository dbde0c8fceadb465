//! What an operator does on a bad day, where a careless answer would send a callback
//! twice, lose one, or mislead: removing a hook while a run sends its callbacks,
//! retrying what cannot be sent, a receiver's answer printed to a terminal, a row changed
//! by hand, a hook whose name reads as an id, several environment variables missing at
//! once, editing one setting of an authentication.

mod common;

use std::time::Duration;

use common::server::{Reply, Server};
use common::{json, TestDb};

fn table(db: &TestDb) {
    db.sql(&format!("CREATE TABLE t ({}, v TEXT)", db.id_column()));
}

fn insert(db: &TestDb, n: usize) {
    for i in 0..n {
        db.sql(&format!("INSERT INTO t (v) VALUES ('v{i}')"));
    }
}

fn callbacks_json(db: &TestDb) -> Vec<serde_json::Value> {
    json(&db.ok(&["callbacks", "list", "--format", "json", "--limit", "1000"]))
        .as_array()
        .unwrap()
        .clone()
}

// `hooks remove --force` while a run sends the hook's callbacks: what the run sent is
// recorded as sent (the removal waits for it), the rest is cancelled, and nothing is
// sent after the removal returns.
on_every_backend!(
    removing_a_hook_during_a_run_cancels_nothing_that_was_sent,
    |db| {
        let db = db.migrated();
        table(&db);
        let server = Server::start(|_| Reply::Slow(Duration::from_millis(150)));
        db.add_hook("slow", "t", "insert", &server.url("/slow"), &[]);
        insert(&db, 20);
        let run = db.spawn(&["send_callbacks", "--concurrency", "1"]);
        std::thread::sleep(Duration::from_millis(700));
        let (code, out, err) = db.run(&["hooks", "remove", "slow", "--force"]);
        assert_eq!(code, 0, "{out}{err}");
        let received_at_removal = server.received().len();
        let output = run.wait_with_output().unwrap();
        assert!(output.status.success());
        let all = callbacks_json(&db);
        let sent = all.iter().filter(|c| c["status"] == "sent").count();
        let cancelled = all
            .iter()
            .filter(|c| c["status_details"] == "cancelled: hook slow was removed")
            .count();
        assert!(sent >= 2, "some went out before the removal: {sent}");
        assert_eq!(
            sent,
            server.received().len(),
            "every request is recorded as sent"
        );
        assert_eq!(
            sent, received_at_removal,
            "nothing went out after the removal"
        );
        assert_eq!(sent + cancelled, 20);
    }
);

// A callback that cannot be sent is not put back to wait for ever: its hook was removed,
// or its hook's template still does not fit its row (`--with-current-hook`); either
// refusal changes nothing, and explain does not suggest a retry that cannot work.
on_every_backend!(
    a_retry_that_cannot_send_is_refused_and_changes_nothing,
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
        db.sql("INSERT INTO orders (customer) VALUES ('Ann')");
        assert!(db.ok(&["send_callbacks"]).contains("sent 1"));
        // The column is renamed, and the template with it: the stored row still has
        // the old name, which the new template cannot fill.
        db.sql("ALTER TABLE orders RENAME COLUMN customer TO client");
        db.ok(&[
            "hooks",
            "edit",
            "orders",
            "--template",
            r#"{"who": "{{ instance.client }}"}"#,
        ]);
        let (code, _, err) = db.run(&["callbacks", "retry", "1", "--force", "--with-current-hook"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("callback 1 cannot be rendered with hook orders's current template")
                && err.contains("instance.client: the row has no column client")
                && err.contains("nothing was changed"),
            "{err}"
        );
        let callback = json(&db.ok(&["callbacks", "show", "1", "--format", "json"]));
        assert_eq!(callback["status"], "sent");
        assert_eq!(
            callback["payload"], r#"{"who": "Ann"}"#,
            "the body sent is kept"
        );
        // A removed hook's callback: cancelled, and not to be retried.
        db.sql("INSERT INTO orders (client) VALUES ('Bo')");
        db.ok(&["hooks", "remove", "orders", "--force"]);
        let (code, _, err) = db.run(&["callbacks", "retry", "2"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("hook orders, which was removed"), "{err}");
        let explained = db.ok(&["callbacks", "explain", "2"]);
        assert!(
            explained.contains("its hook was removed") && !explained.contains("callbacks retry"),
            "{explained}"
        );
        let (code, out, _) = db.run(&[
            "monitor_callbacks",
            "--status",
            "waiting",
            "--callbacks_limit",
            "0",
        ]);
        assert_eq!(code, 0, "nothing waits: {out}");
    }
);

// What a receiver answers is shown as data: its cookies redacted, in records and in
// `hooks test`; control characters escaped on a terminal, so an answer cannot clear
// the screen or fake a line.
on_every_backend!(
    a_receivers_answer_cannot_leak_cookies_or_drive_the_terminal,
    |db| {
        let db = db.migrated();
        table(&db);
        let server = Server::start(|_| {
            Reply::WithHeaders(
                200,
                vec![("Set-Cookie".into(), "session=s3cr3t".into())],
                "\u{1b}[2J\u{1b}[31mFAKE\u{7}\r".into(),
            )
        });
        db.add_hook("h", "t", "insert", &server.url("/h"), &[]);
        insert(&db, 1);
        db.ok(&["send_callbacks"]);
        for output in [
            db.ok(&["callbacks", "show", "1"]),
            db.ok(&["callbacks", "show", "1", "--format", "json"]),
            db.ok(&["hooks", "test", "h"]),
        ] {
            assert!(!output.contains("s3cr3t"), "{output}");
            assert!(
                output
                    .to_ascii_lowercase()
                    .contains("set-cookie: [redacted]")
                    || output.contains(r#""set-cookie","[redacted]""#)
                    || output.contains("[redacted]"),
                "{output}"
            );
            assert!(
                !output.contains('\u{1b}') && !output.contains('\u{7}'),
                "{output:?}"
            );
        }
        let shown = db.ok(&["callbacks", "show", "1"]);
        assert!(shown.contains(r"\u{1b}[2J"), "{shown}");
    }
);

// A row whose status was changed by hand to a name httphooks does not write: commands
// that read it say what is wrong and how to put it right.
on_every_backend!(a_status_changed_by_hand_is_named_with_its_fix, |db| {
    let db = db.migrated();
    table(&db);
    db.add_hook("h", "t", "insert", "http://127.0.0.1:9/", &[]);
    insert(&db, 1);
    db.admit();
    db.sql("UPDATE httphooks_callbacks SET status = 'bogus'");
    let (code, _, err) = db.run(&["callbacks", "list"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(r#"a callback has status "bogus""#)
            && err.contains("UPDATE httphooks_callbacks SET status = 'error'"),
        "{err}"
    );
    db.connect().sql(
        "UPDATE httphooks_callbacks SET status = 'error' WHERE status NOT IN ('waiting', 'sent', 'error')",
    );
    db.ok(&["callbacks", "list"]);
});

// `--hook_id 2` means the hook with id 2 or the hook named 2: a hook may not be named so.
on_every_backend!(a_hook_name_that_reads_as_an_id_is_refused, |db| {
    let db = db.migrated();
    for args in [
        vec![
            "hooks",
            "add",
            "2",
            "--events",
            "e",
            "--url",
            "http://127.0.0.1:9/",
        ],
        vec![
            "hooks",
            "add",
            " 17 ",
            "--events",
            "e",
            "--url",
            "http://127.0.0.1:9/",
        ],
    ] {
        let (code, _, err) = db.run(&args);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("cannot be a number"), "{err}");
    }
    db.ok(&[
        "hooks",
        "add",
        "a",
        "--events",
        "e",
        "--url",
        "http://127.0.0.1:9/",
    ]);
    let (code, _, err) = db.run(&["hooks", "edit", "a", "--rename", "3"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_hooks WHERE name = 'a'"),
        1
    );
});

// Every variable a hook lacks is named at once (not one per run), by a run and by a dry
// run, which fails as the run would.
on_every_backend!(every_missing_variable_is_named_at_once, |db| {
    let db = db.migrated();
    table(&db);
    db.add_hook(
        "h",
        "t",
        "insert",
        "http://127.0.0.1:9/",
        &[
            "--header",
            "X-Key: ${HH_TEST_KEY}",
            "--auth",
            "bearer",
            "--token-env",
            "HH_TEST_TOKEN",
            "--signing-secret-env",
            "HH_TEST_SIGNING",
        ],
    );
    insert(&db, 1);
    for args in [vec!["send_callbacks", "--dry-run"], vec!["send_callbacks"]] {
        let (code, _, err) = db.run(&args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(
            err.contains(
                "HH_TEST_KEY, HH_TEST_TOKEN and HH_TEST_SIGNING are not set; set them for send_callbacks"
            ),
            "{args:?}: {err}"
        );
    }
    let explained = db.ok(&["callbacks", "explain", "1"]);
    assert!(
        explained.contains("export HH_TEST_KEY=… HH_TEST_TOKEN=… HH_TEST_SIGNING=…"),
        "{explained}"
    );
});

// `hooks edit` changes what it is given: one setting of a hook's authentication keeps
// the others; a flag of another kind is refused.
on_every_backend!(
    editing_one_setting_of_an_authentication_keeps_the_others,
    |db| {
        let db = db.migrated();
        db.ok(&[
            "hooks",
            "add",
            "oa",
            "--events",
            "e",
            "--url",
            "http://127.0.0.1:9/",
            "--auth",
            "oauth2-client-credentials",
            "--token-url",
            "http://127.0.0.1:9/token",
            "--client-id-env",
            "HH_ID",
            "--client-secret-env",
            "HH_SECRET",
            "--audience",
            "api",
        ]);
        db.ok(&["hooks", "edit", "oa", "--scope", "read"]);
        let auth = &json(&db.ok(&["hooks", "show", "oa", "--format", "json"]))["auth"];
        assert_eq!(auth["scope"], "read");
        assert_eq!(auth["audience"], "api");
        assert_eq!(auth["client_id_env"], "HH_ID");
        db.ok(&[
            "hooks",
            "edit",
            "oa",
            "--auth",
            "oauth2-client-credentials",
            "--client-id-env",
            "HH_ID2",
        ]);
        let auth = &json(&db.ok(&["hooks", "show", "oa", "--format", "json"]))["auth"];
        assert_eq!(auth["client_id_env"], "HH_ID2");
        assert_eq!(auth["audience"], "api", "what is not given stays");
        let (code, _, err) = db.run(&["hooks", "edit", "oa", "--token-env", "HH_T"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("--token-env does not go with oauth2-client-credentials"),
            "{err}"
        );
        let (code, _, err) = db.run(&[
            "hooks",
            "add",
            "b",
            "--events",
            "e",
            "--url",
            "http://127.0.0.1:9/",
            "--scope",
            "x",
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--scope goes with --auth"), "{err}");
    }
);

// Smaller things an operator met: a typo in `callbacks list --hook`, an event name in
// other case, a metrics file in a directory that takes no file, a receiver that does
// not answer in time.
on_every_backend!(small_things_say_what_they_mean, |db| {
    let db = db.migrated();
    table(&db);
    let (code, _, err) = db.run(&["callbacks", "list", "--hook", "nosuch"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("there is no hook named \"nosuch\""), "{err}");
    db.ok(&[
        "hooks",
        "add",
        "g",
        "--events",
        "Attempt.Graded",
        "--url",
        "http://127.0.0.1:9/",
    ]);
    assert!(db
        .ok(&[
            "enqueue",
            "--hook",
            "g",
            "--event",
            "Attempt.Graded",
            "--data",
            "{}"
        ])
        .contains("enqueued 1 callback"));
    let readonly = db.path("readonly");
    std::fs::create_dir(&readonly).unwrap();
    let mut permissions = std::fs::metadata(&readonly).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
    std::fs::set_permissions(&readonly, permissions).unwrap();
    // (root writes anywhere: there the check is /proc, which takes no new file.)
    let target = if unsafe { libc::geteuid() } == 0 {
        "/proc/httphooks.prom".to_owned()
    } else {
        readonly.join("m.prom").display().to_string()
    };
    // Metrics that cannot be written do not stop delivery: a warning, and exit 0.
    let (code, out, err) = db.run(&["send_callbacks", "--metrics-file", &target]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("cannot create a file in")
            && err.contains("delivering without writing metrics"),
        "{err}"
    );
    assert!(out.contains("claimed 1,"), "it delivered: {out}");
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE attempts = 1"),
        1,
        "the enqueued callback was tried"
    );
    let server = Server::start(|_| Reply::Hang);
    db.add_hook(
        "slow",
        "t",
        "insert",
        &server.url("/hang"),
        &["--timeout", "300ms"],
    );
    insert(&db, 1);
    db.ok(&["send_callbacks", "--hook_id", "slow"]);
    let slow = callbacks_json(&db)
        .into_iter()
        .find(|c| c["hook_name"] == "slow")
        .unwrap();
    assert!(
        slow["status_details"]
            .as_str()
            .unwrap()
            .starts_with("no answer within the hook's timeout of 300ms"),
        "{slow}"
    );
});

// A run whose lease ran out while the database kept it from renewing (a long lock) may
// have sent a callback and be waiting to record it: another run of the same host does
// not send that callback again while the first is alive.
on_every_backend!(
    a_live_runs_started_callback_is_not_sent_again_by_another_run,
    |db| {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let db = db.migrated();
        table(&db);
        let first = AtomicUsize::new(0);
        let server = Server::start(move |_| {
            if first.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::Slow(Duration::from_secs(3))
            } else {
                Reply::Status(200)
            }
        });
        db.add_hook("h", "t", "insert", &server.url("/h"), &["--timeout", "10s"]);
        insert(&db, 5);
        db.admit();
        let a = db.spawn(&["send_callbacks", "--concurrency", "1"]);
        // Wait for the first request to be on the wire, then let every lease run out, as
        // a database locked past them would.
        let waited = std::time::Instant::now();
        while server.received().is_empty() && waited.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        db.sql("UPDATE httphooks_callbacks SET claimed_until = created_at WHERE claimed_until IS NOT NULL");
        let (code, out, err) = db.run(&["send_callbacks"]);
        assert_eq!(code, 0, "{out}{err}");
        let output = a.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut ids: Vec<String> = server
            .received()
            .iter()
            .map(|r| r.header("webhook-id").unwrap().to_owned())
            .collect();
        ids.sort();
        let all = ids.len();
        ids.dedup();
        assert_eq!(all, ids.len(), "a callback was sent twice");
        assert_eq!(ids.len(), 5);
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE status = 'sent'"),
            5
        );
    }
);
