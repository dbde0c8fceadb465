//! Which claimed callback goes out next. Callbacks queue per route (scheme, host, port
//! and path of the hook's URL); each route has an adaptive limit on requests in flight
//! ([`Limiter`]); a free worker takes the route with the fewest requests in flight.
//! Routes showing overload share at most half the workers while others have work, and
//! so do routes that have not answered yet in this run (a dead one is only found out
//! when its first requests time out), so a dead or slow receiver, or many of them, only
//! ever use their share of the run. Limits are kept per route, not per server, because
//! one path of a server may hang while the others answer: timeouts of the hanging one
//! bring its own limit down to a single request at a time (a probe; its other
//! callbacks wait for it, claimed no further than that), and leave the others alone. A
//! server that is overloaded as a whole shows it on every route, and every route's limit
//! comes down.
//!
//! A callback moves through three places here:
//! - `claimed`: this run holds its lease, but has not said it may start. A run that
//!   dies now has not sent it, and the next run takes it over silently.
//! - `ready`: marked as started in the database (in batches, with a fresh lease), so a
//!   run that dies from here on may have sent it: the next run records an attempt of
//!   unknown outcome. Only as many as the route can start soon are marked.
//! - in flight, until the worker reports the outcome.
//!
//! No request starts unless the lease leaves it its whole timeout plus
//! [`START_MARGIN`]; jobs that wait long get their leases renewed by the dispatcher,
//! and any whose renewal finds the claim taken by another run are dropped unsent.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::limiter::Limiter;
use crate::delivery::{Member, Prepared, Pressure};
use crate::storage::callbacks::StartMarks;

/// Marked (in flight or ready) callbacks per request a route may have in flight:
/// enough ready ones that its workers never wait for the next claim, i.e. what they
/// finish during two claims (from the route's latency and the time a claim takes),
/// between these bounds. Receivers that take milliseconds get the minimum; one on the
/// same machine, answering in a fraction of a millisecond, more.
const MIN_READY_PER_SLOT: usize = 2;
const MAX_READY_PER_SLOT: usize = 16;

/// A request needs this much lease beyond its timeout to start: time to record it.
pub const START_MARGIN: Duration = Duration::from_secs(3);

/// One request: a claimed callback, or a batch of them (`--batch-size`), with the
/// request that sends it.
pub struct Job {
    /// Its callbacks, at least one, in the order the body holds them.
    pub members: Vec<Member>,
    pub prepared: Prepared,
    /// The body is a batch: a JSON array of the members' payloads.
    pub batch: bool,
    /// No more callbacks could join it (see `jobs::into_jobs`); false only for a batch
    /// that a later claim might fill.
    pub full: bool,
    /// The route it goes to (see [`route_of`]).
    pub route: String,
    /// The bytes it holds (its request body), for the run's memory bound.
    pub size: usize,
    /// The earliest this run's lease may end, by the local clock.
    pub lease_until: Instant,
    /// The longest one request of this callback may take.
    pub timeout: Duration,
    /// Marked as started in the database (it may be sent from now on).
    pub marked: bool,
}

impl Job {
    /// Its callbacks' ids.
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.members.iter().map(|m| m.callback.id)
    }

    /// The id of its first callback, the oldest.
    pub fn first_id(&self) -> i64 {
        self.members[0].callback.id
    }

    /// How many callbacks it carries.
    pub fn count(&self) -> usize {
        self.members.len()
    }

    /// Whether the lease leaves room for a whole request and its recording.
    pub fn may_start(&self, now: Instant) -> bool {
        self.lease_until.saturating_duration_since(now) >= self.timeout + START_MARGIN
    }
}

/// The route a URL sends to: scheme, host, port and path (not the query).
pub fn route_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}:{}{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or_default(),
            parsed.path()
        ),
        Err(_) => url.to_owned(),
    }
}

/// The endpoint a URL sends to: scheme, host and port (what reports aggregate).
pub fn endpoint_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}:{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => url.to_owned(),
    }
}

struct Route {
    claimed: VecDeque<Job>,
    ready: VecDeque<Job>,
    in_flight: usize,
    /// The bytes the jobs in flight hold.
    in_flight_bytes: usize,
    limiter: Limiter,
    /// It answered a request in this run (any answer, within the timeout).
    answered: bool,
}

