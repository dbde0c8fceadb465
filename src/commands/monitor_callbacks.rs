//! `monitor_callbacks`: the callbacks table as an exit code for monitoring. The seed's
//! check (`--status`: how many callbacks of a status) plus `--lag` (how long the oldest
//! due callback has waited) and `--no-run-since` (a dead man's switch on the runs);
//! plain lines, Nagios plugin output or JSON. It only reads.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::{Format, MonitorArgs};
use crate::error::{Error, Result};
use crate::storage::{before_now, callbacks, health, now, runs, Db};

/// One check's result.
struct Check {
    /// The perfdata label and JSON name.
    label: &'static str,
    /// None when there is nothing to measure (no callback due).
    value: Option<f64>,
    /// Perfdata unit: "" for counts, "s" for times (the value is in seconds then,
    /// the limits in minutes as given).
    seconds: bool,
    warning: Option<i64>,
    critical: i64,
    /// The plain line without its OK/ALERT prefix.
    text: String,
    json: serde_json::Value,
    /// Fails however it compares (no run ever finished).
    failed_anyway: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Ok,
    Warning,
    Critical,
}

impl Check {
    fn in_limit_units(&self) -> Option<f64> {
        self.value.map(|v| if self.seconds { v / 60.0 } else { v })
    }

    fn state(&self) -> State {
        if self.failed_anyway {
            return State::Critical;
        }
        let Some(value) = self.in_limit_units() else {
            return State::Ok;
        };
        if value > self.critical as f64 {
            State::Critical
        } else if self.warning.is_some_and(|w| value > w as f64) {
            State::Warning
        } else {
            State::Ok
        }
    }

    fn perfdata(&self) -> String {
        let scale = |limit: i64| if self.seconds { limit * 60 } else { limit };
        let value = match self.value {
            Some(v) if self.seconds => format!("{v:.0}s"),
            Some(v) => format!("{v:.0}"),
            None => "U".to_owned(),
        };
        format!(
            "{}={value};{};{};0;",
            self.label,
            self.warning
                .map(|w| scale(w).to_string())
                .unwrap_or_default(),
            scale(self.critical)
        )
    }
}

