//! The operator's view, end to end on both backends: runs on record, `status`,
//! `callbacks explain`, `monitor_callbacks --lag|--no-run-since|--nagios`, the metrics
//! file (checked with Prometheus' own Python parser), completions, man page, version.

mod common;

use common::server::{Reply, Server};
use common::{json, TestDb};

fn table_with_hooks(db: &TestDb, hooks: &[(&str, &str, &[&str])]) {
    db.sql(&format!("CREATE TABLE t ({}, v INTEGER)", db.id_column()));
    for (name, url, extra) in hooks {
        db.add_hook(name, "t", "insert", url, extra);
    }
}

fn insert(db: &TestDb, rows: usize) {
    for v in 0..rows {
        db.sql(&format!("INSERT INTO t (v) VALUES ({v})"));
    }
}

on_every_backend!(
    status_shows_each_hooks_queue_errors_latency_and_the_runs,
    |db| {
        let db = db.migrated();
        let ok = Server::answering(200);
        let failing = Server::answering(503);
        table_with_hooks(
            &db,
            &[
                ("good", &ok.url("/"), &[]),
                ("flaky", &failing.url("/"), &[]),
                ("paused", &ok.url("/p"), &["--disabled"]),
            ],
        );
        db.add_hook("paused2", "t", "insert", &ok.url("/q"), &[]);
        insert(&db, 3);
        db.ok(&["hooks", "disable", "paused2"]);
        // Never sent: a callback that became an error in the last hour.
        db.ok(&["send_callbacks"]);

        let status = json(&db.ok(&["status", "--format", "json"]));
        let hook = |name: &str| {
            status["hooks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["name"] == name)
                .unwrap_or_else(|| panic!("no hook {name} in {status}"))
                .clone()
        };
        let good = hook("good");
        assert_eq!(
            good["waiting"],
            serde_json::json!({"due": 0, "backing_off": 0, "claimed": 0, "held": 0})
        );
        assert!(good["last_success_at"].is_string(), "{good}");
        assert_eq!(good["latency_ms"]["requests"], 3, "{good}");
        assert!(good["latency_ms"]["p50"].is_i64(), "{good}");
        assert!(good["concurrency_limit"].as_i64().unwrap() >= 1, "{good}");
        let flaky = hook("flaky");
        assert_eq!(flaky["waiting"]["backing_off"], 3, "{flaky}");
        assert_eq!(flaky["waiting"]["due"], 0, "{flaky}");
        assert!(flaky["last_success_at"].is_null(), "{flaky}");
        assert_eq!(flaky["latency_ms"]["failures"], 3, "{flaky}");
        // Made while enabled, then paused: held, not due.
        let paused = hook("paused2");
        assert_eq!(paused["enabled"], false);
        assert_eq!(paused["waiting"]["held"], 3, "{paused}");
        assert_eq!(paused["waiting"]["due"], 0, "{paused}");
        assert_eq!(status["capture"][0]["intact"], true, "{status}");
        let runs = status["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{status}");
        assert_eq!(runs[0]["sent"], 3);
        assert_eq!(runs[0]["retried"], 3);
        assert_eq!(runs[0]["stop_reason"], "done");
        assert_eq!(runs[0]["exit_code"], 0);

        // An ordered hook's second change of a row waits behind the first: held, not due.
        db.add_hook("ord", "t", "update", &ok.url("/o"), &["--ordered"]);
        db.sql("UPDATE t SET v = v + 10 WHERE v = 0");
        db.sql("UPDATE t SET v = v + 10 WHERE v = 10");
        db.admit();
        let status = json(&db.ok(&["status", "--format", "json"]));
        let ord = status["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == "ord")
            .unwrap()
            .clone();
        assert_eq!(ord["waiting"]["due"], 1, "{ord}");
        assert_eq!(ord["waiting"]["held"], 1, "{ord}");

        let table = db.ok(&["status"]);
        for expected in ["good", "flaky", "paused", "BACKING_OFF", "RUN", "intact"] {
            assert!(table.contains(expected), "{expected} missing:\n{table}");
        }

        // delete_old_callbacks prunes the record of runs with the callbacks.
        assert!(db.count("SELECT COUNT(*) AS n FROM httphooks_run_hooks") >= 2);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let out = db.ok(&["delete_old_callbacks", "0"]);
        assert!(out.contains("1 run records"), "{out}");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_runs"), 0);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_run_hooks"), 0);
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM httphooks_run_endpoints"),
            0
        );
    }
);

