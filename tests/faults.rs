//! Fault tests for the delivery engine, through the binary: overlapping runs, a run
//! killed mid-flight, signals, deadlines, hostile receivers, the database going away.

mod common;

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use common::server::{Reply, Server};
use common::{json, TestDb};

/// A table with a hook to `server` and `n` rows, so `n` waiting callbacks.
fn backlog(db: &TestDb, server: &Server, n: usize, hook_flags: &[&str]) {
    db.sql(&format!(
        "CREATE TABLE jobs ({}, v INTEGER)",
        db.id_column()
    ));
    let url = server.url("/jobs");
    let mut args = vec![
        "hooks",
        "add",
        "jobs",
        "--table",
        "jobs",
        "--events",
        "insert",
        "--url",
        url.as_str(),
    ];
    args.extend(hook_flags);
    db.ok(&args);
    let values: Vec<String> = (0..n).map(|v| format!("({v})")).collect();
    db.sql(&format!("INSERT INTO jobs (v) VALUES {}", values.join(",")));
}

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

fn status_count(db: &TestDb, status: &str) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE status = '{status}'"
    ))
}

fn finish(child: Child) -> (i32, String, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn signal(child: &Child, signal: i32) {
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

on_both_backends!(overlapping_runs_deliver_each_callback_exactly_once, |db| {
    let db = db.migrated();
    let server = Server::start(|_| Reply::Slow(Duration::from_millis(2)));
    backlog(&db, &server, 600, &[]);
    let runs: Vec<Child> = (0..3)
        .map(|_| db.spawn(&["send_callbacks", "--concurrency", "4"]))
        .collect();
    let mut claimed = 0;
    let mut runs_that_claimed = 0;
    for run in runs {
        let (code, out, err) = finish(run);
        assert_eq!(code, 0, "{out}{err}");
        let count: usize = out
            .split("claimed ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        claimed += count;
        runs_that_claimed += usize::from(count > 0);
    }
    assert!(runs_that_claimed >= 2, "the runs overlapped");
    let counts = deliveries(&server);
    assert_eq!(counts.len(), 600, "every callback was delivered");
    assert!(
        counts.values().all(|&n| n == 1),
        "none twice: {:?}",
        counts.values().max()
    );
    assert_eq!(claimed, 600, "the runs shared the backlog without overlap");
    assert_eq!(status_count(&db, "sent"), 600);
});

on_both_backends!(
    a_killed_run_loses_nothing_and_its_attempts_are_marked_unknown,
    |db| {
        let db = db.migrated();
        let server = Server::start(|_| Reply::Slow(Duration::from_millis(20)));
        // A 100 ms timeout keeps the dead run's leases short: 10 × 100 ms + 5 s.
        backlog(&db, &server, 400, &["--timeout", "100ms"]);
        let run = db.spawn(&["send_callbacks", "--concurrency", "4"]);
        std::thread::sleep(Duration::from_millis(400));
        signal(&run, libc::SIGKILL);
        finish(run);
        let before = deliveries(&server).len();
        assert!(
            before > 0 && before < 400,
            "the run was killed mid-way ({before} delivered)"
        );

        // Later runs pick everything up once the dead run's leases expire.
        let deadline = Instant::now() + Duration::from_secs(30);
        while status_count(&db, "waiting") > 0 {
            assert!(
                Instant::now() < deadline,
                "callbacks were lost: {} still waiting",
                status_count(&db, "waiting")
            );
            std::thread::sleep(Duration::from_millis(500));
            db.ok(&["send_callbacks", "--concurrency", "8"]);
        }
        let counts = deliveries(&server);
        assert_eq!(
            counts.len(),
            400,
            "every callback was delivered at least once"
        );
        let twice = counts.values().filter(|&&n| n > 1).count();
        assert!(
            twice <= 4 * 8 + 4,
            "duplicates are bounded by what was in flight: {twice}"
        );
        let unknown =
            db.count("SELECT COUNT(*) AS n FROM httphooks_attempts WHERE error_kind = 'unknown'");
        assert!(
            unknown >= twice as i64,
            "the dead run's claims were recorded as outcome unknown ({unknown} < {twice})"
        );
        let example = db.text("SELECT error_message AS v FROM httphooks_attempts WHERE error_kind = 'unknown' LIMIT 1");
        assert!(example.unwrap().contains("may have been delivered"));
    }
);

on_both_backends!(
    sigterm_finishes_what_is_in_flight_and_releases_the_rest,
    |db| {
        let db = db.migrated();
        let server = Server::start(|_| Reply::Slow(Duration::from_millis(50)));
        backlog(&db, &server, 300, &[]);
        let run = db.spawn(&["send_callbacks", "--concurrency", "2"]);
        std::thread::sleep(Duration::from_millis(500));
        let signalled = Instant::now();
        signal(&run, libc::SIGTERM);
        let (code, out, err) = finish(run);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "it stopped promptly: {:?}",
            signalled.elapsed()
        );
        assert!(out.contains("stopped by signal"), "{out}");
        let sent = status_count(&db, "sent");
        assert_eq!(
            sent as usize,
            deliveries(&server).len(),
            "everything sent was recorded"
        );
        assert!(sent < 300);
        let still_claimed =
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE claim_token IS NOT NULL");
        assert_eq!(still_claimed, 0, "unstarted claims were released");
        // So the next run sends the rest at once, each exactly once.
        db.ok(&["send_callbacks", "--concurrency", "16"]);
        let counts = deliveries(&server);
        assert_eq!(counts.len(), 300);
        assert!(counts.values().all(|&n| n == 1));
    }
);

on_both_backends!(max_runtime_stops_claiming_at_the_deadline, |db| {
    let db = db.migrated();
    let server = Server::start(|_| Reply::Slow(Duration::from_millis(50)));
    backlog(&db, &server, 400, &[]);
    let started = Instant::now();
    let out = db.ok(&[
        "send_callbacks",
        "--concurrency",
        "2",
        "--max-runtime",
        "300ms",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(status_count(&db, "waiting") > 0, "{out}");
    assert_eq!(
        status_count(&db, "sent") as usize,
        deliveries(&server).len()
    );
});

on_both_backends!(a_huge_response_body_is_cut_at_64_kib, |db| {
    let db = db.migrated();
    let body = "x".repeat(10 * 1024 * 1024);
    let server = Server::start(move |_| Reply::WithHeaders(200, vec![], body.clone()));
    backlog(&db, &server, 1, &[]);
    let started = Instant::now();
    db.ok(&["send_callbacks"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    let shown = json(&db.ok(&["callbacks", "show", "1", "--format", "json"]));
    assert_eq!(shown["status"], "sent");
    assert_eq!(
        shown["attempts_log"][0]["response"]["body"]
            .as_str()
            .unwrap()
            .len(),
        64 * 1024
    );
});

#[test]
fn the_database_going_away_mid_run_exits_3_and_the_next_run_resumes() {
    let Some(mut db) = TestDb::postgres() else {
        return;
    };
    let app = format!("hh_{}", std::process::id());
    db.url = format!("{}&application_name={app}", db.url);
    let db = db.migrated();
    let server = Server::start(|_| Reply::Slow(Duration::from_millis(20)));
    backlog(&db, &server, 300, &["--timeout", "100ms"]);
    let run = db.spawn(&["send_callbacks", "--concurrency", "2"]);
    std::thread::sleep(Duration::from_millis(400));
    db.sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}' AND pid <> pg_backend_pid()"
    ));
    let (code, out, err) = finish(run);
    assert_eq!(code, 3, "{out}{err}");
    eprintln!("what the run said: {err}");
    assert!(err.contains("database"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while status_count(&db, "waiting") > 0 {
        assert!(Instant::now() < deadline, "callbacks were lost");
        std::thread::sleep(Duration::from_millis(500));
        db.ok(&["send_callbacks", "--concurrency", "8"]);
    }
    assert_eq!(deliveries(&server).len(), 300);
}
