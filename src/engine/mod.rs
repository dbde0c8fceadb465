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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

mod jobs;
mod limiter;
mod link;
pub mod process;
mod record;
pub mod scheduler;
mod spool;

pub use jobs::body_of;
use jobs::{Preparation, Templates};
pub use link::RECONNECT_BUDGET;
use link::{retrying, Link, RetryPolicy};
use process::RunIdentity;
pub use scheduler::{endpoint_of, EndpointState};
use scheduler::{Scheduler, START_MARGIN};

use crate::delivery::Deliverer;
use crate::error::{DbFailure, Error, Result};
use crate::payload::Renderer;
use crate::storage::callbacks::{self, lease_for, ClaimFilter, Claimed, Outcome};
use crate::storage::runs;

/// Callbacks claimed and not yet recorded, per worker.
const WINDOW_PER_WORKER: usize = 32;
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
    pub quiet: bool,
}

pub struct Engine {
    url: Option<String>,
    options: Options,
    identity: RunIdentity,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopReason {
    /// Nothing more was due.
    #[default]
    Done,
    /// `--limit` callbacks were claimed.
    Limit,
    /// `--max-runtime` was reached.
    Deadline,
    Signal,
    /// The database failed for longer than the run could wait.
    Error,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Done => "done",
            StopReason::Limit => "limit",
            StopReason::Deadline => "deadline",
            StopReason::Signal => "signal",
            StopReason::Error => "error",
        }
    }
}

#[derive(Debug, Default)]
pub struct Summary {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Given back without an attempt (the run stopped first, or the hook was paused).
    pub released: usize,
    /// Not sent because the environment lacks what their hook needs.
    pub held: usize,
    /// Why held callbacks were not sent (one sentence per problem).
    pub environment_problems: BTreeSet<String>,
    pub stop_reason: StopReason,
    pub elapsed: Duration,
    /// Each endpoint's concurrency limit at the end.
    pub endpoints: Vec<EndpointState>,
    /// What the run did per hook and saw per endpoint (recorded with the run).
    pub hook_stats: BTreeMap<i64, runs::HookStats>,
    pub endpoint_stats: BTreeMap<String, runs::EndpointStats>,
    /// Hooks whose callbacks this run held for a missing environment variable.
    pub held_hooks: BTreeSet<i64>,
    /// Why the run ended early: its database went away for longer than it could wait.
    pub failure: Option<Error>,
}

impl Summary {
    fn count(&mut self, outcome: &Outcome) {
        let hook = self.hook_stats.entry(outcome.hook_id).or_default();
        match outcome.status {
            crate::storage::models::Status::Sent => {
                self.sent += 1;
                hook.sent += 1;
            }
            crate::storage::models::Status::Waiting => {
                self.retried += 1;
                hook.retried += 1;
            }
            _ => {
                self.failed += 1;
                hook.failed += 1;
            }
        }
        for attempt in &outcome.attempts {
            let succeeded = attempt
                .response_status_code
                .is_some_and(|code| (200..300).contains(&code));
            if succeeded {
                let at = attempt.started_at
                    + chrono::Duration::milliseconds(
                        attempt.elapsed_ms.clamp(0, i64::from(i32::MAX)),
                    );
                hook.last_success_at = hook.last_success_at.max(Some(at));
            }
            let endpoint = self
                .endpoint_stats
                .entry(scheduler::endpoint_of(&attempt.request_url))
                .or_default();
            endpoint.requests += 1;
            endpoint.failures += i32::from(!succeeded);
            endpoint.latency.observe(attempt.elapsed_ms);
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
        match self.stop_reason {
            StopReason::Signal => line.push_str("; stopped by signal"),
            StopReason::Deadline => line.push_str("; stopped at --max-runtime"),
            StopReason::Error => line.push_str("; stopped: the database failed"),
            _ => {}
        }
        line
    }
}

/// The dispatcher's state between rounds.
struct Dispatch<'a> {
    filter: ClaimFilter,
    renderer: Renderer,
    templates: Templates,
    /// The route each hook sent to last, to stop claiming for full routes.
    hook_routes: HashMap<i64, String>,
    /// The backend's limit on one callback's row (see `Db::max_callback_bytes`).
    max_callback_bytes: Option<i64>,
    /// The largest body a claim brought in this run, to size the next claim by.
    largest_body: usize,
    /// Hooks held for a missing environment variable: never claimed again this run.
    held_hooks: BTreeSet<i64>,
    summary: Summary,
    reports: Sender<Outcome>,
    scheduler: &'a Scheduler,
    policy: RetryPolicy<'a>,
    pace: Pace,
}