pub fn run(url: Option<&str>, args: &MonitorArgs) -> Result<ExitCode> {
    let result = checks(url, args);
    if args.nagios {
        // A plugin that cannot check says UNKNOWN on stdout, where Nagios reads it.
        return Ok(match result {
            Ok(checks) => nagios(&checks, args.format),
            Err(error) => {
                println!("HTTPHOOKS UNKNOWN - {error}");
                ExitCode::from(3)
            }
        });
    }
    let checks = result?;
    let failed = checks.iter().any(|c| c.state() != State::Ok);
    match args.format {
        Format::Json => println!("{}", json_of(&checks, if failed { "alert" } else { "ok" })),
        Format::Table => {
            for check in &checks {
                let prefix = if check.state() == State::Ok {
                    "OK"
                } else {
                    "ALERT"
                };
                println!("{prefix}: {}", check.text);
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn checks(url: Option<&str>, args: &MonitorArgs) -> Result<Vec<Check>> {
    let given = [
        args.status.is_some(),
        args.lag.is_some(),
        args.no_run_since.is_some(),
    ];
    if !given.contains(&true) {
        return Err(Error::invalid(
            "say what to check: --status error (or waiting), --lag MINUTES or --no-run-since MINUTES, alone or together, e.g. `httphooks monitor_callbacks --status error --callbacks_limit 0 --lag 15`",
        ));
    }
    if (args.warning.is_some() || args.critical.is_some())
        && given.iter().filter(|g| **g).count() > 1
    {
        return Err(Error::invalid(
            "--warning and --critical apply to one check; give one of --status, --lag and --no-run-since, or leave them out to use each check's own limit",
        ));
    }
    let mut db = Db::open_migrated(url)?;
    let now = now();
    let mut checks = Vec::new();
    // Broken capture turns the check red whatever else it finds: changes are being lost.
    let broken = super::capture::broken_lines(&mut db)?;
    if !broken.is_empty() {
        checks.push(Check {
            label: "capture_broken",
            value: Some(broken.len() as f64),
            seconds: false,
            warning: None,
            critical: 0,
            text: broken.join("; "),
            json: json!({"check": "capture", "problems": broken}),
            failed_anyway: true,
        });
    }
    if let Some(status) = args.status {
        let since = args
            .minutes_ago
            .map(|m| before_now(chrono::Duration::try_minutes(m)));
        let count = callbacks::count_by_status(&mut db, status, since)?;
        let window = match args.minutes_ago {
            Some(minutes) => format!(" in the last {minutes} minutes"),
            None => String::new(),
        };
        let limit = args.critical.unwrap_or(args.callbacks_limit);
        checks.push(Check {
            label: status.as_str(),
            value: Some(count as f64),
            seconds: false,
            warning: args.warning,
            critical: limit,
            // The seed's line, word for word.
            text: format!("{count} callbacks with status {status}{window} (limit {limit})"),
            json: json!({"check": "status", "status": status, "count": count,
                         "minutes_ago": args.minutes_ago, "limit": limit}),
            failed_anyway: false,
        });
    }
    if let Some(lag) = args.lag {
        let limit = args.critical.unwrap_or(lag);
        let since = health::oldest_due_since(&mut db, &[])?;
        let waited = since.map(|since| (now - since).num_milliseconds().max(0) as f64 / 1000.0);
        let text = match waited {
            Some(seconds) => format!(
                "the oldest due callback has waited {} (limit {limit} minutes)",
                minutes_text(seconds)
            ),
            None => format!("no callback is due (limit {limit} minutes)"),
        };
        checks.push(Check {
            label: "lag",
            value: waited,
            seconds: true,
            warning: args.warning,
            critical: limit,
            text,
            json: json!({"check": "lag", "due_since": since.map(|s| s.and_utc().to_rfc3339()),
                         "seconds": waited, "limit_minutes": limit}),
            failed_anyway: false,
        });
    }
    if let Some(minutes) = args.no_run_since {
        let limit = args.critical.unwrap_or(minutes);
        let last = runs::last_finished(&mut db)?;
        // A run following now is as good as one that just finished.
        let me = crate::engine::process::RunIdentity::current();
        let following = runs::following(&mut db)?.into_iter().find(|run| {
            run.is_following(now)
                && !me.knows_gone(&run.start.host, run.start.pid, &run.start.process)
        });
        let ended = match &following {
            Some(_) => Some(now),
            None => last.as_ref().and_then(|run| run.end.ended_at),
        };
        let ago = ended.map(|ended| (now - ended).num_milliseconds().max(0) as f64 / 1000.0);
        let text = match (ended, ago) {
            (Some(_), Some(_)) if following.is_some() => format!(
                "send_callbacks run {} is following now (started {} ago; limit {limit} minutes)",
                following.as_ref().map_or(0, |run| run.id),
                following
                    .as_ref()
                    .map(|run| minutes_text((now - run.start.started_at).num_seconds() as f64))
                    .unwrap_or_default()
            ),
            (Some(ended), Some(ago)) => format!(
                "the last send_callbacks run finished {} ago, at {} UTC (limit {limit} minutes)",
                minutes_text(ago),
                ended.format("%Y-%m-%d %H:%M:%S")
            ),
            _ => format!("no send_callbacks run has finished yet (limit {limit} minutes)"),
        };
        checks.push(Check {
            label: "last_run",
            value: ago,
            seconds: true,
            warning: args.warning,
            critical: limit,
            text,
            json: json!({"check": "no_run_since",
                         "last_run_ended_at": ended.map(|e| e.and_utc().to_rfc3339()),
                         "seconds": ago, "limit_minutes": limit}),
            failed_anyway: ended.is_none(),
        });
    }
    for check in &checks {
        if let Some(warning) = check.warning.filter(|w| *w > check.critical) {
            return Err(Error::invalid(format!(
                "--warning {warning} is above the critical threshold {}; give a warning threshold at or below it",
                check.critical
            )));
        }
    }
    Ok(checks)
}

fn nagios(checks: &[Check], format: Format) -> ExitCode {
    let state = checks.iter().map(Check::state).max().unwrap_or(State::Ok);
    let (word, code) = match state {
        State::Ok => ("OK", 0),
        State::Warning => ("WARNING", 1),
        State::Critical => ("CRITICAL", 2),
    };
    match format {
        Format::Json => println!("{}", json_of(checks, &word.to_lowercase())),
        Format::Table => {
            let texts: Vec<&str> = checks.iter().map(|c| c.text.as_str()).collect();
            let perfdata: Vec<String> = checks.iter().map(Check::perfdata).collect();
            // The text may not hold '|', which starts the performance data.
            println!(
                "HTTPHOOKS {word} - {} | {}",
                texts.join("; ").replace('|', "/"),
                perfdata.join(" ")
            );
        }
    }
    ExitCode::from(code)
}

fn json_of(checks: &[Check], state: &str) -> serde_json::Value {
    let list: Vec<serde_json::Value> = checks
        .iter()
        .map(|check| {
            let mut value = check.json.clone();
            value["ok"] = json!(check.state() == State::Ok);
            value
        })
        .collect();
    json!({"state": state, "checks": list})
}

fn minutes_text(seconds: f64) -> String {
    if seconds < 60.0 {
        let whole = seconds.round();
        format!("{whole:.0} second{}", if whole == 1.0 { "" } else { "s" })
    } else {
        format!("{:.1} minutes", seconds / 60.0)
    }
}
