//! HTTP clients compared on one fast receiver (issue 22): what one POST costs the client
//! in CPU and context switches, and how many it makes per second, at the concurrency of
//! a `send_callbacks` run.
//!
//!   benches/http-clients/run [--n 50000] [--concurrency 32] [--rounds 3] [--body 290]
//!
//! It starts nginx (Debian's nginx-light, one worker, `return 200`, no access log) on a
//! free loopback port, then runs each client in a process of its own, round after round
//! (so that the host's drift falls on every client alike), and takes the client's CPU
//! time and context switches from `getrusage(RUSAGE_CHILDREN)` around it:
//! - `ureq`: ureq 3, one agent, a thread per request in flight (httphooks' design,
//!   without its own transport: see docs/benchmarks.md for httphooks' figures);
//! - `reqwest`: reqwest's blocking client, a thread per request in flight (each hands
//!   its request to reqwest's runtime thread and waits);
//! - `hyper-1`: hyper's pooled client on a single-threaded tokio runtime, one task per
//!   request in flight: an event loop waiting on every connection at once;
//! - `hyper-2`: the same on a two-thread runtime;
//! - `wrk`: wrk with one thread (an event loop in C), for what the machine allows.
//!
//! Every client sends the same POST (a JSON content type, `--body` bytes) over
//! keep-alive connections and reads each answer whole; a status other than 200 stops
//! the run.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../common/nginx.rs"]
mod nginx;
use nginx::Nginx;

const CLIENTS: [&str; 4] = ["ureq", "reqwest", "hyper-1", "hyper-2"];

struct Options {
    n: usize,
    concurrency: usize,
    rounds: usize,
    body: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str, default: usize| -> usize {
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} takes a number")),
            None => default,
        }
    };
    let options = Options {
        n: value("--n", 50_000),
        concurrency: value("--concurrency", 32),
        rounds: value("--rounds", 3),
        body: value("--body", 290),
    };
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let client = &args[i + 1];
        let url = &args[i + 2];
        let elapsed = run_client(client, url, &options);
        println!("{}", elapsed.as_secs_f64());
        return;
    }
    compare(&options);
}

/// One measured run: requests, seconds, and the client's CPU and context switches.
struct Measured {
    requests: usize,
    seconds: f64,
    user: Duration,
    system: Duration,
    switches: i64,
}

impl Measured {
    fn per_request(&self, what: f64) -> f64 {
        what / self.requests as f64
    }

    fn line(&self, name: &str) -> String {
        let cpu = (self.user + self.system).as_secs_f64() * 1e6;
        format!(
            "| {name} | {:.0} | {:.1} µs ({:.1} user + {:.1} system) | {:.2} |",
            self.requests as f64 / self.seconds,
            self.per_request(cpu),
            self.per_request(self.user.as_secs_f64() * 1e6),
            self.per_request(self.system.as_secs_f64() * 1e6),
            self.per_request(self.switches as f64),
        )
    }
}

fn compare(options: &Options) {
    let nginx = Nginx::start();
    let url = format!("http://127.0.0.1:{}/bench", nginx.port);
    let me = std::env::current_exe().expect("the benchmark's own path");
    println!(
        "{} POSTs of {} bytes per client and round, {} in flight, nginx on loopback, {} rounds",
        options.n, options.body, options.concurrency, options.rounds
    );
    println!("| client | requests/s | CPU per request | context switches per request |");
    println!("| --- | --- | --- | --- |");
    for _ in 0..options.rounds {
        for client in CLIENTS {
            let measured = children_usage(|| {
                let output = Command::new(&me)
                    .args(["--child", client, &url])
                    .args(["--n", &options.n.to_string()])
                    .args(["--concurrency", &options.concurrency.to_string()])
                    .args(["--body", &options.body.to_string()])
                    .stderr(Stdio::inherit())
                    .output()
                    .expect("the benchmark runs itself");
                assert!(output.status.success(), "client {client} failed");
                let seconds: f64 = String::from_utf8_lossy(&output.stdout)
                    .trim()
                    .parse()
                    .expect("a child prints its seconds");
                (options.n, seconds)
            });
            println!("{}", measured.line(client));
        }
        match run_wrk(&url, options) {
            Some(measured) => println!("{}", measured.line("wrk -t 1")),
            None => println!("| wrk | (not on PATH: Debian's wrk package) | | |"),
        }
    }
}

