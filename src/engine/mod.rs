//! The delivery engine: claim due callbacks in batches, send them from a pool of worker
//! threads over one keep-alive client, and write outcomes back in batches.
//!
//! Three kinds of thread:
//! - the dispatcher (this module's [`Engine::run`]) claims callbacks, renders their
//!   bodies, marks the ones about to go out as started, and renews leases that run low;
//! - `concurrency` workers take requests from the [`Scheduler`] (per-endpoint queues
//!   with adaptive limits) and only do HTTP;
//! - the recorder (`record.rs`) writes outcomes in batches.
//!
//! Where the backend allows concurrent writers (PostgreSQL) the dispatcher and the
//! recorder have a connection each, so claims and writes overlap. SQLite has one
//! writer at a time anyway: they share one connection, since two would wait on each
//! other through SQLite's sleeping busy handler.
//!
//! Rules kept here (docs/behaviour.md, "Delivery"):
//! - No transaction or lock is held while a request is in flight.
//! - No request starts unless this run still holds its claim with the request's whole
//!   timeout to spare, so two runs never send the same callback (see `scheduler.rs`).
//! - A run that dies loses nothing: its claims expire, or the next run on its host
//!   takes them back at once; callbacks it had marked as started get an attempt of
//!   unknown outcome and are sent again with the same `webhook-id`.
//! - A callback whose hook needs a missing environment variable is not sent: it is
//!   given back with a note, and the run claims no more of that hook.
//! - SIGTERM or SIGINT and `--max-runtime` stop claiming and starting; requests in
//!   flight finish (each bounded by its timeout) and are recorded; the rest is given
//!   back untouched. A second SIGINT/SIGTERM exits at once, leaving claims to expire.
//! - A database that goes away pauses delivery (nothing is sent that could not be
//!   recorded); the run reconnects with backoff until its deadline, then goes on.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

mod dispatch;
mod follow;
mod jobs;
mod limiter;
mod link;
pub mod process;
mod record;
pub mod scheduler;
mod spool;
mod summary;
mod tokens;

pub use jobs::{body_of, into_jobs, prepare, Preparation, Templates};
pub use link::RECONNECT_BUDGET;
use link::{retrying, Link, RetryPolicy};
use process::RunIdentity;
pub use scheduler::endpoint_of;
use scheduler::Scheduler;
pub use summary::{StopReason, Summary};
pub use tokens::DatabaseTokens;

use crate::delivery::Deliverer;
use crate::error::{Error, Result};
use crate::payload::Renderer;
use crate::storage::callbacks::{self, ClaimFilter, Outcome};
use crate::storage::{runs, Connector};

/// Callbacks claimed and not yet recorded, per worker.
const WINDOW_PER_WORKER: usize = 32;
/// Batch requests (`--batch-size`) claimed and not yet recorded, per worker.
const BATCHES_PER_WORKER: usize = 4;
/// Outcomes written per transaction, per worker (or after `record::RECORD_DELAY`).
const RECORD_PER_WORKER: usize = 16;
/// Leases are renewed this long before a request could no longer start under them.
const RENEW_AHEAD: Duration = Duration::from_secs(10);
/// How long the dispatcher waits for a change when it has nothing to do.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// The bodies of claimed callbacks a run holds at most, per worker: with large
/// callbacks the run claims fewer at a time, so its memory is bounded by its
/// concurrency and the hooks' --max-payload-size, not by the data.
const BYTES_PER_WORKER: usize = 4 << 20;

/// What `send_callbacks` asked for.
pub struct Options {
    pub concurrency: usize,
    pub limit: Option<i64>,
    pub max_runtime: Option<Duration>,
    /// When the run began (the command started), which its deadline counts from.
    pub started_at: Instant,
    pub quiet: bool,
    /// Wait for new callbacks once the queue is drained, until the deadline (`follow.rs`).
    pub follow: bool,
}

pub struct Engine {
    connector: Connector,
    options: Options,
    identity: RunIdentity,
}

/// A run's connections and HTTP client, once its database answered.
struct Opened {
    claims: Mutex<Link>,
    /// Where the backend allows concurrent writers, the recorder's own connection.
    records: Option<Mutex<Link>>,
    deliverer: Deliverer,
    max_callback_bytes: Option<i64>,
    run_id: i64,
    /// The claim tokens of the other live runs of this host (see
    /// `ClaimFilter::live_tokens`).
    live_tokens: Vec<String>,
}

