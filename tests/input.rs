//! Issue 9: input checked up front (nothing written, one sentence naming the fix),
//! numbers at their limits, operators' edits (held callbacks, retry of sent ones,
//! attempt numbers), and read-only commands that never create a database.

mod common;

use common::server::Server;
use common::{json, TestDb};

fn orders(db: &TestDb) {
    db.sql(&format!(
        "CREATE TABLE orders ({}, customer TEXT, total INTEGER)",
        db.id_column()
    ));
}

/// Runs a command that must be refused: exit 2, one line on stderr holding `says`.
fn refused(db: &TestDb, args: &[&str], says: &str) -> String {
    let (code, out, err) = db.run(args);
    assert_eq!(code, 2, "{args:?} should be refused:\n{out}{err}");
    assert!(err.contains(says), "{args:?}: expected {says:?} in: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one sentence: {err}");
    err
}

on_every_backend!(hook_input_is_checked_before_anything_is_written, |db| {
    let db = db.migrated();
    orders(&db);
    let add = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec![
            "hooks",
            "add",
            "o",
            "--table",
            "orders",
            "--events",
            "insert,update",
        ];
        if !extra.contains(&"--url") {
            args.extend(["--url", "http://127.0.0.1:9/o"]);
        }
        args.extend(extra);
        args
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            add(&["--header", "X-A: one\r\nX-Injected: two"]),
            "line break (CR or LF)",
        ),
        (
            add(&["--header", "X-A: one\nX-Injected: two"]),
            "give each header its own --header",
        ),
        (
            add(&["--header", "{\"X-A\": \"one\\r\\nX-B: 2\"}"]),
            "line break",
        ),
        (
            add(&["--header", "Bad Name: x"]),
            "is not a valid header name",
        ),
        (add(&["--header", "X(1): x"]), "is not a valid header name"),
        (add(&["--url", "http://h/a b"]), "percent-encode"),
        (
            add(&[
                "--auth",
                "oauth2-client-credentials",
                "--token-url",
                "https://login.example/o auth",
                "--client-id-env",
                "ID",
                "--client-secret-env",
                "SECRET",
            ]),
            "--token-url \"https://login.example/o auth\" cannot be sent",
        ),
        (
            add(&["--template", "{\"id\": {{ instance.idd }}}"]),
            "instance.idd: the row has no column idd (the row of table orders holds: id, customer, total)",
        ),
        (
            add(&["--template", "{\"id\": {{ instance.id }} \"customer\": 1}"]),
            "not valid JSON",
        ),
    ];
    for (args, says) in &cases {
        refused(&db, args, says);
    }
    let err = refused(
        &db,
        &add(&["--template", "{\"id\": {{ instance.id }} \"customer\": 1}"]),
        ">>>",
    );
    assert!(
        err.contains("{\"id\": 1 >>>\"customer\": 1}"),
        "the rendered text: {err}"
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_hooks"), 0);

    // The same checks on edit leave the hook as it was.
    db.add_hook("o", "orders", "insert", "http://127.0.0.1:9/o", &[]);
    let before = db.ok(&["hooks", "show", "o", "--format", "json"]);
    refused(
        &db,
        &["hooks", "edit", "o", "--header", "X-A: 1\r\nX-B: 2"],
        "line break",
    );
    refused(
        &db,
        &["hooks", "edit", "o", "--url", "http://h/a b"],
        "percent-encode",
    );
    refused(
        &db,
        &[
            "hooks",
            "edit",
            "o",
            "--template",
            "{{ instance.customer.name }}",
        ],
        "instance.customer.name: instance.customer is a single value",
    );
    assert_eq!(db.ok(&["hooks", "show", "o", "--format", "json"]), before);

    // $VAR without braces is saved, with a warning that it is sent as written.
    let (code, _, err) = db.run(&[
        "hooks",
        "edit",
        "o",
        "--header",
        "Authorization: Bearer $TOKEN",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("$TOKEN, which is sent literally") && err.contains("write ${TOKEN}"),
        "{err}"
    );
    let shown = json(&db.ok(&["hooks", "show", "o", "--format", "json"]));
    assert_eq!(shown["headers"]["Authorization"], "Bearer $TOKEN");
    let (_, _, err) = db.run(&[
        "hooks",
        "edit",
        "o",
        "--header",
        "Authorization: Bearer ${TOKEN}",
    ]);
    assert!(!err.contains("warning"), "{err}");
});