/// Runs `work` (which starts and waits for a child) and measures what its children used.
fn children_usage(work: impl FnOnce() -> (usize, f64)) -> Measured {
    let before = usage();
    let (requests, seconds) = work();
    let after = usage();
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Measured {
        requests,
        seconds,
        user: time(after.ru_utime) - time(before.ru_utime),
        system: time(after.ru_stime) - time(before.ru_stime),
        switches: (after.ru_nvcsw + after.ru_nivcsw) - (before.ru_nvcsw + before.ru_nivcsw),
    }
}

fn usage() -> libc::rusage {
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage
    }
}

/// wrk for five seconds, POSTing the same body: its rate and what it used.
fn run_wrk(url: &str, options: &Options) -> Option<Measured> {
    let dir = tempfile::tempdir().ok()?;
    let script = dir.path().join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", {})\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
            options.body
        ),
    )
    .ok()?;
    let mut text = String::new();
    let measured = children_usage(|| {
        let output = Command::new("wrk")
            .args([
                "-t",
                "1",
                "-c",
                &options.concurrency.to_string(),
                "-d",
                "5s",
                "-s",
            ])
            .arg(&script)
            .arg(url)
            .output();
        if let Some(output) = output.ok().filter(|o| o.status.success()) {
            text = String::from_utf8_lossy(&output.stdout).into_owned();
        }
        // "  123456 requests in 5.00s, …"
        let line = text.lines().find(|l| l.contains(" requests in "));
        let parsed = line.and_then(|l| {
            let mut words = l.split_whitespace();
            let requests = words.next()?.parse().ok()?;
            let seconds = words.nth(2)?.trim_end_matches([',', 's']);
            Some((requests, seconds.parse().ok()?))
        });
        parsed.unwrap_or((0, 0.0))
    });
    (measured.requests > 0).then_some(measured)
}

/// Sends `options.n` POSTs with `client`, `options.concurrency` at a time; returns the
/// time they took.
fn run_client(client: &str, url: &str, options: &Options) -> Duration {
    let body: Arc<str> = "x".repeat(options.body).into();
    let next = Arc::new(AtomicUsize::new(0));
    let n = options.n;
    let started = Instant::now();
    match client {
        "ureq" => {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_idle_connections(options.concurrency)
                .max_idle_connections_per_host(options.concurrency)
                .proxy(None)
                .build()
                .into();
            threads(options.concurrency, || {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let mut response = agent
                        .post(url)
                        .header("content-type", "application/json")
                        .send(body.as_bytes())
                        .expect("ureq sends");
                    assert_eq!(response.status(), 200);
                    let mut answer = Vec::new();
                    response
                        .body_mut()
                        .as_reader()
                        .read_to_end(&mut answer)
                        .expect("ureq reads");
                }
            });
        }
        "reqwest" => {
            let client = reqwest::blocking::Client::builder()
                .pool_max_idle_per_host(options.concurrency)
                .no_proxy()
                .build()
                .expect("a reqwest client");
            threads(options.concurrency, || {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let response = client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body.to_string())
                        .send()
                        .expect("reqwest sends");
                    assert_eq!(response.status(), 200);
                    response.bytes().expect("reqwest reads");
                }
            });
        }
        "hyper-1" | "hyper-2" => {
            let runtime = if client == "hyper-1" {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
            }
            .expect("a tokio runtime");
            runtime.block_on(hyper_tasks(url, body, next, options));
        }
        other => panic!("no client {other}: one of {CLIENTS:?}"),
    }
    started.elapsed()
}

fn threads(count: usize, work: impl Fn() + Sync) {
    std::thread::scope(|scope| {
        for _ in 0..count {
            scope.spawn(&work);
        }
    });
}

async fn hyper_tasks(url: &str, body: Arc<str>, next: Arc<AtomicUsize>, options: &Options) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(options.concurrency)
        .build_http();
    let uri: hyper::Uri = url.parse().expect("a URL");
    let body = bytes::Bytes::from(body.to_string());
    let n = options.n;
    let mut tasks = Vec::new();
    for _ in 0..options.concurrency {
        let (client, uri, body, next) = (client.clone(), uri.clone(), body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let request = hyper::Request::post(uri.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))
                    .expect("a request");
                let response = client.request(request).await.expect("hyper sends");
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.expect("hyper reads");
            }
        }));
    }
    for task in tasks {
        task.await.expect("a task ends");
    }
}
