//! `send_callbacks`: claim due callbacks in batches, send them from a pool of worker
//! threads over one keep-alive client, and write results back in batches.
//!
//! Rules this module keeps:
//! - No database transaction or lock is held while a request is in flight: claims and
//!   records are short transactions of their own on this thread; workers only do HTTP.
//! - At most 2 × concurrency callbacks are claimed and not yet recorded, so a claim's
//!   lease (3 × the hook's timeout + 30 s) outlasts its wait in the queue.
//! - A callback whose header names a missing environment variable is not sent; its
//!   claim is held until the run ends (so this run does not claim it again) and then
//!   released with a note; the run exits 3 naming the variable.
//! - A run that dies keeps its claims until their leases expire; a later run then
//!   claims them again.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::SendArgs;
use crate::delivery::headers::MissingVariable;
use crate::delivery::http::{Client, Request};
use crate::delivery::{build_request, deliver, render_failure, shown_headers};
use crate::error::{Error, Result};
use crate::payload::{render_body, ContentType, EventContext, Renderer};
use crate::storage::callbacks::{self, ClaimFilter, Outcome};
use crate::storage::models::{status, Callback};
use crate::storage::{hooks, Db};

/// Results are written when this many are waiting, or after [`RECORD_INTERVAL`].
const RECORD_BATCH: usize = 256;
const RECORD_INTERVAL: Duration = Duration::from_millis(200);

