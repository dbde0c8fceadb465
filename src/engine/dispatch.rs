//! The dispatcher: claims due callbacks in batches, renders them into requests and
//! queues them for the workers, marks them as started as their routes make room, and
//! renews the leases of those that wait.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::follow::Follow;
use super::jobs::{self, Preparation, Templates};
use super::link::{retrying, Link, RetryPolicy};
use super::scheduler::{Job, Scheduler, START_MARGIN};
use super::summary::{StopReason, Summary};
use super::{Engine, BATCHES_PER_WORKER, BYTES_PER_WORKER, IDLE_WAIT, RENEW_AHEAD};

use crate::delivery::EnvProblem;
use crate::error::Result;
use crate::payload::Renderer;
use crate::storage::callbacks::{self, lease_for, Claim, ClaimFilter, Claimed, Outcome};
use crate::storage::coalesce;
use crate::storage::models::Callback;

/// A short batch is given back for more of its hook's callbacks to join it (they may
/// be behind other hooks' backlogs) until it has been given back twice and for this
/// long: then it goes as it is, so that no backlog holds it back for long. Both, as a
/// claim may come seconds after the last (one worker, a large admission).
const FILL_WAIT: Duration = Duration::from_secs(1);
const FILL_TRIES: u32 = 2;

/// A callback of a short batch given back: when first, and how many times.
#[derive(Clone, Copy)]
pub(super) struct GivenBack {
    first: Instant,
    times: u32,
}

/// The most callbacks one claim takes: a claim is one write transaction, which on
/// SQLite holds the application's writers back while it lasts.
const MOST_PER_CLAIM: usize = 4096;

/// The dispatcher's state between rounds.
pub(super) struct Dispatch<'a> {
    pub(super) filter: ClaimFilter,
    pub(super) renderer: Renderer,
    pub(super) templates: Templates,
    /// The route each hook sent to last, to stop claiming for full routes.
    pub(super) hook_routes: HashMap<i64, String>,
    /// The backend's limit on one callback's row (see `Db::max_callback_bytes`).
    pub(super) max_callback_bytes: Option<i64>,
    /// The largest body a claim brought in this run, to size the next claim by.
    pub(super) largest_body: usize,
    /// Hooks held for a missing environment variable: never claimed again this run.
    pub(super) held_hooks: BTreeSet<i64>,
    pub(super) summary: Summary,
    pub(super) reports: Sender<Outcome>,
    pub(super) scheduler: &'a Scheduler,
    pub(super) policy: RetryPolicy<'a>,
    pub(super) pace: Pace,
    /// A following run's state (`--follow`); None for a run that ends when drained.
    pub(super) follow: Option<Follow>,
    /// The largest `--batch-size` among the hooks claimed so far (1 before any): a
    /// request of such a hook carries this many callbacks, so the run claims and keeps
    /// that many times more callbacks than requests.
    pub(super) batch_factor: usize,
    /// Callbacks of short batches given back (see `give_back_unfilled`): when they first
    /// were, and how many times.
    pub(super) given_back: HashMap<i64, GivenBack>,
    /// The smallest claim that holds a full batch of every batch hook, by the smallest
    /// share each had of a full claim so far (see `claim_for_shares`); 0 before any.
    pub(super) least_claim: usize,
}

impl Dispatch<'_> {
    /// Why the run must stop now, if it must.
    pub(super) fn must_stop(
        &self,
        deadline: Option<Instant>,
        stopping: &dyn Fn() -> bool,
    ) -> Option<StopReason> {
        if stopping() {
            Some(StopReason::Signal)
        } else if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            Some(StopReason::Deadline)
        } else if self.scheduler.lock().failed {
            Some(StopReason::Error)
        } else {
            None
        }
    }
}

