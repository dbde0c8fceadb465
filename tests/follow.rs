//! `send_callbacks --follow`, through the binary on every backend: changes committed
//! while a run waits go out at once, retries come due during the run, overlapping runs
//! send nothing twice, a signal ends the wait, the database going away is waited out.
//! The latency targets are the benchmark's (`--scenario latency`); the bounds here are
//! generous for CI.

mod common;

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use common::server::{Reply, Server};
use common::{json, TestDb};

/// How many times each webhook-id arrived.
fn deliveries(server: &Server) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in server.received() {
        *counts
            .entry(request.header("webhook-id").unwrap().to_owned())
            .or_insert(0) += 1;
    }
    counts
}

fn finish(child: Child) -> (i32, String, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits up to `limit` for `done`; returns how long it took, or None.
fn within(limit: Duration, done: impl Fn() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// A table `jobs` with a hook `jobs` to `server`.
fn watched(db: &TestDb, server: &Server) {
    db.sql(&format!(
        "CREATE TABLE jobs ({}, v INTEGER)",
        db.id_column()
    ));
    db.add_hook("jobs", "jobs", "insert", &server.url("/jobs"), &[]);
}

/// Waits until a following run has started and drained what was there.
fn until_following(db: &TestDb) {
    let following = within(Duration::from_secs(20), || {
        json(&db.ok(&["status", "--format", "json"]))["runs"]
            .as_array()
            .is_some_and(|runs| {
                runs.iter()
                    .any(|run| run["following"] == true && run["ended_at"].is_null())
            })
    });
    assert!(following.is_some(), "the run started following");
}

on_every_backend!(
    a_following_run_sends_each_change_as_it_commits_and_retries_as_they_come_due,
    |db| {
        let db = db.migrated();
        // The first request to /flaky fails; the rest succeed.
        let flaky_seen = std::sync::atomic::AtomicBool::new(false);
        let server = Server::start(move |request| {
            if request.path == "/flaky"
                && !flaky_seen.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                Reply::Status(503)
            } else {
                Reply::Status(200)
            }
        });
        watched(&db, &server);
        db.sql(&format!(
            "CREATE TABLE flaky ({}, v INTEGER)",
            db.id_column()
        ));
        db.add_hook("flaky", "flaky", "insert", &server.url("/flaky"), &[]);
        db.sql(&format!(
            "CREATE TABLE other ({}, v INTEGER)",
            db.id_column()
        ));
        db.add_hook("other", "other", "insert", &server.url("/other"), &[]);
        let metrics = db.dir.path().join("httphooks.prom");
        let run = db.spawn(&[
            "send_callbacks",
            "--follow",
            "--max-runtime",
            "60s",
            "--hook_id",
            "jobs",
            "--hook_id",
            "flaky",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ]);
        until_following(&db);
        let mut app = db.connect();
        for k in 1..=5 {
            app.sql("INSERT INTO jobs (v) VALUES (1)");
            let took = within(Duration::from_secs(1), || {
                server
                    .received()
                    .iter()
                    .filter(|r| r.path == "/jobs")
                    .count()
                    == k
            });
            assert!(took.is_some(), "change {k} arrived within a second");
            std::thread::sleep(Duration::from_millis(100));
        }
        // A callback that failed comes due again during the run (as if its backoff
        // had passed) and is sent by it.
        app.sql("INSERT INTO flaky (v) VALUES (1)");
        assert!(within(Duration::from_secs(1), || server
            .received()
            .iter()
            .any(|r| r.path == "/flaky"))
        .is_some());
        let retried = within(Duration::from_secs(5), || {
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE status = 'waiting' AND attempts = 1") == 1
        });
        assert!(
            retried.is_some(),
            "the first attempt failed and was recorded"
        );
        db.sql(&format!(
            "UPDATE httphooks_callbacks SET next_attempt_at = {} WHERE status = 'waiting'",
            db.shifted(db.now_sql(), -1)
        ));
        let resent = within(Duration::from_secs(2), || {
            server
                .received()
                .iter()
                .filter(|r| r.path == "/flaky")
                .count()
                == 2
        });
        assert!(resent.is_some(), "the retry went out during the run");
        // status shows it following, with what it sent so far.
        let progress = within(Duration::from_secs(6), || {
            json(&db.ok(&["status", "--format", "json"]))["runs"][0]["sent"] == 6
        });
        assert!(progress.is_some(), "{}", db.ok(&["status"]));
        assert!(db.ok(&["status"]).contains("following"));
        // A callback this run does not send (--hook_id) names the run that could.
        app.sql("INSERT INTO other (v) VALUES (1)");
        db.admit();
        let other = db.count("SELECT id AS n FROM httphooks_callbacks WHERE hook_id = (SELECT id FROM httphooks_hooks WHERE name = 'other')");
        let explained = db.ok(&["callbacks", "explain", &other.to_string()]);
        assert!(explained.contains("following for"), "{explained}");
        // SIGTERM during the wait ends it at once, cleanly, with its metrics written.
        let signalled = Instant::now();
        assert_eq!(unsafe { libc::kill(run.id() as i32, libc::SIGTERM) }, 0);
        let (code, out, err) = finish(run);
        assert!(
            signalled.elapsed() < Duration::from_secs(1),
            "{:?}",
            signalled.elapsed()
        );
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("sent 6, retried 1, failed 0") && out.contains("stopped by signal"),
            "{out}"
        );
        assert!(std::fs::read_to_string(&metrics)
            .unwrap()
            .contains("httphooks_run_callbacks"));
        let last = &json(&db.ok(&["status", "--format", "json"]))["runs"][0];
        assert_eq!(last["stop_reason"], "signal");
        assert_eq!(last["following"], true);
        assert_eq!(
            server
                .received()
                .iter()
                .filter(|r| r.path == "/other")
                .count(),
            0
        );
    }
);

