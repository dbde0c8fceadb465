//! `status`: the whole installation on one screen: per hook its queue (due, backing
//! off, held), recent errors, the oldest due callback's age, the last success, its
//! endpoint's latency and concurrency limit; then the recent runs. Indexed reads only
//! (see `storage::health`), so it stays fast on a big table; it writes nothing.

use std::process::ExitCode;

use serde_json::{json, Value};

use super::explain::span;
use super::output::{optional_timestamp, print_json, print_table, timestamp};
use crate::cli::{Format, FormatArg};
use crate::engine::endpoint_of;
use crate::engine::process::RunIdentity;
use crate::error::Result;
use crate::storage::models::Status;
use crate::storage::runs::{self, EndpointSeen, Run};
use crate::storage::{capture, health, hooks, now, Db, TableEvent};

/// Runs shown under the hooks.
const RECENT_RUNS: i64 = 5;

pub fn run(url: Option<&str>, args: &FormatArg) -> Result<ExitCode> {
    let mut db = Db::open_migrated(url)?;
    let now = now();
    let all = hooks::list(&mut db)?;
    let waiting = health::waiting_by_hook(&mut db, now)?;
    let errors_hour = health::errors_by_hook(&mut db, now - chrono::Duration::hours(1))?;
    let errors_day = health::errors_by_hook(&mut db, now - chrono::Duration::days(1))?;
    let day_ago = now - chrono::Duration::days(1);
    let superseded_day = health::finished_by_hook(&mut db, Status::Superseded, day_ago)?;
    let successes = runs::last_successes(&mut db)?;
    let last_hour = runs::endpoints_since(&mut db, now - chrono::Duration::hours(1))?;
    let last_day = runs::endpoints_since(&mut db, now - chrono::Duration::days(1))?;
    let new = db.backend().count_new(None)?;
    let recent = runs::recent(&mut db, RECENT_RUNS)?;
    let tables = capture::inspect(&mut db)?;
    let templates = super::capture::template_problems(&tables);
    let mut capture: Vec<Value> = Vec::new();
    for table in &tables {
        // What the hooks listen to that reaches no trigger (MySQL: cascades).
        let events: Vec<TableEvent> = table
            .hooks
            .iter()
            .filter(|h| h.enabled)
            .flat_map(|h| h.table_events())
            .collect();
        let uncaptured = match &table.table {
            Some(found) => db.backend().uncaptured_paths(found, &events)?,
            None => Vec::new(),
        };
        let names: Vec<String> = table.hooks.iter().map(|h| h.name.clone()).collect();
        let template_problems: Vec<&String> = templates
            .iter()
            .filter(|problem| names.contains(&problem.hook))
            .map(|problem| &problem.message)
            .collect();
        capture.push(json!({
            "table_name": table.name(),
            "hooks": names,
            "intact": !table.broken(),
            "state": table.problem(),
            "since": table.broken().then(|| table.since()),
            "fix": table.broken().then(|| super::capture::fix_line(table)),
            "templates": template_problems,
            "uncaptured": uncaptured,
        }));
    }

    let mut hook_rows = Vec::new();
    for hook in &all {
        let queue = waiting.get(&hook.id).copied().unwrap_or_default();
        // A paused hook's callbacks are all held; nothing of it is due.
        let (due, backing_off, claimed, held) = if hook.enabled {
            (
                queue.due(),
                queue.backing_off,
                queue.claimed,
                queue.ordered_behind,
            )
        } else {
            (0, 0, 0, queue.total)
        };
        let oldest_due = if due > 0 {
            health::oldest_due_since(&mut db, &[hook.id])?
                .map(|since| (now - since).num_seconds().max(0))
        } else {
            None
        };
        let endpoint = endpoint_of(&hook.settings.target_url);
        let hour = last_hour.get(&endpoint).cloned().unwrap_or_default();
        let limit = last_day.get(&endpoint).map(|seen| seen.concurrency_limit);
        hook_rows.push(json!({
                "id": hook.id,
                "name": hook.name,
                "enabled": hook.enabled,
                "table_name": hook.table_name,
                "endpoint": endpoint,
                "waiting": {"due": due, "backing_off": backing_off, "claimed": claimed, "held": held},
                "errors": {
                    "last_hour": errors_hour.get(&hook.id).copied().unwrap_or(0),
                    "last_day": errors_day.get(&hook.id).copied().unwrap_or(0),
                },
                // Folded into newer changes of their rows (--coalesce), last 24 hours.
                "superseded_last_day": superseded_day.get(&hook.id).copied().unwrap_or(0),
                "oldest_due_seconds": oldest_due,
                "last_success_at": optional_timestamp(&successes.get(&hook.id).copied()),
                "latency_ms": latency_json(&hour),
                "concurrency_limit": limit,
        }));
    }
    match args.format {
        Format::Json => print_json(&json!({
            "hooks": hook_rows,
            "new_callbacks": new,
            "capture": capture,
            "runs": recent.iter().map(run_json).collect::<Vec<_>>(),
        })),
        Format::Table => print_tables(&hook_rows, new, &capture, &recent, now),
    }
    Ok(ExitCode::SUCCESS)
}

fn latency_json(seen: &EndpointSeen) -> Value {
    let quantile = |q| seen.latency.quantile(q).map(bound_json);
    json!({
        "requests": seen.requests,
        "failures": seen.failures,
        "p50": quantile(0.5),
        "p95": quantile(0.95),
    })
}

/// A bucket bound; beyond the last one it is "> 10000".
fn bound_json(ms: i64) -> Value {
    if ms == i64::MAX {
        json!(format!(
            "> {}",
            runs::LATENCY_BUCKETS_MS[runs::LATENCY_BUCKETS_MS.len() - 1]
        ))
    } else {
        json!(ms)
    }
}

