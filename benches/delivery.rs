//! The delivery benchmark (README: Benchmark). Not a timed test: it prints figures.
//!
//!   cargo bench --bench delivery -- [--backend sqlite|postgres] [--n 100000]
//!   cargo bench --features mysql --bench delivery -- --backend mysql [--n 100000]
//!       [--latency-ms 0] [--concurrency 16] [--monitor-rows 1000000]
//!
//! 1. Trigger cost: inserts N rows (transactions of 1,000 single-row INSERTs) into a
//!    table with no trigger, one with a minimal hand-written outbox trigger (the row as
//!    JSON into a bare table), and one with an httphooks hook; prints the ratios.
//! 2. Delivery: runs the real `httphooks send_callbacks` on the N callbacks the hook
//!    made, against a loopback receiver (optionally answering after a latency); prints
//!    callbacks/s and the sender's peak RSS, and checks that every callback arrived once.
//! 3. monitor_callbacks and delete_old_callbacks over `--monitor-rows` callbacks.
//!
//! Two more scenarios, for the engine's fairness and adaptive limits:
//!
//!   cargo bench --bench delivery -- --scenario hanging [--n 2000] [--latency-ms 20]
//!       One endpoint never answers, one is healthy (answering after --latency-ms):
//!       the healthy one's rate with the hanging one beside it, against its rate alone;
//!       then the same with the hanging one a route (`/hang`) of the healthy server.
//!   cargo bench --bench delivery -- --scenario slowdown [--n 600]
//!       A receiver that takes 10 ms plus 10 ms per request it is already serving:
//!       how many requests it is given at once over time (the limiter settling).
//!
//!   cargo bench --bench delivery -- --scenario latency [--backend …] [--concurrency 16]
//!       One `send_callbacks --follow` run, and a writer committing single-row
//!       transactions at a steady rate (idle 8 s, then 20/s, 1,000/s and 5,000/s for
//!       10 s each): per phase, the time from each commit's return to its request's
//!       arrival (p50, p95, p99, max), the commit rate achieved, the sender's CPU, and
//!       that every row arrived exactly once.
//!
//!   cargo bench --bench delivery -- --scenario backfill [--n 1000000]
//!       `hooks backfill` over N existing rows while an application updates rows one
//!       at a time: rows/s, and the longest and 99th percentile of its writes' times.
//!   cargo bench --bench delivery -- --scenario coalesce [--n 100000] [--rows 1000]
//!       N waiting updates over `--rows` rows, sent by a hook with `--coalesce` and by
//!       one without: requests made and time taken by each.
//!
//!   cargo bench --bench delivery -- --scenario throughput [--n 50000] [--concurrency 32]
//!       [--batch-size 1]
//!       What one callback costs the sender against a fast receiver: nginx (from PATH;
//!       Debian's nginx-light) answering 200 on loopback, N callbacks sent by one run:
//!       callbacks/s, the sender's CPU time (user, system) and context switches per
//!       callback, and, where wrk is on PATH, wrk's rate against the same nginx with
//!       as many connections (POSTs of a callback's size) and the ratio of the two.
//!       With `--batch-size B` the hook sends batches of B (`hooks add --batch-size`):
//!       events/s and the requests they took (no wrk: it compares single requests).
//!
//! PostgreSQL runs in a schema of its own in the database named by
//! HTTPHOOKS_TEST_POSTGRES_URL; MySQL in a database of its own on the server named by
//! HTTPHOOKS_TEST_MYSQL_URL.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "common/nginx.rs"]
mod nginx;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::server::{Reply, Server};
use common::TestDb;

/// Counts the errors, with a limit no run reaches (it is the time that is measured).
const MONITOR_ERRORS: [&str; 5] = [
    "monitor_callbacks",
    "--status",
    "error",
    "--callbacks_limit",
    "100000000",
];

struct Options {
    scenario: String,
    postgres: bool,
    mysql: bool,
    n: usize,
    latency_ms: u64,
    concurrency: usize,
    monitor_rows: usize,
    rows: usize,
    batch_size: usize,
}

fn options() -> Options {
    let mut options = Options {
        scenario: "standard".to_owned(),
        postgres: false,
        mysql: false,
        n: 100_000,
        latency_ms: 0,
        concurrency: 16,
        monitor_rows: 1_000_000,
        rows: 1_000,
        batch_size: 1,
    };
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut i = 0;
    while i + 1 < args.len() + 1 && i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--backend" => {
                options.postgres = value == "postgres";
                options.mysql = value == "mysql";
            }
            "--scenario" => options.scenario = value,
            "--n" => options.n = value.parse().expect("--n N"),
            "--latency-ms" => options.latency_ms = value.parse().expect("--latency-ms MS"),
            "--concurrency" => options.concurrency = value.parse().expect("--concurrency N"),
            "--monitor-rows" => options.monitor_rows = value.parse().expect("--monitor-rows N"),
            "--rows" => options.rows = value.parse().expect("--rows N"),
            "--batch-size" => options.batch_size = value.parse().expect("--batch-size N"),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    options
}