impl Route {
    /// Whether it takes from the shared half of the workers: it shows overload, or
    /// it has not answered yet.
    fn in_shared_half(&self) -> bool {
        !self.answered || self.limiter.struggling()
    }

    /// Claimed callbacks (not yet marked) it may hold before the run stops claiming
    /// for it: as many as it may have marked, and once it has answered at least a
    /// worker's round, so that a slow route keeps no more of the backlog from other
    /// runs than it can send soon, and many dead ones do not fill the window.
    fn claim_cap(&self, per_slot: usize, concurrency: usize) -> usize {
        let cap = self.limiter.limit() * per_slot;
        if self.answered {
            cap.max(concurrency)
        } else {
            cap.max(MIN_READY_PER_SLOT)
        }
    }
}

/// What a worker gets.
pub enum Next {
    Job(Box<Job>),
    Wait,
    Done,
}

/// An endpoint's state (its routes' together), for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointState {
    pub endpoint: String,
    pub limit: usize,
    pub latency: Option<Duration>,
}

/// The queues, without locking; [`Scheduler`] shares it between threads.
pub struct Queues {
    routes: BTreeMap<String, Route>,
    concurrency: usize,
    /// No request starts any more (a signal, a fatal error).
    closed: bool,
    /// Outcomes can no longer be recorded: the run must end.
    pub failed: bool,
    /// No request starts from then on (`--max-runtime`).
    pub deadline: Option<Instant>,
    /// No request starts until outcomes can be recorded again.
    paused: bool,
    /// The dispatcher claims nothing more.
    dispatch_done: bool,
    /// Ready jobs whose lease ran short before they started, for the dispatcher.
    stale: Vec<Job>,
    /// Outcomes handed to the recorder and not yet written.
    pub unrecorded: usize,
    /// How many callbacks the run keeps claimed at most.
    window: usize,
    /// How long a claim takes (smoothed), measured by the dispatcher.
    pub claim_time: Duration,
    /// The callbacks of the requests in flight (a batch is one request, many callbacks).
    in_flight_callbacks: usize,
}

impl Queues {
    pub fn new(concurrency: usize, window: usize) -> Queues {
        Queues {
            window,
            claim_time: Duration::ZERO,
            routes: BTreeMap::new(),
            concurrency: concurrency.max(1),
            closed: false,
            failed: false,
            deadline: None,
            paused: false,
            dispatch_done: false,
            stale: Vec::new(),
            unrecorded: 0,
            in_flight_callbacks: 0,
        }
    }

    fn route(&mut self, key: &str) -> &mut Route {
        let concurrency = self.concurrency;
        self.routes.entry(key.to_owned()).or_insert_with(|| Route {
            claimed: VecDeque::new(),
            ready: VecDeque::new(),
            in_flight: 0,
            in_flight_bytes: 0,
            limiter: Limiter::new(concurrency),
            answered: false,
        })
    }

    /// The next job a worker may start, if any.
    pub fn next(&mut self, now: Instant) -> Next {
        if self.closed || self.deadline.is_some_and(|deadline| now >= deadline) {
            return Next::Done;
        }
        if !self.paused {
            let shared_in_flight: usize = self
                .routes
                .values()
                .filter(|e| e.in_shared_half())
                .map(|e| e.in_flight)
                .sum();
            let shared_half = (self.concurrency / 2).max(1);
            loop {
                let eligible: Vec<(&String, &Route)> = self
                    .routes
                    .iter()
                    .filter(|(_, e)| !e.ready.is_empty() && e.in_flight < e.limiter.limit())
                    .collect();
                let healthy_waiting = eligible.iter().any(|(_, e)| !e.in_shared_half());
                // Routes that never answered keep to the half even before anything
                // healthy has work: at the start of a run every route is new.
                let allowed: Vec<(&String, &Route)> = eligible
                    .into_iter()
                    .filter(|(_, e)| {
                        !(e.in_shared_half()
                            && (healthy_waiting || !e.answered)
                            && shared_in_flight >= shared_half)
                    })
                    .collect();
                // Fewest in flight first; among equals, the oldest work (callback ids
                // follow creation), so that while nothing has answered yet the half of
                // the workers goes to routes in the order their callbacks were made.
                let chosen = allowed
                    .into_iter()
                    .min_by_key(|(_, e)| (e.in_flight, e.ready.front().map(Job::first_id)))
                    .map(|(key, _)| key.clone());
                let Some(key) = chosen else { break };
                let route = self.route(&key);
                let job = route.ready.pop_front().expect("eligible routes have work");
                if !job.may_start(now) {
                    self.stale.push(job);
                    continue;
                }
                route.in_flight += 1;
                route.in_flight_bytes += job.size;
                self.in_flight_callbacks += job.count();
                return Next::Job(Box::new(job));
            }
        }
        let nothing_left = self
            .routes
            .values()
            .all(|e| e.claimed.is_empty() && e.ready.is_empty())
            && self.stale.is_empty();
        if self.dispatch_done && nothing_left {
            Next::Done
        } else {
            Next::Wait
        }
    }