on_every_backend!(overlapping_following_runs_send_nothing_twice, |db| {
    let db = db.migrated();
    let server = Server::start_lean(|_| Reply::Status(200));
    watched(&db, &server);
    let first = db.spawn(&["send_callbacks", "--follow", "--max-runtime", "3s"]);
    until_following(&db);
    // Rows keep coming while the first run ends and the second one (started before
    // the first ended) takes over.
    let writing = Instant::now();
    let mut app = db.connect();
    let mut second = None;
    let mut rows = 0;
    while writing.elapsed() < Duration::from_secs(5) {
        app.sql("INSERT INTO jobs (v) VALUES (1)");
        rows += 1;
        if second.is_none() && writing.elapsed() > Duration::from_millis(1500) {
            second = Some(db.spawn(&["send_callbacks", "--follow", "--max-runtime", "6s"]));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, out, err) = finish(first);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("stopped at --max-runtime"), "{out}");
    let (code, out2, err) = finish(second.unwrap());
    assert_eq!(code, 0, "{out2}{err}");
    let claimed = |out: &str| -> usize {
        out.split("claimed ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        claimed(&out) > 0 && claimed(&out2) > 0,
        "both runs sent: {out}{out2}"
    );
    let counts = deliveries(&server);
    assert_eq!(counts.len(), rows, "every row arrived");
    assert!(counts.values().all(|&n| n == 1), "none twice");
});

on_every_backend!(
    follow_without_a_deadline_is_refused_and_changes_nothing,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        watched(&db, &server);
        db.sql("INSERT INTO jobs (v) VALUES (1)");
        let (code, out, err) = db.run(&["send_callbacks", "--follow"]);
        assert_eq!(code, 2, "{out}{err}");
        assert_eq!(
        err.trim(),
        "httphooks: --follow needs --max-runtime, so that a following run ends and the next one takes over: run `httphooks send_callbacks --follow --max-runtime 65s` every minute"
    );
        let (code, _, err) = db.run(&[
            "send_callbacks",
            "--follow",
            "--max-runtime",
            "5s",
            "--dry-run",
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--dry-run"), "{err}");
        let limited = [
            "send_callbacks",
            "--follow",
            "--max-runtime",
            "5s",
            "--limit",
            "3",
        ];
        let (code, _, err) = db.run(&limited);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--limit"), "{err}");
        let (code, _, err) = db.run(&["send_callbacks", "--follow", "--max-runtime", "1000y"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("a --max-runtime under a century, not 1000y"),
            "{err}"
        );
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_runs"), 0);
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE status = 'waiting'"),
            1
        );
        assert!(server.received().is_empty());
    }
);

/// PostgreSQL goes away while a run follows (its connections are killed and new ones
/// refused, as in a restart): the run waits, says so, reconnects and delivers what was
/// committed after the database came back.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_a_following_run_reconnects_after_the_database_comes_back() {
    let Some(db) = TestDb::postgres_database("hh_follow", "") else {
        return;
    };
    db.ok(&["migrate"]);
    let server = Server::start_lean(|_| Reply::Status(200));
    watched(&db, &server);
    let run = db.spawn(&["send_callbacks", "--follow", "--max-runtime", "25s"]);
    until_following(&db);
    db.connect().sql("INSERT INTO jobs (v) VALUES (1)");
    assert!(within(Duration::from_secs(1), || server.received().len() == 1).is_some());
    db.postgres_down(true);
    std::thread::sleep(Duration::from_secs(3));
    db.postgres_down(false);
    db.connect().sql("INSERT INTO jobs (v) VALUES (2)");
    let took = within(Duration::from_secs(10), || server.received().len() == 2);
    assert!(took.is_some(), "the change made after the restart arrived");
    assert_eq!(unsafe { libc::kill(run.id() as i32, libc::SIGTERM) }, 0);
    let (code, out, err) = finish(run);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("database unavailable"), "{err}");
    assert!(err.contains("database available again"), "{err}");
    assert!(out.contains("sent 2,"), "{out}");
}

on_every_backend!(
    a_killed_following_run_shows_as_died_and_keeps_what_it_sent,
    |db| {
        let db = db.migrated();
        let server = Server::start_lean(|_| Reply::Status(200));
        watched(&db, &server);
        let run = db.spawn(&["send_callbacks", "--follow", "--max-runtime", "60s"]);
        until_following(&db);
        let mut app = db.connect();
        for _ in 0..3 {
            app.sql("INSERT INTO jobs (v) VALUES (1)");
        }
        let written = within(Duration::from_secs(6), || {
            json(&db.ok(&["status", "--format", "json"]))["runs"][0]["sent"] == 3
        });
        assert!(written.is_some(), "{}", db.ok(&["status"]));
        assert_eq!(unsafe { libc::kill(run.id() as i32, libc::SIGKILL) }, 0);
        finish(run);
        let status = db.ok(&["status"]);
        assert!(status.contains("died"), "its process is gone: {status}");
        // The next run records it as died, with what it had sent.
        db.ok(&["send_callbacks"]);
        let runs = json(&db.ok(&["status", "--format", "json"]))["runs"].clone();
        let died = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|run| run["stop_reason"] == "died")
            .unwrap_or_else(|| panic!("{runs}"));
        assert_eq!(died["sent"], 3, "{died}");
        assert_eq!(server.received().len(), 3);
    }
);