impl Opened {
    fn records(&self) -> &Mutex<Link> {
        self.records.as_ref().unwrap_or(&self.claims)
    }
}

/// What the threads of a run did: why the dispatcher stopped, what it counted, what the
/// recorder wrote.
struct Delivered {
    dispatched: Result<StopReason>,
    summary: Summary,
    recorded: record::Recorded,
}

impl Engine {
    pub fn new(connector: Connector, options: Options) -> Engine {
        Engine {
            connector,
            options,
            identity: RunIdentity::current(),
        }
    }

    fn concurrency(&self) -> usize {
        self.options.concurrency.max(1)
    }

    fn window(&self) -> usize {
        self.window_for(1)
    }

    /// Callbacks claimed and not yet recorded, at most, when requests carry up to
    /// `batch_factor` callbacks (`--batch-size`): a few requests' worth per worker.
    fn window_for(&self, batch_factor: usize) -> usize {
        self.concurrency() * WINDOW_PER_WORKER.max(BATCHES_PER_WORKER * batch_factor)
    }

    /// Delivers what `filter` selects until nothing is due, the limit or the deadline
    /// is reached, a signal arrives or the database fails for longer than the run may
    /// wait (then the summary carries the failure).
    pub fn run(&self, filter: &ClaimFilter) -> Result<Summary> {
        let started = self.options.started_at;
        let deadline = self.options.max_runtime.map(|d| started + d);
        let stop = stop_on_signals()?;
        let stopping = || stop.load(Ordering::SeqCst);
        let opened = self.open(deadline, &stopping)?;
        let scheduler = Scheduler::new(self.concurrency(), self.window());
        scheduler.set_deadline(deadline);
        let delivered = self.deliver(filter, &opened, &scheduler, deadline, &stopping);
        let mut summary = self.finish(&opened, &scheduler, delivered, deadline, &stopping)?;
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// Connects (waiting within the deadline for a database locked or away, as for
    /// one lost later), records what an earlier run saved, and records this run.
    fn open(
        &self,
        deadline: Option<Instant>,
        stopping: &(dyn Fn() -> bool + Sync),
    ) -> Result<Opened> {
        let warn = |error: &Error, wait: Duration| {
            if link::worth_a_warning(error, wait) {
                log::warn!("cannot start the run, retrying in {wait:?}: {error}");
            } else {
                log::debug!("cannot start the run, retrying in {wait:?}: {error}");
            }
        };
        let starting = RetryPolicy {
            give_up_at: deadline,
            stopping,
            on_wait: &warn,
            on_recovered: &|| {},
        };
        let claims = Mutex::new(Link::new(&self.connector));
        let (writes_apart, max_callback_bytes) = retrying(&claims, &starting, |db| {
            let backend = db.backend();
            Ok((
                backend.profile().allows_concurrent_writers,
                backend.max_callback_bytes()?,
            ))
        })?;
        let deliverer = Deliverer::new(self.concurrency(), DatabaseTokens::boxed(&self.connector))?;
        // Outcomes an earlier run on this host sent but could not record: recorded
        // before its claims are taken back, so that they are not sent again, one run at
        // a time (`spool::lock`).
        let saved_outcomes = spool::lock();
        let saved = retrying(&claims, &starting, |db| {
            spool::record_saved(db, &self.connector.identity())
        });
        if let Err(error) = saved {
            log::warn!("could not record the outcomes an earlier run saved: {error}");
        }
        let (run_id, live_tokens) = self.start_run(&claims, &starting)?;
        drop(saved_outcomes);
        Ok(Opened {
            records: writes_apart.then(|| Mutex::new(Link::new(&self.connector))),
            claims,
            deliverer,
            max_callback_bytes,
            run_id,
            live_tokens,
        })
    }

    /// The run's threads: the recorder, the workers, and the dispatcher on this one.
    fn deliver(
        &self,
        filter: &ClaimFilter,
        opened: &Opened,
        scheduler: &Scheduler,
        deadline: Option<Instant>,
        stopping: &(dyn Fn() -> bool + Sync),
    ) -> Delivered {
        let progress = self.progress_bar();
        let (report_sender, report_receiver) = mpsc::channel::<Outcome>();
        // Whatever finds the database away pauses the workers at once: nothing starts
        // that could not be recorded (the recorder does the same).
        let pauses = link::Pauses::new(
            scheduler,
            "database unavailable",
            "database available again; delivery goes on",
        );
        let warn_wait = |error: &Error, wait: Duration| pauses.wait(error, wait);
        let recovered = || pauses.recovered();
        let delivered = thread::scope(|scope| {
            let recorder = scope.spawn(|| {
                record::record_loop(
                    opened.records(),
                    &self.identity.token,
                    report_receiver,
                    scheduler,
                    &progress,
                    record::Limits {
                        batch: self.concurrency() * RECORD_PER_WORKER,
                        round: self.concurrency(),
                        give_up_at: deadline,
                        stopping,
                        following_run: self.options.follow.then_some(opened.run_id),
                    },
                )
            });
            for _ in 0..self.concurrency() {
                let reports = report_sender.clone();
                let deliverer = &opened.deliverer;
                scope.spawn(move || worker(deliverer, scheduler, &reports, deadline));
            }
            let mut dispatch = dispatch::Dispatch {
                filter: ClaimFilter {
                    live_tokens: opened.live_tokens.clone(),
                    own_token: Some(self.identity.token.clone()),
                    ..filter.clone()
                },
                renderer: Renderer::new(),
                templates: jobs::Templates::new(),
                hook_routes: Default::default(),
                max_callback_bytes: opened.max_callback_bytes,
                largest_body: 0,
                held_hooks: Default::default(),
                summary: Summary::default(),
                reports: report_sender,
                scheduler,
                policy: RetryPolicy {
                    give_up_at: deadline,
                    stopping,
                    on_wait: &warn_wait,
                    on_recovered: &recovered,
                },
                pace: Default::default(),
                follow: self.options.follow.then(follow::Follow::default),
                batch_factor: 1,
                given_back: Default::default(),
                least_claim: 0,
            };
            let dispatched = self.dispatch(&opened.claims, &mut dispatch, deadline, stopping);
            match dispatched {
                Ok(StopReason::Done | StopReason::Limit) => scheduler.dispatch_done(),
                _ => scheduler.close(),
            }
            // Workers stop once nothing is left to start; then the recorder drains.
            drop(dispatch.reports);
            let recorded = recorder.join().unwrap_or_else(|_| record::Recorded {
                summary: Summary::default(),
                failure: Some(link::poisoned()),
                unrecorded: Vec::new(),
            });
            dispatch.summary.held_hooks = std::mem::take(&mut dispatch.held_hooks);
            Delivered {
                dispatched,
                summary: dispatch.summary,
                recorded,
            }
        });
        progress.finish_and_clear();
        delivered
    }

    /// Gives back what was claimed and not started, and records the run's end. When the
    /// database could not be written to the end, nothing more is tried: the next run on
    /// this host takes the claims back at once (another host's after the leases), and
    /// records first what this run saved of the outcomes it could not write.
    fn finish(
        &self,
        opened: &Opened,
        scheduler: &Scheduler,
        delivered: Delivered,
        deadline: Option<Instant>,
        stopping: &(dyn Fn() -> bool + Sync),
    ) -> Result<Summary> {
        let Delivered {
            dispatched,
            mut summary,
            recorded,
        } = delivered;
        summary.sent = recorded.summary.sent;
        summary.retried = recorded.summary.retried;
        summary.failed = recorded.summary.failed;
        summary.hook_stats = recorded.summary.hook_stats;
        summary.endpoint_stats = recorded.summary.endpoint_stats;
        let unstarted: Vec<i64> = scheduler
            .update(|q| q.take_unstarted())
            .iter()
            .flat_map(|job| job.ids())
            .collect();
        summary.released += unstarted.len();
        let stop_reason = match (dispatched, recorded.failure) {
            (Err(error), _) | (Ok(_), Some(error)) => {
                summary.stop_reason = StopReason::Error;
                let saved = match recorded.unrecorded.len() {
                    0 => None,
                    n => Some((
                        n,
                        spool::save(
                            &self.connector.identity(),
                            &self.identity.token,
                            recorded.unrecorded,
                        ),
                    )),
                };
                summary.failure = Some(summary::gave_up(error, saved, stopping()));
                return Ok(summary);
            }
            (Ok(reason), None) => reason,
        };
        retrying(&opened.claims, &dispatch_policy_after(), |db| {
            callbacks::release(db, &self.identity.token, &unstarted, None)
        })?;
        summary.stop_reason = if stopping() {
            StopReason::Signal
        } else if stop_reason == StopReason::Done && deadline.is_some_and(|d| Instant::now() >= d) {
            StopReason::Deadline
        } else {
            stop_reason
        };
        summary.endpoints = scheduler.lock().endpoint_states();
        for endpoint in &summary.endpoints {
            log::info!(
                "endpoint {}: limit {}, latency {:?}",
                endpoint.endpoint,
                endpoint.limit,
                endpoint.latency
            );
            let stats = summary
                .endpoint_stats
                .entry(endpoint.endpoint.clone())
                .or_default();
            stats.concurrency_limit = i32::try_from(endpoint.limit).unwrap_or(i32::MAX);
        }
        let exit_code = if summary.environment_problems.is_empty() {
            0
        } else {
            3
        };
        self.end_run(
            &opened.claims,
            opened.run_id,
            &summary,
            exit_code,
            summary.stop_reason,
        );
        Ok(summary)
    }

    /// Records this run and takes back the claims of runs of this host that died; in
    /// one transaction, retried while the database is locked or away (until the
    /// deadline), so that a passing lock does not cost the run. Returns the run's id
    /// and the claim tokens of this host's other runs that are alive.
    fn start_run(&self, link: &Mutex<Link>, policy: &RetryPolicy) -> Result<(i64, Vec<String>)> {
        retrying(link, policy, |db| {
            db.write_transaction(|db| {
                let run_id = runs::start(
                    db,
                    &runs::RunStart {
                        token: self.identity.token.clone(),
                        host: self.identity.host.clone(),
                        pid: self.identity.pid as i32,
                        process: self.identity.process.clone(),
                        started_at: crate::storage::now(),
                        following: self.options.follow,
                    },
                )?;
                let mut live_tokens = Vec::new();
                for run in runs::unfinished_on(db, &self.identity.host, run_id)? {
                    if !self
                        .identity
                        .knows_gone(&run.start.host, run.start.pid, &run.start.process)
                    {
                        live_tokens.push(run.start.token);
                    } else {
                        let taken = callbacks::expire_claims_of(db, &run.start.token)?;
                        runs::mark_died(db, run.id)?;
                        if taken > 0 {
                            log::warn!(
                                "run {} (pid {}) died holding {taken} callbacks; taking them back",
                                run.start.token,
                                run.start.pid
                            );
                        }
                    }
                }
                Ok((run_id, live_tokens))
            })
        })
    }

    fn end_run(
        &self,
        link: &Mutex<Link>,
        run_id: i64,
        summary: &Summary,
        exit_code: i32,
        reason: StopReason,
    ) {
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let end = runs::RunEnd {
            ended_at: Some(crate::storage::now()),
            claimed: count(summary.claimed),
            sent: count(summary.sent),
            retried: count(summary.retried),
            failed: count(summary.failed),
            held: count(summary.held),
            released: count(summary.released),
            exit_code: Some(exit_code),
            stop_reason: Some(reason.as_str().to_owned()),
        };
        let written = retrying(link, &dispatch_policy_after(), |db| {
            db.write_transaction(|db| {
                runs::record_stats(db, run_id, &summary.hook_stats, &summary.endpoint_stats)?;
                runs::end(db, run_id, &end)
            })
        });
        if let Err(error) = written {
            log::warn!("could not record the end of this run: {error}");
        }
    }

    /// A spinner on a terminal, nothing under cron or `--quiet`.
    fn progress_bar(&self) -> ProgressBar {
        if self.options.quiet || !std::io::stderr().is_terminal() {
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

/// After the workers stopped: a short, bounded retry to give claims back and record
/// the run's end.
fn dispatch_policy_after() -> RetryPolicy<'static> {
    RetryPolicy {
        give_up_at: Some(Instant::now() + Duration::from_secs(1)),
        stopping: &|| false,
        on_wait: &|_, _| {},
        on_recovered: &|| {},
    }
}

/// The first SIGTERM/SIGINT sets the flag; a second one ends the process at once.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
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

fn worker(
    deliverer: &Deliverer,
    scheduler: &Scheduler,
    reports: &Sender<Outcome>,
    deadline: Option<Instant>,
) {
    while let Some(job) = scheduler.next_job() {
        let may_start = || {
            let now = Instant::now();
            job.may_start(now) && deadline.is_none_or(|d| now < d)
        };
        let delivered = deliverer.deliver(&job.members, &job.prepared, job.batch, &may_start);
        scheduler.finished(&job, delivered.pressure);
        for outcome in delivered.outcomes {
            if reports.send(outcome).is_err() {
                return;
            }
        }
    }
}