    /// A worker finished a request of `size` bytes to `route`.
    pub fn finished(&mut self, route: &str, size: usize, pressure: Pressure, now: Instant) {
        let route = self.route(route);
        let in_flight = route.in_flight;
        route.in_flight = in_flight.saturating_sub(1);
        route.in_flight_bytes = route.in_flight_bytes.saturating_sub(size);
        match pressure {
            Pressure::Answered(latency) => {
                route.answered = true;
                route.limiter.on_answer(latency, in_flight, now)
            }
            Pressure::Overloaded => route.limiter.on_overload(now),
            Pressure::Neutral => route.answered = true,
        }
    }

    pub fn add_claimed(&mut self, job: Job) {
        let key = job.route.clone();
        self.route(&key).claimed.push_back(job);
    }

    pub fn add_ready(&mut self, mut job: Job) {
        job.marked = true;
        let key = job.route.clone();
        self.route(&key).ready.push_back(job);
    }

    /// The bytes the claimed callbacks of this run hold (their bodies), in the queues
    /// and in flight: the dispatcher claims no more while they reach its budget.
    pub fn held_bytes(&self) -> usize {
        let queued: usize = self
            .routes
            .values()
            .flat_map(|r| r.claimed.iter().chain(r.ready.iter()))
            .chain(self.stale.iter())
            .map(|job| job.size)
            .sum();
        queued
            + self
                .routes
                .values()
                .map(|r| r.in_flight_bytes)
                .sum::<usize>()
    }

    /// Marked callbacks per request in flight for `route` (see
    /// [`MIN_READY_PER_SLOT`]).
    fn ready_per_slot(&self, route: &Route) -> usize {
        let per_slot = match route.limiter.latency() {
            Some(latency) if !latency.is_zero() => {
                (2.0 * self.claim_time.as_secs_f64() / latency.as_secs_f64()).ceil() as usize + 1
            }
            _ => MIN_READY_PER_SLOT,
        };
        per_slot.clamp(MIN_READY_PER_SLOT, MAX_READY_PER_SLOT)
    }

    /// How many more callbacks of `route` may be marked ready now; and, for the
    /// whole run, no more than the window.
    fn ready_room(&self, route: &str) -> usize {
        let own = match self.routes.get(route) {
            Some(e) => (e.limiter.limit() * self.ready_per_slot(e))
                .saturating_sub(e.in_flight + e.ready.len()),
            None => MIN_READY_PER_SLOT,
        };
        own.min(self.global_ready_room())
    }

    fn global_ready_room(&self) -> usize {
        let total: usize = self
            .routes
            .values()
            .map(|e| e.in_flight + e.ready.len())
            .sum();
        (self.concurrency * MAX_READY_PER_SLOT)
            .min(self.window)
            .saturating_sub(total)
    }

    /// What the next claim may mark as started at once: what the routes have room
    /// for, except callbacks of hooks whose route has all it may (`hook_routes` says
    /// which route each known hook sends to; unknown ones get a little).
    pub fn start_marks(&self, hook_routes: &HashMap<i64, String>) -> StartMarks {
        let known: usize = self.routes.keys().map(|key| self.ready_room(key)).sum();
        StartMarks {
            up_to: (known + self.concurrency).min(self.global_ready_room()) as i64,
            except_hooks: hook_routes
                .iter()
                .filter(|(_, route)| self.ready_room(route) == 0)
                .map(|(hook, _)| *hook)
                .collect(),
        }
    }