/// How long claims take (smoothed): endpoints keep enough requests ready to cover two.
#[derive(Default)]
pub(super) struct Pace {
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
    /// Claims and queues callbacks until nothing is due (a following run: until its
    /// deadline), the limit or the deadline is reached, a signal arrives or the database
    /// fails for good.
    pub(super) fn dispatch(
        &self,
        link: &Mutex<Link>,
        d: &mut Dispatch,
        deadline: Option<Instant>,
        stopping: &dyn Fn() -> bool,
    ) -> Result<StopReason> {
        loop {
            if let Some(reason) = d.must_stop(deadline, stopping) {
                return Ok(reason);
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
            let for_workers = self.concurrency() * d.batch_factor;
            let batch = for_workers
                .max(d.least_claim.min(for_workers * BATCHES_PER_WORKER))
                .min(MOST_PER_CLAIM);
            // Room for the next claim while this one is sent.
            let window = self.window_for(d.batch_factor).max(2 * batch);
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
            let mut marks = d.scheduler.lock().start_marks(&d.hook_routes);
            marks.up_to *= d.batch_factor as i64;
            // What can be marked now, and a worker's round more to queue.
            let want = (room.max(1) as i64)
                .min(marks.up_to + batch as i64)
                .min(MOST_PER_CLAIM as i64)
                .min(remaining)
                .min(i64::try_from(byte_room).unwrap_or(i64::MAX));
            // A claim that goes on after a position (hooks excluded) and comes up short
            // has reached the end of the queue, but not its head.
            let from_head = d.filter.after.is_none();
            let before_claim = Instant::now();
            let claimed = retrying(link, &d.policy, |db| {
                db.write_transaction(|db| {
                    db.backend().claim(&Claim {
                        filter: &d.filter,
                        limit: want,
                        token: &self.identity.token,
                        marks: &marks,
                    })
                })
            })?;
            d.pace.claimed(before_claim.elapsed(), d.scheduler);
            if let Some(follow) = &mut d.follow {
                follow.claimed(!claimed.is_empty());
            }
            if claimed.is_empty() {
                log::debug!("claimed none; {outstanding} were outstanding");
                if d.follow.is_some() {
                    match self.wait_for_work(link, d, deadline, stopping, outstanding)? {
                        Some(reason) => return Ok(reason),
                        None => continue,
                    }
                }
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
            d.scheduler
                .claimed
                .fetch_add(claimed.len(), Ordering::Relaxed);
            log::debug!(
                "claimed {} ({} marked) in {:?}; {outstanding} were outstanding",
                claimed.len(),
                claimed.iter().filter(|c| c.marked).count(),
                before_claim.elapsed(),
            );
            self.settle_unknown_outcomes(link, d, &claimed)?;
            // A claim sized by what is left of --limit is the run's last: nothing
            // follows it to fill a short batch, which goes as it is (so a run sends the
            // oldest N, as --dry-run --limit N shows them).
            let last = want == remaining;
            let full = !last && (claimed.len() as i64 == want || !from_head);
            self.queue_claimed(link, d, claimed, before_claim, full)?;
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

    /// Of the claimed callbacks of `--coalesce` hooks, those with a newer waiting change
    /// of their row are marked superseded instead of sent (`storage::coalesce`).
    fn coalesce(
        &self,
        link: &Mutex<Link>,
        d: &mut Dispatch,
        claimed: Vec<Claimed>,
    ) -> Result<Vec<Claimed>> {
        if !claimed.iter().any(|c| c.callback.settings.coalesced) {
            return Ok(claimed);
        }
        // One taken over from a run that may have sent it was attempted.
        let callbacks: Vec<&Callback> = claimed
            .iter()
            .filter(|c| !(c.previous_started && c.previous_token.is_some()))
            .map(|c| &c.callback)
            .collect();
        let (folds, folded) = retrying(link, &d.policy, |db| coalesce::folds(db, &callbacks))?;
        if folds.is_empty() {
            return Ok(claimed);
        }
        let token = &self.identity.token;
        let by_hook = retrying(link, &d.policy, |db| {
            db.write_transaction(|db| coalesce::supersede(db, token, &folds))
        })?;
        for (hook, count) in by_hook {
            d.summary.superseded += count;
            *d.summary.superseded_by_hook.entry(hook).or_default() += count;
        }
        Ok(claimed
            .into_iter()
            .filter(|c| !folded.contains(&c.callback.id))
            .collect())
    }

    /// Renders and queues claimed callbacks (alone or in batches); gives back those
    /// held by the environment. `full`: more of the queue may follow the claim, so a
    /// short batch in it may fill.
    fn queue_claimed(
        &self,
        link: &Mutex<Link>,
        d: &mut Dispatch,
        claimed: Vec<Claimed>,
        claimed_at: Instant,
        full: bool,
    ) -> Result<()> {
        let claimed = self.coalesce(link, d, claimed)?;
        if full {
            // Never less: a claim made while some hooks' routes were full holds none of
            // theirs, and says nothing of their shares.
            d.least_claim = d.least_claim.max(claim_for_shares(&claimed));
        }
        let largest_batch = claimed
            .iter()
            .map(|c| c.callback.settings.batch_size)
            .max()
            .unwrap_or(1);
        let factor_before = d.batch_factor;
        d.batch_factor = d
            .batch_factor
            .max(usize::try_from(largest_batch).unwrap_or(1));
        // The claim was sized before the run knew how many callbacks a request of
        // these hooks carries (its first claim of a batch hook).
        let sized_too_small = d.batch_factor > factor_before;
        let mut held: HashMap<EnvProblem, Vec<i64>> = HashMap::new();
        let named = !d.filter.callback_ids.is_empty();
        let mut members = Vec::new();
        let marked: HashSet<i64> = claimed
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
            let hook_id = callback.hook_id;
            let prepared = jobs::prepare(
                &mut d.renderer,
                &mut d.templates,
                callback,
                d.max_callback_bytes,
            );
            match prepared {
                Preparation::Send(member) => {
                    d.largest_body = d.largest_body.max(member.body.len());
                    members.push(member);
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
        let mut jobs = jobs::into_jobs(members, &d.templates, claimed_at);
        if full && !named {
            self.give_back_unfilled(link, d, &mut jobs, sized_too_small, claimed_at)?;
        }
        for job in &jobs {
            for member in &job.members {
                d.hook_routes
                    .insert(member.callback.hook_id, job.route.clone());
            }
        }
        // A request starts only once all its callbacks are marked as started.
        d.scheduler.update(|q| {
            for job in jobs {
                if job.ids().all(|id| marked.contains(&id)) {
                    q.add_ready(job);
                } else {
                    q.add_claimed(job);
                }
            }
        });
        for (problem, ids) in held {
            let note = format!("not sent: {}", problem.problem);
            retrying(link, &d.policy, |db| {
                callbacks::release(db, &self.identity.token, &ids, Some(&note))
            })?;
            d.summary.held += ids.len();
            d.summary.environment_problems.insert(problem);
        }
        Ok(())
    }

    /// A claim that came back full ended somewhere in the queue: a batch it left short
    /// may fill with what follows, so it is given back to be claimed with the rest
    /// (unless it is all the claim holds, or its callbacks were given back
    /// [`FILL_TRIES`] times, the first [`FILL_WAIT`] ago: then it goes as it is). A
    /// claim sized before the run knew its hooks' `--batch-size` gives back even when
    /// that is all it holds: the next claim is sized to fill them.
    fn give_back_unfilled(
        &self,
        link: &Mutex<Link>,
        d: &mut Dispatch,
        jobs: &mut Vec<Job>,
        sized_too_small: bool,
        claimed_at: Instant,
    ) -> Result<()> {
        let now = Instant::now();
        // Those another run took meanwhile are never seen again.
        d.given_back
            .retain(|_, given| now.duration_since(given.first) < 100 * FILL_WAIT);
        // Their wait ends when the claim that brought them back began: a slow claim
        // (a large admission) is no time they could have filled in.
        let (kept, short) = split_unfilled(
            std::mem::take(jobs),
            &d.given_back,
            claimed_at,
            sized_too_small,
        );
        for id in kept.iter().flat_map(Job::ids) {
            d.given_back.remove(&id);
        }
        *jobs = kept;
        let ids: Vec<i64> = short.iter().flat_map(Job::ids).collect();
        if ids.is_empty() {
            return Ok(());
        }
        retrying(link, &d.policy, |db| {
            callbacks::release(db, &self.identity.token, &ids, None)
        })?;
        // Claimed again with the rest: counted then.
        d.summary.claimed -= ids.len();
        d.scheduler.claimed.fetch_sub(ids.len(), Ordering::Relaxed);
        for id in ids {
            d.given_back
                .entry(id)
                .or_insert(GivenBack {
                    first: now,
                    times: 0,
                })
                .times += 1;
        }
        // They are at the head of the queue: the next claim starts there, not after
        // this one (as it would while hooks are excluded), so that they fill.
        d.filter.after = None;
        Ok(())
    }

    /// Marks as started what endpoints can start soon, renewing their leases.
    pub(super) fn mark_ready(&self, link: &Mutex<Link>, d: &mut Dispatch) -> Result<()> {
        // Taking wakes no worker: only what is added may start.
        let to_mark = d.scheduler.lock().take_to_mark();
        if to_mark.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = to_mark.iter().flat_map(Job::ids).collect();
        let marked_at = Instant::now();
        log::debug!("marking {} ready", ids.len());
        let held = retrying(link, &d.policy, |db| {
            callbacks::renew(db, &self.identity.token, &ids, true)
        })?;
        let (kept, not_held) = keep_held(to_mark, &held.into_iter().collect());
        d.scheduler.update(|q| {
            for mut job in kept {
                job.lease_until = marked_at + lease_for(job.timeout);
                q.add_ready(job);
            }
        });
        // Taken by another run (then this changes nothing), or its hook was paused
        // meanwhile: give it back (with the rest of its batch).
        if !not_held.is_empty() {
            retrying(link, &d.policy, |db| {
                callbacks::release(db, &self.identity.token, &not_held, None)
            })?;
            d.summary.released += not_held.len();
        }
        Ok(())
    }

    /// Renews the leases of callbacks that have waited long; drops those that another
    /// run has taken meanwhile (and gives back the rest of their batches).
    pub(super) fn renew_expiring(&self, link: &Mutex<Link>, d: &mut Dispatch) -> Result<()> {
        let now = Instant::now();
        let expiring = d.scheduler.lock().take_expiring(|job| {
            job.lease_until.saturating_duration_since(now)
                < job.timeout + START_MARGIN + RENEW_AHEAD
        });
        if expiring.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = expiring.iter().flat_map(Job::ids).collect();
        let renewed_at = Instant::now();
        let held = retrying(link, &d.policy, |db| {
            callbacks::renew(db, &self.identity.token, &ids, false)
        })?;
        let lost = ids.len() - held.len();
        if lost > 0 {
            log::warn!("{lost} claims were taken over by another run before they were sent");
        }
        let held: HashSet<i64> = held.into_iter().collect();
        let (kept, broken) = keep_held(expiring, &held);
        let unsent: Vec<i64> = broken.into_iter().filter(|id| held.contains(id)).collect();
        d.scheduler.update(|q| {
            for mut job in kept {
                job.lease_until = renewed_at + lease_for(job.timeout);
                if job.marked {
                    q.add_ready(job);
                } else {
                    q.add_claimed(job);
                }
            }
        });
        if !unsent.is_empty() {
            retrying(link, &d.policy, |db| {
                callbacks::release(db, &self.identity.token, &unsent, None)
            })?;
            d.summary.released += unsent.len();
        }
        Ok(())
    }
}

/// The jobs whose callbacks this run still holds, every one (a batch goes whole or not
/// at all), and the ids of the callbacks of the others.
fn keep_held(jobs: Vec<Job>, held: &HashSet<i64>) -> (Vec<Job>, Vec<i64>) {
    let (kept, broken): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|job| job.ids().all(|id| held.contains(&id)));
    (kept, broken.iter().flat_map(Job::ids).collect())
}

/// A full claim's requests: those that go now, and the short batches to give back
/// (see `Engine::give_back_unfilled`).
fn split_unfilled(
    jobs: Vec<Job>,
    given_back: &HashMap<i64, GivenBack>,
    now: Instant,
    sized_too_small: bool,
) -> (Vec<Job>, Vec<Job>) {
    let waited = |id: i64| {
        given_back.get(&id).is_some_and(|given| {
            given.times >= FILL_TRIES && now.saturating_duration_since(given.first) >= FILL_WAIT
        })
    };
    let unfilled = |job: &Job| !job.full && !job.ids().any(waited);
    if !sized_too_small && jobs.iter().all(unfilled) {
        return (jobs, Vec::new());
    }
    let (short, kept) = jobs.into_iter().partition(unfilled);
    (kept, short)
}

/// The claim that would hold a full batch of each batch hook in `claimed` (a full
/// claim, so a sample of the queue), at its share of it: hooks interleaved in the
/// queue split a claim between them, and one sized for the largest batch alone would
/// hold only part of each hook's. A tenth more, as shares vary from claim to claim.
fn claim_for_shares(claimed: &[Claimed]) -> usize {
    let mut counts: HashMap<i64, (usize, usize)> = HashMap::new();
    for claim in claimed.iter().filter(|c| jobs::batched(&c.callback)) {
        let most = usize::try_from(claim.callback.settings.batch_size).unwrap_or(1);
        counts
            .entry(claim.callback.settings_version_id)
            .or_insert((0, most))
            .0 += 1;
    }
    counts
        .values()
        .map(|&(count, most)| (most * claimed.len()).div_ceil(count) * 11 / 10)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::scheduler::tests::job;

    /// A batch of `ids`, short unless `full`.
    fn batch(ids: &[i64], full: bool) -> Job {
        let mut batch = job(ids[0], "http://r", Duration::from_secs(60));
        let template = batch.members.pop().expect("one member");
        for &id in ids {
            let mut callback = template.callback.clone();
            callback.id = id;
            batch.members.push(crate::delivery::Member {
                callback,
                body: template.body.clone(),
                rendered_now: false,
            });
        }
        batch.batch = true;
        batch.full = full;
        batch
    }

    fn ids(jobs: &[Job]) -> Vec<Vec<i64>> {
        jobs.iter().map(|job| job.ids().collect()).collect()
    }

    #[test]
    fn short_batches_are_given_back_until_they_have_waited_a_while_for_their_hook() {
        let now = Instant::now();
        let claim = || {
            vec![
                batch(&[1, 2], false),
                batch(&[3, 4, 5], true),
                job(6, "http://r", Duration::from_secs(60)),
            ]
        };
        let (kept, short) = split_unfilled(claim(), &HashMap::new(), now, false);
        assert_eq!(ids(&kept), [vec![3, 4, 5], vec![6]]);
        assert_eq!(ids(&short), [vec![1, 2]]);

        // Given back once, or a moment ago: again; given back twice, FILL_WAIT ago: it
        // goes as it is.
        let given = |since: Duration, times: u32| GivenBack {
            first: now - since,
            times,
        };
        let once = HashMap::from([(1, given(FILL_WAIT * 5, 1))]);
        assert_eq!(
            ids(&split_unfilled(claim(), &once, now, false).1),
            [vec![1, 2]]
        );
        let lately = HashMap::from([(1, given(FILL_WAIT / 2, FILL_TRIES))]);
        assert_eq!(
            ids(&split_unfilled(claim(), &lately, now, false).1),
            [vec![1, 2]]
        );
        let long_ago = HashMap::from([(2, given(FILL_WAIT, FILL_TRIES))]);
        let (kept, short) = split_unfilled(claim(), &long_ago, now, false);
        assert_eq!(ids(&kept), [vec![1, 2], vec![3, 4, 5], vec![6]]);
        assert!(short.is_empty());

        // A claim of short batches alone goes as it is (giving it back would claim the
        // same again), unless it was sized before the run knew the batch size.
        let alone = || vec![batch(&[1, 2], false), batch(&[7], false)];
        assert!(split_unfilled(alone(), &HashMap::new(), now, false)
            .1
            .is_empty());
        assert_eq!(
            split_unfilled(alone(), &HashMap::new(), now, true).1.len(),
            2
        );
    }
}
