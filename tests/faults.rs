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

on_every_backend!(overlapping_runs_deliver_each_callback_exactly_once, |db| {
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

on_every_backend!(
    a_killed_run_loses_nothing_the_next_run_takes_over_at_once_and_duplicates_stay_bounded,
    |db| {
        let db = db.migrated();
        let server = Server::start(|_| Reply::Slow(Duration::from_millis(20)));
        backlog(&db, &server, 600, &[]);
        let run = db.spawn(&["send_callbacks", "--concurrency", "16"]);
        std::thread::sleep(Duration::from_millis(500));
        signal(&run, libc::SIGKILL);
        finish(run);
        let before = deliveries(&server).len();
        assert!(
            before > 0 && before < 600,
            "the run was killed mid-way ({before} delivered)"
        );
        let claimed_by_the_dead_run =
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE claim_token IS NOT NULL");
        assert!(claimed_by_the_dead_run > 0);

        // The next run on this host sees that the dead run's process is gone and takes
        // its claims back at once, without waiting for their leases.
        let started = Instant::now();
        let out = db.ok(&["send_callbacks", "--concurrency", "16"]);
        assert!(out.contains("claimed"), "{out}");
        assert_eq!(status_count(&db, "waiting"), 0, "nothing waits for a lease");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        let counts = deliveries(&server);
        assert_eq!(counts.len(), 600, "every callback was delivered");

        // What the dead run may have sent without recording it is bounded by what it had
        // started: in flight, marked ready, and finished but not yet written (docs/delivery.md:
        // at most 4 × concurrency).
        let twice: Vec<&String> = counts
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(id, _)| id)
            .collect();
        assert!(twice.len() <= 4 * 16, "{} sent twice", twice.len());
        let unknown =
            db.count("SELECT COUNT(*) AS n FROM httphooks_attempts WHERE error_kind = 'unknown'");
        assert!(
            unknown <= 4 * 16 && unknown < claimed_by_the_dead_run,
            "only callbacks the dead run had started get an unknown outcome ({unknown}), not all \
             {claimed_by_the_dead_run} it had claimed"
        );
        for webhook_id in twice {
            let id = db.text(&format!(
                "SELECT {} AS v FROM httphooks_callbacks WHERE webhook_id = '{webhook_id}'",
                db.as_text("id")
            ));
            let unknown_for_it = db.count(&format!(
                "SELECT COUNT(*) AS n FROM httphooks_attempts WHERE error_kind = 'unknown' AND callback_id = {}",
                id.unwrap()
            ));
            assert_eq!(
                unknown_for_it, 1,
                "{webhook_id} was sent twice: its history says so"
            );
        }
        let example = db.text("SELECT error_message AS v FROM httphooks_attempts WHERE error_kind = 'unknown' LIMIT 1");
        if let Some(example) = example {
            assert!(example.contains("may have been delivered"), "{example}");
        }
        let died = db.count("SELECT COUNT(*) AS n FROM httphooks_runs WHERE stop_reason = 'died'");
        assert_eq!(died, 1, "the dead run is on record as died");
    }
);

on_every_backend!(
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

on_every_backend!(max_runtime_stops_claiming_at_the_deadline, |db| {
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

on_every_backend!(a_huge_response_body_is_cut_at_64_kib, |db| {
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
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn a_lost_database_connection_pauses_delivery_and_the_run_goes_on() {
    let Some(mut db) = TestDb::postgres() else {
        return;
    };
    let app = format!("hh_{}", std::process::id());
    db.url = format!("{}&application_name={app}", db.url);
    let db = db.migrated();
    let server = Server::start(|_| Reply::Slow(Duration::from_millis(20)));
    backlog(&db, &server, 300, &[]);
    let run = db.spawn(&["send_callbacks", "--concurrency", "2"]);
    std::thread::sleep(Duration::from_millis(400));
    db.sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}' AND pid <> pg_backend_pid()"
    ));
    let (code, out, err) = finish(run);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("database"), "it said what happened: {err}");
    assert!(out.contains("sent 300"), "{out}");
    let counts = deliveries(&server);
    assert_eq!(counts.len(), 300);
    assert!(counts.values().all(|&n| n == 1), "nothing was sent twice");
    assert_eq!(status_count(&db, "sent"), 300);
}

/// SQLite: another connection holds the write lock for longer than the run may wait.
/// The run stops sending what it cannot record, ends by its deadline with exit 3 and a
/// sentence naming the lock; the next run finishes the job.
#[test]
fn a_database_locked_past_the_deadline_ends_the_run_with_the_reason_and_loses_nothing() {
    let db = TestDb::sqlite().migrated();
    let server = Server::start(|_| Reply::Slow(Duration::from_millis(10)));
    backlog(&db, &server, 2000, &["--timeout", "1s"]);
    let run = db.spawn(&[
        "send_callbacks",
        "--concurrency",
        "4",
        "--max-runtime",
        "3s",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let mut locker = db.connect();
    locker.sql("PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE");
    let locked_at = Instant::now();
    let (code, out, err) = finish(run);
    let took = locked_at.elapsed();
    locker.sql("COMMIT");
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("locked"), "{err}");
    assert!(
        err.lines().last().unwrap().starts_with("httphooks: "),
        "one sentence at the end: {err}"
    );
    assert!(
        took < Duration::from_secs(6),
        "it kept its deadline: {took:?}"
    );
    let sent_while_locked = deliveries(&server).len();
    db.ok(&["send_callbacks", "--concurrency", "8"]);
    let counts = deliveries(&server);
    assert_eq!(counts.len(), 2000, "nothing was lost");
    let twice = counts.values().filter(|&&n| n > 1).count();
    assert!(
        twice <= 4 * 4,
        "{twice} sent twice (of {sent_while_locked})"
    );
}

/// SQLite: a lock held for a few seconds when the run starts costs it nothing: it
/// waits (within its deadline) and delivers everything.
#[test]
fn a_lock_held_when_the_run_starts_is_waited_out() {
    let db = TestDb::sqlite().migrated();
    let server = Server::answering(200);
    backlog(&db, &server, 50, &[]);
    let mut locker = db.connect();
    locker.sql("PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE");
    let run = db.spawn(&["send_callbacks", "--max-runtime", "20s"]);
    std::thread::sleep(Duration::from_secs(3));
    locker.sql("COMMIT");
    let (code, out, err) = finish(run);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sent 50"), "{out}{err}");
}

/// PostgreSQL: a migration (or any long transaction) holds an exclusive lock on the
/// queue. The run does not wait past its deadline for it: it ends with exit 3 naming
/// the lock, and the next run delivers everything.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_a_table_lock_does_not_hold_a_run_past_its_deadline() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = db.migrated();
    let server = Server::answering(200);
    backlog(&db, &server, 50, &[]);
    db.admit();
    let mut locker = db.connect();
    locker.sql("BEGIN; LOCK TABLE httphooks_callbacks IN ACCESS EXCLUSIVE MODE");
    let started = Instant::now();
    let (code, out, err) = db.run(&["send_callbacks", "--max-runtime", "3s"]);
    let took = started.elapsed();
    locker.sql("COMMIT");
    assert!(
        took < Duration::from_secs(6),
        "it kept its deadline: {took:?}"
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("locked"), "{err}");
    assert!(db.ok(&["send_callbacks"]).contains("sent 50"));
    assert_eq!(deliveries(&server).len(), 50);
}

/// Two tables, each with a hook to its own receiver, and `n` rows in each, inserted
/// interleaved so that due order alternates between the two hooks.
fn two_hooks(db: &TestDb, a: (&Server, &[&str]), b: (&Server, &[&str]), n: usize) {
    for table in ["a", "b"] {
        db.sql(&format!(
            "CREATE TABLE {table} ({}, v INTEGER)",
            db.id_column()
        ));
    }
    for (name, (server, flags)) in [("a", a), ("b", b)] {
        db.add_hook(
            name,
            name,
            "insert",
            &server.url(&format!("/{name}")),
            flags,
        );
    }
    let mut client = db.connect();
    for v in 0..n {
        client.sql(&format!(
            "INSERT INTO a (v) VALUES ({v}); INSERT INTO b (v) VALUES ({v})"
        ));
    }
}

// Issue scenario, scaled: hook A's receiver never answers, hook B's is fast; a second
// run starts while the first still waits on A. Nothing goes out twice, B is not held
// up by A, and both runs keep their deadlines.
on_every_backend!(overlapping_runs_with_a_dead_hook_send_nothing_twice, |db| {
    let db = db.migrated();
    let dead = Server::start(|_| Reply::Hang);
    let fast = Server::answering(200);
    two_hooks(
        &db,
        (&dead, &["--timeout", "4s"]),
        (&fast, &["--timeout", "1s"]),
        200,
    );
    let started = Instant::now();
    let first = db.spawn(&[
        "send_callbacks",
        "--concurrency",
        "4",
        "--max-runtime",
        "8s",
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let second = db.spawn(&[
        "send_callbacks",
        "--concurrency",
        "4",
        "--max-runtime",
        "6s",
    ]);
    let (code1, out1, err1) = finish(first);
    let (code2, out2, err2) = finish(second);
    assert_eq!((code1, code2), (0, 0), "{out1}{err1}{out2}{err2}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let b = deliveries(&fast);
    assert_eq!(b.len(), 200, "every B callback went out");
    assert!(b.values().all(|&n| n == 1), "none twice");
    let last_b = fast.received().iter().map(|r| r.at).max().unwrap();
    assert!(
        last_b.duration_since(started) < Duration::from_secs(3),
        "B was not held up by A: {:?}",
        last_b.duration_since(started)
    );
    // A's attempts time out; each is a real attempt of a different callback.
    let a = deliveries(&dead);
    assert!(!a.is_empty());
    assert!(
        a.values().all(|&n| n == 1),
        "no A callback was sent by both runs"
    );
    let claimed =
        db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE claim_token IS NOT NULL");
    assert_eq!(claimed, 0, "both runs gave back what they had not started");
});

// `--max-runtime` with a receiver that never answers: the run ends by the deadline
// plus the longest timeout in flight, plus a second.
on_every_backend!(
    max_runtime_holds_against_a_receiver_that_never_answers,
    |db| {
        let db = db.migrated();
        let dead = Server::start(|_| Reply::Hang);
        backlog(&db, &dead, 200, &["--timeout", "2s"]);
        let started = Instant::now();
        let out = db.ok(&["send_callbacks", "--max-runtime", "3s"]);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3 + 2 + 1), "ran {took:?}: {out}");
        assert!(out.contains("stopped at --max-runtime"), "{out}");
        let still_claimed =
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE claim_token IS NOT NULL");
        assert_eq!(still_claimed, 0, "unstarted claims were given back");
        assert!(
            deliveries(&dead).len() < 10,
            "a dead endpoint gets one request at a time, not the whole pool"
        );
    }
);

// A dead endpoint uses only its own share: the healthy one's callbacks all go out
// about as fast as they would alone.
on_every_backend!(a_dead_endpoint_does_not_starve_a_healthy_one, |db| {
    let db = db.migrated();
    let dead = Server::start(|_| Reply::Hang);
    let healthy = Server::start(|_| Reply::Slow(Duration::from_millis(5)));
    two_hooks(&db, (&dead, &["--timeout", "5s"]), (&healthy, &[]), 1000);
    let started = Instant::now();
    let out = db.ok(&["send_callbacks", "--max-runtime", "8s"]);
    let counts = deliveries(&healthy);
    assert_eq!(counts.len(), 1000, "{out}");
    let last = healthy.received().iter().map(|r| r.at).max().unwrap();
    // Alone: 1,000 requests of 5 ms at 16 at a time take about 0.3 s.
    assert!(
        last.duration_since(started) < Duration::from_secs(4),
        "the healthy endpoint finished after {:?}",
        last.duration_since(started)
    );
    assert!(
        deliveries(&dead).len() <= 4,
        "{:?}",
        deliveries(&dead).len()
    );
});

// More dead endpoints than workers: while nothing has answered, endpoints share half
// the workers, so the healthy one is served before any dead request times out, and
// dead endpoints never fill the run's window of claims.
on_every_backend!(many_dead_endpoints_do_not_starve_a_healthy_one, |db| {
    let db = db.migrated();
    let healthy = Server::start(|_| Reply::Slow(Duration::from_millis(5)));
    let dead: Vec<Server> = (0..24).map(|_| Server::start(|_| Reply::Hang)).collect();
    db.sql(&format!("CREATE TABLE t ({}, v INTEGER)", db.id_column()));
    db.add_hook("healthy", "t", "insert", &healthy.url("/"), &[]);
    for (n, server) in dead.iter().enumerate() {
        let name = format!("dead{n}");
        db.add_hook(&name, "t", "insert", &server.url("/"), &["--timeout", "3s"]);
    }
    let mut client = db.connect();
    for v in 0..60 {
        client.sql(&format!("INSERT INTO t (v) VALUES ({v})"));
    }
    let started = Instant::now();
    let out = db.ok(&["send_callbacks", "--max-runtime", "4s"]);
    assert_eq!(deliveries(&healthy).len(), 60, "{out}");
    let last = healthy.received().iter().map(|r| r.at).max().unwrap();
    assert!(
        last.duration_since(started) < Duration::from_millis(2500),
        "the healthy endpoint finished after {:?}, when the dead ones first timed out",
        last.duration_since(started)
    );
});

// An operator cannot retry or cancel a callback a run may have on the wire: that would
// send it twice, or send it with no record.
on_every_backend!(
    a_callback_in_flight_is_neither_retried_nor_cancelled,
    |db| {
        let db = db.migrated();
        let slow = Server::start(|_| Reply::Slow(Duration::from_secs(3)));
        backlog(&db, &slow, 1, &["--timeout", "10s"]);
        let run = db.spawn(&["send_callbacks"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while slow.received().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for command in ["retry", "cancel"] {
            let (code, _, err) = db.run(&["callbacks", command, "1"]);
            assert_eq!(code, 2, "{command}: {err}");
            assert!(
                err.contains("is being sent by a send_callbacks run right now"),
                "{err}"
            );
        }
        let (code, out, err) = finish(run);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(slow.received().len(), 1, "sent once");
        assert_eq!(status_count(&db, "sent"), 1);
    }
);

on_every_backend!(retry_after_lengthens_a_wait_but_never_shortens_it, |db| {
    let db = db.migrated();
    let asked = |value: &'static str| {
        Server::start(move |_| {
            Reply::WithHeaders(
                429,
                vec![("Retry-After".into(), value.into())],
                String::new(),
            )
        })
    };
    let (zero, long, nonsense) = (asked("0"), asked("3600"), asked("soon, maybe"));
    // (`long` is a keyword of MySQL's.)
    for (name, server) in [("zero", &zero), ("lengthy", &long), ("nonsense", &nonsense)] {
        db.sql(&format!(
            "CREATE TABLE {name} ({}, v INTEGER)",
            db.id_column()
        ));
        db.add_hook(name, name, "insert", &server.url("/"), &[]);
        db.sql(&format!("INSERT INTO {name} (v) VALUES (1)"));
    }
    let started = chrono::Utc::now().naive_utc();
    // A run goes on while callbacks are due: each callback may be tried only once.
    db.ok(&["send_callbacks"]);
    for server in [&zero, &long, &nonsense] {
        assert_eq!(server.received().len(), 1, "one attempt, then a wait");
    }
    let wait_of = |name: &str| {
        let shown = json(&db.ok(&["callbacks", "list", "--hook", name, "--format", "json"]));
        let next = shown[0]["next_attempt_at"].as_str().unwrap().to_owned();
        let next = chrono::DateTime::parse_from_rfc3339(&next)
            .unwrap()
            .naive_utc();
        (next - started).num_seconds()
    };
    let zero_wait = wait_of("zero");
    assert!(
        (7..=13).contains(&zero_wait),
        "Retry-After: 0 keeps the 10 s step: {zero_wait}"
    );
    let long_wait = wait_of("lengthy");
    assert!((3590..=3610).contains(&long_wait), "{long_wait}");
    let nonsense_wait = wait_of("nonsense");
    assert!(
        (7..=13).contains(&nonsense_wait),
        "ignored: {nonsense_wait}"
    );
});

// A callback whose stored event data was changed by hand fails alone, saying what
// happened instead of blaming the template; the others go out.
on_every_backend!(a_callback_with_broken_event_data_fails_alone, |db| {
    let db = db.migrated();
    let server = Server::answering(200);
    backlog(&db, &server, 5, &[]);
    let first = db.count("SELECT MIN(id) AS n FROM httphooks_callbacks");
    db.sql(&format!(
        "UPDATE httphooks_callbacks SET event_data = 'not json' WHERE id = {first}"
    ));
    let (code, out, err) = db.run(&["send_callbacks"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(deliveries(&server).len(), 4);
    assert_eq!(status_count(&db, "sent"), 4);
    let details = db
        .text(&format!(
            "SELECT status_details AS v FROM httphooks_callbacks WHERE id = {first} AND status = 'error'"
        ))
        .expect("the broken callback is an error");
    assert!(
        details.contains("not JSON") && details.contains("changed outside httphooks"),
        "{details}"
    );
    assert!(!details.contains("fix the template"), "{details}");
});

// `--limit` below the backlog: the run sends exactly the limit, including claims it had
// not yet marked as started when it reached it, and ends at once (it used to wait for
// ever with those claims in hand, deaf to the first SIGTERM).
on_every_backend!(
    a_run_stopped_by_its_limit_sends_all_it_claimed_and_ends,
    |db| {
        let db = db.migrated();
        let server = Server::answering(200);
        backlog(&db, &server, 3000, &[]);
        let started = Instant::now();
        let run = db.spawn(&[
            "send_callbacks",
            "--limit",
            "1000",
            "--concurrency",
            "16",
            "--max-runtime",
            "60s",
        ]);
        let (code, out, err) = finish(run);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ended after {:?}",
            started.elapsed()
        );
        assert!(out.contains("claimed 1000, sent 1000"), "{out}");
        assert_eq!(deliveries(&server).len(), 1000);
        assert_eq!(status_count(&db, "sent"), 1000);
        assert_eq!(status_count(&db, "waiting"), 2000);
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks WHERE claim_token IS NOT NULL"),
            0,
            "nothing is left claimed"
        );
    }
);