fn binary() -> Command {
    match std::env::var("BENCH_WRAP") {
        Ok(wrap) if !wrap.is_empty() => {
            let mut parts = wrap.split_whitespace();
            let mut command = Command::new(parts.next().unwrap());
            command.args(parts).arg(env!("CARGO_BIN_EXE_httphooks"));
            command
        }
        _ => Command::new(env!("CARGO_BIN_EXE_httphooks")),
    }
}

fn run(db: &TestDb, args: &[&str]) -> (Duration, String) {
    let started = Instant::now();
    let output = binary()
        .current_dir(db.dir.path())
        .env("DATABASE_URL", &db.url)
        .args(args)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Whatever the sender logged (RUST_LOG), for whoever runs the benchmark.
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    (
        elapsed,
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    )
}

fn children_peak_rss_kib() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss
}

mod tables {
    diesel::table! { plain (id) { id -> Integer, name -> Text, qty -> Integer, price -> Double, note -> Text } }
    diesel::table! { outboxed (id) { id -> Integer, name -> Text, qty -> Integer, price -> Double, note -> Text } }
    diesel::table! { hooked (id) { id -> Integer, name -> Text, qty -> Integer, price -> Double, note -> Text } }
}

/// Inserts n rows as an application would: single-row INSERTs through diesel's cached
/// prepared statements, 1,000 to a transaction.
fn insert_rows(db: &TestDb, table: &str, n: usize) -> Duration {
    use diesel::prelude::*;
    macro_rules! insert {
        ($conn:expr, $table:ident) => {{
            let started = Instant::now();
            for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
                $conn
                    .transaction::<_, diesel::result::Error, _>(|conn| {
                        for &i in chunk {
                            diesel::insert_into(tables::$table::table)
                                .values((
                                    tables::$table::name.eq(format!("item {i}")),
                                    tables::$table::qty.eq(i as i32),
                                    tables::$table::price.eq((i % 100) as f64 + 0.5),
                                    tables::$table::note.eq(format!("a note about item {i}")),
                                ))
                                .execute(conn)?;
                        }
                        Ok(())
                    })
                    .unwrap();
            }
            started.elapsed()
        }};
    }
    macro_rules! on_table {
        ($conn:expr) => {
            match table {
                "plain" => insert!($conn, plain),
                "outboxed" => insert!($conn, outboxed),
                _ => insert!($conn, hooked),
            }
        };
    }
    match db.connect() {
        common::Client::Sqlite(mut conn) => {
            use diesel::connection::SimpleConnection;
            // Each table pays for checkpointing the pages it wrote: one checkpoint at the
            // end of its batch, timed with it. SQLite's automatic checkpoint would land in
            // whichever batch happens to cross 1,000 pages, which made the ratios swing
            // by ±10 % from run to run.
            conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0")
                .unwrap();
            let inserting = on_table!(&mut conn);
            let started = Instant::now();
            conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
            inserting + started.elapsed()
        }
        common::Client::Postgres(mut conn) => on_table!(&mut conn),
        #[cfg(feature = "mysql")]
        common::Client::Mysql(mut conn) => on_table!(&mut conn),
    }
}