on_every_backend!(explain_says_why_a_callback_is_or_is_not_sent, |db| {
    let db = db.migrated();
    let ok = Server::answering(200);
    let gone = Server::answering(410);
    let failing = Server::answering(503);
    db.sql(&format!("CREATE TABLE t ({}, v INTEGER)", db.id_column()));
    db.add_hook("sent", "t", "insert", &ok.url("/"), &[]);
    db.add_hook("gone", "t", "insert", &gone.url("/"), &[]);
    db.add_hook("later", "t", "insert", &failing.url("/"), &[]);
    db.sql("INSERT INTO t (v) VALUES (1)");
    db.ok(&["send_callbacks"]);
    let id_of = |hook: &str| {
        let list = json(&db.ok(&["callbacks", "list", "--hook", hook, "--format", "json"]));
        list[0]["id"].as_i64().unwrap().to_string()
    };
    let explain = |id: &str| json(&db.ok(&["callbacks", "explain", id, "--format", "json"]));

    let sent = explain(&id_of("sent"));
    assert_eq!(sent["state"], "sent", "{sent}");
    let failed = explain(&id_of("gone"));
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["explanation"].as_str().unwrap().contains("410"),
        "{failed}"
    );
    assert!(
        failed["command"]
            .as_str()
            .unwrap()
            .contains("callbacks retry"),
        "{failed}"
    );
    let later = explain(&id_of("later"));
    assert_eq!(later["state"], "backing_off", "{later}");
    assert!(
        later["explanation"].as_str().unwrap().contains("503"),
        "{later}"
    );
    assert!(
        later["command"]
            .as_str()
            .unwrap()
            .contains("send_callbacks --callback"),
        "{later}"
    );

    // Paused, ordered behind another, missing an environment variable, due.
    db.add_hook("ordered", "t", "update", &ok.url("/o"), &["--ordered"]);
    db.add_hook(
        "needs_env",
        "t",
        "delete",
        &ok.url("/e"),
        &["--header", "X-Key: ${HTTPHOOKS_TEST_UNSET_VAR}"],
    );
    db.sql("UPDATE t SET v = 2");
    db.sql("UPDATE t SET v = 3");
    db.sql("DELETE FROM t");
    let list = json(&db.ok(&["callbacks", "list", "--hook", "ordered", "--format", "json"]));
    let (second, first) = (list[0]["id"].to_string(), list[1]["id"].to_string());
    let behind = explain(&second);
    assert_eq!(behind["state"], "ordered", "{behind}");
    assert!(
        behind["explanation"]
            .as_str()
            .unwrap()
            .contains(&format!("behind callback {first}")),
        "{behind}"
    );
    let due = explain(&first);
    assert_eq!(due["state"], "due", "{due}");
    let env = explain(&id_of("needs_env"));
    assert_eq!(env["state"], "held", "{env}");
    assert!(
        env["explanation"]
            .as_str()
            .unwrap()
            .contains("HTTPHOOKS_TEST_UNSET_VAR"),
        "{env}"
    );
    db.ok(&["hooks", "disable", "ordered"]);
    let paused = explain(&first);
    assert_eq!(paused["state"], "held", "{paused}");
    assert!(
        paused["command"]
            .as_str()
            .unwrap()
            .contains("hooks enable ordered"),
        "{paused}"
    );

    let table = db.ok(&["callbacks", "explain", &first]);
    assert!(table.contains("disabled") && table.contains("→"), "{table}");
    let (code, _, err) = db.run(&["callbacks", "explain", "999999"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no callback has id 999999"), "{err}");
});

/// The Nagios plugin guidelines' output: `SERVICE STATE - text | 'label'=value[UOM];[warn];[crit];[min];[max] …`.
fn assert_nagios_grammar(line: &str) {
    // Performance data is optional.
    let (head, perfdata) = line.split_once(" | ").unwrap_or((line, ""));
    let state = head
        .strip_prefix("HTTPHOOKS ")
        .and_then(|rest| rest.split_once(" - "))
        .map(|(state, _)| state)
        .unwrap_or_else(|| panic!("not `HTTPHOOKS STATE - text`: {line}"));
    assert!(
        ["OK", "WARNING", "CRITICAL", "UNKNOWN"].contains(&state),
        "{line}"
    );
    assert!(!head.contains('|'), "{line}");
    for item in perfdata.split(' ').filter(|item| !item.is_empty()) {
        let (label, values) = item
            .split_once('=')
            .unwrap_or_else(|| panic!("{item} in {line}"));
        assert!(!label.is_empty() && !label.contains(['=', '\'']), "{item}");
        let fields: Vec<&str> = values.split(';').collect();
        assert!(fields.len() <= 5, "{item}");
        let number = |text: &str| text.is_empty() || text.parse::<f64>().is_ok();
        let value = fields[0].trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%');
        assert!(
            fields[0] == "U" || (!value.is_empty() && number(value)),
            "value in {item}"
        );
        assert!(
            fields[1..].iter().all(|f| number(f)),
            "thresholds in {item}"
        );
    }
}

on_every_backend!(monitor_checks_lag_runs_and_speaks_nagios, |db| {
    let db = db.migrated();
    table_with_hooks(&db, &[("h", "http://127.0.0.1:9/x", &[])]);
    // No run ever, nothing due.
    let (code, out, _) = db.run(&["monitor_callbacks", "--lag", "5"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: no callback is due"), "{out}");
    let (code, out, _) = db.run(&["monitor_callbacks", "--no-run-since", "60"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ALERT: no send_callbacks run has finished yet"),
        "{out}"
    );

    // A change made 30 minutes ago that nobody sent.
    insert(&db, 2);
    // Changes not admitted yet count too: monitoring only reads.
    let (code, out, _) = db.run(&["monitor_callbacks", "--lag", "0"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ALERT: the oldest due callback has waited"),
        "{out}"
    );
    db.admit();
    let old = db.shifted(db.now_sql(), -30);
    db.sql(&format!(
        "UPDATE httphooks_callbacks SET created_at = {old}"
    ));
    let (code, out, _) = db.run(&["monitor_callbacks", "--lag", "20"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ALERT: the oldest due callback has waited 30."),
        "{out}"
    );
    let (code, out, _) = db.run(&["monitor_callbacks", "--lag", "40"]);
    assert_eq!(code, 0, "{out}");

    // Nagios: OK / WARNING / CRITICAL by thresholds, with perfdata.
    let nagios = |args: &[&str]| {
        let mut all = vec!["monitor_callbacks", "--nagios"];
        all.extend(args);
        let (code, out, err) = db.run(&all);
        assert_eq!(out.lines().count(), 1, "{out}{err}");
        assert_nagios_grammar(out.trim_end());
        (code, out)
    };
    let (code, out) = nagios(&["--lag", "60"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("HTTPHOOKS OK - "), "{out}");
    let (code, out) = nagios(&["--lag", "60", "--warning", "10"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("HTTPHOOKS WARNING - ") && out.contains("lag=1800s;600;3600;0;"),
        "{out}"
    );
    let (code, out) = nagios(&["--lag", "60", "--warning", "10", "--critical", "20"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = nagios(&[
        "--status",
        "waiting",
        "--callbacks_limit",
        "1",
        "--no-run-since",
        "60",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("waiting=2;;1;0;") && out.contains("last_run=U;;3600;0;"),
        "{out}"
    );
    // Thresholds for two checks at once are ambiguous: UNKNOWN, as the guidelines say
    // for bad arguments.
    let (code, out) = nagios(&["--lag", "60", "--no-run-since", "5", "--warning", "1"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.starts_with("HTTPHOOKS UNKNOWN - --warning and --critical apply to one check"),
        "{out}"
    );

    // Bad arguments, whether clap or the check finds them, are UNKNOWN on one line.
    for bad in [
        &[][..],
        &["--status", "bogus"][..],
        &["--lag", "5", "--critical", "-1"][..],
        &["--lag", "5", "--warning", "10"][..],
    ] {
        let (code, out) = nagios(bad);
        assert_eq!(code, 3, "{bad:?}: {out}");
        assert!(out.starts_with("HTTPHOOKS UNKNOWN - "), "{bad:?}: {out}");
    }

    // A run makes the dead man's switch green again.
    db.ok(&["send_callbacks"]);
    let (code, out, _) = db.run(&[
        "monitor_callbacks",
        "--no-run-since",
        "60",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let document = json(&out);
    assert_eq!(document["state"], "ok");
    assert_eq!(document["checks"][0]["check"], "no_run_since");
    assert!(
        document["checks"][0]["last_run_ended_at"].is_string(),
        "{document}"
    );
});

#[test]
fn nagios_says_unknown_when_it_cannot_check() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere").join("db.sqlite3");
    let output = assert_cmd::Command::cargo_bin("httphooks")
        .unwrap()
        .env("DATABASE_URL", format!("sqlite://{}", missing.display()))
        .args(["monitor_callbacks", "--nagios", "--lag", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.starts_with("HTTPHOOKS UNKNOWN - "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

/// Prometheus' text-format parser (the Python client's), as a consumer reads the file.
fn parse_with_prometheus_client(path: &std::path::Path) -> String {
    let script = "import sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for family in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
        \x20   for s in family.samples:\n\
        \x20       print(family.type, s.name, sorted(s.labels.items()), float(s.value))\n";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the Prometheus parser refused the file:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
#[cfg_attr(
    no_prometheus_parser,
    ignore = "install Prometheus' Python client (python3-prometheus-client) to check the metrics file"
)]
fn the_metrics_file_is_what_prometheus_reads_sqlite() {
    the_metrics_file_is_what_prometheus_reads(TestDb::sqlite());
}

#[test]
#[cfg_attr(
    any(no_prometheus_parser, no_postgres),
    ignore = "needs Prometheus' Python client and HTTPHOOKS_TEST_POSTGRES_URL"
)]
fn the_metrics_file_is_what_prometheus_reads_postgres() {
    if let Some(db) = TestDb::postgres() {
        the_metrics_file_is_what_prometheus_reads(db);
    }
}

fn the_metrics_file_is_what_prometheus_reads(db: TestDb) {
    let db = db.migrated();
    let ok = Server::start(|_| Reply::Slow(std::time::Duration::from_millis(30)));
    let failing = Server::answering(503);
    table_with_hooks(
        &db,
        &[
            ("good \"one\"", &ok.url("/"), &[]),
            ("bad", &failing.url("/"), &[]),
        ],
    );
    insert(&db, 4);
    let path = db.dir.path().join("httphooks.prom");
    let path_text = path.to_str().unwrap();
    db.ok(&["send_callbacks", "--metrics-file", path_text]);
    let parsed = parse_with_prometheus_client(&path);
    let has = |line: &str| assert!(parsed.contains(line), "{line} missing in:\n{parsed}");
    has(r#"gauge httphooks_run_callbacks [('hook', 'good "one"'), ('outcome', 'sent')] 4.0"#);
    has("gauge httphooks_run_callbacks [('hook', 'bad'), ('outcome', 'retried')] 4.0");
    has("gauge httphooks_queue_callbacks [('hook', 'bad'), ('state', 'backing_off')] 4.0");
    has("gauge httphooks_queue_callbacks [('hook', 'good \"one\"'), ('state', 'due')] 0.0");
    has(&format!(
        "histogram httphooks_request_duration_seconds_count [('endpoint', 'http://127.0.0.1:{}')] 4.0",
        ok.port
    ));
    // 30 ms answers: none within 25 ms, all within 250 ms.
    has(&format!(
        "histogram httphooks_request_duration_seconds_bucket [('endpoint', 'http://127.0.0.1:{}'), ('le', '0.025')] 0.0",
        ok.port
    ));
    has(&format!(
        "histogram httphooks_request_duration_seconds_bucket [('endpoint', 'http://127.0.0.1:{}'), ('le', '0.25')] 4.0",
        ok.port
    ));
    assert!(
        parsed
            .contains("gauge httphooks_last_success_timestamp_seconds [('hook', 'good \"one\"')]"),
        "{parsed}"
    );
    assert!(
        parsed.contains("gauge httphooks_endpoint_concurrency_limit"),
        "{parsed}"
    );
    assert!(
        parsed.contains("gauge httphooks_run_duration_seconds [] "),
        "{parsed}"
    );
    // Replaced whole at each run; no temporary file is left behind.
    db.ok(&["send_callbacks", "--metrics-file", path_text]);
    let parsed = parse_with_prometheus_client(&path);
    assert!(!parsed.contains("outcome', 'sent')] 4.0"), "{parsed}");
    let left: Vec<_> = std::fs::read_dir(db.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A file in a directory that does not exist (a node_exporter not installed yet):
    // the run delivers, warns and exits 0; the metrics are not written.
    insert(&db, 1);
    let (code, out, err) = db.run(&[
        "send_callbacks",
        "--metrics-file",
        "/nonexistent-dir/x.prom",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("the folder /nonexistent-dir does not exist")
            && err.contains("delivering without writing metrics"),
        "{err}"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE attempts = 0"),
        0,
        "every callback was tried"
    );
}

#[test]
fn completions_man_page_and_version_come_from_the_command_line_definitions() {
    let run = |args: &[&str]| {
        let output = assert_cmd::Command::cargo_bin("httphooks")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(
        bash.contains("_httphooks()") && bash.contains("send_callbacks"),
        "{bash}"
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(
            run(&["completions", shell]).contains("monitor_callbacks"),
            "{shell}"
        );
    }
    let man = run(&["man"]);
    assert!(
        man.contains(".TH httphooks 1") && man.contains("send_callbacks"),
        "{man}"
    );
    let version = run(&["--version"]);
    assert!(
        version.starts_with("httphooks ") && version.contains("backends: sqlite, postgres"),
        "{version}"
    );
    // bash itself reads the script without complaint.
    let status = std::process::Command::new("bash")
        .args(["-n", "-c", &bash])
        .status()
        .unwrap();
    assert!(status.success());
    // A page per subcommand, as the top page names them.
    let page = run(&["man", "send_callbacks"]);
    assert!(page.contains(".TH httphooks-send_callbacks 1"), "{page}");
    assert!(page.contains("follow"), "{page}");
    let page = run(&["man", "hooks", "backfill"]);
    assert!(page.contains(".TH httphooks-hooks-backfill 1"), "{page}");
    let refused = assert_cmd::Command::cargo_bin("httphooks")
        .unwrap()
        .args(["man", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("send_callbacks"));
}
