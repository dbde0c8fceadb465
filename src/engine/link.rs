//! The engine's database connections: reconnected when lost, and retried with backoff
//! while the problem may pass (a lost connection, a lock, a full disk) within the
//! run's deadline, so a database restart pauses delivery instead of ending the run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::scheduler::Scheduler;
use crate::error::{DbFailure, Error, Result};
use crate::storage::{Connector, Db};

/// Without `--max-runtime`, how long a run waits for its database to come back.
pub const RECONNECT_BUDGET: Duration = Duration::from_secs(60);
const FIRST_DELAY: Duration = Duration::from_millis(200);
const LONGEST_DELAY: Duration = Duration::from_secs(5);

/// A connection that is opened again after it was lost.
pub struct Link {
    connector: Connector,
    db: Option<Db>,
}

impl Link {
    /// A link that connects when it is first used (see [`retrying`]), so that a
    /// database locked or away at the start is waited for like one lost later.
    pub fn new(connector: &Connector) -> Link {
        Link {
            connector: connector.clone(),
            db: None,
        }
    }

    /// Runs `op` on the connection (opening it first if it was lost); a connection
    /// error drops it, so the next call reconnects.
    pub fn run<T>(&mut self, op: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        let db = match &mut self.db {
            Some(db) => db,
            slot => slot.insert(connect(&self.connector)?),
        };
        let result = op(db);
        if let Err(error) = &result {
            if error.db_failure() == Some(DbFailure::Connection) {
                self.db = None;
            }
        }
        result
    }
}

/// The delivery engine's sessions (see `Db::tune_for_delivery`); a SQLite lock is waited
/// for a second at a time, so that retries keep the run's deadline.
fn connect(connector: &Connector) -> Result<Db> {
    let mut db = connector.open_migrated(Duration::from_secs(1))?;
    db.backend().tune_for_delivery()?;
    Ok(db)
}

/// When to stop retrying and whether to, and what to say while waiting.
pub struct RetryPolicy<'a> {
    /// Give up by then (the run's deadline); without it, [`RECONNECT_BUDGET`] after the
    /// first failure.
    pub give_up_at: Option<Instant>,
    pub stopping: &'a dyn Fn() -> bool,
    /// Called when a failure will be retried, with the error and how long it waits.
    pub on_wait: &'a dyn Fn(&Error, Duration),
    /// Called when an operation succeeds after failures.
    pub on_recovered: &'a dyn Fn(),
}

/// Runs `op` on `link`, retrying transient database failures with backoff.
pub fn retrying<T>(
    link: &Mutex<Link>,
    policy: &RetryPolicy,
    mut op: impl FnMut(&mut Db) -> Result<T>,
) -> Result<T> {
    let mut delay = FIRST_DELAY;
    let mut first_failure: Option<Instant> = None;
    loop {
        let result = link.lock().map_err(|_| poisoned())?.run(&mut op);
        match result {
            Ok(value) => {
                if first_failure.is_some() {
                    (policy.on_recovered)();
                }
                return Ok(value);
            }
            Err(error) if error.db_failure().is_some_and(DbFailure::is_transient) => {
                let first = *first_failure.get_or_insert_with(Instant::now);
                let give_up_at = policy.give_up_at.unwrap_or(first + RECONNECT_BUDGET);
                let left = give_up_at.saturating_duration_since(Instant::now());
                if (policy.stopping)() || left.is_zero() {
                    return Err(error);
                }
                // The last wait ends at the deadline, for one more try there.
                let wait = delay.min(left);
                (policy.on_wait)(&error, wait);
                thread::sleep(wait);
                delay = (delay * 2).min(LONGEST_DELAY);
            }
            Err(error) => return Err(error),
        }
    }
}

/// Whether a wait for the database is worth a warning (cron mails warnings): a lock
/// held for a few seconds (another run of this host recording, an application's short
/// transaction) is the normal course of things on SQLite and is logged at debug level;
/// a longer one, or a database that went away, is not.
pub fn worth_a_warning(error: &Error, wait: Duration) -> bool {
    error.db_failure() != Some(DbFailure::Busy) || wait >= Duration::from_millis(1600)
}

/// What delivery does while one of its connections waits for the database: it pauses
/// (nothing starts that could not be recorded), says so when the wait is worth it, and
/// says it goes on only after it said it stopped.
pub struct Pauses<'a> {
    pub scheduler: &'a Scheduler,
    /// "database unavailable", "cannot record outcomes": what is waiting.
    pub waiting: &'static str,
    pub resumed: &'static str,
    warned: AtomicBool,
}

impl<'a> Pauses<'a> {
    pub fn new(scheduler: &'a Scheduler, waiting: &'static str, resumed: &'static str) -> Self {
        Pauses {
            scheduler,
            waiting,
            resumed,
            warned: AtomicBool::new(false),
        }
    }

    pub fn wait(&self, error: &Error, wait: Duration) {
        self.scheduler.set_paused(true);
        let waiting = self.waiting;
        if worth_a_warning(error, wait) {
            self.warned.store(true, Ordering::SeqCst);
            log::warn!("{waiting}, pausing delivery and retrying in {wait:?}: {error}");
        } else {
            log::debug!("{waiting}, pausing delivery and retrying in {wait:?}: {error}");
        }
    }

    pub fn recovered(&self) {
        self.scheduler.set_paused(false);
        if self.warned.swap(false, Ordering::SeqCst) {
            log::warn!("{}", self.resumed);
        }
    }
}

pub fn poisoned() -> Error {
    Error::environment("a send_callbacks thread failed; run send_callbacks again")
}
