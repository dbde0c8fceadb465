//! The recorder: writes outcomes in batches (every `batch` outcomes, [`ROUND_DELAY`]
//! after the first of a worker's round arrived, [`RECORD_DELAY`] after any, or at once
//! while the dispatcher waits for the room they take), each batch in one transaction,
//! token-checked. While the database is away it pauses the scheduler, so nothing is
//! sent that could not be recorded, and retries until the run's deadline.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use super::link::{retrying, Link, RetryPolicy};
use super::scheduler::Scheduler;
use super::Summary;
use crate::storage::callbacks::{self, Outcome};
use crate::storage::runs;

/// The longest an outcome waits to be written.
const RECORD_DELAY: Duration = Duration::from_millis(50);
/// Once a worker's round of outcomes is there, they wait at most this long: slow
/// receivers' outcomes are written soon after they come (a run that dies has less
/// sent and not recorded), fast ones' in big batches.
const ROUND_DELAY: Duration = Duration::from_millis(10);
/// How often to look again while the dispatcher waits for room.
const EAGER_DELAY: Duration = Duration::from_millis(2);
/// While outcomes wait to be written, the recorder collects what came in every so
/// often rather than waking for each one (a wake-up per outcome cost a context switch
/// per callback).
const COLLECT_EVERY: Duration = Duration::from_millis(2);

pub struct Limits<'a> {
    /// Outcomes per write at most.
    pub batch: usize,
    /// A worker's round: written after [`ROUND_DELAY`].
    pub round: usize,
    /// How long to keep trying when the database is away (the run's deadline).
    pub give_up_at: Option<Instant>,
    pub stopping: &'a dyn Fn() -> bool,
    /// A following run's id: its progress is written to its row as it goes, every
    /// [`runs::PROGRESS_EVERY`], for `status` and `monitor_callbacks`.
    pub following_run: Option<i64>,
}

/// What the recorder did: what it recorded and, when the database went away for good,
/// why, with the outcomes it could not write (from then on it only collects them).
pub struct Recorded {
    pub summary: Summary,
    pub failure: Option<crate::Error>,
    pub unrecorded: Vec<Outcome>,
}

/// Writes outcomes until every sender is gone.
pub fn record_loop(
    link: &Mutex<Link>,
    token: &str,
    reports: Receiver<Outcome>,
    scheduler: &Scheduler,
    progress: &ProgressBar,
    limits: Limits,
) -> Recorded {
    let mut summary = Summary::default();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut first_waiting: Option<Instant> = None;
    let mut failure = None;
    let mut unrecorded = Vec::new();
    let mut finished = false;
    let mut progress_written = Instant::now();
    let pauses = super::link::Pauses::new(
        scheduler,
        "cannot record outcomes",
        "recording outcomes again; delivery goes on",
    );
    let pause = |error: &crate::Error, wait: Duration| pauses.wait(error, wait);
    let resume = || pauses.recovered();
    let policy = RetryPolicy {
        give_up_at: limits.give_up_at,
        stopping: limits.stopping,
        on_wait: &pause,
        on_recovered: &resume,
    };
    while !finished {
        // While the dispatcher waits for the room unrecorded outcomes take, write
        // whatever is there at once.
        let eager = scheduler.room_wanted.load(Ordering::SeqCst);
        let wait = match (eager, first_waiting) {
            (true, _) => EAGER_DELAY,
            (false, None) => RECORD_DELAY,
            (false, Some(first)) if outcomes.len() >= limits.round => {
                ROUND_DELAY.saturating_sub(first.elapsed())
            }
            (false, Some(first)) => RECORD_DELAY.saturating_sub(first.elapsed()),
        };
        if first_waiting.is_some() && !eager {
            std::thread::sleep(wait.min(COLLECT_EVERY));
            loop {
                match reports.try_recv() {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        finished = true;
                        break;
                    }
                }
            }
        } else {
            match reports.recv_timeout(wait) {
                Ok(outcome) => {
                    first_waiting.get_or_insert_with(Instant::now);
                    outcomes.push(outcome);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => finished = true,
            }
        }
        let waited = first_waiting.map_or(Duration::ZERO, |f| f.elapsed());
        let due = outcomes.len() >= limits.batch
            || finished
            || eager
            || waited >= RECORD_DELAY
            || (outcomes.len() >= limits.round && waited >= ROUND_DELAY);
        if let Some(run) = limits.following_run {
            write_progress(link, run, scheduler, &summary, &mut progress_written);
        }
        if outcomes.is_empty() || !due {
            continue;
        }
        let count = outcomes.len();
        if failure.is_none() {
            match retrying(link, &policy, |db| callbacks::record(db, token, &outcomes)) {
                Ok(_) => {
                    for outcome in &outcomes {
                        summary.count(outcome);
                    }
                    progress.inc(count as u64);
                    progress.set_message(format!(
                        "{} ({:.0}/s)",
                        summary.counts(),
                        progress.per_sec()
                    ));
                    outcomes.clear();
                }
                // Nothing starts any more (`fail`). What could not be written keeps its
                // claim and is saved on this host (see `spool`) with what is still in
                // flight, so that the next run records it instead of sending it again.
                Err(error) => {
                    scheduler.fail();
                    failure = Some(error);
                }
            }
        }
        unrecorded.append(&mut outcomes);
        scheduler.recorded(count);
        first_waiting = None;
    }
    Recorded {
        summary,
        failure,
        unrecorded,
    }
}

/// Writes a following run's progress every [`runs::PROGRESS_EVERY`], whether or not
/// it changed (the time is its sign of life); best effort: its end writes it anyway.
fn write_progress(
    link: &Mutex<Link>,
    run: i64,
    scheduler: &Scheduler,
    summary: &Summary,
    written_at: &mut Instant,
) {
    if written_at.elapsed() < runs::PROGRESS_EVERY {
        return;
    }
    *written_at = Instant::now();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let done = runs::Progress {
        claimed: count(scheduler.claimed.load(Ordering::Relaxed)),
        sent: count(summary.sent),
        retried: count(summary.retried),
        failed: count(summary.failed),
    };
    let Ok(mut link) = link.lock() else {
        return;
    };
    let wrote =
        link.run(|db| runs::progress(db, run, &done, &summary.hook_stats, &summary.endpoint_stats));
    if let Err(error) = wrote {
        log::debug!("could not write this run's progress: {error}");
    }
}
