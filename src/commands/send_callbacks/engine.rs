//! The delivery engine: claim due callbacks in batches, send them from a pool of worker
//! threads over one keep-alive client, and write results back in batches.
//!
//! Three kinds of thread:
//! - the dispatcher claims callbacks, renders their bodies and queues the requests;
//! - `concurrency` workers only do HTTP;
//! - the recorder writes outcomes in batches.
//!
//! On PostgreSQL the dispatcher and the recorder have a connection each, so claims and
//! writes overlap. SQLite has one writer at a time anyway: they share one connection,
//! since two would wait on each other through SQLite's sleeping busy handler.
//!
//! Rules kept here:
//! - No transaction or lock is held while a request is in flight.
//! - At most `WINDOW_PER_WORKER` × concurrency callbacks are claimed and not yet
//!   recorded, and a claim's lease is `WINDOW_PER_WORKER + 2` hook timeouts + 5 s, so
//!   a claim outlasts its wait in the queue.
//! - A claim whose lease ran out while another run held it (that run died) is recorded
//!   as an attempt with outcome unknown: it may have been delivered. Then it is sent
//!   again with the same `webhook-id`, so receivers can drop the duplicate.
//! - A callback whose header names a missing environment variable is not sent; its
//!   claim is kept until the run ends (so this run does not claim it again), then
//!   released with a note.
//! - SIGTERM or SIGINT (systemd stop, Ctrl-C) and `--max-runtime` stop claiming; the
//!   requests in flight finish (each is bounded by its hook's timeout) and are
//!   recorded; queued ones that had not started are released untouched. A second
//!   SIGINT/SIGTERM exits at once, leaving claims to expire.

use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::body_of;
use crate::cli::SendArgs;
use crate::delivery::auth::TokenSource;
use crate::delivery::http::Client;
use crate::delivery::target::Policy;
use crate::delivery::{
    render_failure, request_template, Deliverer, EnvProblem, Prepared, RequestTemplate, Target,
};
use crate::error::{Error, Result};
use crate::payload::Renderer;
use crate::storage::callbacks::{self, ClaimFilter, Claimed, Outcome};
use crate::storage::models::{status, Callback};
use crate::storage::Db;

/// Outcomes are written when half a window is waiting, or [`RECORD_DELAY`] after the
/// first of them arrived.
const RECORD_DELAY: Duration = Duration::from_millis(50);
/// Callbacks claimed ahead per worker.
const WINDOW_PER_WORKER: usize = 8;

pub struct Engine {
    url: Option<String>,
    concurrency: usize,
    limit: Option<i64>,
    deadline: Option<Instant>,
    quiet: bool,
    token: String,
}

/// What reaches the recorder.
#[allow(clippy::large_enum_variant)] // one per callback, moved once
enum Report {
    Outcome(Outcome),
    /// A claimed callback that was not started (the run is stopping): give it back.
    Unstarted(i64),
}

/// One request handed to a worker.
struct Job {
    callback: Callback,
    prepared: Prepared,
    rendered_payload: Option<String>,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub released: usize,
    pub held: usize,
    /// Why held callbacks were not sent (one sentence per problem).
    pub environment_problems: BTreeSet<String>,
    pub stopped_by_signal: bool,
    pub elapsed: Duration,
}

impl Summary {
    fn count(&mut self, outcome: &Outcome) {
        match outcome.status {
            status::SENT => self.sent += 1,
            status::WAITING => self.retried += 1,
            _ => self.failed += 1,
        }
    }

    fn counts(&self) -> String {
        format!(
            "sent {}, retried {}, failed {}",
            self.sent, self.retried, self.failed
        )
    }

    pub fn line(&self) -> String {
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            self.claimed as f64 / seconds
        } else {
            0.0
        };
        let mut line = format!(
            "send_callbacks: claimed {}, {}",
            self.claimed,
            self.counts()
        );
        if self.held > 0 {
            line.push_str(&format!(", held {}", self.held));
        }
        if self.released > 0 {
            line.push_str(&format!(", released {}", self.released));
        }
        line.push_str(&format!(", elapsed {seconds:.2}s ({rate:.0}/s)"));
        if self.stopped_by_signal {
            line.push_str("; stopped by signal");
        }
        line
    }
}

impl Engine {
    pub fn new(url: Option<&str>, args: &SendArgs) -> Engine {
        Engine {
            url: url.map(str::to_owned),
            concurrency: usize::from(args.concurrency),
            limit: args.limit,
            deadline: args.max_runtime.map(|d| Instant::now() + Duration::from(d)),
            quiet: args.quiet,
            token: claim_token(),
        }
    }

    fn connect(&self) -> Result<Db> {
        let mut db = Db::open_migrated(self.url.as_deref())?;
        db.commit_without_flush()?;
        Ok(db)
    }

    fn window(&self) -> usize {
        self.concurrency * WINDOW_PER_WORKER
    }

    fn lease_in_timeouts(&self) -> i32 {
        (WINDOW_PER_WORKER + 2) as i32
    }