/// How long claims take (smoothed): endpoints keep enough requests ready to cover two.
#[derive(Default)]
struct Pace {
    claim_seconds: Option<f64>,
}

impl Pace {
    fn claimed(&mut self, took: Duration, scheduler: &Scheduler) {
        let took = took.as_secs_f64();
        let smoothed = self.claim_seconds.map_or(took, |s| s + (took - s) * 0.3);
        self.claim_seconds = Some(smoothed);
        scheduler.lock().claim_time = Duration::from_secs_f64(smoothed);
    }
}

impl Engine {
    pub fn new(url: Option<&str>, options: Options) -> Engine {
        Engine {
            url: url.map(str::to_owned),
            options,
            identity: RunIdentity::current(),
        }
    }

    fn concurrency(&self) -> usize {
        self.options.concurrency.max(1)
    }

    fn window(&self) -> usize {
        self.concurrency() * WINDOW_PER_WORKER
    }

    pub fn run(&self, filter: &ClaimFilter) -> Result<Summary> {
        let started = Instant::now();
        let deadline = self.options.max_runtime.map(|d| started + d);
        let stop = stop_on_signals()?;
        let stopping_early = || stop.load(Ordering::SeqCst);
        let warn_locked = |error: &Error, wait: Duration| {
            log::warn!("cannot start the run, retrying in {wait:?}: {error}");
        };
        // A database locked or away at the start is waited for within the deadline, as
        // one lost later.
        let starting = RetryPolicy {
            give_up_at: deadline,
            stopping: &stopping_early,
            on_wait: &warn_locked,
            on_recovered: &|| {},
        };
        let claims_link = Mutex::new(Link::new(self.url.as_deref()));
        let (writes_apart, max_callback_bytes) = retrying(&claims_link, &starting, |db| {
            Ok((
                db.backend().allows_concurrent_writers(),
                db.backend().max_callback_bytes()?,
            ))
        })?;
        let own_records_link = writes_apart.then(|| Mutex::new(Link::new(self.url.as_deref())));
        let records_link = own_records_link.as_ref().unwrap_or(&claims_link);
        let deliverer = Deliverer::new(self.concurrency(), self.url.as_deref())?;
        // Outcomes an earlier run on this host sent but could not record: recorded
        // before its claims are taken back, so that they are not sent again.
        let saved = retrying(&claims_link, &starting, |db| {
            spool::record_saved(db, self.url.as_deref())
        });
        if let Err(error) = saved {
            log::warn!("could not record the outcomes an earlier run saved: {error}");
        }
        let run_id = self.start_run(&claims_link, &starting)?;
        let progress = self.progress_bar();

        let scheduler = Scheduler::new(self.concurrency(), self.window());
        scheduler.set_deadline(deadline);
        let (report_sender, report_receiver) = mpsc::channel::<Outcome>();
        let stopping = || stop.load(Ordering::SeqCst);
        // Whatever finds the database away pauses the workers at once: nothing starts
        // that could not be recorded (the recorder does the same).
        let warn_wait = |error: &Error, wait: Duration| {
            scheduler.set_paused(true);
            log::warn!("database unavailable, pausing delivery and retrying in {wait:?}: {error}");
        };
        let recovered = || {
            scheduler.set_paused(false);
            log::warn!("database available again; delivery goes on");
        };

        let outcome = thread::scope(|scope| {
            let recorder = scope.spawn(|| {
                record::record_loop(
                    records_link,
                    &self.identity.token,
                    report_receiver,
                    &scheduler,
                    &progress,
                    record::Limits {
                        batch: self.concurrency() * RECORD_PER_WORKER,
                        round: self.concurrency(),
                        give_up_at: deadline,
                        stopping: &stopping,
                    },
                )
            });
            for _ in 0..self.concurrency() {
                let reports = report_sender.clone();
                let (deliverer, scheduler) = (&deliverer, &scheduler);
                scope.spawn(move || worker(deliverer, scheduler, &reports, deadline));
            }
            let mut dispatch = Dispatch {
                filter: filter.clone(),
                renderer: Renderer::new(),
                templates: Templates::new(),
                hook_routes: HashMap::new(),
                max_callback_bytes,
                largest_body: 0,
                held_hooks: BTreeSet::new(),
                summary: Summary::default(),
                reports: report_sender,
                scheduler: &scheduler,
                policy: RetryPolicy {
                    give_up_at: deadline,
                    stopping: &stopping,
                    on_wait: &warn_wait,
                    on_recovered: &recovered,
                },
                pace: Pace::default(),
            };
            let result = self.dispatch(&claims_link, &mut dispatch, deadline, &stopping);
            match result {
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
            (result, dispatch.summary, recorded)
        });
        progress.finish_and_clear();
        let (dispatched, mut summary, recorded) = outcome;
        summary.sent = recorded.summary.sent;
        summary.retried = recorded.summary.retried;
        summary.failed = recorded.summary.failed;
        summary.hook_stats = recorded.summary.hook_stats;
        summary.endpoint_stats = recorded.summary.endpoint_stats;
        summary.elapsed = started.elapsed();

        // What was claimed and not started goes back untouched. When the database
        // could not be written to the end, nothing more is tried: the next run on this
        // host takes the claims back at once (another host's after the leases), and
        // records first what this run saved of the outcomes it could not write.
        let unstarted: Vec<i64> = scheduler
            .update(|q| q.take_unstarted())
            .iter()
            .map(|job| job.callback.id)
            .collect();
        let (stop_reason, failure) = match (dispatched, recorded.failure) {
            (Err(error), _) | (Ok(_), Some(error)) => (StopReason::Error, Some(error)),
            (Ok(reason), None) => (reason, None),
        };
        if let Some(error) = failure {
            summary.stop_reason = StopReason::Error;
            summary.released += unstarted.len();
            let saved = match recorded.unrecorded.len() {
                0 => None,
                n => Some((
                    n,
                    spool::save(
                        self.url.as_deref(),
                        &self.identity.token,
                        recorded.unrecorded,
                    ),
                )),
            };
            summary.failure = Some(gave_up(error, saved));
            return Ok(summary);
        }
        retrying(&claims_link, &dispatch_policy_after(), |db| {
            callbacks::release(db, &self.identity.token, &unstarted, None)
        })?;

        summary.released += unstarted.len();
        summary.stop_reason = if stop.load(Ordering::SeqCst) {
            StopReason::Signal
        } else if stop_reason == StopReason::Done && deadline.is_some_and(|d| Instant::now() >= d) {
            StopReason::Deadline
        } else {
            stop_reason
        };
        summary.endpoints = scheduler.lock().endpoint_states();
        for endpoint in &summary.endpoints {
            let limit = i32::try_from(endpoint.limit).unwrap_or(i32::MAX);
            let stats = summary
                .endpoint_stats
                .entry(endpoint.endpoint.clone())
                .or_default();
            stats.concurrency_limit = limit;
        }
        for endpoint in &summary.endpoints {
            log::info!(
                "endpoint {}: limit {}, latency {:?}",
                endpoint.endpoint,
                endpoint.limit,
                endpoint.latency
            );
        }
        let exit_code = if summary.environment_problems.is_empty() {
            0
        } else {
            3
        };
        self.end_run(
            &claims_link,
            run_id,
            &summary,
            exit_code,
            summary.stop_reason,
        );
        Ok(summary)
    }

    /// Records this run and takes back the claims of runs of this host that died; in
    /// one transaction, retried while the database is locked or away (until the
    /// deadline), so that a passing lock does not cost the run.
    fn start_run(&self, link: &Mutex<Link>, policy: &RetryPolicy) -> Result<i64> {
        retrying(link, policy, |db| {
            db.write_transaction(|db| {
                let run_id = runs::start(
                    db,
                    &runs::NewRun {
                        token: self.identity.token.clone(),
                        host: self.identity.host.clone(),
                        pid: self.identity.pid as i32,
                        process: self.identity.process.clone(),
                        started_at: crate::storage::now(),
                    },
                )?;
                for run in runs::unfinished_on(db, &self.identity.host, run_id)? {
                    if self.identity.knows_gone(&run.host, run.pid, &run.process) {
                        let taken = callbacks::expire_claims_of(db, &run.token)?;
                        runs::mark_died(db, run.id)?;
                        if taken > 0 {
                            log::warn!(
                                "run {} (pid {}) died holding {taken} callbacks; taking them back",
                                run.token,
                                run.pid
                            );
                        }
                    }
                }
                Ok(run_id)
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

    /// Claims, marks and renews until nothing is due, the limit or deadline is
    /// reached, a signal arrives or the database fails for good.
    fn dispatch(
        &self,
        link: &Mutex<Link>,
        d: &mut Dispatch,
        deadline: Option<Instant>,
        stopping: &dyn Fn() -> bool,
    ) -> Result<StopReason> {
        loop {
            if stopping() {
                return Ok(StopReason::Signal);
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(StopReason::Deadline);
            }
            if d.scheduler.lock().failed {
                return Ok(StopReason::Error);
            }
            self.renew_expiring(link, d)?;
            self.mark_ready(link, d)?;
            let outstanding = d.scheduler.lock().outstanding();
            let remaining = self
                .options
                .limit
                .map_or(i64::MAX, |limit| limit - d.summary.claimed as i64);
            if remaining <= 0 {
                // Nothing more is claimed, but what was claimed is still marked as its
                // endpoints make room, sent and recorded (workers only start marked jobs).
                if outstanding == 0 {
                    return Ok(StopReason::Limit);
                }
                d.scheduler
                    .wait_until(IDLE_WAIT, |q| q.outstanding() < outstanding);
                continue;
            }
            // Claim in batches, as the window has room.
            let batch = self.concurrency();
            let window = self.window();
            let room = window.saturating_sub(outstanding);
            if room < batch && outstanding > 0 {
                d.scheduler.room_wanted.store(true, Ordering::SeqCst);
                d.scheduler
                    .wait_until(IDLE_WAIT, |q| q.outstanding() + batch <= window);
                continue;
            }
            let byte_budget = self.concurrency() * BYTES_PER_WORKER;
            let held_bytes = d.scheduler.lock().held_bytes();
            if held_bytes >= byte_budget && outstanding > 0 {
                d.scheduler
                    .wait_until(IDLE_WAIT, |q| q.held_bytes() < byte_budget);
                continue;
            }
            // As many as the budget holds of the largest bodies seen (at least one).
            let byte_room = match d.largest_body {
                0 => usize::MAX,
                largest => ((byte_budget - held_bytes) / largest).max(1),
            };
            d.scheduler.room_wanted.store(false, Ordering::SeqCst);
            self.exclude_full_routes(d);
            let marks = d.scheduler.lock().start_marks(&d.hook_routes);
            // What can be marked now, and a worker's round more to queue.
            let want = (room.max(1) as i64)
                .min(marks.up_to + batch as i64)
                .min(remaining)
                .min(i64::try_from(byte_room).unwrap_or(i64::MAX));
            let before_claim = Instant::now();
            let claimed = retrying(link, &d.policy, |db| {
                db.write_transaction(|db| {
                    db.backend()
                        .claim(&d.filter, want, &self.identity.token, &marks)
                })
            })?;
            d.pace.claimed(before_claim.elapsed(), d.scheduler);
            if claimed.is_empty() {
                if outstanding == 0 {
                    return Ok(StopReason::Done);
                }
                // What is in flight may unblock more (the next callback of an ordered
                // row), so wait for it before giving up.
                d.scheduler
                    .wait_until(IDLE_WAIT, |q| q.outstanding() < outstanding);
                continue;
            }
            // While hooks are excluded, the next claim goes on where this one ended;
            // a claim that comes up short starts again from the head of the queue.
            d.filter.after = match claimed.last() {
                Some(last)
                    if !d.filter.exclude_hook_ids.is_empty() && claimed.len() as i64 == want =>
                {
                    let due_at = last
                        .callback
                        .next_attempt_at
                        .unwrap_or(chrono::DateTime::UNIX_EPOCH.naive_utc());
                    Some((due_at, last.callback.id))
                }
                _ => None,
            };
            d.summary.claimed += claimed.len();
            log::debug!(
                "claimed {} ({} marked) in {:?}; {outstanding} were outstanding",
                claimed.len(),
                claimed.iter().filter(|c| c.marked).count(),
                before_claim.elapsed(),
            );
            self.settle_unknown_outcomes(link, d, &claimed)?;
            self.queue_claimed(link, d, claimed, before_claim)?;
        }
    }

    /// Stops claiming for hooks whose route holds all the claims it may.
    fn exclude_full_routes(&self, d: &mut Dispatch) {
        let full = d.scheduler.lock().full_routes();
        let mut excluded: BTreeSet<i64> = d.held_hooks.clone();
        for (hook, route) in &d.hook_routes {
            if full.contains(route) {
                excluded.insert(*hook);
            }
        }
        let excluded: Vec<i64> = excluded.into_iter().collect();
        if excluded != d.filter.exclude_hook_ids {
            // Hooks claimable again may have callbacks anywhere in the queue.
            d.filter.after = None;
        }
        d.filter.exclude_hook_ids = excluded;
    }

    /// Claims taken over from runs that died after starting them: record the attempt
    /// each may have made.
    fn settle_unknown_outcomes(
        &self,
        link: &Mutex<Link>,
        d: &mut Dispatch,
        claimed: &[Claimed],
    ) -> Result<()> {
        let started: Vec<&Claimed> = claimed
            .iter()
            .filter(|c| c.previous_started && c.previous_token.is_some())
            .collect();
        if started.is_empty() {
            return Ok(());
        }
        retrying(link, &d.policy, |db| {
            callbacks::record_unknown_outcomes(db, &self.identity.token, &started)
        })
    }

    /// Renders and queues claimed callbacks; gives back those held by the environment.
    fn queue_claimed(
        &self,
        link: &Mutex<Link>,
        d: &mut Dispatch,
        claimed: Vec<Claimed>,
        claimed_at: Instant,
    ) -> Result<()> {
        let mut held: HashMap<String, Vec<i64>> = HashMap::new();
        let named = !d.filter.callback_ids.is_empty();
        let mut jobs = Vec::new();
        let marked: Vec<i64> = claimed
            .iter()
            .filter(|c| c.marked)
            .map(|c| c.callback.id)
            .collect();
        for claim in claimed {
            let mut callback = claim.callback;
            if claim.previous_started && claim.previous_token.is_some() {
                callback.attempts += 1;
            }
            if named {
                // --callback: one attempt per named callback per run.
                d.filter.exclude_ids.push(callback.id);
            }
            let lease_until = claimed_at + lease_for(callback.settings.timeout());
            let hook_id = callback.hook_id;
            let prepared = jobs::prepare(
                &mut d.renderer,
                &mut d.templates,
                callback,
                lease_until,
                d.max_callback_bytes,
            );
            match prepared {
                Preparation::Job(job) => {
                    d.largest_body = d.largest_body.max(job.size);
                    d.hook_routes.insert(hook_id, job.route.clone());
                    jobs.push(job);
                }
                Preparation::Done(outcome) => {
                    d.scheduler.lock().unrecorded += 1;
                    let _ = d.reports.send(outcome);
                }
                Preparation::Held(id, problem) => {
                    d.held_hooks.insert(hook_id);
                    held.entry(problem).or_default().push(id);
                }
            }
        }
        d.scheduler.update(|q| {
            for job in jobs {
                if marked.contains(&job.callback.id) {
                    q.add_ready(job);
                } else {
                    q.add_claimed(job);
                }
            }
        });
        for (problem, ids) in held {
            let note = format!("not sent: {problem}");
            retrying(link, &d.policy, |db| {
                callbacks::release(db, &self.identity.token, &ids, Some(&note))
            })?;
            d.summary.held += ids.len();
            d.summary.environment_problems.insert(problem);
        }
        Ok(())
    }

    /// Marks as started what endpoints can start soon, renewing their leases.
    fn mark_ready(&self, link: &Mutex<Link>, d: &mut Dispatch) -> Result<()> {
        let to_mark = d.scheduler.update(|q| q.take_to_mark());
        if to_mark.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = to_mark.iter().map(|job| job.callback.id).collect();
        let marked_at = Instant::now();
        log::debug!("marking {} ready", ids.len());
        let held = retrying(link, &d.policy, |db| {
            callbacks::renew(db, &self.identity.token, &ids, true)
        })?;
        let mut not_held = Vec::new();
        d.scheduler.update(|q| {
            for mut job in to_mark {
                if held.contains(&job.callback.id) {
                    job.lease_until = marked_at + lease_for(job.timeout);
                    q.add_ready(job);
                } else {
                    not_held.push(job.callback.id);
                }
            }
        });
        // Taken by another run (then this changes nothing), or its hook was paused
        // meanwhile: give it back.
        if !not_held.is_empty() {
            retrying(link, &d.policy, |db| {
                callbacks::release(db, &self.identity.token, &not_held, None)
            })?;
            d.summary.released += not_held.len();
        }
        Ok(())
    }

    /// Renews the leases of callbacks that have waited long; drops those that another
    /// run has taken meanwhile.
    fn renew_expiring(&self, link: &Mutex<Link>, d: &mut Dispatch) -> Result<()> {
        let now = Instant::now();
        let expiring = d.scheduler.update(|q| {
            q.take_expiring(|job| {
                job.lease_until.saturating_duration_since(now)
                    < job.timeout + START_MARGIN + RENEW_AHEAD
            })
        });
        if expiring.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = expiring.iter().map(|job| job.callback.id).collect();
        let renewed_at = Instant::now();
        let held = retrying(link, &d.policy, |db| {
            callbacks::renew(db, &self.identity.token, &ids, false)
        })?;
        let lost = expiring.len() - held.len();
        if lost > 0 {
            log::warn!("{lost} claims were taken over by another run before they were sent");
        }
        d.scheduler.update(|q| {
            for mut job in expiring {
                if held.contains(&job.callback.id) {
                    job.lease_until = renewed_at + lease_for(job.timeout);
                    if job.marked {
                        q.add_ready(job);
                    } else {
                        q.add_claimed(job);
                    }
                }
            }
        });
        Ok(())
    }

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

/// The error a run ends with when its database went away for good: says so (not "check
/// DATABASE_URL": it was reachable when the run began), and where the outcomes it could
/// not write went.
fn gave_up(
    error: Error,
    saved: Option<(usize, std::result::Result<std::path::PathBuf, String>)>,
) -> Error {
    let saved = match saved {
        None => String::new(),
        Some((n, Ok(path))) => format!(
            "; the outcomes of {n} callback(s) it sent were saved to {} and the next run on this host records them",
            path.display()
        ),
        Some((n, Err(problem))) => format!(
            "; the outcomes of {n} callback(s) it sent could not be saved ({problem}), so the next run sends them again"
        ),
    };
    match error {
        Error::Database {
            failure: DbFailure::Connection,
            message,
        } => Error::Database {
            failure: DbFailure::Connection,
            message: format!(
                "the database went away during the run and did not come back before its deadline, \
                 so the run stopped sending{saved}; run send_callbacks again once the database is \
                 back (the last error: {})",
                crate::storage::connection_problem(&message)
            ),
        },
        Error::Database { failure, message } => Error::Database {
            failure,
            message: format!("the run stopped sending: {message}{saved}"),
        },
        other => other,
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

fn worker(
    deliverer: &Deliverer,
    scheduler: &Scheduler,
    reports: &Sender<Outcome>,
    deadline: Option<Instant>,
) {
    while let Some(mut job) = scheduler.next_job() {
        let rendered = job.rendered_payload.take();
        let may_start = || {
            let now = Instant::now();
            job.may_start(now) && deadline.is_none_or(|d| now < d)
        };
        let delivered = deliverer.deliver(&job.callback, &job.prepared, rendered, &may_start);
        scheduler.finished(&job.route, job.size, delivered.pressure);
        if reports.send(delivered.outcome).is_err() {
            return;
        }
    }
}