fn run_json(run: &Run) -> Value {
    json!({
        "id": run.id,
        "host": run.start.host,
        "pid": run.start.pid,
        "started_at": timestamp(&run.start.started_at),
        "following": run.start.following,
        "alive_at": optional_timestamp(&run.alive_at),
        "ended_at": optional_timestamp(&run.end.ended_at),
        "claimed": run.end.claimed,
        "sent": run.end.sent,
        "retried": run.end.retried,
        "failed": run.end.failed,
        "held": run.end.held,
        "released": run.end.released,
        "exit_code": run.end.exit_code,
        "stop_reason": run.end.stop_reason,
    })
}

fn print_tables(
    hooks: &[Value],
    new: i64,
    capture: &[Value],
    recent: &[Run],
    now: chrono::NaiveDateTime,
) {
    print_hooks(hooks, now);
    if new > 0 {
        println!(
            "\n{new} new callback(s) not admitted yet (the next run or `callbacks list` admits them)"
        );
    }
    println!();
    print_capture(capture);
    print_runs(recent, now);
}

/// A JSON value as a table cell.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One row per hook: its queue, errors, lag, last success, latency and endpoint.
fn print_hooks(hooks: &[Value], now: chrono::NaiveDateTime) {
    let rows: Vec<Vec<String>> = hooks
        .iter()
        .map(|h| {
            let since = |value: &Value| {
                value
                    .as_i64()
                    .map(|s| span(chrono::Duration::seconds(s)))
                    .unwrap_or_else(|| "-".to_owned())
            };
            let last_success = h["last_success_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| format!("{} ago", span(now - t.naive_utc())))
                .unwrap_or_else(|| "-".to_owned());
            let latency = &h["latency_ms"];
            let ms = |v: &Value| match v {
                Value::Null => "-".to_owned(),
                Value::String(text) => format!("{text}ms"),
                other => format!("≤{other}ms"),
            };
            vec![
                cell(&h["name"]),
                if h["enabled"] == json!(true) {
                    "enabled"
                } else {
                    "paused"
                }
                .to_owned(),
                cell(&h["waiting"]["due"]),
                cell(&h["waiting"]["backing_off"]),
                cell(&h["waiting"]["claimed"]),
                cell(&h["waiting"]["held"]),
                format!("{}/{}", h["errors"]["last_hour"], h["errors"]["last_day"]),
                cell(&h["superseded_last_day"]),
                since(&h["oldest_due_seconds"]),
                last_success,
                format!("{} / {}", ms(&latency["p50"]), ms(&latency["p95"])),
                cell(&h["concurrency_limit"]),
                cell(&h["endpoint"]),
            ]
        })
        .collect();
    if hooks.is_empty() {
        println!("no hooks yet; add one with `httphooks hooks add NAME --table T --events insert --url URL`");
    } else {
        print_table(
            &[
                "HOOK",
                "STATE",
                "DUE",
                "BACKING_OFF",
                "CLAIMED",
                "HELD",
                "ERRORS_1H/24H",
                "SUPERSEDED_24H",
                "OLDEST_DUE",
                "LAST_SUCCESS",
                "P50/P95_1H",
                "LIMIT",
                "ENDPOINT",
            ],
            &rows,
        );
    }
}

/// Each watched table's capture, and what is broken or not captured.
fn print_capture(capture: &[Value]) {
    for table in capture {
        let table_name = cell(&table["table_name"]);
        if table["intact"] == json!(true) {
            println!("capture of table {table_name}: its triggers are intact");
        } else {
            println!("BROKEN: {}", cell(&table["fix"]));
        }
        for problem in table["templates"].as_array().into_iter().flatten() {
            println!("BROKEN: {}", cell(problem));
        }
        for path in table["uncaptured"].as_array().into_iter().flatten() {
            println!("NOT CAPTURED: {}", cell(path));
        }
    }
    if !capture.is_empty() {
        println!();
    }
}

/// The recent runs, newest first.
fn print_runs(recent: &[Run], now: chrono::NaiveDateTime) {
    let me = RunIdentity::current();
    if recent.is_empty() {
        println!("no send_callbacks run yet");
        return;
    }
    let rows: Vec<Vec<String>> = recent
        .iter()
        .map(|run| {
            let ended = match run.end.ended_at {
                Some(ended) => format!("{} ago", span(now - ended)),
                None if me.knows_gone(&run.start.host, run.start.pid, &run.start.process) => {
                    "died".to_owned()
                }
                // What it did so far is in its row, written every few seconds.
                None if run.is_following(now) => "following".to_owned(),
                None if run.start.following => format!(
                    "silent {}",
                    span(now - run.alive_at.unwrap_or(run.start.started_at))
                ),
                None => "running".to_owned(),
            };
            let took = run
                .end
                .ended_at
                .map(|e| span(e - run.start.started_at))
                .unwrap_or_else(|| span(now - run.start.started_at));
            vec![
                run.id.to_string(),
                ended,
                took,
                format!("{}:{}", run.start.host, run.start.pid),
                run.end.claimed.to_string(),
                run.end.sent.to_string(),
                run.end.retried.to_string(),
                run.end.failed.to_string(),
                run.end
                    .stop_reason
                    .clone()
                    .unwrap_or_else(|| "-".to_owned()),
                run.end
                    .exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    print_table(
        &[
            "RUN", "ENDED", "TOOK", "HOST:PID", "CLAIMED", "SENT", "RETRIED", "FAILED", "STOP",
            "EXIT",
        ],
        &rows,
    );
}