    /// Routes whose ready jobs ran below their limit while claimed ones wait.
    /// Whether `route` has claimed jobs to mark and room to mark them: its ready jobs
    /// ran low and neither it nor the run holds all the ready jobs it may. (Room is
    /// part of it, or the dispatcher, woken to mark what it may not, would spin.)
    fn wants_marks(&self, key: &str, route: &Route) -> bool {
        !route.claimed.is_empty()
            && route.ready.len() <= route.limiter.limit()
            && self.ready_room(key) > 0
    }

    /// Whether the dispatcher has marking to do.
    pub fn needs_marking(&self) -> bool {
        self.routes
            .iter()
            .any(|(key, route)| self.wants_marks(key, route))
    }

    /// Claimed jobs to mark ready now (in batches: for routes whose ready jobs ran
    /// low), taken out of the queues.
    pub fn take_to_mark(&mut self) -> Vec<Job> {
        let keys: Vec<String> = self
            .routes
            .iter()
            .filter(|(key, e)| self.wants_marks(key, e))
            .map(|(key, _)| key.clone())
            .collect();
        let mut taken = Vec::new();
        for key in keys {
            let room = self.ready_room(&key);
            let route = self.route(&key);
            let n = room.min(route.claimed.len());
            taken.extend(route.claimed.drain(..n));
        }
        taken
    }

    /// Jobs that `needs_renewal` picks, taken out of the queues (with every stale one);
    /// the dispatcher renews their leases and puts them back.
    pub fn take_expiring(&mut self, needs_renewal: impl Fn(&Job) -> bool) -> Vec<Job> {
        let mut taken = std::mem::take(&mut self.stale);
        for route in self.routes.values_mut() {
            for queue in [&mut route.claimed, &mut route.ready] {
                let (expiring, keep): (VecDeque<Job>, VecDeque<Job>) =
                    queue.drain(..).partition(&needs_renewal);
                *queue = keep;
                taken.extend(expiring);
            }
        }
        taken
    }