fn main() {
    let options = options();
    let db = if options.postgres {
        TestDb::postgres().expect("set HTTPHOOKS_TEST_POSTGRES_URL to benchmark PostgreSQL")
    } else if options.mysql {
        mysql_db()
    } else {
        TestDb::sqlite()
    };
    let db = db.migrated();
    match options.scenario.as_str() {
        "hanging" => return hanging(&db, &options),
        "slowdown" => return slowdown(&db, &options),
        "latency" => return latency(&db, &options),
        "backfill" => return backfill(&db, &options),
        "coalesce" => return coalesce(&db, &options),
        "throughput" => return throughput(&db, &options),
        _ => {}
    }
    let backend = if options.postgres {
        "PostgreSQL"
    } else if options.mysql {
        "MySQL"
    } else {
        "SQLite"
    };
    let n = options.n;
    println!(
        "backend {backend}, N = {n}, concurrency {}, receiver latency {} ms",
        options.concurrency, options.latency_ms
    );

    // 1. Trigger cost.
    let columns = format!(
        "{}, name TEXT, qty INTEGER, price REAL, note TEXT",
        db.id_column()
    );
    for table in ["plain", "outboxed", "hooked"] {
        db.sql(&format!("CREATE TABLE {table} ({columns})"));
    }
    if options.postgres {
        db.sql(
            "CREATE TABLE outbox (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL);
             CREATE FUNCTION outbox_capture() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO outbox (payload) VALUES (to_jsonb(NEW)::text); RETURN NULL; END; $$;
             CREATE TRIGGER outbox_capture AFTER INSERT ON outboxed FOR EACH ROW EXECUTE FUNCTION outbox_capture();",
        );
    } else if options.mysql {
        db.sql(
            "CREATE TABLE outbox (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload LONGTEXT NOT NULL);
             CREATE TRIGGER outbox_capture AFTER INSERT ON outboxed FOR EACH ROW
               INSERT INTO outbox (payload) VALUES (JSON_OBJECT('id', NEW.id, 'name', NEW.name, 'qty', NEW.qty,
                 'price', NEW.price, 'note', NEW.note));",
        );
    } else {
        db.sql(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
             CREATE TRIGGER outbox_capture AFTER INSERT ON outboxed FOR EACH ROW BEGIN
               INSERT INTO outbox (payload) VALUES (json_object('id', NEW.id, 'name', NEW.name, 'qty', NEW.qty,
                 'price', NEW.price, 'note', NEW.note)); END;",
        );
    }
    let latency = options.latency_ms;
    let receiver = Server::start_lean(move |_| {
        if latency > 0 {
            Reply::Slow(Duration::from_millis(latency))
        } else {
            Reply::Status(200)
        }
    });
    run(
        &db,
        &[
            "hooks",
            "add",
            "bench",
            "--table",
            "hooked",
            "--events",
            "insert",
            "--url",
            &receiver.url("/bench"),
        ],
    );
    // Ten rounds of n/10 rows per table, the order rotated each round, so that cache
    // warm-up does not favour one table and the disk's noise averages out.
    const ROUNDS: usize = 10;
    let mut spent = [Duration::ZERO; 3];
    let tables = ["plain", "outboxed", "hooked"];
    for round in 0..ROUNDS {
        let rows = n / ROUNDS + usize::from(round < n % ROUNDS);
        for k in 0..3 {
            let t = (round + k) % 3;
            spent[t] += insert_rows(&db, tables[t], rows);
        }
    }
    let [plain, outboxed, hooked] = spent;
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "trigger cost: insert {n} rows: no trigger {:.2}s ({:.0}/s), outbox trigger {:.2}s, httphooks {:.2}s ({:.0}/s)",
        plain.as_secs_f64(),
        rate(plain),
        outboxed.as_secs_f64(),
        hooked.as_secs_f64(),
        rate(hooked)
    );
    println!(
        "trigger cost: httphooks ÷ no trigger = {:.2}, httphooks ÷ minimal outbox = {:.2}",
        hooked.as_secs_f64() / plain.as_secs_f64(),
        hooked.as_secs_f64() / outboxed.as_secs_f64()
    );

    // 2. Delivery.
    let concurrency = options.concurrency.to_string();
    let (elapsed, summary) = run(&db, &["send_callbacks", "--concurrency", &concurrency]);
    let received = receiver.received();
    let ids: HashSet<String> = received
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), n, "every callback arrives");
    assert_eq!(received.len(), n, "and only once");
    println!("{summary}");
    println!(
        "delivery: {n} callbacks in {:.2}s = {:.0} callbacks/s (process wall time); sender peak RSS {:.1} MiB",
        elapsed.as_secs_f64(),
        rate(elapsed),
        children_peak_rss_kib() as f64 / 1024.0
    );
    if latency > 0 {
        let ceiling = options.concurrency as f64 * 1000.0 / latency as f64;
        println!(
            "delivery: {:.0}% of the ceiling C / latency = {ceiling:.0}/s",
            100.0 * rate(elapsed) / ceiling
        );
    }

    // 3. monitor_callbacks and delete_old_callbacks over many rows.
    let m = options.monitor_rows;
    if m > 0 {
        let started = Instant::now();
        let now = if options.postgres {
            "(now() AT TIME ZONE 'UTC')"
        } else if options.mysql {
            "UTC_TIMESTAMP(6)"
        } else {
            "strftime('%Y-%m-%d %H:%M:%f', 'now')"
        };
        // Made 40 days ago and not touched since, as old rows are: aging them here with
        // an UPDATE would leave the database a million row versions to clean up (InnoDB's
        // purge, PostgreSQL's vacuum) while delete_old_callbacks is timed.
        let old = if options.postgres {
            "(now() AT TIME ZONE 'UTC') - INTERVAL '40 days'"
        } else if options.mysql {
            "DATE_SUB(UTC_TIMESTAMP(6), INTERVAL 40 DAY)"
        } else {
            "strftime('%Y-%m-%d %H:%M:%f', 'now', '-40 days')"
        };
        let delivered_up_to = db.count("SELECT COALESCE(MAX(id), 0) AS n FROM httphooks_callbacks");
        let select = format!(
            "SELECT h.id, h.version_id, 'insert', NULL, '{{}}', CASE WHEN i % 10 = 0 THEN 'error' ELSE 'sent' END, {now}, {old}"
        );
        let columns =
            "(hook_id, version_id, event_type, object_id, event_data, status, updated_at, created_at)";
        if options.postgres {
            db.sql(&format!(
                "INSERT INTO httphooks_callbacks {columns} {select} FROM generate_series(1, {m}) AS i, httphooks_hooks h"
            ));
        } else if options.mysql {
            // Numbers from a cross join of digits (MySQL's recursive CTEs stop at 1,000
            // levels unless reconfigured).
            let places = (m.max(2) as f64).log10().ceil() as usize;
            let from: Vec<String> = (0..places).map(|p| format!("digits d{p}")).collect();
            let number: Vec<String> = (0..places)
                .map(|p| format!("d{p}.d * {}", 10usize.pow(p as u32)))
                .collect();
            db.sql(&format!(
                "CREATE TABLE digits (d INT); INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9); \
                 INSERT INTO httphooks_callbacks {columns} {select} \
                 FROM (SELECT {} AS i FROM {}) s, httphooks_hooks h WHERE s.i < {m}",
                number.join(" + "),
                from.join(", ")
            ));
        } else {
            db.sql(&format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {m}) \
                 INSERT INTO httphooks_callbacks {columns} {select} FROM s, httphooks_hooks h"
            ));
        }
        println!(
            "setup: {m} more callbacks in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let median_monitor = || {
            let mut times: Vec<Duration> = (0..5).map(|_| run(&db, &MONITOR_ERRORS).0).collect();
            times.sort();
            times[2].as_secs_f64() * 1000.0
        };
        let cold = median_monitor();
        // What autovacuum does soon after a bulk insert: then counts come from the index alone.
        db.sql(if options.postgres {
            "VACUUM ANALYZE httphooks_callbacks"
        } else if options.mysql {
            "ANALYZE TABLE httphooks_callbacks"
        } else {
            "ANALYZE"
        });
        println!(
            "monitor_callbacks over {} rows (whole process): median {cold:.1} ms right after the bulk insert, \
             {:.1} ms after (auto)vacuum",
            m + n,
            median_monitor()
        );
        let (_, line) = run(&db, &MONITOR_ERRORS);
        println!("monitor_callbacks prints: {line}");
        let (_, line) = run(
            &db,
            &[
                "monitor_callbacks",
                "--status",
                "waiting",
                "--minutes_ago",
                "10",
            ],
        );
        println!("monitor_callbacks --minutes_ago: {line}");
        // The operator's view over the same rows: status and the other monitor checks.
        let median_of = |args: &[&str]| {
            let mut times: Vec<Duration> = (0..5).map(|_| run(&db, args).0).collect();
            times.sort();
            times[2].as_secs_f64() * 1000.0
        };
        println!(
            "status over {} rows (whole process): median {:.1} ms; monitor_callbacks --lag 10 --no-run-since 10: median {:.1} ms",
            m + n,
            median_of(&["status"]),
            median_of(&["monitor_callbacks", "--lag", "10", "--no-run-since", "10"])
        );

        let age = if options.postgres {
            "created_at - INTERVAL '40 days'"
        } else if options.mysql {
            "DATE_SUB(created_at, INTERVAL 40 DAY)"
        } else {
            "datetime(created_at, '-40 days')"
        };
        // The N callbacks delivered above are aged too.
        db.sql(&format!(
            "UPDATE httphooks_callbacks SET created_at = {age} WHERE id <= {delivered_up_to}"
        ));
        let total = db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks");
        let (elapsed, line) = run(&db, &["delete_old_callbacks", "30"]);
        println!("{line}");
        println!(
            "delete_old_callbacks: {total} rows in {:.2}s = {:.0} rows/s",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64()
        );
    }
}

