//! `send_callbacks --follow`: a run that has drained its queue waits for new callbacks
//! until its deadline and sends each within milliseconds of its commit.
//!
//! Waking up is a poll, the same on every backend: one indexed read of the oldest row
//! of `httphooks_new_callbacks` (where triggers and enqueue write) every [`POLL`]. It
//! costs the application's writers nothing (a `pg_notify` in the row trigger would make
//! every writing transaction take PostgreSQL's global notify lock at commit) and the run
//! little (README, Benchmark: idle CPU and queries per second). Callbacks that come due
//! without a new row (a retry's time, callbacks given back by another run or queued
//! again by `callbacks retry`) are found by a read of the due index every
//! [`LOOK_EVERY`]; only then does the run claim, so that an idle run never takes the
//! write lock (on SQLite, the whole database's).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::dispatch::Dispatch;
use super::link::{retrying, Link};
use super::summary::StopReason;
use super::Engine;
use crate::error::Result;
use crate::storage::callbacks;

/// How often a waiting run looks for new rows.
pub(super) const POLL: Duration = Duration::from_millis(5);
/// How often a waiting run looks for callbacks that came due without a new row.
pub(super) const LOOK_EVERY: Duration = Duration::from_millis(250);
/// New rows that a claim found nothing in (changes for hooks this run does not send,
/// or taken by another run) wake the run again only after this long, so that rows this
/// run can never claim do not make it claim at every poll.
const QUIET_AFTER_EMPTY: Duration = Duration::from_millis(25);

/// A following run's state between claims.
#[derive(Default)]
pub(super) struct Follow {
    /// The last claim was made because the poll saw new rows.
    woke_for_rows: bool,
    /// When a claim made for new rows last found nothing.
    found_nothing_at: Option<Instant>,
}

impl Follow {
    /// Notes what a claim found.
    pub(super) fn claimed(&mut self, found: bool) {
        self.found_nothing_at = (!found && self.woke_for_rows).then(Instant::now);
        self.woke_for_rows = false;
    }

    fn rows_may_wake(&self) -> bool {
        self.found_nothing_at
            .is_none_or(|at| at.elapsed() >= QUIET_AFTER_EMPTY)
    }
}

impl Engine {
    /// Waits until there may be something to claim: new rows, a request finished (what
    /// it held back may be due now: the next callback of an ordered row), or a callback
    /// came due. Meanwhile it marks and renews what is outstanding, as the
    /// dispatcher does. Returns why the run must stop instead, if it must.
    pub(super) fn wait_for_work(
        &self,
        link: &Mutex<Link>,
        d: &mut Dispatch,
        deadline: Option<Instant>,
        stopping: &dyn Fn() -> bool,
        outstanding: usize,
    ) -> Result<Option<StopReason>> {
        let mut last_look = Instant::now();
        loop {
            if let Some(reason) = d.must_stop(deadline, stopping) {
                return Ok(Some(reason));
            }
            self.renew_expiring(link, d)?;
            self.mark_ready(link, d)?;
            if d.scheduler.lock().outstanding() < outstanding {
                return Ok(None);
            }
            if last_look.elapsed() >= LOOK_EVERY {
                // A claim takes the write lock (on SQLite the whole database's): look
                // first, with a read of the due index, whether anything is due.
                last_look = Instant::now();
                if retrying(link, &d.policy, |db| {
                    Ok(!callbacks::peek_due(db, &d.filter, 1)?.is_empty())
                })? {
                    return Ok(None);
                }
            }
            if d.follow.as_ref().is_some_and(Follow::rows_may_wake)
                && retrying(link, &d.policy, |db| db.has_new_callbacks())?
            {
                if let Some(follow) = &mut d.follow {
                    follow.woke_for_rows = true;
                }
                return Ok(None);
            }
            d.scheduler
                .wait_until(POLL, |q| q.outstanding() < outstanding);
        }
    }
}
