//! `send_callbacks`: deliver due callbacks (the engine is `crate::engine`), or with
//! `--dry-run` print the requests it would send.

use std::process::ExitCode;

use crate::cli::SendArgs;
use std::time::Instant;

use crate::delivery::EnvProblem;
use crate::engine::{
    into_jobs, prepare, Engine, Options, Preparation, StopReason, Summary, Templates,
};
use crate::error::{Error, Result};
use crate::payload::Renderer;
use crate::storage::callbacks::{self, ClaimFilter};
use crate::storage::models::{Callback, Status};
use crate::storage::{hooks, Connector, Db};

pub fn run(url: Option<&str>, args: &SendArgs) -> Result<ExitCode> {
    // The run's time counts from here: waiting for a locked database is part of it.
    let started_at = std::time::Instant::now();
    // Metrics that cannot be written must not stop delivery, nor turn a good run red:
    // a warning now, and none written at the end.
    // The flag, else HTTPHOOKS_METRICS_FILE (empty is none: the shipped units' file
    // may set it so).
    let metrics_file = args
        .metrics_file
        .clone()
        .or_else(|| {
            std::env::var_os("HTTPHOOKS_METRICS_FILE")
                .filter(|v| !v.to_string_lossy().trim().is_empty())
                .map(std::path::PathBuf::from)
        })
        .filter(|path| match super::metrics_file::check_path(path) {
            Ok(()) => true,
            Err(why) => {
                eprintln!("httphooks: warning: {why}");
                false
            }
        });
    let max_runtime: Option<std::time::Duration> = args
        .max_runtime
        .map(Into::into)
        // Beyond a century a deadline means none, and adding it to the clock could
        // overflow.
        .filter(|d: &std::time::Duration| d.as_secs() < 100 * 365 * 86_400);
    match (args.follow, args.max_runtime, max_runtime) {
        (true, None, _) => return Err(Error::invalid(
            "--follow needs --max-runtime, so that a following run ends and the next one takes over: run `httphooks send_callbacks --follow --max-runtime 65s` every minute",
        )),
        (true, Some(given), None) => return Err(Error::invalid(format!(
            "--follow needs a --max-runtime under a century, not {given}, so that a following run ends and the next one takes over: run `httphooks send_callbacks --follow --max-runtime 65s` every minute"
        ))),
        _ => {}
    }
    let mut db = match open_within(url, started_at, max_runtime) {
        Ok(db) => db,
        // A database locked past the deadline: the run's summary, then why.
        Err(error) if error.db_failure() == Some(crate::error::DbFailure::Busy) => {
            if !args.quiet {
                let summary = Summary {
                    stop_reason: StopReason::Error,
                    elapsed: started_at.elapsed(),
                    ..Summary::default()
                };
                println!("{}", summary.line());
            }
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    // Named hooks first: a command refused for a name that is no hook changes nothing.
    let mut hook_ids = Vec::new();
    for given in &args.hook_id {
        hook_ids.push(hooks::require_by_id_or_name(&mut db, given)?.id);
    }
    // Capture first: a table rebuilt or altered since the last run gets its triggers
    // back (a dry run changes nothing, so it only warns). A failure here (say, no right
    // to create triggers) is reported and delivery goes on.
    if args.dry_run {
        for line in super::capture::broken_lines(&mut db)? {
            eprintln!("httphooks: warning: {line}");
        }
    } else if let Err(error) = super::capture::restore(&mut db) {
        // Say what stood in the way: a lock passes (the next run checks again); a
        // missing right needs the tables' owner.
        let fix = match error.db_failure() {
            Some(failure) if failure.is_transient() => {
                "delivery goes on, and the next run checks again"
            }
            _ => "delivery goes on; run `httphooks hooks sync` as the tables' owner",
        };
        eprintln!(
            "httphooks: warning: could not check or restore the watched tables' triggers ({error}); {fix}"
        );
    }
    // Runs admit new callbacks as they claim; named callbacks and a dry run need all
    // of them in the queue first.
    if args.dry_run || !args.callback.is_empty() {
        super::output::admit_all(&mut db)?;
    }
    if !args.callback.is_empty() {
        check_named_callbacks(&mut db, &args.callback)?;
    }
    let filter = ClaimFilter {
        hook_ids,
        callback_ids: args.callback.clone(),
        ..ClaimFilter::default()
    };
    if args.dry_run {
        return dry_run(&mut db, &filter, args.limit);
    }
    drop(db);
    let options = Options {
        concurrency: usize::from(args.concurrency),
        limit: args.limit,
        max_runtime,
        started_at,
        quiet: args.quiet,
        follow: args.follow,
    };
    let mut summary = Engine::new(Connector::new(url)?, options).run(&filter)?;
    let failure = summary.failure.take();
    // The metrics before the summary line: a reader of stdout that went away (`| true`)
    // ends the process at the line.
    if let (Some(path), None) = (&metrics_file, &failure) {
        let written = Db::open_migrated(url)
            .and_then(|mut db| super::metrics_file::write(path, &mut db, &summary));
        if let Err(error) = written {
            eprintln!("httphooks: warning: the run delivered, but {error}");
        }
    }
    if !args.quiet {
        println!("{}", summary.line());
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    if !summary.environment_problems.is_empty() {
        let problems: Vec<EnvProblem> = summary.environment_problems.iter().cloned().collect();
        return Err(Error::environment(format!(
            "{} callback(s) were not sent because {}",
            summary.held,
            missing_environment(&problems)
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the database, waiting for a SQLite lock another connection holds (an
/// application's long transaction) within the run's deadline, as the engine does once
/// it runs; without a deadline, for as long as it would wait for a database that went
/// away.
fn open_within(
    url: Option<&str>,
    started_at: std::time::Instant,
    max_runtime: Option<std::time::Duration>,
) -> Result<Db> {
    use std::time::{Duration, Instant};
    let give_up_at = started_at + max_runtime.unwrap_or(crate::engine::RECONNECT_BUDGET);
    loop {
        let left = give_up_at.saturating_duration_since(Instant::now());
        let busy = left.clamp(Duration::from_millis(100), Duration::from_secs(1));
        match Db::open_creating_default(url, busy) {
            Err(error)
                if error.db_failure() == Some(crate::error::DbFailure::Busy)
                    && Instant::now() < give_up_at =>
            {
                log::warn!("waiting for the database: {error}");
            }
            other => return other,
        }
    }
}

/// Named callbacks must exist; ones that are not waiting are reported, not sent.
fn check_named_callbacks(db: &mut Db, ids: &[i64]) -> Result<()> {
    for id in ids {
        match callbacks::get(db, *id)? {
            None => {
                return Err(Error::invalid(format!(
                    "no callback has id {id}; `httphooks callbacks list` shows them (nothing was sent)"
                )))
            }
            Some(c) if c.status != Status::Waiting => eprintln!(
                "httphooks: callback {id} is {}, not waiting, so it is not sent; `httphooks callbacks retry {id}` queues it again",
                c.status
            ),
            Some(c) if c.hook_enabled == Some(false) => eprintln!(
                "httphooks: callback {id} is held: hook {} is disabled; `httphooks hooks enable {}` sends it",
                c.hook_name, c.hook_name
            ),
            Some(c) if c.claim_token.is_some() && c.claimed_until.is_some_and(|until| until > crate::storage::now()) => eprintln!(
                "httphooks: callback {id} is being sent by another send_callbacks run right now; `httphooks callbacks explain {id}` says which"
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The most callbacks `--dry-run` shows without `--limit`.
const DRY_RUN_MOST: i64 = 1000;

/// Prints the requests a run would send now, grouped as a run groups them (the
/// engine's own preparation and batching), and what it would fail or hold instead.
fn dry_run(db: &mut Db, filter: &ClaimFilter, limit: Option<i64>) -> Result<ExitCode> {
    let most = limit.unwrap_or(DRY_RUN_MOST);
    // One more than shown, to know whether more are due.
    let mut due = callbacks::peek_due(db, filter, most.saturating_add(1))?;
    let more_due = due.len() as i64 > most;
    due.truncate(usize::try_from(most).unwrap_or(usize::MAX));
    let count = due.len();
    let max_callback_bytes = db.backend().max_callback_bytes()?;
    let mut renderer = Renderer::new();
    let mut templates = Templates::new();
    let mut members = Vec::new();
    // What a real run would hold for its environment, named as the run would name it.
    let mut held: Vec<EnvProblem> = Vec::new();
    for callback in due {
        let heading = heading(&callback);
        match prepare(&mut renderer, &mut templates, callback, max_callback_bytes) {
            Preparation::Send(member) => members.push(member),
            Preparation::Done(outcome) => {
                println!("# {heading}\n# would fail: {}\n", outcome.status_details)
            }
            Preparation::Held(_, problem) => {
                println!("# {heading}\n# would not be sent: {problem}\n");
                if !held.contains(&problem) {
                    held.push(problem);
                }
            }
        }
    }
    let requests = into_jobs(members, &templates, Instant::now());
    for request in &requests {
        let first = &request.members[0].callback;
        if request.batch {
            println!(
                "# a request of {} callback(s) of hook {} (--batch-size {}), a JSON array in this order:",
                request.members.len(),
                first.hook_name,
                first.settings.batch_size
            );
            for member in &request.members {
                println!("#   {}", heading(&member.callback));
            }
        } else {
            println!("# {}", heading(first));
        }
        println!("{}", request.prepared.as_text());
    }
    let shown = match (more_due, limit) {
        (false, _) => format!("{count} callback(s) due"),
        (true, Some(_)) => format!("the first {count} due callback(s) (--limit)"),
        (true, None) => format!(
            "the first {count} due callback(s), and more are due (--limit N shows more; \
             a batch cut short here may go fuller)"
        ),
    };
    println!(
        "dry run: {shown}, {} request(s); nothing was sent or changed",
        requests.len()
    );
    if held.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    Err(Error::environment(format!(
        "a run in this environment would hold callbacks because {}",
        missing_environment(&held)
    )))
}

/// What the environment lacks, and the fix: "… is not set; set it for send_callbacks".
fn missing_environment(problems: &[EnvProblem]) -> String {
    let variables: usize = problems.iter().map(|p| p.variables.len()).sum();
    let what = if variables > 1 { "them" } else { "it" };
    let problems: Vec<&str> = problems.iter().map(|p| p.problem.as_str()).collect();
    format!("{}; set {what} for send_callbacks", problems.join(" and "))
}

/// A callback as `--dry-run` names it.
fn heading(callback: &Callback) -> String {
    format!(
        "callback {} (hook {}, {} event, attempt {}/{})",
        callback.id,
        callback.hook_name,
        callback.event_type,
        callback.attempts + 1,
        callback.settings.max_attempts
    )
}