#[cfg(feature = "mysql")]
fn mysql_db() -> TestDb {
    TestDb::mysql().expect("set HTTPHOOKS_TEST_MYSQL_URL to benchmark MySQL")
}

#[cfg(not(feature = "mysql"))]
fn mysql_db() -> TestDb {
    panic!(
        "benchmark MySQL with `cargo bench --features mysql --bench delivery -- --backend mysql`"
    )
}

/// A table `name` with a hook to `url` (extra flags after), and `rows` rows inserted
/// in one statement.
fn hooked_table(db: &TestDb, name: &str, url: &str, flags: &[&str]) {
    db.sql(&format!(
        "CREATE TABLE {name} ({}, v INTEGER)",
        db.id_column()
    ));
    let mut args = vec![
        "hooks", "add", name, "--table", name, "--events", "insert", "--url", url,
    ];
    args.extend(flags);
    run(db, &args);
}

fn insert(db: &TestDb, tables: &[&str], rows: usize) {
    let mut client = db.connect();
    let statements: Vec<String> = tables
        .iter()
        .map(|t| format!("INSERT INTO {t} (v) VALUES (1)"))
        .collect();
    let one_of_each = statements.join("; ");
    let mut sql = String::from("BEGIN;");
    for _ in 0..rows {
        sql.push_str(&one_of_each);
        sql.push(';');
    }
    sql.push_str("COMMIT;");
    client.sql(&sql);
}