    pub fn run(&self, filter: &ClaimFilter) -> Result<Summary> {
        let started = Instant::now();
        let stop = stop_on_signals()?;
        let claims_db = Mutex::new(self.connect()?);
        let own_records_db = match &*claims_db.lock().expect("not shared yet") {
            Db::Postgres(_) => Some(Mutex::new(self.connect()?)),
            Db::Sqlite(_) => None,
        };
        let records_db = own_records_db.as_ref().unwrap_or(&claims_db);
        let policy = Policy::from_env().map_err(Error::environment)?;
        let deliverer = Deliverer {
            client: Client::new(self.concurrency, policy),
            tokens: TokenSource::with_database(self.url.as_deref()),
        };
        let progress = self.progress_bar();

        let (job_sender, job_receiver) = mpsc::sync_channel::<Job>(self.window());
        let job_receiver = Mutex::new(job_receiver);
        let (report_sender, report_receiver) = mpsc::channel::<Report>();
        // The recorder tells the dispatcher how many claims it has settled.
        let (settled_sender, settled_receiver) = mpsc::channel::<usize>();

        let (dispatched, recorded) = thread::scope(|scope| {
            let recorder = scope
                .spawn(|| self.record_loop(records_db, report_receiver, settled_sender, &progress));
            for _ in 0..self.concurrency {
                let reports = report_sender.clone();
                let (deliverer, jobs, stop) = (&deliverer, &job_receiver, &stop);
                scope.spawn(move || worker(deliverer, jobs, &reports, stop));
            }
            let dispatched = self.dispatch(
                &claims_db,
                filter,
                &stop,
                job_sender,
                report_sender,
                &settled_receiver,
            );
            let recorded = recorder.join().unwrap_or_else(|_| {
                Err(Error::environment(
                    "the recorder thread failed; run send_callbacks again",
                ))
            });
            (dispatched, recorded)
        });
        progress.finish_and_clear();

        let (claimed, held, environment_problems) = dispatched?;
        let mut summary = recorded?;
        summary.claimed = claimed;
        summary.stopped_by_signal = stop.load(Ordering::SeqCst);
        if !held.is_empty() {
            let problems: Vec<&str> = environment_problems.iter().map(String::as_str).collect();
            let note = format!("not sent: {}", problems.join("; "));
            let mut db = claims_db.lock().map_err(|_| poisoned())?;
            callbacks::release(&mut db, &self.token, &held, Some(&note))?;
            summary.held = held.len();
            summary.environment_problems = environment_problems;
        }
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// Claims and queues work until nothing is due, the limit or deadline is reached, or
    /// a signal arrives. Returns (claimed, held ids, environment problems).
    fn dispatch(
        &self,
        db: &Mutex<Db>,
        filter: &ClaimFilter,
        stop: &AtomicBool,
        jobs: SyncSender<Job>,
        reports: Sender<Report>,
        settled: &Receiver<usize>,
    ) -> Result<(usize, Vec<i64>, BTreeSet<String>)> {
        let mut renderer = Renderer::new();
        let mut templates: HashMap<i64, Result<RequestTemplate, EnvProblem>> = HashMap::new();
        let mut claimed_total = 0usize;
        let mut outstanding = 0usize;
        let mut held = Vec::new();
        let mut missing = BTreeSet::new();
        loop {
            while let Ok(count) = settled.try_recv() {
                outstanding -= count;
            }
            let out_of_time = self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline);
            let remaining = self
                .limit
                .map_or(i64::MAX, |limit| limit - claimed_total as i64);
            if stop.load(Ordering::SeqCst) || out_of_time || remaining <= 0 {
                break;
            }
            let room = self.window().saturating_sub(outstanding);
            if room < self.concurrency {
                match settled.recv_timeout(RECORD_DELAY) {
                    Ok(count) => outstanding -= count,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                continue;
            }
            let want = (room as i64).min(remaining);
            let claimed = db.lock().map_err(|_| poisoned())?.claim(
                filter,
                want,
                &self.token,
                self.lease_in_timeouts(),
            )?;
            if claimed.is_empty() {
                // Nothing due now; what is still in flight may unblock more (the next
                // callback of an ordered row), so wait for it before giving up.
                if outstanding == 0 {
                    break;
                }
                match settled.recv_timeout(RECORD_DELAY * 4) {
                    Ok(count) => outstanding -= count,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                continue;
            }
            claimed_total += claimed.len();
            for claim in claimed {
                let callback = self.settle_unknown_outcome(db, claim)?;
                match prepare_job(&mut renderer, &mut templates, callback) {
                    Preparation::Job(job) => {
                        outstanding += 1;
                        if jobs.send(job).is_err() {
                            return Err(Error::environment(
                                "the delivery workers stopped; run send_callbacks again",
                            ));
                        }
                    }
                    Preparation::Done(outcome) => {
                        outstanding += 1;
                        let _ = reports.send(Report::Outcome(outcome));
                    }
                    Preparation::Held(id, problem) => {
                        held.push(id);
                        missing.insert(problem);
                    }
                }
            }
        }
        Ok((claimed_total, held, missing))
    }

    /// A claim taken over from a run that died: record the attempt it may have made.
    fn settle_unknown_outcome(&self, db: &Mutex<Db>, claim: Claimed) -> Result<Callback> {
        let Claimed {
            mut callback,
            previous_token,
        } = claim;
        if let Some(previous) = previous_token {
            let mut db = db.lock().map_err(|_| poisoned())?;
            callbacks::record_unknown_outcome(&mut db, &self.token, &callback, &previous)?;
            callback.attempts += 1;
        }
        Ok(callback)
    }

    /// Writes outcomes in batches until every sender is gone.
    fn record_loop(
        &self,
        db: &Mutex<Db>,
        reports: Receiver<Report>,
        settled: Sender<usize>,
        progress: &ProgressBar,
    ) -> Result<Summary> {
        let batch = (self.window() / 2).max(1);
        let mut summary = Summary::default();
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut unstarted: Vec<i64> = Vec::new();
        let mut first_waiting: Option<Instant> = None;
        let mut failure = None;
        let mut finished = false;
        while !finished {
            let wait = first_waiting.map_or(RECORD_DELAY, |first| {
                RECORD_DELAY.saturating_sub(first.elapsed())
            });
            match reports.recv_timeout(wait) {
                Ok(report) => {
                    first_waiting.get_or_insert_with(Instant::now);
                    match report {
                        Report::Outcome(outcome) => outcomes.push(outcome),
                        Report::Unstarted(id) => unstarted.push(id),
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => finished = true,
            }
            let waiting = outcomes.len() + unstarted.len();
            let due = waiting >= batch
                || finished
                || first_waiting.is_some_and(|f| f.elapsed() >= RECORD_DELAY);
            if waiting == 0 || !due {
                continue;
            }
            if failure.is_none() {
                let written = db.lock().map_err(|_| poisoned()).and_then(|mut db| {
                    callbacks::record(&mut db, &self.token, &outcomes)?;
                    callbacks::release(&mut db, &self.token, &unstarted, None)
                });
                match written {
                    Ok(_) => {
                        for outcome in &outcomes {
                            summary.count(outcome);
                        }
                        summary.released += unstarted.len();
                        progress.inc(waiting as u64);
                        progress.set_message(format!(
                            "{} ({:.0}/s)",
                            summary.counts(),
                            progress.per_sec()
                        ));
                    }
                    // What could not be written keeps its claim; a later run takes it
                    // over when the lease expires.
                    Err(error) => failure = Some(error),
                }
            }
            let _ = settled.send(waiting);
            outcomes.clear();
            unstarted.clear();
            first_waiting = None;
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(summary),
        }
    }

    fn progress_bar(&self) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} callbacks, {msg} [{elapsed}]")
                .expect("a valid progress template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

fn poisoned() -> Error {
    Error::environment("a send_callbacks thread failed; run send_callbacks again")
}

/// Identifies this run's claims: host, process and a random part.
fn claim_token() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

/// The first SIGTERM/SIGINT sets the flag; a second one ends the process at once.
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
        registered.map_err(|e| Error::environment(format!("cannot handle signals: {e}")))?;
    }
    Ok(stop)
}

#[allow(clippy::large_enum_variant)] // one per callback, moved once
enum Preparation {
    Job(Job),
    /// Decided without sending (the body cannot be rendered).
    Done(Outcome),
    /// Not sent: the environment lacks what the hook needs (the problem, in words).
    Held(i64, String),
}

fn prepare_job(
    renderer: &mut Renderer,
    templates: &mut HashMap<i64, Result<RequestTemplate, EnvProblem>>,
    callback: Callback,
) -> Preparation {
    let (body, rendered_now) = match body_of(renderer, &callback) {
        Ok(rendered) => rendered,
        Err(problem) => return Preparation::Done(render_failure(&callback, &problem)),
    };
    let template = templates
        .entry(callback.version_id)
        .or_insert_with(|| request_template(&Target::from(&callback)));
    match template
        .as_ref()
        .map(|t| t.prepare(&callback.webhook_id(), &body))
    {
        Ok(prepared) => Preparation::Job(Job {
            rendered_payload: rendered_now.then_some(body),
            callback,
            prepared,
        }),
        Err(problem) => Preparation::Held(callback.id, problem.problem.clone()),
    }
}

fn worker(
    deliverer: &Deliverer,
    jobs: &Mutex<Receiver<Job>>,
    reports: &Sender<Report>,
    stop: &AtomicBool,
) {
    loop {
        // The lock is held only while taking a job, never while sending.
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let report = if stop.load(Ordering::SeqCst) {
            Report::Unstarted(job.callback.id)
        } else {
            Report::Outcome(deliverer.deliver(&job.callback, &job.prepared, job.rendered_payload))
        };
        if reports.send(report).is_err() {
            return;
        }
    }
}
