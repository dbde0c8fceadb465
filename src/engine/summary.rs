//! What a run did and why it ended: its summary line, and what its record and the
//! metrics file are made of.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::scheduler::{self, EndpointState};
use crate::delivery::EnvProblem;
use crate::error::{DbFailure, Error};
use crate::storage::callbacks::Outcome;
use crate::storage::runs;

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
    /// Not sent because a newer change of their row was waiting (`--coalesce`), in all
    /// and per hook.
    pub superseded: usize,
    pub superseded_by_hook: BTreeMap<i64, usize>,
    /// Why held callbacks were not sent (one sentence per problem).
    pub environment_problems: BTreeSet<EnvProblem>,
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
    pub(super) fn count(&mut self, outcome: &Outcome) {
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
            if outcome.shared_request {
                continue;
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

    pub(super) fn counts(&self) -> String {
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
        if self.superseded > 0 {
            line.push_str(&format!(", superseded {}", self.superseded));
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

/// The error a run ends with when its database went away for good: says so (not "check
/// DATABASE_URL": it was reachable when the run began), and where the outcomes it could
/// not write went.
pub(super) fn gave_up(
    error: Error,
    saved: Option<(usize, std::result::Result<std::path::PathBuf, String>)>,
    signalled: bool,
) -> Error {
    // A signal during the wait ends it as a deadline would.
    let until = if signalled {
        "before a signal stopped the run"
    } else {
        "before its deadline"
    };
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
                "the database went away during the run and did not come back {until}, \
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