pub fn run(url: Option<&str>, args: &SendArgs) -> Result<ExitCode> {
    let mut db = Db::open_migrated(url)?;
    for id in &args.hook_id {
        if hooks::find_by_id(&mut db, *id)?.is_none() {
            return Err(Error::invalid(format!(
                "there is no hook with id {id}; `httphooks hooks list` shows the ids"
            )));
        }
    }
    if !args.callback.is_empty() {
        check_named_callbacks(&mut db, &args.callback)?;
    }
    let filter = ClaimFilter {
        hook_ids: args.hook_id.clone(),
        callback_ids: args.callback.clone(),
    };
    if args.dry_run {
        return dry_run(&mut db, &filter, args.limit.unwrap_or(1000));
    }
    let summary = Engine::new(args).run(&mut db, &filter)?;
    if !args.quiet {
        println!("{}", summary.line());
    }
    if !summary.missing_variables.is_empty() {
        let names: Vec<&str> = summary
            .missing_variables
            .iter()
            .map(String::as_str)
            .collect();
        return Err(Error::environment(format!(
            "{} callback(s) were not sent because environment variable {} is not set; set it for send_callbacks",
            summary.held,
            names.join(", ")
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// Named callbacks must exist; ones that are not waiting are reported, not sent.
fn check_named_callbacks(db: &mut Db, ids: &[i64]) -> Result<()> {
    for id in ids {
        match callbacks::get(db, *id)? {
            None => {
                return Err(Error::invalid(format!(
                    "no callback has id {id}; `httphooks callbacks list` shows them (nothing was sent)"
                )))
            }
            Some(c) if c.status != status::WAITING => eprintln!(
                "httphooks: callback {id} is {}, not waiting, so it is not sent; `httphooks callbacks retry {id}` queues it again",
                c.status
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The body a callback sends: stored after its first rendering, rendered now otherwise.
/// Returns (body, whether it was rendered now).
fn body_of(
    renderer: &mut Renderer,
    callback: &Callback,
) -> std::result::Result<(String, bool), String> {
    if let Some(payload) = &callback.payload {
        return Ok((payload.clone(), false));
    }
    let content_type = ContentType::parse(&callback.content_type)
        .ok_or_else(|| format!("unsupported content type {}", callback.content_type))?;
    let context = EventContext::from_stored(
        &callback.event_data,
        &callback.event_type,
        callback.table_name.as_deref(),
        &callback.hook_name,
        callback.id,
        callback.object_id.as_deref(),
        callback.created_at,
    )?;
    render_body(
        renderer,
        callback.payload_template.as_deref(),
        content_type,
        &context,
    )
    .map(|body| (body, true))
}

fn dry_run(db: &mut Db, filter: &ClaimFilter, limit: i64) -> Result<ExitCode> {
    let due = callbacks::peek_due(db, filter, limit)?;
    let mut renderer = Renderer::new();
    for callback in &due {
        println!(
            "# callback {} (hook {}, {} event, attempt {}/{})",
            callback.id,
            callback.hook_name,
            callback.event_type,
            callback.attempts + 1,
            callback.max_attempts
        );
        let body = match body_of(&mut renderer, callback) {
            Ok((body, _)) => body,
            Err(problem) => {
                println!("# would fail: hook {}: {problem}\n", callback.hook_name);
                continue;
            }
        };
        match build_request(callback, &body) {
            Ok(request) => {
                println!("{} {}", request.method, request.url);
                for (name, value) in shown_headers(&request) {
                    println!("{name}: {value}");
                }
                println!("\n{}\n", request.body.as_deref().unwrap_or(""));
            }
            Err(MissingVariable(name)) => {
                println!("# would not be sent: environment variable {name} is not set\n");
            }
        }
    }
    println!(
        "dry run: {} callback(s) due; nothing was sent or changed",
        due.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// One request handed to a worker.
struct Job {
    callback: Callback,
    request: Request,
    rendered_payload: Option<String>,
}

#[derive(Debug, Default)]
struct Summary {
    claimed: usize,
    sent: usize,
    retried: usize,
    failed: usize,
    held: usize,
    missing_variables: BTreeSet<String>,
    elapsed: Duration,
}

impl Summary {
    fn count(&mut self, outcome: &Outcome) {
        match outcome.status {
            status::SENT => self.sent += 1,
            status::WAITING => self.retried += 1,
            _ => self.failed += 1,
        }
    }

    fn line(&self) -> String {
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            self.claimed as f64 / seconds
        } else {
            0.0
        };
        let mut line = format!(
            "send_callbacks: claimed {}, sent {}, retried {}, failed {}",
            self.claimed, self.sent, self.retried, self.failed
        );
        if self.held > 0 {
            line.push_str(&format!(", held {}", self.held));
        }
        line.push_str(&format!(", elapsed {seconds:.2}s ({rate:.0}/s)"));
        line
    }
}

struct Engine {
    concurrency: usize,
    limit: Option<i64>,
    deadline: Option<Instant>,
    token: String,
}

impl Engine {
    fn new(args: &SendArgs) -> Engine {
        Engine {
            concurrency: usize::from(args.concurrency),
            limit: args.limit,
            deadline: args.max_runtime.map(|d| Instant::now() + Duration::from(d)),
            token: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
        }
    }

    fn run(&self, db: &mut Db, filter: &ClaimFilter) -> Result<Summary> {
        let started = Instant::now();
        let client = Client::new(self.concurrency);
        let (job_sender, job_receiver) = mpsc::sync_channel::<Job>(self.concurrency);
        let job_receiver = Arc::new(Mutex::new(job_receiver));
        let (result_sender, result_receiver) = mpsc::channel::<Outcome>();
        let mut summary = Summary::default();
        let result = thread::scope(|scope| {
            for _ in 0..self.concurrency {
                let jobs = Arc::clone(&job_receiver);
                let results = result_sender.clone();
                let client = &client;
                scope.spawn(move || worker(client, &jobs, &results));
            }
            drop(result_sender);
            let outcome = self.dispatch(db, filter, &job_sender, &result_receiver, &mut summary);
            // Closing the job channel lets the workers finish.
            drop(job_sender);
            outcome
        });
        summary.elapsed = started.elapsed();
        result.map(|()| summary)
    }

    /// The claim → send → record loop, on the thread that owns the connection.
    fn dispatch(
        &self,
        db: &mut Db,
        filter: &ClaimFilter,
        jobs: &SyncSender<Job>,
        results: &Receiver<Outcome>,
        summary: &mut Summary,
    ) -> Result<()> {
        let window = self.concurrency * 2;
        let mut renderer = Renderer::new();
        let mut in_flight = 0usize;
        let mut claiming = true;
        let mut held: Vec<i64> = Vec::new();
        let mut pending: Vec<Outcome> = Vec::new();
        let mut last_record = Instant::now();
        let mut failure: Option<Error> = None;
        loop {
            if self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                claiming = false;
            }
            let room = window.saturating_sub(in_flight + pending.len());
            if claiming && room >= self.concurrency.min(window) {
                let remaining = self
                    .limit
                    .map_or(i64::MAX, |limit| limit - summary.claimed as i64);
                let want = (room as i64).min(remaining);
                match if want > 0 {
                    db.claim(filter, want, &self.token)
                } else {
                    Ok(Vec::new())
                } {
                    Ok(claimed) => {
                        if claimed.is_empty() {
                            claiming = false;
                        }
                        summary.claimed += claimed.len();
                        for claim in claimed {
                            let callback = claim.callback;
                            match prepare(&mut renderer, callback) {
                                Prepared::Job(job) => {
                                    in_flight += 1;
                                    jobs.send(job).map_err(|_| Error::environment("the delivery workers stopped; run send_callbacks again"))?;
                                }
                                Prepared::Done(outcome) => pending.push(outcome),
                                Prepared::Held(id, variable) => {
                                    held.push(id);
                                    summary.missing_variables.insert(variable);
                                }
                            }
                        }
                    }
                    Err(error) => {
                        claiming = false;
                        failure = Some(error);
                    }
                }
            }
            if in_flight == 0 && !claiming {
                break;
            }
            if in_flight > 0 {
                match results.recv_timeout(RECORD_INTERVAL) {
                    Ok(outcome) => {
                        in_flight -= 1;
                        pending.push(outcome);
                        while let Ok(outcome) = results.try_recv() {
                            in_flight -= 1;
                            pending.push(outcome);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(Error::environment(
                            "the delivery workers stopped; run send_callbacks again",
                        ))
                    }
                }
            }
            let due = pending.len() >= RECORD_BATCH
                || last_record.elapsed() >= RECORD_INTERVAL
                || in_flight == 0;
            if due && !pending.is_empty() {
                self.record(db, &mut pending, summary)?;
                last_record = Instant::now();
            }
        }
        self.record(db, &mut pending, summary)?;
        if !held.is_empty() {
            summary.held = held.len();
            let note = format!(
                "not sent: environment variable {} is not set",
                summary
                    .missing_variables
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            callbacks::release(db, &self.token, &held, Some(&note))?;
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn record(&self, db: &mut Db, pending: &mut Vec<Outcome>, summary: &mut Summary) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        callbacks::record(db, &self.token, pending)?;
        for outcome in pending.iter() {
            summary.count(outcome);
        }
        pending.clear();
        Ok(())
    }
}

#[allow(clippy::large_enum_variant)] // one per callback, moved at once
enum Prepared {
    Job(Job),
    /// Decided without sending (the body cannot be rendered).
    Done(Outcome),
    /// Not sent: a header needs this environment variable.
    Held(i64, String),
}

fn prepare(renderer: &mut Renderer, callback: Callback) -> Prepared {
    let (body, rendered_now) = match body_of(renderer, &callback) {
        Ok(rendered) => rendered,
        Err(problem) => return Prepared::Done(render_failure(&callback, &problem)),
    };
    match build_request(&callback, &body) {
        Ok(request) => Prepared::Job(Job {
            rendered_payload: rendered_now.then_some(body),
            callback,
            request,
        }),
        Err(MissingVariable(name)) => Prepared::Held(callback.id, name),
    }
}

fn worker(client: &Client, jobs: &Mutex<Receiver<Job>>, results: &mpsc::Sender<Outcome>) {
    loop {
        // The lock is held only while taking a job, never while sending.
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let outcome = deliver(client, &job.callback, &job.request, job.rendered_payload);
        if results.send(outcome).is_err() {
            return;
        }
    }
}