/// Seconds from `started` until the last request `server` received.
fn last_arrival(server: &Server, started: Instant) -> f64 {
    server
        .received()
        .iter()
        .map(|r| r.at.duration_since(started).as_secs_f64())
        .fold(0.0, f64::max)
}

/// One endpoint never answers, the other is healthy: the healthy one's rate beside
/// it, against its rate alone (same rows, same run settings). Then the same with the
/// hanging one a route of the healthy server (`/hang` beside `/healthy`).
fn hanging(db: &TestDb, options: &Options) {
    let n = options.n.min(20_000);
    let latency = options.latency_ms;
    let healthy = Server::start_lean(move |request| match (request.path.as_str(), latency) {
        ("/hang", _) => Reply::Hang,
        (_, 0) => Reply::Status(200),
        (_, ms) => Reply::Slow(Duration::from_millis(ms)),
    });
    let dead = Server::start_lean(|_| Reply::Hang);
    hooked_table(db, "alone", &healthy.url("/alone"), &[]);
    hooked_table(db, "healthy", &healthy.url("/healthy"), &[]);
    hooked_table(db, "dead", &dead.url("/dead"), &["--timeout", "10s"]);
    hooked_table(db, "route", &healthy.url("/healthy"), &[]);
    hooked_table(db, "hang", &healthy.url("/hang"), &["--timeout", "10s"]);
    let concurrency = options.concurrency.to_string();
    println!(
        "scenario hanging: {n} callbacks to a healthy endpoint ({latency} ms), concurrency {concurrency}"
    );

    insert(db, &["alone"], n);
    let started = Instant::now();
    run(db, &["send_callbacks", "--concurrency", &concurrency]);
    let alone = last_arrival(&healthy, started);
    let alone_rate = n as f64 / alone;
    println!("alone: {n} in {alone:.2}s = {alone_rate:.0}/s");

    insert(db, &["healthy", "dead"], n);
    let before = healthy.received().len();
    let deadline = format!("{}s", (alone * 3.0).ceil() as u64 + 12);
    let started = Instant::now();
    let (elapsed, summary) = run(
        db,
        &[
            "send_callbacks",
            "--concurrency",
            &concurrency,
            "--max-runtime",
            &deadline,
        ],
    );
    let beside = healthy.received()[before..]
        .iter()
        .map(|r| r.at.duration_since(started).as_secs_f64())
        .fold(0.0, f64::max);
    let delivered = healthy.received().len() - before;
    assert_eq!(delivered, n, "every healthy callback arrived once");
    let beside_rate = n as f64 / beside;
    println!("{summary}");
    println!(
        "beside a hanging endpoint: {n} in {beside:.2}s = {beside_rate:.0}/s ({:.0}% of its rate alone); \
         the hanging endpoint got {} requests; the run took {:.1}s (--max-runtime {deadline})",
        100.0 * beside_rate / alone_rate,
        dead.received().len(),
        elapsed.as_secs_f64()
    );

    // The hanging endpoint's backlog would hang beside the route too.
    run(db, &["hooks", "remove", "dead", "--force"]);
    insert(db, &["route", "hang"], n);
    let count = |path: &str| healthy.received().iter().filter(|r| r.path == path).count();
    let (healthy_before, hang_before) = (count("/healthy"), count("/hang"));
    let total_before = healthy.received().len();
    let started = Instant::now();
    let (elapsed, summary) = run(
        db,
        &[
            "send_callbacks",
            "--concurrency",
            &concurrency,
            "--max-runtime",
            &deadline,
        ],
    );
    let beside = healthy.received()[total_before..]
        .iter()
        .filter(|r| r.path == "/healthy")
        .map(|r| r.at.duration_since(started).as_secs_f64())
        .fold(0.0, f64::max);
    assert_eq!(
        count("/healthy") - healthy_before,
        n,
        "every healthy callback arrived once"
    );
    let beside_rate = n as f64 / beside;
    println!("{summary}");
    println!(
        "beside a hanging route of the same server: {n} in {beside:.2}s = {beside_rate:.0}/s ({:.0}% of its rate alone); \
         the hanging route got {} requests; the run took {:.1}s (--max-runtime {deadline})",
        100.0 * beside_rate / alone_rate,
        count("/hang") - hang_before,
        elapsed.as_secs_f64()
    );
}

