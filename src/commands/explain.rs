//! `callbacks explain ID`: why a callback is or is not being sent now, in a sentence or
//! two, with the command that changes it. The checks follow the due rule's order: a
//! finished callback, a paused or removed hook, a live claim, an earlier callback of
//! an ordered row, a retry time to come, a missing environment variable; else it is due.

use std::process::ExitCode;

use chrono::NaiveDateTime;
use serde_json::json;

use super::output::print_json;
use crate::cli::Format;
use crate::delivery::prepare;
use crate::engine::process::RunIdentity;
use crate::error::{Error, Result};
use crate::storage::models::{Callback, Status};
use crate::storage::runs::{self, Run};
use crate::storage::{callbacks, health, now, Db};

/// Why, as a state name (the JSON `state`), the sentences, and the command that would
/// change it.
struct Explanation {
    state: &'static str,
    why: String,
    command: Option<String>,
}

pub fn run(db: &mut Db, id: i64, format: Format) -> Result<ExitCode> {
    let Some(callback) = callbacks::get(db, id)? else {
        return Err(Error::invalid(format!(
            "no callback has id {id}; `httphooks callbacks list` shows them"
        )));
    };
    let explanation = explain(db, &callback)?;
    match format {
        Format::Json => print_json(&json!({
            "id": callback.id,
            "hook_name": callback.hook_name,
            "status": callback.status,
            "state": explanation.state,
            "explanation": explanation.why,
            "command": explanation.command,
        })),
        Format::Table => {
            println!(
                "callback {} (hook {}, {}): {}",
                callback.id, callback.hook_name, callback.event_type, explanation.why
            );
            if let Some(command) = &explanation.command {
                println!("  → {command}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn explain(db: &mut Db, callback: &Callback) -> Result<Explanation> {
    let now = now();
    if let Some(found) = superseded(db, callback)? {
        return Ok(found);
    }
    if let Some(found) = finished(callback).or_else(|| paused(callback)) {
        return Ok(found);
    }
    if let Some(found) = claimed(db, callback, now)? {
        return Ok(found);
    }
    if let Some(found) = ordered(db, callback)? {
        return Ok(found);
    }
    if let Some(found) = backing_off(callback, now).or_else(|| held_by_environment(callback)) {
        return Ok(found);
    }
    due(db, callback, now)
}

/// "before any attempt", or the last attempt's number and result.
fn after_attempts(callback: &Callback) -> String {
    match callback.attempts {
        0 => "before any attempt".to_owned(),
        // The outcome without its own "(attempt n/m, next in …)", which would say the
        // retry time a second time, as it was when recorded.
        n => format!(
            "after attempt {n}/{} ({})",
            callback.settings.max_attempts,
            super::output::outcome_reason(&callback.status_details)
        ),
    }
}

/// Folded into a newer change of its row (`--coalesce`): says which, and what became
/// of it.
fn superseded(db: &mut Db, callback: &Callback) -> Result<Option<Explanation>> {
    if callback.status != Status::Superseded {
        return Ok(None);
    }
    let id = callback.id;
    let newer = match callback.superseded_by {
        Some(newer) => match callbacks::get(db, newer)? {
            Some(n) => format!("callback {newer} ({}, now {})", n.event_type, n.status),
            None => format!("callback {newer} (deleted since)"),
        },
        None => "a newer callback".to_owned(),
    };
    Ok(Some(Explanation {
        state: "superseded",
        why: format!(
            "it was not sent: hook {} coalesces (--coalesce), and a newer change of the same row, {newer}, was waiting, so that one goes out in its place{}.",
            callback.hook_name,
            at(callback.updated_at)
        ),
        command: Some(format!(
            "httphooks callbacks retry {id} --force   # send this older state too"
        )),
    }))
}

/// Sent, failed for good, or never captured.
fn finished(callback: &Callback) -> Option<Explanation> {
    let id = callback.id;
    if callback.status == Status::Sent {
        return Some(Explanation {
            state: "sent",
            why: format!(
                "it was delivered{} ({}); nothing more will be sent.",
                at(callback.updated_at),
                callback.status_details
            ),
            command: Some(format!(
                "httphooks callbacks retry {id} --force   # send it again"
            )),
        });
    }
    if callback.status != Status::Error {
        return None;
    }
    let (when, details) = (
        at(callback.updated_at),
        callback.status_details.trim_end_matches('.'),
    );
    // A change that was not captured has nothing to send, and a callback of a removed
    // hook nothing to send it with: no retry can help.
    let (why, command) = if callback.uncaptured() {
        let why = format!("its change was not captured{when}: {details}; there is nothing to send, and no retry can change that.");
        (why, None)
    } else if callback.hook_enabled.is_none() {
        let why = format!("it failed for good{when}: {details}; its hook was removed, so it cannot be sent again.");
        (why, None)
    } else {
        let retry = format!(
            "httphooks callbacks retry {id}   # queue it again with a fresh set of attempts"
        );
        (format!("it failed for good{when}: {details}."), Some(retry))
    };
    Some(Explanation {
        state: "failed",
        why,
        command,
    })
}

/// Its hook is disabled or gone.
fn paused(callback: &Callback) -> Option<Explanation> {
    let id = callback.id;
    match callback.hook_enabled {
        None => Some(Explanation {
                state: "held",
                why: "it is held: its hook was removed, so no run sends it.".to_owned(),
                command: Some(format!("httphooks callbacks cancel {id}")),
            }),
        Some(false) => Some(Explanation {
                state: "held",
                why: format!(
                    "it is held: hook {} is disabled (paused), and a paused hook's callbacks wait until it is enabled.",
                    callback.hook_name
                ),
                command: Some(format!(
                    "httphooks hooks enable {}   # or: httphooks callbacks cancel {id}",
                    callback.hook_name
                )),
            }),
        Some(true) => None,
    }
}

/// A run holds it under a live lease.
fn claimed(db: &mut Db, callback: &Callback, now: NaiveDateTime) -> Result<Option<Explanation>> {
    if let (Some(until), Some(token)) = (callback.claimed_until, &callback.claim_token) {
        if until > now {
            let run = runs::by_token(db, token)?;
            let who = match &run {
                Some(run) => format!(
                    "run {} on host {} (pid {}, started {} UTC)",
                    run.id,
                    run.start.host,
                    run.start.pid,
                    run.start.started_at.format("%Y-%m-%d %H:%M:%S")
                ),
                None => format!("run {token}"),
            };
            let sending = if callback.claim_started {
                "may be sending it now"
            } else {
                "has it queued"
            };
            return Ok(Some(Explanation {
                state: "claimed",
                why: format!(
                    "it is claimed: {who} {sending}; the claim's lease ends {} UTC, after which another run takes it over if that run died.",
                    until.format("%Y-%m-%d %H:%M:%S")
                ),
                command: None,
            }));
        }
    }
    Ok(None)
}

/// An earlier callback of its row goes first (ordered hooks).
fn ordered(db: &mut Db, callback: &Callback) -> Result<Option<Explanation>> {
    if let Some(earlier) = health::ordered_behind(db, callback.id)? {
        return Ok(Some(Explanation {
            state: "ordered",
            why: format!(
                "it waits behind callback {earlier}: hook {} is ordered, and callbacks of the same row go one at a time, oldest first.",
                callback.hook_name
            ),
            command: Some(format!(
                "httphooks callbacks explain {earlier}   # or cancel it: httphooks callbacks cancel {earlier}"
            )),
        }));
    }
    Ok(None)
}

/// Its retry time is still to come.
fn backing_off(callback: &Callback, now: NaiveDateTime) -> Option<Explanation> {
    let id = callback.id;
    if let Some(next) = callback.next_attempt_at.filter(|next| *next > now) {
        return Some(Explanation {
            state: "backing_off",
            why: format!(
                "it is backing off until {} UTC (in {}) {}.",
                next.format("%Y-%m-%d %H:%M:%S"),
                span(next - now),
                after_attempts(callback)
            ),
            command: Some(format!(
                "httphooks send_callbacks --callback {id}   # send it now"
            )),
        });
    }
    None
}

/// Due, but this environment lacks a variable its hook needs.
fn held_by_environment(callback: &Callback) -> Option<Explanation> {
    if let Err(problem) = prepare(
        &callback.settings,
        &callback.content_type,
        &callback.webhook_id(),
        "",
    ) {
        return Some(Explanation {
            state: "held",
            why: format!(
                "it is due, but in this environment it would be held: {}; send_callbacks holds it until its environment has what it needs.",
                problem.problem
            ),
            command: Some(format!(
                "export {}   # in send_callbacks' environment (cron, systemd unit)",
                problem
                    .variables
                    .iter()
                    .map(|v| format!("{v}=…"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
        });
    }
    None
}

/// Nothing holds it: the next run sends it.
fn due(db: &mut Db, callback: &Callback, now: NaiveDateTime) -> Result<Explanation> {
    let id = callback.id;
    let since = callback.next_attempt_at.unwrap_or(callback.created_at);
    let who = match following_run(db)? {
        Some(run) => format!(
            "send_callbacks run {} ({}:{}, following for {}) sends it as soon as it has room for it; if it is still due, that run was started with --hook_id for other hooks, or its endpoint is backing off",
            run.id,
            run.start.host,
            run.start.pid,
            span(now - run.start.started_at)
        ),
        None => match runs::last_finished(db)?.and_then(|run| run.end.ended_at) {
            Some(ended) => format!(
                "the next send_callbacks run sends it (the last one finished {} ago)",
                span(now - ended)
            ),
            None => "the next send_callbacks run sends it (no run has finished yet)".to_owned(),
        },
    };
    Ok(Explanation {
        state: "due",
        why: format!(
            "it is due since {} UTC ({} ago) {}; {who}.",
            since.format("%Y-%m-%d %H:%M:%S"),
            span(now - since),
            after_attempts(callback)
        ),
        command: Some(format!(
            "httphooks send_callbacks --callback {id}   # send it now"
        )),
    })
}

/// A following run (`send_callbacks --follow`) that is alive: it wrote its progress
/// lately, and its process is there (as far as this host can tell).
fn following_run(db: &mut Db) -> Result<Option<Run>> {
    let me = RunIdentity::current();
    let now = now();
    Ok(runs::following(db)?.into_iter().find(|run| {
        run.is_following(now) && !me.knows_gone(&run.start.host, run.start.pid, &run.start.process)
    }))
}

fn at(time: Option<NaiveDateTime>) -> String {
    time.map(|t| format!(" at {} UTC", t.format("%Y-%m-%d %H:%M:%S")))
        .unwrap_or_default()
}

/// A span as people say it: 42s, 5m 3s, 2h 10m, 3d 4h.
pub(crate) fn span(span: chrono::TimeDelta) -> String {
    let seconds = span.num_seconds().max(0);
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}