    /// Routes that hold as many claimed callbacks as they may: claim none for them.
    pub fn full_routes(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter(|(_, e)| {
                e.claimed.len() >= e.claim_cap(self.ready_per_slot(e), self.concurrency)
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Claimed callbacks not yet recorded.
    pub fn outstanding(&self) -> usize {
        self.routes
            .values()
            .flat_map(|e| e.claimed.iter().chain(e.ready.iter()))
            .chain(self.stale.iter())
            .map(Job::count)
            .sum::<usize>()
            + self.in_flight_callbacks
            + self.unrecorded
    }

    /// Whether some route has a ready job and room to start it.
    fn has_startable(&self) -> bool {
        !self.paused
            && self
                .routes
                .values()
                .any(|e| !e.ready.is_empty() && e.in_flight < e.limiter.limit())
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.routes.values().map(|e| e.in_flight).sum()
    }

    /// Every job not started, taken out (to release at the end).
    pub fn take_unstarted(&mut self) -> Vec<Job> {
        let mut taken = std::mem::take(&mut self.stale);
        for route in self.routes.values_mut() {
            taken.extend(route.claimed.drain(..));
            taken.extend(route.ready.drain(..));
        }
        taken
    }

    /// Each endpoint's limit (its routes' together, at most the run's concurrency) and
    /// latency (its slowest route's).
    pub fn endpoint_states(&self) -> Vec<EndpointState> {
        let mut states: BTreeMap<String, EndpointState> = BTreeMap::new();
        for (key, route) in &self.routes {
            let endpoint = endpoint_of(key);
            let state = states.entry(endpoint.clone()).or_insert(EndpointState {
                endpoint,
                limit: 0,
                latency: None,
            });
            state.limit = (state.limit + route.limiter.limit()).min(self.concurrency);
            state.latency = state.latency.max(route.limiter.latency());
        }
        states.into_values().collect()
    }
}

/// [`Queues`] shared by the dispatcher, the workers and the recorder. Workers wait on
/// one condition and wake each other one at a time while work remains (waking them
/// all for every change cost a fifth of the throughput); the dispatcher waits on its
/// own.
pub struct Scheduler {
    queues: Mutex<Queues>,
    work: Condvar,
    dispatcher: Condvar,
    /// The dispatcher waits for room in the window: the recorder writes at once.
    pub room_wanted: std::sync::atomic::AtomicBool,
    /// Callbacks the dispatcher claimed so far (a following run's progress says it).
    pub claimed: std::sync::atomic::AtomicUsize,
}

/// How long a waiting worker sleeps before looking again.
const WORKER_WAIT: Duration = Duration::from_millis(200);

impl Scheduler {
    pub fn new(concurrency: usize, window: usize) -> Scheduler {
        Scheduler {
            queues: Mutex::new(Queues::new(concurrency, window)),
            work: Condvar::new(),
            dispatcher: Condvar::new(),
            room_wanted: std::sync::atomic::AtomicBool::new(false),
            claimed: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The queues, to read or change.
    pub fn lock(&self) -> MutexGuard<'_, Queues> {
        // A worker that panicked cannot have left the queues half-changed in a way
        // that matters more than stopping: go on with them.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The dispatcher changes the queues (new work); a worker wakes for it.
    pub fn update<T>(&self, change: impl FnOnce(&mut Queues) -> T) -> T {
        let result = change(&mut self.lock());
        self.work.notify_one();
        result
    }

    /// Blocks until a job may start (Some) or no more will come (None).
    pub fn next_job(&self) -> Option<Job> {
        let mut queues = self.lock();
        loop {
            match queues.next(Instant::now()) {
                Next::Job(job) => {
                    if queues.has_startable() {
                        self.work.notify_one();
                    }
                    return Some(*job);
                }
                Next::Done => {
                    self.work.notify_all();
                    return None;
                }
                Next::Wait => {
                    queues = self
                        .work
                        .wait_timeout(queues, WORKER_WAIT)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// A worker finished a request (`job`); its outcomes go to the recorder. The
    /// dispatcher is woken only when there is marking to do (room for claims comes
    /// from the recorder).
    pub fn finished(&self, job: &Job, pressure: Pressure) {
        let mut queues = self.lock();
        queues.finished(&job.route, job.size, pressure, Instant::now());
        queues.in_flight_callbacks = queues.in_flight_callbacks.saturating_sub(job.count());
        queues.unrecorded += job.count();
        let wake = queues.needs_marking();
        drop(queues);
        if wake {
            self.dispatcher.notify_one();
        }
    }

    /// The recorder wrote `count` outcomes.
    pub fn recorded(&self, count: usize) {
        let mut queues = self.lock();
        queues.unrecorded = queues.unrecorded.saturating_sub(count);
        drop(queues);
        self.dispatcher.notify_one();
    }

    /// The dispatcher waits up to `timeout` until `ready` holds, or there is marking
    /// or renewing to do, or the run ends. Checked under the lock, so no wake-up is
    /// missed between looking and waiting.
    pub fn wait_until(&self, timeout: Duration, ready: impl Fn(&Queues) -> bool) {
        let queues = self.lock();
        let _ = self.dispatcher.wait_timeout_while(queues, timeout, |q| {
            !(ready(q) || q.needs_marking() || !q.stale.is_empty() || q.closed)
        });
    }

    /// A change everyone must see.
    fn broadcast(&self, change: impl FnOnce(&mut Queues)) {
        change(&mut self.lock());
        self.work.notify_all();
        self.dispatcher.notify_all();
    }

    pub fn close(&self) {
        self.broadcast(|q| q.closed = true);
    }

    /// Outcomes cannot be recorded: start nothing more, and end the run.
    pub fn fail(&self) {
        self.broadcast(|q| {
            q.failed = true;
            q.closed = true;
        });
    }

    pub fn set_paused(&self, paused: bool) {
        self.broadcast(|q| q.paused = paused);
    }

    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.broadcast(|q| q.deadline = deadline);
    }

    pub fn dispatch_done(&self) {
        self.broadcast(|q| q.dispatch_done = true);
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
pub(super) mod tests;