/// A receiver that slows down under load: 10 ms plus 10 ms per request it is already
/// serving. Prints, every half second, how many requests it was serving (what the
/// endpoint's limit let through) and their latency.
fn slowdown(db: &TestDb, options: &Options) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let n = options.n.min(5_000);
    let serving = Arc::new(AtomicUsize::new(0));
    let samples: Arc<Mutex<Vec<(Instant, usize, u64)>>> = Arc::default();
    let receiver = {
        let (serving, samples) = (Arc::clone(&serving), Arc::clone(&samples));
        Server::start_lean(move |_| {
            let now_serving = serving.fetch_add(1, Ordering::SeqCst) + 1;
            let latency = 10 + 10 * now_serving as u64;
            std::thread::sleep(Duration::from_millis(latency));
            serving.fetch_sub(1, Ordering::SeqCst);
            samples
                .lock()
                .unwrap()
                .push((Instant::now(), now_serving, latency));
            Reply::Status(200)
        })
    };
    hooked_table(db, "slow", &receiver.url("/slow"), &[]);
    insert(db, &["slow"], n);
    let concurrency = options.concurrency.to_string();
    println!("scenario slowdown: {n} callbacks, concurrency {concurrency}, receiver 10 ms + 10 ms per request it serves");
    let started = Instant::now();
    let (elapsed, summary) = run(db, &["send_callbacks", "--concurrency", &concurrency]);
    println!("{summary}");
    println!("| time | requests at once (max) | latency (mean) | answered in the interval |");
    println!("| --- | --- | --- | --- |");
    let samples = samples.lock().unwrap();
    let step = 0.5;
    let mut t = 0.0;
    while t < elapsed.as_secs_f64() {
        let window: Vec<&(Instant, usize, u64)> = samples
            .iter()
            .filter(|(at, _, _)| {
                let s = at.duration_since(started).as_secs_f64();
                s >= t && s < t + step
            })
            .collect();
        if !window.is_empty() {
            let most = window.iter().map(|w| w.1).max().unwrap();
            let mean = window.iter().map(|w| w.2).sum::<u64>() as f64 / window.len() as f64;
            println!(
                "| {t:.1}–{:.1}s | {most} | {mean:.0} ms | {} |",
                t + step,
                window.len()
            );
        }
        t += step;
    }
    let fixed = options.concurrency as f64 * 1000.0 / (10.0 + 10.0 * options.concurrency as f64);
    println!(
        "delivered {n} in {:.1}s = {:.0}/s; a fixed {concurrency} at once would get {fixed:.0}/s at {} ms each",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        10 + 10 * options.concurrency
    );
}