on_every_backend!(enqueue_refuses_data_its_template_cannot_render, |db| {
    let db = db.migrated();
    db.ok(&[
        "hooks",
        "add",
        "grades",
        "--events",
        "attempt.submitted",
        "--url",
        "http://127.0.0.1:9/g",
        "--template",
        "{\"who\": \"{{ data.user.name }}\"}",
    ]);
    let err = refused(
        &db,
        &[
            "enqueue",
            "--hook",
            "grades",
            "--event",
            "attempt.submitted",
            "--data",
            "{\"score\": 1}",
        ],
        "data.user.name: the event data has no key user (keys: score)",
    );
    assert!(err.contains("nothing was enqueued"), "{err}");
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"), 0);
    db.ok(&[
        "enqueue",
        "--hook",
        "grades",
        "--event",
        "attempt.submitted",
        "--data",
        "{\"user\": {\"name\": \"Ann\"}}",
    ]);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"), 1);
});

on_every_backend!(numbers_at_their_limits_never_panic, |db| {
    let db = db.migrated();
    orders(&db);
    db.add_hook("o", "orders", "insert", "http://127.0.0.1:9/o", &[]);
    let values = [
        "0",
        "-1",
        "1",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "99999999999",
        "99999999999999",
        "1e400",
        "10years",
        "18446744073709551615s",
        "584542046090years",
        "",
        "x",
    ];
    let mut commands: Vec<Vec<String>> = Vec::new();
    for v in values {
        let v = v.to_owned();
        let with = |args: &[&str]| -> Vec<String> {
            args.iter()
                .map(|a| {
                    if *a == "V" {
                        v.clone()
                    } else {
                        (*a).to_owned()
                    }
                })
                .collect()
        };
        for args in [
            &["delete_old_callbacks", "V"][..],
            &["delete_old_callbacks", "1", "--batch-size", "V"],
            &[
                "monitor_callbacks",
                "--status",
                "error",
                "--minutes_ago",
                "V",
            ],
            &[
                "monitor_callbacks",
                "--status",
                "waiting",
                "--minutes_ago",
                "V",
            ],
            &[
                "monitor_callbacks",
                "--status",
                "error",
                "--callbacks_limit",
                "V",
            ],
            &["send_callbacks", "--limit", "V"],
            &["send_callbacks", "--concurrency", "V"],
            &["send_callbacks", "--max-runtime", "V"],
            &["send_callbacks", "--dry-run", "--limit", "V"],
            &["send_callbacks", "--callback", "V"],
            &["send_callbacks", "--hook_id", "V"],
            &["callbacks", "list", "--limit", "V"],
            &["callbacks", "show", "V"],
            &["callbacks", "retry", "V"],
            &["callbacks", "cancel", "V"],
            &["hooks", "edit", "o", "--timeout", "V"],
            &["hooks", "edit", "o", "--max-attempts", "V"],
            &[
                "hooks",
                "add",
                "n",
                "--events",
                "e.v",
                "--url",
                "http://127.0.0.1:9/",
                "--timeout",
                "V",
            ],
            &[
                "hooks",
                "add",
                "n",
                "--events",
                "e.v",
                "--url",
                "http://127.0.0.1:9/",
                "--max-attempts",
                "V",
            ],
        ] {
            commands.push(with(args));
        }
    }
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = db.run(&args);
        assert!(
            (0..=2).contains(&code),
            "{args:?} exited {code}:\n{out}{err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if code != 0 {
            assert!(
                !(out.trim().is_empty() && err.trim().is_empty()),
                "{args:?} said nothing"
            );
        }
        // Anything added by a boundary value is removed, so the next one starts alike.
        let _ = db.run(&["hooks", "remove", "n"]);
    }
    let (code, out, _) = db.run(&["delete_old_callbacks", "99999999999"]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted 0 callbacks"), "{out}");
    let (code, out, _) = db.run(&[
        "monitor_callbacks",
        "--status",
        "error",
        "--minutes_ago",
        "99999999999999",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: 0 callbacks"), "{out}");
});

on_every_backend!(a_disabled_hooks_callbacks_are_shown_as_held, |db| {
    let db = db.migrated();
    let server = Server::answering(200);
    orders(&db);
    db.add_hook("o", "orders", "insert", &server.url("/o"), &[]);
    db.sql("INSERT INTO orders (customer, total) VALUES ('a', 1)");
    db.ok(&["hooks", "disable", "o"]);
    db.ok(&["send_callbacks"]);
    assert!(server.received().is_empty(), "held, not sent");

    let table = db.ok(&["callbacks", "list"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "HOOK", "EVENT", "OBJECT", "STATUS", "ATTEMPTS", "CREATED", "DETAILS"],
        "the columns scripts read stay where they were"
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..6], ["1", "o", "insert", "1", "held", "0"], "{table}");
    assert!(table.contains("hook disabled"), "{table}");
    let held = json(&db.ok(&["callbacks", "list", "--status", "held", "--format", "json"]));
    assert_eq!(
        held[0]["status"], "waiting",
        "JSON keeps the statuses of docs/behaviour.md"
    );
    assert!(
        held[0]["held"].as_str().unwrap().contains("hooks enable o"),
        "{held}"
    );
    assert_eq!(
        json(&db.ok(&[
            "callbacks",
            "list",
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
    let shown = db.ok(&["callbacks", "show", "1"]);
    assert!(
        shown.contains("status: waiting (held: hook o is disabled"),
        "{shown}"
    );

    db.ok(&["hooks", "enable", "o"]);
    assert!(
        json(&db.ok(&["callbacks", "list", "--status", "held", "--format", "json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
    let shown = json(&db.ok(&["callbacks", "show", "1", "--format", "json"]));
    assert_eq!(shown["held"], serde_json::Value::Null);
    db.ok(&["send_callbacks"]);
    assert_eq!(server.received().len(), 1);
});

on_every_backend!(retries_go_to_the_new_url_and_attempts_keep_counting, |db| {
    let db = db.migrated();
    let failing = Server::answering(500);
    let fixed = Server::answering(200);
    orders(&db);
    db.add_hook(
        "o",
        "orders",
        "insert",
        &failing.url("/old"),
        &["--max-attempts", "1"],
    );
    db.sql("INSERT INTO orders (customer, total) VALUES ('a', 1)");
    db.ok(&["send_callbacks"]);
    assert_eq!(
        json(&db.ok(&["callbacks", "show", "1", "--format", "json"]))["status"],
        "error"
    );

    db.ok(&["hooks", "edit", "o", "--url", &fixed.url("/new")]);
    db.ok(&["callbacks", "retry", "1"]);
    db.ok(&["send_callbacks"]);
    assert_eq!(fixed.received().len(), 1, "the retry went to the new URL");
    assert_eq!(fixed.received()[0].path, "/new");

    // Sent already: refused without --force, and nothing changes.
    let before = db.ok(&["callbacks", "show", "1", "--format", "json"]);
    refused(&db, &["callbacks", "retry", "1"], "pass --force");
    assert_eq!(
        db.ok(&["callbacks", "show", "1", "--format", "json"]),
        before
    );
    db.ok(&["send_callbacks"]);
    assert_eq!(fixed.received().len(), 1);
    db.ok(&["callbacks", "retry", "1", "--force"]);
    db.ok(&["send_callbacks"]);
    assert_eq!(fixed.received().len(), 2, "--force sends it again");

    let shown = json(&db.ok(&["callbacks", "show", "1", "--format", "json"]));
    let log = shown["attempts_log"].as_array().unwrap();
    let numbers: Vec<i64> = log.iter().map(|a| a["attempt"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3], "attempt numbers never repeat");
    assert_eq!(
        db.count("SELECT COUNT(DISTINCT attempt) AS n FROM httphooks_attempts WHERE callback_id = 1 AND attempt IN (1, 2, 3)"),
        3,
        "the stored history numbers them so too"
    );
    assert!(log[0]["request"]["url"].as_str().unwrap().ends_with("/old"));
    assert!(log[2]["request"]["url"].as_str().unwrap().ends_with("/new"));
    let table = db.ok(&["callbacks", "show", "1"]);
    assert!(table.contains("attempt 3 at"), "{table}");
    assert_eq!(table.matches("attempt 1 at").count(), 1, "{table}");
});

/// Runs the binary in `dir` without DATABASE_URL, as on a machine where it is unset.
fn in_dir(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let output = common::httphooks()
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn commands_that_only_read_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("httphooks.sqlite3");
    for args in [
        &["monitor_callbacks", "--status", "error"][..],
        &[
            "monitor_callbacks",
            "--status",
            "waiting",
            "--callbacks_limit",
            "0",
        ],
        &["callbacks", "list"],
        &["callbacks", "show", "1"],
        &["hooks", "list"],
        &["hooks", "show", "x"],
    ] {
        let (code, out, err) = in_dir(dir.path(), args);
        assert_eq!(code, 3, "{args:?}:\n{out}{err}");
        assert!(!out.contains("OK"), "{out}");
        assert!(
            err.contains(&file.display().to_string())
                && err.contains("DATABASE_URL")
                && err.contains("httphooks migrate"),
            "{args:?} names the path and the fix: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!file.exists(), "{args:?} created {}", file.display());
    }

    // The main job and migrate create it, and say so.
    let (code, out, err) = in_dir(dir.path(), &["send_callbacks"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("claimed 0"), "{out}");
    assert!(
        err.contains("created new database") && err.contains(&file.display().to_string()),
        "{err}"
    );
    let (code, _, err) = in_dir(dir.path(), &["send_callbacks"]);
    assert_eq!(code, 0);
    assert!(!err.contains("created"), "only the first time: {err}");
    assert_eq!(
        in_dir(dir.path(), &["monitor_callbacks", "--status", "error"]).0,
        0
    );

    let other = tempfile::tempdir().unwrap();
    let (code, _, err) = in_dir(other.path(), &["migrate"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("created new database"), "{err}");
    let (_, _, err) = in_dir(other.path(), &["migrate"]);
    assert!(!err.contains("created"), "{err}");
    // A file the URL named is made as asked: no hint to set DATABASE_URL.
    let named = other.path().join("named.sqlite3");
    let url = format!("sqlite://{}", named.display());
    let (code, _, err) = in_dir(other.path(), &["--database-url", &url, "migrate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("created new database") && !err.contains("set DATABASE_URL"),
        "{err}"
    );
}

#[test]
fn a_negative_number_is_named_as_out_of_range_and_changes_nothing() {
    let db = TestDb::sqlite().migrated();
    db.sql("CREATE TABLE t (id INTEGER PRIMARY KEY)");
    db.add_hook("h", "t", "insert", "http://127.0.0.1:9/", &[]);
    let hook = db.ok(&["hooks", "show", "h", "--format", "json"]);
    for (args, named) in [
        (
            &["delete_old_callbacks", "30", "--batch-size", "-1"][..],
            "-1 is not in 1..",
        ),
        (&["delete_old_callbacks", "-1"], "-1 is not in 0.."),
        (&["send_callbacks", "--limit", "-1"], "-1 is not in 1.."),
        (
            &["send_callbacks", "--dry-run", "--limit", "-1"],
            "-1 is not in 1..",
        ),
        (
            &["send_callbacks", "--concurrency", "-1"],
            "-1 is not in 1..=1024",
        ),
        (
            &[
                "monitor_callbacks",
                "--status",
                "error",
                "--minutes_ago",
                "-1",
            ],
            "-1 is not in 0..",
        ),
        (
            &[
                "monitor_callbacks",
                "--status",
                "error",
                "--callbacks_limit",
                "-1",
            ],
            "-1 is not in 0..",
        ),
        (&["callbacks", "list", "--limit", "-1"], "-1 is not in 1.."),
        (
            &["hooks", "edit", "h", "--max-attempts", "-1"],
            "--max-attempts must be between",
        ),
        (
            &["hooks", "edit", "h", "--max-payload-size", "-1"],
            "\"-1\" is not a size",
        ),
        (
            &["hooks", "edit", "h", "--timeout", "-1"],
            "for '--timeout <DURATION>'",
        ),
    ] {
        let (code, out, err) = db.run(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
    assert_eq!(db.ok(&["hooks", "show", "h", "--format", "json"]), hook);
}

/// Every example in `--help` parses as written (their commands need a database to run;
/// parsing is what `--help` can promise).
#[test]
fn the_examples_in_help_parse() {
    use clap::Parser;
    fn words(line: &str) -> Vec<String> {
        let (mut words, mut word, mut quote) = (Vec::new(), None::<String>, None::<char>);
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.get_or_insert_with(String::new).push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    word.get_or_insert_with(String::new);
                }
                (None, c) if c.is_whitespace() => words.extend(word.take()),
                (None, c) => word.get_or_insert_with(String::new).push(c),
            }
        }
        words.extend(word);
        words
    }
    let pages: [&[&str]; 6] = [
        &["send_callbacks"],
        &["monitor_callbacks"],
        &["delete_old_callbacks"],
        &["hooks", "add"],
        &["hooks", "backfill"],
        &["callbacks", "retry"],
    ];
    for page in pages {
        let mut args = page.to_vec();
        args.push("--help");
        let help =
            String::from_utf8(common::httphooks().args(&args).output().unwrap().stdout).unwrap();
        let examples: Vec<&str> = help
            .split("Examples:")
            .nth(1)
            .unwrap_or_else(|| panic!("{page:?} has examples: {help}"))
            .lines()
            .map(|line| line.split(" # ").next().unwrap().trim())
            .filter(|line| line.starts_with("httphooks "))
            .collect();
        assert!(examples.len() >= 2, "{page:?}: {examples:?}");
        for example in examples {
            if let Err(error) = httphooks::Cli::try_parse_from(words(example)) {
                panic!("{example}: {error}");
            }
        }
    }
}