/// The CPU time (user + system) a process has used so far, from /proc.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // utime and stime are the 14th and 15th fields; the rest starts at the 3rd.
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / per_second)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// How `send_callbacks --follow` keeps up with a writer: see the module's comment.
fn latency(db: &TestDb, options: &Options) {
    use std::collections::HashMap;
    let receiver = Server::start(|_| Reply::Status(200));
    db.sql(&format!(
        "CREATE TABLE events ({}, v INTEGER)",
        db.id_column()
    ));
    run(
        db,
        &[
            "hooks",
            "add",
            "events",
            "--table",
            "events",
            "--events",
            "insert",
            "--url",
            &receiver.url("/events"),
        ],
    );
    const PHASES: [(&str, u32, u64); 4] = [
        ("idle", 0, 8),
        ("sparse", 20, 10),
        ("burst", 1_000, 10),
        ("fast", 5_000, 10),
    ];
    let concurrency = options.concurrency.to_string();
    let mut sender = binary()
        .current_dir(db.dir.path())
        .env("DATABASE_URL", &db.url)
        .args([
            "send_callbacks",
            "--follow",
            "--max-runtime",
            "300s",
            "--concurrency",
            &concurrency,
            "-q",
        ])
        .spawn()
        .unwrap();
    let pid = sender.id();
    let started = Instant::now();
    while db.count("SELECT COUNT(*) AS n FROM httphooks_runs WHERE ended_at IS NULL") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the run started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    // The writer: an application committing one row per transaction, with the
    // settings a high-rate writer uses (its own commits need not wait for the disk).
    let mut writer = db.connect();
    if db.is_sqlite() {
        writer.sql("PRAGMA synchronous = NORMAL");
    } else if db.is_postgres() {
        writer.sql("SET synchronous_commit = off");
    }
    let backend = if db.is_postgres() {
        "PostgreSQL"
    } else if db.is_mysql() {
        "MySQL/MariaDB"
    } else {
        "SQLite"
    };
    println!(
        "scenario latency: {backend}, one send_callbacks --follow run, concurrency {concurrency}"
    );
    println!("| phase | commits/s asked | achieved | rows | p50 | p95 | p99 | max | sender CPU | of a core |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut committed: HashMap<i64, Instant> = HashMap::new();
    let mut next_id: i64 = 1;
    for (name, rate, seconds) in PHASES {
        let cpu_before = cpu_of(pid);
        let phase_started = Instant::now();
        let first_id = next_id;
        let rows = u64::from(rate) * seconds;
        for i in 0..rows {
            let due = phase_started + Duration::from_secs_f64(i as f64 / f64::from(rate));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            writer.sql(&format!("INSERT INTO events (id, v) VALUES ({next_id}, 1)"));
            committed.insert(next_id, Instant::now());
            next_id += 1;
        }
        let writing = phase_started.elapsed();
        if rows == 0 {
            std::thread::sleep(Duration::from_secs(seconds));
        }
        // Every row of the phase arrived (or 30 s passed).
        let waiting = Instant::now();
        while receiver.received().len() < (next_id - 1) as usize
            && waiting.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let cpu = cpu_of(pid) - cpu_before;
        let wall = phase_started.elapsed();
        let mut latencies: Vec<f64> = receiver
            .received()
            .iter()
            .filter_map(|request| {
                let body: serde_json::Value = serde_json::from_str(&request.body).ok()?;
                let id = body["object_serialization"]["id"].as_i64()?;
                (id >= first_id && id < next_id).then(|| {
                    request
                        .at
                        .saturating_duration_since(committed[&id])
                        .as_secs_f64()
                        * 1000.0
                })
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        let ms = |p: f64| format!("{:.1} ms", percentile(&latencies, p));
        let (achieved, p50, p95, p99, max) = if rows == 0 {
            (
                "-".to_owned(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            )
        } else {
            (
                format!("{:.0}/s", rows as f64 / writing.as_secs_f64()),
                ms(0.50),
                ms(0.95),
                ms(0.99),
                ms(1.0),
            )
        };
        println!(
            "| {name} ({seconds} s) | {rate} | {achieved} | {}/{rows} | {p50} | {p95} | {p99} | {max} | {:.2} s in {:.1} s | {:.1} % |",
            latencies.len(),
            cpu.as_secs_f64(),
            wall.as_secs_f64(),
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
        );
    }
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let status = sender.wait().unwrap();
    let mut arrivals: HashMap<String, usize> = HashMap::new();
    for request in receiver.received() {
        *arrivals
            .entry(request.header("webhook-id").unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let rows = (next_id - 1) as usize;
    let once = arrivals.values().all(|&n| n == 1);
    println!(
        "every row arrived exactly once: {} ({} rows, {} requests, {} distinct); the run ended with {status}",
        if arrivals.len() == rows && once { "yes" } else { "NO" },
        rows,
        receiver.received().len(),
        arrivals.len()
    );
}

/// A table `name` (id, v) with rows 1..=n, made in one statement, before any hook.
fn numbered_rows(db: &TestDb, name: &str, n: usize) {
    db.sql(&format!(
        "CREATE TABLE {name} (id BIGINT PRIMARY KEY, v INTEGER NOT NULL)"
    ));
    if db.is_postgres() {
        db.sql(&format!(
            "INSERT INTO {name} (id, v) SELECT i, 0 FROM generate_series(1, {n}) AS i"
        ));
    } else {
        db.sql(&format!(
            "INSERT INTO {name} (id, v) WITH RECURSIVE k(i) AS \
             (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n}) SELECT i, 0 FROM k"
        ));
    }
}

/// `hooks backfill` over N rows beside an application writing: see the module's comment.
fn backfill(db: &TestDb, options: &Options) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let n = options.n;
    if db.is_mysql() {
        // The recursive CTE that makes the rows goes deeper than MariaDB's default.
        db.sql(&format!("SET GLOBAL max_recursive_iterations = {}", n + 1));
    }
    numbered_rows(db, "items", n);
    let receiver = Server::start_lean(|_| Reply::Status(200));
    run(
        db,
        &[
            "hooks",
            "add",
            "items",
            "--table",
            "items",
            "--events",
            "insert,update",
            "--url",
            &receiver.url("/items"),
        ],
    );
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let writing = Arc::clone(&writing);
        let mut app = db.connect();
        std::thread::spawn(move || {
            let mut waits = Vec::new();
            let mut k = 0usize;
            while writing.load(Ordering::SeqCst) {
                let started = Instant::now();
                app.sql(&format!(
                    "UPDATE items SET v = v + 1 WHERE id = {}",
                    k % n + 1
                ));
                waits.push(started.elapsed().as_secs_f64() * 1000.0);
                k += 7919;
                std::thread::sleep(Duration::from_millis(1));
            }
            waits
        })
    };
    let (elapsed, line) = run(db, &["hooks", "backfill", "items", "--chunk-size", "1000"]);
    writing.store(false, Ordering::SeqCst);
    let mut waits = writer.join().unwrap();
    waits.sort_by(f64::total_cmp);
    println!("{line}");
    println!(
        "scenario backfill: {n} rows in {:.1}s = {:.0} rows/s; the application's {} single-row updates meanwhile took p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        waits.len(),
        percentile(&waits, 0.5),
        percentile(&waits, 0.99),
        percentile(&waits, 1.0)
    );
}

/// N waiting updates over `--rows` rows, with and without `--coalesce`.
fn coalesce(db: &TestDb, options: &Options) {
    let (n, rows) = (options.n, options.rows.max(1));
    let latency = options.latency_ms;
    let receiver = Server::start_lean(move |_| match latency {
        0 => Reply::Status(200),
        ms => Reply::Slow(Duration::from_millis(ms)),
    });
    for (table, flags) in [("folded", &["--coalesce"][..]), ("every", &[][..])] {
        numbered_rows(db, table, rows);
        let mut args = vec![
            "hooks", "add", table, "--table", table, "--events", "update", "--url",
        ];
        let url = receiver.url(&format!("/{table}"));
        args.push(&url);
        args.extend(flags);
        run(db, &args);
        for _ in 0..n / rows {
            db.sql(&format!("UPDATE {table} SET v = v + 1"));
        }
        // Every change admitted before the clock starts, as after an outage.
        run(db, &["callbacks", "list", "--limit", "1"]);
        let before = receiver.received().len();
        let (elapsed, line) = run(db, &["send_callbacks", "--hook_id", table]);
        println!(
            "scenario coalesce, {}: {} updates over {rows} rows: {} requests in {:.2}s\n  {line}",
            if flags.is_empty() {
                "without --coalesce"
            } else {
                "--coalesce"
            },
            n / rows * rows,
            receiver.received().len() - before,
            elapsed.as_secs_f64()
        );
    }
}

/// CPU time and context switches of the children waited for so far.
fn children_usage() -> (Duration, Duration, i64, i64) {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (
        time(usage.ru_utime),
        time(usage.ru_stime),
        usage.ru_nvcsw,
        usage.ru_nivcsw,
    )
}

fn throughput(db: &TestDb, options: &Options) {
    let n = options.n;
    let concurrency = options.concurrency;
    let nginx = nginx::Nginx::start();
    let url = format!("http://127.0.0.1:{}/bench", nginx.port);
    db.sql(&format!(
        "CREATE TABLE hooked ({}, name TEXT, qty INTEGER, price REAL, note TEXT)",
        db.id_column()
    ));
    let batch_size = options.batch_size.to_string();
    let mut add = vec![
        "hooks", "add", "bench", "--table", "hooked", "--events", "insert", "--url", &url,
    ];
    if options.batch_size > 1 {
        add.extend(["--batch-size", &batch_size]);
    }
    run(db, &add);
    insert_rows(db, "hooked", n);
    let before = children_usage();
    let (elapsed, summary) = run(
        db,
        &["send_callbacks", "--concurrency", &concurrency.to_string()],
    );
    let after = children_usage();
    assert!(
        summary.contains(&format!("sent {n},")),
        "every callback is sent: {summary}"
    );
    let rate = n as f64 / elapsed.as_secs_f64();
    let (user, system) = (after.0 - before.0, after.1 - before.1);
    let (voluntary, involuntary) = (after.2 - before.2, after.3 - before.3);
    println!("{summary}");
    println!(
        "scenario throughput, {}: {n} callbacks to nginx in {:.2}s = {rate:.0} callbacks/s, concurrency {concurrency}",
        if db.is_sqlite() {
            "SQLite"
        } else if db.is_mysql() {
            "MySQL"
        } else {
            "PostgreSQL"
        },
        elapsed.as_secs_f64()
    );
    println!(
        "  sender CPU {:.2}s user + {:.2}s system = {:.1} µs per callback; context switches {voluntary} voluntary + {involuntary} involuntary = {:.2} per callback",
        user.as_secs_f64(),
        system.as_secs_f64(),
        (user + system).as_secs_f64() * 1e6 / n as f64,
        (voluntary + involuntary) as f64 / n as f64
    );
    if options.batch_size > 1 {
        // Every callback's attempt names its batch and its place in it.
        let requests = db.count(
            "SELECT COUNT(*) AS n FROM httphooks_attempts WHERE batch LIKE '% (callback 1 of %'",
        );
        println!(
            "  --batch-size {}: {n} events in {requests} requests = {rate:.0} events/s",
            options.batch_size
        );
        return;
    }
    // The same nginx under wrk, POSTing a body of a callback's size.
    // PostgreSQL's LENGTH is an int4, the others' a 64-bit integer.
    let length = if db.is_postgres() {
        "LENGTH(request_body)::bigint"
    } else {
        "LENGTH(request_body)"
    };
    let body = db.count(&format!(
        "SELECT MAX({length}) AS n FROM httphooks_attempts"
    ));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", {body})\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )
    .unwrap();
    let wrk = Command::new("wrk")
        .args(["-t", "1", "-c", &concurrency.to_string(), "-d", "5s", "-s"])
        .arg(&script)
        .arg(&url)
        .output();
    match wrk {
        Ok(output) if output.status.success() => {
            let text = String::from_utf8_lossy(&output.stdout);
            let wrk_rate: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix("Requests/sec:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("wrk prints Requests/sec");
            println!(
                "  wrk -t 1 -c {concurrency}, POST of {body} bytes, same nginx: {wrk_rate:.0} requests/s; httphooks ÷ wrk = {:.2}",
                rate / wrk_rate
            );
        }
        _ => println!("  (wrk is not on PATH, or failed: Debian's wrk package gives the ratio)"),
    }
}
